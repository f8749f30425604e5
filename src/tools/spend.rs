//! `bedrock_spend`: Bedrock spend for a period, grouped by principal tag,
//! principal, role, model, token kind and more; untagged spend is always a
//! row of its own, and the rows reconcile to the total.

use std::collections::{BTreeMap, HashMap};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool};

pub use super::args::{
    GranularityInput, MetricInput, OneOrMany, SourceInput, SpendInput, build_query, parse_cursor,
};
use super::{fmt_money, progress_reporter, respond};
use crate::domain::group::{Granularity, GroupKey, SpendQuery};
use crate::error::ToolError;
use crate::sources::Progress;
use crate::usecases::context::Ctx;
use crate::usecases::spend::*;

/// The short human table that accompanies the structured answer.
pub fn render_text(o: &SpendOutput) -> String {
    let mut s = format!(
        "Bedrock spend {} to {} (end exclusive), {} {}, {} buckets. Source {}, as of {}{}; {} paid request(s){}.\n",
        o.period.start,
        o.period.end,
        o.metric,
        o.currency,
        o.granularity,
        o.source,
        o.as_of,
        if o.estimated { ", estimated" } else { "" },
        o.paid_requests,
        if o.cached { ", served from cache" } else { "" }
    );
    let multi_bucket = o
        .rows
        .iter()
        .map(|r| &r.bucket)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    // One aligned column per group key. Long values (principal ARNs) are shortened in the
    // middle to about 60 characters, never so that two different values print the same
    // (`domain::label`); the structured answer has them in full.
    let labels: Vec<HashMap<&str, String>> = o
        .group_by
        .iter()
        .map(|k| {
            let mut values: Vec<&str> = o
                .rows
                .iter()
                .filter_map(|r| r.keys.get(k).map(String::as_str))
                .collect();
            values.sort_unstable();
            values.dedup();
            let short = crate::domain::label::distinct(&values, 60);
            values.into_iter().zip(short).collect()
        })
        .collect();
    let widths: Vec<usize> = o
        .group_by
        .iter()
        .zip(&labels)
        .map(|(k, l)| {
            l.values()
                .map(|v| v.chars().count())
                .chain([k.chars().count(), 5])
                .max()
                .unwrap_or(5)
        })
        .collect();
    let cells = |values: &[&str]| -> String {
        values
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (v, w))| {
                let v = labels
                    .get(i)
                    .and_then(|l| l.get(v))
                    .map(String::as_str)
                    .unwrap_or(v);
                format!("{v:<w$}")
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    if multi_bucket {
        s.push_str(&format!("{:<10}  ", "bucket"));
    }
    let header: Vec<&str> = o.group_by.iter().map(String::as_str).collect();
    s.push_str(&format!(
        "{}  {:>12}  {:>6}\n",
        cells(&header),
        "amount",
        "share"
    ));
    for r in &o.rows {
        if multi_bucket {
            s.push_str(&format!("{:<10}  ", r.bucket));
        }
        let values: Vec<&str> = o
            .group_by
            .iter()
            .map(|k| r.keys.get(k).map_or("", String::as_str))
            .collect();
        s.push_str(&format!(
            "{}  {:>12}  {:>5.1}%\n",
            cells(&values),
            fmt_money(r.amount),
            r.share * 100.0
        ));
    }
    if multi_bucket {
        s.push_str(&format!("{:<10}  ", ""));
    }
    let mut total_cells = vec![""; widths.len()];
    if let Some(first) = total_cells.first_mut() {
        *first = "TOTAL";
    }
    s.push_str(&format!(
        "{}  {:>12}\n",
        cells(&total_cells),
        fmt_money(o.total)
    ));
    let rc = &o.reconciliation;
    // The parts as printed (cents) add up to the total as printed: the cents rounding loses
    // are shown as a part of their own.
    let cents = |x: f64| (x * 100.0).round() as i64;
    let rounding = cents(rc.total)
        - [rc.named, rc.untagged, rc.no_principal, rc.others]
            .into_iter()
            .map(cents)
            .sum::<i64>();
    s.push_str(&format!(
        "named {} + untagged {} + no_principal {} + others {}{} = total {} ({})\n",
        fmt_money(rc.named),
        fmt_money(rc.untagged),
        fmt_money(rc.no_principal),
        fmt_money(rc.others),
        if rounding != 0 {
            format!(" + rounding {}", fmt_money(rounding as f64 / 100.0))
        } else {
            String::new()
        },
        fmt_money(rc.total),
        if rc.reconciled {
            "reconciled"
        } else {
            "DOES NOT RECONCILE"
        }
    ));
    for a in &o.adjustments {
        s.push_str(&format!(
            "Adjustment {} {}: {} ({}{})\n",
            a.bucket,
            a.line_item_type,
            fmt_money(a.amount),
            if a.in_net {
                "already in the net figures"
            } else {
                "not netted into the rows"
            },
            a.refers_to
                .as_ref()
                .map(|m| format!("; refers to {m}"))
                .unwrap_or_default()
        ));
    }
    if !o.adjustments.is_empty() {
        s.push_str(&format!(
            "Total after adjustments: {}\n",
            fmt_money(o.total_after_adjustments)
        ));
    }
    if !o.services_counted.is_empty() {
        s.push_str(&format!(
            "Services counted: {}\n",
            o.services_counted.join("; ")
        ));
    }
    if let Some(c) = &o.next_cursor {
        s.push_str(&format!(
            "{} of {} rows shown; pass cursor \"{c}\" for more.\n",
            o.rows.len(),
            o.row_count
        ));
    }
    if let Some(c) = &o.chart {
        s.push_str(&format!(
            "Chart: {} of {} group(s), {}x{} PNG attached.\n",
            c.kind.replace('_', " "),
            c.groups.len(),
            c.width,
            c.height
        ));
    }
    if let Some(t) = &o.newest_log_record {
        s.push_str(&format!("Newest invocation log record: {t}\n"));
    }
    if let Some(u) = &o.unbilled_estimate {
        s.push_str(&format!(
            "Not billed yet, from invocation logs ({} to {}): {} (an estimate, not in the total above)\n",
            u.from,
            u.to,
            fmt_money(u.total)
        ));
        for r in u.rows.iter().take(10) {
            let keys: Vec<&str> = o
                .group_by
                .iter()
                .map(|k| r.keys.get(k).map_or("", String::as_str))
                .collect();
            s.push_str(&format!(
                "  {:<10}  {}  {:>12}\n",
                r.bucket,
                keys.join("  "),
                fmt_money(r.amount)
            ));
        }
        for n in &u.notes {
            s.push_str(&format!("  Note: {n}\n"));
        }
    }
    if let Some(c) = &o.live_vs_bill {
        s.push_str(&format!(
            "Logs vs bill, {} to {}: estimate {} against billed {}{}\n",
            c.period.start,
            c.period.end,
            fmt_money(c.estimate_total),
            fmt_money(c.billed_total),
            c.error_percent
                .map(|p| format!(" ({p:+.2}%)"))
                .unwrap_or_default()
        ));
        for r in c.rows.iter().take(10) {
            s.push_str(&format!(
                "  {}  {}  estimate {}  billed {}{}\n",
                r.principal,
                r.model,
                fmt_money(r.estimate),
                fmt_money(r.billed),
                r.error_percent
                    .map(|p| format!("  {p:+.2}%"))
                    .unwrap_or_default()
            ));
        }
        for n in &c.notes {
            s.push_str(&format!("  Note: {n}\n"));
        }
    }
    for n in &o.notes {
        s.push_str(&format!("Note: {n}\n"));
    }
    s
}

impl Ctx {
    /// Bedrock spend by principal tag, principal, role, session, model or token kind; untagged and no-principal spend apart, rows reconcile. Uncached Cost Explorer requests $0.01.
    #[tool(
        name = "bedrock_spend",
        title = "Bedrock spend by principal",
        output_schema = rmcp::handler::server::tool::schema_for_output::<SpendOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true)
    )]
    pub async fn bedrock_spend(
        &self,
        Parameters(input): Parameters<SpendInput>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let progress = progress_reporter(&ctx);
        let result = tokio::select! {
            r = self.spend_charted(input, progress) => r,
            _ = ctx.ct.cancelled() => Err(ToolError::Cancelled),
        };
        match result {
            Ok((out, png)) => {
                let mut r = respond(Ok((render_text(&out), out)));
                if let Some(png) = png {
                    use base64::Engine;
                    r.content.push(ContentBlock::image(
                        base64::engine::general_purpose::STANDARD.encode(&png),
                        "image/png",
                    ));
                    // The chart is also a resource the client can read again (an hour, by the
                    // caller that asked).
                    let uri = self.keep_chart(png);
                    r.content.push(ContentBlock::resource_link(
                        rmcp::model::Resource::new(uri, "spend-chart").with_mime_type("image/png"),
                    ));
                }
                r
            }
            Err(e) => respond::<SpendOutput>(Err(e)),
        }
    }
}

