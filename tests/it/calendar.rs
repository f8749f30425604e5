//! The date-sensitive behaviour, checked on the tests' calendar (`common::now`): period words,
//! budget forecasts, the unbilled ledger's window, anomaly baselines, cache times, which months
//! a server keeps rolled up, Cost Explorer's 13-month limit and `generate-cur`'s dates.
//!
//! `tools/test.sh` runs this module once on today and again with the clock pinned to hard dates
//! (the first and the last day of a month, 29 February, 31 December and 1 January, late and
//! early in the day, in far-off time zones). Every expectation is computed here by hand from
//! the pinned date and the demo organisation's line items, never by asking the server.

use std::time::Duration;

use bedrock_cost_mcp::demo_data::{LineItem, line_items};
use chrono::{Datelike, NaiveDate, Timelike};
use serde_json::{Value, json};

use crate::common::*;

fn first_of_month(d: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap()
}

/// First day of the month `n` months after `d`'s (n may be negative).
fn months_after(d: NaiveDate, n: i32) -> NaiveDate {
    let idx = d.year() * 12 + d.month0() as i32 + n;
    NaiveDate::from_ymd_opt(idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1, 1).unwrap()
}

fn day(d: NaiveDate, n: i64) -> NaiveDate {
    d + chrono::Duration::days(n)
}

/// Usage spend of the demo organisation's lines in [start, end) that `keep` accepts.
fn demo_usage(start: NaiveDate, end: NaiveDate, keep: impl Fn(&LineItem) -> bool) -> f64 {
    line_items(today())
        .iter()
        .filter(|l| l.line_item_type == "Usage" && l.usage_start >= start && l.usage_start < end)
        .filter(|l| keep(l))
        .map(|l| l.unblended)
        .sum()
}

fn period_of(out: &Value) -> (String, String) {
    (
        out["period"]["start"].as_str().unwrap().to_string(),
        out["period"]["end"].as_str().unwrap().to_string(),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.005
}

#[tokio::test]
async fn period_words_and_the_demo_data_follow_the_calendar() {
    let t = today();
    let client = stdio_client(None, &["--demo"], &[]).await;
    let words = [
        ("this_month", first_of_month(t), day(t, 1)),
        ("month_to_date", first_of_month(t), day(t, 1)),
        ("last_month", months_after(t, -1), first_of_month(t)),
        ("last_7_days", day(t, -7), t),
        ("last_30_days", day(t, -30), t),
    ];
    for (word, start, end) in words {
        let out = ok(&call(
            &client,
            "bedrock_spend",
            json!({"period": word, "group_by": ["tag:team"]}),
        )
        .await);
        assert_eq!(
            period_of(&out),
            (start.to_string(), end.to_string()),
            "{word} on {t}"
        );
        // Spend is not final until AWS stops restating its last month: up to two weeks after
        // the month ends (Data Exports, "Understanding export delivery"). By hand: the month
        // holding the period's last day, its next first day, 14 days on.
        let last_month_end = months_after(first_of_month(day(end, -1)), 1);
        assert_eq!(
            out["estimated"],
            json!(t < day(last_month_end, 14)),
            "{word} on {t}"
        );
        // The demo organisation's data runs up to yesterday on any date.
        let want = demo_usage(start, end, |_| true);
        assert!(
            close(out["total"].as_f64().unwrap(), want),
            "{word} on {t}: {} vs {want} by hand",
            out["total"]
        );
        assert!(
            out["notes"]
                .to_string()
                .contains("calendar clock is pinned"),
            "a pinned clock is said: {}",
            out["notes"]
        );
    }
    // Tomorrow has no bill yet.
    let tomorrow = day(t, 1);
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": tomorrow.to_string(), "end": day(t, 2).to_string()}}),
    )
    .await);
    assert!(
        e.contains("in the future") && e.contains(&t.to_string()),
        "{e}"
    );
    client.cancel().await.unwrap();
}

