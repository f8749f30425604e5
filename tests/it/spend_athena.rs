//! `bedrock_spend` on Athena, against the emulator's Athena: moto plus our paging, query log and
//! outcome control, and queries *computed* with DuckDB over a CUR 2.0 export the real binary's
//! `generate-cur` wrote (registered with `POST /_emulator/athena/tables`). Every figure is
//! compared with the generator's truth.json, to the cent: the SQL and parameters we send, result
//! paging, polling with progress, data scanned, failures, stopping, result reuse, and the same
//! answers as the embedded CUR engine on the same export.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::common::*;
use chrono::Datelike;
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

/// First day of last month.
fn last_month_start() -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(&last_month().0, "%Y-%m-%d").unwrap()
}

/// Write a CUR 2.0 export (default overwrite delivery) of `days` days from `start` into `dir`;
/// its truth.json.
fn export(dir: &Path, start: chrono::NaiveDate, days: i64, rows: u64, extra: &[&str]) -> Value {
    let (start, days, rows) = (start.to_string(), days.to_string(), rows.to_string());
    let args = ["--rows", &rows, "--start", &start, "--days", &days];
    generate_cur(dir, &[&args[..], extra].concat())
}

/// Register `export/data` as the Athena table `curdb.cur_v2` (every file under it, as Athena
/// reads an export's location).
async fn register(emu: &Emulator, export: &Path) {
    let location = export.join("data");
    emu.post(
        "/_emulator/athena/tables",
        json!({"database": "curdb", "table": "cur_v2", "location": location.to_str().unwrap()}),
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

/// An answer's adjustments summed per (line item type, month referred to or "").
fn adjustments_of(out: &Value) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for a in out["adjustments"].as_array().unwrap() {
        let k = format!(
            "{}|{}",
            a["line_item_type"].as_str().unwrap(),
            a["refers_to"].as_str().unwrap_or("")
        );
        *m.entry(k).or_insert(0.0) += num(&a["amount"]);
    }
    m
}

/// The truth's adjustment lines billed in `month` (YYYY-MM), keyed as [`adjustments_of`].
fn truth_adjustments(truth: &Value, month: &str) -> Value {
    let mut m = serde_json::Map::new();
    for a in truth["adjustment_lines"].as_array().unwrap() {
        if a["month"] != json!(month) {
            continue;
        }
        let k = format!(
            "{}|{}",
            a["line_item_type"].as_str().unwrap(),
            a["refers_to"].as_str().unwrap_or("")
        );
        let sum = m.get(&k).map(num).unwrap_or(0.0) + num(&a["unblended"]);
        m.insert(k, json!(sum));
    }
    Value::Object(m)
}

/// Usage (tokens) of every row of an answer.
fn tokens_of(out: &Value) -> f64 {
    out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["usage"].as_f64())
        .sum()
}

