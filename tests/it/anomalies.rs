//! `spend_anomalies`: the demo's runaway support-bot loop is found on its day
//! with no false alarm on steady principals; Cost Explorer anomalies on
//! Bedrock come through (and others are left out). Days without 14 days of
//! history (the start of the data, a new spender) are skipped and counted, not
//! flagged; findings rank by money at risk and page with top_n and cursor.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn finds_the_runaway_loop_and_nothing_else() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let out = ok(&call(&client, "spend_anomalies", json!({})).await);
    let day = (crate::common::today()
        - chrono::Duration::days(bedrock_cost_mcp::demo_data::RUNAWAY_DAYS_AGO))
    .to_string();
    let found = out["anomalies"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{out}");
    assert_eq!(
        found[0]["who"],
        json!("arn:aws:iam::123456789012:role/SupportBotRole")
    );
    assert_eq!(found[0]["day"], json!(day));
    // 12x a jitter in [0.5, 1.5) against a median of jitters below 1.5: more than 4x, whatever
    // the day (8x failed on some calendar days, e.g. 2027-01-01).
    assert!(found[0]["actual"].as_f64().unwrap() > 4.0 * found[0]["expected"].as_f64().unwrap());
    assert_eq!(found[0]["drivers"][0]["model"], json!("Claude Haiku 4.5"));
    // Seven roles and users, and the lines without a principal (AgentCore runtime compute).
    assert_eq!(out["groups_checked"], json!(8));
    // By principal and by tag the same loop shows (the bot is tagged team=support).
    let by_tag = ok(&call(&client, "spend_anomalies", json!({"by": "tag:team"})).await);
    assert_eq!(by_tag["anomalies"][0]["who"], json!("support"));
    // A budget check by the bot mentions its open anomaly.
    let check = ok(&call(&client, "check_budget", json!({"who": "arn:aws:sts::123456789012:assumed-role/SupportBotRole/support-bot-1", "cost_usd": 1})).await);
    assert!(
        check["reasons"].to_string().contains("open anomaly"),
        "{}",
        check["reasons"]
    );
    let calm = ok(&call(&client, "check_budget", json!({"who": "arn:aws:sts::123456789012:assumed-role/DataScienceRole/carol@acme.example", "cost_usd": 1})).await);
    assert!(!calm["reasons"].to_string().contains("open anomaly"));
    let e = err(&call(&client, "spend_anomalies", json!({"by": "model"})).await);
    assert!(e.contains("role, principal or tag"), "{e}");
    let e = err(&call(&client, "spend_anomalies", json!({"k": 0})).await);
    assert!(e.contains("between 0.5 and 20"), "{e}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn cost_explorer_anomalies_on_bedrock_come_through() {
    let emu = Emulator::start();
    let day = (crate::common::today() - chrono::Duration::days(3)).to_string();
    let anomaly = |id: &str, service: &str, usage: &str| {
        json!({"AnomalyId": id, "AnomalyStartDate": day, "AnomalyEndDate": day, "DimensionValue": service,
               "RootCauses": [{"Service": service, "Region": "us-east-1", "UsageType": usage, "LinkedAccount": "123456789012"}],
               "AnomalyScore": {"MaxScore": 42.0, "CurrentScore": 40.0},
               "Impact": {"MaxImpact": 300.0, "TotalActualSpend": 350.0, "TotalExpectedSpend": 50.0, "TotalImpact": 300.0, "TotalImpactPercentage": 600.0},
               "MonitorArn": "arn:aws:ce::123456789012:anomalymonitor/abc"})
    };
    emu.post("/_emulator/ce/anomalies", json!({"Anomalies": [anomaly("a1", "Amazon Bedrock", "USE1-Claude4.6Sonnet-output-tokens"), anomaly("a2", "Amazon Elastic Compute Cloud - Compute", "BoxUsage:m5.large")]})).await;
    let client = stdio_client(Some(&emu), &[], &[]).await;
    let out = ok(&call(&client, "spend_anomalies", json!({"period": "last_7_days"})).await);
    let found = out["anomalies"].as_array().unwrap();
    assert_eq!(found.len(), 1, "only Bedrock: {out}");
    assert_eq!(
        (
            found[0]["source"].clone(),
            found[0]["day"].clone(),
            found[0]["actual"].clone(),
            found[0]["expected"].clone()
        ),
        (
            json!("cost_explorer"),
            json!(day),
            json!(350.0),
            json!(50.0)
        )
    );
    assert_eq!(
        found[0]["drivers"][0]["model"],
        json!("USE1-Claude4.6Sonnet-output-tokens")
    );
    assert!(out["notes"].to_string().contains("needs the CUR source"));
    assert_eq!(emu.count("GetAnomalies").await, 1);
    client.cancel().await.unwrap();
}

// ------------------------------------------------------------- issue #18, item 2
//
// A day is judged only with 14 days of history behind it (of the data and of the group),
// scores stay finite, and findings rank by money at risk and page with top_n / cursor. The
// expectations are computed here from the data written, never from the engine.

use std::collections::{BTreeMap, BTreeSet};

use bedrock_cost_mcp::demo_data::{LineItem, MODELS};
use chrono::{Duration, NaiveDate};
use serde_json::Value;

const WINDOW: i64 = 14;

/// Median of a slice.
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Usage unblended per (principal, day) of a generated export, read from its Parquet files
/// (`(none)` for lines without a principal).
fn spend_by_principal_day(
    dir: &std::path::Path,
    truth: &Value,
) -> BTreeMap<(String, NaiveDate), f64> {
    use datafusion::arrow::array::{Array, Float64Array, StringArray, TimestampMillisecondArray};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut out = BTreeMap::new();
    for f in truth["files"].as_array().unwrap() {
        let file = std::fs::File::open(dir.join(f.as_str().unwrap())).unwrap();
        for batch in ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
        {
            let b = batch.unwrap();
            let col = |name: &str| b.column(b.schema().index_of(name).unwrap()).clone();
            let (start, who, cost, kind) = (
                col("line_item_usage_start_date"),
                col("line_item_iam_principal"),
                col("line_item_unblended_cost"),
                col("line_item_line_item_type"),
            );
            let start = start
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .unwrap();
            let who = who.as_any().downcast_ref::<StringArray>().unwrap();
            let cost = cost.as_any().downcast_ref::<Float64Array>().unwrap();
            let kind = kind.as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..b.num_rows() {
                if kind.value(i) != "Usage" {
                    continue;
                }
                let day = chrono::DateTime::from_timestamp_millis(start.value(i))
                    .unwrap()
                    .date_naive();
                let p = if who.is_null(i) || who.value(i).is_empty() {
                    "(none)".to_string()
                } else {
                    who.value(i).to_string()
                };
                *out.entry((p, day)).or_default() += cost.value(i);
            }
        }
    }
    out
}

#[tokio::test]
async fn the_start_of_the_data_is_skipped_not_flagged() {
    // 40 days of a generated export ending yesterday; the period covers all of it, so its
    // first 14 days have no baseline (issue #18: 81 of 85 anomalies fell on them).
    let dir = tempfile::tempdir().unwrap();
    let t = today();
    let start = t - Duration::days(40);
    let truth = generate_cur(
        dir.path(),
        &[
            "--rows",
            "20000",
            "--start",
            &start.to_string(),
            "--days",
            "40",
            "--seed",
            "18",
        ],
    );
    let spend = spend_by_principal_day(dir.path(), &truth);
    let data_start = spend.keys().map(|(_, d)| *d).min().unwrap();
    let mut first_seen: BTreeMap<&str, NaiveDate> = BTreeMap::new();
    for ((p, d), a) in &spend {
        if *a != 0.0 {
            let e = first_seen.entry(p).or_insert(*d);
            *e = (*e).min(*d);
        }
    }
    // By hand: the group-days with spend that lack 14 days of data or of the group before them,
    // and the groups new after 14 days of data without them, with their spend while too new.
    let mut skipped = 0;
    let mut new: BTreeMap<&str, f64> = BTreeMap::new();
    for ((p, d), a) in &spend {
        let w = *d - Duration::days(WINDOW);
        if *a == 0.0 || *d < start || *d >= t || (data_start <= w && first_seen[p.as_str()] <= w) {
            continue;
        }
        skipped += 1;
        if first_seen[p.as_str()] >= data_start + Duration::days(WINDOW) {
            *new.entry(p).or_default() += a;
        }
    }
    assert!(skipped > 100, "{skipped}");
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let period = json!({"start": start.to_string(), "end": t.to_string()});
    let out = ok(&call(
        &client,
        "spend_anomalies",
        json!({"period": period, "by": "principal"}),
    )
    .await);
    let judged_from = data_start + Duration::days(WINDOW);
    // Every finding, following the cursor (a page holds 20 by default).
    let first = out["anomalies"].as_array().unwrap().clone();
    let no_day_before_judged = |found: &[Value]| {
        for a in found {
            let day = NaiveDate::parse_from_str(a["day"].as_str().unwrap(), "%Y-%m-%d").unwrap();
            assert!(
                day >= judged_from,
                "{a} falls before {judged_from}, in the first 14 days of the data"
            );
        }
    };
    no_day_before_judged(&first);
    let count = out["row_count"].as_u64().unwrap() as usize;
    assert_eq!(first.len(), count.min(20), "{out}");
    assert_eq!(out["next_cursor"].is_string(), count > 20, "{out}");
    let mut found = first.clone();
    let mut cursor = out.get("next_cursor").cloned();
    while let Some(c) = cursor {
        let page = ok(&call(
            &client,
            "spend_anomalies",
            json!({"period": period, "by": "principal", "cursor": c}),
        )
        .await);
        found.extend(page["anomalies"].as_array().unwrap().iter().cloned());
        cursor = page.get("next_cursor").cloned();
    }
    assert_eq!(found.len(), count);
    no_day_before_judged(&found);
    for a in &found {
        // Finite, and in units of at least a dollar: never 316192819112.2.
        let (score, excess) = (a["score"].as_f64().unwrap(), a["excess"].as_f64().unwrap());
        assert!(score.is_finite() && score <= excess + 0.1, "{a}");
        assert!(
            (excess - (a["actual"].as_f64().unwrap() - a["expected"].as_f64().unwrap())).abs()
                < 0.011,
            "{a}"
        );
    }
    // Most money at risk first.
    let excess: Vec<f64> = found
        .iter()
        .map(|a| a["excess"].as_f64().unwrap())
        .collect();
    assert!(excess.windows(2).all(|w| w[0] >= w[1]), "{excess:?}");
    // The skipped group-days are counted and explained.
    assert_eq!(
        out["skipped_group_days"],
        json!(skipped),
        "{}",
        out["notes"]
    );
    let notes = out["notes"].to_string();
    assert!(notes.contains(&format!("{skipped} group-days")), "{notes}");
    assert!(notes.contains(&data_start.to_string()), "{notes}");
    // New spenders (if any) are those started after 14 days of data, most money first.
    let mut want: Vec<(&str, f64)> = new.into_iter().filter(|(_, a)| *a >= 5.0).collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1));
    let got = out["new_spenders"].as_array().unwrap();
    assert_eq!(got.len(), want.len().min(20), "{got:?} vs {want:?}");
    for (g, (who, amount)) in got.iter().zip(&want) {
        assert_eq!(g["who"], json!(who));
        assert!(
            (g["amount"].as_f64().unwrap() - amount).abs() < 0.011,
            "{g} vs {amount}"
        );
    }
    client.cancel().await.unwrap();
}

