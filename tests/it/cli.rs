//! The CLI for people: the same answers as the tools, tables or JSON, and
//! exit codes that mean something (0 ok, 2 bad input, 1 a failure upstream).

use chrono::Datelike;
use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    let mut cmd = crate::common::command();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
            cmd.env_remove(k);
        }
    }
    // Hermetic: no profile files, no instance metadata, a private home; the tests' calendar.
    cmd.envs(crate::common::aws_env(None))
        .env_remove("BEDROCK_COST_MCP_LOG");
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
        table.contains(&bedrock_cost_mcp::domain::label::fmt_money(total)),
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
    // Every tool, the argument-less and the write tools too.
    let (code, out, _) = run(&["--demo", "call", "list_registries", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["searchable"],
        serde_json::json!(["rgPlatformTool1", "rgFinanceAgent2"])
    );
    let tag = r#"{"kind": "user", "name": "alice", "tags": {"iamPrincipal/team": "ml-platform"}, "confirm": true}"#;
    let (code, _, err) = run(&["--demo", "call", "tag_principal", tag]);
    assert_eq!(code, 2, "a write tool without --allow-writes");
    assert!(err.contains("--allow-writes"), "{err}");
    let (code, out, err) = run(&["--demo", "--allow-writes", "call", "tag_principal", tag]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Tagged user alice with 1 tag(s)."), "{out}");
    let (code, _, err) = run(&["--demo", "call", "no_such_tool"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown tool 'no_such_tool'") && err.contains("list_registries"),
        "{err}"
    );
}

/// The structured answer of a tool, asked over MCP from the real server.
fn tool_answer(tool: &str, args: Value) -> Value {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = crate::common::stdio_client(None, &["--demo"], &[]).await;
        let v = crate::common::ok(&crate::common::call(&client, tool, args).await);
        client.cancel().await.unwrap();
        v
    })
}

/// Drop the fields that say when an answer was made.
fn timeless(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("as_of");
    }
    v
}

#[test]
fn untagged_prints_tables_and_json_equal_to_the_tool() {
    let (code, json, _) = run(&["--demo", "untagged", "--json"]);
    assert_eq!(code, 0);
    let cli: Value = serde_json::from_str(&json).unwrap();
    let tool = tool_answer(
        "untagged_principals",
        serde_json::json!({"kind": "all", "period": "last_30_days", "max_results": 50}),
    );
    assert_eq!(timeless(cli.clone()), timeless(tool));

    let (code, table, err) = run(&["--demo", "untagged"]);
    assert_eq!(code, 0);
    assert!(
        err.is_empty(),
        "no progress noise when stderr is not a terminal: {err:?}"
    );
    let lines: Vec<&str> = table.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("KIND")).unwrap();
    assert_eq!(
        lines[header].split_whitespace().collect::<Vec<_>>(),
        ["KIND", "NAME", "MISSING", "SPEND", "FLAGS"]
    );
    // One aligned row per finding: the SPEND column ends at the same place on every line.
    let spend_end = lines[header].find("SPEND").unwrap() + "SPEND".len();
    for (i, f) in cli["findings"].as_array().unwrap().iter().enumerate() {
        let line = lines[header + 1 + i];
        let spend = bedrock_cost_mcp::domain::label::fmt_money(f["spend"].as_f64().unwrap());
        assert!(line.starts_with(f["kind"].as_str().unwrap()), "{line}");
        assert!(line.contains(f["name"].as_str().unwrap()), "{line}");
        assert_eq!(&line[spend_end - spend.len()..spend_end], spend, "{line}");
    }
    assert!(table.contains("arn:aws:iam::123456789012:role/LegacyBatchRole  deleted_or_renamed"));
    assert!(table.contains("aws iam tag-role --role-name SupportBotRole"));
}

#[test]
fn check_budget_exit_codes_follow_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("budgets.toml");
    std::fs::write(
        &policy,
        "[[budgets]]\ntag = \"team=web\"\nmonthly_usd = 10\n",
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    // A 1,000 USD job against a 10 USD monthly budget is denied whatever was spent so far.
    let (code, table, _) = run(&[
        "--demo",
        "--budget-policy",
        policy,
        "check-budget",
        "--who",
        "tag:team=web",
        "--cost-usd",
        "1000",
    ]);
    assert_eq!(code, 3, "deny exits 3: {table}");
    assert!(
        table.starts_with("verdict   DENY\nwho       tag:team=web\n"),
        "{table}"
    );
    assert!(table.contains("budget    "), "{table}");
    let (code, json, _) = run(&[
        "--demo",
        "--budget-policy",
        policy,
        "check-budget",
        "--who",
        "tag:team=web",
        "--cost-usd",
        "1000",
        "--json",
    ]);
    assert_eq!(code, 3);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"], "deny");
    assert_eq!(v["budget"]["limit_usd"], 10.0);

    // The demo organisation's own budgets: ml-platform's is far above its spend.
    let (code, table, _) = run(&[
        "--demo",
        "check-budget",
        "--who",
        "tag:team=ml-platform",
        "--cost-usd",
        "5",
    ]);
    assert_eq!(code, 0, "{table}");
    assert!(table.starts_with("verdict   ALLOW\n"), "{table}");
    assert!(table.contains("planned   5.00\n"), "{table}");
    // The CLI's check is a what-if unless --record.
    assert!(table.contains("what-if (record false)"), "{table}");
    let (code, _, err) = run(&[
        "--demo",
        "check-budget",
        "--model",
        "no-such-model",
        "--input-tokens",
        "5",
    ]);
    assert_eq!(code, 2, "bad input");
    assert!(err.contains("unknown model"), "{err}");
    let (code, _, _) = run(&["--demo", "check-budget", "--input-tokens", "many"]);
    assert_eq!(code, 2, "bad flag");
    let (code, _, err) = run(&["check-budget", "--cost-usd", "1"]);
    assert_eq!(code, 1, "no credentials is a failure upstream: {err}");
}