/// The whole-answer checks of a question over one generated month with group_by principal or
/// role: total, the rows (the `no_principal` row included), adjustments and the total after them.
fn assert_month_matches_truth(out: &Value, key: &str, truth: &Value, month: &str) {
    assert_cents(num(&out["total"]), num(&truth["total_unblended"]), "total");
    let want = match key {
        "principal" => &truth["by_principal"],
        "role" => &truth["by_role"],
        _ => unreachable!(),
    };
    assert_close(
        &by_keys(out, &[key]),
        &with_no_principal(want, truth),
        "(none)",
    );
    assert_cents(
        num(&out["reconciliation"]["no_principal"]),
        num(&truth["no_principal"]),
        "reconciliation.no_principal",
    );
    assert_close(&adjustments_of(out), &truth_adjustments(truth, month), "");
    assert_cents(
        num(&out["total_after_adjustments"]),
        num(&truth["total_after_adjustments"]),
        "total_after_adjustments",
    );
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
    let dir = tempfile::tempdir().unwrap();
    // Enough callers and usage types that the raw groups (principal x usage type x line type)
    // fill more than two pages of 1,000 Athena result rows.
    let truth = export(
        dir.path(),
        last_month_start(),
        28,
        10_000,
        &["--seed", "3", "--principals", "300"],
    );
    let (start, _) = last_month();
    let month = &start[..7];
    let emu = Emulator::start();
    register(&emu, dir.path()).await;
    let client = stdio_client(Some(&emu), ARGS, &[]).await;

    // Every team the export has, a name with a quote that none has, and "" (principals without
    // the tag): every line with a principal, through bound parameters.
    let mut teams: Vec<String> = truth["by_team"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|t| !t.is_empty())
        .cloned()
        .collect();
    assert!(teams.len() >= 2, "{}", truth["by_team"]);
    teams.insert(1, "o'brien".into());
    let mut filter = teams.clone();
    filter.push(String::new());
    let ask = json!({"period": "last_month", "source": "athena", "group_by": ["role", "token_kind"],
        "filter": {"team": filter}, "top_n": 500});
    let first = ok(&call(&client, "bedrock_spend", ask.clone()).await);
    assert!(
        emu.count("GetQueryResults").await >= 3,
        "one answer read three pages of Athena results"
    );
    assert!(
        first["next_cursor"].is_string(),
        "the answer pages too: {}",
        first["row_count"]
    );
    let out = ask_all(&client, ask).await;
    assert_eq!(out["source"], json!("athena"));
    // The filter leaves out the lines without a principal (untagged means a principal without the
    // tag), and keeps every role.
    let with_principal = num(&truth["total_unblended"]) - num(&truth["no_principal"]);
    assert_cents(num(&out["total"]), with_principal, "total");
    let roles: BTreeMap<String, f64> = by_keys(&out, &["role", "token_kind"]).into_iter().fold(
        BTreeMap::new(),
        |mut m, (k, v)| {
            *m.entry(k.split('|').next().unwrap().to_string())
                .or_default() += v;
            m
        },
    );
    assert_close(&roles, &truth["by_role"], "(none)");
    assert!(
        out["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["no_principal"] == json!(false)),
        "no line without a principal passes a team filter"
    );
    // Tokens: every token-priced line has a principal.
    let tokens: f64 = truth["tokens_by_model"]
        .as_object()
        .unwrap()
        .values()
        .map(num)
        .sum();
    assert!(
        (tokens_of(&out) - tokens).abs() / tokens < 1e-9,
        "tokens {} vs {tokens}",
        tokens_of(&out)
    );
    // Of the adjustments only the refund names a caller (credits, tax and discounts are the
    // account's): it passes the filter, the others do not.
    let refund = truth_adjustments(&truth, month)["Refund|"].clone();
    assert_close(&adjustments_of(&out), &json!({ "Refund|": refund }), "");

    let log = queries(&emu).await;
    assert!(!log.is_empty());
    let want_params: Vec<String> = teams
        .iter()
        .map(|t| format!("'{}'", t.replace('\'', "''")))
        .collect();
    for q in &log {
        assert_eq!(
            (
                q["database"].as_str(),
                q["workgroup"].as_str(),
                q["catalog"].as_str()
            ),
            (Some("curdb"), Some("primary"), Some("AwsDataCatalog"))
        );
        assert_eq!(q["output_location"], json!("s3://athena-results/bedrock/"));
        assert_eq!(q["engine"], json!("duckdb"), "computed, not seeded");
        assert_eq!(q["error"], Value::Null);
        assert_eq!(q["execution_parameters"], json!(want_params));
        let sql = q["query"].as_str().unwrap();
        let placeholders = vec!["?"; teams.len()].join(", ");
        for part in [
            "FROM \"curdb\".\"cur_v2\"",
            &format!("\"billing_period\" IN ('{month}')"),
            &format!("element_at(tags, 'iamPrincipal/team') IN ({placeholders})"),
            "line_item_iam_principal",
            "GROUP BY",
        ] {
            assert!(sql.contains(part), "{part} not in {sql}");
        }
        assert!(
            !sql.contains("o'brien") && !sql.contains("o''brien"),
            "values are parameters: {sql}"
        );
        // Athena substituted them as the literals they are.
        assert!(
            q["translated_query"]
                .as_str()
                .unwrap()
                .contains("'o''brien'"),
            "{}",
            q["translated_query"]
        );
    }

    // One team and the name with a quote: that team's spend exactly.
    let team = &teams[0];
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "source": "athena",
        "group_by": ["tag:team"], "filter": {"team": [team, "o'brien"]}}),
    )
    .await);
    assert_cents(num(&out["total"]), num(&truth["by_team"][team]), team);
    assert_close(
        &by_keys(&out, &["tag:team"]),
        &json!({ team.clone(): truth["by_team"][team] }),
        "",
    );
    let log = queries(&emu).await;
    assert_eq!(
        log.last().unwrap()["execution_parameters"],
        json!([format!("'{team}'"), "'o''brien'"])
    );
    client.cancel().await.unwrap();
}

