//! Test harness: the real binary, a real MCP client (rmcp), and the AWS
//! emulator (moto + our extensions) on loopback. Modelled on ripgrep's
//! `tests/util.rs`: helpers that start real things and fail loudly.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// The binary under test: the one cargo built, or `BEDROCK_COST_MCP_TEST_BIN` (to run a suite,
/// such as the attack suite, against another build, e.g. an older release).
pub fn bin() -> String {
    std::env::var("BEDROCK_COST_MCP_TEST_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_bedrock-cost-mcp").to_string())
}

pub type Client = RunningService<RoleClient, ()>;

fn python() -> String {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/.venv/bin/python");
    assert!(
        std::path::Path::new(p).exists(),
        "the emulator's venv is missing: run tools/setup-venv.sh (the README's test command does)"
    );
    p.to_string()
}

/// Start a Python emulator on a free loopback port and wait for its `READY <port>` line.
/// Its stdin stays a pipe, so it exits when the test process dies.
fn spawn_ready(script: &str) -> (Child, String) {
    let mut child = Command::new(python())
        .args([script, "--port", "0"])
        // The emulators' calendar is the tests' (their dates follow BEDROCK_COST_MCP_NOW).
        .env("BEDROCK_COST_MCP_NOW", now_rfc3339())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read READY line");
    let port = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("{script} said {line:?}"))
        .to_string();
    (child, format!("http://127.0.0.1:{port}"))
}

/// The AWS emulator on a free loopback port; stopped on drop.
pub struct Emulator {
    child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl Emulator {
    pub fn start() -> Emulator {
        let (child, url) = spawn_ready(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/emulator/aws_emulator.py"
        ));
        Emulator {
            child,
            url,
            http: reqwest::Client::new(),
        }
    }

    pub async fn post(&self, path: &str, body: Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("emulator reachable");
        assert!(r.status().is_success(), "emulator {path}: {}", r.status());
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("emulator reachable")
            .json()
            .await
            .expect("emulator answers JSON")
    }

    /// Calls per AWS operation since the last reset.
    pub async fn calls(&self) -> HashMap<String, u64> {
        self.get_json("/_emulator/calls").await
    }

    /// The AWS calls since the last reset with the access key, region and service each was
    /// signed with (`GET /_emulator/signed`).
    pub async fn signed(&self) -> Vec<Value> {
        self.get_json("/_emulator/signed").await
    }

    /// An IAM client on the emulator, after creating role `name` (no tags, an empty trust
    /// policy): the principal the write tools' tests tag.
    pub async fn iam_with_role(&self, name: &str) -> aws_sdk_iam::Client {
        let iam = aws_sdk_iam::Client::new(&sdk_config(self).await);
        iam.create_role()
            .role_name(name)
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send()
            .await
            .unwrap();
        iam
    }

    pub async fn count(&self, op: &str) -> u64 {
        self.calls().await.get(op).copied().unwrap_or(0)
    }

    /// Queue literal GetCostAndUsage answers (moto hands them out in order, one per distinct request body).
    pub async fn seed_cost_and_usage(&self, results: Vec<Value>) {
        self.post(
            "/moto-api/static/ce/cost-and-usage-results",
            json!({ "results": results }),
        )
        .await;
    }

    pub async fn seed_services(&self, names: &[&str]) {
        self.post(
            "/_emulator/ce/dimension-values",
            json!({ "SERVICE": names }),
        )
        .await;
    }

    pub async fn fault(&self, op: &str, error_type: &str, times: u32) {
        self.post(
            "/_emulator/faults",
            json!({"operation": op, "status": 400, "error_type": error_type, "message": format!("injected {error_type}"), "times": times}),
        )
        .await;
    }

