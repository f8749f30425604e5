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
    /// The group's lines carry no IAM principal (AgentCore compute, provisioned throughput, ...):
    /// a bucket of its own, never "untagged", never "tag these principals".
    pub no_principal: bool,
}

/// A credit, refund or other non-usage line, shown on its own, never netted silently.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjustment {
    pub bucket_start: NaiveDate,
    /// CUR `line_item_line_item_type`: Credit, Refund, Tax, EdpDiscount, ...
    pub line_item_type: String,
    pub amount: f64,
    /// The usage month (`YYYY-MM`) the line refers to, when it is billed in a later month.
    pub refers_to: Option<String>,
    /// Already taken off the usage lines' net cost (a discount under `net_unblended`): listed,
    /// not subtracted again.
    pub in_net: bool,
}

/// A spend backend a question may ask for (`source` in `bedrock_spend`).
#[derive(Debug, Clone, Copy, serde::Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceInput {
    CostExplorer,
    Cur,
    Athena,
    // Bedrock model invocation logs priced like the bill (`--invocation-logs`).
    Live,
}
