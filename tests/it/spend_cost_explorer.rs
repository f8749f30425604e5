//! `bedrock_spend` on Cost Explorer: the real binary over stdio and HTTP,
//! against the AWS emulator (moto) on loopback. Paid requests are counted at
//! the emulator, not trusted from the server.

use crate::common::*;
use serde_json::json;

const SERVICES: &[&str] = &[
    "Amazon Bedrock",
    "Claude Sonnet 4.6 (Amazon Bedrock Edition)",
    "Amazon Bedrock Service",
];

async fn seeded_emulator() -> Emulator {
    let emu = Emulator::start();
    emu.seed_services(&[SERVICES[0], SERVICES[1], SERVICES[2], "Amazon EC2"])
        .await;
    let (start, end) = last_month();
    emu.seed_cost_and_usage(vec![ce_month(
        &start,
        &end,
        "team",
        &[("ml", "123.45"), ("web", "20.00"), ("", "7.10")],
        None,
    )])
    .await;
    emu
}

#[tokio::test]
async fn spend_table_with_untagged_row_reconciles_and_second_call_is_cached() {
    let emu = seeded_emulator().await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let r = call(&client, "bedrock_spend", json!({"period": "last_month"})).await;
    let out = ok(&r);
    let rows = out["rows"].as_array().unwrap();
    let pairs: Vec<(String, f64, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["keys"]["tag:team"].as_str().unwrap().to_string(),
                r["amount"].as_f64().unwrap(),
                r["untagged"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("ml".into(), 123.45, false),
            ("web".into(), 20.0, false),
            ("untagged".into(), 7.1, true)
        ]
    );
    assert_eq!(out["total"], json!(150.55));
    assert_eq!(
        out["reconciliation"],
        json!({"named": 143.45, "untagged": 7.1, "others": 0.0, "total": 150.55, "reconciled": true})
    );
    let mut services: Vec<String> =
        serde_json::from_value(out["services_counted"].clone()).unwrap();
    services.sort();
    let mut want: Vec<String> = SERVICES.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(
        services, want,
        "every *Bedrock* service name and nothing else"
    );
    assert_eq!(
        (
            out["source"].as_str(),
            out["metric"].as_str(),
            out["currency"].as_str()
        ),
        (Some("cost_explorer"), Some("UnblendedCost"), Some("USD"))
    );
    assert_eq!(
        out["paid_requests"],
        json!(2),
        "one GetDimensionValues + one GetCostAndUsage page"
    );
    assert_eq!(out["cached"], json!(false));
    assert_eq!(out["estimated"], json!(false));
    let (start, end) = last_month();
    assert_eq!(out["period"], json!({"start": start, "end": end}));
    let table = text(&r);
    assert!(
        table.contains("untagged") && table.contains("150.55") && table.contains("reconciled"),
        "{table}"
    );
    assert_eq!(
        (
            emu.count("GetCostAndUsage").await,
            emu.count("GetDimensionValues").await
        ),
        (1, 1)
    );

    let again = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(
        (again["paid_requests"].clone(), again["cached"].clone()),
        (json!(0), json!(true))
    );
    assert_eq!(again["total"], json!(150.55));
    assert_eq!(
        (
            emu.count("GetCostAndUsage").await,
            emu.count("GetDimensionValues").await
        ),
        (1, 1),
        "no new paid request"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn pages_through_next_page_token() {
    let emu = Emulator::start();
    emu.seed_services(SERVICES).await;
    let (start, end) = last_month();
    emu.seed_cost_and_usage(vec![
        ce_month(
            &start,
            &end,
            "team",
            &[("ml", "100.00"), ("web", "50.00")],
            Some("page-2"),
        ),
        ce_month(
            &start,
            &end,
            "team",
            &[("data", "25.00"), ("", "5.00")],
            None,
        ),
    ])
    .await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": start, "end": end}}),
    )
    .await);
    assert_eq!(out["total"], json!(180.0));
    assert_eq!(out["rows"].as_array().unwrap().len(), 4);
    assert_eq!(out["reconciliation"]["untagged"], json!(5.0));
    assert_eq!(
        out["paid_requests"],
        json!(3),
        "two pages + service discovery"
    );
    assert_eq!(emu.count("GetCostAndUsage").await, 2);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn concurrent_identical_calls_make_one_request() {
    let emu = seeded_emulator().await;
    emu.latency(1000).await;
    let server = HttpServer::start(Some(&emu), &[], &[]);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = server.url.clone();
        tasks.push(tokio::spawn(async move {
            let client: Client = rmcp::ServiceExt::serve(
                (),
                rmcp::transport::StreamableHttpClientTransport::from_uri(url),
            )
            .await
            .unwrap();
            let r = call(&client, "bedrock_spend", json!({"period": "last_month"})).await;
            ok(&r)["total"].as_f64().unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 150.55);
    }
    assert_eq!(
        emu.count("GetCostAndUsage").await,
        1,
        "single-flight: one request for six identical calls"
    );
    assert_eq!(emu.count("GetDimensionValues").await, 1);
}

#[tokio::test]
async fn hourly_cap_refuses_further_paid_requests_but_serves_cache() {
    let emu = seeded_emulator().await;
    let client = stdio_client(Some(&emu), &["--ce-max-requests-per-hour", "2"], &[]).await;
    ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_7_days"})).await);
    assert!(
        e.contains("paid request cap") && e.contains("--ce-max-requests-per-hour"),
        "{e}"
    );
    let cached = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(cached["cached"], json!(true));
    assert_eq!(emu.count("GetCostAndUsage").await, 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn aws_errors_become_actionable_tool_errors() {
    let emu = seeded_emulator().await;
    let client = stdio_client(Some(&emu), &[], &[("AWS_MAX_ATTEMPTS", "1")]).await;
    emu.fault("GetCostAndUsage", "AccessDeniedException", 1)
        .await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(
        e.contains("ce:GetCostAndUsage") && e.contains("access denied"),
        "{e}"
    );
    emu.fault("GetCostAndUsage", "LimitExceededException", 1)
        .await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(
        e.contains("throttled") && e.contains("LimitExceededException") && e.contains("minute"),
        "{e}"
    );
    // Errors are not cached: the next call succeeds.
    let out = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(out["total"], json!(150.55));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn malformed_answers_are_reported_not_dropped() {
    let emu = seeded_emulator().await;
    let client = stdio_client(Some(&emu), &[], &[("AWS_MAX_ATTEMPTS", "1")]).await;
    let (start, end) = last_month();
    emu.post(
        "/_emulator/faults",
        json!({"operation": "GetCostAndUsage", "status": 200, "body": json!({"ResultsByTime": [{"TimePeriod": {"Start": start, "End": end}, "Groups": [{"Keys": ["iamPrincipal/team$ml"], "Metrics": {"UnblendedCost": {"Amount": "12,5", "Unit": "USD"}}}]}]}).to_string()}),
    )
    .await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(e.contains("malformed") && e.contains("12,5"), "{e}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_input_names_the_accepted_forms() {
    let emu = seeded_emulator().await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let cases = [
        (json!({"period": "yesterday"}), "last_month"),
        (
            json!({"period": {"start": "2026-02-30", "end": "2026-03-01"}}),
            "YYYY-MM-DD",
        ),
        (
            json!({"period": {"start": "2026-10-05", "end": "2026-10-01"}}),
            "end is exclusive",
        ),
        (
            json!({"period": {"start": "2099-01-01", "end": "2099-02-01"}}),
            "future",
        ),
        (
            json!({"period": {"start": "2020-01-01", "end": "2020-02-01"}}),
            "13 months",
        ),
        (json!({"group_by": ["owner"]}), "tag:<key>"),
        (json!({"group_by": ["principal"]}), "--cur"),
        // A string is read as a one-item list (tools::lenient); a number cannot be one.
        (json!({"group_by": 5}), "deserialize"),
        (json!({"top_n": "many"}), "top_n must be a whole number"),
        (json!({"granularity": "hourly"}), "deserialize"),
        (json!({"periodd": "last_month"}), "unknown field"),
        (json!({"source": "cur"}), "--cur PATH"),
        (json!({"cursor": "garbage"}), "next_cursor"),
    ];
    for (args, needle) in cases {
        let e = err(&call(&client, "bedrock_spend", args.clone()).await);
        assert!(e.contains(needle), "{args} -> {e}");
    }
    assert_eq!(
        emu.count("GetCostAndUsage").await,
        0,
        "bad input never reaches AWS"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_tag_key_with_no_values_says_it_may_not_be_activated() {
    let emu = Emulator::start();
    emu.seed_services(SERVICES).await;
    let (start, end) = last_month();
    emu.seed_cost_and_usage(vec![ce_month(
        &start,
        &end,
        "owner",
        &[("", "42.00")],
        None,
    )])
    .await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["tag:owner"]}),
    )
    .await);
    assert_eq!(out["reconciliation"]["untagged"], json!(42.0));
    let notes = out["notes"].to_string();
    assert!(
        notes.contains("not be activated") && notes.contains("iamPrincipal/owner"),
        "{notes}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn missing_credentials_say_how_to_configure() {
    let client = stdio_client(None, &[], &[("AWS_MAX_ATTEMPTS", "1")]).await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(
        e.contains("no AWS credentials") && e.contains("--demo"),
        "{e}"
    );
    client.cancel().await.unwrap();
}

/// On a shared HTTP server each authenticated caller gets its own share of the paid requests
/// (--ce-max-requests-per-caller-per-hour): one caller using it up does not block another, and
/// cached answers stay free.
#[tokio::test]
async fn per_caller_share_of_paid_requests_over_http() {
    let emu = seeded_emulator().await;
    let (start, _) = last_month();
    let month = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let first = month(&start);
    // Two more answers for other periods (moto hands out one per distinct request).
    for days in [7, 14] {
        let s = first + chrono::Duration::days(days);
        let e = s + chrono::Duration::days(1);
        emu.seed_cost_and_usage(vec![ce_month(
            &s.to_string(),
            &e.to_string(),
            "team",
            &[("ml", "1.00")],
            None,
        )])
        .await;
    }
    let sha = |t: &str| -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes());
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"alice\"\nsha256 = \"{}\"\nscopes = [\"cost.read\"]\n\n\
             [[token]]\nname = \"bob\"\nsha256 = \"{}\"\nscopes = [\"cost.read\"]\n",
            sha("tok-alice-91c2"),
            sha("tok-bob-5d07")
        ),
    )
    .unwrap();
    let server = HttpServer::start(
        Some(&emu),
        &["--ce-max-requests-per-caller-per-hour", "2"],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", tokens.to_str().unwrap())],
    );
    let alice = server.client_with_token("tok-alice-91c2").await.unwrap();
    let bob = server.client_with_token("tok-bob-5d07").await.unwrap();
    let day = |d: i64| {
        let s = first + chrono::Duration::days(d);
        json!({"period": {"start": s.to_string(), "end": (s + chrono::Duration::days(1)).to_string()}})
    };
    let a1 = ok(&call(&alice, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(
        a1["paid_requests"],
        json!(2),
        "GetDimensionValues + GetCostAndUsage"
    );
    let e = err(&call(&alice, "bedrock_spend", day(7)).await);
    assert!(
        e.contains("caller 'alice'") && e.contains("per-caller cap 2"),
        "{e}"
    );
    // Cached answers stay free for her; Bob has his own share.
    let again = ok(&call(&alice, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(
        (again["paid_requests"].clone(), again["cached"].clone()),
        (json!(0), json!(true))
    );
    let b = ok(&call(&bob, "bedrock_spend", day(7)).await);
    assert_eq!(b["total"], json!(1.0));
    assert_eq!(emu.count("GetCostAndUsage").await, 2);
}
