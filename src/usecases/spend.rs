//! Spend shaping: a source's [`SpendAnswer`] turned into the typed answer every reader takes
//! (the `bedrock_spend` tool, the CLI table, the chart): rows ranked and paged, `untagged`,
//! `no_principal` and `others` kept apart, the reconciliation, adjustments and notes.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, SecondsFormat};
use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::group::{Granularity, GroupKey, SpendQuery};
use crate::domain::label::fmt_money;
use crate::sources::{SpendAnswer, SpendRow};

/// Most rows per page of the answer; a page also stops at [`crate::usecases::PAGE_BYTES`] (long principal
/// ARNs and three group keys made a 200-row page ~75 KB).
pub const PAGE_ROWS: usize = 200;

/// A period in the output.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PeriodOut {
    /// Inclusive.
    pub start: String,
    /// Exclusive.
    pub end: String,
}

/// One row of the answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SpendRowOut {
    /// Start of the time bucket.
    pub bucket: String,
    /// Group key -> value ("untagged" where the principal carries no such tag, "others" for folded groups).
    pub keys: BTreeMap<String, String>,
    pub amount: f64,
    /// Share of the total, 0..1.
    pub share: f64,
    /// The principal carried no value for a grouped tag key.
    pub untagged: bool,
    /// The lines carry no IAM principal at all (AgentCore compute, provisioned throughput,
    /// ...): nothing to tag; shown as `no_principal` for the principal and tag keys.
    pub no_principal: bool,
    /// This row sums the groups beyond top_n.
    pub others: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_unit: Option<String>,
}

/// How the rows add up to the total.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Reconciliation {
    pub named: f64,
    /// Principals without a value for a grouped tag key.
    pub untagged: f64,
    /// Lines without any IAM principal (a row of its own when grouping by a tag or principal).
    pub no_principal: f64,
    pub others: f64,
    pub total: f64,
    /// named + untagged + no_principal + others equals total (to the cent).
    pub reconciled: bool,
}

/// A credit, refund, tax, discount or fee line, listed apart from usage.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AdjustmentOut {
    /// The billing month it is billed in.
    pub bucket: String,
    /// Credit, Refund, Tax, EdpDiscount, PrivateRateDiscount, BundledDiscount, SavingsPlanNegation, ...
    pub line_item_type: String,
    pub amount: f64,
    /// The usage month it refers to, when billed later (a refund of October billed in November).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<String>,
    /// Already taken off the rows' net cost (a discount under NetUnblendedCost): listed, not
    /// subtracted again in total_after_adjustments.
    pub in_net: bool,
}

/// Output of `bedrock_spend`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SpendOutput {
    pub period: PeriodOut,
    pub granularity: String,
    pub group_by: Vec<String>,
    /// Cost Explorer metric name of the figure summed.
    pub metric: String,
    pub currency: String,
    /// cost_explorer, cur, athena or demo.
    pub source: String,
    /// When the data was fetched from its source (RFC 3339). Billing data itself lags 24-48 h.
    pub as_of: String,
    /// Figures are not final yet (Cost Explorer's flag).
    pub estimated: bool,
    /// Paid AWS requests this call made ($0.01 each on Cost Explorer).
    pub paid_requests: u32,
    /// Served from the cache (or a shared identical request).
    pub cached: bool,
    /// Service names whose spend is counted.
    pub services_counted: Vec<String>,
    pub total: f64,
    pub reconciliation: Reconciliation,
    pub rows: Vec<SpendRowOut>,
    /// Credits, refunds, tax, discounts and fees of the billing months that start in the period,
    /// not netted into the rows.
    pub adjustments: Vec<AdjustmentOut>,
    /// total + the adjustments not already in the rows (in_net false).
    pub total_after_adjustments: f64,
    /// Bytes scanned by the query engine, when it reports it (Athena).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_scanned_bytes: Option<u64>,
    /// Rows across all pages.
    pub row_count: usize,
    /// Pass as cursor for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub notes: Vec<String>,
    /// What the PNG chart shows (with chart: true): kind, size, and the groups drawn with their figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartSummary>,
    /// The newest model invocation log record read (RFC 3339), when the live layer answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_log_record: Option<String>,
    /// Spend after the last billed day, from invocation logs: an estimate, never in `total`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unbilled_estimate: Option<crate::usecases::live::UnbilledEstimate>,
    /// With live_vs_bill: the logs' estimate against the bill, per principal and model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_vs_bill: Option<crate::usecases::live::LiveVsBill>,
}

fn is_untagged(group_by: &[GroupKey], keys: &[Option<String>]) -> bool {
    group_by
        .iter()
        .zip(keys)
        .any(|(k, v)| k.is_tag() && v.is_none())
}

/// Group identity: the key values and whether the lines have no principal.
type Group = (Vec<Option<String>>, bool);

pub(crate) fn round4(x: f64) -> f64 {
    let r = (x * 10_000.0).round() / 10_000.0;
    if r == 0.0 { 0.0 } else { r }
}

