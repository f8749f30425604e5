//! The client configurations in README.md ("Connect your MCP client") and mcp.json, run as
//! written: every stdio entry (and every `claude mcp add` line) must start the server, which must
//! list its tools to a real MCP client; each client's section must show both the demo and an
//! AWS-profile entry, in that client's own keys.

use std::process::Stdio;

use rmcp::ServiceExt;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use serde_json::Value;

const README: &str = include_str!("../../README.md");
const MCP_JSON: &str = include_str!("../../mcp.json");

/// One way a client starts the server.
#[derive(Debug)]
struct Entry {
    origin: String,
    name: String,
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn env_of(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The stdio entries of a client configuration document, checked against its client's keys.
fn entries(origin: &str, doc: &Value) -> Vec<Entry> {
    let (key, servers) = ["mcpServers", "servers", "context_servers"]
        .iter()
        .find_map(|k| doc.get(*k).map(|s| (*k, s)))
        .unwrap_or_else(|| panic!("{origin}: no mcpServers, servers or context_servers key"));
    let mut out = Vec::new();
    for (name, e) in servers.as_object().unwrap() {
        if e.get("url").is_some() {
            // An HTTP entry (mcp.json's bedrock-cost-http); the HTTP tests cover that transport.
            assert_eq!(e["url"], "http://127.0.0.1:8000/mcp", "{origin} {name}");
            continue;
        }
        let (command, args, env) = match (key, &e["command"]) {
            // Zed before mid-2025: "command": {"path", "args", "env"}.
            ("context_servers", Value::Object(c)) => (
                c["path"].as_str().unwrap().to_string(),
                strings(&c["args"]),
                env_of(c.get("env").unwrap_or(&Value::Null)),
            ),
            (_, Value::String(c)) => (c.clone(), strings(&e["args"]), env_of(&e["env"])),
            _ => panic!("{origin} {name}: no command"),
        };
        match key {
            // VS Code wants the transport type on every entry.
            "servers" => assert_eq!(e["type"], "stdio", "{origin} {name}"),
            "context_servers" => assert!(e.get("type").is_none(), "{origin} {name}"),
            _ => assert!(
                e.get("type").is_none_or(|t| t == "stdio"),
                "{origin} {name}"
            ),
        }
        out.push(Entry {
            origin: origin.to_string(),
            name: name.clone(),
            command,
            args,
            env,
        });
    }
    out
}

/// The README's ```json blocks that configure a client, with the heading they sit under.
fn readme_documents() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    let mut heading = String::new();
    let mut lines = README.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix("### ") {
            heading = h.to_string();
        }
        if line.trim() == "```json" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            let doc: Value = serde_json::from_str(&body.join("\n"))
                .unwrap_or_else(|e| panic!("README json block under {heading}: {e}"));
            if ["mcpServers", "servers", "context_servers"]
                .iter()
                .any(|k| doc.get(*k).is_some())
            {
                docs.push((heading.clone(), doc));
            }
        }
    }
    docs
}

/// `claude mcp add [--env K=V ...] NAME -- COMMAND ARGS...` lines of the README.
fn claude_code_entries() -> Vec<Entry> {
    README
        .lines()
        .filter(|l| l.starts_with("claude mcp add ") && l.contains(" -- "))
        .map(|l| {
            let (options, command) = l.split_once(" -- ").unwrap();
            let options: Vec<&str> = options.split_whitespace().skip(3).collect();
            let mut env = Vec::new();
            let mut name = String::new();
            let mut i = 0;
            while i < options.len() {
                match options[i] {
                    "--env" | "-e" => {
                        let (k, v) = options[i + 1].split_once('=').unwrap();
                        env.push((k.to_string(), v.to_string()));
                        i += 2;
                    }
                    "--scope" | "-s" | "--transport" => i += 2,
                    n => {
                        name = n.to_string();
                        i += 1;
                    }
                }
            }
            let mut words = command.split_whitespace().map(str::to_string);
            Entry {
                origin: "Claude Code".into(),
                name,
                command: words.next().unwrap(),
                args: words.collect(),
                env,
            }
        })
        .collect()
}