impl Ctx {
    /// Keep a chart as a resource of the current caller; its URI.
    pub(crate) fn keep_chart(&self, png: Vec<u8>) -> String {
        // 128 random bits (std's per-process random hasher keys; no guessable counter).
        use std::hash::BuildHasher;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!(
            "{:016x}{:016x}",
            std::collections::hash_map::RandomState::new().hash_one(seed),
            std::collections::hash_map::RandomState::new().hash_one(seed.rotate_left(64))
        );
        let owner = crate::domain::visibility::current()
            .map_or_else(|| "stdio".to_string(), |c| c.name.clone());
        self.charts
            .insert(id.clone(), (owner, std::sync::Arc::new(png)));
        format!("{}{id}", crate::usecases::context::CHARTS_URI_PREFIX)
    }

    /// The whole `bedrock_spend` question, shared by the tool and the CLI.
    pub async fn spend(
        &self,
        input: SpendInput,
        progress: Progress,
    ) -> Result<SpendOutput, ToolError> {
        self.spend_charted(input, progress).await.map(|(o, _)| o)
    }

    /// The answer page and, with `chart: true`, the PNG chart of the whole
    /// answer (every page); the answer then says what the chart shows.
    pub async fn spend_charted(
        &self,
        input: SpendInput,
        progress: Progress,
    ) -> Result<(SpendOutput, Option<Vec<u8>>), ToolError> {
        let today = crate::domain::clock::today();
        let mut q = build_query(&input, &self.config.default_tag_key, today)?;
        let (top_n, offset) = super::args::spend_page(&input)?;
        let source = self.spend_source(input.source)?;
        if source.name() != "live"
            && let Some(k) = q.group_by.iter().find(|k| k.only_live())
        {
            return Err(ToolError::invalid(format!(
                "{k} is answered from model invocation logs only (source \"live\"): bill lines name the model and usage type, not the inference profile; an application inference profile's own tags reach the bill as resource tags"
            )));
        }
        let asked = q.clone();
        self.scope_query(&mut q, !source.filters_principals())?;
        let mut ans = source.spend(&q, progress.clone()).await?;
        if !asked.filter.is_empty() && ans.rows.iter().all(|r| r.amount.abs() < 0.005) {
            let (notes, paid) = self
                .explain_empty_filter(&asked, source.as_ref(), progress.clone())
                .await;
            ans.paid_requests += paid;
            ans.notes.extend(notes);
        }
        // Credits, refunds, tax and other adjustments carry no principal: they belong to the
        // whole account, so a caller limited to part of the spend does not see them.
        if self.visibility().is_some() && !ans.adjustments.is_empty() {
            ans.adjustments.clear();
            ans.notes.push("adjustments (credits, refunds, tax) are account-wide and not shown to a caller limited to part of the spend".into());
        }
        let billed = source.clone();
        let mut full = shape_all(&q, ans, top_n);
        if let Some(live) = self.live.clone()
            && billed.name() != "live"
        {
            if input.live_vs_bill == Some(true) {
                let (cmp, paid) = self
                    .live_vs_bill(&q, billed.as_ref(), &live, progress.clone())
                    .await?;
                full.paid_requests += paid;
                full.live_vs_bill = Some(cmp);
            }
            // Asked for the default source: the days not billed yet come from the logs,
            // beside the billed figures.
            if input.source.is_none() {
                let (est, paid) = self
                    .unbilled_estimate(&q, billed.as_ref(), &live, top_n, progress.clone())
                    .await?;
                full.paid_requests += paid;
                full.unbilled_estimate = est;
            }
        } else if input.live_vs_bill == Some(true) {
            return Err(ToolError::Unsupported(if self.live.is_none() {
                "live_vs_bill needs the invocation logs: start the server with --invocation-logs PATH|s3://bucket/prefix".into()
            } else {
                "live_vs_bill compares the logs with a bill: ask with source cur or athena (or none)".into()
            }));
        }
        if input.chart != Some(true) {
            return Ok((page(full, offset), None));
        }
        // Drawing is CPU work (tens of ms): keep it off the async workers.
        let (full, chart) = tokio::task::spawn_blocking(move || {
            let chart = crate::chart::render(&full);
            (full, chart)
        })
        .await
        .map_err(|e| ToolError::Internal(format!("the chart could not be drawn: {e}")))?;
        let chart = chart.map_err(|e| {
            ToolError::Internal(format!("{e}; ask again without chart for the figures"))
        })?;
        let mut out = page(full, offset);
        out.chart = Some(chart.summary);
        Ok((out, Some(chart.png)))
    }
}

