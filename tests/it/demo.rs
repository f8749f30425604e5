//! `--demo`: answers with no AWS account, from the bundled organisation,
//! through the same tool code as Cost Explorer. Figures are checked against
//! sums computed here from the demo line items.

use std::collections::BTreeMap;

use crate::common::*;
use bedrock_cost_mcp::demo_data::line_items;
use serde_json::json;

#[tokio::test]
async fn demo_last_month_by_team_matches_the_line_items() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "source": "cost_explorer"}),
    )
    .await);
    let (start, end) = last_month();
    let today = crate::common::today();
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    for l in line_items(today) {
        let d = l.usage_start.to_string();
        if l.line_item_type != "Usage" || d < start || d >= end {
            continue;
        }
        let team = l
            .tags
            .iter()
            .find(|(k, _)| k == "iamPrincipal/team")
            .map(|(_, v)| v.clone())
            .unwrap_or("untagged".into());
        *want.entry(team).or_default() += l.unblended;
    }
    let got: BTreeMap<String, f64> = rows_by(&out, "tag:team").into_iter().collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, v) in &want {
        assert!((got[k] - v).abs() < 0.005, "{k}: got {} want {v}", got[k]);
    }
    assert!(want.contains_key("untagged"));
    assert_eq!(out["source"], json!("demo"));
    assert_eq!(out["paid_requests"], json!(0));
    assert_eq!(out["reconciliation"]["reconciled"], json!(true));

    let by_service = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "source": "cost_explorer", "group_by": ["service"], "filter": {"team": ""}}),
    )
    .await);
    let untagged_total: f64 = want["untagged"];
    assert!(
        (by_service["total"].as_f64().unwrap() - untagged_total).abs() < 0.005,
        "filter \"\" selects untagged spend"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn demo_cur_answers_per_role_and_model_with_credits_apart() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["role", "model"], "top_n": 100}),
    )
    .await);
    assert_eq!(
        out["source"],
        json!("cur"),
        "--demo answers from its CUR export by default"
    );
    let (start, end) = last_month();
    let today = crate::common::today();
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    let mut credits = 0.0;
    for l in line_items(today) {
        let d = l.usage_start.to_string();
        if d < start || d >= end {
            continue;
        }
        if l.line_item_type != "Usage" {
            credits += l.unblended;
            continue;
        }
        // Lines without a principal (the AgentCore runtime) are their own bucket, of no model.
        let key = if l.principal.is_empty() {
            "no_principal|(none)".to_string()
        } else {
            let role = bedrock_cost_mcp::domain::principal::role_of(&l.principal);
            format!("{role}|{}", l.model)
        };
        *want.entry(key).or_default() += l.unblended;
    }
    let mut got: BTreeMap<String, f64> = BTreeMap::new();
    for r in out["rows"].as_array().unwrap() {
        *got.entry(format!(
            "{}|{}",
            r["keys"]["role"].as_str().unwrap(),
            r["keys"]["model"].as_str().unwrap()
        ))
        .or_default() += r["amount"].as_f64().unwrap();
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, v) in &want {
        assert!((got[k] - v).abs() < 0.005, "{k}: got {} want {v}", got[k]);
    }
    assert!(
        want.keys()
            .any(|k| k.starts_with("arn:aws:iam::123456789012:role/InvoiceAgentRole|")),
        "sessions fold into their role"
    );
    let adj: f64 = out["adjustments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["amount"].as_f64().unwrap())
        .sum();
    assert!(
        credits < 0.0 && (adj - credits).abs() < 0.005,
        "credits shown apart: {adj} vs {credits}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn demo_registry_hits_show_their_roles_spend() {
    use chrono::Datelike;
    let client = stdio_client(None, &["--demo"], &[]).await;
    let out = ok(&call(&client, "search_registry", json!({"query": "invoice"})).await);
    let hits = out["hits"].as_array().unwrap();
    assert_eq!(hits[0]["name"], json!("invoice-processing-agent"));
    let today = crate::common::today();
    let first = today.with_day(1).unwrap();
    let want: f64 = line_items(today)
        .iter()
        .filter(|l| {
            l.line_item_type == "Usage"
                && l.usage_start >= first
                && l.principal.contains(":assumed-role/InvoiceAgentRole/")
        })
        .map(|l| l.unblended)
        .sum();
    let got = hits[0]["role_spend_this_month"].as_f64().unwrap();
    assert!((got - want).abs() < 0.01, "{got} vs {want}");
    let mcp = ok(&call(
        &client,
        "search_registry",
        json!({"query": "jira issues", "record_types": ["mcp"]}),
    )
    .await);
    assert_eq!(
        mcp["hits"][0]["tools"],
        json!(["search_issues", "create_issue", "add_comment"])
    );
    let none = ok(&call(
        &client,
        "search_registry",
        json!({"query": "dataset profiler"}),
    )
    .await);
    assert!(
        none["hits"].as_array().unwrap().is_empty(),
        "DRAFT records are not discoverable"
    );
    client.cancel().await.unwrap();
}

/// Found by fuzzing (fuzz/fuzz_targets/period.rs): an end date with a five- or
/// six-digit year was accepted, and the CUR source's list of billing months then
/// ran past chrono's last date and panicked. It is now refused as input, and the
/// server keeps answering.
#[tokio::test]
async fn a_period_beyond_year_9999_is_refused_not_a_panic() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    for end in ["+262142-12-31", "+12026-01-01"] {
        let e = err(&call(
            &client,
            "bedrock_spend",
            json!({"period": {"start": "2026-01-01", "end": end}, "source": "cur"}),
        )
        .await);
        assert!(e.contains("YYYY-MM-DD") && e.contains(end), "{e}");
    }
    ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "source": "cur"}),
    )
    .await);
    client.cancel().await.unwrap();
}

