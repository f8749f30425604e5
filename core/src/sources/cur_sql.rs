//! One query model for CUR 2.0, two engines (embedded DataFusion, Athena).
//!
//! The SQL groups by *raw* CUR columns only (principal ARN, usage type, product model, service
//! name, tag values, region, line item type, currency, billing period, time bucket). Everything
//! derived (role, session, model, token kind, tier, inference scope, whether a line has a
//! principal) is computed here in Rust from the grouped rows, then re-aggregated, so both engines
//! share one set of rules and the SQL stays simple.
//!
//! Which lines count: Bedrock-family lines (product codes `AmazonBedrock`, `AmazonBedrockService`,
//! and any product code or service name with "Bedrock" in it: the Marketplace models' "... (Amazon
//! Bedrock Edition)", "Amazon Bedrock AgentCore"), or any line with a principal. Usage lines
//! (`domain::lines::USAGE_LINE_TYPES`) count by their usage start date; adjustments (credits,
//! refunds, tax, discounts, fees) by the billing month they are billed in, for the billing months
//! that start inside the period (a refund billed in November for October is November's, and says
//! it refers to October).
//!
//! Safety: user-provided values (tag filter values, currencies) are bound as parameters; tag
//! *keys* become part of a map lookup and are strictly validated first
//! (`domain::group::valid_tag_key`, which admits no quote or backslash). Dates come from parsed
//! `NaiveDate`s.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use super::{Adjustment, SpendRow};
use crate::domain::group::{Granularity, GroupKey, Metric, SpendQuery, valid_tag_key};
use crate::domain::lines;
use crate::domain::model;
use crate::domain::period::{first_of_month, next_month};
use crate::domain::principal::{glob_match, role_of, session_of};
use crate::domain::usage_type;
use crate::error::ToolError;

/// Which SQL engine the text is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DataFusion,
    Athena,
}

/// Raw columns the query may group by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RawCol {
    Bucket,
    Principal,
    /// `y` when the line has an IAM principal, `n` when not (when the principal itself is not
    /// grouped).
    HasPrincipal,
    UsageType,
    ProductModel,
    Tag(String),
    Region,
    Service,
    LineType,
    Currency,
    /// The billing month (`YYYY-MM`) the line is billed in.
    BillingPeriod,
    /// The month of an adjustment's usage start date (NULL on usage lines): what a refund
    /// billed later refers to.
    AdjustmentMonth,
}

/// A query ready for an engine.
#[derive(Debug, Clone)]
pub struct CurSql {
    pub sql: String,
    /// String parameters, in placeholder order.
    pub params: Vec<String>,
    /// The grouped columns, in SELECT order; `cost`, `tokens` and `other_cost` follow them.
    pub columns: Vec<RawCol>,
}

/// What the table looks like (checked once by the engine).
#[derive(Debug, Clone)]
pub struct TableShape {
    pub table: String,
    /// Name of the billing-period partition column, if the table is partitioned.
    pub partition_column: Option<String>,
    /// The export includes `line_item_iam_principal`.
    pub has_principal: bool,
    /// The table is a month's rollup (`cur_rollup`): Bedrock lines only, grouped by day,
    /// with `product_model`, `product_servicename`, `billing_period` and the sums `unblended`,
    /// `net_unblended`, `tokens`, `non_token_unblended`, `non_token_net` in place of the map
    /// lookups and line amounts.
    pub rollup: bool,
}

/// The delivery folder of a create-new export's file: `BILLING_PERIOD=YYYY-MM/<folder>/<file>`
/// (no match for a file directly in the partition folder).
pub const DELIVERY_FOLDER_RE: &str = "BILLING_PERIOD=[^/]+/([^/]+)/[^/]+$";

pub const NO_PRINCIPAL_COLUMN: &str = "this CUR 2.0 export has no line_item_iam_principal column, so spend per principal, role or session is not in it. Turn on \"Include caller identity (IAM principal) allocation data\" in the export (Data Exports console: Additional export content; API: TableConfigurations.COST_AND_USAGE_REPORT.INCLUDE_IAM_PRINCIPAL_DATA = \"TRUE\"); new deliveries will carry it. Tag grouping (tag:<key>) works without it";

fn needs_principal(q: &SpendQuery) -> bool {
    q.group_by
        .iter()
        .any(|k| matches!(k, GroupKey::Principal | GroupKey::Role | GroupKey::Session))
        || !q.filter.principals.is_empty()
        || !q.filter.roles.is_empty()
}

/// Whether the shaping needs every line's usage type, not only where it names the model.
fn needs_usage_type(q: &SpendQuery) -> bool {
    q.group_by.iter().any(|k| {
        matches!(
            k,
            GroupKey::TokenKind | GroupKey::UsageType | GroupKey::Tier | GroupKey::InferenceScope
        )
    })
}

/// Billing months ("YYYY-MM") a period touches.
pub fn months_of(start: NaiveDate, end: NaiveDate) -> Vec<String> {
    let mut m = first_of_month(start);
    let mut out = Vec::new();
    while m < end {
        out.push(m.format("%Y-%m").to_string());
        m = next_month(m);
    }
    out
}

