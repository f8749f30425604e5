//! One query model for CUR 2.0, two engines (embedded DataFusion, Athena).
//!
//! The SQL groups by *raw* CUR columns only (principal ARN, usage type,
//! product model, tag values, region, service, line item type, pricing unit,
//! time bucket). Everything derived (role, session, model name, token kind)
//! is computed here in Rust from the grouped rows, then re-aggregated, so
//! both engines share one set of rules and the SQL stays simple.
//!
//! Safety: user-provided values (tag filter values) are bound as parameters;
//! tag *keys* become part of a map lookup and are strictly validated first
//! (`domain::group::valid_tag_key`, which admits no quote or backslash).
//! Dates come from parsed `NaiveDate`s.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::{Adjustment, SpendRow};
use crate::domain::group::{Granularity, GroupKey, Metric, SpendQuery, valid_tag_key};
use crate::domain::period::{first_of_month, next_month};
use crate::domain::principal::{glob_match, role_of, session_of};
use crate::domain::usage_type::{self, model_name};
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
    UsageType,
    ProductModel,
    Tag(String),
    Region,
    Service,
    LineType,
}

/// A query ready for an engine.
#[derive(Debug, Clone)]
pub struct CurSql {
    pub sql: String,
    /// String parameters, in placeholder order.
    pub params: Vec<String>,
    /// The grouped columns, in SELECT order; `cost` and `usage` follow them.
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
    /// with `product_model`, `product_servicename` and the sums `unblended`, `net_unblended`,
    /// `tokens` in place of the map lookups and line amounts.
    pub rollup: bool,
}

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
    q.group_by
        .iter()
        .any(|k| matches!(k, GroupKey::TokenKind | GroupKey::UsageType))
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

/// A line's cost under `net_unblended`: net where CUR has it, else unblended.
pub const NET_UNBLENDED: &str = "COALESCE(line_item_net_unblended_cost, line_item_unblended_cost)";

/// Usage in tokens, from the lines priced per token count; NULL when a group has none.
/// Units are compared case-insensitively; the spellings CUR writes ("1K tokens",
/// "1M tokens") match without lower-casing every line, the rest go through lower().
pub const TOKENS: &str = "SUM(CASE pricing_unit WHEN '1K tokens' THEN line_item_usage_amount * 1000 \
     WHEN '1M tokens' THEN line_item_usage_amount * 1000000 \
     WHEN 'tokens' THEN line_item_usage_amount \
     ELSE CASE lower(pricing_unit) WHEN '1k tokens' THEN line_item_usage_amount * 1000 \
     WHEN '1m tokens' THEN line_item_usage_amount * 1000000 \
     WHEN 'tokens' THEN line_item_usage_amount ELSE NULL END END)";

