//! HTTP authentication and per-caller scope, end to end: the real binary over HTTP, driven by
//! raw HTTP (for status codes and headers) and by rmcp's client with a bearer token, against a
//! JWKS server on loopback (an in-test HTTP server publishing ES256 keys the test signs with).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::common::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

const READER: &str = "tok-reader-8c1f0a";
const ADMIN: &str = "tok-admin-51b2e9";
const NOSCOPE: &str = "tok-noscope-77aa01";
const ML: &str = "tok-ml-team-3d9e42";

pub(crate) fn hash(token: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn token_file(dir: &std::path::Path) -> std::path::PathBuf {
    let text = format!(
        r#"
[[token]]
name = "reader"
sha256 = "{}"
scopes = ["cost.read"]

[[token]]
name = "admin"
sha256 = "{}"
scopes = ["cost.read", "cost.write"]

[[token]]
name = "noscope"
sha256 = "{}"
scopes = []

[[token]]
name = "ml-team"
sha256 = "{}"
scopes = ["cost.read"]
visibility = {{ tag_key = "team", tag_values = ["ml-platform"] }}
"#,
        hash(READER),
        hash(ADMIN),
        hash(NOSCOPE),
        hash(ML)
    );
    let p = dir.join("tokens.toml");
    std::fs::write(&p, text).unwrap();
    p
}

pub(crate) fn rpc_call(tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

pub(crate) async fn post(url: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    req.body(body.to_string())
        .send()
        .await
        .expect("server reachable")
}

pub(crate) fn www(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn static_tokens_scopes_and_visibility() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path());
    let server = HttpServer::start(
        None,
        &["--demo", "--allow-writes"],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", file.to_str().unwrap())],
    );
    let spend = rpc_call(
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["tag:team"]}),
    );

    // No token: 401 pointing at the RFC 9728 metadata, which is served and names this resource.
    let r = post(&server.url, None, &spend).await;
    assert_eq!(r.status(), 401);
    let challenge = www(&r);
    let meta_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("resource_metadata in WWW-Authenticate")
        .to_string();
    assert!(
        meta_url.ends_with("/.well-known/oauth-protected-resource/mcp"),
        "{meta_url}"
    );
    let meta: Value = reqwest::get(&meta_url).await.unwrap().json().await.unwrap();
    assert_eq!(meta["resource"], json!(server.url));
    assert_eq!(
        meta["scopes_supported"],
        json!(["cost.read", "cost.write", "cost.setup"])
    );

    // Wrong token: 401 invalid_token. Token without cost.read: 403 insufficient_scope.
    let r = post(&server.url, Some("not-a-token"), &spend).await;
    assert_eq!(r.status(), 401);
    assert!(www(&r).contains("error=\"invalid_token\""), "{}", www(&r));
    let r = post(&server.url, Some(NOSCOPE), &spend).await;
    assert_eq!(r.status(), 403);
    assert!(www(&r).contains("error=\"insufficient_scope\""));

    // Read token: reads work, writes are refused with the scope they need.
    let r = post(&server.url, Some(READER), &spend).await;
    assert_eq!(r.status(), 200);
    let all: Value = r.json().await.unwrap();
    let all_rows = all["result"]["structuredContent"]["rows"]
        .as_array()
        .unwrap()
        .clone();
    assert!(all_rows.len() >= 4, "{all_rows:?}");
    let write = rpc_call(
        "tag_principal",
        json!({"kind": "role", "name": "SupportBotRole", "tags": {"team": "support"}, "confirm": true}),
    );
    let r = post(&server.url, Some(READER), &write).await;
    assert_eq!(r.status(), 403);
    assert!(
        www(&r).contains("scope=\"cost.read cost.write\""),
        "{}",
        www(&r)
    );
    let r = post(&server.url, Some(ADMIN), &write).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_ne!(body["result"]["isError"], json!(true), "{body}");

    // Per-caller scope through a real MCP client: only ml-platform spend, and it equals the
    // ml-platform row of the unscoped answer.
    let ml = server
        .client_with_token(ML)
        .await
        .expect("initialize with a token");
    let scoped = ok(&call(
        &ml,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["tag:team"]}),
    )
    .await);
    let rows = scoped["rows"].as_array().unwrap();
    let full_ml = all_rows
        .iter()
        .find(|r| r["keys"]["tag:team"] == json!("ml-platform"))
        .expect("ml-platform row");
    assert_eq!(rows.len(), 1, "{scoped}");
    assert_eq!(rows[0]["keys"]["tag:team"], json!("ml-platform"));
    assert_eq!(rows[0]["amount"], full_ml["amount"]);
    // Asking outside the scope is an authorization error, not an empty answer.
    let e = err(&call(
        &ml,
        "bedrock_spend",
        json!({"period": "last_month", "filter": {"team": ["web"]}}),
    )
    .await);
    assert!(e.contains("not allowed") && e.contains("ml-team"), "{e}");
    let e = err(&call(
        &ml,
        "check_budget",
        json!({"who": "tag:team=web", "cost_usd": 1.0}),
    )
    .await);
    assert!(e.contains("not allowed"), "{e}");
    ok(&call(
        &ml,
        "check_budget",
        json!({"who": "tag:team=ml-platform", "cost_usd": 1.0}),
    )
    .await);
    // Principal findings only for principals the caller may see.
    let u = ok(&call(
        &ml,
        "untagged_principals",
        json!({"required_keys": ["team", "cost-center"], "include_no_spend": true}),
    )
    .await);
    let uall = {
        let r = post(
            &server.url,
            Some(READER),
            &rpc_call(
                "untagged_principals",
                json!({"required_keys": ["team", "cost-center"], "include_no_spend": true}),
            ),
        )
        .await;
        let v: Value = r.json().await.unwrap();
        v["result"]["structuredContent"].clone()
    };
    let n = |v: &Value| {
        v["findings"]
            .as_array()
            .map(std::vec::Vec::len)
            .unwrap_or(0)
    };
    assert!(n(&uall) > n(&u), "scoped {} vs all {}", n(&u), n(&uall));
    for f in u["findings"].as_array().unwrap() {
        assert!(
            !f["arn"].as_str().unwrap_or("").contains("SupportBot"),
            "{f}"
        );
    }

    // The access log names callers and tools; no token appears anywhere in the output.
    let log = server.stderr();
    assert!(
        log.contains("caller=ml-team") && log.contains("tool=bedrock_spend"),
        "{log}"
    );
    assert!(log.contains("status=401") && log.contains("status=403"));
    for t in [READER, ADMIN, NOSCOPE, ML, "not-a-token"] {
        assert!(!log.contains(t), "token {t} leaked into the log");
        assert!(!log.contains(&hash(t)), "hash of {t} leaked into the log");
    }
}

