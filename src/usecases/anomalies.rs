//! `spend_anomalies`: unexpected Bedrock spend such as a runaway agent loop.
//! Per principal (role, principal or tag value) from CUR, each day against
//! its own trailing baseline ([`crate::domain::anomaly`]); plus Cost
//! Explorer's anomaly detection (`GetAnomalies`) on Bedrock when available.
//!
//! A day is judged only with a full baseline behind it: days within the first
//! [`WINDOW_DAYS`] days of the data, or of a group's first spend, are counted
//! as skipped, and groups that started spending recently are listed apart as
//! new spenders. Findings rank by money at risk (actual - expected) and page
//! with `top_n` and `cursor` (`rows:<n>`, as `bedrock_spend`).

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};
use schemars::JsonSchema;
use serde::Serialize;

use super::take_page;
pub use crate::domain::anomaly::{Anomaly, Driver};
use crate::domain::anomaly::{History, WINDOW_DAYS, finite, history, judge};
use crate::domain::group::{Granularity, GroupKey, Metric, SpendFilter, SpendQuery};
use crate::domain::label::fmt_money;
use crate::domain::period::Period;
use crate::error::ToolError;
use crate::sources::budgets::{Subject, choose};
use crate::sources::no_progress;
use crate::usecases::context::Ctx;
pub use bedrock_cost_core::tools::args::AnomalyInput;
use bedrock_cost_core::tools::args::{AnomalyArgs, anomaly_args, parse_cursor};

/// Findings per page (`top_n`) and the offset of the page asked for (`cursor`, `rows:<n>` as
/// `bedrock_spend` issues).
pub fn anomaly_page(input: &AnomalyInput) -> Result<(usize, usize), ToolError> {
    let offset = parse_cursor(&input.cursor)?;
    let top_n = input.top_n.unwrap_or(DEFAULT_TOP_N).clamp(1, MAX_TOP_N) as usize;
    Ok((top_n, offset))
}

/// Findings per page by default.
pub const DEFAULT_TOP_N: u32 = 20;
/// Most findings per page.
pub const MAX_TOP_N: u32 = 200;

/// Days before the baseline window also read, to tell a new group from an established one.
const LOOKBACK_DAYS: i64 = 28;

/// An anomaly with the money at risk it is ranked by.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Finding {
    #[serde(flatten)]
    pub anomaly: Anomaly,
    /// actual - expected, USD: the money at risk; findings rank by it.
    pub excess: f64,
}

impl From<Anomaly> for Finding {
    fn from(mut a: Anomaly) -> Finding {
        a.expected = finite(a.expected);
        a.actual = finite(a.actual);
        a.score = finite(a.score);
        Finding {
            excess: round2(a.actual - a.expected),
            anomaly: a,
        }
    }
}

impl std::ops::Deref for Finding {
    type Target = Anomaly;
    fn deref(&self) -> &Anomaly {
        &self.anomaly
    }
}

/// A group that started spending less than the baseline window ago: not judged against a
/// baseline it does not have, but worth a look.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NewSpender {
    pub who: String,
    /// Its first day with spend.
    pub first_day: String,
    /// Its spend on the period's days it was too new to judge, USD.
    pub amount: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AnomalyOutput {
    pub period: crate::usecases::spend::PeriodOut,
    pub by: String,
    pub rule: String,
    /// This page of findings, most money at risk first.
    pub anomalies: Vec<Finding>,
    /// Findings across all pages.
    pub row_count: usize,
    /// Pass as cursor for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub groups_checked: usize,
    /// Days with spend of a group not judged: fewer than 14 days of history before them.
    pub skipped_group_days: usize,
    /// Groups first seen less than 14 days before a day they spent at least min_increase_usd
    /// on, most spend first (up to top_n).
    pub new_spenders: Vec<NewSpender>,
    pub notes: Vec<String>,
}

type DaySpend = (f64, BTreeMap<String, f64>);

fn round2(x: f64) -> f64 {
    let r = (finite(x) * 100.0).round() / 100.0;
    if r == 0.0 { 0.0 } else { r }
}

/// The page of findings starting at `offset` (at most `top_n`, and within
/// [`crate::usecases::PAGE_BYTES`]), with the cursor to the next one.
pub fn page(mut o: AnomalyOutput, top_n: usize, offset: usize) -> AnomalyOutput {
    let row_count = o.anomalies.len();
    o.anomalies = take_page(o.anomalies.into_iter().skip(offset), top_n);
    o.next_cursor = (offset + o.anomalies.len() < row_count)
        .then(|| format!("rows:{}", offset + o.anomalies.len()));
    o.row_count = row_count;
    if o.new_spenders.len() > top_n {
        o.notes.push(format!(
            "{} more new spenders not listed; raise top_n to see them",
            o.new_spenders.len() - top_n
        ));
        o.new_spenders.truncate(top_n);
    }
    o
}

