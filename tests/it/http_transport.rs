//! Streamable HTTP: Host/Origin checks, stateless JSON, both lifecycles
//! (2025-11-25 `initialize` and 2026-07-28 `server/discover`), loopback-only bind.

use crate::common::*;
use rmcp::model::ProtocolVersion;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde_json::json;

fn init_body() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
           "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
}

async fn post(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(init_body().to_string())
        .send()
        .await
        .expect("server reachable")
}

#[tokio::test]
async fn foreign_host_and_origin_are_refused_and_answers_are_stateless_json() {
    let server = HttpServer::start(None, &["--demo"], &[]);
    let ok = post(&server.url, &[]).await;
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(
        ok.headers().get("mcp-session-id").is_none(),
        "stateless: no session id"
    );
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(
        body["result"]["serverInfo"]["name"],
        json!("bedrock-cost-mcp")
    );

    assert_eq!(
        post(&server.url, &[("Host", "attacker.example")])
            .await
            .status(),
        403
    );
    assert_eq!(
        post(&server.url, &[("Origin", "https://evil.example")])
            .await
            .status(),
        403
    );
    assert_eq!(
        post(&server.url, &[("Origin", "http://localhost:6274")])
            .await
            .status(),
        200
    );
    let health = reqwest::get(server.url.replace("/mcp", "/healthz"))
        .await
        .unwrap();
    assert_eq!(
        (health.status().as_u16(), health.text().await.unwrap()),
        (200, "ok".to_string())
    );
}

#[tokio::test]
async fn configured_origin_is_accepted() {
    let server = HttpServer::start(
        None,
        &["--demo"],
        &[(
            "BEDROCK_COST_MCP_ALLOWED_ORIGINS",
            "https://ide.example.com:443",
        )],
    );
    assert_eq!(
        post(&server.url, &[("Origin", "https://ide.example.com")])
            .await
            .status(),
        200
    );
    assert_eq!(
        post(&server.url, &[("Origin", "https://other.example.com")])
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn initialize_and_discover_clients_both_get_answers() {
    let server = HttpServer::start(None, &["--demo"], &[]);
    let legacy = server.client().await;
    assert_eq!(
        legacy
            .peer_info()
            .unwrap()
            .server_info
            .as_ref()
            .map(|i| i.name.as_str()),
        Some("bedrock-cost-mcp")
    );
    let a = ok(&call(&legacy, "bedrock_spend", json!({"period": "last_month"})).await);

    let modern = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(server.url.clone()),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("server/discover handshake");
    let b = ok(&call(&modern, "bedrock_spend", json!({"period": "last_month"})).await);
    assert_eq!(a["total"], b["total"]);
    assert!(a["total"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn binding_beyond_loopback_is_refused() {
    let out = crate::common::command()
        .args(["--demo", "serve", "--http", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to bind") && stderr.contains("authentication"),
        "{stderr}"
    );
}

#[tokio::test]
async fn health_check_answers_for_a_running_server_and_fails_for_none() {
    let server = HttpServer::start(None, &["--demo"], &[]);
    let health = server.url.trim_end_matches("/mcp").to_string() + "/healthz";
    let out = command()
        .args(["health-check", "--url", &health])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    // A port nobody listens on (the server's, once stopped).
    drop(server);
    let out = command()
        .args(["health-check", "--url", &health, "--timeout-secs", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));
    let out = command()
        .args(["health-check", "--url", "https://example.com/healthz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only http://"));
}