#[tokio::test]
async fn rate_limit_and_body_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path());
    let server = HttpServer::start(
        None,
        &["--demo"],
        &[
            ("BEDROCK_COST_MCP_AUTH_TOKENS", file.to_str().unwrap()),
            ("BEDROCK_COST_MCP_RATE_LIMIT_PER_MINUTE", "3"),
            ("BEDROCK_COST_MCP_MAX_BODY_BYTES", "2048"),
        ],
    );
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    for _ in 0..3 {
        assert_eq!(post(&server.url, Some(READER), &ping).await.status(), 200);
    }
    let r = post(&server.url, Some(READER), &ping).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    // Another caller has its own bucket.
    assert_eq!(post(&server.url, Some(ADMIN), &ping).await.status(), 200);
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(4096)}});
    assert_eq!(post(&server.url, Some(ADMIN), &big).await.status(), 413);
}

// ---------------------------------------------------------------- JWT

pub(crate) fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub(crate) struct Key {
    kid: String,
    pair: EcdsaKeyPair,
}

impl Key {
    pub(crate) fn new(kid: &str) -> Key {
        Key {
            kid: kid.into(),
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }
    pub(crate) fn jwk(&self) -> Value {
        let p = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256", "use": "sig",
               "x": b64(&p[1..33]), "y": b64(&p[33..65])})
    }
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

