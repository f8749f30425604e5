//! `bedrock_spend` on CUR 2.0 through the embedded engine: every figure is
//! compared with the generator's known truth (sums of exactly the values it
//! wrote), to the cent. Local folders and S3 (the emulator's) are covered.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use serde_json::{Value, json};

/// Generate an export with the real binary; returns its truth.json.
fn generate(dir: &Path, rows: u64, extra: &[&str]) -> Value {
    let (rows, start) = (rows.to_string(), period().0);
    let args = ["--rows", &rows, "--start", &start, "--days", "45"];
    generate_cur(dir, &[&args[..], extra].concat())
}

/// The generated range: 45 days from the first of last month.
fn period() -> (String, String) {
    let (start, _) = last_month();
    let s = chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d").unwrap();
    (start, (s + chrono::Duration::days(45)).to_string())
}

fn whole() -> Value {
    let (start, end) = period();
    json!({"start": start, "end": end})
}

#[tokio::test]
async fn every_figure_matches_the_generators_truth() {
    let dir = tempfile::tempdir().unwrap();
    // A create-new export (an earlier partial refresh of each month beside the current one, and
    // manifests naming the current files), whose first 10 days predate the product-metadata
    // backfill.
    let truth = generate(
        dir.path(),
        30_000,
        &["--delivery", "create-new", "--backfill-days", "10"],
    );
    assert!(!truth["stale_files"].as_array().unwrap().is_empty());
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let ask = |group_by: Value| json!({"period": whole(), "group_by": group_by, "top_n": 500});

    let out = ask_all(&client, ask(json!(["principal"]))).await;
    assert_eq!(out["source"], json!("cur"));
    let files = truth["files"].as_array().unwrap().len();
    assert!(
        out["notes"]
            .to_string()
            .contains(&format!("({files} Parquet files, last delivered")),
        "{}",
        out["notes"]
    );
    assert!(
        (out["total"].as_f64().unwrap() - truth["total_unblended"].as_f64().unwrap()).abs() < 0.01
    );
    assert!(
        out["notes"].to_string().contains("manifest lists"),
        "{}",
        out["notes"]
    );
    assert_close(
        &by_keys(&out, &["principal"]),
        &with_no_principal(&truth["by_principal"], &truth),
        "(none)",
    );
    let rec = &out["reconciliation"];
    assert!(
        (rec["no_principal"].as_f64().unwrap() - truth["no_principal"].as_f64().unwrap()).abs()
            < 0.01
    );
    assert_eq!(
        rec["untagged"],
        json!(0.0),
        "no tag grouped: nothing is untagged"
    );
    let adjustments: BTreeMap<String, f64> =
        out["adjustments"]
            .as_array()
            .unwrap()
            .iter()
            .fold(BTreeMap::new(), |mut m, a| {
                *m.entry(a["line_item_type"].as_str().unwrap().to_string())
                    .or_insert(0.0) += a["amount"].as_f64().unwrap();
                m
            });
    assert_close(&adjustments, &truth["adjustments"], "");
    let after = out["total"].as_f64().unwrap() + adjustments.values().sum::<f64>();
    assert!((out["total_after_adjustments"].as_f64().unwrap() - after).abs() < 0.01);
    assert!(
        (out["total_after_adjustments"].as_f64().unwrap()
            - truth["total_after_adjustments"].as_f64().unwrap())
        .abs()
            < 0.01
    );
    // A refund billed this month for last month's usage says so.
    let refers: Vec<&Value> = out["adjustments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["line_item_type"] == json!("Refund") && !a["refers_to"].is_null())
        .collect();
    assert!(!refers.is_empty(), "{}", out["adjustments"]);

    let out = ask_all(&client, ask(json!(["role"]))).await;
    assert_close(
        &by_keys(&out, &["role"]),
        &with_no_principal(&truth["by_role"], &truth),
        "(none)",
    );
    // Every spelling of a model (product['model'], the Marketplace service name, the usage-type
    // stem before the backfill) is one row.
    let out = ok(&call(&client, "bedrock_spend", ask(json!(["model"]))).await);
    assert_close(&by_keys(&out, &["model"]), &truth["by_model"], "(none)");
    let mut tokens: BTreeMap<String, f64> = BTreeMap::new();
    for r in out["rows"].as_array().unwrap() {
        if let Some(u) = r.get("usage").and_then(Value::as_f64) {
            *tokens
                .entry(r["keys"]["model"].as_str().unwrap().to_string())
                .or_default() += u;
        }
    }
    assert!(!tokens.is_empty(), "token amounts are reported beside cost");
    for (model, want) in truth["tokens_by_model"].as_object().unwrap() {
        if let Some(got) = tokens.get(model) {
            assert!(
                (got - want.as_f64().unwrap()).abs() / want.as_f64().unwrap().max(1.0) < 1e-9,
                "{model} tokens {got} vs {want}"
            );
        }
    }
    let out = ok(&call(&client, "bedrock_spend", ask(json!(["token_kind"]))).await);
    assert_close(&by_keys(&out, &["token_kind"]), &truth["by_token_kind"], "");
    let out = ok(&call(&client, "bedrock_spend", ask(json!(["tier"]))).await);
    assert_close(&by_keys(&out, &["tier"]), &truth["by_tier"], "");
    let out = ok(&call(&client, "bedrock_spend", ask(json!(["inference_scope"]))).await);
    assert_close(&by_keys(&out, &["inference_scope"]), &truth["by_scope"], "");
    let out = ok(&call(&client, "bedrock_spend", ask(json!(["service"]))).await);
    assert_close(&by_keys(&out, &["service"]), &truth["by_service"], "");
    let out = ok(&call(&client, "bedrock_spend", ask(json!(["tag:team"]))).await);
    assert_close(
        &by_keys(&out, &["tag:team"]),
        &with_no_principal(&truth["by_team"], &truth),
        "untagged",
    );
    let rec = &out["reconciliation"];
    assert!((rec["untagged"].as_f64().unwrap() - truth["untagged"].as_f64().unwrap()).abs() < 0.01);
    assert!(
        (rec["no_principal"].as_f64().unwrap() - truth["no_principal"].as_f64().unwrap()).abs()
            < 0.01
    );
    assert!(
        out["reconciliation"]["untagged"].as_f64().unwrap() > 0.0,
        "the generator makes untagged callers"
    );
    let out = ask_all(&client, ask(json!(["principal", "model"]))).await;
    assert!(
        out["row_count"].as_u64().unwrap() > 200,
        "enough rows to page"
    );
    let mut want = truth["by_principal_model"].as_object().unwrap().clone();
    for (model, v) in truth["no_principal_by_model"].as_object().unwrap() {
        let model = if model.is_empty() { "(none)" } else { model };
        want.insert(format!("no_principal|{model}"), v.clone());
    }
    assert_close(
        &by_keys(&out, &["principal", "model"]),
        &Value::Object(want),
        "",
    );
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": whole(), "group_by": ["month"], "top_n": 500}),
    )
    .await);
    assert_close(&by_keys(&out, &["month"]), &truth["by_month"], "");
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": whole(), "group_by": ["tag:team"], "metric": "net_unblended"}),
    )
    .await);
    assert!(
        (out["total"].as_f64().unwrap() - truth["total_net_unblended"].as_f64().unwrap()).abs()
            < 0.01
    );
    // Under net cost the discounts are listed but not subtracted again.
    assert!(
        (out["total_after_adjustments"].as_f64().unwrap()
            - truth["total_net_after_adjustments"].as_f64().unwrap())
        .abs()
            < 0.01,
        "{} vs {}",
        out["total_after_adjustments"],
        truth["total_net_after_adjustments"]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn filters_top_n_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(dir.path(), 20_000, &[]);
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    // Role glob: every session of roles whose name ends in "AgentRole".
    let roles: Vec<(&String, f64)> = truth["by_role"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k, v.as_f64().unwrap()))
        .collect();
    let want: f64 = roles
        .iter()
        .filter(|(k, _)| k.ends_with("AgentRole"))
        .map(|(_, v)| v)
        .sum();
    assert!(want > 0.0, "the generator has *AgentRole roles");
    let out = ok(&call(&client, "bedrock_spend", json!({"period": whole(), "group_by": ["session"], "filter": {"role": "arn:aws:iam::*:role/*AgentRole"}, "top_n": 500})).await);
    assert!(
        (out["total"].as_f64().unwrap() - want).abs() < 0.01,
        "{} vs {want}",
        out["total"]
    );
    assert!(
        by_keys(&out, &["session"]).len() > 1,
        "sessions of those roles are listed"
    );
    // Tag filter on untagged spend.
    let untagged = truth["by_team"][""].as_f64().unwrap();
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": whole(), "group_by": ["principal"], "filter": {"team": ""}, "top_n": 500}),
    )
    .await);
    assert!((out["total"].as_f64().unwrap() - untagged).abs() < 0.01);
    // Top 3 plus others still reconciles to the truth.
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": whole(), "group_by": ["principal"], "top_n": 3}),
    )
    .await);
    let named: std::collections::BTreeSet<&str> = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["others"] == json!(false) && r["no_principal"] == json!(false))
        .map(|r| r["keys"]["principal"].as_str().unwrap())
        .collect();
    assert_eq!(named.len(), 3);
    assert!(
        out["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["others"] == json!(true))
    );
    assert_eq!(out["reconciliation"]["reconciled"], json!(true));
    assert!(
        (out["total"].as_f64().unwrap() - truth["total_unblended"].as_f64().unwrap()).abs() < 0.01
    );
    // Daily buckets over the whole range sum to the same total.
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": whole(), "granularity": "daily", "group_by": ["tag:team"]}),
    )
    .await);
    assert!(out["row_count"].as_u64().unwrap() > 45, "daily rows page");
    assert!(out["next_cursor"].is_string() || out["row_count"].as_u64().unwrap() <= 200);
    assert!(
        (out["total"].as_f64().unwrap() - truth["total_unblended"].as_f64().unwrap()).abs() < 0.01
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn amounts_in_two_currencies_are_never_added_together() {
    // The second account is billed in EUR (line_item_currency_code: the currency of the line's
    // amounts, CUR 2.0 data dictionary).
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(
        dir.path(),
        4_000,
        &["--second-currency", "EUR", "--seed", "8"],
    );
    let by_currency = truth["by_currency"].as_object().unwrap().clone();
    assert_eq!(
        by_currency.keys().collect::<Vec<_>>(),
        vec!["EUR", "USD"],
        "{by_currency:?}"
    );
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": whole()})).await);
    assert!(
        e.contains("several currencies (EUR, USD)") && e.contains("\"currency\""),
        "{e}"
    );
    for (currency, want) in &by_currency {
        let out = ok(&call(
            &client,
            "bedrock_spend",
            json!({"period": whole(), "filter": {"currency": currency},
                "group_by": ["principal"], "top_n": 500}),
        )
        .await);
        assert_eq!(out["currency"], json!(currency));
        let got = out["total"].as_f64().unwrap();
        assert!(
            (got - want.as_f64().unwrap()).abs() < 0.01,
            "{currency}: {got} vs {want}"
        );
        // The EUR lines are exactly the second account's.
        for r in out["rows"].as_array().unwrap() {
            let p = r["keys"]["principal"].as_str().unwrap();
            if p == "no_principal" {
                continue;
            }
            assert_eq!(
                p.contains(":210987654321:"),
                currency == "EUR",
                "{currency}: {p}"
            );
        }
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn export_without_principal_data_says_which_option_to_turn_on() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(dir.path(), 5_000, &["--no-principal-column"]);
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"period": whole(), "group_by": ["principal"]}),
    )
    .await);
    assert!(
        e.contains("INCLUDE_IAM_PRINCIPAL_DATA") && e.contains("Include caller identity"),
        "{e}"
    );
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": whole(), "group_by": ["tag:team"]}),
    )
    .await);
    assert!(
        (out["total"].as_f64().unwrap() - truth["total_unblended"].as_f64().unwrap()).abs() < 0.01
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_exports_and_questions_get_clear_errors() {
    let out = crate::common::command()
        .args(["--cur", "/nonexistent/cur", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such folder"));

    let empty = tempfile::tempdir().unwrap();
    let client = stdio_client(None, &["--cur", empty.path().to_str().unwrap()], &[]).await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(e.contains("BILLING_PERIOD"), "{e}");
    client.cancel().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 2_000, &[]);
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["principal", "model", "region", "day"]}),
    )
    .await);
    assert!(e.contains("at most 3"), "{e}");
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "metric": "amortized"}),
    )
    .await);
    assert!(e.contains("only on Cost Explorer"), "{e}");
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": "2020-01-01", "end": "2020-02-01"}}),
    )
    .await);
    assert_eq!(out["total"], json!(0.0));
    // A period long past: nothing found, and billing lag is not blamed for it.
    let notes = out["notes"].to_string();
    assert!(
        notes.contains("no Bedrock spend found") && !notes.contains("lags 24-48 h"),
        "{notes}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn reads_the_export_from_s3() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(dir.path(), 10_000, &[]);
    let emu = Emulator::start();
    emu.upload_dir("cur-bucket", "exports/bedrock-cur", dir.path())
        .await;
    let client = stdio_client(
        Some(&emu),
        &["--cur", "s3://cur-bucket/exports/bedrock-cur"],
        &[],
    )
    .await;
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": whole(), "group_by": ["role"], "top_n": 500}),
    )
    .await);
    assert_close(
        &by_keys(&out, &["role"]),
        &with_no_principal(&truth["by_role"], &truth),
        "(none)",
    );
    assert!(
        emu.count("GET /cur-bucket").await
            + emu
                .calls()
                .await
                .keys()
                .filter(|k| k.contains("cur-bucket"))
                .count() as u64
            > 0
    );
    client.cancel().await.unwrap();

    let client = stdio_client(Some(&emu), &["--cur", "s3://no-such-bucket/x"], &[]).await;
    let e = err(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(e.contains("no-such-bucket"), "{e}");
    client.cancel().await.unwrap();
}

