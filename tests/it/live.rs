//! The live layer: Bedrock model invocation logs, written by the generator for the same calls as
//! its CUR lines (and for days not billed yet), priced by the server from the emulator's Price
//! List (the generator's catalogue as Price List products), and compared with the generator's
//! own sums of the CUR lines it logged (truth.json `logs`): no figure here comes from the server's
//! price engine or query path.
//!
//! The server's clock is pinned (BEDROCK_COST_MCP_NOW), so "the days not billed yet" and "this
//! month" are the same on any calendar day.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use serde_json::{Value, json};

/// The server's now: billed 2026-02-20..2026-02-28, logged but not billed 2026-03-01..02.
const NOW: &str = "2026-03-03T12:00:00Z";

fn generate(dir: &Path) -> Value {
    generate_cur(
        dir,
        &[
            "--rows",
            "6000",
            "--start",
            "2026-02-20",
            "--days",
            "11",
            "--principals",
            "25",
            "--write-invocation-logs",
            "--logs-only-days",
            "2",
        ],
    )
}

async fn emulator_with_prices(dir: &Path) -> Emulator {
    let emu = Emulator::start();
    let products: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pricelist.json")).unwrap())
            .unwrap();
    emu.post("/_emulator/pricing/products", products).await;
    emu
}

/// The server on the pinned clock, reading the generated logs in `dir` (and its CUR export with
/// `with_cur`).
async fn live_server(emu: &Emulator, dir: &Path, with_cur: bool) -> Client {
    let logs = dir.join("invocation-logs");
    let mut args = vec!["--invocation-logs", logs.to_str().unwrap()];
    if with_cur {
        args.extend(["--cur", dir.to_str().unwrap()]);
    }
    stdio_client(Some(emu), &args, &[("BEDROCK_COST_MCP_NOW", NOW)]).await
}

fn cents(v: &Value) -> i64 {
    (num(v) * 100.0).round() as i64
}

fn map_of(v: &Value) -> BTreeMap<String, f64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), num(v)))
        .collect()
}