/// The most filter dimensions probed when a filtered answer is empty (one query each; paid on
/// Cost Explorer).
const MAX_FILTER_PROBES: usize = 4;

/// The filter values that match none of `known` (the values with spend in the period, most
/// spend first), each with up to three closest known values.
fn unmatched_values(
    key: &GroupKey,
    asked: &[String],
    known: &[String],
) -> Vec<(String, Vec<String>)> {
    let matches = |a: &str, k: &str| -> bool {
        match key {
            GroupKey::Model => {
                a.eq_ignore_ascii_case(k)
                    || crate::domain::model::key(a) == crate::domain::model::key(k)
                    || (a.contains('*') && crate::domain::principal::glob_match(a, k))
            }
            GroupKey::Principal | GroupKey::Role => crate::domain::principal::glob_match(a, k),
            _ => a == k,
        }
    };
    asked
        .iter()
        .filter(|a| !a.is_empty() && !known.iter().any(|k| matches(a, k)))
        .map(|a| {
            let lower = a.to_lowercase();
            let mut scored: Vec<(f64, &String)> = known
                .iter()
                .map(|k| {
                    let kl = k.to_lowercase();
                    let mut s = strsim::jaro_winkler(&lower, &kl);
                    if kl.contains(&lower) || lower.contains(&kl) {
                        s += 0.5;
                    }
                    (s, k)
                })
                .collect();
            scored.sort_by(|x, y| y.0.total_cmp(&x.0));
            (
                a.clone(),
                scored.into_iter().take(3).map(|(_, k)| k.clone()).collect(),
            )
        })
        .collect()
}