/// One role's daily spend: `base` USD a day from `from` days ago up to yesterday, the
/// `spikes` (days ago, extra USD, on Claude Sonnet 4.6) on top.
struct Role {
    name: &'static str,
    base: f64,
    from: i64,
    spikes: Vec<(i64, f64)>,
}

impl Role {
    fn arn(&self) -> String {
        format!("arn:aws:iam::123456789012:role/{}", self.name)
    }

    /// Its base spend on a day (a small deterministic wobble), 0 before it starts.
    fn base_on(&self, t: NaiveDate, day: NaiveDate) -> f64 {
        if day < t - Duration::days(self.from) || day >= t {
            return 0.0;
        }
        let wobble = [0.0, 0.5, 1.0, 0.5, -0.5][(day - NaiveDate::MIN).num_days() as usize % 5];
        self.base + wobble * self.base / 20.0
    }

    fn spike_on(&self, t: NaiveDate, day: NaiveDate) -> f64 {
        self.spikes
            .iter()
            .filter(|(ago, _)| t - Duration::days(*ago) == day)
            .map(|(_, x)| x)
            .sum()
    }

    fn on(&self, t: NaiveDate, day: NaiveDate) -> f64 {
        self.base_on(t, day) + self.spike_on(t, day)
    }
}

/// A CUR export of `roles` (each through one session), 60 days up to yesterday.
fn write_roles(dir: &std::path::Path, t: NaiveDate, roles: &[Role]) {
    let line = |role: &Role, day: NaiveDate, m: usize, cost: f64| {
        let model = &MODELS[m];
        LineItem {
            usage_start: day,
            principal: format!(
                "arn:aws:sts::123456789012:assumed-role/{}/session-1",
                role.name
            ),
            tags: vec![],
            usage_type: format!("USE1-{}-input-tokens", model.usage_name),
            region: "us-east-1".into(),
            service_name: model.service_name.into(),
            product_code: model.product_code.into(),
            model: model.display.into(),
            provider: model.provider.into(),
            usage_amount: cost / model.prices[0],
            pricing_unit: "1K tokens".into(),
            unblended: cost,
            net_unblended: Some(cost),
            line_item_type: "Usage".into(),
        }
    };
    let mut items = Vec::new();
    for ago in (1..=60).rev() {
        let day = t - Duration::days(ago);
        for r in roles {
            let (base, spike) = (r.base_on(t, day), r.spike_on(t, day));
            if base > 0.0 {
                items.push(line(r, day, 1, base));
            }
            if spike > 0.0 {
                items.push(line(r, day, 0, spike));
            }
        }
    }
    bedrock_cost_mcp::cur_file::write_line_items(&items, dir).unwrap();
}