#[tokio::test]
async fn logs_reconcile_with_the_bill_and_fill_the_days_not_billed_yet() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(dir.path());
    let logs = &truth["logs"];
    assert!(num(&logs["unbilled_total"]) > 1.0 && num(&logs["billed_total"]) > 100.0);
    let emu = emulator_with_prices(dir.path()).await;
    let client = live_server(&emu, dir.path(), true).await;

    // The default source answers the billed days from CUR, adds the unbilled days from the
    // logs apart, and compares logs with bill for the billed days.
    let out = ask_all(
        &client,
        json!({"period": {"start": "2026-02-20", "end": "2026-03-04"}, "group_by": ["principal"],
               "top_n": 500, "live_vs_bill": true}),
    )
    .await;
    assert_eq!(out["source"], json!("cur"));
    assert_cents(
        num(&out["total"]),
        num(&truth["total_unblended"]),
        "billed total",
    );
    let unbilled = &out["unbilled_estimate"];
    assert_eq!(
        unbilled["from"],
        json!("2026-03-01T00:00:00Z"),
        "{unbilled}"
    );
    assert_cents(
        num(&unbilled["total"]),
        num(&logs["unbilled_total"]),
        "unbilled estimate",
    );
    let by_principal: BTreeMap<String, f64> = unbilled["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["keys"]["principal"].as_str().unwrap().to_string(),
                num(&r["amount"]),
            )
        })
        .collect();
    let want = map_of(&logs["unbilled_by_principal"]);
    assert_eq!(
        by_principal.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (p, w) in &want {
        assert_cents(by_principal[p], *w, p);
    }
    assert!(
        out["newest_log_record"].is_null(),
        "the billed answer itself reads no log"
    );
    assert!(
        unbilled["newest_log_record"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-02T"),
        "{unbilled}"
    );

    // Logs against the bill, to the cent, per principal and model: the estimate equals the
    // bill of exactly the logged lines; the billed side is the CUR's whole figure.
    let cmp = &out["live_vs_bill"];
    assert_eq!(
        cmp["period"],
        json!({"start": "2026-02-20", "end": "2026-03-01"})
    );
    assert_cents(
        num(&cmp["estimate_total"]),
        num(&logs["billed_total"]),
        "estimate total",
    );
    let logged = map_of(&logs["billed_by_principal_model"]);
    let billed = map_of(&truth["by_principal_model"]);
    let rows = cmp["rows"].as_array().unwrap();
    assert_eq!(cmp["row_count"].as_u64().unwrap() as usize, rows.len());
    let mut seen = 0;
    for r in rows {
        let key = format!(
            "{}|{}",
            r["principal"].as_str().unwrap(),
            r["model"].as_str().unwrap()
        );
        if r["principal"] == json!("no_principal") || r["model"] == json!("(none)") {
            continue;
        }
        seen += 1;
        assert_eq!(
            cents(&r["estimate"]),
            (logged.get(&key).copied().unwrap_or(0.0) * 100.0).round() as i64,
            "estimate {key}"
        );
        assert_eq!(
            cents(&r["billed"]),
            (billed.get(&key).copied().unwrap_or(0.0) * 100.0).round() as i64,
            "billed {key}"
        );
        if num(&r["billed"]) > 0.0 {
            let pct = (num(&r["estimate"]) - num(&r["billed"])) / num(&r["billed"]) * 100.0;
            assert!(
                (num(&r["error_percent"]) - pct).abs() < 0.01,
                "{r}: error_percent"
            );
        }
    }
    assert_eq!(
        seen,
        logged.len().max(seen),
        "every logged pair is compared"
    );
    for key in logged.keys() {
        let (p, m) = key.split_once('|').unwrap();
        assert!(
            rows.iter()
                .any(|r| r["principal"] == json!(p) && r["model"] == json!(m)),
            "{key} missing from live_vs_bill"
        );
    }

    // Logs only: the unbilled days by day.
    let live = ask_all(
        &client,
        json!({"source": "live", "period": {"start": "2026-03-01", "end": "2026-03-03"},
               "group_by": ["day"], "granularity": "daily"}),
    )
    .await;
    assert_eq!(live["source"], json!("live"));
    assert!(
        live["newest_log_record"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-02T")
    );
    let days: BTreeMap<String, f64> = live["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["keys"]["day"].as_str().unwrap().to_string(),
                num(&r["amount"]),
            )
        })
        .collect();
    let want = map_of(&logs["unbilled_by_day"]);
    assert_eq!(days.len(), want.len());
    for (d, w) in &want {
        assert_cents(days[d], *w, d);
    }
    // The logs cannot say which billing service or usage type a call is.
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"source": "live", "group_by": ["usage_type"]}),
    )
    .await);
    assert!(e.contains("cannot group by usage_type"), "{e}");
    client.cancel().await.ok();
}

#[tokio::test]
async fn logs_in_s3_are_read_like_the_cur_export_and_bad_records_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(dir.path());
    let emu = emulator_with_prices(dir.path()).await;
    // A broken object and a record without a caller beside Bedrock's: counted, named, skipped.
    let bad = dir.path().join(
        "invocation-logs/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/03/02/23",
    );
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("broken.json"),
        "{\"schemaType\":\"ModelInvocationLog\",\"timestamp\":\"2026-03-02T23:00:00Z\",\"accountId\":\"123456789012\",\"region\":\"us-east-1\",\"requestId\":\"req-without-identity\",\"operation\":\"Converse\",\"modelId\":\"anthropic.claude-sonnet-4-6\",\"input\":{\"inputTokenCount\":5},\"output\":{\"outputTokenCount\":5}}\nnot json at all\n",
    )
    .unwrap();
    emu.upload_dir(
        "bedrock-logs",
        "model-logs",
        &dir.path().join("invocation-logs"),
    )
    .await;
    let client = stdio_client(
        Some(&emu),
        &["--invocation-logs", "s3://bedrock-logs/model-logs"],
        &[("BEDROCK_COST_MCP_NOW", NOW)],
    )
    .await;
    let out = ask_all(
        &client,
        json!({"source": "live", "period": {"start": "2026-03-01", "end": "2026-03-03"},
               "group_by": ["principal"], "top_n": 500}),
    )
    .await;
    assert_cents(
        num(&out["total"]),
        num(&truth["logs"]["unbilled_total"]),
        "S3 logs",
    );
    let notes = out["notes"].to_string();
    assert!(
        notes.contains("2 malformed records skipped") && notes.contains("req-without-identity"),
        "{notes}"
    );
    client.cancel().await.ok();
}