/// A JWKS endpoint on loopback whose key set the test can change; counts fetches.
async fn jwks_server(keys: Arc<Mutex<Vec<Value>>>, fetches: Arc<Mutex<u32>>) -> SocketAddr {
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let keys = keys.clone();
            let fetches = fetches.clone();
            async move {
                *fetches.lock().unwrap() += 1;
                axum::Json(json!({"keys": keys.lock().unwrap().clone()}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn jwt_access_tokens() {
    let k1 = Key::new("k1");
    let keys = Arc::new(Mutex::new(vec![k1.jwk()]));
    let fetches = Arc::new(Mutex::new(0));
    let jwks = jwks_server(keys.clone(), fetches.clone()).await;
    let issuer = "https://idp.example.test";
    let resource = "https://cost.example.test/mcp";
    let server = HttpServer::start(
        None,
        &["--demo"],
        &[
            ("BEDROCK_COST_MCP_JWT_ISSUER", issuer),
            (
                "BEDROCK_COST_MCP_JWT_JWKS_URL",
                &format!("http://{jwks}/jwks"),
            ),
            ("BEDROCK_COST_MCP_RESOURCE_URL", resource),
            ("BEDROCK_COST_MCP_JWT_VISIBILITY_CLAIM", "teams"),
            ("BEDROCK_COST_MCP_JWT_VISIBILITY_TAG_KEY", "team"),
            ("BEDROCK_COST_MCP_JWT_JWKS_MIN_REFETCH_SECS", "2"),
        ],
    );
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": issuer, "aud": resource, "sub": "alice@example.test", "exp": now + 600,
                        "scope": "cost.read", "teams": ["web"]});
    let spend = rpc_call(
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["tag:team"]}),
    );

    // The right token works, and its `teams` claim narrows the answer to web.
    let r = post(&server.url, Some(&k1.sign(&claims)), &spend).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let rows = v["result"]["structuredContent"]["rows"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["keys"]["tag:team"], json!("web"));

    // Metadata names the authorization server.
    let meta: Value = reqwest::get(
        server
            .url
            .replace("/mcp", "/.well-known/oauth-protected-resource/mcp"),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(meta["authorization_servers"], json!([issuer]));
    assert_eq!(meta["resource"], json!(resource));

    let status = |t: String| {
        let url = server.url.clone();
        let spend = spend.clone();
        async move {
            let r = post(&url, Some(&t), &spend).await;
            (r.status().as_u16(), www(&r))
        }
    };
    // Signed by a key the issuer does not publish (same kid): bad signature.
    let forged = Key::new("k1");
    let (s, w) = status(forged.sign(&claims)).await;
    assert_eq!(s, 401, "{w}");
    assert!(w.contains("bad signature"), "{w}");
    // Wrong audience, wrong issuer, expired, missing scope.
    let mut c = claims.clone();
    c["aud"] = json!("https://other.example.test/mcp");
    assert_eq!(status(k1.sign(&c)).await.0, 401);
    let mut c = claims.clone();
    c["iss"] = json!("https://evil.example.test");
    assert_eq!(status(k1.sign(&c)).await.0, 401);
    let mut c = claims.clone();
    c["exp"] = json!(now - 3600);
    let (s, w) = status(k1.sign(&c)).await;
    assert_eq!(s, 401);
    assert!(w.contains("expired"), "{w}");
    let mut c = claims.clone();
    c["scope"] = json!("openid");
    assert_eq!(status(k1.sign(&c)).await.0, 403);
    // alg none is never accepted.
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none"}).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    assert_eq!(status(none).await.0, 401);

    // Key rotation: a token with a new kid makes the server fetch the JWKS again.
    let before = *fetches.lock().unwrap();
    let k2 = Key::new("k2");
    keys.lock().unwrap().push(k2.jwk());
    // The early refetch happens at most every --jwt-jwks-min-refetch-secs (2 s here).
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let (s, w) = status(k2.sign(&claims)).await;
    assert_eq!(s, 200, "{w}");
    assert!(*fetches.lock().unwrap() > before);
    let log = server.stderr();
    assert!(log.contains("caller=alice@example.test"), "{log}");
}

#[test]
fn beyond_loopback_needs_auth() {
    let out = crate::common::command()
        .args(["--demo", "serve", "--http", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("--auth-tokens") && e.contains("--jwt-issuer"),
        "{e}"
    );
}

/// A caller limited by principal globs sees only matching principals' CUR spend, to the cent of
/// the unscoped answer, and is told why on Cost Explorer (which cannot filter by principal).
#[tokio::test]
async fn principal_glob_visibility_end_to_end() {
    const DS: &str = "tok-datascience-41c7";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.toml");
    std::fs::write(
        &file,
        format!(
            "[[token]]\nname = \"admin\"\nsha256 = \"{}\"\nscopes = [\"cost.read\"]\n\n\
             [[token]]\nname = \"ds\"\nsha256 = \"{}\"\nscopes = [\"cost.read\"]\n\
             visibility = {{ principals = [\"arn:aws:sts::*:assumed-role/DataScienceRole/*\"] }}\n",
            hash(ADMIN),
            hash(DS)
        ),
    )
    .unwrap();
    let server = HttpServer::start(
        None,
        &["--demo"],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", file.to_str().unwrap())],
    );
    let by_principal =
        json!({"period": "last_month", "group_by": ["principal"], "source": "cur", "top_n": 100});
    let admin = server.client_with_token(ADMIN).await.unwrap();
    let all = ok(&call(&admin, "bedrock_spend", by_principal.clone()).await);
    let ds = server.client_with_token(DS).await.unwrap();
    let mine = ok(&call(&ds, "bedrock_spend", by_principal).await);

    let amounts = |v: &Value| rows_by(v, "principal");
    let want: Vec<(String, f64)> = amounts(&all)
        .into_iter()
        .filter(|(p, _)| p.contains(":assumed-role/DataScienceRole/"))
        .collect();
    assert!(
        want.len() >= 2,
        "the demo has two DataScienceRole sessions: {all}"
    );
    assert!(
        amounts(&all).len() > want.len(),
        "others exist and are hidden"
    );
    let mut got = amounts(&mine);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want_sorted = want.clone();
    want_sorted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want_sorted);
    let sum: f64 = want.iter().map(|(_, a)| a).sum();
    assert!(
        (mine["total"].as_f64().unwrap() - sum).abs() < 0.005,
        "{mine}"
    );

    // Naming a principal outside the globs is refused; Cost Explorer says to ask CUR/Athena.
    let e = err(&call(
        &ds,
        "bedrock_spend",
        json!({"period": "last_month", "source": "cur", "filter": {"principal": "arn:aws:sts::*:assumed-role/SupportBotRole/*"}}),
    )
    .await);
    assert!(
        e.contains("not allowed") && e.contains("SupportBotRole"),
        "{e}"
    );
    let e = err(&call(
        &ds,
        "bedrock_spend",
        json!({"period": "last_month", "source": "cost_explorer"}),
    )
    .await);
    assert!(
        e.contains("Cost Explorer cannot filter by principal"),
        "{e}"
    );
}

/// A client on 2026-07-28 that offers the tasks extension, with a bearer token.
#[derive(Clone, Default)]
struct TaskCaller;

impl rmcp::ClientHandler for TaskCaller {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let mut c = rmcp::model::ClientConfig::default();
        c.capabilities = rmcp::model::ClientCapabilities::builder()
            .enable_tasks()
            .build();
        c
    }
}