/// The findings a role's spikes should give in the last 7 days: (who, day, actual, expected)
/// with expected the median of the 14 days before, by hand.
fn expected_findings(t: NaiveDate, roles: &[Role]) -> Vec<(String, String, f64, f64)> {
    let mut out = Vec::new();
    for r in roles {
        for (ago, _) in &r.spikes {
            let day = t - Duration::days(*ago);
            let baseline: Vec<f64> = (1..=WINDOW)
                .map(|i| r.on(t, day - Duration::days(i)))
                .collect();
            out.push((r.arn(), day.to_string(), r.on(t, day), median(&baseline)));
        }
    }
    out.sort_by(|a, b| (b.2 - b.3).total_cmp(&(a.2 - a.3)));
    out
}

#[tokio::test]
async fn an_injected_spike_is_found_and_ranked_by_money() {
    let t = today();
    let roles = vec![
        Role {
            name: "SteadyRole",
            base: 20.0,
            from: 60,
            spikes: vec![],
        },
        // A big spike two days before a later, smaller one: money decides, not the date.
        Role {
            name: "RunawayAgentRole",
            base: 30.0,
            from: 60,
            spikes: vec![(5, 400.0)],
        },
        Role {
            name: "ChattyBotRole",
            base: 10.0,
            from: 60,
            spikes: vec![(3, 60.0)],
        },
        // Starts six days ago at 150 a day: new, not an anomaly against zeros.
        Role {
            name: "NewAgentRole",
            base: 150.0,
            from: 6,
            spikes: vec![],
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    write_roles(dir.path(), t, &roles);
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let out = ok(&call(&client, "spend_anomalies", json!({})).await);
    let want = expected_findings(t, &roles);
    let found = out["anomalies"].as_array().unwrap();
    assert_eq!(found.len(), want.len(), "{out}");
    for (a, (who, day, actual, expected)) in found.iter().zip(&want) {
        assert_eq!((&a["who"], &a["day"]), (&json!(who), &json!(day)), "{out}");
        assert!(
            (a["actual"].as_f64().unwrap() - actual).abs() < 0.011,
            "{a}"
        );
        assert!(
            (a["expected"].as_f64().unwrap() - expected).abs() < 0.011,
            "{a}"
        );
        assert!(
            (a["excess"].as_f64().unwrap() - (actual - expected)).abs() < 0.011,
            "{a}"
        );
        assert!(a["score"].as_f64().unwrap().is_finite());
        assert_eq!(a["drivers"][0]["model"], json!("Claude Sonnet 4.6"), "{a}");
    }
    assert_eq!(found[0]["who"], json!(roles[1].arn()));
    // The new role: its six days are skipped and it is listed as a new spender.
    let new_days: Vec<NaiveDate> = (1..=6).map(|i| t - Duration::days(i)).collect();
    assert_eq!(out["skipped_group_days"], json!(new_days.len()), "{out}");
    let new_spend: f64 = new_days.iter().map(|d| roles[3].on(t, *d)).sum();
    let ns = &out["new_spenders"];
    assert_eq!(ns.as_array().unwrap().len(), 1, "{ns}");
    assert_eq!(ns[0]["who"], json!(roles[3].arn()));
    assert_eq!(
        ns[0]["first_day"],
        json!((t - Duration::days(6)).to_string())
    );
    assert!(
        (ns[0]["amount"].as_f64().unwrap() - new_spend).abs() < 0.011,
        "{ns}"
    );
    assert_eq!(out["groups_checked"], json!(4));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn top_n_pages_every_finding_once_in_money_order() {
    let t = today();
    let spiky = |name, base, spikes| Role {
        name,
        base,
        from: 60,
        spikes,
    };
    let roles = vec![
        spiky("AlphaRole", 10.0, vec![(2, 50.0), (6, 300.0)]),
        spiky("BravoRole", 40.0, vec![(1, 120.0)]),
        spiky("CharlieRole", 5.0, vec![(4, 800.0)]),
        spiky("DeltaRole", 25.0, vec![(3, 75.0), (5, 90.0)]),
        spiky("EchoRole", 15.0, vec![(7, 200.0)]),
        spiky("FoxtrotRole", 60.0, vec![]),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_roles(dir.path(), t, &roles);
    let want = expected_findings(t, &roles);
    assert_eq!(want.len(), 7);
    let client = stdio_client(None, &["--cur", dir.path().to_str().unwrap()], &[]).await;
    let mut pages = Vec::new();
    let mut args = json!({"top_n": 3});
    loop {
        let out = ok(&call(&client, "spend_anomalies", args.clone()).await);
        assert_eq!(out["row_count"], json!(want.len()), "{out}");
        assert!(out["anomalies"].as_array().unwrap().len() <= 3);
        pages.push(out["anomalies"].as_array().unwrap().clone());
        match out.get("next_cursor") {
            Some(c) => args["cursor"] = c.clone(),
            None => break,
        }
        assert!(pages.len() < 10, "cursors never end");
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
    let all: Vec<Value> = pages.concat();
    let keys: Vec<(String, String)> = all
        .iter()
        .map(|a| {
            (
                a["who"].as_str().unwrap().into(),
                a["day"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        keys.iter().collect::<BTreeSet<_>>().len(),
        keys.len(),
        "duplicates: {keys:?}"
    );
    let want_keys: Vec<(String, String)> =
        want.iter().map(|w| (w.0.clone(), w.1.clone())).collect();
    assert_eq!(keys, want_keys, "in money order");
    for (a, w) in all.iter().zip(&want) {
        assert!(
            (a["excess"].as_f64().unwrap() - (w.2 - w.3)).abs() < 0.011,
            "{a}"
        );
    }
    // One page of them all is the same list; top_n is bounded and the cursor checked.
    let one = ok(&call(&client, "spend_anomalies", json!({"top_n": 1000})).await);
    assert_eq!(one["anomalies"].as_array().unwrap(), &all);
    assert!(one.get("next_cursor").is_none());
    let e = err(&call(&client, "spend_anomalies", json!({"cursor": "page-2"})).await);
    assert!(e.contains("next_cursor"), "{e}");
    client.cancel().await.unwrap();
}
