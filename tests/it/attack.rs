//! The attack suite: the shared HTTP server driven over real HTTP the way an attacker would,
//! against the real binary. Each test is one finding of the security review (issue 16) and the
//! requests that would get past its guard: JSON escapes and duplicate keys in tool names,
//! batches and bodies that are not JSON-RPC, visibilities that are empty or malformed, budgets
//! and ledgers shared across scopes, inputs that size work, streamed responses under the
//! limits, a slow or failing JWKS. Then every tool, for a caller of each visibility kind, is
//! checked for leaks against what that caller may see (figures computed by hand from the demo
//! organisation's line items).
//!
//! This suite is a gate: later work keeps it green and extends it to every new tool and
//! mechanism.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bedrock_cost_mcp::demo_data::{LineItem, line_items};
use chrono::Datelike;
use serde_json::{Value, json};

use crate::common::*;
use crate::http_auth::{Key, hash, www};

const READER: &str = "tok-attack-reader-4f1e";
const WRITER: &str = "tok-attack-writer-9a0c";
const ML: &str = "tok-attack-ml-22b1";
const BOT: &str = "tok-attack-bot-7e33";
const UNTAGGED: &str = "tok-attack-untagged-5d0a";
const QMARK: &str = "tok-attack-qmark-61f2";
const SETUPPER: &str = "tok-attack-setup-3c8d";

const BOT_SESSIONS: &str = "arn:aws:sts::123456789012:assumed-role/SupportBotRole/*";

/// The token file; `untagged` adds a token granted untagged spend (`allow_untagged`).
fn tokens_with(dir: &std::path::Path, untagged: bool) -> String {
    let mut text = format!(
        r#"
[[token]]
name = "reader"
sha256 = "{}"
scopes = ["cost.read"]

[[token]]
name = "writer"
sha256 = "{}"
scopes = ["cost.read", "cost.write"]

[[token]]
name = "setupper"
sha256 = "{}"
scopes = ["cost.read", "cost.write", "cost.setup"]

[[token]]
name = "ml"
sha256 = "{}"
visibility = {{ tag_key = "team", tag_values = ["ml-platform"] }}

[[token]]
name = "bot"
sha256 = "{}"
visibility = {{ principals = ["{BOT_SESSIONS}"] }}

[[token]]
name = "qmark"
sha256 = "{}"
visibility = {{ principals = ["arn:aws:sts::123456789012:assumed-role/SupportBotRole/support-bot-?"] }}
"#,
        hash(READER),
        hash(WRITER),
        hash(SETUPPER),
        hash(ML),
        hash(BOT),
        hash(QMARK),
    );
    if untagged {
        text.push_str(&format!(
            "\n[[token]]\nname = \"untagged\"\nsha256 = \"{}\"\nvisibility = {{ tag_key = \"team\", tag_values = [\"\"], allow_untagged = true }}\n",
            hash(UNTAGGED)
        ));
    }
    let p = dir.join("tokens.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn tokens(dir: &std::path::Path) -> String {
    tokens_with(dir, false)
}

/// POST a raw body (exactly these bytes) to the MCP endpoint.
async fn raw(url: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25");
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    req.body(body).send().await.expect("server reachable")
}

/// A `tools/call` and its answer (the JSON-RPC result), as a caller with `token`.
async fn tool(url: &str, token: &str, name: &str, args: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": args}});
    let r = raw(url, Some(token), body.to_string()).await;
    assert_eq!(r.status(), 200, "{name} {args}");
    let v: Value = r.json().await.unwrap();
    v["result"].clone()
}

fn is_error(result: &Value) -> bool {
    result["isError"] == json!(true)
}

fn text_of(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------------ 1. the write scope

#[tokio::test]
async fn escaped_duplicated_or_batched_names_never_write_with_a_read_token() {
    let emu = Emulator::start();
    let iam = emu.iam_with_role("MlRole").await;
    let dir = tempfile::tempdir().unwrap();
    let server = HttpServer::start(
        Some(&emu),
        &["--allow-writes"],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", &tokens(dir.path()))],
    );
    let args = r#"{"kind":"role","name":"MlRole","tags":{"team":"pwned"},"confirm":true}"#;
    let activate = r#"{"keys":["team"],"confirm":true}"#;
    let call = |method: &str, name: &str, args: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"{method}","params":{{"name":"{name}","arguments":{args}}}}}"#
        )
    };
    let attempts = [
        call("tools/call", r"tag\u005fprincipal", args),
        call(r"tools\u002fcall", r"\u0074ag_principal", args),
        call(
            "tools/call",
            r"activate\u005fcost\u005fallocation\u005ftags",
            activate,
        ),
        // Duplicate keys: whichever one a parser keeps, the dispatch sees one decoded name.
        format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"bedrock_spend","name":"tag_principal","arguments":{args}}}}}"#
        ),
        format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"tag_principal","arguments":{args},"name":"bedrock_spend"}}}}"#
        ),
        format!("[{}]", call("tools/call", "tag_principal", args)),
        format!(
            "[{},{}]",
            call("tools/call", "bedrock_spend", "{}"),
            call("tools/call", "tag_principal", args)
        ),
    ];
    for body in &attempts {
        let r = raw(&server.url, Some(READER), body.clone()).await;
        let status = r.status().as_u16();
        let challenge = www(&r);
        let text = r.text().await.unwrap();
        assert!(
            (status == 403 && challenge.contains("insufficient_scope"))
                || (status == 400 && text.contains("-32700"))
                || (status == 200 && text.contains("\"error\"")),
            "{body}\n-> {status} {challenge} {text}"
        );
    }
    // Nothing was written: IAM has no tag on the role, no write call reached AWS.
    let tags = iam
        .list_role_tags()
        .role_name("MlRole")
        .send()
        .await
        .unwrap();
    assert!(tags.tags().is_empty(), "{:?}", tags.tags());
    assert_eq!(emu.count("TagRole").await, 0);
    assert_eq!(emu.count("UpdateCostAllocationTagsStatus").await, 0);
    // The access log names the tool as dispatched, not `-`.
    let log = server.stderr();
    assert!(
        log.lines().any(|l| l.contains("caller=reader")
            && l.contains("tool=tag_principal")
            && l.contains("status=403")),
        "{log}"
    );
    // The writer's escaped call goes through: the escape is not what is refused.
    let r = raw(&server.url, Some(WRITER), attempts[0].clone()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(!is_error(&v["result"]), "{v}");
    let tags = iam
        .list_role_tags()
        .role_name("MlRole")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(emu.count("TagRole").await, 1);
}

