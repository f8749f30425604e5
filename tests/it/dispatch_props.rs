//! The HTTP request path end to end (body -> guard -> dispatch) with generated requests: the
//! real router of the real server library, in process, fed by proptest. Whatever the body (tool
//! names with random JSON escapes, duplicate keys, batches, other methods, garbage bytes) and
//! whichever token:
//! - no request is answered with a server error;
//! - a body that is not one JSON-RPC message gets HTTP 400 with JSON-RPC error -32700;
//! - without a token, nothing but 401;
//! - a read-only token never gets a write tool's successful answer.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bedrock_cost_mcp::cli::{Cli, Command};
use clap::Parser;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

const READER: &str = "props-reader-1";
const WRITER: &str = "props-writer-2";

fn router(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> axum::Router {
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"reader\"\nsha256 = \"{}\"\n\n[[token]]\nname = \"writer\"\nsha256 = \"{}\"\nscopes = [\"cost.read\", \"cost.write\"]\n",
            crate::http_auth::hash(READER),
            crate::http_auth::hash(WRITER)
        ),
    )
    .unwrap();
    let cli = Cli::try_parse_from([
        "bedrock-cost-mcp",
        "--demo",
        "--allow-writes",
        "--ledger",
        dir.join("ledger.json").to_str().unwrap(),
        "serve",
        "--http",
        "127.0.0.1:0",
        "--auth-tokens",
        tokens.to_str().unwrap(),
    ])
    .unwrap();
    let Command::Serve(args) = cli.command else {
        unreachable!()
    };
    let mut config = cli.config;
    config.serving = true;
    rt.block_on(async {
        let app = bedrock_cost_mcp::server::Server::build(config)
            .await
            .unwrap();
        let auth = bedrock_cost_mcp::transport::http::auth_from_args(
            &args,
            "127.0.0.1:8000".parse().unwrap(),
        )
        .unwrap();
        bedrock_cost_mcp::transport::http::router(
            app,
            &args,
            auth,
            tokio_util::sync::CancellationToken::new(),
        )
    })
}

/// A string written with some of its characters as JSON `\uXXXX` escapes.
fn escaped(s: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), s.len()).prop_map(move |mask| {
        s.chars()
            .zip(mask)
            .map(|(c, esc)| {
                if esc {
                    format!("\\u{:04x}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect()
    })
}

const TOOLS: &[&str] = &[
    "tag_principal",
    "activate_cost_allocation_tags",
    "bedrock_spend",
    "estimate_cost",
    "check_budget",
    "no_such_tool",
];
const WRITE: &[&str] = &["tag_principal", "activate_cost_allocation_tags"];

fn tool_name() -> impl Strategy<Value = (usize, String)> {
    (0..TOOLS.len()).prop_flat_map(|i| escaped(TOOLS[i]).prop_map(move |e| (i, e)))
}

fn arguments() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(
            r#"{"kind":"role","name":"LegacyBatchRole","tags":{"team":"x"},"confirm":true}"#
                .to_string()
        ),
        Just(r#"{"keys":["team"],"confirm":true}"#.to_string()),
        Just(r#"{"period":"last_month"}"#.to_string()),
        Just(r#"{"model":"Claude Haiku 4.5","input_tokens":10}"#.to_string()),
        Just("{}".to_string()),
        Just("null".to_string()),
        Just(r#""x""#.to_string()),
        "[a-z0-9{}\\[\\]\":,]{0,40}",
    ]
}

/// A body: a tools/call in one of several envelopes, another method, or garbage.
fn body() -> impl Strategy<Value = (Option<usize>, Vec<u8>)> {
    let call = (tool_name(), escaped("tools/call"), arguments(), 0..5u8).prop_map(
        |((i, name), method, args, shape)| {
            let one = format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":{{"name":"{name}","arguments":{args}}}}}"#
            );
            let text = match shape {
                0 => one,
                1 => format!(
                    r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":{{"name":"bedrock_spend","name":"{name}","arguments":{args}}}}}"#
                ),
                2 => format!("[{one}]"),
                3 => one[..one.len() / 2].to_string(),
                _ => format!(
                    r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":{{"arguments":{args},"name":"{name}"}}}}"#
                ),
            };
            (Some(i), text.into_bytes())
        },
    );
    prop_oneof![
        4 => call,
        1 => prop_oneof![
            Just(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_string()),
            Just(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_string()),
            Just(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string()),
            "[ -~]{0,60}",
        ]
        .prop_map(|s| (None, s.into_bytes())),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| (None, b)),
    ]
}

#[test]
fn generated_requests_never_break_the_guard_or_the_write_scope() {
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let app = router(&rt, dir.path());
    let config = ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |((tool, bytes) in body(), who in 0..3u8)| {
        let token = match who { 0 => None, 1 => Some(READER), _ => Some(WRITER) };
        let mut req = Request::post("/mcp")
            .header("host", "127.0.0.1:8000")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(Body::from(bytes.clone())).unwrap();
        let (status, text) = rt.block_on(async {
            let resp = app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap();
            (status, String::from_utf8_lossy(&body).to_string())
        });
        let shown = String::from_utf8_lossy(&bytes);
        prop_assert!(status.as_u16() < 500, "{status} for {shown}: {text}");
        if token.is_none() {
            prop_assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", shown);
            return Ok(());
        }
        if status == StatusCode::BAD_REQUEST {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            prop_assert_eq!(&v["error"]["code"], &json!(-32700), "{} -> {}", shown, text);
        }
        // A reader never gets the answer of a write tool.
        if who == 1 && tool.is_some_and(|i| WRITE.contains(&TOOLS[i])) && status == StatusCode::OK {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let done = v["result"]["isError"] != json!(true)
                && (v["result"]["structuredContent"].get("added").is_some()
                    || v["result"]["structuredContent"].get("activated").is_some());
            prop_assert!(!done, "a reader wrote: {} -> {}", shown, text);
        }
    });
}