/// Billing months whose first day lies in [start, end): the months whose adjustments a
/// question over the period counts.
pub fn billing_months_starting_in(start: NaiveDate, end: NaiveDate) -> Vec<String> {
    let mut m = first_of_month(start);
    if m < start {
        m = next_month(m);
    }
    let mut out = Vec::new();
    while m < end {
        out.push(m.format("%Y-%m").to_string());
        m = next_month(m);
    }
    out
}

/// A line's cost under `net_unblended`: net where CUR has it, else unblended.
pub const NET_UNBLENDED: &str = "COALESCE(line_item_net_unblended_cost, line_item_unblended_cost)";

/// A line's usage in tokens, or NULL when it is not priced per token count. Units are compared
/// case-insensitively; the spellings CUR writes ("1K tokens", "1M tokens") match without
/// lower-casing every line. Marketplace token meters (`..._InputTokenCount-Units`) count in
/// millions of tokens under the unit `Units`; other `Units` (model units of provisioned
/// throughput) are not tokens.
pub const TOKEN_AMOUNT: &str = "CASE pricing_unit WHEN '1K tokens' THEN line_item_usage_amount * 1000 \
     WHEN '1M tokens' THEN line_item_usage_amount * 1000000 \
     WHEN 'tokens' THEN line_item_usage_amount \
     WHEN 'Units' THEN CASE WHEN strpos(line_item_usage_type, 'TokenCount') > 0 \
     OR strpos(line_item_usage_type, '_tokens') > 0 THEN line_item_usage_amount * 1000000 END \
     ELSE CASE lower(pricing_unit) WHEN '1k tokens' THEN line_item_usage_amount * 1000 \
     WHEN '1m tokens' THEN line_item_usage_amount * 1000000 \
     WHEN 'tokens' THEN line_item_usage_amount ELSE NULL END END";

/// Usage in tokens, from the lines priced per token count; NULL when a group has none.
pub fn tokens_sum() -> String {
    format!("SUM({TOKEN_AMOUNT})")
}

/// The part of `cost` on lines not priced per token count.
pub fn other_cost_sum(cost: &str) -> String {
    format!("SUM(CASE WHEN ({TOKEN_AMOUNT}) IS NULL THEN {cost} ELSE 0 END)")
}

/// The Bedrock-family lines of the export (see the module docs). Cheapest test first: a batch
/// where every line has a principal or a Bedrock product code never evaluates the map lookup and
/// LIKE (OR short-circuits per batch in DataFusion).
pub fn bedrock_lines(has_principal: bool, service: &str) -> String {
    format!(
        "({}line_item_product_code IN ('AmazonBedrock', 'AmazonBedrockService') \
         OR COALESCE({service}, '') LIKE '%Bedrock%' \
         OR COALESCE(line_item_product_code, '') LIKE '%Bedrock%')",
        if has_principal {
            "COALESCE(line_item_iam_principal, '') <> '' OR "
        } else {
            ""
        }
    )
}

