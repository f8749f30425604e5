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

/// Hours of baseline an hour is judged against, and hours judged (the last day).
pub const HOURLY_WINDOW: i64 = 24;

impl Ctx {
    /// Each of the last [`HOURLY_WINDOW`] hours (the current one so far included) of each role,
    /// principal or tag value, judged like a day (`domain::anomaly::judge`) against its previous
    /// [`HOURLY_WINDOW`] hours from the invocation logs; hours without records count as 0, and
    /// an hour is judged only when the logs reach a full window before it. Findings name the
    /// models behind the hour and the calls per minute.
    pub(crate) async fn hourly_anomalies(
        &self,
        live: &InvocationLogs,
        by: &GroupKey,
        k: f64,
        min_increase: f64,
        budgets: &[crate::sources::budgets::Budget],
    ) -> Result<(Vec<crate::usecases::anomalies::Finding>, String), ToolError> {
        use crate::domain::anomaly::{Anomaly, Driver, finite, judge};
        use crate::sources::invocation_logs::{hour_start, shape};
        let now = crate::domain::clock::now();
        let current = hour_start(now);
        let first_judged = current - Duration::hours(HOURLY_WINDOW - 1);
        let from = first_judged - Duration::hours(HOURLY_WINDOW);
        let scan = live.scan(from, now, crate::sources::no_progress()).await?;
        // The caller's visibility, as for every spend question.
        let mut q = SpendQuery {
            period: Period {
                start: from.date_naive(),
                end: now.date_naive() + Duration::days(1),
            },
            granularity: Granularity::Daily,
            group_by: vec![by.clone(), GroupKey::Model],
            filter: SpendFilter::default(),
            metric: crate::domain::group::Metric::Unblended,
        };
        self.scope_query(&mut q, false)?;
        let tags = if by.is_tag() || !q.filter.tags.is_empty() {
            Some(live.tags(crate::sources::no_progress()).await?)
        } else {
            None
        };
        let mut by_hour: BTreeMap<DateTime<Utc>, Vec<crate::sources::invocation_logs::LiveLine>> =
            BTreeMap::new();
        for l in &scan.lines {
            by_hour.entry(l.hour).or_default().push(l.clone());
        }
        // who -> hour -> (total, model -> amount, calls)
        type HourSpend = (f64, BTreeMap<String, f64>, u64);
        let mut series: BTreeMap<String, BTreeMap<DateTime<Utc>, HourSpend>> = BTreeMap::new();
        for (hour, lines) in &by_hour {
            for row in shape(&q, lines, tags.as_ref()) {
                let who = row.keys[0].clone().unwrap_or_else(|| "untagged".into());
                let model = row.keys[1].clone().unwrap_or_default();
                let e = series.entry(who).or_default().entry(*hour).or_default();
                e.0 += row.amount;
                *e.1.entry(model).or_default() += row.amount;
            }
            // Calls of each group in the hour (on the input lines, so each call counts once).
            let calls_q = SpendQuery {
                group_by: vec![by.clone()],
                ..q.clone()
            };
            let counted: Vec<crate::sources::invocation_logs::LiveLine> = lines
                .iter()
                .filter(|l| l.calls > 0)
                .map(|l| crate::sources::invocation_logs::LiveLine {
                    cost: l.calls as f64,
                    ..l.clone()
                })
                .collect();
            for row in shape(&calls_q, &counted, tags.as_ref()) {
                let who = row.keys[0].clone().unwrap_or_else(|| "untagged".into());
                if let Some(e) = series.get_mut(&who).and_then(|s| s.get_mut(hour)) {
                    e.2 += row.amount.round() as u64;
                }
            }
        }
        let data_start = by_hour.keys().next().copied();
        let mut found = Vec::new();
        let mut judged = 0usize;
        for (who, hours) in &series {
            let mut h = first_judged;
            while h <= current {
                let Some((actual, models, calls)) = hours.get(&h) else {
                    h += Duration::hours(1);
                    continue;
                };
                if data_start.is_none_or(|d| d > h - Duration::hours(HOURLY_WINDOW)) {
                    h += Duration::hours(1);
                    continue;
                }
                judged += 1;
                let baseline: Vec<f64> = (1..=HOURLY_WINDOW)
                    .rev()
                    .map(|i| hours.get(&(h - Duration::hours(i))).map_or(0.0, |x| x.0))
                    .collect();
                let v = judge(&baseline, *actual, k, min_increase);
                if v.anomalous {
                    let mut drivers: Vec<Driver> = models
                        .iter()
                        .map(|(model, amount)| Driver {
                            model: model.clone(),
                            amount: (amount * 100.0).round() / 100.0,
                        })
                        .collect();
                    drivers.sort_by(|a, b| b.amount.total_cmp(&a.amount));
                    drivers.truncate(3);
                    let minutes = if h == current {
                        ((now - h).num_seconds() as f64 / 60.0).max(1.0)
                    } else {
                        60.0
                    };
                    let mut subject = crate::sources::budgets::Subject::default();
                    match by {
                        GroupKey::Role => subject.role_arn = Some(who.clone()),
                        GroupKey::Principal => subject.principal_arn = Some(who.clone()),
                        GroupKey::Tag(key) => {
                            subject.tags.insert(key.clone(), who.clone());
                        }
                        _ => {}
                    }
                    let r2 = |x: f64| (finite(x) * 100.0).round() / 100.0;
                    found.push(crate::usecases::anomalies::Finding {
                        excess: r2(actual - v.expected),
                        anomaly: Anomaly {
                            source: "live_hourly".into(),
                            who: who.clone(),
                            day: rfc(h),
                            expected: r2(v.expected),
                            actual: r2(*actual),
                            score: (finite(v.score) * 10.0).round() / 10.0,
                            drivers,
                            budget_threatened: crate::sources::budgets::choose(budgets, &subject)
                                .map(|b| {
                                    format!(
                                        "{} ({}, {})",
                                        b.name,
                                        crate::domain::label::fmt_money(b.limit_usd),
                                        b.source
                                    )
                                }),
                            calls_per_minute: Some((*calls as f64 / minutes * 10.0).round() / 10.0),
                        },
                    });
                }
                h += Duration::hours(1);
            }
        }
        let note = format!(
            "hourly from invocation logs ({}): {judged} group-hours of the last {HOURLY_WINDOW} judged against their previous {HOURLY_WINDOW} hours (newest record {}); {} flagged",
            live.location(),
            scan.newest.map_or_else(|| "none".to_string(), rfc),
            found.len()
        );
        Ok((found, note))
    }
}