/// Copy the folder `from` (recursively) to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

#[tokio::test]
async fn polls_with_progress_and_reports_data_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let truth = export(dir.path(), last_month_start(), 20, 3_000, &["--seed", "3"]);
    let (start, _) = last_month();
    let month = &start[..7];
    // The table also holds the month before: its partition is not read, and its lines (its
    // refund, its credits) are not counted.
    let older = tempfile::tempdir().unwrap();
    let before = (last_month_start() - chrono::Duration::days(1))
        .with_day(1)
        .unwrap();
    export(
        older.path(),
        before,
        10,
        1_000,
        &["--seed", "4", "--export-name", "older"],
    );
    let older_partition = format!("BILLING_PERIOD={}", &before.to_string()[..7]);
    copy_dir(
        &older.path().join("data").join(&older_partition),
        &dir.path().join("data").join(&older_partition),
    );
    let read: Vec<String> = truth["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            dir.path()
                .join(f.as_str().unwrap())
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        read.iter()
            .all(|f| f.contains(&format!("BILLING_PERIOD={month}/")))
    );
    let scanned: u64 = read
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();

    let emu = Emulator::start();
    register(&emu, dir.path()).await;
    // Three polls before it succeeds; no data_scanned_bytes given: the engine's figure counts.
    emu.post(
        "/_emulator/athena/outcomes",
        json!({"outcomes": [{"state": "RUNNING_THEN_SUCCEEDED", "polls": 3}]}),
    )
    .await;
    let env = aws_env(Some(&emu));
    let transport = TokioChildProcess::new(
        tokio::process::Command::new(crate::common::bin()).configure(|cmd| {
            for (k, _) in std::env::vars() {
                if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
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
    let args = json!({"period": "last_month", "source": "athena", "group_by": ["principal"], "top_n": 500})
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
    assert_eq!(out["source"], json!("athena"));
    assert!(
        out["next_cursor"].is_null(),
        "one page: {}",
        out["row_count"]
    );
    assert_month_matches_truth(&out, "principal", &truth, month);
    assert_eq!(out["data_scanned_bytes"], json!(scanned));
    assert!(
        out["notes"]
            .to_string()
            .contains(&format!("Athena scanned {:.1} MB", scanned as f64 / 1e6)),
        "{}",
        out["notes"]
    );
    let q = &queries(&emu).await[0];
    assert_eq!(q["engine"], json!("duckdb"));
    assert_eq!(q["data_scanned_bytes"], json!(scanned));
    assert_eq!(
        q["scanned_files"],
        json!(read),
        "only last month's partition"
    );
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
    // An export made without IAM principal data: Athena itself fails on the missing column.
    let dir = tempfile::tempdir().unwrap();
    export(
        dir.path(),
        last_month_start(),
        10,
        500,
        &["--no-principal-column"],
    );
    let emu = Emulator::start();
    register(&emu, dir.path()).await;
    let client = stdio_client(
        Some(&emu),
        &[ARGS, &["--athena-timeout-secs", "1"]].concat(),
        &[],
    )
    .await;
    let ask = json!({"period": "last_month", "source": "athena", "group_by": ["principal"]});
    let e = err(&call(&client, "bedrock_spend", ask.clone()).await);
    assert!(e.contains("INCLUDE_IAM_PRINCIPAL_DATA"), "{e}");
    let log = queries(&emu).await;
    let reason = log[0]["error"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("COLUMN_NOT_FOUND") && reason.contains("line_item_iam_principal"),
        "{}",
        log[0]
    );
    // From then on the server knows the table has no principal column: questions that do not
    // need it leave it out (the failures below are Athena's, not the column's).
    let ask = json!({"period": "last_month", "source": "athena", "group_by": ["model"]});

    emu.post(
        "/_emulator/athena/outcomes",
        json!({"outcomes": [
            {"state": "FAILED", "reason": "Access denied when writing to location: s3://athena-results/bedrock/"},
            {"state": "FAILED", "reason": "TABLE_NOT_FOUND: line 1:200: Table 'awsdatacatalog.curdb.cur_v2' does not exist"},
            {"state": "RUNNING"}
        ]}),
    )
    .await;
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
    let e = err(&call(&client, "bedrock_spend", ask.clone()).await);
    assert!(
        e.contains("did not finish within 1 s") && e.contains("--athena-timeout-secs"),
        "{e}"
    );

    // A file Athena cannot read under the table's location.
    let (start, _) = last_month();
    std::fs::write(
        dir.path()
            .join("data")
            .join(format!("BILLING_PERIOD={}", &start[..7]))
            .join("broken.snappy.parquet"),
        b"not parquet",
    )
    .unwrap();
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "source": "athena"}),
    )
    .await);
    assert!(
        e.contains("HIVE_BAD_DATA") && e.contains("QueryFAILED"),
        "{e}"
    );

    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = queries(&emu).await;
    assert_eq!(log.len(), 5);
    assert_eq!(
        log[3]["stopped"],
        json!(true),
        "the timed-out query was stopped"
    );
    assert_eq!(log[0]["stopped"], json!(false));
    assert_eq!(log[4]["stopped"], json!(false));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_export_without_principal_data_answers_tag_questions() {
    let dir = tempfile::tempdir().unwrap();
    let truth = export(
        dir.path(),
        last_month_start(),
        12,
        3_000,
        &["--seed", "5", "--no-principal-column"],
    );
    let emu = Emulator::start();
    register(&emu, dir.path()).await;
    let client = stdio_client(Some(&emu), ARGS, &[]).await;

    // A tag question: Athena first fails on the missing column, the server asks again without
    // it, and says so. Without the column a line without any principal cannot be told from a
    // principal without the tag: both are untagged.
    let ask = json!({"period": "last_month", "source": "athena", "group_by": ["tag:team"],
        "top_n": 500});
    let out = ok(&call(&client, "bedrock_spend", ask.clone()).await);
    assert_cents(num(&out["total"]), num(&truth["total_unblended"]), "total");
    let mut want = truth["by_team"].as_object().unwrap().clone();
    let untagged = num(&want[""]) + num(&truth["no_principal"]);
    want.insert(String::new(), json!(untagged));
    assert!(
        num(&truth["no_principal"]) > 0.0,
        "the generator writes such lines"
    );
    assert_close(
        &by_keys(&out, &["tag:team"]),
        &Value::Object(want),
        "untagged",
    );
    let notes = out["notes"].to_string();
    assert!(
        notes.contains("no line_item_iam_principal column"),
        "{notes}"
    );
    let log = queries(&emu).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("COLUMN_NOT_FOUND")
    );
    assert!(
        !log[1]["query"]
            .as_str()
            .unwrap()
            .contains("line_item_iam_principal")
    );

    // A principal question is refused with how to turn the column on, without a query.
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "source": "athena", "group_by": ["role"]}),
    )
    .await);
    assert!(e.contains("INCLUDE_IAM_PRINCIPAL_DATA"), "{e}");
    // The same tag question again: one query, no failed first attempt.
    let again = ok(&call(&client, "bedrock_spend", ask).await);
    assert_eq!(again["total"], out["total"]);
    assert_eq!(queries(&emu).await.len(), 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_create_new_export_counts_each_month_once() {
    // Create-new delivery keeps every refresh of a month in its own folder under the month's
    // partition, and Athena reads every file under the table's location (the emulator too): an
    // earlier partial refresh sits beside the current one. Only the newest delivery counts.
    let dir = tempfile::tempdir().unwrap();
    let truth = export(
        dir.path(),
        last_month_start(),
        20,
        3_000,
        &["--seed", "6", "--delivery", "create-new"],
    );
    assert!(
        !truth["stale_files"].as_array().unwrap().is_empty(),
        "an earlier refresh is left beside the current one"
    );
    let (start, _) = last_month();
    let month = &start[..7];
    let emu = Emulator::start();
    register(&emu, dir.path()).await;
    let client = stdio_client(Some(&emu), ARGS, &[]).await;
    let out = ask_all(
        &client,
        json!({"period": "last_month", "source": "athena", "group_by": ["principal"], "top_n": 500}),
    )
    .await;
    assert_month_matches_truth(&out, "principal", &truth, month);
    let log = queries(&emu).await;
    assert!(
        log[0]["query"].as_str().unwrap().contains("\"$path\""),
        "{}",
        log[0]["query"]
    );
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
    // Last month and this month up to yesterday: this month's bill has its own adjustments,
    // among them the refund of last month's usage.
    let dir = tempfile::tempdir().unwrap();
    let from = last_month_start();
    let truth = export(
        dir.path(),
        from,
        (today() - from).num_days(),
        4_000,
        &["--seed", "5"],
    );
    let (start, this) = last_month();
    let (last_m, this_m) = (&start[..7], &this[..7]);
    let month_total = |m: &str| truth["by_month"].get(m).map(num).unwrap_or(0.0);
    let emu = Emulator::start();
    register(&emu, dir.path()).await;
    emu.post(
        "/_emulator/athena/outcomes",
        json!({"outcomes": [{"state": "SUCCEEDED", "reused_previous_result": true}]}),
    )
    .await;
    let client = stdio_client(Some(&emu), ARGS, &[]).await;
    let last_month = json!({"period": "last_month", "source": "athena", "group_by": ["principal"], "top_n": 500});
    let out = ask_all(&client, last_month.clone()).await;
    assert_cents(num(&out["total"]), month_total(last_m), "last month");
    assert_close(
        &adjustments_of(&out),
        &truth_adjustments(&truth, last_m),
        "",
    );
    assert!(
        out["notes"].to_string().contains(
            "Athena reused the result of the same query from the last 1440 min: no data scanned"
        ),
        "{}",
        out["notes"]
    );
    // A closed month may reuse a result as old as --cache-ttl-closed-secs (1 day), a period
    // reaching into this month one as old as --cache-ttl-open-secs (15 min).
    let this_month = json!({"period": "this_month", "source": "athena", "group_by": ["principal"], "top_n": 500});
    let out = ask_all(&client, this_month).await;
    assert_cents(num(&out["total"]), month_total(this_m), "this month");
    let this_adjustments = truth_adjustments(&truth, this_m);
    assert_close(&adjustments_of(&out), &this_adjustments, "");
    if month_total(this_m) > 0.0 {
        assert!(
            this_adjustments
                .as_object()
                .unwrap()
                .contains_key(&format!("Refund|{last_m}")),
            "this month's bill refunds last month's usage: {this_adjustments}"
        );
    }
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
    let out = ask_all(&client, last_month).await;
    assert_cents(num(&out["total"]), month_total(last_m), "last month");
    assert!(
        out["notes"].to_string().contains("Athena scanned"),
        "{}",
        out["notes"]
    );
    let sent = queries(&emu).await;
    assert_eq!(
        sent.last().unwrap()["result_reuse"],
        Value::Null,
        "{sent:?}"
    );
    client.cancel().await.unwrap();
}

/// Rows of an answer by (bucket, keys, no_principal): (amount, usage).
fn rows_of(out: &Value, keys: &[&str]) -> BTreeMap<String, (f64, Option<f64>)> {
    let mut m = BTreeMap::new();
    for r in out["rows"].as_array().unwrap() {
        assert_eq!(r["others"], json!(false), "top_n large enough");
        let k = format!(
            "{} {} np={}",
            r["bucket"].as_str().unwrap(),
            keys.iter()
                .map(|k| r["keys"][*k].as_str().unwrap())
                .collect::<Vec<_>>()
                .join("|"),
            r["no_principal"]
        );
        let prev = m.insert(k.clone(), (num(&r["amount"]), r["usage"].as_f64()));
        assert!(prev.is_none(), "row {k} twice");
    }
    m
}

#[tokio::test]
async fn cur_engine_and_athena_agree_on_the_same_export() {
    let dir = tempfile::tempdir().unwrap();
    let truth = export(
        dir.path(),
        last_month_start(),
        28,
        4_000,
        &["--seed", "3", "--backfill-days", "5"],
    );
    let (start, _) = last_month();
    let month = &start[..7];
    let emu = Emulator::start();
    register(&emu, dir.path()).await;
    let args = [ARGS, &["--cur", dir.path().to_str().unwrap()]].concat();
    let client = stdio_client(Some(&emu), &args, &[]).await;
    for group_by in [vec!["role"], vec!["model", "token_kind"]] {
        let ask = |source: &str| json!({"period": "last_month", "source": source, "group_by": group_by, "top_n": 500});
        let cur = ask_all(&client, ask("cur")).await;
        let athena = ask_all(&client, ask("athena")).await;
        assert_eq!(
            (cur["source"].as_str(), athena["source"].as_str()),
            (Some("cur"), Some("athena"))
        );
        let (c, a) = (rows_of(&cur, &group_by), rows_of(&athena, &group_by));
        assert_eq!(
            c.keys().collect::<Vec<_>>(),
            a.keys().collect::<Vec<_>>(),
            "{group_by:?}: the same rows"
        );
        for (k, (amount, usage)) in &c {
            let (a_amount, a_usage) = a[k];
            assert_cents(a_amount, *amount, k);
            match (usage, a_usage) {
                (None, None) => {}
                (Some(u), Some(v)) => assert!(
                    (u - v).abs() <= 1e-9 * u.abs().max(1.0),
                    "{k}: usage {u} vs {v}"
                ),
                _ => panic!("{k}: usage {usage:?} vs {a_usage:?}"),
            }
        }
        assert_cents(num(&athena["total"]), num(&cur["total"]), "total");
        assert_cents(
            num(&athena["total"]),
            num(&truth["total_unblended"]),
            "total",
        );
        assert_close(&adjustments_of(&athena), &adjustments_of_value(&cur), "");
        assert_close(
            &adjustments_of(&athena),
            &truth_adjustments(&truth, month),
            "",
        );
        if group_by == ["role"] {
            assert_month_matches_truth(&athena, "role", &truth, month);
        } else {
            let model = |out: &Value, i: usize| {
                by_keys(out, &group_by)
                    .into_iter()
                    .fold(BTreeMap::new(), |mut m, (k, v)| {
                        *m.entry(k.split('|').nth(i).unwrap().to_string())
                            .or_insert(0.0) += v;
                        m
                    })
            };
            assert_close(&model(&athena, 0), &truth["by_model"], "(none)");
            assert_close(&model(&athena, 1), &truth["by_token_kind"], "");
        }
    }
    client.cancel().await.unwrap();
}

/// [`adjustments_of`] as a JSON map (to compare two answers with [`assert_close`]).
fn adjustments_of_value(out: &Value) -> Value {
    Value::Object(
        adjustments_of(out)
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect(),
    )
}

/// A client that offers the tasks extension (SEP-2663).
#[derive(Clone, Default)]
struct TaskClient;

impl ClientHandler for TaskClient {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let mut c = rmcp::model::ClientConfig::default();
        c.capabilities = rmcp::model::ClientCapabilities::builder()
            .enable_tasks()
            .build();
        c
    }
}