/// Arguments sent as JSON text, comma lists or numeric strings (as some models and clients do)
/// get the same answer as native JSON; text that is not the declared type is still refused with
/// the accepted forms.
#[tokio::test]
async fn stringly_arguments_answer_like_native_ones() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let native = ok(&call(
        &client,
        "bedrock_spend",
        json!({"source": "cur", "period": "last_month", "group_by": ["tag:team", "model"], "top_n": 3, "filter": {"team": ["ml-platform", "support"]}}),
    )
    .await);
    assert!(native["rows"].as_array().unwrap().len() >= 2, "{native}");
    let (start, end) = (
        native["period"]["start"].clone(),
        native["period"]["end"].clone(),
    );
    for args in [
        json!({"source": "cur", "period": "last_month", "group_by": "[\"tag:team\", \"model\"]", "top_n": "3", "filter": "{\"team\": [\"ml-platform\", \"support\"]}"}),
        json!({"source": "cur", "period": format!("{{\"start\": {start}, \"end\": {end}}}"), "group_by": "tag:team,model", "top_n": 3, "filter": {"team": ["ml-platform", "support"]}}),
    ] {
        let got = ok(&call(&client, "bedrock_spend", args.clone()).await);
        assert_eq!(got["rows"], native["rows"], "{args}");
        assert_eq!(got["total"], native["total"], "{args}");
    }
    let e = err(&call(&client, "bedrock_spend", json!({"top_n": "three"})).await);
    assert!(e.contains("top_n must be a whole number"), "{e}");
    // Wrong non-string types are tool errors too (the model can correct them), not protocol errors.
    let e = err(&call(&client, "bedrock_spend", json!({"chart": 1})).await);
    assert!(e.contains("expected a boolean"), "{e}");
}

/// A wide answer (daily x principal x model x token kind) comes in pages of at most 40 KiB of
/// rows, and following next_cursor walks every row exactly once.
#[tokio::test]
async fn wide_answers_page_by_bytes_and_the_cursor_walks_every_row() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let ask = json!({"source": "cur", "period": "last_30_days", "granularity": "daily",
                     "group_by": ["principal", "model", "token_kind"], "top_n": 100});
    let mut args = ask.clone();
    let (mut seen, mut pages, mut total) = (0usize, 0, None);
    loop {
        let out = ok(&call(&client, "bedrock_spend", args.clone()).await);
        let rows = out["rows"].as_array().unwrap();
        let bytes: usize = rows.iter().map(|r| r.to_string().len() + 1).sum();
        assert!(
            !rows.is_empty() && bytes <= 40 * 1024,
            "{bytes} bytes of rows"
        );
        seen += rows.len();
        pages += 1;
        total.get_or_insert(out["row_count"].as_u64().unwrap() as usize);
        match out["next_cursor"].as_str() {
            Some(c) => args["cursor"] = json!(c),
            None => break,
        }
    }
    assert_eq!(Some(seen), total);
    assert!(
        pages >= 2,
        "the demo answer needs several pages ({seen} rows)"
    );
}