/// Month-to-date spend projected to the month's end, by hand: spend / days elapsed (with the
/// time of day, at least half a day) x days in the month.
/// The month's projection by hand: spend over the days that have billed spend (the first of
/// the month through the last day with any), times the days in the month; with no billed day
/// yet, over the time elapsed.
fn linear_forecast(spent: f64, last_billed: Option<NaiveDate>) -> f64 {
    let now = now();
    let t = now.date_naive();
    let days = (months_after(t, 1) - first_of_month(t)).num_days() as f64;
    match last_billed {
        Some(last) => spent / ((last - first_of_month(t)).num_days() + 1) as f64 * days,
        None => {
            let elapsed = (t.day() as f64 - 1.0
                + now.time().num_seconds_from_midnight() as f64 / 86_400.0)
                .max(0.5);
            spent / elapsed * days
        }
    }
}

fn policy(dir: &std::path::Path, limit: f64) -> String {
    let path = dir.join("policy.toml");
    std::fs::write(
        &path,
        format!("warn_percent = 80\ndeny_percent = 100\n[[budgets]]\ntag = \"team=web\"\nmonthly_usd = {limit}\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test]
async fn budget_forecasts_and_verdicts_follow_the_calendar() {
    let t = today();
    let web = |l: &LineItem| {
        l.tags
            .iter()
            .any(|(k, v)| k == "iamPrincipal/team" && v == "web")
    };
    let spent = demo_usage(first_of_month(t), t, web);
    // A budget that a whole month of web's usual spend would fill by half: the verdict moves
    // with the day of the month (allow late in a month, warn on its first days).
    let month = demo_usage(months_after(t, -1), first_of_month(t), web);
    let limit = (2.0 * month).round();
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path(), limit);
    let ledger = dir.path().join("ledger.json");
    let client = stdio_client(
        None,
        &[
            "--demo",
            "--budget-policy",
            &policy,
            "--ledger",
            ledger.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let planned = 1.0;
    let out = ok(&call(
        &client,
        "check_budget",
        json!({"who": "tag:team=web", "cost_usd": planned}),
    )
    .await);
    assert_eq!(
        period_of(&out),
        (first_of_month(t).to_string(), day(t, 1).to_string())
    );
    assert!(
        close(out["spent"].as_f64().unwrap(), spent),
        "{} vs {spent}",
        out["spent"]
    );
    let last_billed = line_items(t)
        .iter()
        .filter(|l| l.line_item_type == "Usage" && web(l))
        .filter(|l| l.usage_start >= first_of_month(t) && l.usage_start < t && l.unblended != 0.0)
        .map(|l| l.usage_start)
        .max();
    let forecast = linear_forecast(spent, last_billed);
    assert!(
        (out["forecast"].as_f64().unwrap() - forecast).abs() <= 0.001 * forecast.max(1.0),
        "forecast {} vs {forecast} by hand on {t}",
        out["forecast"]
    );
    let pct = (spent + planned) / limit * 100.0;
    let want = if pct >= 100.0 {
        "deny"
    } else if pct >= 80.0 || forecast > limit {
        "warn"
    } else {
        "allow"
    };
    assert_eq!(out["verdict"], json!(want), "{out}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_ledger_window_and_the_month_bound_unbilled_checks() {
    let t0 = now();
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path(), 1_000_000.0);
    let ledger = dir.path().join("ledger.json");
    let args = [
        "--demo",
        "--budget-policy",
        &policy,
        "--ledger",
        ledger.to_str().unwrap(),
        "--ledger-window-hours",
        "48",
    ];
    let check = async |at: chrono::DateTime<chrono::Utc>, cost: f64| {
        let pin = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let client = stdio_client(None, &args, &[("BEDROCK_COST_MCP_NOW", &pin)]).await;
        let out = ok(&call(
            &client,
            "check_budget",
            json!({"who": "tag:team=web", "cost_usd": cost}),
        )
        .await);
        client.cancel().await.unwrap();
        out
    };
    let first = check(t0, 5.0).await;
    assert_eq!(first["unbilled_checks"], json!(0), "{first}");
    assert_eq!(first["ledger_recorded"], json!(true));
    // Each later check sees the earlier ones that are inside the window and in its month.
    let mut recorded = vec![(t0, 5.0)];
    // (No offset lands on the window's edge: each server's clock runs on a little from its pin.)
    for hours in [1, 30, 47, 50, 30 * 24] {
        let at = t0 + chrono::Duration::hours(hours);
        let month = first_of_month(at.date_naive())
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        // Checks the bill already covers are released: those before the last billed day of
        // web's spend (days before it are complete).
        let billed_from = line_items(at.date_naive())
            .iter()
            .filter(|l| l.line_item_type == "Usage" && l.unblended != 0.0)
            .filter(|l| {
                l.tags
                    .iter()
                    .any(|(k, v)| k == "iamPrincipal/team" && v == "web")
            })
            .filter(|l| l.usage_start >= first_of_month(at.date_naive()))
            .filter(|l| l.usage_start < at.date_naive())
            .map(|l| l.usage_start.and_hms_opt(0, 0, 0).unwrap().and_utc())
            .max()
            .unwrap_or(month);
        let live: Vec<f64> = recorded
            .iter()
            .filter(|(when, _)| {
                *when >= month.max(billed_from) && at - *when < chrono::Duration::hours(48)
            })
            .map(|(_, a)| *a)
            .collect();
        let out = check(at, 1.0).await;
        assert_eq!(
            out["unbilled_checks"],
            json!(live.len()),
            "{hours} h after {t0}: {out}"
        );
        assert!(close(
            out["unbilled"].as_f64().unwrap(),
            live.iter().sum::<f64>()
        ));
        recorded.push((at, 1.0));
    }
}

#[tokio::test]
async fn anomalies_are_judged_against_the_fourteen_days_before_them() {
    let t = today();
    let client = stdio_client(None, &["--demo"], &[]).await;
    let out = ok(&call(&client, "spend_anomalies", json!({})).await);
    assert_eq!(period_of(&out), (day(t, -7).to_string(), t.to_string()));
    let runaway = day(t, -bedrock_cost_mcp::demo_data::RUNAWAY_DAYS_AGO).to_string();
    let found: Vec<(String, String)> = out["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["who"].as_str().unwrap().to_string(),
                a["day"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![(
            "arn:aws:iam::123456789012:role/SupportBotRole".to_string(),
            runaway.clone()
        )],
        "on {t}: {out}"
    );
    // Expected: the median of the bot's 14 days before the runaway day, by hand.
    let bot = |l: &LineItem| l.principal.contains(":assumed-role/SupportBotRole/");
    let runaway_day = day(t, -bedrock_cost_mcp::demo_data::RUNAWAY_DAYS_AGO);
    let mut days: Vec<f64> = (1..=14)
        .map(|i| {
            let d = day(runaway_day, -i);
            demo_usage(d, day(d, 1), bot)
        })
        .collect();
    days.sort_by(f64::total_cmp);
    let median = (days[6] + days[7]) / 2.0;
    let a = &out["anomalies"][0];
    assert!(
        (a["expected"].as_f64().unwrap() - median).abs() < 0.01,
        "expected {} vs the 14-day median {median}",
        a["expected"]
    );
    let actual = demo_usage(runaway_day, day(runaway_day, 1), bot);
    assert!(close(a["actual"].as_f64().unwrap(), actual));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn cost_explorer_answers_keep_for_the_open_or_closed_month() {
    let t = today();
    let emu = Emulator::start();
    emu.seed_services(&["Amazon Bedrock"]).await;
    let client = stdio_client(
        Some(&emu),
        &[
            "--cache-ttl-open-secs",
            "1",
            "--cache-ttl-closed-secs",
            "3600",
        ],
        &[],
    )
    .await;
    let asks = |period: Value| {
        let client = &client;
        async move {
            let a = ok(&call(client, "bedrock_spend", json!({"period": period.clone()})).await);
            tokio::time::sleep(Duration::from_millis(1_300)).await;
            let b = ok(&call(client, "bedrock_spend", json!({"period": period})).await);
            (a["cached"].clone(), b["cached"].clone())
        }
    };
    // A month that ended keeps (closed: 1 hour here); one that reaches into this month, by a
    // day or by the whole month, is asked again after 1 s.
    assert_eq!(asks(json!("last_month")).await, (json!(false), json!(true)));
    assert_eq!(
        asks(json!("this_month")).await,
        (json!(false), json!(false))
    );
    let reaching = json!({"start": months_after(t, -1).to_string(), "end": day(first_of_month(t), 1).to_string()});
    assert_eq!(asks(reaching).await, (json!(false), json!(false)));
    let closed =
        json!({"start": months_after(t, -2).to_string(), "end": first_of_month(t).to_string()});
    assert_eq!(asks(closed).await, (json!(false), json!(true)));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn cost_explorer_reaches_back_thirteen_months() {
    let t = today();
    let emu = Emulator::start();
    emu.seed_services(&["Amazon Bedrock"]).await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let oldest = months_after(t, -13);
    let end = months_after(t, -12).to_string();
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": oldest.to_string(), "end": end}, "source": "cost_explorer"}),
    )
    .await);
    assert_eq!(period_of(&out).0, oldest.to_string());
    let e = err(&call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": day(oldest, -1).to_string(), "end": end}, "source": "cost_explorer"}),
    )
    .await);
    assert!(
        e.contains("13 months") && e.contains(&oldest.to_string()),
        "{e}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_server_rolls_up_this_month_and_the_last() {
    let t = today();
    let dir = tempfile::tempdir().unwrap();
    let rollups = tempfile::tempdir().unwrap();
    // Three months up to yesterday (on the 1st, this month has no line yet).
    let start = months_after(t, -2);
    let days = (t - start).num_days().to_string();
    let truth = generate_cur(
        dir.path(),
        &[
            "--rows",
            "3000",
            "--start",
            &start.to_string(),
            "--days",
            &days,
            "--seed",
            "5",
        ],
    );
    let months_with_data: Vec<String> = truth["by_month"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let recent: Vec<String> = [first_of_month(t), months_after(t, -1)]
        .iter()
        .map(|m| m.format("%Y-%m").to_string())
        .filter(|m| months_with_data.contains(m))
        .collect();
    let client = stdio_client(
        None,
        &[
            "--cur",
            dir.path().to_str().unwrap(),
            "--cur-rollup-dir",
            rollups.path().to_str().unwrap(),
            "--cur-rollup-min-mb",
            "0",
            "--cur-prebuild-months",
            "2",
        ],
        &[],
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let count = || {
        std::fs::read_dir(rollups.path())
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
                    .count()
            })
            .unwrap_or(0)
    };
    while count() < recent.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "rollups of {recent:?} after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count(),
        recent.len(),
        "only {recent:?} of {months_with_data:?}"
    );
    // The recent months are answered from their rollups, to the cent of the generator's truth.
    let from = months_after(t, -1);
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": from.to_string(), "end": day(t, 1).to_string()}, "group_by": ["principal"], "top_n": 500}),
    )
    .await);
    assert!(
        out["notes"]
            .to_string()
            .contains(&format!("read from {} month rollup(s)", recent.len())),
        "{}",
        out["notes"]
    );
    let want: f64 = recent
        .iter()
        .map(|m| truth["by_month"][m].as_f64().unwrap())
        .sum();
    assert!(
        (out["total"].as_f64().unwrap() - want).abs() < 0.01,
        "{} vs {want}",
        out["total"]
    );
    client.cancel().await.unwrap();
}

#[test]
fn generate_cur_dates_follow_the_calendar() {
    let t = today();
    let dir = tempfile::tempdir().unwrap();
    let out = crate::common::command()
        .args(["generate-cur", "--out", dir.path().to_str().unwrap()])
        .args(["--rows", "500", "--days", "10"])
        .envs(aws_env(None))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("truth.json")).unwrap())
            .unwrap();
    // By default it starts on the first of last month.
    let months: Vec<&String> = truth["by_month"].as_object().unwrap().keys().collect();
    assert_eq!(
        months,
        vec![&months_after(t, -1).format("%Y-%m").to_string()],
        "{truth}"
    );
}