/// Most money at risk first; then the later day, the higher score, the name.
fn rank(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    b.excess
        .total_cmp(&a.excess)
        .then_with(|| b.day.cmp(&a.day))
        .then_with(|| b.score.total_cmp(&a.score))
        .then_with(|| a.who.cmp(&b.who))
        .then_with(|| a.source.cmp(&b.source))
}

impl Ctx {
    /// `spend_anomalies`, shared with the CLI: one page of the answer.
    pub async fn anomalies(&self, input: AnomalyInput) -> Result<AnomalyOutput, ToolError> {
        let (top_n, offset) = anomaly_page(&input)?;
        Ok(page(self.anomalies_from(input, true).await?, top_n, offset))
    }

    /// Every anomaly from CUR, and from Cost Explorer when `with_cost_explorer` (a paid
    /// request), most money at risk first, on one page (`top_n` and `cursor` are not read).
    pub async fn anomalies_from(
        &self,
        input: AnomalyInput,
        with_cost_explorer: bool,
    ) -> Result<AnomalyOutput, ToolError> {
        let today = crate::domain::clock::today();
        let AnomalyArgs {
            period,
            k,
            min_increase,
            by,
        } = anomaly_args(&input, today)?;
        let mut notes = Vec::new();
        let mut anomalies: Vec<Finding> = Vec::new();
        let mut new_spenders = Vec::new();
        let mut groups_checked = 0;
        let mut skipped_group_days = 0;
        let budgets = {
            let mut b = self.policy_budgets();
            if let Ok((aws, _)) = self.aws_budgets().await {
                b.extend(aws);
            }
            b
        };
        if let Some(cur) = &self.cur {
            let window_start = period.start - Duration::days(WINDOW_DAYS);
            // Read further back than the window, to know which groups are new.
            let span = Period {
                start: window_start - Duration::days(LOOKBACK_DAYS),
                end: period.end,
            };
            let mut q = SpendQuery {
                period: span,
                granularity: Granularity::Daily,
                group_by: vec![by.clone(), GroupKey::Model],
                filter: SpendFilter::default(),
                metric: Metric::Unblended,
            };
            self.scope_query(&mut q, false)?;
            let ans = cur.spend(&q, no_progress()).await?;
            // The first day of the data read (the data may start after the span does).
            let data_start = ans.rows.iter().map(|r| r.bucket_start).min();
            // who -> day -> (total, model -> amount)
            let mut series: BTreeMap<String, HashMap<NaiveDate, DaySpend>> = BTreeMap::new();
            for r in ans.rows {
                let who = r.keys.first().cloned().flatten().unwrap_or_else(|| {
                    if by.is_tag() {
                        "untagged".into()
                    } else {
                        "(none)".into()
                    }
                });
                let model = r.keys.get(1).cloned().flatten().unwrap_or_default();
                let e = series
                    .entry(who)
                    .or_default()
                    .entry(r.bucket_start)
                    .or_default();
                e.0 += r.amount;
                *e.1.entry(model).or_default() += r.amount;
            }
            groups_checked = series
                .values()
                .filter(|days| days.keys().any(|d| *d >= window_start))
                .count();
            let (mut too_short, mut too_new) = (0, 0);
            for (who, days) in &series {
                let (Some(data_start), Some(first_seen)) = (
                    data_start,
                    days.iter()
                        .filter(|(_, s)| s.0 != 0.0)
                        .map(|(d, _)| *d)
                        .min(),
                ) else {
                    continue;
                };
                let mut new_spend = 0.0;
                let mut d = period.start;
                while d < period.end {
                    let Some((actual, models)) = days.get(&d).cloned() else {
                        d += Duration::days(1);
                        continue;
                    };
                    match history(d, data_start, first_seen) {
                        History::Full => {}
                        History::DataTooShort => {
                            too_short += usize::from(actual != 0.0);
                            d += Duration::days(1);
                            continue;
                        }
                        History::NewGroup => {
                            too_new += usize::from(actual != 0.0);
                            new_spend += actual;
                            d += Duration::days(1);
                            continue;
                        }
                    }
                    let baseline: Vec<f64> = (1..=WINDOW_DAYS)
                        .rev()
                        .map(|i| {
                            days.get(&(d - Duration::days(i)))
                                .map(|x| x.0)
                                .unwrap_or(0.0)
                        })
                        .collect();
                    let v = judge(&baseline, actual, k, min_increase);
                    if v.anomalous {
                        let mut drivers: Vec<Driver> = models
                            .into_iter()
                            .map(|(model, amount)| Driver {
                                model,
                                amount: round2(amount),
                            })
                            .collect();
                        drivers.sort_by(|a, b| b.amount.total_cmp(&a.amount));
                        drivers.truncate(3);
                        let mut subject = Subject::default();
                        match &by {
                            GroupKey::Role => subject.role_arn = Some(who.clone()),
                            GroupKey::Principal => subject.principal_arn = Some(who.clone()),
                            GroupKey::Tag(key) => {
                                subject.tags.insert(key.clone(), who.clone());
                            }
                            _ => {}
                        }
                        anomalies.push(Finding {
                            excess: round2(actual - v.expected),
                            anomaly: Anomaly {
                                calls_per_minute: None,
                                source: "cur_baseline".into(),
                                who: who.clone(),
                                day: d.to_string(),
                                expected: round2(v.expected),
                                actual: round2(actual),
                                score: (finite(v.score) * 10.0).round() / 10.0,
                                drivers,
                                budget_threatened: choose(&budgets, &subject).map(|b| {
                                    format!("{} ({}, {})", b.name, fmt_money(b.limit_usd), b.source)
                                }),
                            },
                        });
                    }
                    d += Duration::days(1);
                }
                if new_spend >= min_increase && new_spend > 0.0 {
                    new_spenders.push(NewSpender {
                        who: who.clone(),
                        first_day: first_seen.to_string(),
                        amount: round2(new_spend),
                    });
                }
            }
            skipped_group_days = too_short + too_new;
            if skipped_group_days > 0 {
                let mut n = format!(
                    "{skipped_group_days} group-days with spend not judged, fewer than {WINDOW_DAYS} days of history before them:"
                );
                if too_short > 0 {
                    n.push_str(&format!(
                        " {too_short} at the start of the data (from {})",
                        data_start.map(|d| d.to_string()).unwrap_or_default()
                    ));
                }
                if too_new > 0 {
                    n.push_str(&format!(
                        "{} {too_new} of groups new since (new_spenders lists those over {})",
                        if too_short > 0 { ";" } else { "" },
                        fmt_money(min_increase)
                    ));
                }
                notes.push(n);
            }
            new_spenders.sort_by(|a, b| {
                b.amount
                    .total_cmp(&a.amount)
                    .then_with(|| a.who.cmp(&b.who))
            });
        } else {
            notes.push(
                "per-principal spike detection needs the CUR source (start with --cur PATH)".into(),
            );
        }
        // The last hours, from the invocation logs: a runaway loop shows within the hour.
        if let Some(live) = self.live.clone()
            && period.end > today - Duration::days(1)
        {
            match self
                .hourly_anomalies(&live, &by, k, min_increase, &budgets)
                .await
            {
                Ok((found, note)) => {
                    anomalies.extend(found);
                    notes.push(note);
                }
                Err(e) => notes.push(format!(
                    "hourly anomalies from invocation logs not read: {e}"
                )),
            }
        }
        if with_cost_explorer && self.visibility().is_some() {
            notes.push("Cost Explorer anomaly detection is account-wide, so it is not shown to a caller limited to part of the spend".into());
        } else if with_cost_explorer {
            match self.ce_anomalies(period).await {
                Ok(ce) => anomalies.extend(ce.into_iter().map(Finding::from)),
                Err(e) => notes.push(format!("Cost Explorer anomaly detection not read: {e}")),
            }
        }
        anomalies.sort_by(rank);
        if anomalies.is_empty() {
            notes.push(format!("no anomaly between {} and {}; billing data lags 24-48 h, so the last two days may be incomplete", period.start, period.end));
        }
        Ok(AnomalyOutput {
            period: crate::usecases::spend::PeriodOut {
                start: period.start.to_string(),
                end: period.end.to_string(),
            },
            by: by.to_string(),
            rule: format!(
                "actual > median + {k} x max(1.4826 x MAD, 10% of median, {}) over the previous {WINDOW_DAYS} days, and at least {} above the median; judged only with {WINDOW_DAYS} days of history",
                fmt_money(crate::domain::anomaly::MIN_SCALE_USD),
                fmt_money(min_increase)
            ),
            row_count: anomalies.len(),
            anomalies,
            next_cursor: None,
            groups_checked,
            skipped_group_days,
            new_spenders,
            notes,
        })
    }
}
