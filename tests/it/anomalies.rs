//! `spend_anomalies`: the demo's runaway support-bot loop is found on its day
//! with no false alarm on steady principals; Cost Explorer anomalies on
//! Bedrock come through (and others are left out).

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn finds_the_runaway_loop_and_nothing_else() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let out = ok(&call(&client, "spend_anomalies", json!({})).await);
    let day = (crate::common::today()
        - chrono::Duration::days(bedrock_cost_mcp::demo_data::RUNAWAY_DAYS_AGO))
    .to_string();
    let found = out["anomalies"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{out}");
    assert_eq!(
        found[0]["who"],
        json!("arn:aws:iam::123456789012:role/SupportBotRole")
    );
    assert_eq!(found[0]["day"], json!(day));
    assert!(found[0]["actual"].as_f64().unwrap() > 8.0 * found[0]["expected"].as_f64().unwrap());
    assert_eq!(found[0]["drivers"][0]["model"], json!("Claude Haiku 4.5"));
    // Seven roles and users, and the lines without a principal (AgentCore runtime compute).
    assert_eq!(out["groups_checked"], json!(8));
    // By principal and by tag the same loop shows (the bot is tagged team=support).
    let by_tag = ok(&call(&client, "spend_anomalies", json!({"by": "tag:team"})).await);
    assert_eq!(by_tag["anomalies"][0]["who"], json!("support"));
    // A budget check by the bot mentions its open anomaly.
    let check = ok(&call(&client, "check_budget", json!({"who": "arn:aws:sts::123456789012:assumed-role/SupportBotRole/support-bot-1", "cost_usd": 1})).await);
    assert!(
        check["reasons"].to_string().contains("open anomaly"),
        "{}",
        check["reasons"]
    );
    let calm = ok(&call(&client, "check_budget", json!({"who": "arn:aws:sts::123456789012:assumed-role/DataScienceRole/carol@acme.example", "cost_usd": 1})).await);
    assert!(!calm["reasons"].to_string().contains("open anomaly"));
    let e = err(&call(&client, "spend_anomalies", json!({"by": "model"})).await);
    assert!(e.contains("role, principal or tag"), "{e}");
    let e = err(&call(&client, "spend_anomalies", json!({"k": 0})).await);
    assert!(e.contains("between 0.5 and 20"), "{e}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn cost_explorer_anomalies_on_bedrock_come_through() {
    let emu = Emulator::start();
    let day = (crate::common::today() - chrono::Duration::days(3)).to_string();
    let anomaly = |id: &str, service: &str, usage: &str| {
        json!({"AnomalyId": id, "AnomalyStartDate": day, "AnomalyEndDate": day, "DimensionValue": service,
               "RootCauses": [{"Service": service, "Region": "us-east-1", "UsageType": usage, "LinkedAccount": "123456789012"}],
               "AnomalyScore": {"MaxScore": 42.0, "CurrentScore": 40.0},
               "Impact": {"MaxImpact": 300.0, "TotalActualSpend": 350.0, "TotalExpectedSpend": 50.0, "TotalImpact": 300.0, "TotalImpactPercentage": 600.0},
               "MonitorArn": "arn:aws:ce::123456789012:anomalymonitor/abc"})
    };
    emu.post("/_emulator/ce/anomalies", json!({"Anomalies": [anomaly("a1", "Amazon Bedrock", "USE1-Claude4.6Sonnet-output-tokens"), anomaly("a2", "Amazon Elastic Compute Cloud - Compute", "BoxUsage:m5.large")]})).await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let out = ok(&call(&client, "spend_anomalies", json!({"period": "last_7_days"})).await);
    let found = out["anomalies"].as_array().unwrap();
    assert_eq!(found.len(), 1, "only Bedrock: {out}");
    assert_eq!(
        (
            found[0]["source"].clone(),
            found[0]["day"].clone(),
            found[0]["actual"].clone(),
            found[0]["expected"].clone()
        ),
        (
            json!("cost_explorer"),
            json!(day),
            json!(350.0),
            json!(50.0)
        )
    );
    assert_eq!(
        found[0]["drivers"][0]["model"],
        json!("USE1-Claude4.6Sonnet-output-tokens")
    );
    assert!(out["notes"].to_string().contains("needs the CUR source"));
    assert_eq!(emu.count("GetAnomalies").await, 1);
    client.cancel().await.unwrap();
}