    pub async fn latency(&self, ms: u64) {
        self.post("/_emulator/latency", json!({ "ms": ms })).await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Environment for the server: hermetic AWS settings pointing at the emulator.
pub fn aws_env(emu: Option<&Emulator>) -> Vec<(String, String)> {
    let mut env = vec![
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_CONFIG_FILE".into(), "/nonexistent/aws-config".into()),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            "/nonexistent/aws-credentials".into(),
        ),
        ("AWS_REGION".into(), "us-east-1".into()),
        (
            "BEDROCK_COST_MCP_LOG".into(),
            "bedrock_cost_mcp=info,rmcp=warn".into(),
        ),
        // CUR month rollups go to this test process's scratch folder, not the user's cache.
        (
            "BEDROCK_COST_MCP_CUR_ROLLUP_DIR".into(),
            scratch("cur-rollups"),
        ),
        // Every server runs on the tests' calendar (see `now`).
        ("BEDROCK_COST_MCP_NOW".into(), now_rfc3339()),
    ];
    // Each server gets a home of its own: nothing is read from or left in the user's caches
    // (price cache, ledger, demo export), and no two servers share state by accident.
    let home = fresh_dir("home");
    for (k, sub) in [
        ("HOME", ""),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CONFIG_HOME", ".config"),
    ] {
        env.push((
            k.into(),
            format!("{home}/{sub}").trim_end_matches('/').into(),
        ));
    }
    if let Some(e) = emu {
        env.push(("AWS_ENDPOINT_URL".into(), e.url.clone()));
        env.push(("AWS_ACCESS_KEY_ID".into(), "testing".into()));
        env.push(("AWS_SECRET_ACCESS_KEY".into(), "testing".into()));
    }
    env
}

/// The tests' calendar: `BEDROCK_COST_MCP_NOW` when the test process has it (tools/test.sh
/// runs the `calendar` tests on hard dates that way), else the real time when the process
/// started. Every server and emulator a test starts is pinned to it, so a suite that runs
/// across midnight still sees one date; tests compute their expected dates from it.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    static NOW: std::sync::OnceLock<chrono::DateTime<chrono::Utc>> = std::sync::OnceLock::new();
    *NOW.get_or_init(|| match std::env::var("BEDROCK_COST_MCP_NOW") {
        Ok(raw) if !raw.trim().is_empty() => {
            let raw = raw.trim();
            chrono::DateTime::parse_from_rfc3339(raw)
                .map(|t| t.with_timezone(&chrono::Utc))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(12, 0, 0).unwrap().and_utc())
                })
                .unwrap_or_else(|_| panic!("BEDROCK_COST_MCP_NOW={raw} is not RFC 3339 or a date"))
        }
        // A server's pinned clock runs on while it lives: keep clear of midnight so that no
        // server started late in the run crosses into the next day.
        _ => {
            use chrono::Timelike;
            let t = chrono::Utc::now();
            let latest = t.date_naive().and_hms_opt(23, 50, 0).unwrap().and_utc();
            if t.hour() == 23 && t > latest {
                latest
            } else {
                t
            }
        }
    })
}

/// The tests' today (UTC).
pub fn today() -> chrono::NaiveDate {
    now().date_naive()
}

pub fn now_rfc3339() -> String {
    now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// This test process's scratch root: a fresh folder under the target directory (never a
/// predictable /tmp path another run or user could have left behind). Roots of earlier runs
/// older than a day are removed.
fn scratch_root() -> &'static std::path::Path {
    static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("it-scratch");
        std::fs::create_dir_all(&base).expect("create the scratch base");
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(86_400));
                if old {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(&base)
            .expect("create the scratch root")
            .keep()
    })
}

/// A folder private to this test process (the same one for the same name).
fn scratch(name: &str) -> String {
    scratch_root().join(name).to_string_lossy().into_owned()
}

/// A new folder, private to one caller.
pub fn fresh_dir(name: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = scratch_root().join(format!("{name}-{n}"));
    std::fs::create_dir_all(&dir).expect("create a scratch folder");
    dir.to_string_lossy().into_owned()
}

/// The real binary with the tests' hermetic environment: none of the caller's AWS or
/// BEDROCK_COST_MCP variables, a private home, the tests' calendar.
pub fn command() -> std::process::Command {
    let mut cmd = std::process::Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(aws_env(None));
    cmd
}

fn clean_env(cmd: &mut tokio::process::Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
            cmd.env_remove(k);
        }
    }
}