/// Line item types that are usage, as an SQL list.
fn usage_types_sql() -> String {
    lines::USAGE_LINE_TYPES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Build the grouped SQL for a spend query.
pub fn build(q: &SpendQuery, shape: &TableShape, dialect: Dialect) -> Result<CurSql, ToolError> {
    if q.metric == Metric::Amortized {
        return Err(ToolError::invalid(
            "metric \"amortized\" is only on Cost Explorer; on CUR use unblended or net_unblended",
        ));
    }
    if needs_principal(q) && !shape.has_principal {
        return Err(ToolError::Unsupported(NO_PRINCIPAL_COLUMN.into()));
    }
    let mut params = Vec::new();
    let mut placeholder = |v: &str| -> String {
        params.push(v.to_string());
        match dialect {
            Dialect::DataFusion => format!("${}", params.len()),
            Dialect::Athena => "?".to_string(),
        }
    };
    let mut columns = vec![RawCol::Bucket];
    let time_unit = if q.granularity == Granularity::Daily || q.group_by.contains(&GroupKey::Day) {
        "day"
    } else {
        "month"
    };
    let add = |columns: &mut Vec<RawCol>, c: RawCol| {
        if !columns.contains(&c) {
            columns.push(c);
        }
    };
    for k in &q.group_by {
        let cols: Vec<RawCol> = match k {
            GroupKey::Tag(t) => vec![RawCol::Tag(t.clone())],
            GroupKey::Principal | GroupKey::Role | GroupKey::Session => vec![RawCol::Principal],
            GroupKey::Model => vec![RawCol::ProductModel, RawCol::UsageType, RawCol::Service],
            GroupKey::TokenKind
            | GroupKey::UsageType
            | GroupKey::Tier
            | GroupKey::InferenceScope => vec![RawCol::UsageType],
            GroupKey::Region => vec![RawCol::Region],
            GroupKey::Service => vec![RawCol::Service],
            GroupKey::Day | GroupKey::Month | GroupKey::InferenceProfile => vec![],
        };
        for c in cols {
            add(&mut columns, c);
        }
    }
    if !q.filter.principals.is_empty() || !q.filter.roles.is_empty() {
        add(&mut columns, RawCol::Principal);
    }
    if !q.filter.models.is_empty() {
        for c in [RawCol::ProductModel, RawCol::UsageType, RawCol::Service] {
            add(&mut columns, c);
        }
    }
    // Whether each line has a principal: lines without one are a bucket of their own.
    if shape.has_principal && !columns.contains(&RawCol::Principal) {
        add(&mut columns, RawCol::HasPrincipal);
    }
    for c in [
        RawCol::LineType,
        RawCol::Currency,
        RawCol::BillingPeriod,
        RawCol::AdjustmentMonth,
    ] {
        add(&mut columns, c);
    }
    // One month asked for in monthly buckets: the bucket is a constant, not a group key.
    let constant_bucket = time_unit == "month"
        && !q.group_by.contains(&GroupKey::Month)
        && first_of_month(q.period.start)
            == first_of_month(q.period.end - chrono::Duration::days(1));

    let ts = |d: NaiveDate| format!("TIMESTAMP '{} 00:00:00'", d.format("%Y-%m-%d"));
    let (model, service) = match (dialect, shape.rollup) {
        (_, true) => ("product_model", "product_servicename"),
        (Dialect::DataFusion, false) => ("product['model']", "product['servicename']"),
        (Dialect::Athena, false) => (
            "element_at(product, 'model')",
            "element_at(product, 'servicename')",
        ),
    };
    let billing_period = match (&shape.partition_column, shape.rollup, dialect) {
        (_, true, _) => "billing_period".to_string(),
        (Some(pc), false, _) => format!("\"{pc}\""),
        (None, false, Dialect::Athena) => {
            "date_format(bill_billing_period_start_date, '%Y-%m')".to_string()
        }
        (None, false, Dialect::DataFusion) => {
            "to_char(bill_billing_period_start_date, '%Y-%m')".to_string()
        }
    };
    let select: Vec<String> = columns
        .iter()
        .map(|c| match c {
            RawCol::Bucket if constant_bucket => format!("'{}'", q.period.start.format("%Y-%m-%d")),
            RawCol::Bucket => {
                format!("CAST(date_trunc('{time_unit}', line_item_usage_start_date) AS DATE)")
            }
            RawCol::Principal => "line_item_iam_principal".into(),
            RawCol::HasPrincipal => {
                "CASE WHEN COALESCE(line_item_iam_principal, '') = '' THEN 'n' ELSE 'y' END".into()
            }
            // Only the model name needs the usage type (a line without product['model'] is
            // named from it): keep it only there, so lines with a model group by principal and
            // model, not by every usage type too. A model that trims to nothing starts with a
            // whitespace character, which is outside ASCII 33-126, so it keeps its usage type.
            RawCol::UsageType if dialect == Dialect::DataFusion && !needs_usage_type(q) => {
                format!(
                    "CASE WHEN COALESCE({model}, '') = '' \
                     OR ascii({model}) NOT BETWEEN 33 AND 126 \
                     THEN line_item_usage_type END"
                )
            }
            RawCol::UsageType => "line_item_usage_type".into(),
            RawCol::ProductModel => model.into(),
            RawCol::Tag(t) => {
                debug_assert!(valid_tag_key(t));
                match dialect {
                    Dialect::DataFusion => format!("tags['iamPrincipal/{t}']"),
                    Dialect::Athena => format!("element_at(tags, 'iamPrincipal/{t}')"),
                }
            }
            RawCol::Region => "product_region_code".into(),
            RawCol::Service => service.into(),
            RawCol::LineType => "line_item_line_item_type".into(),
            RawCol::Currency => "COALESCE(line_item_currency_code, 'USD')".into(),
            RawCol::BillingPeriod => billing_period.clone(),
            RawCol::AdjustmentMonth => format!(
                "CASE WHEN line_item_line_item_type NOT IN ({}) THEN CAST(date_trunc('month', line_item_usage_start_date) AS DATE) END",
                usage_types_sql()
            ),
        })
        .collect();
    let (cost, tokens, other_cost) = match (q.metric, shape.rollup) {
        (Metric::NetUnblended, true) => (
            "SUM(net_unblended)".to_string(),
            "SUM(tokens)".to_string(),
            "SUM(non_token_net)".to_string(),
        ),
        (_, true) => (
            "SUM(unblended)".to_string(),
            "SUM(tokens)".to_string(),
            "SUM(non_token_unblended)".to_string(),
        ),
        (Metric::NetUnblended, false) => (
            format!("SUM({NET_UNBLENDED})"),
            tokens_sum(),
            other_cost_sum(NET_UNBLENDED),
        ),
        _ => (
            "SUM(line_item_unblended_cost)".to_string(),
            tokens_sum(),
            other_cost_sum("line_item_unblended_cost"),
        ),
    };
    // Usage by its usage date; adjustments by the billing month they are billed in.
    let usage_in_period = format!(
        "line_item_line_item_type IN ({}) AND line_item_usage_start_date >= {} AND line_item_usage_start_date < {}",
        usage_types_sql(),
        ts(q.period.start),
        ts(q.period.end)
    );
    let adjustment_months = billing_months_starting_in(q.period.start, q.period.end);
    let in_period = if adjustment_months.is_empty() {
        format!("({usage_in_period})")
    } else {
        format!(
            "(({usage_in_period}) OR (line_item_line_item_type NOT IN ({}) AND {billing_period} IN ({})))",
            usage_types_sql(),
            adjustment_months
                .iter()
                .map(|m| format!("'{m}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut wh = vec![in_period];
    if let Some(pc) = &shape.partition_column {
        let months = months_of(q.period.start, q.period.end)
            .iter()
            .map(|m| format!("'{m}'"))
            .collect::<Vec<_>>()
            .join(", ");
        wh.push(format!("\"{pc}\" IN ({months})"));
    }
    // A rollup holds Bedrock lines only.
    if !shape.rollup {
        wh.push(bedrock_lines(shape.has_principal, service));
    }
    for (key, values) in &q.filter.tags {
        if !valid_tag_key(key) {
            return Err(ToolError::invalid(format!(
                "'{key}' is not a valid tag key"
            )));
        }
        if values.is_empty() {
            // Fail closed: a filter that names no value matches nothing, never everything.
            return Err(ToolError::invalid(format!(
                "filter iamPrincipal/{key} has no value"
            )));
        }
        let lookup = match dialect {
            Dialect::DataFusion => format!("tags['iamPrincipal/{key}']"),
            Dialect::Athena => format!("element_at(tags, 'iamPrincipal/{key}')"),
        };
        let mut alts = Vec::new();
        let named: Vec<&String> = values.iter().filter(|v| !v.is_empty()).collect();
        if !named.is_empty() {
            let ph: Vec<String> = named.iter().map(|v| placeholder(v)).collect();
            alts.push(format!("{lookup} IN ({})", ph.join(", ")));
        }
        if values.iter().any(std::string::String::is_empty) {
            // Untagged means a principal without the tag: lines without any principal are
            // their own bucket and never match (when the export says who called).
            if shape.has_principal {
                alts.push(format!(
                    "(COALESCE({lookup}, '') = '' AND COALESCE(line_item_iam_principal, '') <> '')"
                ));
            } else {
                alts.push(format!("COALESCE({lookup}, '') = ''"));
            }
        }
        wh.push(format!("({})", alts.join(" OR ")));
    }
    if !q.filter.currencies.is_empty() {
        let ph: Vec<String> = q
            .filter
            .currencies
            .iter()
            .map(|c| placeholder(&c.trim().to_ascii_uppercase()))
            .collect();
        wh.push(format!(
            "COALESCE(line_item_currency_code, 'USD') IN ({})",
            ph.join(", ")
        ));
    }
    // Athena reads every file under the table's location: with create-new delivery each refresh
    // of a month stays in its own `<timestamp>-<id>/` folder under the month's partition, so the
    // lines of one month would be counted once per refresh. Only the newest delivery folder of
    // each billing period counts (its name starts with the delivery time); files directly in the
    // partition (overwrite delivery) have none and all count. (Data Exports user guide,
    // "Understanding export delivery": create new keeps every refresh.)
    let from = if dialect == Dialect::Athena && !shape.rollup {
        let folder =
            |path: &str| format!("COALESCE(regexp_extract({path}, '{DELIVERY_FOLDER_RE}', 1), '')");
        let outer_period = match &shape.partition_column {
            Some(pc) => format!("cur_lines.\"{pc}\""),
            None => "date_format(cur_lines.bill_billing_period_start_date, '%Y-%m')".to_string(),
        };
        // The subquery reads only the months the question reads (partition pruning).
        let months = months_of(q.period.start, q.period.end)
            .iter()
            .map(|m| format!("'{m}'"))
            .collect::<Vec<_>>()
            .join(", ");
        wh.push(format!(
            "{} = (SELECT MAX({}) FROM {} AS deliveries WHERE {billing_period} = {outer_period} AND {billing_period} IN ({months}))",
            folder("cur_lines.\"$path\""),
            folder("\"$path\""),
            shape.table,
        ));
        format!("{} AS cur_lines", shape.table)
    } else {
        shape.table.clone()
    };
    let n = select.len();
    let first_group = if constant_bucket { 2 } else { 1 };
    let sql = format!(
        "SELECT {}, {cost} AS cost, {tokens} AS tokens, {other_cost} AS other_cost FROM {} WHERE {} GROUP BY {}",
        select.join(", "),
        from,
        wh.join(" AND "),
        (first_group..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(CurSql {
        sql,
        params,
        columns,
    })
}

/// One grouped row as an engine returns it: the raw column values (None = NULL) in
/// `CurSql::columns` order, cost, tokens (None: no line of the group is priced per token count)
/// and the part of the cost on lines not priced per token count.
#[derive(Debug, Clone)]
pub struct RawRow {
    pub values: Vec<Option<String>>,
    pub cost: f64,
    pub tokens: Option<f64>,
    pub other_cost: f64,
}

/// A result group: time bucket, key values, and whether its lines have no principal.
type GroupId = (NaiveDate, Vec<Option<String>>, bool);

/// Derived result of a CUR query.
#[derive(Debug, Clone, Default)]
pub struct Shaped {
    pub rows: Vec<SpendRow>,
    pub adjustments: Vec<Adjustment>,
    /// The currency of every line counted (None when nothing was counted).
    pub currency: Option<String>,
    /// Spend on usage lines without an IAM principal (also when it is not a row of its own).
    pub no_principal: f64,
    /// Groups whose cost includes lines not priced per token (their usage counts the rest).
    pub mixed_units: usize,
}

/// Most groups one CUR or Athena question may return before it is refused as too wide: a
/// bound on the memory and time one request can take (a month of 400 principals by day, model
/// and token kind is ~50k).
pub const MAX_GROUPS: usize = 200_000;

/// Err once a result has more than [`MAX_GROUPS`] groups.
pub fn check_group_count(n: usize) -> Result<(), ToolError> {
    if n > MAX_GROUPS {
        return Err(ToolError::invalid(format!(
            "the question has more than {MAX_GROUPS} groups; narrow it (a shorter period, monthly granularity, fewer group_by keys, or a filter)"
        )));
    }
    Ok(())
}

/// [`shape`] on a blocking thread: globs are matched per group, which is CPU work that must
/// not hold an async worker (the HTTP server's health checks and other callers share them).
pub async fn shape_off_thread(
    q: &SpendQuery,
    columns: &[RawCol],
    raw: Vec<RawRow>,
) -> Result<Shaped, ToolError> {
    let (q, columns) = (q.clone(), columns.to_vec());
    tokio::task::spawn_blocking(move || shape(&q, &columns, raw))
        .await
        .map_err(|e| ToolError::Internal(format!("shaping the answer failed: {e}")))?
}

/// What an answer says about its shaped rows: groups whose usage counts only part of their
/// lines (units other than tokens), and refunds or credits that refer to an earlier month.
pub fn shaped_notes(s: &Shaped) -> Vec<String> {
    let mut notes = Vec::new();
    if s.mixed_units > 0 {
        notes.push(format!(
            "{} group(s) mix lines priced per token with lines priced otherwise (model units, hours): their usage counts the token lines only, their amount all lines",
            s.mixed_units
        ));
    }
    for a in &s.adjustments {
        if let Some(m) = &a.refers_to {
            notes.push(format!(
                "a {} of {:.2} billed in {} refers to usage of {m}",
                a.line_item_type,
                a.amount,
                a.bucket_start.format("%Y-%m")
            ));
        }
    }
    notes
}

/// The model of a grouped row: its key, and the name and source it was given.
fn row_model(get: &impl Fn(&RawCol) -> Option<String>) -> Option<(String, String, model::Source)> {
    let pm = get(&RawCol::ProductModel).unwrap_or_default();
    let ut = get(&RawCol::UsageType).unwrap_or_default();
    let svc = get(&RawCol::Service).unwrap_or_default();
    model::of_line(&pm, &ut, &svc).map(|(name, src)| (model::key(&name), name, src))
}

/// Turn raw grouped rows into spend rows keyed like the query, applying the filters SQL cannot
/// express (globs on principal/role, model) and deriving role, session, model, token kind, tier
/// and scope.
pub fn shape(q: &SpendQuery, columns: &[RawCol], raw: Vec<RawRow>) -> Result<Shaped, ToolError> {
    let idx: HashMap<&RawCol, usize> = columns.iter().enumerate().map(|(i, c)| (c, i)).collect();
    let value = |r: &RawRow, c: &RawCol| -> Option<String> {
        idx.get(c)
            .and_then(|&i| r.values[i].clone())
            .filter(|v| !v.is_empty())
    };
    let wants_model = q.group_by.contains(&GroupKey::Model) || !q.filter.models.is_empty();
    // The name each model is shown with: the most authoritative spelling any line gave it.
    let mut model_names: HashMap<String, (model::Source, String)> = HashMap::new();
    if wants_model {
        for r in &raw {
            if let Some((key, name, src)) = row_model(&|c| value(r, c)) {
                let e = model_names.entry(key).or_insert((src, name.clone()));
                if (src, &name) < (e.0, &e.1) {
                    *e = (src, name);
                }
            }
        }
    }
    let model_filter: Vec<String> = q.filter.models.iter().map(|m| model::key(m)).collect();
    let split_no_principal = q.group_by.iter().any(GroupKey::depends_on_principal);
    // (bucket, keys, no principal) -> (cost, tokens, any line measured in tokens, non-token cost)
    let mut groups: BTreeMap<GroupId, (f64, f64, bool, f64)> = BTreeMap::new();
    let mut adjustments: BTreeMap<(NaiveDate, String, Option<String>), f64> = BTreeMap::new();
    let mut currencies: BTreeSet<String> = BTreeSet::new();
    let mut no_principal_total = 0.0;
    // Glob verdicts per distinct principal: rows repeat principals many times over.
    let mut passes: HashMap<String, bool> = HashMap::new();
    for r in raw {
        let day = value(&r, &RawCol::Bucket)
            // The date part of a DATE or TIMESTAMP text; `get` because the engine's text is
            // not ours to trust to be ASCII (slicing inside a character panics).
            .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(&s), "%Y-%m-%d").ok())
            .ok_or_else(|| ToolError::Malformed {
                service: "CUR query".into(),
                message: "a row has no usage date".into(),
            })?;
        let bucket = match q.granularity {
            Granularity::Daily => day,
            Granularity::Monthly => first_of_month(day).max(q.period.start),
        };
        if let Some(c) = value(&r, &RawCol::Currency) {
            currencies.insert(c);
        }
        let line_type = value(&r, &RawCol::LineType).unwrap_or_else(|| "Usage".into());
        let principal = value(&r, &RawCol::Principal).unwrap_or_default();
        let no_principal = if idx.contains_key(&RawCol::Principal) {
            principal.is_empty()
        } else {
            value(&r, &RawCol::HasPrincipal).as_deref() == Some("n")
        };
        let pass = match passes.get(&principal) {
            Some(p) => *p,
            None => {
                let p = (q.filter.principals.is_empty()
                    || q.filter
                        .principals
                        .iter()
                        .any(|g| glob_match(g, &principal)))
                    && (q.filter.roles.is_empty() || {
                        let role = role_of(&principal);
                        q.filter.roles.iter().any(|g| glob_match(g, &role))
                    });
                passes.insert(principal.clone(), p);
                p
            }
        };
        if !pass {
            continue;
        }
        let usage_type = value(&r, &RawCol::UsageType).unwrap_or_default();
        let model = if wants_model {
            row_model(&|c| value(&r, c)).map(|(key, _, _)| key)
        } else {
            None
        };
        let model_shown = model
            .as_ref()
            .and_then(|k| model_names.get(k))
            .map(|(_, n)| n.clone());
        if !q.filter.models.is_empty() {
            let shown = model_shown.clone().unwrap_or_default();
            let keep = q.filter.models.iter().zip(&model_filter).any(|(m, mk)| {
                model.as_deref() == Some(mk.as_str())
                    || m.eq_ignore_ascii_case(&shown)
                    || (m.contains('*') && glob_match(m, &shown))
            });
            if !keep {
                continue;
            }
        }
        // Adjustments follow the filter like usage: a credit names no caller and no model, so
        // a filter on principals, roles or models leaves it out (a refund of a caller's usage
        // passes that caller's filter).
        if !lines::is_usage(&line_type) {
            // Bucketed by the billing month; the usage month it refers to, when earlier.
            let billed = value(&r, &RawCol::BillingPeriod)
                .and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok())
                .unwrap_or(first_of_month(day));
            let abucket = match q.granularity {
                Granularity::Daily => billed.max(q.period.start),
                Granularity::Monthly => billed.max(q.period.start),
            };
            let used = value(&r, &RawCol::AdjustmentMonth)
                .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(&s), "%Y-%m-%d").ok())
                .map(first_of_month)
                .unwrap_or(billed);
            let refers_to = (used < billed).then(|| used.format("%Y-%m").to_string());
            *adjustments
                .entry((abucket, line_type, refers_to))
                .or_default() += r.cost;
            continue;
        }
        if no_principal {
            no_principal_total += r.cost;
        }
        let info = usage_type::parse(&usage_type);
        let split = split_no_principal && no_principal;
        let keys: Vec<Option<String>> = q
            .group_by
            .iter()
            .map(|k| match k {
                GroupKey::Tag(_) | GroupKey::Principal | GroupKey::Role | GroupKey::Session
                    if split =>
                {
                    None
                }
                GroupKey::Tag(t) => value(&r, &RawCol::Tag(t.clone())),
                GroupKey::Principal => Some(principal.clone()).filter(|p| !p.is_empty()),
                GroupKey::Role => Some(role_of(&principal)).filter(|p| !p.is_empty()),
                GroupKey::Session => Some(session_of(&principal)).filter(|p| !p.is_empty()),
                GroupKey::Model => model_shown.clone(),
                GroupKey::TokenKind => Some(info.token_kind.as_str().to_string()),
                GroupKey::Tier => Some(info.tier.as_str().to_string()),
                GroupKey::InferenceScope => Some(info.scope.as_str().to_string()),
                GroupKey::UsageType => Some(usage_type.clone()).filter(|u| !u.is_empty()),
                GroupKey::Region => value(&r, &RawCol::Region),
                GroupKey::Service => value(&r, &RawCol::Service),
                GroupKey::Day => Some(day.to_string()),
                GroupKey::Month => Some(day.format("%Y-%m").to_string()),
                // Refused before a bill source is asked (`GroupKey::only_live`).
                GroupKey::InferenceProfile => None,
            })
            .collect();
        // Usage is reported in tokens, from the lines measured in tokens; lines in other units
        // (model units, hours) add cost but no tokens.
        let e = groups
            .entry((bucket, keys, split))
            .or_insert((0.0, 0.0, false, 0.0));
        e.0 += r.cost;
        if let Some(t) = r.tokens {
            e.1 += t;
            e.2 = true;
        }
        e.3 += r.other_cost;
    }
    if currencies.len() > 1 {
        let list: Vec<&str> = currencies.iter().map(String::as_str).collect();
        return Err(ToolError::invalid(format!(
            "the lines of this period are in several currencies ({}); amounts in different currencies are never added together. Ask again with filter {{\"currency\": \"{}\"}} (and once for each other currency)",
            list.join(", "),
            list[0]
        )));
    }
    let mut mixed_units = 0;
    let rows = groups
        .into_iter()
        .map(
            |((bucket_start, keys, no_principal), (amount, tokens, any_tokens, other))| {
                if any_tokens && other.abs() >= 0.005 {
                    mixed_units += 1;
                }
                SpendRow {
                    bucket_start,
                    keys,
                    amount,
                    usage: any_tokens.then_some(tokens),
                    usage_unit: any_tokens.then(|| "tokens".to_string()),
                    no_principal,
                }
            },
        )
        .collect();
    let adjustments = adjustments
        .into_iter()
        .map(
            |((bucket_start, line_item_type, refers_to), amount)| Adjustment {
                bucket_start,
                in_net: q.metric == Metric::NetUnblended && lines::in_net(&line_item_type),
                line_item_type,
                refers_to,
                amount,
            },
        )
        .collect();
    Ok(Shaped {
        rows,
        adjustments,
        currency: currencies.into_iter().next(),
        no_principal: no_principal_total,
        mixed_units,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::group::SpendFilter;
    use crate::domain::period::Period;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn q(group_by: Vec<GroupKey>) -> SpendQuery {
        SpendQuery {
            period: Period {
                start: d("2026-10-01"),
                end: d("2026-11-01"),
            },
            granularity: Granularity::Monthly,
            group_by,
            filter: SpendFilter::default(),
            metric: Metric::Unblended,
        }
    }

    fn shape_of(has_principal: bool) -> TableShape {
        TableShape {
            table: "cur".into(),
            partition_column: Some("BILLING_PERIOD".into()),
            has_principal,
            rollup: false,
        }
    }

    #[test]
    fn filter_values_are_bound_not_spliced() {
        let mut query = q(vec![GroupKey::Tag("team".into())]);
        query.filter.tags.insert(
            "team".into(),
            vec!["ml'; DROP TABLE cur; --".into(), "".into()],
        );
        let s = build(&query, &shape_of(true), Dialect::DataFusion).unwrap();
        assert!(!s.sql.contains("DROP"), "{}", s.sql);
        assert_eq!(s.params, vec!["ml'; DROP TABLE cur; --".to_string()]);
        assert!(
            s.sql.contains("tags['iamPrincipal/team'] IN ($1)")
                && s.sql.contains("\"BILLING_PERIOD\" IN ('2026-10')"),
            "{}",
            s.sql
        );
        let a = build(&query, &shape_of(true), Dialect::Athena).unwrap();
        assert!(
            a.sql
                .contains("element_at(tags, 'iamPrincipal/team') IN (?)"),
            "{}",
            a.sql
        );
    }

    #[test]
    fn principal_questions_need_the_principal_column() {
        let e = build(
            &q(vec![GroupKey::Role]),
            &shape_of(false),
            Dialect::DataFusion,
        )
        .unwrap_err();
        assert!(e.to_string().contains("INCLUDE_IAM_PRINCIPAL_DATA"));
        assert!(
            build(
                &q(vec![GroupKey::Tag("team".into())]),
                &shape_of(false),
                Dialect::DataFusion
            )
            .is_ok()
        );
    }

    /// A raw row for `columns`: the bucket, the given values by column, the rest NULL.
    fn raw(columns: &[RawCol], set: &[(RawCol, &str)], cost: f64, tokens: Option<f64>) -> RawRow {
        let mut values = vec![None; columns.len()];
        values[0] = Some("2026-10-01".to_string());
        for (col, v) in set {
            if let Some(i) = columns.iter().position(|c| c == col) {
                values[i] = Some(v.to_string());
            }
        }
        RawRow {
            values,
            cost,
            tokens,
            other_cost: if tokens.is_some() { 0.0 } else { cost },
        }
    }

    #[test]
    fn shaping_derives_role_model_and_token_kind_and_separates_credits() {
        let query = q(vec![GroupKey::Role, GroupKey::Model, GroupKey::TokenKind]);
        let s = build(&query, &shape_of(true), Dialect::DataFusion).unwrap();
        assert_eq!(s.columns[0], RawCol::Bucket);
        assert!(s.columns.contains(&RawCol::Principal) && s.columns.contains(&RawCol::LineType));
        assert!(
            s.sql.starts_with("SELECT '2026-10-01', "),
            "one month: constant bucket: {}",
            s.sql
        );
        assert!(
            s.sql
                .contains("WHEN '1m tokens' THEN line_item_usage_amount * 1000000"),
            "{}",
            s.sql
        );
        use RawCol::*;
        let c = &s.columns;
        let sonnet_ut = "USE1-Claude4.6Sonnet-input-tokens";
        let rows = vec![
            raw(
                c,
                &[
                    (Principal, "arn:aws:sts::1:assumed-role/R/s1"),
                    (ProductModel, "Claude Sonnet 4.6"),
                    (UsageType, sonnet_ut),
                    (LineType, "Usage"),
                ],
                1.0,
                Some(2_000.0),
            ),
            // Before the backfill: no product['model'], the same model by its usage-type stem.
            raw(
                c,
                &[
                    (Principal, "arn:aws:sts::1:assumed-role/R/s2"),
                    (UsageType, sonnet_ut),
                    (LineType, "Usage"),
                ],
                2.0,
                Some(500_000.0),
            ),
            // A Marketplace line: the model from the service name.
            raw(
                c,
                &[
                    (Principal, "arn:aws:sts::1:assumed-role/R/s2"),
                    (UsageType, "USE1-MP:USE1_InputTokenCount_Global-Units"),
                    (Service, "Claude Sonnet 4.6 (Amazon Bedrock Edition)"),
                    (LineType, "Usage"),
                ],
                3.0,
                Some(1_000_000.0),
            ),
            raw(
                c,
                &[(UsageType, sonnet_ut), (LineType, "Credit")],
                -5.0,
                None,
            ),
        ];
        let out = shape(&query, &s.columns, rows).unwrap();
        assert_eq!(out.rows.len(), 1, "{:?}", out.rows);
        let sonnet = &out.rows[0];
        assert_eq!(
            sonnet.keys,
            vec![
                Some("arn:aws:iam::1:role/R".into()),
                Some("Claude Sonnet 4.6".into()),
                Some("input".into())
            ]
        );
        assert_eq!((sonnet.amount, sonnet.usage), (6.0, Some(1_502_000.0)));
        assert_eq!(out.adjustments.len(), 1);
        assert_eq!(out.adjustments[0].amount, -5.0);
        assert_eq!(
            out.no_principal, 0.0,
            "a credit is not usage without a principal"
        );
    }

    #[test]
    fn lines_without_a_principal_are_their_own_bucket() {
        let query = q(vec![GroupKey::Tag("team".into())]);
        let s = build(&query, &shape_of(true), Dialect::DataFusion).unwrap();
        use RawCol::*;
        let c = &s.columns;
        let team = Tag("team".into());
        let rows = vec![
            raw(
                c,
                &[
                    (HasPrincipal, "y"),
                    (team.clone(), "ml"),
                    (LineType, "Usage"),
                ],
                5.0,
                Some(1.0),
            ),
            raw(
                c,
                &[(HasPrincipal, "y"), (LineType, "Usage")],
                2.0,
                Some(1.0),
            ),
            raw(
                c,
                &[
                    (HasPrincipal, "n"),
                    (UsageType, "USE1-AgentCore-Runtime-vCPU-Hours"),
                    (LineType, "Usage"),
                ],
                3.0,
                None,
            ),
        ];
        assert!(
            c.contains(&HasPrincipal) && !c.contains(&Principal),
            "{c:?}"
        );
        let out = shape(&query, &s.columns, rows).unwrap();
        let find = |np: bool, k: Option<&str>| {
            out.rows
                .iter()
                .find(|r| r.no_principal == np && r.keys[0].as_deref() == k)
                .map(|r| r.amount)
        };
        assert_eq!(find(false, Some("ml")), Some(5.0));
        assert_eq!(find(false, None), Some(2.0), "untagged");
        assert_eq!(find(true, None), Some(3.0), "no principal");
        assert_eq!(out.no_principal, 3.0);
    }

    #[test]
    fn token_units_match_in_any_case() {
        let s = build(
            &q(vec![GroupKey::Model]),
            &shape_of(true),
            Dialect::DataFusion,
        )
        .unwrap();
        assert!(
            s.sql.contains("CASE pricing_unit WHEN '1K tokens'")
                && s.sql
                    .contains("ELSE CASE lower(pricing_unit) WHEN '1k tokens'"),
            "{}",
            s.sql
        );
    }

    #[test]
    fn a_non_ascii_bucket_is_an_error_not_a_panic() {
        // Found by fuzz/fuzz_targets/cur_rows.rs: the bucket text was cut at byte 10,
        // inside the two-byte 'ʸ'.
        let query = q(vec![GroupKey::Service]);
        let s = build(&query, &shape_of(true), Dialect::DataFusion).unwrap();
        let mut values = vec![None; s.columns.len()];
        values[0] = Some("2026-10-0ʸ".to_string());
        let raw = vec![RawRow {
            values,
            cost: 1.0,
            tokens: None,
            other_cost: 1.0,
        }];
        assert!(matches!(
            shape(&query, &s.columns, raw),
            Err(ToolError::Malformed { .. })
        ));
        // A timestamp text still gives its day.
        let mut values = vec![None; s.columns.len()];
        values[0] = Some("2026-10-05 00:00:00".to_string());
        let raw = vec![RawRow {
            values,
            cost: 1.0,
            tokens: None,
            other_cost: 1.0,
        }];
        let out = shape(&query, &s.columns, raw).unwrap();
        assert_eq!(out.rows[0].bucket_start, d("2026-10-01"));
    }

    #[test]
    fn months_span() {
        assert_eq!(
            months_of(d("2026-10-15"), d("2026-12-02")),
            vec!["2026-10", "2026-11", "2026-12"]
        );
    }
}