/// The Bedrock lines of the export: with a principal, from AmazonBedrock, or from a
/// Marketplace model whose service name says Bedrock. Cheapest test first: a batch where
/// every line has a principal (or is AmazonBedrock) never evaluates the map lookup and LIKE
/// (OR short-circuits per batch in DataFusion).
pub fn bedrock_lines(has_principal: bool, service: &str) -> String {
    format!(
        "({}line_item_product_code = 'AmazonBedrock' OR COALESCE({service}, '') LIKE '%Bedrock%')",
        if has_principal {
            "COALESCE(line_item_iam_principal, '') <> '' OR "
        } else {
            ""
        }
    )
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
    for k in &q.group_by {
        let cols: Vec<RawCol> = match k {
            GroupKey::Tag(t) => vec![RawCol::Tag(t.clone())],
            GroupKey::Principal | GroupKey::Role | GroupKey::Session => vec![RawCol::Principal],
            GroupKey::Model => vec![RawCol::ProductModel, RawCol::UsageType],
            GroupKey::TokenKind | GroupKey::UsageType => vec![RawCol::UsageType],
            GroupKey::Region => vec![RawCol::Region],
            GroupKey::Service => vec![RawCol::Service],
            GroupKey::Day | GroupKey::Month => vec![],
        };
        for c in cols {
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
    }
    if (!q.filter.principals.is_empty() || !q.filter.roles.is_empty())
        && !columns.contains(&RawCol::Principal)
    {
        columns.push(RawCol::Principal);
    }
    if !q.filter.models.is_empty() {
        for c in [RawCol::ProductModel, RawCol::UsageType] {
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
    }
    columns.push(RawCol::LineType);
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
    let select: Vec<String> = columns
        .iter()
        .map(|c| match c {
            RawCol::Bucket if constant_bucket => format!("'{}'", q.period.start.format("%Y-%m-%d")),
            RawCol::Bucket => {
                format!("CAST(date_trunc('{time_unit}', line_item_usage_start_date) AS DATE)")
            }
            RawCol::Principal => "line_item_iam_principal".into(),
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
        })
        .collect();
    let cost = match (q.metric, shape.rollup) {
        (Metric::NetUnblended, true) => "net_unblended",
        (_, true) => "unblended",
        (Metric::NetUnblended, false) => NET_UNBLENDED,
        _ => "line_item_unblended_cost",
    };
    let mut wh = vec![
        format!("line_item_usage_start_date >= {}", ts(q.period.start)),
        format!("line_item_usage_start_date < {}", ts(q.period.end)),
    ];
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
        if values.iter().any(|v| v.is_empty()) {
            alts.push(format!("COALESCE({lookup}, '') = ''"));
        }
        wh.push(format!("({})", alts.join(" OR ")));
    }
    let n = select.len();
    let first_group = if constant_bucket { 2 } else { 1 };
    // A rollup's `tokens` are the same sums per day and key (SUM of sums keeps NULL for groups
    // with no line priced per token).
    let tokens = if shape.rollup { "SUM(tokens)" } else { TOKENS };
    let sql = format!(
        "SELECT {}, SUM({cost}) AS cost, {tokens} AS tokens FROM {} WHERE {} GROUP BY {}",
        select.join(", "),
        shape.table,
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

/// One grouped row as an engine returns it: the raw column values (None =
/// NULL) in `CurSql::columns` order, cost, and tokens (None: no line of the
/// group is priced per token count).
#[derive(Debug, Clone)]
pub struct RawRow {
    pub values: Vec<Option<String>>,
    pub cost: f64,
    pub tokens: Option<f64>,
}

/// A result group: time bucket and key values.
type GroupId = (NaiveDate, Vec<Option<String>>);

/// Derived result of a CUR query.
pub struct Shaped {
    pub rows: Vec<SpendRow>,
    pub adjustments: Vec<Adjustment>,
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
        .map_err(|e| ToolError::Unsupported(format!("shaping the answer failed: {e}")))?
}

/// Turn raw grouped rows into spend rows keyed like the query, applying the
/// filters SQL cannot express (globs on principal/role, model).
pub fn shape(q: &SpendQuery, columns: &[RawCol], raw: Vec<RawRow>) -> Result<Shaped, ToolError> {
    let idx: HashMap<&RawCol, usize> = columns.iter().enumerate().map(|(i, c)| (c, i)).collect();
    let get = |r: &RawRow, c: &RawCol| -> Option<String> {
        idx.get(c)
            .and_then(|&i| r.values[i].clone())
            .filter(|v| !v.is_empty())
    };
    // (bucket, keys) -> (cost, tokens, any line measured in tokens)
    let mut groups: BTreeMap<GroupId, (f64, f64, bool)> = BTreeMap::new();
    let mut adjustments: BTreeMap<(NaiveDate, String), f64> = BTreeMap::new();
    // Glob verdicts per distinct principal: rows repeat principals many times over.
    let mut passes: HashMap<String, bool> = HashMap::new();
    for r in raw {
        let day = get(&r, &RawCol::Bucket)
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
        let line_type = get(&r, &RawCol::LineType).unwrap_or_else(|| "Usage".into());
        if line_type != "Usage" {
            *adjustments.entry((bucket, line_type)).or_default() += r.cost;
            continue;
        }
        let principal = get(&r, &RawCol::Principal).unwrap_or_default();
        let usage_type = get(&r, &RawCol::UsageType).unwrap_or_default();
        let product_model = get(&r, &RawCol::ProductModel).unwrap_or_default();
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
        let model = model_name(&product_model, &usage_type);
        if !q.filter.models.is_empty()
            && !q
                .filter
                .models
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&model) || glob_match(m, &model))
        {
            continue;
        }
        let keys: Vec<Option<String>> = q
            .group_by
            .iter()
            .map(|k| match k {
                GroupKey::Tag(t) => get(&r, &RawCol::Tag(t.clone())),
                GroupKey::Principal => Some(principal.clone()).filter(|p| !p.is_empty()),
                GroupKey::Role => Some(role_of(&principal)).filter(|p| !p.is_empty()),
                GroupKey::Session => Some(session_of(&principal)).filter(|p| !p.is_empty()),
                GroupKey::Model => Some(model.clone()),
                GroupKey::TokenKind => Some(
                    usage_type::parse(&usage_type)
                        .token_kind
                        .as_str()
                        .to_string(),
                ),
                GroupKey::UsageType => Some(usage_type.clone()).filter(|u| !u.is_empty()),
                GroupKey::Region => get(&r, &RawCol::Region),
                GroupKey::Service => get(&r, &RawCol::Service),
                GroupKey::Day => Some(day.to_string()),
                GroupKey::Month => Some(day.format("%Y-%m").to_string()),
            })
            .collect();
        let tokens = r.tokens;
        // Usage is reported in tokens, from the lines measured in tokens; lines in
        // other units (provisioned throughput "Units") add cost but no tokens.
        let e = groups.entry((bucket, keys)).or_insert((0.0, 0.0, false));
        e.0 += r.cost;
        if let Some(t) = tokens {
            e.1 += t;
            e.2 = true;
        }
    }
    let rows = groups
        .into_iter()
        .map(
            |((bucket_start, keys), (amount, tokens, all_tokens))| SpendRow {
                bucket_start,
                keys,
                amount,
                usage: all_tokens.then_some(tokens),
                usage_unit: all_tokens.then(|| "tokens".to_string()),
            },
        )
        .collect();
    let adjustments = adjustments
        .into_iter()
        .map(|((bucket_start, line_item_type), amount)| Adjustment {
            bucket_start,
            line_item_type,
            amount,
        })
        .collect();
    Ok(Shaped { rows, adjustments })
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

    #[test]
    fn shaping_derives_role_model_and_token_kind_and_separates_credits() {
        let query = q(vec![GroupKey::Role, GroupKey::Model, GroupKey::TokenKind]);
        let s = build(&query, &shape_of(true), Dialect::DataFusion).unwrap();
        assert_eq!(
            s.columns,
            vec![
                RawCol::Bucket,
                RawCol::Principal,
                RawCol::ProductModel,
                RawCol::UsageType,
                RawCol::LineType,
            ]
        );
        assert!(
            s.sql.starts_with("SELECT '2026-10-01', "),
            "one month: constant bucket: {}",
            s.sql
        );
        assert!(
            s.sql.contains("GROUP BY 2, 3, 4, 5")
                && s.sql
                    .contains("WHEN '1m tokens' THEN line_item_usage_amount * 1000000"),
            "{}",
            s.sql
        );
        let row =
            |p: &str, m: Option<&str>, ut: &str, lt: &str, _unit: &str, cost: f64, tokens: f64| {
                RawRow {
                    values: vec![
                        Some("2026-10-01".into()),
                        Some(p.into()),
                        m.map(str::to_string),
                        Some(ut.into()),
                        Some(lt.into()),
                    ],
                    cost,
                    tokens: Some(tokens),
                }
            };
        let raw = vec![
            row(
                "arn:aws:sts::1:assumed-role/R/s1",
                Some("Claude Sonnet 4.6"),
                "USE1-Claude4.6Sonnet-input-tokens",
                "Usage",
                "1K tokens",
                1.0,
                2_000.0,
            ),
            row(
                "arn:aws:sts::1:assumed-role/R/s2",
                None,
                "USE1-Claude4.6Sonnet-input-tokens",
                "Usage",
                "1M tokens",
                2.0,
                500_000.0,
            ),
            row(
                "arn:aws:sts::1:assumed-role/R/s2",
                Some("Claude Sonnet 4.6"),
                "USE1-Claude4.6Sonnet-input-tokens",
                "Usage",
                "1M tokens",
                3.0,
                1_000_000.0,
            ),
            row(
                "",
                None,
                "USE1-Claude4.6Sonnet-input-tokens",
                "Credit",
                "1K tokens",
                -5.0,
                0.0,
            ),
        ];
        let out = shape(&query, &s.columns, raw).unwrap();
        assert_eq!(out.rows.len(), 2);
        let sonnet = out
            .rows
            .iter()
            .find(|r| r.keys[1].as_deref() == Some("Claude Sonnet 4.6"))
            .unwrap();
        assert_eq!(
            sonnet.keys,
            vec![
                Some("arn:aws:iam::1:role/R".into()),
                Some("Claude Sonnet 4.6".into()),
                Some("input".into())
            ]
        );
        assert_eq!((sonnet.amount, sonnet.usage), (4.0, Some(1_002_000.0)));
        let parsed = out
            .rows
            .iter()
            .find(|r| r.keys[1].as_deref() == Some("Claude4.6Sonnet"))
            .unwrap();
        assert_eq!((parsed.amount, parsed.usage), (2.0, Some(500_000.0)));
        assert_eq!(out.adjustments.len(), 1);
        assert_eq!(out.adjustments[0].amount, -5.0);
    }

    #[test]
    fn usage_type_is_kept_only_where_it_names_the_model() {
        let query = q(vec![GroupKey::Principal, GroupKey::Model]);
        let s = build(&query, &shape_of(true), Dialect::DataFusion).unwrap();
        assert!(
            s.sql.contains(
                "CASE WHEN COALESCE(product['model'], '') = '' OR ascii(product['model']) NOT BETWEEN 33 AND 126 THEN line_item_usage_type END"
            ),
            "{}",
            s.sql
        );
        // Athena keeps the raw column; token kinds need every line's usage type.
        let a = build(&query, &shape_of(true), Dialect::Athena).unwrap();
        assert!(a.sql.contains(", line_item_usage_type,"), "{}", a.sql);
        let t = build(
            &q(vec![GroupKey::Model, GroupKey::TokenKind]),
            &shape_of(true),
            Dialect::DataFusion,
        )
        .unwrap();
        assert!(!t.sql.contains("ascii("), "{}", t.sql);
        // A line with a model needs no usage type to be named; one without is named from it.
        let row = |m: Option<&str>, ut: Option<&str>, cost: f64| RawRow {
            values: vec![
                Some("2026-10-01".into()),
                Some("arn:aws:iam::1:user/u".into()),
                m.map(str::to_string),
                ut.map(str::to_string),
                Some("Usage".into()),
            ],
            cost,
            tokens: None,
        };
        let raw = vec![
            row(Some("Claude Sonnet 4.6"), None, 1.0),
            row(None, Some("USE1-Claude4.6Sonnet-input-tokens"), 2.0),
            row(Some("  "), Some("USE1-NovaLite-input-tokens"), 4.0),
        ];
        let out = shape(&query, &s.columns, raw).unwrap();
        let amount = |m: &str| {
            out.rows
                .iter()
                .find(|r| r.keys[1].as_deref() == Some(m))
                .map(|r| r.amount)
        };
        assert_eq!(amount("Claude Sonnet 4.6"), Some(1.0));
        assert_eq!(amount("Claude4.6Sonnet"), Some(2.0));
        assert_eq!(amount("NovaLite"), Some(4.0));
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