/// Start the entry as a client would (command resolved to the built binary, the entry's
/// environment on top of hermetic AWS settings) and return its tool names.
async fn tools_of(e: &Entry) -> Vec<String> {
    assert!(
        e.command == "bedrock-cost-mcp" || e.command.ends_with("/bedrock-cost-mcp"),
        "{} {}: command {}",
        e.origin,
        e.name,
        e.command
    );
    let transport = TokioChildProcess::new(
        tokio::process::Command::new(crate::common::bin()).configure(|cmd| {
            for (k, _) in std::env::vars() {
                if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
                    cmd.env_remove(k);
                }
            }
            cmd.envs(crate::common::aws_env(None));
            cmd.envs(e.env.iter().cloned());
            cmd.args(&e.args);
            cmd.stderr(Stdio::null());
        }),
    )
    .expect("spawn");
    let Ok(started) =
        tokio::time::timeout(std::time::Duration::from_secs(30), ().serve(transport)).await
    else {
        panic!("{} {}: no initialize answer", e.origin, e.name);
    };
    let client = started.unwrap_or_else(|err| panic!("{} {}: {err}", e.origin, e.name));
    let tools = client.list_all_tools().await.expect("tools/list");
    let _ = client.cancel().await;
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names
}

fn is_demo(e: &Entry) -> bool {
    e.args == ["--demo", "serve"] && e.env.is_empty()
}

fn is_profile(e: &Entry) -> bool {
    e.args == ["serve"] && e.env.iter().any(|(k, _)| k == "AWS_PROFILE")
}

#[tokio::test]
async fn every_documented_client_configuration_starts_the_server() {
    let mut all: Vec<Entry> = Vec::new();
    let mut sections = Vec::new();
    for (heading, doc) in readme_documents() {
        let found = entries(&heading, &doc);
        assert!(
            found.iter().any(is_demo) && found.iter().any(is_profile),
            "{heading}: needs a --demo entry and an AWS_PROFILE entry: {found:?}"
        );
        sections.push(heading);
        all.extend(found);
    }
    let claude_code = claude_code_entries();
    assert!(claude_code.iter().any(is_demo) && claude_code.iter().any(is_profile));
    all.extend(claude_code);
    for heading in ["Claude Desktop", "VS Code", "Cursor", "Zed"] {
        assert!(
            sections.iter().any(|s| s == heading),
            "README has no {heading} configuration: {sections:?}"
        );
    }
    // Zed: the current inline form and the earlier nested one.
    assert_eq!(sections.iter().filter(|s| *s == "Zed").count(), 2);

    // mcp.json: the same entries, names and arguments as the README shows.
    let mcp: Value = serde_json::from_str(MCP_JSON).expect("mcp.json parses");
    let from_file = entries("mcp.json", &mcp);
    let demo = from_file
        .iter()
        .find(|e| e.name == "bedrock-cost-demo")
        .unwrap();
    assert!(is_demo(demo), "{demo:?}");
    let profile = from_file.iter().find(|e| e.name == "bedrock-cost").unwrap();
    assert!(is_profile(profile), "{profile:?}");
    for e in &all {
        assert!(
            e.name == "bedrock-cost" || e.name == "bedrock-cost-demo",
            "{} uses the name {}; mcp.json's are bedrock-cost and bedrock-cost-demo",
            e.origin,
            e.name
        );
    }
    all.extend(from_file);

    let expected = vec![
        "bedrock_spend",
        "check_budget",
        "cost_allocation_tags",
        "estimate_cost",
        "get_registry_record",
        "list_registries",
        "search_registry",
        "spend_anomalies",
        "untagged_principals",
    ];
    assert!(all.len() >= 14, "{} entries", all.len());
    for e in &all {
        assert_eq!(tools_of(e).await, expected, "{} {}", e.origin, e.name);
    }
}

#[test]
fn version_flag_prints_the_crate_version() {
    let out = crate::common::command().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("bedrock-cost-mcp {}", env!("CARGO_PKG_VERSION"))
    );
}