#[tokio::test]
async fn setup_needs_its_own_scope_however_its_name_is_written() {
    let emu = Emulator::start();
    emu.post(
        "/_emulator/ce/cost-allocation-tags",
        json!({"CostAllocationTags": [
            {"TagKey": "iamPrincipal/team", "Type": "UserDefined", "Status": "Inactive"}
        ]}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let server = HttpServer::start(
        Some(&emu),
        &["--allow-writes"],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", &tokens(dir.path()))],
    );
    let args = r#"{"steps":["tags"],"apply":true,"confirm":true}"#;
    let call = |name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"{name}","arguments":{args}}}}}"#
        )
    };
    let attempts = [
        call("setup"),
        call(r"s\u0065tup"),
        call(r"\u0073\u0065\u0074\u0075\u0070"),
        format!(
            r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"bedrock_spend","name":"setup","arguments":{args}}}}}"#
        ),
        format!("[{}]", call("setup")),
    ];
    // A writer (cost.write, not cost.setup) and a reader: refused at dispatch, every form.
    for token in [WRITER, READER] {
        for body in &attempts {
            let r = raw(&server.url, Some(token), body.clone()).await;
            let status = r.status().as_u16();
            let challenge = www(&r);
            let text = r.text().await.unwrap();
            assert!(
                (status == 403 && challenge.contains("insufficient_scope"))
                    || (status == 400 && text.contains("-32700"))
                    || (status == 200 && text.contains("\"error\"")),
                "{body}\n-> {status} {challenge} {text}"
            );
        }
    }
    assert_eq!(emu.count("UpdateCostAllocationTagsStatus").await, 0);
    let log = server.stderr();
    assert!(
        log.lines().any(|l| l.contains("caller=writer")
            && l.contains("tool=setup")
            && l.contains("status=403")),
        "{log}"
    );
    // The setup scope's holder, escaped name and all, activates the key.
    let r = raw(&server.url, Some(SETUPPER), attempts[1].clone()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(!is_error(&v["result"]), "{v}");
    assert_eq!(emu.count("UpdateCostAllocationTagsStatus").await, 1);
}

#[tokio::test]
async fn bodies_that_are_not_one_json_rpc_message_get_400_and_a_parse_error() {
    let server = HttpServer::start(None, &["--demo"], &[]);
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"".to_vec(),
        b"[]".to_vec(),
        br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(),
        br#""tools/call""#.to_vec(),
        b"null".to_vec(),
        br#"{"jsonrpc":"2.0","id":1}"#.to_vec(),
        vec![0xff, 0xfe, b'{', b'}'],
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"ping","x":"{}"}}"#,
            "\\u"
        )
        .into_bytes(),
    ];
    for body in bodies {
        let shown = String::from_utf8_lossy(&body).to_string();
        let r = raw(&server.url, None, body).await;
        assert_eq!(r.status(), 400, "{shown}");
        let v: Value = r.json().await.unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert_eq!(v["error"]["code"], json!(-32700), "{shown}: {v}");
        assert_eq!(v["jsonrpc"], json!("2.0"));
    }
    // A wrong content type is still 415, and a good request still works.
    let r = reqwest::Client::new()
        .post(&server.url)
        .header("Content-Type", "text/plain")
        .header("Accept", "application/json, text/event-stream")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = raw(
        &server.url,
        None,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    )
    .await;
    assert_eq!(r.status(), 200);
}

// ------------------------------------------------------------------ 2. visibility fails closed

