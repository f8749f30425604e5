//! Answers that explain themselves (issue #18): an empty answer says whether the filter or the
//! calendar is the cause, adjustments follow the filter, and labels stay distinguishable. The
//! real binary on the demo organisation; expectations computed here from the demo line items.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::*;
use bedrock_cost_mcp::demo_data::line_items;
use serde_json::{Value, json};

/// Last month's usage lines of the demo organisation: (team or "", model, amount).
fn last_month_usage() -> Vec<(String, String, f64)> {
    let (start, end) = last_month();
    line_items(today())
        .into_iter()
        .filter(|l| {
            let d = l.usage_start.to_string();
            l.line_item_type == "Usage" && d >= start && d < end
        })
        .map(|l| {
            let team = l
                .tags
                .iter()
                .find(|(k, _)| k == "iamPrincipal/team")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (team, l.model.clone(), l.unblended)
        })
        .collect()
}

fn notes(out: &Value) -> String {
    out["notes"].to_string()
}

#[tokio::test]
async fn a_filter_value_that_matches_nothing_says_so_and_names_the_closest() {
    let usage = last_month_usage();
    let teams: BTreeSet<String> = usage
        .iter()
        .map(|u| u.0.clone())
        .filter(|t| !t.is_empty())
        .collect();
    // A real team, misspelled: two letters swapped (and not another team's name).
    let real = teams.iter().max_by_key(|t| t.len()).unwrap().clone();
    let mut chars: Vec<char> = real.chars().collect();
    chars.swap(1, 2);
    let typo: String = chars.into_iter().collect();
    assert!(!teams.contains(&typo), "{typo}");

    let client = stdio_client(None, &["--demo"], &[]).await;
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "filter": {"team": typo}}),
    )
    .await);
    assert_eq!(out["total"], json!(0.0));
    let n = notes(&out);
    assert!(
        n.contains(&format!("\\\"{typo}\\\" matches nothing")),
        "{n}"
    );
    assert!(
        n.contains(&format!("closest values with spend: {real}")),
        "{n}"
    );
    assert!(
        n.contains(&format!("{} values with spend", teams.len())),
        "{n}"
    );
    // A month already closed: billing lag is not the reason.
    assert!(!n.contains("lags 24-48 h"), "{n}");
    // Credits name no team: they do not pass a team filter.
    assert_eq!(out["adjustments"], json!([]));
    assert_eq!(out["total_after_adjustments"], json!(0.0));

    // An unknown model: the same, and the credits do not follow it either.
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "filter": {"model": "Claude Hiaku 4.5"}}),
    )
    .await);
    assert_eq!(out["total"], json!(0.0));
    assert_eq!(out["adjustments"], json!([]));
    assert_eq!(out["total_after_adjustments"], json!(0.0));
    let n = notes(&out);
    assert!(
        n.contains("closest values with spend: Claude Haiku 4.5"),
        "{n}"
    );

    // The CLI prints the same explanation.
    let cli = command()
        .args([
            "--demo",
            "spend",
            "--period",
            "last_month",
            "--filter",
            &format!("team={typo}"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(
        text.contains("matches nothing") && text.contains(&real),
        "{text}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn filters_that_each_match_but_not_together_say_so() {
    let usage = last_month_usage();
    // A team and a model it never used, though others did.
    let mut used: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (t, m, a) in &usage {
        if !t.is_empty() && !m.is_empty() && *a > 0.0 {
            used.entry(t.as_str()).or_default().insert(m.as_str());
        }
    }
    let models: BTreeSet<&str> = used.values().flatten().copied().collect();
    let (team, model) = used
        .iter()
        .find_map(|(t, ms)| models.iter().find(|m| !ms.contains(*m)).map(|m| (*t, *m)))
        .expect("a team that did not use every model");
    let client = stdio_client(None, &["--demo"], &[]).await;
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "filter": {"team": team, "model": model}}),
    )
    .await);
    assert_eq!(out["total"], json!(0.0));
    let n = notes(&out);
    assert!(n.contains("no spend matches all of them together"), "{n}");
    assert!(!n.contains("matches nothing"), "{n}");

    // The model alone: the rows are that model's usage, and no credit (credits name no model).
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "filter": {"model": model}}),
    )
    .await);
    let want: f64 = usage.iter().filter(|u| u.1 == model).map(|u| u.2).sum();
    assert!(
        (out["total"].as_f64().unwrap() - want).abs() < 0.005,
        "{} vs {want}",
        out["total"]
    );
    assert!(
        out["adjustments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["line_item_type"] != json!("Credit")),
        "{}",
        out["adjustments"]
    );
    client.cancel().await.unwrap();
}

