//! CUR row mapping (`core/src/sources/cur_sql.rs`): the grouped SQL built for a
//! spend query, and the mapping of the engine's grouped rows to spend rows
//! (model name, token kind, role and session from the principal ARN, globs).
//!
//! Invariants: no panic; the SQL binds every filter value as a parameter and
//! its quotes balance; without principal/role/model filters, the rows and
//! adjustments add up to the raw cost; every row has one key per group key.
#![no_main]

use arbitrary::Arbitrary;
use chrono::{Duration, NaiveDate};
use libfuzzer_sys::fuzz_target;
use bedrock_cost_core::domain::group::{Granularity, GroupKey, Metric, SpendFilter, SpendQuery};
use bedrock_cost_core::domain::period::Period;
use bedrock_cost_core::sources::cur_sql::{self, Dialect, RawRow, TableShape};

#[derive(Debug, Arbitrary)]
enum Bucket {
    Day(u16),
    DayTime(u16),
    Text(String),
    Null,
}

#[derive(Debug, Arbitrary)]
struct Row {
    bucket: Bucket,
    /// Values of the other columns, in order (missing ones are NULL).
    values: Vec<Option<String>>,
    /// Usage lines by default; else this line item type.
    line_type: Option<String>,
    cost_cents: i32,
    tokens: Option<u32>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    start: u16,
    days: u16,
    daily: bool,
    net: bool,
    athena: bool,
    has_principal: bool,
    group_by: Vec<String>,
    tags: Vec<(String, Vec<String>)>,
    principals: Vec<String>,
    roles: Vec<String>,
    models: Vec<String>,
    rows: Vec<Row>,
}

fn day(n: u16) -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + Duration::days((n % 4000) as i64)
}

fuzz_target!(|input: Input| {
    let start = day(input.start);
    let period = Period {
        start,
        end: start + Duration::days(1 + (input.days % 400) as i64),
    };
    // Group keys as the tools accept them (parsed, at most 3, no duplicates).
    let mut group_by: Vec<GroupKey> = Vec::new();
    for g in input.group_by.iter().take(3) {
        if let Ok(k) = g.parse::<GroupKey>()
            && !group_by.contains(&k)
        {
            group_by.push(k);
        }
    }
    let mut filter = SpendFilter {
        principals: input.principals,
        roles: input.roles,
        models: input.models,
        ..SpendFilter::default()
    };
    for (k, v) in input.tags.into_iter().take(4) {
        filter.tags.insert(k, v);
    }
    let q = SpendQuery {
        period,
        granularity: if input.daily {
            Granularity::Daily
        } else {
            Granularity::Monthly
        },
        group_by,
        filter,
        metric: if input.net {
            Metric::NetUnblended
        } else {
            Metric::Unblended
        },
    };
    let shape = TableShape {
        table: "cur".into(),
        partition_column: Some("BILLING_PERIOD".into()),
        has_principal: input.has_principal,
        rollup: false,
    };
    let dialect = if input.athena {
        Dialect::Athena
    } else {
        Dialect::DataFusion
    };
    let Ok(sql) = cur_sql::build(&q, &shape, dialect) else {
        return;
    };
    // Values are bound, never spliced: placeholders match parameters, quotes balance.
    let placeholders = match dialect {
        Dialect::DataFusion => sql.sql.matches('$').count(),
        Dialect::Athena => sql.sql.matches('?').count(),
    };
    assert_eq!(placeholders, sql.params.len(), "{}", sql.sql);
    assert_eq!(sql.sql.matches('\'').count() % 2, 0, "{}", sql.sql);
    for values in q.filter.tags.values() {
        for v in values.iter().filter(|v| !v.is_empty()) {
            assert!(sql.params.contains(v));
        }
    }

    // The engine's answer: one value per grouped column, cost and tokens.
    let n = sql.columns.len();
    let line_col = sql
        .columns
        .iter()
        .position(|c| *c == cur_sql::RawCol::LineType);
    let mut raw = Vec::new();
    let mut total = 0.0;
    for r in input.rows.into_iter().take(64) {
        let mut values: Vec<Option<String>> = r.values;
        values.resize(n, None);
        values[0] = match r.bucket {
            Bucket::Day(d) => Some(day(d).to_string()),
            Bucket::DayTime(d) => Some(format!("{} 00:00:00", day(d))),
            Bucket::Text(t) => Some(t),
            Bucket::Null => None,
        };
        if let Some(i) = line_col {
            values[i] = r.line_type;
        }
        let cost = r.cost_cents as f64 / 100.0;
        total += cost;
        let tokens = r.tokens.map(f64::from);
        raw.push(RawRow {
            values,
            cost,
            other_cost: if tokens.is_some() { 0.0 } else { cost },
            tokens,
        });
    }
    let Ok(shaped) = cur_sql::shape(&q, &sql.columns, raw) else {
        return;
    };
    for row in &shaped.rows {
        assert_eq!(row.keys.len(), q.group_by.len());
        assert!(row.usage.is_none() || row.usage_unit.as_deref() == Some("tokens"));
    }
    if q.filter.principals.is_empty() && q.filter.roles.is_empty() && q.filter.models.is_empty() {
        let counted: f64 = shaped.rows.iter().map(|r| r.amount).sum::<f64>()
            + shaped.adjustments.iter().map(|a| a.amount).sum::<f64>();
        assert!(
            (counted - total).abs() < 1e-3 * (1.0 + total.abs()),
            "{counted} != {total}"
        );
    }
});