/// A JWKS endpoint whose answers the test can slow down or break; counts fetches.
#[derive(Clone, Default)]
struct Jwks {
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicU32>,
    delay_ms: Arc<AtomicU64>,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl Jwks {
    async fn serve(&self) -> SocketAddr {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let me = me.clone();
                async move {
                    me.fetches.fetch_add(1, Ordering::SeqCst);
                    let ms = me.delay_ms.load(Ordering::SeqCst);
                    if ms > 0 {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    if me.fail.load(Ordering::SeqCst) {
                        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down")
                            .into_response();
                    }
                    axum::Json(json!({"keys": me.keys.lock().unwrap().clone()})).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }
}

use axum::response::IntoResponse;

const ISSUER: &str = "https://idp.attack.test";
const RESOURCE: &str = "https://cost.attack.test/mcp";

fn jwt_server(emu: Option<&Emulator>, jwks: SocketAddr, extra: &[(&str, &str)]) -> HttpServer {
    let url = format!("http://{jwks}/jwks");
    let mut env = vec![
        ("BEDROCK_COST_MCP_JWT_ISSUER", ISSUER),
        ("BEDROCK_COST_MCP_JWT_JWKS_URL", url.as_str()),
        ("BEDROCK_COST_MCP_RESOURCE_URL", RESOURCE),
        ("BEDROCK_COST_MCP_JWT_VISIBILITY_CLAIM", "teams"),
        ("BEDROCK_COST_MCP_JWT_VISIBILITY_TAG_KEY", "team"),
    ];
    env.extend_from_slice(extra);
    let args: &[&str] = if emu.is_some() { &[] } else { &["--demo"] };
    HttpServer::start(emu, args, &env)
}

fn claims(teams: Option<Value>) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({"iss": ISSUER, "aud": RESOURCE, "sub": "mallory", "exp": now + 600, "scope": "cost.read"});
    if let Some(t) = teams {
        c["teams"] = t;
    }
    c
}

#[tokio::test]
async fn a_visibility_that_is_empty_or_malformed_grants_nothing() {
    let emu = Emulator::start();
    emu.seed_services(&["Amazon Bedrock"]).await;
    let (start, end) = last_month();
    emu.seed_cost_and_usage(vec![ce_month(
        &start,
        &end,
        "team",
        &[("ml", "10.00"), ("web", "20.00"), ("", "5.00")],
        None,
    )])
    .await;
    let key = Key::new("k1");
    let jwks = Jwks::default();
    jwks.keys.lock().unwrap().push(key.jwk());
    let server = jwt_server(Some(&emu), jwks.serve().await, &[]);
    for teams in [
        None,
        Some(json!([])),
        Some(json!("")),
        Some(json!(["", " "])),
        Some(json!(7)),
        Some(json!({"t": "ml"})),
        Some(json!(["ml", 3])),
    ] {
        let token = key.sign(&claims(teams.clone()));
        for (name, args) in [
            (
                "bedrock_spend",
                json!({"period": "last_month", "source": "cost_explorer"}),
            ),
            ("untagged_principals", json!({})),
            ("check_budget", json!({"who": "tag:team=ml", "cost_usd": 1})),
            ("spend_anomalies", json!({})),
            ("cost_allocation_tags", json!({})),
        ] {
            let r = tool(&server.url, &token, name, args).await;
            assert!(is_error(&r), "{teams:?} {name}: {r}");
            assert!(
                text_of(&r).contains("grants nothing"),
                "{teams:?} {name}: {}",
                text_of(&r)
            );
        }
    }
    assert_eq!(
        emu.count("GetCostAndUsage").await,
        0,
        "no spend was asked for"
    );
    // A token that names a team sends every Cost Explorer question filtered on it.
    let ok_token = key.sign(&claims(Some(json!(["ml"]))));
    let r = tool(
        &server.url,
        &ok_token,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["tag:team"]}),
    )
    .await;
    assert!(!is_error(&r), "{r}");
    let asked: Value = reqwest::get(format!("{}/_emulator/requests", emu.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bodies = asked["GetCostAndUsage"].as_array().unwrap();
    assert!(!bodies.is_empty());
    for b in bodies {
        let f = b["Filter"].to_string();
        assert!(
            f.contains("iamPrincipal/team") && f.contains("\"ml\""),
            "unfiltered: {b}"
        );
    }
}

#[tokio::test]
async fn token_files_that_grant_nothing_are_refused_and_untagged_needs_the_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    for (visibility, why) in [
        (r#"{ tag_key = "team" }"#, "grants nothing"),
        (r#"{ tag_key = "team", tag_values = [] }"#, "grants nothing"),
        (
            r#"{ tag_key = "team", tag_values = [""] }"#,
            "allow_untagged",
        ),
        (r#"{ principals = ["", "  "] }"#, "grants nothing"),
        (r#"{ }"#, "grants nothing"),
    ] {
        let file = dir.path().join("t.toml");
        std::fs::write(
            &file,
            format!(
                "[[token]]\nname = \"x\"\nsha256 = \"{}\"\nvisibility = {visibility}\n",
                hash("x")
            ),
        )
        .unwrap();
        let mut child = command()
            .args([
                "--demo",
                "serve",
                "--http",
                "127.0.0.1:0",
                "--auth-tokens",
                file.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // It must refuse at start; one still running after 10 s took the file.
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let started = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(
            !started && !out.status.success(),
            "{visibility} was accepted: {e}"
        );
        assert!(e.contains(why), "{visibility}: {e}");
    }
    // With the opt-in, a blank value is untagged spend only: Cost Explorer is asked for the
    // tag's ABSENT match and nothing else.
    let emu = Emulator::start();
    emu.seed_services(&["Amazon Bedrock"]).await;
    let server = HttpServer::start(
        Some(&emu),
        &[],
        &[(
            "BEDROCK_COST_MCP_AUTH_TOKENS",
            &tokens_with(dir.path(), true),
        )],
    );
    let r = tool(
        &server.url,
        UNTAGGED,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["tag:team"]}),
    )
    .await;
    assert!(!is_error(&r), "{r}");
    let asked: Value = reqwest::get(format!("{}/_emulator/requests", emu.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let f = asked["GetCostAndUsage"][0]["Filter"].to_string();
    assert!(
        f.contains("ABSENT") && f.contains("iamPrincipal/team") && !f.contains("EQUALS"),
        "{f}"
    );
}

// ------------------------------------------------------------------ 3. budgets and the ledger

fn policy(dir: &std::path::Path) -> String {
    let p = dir.join("policy.toml");
    std::fs::write(
        &p,
        "[[budgets]]\nbedrock = true\nmonthly_usd = 100000\n\n[[budgets]]\ntag = \"team=ml-platform\"\nmonthly_usd = 50000\n\n[[budgets]]\nrole = \"InvoiceAgentRole\"\nmonthly_usd = 40000\n",
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

#[tokio::test]
async fn check_budget_never_shows_spend_outside_the_callers_scope_nor_shares_its_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.json");
    let server = HttpServer::start(
        None,
        &[
            "--demo",
            "--budget-policy",
            &policy(dir.path()),
            "--ledger",
            ledger.to_str().unwrap(),
        ],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", &tokens(dir.path()))],
    );
    let bot = "arn:aws:sts::123456789012:assumed-role/SupportBotRole/support-bot-1";
    // The bot's only budget is the account-wide one: a verdict, and no figure of others' spend.
    let r = tool(
        &server.url,
        BOT,
        "check_budget",
        json!({"who": bot, "cost_usd": 5}),
    )
    .await;
    assert!(!is_error(&r), "{r}");
    let out = &r["structuredContent"];
    assert_eq!(out["budget"]["scope"]["kind"], json!("bedrock"), "{out}");
    assert!(out["verdict"].is_string());
    for figure in [
        "spent",
        "unbilled",
        "forecast",
        "remaining_after",
        "percent_after",
    ] {
        assert!(out.get(figure).is_none(), "{figure} shown: {out}");
    }
    assert!(
        out["figures_withheld"]
            .as_str()
            .unwrap()
            .contains("outside")
    );
    let text = text_of(&r);
    assert!(
        !out["reasons"].to_string().contains('$') && !text.contains("spent 4"),
        "{text}"
    );
    // The bot's recorded estimate does not move anyone else's checks under that budget.
    let r = tool(
        &server.url,
        READER,
        "check_budget",
        json!({"who": bot, "cost_usd": 1}),
    )
    .await;
    let all = &r["structuredContent"];
    assert_eq!(all["unbilled_checks"], json!(0), "{all}");
    assert!(
        all["spent"].as_f64().unwrap() > 0.0,
        "an unlimited caller sees the figures"
    );
    // Its own next check sees its own estimate.
    let r = tool(
        &server.url,
        BOT,
        "check_budget",
        json!({"who": bot, "cost_usd": 1}),
    )
    .await;
    assert_eq!(r["structuredContent"]["unbilled_checks"], json!(1));
    // Another limited caller cannot release the bot's check, even knowing its id; the bot can.
    let id = out["check_id"].as_str().unwrap().to_string();
    let r = tool(
        &server.url,
        ML,
        "check_budget",
        json!({"who": "tag:team=ml-platform", "release": id}),
    )
    .await;
    assert!(is_error(&r), "{r}");
    let r = tool(
        &server.url,
        BOT,
        "check_budget",
        json!({"who": bot, "release": id}),
    )
    .await;
    assert!(!is_error(&r), "{r}");
    assert_eq!(r["structuredContent"]["released"]["check_id"], json!(id));
    // A team's own budget: figures shown to that team.
    let r = tool(
        &server.url,
        ML,
        "check_budget",
        json!({"who": "tag:team=ml-platform", "cost_usd": 1}),
    )
    .await;
    assert!(
        r["structuredContent"]["spent"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    // Wildcards and other accounts' look-alikes do not stand in for a visible principal.
    for who in [
        "arn:aws:sts::*:assumed-role/DataScienceRole/*",
        "arn:aws:sts::123456789012:assumed-role/DataScienceRole/*",
        "arn:aws:sts::999999999999:assumed-role/DataScienceRole/carol@acme.example",
        "tag:team=web",
    ] {
        let r = tool(
            &server.url,
            ML,
            "check_budget",
            json!({"who": who, "cost_usd": 1}),
        )
        .await;
        assert!(is_error(&r), "{who}: {r}");
    }
    // Naming many subjects adds no ledger keys: entries are kept per budget, not per `who`.
    for i in 0..50 {
        let who = format!("arn:aws:sts::123456789012:assumed-role/Nobody{i}/s");
        tool(
            &server.url,
            READER,
            "check_budget",
            json!({"who": who, "cost_usd": 1}),
        )
        .await;
    }
    let keys: BTreeSet<String> = std::fs::read_to_string(&ledger)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        keys,
        [
            "bedrock",
            "caller:bot|bedrock",
            "caller:ml|tag:team=ml-platform"
        ]
        .map(String::from)
        .into(),
    );
    let r = tool(
        &server.url,
        READER,
        "check_budget",
        json!({"who": "x".repeat(5000), "cost_usd": 1}),
    )
    .await;
    assert!(
        is_error(&r) && text_of(&r).contains("2048"),
        "{}",
        text_of(&r)
    );
    // Without any budget nothing is recorded at all.
    let bare = tempfile::tempdir().unwrap();
    let ledger = bare.path().join("ledger.json");
    let server = HttpServer::start(None, &["--demo", "--ledger", ledger.to_str().unwrap()], &[]);
    let client = server.client().await;
    for i in 0..50 {
        let who = format!("arn:aws:sts::123456789012:assumed-role/Nobody{i}/s");
        let out = ok(&call(&client, "check_budget", json!({"who": who, "cost_usd": 1})).await);
        assert_eq!(out["ledger_recorded"], json!(false));
    }
    assert_eq!(
        std::fs::read_to_string(&ledger)
            .unwrap_or_default()
            .lines()
            .count(),
        0
    );
}

// ------------------------------------------------------------------ 4. inputs that size work

#[tokio::test]
async fn huge_and_pathological_inputs_are_refused_or_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let cur = tempfile::tempdir().unwrap();
    generate_cur(cur.path(), &["--rows", "60000", "--principals", "400"]);
    let server = HttpServer::start(
        None,
        &["--cur", cur.path().to_str().unwrap(), "--no-cur-rollups"],
        &[
            ("BEDROCK_COST_MCP_AUTH_TOKENS", &tokens(dir.path())),
            ("BEDROCK_COST_MCP_REQUEST_TIMEOUT_SECS", "20"),
        ],
    );
    let period = json!({"start": months_ago(2), "end": next_day()});
    // 11,000 globs in one request: refused as bad input at once.
    let many: Vec<String> = (0..11_000)
        .map(|i| format!("arn:aws:iam::*:role/R{i}*"))
        .collect();
    let t0 = Instant::now();
    let r = tool(
        &server.url,
        READER,
        "bedrock_spend",
        json!({"period": period, "group_by": ["principal"], "filter": {"principal": many}}),
    )
    .await;
    assert!(
        is_error(&r) && text_of(&r).contains("at most 32"),
        "{}",
        text_of(&r)
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    // The most a request may ask: 32 long globs full of stars, and a health check meanwhile.
    let nasty: Vec<String> = (0..32)
        .map(|i| format!("*a*a*a*a*a*a*a*{}{i}", "a".repeat(900)))
        .collect();
    let url = server.url.clone();
    let asked = tokio::spawn(async move {
        let t0 = Instant::now();
        let r = tool(&url, READER, "bedrock_spend", json!({"period": period, "group_by": ["principal"], "filter": {"principal": nasty, "role": ["*"]}})).await;
        (r, t0.elapsed())
    });
    let health = server.url.replace("/mcp", "/healthz");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    assert_eq!(
        reqwest::get(&health).await.unwrap().text().await.unwrap(),
        "ok"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "healthz waited {:?}",
        t0.elapsed()
    );
    let (r, took) = asked.await.unwrap();
    assert!(!is_error(&r), "{r}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    // Too many filter keys, values too long, too many wildcards.
    for filter in [
        json!({"a": "1", "b": "1", "c": "1", "d": "1", "e": "1", "f": "1", "g": "1", "h": "1", "i": "1"}),
        json!({"principal": "x".repeat(2000)}),
        json!({"role": "*a*b*c*d*e*f*g*h*i*"}),
    ] {
        let r = tool(
            &server.url,
            READER,
            "bedrock_spend",
            json!({"filter": filter}),
        )
        .await;
        assert!(is_error(&r), "{filter}");
    }
    // A body over the limit is refused before it is read whole.
    let r = raw(&server.url, Some(READER), vec![b' '; 2 << 20]).await;
    assert_eq!(r.status(), 413);
}

fn months_ago(n: i32) -> String {
    let t = today();
    let idx = t.year() * 12 + t.month0() as i32 - n;
    chrono::NaiveDate::from_ymd_opt(idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1, 1)
        .unwrap()
        .to_string()
}

fn next_day() -> String {
    (today() + chrono::Duration::days(1)).to_string()
}

#[tokio::test]
async fn estimate_cost_takes_only_region_codes() {
    let emu = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let server = HttpServer::start(
        Some(&emu),
        &["--price-cache-dir", dir.path().to_str().unwrap()],
        &[],
    );
    let client = server.client().await;
    for i in 0..200 {
        let region = format!("../../x{i}/{}", "y".repeat(i));
        let e = err(&call(
            &client,
            "estimate_cost",
            json!({"model": "Claude Haiku 4.5", "input_tokens": 1, "region": region}),
        )
        .await);
        assert!(e.contains("not an AWS region code"), "{e}");
    }
    assert_eq!(
        emu.count("GetProducts").await,
        0,
        "no Price List call for a bad region"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no cache file"
    );
    ok(&call(
        &client,
        "estimate_cost",
        json!({"model": "Claude Haiku 4.5", "input_tokens": 1, "region": "us-east-1"}),
    )
    .await);
    assert!(dir.path().join("prices-us-east-1.json").exists());
}

// ------------------------------------------------------------------ 5. streamed responses

/// Read an SSE or JSON response to its end: (status, JSON-RPC messages, seconds from `t0`).
async fn read_all(r: reqwest::Response, t0: Instant) -> (u16, Vec<Value>, f64) {
    let status = r.status().as_u16();
    let sse = r
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    let body = r.text().await.unwrap_or_default();
    let took = t0.elapsed().as_secs_f64();
    let msgs = if sse {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    } else {
        serde_json::from_str(&body).into_iter().collect()
    };
    (status, msgs, took)
}

#[tokio::test]
async fn progress_streams_keep_the_concurrency_limit_and_the_deadline() {
    let emu = Emulator::start();
    emu.seed_services(&["Amazon Bedrock"]).await;
    let (start, end) = last_month();
    // Two pages: the first answer brings progress (the response turns into a stream), the
    // second comes after the deadline.
    emu.seed_cost_and_usage(vec![
        ce_month(&start, &end, "team", &[("ml", "1.00")], Some("page-2")),
        ce_month(&start, &end, "team", &[("web", "2.00")], None),
    ])
    .await;
    emu.latency(1_500).await;
    let server = HttpServer::start(
        Some(&emu),
        &[],
        &[
            ("BEDROCK_COST_MCP_MAX_CONCURRENT_REQUESTS", "1"),
            ("BEDROCK_COST_MCP_REQUEST_TIMEOUT_SECS", "4"),
        ],
    );
    let body = json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {
        "name": "bedrock_spend", "arguments": {"period": "last_month"}, "_meta": {"progressToken": "p1"}}});
    let t0 = Instant::now();
    let first = raw(&server.url, None, body.to_string()).await;
    let headers_at = t0.elapsed();
    // Headers are out (a stream with progress): the permit is still held.
    let second = raw(&server.url, None, body.to_string()).await;
    assert_eq!(
        second.status(),
        503,
        "a second call ran beside a streamed one (headers after {headers_at:?})"
    );
    let (status, msgs, took) = read_all(first, t0).await;
    assert_eq!(status, 200);
    assert!(
        took < 5.0,
        "the stream ran past its 4 s deadline: {took:.1} s"
    );
    let last = msgs.last().expect("messages");
    assert_eq!(last["id"], json!(42), "{msgs:?}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 4 s"),
        "{last}"
    );
    assert!(
        msgs.iter()
            .any(|m| m["method"] == json!("notifications/progress")),
        "{msgs:?}"
    );
    // Once the stream ended, the permit is back.
    emu.latency(0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = raw(
        &server.url,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string(),
    )
    .await;
    assert_eq!(r.status(), 200);
}

// ------------------------------------------------------------------ 6. a slow or failing JWKS

#[tokio::test]
async fn a_slow_or_failing_jwks_neither_blocks_nor_locks_out() {
    let key = Key::new("k1");
    let jwks = Jwks::default();
    jwks.keys.lock().unwrap().push(key.jwk());
    jwks.delay_ms.store(2_000, Ordering::SeqCst);
    let addr = jwks.serve().await;
    let server = jwt_server(
        None,
        addr,
        &[
            ("BEDROCK_COST_MCP_JWT_JWKS_TTL_SECS", "1"),
            ("BEDROCK_COST_MCP_JWT_JWKS_MIN_REFETCH_SECS", "3"),
        ],
    );
    let good = key.sign(&claims(Some(json!(["ml-platform"]))));
    let junk = |i: usize| Key::new(&format!("zz{i}")).sign(&claims(Some(json!(["ml-platform"]))));
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    // The first fetch is slow: a good token and ten junk ones wait for that one fetch.
    let mut waiting = Vec::new();
    for i in 0..10 {
        let (url, t, p) = (server.url.clone(), junk(i), ping.clone());
        waiting.push(tokio::spawn(async move {
            raw(&url, Some(&t), p).await.status().as_u16()
        }));
    }
    let t0 = Instant::now();
    assert_eq!(
        raw(&server.url, Some(&good), ping.clone()).await.status(),
        200
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    for w in waiting {
        assert_eq!(w.await.unwrap(), 401);
    }
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        1,
        "one fetch for all of them"
    );
    // The issuer goes down; the keys grow stale. Callers with good tokens go on, at once.
    jwks.fail.store(true, Ordering::SeqCst);
    jwks.delay_ms.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    for _ in 0..5 {
        let t0 = Instant::now();
        assert_eq!(
            raw(&server.url, Some(&good), ping.clone()).await.status(),
            200
        );
        assert!(t0.elapsed() < Duration::from_secs(1));
    }
    // Junk kids while it is down: refused at once, at most one fetch per refetch interval.
    let before = jwks.fetches.load(Ordering::SeqCst);
    for i in 0..30 {
        let t0 = Instant::now();
        assert_eq!(
            raw(&server.url, Some(&junk(100 + i)), ping.clone())
                .await
                .status(),
            401
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
    assert!(
        jwks.fetches.load(Ordering::SeqCst) - before <= 1,
        "{} fetches",
        jwks.fetches.load(Ordering::SeqCst) - before
    );
    // A very slow issuer does not hold requests that carry known keys.
    jwks.fail.store(false, Ordering::SeqCst);
    jwks.delay_ms.store(8_000, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let t0 = Instant::now();
    assert_eq!(
        raw(&server.url, Some(&good), ping.clone()).await.status(),
        200
    );
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
}

// ------------------------------------------------------------------ 7. what each caller sees

/// A caller and what it may see of the demo organisation.
struct Scoped {
    token: &'static str,
    /// A subject it may check a budget for.
    who: &'static str,
    sees: fn(&LineItem) -> bool,
    /// Strings that must appear nowhere in its answers (principals and tag values it may not see).
    hidden: &'static [&'static str],
}

fn team(l: &LineItem) -> Option<&str> {
    l.tags
        .iter()
        .find(|(k, _)| k == "iamPrincipal/team")
        .map(|(_, v)| v.as_str())
}

const OTHERS_OF_ML: &[&str] = &[
    "user/bob",
    "InvoiceAgentRole",
    "SupportBotRole",
    "LegacyBatchRole",
    "BedrockAPIKey-7f3k",
    "\"web\"",
    "\"finance-apps\"",
    "\"support\"",
];
const OTHERS_OF_BOT: &[&str] = &[
    "user/alice",
    "user/bob",
    "DataScienceRole",
    "InvoiceAgentRole",
    "LegacyBatchRole",
    "BedrockAPIKey-7f3k",
    "\"ml-platform\"",
    "\"web\"",
    "\"finance-apps\"",
];
const OTHERS_OF_UNTAGGED: &[&str] = &[
    "user/alice",
    "user/bob",
    "DataScienceRole",
    "InvoiceAgentRole",
    "SupportBotRole",
    "\"ml-platform\"",
    "\"web\"",
    "\"finance-apps\"",
    "\"support\"",
];

#[tokio::test]
async fn every_tool_answers_a_limited_caller_within_what_it_may_see() {
    let dir = tempfile::tempdir().unwrap();
    let server = HttpServer::start(
        None,
        &[
            "--demo",
            "--budget-policy",
            &policy(dir.path()),
            "--ledger",
            dir.path().join("l.json").to_str().unwrap(),
        ],
        &[(
            "BEDROCK_COST_MCP_AUTH_TOKENS",
            &tokens_with(dir.path(), true),
        )],
    );
    let callers = [
        Scoped {
            token: ML,
            who: "tag:team=ml-platform",
            sees: |l| team(l) == Some("ml-platform"),
            hidden: OTHERS_OF_ML,
        },
        Scoped {
            token: BOT,
            who: "arn:aws:sts::123456789012:assumed-role/SupportBotRole/support-bot-1",
            sees: |l| l.principal.contains(":assumed-role/SupportBotRole/"),
            hidden: OTHERS_OF_BOT,
        },
        Scoped {
            token: UNTAGGED,
            who: "arn:aws:sts::123456789012:assumed-role/LegacyBatchRole/nightly-batch",
            sees: |l| !l.principal.is_empty() && team(l).is_none(),
            hidden: OTHERS_OF_UNTAGGED,
        },
    ];
    let t = today();
    let last = (months_ago(1), t.with_day(1).unwrap().to_string());
    let period = json!({"start": last.0, "end": last.1});
    let in_period = |l: &LineItem| {
        let d = l.usage_start.to_string();
        l.line_item_type == "Usage" && d >= last.0 && d < last.1
    };
    for c in &callers {
        let by_hand: f64 = line_items(t)
            .iter()
            .filter(|l| in_period(l) && (c.sees)(l))
            .map(|l| l.unblended)
            .sum();
        let mut answers = Vec::new();
        for (name, args) in [
            (
                "bedrock_spend",
                json!({"period": period, "group_by": ["principal"], "top_n": 500}),
            ),
            (
                "bedrock_spend",
                json!({"period": period, "group_by": ["tag:team", "model"], "granularity": "daily", "chart": true}),
            ),
            (
                "bedrock_spend",
                json!({"period": period, "group_by": ["role", "token_kind"], "top_n": 1}),
            ),
            (
                "bedrock_spend",
                json!({"period": period, "group_by": ["session"], "top_n": 1, "cursor": "rows:1"}),
            ),
            ("untagged_principals", json!({"include_no_spend": true})),
            ("cost_allocation_tags", json!({})),
            (
                "spend_anomalies",
                json!({"by": "principal", "period": "last_30_days"}),
            ),
            ("spend_anomalies", json!({"by": "tag:team"})),
            (
                "estimate_cost",
                json!({"model": "Claude Haiku 4.5", "input_tokens": 1000}),
            ),
            ("check_budget", json!({"who": c.who, "cost_usd": 1})),
            // Over HTTP `who` is not the server's own identity: a limited caller must name it.
            ("check_budget", json!({"cost_usd": 1})),
            // Asking for what it may not see: an error that gives nothing away.
            (
                "bedrock_spend",
                json!({"period": period, "filter": {"team": ["web", "finance-apps", "support", "ml-platform"]}}),
            ),
            (
                "bedrock_spend",
                json!({"period": period, "filter": {"principal": "arn:aws:*"}, "group_by": ["principal"]}),
            ),
            (
                "bedrock_spend",
                json!({"period": period, "filter": {"role": "arn:aws:iam::123456789012:role/InvoiceAgentRole"}, "group_by": ["principal"]}),
            ),
            (
                "check_budget",
                json!({"who": "arn:aws:sts::123456789012:assumed-role/InvoiceAgentRole/BedrockAgentCore-3f2a9c1e", "cost_usd": 1}),
            ),
            // Filters that match nothing: the answer names the closest values with spend, only
            // among what the caller may see.
            (
                "bedrock_spend",
                json!({"period": period, "filter": {"principal": "arn:aws:iam::123456789012:user/nobody"}}),
            ),
            (
                "bedrock_spend",
                json!({"period": period, "filter": {"cost-center": "cc-0000"}}),
            ),
        ] {
            let r = tool(&server.url, c.token, name, args.clone()).await;
            answers.push((format!("{name} {args}"), r));
        }
        // The cost centers named as closest are the caller's own, never another team's.
        let cost_centers = |keep: &dyn Fn(&LineItem) -> bool| -> BTreeSet<String> {
            line_items(t)
                .iter()
                .filter(|l| in_period(l) && keep(l))
                .flat_map(|l| l.tags.iter())
                .filter(|(k, _)| k == "iamPrincipal/cost-center")
                .map(|(_, v)| v.clone())
                .collect()
        };
        let own = cost_centers(&|l| (c.sees)(l));
        let explained = text_of(&answers.last().unwrap().1);
        for cc in cost_centers(&|_| true).difference(&own) {
            assert!(
                !explained.contains(cc.as_str()),
                "{} saw {cc}: {explained}",
                c.token
            );
        }
        if !own.is_empty() {
            assert!(
                own.iter().any(|cc| explained.contains(cc.as_str())),
                "{}: {explained}",
                c.token
            );
        }
        // Figures: the whole spend it may see, to the cent, and no account-wide adjustment.
        let spend = &answers[0].1["structuredContent"];
        assert!(
            (spend["total"].as_f64().unwrap() - by_hand).abs() < 0.01,
            "{}: {} vs {by_hand} by hand",
            c.token,
            spend["total"]
        );
        assert_eq!(spend["adjustments"], json!([]), "{spend}");
        for (what, r) in &answers {
            let all = format!("{} {}", r, text_of(r));
            // What the caller wrote in its own request may come back in an error.
            for h in c
                .hidden
                .iter()
                .filter(|h| !what.contains(h.trim_matches('"')))
            {
                assert!(!all.contains(h), "{} saw {h} in {what}: {all}", c.token);
            }
        }
        // The Agent Registry is a catalogue every reader sees (its records name roles); the
        // spend of a role the caller may not see is not shown beside them.
        let r = tool(
            &server.url,
            c.token,
            "search_registry",
            json!({"query": "invoice"}),
        )
        .await;
        for hit in r["structuredContent"]["hits"].as_array().unwrap() {
            let roles = hit["roles"].to_string();
            if c.hidden.iter().any(|h| roles.contains(h)) {
                assert!(
                    hit.get("role_spend_this_month").is_none_or(Value::is_null),
                    "{} saw spend of {roles}: {hit}",
                    c.token
                );
            }
        }
        // Prompts and resources name no principal or team of others either.
        for (method, params) in [
            (
                "prompts/get",
                json!({"name": "who_is_spending", "arguments": {}}),
            ),
            ("resources/read", json!({"uri": "bedrock-cost://config"})),
            ("tools/list", json!({})),
        ] {
            let body = json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params});
            let r = raw(&server.url, Some(c.token), body.to_string()).await;
            let all = r.text().await.unwrap();
            for h in c.hidden {
                assert!(!all.contains(h), "{} saw {h} in {method}: {all}", c.token);
            }
        }
    }
    // The principal grant with `?` is not a licence for the request's `*`.
    let r = tool(&server.url, QMARK, "bedrock_spend", json!({"period": period, "filter": {"principal": "arn:aws:sts::123456789012:assumed-role/SupportBotRole/support-bot-*"}})).await;
    assert!(is_error(&r) && text_of(&r).contains("outside"), "{r}");
    // An unlimited caller sees everything, adjustments too (the control).
    let r = tool(
        &server.url,
        READER,
        "bedrock_spend",
        json!({"period": period, "group_by": ["principal"], "top_n": 500}),
    )
    .await;
    let all: f64 = line_items(t)
        .iter()
        .filter(|l| in_period(l))
        .map(|l| l.unblended)
        .sum();
    assert!((r["structuredContent"]["total"].as_f64().unwrap() - all).abs() < 0.01);
    assert_ne!(r["structuredContent"]["adjustments"], json!([]));
    let seen: BTreeSet<String> = r["structuredContent"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["keys"]["principal"].to_string())
        .collect();
    assert!(seen.len() >= 9, "{seen:?}");
}

#[tokio::test]
async fn the_demo_export_is_written_where_no_other_user_can_plant_it() {
    // The server's cache folder (private to it here, `~/.cache` for a user) holds the demo
    // export, not a predictable folder under /tmp that another local user could create first.
    let cache = fresh_dir("plant-cache");
    let client = stdio_client(None, &["--demo"], &[("XDG_CACHE_HOME", &cache)]).await;
    ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "source": "cur"}),
    )
    .await);
    client.cancel().await.unwrap();
    let demo = std::path::Path::new(&cache).join("bedrock-cost-mcp/demo");
    let exports: Vec<_> = std::fs::read_dir(&demo)
        .unwrap_or_else(|e| panic!("no demo export in {}: {e}", demo.display()))
        .flatten()
        .filter(|e| e.path().join("data").is_dir())
        .collect();
    assert_eq!(exports.len(), 1, "{}", demo.display());
}

#[tokio::test]
async fn a_chart_resource_is_readable_only_by_the_caller_that_asked_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = HttpServer::start(
        None,
        &["--demo"],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", &tokens(dir.path()))],
    );
    let r = tool(
        &server.url,
        ML,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["role"], "chart": true}),
    )
    .await;
    assert!(!is_error(&r), "{r}");
    let uri = r["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == json!("resource_link"))
        .and_then(|c| c["uri"].as_str())
        .unwrap_or_else(|| panic!("no resource link: {r}"))
        .to_string();
    let read = |token: &'static str| {
        let (url, uri) = (server.url.clone(), uri.clone());
        async move {
            let body = json!({"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": uri}});
            let r = raw(&url, Some(token), body.to_string()).await;
            r.json::<Value>().await.unwrap()
        }
    };
    let own = read(ML).await;
    assert_eq!(
        own["result"]["contents"][0]["mimeType"],
        json!("image/png"),
        "{own}"
    );
    for other in [BOT, READER, WRITER] {
        let v = read(other).await;
        assert!(
            v["error"].is_object() && v["result"].is_null(),
            "{other}: {v}"
        );
        // Not found, as for a chart that never was (SEP-2164: the URI in the error's data).
        assert_eq!(v["error"]["code"], json!(-32002), "{other}: {v}");
        assert_eq!(v["error"]["data"]["uri"], json!(uri), "{other}: {v}");
    }
}