#[tokio::test]
async fn check_budget_denies_on_logged_spend_the_bill_does_not_show_yet() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(dir.path());
    let emu = emulator_with_prices(dir.path()).await;
    // The caller with the most unbilled (March) spend; its budget is half of that.
    let (who, logged) = map_of(&truth["logs"]["unbilled_by_principal"])
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(logged > 0.5, "{who}: {logged}");
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "warn_percent = 80\ndeny_percent = 100\n[[budgets]]\nprincipal = \"{who}\"\nmonthly_usd = {:.2}\n",
            logged / 2.0
        ),
    )
    .unwrap();
    let check = json!({"who": who, "model": "anthropic.claude-sonnet-4-6", "input_tokens": 1000, "output_tokens": 100});
    let base = [
        "--cur",
        dir.path().to_str().unwrap(),
        "--budget-policy",
        policy.to_str().unwrap(),
    ];
    // Without the logs: March is not billed yet, so the check allows.
    let blind = stdio_client(Some(&emu), &base, &[("BEDROCK_COST_MCP_NOW", NOW)]).await;
    let out = ok(&call(&blind, "check_budget", check.clone()).await);
    assert_eq!(out["verdict"], json!("allow"), "{out}");
    assert_eq!(out["spent"], json!(0.0));
    blind.cancel().await.ok();
    // With them: the logged spend since the last billed day crosses the budget.
    let logs_dir = dir.path().join("invocation-logs");
    let args = [
        &base[..],
        &["--invocation-logs", logs_dir.to_str().unwrap()],
    ]
    .concat();
    let client = stdio_client(Some(&emu), &args, &[("BEDROCK_COST_MCP_NOW", NOW)]).await;
    let out = ok(&call(&client, "check_budget", check).await);
    assert_eq!(out["verdict"], json!("deny"), "{out}");
    assert_eq!(out["spent"], json!(0.0), "{out}");
    assert_cents(num(&out["logged"]), logged, "logged spend");
    assert!(
        out["reasons"]
            .to_string()
            .contains("logged since 2026-03-01 00:00 UTC"),
        "{out}"
    );
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_scoped_caller_sees_only_its_own_principals_in_live_answers() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(dir.path());
    let emu = emulator_with_prices(dir.path()).await;
    let unbilled = map_of(&truth["logs"]["unbilled_by_principal"]);
    // A user the logs name, tagged team=ml-platform in IAM: a tag-scoped caller's live answer
    // follows IAM's current tags (the logs carry none).
    let (user_arn, user_spend) = unbilled
        .iter()
        .find(|(p, _)| p.contains(":user/"))
        .map(|(p, v)| (p.clone(), *v))
        .expect("a user in the logs");
    let user = user_arn.rsplit('/').next().unwrap().to_string();
    let iam = aws_sdk_iam::Client::new(&sdk_config(&emu).await);
    iam.create_user()
        .user_name(&user)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("ml-platform")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // A principal-scoped caller: one session ARN.
    let (session_arn, session_spend) = unbilled
        .iter()
        .filter(|(p, _)| p.contains(":assumed-role/"))
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(p, v)| (p.clone(), *v))
        .expect("a session in the logs");
    let (one, team) = ("tok-live-one-81aa", "tok-live-team-93bc");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"one\"\nsha256 = \"{}\"\nvisibility = {{ principals = [\"{session_arn}\"] }}\n\n[[token]]\nname = \"team\"\nsha256 = \"{}\"\nvisibility = {{ tag_key = \"team\", tag_values = [\"ml-platform\"] }}\n",
            crate::http_auth::hash(one),
            crate::http_auth::hash(team)
        ),
    )
    .unwrap();
    let logs_dir = dir.path().join("invocation-logs");
    let server = HttpServer::start(
        Some(&emu),
        &["--invocation-logs", logs_dir.to_str().unwrap()],
        &[
            ("BEDROCK_COST_MCP_NOW", NOW),
            ("BEDROCK_COST_MCP_AUTH_TOKENS", tokens.to_str().unwrap()),
        ],
    );
    let ask = json!({"source": "live", "period": {"start": "2026-03-01", "end": "2026-03-03"},
                     "group_by": ["principal"], "top_n": 500});
    for (token, arn, spend) in [
        (one, &session_arn, session_spend),
        (team, &user_arn, user_spend),
    ] {
        let client = server.client_with_token(token).await.unwrap();
        let out = ask_all(&client, ask.clone()).await;
        let rows = out["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{token}: {out}");
        assert_eq!(rows[0]["keys"]["principal"], json!(arn));
        assert_cents(num(&out["total"]), spend, token);
        client.cancel().await.ok();
    }
    // The default answer (Cost Explorer here, which has nothing yet): the unbilled estimate
    // from the logs holds the team caller's principals only.
    let client = server.client_with_token(team).await.unwrap();
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": "2026-03-01", "end": "2026-03-03"}}),
    )
    .await);
    assert_eq!(out["source"], json!("cost_explorer"));
    assert_cents(
        num(&out["unbilled_estimate"]["total"]),
        user_spend,
        "team caller's unbilled estimate",
    );
    client.cancel().await.ok();
    // Asking for someone else's principal is refused, not answered empty.
    let client = server.client_with_token(one).await.unwrap();
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"source": "live", "filter": {"principal": user_arn}}),
    )
    .await);
    assert!(e.contains("not visible") || e.contains("may see"), "{e}");
    client.cancel().await.ok();
}

