//! Input errors name the argument (its path), the forms it takes and an example, for every
//! tool (issue #18): the tools' input schemas drive the checks, and these tests walk the schemas
//! the server lists. Also the CLI's usage errors (exit 2, flag terms) and malformed HTTP bodies.

use crate::common::*;
use serde_json::{Map, Value, json};

/// The types a property of a listed input schema accepts (its `type` and its `anyOf` branches).
fn accepted(prop: &Map<String, Value>, defs: Option<&Value>) -> Vec<String> {
    let prop = match prop
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|n| defs?.get(n)?.as_object())
    {
        Some(d) => d,
        None => prop,
    };
    let mut out: Vec<String> = match prop.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => vec![],
    };
    if let Some(Value::Array(branches)) = prop.get("anyOf") {
        for b in branches.iter().filter_map(Value::as_object) {
            out.extend(accepted(b, defs));
        }
    }
    if out.iter().any(|t| t == "number") {
        out.push("integer".into());
    }
    out
}

/// A value of each JSON type (null aside: it means "not given" for an optional argument).
fn samples() -> Vec<(&'static str, Value)> {
    vec![
        ("integer", json!(12345)),
        ("number", json!(2.5)),
        ("boolean", json!(true)),
        ("string", json!("not-a-valid-value%")),
        ("array", json!([1, 2])),
        ("object", json!({"x": 1})),
    ]
}

fn assert_names(tool: &str, name: &str, args: &Value, e: &str) {
    assert!(
        !e.contains("failed to deserialize") && !e.contains("did not match any variant"),
        "{tool} {args}: serde's bare message: {e}"
    );
    assert!(
        e.contains(name),
        "{tool} {args}: the argument is not named: {e}"
    );
    assert!(
        e.contains(&format!("{name} takes")) && e.contains("e.g."),
        "{tool} {args}: no accepted forms or example: {e}"
    );
}