// ------------------------------------------------------------------ 8. answers to a question

/// One 2026-07-28 `tools/call` of `tag_principal` as a client that can ask its user, with the
/// answers and state of a retry when given: the JSON-RPC result or error.
async fn modern_tag(
    url: &str,
    token: &str,
    args: &Value,
    answers: Option<Value>,
    state: Option<&str>,
) -> Value {
    let mut params = json!({
        "name": "tag_principal", "arguments": args,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
            "io.modelcontextprotocol/clientInfo": {"name": "attacker", "version": "1"}
        }
    });
    if let Some(a) = answers {
        params["inputResponses"] = a;
    }
    if let Some(s) = state {
        params["requestState"] = json!(s);
    }
    let r = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "tag_principal")
        .header("Authorization", format!("Bearer {token}"))
        .body(
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params})
                .to_string(),
        )
        .send()
        .await
        .expect("server reachable");
    let (status, msgs, _) = read_all(r, Instant::now()).await;
    assert_eq!(status, 200, "{msgs:?}");
    let last = msgs.last().cloned().unwrap_or(Value::Null);
    if last["error"].is_object() {
        last["error"].clone()
    } else {
        last["result"].clone()
    }
}

/// The multi round-trip confirmation (SEP-2322) on the shared server: the `requestState` a
/// question was asked with is the only thing that makes a retry's answers count, so every way
/// of carrying answers past it is tried. Another token's retry with the writer's state, the
/// state with other changes, answers without a state, a state without answers, a yes in the
/// wrong shape or under the wrong key, and a replay of a state already answered: none tags.
#[tokio::test]
async fn a_confirmation_state_counts_once_for_its_caller_and_its_changes_only() {
    let emu = Emulator::start();
    emu.iam_with_role("MlRole").await;
    let dir = tempfile::tempdir().unwrap();
    let server = HttpServer::start(
        Some(&emu),
        &["--allow-writes"],
        &[("BEDROCK_COST_MCP_AUTH_TOKENS", &tokens(dir.path()))],
    );
    let url = server.url.as_str();
    let args =
        json!({"kind": "role", "name": "MlRole", "tags": {"team": "ml-platform"}, "confirm": true});
    let yes = json!({"confirm": {"action": "accept", "content": {"confirm": true}}});
    // The model's confirm: true does not skip the question.
    let ask = |token: &'static str| {
        let args = args.clone();
        async move {
            let r = modern_tag(url, token, &args, None, None).await;
            assert_eq!(r["resultType"], json!("input_required"), "{r}");
            let q = r["inputRequests"]["confirm"]["params"]["message"]
                .as_str()
                .unwrap_or_default();
            assert!(
                q.contains("iam:TagRole") && q.contains("team=ml-platform"),
                "{r}"
            );
            r["requestState"].as_str().unwrap().to_string()
        }
    };
    let refused = |r: &Value, why: &str| {
        assert!(is_error(r) && text_of(r).contains(why), "want {why:?}: {r}");
    };
    let state = ask(WRITER).await;
    assert_eq!(emu.count("TagRole").await, 0);
    // Another writer replays the writer's state with a yes.
    let r = modern_tag(url, SETUPPER, &args, Some(yes.clone()), Some(&state)).await;
    refused(&r, "do not match this call");
    // The same caller, the state, other changes.
    let other =
        json!({"kind": "role", "name": "MlRole", "tags": {"team": "finance"}, "confirm": true});
    let r = modern_tag(url, WRITER, &other, Some(yes.clone()), Some(&state)).await;
    refused(&r, "do not match this call");
    // A state cut short, answers alone, a state alone.
    let r = modern_tag(
        url,
        WRITER,
        &args,
        Some(yes.clone()),
        Some(&state[..state.len() - 4]),
    )
    .await;
    refused(&r, "do not match this call");
    let r = modern_tag(url, WRITER, &args, Some(yes.clone()), None).await;
    refused(&r, "needs both inputResponses and the requestState");
    let r = modern_tag(url, WRITER, &args, None, Some(&state)).await;
    refused(&r, "needs both inputResponses and the requestState");
    assert_eq!(emu.count("TagRole").await, 0);
    // A yes in the wrong shape or under another key is a no (and uses the state up).
    for (i, answers) in [
        json!({"confirm": {"action": "accept", "content": {"confirm": "true"}}}),
        json!({"Confirm": {"action": "accept", "content": {"confirm": true}}}),
        json!({"confirm": {"action": "accept"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let s = if i == 0 {
            state.clone()
        } else {
            ask(WRITER).await
        };
        let r = modern_tag(url, WRITER, &args, Some(answers.clone()), Some(&s)).await;
        assert!(!is_error(&r), "{answers}: {r}");
        assert_eq!(r["structuredContent"]["added"], json!({}), "{answers}: {r}");
    }
    assert_eq!(emu.count("TagRole").await, 0);
    // The real yes tags once; its replay does nothing.
    let s = ask(WRITER).await;
    let r = modern_tag(url, WRITER, &args, Some(yes.clone()), Some(&s)).await;
    assert_eq!(
        r["structuredContent"]["added"],
        json!({"team": "ml-platform"}),
        "{r}"
    );
    assert_eq!(emu.count("TagRole").await, 1);
    let r = modern_tag(url, WRITER, &args, Some(yes.clone()), Some(&s)).await;
    refused(&r, "already used");
    assert_eq!(emu.count("TagRole").await, 1);
}