/// Spawn the server on stdio with `args` (before `serve`) and connect rmcp's client.
pub async fn stdio_client(
    emu: Option<&Emulator>,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Client {
    stdio_client_with((), emu, args, extra_env).await
}

/// [`stdio_client`] with a client handler of the test's own (capabilities, elicitation answers).
pub async fn stdio_client_with<H: rmcp::ClientHandler>(
    handler: H,
    emu: Option<&Emulator>,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> RunningService<RoleClient, H> {
    let env = aws_env(emu);
    let transport = TokioChildProcess::new(tokio::process::Command::new(bin()).configure(|cmd| {
        clean_env(cmd);
        cmd.args(args).arg("serve");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.stderr(Stdio::null());
    }))
    .expect("spawn the server");
    handler
        .serve(transport)
        .await
        .expect("initialize over stdio")
}

/// The server on HTTP (a free loopback port); stopped on drop.
pub struct HttpServer {
    child: Child,
    pub url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl HttpServer {
    pub fn start(emu: Option<&Emulator>, args: &[&str], extra_env: &[(&str, &str)]) -> HttpServer {
        let mut cmd = Command::new(bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(args).args(["serve", "--http", "127.0.0.1:0"]);
        cmd.envs(aws_env(emu)).envs(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let stderr = child.stderr.take().expect("stderr");
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        let url = loop {
            line.clear();
            let n = reader.read_line(&mut line).expect("read server stderr");
            assert!(n > 0, "server exited before listening");
            if let Some(rest) = line.trim().strip_prefix("listening on ") {
                break rest.to_string();
            }
        };
        // Keep draining stderr (so the server never blocks on a full pipe) into `log`.
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for l in reader.lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        HttpServer { child, url, log }
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// An rmcp client sending `Authorization: Bearer <token>`.
    pub async fn client_with_token(&self, token: &str) -> Result<Client, String> {
        use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
        let cfg =
            StreamableHttpClientTransportConfig::with_uri(self.url.clone()).auth_header(token);
        ().serve(StreamableHttpClientTransport::from_config(cfg))
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn client(&self) -> Client {
        ().serve(StreamableHttpClientTransport::from_uri(self.url.clone()))
            .await
            .expect("initialize over HTTP")
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Call a tool; protocol errors fail the test, tool errors are returned.
pub async fn call<H: rmcp::ClientHandler>(
    client: &RunningService<RoleClient, H>,
    name: &str,
    args: Value,
) -> CallToolResult {
    let args = args.as_object().cloned().unwrap_or_default();
    tokio::time::timeout(
        Duration::from_secs(60),
        client.call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args)),
    )
    .await
    .expect("tool call timed out")
    .expect("tool call failed at the protocol level")
}

/// Write a CUR export with the real binary's `generate-cur --out DIR ARGS`; its truth.json.
pub fn generate_cur(dir: &std::path::Path, args: &[&str]) -> Value {
    let out = crate::common::command()
        .args(["generate-cur", "--out", dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap()
}

/// Ask `bedrock_spend`, following `next_cursor` until the last page; the first answer with all
/// rows (checked against its `row_count`).
pub async fn ask_all(client: &Client, args: Value) -> Value {
    let mut out = ok(&call(client, "bedrock_spend", args.clone()).await);
    let mut cursor = out.get("next_cursor").cloned();
    let mut pages = 1;
    while let Some(c) = cursor.filter(serde_json::Value::is_string) {
        let mut next_args = args.clone();
        next_args["cursor"] = c;
        let page = ok(&call(client, "bedrock_spend", next_args).await);
        out["rows"]
            .as_array_mut()
            .unwrap()
            .extend(page["rows"].as_array().unwrap().iter().cloned());
        cursor = page.get("next_cursor").cloned();
        pages += 1;
    }
    assert_eq!(
        out["rows"].as_array().unwrap().len() as u64,
        out["row_count"].as_u64().unwrap(),
        "pages add up ({pages} pages)"
    );
    out
}

/// The structured content of a successful call.
pub fn ok(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "tool error: {}", text(r));
    r.structured_content.clone().expect("structuredContent")
}

/// The text of an error result.
pub fn err(r: &CallToolResult) -> String {
    assert_eq!(
        r.is_error,
        Some(true),
        "expected a tool error, got {:?}",
        r.structured_content
    );
    text(r)
}

/// (value of `keys[key]`, amount) of each row of a `bedrock_spend` answer, in answer order.
pub fn rows_by(out: &Value, key: &str) -> Vec<(String, f64)> {
    out["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["keys"][key].as_str().expect("row key").to_string(),
                r["amount"].as_f64().expect("row amount"),
            )
        })
        .collect()
}

pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A GetCostAndUsage answer with one month and (tag value, amount) groups; "" is untagged.
pub fn ce_month(
    start: &str,
    end: &str,
    key: &str,
    groups: &[(&str, &str)],
    next: Option<&str>,
) -> Value {
    let groups: Vec<Value> = groups
        .iter()
        .map(|(v, amt)| json!({"Keys": [format!("iamPrincipal/{key}${v}")], "Metrics": {"UnblendedCost": {"Amount": amt, "Unit": "USD"}}}))
        .collect();
    let mut r = json!({
        "GroupDefinitions": [{"Type": "TAG", "Key": format!("iamPrincipal/{key}")}],
        "ResultsByTime": [{"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": groups, "Estimated": false}],
        "DimensionValueAttributes": []
    });
    if let Some(n) = next {
        r["NextPageToken"] = json!(n);
    }
    r
}

/// First day of last month and of this month, as CE strings.
pub fn last_month() -> (String, String) {
    use chrono::Datelike;
    let today = today();
    let this = today.with_day(1).unwrap();
    let last = (this - chrono::Duration::days(1)).with_day(1).unwrap();
    (last.to_string(), this.to_string())
}

impl Emulator {
    /// Create `bucket` and upload every file under `dir` to `prefix/<relative path>` (S3 path style).
    pub async fn upload_dir(&self, bucket: &str, prefix: &str, dir: &std::path::Path) {
        let r = self
            .http
            .put(format!("{}/{bucket}", self.url))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().to_str().unwrap().to_string();
                    let body = std::fs::read(&p).unwrap();
                    let r = self
                        .http
                        .put(format!("{}/{bucket}/{prefix}/{rel}", self.url))
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success(), "upload {rel}: {}", r.status());
                }
            }
        }
    }
}

/// An AWS SDK configuration pointing at the emulator (for seeding it from tests).
pub async fn sdk_config(emu: &Emulator) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&emu.url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

/// The Agent Registry emulator (both planes on one port); stopped on drop.
pub struct RegistryEmulator {
    child: Child,
    pub url: String,
}

impl RegistryEmulator {
    pub fn start() -> RegistryEmulator {
        let (child, url) = spawn_ready(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/registry_emulator/registry_emulator.py"
        ));
        RegistryEmulator { child, url }
    }

    /// The environment that points the SDK's agent-registry clients here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_AGENT_REGISTRY", self.url.clone()),
            ("AWS_ENDPOINT_URL_AGENT_REGISTRY_CONTROL", self.url.clone()),
        ]
    }

    pub async fn post(&self, path: &str, body: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "registry emulator {path}: {}",
            r.status()
        );
    }

    pub async fn calls(&self) -> HashMap<String, u64> {
        reqwest::get(format!("{}/_emulator/calls", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for RegistryEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One CUR 2.0 line item as AWS writes it, for the emulator's Cost Explorer engine
/// ([`Emulator::load_ce_lines`]): `line_item_type` Usage, Credit, Refund, Tax, ...; `principal`
/// "" for a line without an IAM principal (credits, refunds and tax; AgentCore compute and
/// provisioned throughput), else its ARN (the line's account is the ARN's); `tags` as (key,
/// value) of `iamPrincipal/<key>`; `cost` as written in the export (unblended = net unblended).
pub fn ce_line(
    day: chrono::NaiveDate,
    line_item_type: &str,
    principal: &str,
    tags: &[(&str, &str)],
    service: &str,
    usage_type: &str,
    cost: &str,
) -> Value {
    let product_code = match service {
        "Amazon Bedrock" => "AmazonBedrock".to_string(),
        "Amazon Bedrock Service" => "AmazonBedrockService".to_string(),
        "Amazon Bedrock AgentCore" => "AmazonBedrockAgentCore".to_string(),
        other => other.replace(' ', ""),
    };
    let account = principal.split(':').nth(4).unwrap_or("123456789012");
    let tags: serde_json::Map<String, Value> = tags
        .iter()
        .map(|(k, v)| (format!("iamPrincipal/{k}"), json!(v)))
        .collect();
    json!({
        "line_item_usage_start_date": format!("{day}T00:00:00Z"),
        "line_item_usage_account_id": account,
        "line_item_line_item_type": line_item_type,
        "line_item_iam_principal": if principal.is_empty() { Value::Null } else { json!(principal) },
        "line_item_product_code": product_code,
        "line_item_usage_type": usage_type,
        "line_item_unblended_cost": cost,
        "line_item_net_unblended_cost": cost,
        "line_item_currency_code": "USD",
        "product_region_code": "us-east-1",
        "product": {"servicename": service},
        "tags": tags,
    })
}

/// First day of last month and of this month (the tests' calendar), as dates.
pub fn last_month_dates() -> (chrono::NaiveDate, chrono::NaiveDate) {
    let (start, end) = last_month();
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    (d(&start), d(&end))
}

impl Emulator {
    /// Load line items into the Cost Explorer engine (replacing any loaded before): from then on
    /// GetCostAndUsage and GetDimensionValues are computed from them, for every account.
    pub async fn load_ce_lines(&self, lines: &[Value]) {
        self.post("/_emulator/ce/line-items", json!({ "line_items": lines }))
            .await;
    }

    /// The most groups one computed GetCostAndUsage answer holds (then a NextPageToken).
    pub async fn ce_page_size(&self, groups: usize) {
        self.post("/_emulator/ce/page-size", json!({ "groups": groups }))
            .await;
    }

    /// The request bodies of `op` since the last reset, in order (`GET /_emulator/requests`).
    pub async fn requests(&self, op: &str) -> Vec<Value> {
        let all: HashMap<String, Vec<Value>> = self.get_json("/_emulator/requests").await;
        all.get(op).cloned().unwrap_or_default()
    }
}

// Comparing answers with a generator's truth.json (spend_cur, spend_athena).

pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// To the cent.
pub fn assert_cents(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 0.01, "{what}: got {got}, want {want}");
}

/// Sum rows by their (joined) key values.
pub fn by_keys(out: &Value, keys: &[&str]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for r in out["rows"].as_array().unwrap() {
        assert_eq!(
            r["others"],
            json!(false),
            "top_n must be large enough for exact comparison"
        );
        let k = keys
            .iter()
            .map(|k| r["keys"][*k].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("|");
        *m.entry(k).or_insert(0.0) += num(&r["amount"]);
    }
    m
}

/// Every key of the truth map `want` (`""` renamed to `rename_empty`; zero amounts left out) is
/// in `got` with the same amount to the cent, and `got` has no other key.
pub fn assert_close(got: &BTreeMap<String, f64>, want: &Value, rename_empty: &str) {
    let want: BTreeMap<String, f64> = want
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                if k.is_empty() {
                    rename_empty.to_string()
                } else {
                    k.clone()
                },
                num(v),
            )
        })
        .filter(|(_, v)| v.abs() > 1e-9)
        .collect();
    let only_got: Vec<_> = got.iter().filter(|(k, _)| !want.contains_key(*k)).collect();
    let only_want: Vec<_> = want.iter().filter(|(k, _)| !got.contains_key(*k)).collect();
    assert!(
        only_got.is_empty() && only_want.is_empty(),
        "only in answer: {only_got:?}; only in truth: {only_want:?}"
    );
    for (k, v) in &want {
        assert_cents(got[k], *v, k);
    }
}

/// A truth map plus the `no_principal` row a principal-dependent grouping shows for the lines
/// without any principal (AgentCore compute, Guardrails, provisioned throughput).
pub fn with_no_principal(want: &Value, truth: &Value) -> Value {
    let mut m = want.as_object().unwrap().clone();
    m.insert("no_principal".into(), truth["no_principal"].clone());
    Value::Object(m)
}
