//! `spend_anomalies`: unexpected Bedrock spend such as a runaway agent loop.
//! Per principal (role, principal or tag value) from CUR, each day against
//! its own trailing baseline ([`crate::domain::anomaly`]); plus Cost
//! Explorer's anomaly detection (`GetAnomalies`) on Bedrock when available.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Serialize;

pub use super::args::AnomalyInput;
use super::args::{AnomalyArgs, anomaly_args};
use super::{fmt_money, respond};
use crate::domain::anomaly::judge;
use crate::domain::group::{Granularity, GroupKey, Metric, SpendFilter, SpendQuery};
use crate::domain::period::Period;
use crate::error::ToolError;
use crate::server::App;
use crate::sources::budgets::{Subject, choose};
use crate::sources::no_progress;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Driver {
    pub model: String,
    pub amount: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Anomaly {
    /// cur_baseline or cost_explorer.
    pub source: String,
    /// The role, principal or tag value.
    pub who: String,
    pub day: String,
    pub expected: f64,
    pub actual: f64,
    pub score: f64,
    /// Models that drove the day.
    pub drivers: Vec<Driver>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_threatened: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AnomalyOutput {
    pub period: super::spend::PeriodOut,
    pub by: String,
    pub rule: String,
    pub anomalies: Vec<Anomaly>,
    pub groups_checked: usize,
    pub notes: Vec<String>,
}

#[tool_router(router = anomaly_router, vis = "pub(crate)")]
impl App {
    /// Unexpected Bedrock spend (a runaway agent loop?) per role, principal or tag, each day vs its 14-day baseline (CUR), plus Cost Explorer anomaly detection: day, expected vs actual, models, budget at risk.
    #[tool(
        name = "spend_anomalies",
        title = "Spend spikes",
        output_schema = rmcp::handler::server::tool::schema_for_output::<AnomalyOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true)
    )]
    pub async fn spend_anomalies(
        &self,
        Parameters(input): Parameters<AnomalyInput>,
    ) -> CallToolResult {
        respond(self.anomalies(input).await.map(|o| (render(&o), o)))
    }
}

const WINDOW: i64 = 14;

/// A day's total and its split by model.
type DaySpend = (f64, BTreeMap<String, f64>);

impl App {
    /// `spend_anomalies`, shared with the CLI.
    pub async fn anomalies(&self, input: AnomalyInput) -> Result<AnomalyOutput, ToolError> {
        self.anomalies_from(input, true).await
    }

    /// Anomalies from CUR, and from Cost Explorer when `with_cost_explorer` (a paid request).
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
        let mut anomalies = Vec::new();
        let mut groups_checked = 0;
        let budgets = {
            let mut b = self.policy_budgets();
            if let Ok((aws, _)) = self.aws_budgets().await {
                b.extend(aws);
            }
            b
        };
        if let Some(cur) = &self.cur {
            let span = Period {
                start: period.start - Duration::days(WINDOW),
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
            groups_checked = series.len();
            for (who, days) in &series {
                let mut d = period.start;
                while d < period.end {
                    let baseline: Vec<f64> = (1..=WINDOW)
                        .rev()
                        .map(|i| {
                            days.get(&(d - Duration::days(i)))
                                .map(|x| x.0)
                                .unwrap_or(0.0)
                        })
                        .collect();
                    let (actual, models) = days.get(&d).cloned().unwrap_or_default();
                    let v = judge(&baseline, actual, k, min_increase);
                    if v.anomalous {
                        let mut drivers: Vec<Driver> = models
                            .into_iter()
                            .map(|(model, amount)| Driver {
                                model,
                                amount: (amount * 100.0).round() / 100.0,
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
                        anomalies.push(Anomaly {
                            source: "cur_baseline".into(),
                            who: who.clone(),
                            day: d.to_string(),
                            expected: (v.expected * 100.0).round() / 100.0,
                            actual: (actual * 100.0).round() / 100.0,
                            score: (v.score * 10.0).round() / 10.0,
                            drivers,
                            budget_threatened: choose(&budgets, &subject).map(|b| {
                                format!("{} ({}, {})", b.name, fmt_money(b.limit_usd), b.source)
                            }),
                        });
                    }
                    d += Duration::days(1);
                }
            }
        } else {
            notes.push(
                "per-principal spike detection needs the CUR source (start with --cur PATH)".into(),
            );
        }
        if with_cost_explorer && self.visibility().is_some() {
            notes.push("Cost Explorer anomaly detection is account-wide, so it is not shown to a caller limited to part of the spend".into());
        } else if with_cost_explorer {
            match self.ce_anomalies(period).await {
                Ok(mut ce) => anomalies.append(&mut ce),
                Err(e) => notes.push(format!("Cost Explorer anomaly detection not read: {e}")),
            }
        }
        anomalies.sort_by(|a, b| b.day.cmp(&a.day).then(b.score.total_cmp(&a.score)));
        if anomalies.is_empty() {
            notes.push(format!("no anomaly between {} and {}; billing data lags 24-48 h, so the last two days may be incomplete", period.start, period.end));
        }
        Ok(AnomalyOutput {
            period: super::spend::PeriodOut {
                start: period.start.to_string(),
                end: period.end.to_string(),
            },
            by: by.to_string(),
            rule: format!(
                "actual > median + {k} x max(1.4826 x MAD, 10% of median) over the previous {WINDOW} days, and at least {} above the median",
                fmt_money(min_increase)
            ),
            anomalies,
            groups_checked,
            notes,
        })
    }
}

pub(crate) fn render(o: &AnomalyOutput) -> String {
    let mut t = format!(
        "Spend anomalies by {} from {} to {}: {} found ({} groups checked).\n",
        o.by,
        o.period.start,
        o.period.end,
        o.anomalies.len(),
        o.groups_checked
    );
    for a in &o.anomalies {
        t.push_str(&format!(
            "- {} {}: {} vs expected {} (score {}){}{}\n",
            a.day,
            a.who,
            fmt_money(a.actual),
            fmt_money(a.expected),
            a.score,
            if a.drivers.is_empty() {
                String::new()
            } else {
                format!(
                    "; driven by {}",
                    a.drivers
                        .iter()
                        .map(|d| format!("{} {}", d.model, fmt_money(d.amount)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            a.budget_threatened
                .as_ref()
                .map(|b| format!("; threatens budget {b}"))
                .unwrap_or_default()
        ));
    }
    t.push_str(&format!("Rule: {}.\n", o.rule));
    for n in &o.notes {
        t.push_str(&format!("Note: {n}\n"));
    }
    t
}
