//! Month rollups of the CUR export (src/sources/cur_rollup.rs): a server answers the first
//! question about a month from the export and summarises the month in the background; later
//! questions read the rollup. Every question here is asked of two real servers on the same
//! export, one with rollups and one scanning the export (`--no-cur-rollups`), and the answers
//! must agree row by row to the cent; totals are also checked against the generator's truth.
//! A new delivery (another file in the month) must rebuild the rollup, and a rollup folder
//! that cannot be written must not cost the answer. Most servers here run with
//! `--cur-prebuild-months 0` so that their first question finds no rollup; one test checks that
//! a server left alone builds the recent months by itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

/// Generate an export with the real binary; returns its truth.json. Overwrite delivery without
/// manifests: these tests add a later delivery's files to a month folder, which with a manifest
/// would be hidden until the manifest names them (tests/it/spend_cur.rs covers manifests).
fn generate(dir: &Path, rows: u64, start: &str, days: u32, seed: u64) -> Value {
    let (rows, days, seed) = (rows.to_string(), days.to_string(), seed.to_string());
    generate_cur(
        dir,
        &[
            "--rows",
            &rows,
            "--start",
            start,
            "--days",
            &days,
            "--seed",
            &seed,
            "--no-manifest",
        ],
    )
}

fn rollups_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.ends_with(".parquet"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A server on `cur` keeping rollups of months of any size in `rollups`; `prebuild` is
/// `--cur-prebuild-months` ("0": none, so the first question finds no rollup).
async fn rollup_server(
    emu: Option<&Emulator>,
    cur: &str,
    rollups: &Path,
    prebuild: &str,
) -> Client {
    let dir = rollups.to_str().unwrap();
    let args = [
        "--cur",
        cur,
        "--cur-rollup-dir",
        dir,
        "--cur-rollup-min-mb",
        "0",
    ];
    let prebuild = ["--cur-prebuild-months", prebuild];
    stdio_client(emu, &[&args[..], &prebuild[..]].concat(), &[]).await
}

/// Wait (up to 2 minutes) until the rollups in `dir` are as `done` wants; their names.
async fn wait_for_rollups(dir: &Path, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let now = rollups_in(dir);
        if done(&now) {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rollups after 2 minutes: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (bucket, keys) -> (amount, usage) of every row, and line item type -> adjustment.
type Figures = (BTreeMap<String, (f64, f64)>, BTreeMap<String, f64>);

fn figures(out: &Value) -> Figures {
    let mut rows = BTreeMap::new();
    for r in out["rows"].as_array().unwrap() {
        let k = format!("{} {}", r["bucket"], r["keys"]);
        let e = rows.entry(k).or_insert((0.0, 0.0));
        e.0 += r["amount"].as_f64().unwrap();
        e.1 += r.get("usage").and_then(Value::as_f64).unwrap_or(0.0);
    }
    let mut adj = BTreeMap::new();
    for a in out["adjustments"].as_array().unwrap() {
        *adj.entry(format!("{} {}", a["bucket"], a["line_item_type"]))
            .or_insert(0.0) += a["amount"].as_f64().unwrap();
    }
    (rows, adj)
}

fn assert_same(question: &Value, rolled: &Value, scanned: &Value) {
    let (a, b) = (figures(rolled), figures(scanned));
    assert_eq!(
        a.0.keys().collect::<Vec<_>>(),
        b.0.keys().collect::<Vec<_>>(),
        "{question}: the same rows"
    );
    for (k, (amount, usage)) in &a.0 {
        let (want_amount, want_usage) = b.0[k];
        assert!(
            (amount - want_amount).abs() < 0.005,
            "{question} {k}: {amount} vs {want_amount}"
        );
        assert!(
            (usage - want_usage).abs() <= want_usage.abs() * 1e-9 + 1e-6,
            "{question} {k}: usage {usage} vs {want_usage}"
        );
    }
    assert_eq!(
        a.1.keys().collect::<Vec<_>>(),
        b.1.keys().collect::<Vec<_>>(),
        "{question}: the same adjustments"
    );
    for (k, v) in &a.1 {
        assert!(
            (v - b.1[k]).abs() < 0.005,
            "{question} {k}: {v} vs {}",
            b.1[k]
        );
    }
    for f in ["total", "total_after_adjustments"] {
        assert!(
            (rolled[f].as_f64().unwrap() - scanned[f].as_f64().unwrap()).abs() < 0.005,
            "{question} {f}: {} vs {}",
            rolled[f],
            scanned[f]
        );
    }
    assert_eq!(
        rolled["reconciliation"]["untagged"]
            .as_f64()
            .map(|v| (v * 100.0).round()),
        scanned["reconciliation"]["untagged"]
            .as_f64()
            .map(|v| (v * 100.0).round()),
        "{question}: untagged"
    );
}

#[tokio::test]
async fn rollups_answer_every_question_as_the_export_does() {
    let dir = tempfile::tempdir().unwrap();
    let rollup_dir = tempfile::tempdir().unwrap();
    let (start, _) = last_month();
    let truth = generate(dir.path(), 30_000, &start, 45, 11);
    let cur = dir.path().to_str().unwrap();
    let rolled = rollup_server(None, cur, rollup_dir.path(), "0").await;
    let scanned = stdio_client(None, &["--cur", cur, "--no-cur-rollups"], &[]).await;
    let s = chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d").unwrap();
    let whole = json!({"start": start, "end": (s + chrono::Duration::days(45)).to_string()});

    // The first question is answered from the export; the months are summarised afterwards.
    // (Not one of the questions below: the server keeps answers for five minutes.)
    let first = ok(&call(
        &rolled,
        "bedrock_spend",
        json!({"period": whole, "group_by": ["principal"], "metric": "net_unblended", "top_n": 500}),
    )
    .await);
    assert!(
        (first["total"].as_f64().unwrap() - truth["total_net_unblended"].as_f64().unwrap()).abs()
            < 0.01
    );
    assert!(
        first["notes"]
            .to_string()
            .contains("summarised in the background"),
        "{}",
        first["notes"]
    );
    wait_for_rollups(rollup_dir.path(), |n| n.len() == 2).await;

    let mid = |days: i64| (s + chrono::Duration::days(days)).to_string();
    let part = json!({"start": mid(10), "end": mid(38)});
    let questions = vec![
        json!({"period": whole, "group_by": ["principal"]}),
        json!({"period": whole, "group_by": ["role"]}),
        json!({"period": whole, "group_by": ["session"]}),
        json!({"period": whole, "group_by": ["model"]}),
        json!({"period": whole, "group_by": ["token_kind"]}),
        json!({"period": whole, "group_by": ["usage_type"]}),
        json!({"period": whole, "group_by": ["region"]}),
        json!({"period": whole, "group_by": ["service"]}),
        json!({"period": whole, "group_by": ["tag:team"]}),
        json!({"period": whole, "group_by": ["tag:cost-center", "model"]}),
        json!({"period": whole, "group_by": ["principal", "model"]}),
        json!({"period": whole, "group_by": ["tag:team", "model", "token_kind"]}),
        json!({"period": whole, "group_by": ["month"]}),
        json!({"period": part, "group_by": ["day"]}),
        json!({"period": part, "group_by": ["role"], "granularity": "daily"}),
        json!({"period": part, "group_by": ["model"], "metric": "net_unblended"}),
        json!({"period": whole, "group_by": ["principal"], "filter": {"team": ""}}),
        json!({"period": whole, "group_by": ["model"], "filter": {"team": ["ml-platform", "support"]}}),
        json!({"period": whole, "group_by": ["session"], "filter": {"role": "arn:aws:iam::*:role/*AgentRole"}}),
        json!({"period": whole, "group_by": ["token_kind"], "filter": {"principal": "*BedrockAPIKey*"}}),
        json!({"period": part, "group_by": ["principal"], "filter": {"model": "Claude*"}}),
        json!({"period": whole, "group_by": ["tag:no-such-key"]}),
    ];
    for q in questions {
        let mut args = q.clone();
        args["top_n"] = json!(1000);
        let a = ask_all(&rolled, args.clone()).await;
        let b = ask_all(&scanned, args).await;
        assert!(
            a["notes"]
                .to_string()
                .contains("month rollup(s) of the export"),
            "{q}: read from the rollups: {}",
            a["notes"]
        );
        assert!(
            !b["notes"].to_string().contains("rollup"),
            "{q}: {}",
            b["notes"]
        );
        assert!(
            !a["rows"].as_array().unwrap().is_empty(),
            "{q}: the question has an answer to compare"
        );
        assert_same(&q, &a, &b);
    }
    // And the rollups' whole-period figures are the generator's.
    let out = ask_all(
        &rolled,
        json!({"period": whole, "group_by": ["tag:team"], "metric": "net_unblended", "top_n": 500}),
    )
    .await;
    assert!(
        (out["total"].as_f64().unwrap() - truth["total_net_unblended"].as_f64().unwrap()).abs()
            < 0.01
    );
    rolled.cancel().await.unwrap();
    scanned.cancel().await.unwrap();
}

/// `spend` from the command line with the CUR export and rollup folder (rollups for months of
/// any size unless `extra` says otherwise); its JSON answer.
fn cli_spend(cur: &Path, rollups: &str, start: &str, end: &str, extra: &[&str]) -> Value {
    let mut cmd = crate::common::command();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .envs(aws_env(None))
        .args(["--cur", cur.to_str().unwrap()])
        .args(["--cur-rollup-dir", rollups, "--cur-rollup-min-mb", "0"])
        .args(extra)
        .args(["spend", "--start", start, "--end", end, "--by", "principal"])
        .args(["--top", "1000", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A one-shot command never builds a rollup (it would pay the build before its only answer:
/// 2.14x DuckDB's time on the same files): it scans, or reads a rollup a server keeps. A new
/// delivery makes the month's rollup stale; the one-shot scans again, and the server rebuilds it.
#[tokio::test]
async fn one_shot_commands_read_rollups_but_never_build_them() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let rollup_dir = tempfile::tempdir().unwrap();
    let rollups = rollup_dir.path().to_str().unwrap();
    let (start, end) = last_month();
    let truth = generate(dir.path(), 4_000, &start, 20, 3);
    let want = truth["total_unblended"].as_f64().unwrap();

    let out = cli_spend(dir.path(), rollups, &start, &end, &[]);
    assert!((out["total"].as_f64().unwrap() - want).abs() < 0.01);
    assert!(
        !out["notes"].to_string().contains("rollup"),
        "{}",
        out["notes"]
    );
    assert!(
        rollups_in(rollup_dir.path()).is_empty(),
        "a one-shot builds nothing"
    );

    // A server summarises the month; the one-shot then reads that rollup, to the same figures.
    let cur = dir.path().to_str().unwrap();
    let server = rollup_server(None, cur, rollup_dir.path(), "0").await;
    let period =
        json!({"period": {"start": start, "end": end}, "group_by": ["principal"], "top_n": 1000});
    let first = ok(&call(&server, "bedrock_spend", period.clone()).await);
    assert!(
        first["notes"]
            .to_string()
            .contains("summarised in the background"),
        "{}",
        first["notes"]
    );
    let built = wait_for_rollups(rollup_dir.path(), |n| n.len() == 1).await;
    let read = cli_spend(dir.path(), rollups, &start, &end, &[]);
    assert!(
        read["notes"]
            .to_string()
            .contains("read from 1 month rollup(s)"),
        "{}",
        read["notes"]
    );
    assert!(
        !read["notes"]
            .to_string()
            .contains("built for this question")
    );
    assert_eq!(figures(&read), figures(&out));

    // A delivery adds a file to the month: the one-shot scans (the rollup no longer matches the
    // files) and counts it at once; the server rebuilds the month and deletes the old rollup.
    let more = generate(other.path(), 3_000, &start, 20, 4);
    let month = format!("BILLING_PERIOD={}", &start[..7]);
    for f in std::fs::read_dir(other.path().join("data").join(&month))
        .unwrap()
        .flatten()
    {
        let name = format!("delivery2-{}", f.file_name().to_string_lossy());
        std::fs::copy(f.path(), dir.path().join("data").join(&month).join(name)).unwrap();
    }
    let want = want + more["total_unblended"].as_f64().unwrap();
    let out = cli_spend(dir.path(), rollups, &start, &end, &[]);
    assert!(
        (out["total"].as_f64().unwrap() - want).abs() < 0.01,
        "{} vs {want}",
        out["total"]
    );
    assert!(
        !out["notes"].to_string().contains("read from"),
        "{}",
        out["notes"]
    );
    assert_eq!(
        rollups_in(rollup_dir.path()),
        built,
        "the one-shot left the rollups alone"
    );
    // The server lists the export again after a minute; a fresh one sees the delivery now.
    server.cancel().await.unwrap();
    let server = rollup_server(None, cur, rollup_dir.path(), "0").await;
    let again = ok(&call(&server, "bedrock_spend", period).await);
    assert!((again["total"].as_f64().unwrap() - want).abs() < 0.01);
    let now = wait_for_rollups(rollup_dir.path(), |n| n.len() == 1 && n != built).await;
    assert_ne!(now, built, "the old delivery's rollup is deleted");
    server.cancel().await.unwrap();
}

#[test]
fn a_rollup_folder_that_cannot_be_written_costs_nothing_but_speed() {
    let dir = tempfile::tempdir().unwrap();
    let (start, end) = last_month();
    let truth = generate(dir.path(), 3_000, &start, 20, 5);
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let unwritable = blocker.join("rollups");
    let out = cli_spend(dir.path(), unwritable.to_str().unwrap(), &start, &end, &[]);
    assert!(
        (out["total"].as_f64().unwrap() - truth["total_unblended"].as_f64().unwrap()).abs() < 0.01
    );
    assert!(
        !out["notes"].to_string().contains("rollup"),
        "{}",
        out["notes"]
    );
}

#[tokio::test]
async fn rollups_of_an_s3_export_follow_its_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let rollup_dir = tempfile::tempdir().unwrap();
    let (start, _) = last_month();
    let s = chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d").unwrap();
    let whole = json!({"start": start, "end": (s + chrono::Duration::days(45)).to_string()});
    let truth = generate(dir.path(), 8_000, &start, 45, 21);
    let emu = Emulator::start();
    emu.upload_dir("cur-bucket", "exports/bedrock-cur", dir.path())
        .await;
    let s3 = "s3://cur-bucket/exports/bedrock-cur";
    let client = rollup_server(Some(&emu), s3, rollup_dir.path(), "0").await;
    let ask = |group: &str| json!({"period": whole, "group_by": [group], "top_n": 500});
    let out = ok(&call(&client, "bedrock_spend", ask("model")).await);
    assert!(
        out["notes"]
            .to_string()
            .contains("summarised in the background")
    );
    let first = wait_for_rollups(rollup_dir.path(), |n| n.len() == 2).await;
    let out = ask_all(&client, ask("role")).await;
    assert!(
        out["notes"]
            .to_string()
            .contains("read from 2 month rollup(s)"),
        "{}",
        out["notes"]
    );
    let mut roles = BTreeMap::new();
    for r in out["rows"].as_array().unwrap() {
        *roles
            .entry(r["keys"]["role"].as_str().unwrap().to_string())
            .or_insert(0.0) += r["amount"].as_f64().unwrap();
    }
    for (role, want) in truth["by_role"].as_object().unwrap() {
        let key = if role.is_empty() { "(none)" } else { role };
        let got = roles.get(key).copied().unwrap_or(0.0);
        assert!(
            (got - want.as_f64().unwrap()).abs() < 0.01,
            "{role}: {got} vs {want}"
        );
    }

    // A second delivery adds a file to the first month in the bucket.
    let other = tempfile::tempdir().unwrap();
    let more = generate(other.path(), 2_000, &start, 20, 22);
    let month = other
        .path()
        .join("data")
        .join(format!("BILLING_PERIOD={}", &start[..7]));
    for f in std::fs::read_dir(&month).unwrap().flatten() {
        let to = month.join(format!("delivery2-{}", f.file_name().to_string_lossy()));
        std::fs::rename(f.path(), to).unwrap();
    }
    // Only the new Parquet files go up (the export's truth.json is already there).
    std::fs::remove_file(other.path().join("truth.json")).unwrap();
    emu.upload_dir("cur-bucket", "exports/bedrock-cur", other.path())
        .await;
    let want =
        truth["total_unblended"].as_f64().unwrap() + more["total_unblended"].as_f64().unwrap();
    let out = ok(&call(&client, "bedrock_spend", ask("token_kind")).await);
    assert!(
        (out["total"].as_f64().unwrap() - want).abs() < 0.01,
        "the new file counts at once: {} vs {want}; {}",
        out["total"],
        out["notes"]
    );
    assert!(
        out["notes"]
            .to_string()
            .contains(&format!("{} now summarised", &start[..7])),
        "only the changed month is summarised again: {}",
        out["notes"]
    );
    // The changed month's rollup is replaced; the other month's is kept.
    let now = wait_for_rollups(rollup_dir.path(), |n| n.len() == 2 && n != first).await;
    assert_eq!(
        now.iter().filter(|n| first.contains(n)).count(),
        1,
        "{now:?}"
    );
    let out = ok(&call(&client, "bedrock_spend", ask("region")).await);
    assert!(
        out["notes"]
            .to_string()
            .contains("read from 2 month rollup(s)")
    );
    assert!((out["total"].as_f64().unwrap() - want).abs() < 0.01);

    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_server_reads_overwritten_files_anew() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let rollup_dir = tempfile::tempdir().unwrap();
    let (start, end) = last_month();
    let before = generate(dir.path(), 4_000, &start, 20, 31);
    let after = generate(other.path(), 5_000, &start, 20, 32);
    let cur = dir.path().to_str().unwrap();
    let client = rollup_server(None, cur, rollup_dir.path(), "0").await;
    let period = json!({"start": start, "end": end});
    let ask = |group: &str| json!({"period": period, "group_by": [group], "top_n": 500});
    let out = ok(&call(&client, "bedrock_spend", ask("model")).await);
    assert!(
        (out["total"].as_f64().unwrap() - before["total_unblended"].as_f64().unwrap()).abs() < 0.01
    );
    wait_for_rollups(rollup_dir.path(), |n| n.len() == 1).await;
    let out = ok(&call(&client, "bedrock_spend", ask("role")).await);
    assert!(
        out["notes"]
            .to_string()
            .contains("read from 1 month rollup(s)")
    );
    assert!(
        (out["total"].as_f64().unwrap() - before["total_unblended"].as_f64().unwrap()).abs() < 0.01
    );

    // The next delivery overwrites the month's files (same names, other lines), as exports set
    // to OVERWRITE_REPORT do.
    let month = format!("data/BILLING_PERIOD={}", &start[..7]);
    for f in std::fs::read_dir(other.path().join(&month))
        .unwrap()
        .flatten()
    {
        std::fs::copy(f.path(), dir.path().join(&month).join(f.file_name())).unwrap();
    }
    let want = after["total_unblended"].as_f64().unwrap();
    let out = ok(&call(&client, "bedrock_spend", ask("token_kind")).await);
    assert!(
        (out["total"].as_f64().unwrap() - want).abs() < 0.01,
        "overwritten files are read anew: {} vs {want}; {}",
        out["total"],
        out["notes"]
    );
    assert!(
        out["notes"]
            .to_string()
            .contains("now summarised in the background")
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_server_builds_the_recent_months_before_the_first_question() {
    let dir = tempfile::tempdir().unwrap();
    let rollup_dir = tempfile::tempdir().unwrap();
    let (start, _) = last_month();
    let s = chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d").unwrap();
    // Three months of data: two months before last, last month and this month.
    let first = (s - chrono::Duration::days(40)).to_string();
    let truth = generate(dir.path(), 6_000, &first, 85, 41);
    let cur = dir.path().to_str().unwrap();
    let client = rollup_server(None, cur, rollup_dir.path(), "2").await;
    // Left alone, it summarises this month and last (the default --cur-prebuild-months 2).
    wait_for_rollups(rollup_dir.path(), |n| n.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rollups_in(rollup_dir.path()).len(),
        2,
        "only the two recent months"
    );
    let this_and_last =
        json!({"start": start, "end": (s + chrono::Duration::days(45)).to_string()});
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": this_and_last, "group_by": ["principal"], "top_n": 500}),
    )
    .await);
    assert!(
        out["notes"]
            .to_string()
            .contains("read from 2 month rollup(s)"),
        "the first question reads the rollups: {}",
        out["notes"]
    );
    let mut want = 0.0;
    for (month, v) in truth["by_month"].as_object().unwrap() {
        if month.as_str() >= &start[..7] {
            want += v.as_f64().unwrap();
        }
    }
    assert!(
        (out["total"].as_f64().unwrap() - want).abs() < 0.01,
        "{} vs {want}",
        out["total"]
    );
    client.cancel().await.unwrap();
}