#[test]
fn registry_search_prints_hits_and_json_equal_to_the_tool() {
    let (code, json, _) = run(&["--demo", "registry", "search", "invoice", "--json"]);
    assert_eq!(code, 0);
    let cli: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        cli,
        tool_answer("search_registry", serde_json::json!({"query": "invoice"}))
    );
    let (code, table, _) = run(&["--demo", "registry", "search", "invoice"]);
    assert_eq!(code, 0);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip_while(|l| !l.starts_with("TYPE"))
        .take(3)
        .map(|l| l.split_whitespace().collect())
        .collect();
    // The role's spend this month, summed by hand from the demo organisation's line items
    // for the tests' today (the demo data follows the calendar clock).
    let today = crate::common::today();
    let month_start = today.with_day(1).unwrap();
    let by_hand: f64 = bedrock_cost_mcp::demo_data::line_items(today)
        .iter()
        .filter(|l| l.usage_start >= month_start && l.usage_start < today)
        .filter(|l| l.principal.contains(":assumed-role/InvoiceAgentRole/"))
        .map(|l| l.unblended)
        .sum();
    let spend = bedrock_cost_mcp::domain::label::fmt_money(by_hand);
    assert_eq!(
        rows,
        vec![
            vec![
                "TYPE", "NAME", "VERSION", "REGISTRY", "RUNS", "AS", "SPEND", "THIS", "MONTH"
            ],
            vec![
                "AGENT",
                "invoice-processing-agent",
                "1.0",
                "finance-agents",
                "123456789012:role/InvoiceAgentRole",
                spend.as_str()
            ],
            vec![
                "MCP",
                "erp-ledger-mcp",
                "1.0",
                "finance-agents",
                "123456789012:role/InvoiceAgentRole",
                spend.as_str()
            ],
        ]
    );
    let spend = bedrock_cost_mcp::domain::label::fmt_money(
        cli["hits"][0]["role_spend_this_month"].as_f64().unwrap(),
    );
    assert!(table.contains(&spend));
    let (code, _, err) = run(&["--demo", "registry", "search", "x", "--type", "robot"]);
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn a_long_question_shows_progress_on_a_terminal_only() {
    // Cost Explorer behind 1.2 s of latency; `script` gives the command a terminal (with a
    // TERM, as every terminal sets: without one, indicatif takes it for a dumb terminal and
    // draws nothing).
    let emu = crate::common::Emulator::start();
    emu.latency(1200).await;
    let env: Vec<String> = crate::common::aws_env(Some(&emu))
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let cmd = format!(
        "env -i PATH=/usr/bin:/bin TERM=xterm {} {} spend --period last_month --source cost_explorer",
        env.join(" "),
        crate::common::bin()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}");
    assert!(seen.contains("\r\x1b[2K"), "a progress line: {seen:?}");
    assert!(
        seen.contains("bedrock_spend (1s)"),
        "elapsed time shown: {seen:?}"
    );
    assert!(seen.contains("Bedrock spend "), "then the answer: {seen:?}");
}

#[test]
fn each_subcommand_lists_its_own_options_before_the_server_options() {
    for (sub, own) in [
        ("spend", "--period"),
        ("check-budget", "--cost-usd"),
        ("untagged", "--required-keys"),
    ] {
        let (code, help, _) = run(&[sub, "--help"]);
        assert_eq!(code, 0, "{help}");
        let own_at = help.find(own).unwrap_or_else(|| panic!("{sub}: {help}"));
        let heading = help
            .find("Server options (every subcommand):")
            .unwrap_or_else(|| panic!("{sub}: {help}"));
        let server_flag = help.find("--cur <CUR>").unwrap();
        assert!(own_at < heading && heading < server_flag, "{sub}: {help}");
    }
}

#[test]
fn empty_settings_from_a_bundle_or_client_are_unset_not_empty_names() {
    // An MCP bundle passes a setting the user left empty as an empty variable.
    let out = crate::common::command()
        .env("BEDROCK_COST_MCP_CUR", "")
        .env("BEDROCK_COST_MCP_INVOCATION_LOGS", " ")
        .env("AWS_PROFILE", "")
        .args(["--demo", "spend", "--period", "last_month", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["total"].as_f64().unwrap() > 0.0, "{v}");
}
