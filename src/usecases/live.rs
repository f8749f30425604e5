//! The live layer in answers: spend after the last billed day from Bedrock model invocation
//! logs (`unbilled_estimate`, never mixed into billed figures), the logs' estimate against the
//! bill for days that are both billed and logged (`live_vs_bill`), and logged spend for budget
//! checks.
//!
//! "Billed through": the day after the newest day with spend in the billed source's answer for
//! the same question (scoped and filtered like it), looked for in the last [`BILL_LAG_DAYS`]
//! days. A day the bill has partly is counted as billed, so logged spend of that day is left out
//! (the estimate errs low, never counts a call twice).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::group::{Granularity, GroupKey, SpendFilter, SpendQuery};
use crate::domain::period::Period;
use crate::error::ToolError;
use crate::sources::invocation_logs::{InvocationLogs, midnight};
use crate::sources::{Progress, SpendAnswer, SpendSource};
use crate::usecases::context::Ctx;
use crate::usecases::spend::{SpendRowOut, round4, shape_all};

/// How far back the newest billed day is looked for: billing lags usage by 24-48 h; a source
/// with nothing in these days is treated as billed through their start.
pub const BILL_LAG_DAYS: i64 = 4;

/// Most rows in `live_vs_bill`.
pub const MAX_COMPARED: usize = 200;

/// Spend after the last billed day, from invocation logs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UnbilledEstimate {
    /// Start of the unbilled window (RFC 3339): the end of the last billed day.
    pub from: String,
    /// End of the window (RFC 3339): now, or the period's end.
    pub to: String,
    /// The logs' estimate for the window (standard-tier prices, as estimate_cost).
    pub total: f64,
    /// The same groups as the billed rows.
    pub rows: Vec<SpendRowOut>,
    /// The newest log record read (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_log_record: Option<String>,
    pub notes: Vec<String>,
}

/// One principal and model: the logs' estimate against the bill.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Compared {
    pub principal: String,
    pub model: String,
    pub estimate: f64,
    pub billed: f64,
    /// estimate - billed.
    pub difference: f64,
    /// difference / billed in percent; absent where nothing is billed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_percent: Option<f64>,
}

/// The logs' estimate against the bill for the billed days of the period.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LiveVsBill {
    /// The days compared: billed and logged.
    pub period: crate::usecases::spend::PeriodOut,
    pub estimate_total: f64,
    pub billed_total: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_percent: Option<f64>,
    /// Largest bills first (at most 200 rows).
    pub rows: Vec<Compared>,
    /// Principal-model pairs in all.
    pub row_count: usize,
    pub notes: Vec<String>,
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn percent(diff: f64, base: f64) -> Option<f64> {
    (base.abs() >= 0.005).then(|| (diff / base * 10_000.0).round() / 100.0)
}

impl Ctx {
    /// The day after the newest day with billed spend for `q` (scoped and filtered), within the
    /// last [`BILL_LAG_DAYS`] days of the period; and the paid requests that took.
    pub(crate) async fn billed_through(
        &self,
        q: &SpendQuery,
        billed: &dyn SpendSource,
        today: NaiveDate,
    ) -> Result<(NaiveDate, u32), ToolError> {
        let start = q.period.start.max(today - Duration::days(BILL_LAG_DAYS));
        let end = q.period.end.min(today + Duration::days(1));
        if start >= end {
            return Ok((end, 0));
        }
        let probe = SpendQuery {
            period: Period { start, end },
            granularity: Granularity::Daily,
            // The CUR source answers days of a day key from its month rollups.
            group_by: if billed.name() == "cur" {
                vec![GroupKey::Day]
            } else {
                vec![]
            },
            filter: q.filter.clone(),
            metric: q.metric,
        };
        let ans = billed.spend(&probe, crate::sources::no_progress()).await?;
        let newest = ans
            .rows
            .iter()
            .filter(|r| r.amount.abs() >= 0.000_5)
            .map(|r| r.bucket_start)
            .max();
        Ok((
            newest.map_or(start, |d| d + Duration::days(1)),
            ans.paid_requests,
        ))
    }

    /// The unbilled estimate for a question answered from `billed`: logs from the end of the
    /// last billed day to now (or the period's end). None when the period ended before that.
    pub(crate) async fn unbilled_estimate(
        &self,
        q: &SpendQuery,
        billed: &dyn SpendSource,
        live: &InvocationLogs,
        top_n: usize,
        progress: Progress,
    ) -> Result<(Option<UnbilledEstimate>, u32), ToolError> {
        let now = crate::domain::clock::now();
        let today = now.date_naive();
        if q.period.end <= today - Duration::days(BILL_LAG_DAYS) {
            return Ok((None, 0));
        }
        let (through, paid) = self.billed_through(q, billed, today).await?;
        let from = midnight(through.max(q.period.start));
        let to = midnight(q.period.end).min(now);
        if from >= to {
            return Ok((None, paid));
        }
        let (rows, scan) = live.spend_between(q, from, to, progress).await?;
        let ans = SpendAnswer {
            rows,
            currency: "USD".into(),
            estimated: true,
            services_counted: vec![],
            paid_requests: 0,
            cached: false,
            as_of: now,
            source: "live",
            notes: vec![],
            adjustments: vec![],
            scanned_bytes: None,
            no_principal: None,
            newest_record: scan.newest,
        };
        let shaped = shape_all(q, ans, top_n);
        let mut notes = vec![format!(
            "{} billed through {}; from then on the figures are model invocation logs priced at standard-tier prices (an estimate: batch, provisioned and calls not logged are missing)",
            billed.name(),
            through
        )];
        notes.extend(live.scan_notes(&scan));
        Ok((
            Some(UnbilledEstimate {
                from: rfc(from),
                to: rfc(to),
                total: shaped.total,
                rows: shaped.rows,
                newest_log_record: scan.newest.map(rfc),
                notes,
            }),
            paid,
        ))
    }

