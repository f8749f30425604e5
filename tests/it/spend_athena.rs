//! `bedrock_spend` on Athena, against the emulator's Athena (moto plus our
//! paging, query log and outcome control): the SQL and parameters we send,
//! result paging, polling with progress, data scanned, failures, stopping.

use std::sync::{Arc, Mutex};

use crate::common::*;
use rmcp::model::{
    CallToolRequestParams, ClientRequest, ProgressNotificationParam, Request, ServerResult,
};
use rmcp::service::PeerRequestOptions;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Value, json};

const ARGS: &[&str] = &[
    "--athena-database",
    "curdb",
    "--athena-table",
    "cur_v2",
    "--athena-workgroup",
    "primary",
    "--athena-output",
    "s3://athena-results/bedrock/",
];

fn cell(v: &str) -> Value {
    json!({"VarCharValue": v})
}

/// Seed one Athena result: a header row then `rows` of (principal, usage type, line type, unit, cost, usage).
async fn seed(emu: &Emulator, bucket: &str, rows: &[(String, &str, &str, &str, f64, f64)]) {
    let mut data = vec![
        json!({"Data": [cell("_col0"), cell("_col1"), cell("_col2"), cell("cost"), cell("tokens")]}),
    ];
    for (p, ut, lt, unit, cost, usage) in rows {
        // What Athena returns: tokens already normalised by the SQL (1K tokens x 1000), empty when none.
        let tokens = if unit.is_empty() {
            String::new()
        } else {
            (usage * 1000.0).to_string()
        };
        data.push(json!({"Data": [cell(bucket), cell(p), cell(lt), cell(&cost.to_string()), cell(&tokens)]}));
        let _ = ut;
    }
    emu.post(
        "/moto-api/static/athena/query-results",
        json!({"results": [{"rows": data, "column_info": []}]}),
    )
    .await;
}