/// Poll a task until it leaves `working`; its final state as JSON.
async fn settle<H: ClientHandler>(
    client: &rmcp::service::RunningService<rmcp::RoleClient, H>,
    id: &str,
) -> Value {
    for _ in 0..200 {
        let got = client
            .get_task(rmcp::model::GetTaskParams::new(id))
            .await
            .unwrap();
        let v = serde_json::to_value(&got).unwrap();
        if v["status"] != json!("working") {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("task {id} still working after 20 s");
}

#[tokio::test]
async fn an_athena_query_runs_as_a_task_to_its_result_and_a_cancelled_one_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let truth = export(dir.path(), last_month_start(), 10, 2_000, &[]);
    let emu = Emulator::start();
    register(&emu, dir.path()).await;
    let ask = json!({"period": "last_month", "source": "athena", "group_by": ["tag:team"]});
    // Today's behaviour for a client without tasks: the answer in the call.
    let plain = stdio_client(Some(&emu), ARGS, &[]).await;
    let want = ok(&call(&plain, "bedrock_spend", ask.clone()).await);
    plain.cancel().await.ok();
    assert!(num(&want["total"]) > 0.0, "{want}");

    let client = TaskClient
        .serve(
            TokioChildProcess::new(tokio::process::Command::new(bin()).configure(|cmd| {
                for (k, _) in std::env::vars() {
                    if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
                        cmd.env_remove(k);
                    }
                }
                cmd.args(ARGS).arg("serve").envs(aws_env(Some(&emu)));
                cmd.stderr(std::process::Stdio::null());
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let started = client
        .call_tool_once(
            CallToolRequestParams::new("bedrock_spend")
                .with_arguments(ask.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let rmcp::model::CallToolResponse::Task(task) = started else {
        panic!("not a task: {started:?}");
    };
    let done = settle(&client, &task.task.task_id).await;
    assert_eq!(done["status"], json!("completed"), "{done}");
    let got = &done["result"]["structuredContent"];
    assert_cents(num(&got["total"]), num(&want["total"]), "task result");
    assert_cents(
        num(&got["total"]),
        num(&truth["total_unblended"]),
        "task result against the generator",
    );
    assert_eq!(got["rows"], want["rows"]);

    // A query that would run forever: cancelled, and Athena is told to stop it.
    emu.post(
        "/_emulator/athena/outcomes",
        json!({"outcomes": [{"state": "RUNNING"}]}),
    )
    .await;
    let before = queries(&emu).await.len();
    let started = client
        .call_tool_once(
            CallToolRequestParams::new("bedrock_spend").with_arguments(
                json!({"period": "this_month", "source": "athena"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .unwrap();
    let rmcp::model::CallToolResponse::Task(task) = started else {
        panic!("not a task: {started:?}");
    };
    // Wait until the query is running on Athena, then cancel.
    for _ in 0..100 {
        if queries(&emu).await.len() > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    client
        .cancel_task(rmcp::model::CancelTaskParams::new(
            task.task.task_id.clone(),
        ))
        .await
        .unwrap();
    let done = settle(&client, &task.task.task_id).await;
    assert_eq!(done["status"], json!("cancelled"), "{done}");
    let mut stopped = false;
    for _ in 0..50 {
        let log = queries(&emu).await;
        if log.last().is_some_and(|q| q["stopped"] == json!(true)) {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        stopped,
        "the cancelled task's Athena query was not stopped: {:?}",
        queries(&emu).await
    );
    // At most 4 working tasks per caller: a 5th call is refused, and says why.
    emu.post(
        "/_emulator/athena/outcomes",
        json!({"outcomes": [{"state": "RUNNING"}, {"state": "RUNNING"}, {"state": "RUNNING"}, {"state": "RUNNING"}]}),
    )
    .await;
    let mut working = vec![];
    for day in 1..=5 {
        let args = json!({"period": {"start": format!("{}-{day:02}", &last_month().0[..7]), "end": last_month().1},
                          "source": "athena"});
        let r = client
            .call_tool_once(
                CallToolRequestParams::new("bedrock_spend")
                    .with_arguments(args.as_object().unwrap().clone()),
            )
            .await
            .unwrap();
        match r {
            rmcp::model::CallToolResponse::Task(t) if day <= 4 => working.push(t.task.task_id),
            rmcp::model::CallToolResponse::Complete(r) if day == 5 => {
                assert_eq!(r.is_error, Some(true));
                assert!(
                    text(&r).contains("4 tasks of this caller are still working"),
                    "{}",
                    text(&r)
                );
            }
            other => panic!("call {day}: {other:?}"),
        }
    }
    for id in &working {
        client
            .cancel_task(rmcp::model::CancelTaskParams::new(id.clone()))
            .await
            .unwrap();
        assert_eq!(settle(&client, id).await["status"], json!("cancelled"));
    }
    // Someone else's (or a made-up) task id is not there.
    assert!(
        client
            .get_task(rmcp::model::GetTaskParams::new("not-a-task"))
            .await
            .is_err()
    );
    client.cancel().await.ok();
}