#[tokio::test]
async fn generate_cur_writes_up_to_yesterday_by_default() {
    let t = today();
    let dir = tempfile::tempdir().unwrap();
    let truth = generate_cur(dir.path(), &["--rows", "2000", "--seed", "9"]);
    // Every line it wrote lies before today: spend from the first of last month to today is the
    // whole of it, and this month's is the truth's (none on the 1st).
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let start = months_after(t, -1);
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": start.to_string(), "end": t.to_string()}}),
    )
    .await);
    assert!(
        close(
            out["total"].as_f64().unwrap(),
            truth["total_unblended"].as_f64().unwrap()
        ),
        "{} vs {}",
        out["total"],
        truth["total_unblended"]
    );
    let this_month = first_of_month(t).format("%Y-%m").to_string();
    let want = truth["by_month"][&this_month].as_f64().unwrap_or(0.0);
    let days: Vec<&String> = truth["by_month"].as_object().unwrap().keys().collect();
    assert!(days.iter().all(|m| **m <= this_month), "{days:?}");
    let out = ok(&call(
        &client,
        "bedrock_spend",
        json!({"period": {"start": first_of_month(t).to_string(), "end": day(t, 1).to_string()}}),
    )
    .await);
    assert!(close(out["total"].as_f64().unwrap(), want), "{out}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_demo_budgets_allow_warn_and_deny_on_any_day() {
    // The demo organisation's own budgets (no --budget-policy): a $5 call, as a what-if.
    let client = stdio_client(None, &["--demo"], &[]).await;
    for (team, want) in [
        ("finance-apps", "deny"),
        ("web", "warn"),
        ("ml-platform", "allow"),
    ] {
        let out = ok(&call(
            &client,
            "check_budget",
            json!({"who": format!("tag:team={team}"), "cost_usd": 5.0, "record": false}),
        )
        .await);
        assert_eq!(out["verdict"], json!(want), "{team} on {}: {out}", today());
        assert_eq!(out["budget"]["name"], json!(format!("demo-{team}")));
        assert_eq!(out["ledger_recorded"], json!(false));
        let reasons = out["reasons"].to_string();
        assert!(
            reasons.contains(&format!("every principal tagged iamPrincipal/team={team}")),
            "{reasons}"
        );
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn recorded_checks_add_their_cost_once_and_what_ifs_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy(dir.path(), 1_000_000.0);
    let ledger = dir.path().join("ledger.json");
    let client = stdio_client(
        None,
        &[
            "--demo",
            "--budget-policy",
            &policy,
            "--ledger",
            ledger.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let check = async |record: Option<bool>| {
        let mut args = json!({"who": "tag:team=web", "cost_usd": 5.0});
        if let Some(r) = record {
            args["record"] = json!(r);
        }
        ok(&call(&client, "check_budget", args).await)
    };
    // Over MCP a check records by default: the agent asks before it calls.
    let first = check(None).await;
    assert_eq!(first["ledger_recorded"], json!(true));
    assert_eq!(first["unbilled"], json!(0.0));
    let second = check(None).await;
    assert_eq!(second["unbilled_checks"], json!(1));
    assert_eq!(second["unbilled"], json!(5.0));
    // The forecast grows by the recorded estimate itself, not by it projected over the month.
    let grew = second["forecast"].as_f64().unwrap() - first["forecast"].as_f64().unwrap();
    assert!((grew - 5.0).abs() < 0.001, "forecast grew by {grew}");
    // A what-if is not recorded: the next check sees the two recorded ones only.
    let what_if = check(Some(false)).await;
    assert_eq!(what_if["ledger_recorded"], json!(false));
    assert_eq!(what_if["unbilled"], json!(10.0));
    let after = check(Some(false)).await;
    assert_eq!(after["unbilled"], json!(10.0));
    assert_eq!(after["unbilled_checks"], json!(2));
    assert!(what_if.get("check_id").is_none(), "{what_if}");
    // The second call did not run: releasing its check takes its estimate back, once.
    let id = second["check_id"].as_str().unwrap().to_string();
    assert_ne!(Some(id.as_str()), first["check_id"].as_str());
    let released = ok(&call(
        &client,
        "check_budget",
        json!({"who": "tag:team=web", "release": id}),
    )
    .await);
    assert_eq!(released["released"]["amount"], json!(5.0), "{released}");
    assert_eq!(released["unbilled"], json!(5.0));
    assert_eq!(released["unbilled_checks"], json!(1));
    assert_eq!(released["ledger_recorded"], json!(false));
    let e = err(&call(
        &client,
        "check_budget",
        json!({"who": "tag:team=web", "release": id}),
    )
    .await);
    assert!(e.contains("no unbilled check"), "{e}");
    // A made-up id releases nothing.
    let e = err(&call(
        &client,
        "check_budget",
        json!({"who": "tag:team=web", "release": "chk_00000000000000000000000000000000"}),
    )
    .await);
    assert!(e.contains("no unbilled check"), "{e}");
    assert_eq!(check(Some(false)).await["unbilled"], json!(5.0));
    client.cancel().await.unwrap();
}