/// Every record of the generated logs, as (timestamp ms, line), oldest first.
fn records(dir: &Path) -> Vec<(i64, String)> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut stack = vec![dir.join("invocation-logs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                let mut text = String::new();
                flate2::read::MultiGzDecoder::new(std::fs::File::open(&p).unwrap())
                    .read_to_string(&mut text)
                    .unwrap();
                for line in text.lines() {
                    let v: Value = serde_json::from_str(line).unwrap();
                    let at = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap())
                        .unwrap()
                        .timestamp_millis();
                    out.push((at, line.to_string()));
                }
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn logs_insights_aggregates_a_log_group_on_the_service_side_and_keeps_its_answer() {
    // CloudWatch Logs takes events of the last 14 days only: these logs are dated from the
    // tests' calendar (yesterday is logged, not billed).
    let dir = tempfile::tempdir().unwrap();
    let start = (today() - chrono::Duration::days(2)).to_string();
    let truth = generate_cur(
        dir.path(),
        &[
            "--rows",
            "2500",
            "--start",
            &start,
            "--days",
            "2",
            "--principals",
            "20",
            "--write-invocation-logs",
            "--logs-only-days",
            "1",
        ],
    );
    let emu = emulator_with_prices(dir.path()).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config(&emu).await);
    let group = "/aws/bedrock/modelinvocations";
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name("aws/bedrock/modelinvocations")
        .send()
        .await
        .unwrap();
    let all = records(dir.path());
    assert_eq!(all.len() as u64, truth["logs"]["records"].as_u64().unwrap());
    for batch in all.chunks(2000) {
        let out = logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name("aws/bedrock/modelinvocations")
            .set_log_events(Some(
                batch
                    .iter()
                    .map(|(at, line)| {
                        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                            .timestamp(*at)
                            .message(line)
                            .build()
                            .unwrap()
                    })
                    .collect(),
            ))
            .send()
            .await
            .unwrap();
        assert!(out.rejected_log_events_info().is_none(), "{out:?}");
    }
    let client = stdio_client(
        Some(&emu),
        &[
            "--invocation-log-group",
            group,
            "--invocation-log-max-queries-per-hour",
            "2",
        ],
        &[],
    )
    .await;
    let yesterday = (today() - chrono::Duration::days(1)).to_string();
    let ask = json!({"source": "live", "period": {"start": yesterday, "end": today().to_string()},
                     "group_by": ["principal"], "top_n": 500});
    let out = ask_all(&client, ask.clone()).await;
    assert_cents(
        num(&out["total"]),
        num(&truth["logs"]["unbilled_total"]),
        "Logs Insights",
    );
    for (p, want) in map_of(&truth["logs"]["unbilled_by_principal"]) {
        let got = out["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["keys"]["principal"] == json!(p))
            .map_or(0.0, |r| num(&r["amount"]));
        assert_cents(got, want, &p);
    }
    assert!(num(&out["data_scanned_bytes"]) > 0.0, "{out}");
    assert!(
        out["newest_log_record"]
            .as_str()
            .unwrap()
            .starts_with(&yesterday)
    );
    let queries: Vec<Value> = reqwest::get(format!("{}/_emulator/logs/queries", emu.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert!(
        queries[0]["polls"].as_u64().unwrap() >= 2,
        "polled until complete"
    );
    // Asked again: the kept answer, no second query.
    let again = ask_all(&client, ask.clone()).await;
    assert_eq!(again["total"], out["total"]);
    assert!(
        again["notes"].to_string().contains("kept from"),
        "{}",
        again["notes"]
    );
    let queries: Vec<Value> = reqwest::get(format!("{}/_emulator/logs/queries", emu.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queries.len(), 1);
    // Two more windows: the second passes the hourly cap of 2 queries.
    let day_before = (today() - chrono::Duration::days(2)).to_string();
    ok(&call(
        &client,
        "bedrock_spend",
        json!({"source": "live", "period": {"start": day_before, "end": yesterday}}),
    )
    .await);
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"source": "live", "period": {"start": day_before, "end": today().to_string()}}),
    )
    .await);
    assert!(e.contains("Logs Insights query cap reached"), "{e}");
    client.cancel().await.ok();
    // A caller refused Logs Insights (logs:StartQuery denied) reads the records one by one
    // with FilterLogEvents: the same figures.
    emu.fault("StartQuery", "AccessDeniedException", 1).await;
    let client = stdio_client(Some(&emu), &["--invocation-log-group", group], &[]).await;
    let filtered = ask_all(&client, ask.clone()).await;
    assert_cents(
        num(&filtered["total"]),
        num(&truth["logs"]["unbilled_total"]),
        "FilterLogEvents",
    );
    let notes = filtered["notes"].to_string();
    assert!(
        notes.contains("read with FilterLogEvents") && notes.contains("AccessDeniedException"),
        "{notes}"
    );
    let queries: Vec<Value> = reqwest::get(format!("{}/_emulator/logs/queries", emu.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        queries.len(),
        2,
        "no Insights query ran for the refused caller"
    );
    client.cancel().await.ok();
    // A group that is not there (or in another Region) says so.
    let client = stdio_client(Some(&emu), &["--invocation-log-group", "/not/here"], &[]).await;
    let e = err(&call(&client, "bedrock_spend", json!({"source": "live"})).await);
    assert!(e.contains("does not exist in us-east-1"), "{e}");
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_runaway_loop_is_flagged_within_the_hour_from_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(dir.path());
    let emu = emulator_with_prices(dir.path()).await;
    // The session with the least logged spend: its hours are mostly empty, so a burst stands out.
    let (who, _) = map_of(&truth["logs"]["unbilled_by_principal"])
        .into_iter()
        .filter(|(p, _)| p.contains(":assumed-role/"))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    let account = who.split(':').nth(4).unwrap().to_string();
    let role = {
        let (head, rest) = who.split_once(":assumed-role/").unwrap();
        let name = rest.split('/').next().unwrap();
        format!("{}:role/{name}", head.replace(":sts:", ":iam:"))
    };
    // 120 calls of 100,000 input tokens each between 11:00 and 12:00, the hour before now.
    let hour_dir = dir.path().join(format!(
        "invocation-logs/AWSLogs/{account}/BedrockModelInvocationLogs/us-east-1/2026/03/03/11"
    ));
    std::fs::create_dir_all(&hour_dir).unwrap();
    let mut text = String::new();
    for i in 0..120 {
        text.push_str(&format!(
            r#"{{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"2026-03-03T11:{:02}:{:02}Z","accountId":"{account}","identity":{{"arn":"{who}"}},"region":"us-east-1","requestId":"loop-{i}","operation":"Converse","modelId":"anthropic.claude-sonnet-4-6","input":{{"inputTokenCount":100000}},"output":{{"outputTokenCount":0}}}}"#,
            i / 2,
            (i % 2) * 30
        ));
        text.push('\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    std::fs::write(hour_dir.join("loop.json.gz"), gz.finish().unwrap()).unwrap();
    let client = live_server(&emu, dir.path(), false).await;
    let out = ok(&call(&client, "spend_anomalies", json!({"top_n": 100})).await);
    let hourly: Vec<&Value> = out["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["source"] == json!("live_hourly"))
        .collect();
    let found = hourly
        .iter()
        .find(|a| a["who"] == json!(role))
        .unwrap_or_else(|| panic!("{role} not flagged: {out}"));
    assert_eq!(found["day"], json!("2026-03-03T11:00:00Z"));
    // 12,000,000 input tokens of Claude Sonnet 4.6 in-Region at $3.30 per million (the
    // catalogue's regional price: the $3 global price plus 10%): $39.60.
    assert_cents(num(&found["actual"]), 39.60, "the loop's hour");
    assert_eq!(found["calls_per_minute"], json!(2.0));
    assert_eq!(found["drivers"][0]["model"], json!("Claude Sonnet 4.6"));
    assert!(
        out["notes"]
            .to_string()
            .contains("hourly from invocation logs"),
        "{out}"
    );
    client.cancel().await.ok();
}

#[tokio::test]
async fn a_role_called_under_many_session_names_is_named_a_shared_gateway() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let emu = emulator_with_prices(dir.path()).await;
    // A gateway role in IAM whose trust policy does not allow session tags, called by 12
    // end users under their own session names on 2026-03-02.
    let iam = aws_sdk_iam::Client::new(&sdk_config(&emu).await);
    iam.create_role()
        .role_name("ChatGatewayRole")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let hour_dir = dir.path().join(
        "invocation-logs/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/03/02/09",
    );
    std::fs::create_dir_all(&hour_dir).unwrap();
    let mut text = String::new();
    for user in 0..12 {
        text.push_str(&format!(
            r#"{{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"2026-03-02T09:{user:02}:00Z","accountId":"123456789012","identity":{{"arn":"arn:aws:sts::123456789012:assumed-role/ChatGatewayRole/user-{user}"}},"region":"us-east-1","requestId":"gw-{user}","operation":"Converse","modelId":"anthropic.claude-sonnet-4-6","input":{{"inputTokenCount":{}}},"output":{{"outputTokenCount":0}}}}"#,
            1000 * (user + 1)
        ));
        text.push('\n');
    }
    // An AgentCore Runtime's execution role: one session per runtime session, named by
    // AgentCore itself.
    for s in 0..10 {
        text.push_str(&format!(
            r#"{{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"2026-03-02T09:{s:02}:30Z","accountId":"123456789012","identity":{{"arn":"arn:aws:sts::123456789012:assumed-role/AgentRuntimeRole/BedrockAgentCore-{s:08x}"}},"region":"us-east-1","requestId":"ac-{s}","operation":"Converse","modelId":"anthropic.claude-sonnet-4-6","input":{{"inputTokenCount":1000}},"output":{{"outputTokenCount":0}}}}"#
        ));
        text.push('\n');
    }
    std::fs::write(hour_dir.join("gateway.json"), text).unwrap();
    let client = live_server(&emu, dir.path(), true).await;
    let out = ok(&call(
        &client,
        "untagged_principals",
        json!({"include_no_spend": true, "required_keys": ["team"]}),
    )
    .await);
    let gateways = out["shared_gateways"].as_array().expect("shared_gateways");
    let gw = gateways
        .iter()
        .find(|g| g["role"] == json!("arn:aws:iam::123456789012:role/ChatGatewayRole"))
        .unwrap_or_else(|| panic!("{gateways:?}"));
    assert_eq!(gw["sessions"], json!(12));
    assert_eq!(gw["tag_session_allowed"], json!(false));
    // 78,000 input tokens (1,000 + 2,000 + ... + 12,000) at $3.30 per million: $0.2574.
    assert!((num(&gw["spend"]) - 0.2574).abs() < 1e-9, "{gw}");
    assert_eq!(gw["top_sessions"][0]["session"], json!("user-11"));
    assert!(
        gw["recommendation"]
            .as_str()
            .unwrap()
            .contains("sts:TagSession")
    );
    assert!(gw.get("agentcore_runtime").is_none(), "{gw}");
    let runtime = gateways
        .iter()
        .find(|g| g["role"] == json!("arn:aws:iam::123456789012:role/AgentRuntimeRole"))
        .unwrap_or_else(|| panic!("{gateways:?}"));
    assert_eq!(runtime["agentcore_runtime"], json!(true));
    assert!(
        runtime["recommendation"]
            .as_str()
            .unwrap()
            .contains("its own execution role"),
        "{runtime}"
    );
    // No role of the generated organisation has that many sessions in a week.
    assert_eq!(gateways.len(), 2, "{gateways:?}");
    client.cancel().await.ok();
}

#[tokio::test]
async fn calls_through_an_application_inference_profile_are_priced_as_its_model() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let emu = emulator_with_prices(dir.path()).await;
    let profile = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/chat7x2k";
    let unknown = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/gone0000";
    emu.post(
        "/_emulator/bedrock/inference-profiles",
        json!({"profiles": [{"arn": profile, "name": "support-chat",
            "models": ["arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-6"],
            "tags": {"team": "support", "app": "chat"}}]}),
    )
    .await;
    let hour_dir = dir.path().join(
        "invocation-logs/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/03/03/05",
    );
    std::fs::create_dir_all(&hour_dir).unwrap();
    let mut text = String::new();
    for (i, model) in [profile; 10].iter().chain([unknown; 2].iter()).enumerate() {
        text.push_str(&format!(
            r#"{{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"2026-03-03T05:{i:02}:00Z","accountId":"123456789012","identity":{{"arn":"arn:aws:iam::123456789012:user/profile-user"}},"region":"us-east-1","requestId":"ap-{i}","operation":"Converse","modelId":"{model}","input":{{"inputTokenCount":100000}},"output":{{"outputTokenCount":0}}}}"#
        ));
        text.push('\n');
    }
    std::fs::write(hour_dir.join("profiles.json"), text).unwrap();
    let client = live_server(&emu, dir.path(), false).await;
    let out = ask_all(
        &client,
        json!({"source": "live", "period": {"start": "2026-03-03", "end": "2026-03-04"},
               "group_by": ["model"], "filter": {"principal": "arn:aws:iam::123456789012:user/profile-user"}}),
    )
    .await;
    // 1,000,000 input tokens of Claude Sonnet 4.6 in-Region at $3.30 per million.
    assert_cents(num(&out["total"]), 3.30, "profile calls");
    assert_eq!(out["rows"][0]["keys"]["model"], json!("Claude Sonnet 4.6"));
    let notes = out["notes"].to_string();
    assert!(
        notes.contains("support-chat") && notes.contains("routes to anthropic.claude-sonnet-4-6"),
        "{notes}"
    );
    assert!(
        notes.contains(&format!(
            "2 calls (200000 tokens) of {unknown} are not priced"
        )),
        "{notes}"
    );
    // Grouped by the profile: its calls apart from the direct ones, its tags beside them.
    let by = ask_all(
        &client,
        json!({"source": "live", "period": {"start": "2026-03-03", "end": "2026-03-04"},
               "group_by": ["inference_profile"], "filter": {"principal": "arn:aws:iam::123456789012:user/profile-user"}}),
    )
    .await;
    let row = by["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["keys"]["inference_profile"] == json!(profile))
        .unwrap_or_else(|| panic!("{by}"));
    assert_cents(num(&row["amount"]), 3.30, "the profile's row");
    let notes = by["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "application inference profile support-chat ({profile}) tags: app=chat, team=support"
        )),
        "{notes}"
    );
    // The generated (direct and system-profile) calls: a system profile is named by its id,
    // a direct call has no profile.
    let all = ask_all(
        &client,
        json!({"source": "live", "period": {"start": "2026-03-01", "end": "2026-03-03"},
               "group_by": ["inference_profile"], "top_n": 500}),
    )
    .await;
    let keys: Vec<&str> = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["keys"]["inference_profile"].as_str())
        .collect();
    assert!(keys.contains(&"(none)"), "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("us.") || k.starts_with("global.")),
        "{keys:?}"
    );
    client.cancel().await.ok();
    // A bill source cannot answer it, and says why.
    let client = live_server(&emu, dir.path(), true).await;
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"source": "cur", "period": {"start": "2026-03-01", "end": "2026-03-03"},
               "group_by": ["inference_profile"]}),
    )
    .await);
    assert!(
        e.contains("answered from model invocation logs only"),
        "{e}"
    );
    client.cancel().await.ok();
}