impl Ctx {
    /// Why a filtered question found nothing: for each filtered dimension, the values that had
    /// spend in the period (within the caller's scope, asked without any other filter),
    /// the asked values that match none of them and the closest known ones. Notes, and the paid
    /// requests made.
    async fn explain_empty_filter(
        &self,
        asked: &SpendQuery,
        source: &dyn crate::sources::SpendSource,
        progress: Progress,
    ) -> (Vec<String>, u32) {
        let mut dims: Vec<(GroupKey, Vec<String>)> = asked
            .filter
            .tags
            .iter()
            .map(|(k, v)| (GroupKey::Tag(k.clone()), v.clone()))
            .collect();
        for (key, values) in [
            (GroupKey::Model, &asked.filter.models),
            (GroupKey::Principal, &asked.filter.principals),
            (GroupKey::Role, &asked.filter.roles),
        ] {
            if !values.is_empty() {
                dims.push((key, values.clone()));
            }
        }
        let (mut notes, mut paid, mut all_match, mut probed, mut any_spend) =
            (Vec::new(), 0, true, false, false);
        for (key, values) in dims.into_iter().take(MAX_FILTER_PROBES) {
            // The dimension alone (no other filter; the caller's scope applied again): a value
            // with spend of its own is not a typo, even when the filters together match nothing.
            let mut q = asked.clone();
            q.filter = crate::domain::group::SpendFilter {
                currencies: asked.filter.currencies.clone(),
                ..Default::default()
            };
            q.group_by = vec![key.clone()];
            q.granularity = Granularity::Monthly;
            if self
                .scope_query(&mut q, !source.filters_principals())
                .is_err()
            {
                continue;
            }
            let Ok(ans) = source.spend(&q, progress.clone()).await else {
                continue;
            };
            paid += ans.paid_requests;
            probed = true;
            let mut by_value: BTreeMap<String, f64> = BTreeMap::new();
            for r in &ans.rows {
                if let Some(Some(v)) = r.keys.first() {
                    *by_value.entry(v.clone()).or_default() += r.amount;
                }
            }
            let mut known: Vec<(String, f64)> = by_value
                .into_iter()
                .filter(|(_, a)| a.abs() >= 0.005)
                .collect();
            known.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let known: Vec<String> = known.into_iter().map(|(k, _)| k).collect();
            any_spend |= !known.is_empty() || ans.rows.iter().any(|r| r.amount.abs() >= 0.005);
            let untagged_asked = key.is_tag() && values.iter().any(String::is_empty);
            let unmatched = unmatched_values(&key, &values, &known);
            if unmatched.is_empty() {
                continue;
            }
            all_match = false;
            if unmatched.len() == values.len() && !untagged_asked {
                for (value, closest) in unmatched {
                    notes.push(if known.is_empty() {
                        format!(
                            "filter {key} = {value:?} matches nothing: no spend in {} to {} carries any {key} value",
                            asked.period.start, asked.period.end
                        )
                    } else {
                        format!(
                            "filter {key} = {value:?} matches nothing in {} to {}; closest values with spend: {} ({} values with spend in all)",
                            asked.period.start,
                            asked.period.end,
                            closest.join(", "),
                            known.len()
                        )
                    });
                }
            } else {
                for (value, closest) in unmatched {
                    notes.push(format!(
                        "filter {key} = {value:?} matches nothing (closest: {})",
                        closest.join(", ")
                    ));
                }
            }
        }
        // Nothing at all in the period (within the caller's scope): not the filter's doing.
        if !any_spend {
            return (Vec::new(), paid);
        }
        if all_match && probed {
            notes.push(
                "every filter value has spend in this period, but no spend matches all of them together".into(),
            );
        }
        (notes, paid)
    }
}