/// A create-new export copied without its metadata/ folder: each month holds an earlier partial
/// refresh and the current one; only the newest is read, and the answer says so. (Adding both
/// would count the first half of each month twice.)
#[tokio::test]
async fn without_a_manifest_only_the_newest_delivery_counts() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(
        dir.path(),
        6_000,
        &["--delivery", "create-new", "--no-manifest"],
    );
    assert!(!dir.path().join("metadata").exists());
    assert!(!truth["stale_files"].as_array().unwrap().is_empty());
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": whole(), "group_by": ["month"], "top_n": 500}),
    )
    .await);
    assert_close(&by_keys(&out, &["month"]), &truth["by_month"], "");
    assert!(
        (out["total"].as_f64().unwrap() - truth["total_unblended"].as_f64().unwrap()).abs() < 0.01
    );
    let notes = out["notes"].to_string();
    assert!(
        notes.contains("deliveries and no manifest: read only the newest"),
        "{notes}"
    );
    client.cancel().await.unwrap();
}

/// A MONTHLY-granularity export (one line per month, dated from the 1st): whole months are
/// exact; a daily or part-of-a-month question is refused with the reason, never a silent $0 or a
/// month's spend piled on the 1st; anomaly detection does not flag the 1st.
#[tokio::test]
async fn a_monthly_export_answers_whole_months_and_refuses_days() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(dir.path(), 6_000, &["--monthly"]);
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let (start, _) = last_month();
    let month = &start[..7];
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["tag:team"], "top_n": 500}),
    )
    .await);
    let want = truth["by_month"][month].as_f64().unwrap();
    assert!(
        (out["total"].as_f64().unwrap() - want).abs() < 0.01,
        "{} vs {want}",
        out["total"]
    );
    for args in [
        json!({"period": "last_month", "granularity": "daily"}),
        json!({"period": "last_7_days"}),
    ] {
        let e = err(&call(&client, "bedrock_spend", args.clone()).await);
        assert!(e.contains("MONTHLY time granularity"), "{args}: {e}");
    }
    let r = call(
        &client,
        "spend_anomalies",
        json!({"period": "last_30_days"}),
    )
    .await;
    let said = text(&r);
    if r.is_error != Some(true) {
        let out = r.structured_content.clone().unwrap_or_default();
        for a in out["anomalies"].as_array().into_iter().flatten() {
            assert!(
                !a["day"].as_str().unwrap_or("").ends_with("-01"),
                "no anomaly on the 1st of a month: {a}"
            );
        }
    } else {
        assert!(said.contains("MONTHLY"), "{said}");
    }
    client.cancel().await.unwrap();
}