    /// The logs' estimate against the bill per principal and model, for the days of the
    /// period that are billed.
    pub(crate) async fn live_vs_bill(
        &self,
        q: &SpendQuery,
        billed: &dyn SpendSource,
        live: &InvocationLogs,
        progress: Progress,
    ) -> Result<(LiveVsBill, u32), ToolError> {
        if !billed.filters_principals() {
            return Err(ToolError::Unsupported(format!(
                "live_vs_bill compares per principal, which {} cannot answer; ask with source \"cur\" or \"athena\"",
                billed.name()
            )));
        }
        let today = crate::domain::clock::today();
        let (through, paid) = self.billed_through(q, billed, today).await?;
        let end = through.min(q.period.end);
        let period = Period {
            start: q.period.start,
            end,
        };
        let compare = SpendQuery {
            period,
            granularity: Granularity::Monthly,
            group_by: vec![GroupKey::Principal, GroupKey::Model],
            filter: q.filter.clone(),
            metric: q.metric,
        };
        let mut pairs: BTreeMap<(String, String), (String, f64, f64)> = BTreeMap::new();
        let mut notes = Vec::new();
        let mut paid = paid;
        if period.start < period.end {
            let bill = billed.spend(&compare, progress.clone()).await?;
            paid += bill.paid_requests;
            for r in &bill.rows {
                let principal = r.keys[0].clone().unwrap_or_else(|| "no_principal".into());
                let model = r.keys[1].clone().unwrap_or_else(|| "(none)".into());
                let e = pairs
                    .entry((principal, crate::domain::model::key(&model)))
                    .or_insert((model, 0.0, 0.0));
                e.2 += r.amount;
            }
            let (rows, scan) = live
                .spend_between(
                    &compare,
                    midnight(period.start),
                    midnight(period.end),
                    progress,
                )
                .await?;
            for r in &rows {
                let principal = r.keys[0].clone().unwrap_or_default();
                let model = r.keys[1].clone().unwrap_or_default();
                let e = pairs
                    .entry((principal, crate::domain::model::key(&model)))
                    .or_insert((model, 0.0, 0.0));
                e.1 += r.amount;
            }
            notes.extend(live.scan_notes(&scan));
        } else {
            notes.push(format!(
                "no day of the period is billed yet ({} billed through {through})",
                billed.name()
            ));
        }
        notes.insert(0, format!(
            "compared: {} to {} (the billed days of the period); the bill also holds what the logs do not record: batch inference, provisioned throughput, other tiers, lines without a principal and calls made while logging was off",
            period.start, period.end
        ));
        let (estimate_total, billed_total) = pairs
            .values()
            .fold((0.0, 0.0), |(e, b), v| (e + v.1, b + v.2));
        let mut rows: Vec<Compared> = pairs
            .into_iter()
            .map(|((principal, _), (model, estimate, billed))| {
                // From the figures as shown, so the row checks by hand.
                let (estimate, billed) = (round4(estimate), round4(billed));
                Compared {
                    principal,
                    model,
                    estimate,
                    billed,
                    difference: round4(estimate - billed),
                    error_percent: percent(estimate - billed, billed),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.billed
                .abs()
                .total_cmp(&a.billed.abs())
                .then_with(|| b.estimate.abs().total_cmp(&a.estimate.abs()))
                .then_with(|| (&a.principal, &a.model).cmp(&(&b.principal, &b.model)))
        });
        let row_count = rows.len();
        rows.truncate(MAX_COMPARED);
        Ok((
            LiveVsBill {
                period: crate::usecases::spend::PeriodOut {
                    start: period.start.to_string(),
                    end: period.end.to_string(),
                },
                estimate_total: round4(estimate_total),
                billed_total: round4(billed_total),
                error_percent: percent(estimate_total - billed_total, billed_total),
                rows,
                row_count,
                notes,
            },
            paid,
        ))
    }

    /// Logged spend for a budget's filter between two instants, with the newest record seen;
    /// None without --invocation-logs.
    pub(crate) async fn logged_spend(
        &self,
        filter: &SpendFilter,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Option<Result<(f64, Option<DateTime<Utc>>, Vec<String>), ToolError>> {
        let live = self.live.as_ref()?;
        if from >= to {
            return Some(Ok((0.0, None, vec![])));
        }
        let q = SpendQuery {
            period: Period {
                start: from.date_naive(),
                end: to.date_naive() + Duration::days(1),
            },
            granularity: Granularity::Monthly,
            group_by: vec![],
            filter: filter.clone(),
            metric: crate::domain::group::Metric::Unblended,
        };
        Some(
            live.spend_between(&q, from, to, crate::sources::no_progress())
                .await
                .map(|(rows, scan)| {
                    (
                        rows.iter().map(|r| r.amount).sum(),
                        scan.newest,
                        live.scan_notes(&scan),
                    )
                }),
        )
    }
}