/// Rank groups, fold beyond top_n into "others", keep untagged, page, reconcile.
pub fn shape_answer(q: &SpendQuery, ans: SpendAnswer, top_n: usize, offset: usize) -> SpendOutput {
    page(shape_all(q, ans, top_n), offset)
}

/// The page of rows starting at `offset`, with the cursor to the next one.
pub fn page(mut o: SpendOutput, offset: usize) -> SpendOutput {
    let row_count = o.rows.len();
    o.rows = super::take_page(o.rows.into_iter().skip(offset), PAGE_ROWS);
    o.next_cursor =
        (offset + o.rows.len() < row_count).then(|| format!("rows:{}", offset + o.rows.len()));
    o.row_count = row_count;
    o
}

/// The whole answer, every row on one page.
pub(crate) fn shape_all(q: &SpendQuery, ans: SpendAnswer, top_n: usize) -> SpendOutput {
    let total: f64 = ans.rows.iter().map(|r| r.amount).sum();
    let mut by_group: HashMap<Group, f64> = HashMap::new();
    for r in &ans.rows {
        *by_group
            .entry((r.keys.clone(), r.no_principal))
            .or_default() += r.amount;
    }
    let mut ranked: Vec<(Group, f64)> = by_group.into_iter().collect();
    ranked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
    // Untagged and no-principal groups are never folded into others.
    let special = |g: &Group| g.1 || is_untagged(&q.group_by, &g.0);
    let mut kept: HashMap<Group, usize> = HashMap::new();
    let mut named_kept = 0usize;
    for (i, (g, _)) in ranked.iter().enumerate() {
        if special(g) || named_kept < top_n {
            if !special(g) {
                named_kept += 1;
            }
            kept.insert(g.clone(), i);
        }
    }
    // bucket -> rows (kept groups individually, the rest summed into others)
    let mut rows: Vec<(NaiveDate, usize, SpendRow)> = Vec::new();
    let mut others: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    let mut merged: HashMap<(NaiveDate, Group), SpendRow> = HashMap::new();
    for r in ans.rows {
        let g = (r.keys.clone(), r.no_principal);
        if kept.contains_key(&g) {
            merged
                .entry((r.bucket_start, g))
                .and_modify(|m| {
                    m.amount += r.amount;
                    m.usage = match (m.usage, r.usage) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                })
                .or_insert(r);
        } else {
            *others.entry(r.bucket_start).or_default() += r.amount;
        }
    }
    for ((bucket, g), row) in merged {
        rows.push((bucket, kept[&g], row));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let names: Vec<String> = q
        .group_by
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    let mut out_rows = Vec::new();
    let (mut named, mut untagged_sum, mut no_principal_sum, mut others_sum) = (0.0, 0.0, 0.0, 0.0);
    let mut others_iter = others.into_iter().peekable();
    let push_others = |out_rows: &mut Vec<SpendRowOut>, bucket: NaiveDate, amount: f64| {
        out_rows.push(SpendRowOut {
            bucket: bucket.to_string(),
            keys: names
                .iter()
                .map(|n| (n.clone(), "others".to_string()))
                .collect(),
            amount: round4(amount),
            share: if total != 0.0 {
                round4(amount / total)
            } else {
                0.0
            },
            untagged: false,
            no_principal: false,
            others: true,
            usage: None,
            usage_unit: None,
        });
    };
    for (bucket, _, row) in rows {
        while let Some((ob, oa)) = others_iter.next_if(|(ob, _)| *ob < bucket) {
            others_sum += oa;
            push_others(&mut out_rows, ob, oa);
        }
        let untagged = !row.no_principal && is_untagged(&q.group_by, &row.keys);
        if row.no_principal {
            no_principal_sum += row.amount;
        } else if untagged {
            untagged_sum += row.amount;
        } else {
            named += row.amount;
        }
        out_rows.push(SpendRowOut {
            bucket: bucket.to_string(),
            keys: names
                .iter()
                .zip(q.group_by.iter().zip(row.keys.iter()))
                .map(|(n, (k, v))| {
                    let v = match v {
                        Some(v) => v.clone(),
                        None if row.no_principal && k.depends_on_principal() => {
                            "no_principal".to_string()
                        }
                        None if k.is_tag() => "untagged".to_string(),
                        None => "(none)".to_string(),
                    };
                    (n.clone(), v)
                })
                .collect(),
            amount: round4(row.amount),
            share: if total != 0.0 {
                round4(row.amount / total)
            } else {
                0.0
            },
            untagged,
            no_principal: row.no_principal,
            others: false,
            usage: row.usage.map(round4),
            usage_unit: row.usage_unit,
        });
    }
    for (ob, oa) in others_iter {
        others_sum += oa;
        push_others(&mut out_rows, ob, oa);
    }
    let mut notes = ans.notes;
    let tag_keys: Vec<&GroupKey> = q.group_by.iter().filter(|k| k.is_tag()).collect();
    for k in tag_keys {
        let GroupKey::Tag(name) = k else { continue };
        let idx = q.group_by.iter().position(|g| g == k).unwrap_or(0);
        let any_value = out_rows.iter().any(|r| {
            !r.others
                && r.keys
                    .get(&q.group_by[idx].to_string())
                    .is_some_and(|v| v != "untagged" && v != "no_principal")
        });
        if untagged_sum.abs() >= 0.005 && !any_value {
            notes.push(format!(
                "no spend carried a value for iamPrincipal/{name}: the tag key may not be activated as a cost-allocation tag (or no caller has it). Check with `aws ce list-cost-allocation-tags --tag-keys iamPrincipal/{name}` or Billing console > Cost allocation tags; activation takes up to 24 h and only covers new usage"
            ));
        }
    }
    // Spend without a principal, when it is not a row of its own.
    if let Some(np) = ans.no_principal
        && np.abs() >= 0.005
        && no_principal_sum.abs() < 0.005
    {
        notes.push(format!(
            "{} of this spend is on lines without an IAM principal (AgentCore compute, provisioned throughput, Guardrails, Knowledge Bases, ...); group by a tag or principal to see it apart",
            fmt_money(np)
        ));
    }
    if total == 0.0 && out_rows.is_empty() {
        let services = if ans.services_counted.is_empty() {
            "any Bedrock service".to_string()
        } else {
            ans.services_counted.join(", ")
        };
        // Billing lag explains an empty answer only for a period that reaches the last two days.
        let recent = q.period.end > crate::domain::clock::today() - chrono::Duration::days(2);
        notes.push(format!(
            "no Bedrock spend found for {services} in {} to {}{}{}",
            q.period.start,
            q.period.end,
            if q.filter.is_empty() {
                ""
            } else {
                " matching the filter"
            },
            if recent {
                "; billing data lags 24-48 h, so the last days may still fill in"
            } else {
                ""
            }
        ));
    }
    let row_count = out_rows.len();
    let reconciled = (named + untagged_sum + no_principal_sum + others_sum - total).abs() < 0.005;
    let adjustments_sum: f64 = ans
        .adjustments
        .iter()
        .filter(|a| !a.in_net)
        .map(|a| a.amount)
        .sum();
    let adjustments = ans
        .adjustments
        .iter()
        .map(|a| AdjustmentOut {
            bucket: a.bucket_start.to_string(),
            line_item_type: a.line_item_type.clone(),
            amount: round4(a.amount),
            refers_to: a.refers_to.clone(),
            in_net: a.in_net,
        })
        .collect();
    SpendOutput {
        period: PeriodOut {
            start: q.period.start.to_string(),
            end: q.period.end.to_string(),
        },
        granularity: match q.granularity {
            Granularity::Monthly => "monthly".into(),
            Granularity::Daily => "daily".into(),
        },
        group_by: q
            .group_by
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
        metric: q.metric.ce_name().into(),
        currency: ans.currency,
        source: ans.source.into(),
        as_of: ans.as_of.to_rfc3339_opts(SecondsFormat::Secs, true),
        estimated: ans.estimated,
        paid_requests: ans.paid_requests,
        cached: ans.cached,
        services_counted: ans.services_counted,
        total: round4(total),
        reconciliation: Reconciliation {
            named: round4(named),
            untagged: round4(untagged_sum),
            no_principal: round4(no_principal_sum),
            others: round4(others_sum),
            total: round4(total),
            reconciled,
        },
        newest_log_record: ans
            .newest_record
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        unbilled_estimate: None,
        live_vs_bill: None,
        rows: out_rows,
        adjustments,
        total_after_adjustments: round4(total + adjustments_sum),
        data_scanned_bytes: ans.scanned_bytes,
        row_count,
        next_cursor: None,
        notes,
        chart: None,
    }
}

/// What a chart shows: the kind, the size, and every group drawn with its figures.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ChartSummary {
    /// stacked_over_time or ranked_bars.
    pub kind: String,
    pub mime_type: String,
    pub width: u32,
    pub height: u32,
    /// Size of the PNG in bytes.
    pub bytes: usize,
    pub currency: String,
    /// Time buckets on the x axis, oldest first (stacked_over_time only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<String>,
    /// day or month: what one bucket is (stacked_over_time only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_unit: Option<String>,
    /// Groups drawn: stacked bottom to top, or bars top to bottom.
    pub groups: Vec<ChartGroup>,
    /// Sum of the groups drawn (equals the answer's total over the rows charted).
    pub total: f64,
}

/// One series (stacked) or bar (ranked).
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ChartGroup {
    /// The answer's group values joined with " | ", "untagged" or "others".
    pub label: String,
    pub amount: f64,
    pub untagged: bool,
    pub others: bool,
    /// Amount per bucket, aligned with `buckets` (stacked_over_time only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<f64>,
    /// Answer groups this chart folded into "others" to stay readable.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<String>,
}