/// `serve` with a terminal on stdin (a pseudo-terminal from Python's pty module): one line on
/// stderr says it waits for an MCP client and how to try the CLI instead; Ctrl-D exits cleanly.
#[test]
fn serve_at_a_terminal_says_what_it_waits_for() {
    let script = r#"
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--demo", "serve"])
out = b""
deadline = time.time() + 30
while time.time() < deadline and b"Ctrl-D" not in out:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            out += os.read(fd, 4096)
        except OSError:
            break
os.write(fd, b"\x04")
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    pid_done, status = os.waitpid(pid, os.WNOHANG)
    if pid_done:
        break
else:
    os.kill(pid, 9)
    status = 9
sys.stdout.write(out.decode("utf-8", "replace"))
sys.stdout.write("\nEXIT %d\n" % os.waitstatus_to_exitcode(status))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &bin()])
        .envs(aws_env(None))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("waiting for an MCP client") && text.contains("--demo spend"),
        "{text}"
    );
    assert!(text.contains("EXIT 0"), "{text}");
    assert!(!text.contains("error: connection closed"), "{text}");
}

/// Two sessions of one role, in two accounts: every text line names a different principal.
#[tokio::test]
async fn principals_never_print_alike() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate_cur(
        dir.path(),
        &["--rows", "4000", "--seed", "12", "--days", "10"],
    );
    let principals: Vec<String> = truth["by_principal"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !k.is_empty())
        .cloned()
        .collect();
    assert!(
        principals
            .iter()
            .filter(|p| p.contains(":assumed-role/"))
            .count()
            >= 2,
        "the generator writes sessions"
    );
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let (start, _) = last_month();
    let end = (chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d").unwrap()
        + chrono::Duration::days(10))
    .to_string();
    let r = call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": start, "end": end}, "group_by": ["principal"], "top_n": 500}),
    )
    .await;
    let out = ok(&r);
    let text = crate::common::text(&r);
    // Structured: every principal in full.
    let rows: BTreeSet<String> = out["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["no_principal"] == json!(false))
        .map(|r| r["keys"]["principal"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rows, principals.iter().cloned().collect::<BTreeSet<_>>());
    // Text: one line per row, and no two row lines start with the same label.
    let lines: Vec<&str> = text
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with("TOTAL"))
        .collect();
    assert_eq!(lines.len(), out["rows"].as_array().unwrap().len(), "{text}");
    let labels: BTreeSet<&str> = lines
        .iter()
        .map(|l| l.split("  ").next().unwrap().trim())
        .collect();
    assert_eq!(labels.len(), lines.len(), "{text}");
    assert!(lines.iter().all(|l| l.chars().count() < 100), "{text}");
    client.cancel().await.unwrap();
}

/// The reconciliation line adds up as printed: the parts in cents, plus the rounding when there
/// is one, make the total in cents (the CLI prints the same text as the tool).
#[test]
fn the_printed_reconciliation_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    generate_cur(
        dir.path(),
        &["--rows", "3000", "--seed", "21", "--days", "20"],
    );
    let cents = |s: &str| -> i64 {
        let v: f64 = s.replace(',', "").parse().unwrap();
        (v * 100.0).round() as i64
    };
    let mut roundings = 0;
    for by in [
        "team",
        "role",
        "model",
        "team,model",
        "principal",
        "cost-center",
    ] {
        let out = command()
            .envs(aws_env(None))
            .args([
                "--cur",
                dir.path().to_str().unwrap(),
                "spend",
                "--period",
                "last_month",
                "--by",
                by,
                "--top",
                "3",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("named "))
            .unwrap_or_else(|| panic!("{text}"));
        let (parts, total) = line.split_once(" = total ").unwrap();
        let total = cents(total.split_whitespace().next().unwrap());
        let sum: i64 = parts
            .split(" + ")
            .map(|p| cents(p.split_whitespace().last().unwrap()))
            .sum();
        assert_eq!(sum, total, "{by}: {line}");
        roundings += usize::from(line.contains("rounding"));
    }
    eprintln!("{roundings} of 6 lines needed a rounding part");
}
