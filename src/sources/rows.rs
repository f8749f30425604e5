//! The rows a spend source answers with: plain data, no I/O, so the fuzz
//! crate (`fuzz/`) can compile the CUR row mapping (`cur_sql`) alone.

use chrono::NaiveDate;

/// One group's spend in one time bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendRow {
    /// Start of the time bucket (a month's or a day's first day).
    pub bucket_start: NaiveDate,
    /// One value per group key, in the query's order; `None` = no value (untagged).
    pub keys: Vec<Option<String>>,
    /// Cost in the answer's currency.
    pub amount: f64,
    /// Usage quantity, when the source reports it and the rows share a unit.
    pub usage: Option<f64>,
    /// The unit of `usage` (e.g. `1K tokens`).
    pub usage_unit: Option<String>,
}

/// A credit, refund or other non-usage line, shown on its own, never netted silently.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjustment {
    pub bucket_start: NaiveDate,
    /// CUR `line_item_line_item_type`: Credit, Refund, Tax, ...
    pub line_item_type: String,
    pub amount: f64,
}