/// Tasks on the stateless HTTP transport: a 2026-07-28 client that declares the extension gets
/// a task; only the caller that started it can read or cancel it (another token's `tasks/get`
/// and `tasks/cancel` answer as for a task that does not exist), and its result is the answer
/// of the plain call.
#[tokio::test]
async fn a_task_over_http_belongs_to_the_token_that_started_it() {
    use rmcp::model::{CallToolRequestParams, CallToolResponse, ProtocolVersion};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use rmcp::{ClientLifecycleMode, ClientServiceExt};
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path());
    let server = HttpServer::start(
        None,
        &["--demo"],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", file.to_str().unwrap())],
    );
    let connect = |token: &'static str| {
        let url = server.url.clone();
        async move {
            TaskCaller
                .serve_with_lifecycle(
                    StreamableHttpClientTransport::from_config(
                        StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
                    ),
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
                .expect("server/discover handshake")
        }
    };
    let ask = json!({"period": "last_month", "group_by": ["tag:team"]});
    let owner = connect(READER).await;
    let other = connect(ADMIN).await;
    let want = ok(&server
        .client_with_token(READER)
        .await
        .unwrap()
        .call_tool(
            CallToolRequestParams::new("bedrock_spend")
                .with_arguments(ask.as_object().unwrap().clone()),
        )
        .await
        .unwrap());
    let started = owner
        .call_tool_once(
            CallToolRequestParams::new("bedrock_spend")
                .with_arguments(ask.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let CallToolResponse::Task(task) = started else {
        panic!("not a task: {started:?}");
    };
    let id = task.task.task_id.clone();
    // Another token: the task is not there, and cancelling it does nothing.
    let e = other
        .get_task(rmcp::model::GetTaskParams::new(id.clone()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no task"), "{e}");
    let e = other
        .cancel_task(rmcp::model::CancelTaskParams::new(id.clone()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no task"), "{e}");
    // Its owner polls it to the answer of the plain call.
    let mut done = Value::Null;
    for _ in 0..200 {
        let got = owner
            .get_task(rmcp::model::GetTaskParams::new(id.clone()))
            .await
            .unwrap();
        done = serde_json::to_value(&got).unwrap();
        if done["status"] != json!("working") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(done["status"], json!("completed"), "{done}");
    let got = &done["result"]["structuredContent"];
    assert_cents(num(&got["total"]), num(&want["total"]), "task result");
    assert!(num(&want["total"]) > 0.0, "{want}");
    assert_eq!(got["rows"], want["rows"]);
}