/// Distinct session names from which one role's calls must come to count as a shared gateway.
pub const GATEWAY_SESSIONS: usize = 10;

/// Days of logs read for shared gateways (the end of the question's period back).
pub const GATEWAY_DAYS: i64 = 7;

/// A role that many callers use under different session names (a gateway, a proxy, an agent
/// runtime): every call is billed to the role's tags, so its spend cannot be split by who asked.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SharedGateway {
    pub role: String,
    /// Distinct session names in the logs read.
    pub sessions: usize,
    /// Logged spend (estimate) of the role in those days.
    pub spend: f64,
    /// The sessions that spent the most.
    pub top_sessions: Vec<crate::usecases::untagged::SessionSpend>,
    /// Whether the role's trust policy lets callers pass session tags (`sts:TagSession`);
    /// absent when IAM does not list the role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_session_allowed: Option<bool>,
    /// An AgentCore Runtime execution role: most of its sessions are named
    /// `BedrockAgentCore-<id>` (the runtime assumes the role itself, one session per runtime
    /// session), so its callers cannot pass session tags.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub agentcore_runtime: bool,
    pub recommendation: String,
}

/// The session-name prefix of AgentCore Runtime's own sessions of its execution role
/// (`arn:aws:sts::<acct>:assumed-role/<role>/BedrockAgentCore-<id>`).
pub const AGENTCORE_SESSION_PREFIX: &str = "BedrockAgentCore-";