#[tokio::test]
async fn every_argument_of_every_tool_refuses_each_wrong_type_by_name() {
    let client = stdio_client(None, &["--demo", "--allow-writes"], &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.len() >= 10, "{} tools", tools.len());
    let mut probes = 0;
    for tool in &tools {
        let schema = tool.input_schema.as_ref();
        let defs = schema.get("$defs");
        let Some(Value::Object(props)) = schema.get("properties") else {
            continue;
        };
        for (name, prop) in props {
            let prop = prop.as_object().unwrap();
            let ok = accepted(prop, defs);
            assert!(!ok.is_empty(), "{} {name}: no type", tool.name);
            let mut wrong: Vec<Value> = samples()
                .into_iter()
                .filter(|(t, _)| !ok.iter().any(|o| o == t))
                // A string is read as a one-item list (tools::lenient): not a wrong type there.
                .filter(|(t, _)| !(*t == "string" && ok.iter().any(|o| o == "array")))
                .map(|(_, v)| v)
                .collect();
            if let Some(Value::Array(allowed)) = prop.get("enum") {
                wrong.push(json!("no-such-value"));
                let e = err(&call(&client, &tool.name, json!({ name: "no-such-value" })).await);
                assert!(
                    allowed.iter().all(|a| e.contains(&a.to_string())),
                    "{} {name}: the allowed values are not listed: {e}",
                    tool.name
                );
            }
            if ok.iter().any(|t| t == "integer") && !ok.iter().any(|t| t == "number") {
                // Below the range, above any fixed-width integer, and not whole.
                wrong.extend([json!(-1), json!(1e20), json!(2.5)]);
            }
            for bad in wrong {
                let args = json!({ name: bad });
                let e = err(&call(&client, &tool.name, args.clone()).await);
                assert_names(&tool.name, name, &args, &e);
                if bad == json!(-1) || bad == json!(1e20) {
                    assert!(
                        e.contains("from 0 to"),
                        "{} {args}: no range: {e}",
                        tool.name
                    );
                }
                probes += 1;
            }
        }
    }
    assert!(probes > 100, "only {probes} probes");
    // The server is still up and answering.
    let out = ok(&call(&client, "bedrock_spend", json!({"period": "last_month"})).await);
    assert!(out["total"].as_f64().unwrap() > 0.0);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn numbers_out_of_range_say_the_range() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    for top_n in [json!(-1), json!(1e12), json!(4294967296u64), json!(2.5)] {
        let e = err(&call(&client, "bedrock_spend", json!({ "top_n": top_n })).await);
        assert!(
            e.contains("top_n")
                && e.contains("from 0 to 4294967295")
                && e.contains("\"top_n\": 20"),
            "{top_n}: {e}"
        );
    }
    // A whole number written as a float is that number.
    ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "top_n": 5.0}),
    )
    .await);
    let e = err(&call(
        &client,
        "estimate_cost",
        json!({"model": "anthropic.claude-sonnet-4-6", "input_tokens": -5}),
    )
    .await);
    assert!(
        e.contains("input_tokens: -5 is out of range") && e.contains("from 0 to"),
        "{e}"
    );
    let e = err(&call(
        &client,
        "estimate_cost",
        json!({"model": "anthropic.claude-sonnet-4-6", "input_tokens": 1e12}),
    )
    .await);
    assert!(e.contains("input_tokens") && e.contains("100000000"), "{e}");
    // Unknown arguments are named, with the one meant.
    let e = err(&call(&client, "bedrock_spend", json!({"periodd": "last_month"})).await);
    assert!(
        e.contains("periodd") && e.contains("did you mean period?"),
        "{e}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_period_missing_a_key_names_it_and_shows_the_forms() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    for (tool, period, missing) in [
        (
            "bedrock_spend",
            json!({"start": "2026-11-01"}),
            "period.end is missing",
        ),
        (
            "spend_anomalies",
            json!({"end": "2026-11-01"}),
            "period.start is missing",
        ),
        (
            "untagged_principals",
            json!({}),
            "period is missing start and end",
        ),
    ] {
        let e = err(&call(&client, tool, json!({ "period": period })).await);
        assert!(e.contains(missing), "{tool}: {e}");
        for form in [
            "last_month",
            "this_month",
            "last_7_days",
            "YYYY-MM-DD",
            "exclusive",
        ] {
            assert!(e.contains(form), "{tool}: {form} not shown: {e}");
        }
        assert!(
            e.contains("\"period\": {\"end\":"),
            "{tool}: no range example: {e}"
        );
    }
    let e = err(&call(&client, "bedrock_spend", json!({"period": 202611})).await);
    assert!(
        e.contains("period: 202611 is none of the accepted forms"),
        "{e}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_bare_tag_key_is_told_its_tag_form_as_the_cli_reads_it() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let e = err(&call(&client, "bedrock_spend", json!({"group_by": ["team"]})).await);
    assert!(
        e.contains("group_by[0]") && e.contains("did you mean \"tag:team\""),
        "{e}"
    );
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"group_by": ["model", "teem"]}),
    )
    .await);
    assert!(e.contains("group_by[1]") && e.contains("tag:teem"), "{e}");
    let e = err(&call(&client, "spend_anomalies", json!({"by": "team"})).await);
    assert!(
        e.contains("by:") && e.contains("did you mean \"tag:team\""),
        "{e}"
    );
    // The same answer as the CLI's `--by team`.
    let mcp = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["tag:team"]}),
    )
    .await);
    let out = command()
        .args([
            "--demo",
            "spend",
            "--period",
            "last_month",
            "--by",
            "team",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["total"], mcp["total"]);
    assert_eq!(cli["rows"], mcp["rows"]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_empty_record_id_is_an_input_error() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let e = err(&call(&client, "get_registry_record", json!({"record_id": ""})).await);
    assert!(e.contains("invalid input: record_id is empty"), "{e}");
    let e = err(&call(&client, "get_registry_record", json!({"record_id": "  "})).await);
    assert!(e.contains("record_id is empty"), "{e}");
    let e = err(&call(
        &client,
        "get_registry_record",
        json!({"record_ids": ["x", ""]}),
    )
    .await);
    assert!(e.contains("record_ids[1] is empty"), "{e}");
    client.cancel().await.unwrap();
}

fn cli(args: &[&str]) -> (i32, String) {
    let out = command().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_usage_errors_exit_2_and_speak_in_flags() {
    let (code, err) = cli(&["--demo", "spend", "--period", "someday"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--start YYYY-MM-DD --end YYYY-MM-DD") && err.contains("last_month"),
        "{err}"
    );
    assert!(
        !err.contains("{\"start\""),
        "a JSON object is no CLI form: {err}"
    );
    let (code, err) = cli(&["--demo", "untagged", "--period", "someday"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--start YYYY-MM-DD"), "{err}");
    let (code, err) = cli(&[
        "--demo",
        "spend",
        "--start",
        "2026-13-01",
        "--end",
        "2026-11-01",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--start '2026-13-01' is not a date"), "{err}");
    let (code, err) = cli(&[
        "--demo",
        "spend",
        "--by",
        "principal",
        "--source",
        "cost_explorer",
    ]);
    assert_eq!(
        code, 2,
        "an unsupported combination is a usage error: {err}"
    );
    assert!(
        err.contains("Cost Explorer cannot group by 'principal'"),
        "{err}"
    );
    let (code, err) = cli(&["--demo", "spend", "--granularity", "hourly"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("granularity") && err.contains("\"daily\""),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_json_over_http_is_a_parse_error_whatever_the_content_type_says() {
    let server = HttpServer::start(None, &["--demo"], &[]);
    let post = |content_type: Option<&'static str>, body: &'static str| {
        let mut req = reqwest::Client::new()
            .post(&server.url)
            .header("Accept", "application/json, text/event-stream");
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        req.body(body).send()
    };
    for ct in [
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
    ] {
        let r = post(ct, r#"{"jsonrpc": "2.0", "id": 1,"#).await.unwrap();
        assert_eq!(r.status(), 400, "{ct:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], json!(-32700), "{ct:?}: {v}");
        assert_eq!(v["jsonrpc"], json!("2.0"));
    }
    // A JSON body without a Content-Type is read as JSON.
    let r = post(None, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A Content-Type naming something else: 415, answered as a JSON-RPC error.
    let r = post(Some("text/plain"), "{}").await.unwrap();
    assert_eq!(r.status(), 415);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], json!(-32600), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
}