/// `bedrock_spend` in the tool table ([`super::TOOLS`]).
pub const BEDROCK_SPEND: super::ToolUnit = super::ToolUnit {
    name: "bedrock_spend",
    account: true,
    uses: super::Uses::Spend,
    input: super::input::<super::args::SpendInput>(),
    run: |app, args, progress| {
        Box::pin(async move {
            let o = app.spend(super::arguments(args)?, progress).await?;
            super::answer(render_text(&o), o)
        })
    },
    route: || ToolRouter::new().with_route((Ctx::bedrock_spend_tool_attr(), Ctx::bedrock_spend)),
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{SpendAnswer, SpendRow};
    use chrono::{NaiveDate, TimeZone, Utc};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn answer(rows: Vec<(&str, Option<&str>, f64)>) -> SpendAnswer {
        SpendAnswer {
            rows: rows
                .into_iter()
                .map(|(b, k, a)| SpendRow {
                    bucket_start: d(b),
                    keys: vec![k.map(str::to_string)],
                    amount: a,
                    usage: None,
                    usage_unit: None,
                    no_principal: false,
                })
                .collect(),
            no_principal: None,
            newest_record: None,
            currency: "USD".into(),
            estimated: false,
            services_counted: vec!["Amazon Bedrock".into()],
            paid_requests: 1,
            cached: false,
            as_of: Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap(),
            source: "cost_explorer",
            notes: vec![],
            adjustments: vec![],
            scanned_bytes: None,
        }
    }

    fn query() -> SpendQuery {
        let input: SpendInput =
            serde_json::from_value(serde_json::json!({"period": "last_month"})).unwrap();
        build_query(&input, "team", d("2026-11-26")).unwrap()
    }

    #[test]
    fn top_n_folds_into_others_but_never_untagged() {
        let q = query();
        let ans = answer(vec![
            ("2026-10-01", Some("a"), 50.0),
            ("2026-10-01", Some("b"), 30.0),
            ("2026-10-01", Some("c"), 10.0),
            ("2026-10-01", None, 5.0),
        ]);
        let o = shape_answer(&q, ans, 1, 0);
        let labels: Vec<_> = o.rows.iter().map(|r| r.keys["tag:team"].clone()).collect();
        assert_eq!(labels, ["a", "untagged", "others"]);
        assert_eq!(o.total, 95.0);
        assert_eq!(
            (
                o.reconciliation.named,
                o.reconciliation.untagged,
                o.reconciliation.others
            ),
            (50.0, 5.0, 40.0)
        );
        assert!(o.reconciliation.reconciled);
        let text = render_text(&o);
        assert!(
            text.contains("untagged") && text.contains("reconciled"),
            "{text}"
        );
    }

    #[test]
    fn text_table_aligns_one_column_per_group_key() {
        let mut q = query();
        q.group_by = vec![GroupKey::Tag("team".into()), GroupKey::Model];
        let mut a = answer(vec![]);
        for (team, model, amount) in [
            ("finance-apps", "Claude Sonnet 4.6", 30.0),
            ("ml", "Nova Lite", 5.0),
        ] {
            a.rows.push(SpendRow {
                bucket_start: d("2026-10-01"),
                keys: vec![Some(team.into()), Some(model.into())],
                amount,
                usage: None,
                usage_unit: None,
                no_principal: false,
            });
        }
        let text = render_text(&shape_answer(&q, a, 20, 0));
        let lines: Vec<&str> = text.lines().skip(1).take(3).collect();
        assert_eq!(
            lines,
            [
                "tag:team      model                    amount   share",
                "finance-apps  Claude Sonnet 4.6         30.00   85.7%",
                "ml            Nova Lite                  5.00   14.3%",
            ],
            "{text}"
        );
    }

    #[test]
    fn reconciliation_line_adds_up_as_printed() {
        let a = answer(vec![
            ("2026-10-01", Some("a"), 1.004),
            ("2026-10-01", None, 1.004),
        ]);
        let text = render_text(&shape_answer(&query(), a, 20, 0));
        assert!(
            text.contains("named 1.00 + untagged 1.00 + no_principal 0.00 + others 0.00 + rounding 0.01 = total 2.01"),
            "{text}"
        );
        let a = answer(vec![
            ("2026-10-01", Some("a"), 1.0),
            ("2026-10-01", None, 2.0),
        ]);
        let text = render_text(&shape_answer(&query(), a, 20, 0));
        assert!(!text.contains("rounding"), "{text}");
    }

    #[test]
    fn all_untagged_warns_about_activation() {
        let o = shape_answer(&query(), answer(vec![("2026-10-01", None, 5.0)]), 20, 0);
        assert!(
            o.notes
                .iter()
                .any(|n| n.contains("list-cost-allocation-tags")),
            "{:?}",
            o.notes
        );
    }

    #[test]
    fn empty_answer_names_the_services_or_says_any() {
        let o = shape_answer(&query(), answer(vec![]), 20, 0);
        assert!(
            o.notes
                .iter()
                .any(|n| n.starts_with("no Bedrock spend found for Amazon Bedrock in 2026-10-01")),
            "{:?}",
            o.notes
        );
        let mut none = answer(vec![]);
        none.services_counted.clear();
        let o = shape_answer(&query(), none, 20, 0);
        assert!(
            o.notes
                .iter()
                .any(|n| n.starts_with("no Bedrock spend found for any Bedrock service in")),
            "{:?}",
            o.notes
        );
    }

    #[test]
    fn paging_walks_all_rows() {
        let rows: Vec<_> = (0..450)
            .map(|i| ("2026-10-01", None::<&str>, i as f64))
            .collect();
        let mut q = query();
        q.group_by = vec![GroupKey::Principal];
        let mut a = answer(vec![]);
        a.rows = rows
            .into_iter()
            .enumerate()
            .map(|(i, (b, _, amt))| SpendRow {
                bucket_start: d(b),
                keys: vec![Some(format!("p{i}"))],
                amount: amt,
                usage: None,
                usage_unit: None,
                no_principal: false,
            })
            .collect();
        let first = shape_answer(&q, a.clone(), 500, 0);
        assert_eq!(
            (
                first.rows.len(),
                first.row_count,
                first.next_cursor.as_deref()
            ),
            (200, 450, Some("rows:200"))
        );
        let last = shape_answer(&q, a.clone(), 500, 400);
        assert_eq!((last.rows.len(), last.next_cursor), (50, None));
        // Long keys: a page stops at PAGE_BYTES, and the cursors still cover every row once.
        for r in a.rows.iter_mut() {
            let k = r.keys[0].take().unwrap();
            r.keys[0] = Some(format!(
                "arn:aws:sts::123456789012:assumed-role/{}/{k}",
                "R".repeat(300)
            ));
        }
        let (mut offset, mut seen, mut pages) = (0, 0, 0);
        loop {
            let p = shape_answer(&q, a.clone(), 500, offset);
            let size: usize = p
                .rows
                .iter()
                .map(|r| serde_json::to_vec(r).unwrap().len() + 1)
                .sum();
            assert!(
                !p.rows.is_empty() && size <= crate::usecases::PAGE_BYTES,
                "{size}"
            );
            seen += p.rows.len();
            pages += 1;
            match p.next_cursor {
                Some(c) => offset = c.trim_start_matches("rows:").parse().unwrap(),
                None => break,
            }
        }
        assert_eq!(seen, 450);
        assert!(pages > 3, "{pages} pages");
    }

    #[test]
    fn input_errors_are_actionable() {
        let bad: SpendInput =
            serde_json::from_value(serde_json::json!({"group_by": ["owner"]})).unwrap();
        let e = build_query(&bad, "team", d("2026-11-26"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tag:<key>"), "{e}");
        let f: SpendInput = serde_json::from_value(
            serde_json::json!({"filter": {"team": "ml", "tag:cost-center": ["", "cc1"]}}),
        )
        .unwrap();
        let q = build_query(&f, "team", d("2026-11-26")).unwrap();
        assert_eq!(q.filter.tags["team"], vec!["ml"]);
        assert_eq!(q.filter.tags["cost-center"], vec!["", "cc1"]);
        assert!(parse_cursor(&Some("x".into())).is_err());
    }
}