async fn queries(emu: &Emulator) -> Vec<Value> {
    reqwest::get(format!("{}/_emulator/athena/queries", emu.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[derive(Clone, Default)]
struct ProgressLog(Arc<Mutex<Vec<ProgressNotificationParam>>>);

impl ClientHandler for ProgressLog {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _ctx: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.0.lock().unwrap().push(params);
    }
}

#[tokio::test]
async fn groups_by_role_across_result_pages_with_bound_parameters() {
    let emu = Emulator::start();
    let (start, _) = last_month();
    // 2,500 rows: more than two pages of 1,000.
    let rows: Vec<(String, &str, &str, &str, f64, f64)> = (0..2500)
        .map(|i| {
            (
                format!(
                    "arn:aws:sts::111122223333:assumed-role/Role{}/session-{i}",
                    i % 7
                ),
                "",
                "Usage",
                "1K tokens",
                0.25,
                2.0,
            )
        })
        .collect();
    seed(&emu, &start, &rows).await;
    let client = stdio_client(Some(&emu), ARGS, &[]).await;
    let out = ok(&call(&client, "bedrock_spend", json!({"period": "last_month", "source": "athena", "group_by": ["role"], "filter": {"team": ["ml", "o'brien"]}})).await);
    assert_eq!(out["source"], json!("athena"));
    assert_eq!(out["total"], json!(625.0));
    let roles: Vec<(String, f64)> = rows_by(&out, "role");
    assert_eq!(roles.len(), 7);
    assert_eq!(
        roles[0],
        (
            "arn:aws:iam::111122223333:role/Role0".to_string(),
            358.0 * 0.25
        )
    );
    let tokens: f64 = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["usage"].as_f64().unwrap())
        .sum();
    assert_eq!(tokens, 2500.0 * 2.0 * 1000.0);

    let log = queries(&emu).await;
    assert_eq!(log.len(), 1);
    let q = &log[0];
    assert_eq!(
        (
            q["database"].as_str(),
            q["workgroup"].as_str(),
            q["catalog"].as_str()
        ),
        (Some("curdb"), Some("primary"), Some("AwsDataCatalog"))
    );
    assert_eq!(q["output_location"], json!("s3://athena-results/bedrock/"));
    let sql = q["query"].as_str().unwrap();
    for part in [
        "FROM \"curdb\".\"cur_v2\"",
        &format!("\"billing_period\" IN ('{}')", &start[..7]),
        "element_at(tags, 'iamPrincipal/team') IN (?, ?)",
        "line_item_iam_principal",
        "GROUP BY",
    ] {
        assert!(sql.contains(part), "{part} not in {sql}");
    }
    assert!(
        !sql.contains("o'brien") && !sql.contains("'ml'"),
        "values are parameters: {sql}"
    );
    assert_eq!(q["execution_parameters"], json!(["'ml'", "'o''brien'"]));
    assert!(emu.count("GetQueryResults").await >= 3, "three pages read");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn polls_with_progress_and_reports_data_scanned() {
    let emu = Emulator::start();
    let (start, _) = last_month();
    seed(
        &emu,
        &start,
        &[
            (
                "arn:aws:iam::111122223333:user/alice".into(),
                "",
                "Usage",
                "1K tokens",
                12.5,
                1.0,
            ),
            ("".into(), "", "Credit", "", -3.0, 0.0),
        ],
    )
    .await;
    emu.post("/_emulator/athena/outcomes", json!({"outcomes": [{"state": "RUNNING_THEN_SUCCEEDED", "polls": 3, "data_scanned_bytes": 123456789}]})).await;
    let env = aws_env(Some(&emu));
    let transport = TokioChildProcess::new(
        tokio::process::Command::new(crate::common::bin()).configure(|cmd| {
            for (k, _) in std::env::vars() {
                if k.starts_with("AWS_") {
                    cmd.env_remove(k);
                }
            }
            cmd.args(ARGS)
                .arg("serve")
                .envs(env.clone())
                .stderr(std::process::Stdio::null());
        }),
    )
    .unwrap();
    let log = ProgressLog::default();
    let client = log.clone().serve(transport).await.unwrap();
    let args = json!({"period": "last_month", "source": "athena", "group_by": ["principal"]})
        .as_object()
        .cloned()
        .unwrap();
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("bedrock_spend").with_arguments(args),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let ServerResult::CallToolResult(r) = handle.await_response().await.unwrap() else {
        panic!("not a tool result")
    };
    let out = ok(&r);
    assert_eq!(out["data_scanned_bytes"], json!(123456789));
    assert_eq!(out["total"], json!(12.5));
    assert_eq!(
        out["adjustments"],
        json!([{"bucket": start, "line_item_type": "Credit", "amount": -3.0}])
    );
    assert_eq!(out["total_after_adjustments"], json!(9.5));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let progress = log.0.lock().unwrap().clone();
    assert!(
        progress.len() >= 3,
        "a progress notification per poll: {progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[1].progress > w[0].progress),
        "progress increases"
    );
    assert!(emu.count("GetQueryExecution").await >= 4);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn failures_are_reported_with_the_reason() {
    let emu = Emulator::start();
    emu.post(
        "/_emulator/athena/outcomes",
        json!({"outcomes": [
            {"state": "FAILED", "reason": "COLUMN_NOT_FOUND: line 1:62: Column 'line_item_iam_principal' cannot be resolved"},
            {"state": "FAILED", "reason": "Access denied when writing to location: s3://athena-results/bedrock/"},
            {"state": "FAILED", "reason": "TABLE_NOT_FOUND: line 1:200: Table 'awsdatacatalog.curdb.cur_v2' does not exist"},
            {"state": "RUNNING"}
        ]}),
    )
    .await;
    let client = stdio_client(
        Some(&emu),
        &[ARGS, &["--athena-timeout-secs", "1"]].concat(),
        &[],
    )
    .await;
    let ask = json!({"period": "last_month", "source": "athena", "group_by": ["principal"]});
    let e = err(&call(&client, "bedrock_spend", ask.clone()).await);
    assert!(e.contains("INCLUDE_IAM_PRINCIPAL_DATA"), "{e}");
    let e = err(&call(&client, "bedrock_spend", ask.clone()).await);
    assert!(
        e.contains("access denied") && e.contains("s3:PutObject"),
        "{e}"
    );
    let e = err(&call(&client, "bedrock_spend", ask.clone()).await);
    assert!(
        e.contains("TABLE_NOT_FOUND") && e.contains("QueryFAILED"),
        "{e}"
    );
    let e = err(&call(&client, "bedrock_spend", ask).await);
    assert!(
        e.contains("did not finish within 1 s") && e.contains("--athena-timeout-secs"),
        "{e}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = queries(&emu).await;
    assert_eq!(log.len(), 4);
    assert_eq!(
        log[3]["stopped"],
        json!(true),
        "the timed-out query was stopped"
    );
    assert_eq!(log[0]["stopped"], json!(false));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_athena_settings_are_refused_at_startup() {
    let out = crate::common::command()
        .args([
            "--athena-database",
            "cur\"db",
            "--athena-table",
            "t",
            "serve",
        ])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid Athena name"));
    let out = crate::common::command()
        .args(["--athena-database", "db", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("go together"));
}

#[tokio::test]
async fn repeated_questions_let_athena_reuse_a_result() {
    let emu = Emulator::start();
    let (start, _) = last_month();
    let alice = "arn:aws:iam::111122223333:user/alice".to_string();
    seed(
        &emu,
        &start,
        &[(alice, "", "Usage", "1K tokens", 7.25, 1.0)],
    )
    .await;
    emu.post(
        "/_emulator/athena/outcomes",
        json!({"outcomes": [{"state": "SUCCEEDED", "reused_previous_result": true}]}),
    )
    .await;
    let client = stdio_client(Some(&emu), ARGS, &[]).await;
    let last_month = json!({"period": "last_month", "source": "athena", "group_by": ["principal"]});
    let out = ok(&call(&client, "bedrock_spend", last_month.clone()).await);
    assert_eq!(out["total"], json!(7.25));
    assert!(
        out["notes"].to_string().contains(
            "Athena reused the result of the same query from the last 1440 min: no data scanned"
        ),
        "{}",
        out["notes"]
    );
    // A closed month may reuse a result as old as --cache-ttl-closed-secs (1 day), a period
    // reaching into this month one as old as --cache-ttl-open-secs (15 min).
    let this_month = json!({"period": "this_month", "source": "athena", "group_by": ["principal"]});
    let out = ok(&call(&client, "bedrock_spend", this_month).await);
    assert!(
        !out["notes"].to_string().contains("reused"),
        "{}",
        out["notes"]
    );
    let sent: Vec<Value> = queries(&emu)
        .await
        .iter()
        .map(|q| q["result_reuse"].clone())
        .collect();
    let by_age =
        |m: u64| json!({"ResultReuseByAgeConfiguration": {"Enabled": true, "MaxAgeInMinutes": m}});
    assert_eq!(sent, vec![by_age(1440), by_age(15)]);
    client.cancel().await.unwrap();

    // Cache times of 0 turn reuse off: no ResultReuseConfiguration is sent.
    let client = stdio_client(
        Some(&emu),
        &[ARGS, &["--cache-ttl-closed-secs", "0"]].concat(),
        &[],
    )
    .await;
    ok(&call(&client, "bedrock_spend", last_month).await);
    let sent = queries(&emu).await;
    assert_eq!(
        sent.last().unwrap()["result_reuse"],
        Value::Null,
        "{sent:?}"
    );
    client.cancel().await.unwrap();
}