impl Ctx {
    /// Roles whose logged calls of the last [`GATEWAY_DAYS`] days of `period` come from at least
    /// [`GATEWAY_SESSIONS`] session names, as the caller may see them.
    pub(crate) async fn shared_gateways(
        &self,
        live: &InvocationLogs,
        period: Period,
        inventory: &crate::sources::iam::Inventory,
    ) -> Result<Vec<SharedGateway>, ToolError> {
        let now = crate::domain::clock::now();
        let to = midnight(period.end).min(now);
        let from = midnight(period.start).max(to - Duration::days(GATEWAY_DAYS));
        let mut q = SpendQuery {
            period: Period {
                start: from.date_naive(),
                end: to.date_naive() + Duration::days(1),
            },
            granularity: Granularity::Monthly,
            group_by: vec![GroupKey::Role, GroupKey::Session],
            filter: SpendFilter::default(),
            metric: crate::domain::group::Metric::Unblended,
        };
        self.scope_query(&mut q, false)?;
        let (rows, _) = live
            .spend_between(&q, from, to, crate::sources::no_progress())
            .await?;
        let mut roles: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for r in rows {
            let (Some(role), Some(session)) = (r.keys[0].clone(), r.keys[1].clone()) else {
                continue;
            };
            *roles.entry(role).or_default().entry(session).or_default() += r.amount;
        }
        let mut out: Vec<SharedGateway> = roles
            .into_iter()
            .filter(|(_, s)| s.len() >= GATEWAY_SESSIONS)
            .map(|(role, sessions)| {
                let name = role.rsplit('/').next().unwrap_or(&role);
                let account = role.split(':').nth(4).unwrap_or("");
                let allowed = inventory
                    .principals
                    .iter()
                    .find(|p| {
                        p.kind == crate::sources::iam::IamKind::Role
                            && p.name == name
                            && p.account() == account
                    })
                    .map(|p| p.tag_session_allowed);
                let mut top: Vec<crate::usecases::untagged::SessionSpend> = sessions
                    .iter()
                    .map(|(s, a)| crate::usecases::untagged::SessionSpend {
                        session: s.clone(),
                        amount: round4(*a),
                    })
                    .collect();
                top.sort_by(|a, b| b.amount.total_cmp(&a.amount).then_with(|| a.session.cmp(&b.session)));
                top.truncate(3);
                let agentcore = sessions
                    .keys()
                    .filter(|s| s.starts_with(AGENTCORE_SESSION_PREFIX))
                    .count()
                    * 2
                    > sessions.len();
                let recommendation = match allowed {
                    _ if agentcore => format!(
                        "{name} is an AgentCore Runtime execution role (AgentCore assumes it under its own session names, so no session tags can be passed): give each agent runtime its own execution role carrying the iamPrincipal keys (team, agent) so each runtime's spend is its own"
                    ),
                    Some(true) => format!(
                        "callers of {name} should pass session tags (sts:AssumeRole with Tags, e.g. iamPrincipal keys per end user or tenant; its trust policy allows sts:TagSession) so its spend splits by caller"
                    ),
                    Some(false) => format!(
                        "allow sts:TagSession in {name}'s trust policy and have its callers pass session tags (the iamPrincipal keys per end user or tenant) so its spend splits by caller"
                    ),
                    None => format!(
                        "{name} is not in this account's IAM listing; have its callers pass session tags so its spend splits by caller"
                    ),
                };
                SharedGateway {
                    role,
                    sessions: sessions.len(),
                    spend: round4(sessions.values().sum()),
                    top_sessions: top,
                    tag_session_allowed: allowed,
                    agentcore_runtime: agentcore,
                    recommendation,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.spend
                .total_cmp(&a.spend)
                .then_with(|| a.role.cmp(&b.role))
        });
        Ok(out)
    }
}
