//! Faults from AWS, end to end over HTTP: for each AWS-backed tool and each fault the emulator
//! can answer (throttling, 500s, malformed JSON, an answer missing its fields, expired
//! credentials, a response slower than the request timeout), the tool answers with an
//! actionable error and the server keeps serving the next request.

use crate::common::*;
use serde_json::{Value, json};

async fn inject(emu: &Emulator, fault: Value) {
    emu.post("/_emulator/faults", fault).await;
}

async fn raw_call(url: &str, tool: &str, args: Value) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": args}});
    let r = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .body(body.to_string())
        .send()
        .await
        .expect("server reachable");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn error_text(v: &Value) -> String {
    assert_eq!(
        v["result"]["isError"],
        json!(true),
        "expected a tool error: {v}"
    );
    v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn every_fault_gets_an_actionable_error_and_the_server_keeps_serving() {
    let emu = Emulator::start();
    let server = HttpServer::start(
        Some(&emu),
        &[],
        &[("BEDROCK_COST_MCP_REQUEST_TIMEOUT_SECS", "3")],
    );
    // Each tool with the AWS operation it needs first and its arguments.
    let (start, end) = last_month();
    let period = json!({"start": start, "end": end});
    let tools = [
        (
            "bedrock_spend",
            "GetCostAndUsage",
            json!({"period": period, "group_by": ["tag:team"]}),
        ),
        ("cost_allocation_tags", "ListCostAllocationTags", json!({})),
        (
            "untagged_principals",
            "GetAccountAuthorizationDetails",
            json!({"required_keys": ["team"]}),
        ),
    ];
    // (fault, what the error must say)
    let faults = [
        (
            json!({"status": 400, "error_type": "ThrottlingException", "message": "Rate exceeded", "times": 10}),
            "throttled",
        ),
        (
            json!({"status": 500, "error_type": "InternalFailure", "message": "boom", "times": 10}),
            "InternalFailure",
        ),
        (
            json!({"status": 200, "body": "{not json", "times": 10}),
            "malformed",
        ),
        (
            json!({"status": 403, "error_type": "ExpiredTokenException", "message": "The security token included in the request is expired", "times": 10}),
            "credentials",
        ),
    ];
    for (tool, op, args) in &tools {
        for (fault, says) in &faults {
            let mut f = fault.clone();
            f["operation"] = json!(op);
            inject(&emu, f.clone()).await;
            let (status, v) = raw_call(&server.url, tool, args.clone()).await;
            assert_eq!(status, 200, "{tool} {f}: {v}");
            let e = error_text(&v);
            assert!(
                e.to_lowercase().contains(&says.to_lowercase()),
                "{tool} under {f}: error does not say '{says}': {e}"
            );
            reqwest::Client::new()
                .delete(format!("{}/_emulator/faults", emu.url))
                .send()
                .await
                .unwrap();
            // Still serving.
            let (s, v) = raw_call(
                &server.url,
                "estimate_cost",
                json!({"model": "Claude Sonnet 4.6", "input_tokens": 1000, "output_tokens": 100}),
            )
            .await;
            assert_eq!(s, 200, "{v}");
        }
    }

    // An answer without its fields: Cost Explorer's GetCostAndUsage with no ResultsByTime is not
    // a silent $0.
    inject(
        &emu,
        json!({"operation": "GetCostAndUsage", "status": 200, "body": "{}", "times": 10}),
    )
    .await;
    let (_, v) = raw_call(
        &server.url,
        "bedrock_spend",
        json!({"period": period, "group_by": ["service"]}),
    )
    .await;
    let e = error_text(&v);
    assert!(e.contains("ResultsByTime"), "{e}");
    reqwest::Client::new()
        .delete(format!("{}/_emulator/faults", emu.url))
        .send()
        .await
        .unwrap();

    // Slower than the request timeout: 504 naming the knob, and the next request is served.
    inject(
        &emu,
        json!({"operation": "GetCostAndUsage", "status": 0, "delay_ms": 5000, "times": 1}),
    )
    .await;
    let t0 = std::time::Instant::now();
    let (s, v) = raw_call(
        &server.url,
        "bedrock_spend",
        json!({"period": period, "group_by": ["region"]}),
    )
    .await;
    assert_eq!(s, 504, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("--request-timeout-secs"),
        "{v}"
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    let (s, _) = raw_call(
        &server.url,
        "estimate_cost",
        json!({"model": "Claude Sonnet 4.6", "input_tokens": 10, "output_tokens": 10}),
    )
    .await;
    assert_eq!(s, 200);
}
