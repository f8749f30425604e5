//! The CLI for people: the same answers as the tools, tables or JSON, and
//! exit codes that mean something (0 ok, 2 bad input, 1 a failure upstream).

mod common;

use common::BIN;
use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
            cmd.env_remove(k);
        }
    }
    // Hermetic: no profile files, no instance metadata, a private state folder.
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_REGION", "us-east-1")
        .env("XDG_STATE_HOME", std::env::temp_dir().join("bcm-cli-state"));
    let out = cmd.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn spend_prints_a_table_and_json_that_agree() {
    let (code, table, _) = run(&["--demo", "spend", "--period", "last_month", "--by", "team"]);
    assert_eq!(code, 0);
    assert!(
        table.contains("tag:team") && table.contains("untagged") && table.contains("reconciled"),
        "{table}"
    );
    let (code, json, _) = run(&[
        "--demo",
        "spend",
        "--period",
        "last_month",
        "--by",
        "team",
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json).unwrap();
    let total = v["total"].as_f64().unwrap();
    assert!(
        table.contains(&bedrock_cost_mcp::tools::fmt_money(total)),
        "table total matches JSON {total}"
    );
}

#[test]
fn call_runs_any_tool_and_exit_codes_mean_something() {
    let (code, out, _) = run(&[
        "--demo",
        "call",
        "untagged_principals",
        r#"{"include_no_spend": true}"#,
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["not_in_iam"][0]["principal"],
        "arn:aws:iam::123456789012:role/LegacyBatchRole"
    );
    let (code, _, err) = run(&[
        "--demo",
        "call",
        "bedrock_spend",
        r#"{"period": "someday"}"#,
    ]);
    assert_eq!(code, 2, "bad input");
    assert!(err.contains("last_month"), "{err}");
    let (code, _, err) = run(&["--demo", "call", "bedrock_spend", "{not json"]);
    assert_eq!(code, 2);
    assert!(err.contains("not JSON"));
    let (code, _, err) = run(&["call", "bedrock_spend", "{}"]);
    assert_eq!(code, 1, "no credentials is a failure upstream");
    assert!(err.contains("no AWS credentials"), "{err}");
}
