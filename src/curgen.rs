//! A deterministic generator of CUR 2.0 Parquet with Bedrock line items shaped like AWS's real
//! bills, at any size, plus the "known truth" totals of what it wrote.
//!
//! Tests, the demo and the benchmarks need CUR data whose answers are known without trusting the
//! query engine under test. [`generate`] writes what a CUR 2.0 export with *Include caller
//! identity (IAM principal) allocation data* delivers and sums every amount it writes into a
//! [`Truth`], saved as `truth.json`. **The truth shares nothing with the query path**: this module
//! imports nothing from `crate::domain` or `crate::sources`. It knows each line's model, token
//! kind, tier, inference scope, role and service because it *built* the line from its own tables,
//! never by parsing what it wrote, so a mistake in the engine's parsers cannot pass unseen.
//!
//! What AWS writes, and so what this writes (sources cited where it matters):
//! - Layout (Data Exports user guide, "Export delivery"): `data/BILLING_PERIOD=YYYY-MM/` with
//!   files named `<export>-00001.snappy.parquet`; with *create new* delivery every refresh goes in
//!   a `<timestamp>-<execution id>/` folder of its own inside the period, and
//!   `metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json` lists the current delivery's files
//!   as full `s3://` URIs. [`DeliveryMode::CreateNew`] writes an earlier, partial refresh next to
//!   the current one, so an engine that adds both is off by the partial refresh.
//! - Callers (CUR 2.0 `line_item_iam_principal`): IAM users (some with a path), Bedrock API-key
//!   users and assumed-role sessions (AgentCore `BedrockAgentCore-…`, federated
//!   `first.last@acme.example`, `batch-<n>`) in two accounts; principal tags as
//!   `tags['iamPrincipal/<key>']`, ~20% of identities untagged, and a resource tag
//!   `resourceTags/user:env` on some lines.
//! - Models named every way a bill names them: Anthropic's Claude Sonnet/Opus 4.6 are AWS
//!   Marketplace products ("Claude Sonnet 4.6 (Amazon Bedrock Edition)") whose usage types name no
//!   model (`USE1-MP:USE1_InputTokenCount_Global-Units`, pricing unit `Units` = 1M tokens); the
//!   others bill under Amazon Bedrock with the model in the usage type
//!   (`USE1-Claude4.5Haiku-cache-write-1h-input-token-count`, `USE1-NovaLite-input-tokens-flex`);
//!   `product['model']` is missing on lines before AWS's product-metadata backfill
//!   ([`GenSpec::backfill_days`]) and on ~10% of the others.
//! - Token kinds input, output, cache read, 5-minute and 1-hour cache writes; tiers standard,
//!   batch (50% off), flex (50% off) and priority (+75%); scopes in-region, geographic
//!   cross-region and global (Claude 4.5+ on a global profile costs ~10% less than regional).
//! - Lines without a principal: Amazon Bedrock AgentCore runtime compute, Guardrails text units
//!   and provisioned throughput hours.
//! - Adjustments per account and month (CUR 2.0 `line_item_line_item_type`): `Credit`, `Refund`
//!   (billed this month for the previous month's usage), `Tax`, and the account's discount as a
//!   line of its own (`EdpDiscount` / `PrivateRateDiscount`, as with manual discount
//!   compatibility) whose amount is exactly what the usage lines' `line_item_net_unblended_cost`
//!   already took off; likewise a `BundledDiscount` on a tenth of the Guardrails lines. No
//!   `SavingsPlanNegation`: Savings Plans do not cover Bedrock (see `IN_NET_TYPES`).
//!
//! Rows are produced day by day and streamed in Arrow batches of at most [`MAX_BATCH_ROWS`]
//! rows, so memory stays bounded whatever the size.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use datafusion::arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

use bedrock_cost_mcp::cur_file::{
    CurGenError, Delivery, PartitionedWriter, Product, Row, month_of, prepare_out_dir, schema,
};
use bedrock_cost_mcp::demo_data::{DEMO_ACCOUNT, mix, round10};

/// Where the manifests say the export lives (the files' `s3://` URIs).
const S3_BASE: &str = "s3://acme-billing-exports/cur2";

/// How an export delivers a refreshed billing period (Data Exports "overwrite" or "create new").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryMode {
    /// Each refresh replaces the period's files.
    Overwrite,
    /// Each refresh is a new `<timestamp>-<id>/` folder in the period; older ones stay.
    CreateNew,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenSpec {
    /// Number of Usage line items with a principal to write (exact); lines without a principal
    /// (a few a day) and adjustment lines come on top.
    pub rows: u64,
    /// First usage day.
    pub start: NaiveDate,
    /// Number of days covered (may span several billing months).
    pub days: u32,
    pub seed: u64,
    /// Distinct callers (user ARNs and assumed-role session ARNs).
    pub principals: u32,
    /// Rows per Parquet file before the next file starts.
    pub rows_per_file: usize,
    /// `false` mimics an export made without `INCLUDE_IAM_PRINCIPAL_DATA`: the
    /// `line_item_iam_principal` column is absent.
    pub include_principal_column: bool,
    /// Lines of the first `backfill_days` days lack `product['model']` (written before AWS
    /// backfilled the product metadata).
    pub backfill_days: u32,
    pub delivery: DeliveryMode,
    /// Write `metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`.
    pub manifest: bool,
    /// The export's name (file names and manifests).
    pub export_name: String,
    /// Time granularity MONTHLY: one line per month for what a daily export bills in one line
    /// per day (same caller, usage type, unit, ...), dated from the month's first day.
    pub monthly: bool,
    /// Every line of the second account is in this currency (`line_item_currency_code`, the
    /// currency of its amounts), as for an account billed in another currency; the amounts are
    /// written as they are, never converted. `None`: every line in USD.
    pub second_currency: Option<String>,
    /// Also write Bedrock model invocation logs (`invocation-logs/AWSLogs/...`, gzipped JSON
    /// lines) for the standard-tier token lines, and the Price List products of the catalogue
    /// (`pricelist.json`, beside `truth.json`); token counts are then whole tokens.
    pub invocation_logs: bool,
    /// The last N days of the range are logged but not billed yet: no CUR line (the bill lags).
    pub logs_only_days: u32,
}

impl GenSpec {
    /// A spec with the caller count scaled to the size (about 40 callers for 20k
    /// rows, 400 for 10M), one-million-row files, the principal column included, overwrite
    /// delivery with manifests.
    #[cfg(test)]
    pub fn scaled(rows: u64, start: NaiveDate, days: u32, seed: u64) -> GenSpec {
        // 40 × (rows / 20k)^0.37: 20k -> 40, 10M -> ~400.
        let principals = (40.0 * (rows as f64 / 20_000.0).powf(0.37)).clamp(12.0, 2_000.0) as u32;
        GenSpec {
            rows,
            start,
            days,
            seed,
            principals,
            rows_per_file: 1_000_000,
            include_principal_column: true,
            backfill_days: 0,
            delivery: DeliveryMode::Overwrite,
            manifest: true,
            export_name: "bedrock-cur".to_string(),
            monthly: false,
            second_currency: None,
            invocation_logs: false,
            logs_only_days: 0,
        }
    }

    /// The currency of the lines of `account`.
    fn currency(&self, account: &str) -> &str {
        match &self.second_currency {
            Some(c) if account == ACCOUNTS[1] => c,
            _ => "USD",
        }
    }
}

/// One adjustment line as written.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AdjustmentTruth {
    /// Billing month `YYYY-MM`.
    pub month: String,
    pub line_item_type: String,
    pub account: String,
    pub unblended: f64,
    /// The earlier usage month a refund refers to.
    pub refers_to: Option<String>,
}

/// The totals of what was written (the current delivery only), computed while writing and
/// independent of any query engine. Amounts are `f64` sums of exactly the values written.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Truth {
    /// Σ `line_item_unblended_cost` over Usage lines (with and without principal).
    pub total_unblended: f64,
    /// Σ `COALESCE(line_item_net_unblended_cost, line_item_unblended_cost)` over Usage lines.
    pub total_net_unblended: f64,
    /// `total_unblended` plus every adjustment.
    pub total_after_adjustments: f64,
    /// `total_net_unblended` plus the adjustments that are not discounts (the discounts are
    /// already in the usage lines' net cost).
    pub total_net_after_adjustments: f64,
    /// Usage unblended per `line_item_iam_principal` (lines with a principal); empty when the
    /// column was not written.
    pub by_principal: BTreeMap<String, f64>,
    /// Usage unblended per role (`arn:aws:iam::A:role/R` for sessions, users as they are);
    /// empty when the principal column was not written.
    pub by_role: BTreeMap<String, f64>,
    /// Usage unblended per model (its catalogue name; `""` for lines of no model).
    pub by_model: BTreeMap<String, f64>,
    /// Usage unblended per token kind (`input`, `output`, `cache_read`, `cache_write_5m`,
    /// `cache_write_1h`, `other`).
    pub by_token_kind: BTreeMap<String, f64>,
    /// Usage unblended per tier (`standard`, `batch`, `flex`, `priority`, `provisioned`).
    pub by_tier: BTreeMap<String, f64>,
    /// Usage unblended per inference scope (`in_region`, `cross_region`, `global`).
    pub by_scope: BTreeMap<String, f64>,
    /// Usage unblended per `product['servicename']`.
    pub by_service: BTreeMap<String, f64>,
    /// Usage unblended per `tags['iamPrincipal/team']` over lines with a principal, `""` for
    /// principals without it.
    pub by_team: BTreeMap<String, f64>,
    /// Usage unblended of principals without a team tag (= `by_team[""]`).
    pub untagged: f64,
    /// Usage unblended of lines without a principal.
    pub no_principal: f64,
    /// `no_principal` per model (`""`: lines of no model).
    pub no_principal_by_model: BTreeMap<String, f64>,
    /// Usage unblended per `"<principal>|<model>"`; empty when the principal column
    /// was not written.
    pub by_principal_model: BTreeMap<String, f64>,
    /// Tokens per model, over the lines priced per token count.
    pub tokens_by_model: BTreeMap<String, f64>,
    /// Unblended sum per `line_item_line_item_type` of the non-Usage lines.
    pub adjustments: BTreeMap<String, f64>,
    /// Every adjustment line.
    pub adjustment_lines: Vec<AdjustmentTruth>,
    /// Usage unblended per billing month `YYYY-MM`.
    pub by_month: BTreeMap<String, f64>,
    /// Usage unblended by `line_item_currency_code` (the engine never adds amounts in different
    /// currencies; the totals above do).
    pub by_currency: BTreeMap<String, f64>,
    /// Usage lines with a principal written (= `GenSpec::rows`).
    pub usage_rows: u64,
    /// Usage lines without a principal written.
    pub no_principal_rows: u64,
    /// All lines of the current deliveries (Usage and adjustments).
    pub rows_written: u64,
    /// Parquet files of the current deliveries, relative to the output directory.
    pub files: Vec<String>,
    /// Parquet files of earlier (superseded) create-new deliveries; never to be counted.
    pub stale_files: Vec<String>,
    /// Manifests written, relative to the output directory.
    pub manifests: Vec<String>,
    /// With invocation logs: what they hold (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogTruth>,
}

/// What the invocation logs hold, summed while writing them (no query engine involved).
/// Logged: the standard-tier token lines of callers (cache writes of one hour excluded: a
/// record has one cache-write count, priced as the 5-minute kind). Each record carries the tokens
/// of one line's kind; a line's tokens are split over 1-6 records at random times of its day.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct LogTruth {
    /// Billed days: the logged lines' CUR cost per "principal|model" (the bill of exactly the
    /// logged calls).
    pub billed_by_principal_model: BTreeMap<String, f64>,
    pub billed_total: f64,
    /// Days logged but not billed (the last `logs_only_days`): the cost the lines would bill,
    /// per principal and per day.
    pub unbilled_by_principal: BTreeMap<String, f64>,
    pub unbilled_by_day: BTreeMap<String, f64>,
    pub unbilled_total: f64,
    pub records: u64,
    pub files: Vec<String>,
    /// The Price List products of the catalogue (standard tier), as the emulator takes them.
    pub price_list: String,
}

// ---------------------------------------------------------------------------
// The synthetic organisation: its own tables, shared with nothing else

/// Token kinds, in the order of [`GenModel::prices`] and the truth's names.
const KIND_NAMES: [&str; 5] = [
    "input",
    "output",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
];
/// The first-party usage-type meter of each kind (Amazon Bedrock pricing page, usage types as
/// they appear in CUR: `USE1-Claude4.5Haiku-cache-write-1h-input-token-count`).
const KIND_METERS: [&str; 5] = [
    "input-tokens",
    "output-tokens",
    "cache-read-input-token-count",
    "cache-write-input-token-count",
    "cache-write-1h-input-token-count",
];
/// The Marketplace meter of each kind (`USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units`).
const MP_METERS: [&str; 5] = [
    "InputTokenCount",
    "OutputTokenCount",
    "CacheReadInputTokenCount",
    "CacheWriteInputTokenCount",
    "CacheWrite1hInputTokenCount",
];
/// How often each kind appears as a line, relative, and typical thousands of tokens on a line.
const KIND_ROW_WEIGHTS: [f64; 5] = [0.35, 0.3, 0.2, 0.1, 0.05];
const KIND_BASE_KTOKENS: [f64; 5] = [400.0, 60.0, 900.0, 120.0, 120.0];

/// Tiers: name, first-party suffix, Marketplace suffix, price factor (batch and flex at half the
/// on-demand price, priority at +75%: Amazon Bedrock pricing page).
const TIERS: [(&str, &str, &str, f64); 4] = [
    ("standard", "", "", 1.0),
    ("batch", "-batch", "_Batch", 0.5),
    ("flex", "-flex", "_Flex", 0.5),
    ("priority", "-priority", "_Priority", 1.75),
];
/// Inference scopes: name, first-party suffix, Marketplace suffix.
const SCOPES: [(&str, &str, &str); 3] = [
    ("in_region", "", ""),
    ("cross_region", "-cross-region", "_Geo"),
    ("global", "-cross-region-global", "_Global"),
];

/// A model as it bills: the name AWS writes in `product['model']` (the truth's name), the
/// service and product code its lines carry, and how its usage types are spelled.
struct GenModel {
    name: &'static str,
    provider: &'static str,
    service: &'static str,
    product_code: &'static str,
    /// The usage-type stem of a first-party model; `None` for a Marketplace model, whose usage
    /// types name no model.
    stem: Option<&'static str>,
    /// USD per 1K tokens of each kind on the standard tier, in-region (0 = not billed).
    prices: [f64; 5],
    /// Relative weights of the tiers its input/output lines use.
    tiers: [f64; 4],
    /// Relative weights of the scopes its lines use.
    scopes: [f64; 3],
    /// Price factor of a global profile against regional (Claude 4.5+: about 10% less).
    global_factor: f64,
}

const CATALOGUE: &[GenModel] = &[
    GenModel {
        name: "Claude Sonnet 4.6",
        provider: "Anthropic",
        service: "Claude Sonnet 4.6 (Amazon Bedrock Edition)",
        product_code: "7zgyu5r4sonnet46",
        stem: None,
        prices: [0.0033, 0.0165, 0.00033, 0.004125, 0.0066],
        tiers: [0.9, 0.1, 0.0, 0.0],
        scopes: [0.4, 0.3, 0.3],
        global_factor: 1.0 / 1.1,
    },
    GenModel {
        name: "Claude Opus 4.6",
        provider: "Anthropic",
        service: "Claude Opus 4.6 (Amazon Bedrock Edition)",
        product_code: "4kx8wq2mopus46",
        stem: None,
        prices: [0.0055, 0.0275, 0.00055, 0.006875, 0.011],
        tiers: [0.9, 0.1, 0.0, 0.0],
        scopes: [0.4, 0.3, 0.3],
        global_factor: 1.0 / 1.1,
    },
    GenModel {
        name: "Claude Haiku 4.5",
        provider: "Anthropic",
        service: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        stem: Some("Claude4.5Haiku"),
        prices: [0.0011, 0.0055, 0.00011, 0.001375, 0.0022],
        tiers: [0.85, 0.15, 0.0, 0.0],
        scopes: [0.5, 0.25, 0.25],
        global_factor: 1.0 / 1.1,
    },
    GenModel {
        name: "Nova Lite",
        provider: "Amazon",
        service: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        stem: Some("NovaLite"),
        prices: [0.00006, 0.00024, 0.000015, 0.0, 0.0],
        tiers: [0.6, 0.15, 0.15, 0.1],
        scopes: [0.8, 0.2, 0.0],
        global_factor: 1.0,
    },
    GenModel {
        name: "Nova Pro",
        provider: "Amazon",
        service: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        stem: Some("NovaPro"),
        prices: [0.0008, 0.0032, 0.0002, 0.0, 0.0],
        tiers: [0.6, 0.15, 0.15, 0.1],
        scopes: [0.8, 0.2, 0.0],
        global_factor: 1.0,
    },
    GenModel {
        name: "Llama 3.3 70B Instruct",
        provider: "Meta",
        service: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        stem: Some("Llama3.3-70B"),
        prices: [0.00072, 0.00072, 0.0, 0.0, 0.0],
        tiers: [0.8, 0.2, 0.0, 0.0],
        scopes: [0.85, 0.15, 0.0],
        global_factor: 1.0,
    },
    GenModel {
        name: "Titan Text Embeddings V2",
        provider: "Amazon",
        service: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        stem: Some("TitanEmbeddingsV2-Text"),
        prices: [0.00002, 0.0, 0.0, 0.0, 0.0],
        tiers: [1.0, 0.0, 0.0, 0.0],
        scopes: [1.0, 0.0, 0.0],
        global_factor: 1.0,
    },
];

/// First-party models whose every line is priced per `1M tokens`; the others switch to
/// `1M tokens` on ~10% of lines, so a model's quantities mix both units.
const MILLION_UNIT_MODELS: &[&str] = &["Titan Text Embeddings V2"];

/// Billing region prefix and region code (`product_region_code`).
const REGIONS: [(&str, &str); 2] = [("USE1", "us-east-1"), ("USW2", "us-west-2")];

const ACCOUNTS: [&str; 2] = [DEMO_ACCOUNT, "210987654321"];
/// The discount each account has and the line type it comes as: account 0 has an Enterprise
/// Discount Program (5%), account 1 a private rate (1%).
const DISCOUNTS: [(&str, f64); 2] = [("EdpDiscount", 0.05), ("PrivateRateDiscount", 0.01)];
/// The line type of the bundled discount ([`Unattributed::bundled`]).
const BUNDLED_DISCOUNT: &str = "BundledDiscount";
/// The adjustment types the usage lines' `line_item_net_unblended_cost` already took off: with
/// manual discount compatibility, each discount is also a line of its own
/// (<https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2-discount.html>).
/// Not `SavingsPlanNegation`, which offsets On-Demand figures in both cost columns
/// (<https://docs.aws.amazon.com/cur/latest/userguide/cur-sp.html>); Savings Plans do not
/// cover Bedrock, so no Bedrock bill has one and this generator writes none.
const IN_NET_TYPES: [&str; 3] = [DISCOUNTS[0].0, DISCOUNTS[1].0, BUNDLED_DISCOUNT];
/// Tax rate on an account's usage.
const TAX_RATE: f64 = 0.06;

/// Lines without a principal, per account and day, sized as a share of the day's token spend:
/// (service, product code, usage type after the region, operation, unit, price per unit, share,
/// model, tier, accounts).
struct Unattributed {
    service: &'static str,
    product_code: &'static str,
    usage_type: &'static str,
    operation: &'static str,
    unit: &'static str,
    price: f64,
    share: f64,
    model: Option<usize>,
    tier: &'static str,
    only_account: Option<usize>,
    /// Share of the line taken off as a `BundledDiscount` (free or discounted usage granted by
    /// the use of another item), on top of the account's own discount.
    bundled: f64,
}

const UNATTRIBUTED: [Unattributed; 3] = [
    Unattributed {
        service: "Amazon Bedrock AgentCore",
        product_code: "AmazonBedrockAgentCore",
        usage_type: "AgentCore-Runtime-vCPU-Hours",
        operation: "Runtime",
        unit: "vCPU-Hours",
        price: 0.0895,
        share: 0.04,
        model: None,
        tier: "standard",
        only_account: None,
        bundled: 0.0,
    },
    // A made-up bundle, shaped as CUR writes one: a tenth of the Guardrails text units is free
    // with the account's other usage.
    Unattributed {
        service: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        usage_type: "Guardrails-ContentPolicyTextUnits",
        operation: "ApplyGuardrail",
        unit: "1K Text Units",
        price: 0.15,
        share: 0.01,
        model: None,
        tier: "standard",
        only_account: None,
        bundled: 0.10,
    },
    Unattributed {
        service: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        usage_type: "ProvisionedThroughput-NovaPro-ModelUnits",
        operation: "ProvisionedThroughput",
        unit: "Hours",
        price: 15.85,
        share: 0.03,
        model: Some(4),
        tier: "provisioned",
        only_account: Some(0),
        bundled: 0.0,
    },
];

const TEAMS: &[&str] = &[
    "ml-platform",
    "web",
    "finance-apps",
    "support",
    "data-eng",
    "research",
];
const USER_NAMES: &[&str] = &[
    "alice", "bob", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "victor",
];
const FIRST_NAMES: &[&str] = &[
    "carol", "dave", "maria", "li", "amir", "sofia", "kenji", "ana", "omar", "lena", "raj", "eva",
    "tom", "yuki", "nina", "paul",
];
const LAST_NAMES: &[&str] = &[
    "smith", "nguyen", "garcia", "chen", "mueller", "rossi", "sato", "kowalski", "dubois",
    "okafor", "silva",
];
const AGENT_ROLES: &[&str] = &[
    "InvoiceAgentRole",
    "TriageAgentRole",
    "ResearchAgentRole",
    "SupportAgentRole",
];
const FEDERATED_ROLES: &[&str] = &["DataScienceRole", "AnalystRole", "EngineeringRole"];
const BATCH_ROLES: &[&str] = &["NightlyBatchRole", "EtlRole", "ReportBatchRole"];
const USER_PATHS: &[&str] = &["eng", "data/science", "contractors"];
const ENV_VALUES: &[&str] = &["prod", "staging", "dev"];

/// Exponent of the Zipf law over callers' row shares.
const ZIPF_EXPONENT: f64 = 1.1;

/// A splitmix64 stream over [`mix`].
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize
    }
}

/// `list[i % len]`, suffixed with `i / len` from the second round on, so that
/// different `i` never give the same name.
fn indexed(list: &[&str], i: usize) -> String {
    match i / list.len() {
        0 => list[i % list.len()].to_string(),
        round => format!("{}{}", list[i % list.len()], round + 1),
    }
}

/// The kinds of identity behind callers: users, roles and their sessions, federated users and
/// AgentCore runtime sessions, as `line_item_iam_principal` records them
/// (<https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2-line-item.html>).
#[derive(Debug, Clone, Copy)]
enum IdentityKind {
    User,
    PathUser,
    ApiKeyUser,
    AgentCoreRole,
    FederatedRole,
    BatchRole,
}

const IDENTITY_KINDS: [(IdentityKind, f64); 6] = [
    (IdentityKind::User, 0.30),
    (IdentityKind::PathUser, 0.10),
    (IdentityKind::ApiKeyUser, 0.10),
    (IdentityKind::AgentCoreRole, 0.20),
    (IdentityKind::FederatedRole, 0.15),
    (IdentityKind::BatchRole, 0.15),
];

/// One caller ARN with what its lines carry.
#[derive(Debug, Clone)]
struct Caller {
    arn: String,
    /// The role behind a session (`arn:aws:iam::A:role/R`), the ARN itself for users: known
    /// from how the ARN was built, not parsed back.
    role: String,
    account: usize,
    /// Index into [`TEAMS`], `None` when the identity has no team tag.
    team: Option<usize>,
    tags: Vec<(String, String)>,
    /// Catalogue indexes, most used first (shares 60/30/10%).
    models: Vec<usize>,
    home_region: usize,
    /// Multiplies the tokens on each of the caller's lines.
    volume: f64,
}

/// Callers until `count` ARNs exist. The first six identities take each kind once
/// so even small specs show the whole mix; every fifth identity is untagged.
fn callers(seed: u64, count: usize, n_models: usize) -> Vec<Caller> {
    let mut rng = Rng::new(seed ^ 0xCA11_E125);
    let mut out: Vec<Caller> = Vec::with_capacity(count);
    let mut ident = 0usize;
    // How many identities of each naming family exist so far: names come from it,
    // so they stay unique (IAM user names are unique per account whatever the path).
    let mut seen = [0usize; 6];
    while out.len() < count {
        let kind = if ident < IDENTITY_KINDS.len() {
            IDENTITY_KINDS[(ident + seed as usize % IDENTITY_KINDS.len()) % IDENTITY_KINDS.len()].0
        } else {
            let mut u = rng.next_f64();
            IDENTITY_KINDS
                .iter()
                .find(|(_, w)| {
                    u -= w;
                    u < 0.0
                })
                .map_or(IdentityKind::User, |(k, _)| *k)
        };
        let account = usize::from(ident % 3 == 2);
        let acct = ACCOUNTS[account];
        let (team, tags) = if ident % 5 == 4 {
            (None, Vec::new())
        } else {
            let t = rng.below(TEAMS.len());
            let mut tags = vec![("iamPrincipal/team".to_string(), TEAMS[t].to_string())];
            if rng.next_f64() < 0.6 {
                tags.push((
                    "iamPrincipal/cost-center".to_string(),
                    format!("cc-{}", 1001 * (t + 1)),
                ));
            }
            (Some(t), tags)
        };
        let mut models = vec![ident % n_models];
        for _ in 0..rng.below(3) {
            let m = rng.below(n_models);
            if !models.contains(&m) {
                models.push(m);
            }
        }
        let home_region = usize::from(rng.next_f64() >= 0.75);

        let family = match kind {
            IdentityKind::PathUser => IdentityKind::User as usize,
            other => other as usize,
        };
        let nth = seen[family];
        seen[family] += 1;
        let role_arn = |role: &str| format!("arn:aws:iam::{acct}:role/{role}");
        let arns: Vec<(String, Option<String>)> = match kind {
            IdentityKind::User => vec![(
                format!("arn:aws:iam::{acct}:user/{}", indexed(USER_NAMES, nth)),
                None,
            )],
            IdentityKind::PathUser => vec![(
                format!(
                    "arn:aws:iam::{acct}:user/{}/{}",
                    USER_PATHS[rng.below(USER_PATHS.len())],
                    indexed(USER_NAMES, nth)
                ),
                None,
            )],
            IdentityKind::ApiKeyUser => vec![(
                format!(
                    "arn:aws:iam::{acct}:user/BedrockAPIKey-{:03x}{nth}",
                    rng.next_u64() & 0xfff
                ),
                None,
            )],
            IdentityKind::AgentCoreRole => {
                let role = indexed(AGENT_ROLES, nth);
                (0..3 + rng.below(4))
                    .map(|s| {
                        // The low hex digit is the session index: unique within the role.
                        let id = (rng.next_u64() as u32 & !0xf) | s as u32;
                        (
                            format!(
                                "arn:aws:sts::{acct}:assumed-role/{role}/BedrockAgentCore-{id:08x}"
                            ),
                            Some(role_arn(&role)),
                        )
                    })
                    .collect()
            }
            IdentityKind::FederatedRole => {
                let role = indexed(FEDERATED_ROLES, nth);
                (0..2 + rng.below(4))
                    .map(|s| {
                        let first = FIRST_NAMES[(ident * 5 + s) % FIRST_NAMES.len()];
                        let last = LAST_NAMES[(ident + s * 3) % LAST_NAMES.len()];
                        (
                            format!(
                                "arn:aws:sts::{acct}:assumed-role/{role}/{first}.{last}@acme.example"
                            ),
                            Some(role_arn(&role)),
                        )
                    })
                    .collect()
            }
            IdentityKind::BatchRole => {
                let role = indexed(BATCH_ROLES, nth);
                (0..1 + rng.below(3))
                    .map(|s| {
                        (
                            format!("arn:aws:sts::{acct}:assumed-role/{role}/batch-{}", s + 1),
                            Some(role_arn(&role)),
                        )
                    })
                    .collect()
            }
        };
        for (arn, role) in arns.into_iter().take(count - out.len()) {
            let u = rng.next_f64();
            out.push(Caller {
                role: role.unwrap_or_else(|| arn.clone()),
                arn,
                account,
                team,
                tags: tags.clone(),
                models: models.clone(),
                home_region,
                volume: 0.3 + 2.7 * u * u,
            });
        }
        ident += 1;
    }
    out
}

/// Pick an index by relative weights (`u` uniform in [0, 1)); zero weights are never picked.
fn weighted(weights: &[f64], u: f64) -> usize {
    let total: f64 = weights.iter().sum();
    let mut w = u * total;
    let mut last = 0;
    for (i, &x) in weights.iter().enumerate() {
        if x <= 0.0 {
            continue;
        }
        last = i;
        w -= x;
        if w < 0.0 {
            return i;
        }
    }
    last
}

/// Pricing unit of a line and how many tokens one unit is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    ThousandTokens,
    MillionTokens,
    /// Marketplace meters: `Units`, one unit per million tokens.
    MarketplaceUnits,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::ThousandTokens => "1K tokens",
            Unit::MillionTokens => "1M tokens",
            Unit::MarketplaceUnits => "Units",
        }
    }
    fn tokens(self) -> f64 {
        match self {
            Unit::ThousandTokens => 1e3,
            Unit::MillionTokens | Unit::MarketplaceUnits => 1e6,
        }
    }
}

/// One drawn token line, as indexes into the tables.
struct UsageLine {
    caller: usize,
    model: usize,
    region: usize,
    kind: usize,
    tier: usize,
    scope: usize,
    /// Index into [`World::usage_types`].
    usage_type: usize,
    has_model: bool,
    usage_amount: f64,
    unit: Unit,
    unblended: f64,
    net_null: bool,
    env_tag: Option<&'static str>,
}

/// Everything fixed before the first row: callers, usage types, services. Rows then only pick
/// indexes into these.
struct World {
    callers: Vec<Caller>,
    /// Cumulative Zipf weights in caller order (for picking by binary search).
    cumulative: Vec<f64>,
    /// The heaviest caller of each account (Refund lines name it).
    top_caller: [Option<usize>; 2],
    /// Every token usage type, indexed by [`World::usage_type_index`].
    usage_types: Vec<String>,
    /// Service names: the catalogue's, then the unattributed lines'.
    services: Vec<&'static str>,
    /// Token counts in whole tokens (the invocation logs count tokens, not thousands).
    whole_tokens: bool,
}

impl World {
    fn new(spec: &GenSpec) -> World {
        let callers = callers(spec.seed, spec.principals as usize, CATALOGUE.len());

        // Zipf ranks in a seed-dependent order, so the heavy hitters vary with the seed.
        let mut order: Vec<usize> = (0..callers.len()).collect();
        order.sort_by_key(|&i| mix(spec.seed ^ 0x21FF ^ ((i as u64) << 20)));
        let mut weight = vec![0.0; callers.len()];
        for (rank, &i) in order.iter().enumerate() {
            weight[i] = 1.0 / ((rank + 1) as f64).powf(ZIPF_EXPONENT);
        }
        let cumulative = weight
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        let mut top_caller = [None; 2];
        for &i in &order {
            top_caller[callers[i].account].get_or_insert(i);
        }

        let mut usage_types = Vec::new();
        for (prefix, _) in REGIONS {
            for m in CATALOGUE {
                for kind in 0..5 {
                    for (_, fp_scope, mp_scope) in SCOPES {
                        for (_, fp_tier, mp_tier, _) in TIERS {
                            usage_types.push(match m.stem {
                                Some(stem) => format!(
                                    "{prefix}-{stem}-{}{fp_scope}{fp_tier}",
                                    KIND_METERS[kind]
                                ),
                                None => format!(
                                    "{prefix}-MP:{prefix}_{}{mp_scope}{mp_tier}-Units",
                                    MP_METERS[kind]
                                ),
                            });
                        }
                    }
                }
            }
        }
        let mut services: Vec<&'static str> = Vec::new();
        for s in CATALOGUE
            .iter()
            .map(|m| m.service)
            .chain(UNATTRIBUTED.iter().map(|u| u.service))
        {
            if !services.contains(&s) {
                services.push(s);
            }
        }
        World {
            callers,
            cumulative,
            top_caller,
            usage_types,
            services,
            whole_tokens: spec.invocation_logs,
        }
    }

    fn usage_type_index(
        region: usize,
        model: usize,
        kind: usize,
        scope: usize,
        tier: usize,
    ) -> usize {
        (((region * CATALOGUE.len() + model) * 5 + kind) * SCOPES.len() + scope) * TIERS.len()
            + tier
    }

    fn service_index(&self, service: &str) -> usize {
        self.services
            .iter()
            .position(|s| *s == service)
            .expect("every service is in the table")
    }

    fn pick_caller(&self, u: f64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        self.cumulative
            .partition_point(|&c| c <= u * total)
            .min(self.callers.len() - 1)
    }

    /// Draw the token line number `index` (a pure function of seed and index).
    fn usage_line(&self, seed: u64, index: u64, before_backfill: bool) -> UsageLine {
        let mut rng = Rng::new(seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let caller = self.pick_caller(rng.next_f64());
        let c = &self.callers[caller];

        let u = rng.next_f64();
        let model = c.models[if c.models.len() == 1 || u < 0.6 {
            0
        } else if c.models.len() == 2 || u < 0.9 {
            1
        } else {
            2
        }];
        let m = &CATALOGUE[model];
        let region = if rng.next_f64() < 0.85 {
            c.home_region
        } else {
            1 - c.home_region
        };
        let has_model = !before_backfill && rng.next_f64() >= 0.10;
        let net_null = rng.next_f64() < 0.05;
        let env_tag = (rng.next_f64() < 0.3).then(|| ENV_VALUES[rng.below(ENV_VALUES.len())]);
        // Busy days and quiet days.
        let jitter = 0.5 + rng.next_f64();

        let kind_weights: Vec<f64> = (0..5)
            .map(|k| {
                if m.prices[k] > 0.0 {
                    KIND_ROW_WEIGHTS[k]
                } else {
                    0.0
                }
            })
            .collect();
        let kind = weighted(&kind_weights, rng.next_f64());
        // Batch, flex and priority serve input and output only.
        let tier = if kind < 2 {
            weighted(&m.tiers, rng.next_f64())
        } else {
            0
        };
        let scope = weighted(&m.scopes, rng.next_f64());
        let unit = if m.stem.is_none() {
            Unit::MarketplaceUnits
        } else if MILLION_UNIT_MODELS.contains(&m.name) || rng.next_f64() < 0.10 {
            Unit::MillionTokens
        } else {
            Unit::ThousandTokens
        };
        let per_1k =
            m.prices[kind] * TIERS[tier].3 * if scope == 2 { m.global_factor } else { 1.0 };
        let k_tokens = KIND_BASE_KTOKENS[kind] * c.volume * jitter;
        let k_tokens = if self.whole_tokens {
            (k_tokens * 1000.0).round().max(1.0) / 1000.0
        } else {
            k_tokens
        };
        let (usage_amount, unblended) = match unit {
            Unit::ThousandTokens => {
                let amount = round10(k_tokens);
                (amount, round10(amount * round10(per_1k)))
            }
            Unit::MillionTokens | Unit::MarketplaceUnits => {
                let amount = round10(k_tokens / 1000.0);
                (amount, round10(amount * round10(per_1k * 1000.0)))
            }
        };
        UsageLine {
            caller,
            model,
            region,
            kind,
            tier,
            scope,
            usage_type: World::usage_type_index(region, model, kind, scope, tier),
            has_model,
            usage_amount,
            unit,
            unblended,
            net_null,
            env_tag,
        }
    }
}

// ---------------------------------------------------------------------------
// Bedrock model invocation logs of the same calls

/// The Bedrock model id of each catalogue model, in [`CATALOGUE`]'s order (a cross-Region call
/// names the geographic profile `us.<id>`, a global one `global.<id>`).
const MODEL_IDS: [&str; 7] = [
    "anthropic.claude-sonnet-4-6",
    "anthropic.claude-opus-4-6",
    "anthropic.claude-haiku-4-5-20251001-v1:0",
    "amazon.nova-lite-v1:0",
    "amazon.nova-pro-v1:0",
    "meta.llama3-3-70b-instruct-v1:0",
    "amazon.titan-embed-text-v2:0",
];

/// The record field of each logged kind (input, output, cache read, cache write 5 min).
const KIND_FIELDS: [&str; 4] = [
    "inputTokenCount",
    "outputTokenCount",
    "cacheReadInputTokenCount",
    "cacheWriteInputTokenCount",
];

const OPERATIONS: [&str; 4] = [
    "Converse",
    "ConverseStream",
    "InvokeModel",
    "InvokeModelWithResponseStream",
];

/// Writes the invocation log records of the lines, one gzipped JSON-lines object per account,
/// Region and hour, where Bedrock puts them:
/// `AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/`.
struct LogWriter {
    root: std::path::PathBuf,
    seed: u64,
    open: BTreeMap<(usize, usize, u32), flate2::write::GzEncoder<std::io::BufWriter<fs::File>>>,
    day: Option<NaiveDate>,
    truth: LogTruth,
}

impl LogWriter {
    fn new(out_dir: &Path, seed: u64) -> LogWriter {
        LogWriter {
            root: out_dir.join("invocation-logs"),
            seed,
            open: BTreeMap::new(),
            day: None,
            truth: LogTruth::default(),
        }
    }

    /// Log the calls of one token line of `day` (billed: the line is in the CUR export too).
    fn write(
        &mut self,
        world: &World,
        line: &UsageLine,
        day: NaiveDate,
        index: u64,
        billed: bool,
    ) -> Result<(), CurGenError> {
        // Standard tier only (batch jobs and other tiers are not what these records price), and
        // the kinds a record counts.
        if line.tier != 0 || line.kind > 3 {
            return Ok(());
        }
        self.day = Some(day);
        let c = &world.callers[line.caller];
        let m = &CATALOGUE[line.model];
        let tokens = (line.usage_amount * line.unit.tokens()).round() as u64;
        let model_id = match line.scope {
            0 => MODEL_IDS[line.model].to_string(),
            1 => format!("us.{}", MODEL_IDS[line.model]),
            _ => format!("global.{}", MODEL_IDS[line.model]),
        };
        let region = REGIONS[line.region].1;
        let account = ACCOUNTS[c.account];
        let mut rng = Rng::new(self.seed ^ 0x10C5 ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let calls = 1 + rng.below(6) as u64;
        let mut left = tokens;
        for i in 0..calls {
            let n = if i + 1 == calls {
                left
            } else {
                let share = tokens / calls;
                share.min(left)
            };
            left -= n;
            let (hour, minute, second) = (rng.below(24) as u32, rng.below(60), rng.below(60));
            let request_id = format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                rng.next_u64() as u32,
                rng.next_u64() as u16,
                rng.next_u64() & 0xfff,
                rng.next_u64() & 0xfff,
                rng.next_u64() & 0xffff_ffff_ffff
            );
            let mut counts = [0u64; 4];
            counts[line.kind] = n;
            let record = format!(
                concat!(
                    r#"{{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","#,
                    r#""timestamp":"{day}T{hour:02}:{minute:02}:{second:02}Z","accountId":"{account}","#,
                    r#""identity":{{"arn":"{arn}"}},"region":"{region}","requestId":"{request_id}","#,
                    r#""operation":"{operation}","modelId":"{model_id}","#,
                    r#""input":{{"inputContentType":"application/json","{f0}":{c0},"{f2}":{c2},"{f3}":{c3}}},"#,
                    r#""output":{{"outputContentType":"application/json","{f1}":{c1}}}}}"#,
                    "\n"
                ),
                day = day,
                hour = hour,
                minute = minute,
                second = second,
                account = account,
                arn = c.arn,
                region = region,
                request_id = request_id,
                operation = OPERATIONS[rng.below(OPERATIONS.len())],
                model_id = model_id,
                f0 = KIND_FIELDS[0],
                f1 = KIND_FIELDS[1],
                f2 = KIND_FIELDS[2],
                f3 = KIND_FIELDS[3],
                c0 = counts[0],
                c1 = counts[1],
                c2 = counts[2],
                c3 = counts[3],
            );
            let key = (c.account, line.region, hour);
            if !self.open.contains_key(&key) {
                let dir = self.root.join(format!(
                    "AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{}/{hour:02}",
                    day.format("%Y/%m/%d")
                ));
                fs::create_dir_all(&dir).map_err(|source| CurGenError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let path = dir.join(format!(
                    "{account}_BedrockModelInvocationLogs_{region}_{}T{hour:02}00Z_{:016x}.json.gz",
                    day.format("%Y%m%d"),
                    mix(self.seed ^ u64::from(hour) ^ (day.num_days_from_ce() as u64) << 8)
                ));
                let file = fs::File::create(&path).map_err(|source| CurGenError::Io {
                    path: path.clone(),
                    source,
                })?;
                self.truth.files.push(
                    path.strip_prefix(&self.root)
                        .unwrap_or(&path)
                        .display()
                        .to_string(),
                );
                self.open.insert(
                    key,
                    flate2::write::GzEncoder::new(
                        std::io::BufWriter::new(file),
                        flate2::Compression::fast(),
                    ),
                );
            }
            let w = self.open.get_mut(&key).expect("opened above");
            std::io::Write::write_all(w, record.as_bytes()).map_err(|source| CurGenError::Io {
                path: self.root.clone(),
                source,
            })?;
            self.truth.records += 1;
        }
        let t = &mut self.truth;
        if billed {
            *t.billed_by_principal_model
                .entry(format!("{}|{}", c.arn, m.name))
                .or_default() += line.unblended;
            t.billed_total += line.unblended;
        } else {
            *t.unbilled_by_principal.entry(c.arn.clone()).or_default() += line.unblended;
            *t.unbilled_by_day.entry(day.to_string()).or_default() += line.unblended;
            t.unbilled_total += line.unblended;
        }
        Ok(())
    }

    /// Finish the day's objects.
    fn close_day(&mut self) -> Result<(), CurGenError> {
        for (_, w) in std::mem::take(&mut self.open) {
            let inner = w.finish().map_err(|source| CurGenError::Io {
                path: self.root.clone(),
                source,
            })?;
            inner.into_inner().map_err(|e| CurGenError::Io {
                path: self.root.clone(),
                source: e.into_error(),
            })?;
        }
        self.day = None;
        Ok(())
    }

    /// Close the last objects, write the Price List products, give the truth.
    fn finish(mut self, world: &World) -> Result<LogTruth, CurGenError> {
        self.close_day()?;
        // Beside the logs, not among them (a reader of the folder takes every .json for records).
        let path = self
            .root
            .parent()
            .unwrap_or(&self.root)
            .join("pricelist.json");
        let json = price_products(world);
        fs::write(&path, json).map_err(|source| CurGenError::Io {
            path: path.clone(),
            source,
        })?;
        self.truth.price_list = path.display().to_string();
        Ok(self.truth)
    }
}

/// The catalogue's standard-tier prices as Price List products (AWS's `aws_v1` GetProducts
/// documents: `product.attributes` and `terms.OnDemand...pricePerUnit`), keyed by offer, as the
/// emulator's `POST /_emulator/pricing/products` takes them: the prices the CUR lines were
/// priced with, in the shape the server reads prices from. First-party models per 1K tokens,
/// Marketplace models per 1M tokens.
fn price_products(world: &World) -> String {
    let mut offers: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
    for (region, (_, region_code)) in REGIONS.iter().enumerate() {
        for (mi, m) in CATALOGUE.iter().enumerate() {
            for (kind, kind_name) in KIND_NAMES.iter().enumerate() {
                if m.prices[kind] <= 0.0 {
                    continue;
                }
                for (scope, (scope_name, _, _)) in SCOPES.iter().enumerate() {
                    let usage_type =
                        &world.usage_types[World::usage_type_index(region, mi, kind, scope, 0)];
                    let per_1k = m.prices[kind] * if scope == 2 { m.global_factor } else { 1.0 };
                    let (offer, unit, price) = match m.stem {
                        Some(_) => ("AmazonBedrock", "1K tokens", round10(per_1k)),
                        None => (
                            "AmazonBedrockFoundationModels",
                            "1M tokens",
                            round10(per_1k * 1000.0),
                        ),
                    };
                    let sku = format!(
                        "{:016X}",
                        mix(usage_type
                            .bytes()
                            .fold(mi as u64, |h, b| h.wrapping_mul(31) ^ u64::from(b)))
                    );
                    offers.entry(offer).or_default().push(serde_json::json!({
                        "product": {
                            "productFamily": if m.stem.is_some() { "Amazon Bedrock" } else { "Machine Learning" },
                            "sku": sku,
                            "attributes": {
                                "regionCode": region_code,
                                "servicecode": offer,
                                "usagetype": usage_type,
                                "model": m.name,
                                "provider": m.provider,
                                "servicename": m.service,
                                "inferenceType": kind_name,
                            }
                        },
                        "serviceCode": offer,
                        "terms": {"OnDemand": {format!("{sku}.JRTCKXETXF"): {
                            "priceDimensions": {format!("{sku}.JRTCKXETXF.6YS6EN2CT7"): {
                                "unit": unit,
                                "pricePerUnit": {"USD": format!("{price:.10}")},
                                "description": format!("{} {kind_name} {scope_name}", m.name),
                            }},
                            "sku": sku,
                            "offerTermCode": "JRTCKXETXF",
                        }}},
                        "version": "20261101000000",
                    }));
                }
            }
        }
    }
    serde_json::to_string_pretty(&offers).expect("plain JSON")
}

// ---------------------------------------------------------------------------
// Truth bookkeeping

/// A sum and how many lines went into it (keys without lines stay out of the truth).
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    sum: f64,
    lines: u64,
}

impl Acc {
    fn add(&mut self, x: f64) {
        self.sum += x;
        self.lines += 1;
    }
}

/// Model slots in the dense accumulators: the catalogue, then "no model".
const NO_MODEL: usize = CATALOGUE.len();
/// Kind slots: the five token kinds, then `other`.
const OTHER_KIND: usize = 5;
/// Tier slots: [`TIERS`], then `provisioned`.
const PROVISIONED_TIER: usize = TIERS.len();

/// Dense accumulators indexed by caller / model / kind / tier / scope / service, turned into
/// the string-keyed [`Truth`] maps once at the end (no per-row string work).
struct Tally {
    total_unblended: f64,
    total_net_unblended: f64,
    usage_rows: u64,
    no_principal_rows: u64,
    no_principal: f64,
    by_caller: Vec<Acc>,
    by_model: Vec<Acc>,
    by_caller_model: Vec<Acc>,
    tokens_by_model: Vec<Acc>,
    by_kind: [Acc; 6],
    by_tier: [Acc; 5],
    by_scope: [Acc; 3],
    by_service: Vec<Acc>,
    no_principal_by_model: Vec<Acc>,
    by_month: BTreeMap<String, f64>,
    /// Usage unblended per account (index into ACCOUNTS).
    usage_by_account: [f64; 2],
    adjustment_lines: Vec<AdjustmentTruth>,
}

impl Tally {
    fn new(world: &World) -> Tally {
        let n_models = CATALOGUE.len() + 1;
        Tally {
            total_unblended: 0.0,
            total_net_unblended: 0.0,
            usage_rows: 0,
            no_principal_rows: 0,
            no_principal: 0.0,
            by_caller: vec![Acc::default(); world.callers.len()],
            by_model: vec![Acc::default(); n_models],
            by_caller_model: vec![Acc::default(); world.callers.len() * n_models],
            tokens_by_model: vec![Acc::default(); n_models],
            by_kind: [Acc::default(); 6],
            by_tier: [Acc::default(); 5],
            by_scope: [Acc::default(); 3],
            by_service: vec![Acc::default(); world.services.len()],
            no_principal_by_model: vec![Acc::default(); n_models],
            by_month: BTreeMap::new(),
            usage_by_account: [0.0; 2],
            adjustment_lines: Vec::new(),
        }
    }

    fn add_usage(&mut self, world: &World, line: &UsageLine, net: Option<f64>) {
        self.total_unblended += line.unblended;
        self.total_net_unblended += net.unwrap_or(line.unblended);
        self.usage_rows += 1;
        self.by_caller[line.caller].add(line.unblended);
        self.by_model[line.model].add(line.unblended);
        self.by_caller_model[line.caller * (CATALOGUE.len() + 1) + line.model].add(line.unblended);
        self.tokens_by_model[line.model].add(line.usage_amount * line.unit.tokens());
        self.by_kind[line.kind].add(line.unblended);
        self.by_tier[line.tier].add(line.unblended);
        self.by_scope[line.scope].add(line.unblended);
        self.by_service[world.service_index(CATALOGUE[line.model].service)].add(line.unblended);
    }

    /// A line without a principal; `model` is the model its line names, if any.
    fn add_unattributed(
        &mut self,
        world: &World,
        u: &Unattributed,
        model: Option<usize>,
        cost: f64,
        net: f64,
    ) {
        self.total_unblended += cost;
        self.total_net_unblended += net;
        self.no_principal_rows += 1;
        self.no_principal += cost;
        self.by_model[model.unwrap_or(NO_MODEL)].add(cost);
        self.no_principal_by_model[model.unwrap_or(NO_MODEL)].add(cost);
        self.by_kind[OTHER_KIND].add(cost);
        let tier = if u.tier == "provisioned" {
            PROVISIONED_TIER
        } else {
            0
        };
        self.by_tier[tier].add(cost);
        self.by_scope[0].add(cost);
        self.by_service[world.service_index(u.service)].add(cost);
    }

    fn into_truth(self, world: &World, spec: &GenSpec, written: Written) -> Truth {
        let used = |a: &Acc| a.lines > 0;
        let n_models = CATALOGUE.len() + 1;
        let model_name = |i: usize| CATALOGUE.get(i).map_or("", |m| m.name).to_string();
        let mut by_principal = BTreeMap::new();
        let mut by_role = BTreeMap::new();
        let mut by_team = BTreeMap::new();
        let mut by_principal_model = BTreeMap::new();
        for (i, (c, acc)) in world.callers.iter().zip(&self.by_caller).enumerate() {
            if !used(acc) {
                continue;
            }
            let team = c.team.map_or("", |t| TEAMS[t]).to_string();
            *by_team.entry(team).or_insert(0.0) += acc.sum;
            if spec.include_principal_column {
                by_principal.insert(c.arn.clone(), acc.sum);
                *by_role.entry(c.role.clone()).or_insert(0.0) += acc.sum;
                for (k, cm) in self.by_caller_model[i * n_models..(i + 1) * n_models]
                    .iter()
                    .enumerate()
                {
                    if used(cm) {
                        by_principal_model.insert(format!("{}|{}", c.arn, model_name(k)), cm.sum);
                    }
                }
            }
        }
        let keyed = |accs: &[Acc], name: &dyn Fn(usize) -> String| -> BTreeMap<String, f64> {
            accs.iter()
                .enumerate()
                .filter(|(_, a)| used(a))
                .map(|(k, a)| (name(k), a.sum))
                .collect()
        };
        let kind_name = |k: usize| KIND_NAMES.get(k).copied().unwrap_or("other").to_string();
        let tier_name = |k: usize| TIERS.get(k).map_or("provisioned", |t| t.0).to_string();
        let mut adjustments: BTreeMap<String, f64> = BTreeMap::new();
        let mut adjusted = self.total_unblended;
        let mut net_adjusted = self.total_net_unblended;
        for a in &self.adjustment_lines {
            *adjustments.entry(a.line_item_type.clone()).or_insert(0.0) += a.unblended;
            adjusted += a.unblended;
            if !IN_NET_TYPES.contains(&a.line_item_type.as_str()) {
                net_adjusted += a.unblended;
            }
        }
        Truth {
            total_unblended: self.total_unblended,
            total_net_unblended: self.total_net_unblended,
            total_after_adjustments: adjusted,
            total_net_after_adjustments: net_adjusted,
            untagged: by_team.get("").copied().unwrap_or(0.0),
            by_principal,
            by_role,
            by_model: keyed(&self.by_model, &model_name),
            by_token_kind: keyed(&self.by_kind, &kind_name),
            by_tier: keyed(&self.by_tier, &tier_name),
            by_scope: keyed(&self.by_scope, &|k| SCOPES[k].0.to_string()),
            by_service: keyed(&self.by_service, &|k| world.services[k].to_string()),
            by_team,
            no_principal: self.no_principal,
            no_principal_by_model: keyed(&self.no_principal_by_model, &model_name),
            by_principal_model,
            tokens_by_model: keyed(&self.tokens_by_model, &model_name)
                .into_iter()
                .filter(|(k, _)| !k.is_empty())
                .collect(),
            adjustments,
            adjustment_lines: self.adjustment_lines,
            by_month: self.by_month,
            by_currency: {
                let mut m = BTreeMap::new();
                for (i, sum) in self.usage_by_account.iter().enumerate() {
                    if *sum != 0.0 {
                        *m.entry(spec.currency(ACCOUNTS[i]).to_string())
                            .or_insert(0.0) += sum;
                    }
                }
                m
            },
            usage_rows: self.usage_rows,
            no_principal_rows: self.no_principal_rows,
            rows_written: written.rows,
            files: written.files,
            stale_files: written.stale_files,
            manifests: written.manifests,
            logs: None,
        }
    }
}

/// What went to disk.
struct Written {
    rows: u64,
    files: Vec<String>,
    stale_files: Vec<String>,
    manifests: Vec<String>,
}

// ---------------------------------------------------------------------------
// Months, deliveries and adjustments

/// The month being generated: its covered days and spend per account, which size the month's
/// adjustment lines.
struct MonthState {
    month: NaiveDate,
    first_day: NaiveDate,
    last_day: NaiveDate,
    /// Usage unblended per account.
    spend: [f64; 2],
    /// Σ (unblended − net) per account: what the account's discount took off the usage lines.
    discounted: [f64; 2],
    /// What the bundled discount took off, per account.
    bundled: [f64; 2],
    total: f64,
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn next_month(month: NaiveDate) -> NaiveDate {
    month_of(month + Duration::days(32))
}

fn prev_month(month: NaiveDate) -> NaiveDate {
    month_of(month - Duration::days(1))
}

/// The export's create-new refreshes of a month: the current one (after the last covered day)
/// and, when the month has days before the 15th, an earlier partial one (on the 15th).
struct Refreshes {
    seed: u64,
    end: NaiveDate,
}

impl Refreshes {
    /// The day a partial refresh was taken: lines of earlier days are in it.
    fn cut(month: NaiveDate) -> NaiveDate {
        month + Duration::days(14)
    }

    fn delivery(&self, month: NaiveDate, at: NaiveDate) -> Delivery {
        let at = at.and_hms_opt(6, 0, 0).expect("06:00 exists").and_utc();
        let h = mix(self.seed ^ at.timestamp() as u64);
        let g = mix(h);
        let _ = month;
        Delivery {
            folder: format!(
                "{}-{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                at.format("%Y%m%dT%H%M%SZ"),
                h >> 32,
                (h >> 16) & 0xffff,
                h & 0xfff,
                0x8000 | (g >> 48) & 0x3fff,
                g & 0xffff_ffff_ffff
            ),
            at_ms: at.timestamp_millis(),
        }
    }

    fn current(&self, month: NaiveDate) -> Delivery {
        let last = (next_month(month) - Duration::days(1)).min(self.end - Duration::days(1));
        self.delivery(month, last + Duration::days(1))
    }

    fn partial(&self, month: NaiveDate) -> Delivery {
        self.delivery(month, Refreshes::cut(month))
    }
}

/// Finish a month after its Usage lines: record its spend and write its adjustments, per
/// account with callers: a promotional `Credit` without a principal (2% of the account's usage,
/// at least $1); a `Refund` naming the account's heaviest caller (0.5%, at least $0.50) for the
/// previous month's usage (the month itself when it is the first generated); `Tax` (6%); and the
/// account's discount line, exactly the Σ (unblended − net) of its usage lines.
fn close_month(
    spec: &GenSpec,
    world: &World,
    state: &MonthState,
    first_month: NaiveDate,
    writer: &mut PartitionedWriter,
    tally: &mut Tally,
) -> Result<(), CurGenError> {
    tally
        .by_month
        .insert(state.month.format("%Y-%m").to_string(), state.total);
    let refund_month = if state.month > first_month {
        prev_month(state.month)
    } else {
        state.month
    };
    for (account, top) in world.top_caller.iter().enumerate() {
        let Some(top) = *top else { continue };
        let caller = &world.callers[top];
        let spend = state.spend[account];
        let span = (state.first_day, state.last_day + Duration::days(1));
        let model0 = World::usage_type_index(0, 0, 0, 0, 0);
        // (line item type, caller, amount, usage span, usage type index, refers-to month)
        type AdjustmentLine<'a> = (
            &'a str,
            Option<&'a Caller>,
            f64,
            (NaiveDate, NaiveDate),
            usize,
            Option<String>,
        );
        let lines: [AdjustmentLine; 5] = [
            (
                "Credit",
                None,
                -cents((0.02 * spend).max(1.0)),
                span,
                model0,
                None,
            ),
            (
                "Refund",
                Some(caller),
                -cents((0.005 * spend).max(0.5)),
                (refund_month, next_month(refund_month)),
                World::usage_type_index(caller.home_region, caller.models[0], 0, 0, 0),
                (refund_month < state.month).then(|| refund_month.format("%Y-%m").to_string()),
            ),
            ("Tax", None, cents(TAX_RATE * spend), span, usize::MAX, None),
            (
                DISCOUNTS[account].0,
                None,
                -cents(state.discounted[account]),
                span,
                model0,
                None,
            ),
            (
                BUNDLED_DISCOUNT,
                None,
                -cents(state.bundled[account]),
                span,
                model0,
                None,
            ),
        ];
        for (line_item_type, who, amount, (start, end), ut, refers_to) in lines {
            if amount == 0.0 {
                continue;
            }
            let model = &CATALOGUE[if ut == usize::MAX {
                3
            } else {
                (ut / (5 * 3 * 4)) % CATALOGUE.len()
            }];
            let (region_prefix, region) = REGIONS[who.map_or(0, |c| c.home_region)];
            let _ = region_prefix;
            let usage_type = if ut == usize::MAX {
                ""
            } else {
                world.usage_types[ut].as_str()
            };
            writer.push(&Row {
                month: state.month,
                usage_start: start,
                usage_end: end,
                principal: who.map_or("", |c| c.arn.as_str()),
                line_item_type,
                product_code: if ut == usize::MAX {
                    "AmazonBedrock"
                } else {
                    model.product_code
                },
                usage_type,
                operation: if ut == usize::MAX {
                    ""
                } else {
                    "InvokeModelInference"
                },
                account: ACCOUNTS[account],
                usage_amount: 0.0,
                pricing_unit: "",
                unblended: amount,
                net_unblended: Some(amount),
                currency: spec.currency(ACCOUNTS[account]),
                region,
                product: Product {
                    service_name: if ut == usize::MAX {
                        "Amazon Bedrock"
                    } else {
                        model.service
                    },
                    model: None,
                    provider: model.provider,
                    region,
                },
                tags: who.map_or(&[][..], |c| &c.tags[..]),
                env_tag: None,
            })?;
            tally.adjustment_lines.push(AdjustmentTruth {
                month: state.month.format("%Y-%m").to_string(),
                line_item_type: line_item_type.to_string(),
                account: ACCOUNTS[account].to_string(),
                unblended: amount,
                refers_to,
            });
        }
    }
    Ok(())
}

fn validate(spec: &GenSpec) -> Result<(), CurGenError> {
    let problem = if spec.days == 0 {
        "days must be at least 1"
    } else if spec.principals == 0 {
        "principals must be at least 1"
    } else if spec.rows_per_file == 0 {
        "rows_per_file must be at least 1"
    } else if spec.export_name.is_empty()
        || !spec
            .export_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        "export_name must be letters, digits, - and _"
    } else if spec
        .start
        .checked_add_signed(Duration::days(i64::from(spec.days) + 40))
        .is_none()
    {
        "start + days is out of the calendar range"
    } else if spec
        .second_currency
        .as_ref()
        .is_some_and(|c| c.len() != 3 || !c.chars().all(|x| x.is_ascii_uppercase()))
    {
        "second_currency must be an ISO 4217 code such as EUR"
    } else if spec.logs_only_days >= spec.days {
        "logs_only_days must leave at least one billed day"
    } else {
        return Ok(());
    };
    Err(CurGenError::InvalidSpec(problem.to_string()))
}

/// Weekends carry 60% of a weekday's volume, as in most organisations.
fn day_weight(day: NaiveDate) -> u128 {
    match day.weekday() {
        Weekday::Sat | Weekday::Sun => 6,
        _ => 10,
    }
}

/// A month's lines summed per everything but the day, for a MONTHLY export.
#[derive(Default)]
struct MonthlyLines {
    lines: BTreeMap<String, OwnedRow>,
}

/// A [`Row`] that owns its strings.
struct OwnedRow {
    principal: String,
    product_code: String,
    usage_type: String,
    operation: String,
    account: String,
    usage_amount: f64,
    pricing_unit: String,
    unblended: f64,
    net_unblended: Option<f64>,
    region: String,
    service_name: String,
    model: Option<String>,
    provider: String,
    tags: Vec<(String, String)>,
    env_tag: Option<String>,
}

impl MonthlyLines {
    fn add(&mut self, r: &Row) {
        let key = format!(
            "{}|{}|{}|{}|{}|{:?}|{:?}|{:?}|{}",
            r.principal,
            r.account,
            r.usage_type,
            r.pricing_unit,
            r.region,
            r.product.model,
            r.env_tag,
            r.net_unblended.is_some(),
            r.product.service_name
        );
        let e = self.lines.entry(key).or_insert_with(|| OwnedRow {
            principal: r.principal.to_string(),
            product_code: r.product_code.to_string(),
            usage_type: r.usage_type.to_string(),
            operation: r.operation.to_string(),
            account: r.account.to_string(),
            usage_amount: 0.0,
            pricing_unit: r.pricing_unit.to_string(),
            unblended: 0.0,
            net_unblended: r.net_unblended.map(|_| 0.0),
            region: r.region.to_string(),
            service_name: r.product.service_name.to_string(),
            model: r.product.model.map(str::to_string),
            provider: r.product.provider.to_string(),
            tags: r.tags.to_vec(),
            env_tag: r.env_tag.map(str::to_string),
        });
        e.usage_amount += r.usage_amount;
        e.unblended += r.unblended;
        if let (Some(sum), Some(n)) = (e.net_unblended.as_mut(), r.net_unblended) {
            *sum += n;
        }
    }

    /// Write the month's summed lines, dated `start` to `end`.
    fn flush(
        &mut self,
        spec: &GenSpec,
        writer: &mut PartitionedWriter,
        month: NaiveDate,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<(), CurGenError> {
        for (_, o) in std::mem::take(&mut self.lines) {
            writer.push(&Row {
                month,
                usage_start: start,
                usage_end: end,
                principal: &o.principal,
                line_item_type: "Usage",
                product_code: &o.product_code,
                usage_type: &o.usage_type,
                operation: &o.operation,
                account: &o.account,
                usage_amount: o.usage_amount,
                pricing_unit: &o.pricing_unit,
                unblended: o.unblended,
                net_unblended: o.net_unblended,
                currency: spec.currency(&o.account),
                region: &o.region,
                product: Product {
                    service_name: &o.service_name,
                    model: o.model.as_deref(),
                    provider: &o.provider,
                    region: &o.region,
                },
                tags: &o.tags,
                env_tag: o.env_tag.as_deref(),
            })?;
        }
        Ok(())
    }
}

/// Write `metadata/BILLING_PERIOD=M/<export>-Manifest.json` for each month: the current
/// delivery's files as `s3://` URIs (Data Exports user guide, "Data export manifest").
fn write_manifests(
    spec: &GenSpec,
    out_dir: &Path,
    months: &[NaiveDate],
    files: &[String],
    refreshes: &Refreshes,
) -> Result<Vec<String>, CurGenError> {
    let export_arn = format!(
        "arn:aws:bcm-data-exports:us-east-1:{DEMO_ACCOUNT}:export/{}-{:08x}",
        spec.export_name,
        mix(spec.seed) >> 32
    );
    let columns: Vec<serde_json::Value> = schema(spec.include_principal_column)
        .fields()
        .iter()
        .map(|f| {
            let ty = match f.data_type() {
                DataType::Utf8 => "string",
                DataType::Float64 => "double",
                DataType::Timestamp(..) => "timestamp",
                DataType::Map(..) => "map<string,string>",
                _ => "string",
            };
            serde_json::json!({"name": f.name(), "type": ty})
        })
        .collect();
    let mut written = Vec::new();
    for &month in months {
        let period = month.format("%Y-%m").to_string();
        let prefix = format!("data/BILLING_PERIOD={period}/");
        let data_files: Vec<String> = files
            .iter()
            .filter(|f| f.starts_with(&prefix))
            .map(|f| format!("{S3_BASE}/{}/{f}", spec.export_name))
            .collect();
        let delivery = refreshes.current(month);
        let execution = match spec.delivery {
            DeliveryMode::CreateNew => delivery.folder.clone(),
            DeliveryMode::Overwrite => format!("{:016x}", mix(spec.seed ^ delivery.at_ms as u64)),
        };
        let doc = serde_json::json!({
            "version": "1.0",
            "exportArn": export_arn,
            "exportName": spec.export_name,
            "executionId": execution,
            "billingPeriod": {
                "start": format!("{}T00:00:00.000Z", month),
                "end": format!("{}T00:00:00.000Z", next_month(month)),
            },
            "deliveryPreference": match spec.delivery {
                DeliveryMode::CreateNew => "CREATE_NEW_REPORT",
                DeliveryMode::Overwrite => "OVERWRITE_REPORT",
            },
            "timeGranularity": if spec.monthly { "MONTHLY" } else { "DAILY" },
            "format": "PARQUET",
            "compression": "PARQUET",
            "columns": columns,
            "dataFiles": data_files,
            "additionalOutputFiles": [],
        });
        let rel = format!(
            "metadata/BILLING_PERIOD={period}/{}-Manifest.json",
            spec.export_name
        );
        let path = out_dir.join(&rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|source| CurGenError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let text = serde_json::to_string_pretty(&doc).map_err(|source| CurGenError::Json {
            path: path.clone(),
            source,
        })?;
        fs::write(&path, text).map_err(|source| CurGenError::Io { path, source })?;
        written.push(rel);
    }
    Ok(written)
}

/// Generate CUR 2.0 Parquet for `spec` under `out_dir` (see the module docs for the
/// layout) and return the truth, also written to `out_dir/truth.json`.
///
/// Exactly `spec.rows` token lines are spread over the days by weekday weight; each day then
/// gets its lines without a principal and each month its adjustment lines. The same spec always
/// gives byte-identical files and truth. Fails if `out_dir/data` already has files.
pub fn generate(spec: &GenSpec, out_dir: &Path) -> Result<Truth, CurGenError> {
    validate(spec)?;
    prepare_out_dir(out_dir)?;
    let world = World::new(spec);
    let end = spec.start + Duration::days(i64::from(spec.days));
    let refreshes = Refreshes {
        seed: spec.seed,
        end,
    };
    let create_new = spec.delivery == DeliveryMode::CreateNew;
    let mut writer = PartitionedWriter::new(
        out_dir,
        spec.include_principal_column,
        spec.rows_per_file,
        &spec.export_name,
        create_new.then(|| {
            Box::new(|m: NaiveDate| refreshes.current(m)) as Box<dyn Fn(NaiveDate) -> Delivery>
        }),
    );
    let mut stale = create_new.then(|| {
        PartitionedWriter::new(
            out_dir,
            spec.include_principal_column,
            spec.rows_per_file,
            &spec.export_name,
            Some(Box::new(|m: NaiveDate| refreshes.partial(m))),
        )
    });
    let mut tally = Tally::new(&world);

    let days: Vec<NaiveDate> = (0..spec.days)
        .map(|d| spec.start + Duration::days(i64::from(d)))
        .collect();
    let backfill = spec.start + Duration::days(i64::from(spec.backfill_days));
    let total_weight: u128 = days.iter().map(|&d| day_weight(d)).sum();
    let mut weight_so_far = 0u128;
    let mut index = 0u64;
    let mut state: Option<MonthState> = None;
    let mut months = Vec::new();
    let first_month = month_of(spec.start);
    let mut monthly = MonthlyLines::default();

    let mut logs = spec
        .invocation_logs
        .then(|| LogWriter::new(out_dir, spec.seed));
    let billed_end = end - Duration::days(i64::from(spec.logs_only_days));

    for &day in &days {
        if day >= billed_end {
            // Logged, not billed yet: the bill lags.
            weight_so_far += day_weight(day);
            let rows_through = (u128::from(spec.rows) * weight_so_far / total_weight) as u64;
            while index < rows_through {
                let line = world.usage_line(spec.seed, index, false);
                if let Some(l) = logs.as_mut() {
                    l.write(&world, &line, day, index, false)?;
                }
                index += 1;
            }
            if let Some(l) = logs.as_mut() {
                l.close_day()?;
            }
            continue;
        }
        let month = month_of(day);
        if state.as_ref().is_some_and(|s| s.month != month) {
            let done = state.take().expect("checked above");
            monthly.flush(
                spec,
                &mut writer,
                done.month,
                done.month,
                done.last_day + Duration::days(1),
            )?;
            close_month(spec, &world, &done, first_month, &mut writer, &mut tally)?;
        }
        let st = state.get_or_insert_with(|| {
            months.push(month);
            MonthState {
                month,
                first_day: day,
                last_day: day,
                spend: [0.0; 2],
                discounted: [0.0; 2],
                bundled: [0.0; 2],
                total: 0.0,
            }
        });
        st.last_day = day;
        let in_partial = day < Refreshes::cut(month);
        let before_backfill = day < backfill;

        weight_so_far += day_weight(day);
        // Cumulative integer split: the per-day counts add up to exactly spec.rows.
        let rows_through = (u128::from(spec.rows) * weight_so_far / total_weight) as u64;
        let mut day_spend = [0.0f64; 2];
        while index < rows_through {
            let line = world.usage_line(spec.seed, index, before_backfill);
            let c = &world.callers[line.caller];
            let m = &CATALOGUE[line.model];
            let net =
                (!line.net_null).then(|| round10(line.unblended * (1.0 - DISCOUNTS[c.account].1)));
            let region = REGIONS[line.region].1;
            let row = Row {
                month,
                usage_start: day,
                usage_end: day + Duration::days(1),
                principal: &c.arn,
                line_item_type: "Usage",
                product_code: m.product_code,
                usage_type: &world.usage_types[line.usage_type],
                operation: "InvokeModelInference",
                account: ACCOUNTS[c.account],
                usage_amount: line.usage_amount,
                pricing_unit: line.unit.as_str(),
                unblended: line.unblended,
                net_unblended: net,
                currency: spec.currency(ACCOUNTS[c.account]),
                region,
                product: Product {
                    service_name: m.service,
                    model: line.has_model.then_some(m.name),
                    provider: m.provider,
                    region,
                },
                tags: &c.tags,
                env_tag: line.env_tag,
            };
            if spec.monthly {
                monthly.add(&row);
            } else {
                writer.push(&row)?;
            }
            if in_partial && let Some(s) = stale.as_mut() {
                s.push(&row)?;
            }
            if let Some(l) = logs.as_mut() {
                l.write(&world, &line, day, index, true)?;
            }
            tally.add_usage(&world, &line, net);
            tally.usage_by_account[c.account] += line.unblended;
            st.spend[c.account] += line.unblended;
            st.discounted[c.account] += net.map_or(0.0, |n| line.unblended - n);
            st.total += line.unblended;
            day_spend[c.account] += line.unblended;
            index += 1;
        }
        if let Some(l) = logs.as_mut() {
            l.close_day()?;
        }
        // The day's lines without a principal, per account that used Bedrock that day.
        for (account, spent) in day_spend.iter().enumerate() {
            if *spent <= 0.0 {
                continue;
            }
            for u in &UNATTRIBUTED {
                if u.only_account.is_some_and(|a| a != account) {
                    continue;
                }
                let amount = round10(spent * u.share / u.price);
                let cost = round10(amount * u.price);
                let net_of_discount = round10(cost * (1.0 - DISCOUNTS[account].1));
                let net = round10(net_of_discount - round10(cost * u.bundled));
                let (prefix, region) = REGIONS[0];
                let usage_type = format!("{prefix}-{}", u.usage_type);
                let model = u.model.filter(|_| !before_backfill);
                let row = Row {
                    month,
                    usage_start: day,
                    usage_end: day + Duration::days(1),
                    principal: "",
                    line_item_type: "Usage",
                    product_code: u.product_code,
                    usage_type: &usage_type,
                    operation: u.operation,
                    account: ACCOUNTS[account],
                    usage_amount: amount,
                    pricing_unit: u.unit,
                    unblended: cost,
                    net_unblended: Some(net),
                    currency: spec.currency(ACCOUNTS[account]),
                    region,
                    product: Product {
                        service_name: u.service,
                        model: model.map(|m| CATALOGUE[m].name),
                        provider: "Amazon",
                        region,
                    },
                    tags: &[],
                    env_tag: None,
                };
                if spec.monthly {
                    monthly.add(&row);
                } else {
                    writer.push(&row)?;
                }
                if in_partial && let Some(s) = stale.as_mut() {
                    s.push(&row)?;
                }
                tally.add_unattributed(&world, u, model, cost, net);
                tally.usage_by_account[account] += cost;
                st.spend[account] += cost;
                st.discounted[account] += cost - net_of_discount;
                st.bundled[account] += net_of_discount - net;
                st.total += cost;
            }
        }
    }
    if let Some(done) = state {
        monthly.flush(
            spec,
            &mut writer,
            done.month,
            done.month,
            done.last_day + Duration::days(1),
        )?;
        close_month(spec, &world, &done, first_month, &mut writer, &mut tally)?;
    }

    let (files, rows) = writer.finish()?;
    let stale_files = match stale {
        Some(s) => s.finish()?.0,
        None => Vec::new(),
    };
    let manifests = if spec.manifest {
        write_manifests(spec, out_dir, &months, &files, &refreshes)?
    } else {
        Vec::new()
    };
    let truth = tally.into_truth(
        &world,
        spec,
        Written {
            rows,
            files,
            stale_files,
            manifests,
        },
    );
    let mut truth = truth;
    if let Some(l) = logs {
        truth.logs = Some(l.finish(&world)?);
    }
    let path = out_dir.join("truth.json");
    let json = serde_json::to_string_pretty(&truth).map_err(|source| CurGenError::Json {
        path: path.clone(),
        source,
    })?;
    fs::write(&path, json).map_err(|source| CurGenError::Io { path, source })?;
    Ok(truth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bedrock_cost_mcp::cur_file::{DEMO_EXPORT, MAX_BATCH_ROWS, day_ms, write_line_items};
    use datafusion::arrow::array::{Array, AsArray, MapArray, StringArray};
    use datafusion::arrow::datatypes::{Float64Type, TimestampMillisecondType};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use datafusion::parquet::basic::Compression;
    use std::fs::File;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// ~20k rows over three billing months, several files per month, create-new deliveries,
    /// the first 10 days before the product-metadata backfill.
    fn small_spec(seed: u64) -> GenSpec {
        GenSpec {
            rows_per_file: 3_000,
            backfill_days: 10,
            delivery: DeliveryMode::CreateNew,
            ..GenSpec::scaled(20_000, date(2026, 9, 20), 45, seed)
        }
    }

    /// Every batch of the given files.
    fn read_all(dir: &Path, files: &[String]) -> Vec<(String, RecordBatch)> {
        let mut out = Vec::new();
        for rel in files {
            let file = File::open(dir.join(rel)).unwrap();
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            for rg in builder.metadata().row_groups() {
                assert!(rg.num_rows() as usize <= MAX_BATCH_ROWS);
                assert_eq!(rg.column(0).compression(), Compression::SNAPPY);
            }
            for batch in builder.build().unwrap() {
                out.push((rel.clone(), batch.unwrap()));
            }
        }
        out
    }

    fn strings<'a>(b: &'a RecordBatch, name: &str) -> &'a StringArray {
        b.column_by_name(name).unwrap().as_string::<i32>()
    }

    fn floats(b: &RecordBatch, name: &str, i: usize) -> Option<f64> {
        let a = b
            .column_by_name(name)
            .unwrap()
            .as_primitive::<Float64Type>();
        a.is_valid(i).then(|| a.value(i))
    }

    /// `map[key]` of row `i`, `None` when the key is absent.
    fn map_get<'a>(m: &'a MapArray, i: usize, key: &str) -> Option<&'a str> {
        let keys = m.keys().as_string::<i32>();
        let values = m.values().as_string::<i32>();
        let offsets = m.value_offsets();
        (offsets[i] as usize..offsets[i + 1] as usize)
            .find(|&j| keys.value(j) == key)
            .map(|j| values.value(j))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-6 * (1.0 + a.abs().max(b.abs()))
    }

    fn assert_maps(got: &BTreeMap<String, f64>, want: &BTreeMap<String, f64>, what: &str) {
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{what}"
        );
        for (k, v) in want {
            assert!(close(got[k], *v), "{what} {k}: {} vs {v}", got[k]);
        }
    }

    /// The files, re-read by plain code, add up to the truth: totals, months, principals,
    /// teams, services, adjustments (by line type, as written). The stale delivery is not in the
    /// truth, and the manifests list exactly the current files.
    #[test]
    fn written_files_add_up_to_the_truth() {
        let dir = tempfile::tempdir().unwrap();
        let spec = small_spec(7);
        let truth = generate(&spec, dir.path()).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("truth.json")).unwrap(),
            serde_json::to_string_pretty(&truth).unwrap()
        );
        assert_eq!(truth.usage_rows, spec.rows);
        let months: Vec<&str> = truth.by_month.keys().map(String::as_str).collect();
        assert_eq!(months, ["2026-09", "2026-10", "2026-11"]);

        let (mut unblended, mut net, mut no_principal) = (0.0, 0.0, 0.0);
        let mut by_month: BTreeMap<String, f64> = BTreeMap::new();
        let mut by_principal: BTreeMap<String, f64> = BTreeMap::new();
        let mut by_team: BTreeMap<String, f64> = BTreeMap::new();
        let mut by_service: BTreeMap<String, f64> = BTreeMap::new();
        let mut adjustments: BTreeMap<String, f64> = BTreeMap::new();
        let (mut rows, mut usage, mut unattributed, mut early_with_model, mut mp) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let backfill_ms = day_ms(spec.start + Duration::days(i64::from(spec.backfill_days)));
        for (rel, b) in read_all(dir.path(), &truth.files) {
            assert_eq!(b.schema().fields(), schema(true).fields(), "{rel}");
            let types = strings(&b, "line_item_line_item_type");
            let principals = strings(&b, "line_item_iam_principal");
            let usage_types = strings(&b, "line_item_usage_type");
            let units = strings(&b, "pricing_unit");
            let product = b.column_by_name("product").unwrap().as_map();
            let tags = b.column_by_name("tags").unwrap().as_map();
            let starts = b
                .column_by_name("line_item_usage_start_date")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            let period = rel
                .split('/')
                .nth(1)
                .unwrap()
                .trim_start_matches("BILLING_PERIOD=");
            for i in 0..b.num_rows() {
                rows += 1;
                let cost = floats(&b, "line_item_unblended_cost", i).unwrap();
                if types.value(i) != "Usage" {
                    *adjustments.entry(types.value(i).to_string()).or_default() += cost;
                    continue;
                }
                usage += 1;
                unblended += cost;
                net += floats(&b, "line_item_net_unblended_cost", i).unwrap_or(cost);
                *by_month.entry(period.to_string()).or_default() += cost;
                *by_service
                    .entry(map_get(product, i, "servicename").unwrap().to_string())
                    .or_default() += cost;
                if starts.value(i) < backfill_ms && map_get(product, i, "model").is_some() {
                    early_with_model += 1;
                }
                if usage_types.value(i).contains("-MP:") {
                    mp += 1;
                    assert_eq!(units.value(i), "Units");
                }
                let p = principals.value(i);
                if p.is_empty() {
                    unattributed += 1;
                    no_principal += cost;
                    assert_eq!(tags.value(i).len(), 0, "no principal, no principal tags");
                    continue;
                }
                *by_principal.entry(p.to_string()).or_default() += cost;
                let team = map_get(tags, i, "iamPrincipal/team").unwrap_or("");
                *by_team.entry(team.to_string()).or_default() += cost;
            }
        }
        assert_eq!(rows, truth.rows_written);
        assert_eq!(
            (usage - unattributed, unattributed),
            (truth.usage_rows, truth.no_principal_rows)
        );
        assert_eq!(
            early_with_model, 0,
            "no product['model'] before the backfill"
        );
        assert!(mp > 1000, "Marketplace lines: {mp}");
        assert!(close(unblended, truth.total_unblended));
        assert!(close(net, truth.total_net_unblended));
        assert!(close(no_principal, truth.no_principal) && no_principal > 0.0);
        assert!(close(by_team[""], truth.untagged) && truth.untagged > 0.0);
        assert_maps(&by_month, &truth.by_month, "by_month");
        assert_maps(&by_principal, &truth.by_principal, "by_principal");
        assert_maps(&by_team, &truth.by_team, "by_team");
        assert_maps(&by_service, &truth.by_service, "by_service");
        assert_maps(&adjustments, &truth.adjustments, "adjustments");
        for t in [
            "Credit",
            "Refund",
            "Tax",
            "EdpDiscount",
            "PrivateRateDiscount",
            "BundledDiscount",
        ] {
            assert!(truth.adjustments.contains_key(t), "{t}");
        }
        // The discounts are what the usage lines' net cost already took off.
        let discounts = truth.adjustments["EdpDiscount"]
            + truth.adjustments["PrivateRateDiscount"]
            + truth.adjustments["BundledDiscount"];
        assert!(
            (discounts - (net - unblended)).abs() < 0.05,
            "{discounts} vs {}",
            net - unblended
        );
        assert!(close(
            truth.total_net_after_adjustments,
            net + truth.adjustments["Credit"]
                + truth.adjustments["Refund"]
                + truth.adjustments["Tax"]
        ));
        // Refunds after the first month refer to the month before.
        let refunds: Vec<(&str, Option<&str>)> = truth
            .adjustment_lines
            .iter()
            .filter(|a| a.line_item_type == "Refund" && a.account == DEMO_ACCOUNT)
            .map(|a| (a.month.as_str(), a.refers_to.as_deref()))
            .collect();
        assert_eq!(
            refunds,
            [
                ("2026-09", None),
                ("2026-10", Some("2026-09")),
                ("2026-11", Some("2026-10"))
            ]
        );

        // Files as Data Exports names them, in one delivery folder per month, and an earlier
        // partial delivery of the months with days before the 15th.
        let mut folders: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for f in truth.files.iter().chain(&truth.stale_files) {
            let parts: Vec<&str> = f.split('/').collect();
            assert_eq!(parts.len(), 4, "{f}");
            assert!(
                parts[3].starts_with("bedrock-cur-") && parts[3].ends_with(".snappy.parquet"),
                "{f}"
            );
            folders.entry(parts[1]).or_default().insert(parts[2]);
        }
        assert_eq!(
            folders["BILLING_PERIOD=2026-09"].len(),
            1,
            "no day before the 15th in September"
        );
        assert_eq!(folders["BILLING_PERIOD=2026-10"].len(), 2);
        assert!(!truth.stale_files.is_empty());
        assert!(truth.stale_files.iter().all(|f| !truth.files.contains(f)));
        // The manifests list exactly the current files, as s3:// URIs.
        let mut listed = Vec::new();
        for m in &truth.manifests {
            let doc: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(dir.path().join(m)).unwrap()).unwrap();
            for f in doc["dataFiles"].as_array().unwrap() {
                let uri = f.as_str().unwrap();
                let rel = uri.split_once("/bedrock-cur/").unwrap().1;
                assert!(uri.starts_with("s3://"));
                listed.push(rel.to_string());
            }
        }
        let mut want = truth.files.clone();
        want.sort();
        listed.sort();
        assert_eq!(listed, want);
    }

    /// Every kind, tier, scope and service of the catalogue shows up, and a few callers
    /// dominate.
    #[test]
    fn truth_shows_the_realistic_mix() {
        let dir = tempfile::tempdir().unwrap();
        let truth = generate(&small_spec(11), dir.path()).unwrap();
        let keys = |m: &BTreeMap<String, f64>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(&truth.by_token_kind),
            [
                "cache_read",
                "cache_write_1h",
                "cache_write_5m",
                "input",
                "other",
                "output"
            ]
        );
        assert_eq!(
            keys(&truth.by_tier),
            ["batch", "flex", "priority", "provisioned", "standard"]
        );
        assert_eq!(
            keys(&truth.by_scope),
            ["cross_region", "global", "in_region"]
        );
        assert!(truth.by_service.contains_key("Amazon Bedrock AgentCore"));
        assert!(
            truth
                .by_service
                .contains_key("Claude Sonnet 4.6 (Amazon Bedrock Edition)")
        );
        assert!(truth.by_model.contains_key(""), "lines of no model");
        assert!(
            truth
                .by_role
                .contains_key("arn:aws:iam::123456789012:role/InvoiceAgentRole")
        );
        let mut spend: Vec<f64> = truth.by_principal.values().copied().collect();
        spend.sort_by(|a, b| b.total_cmp(a));
        let bottom_half: f64 = spend[spend.len() / 2..].iter().sum();
        assert!(spend[0] > bottom_half, "{} vs {bottom_half}", spend[0]);
    }

    #[test]
    fn same_seed_same_bytes() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let ta = generate(&small_spec(3), a.path()).unwrap();
        let tb = generate(&small_spec(3), b.path()).unwrap();
        assert_eq!(ta, tb);
        for rel in ta
            .files
            .iter()
            .chain(&ta.manifests)
            .chain(["truth.json".to_string()].iter())
        {
            assert_eq!(
                fs::read(a.path().join(rel)).unwrap(),
                fs::read(b.path().join(rel)).unwrap(),
                "{rel}"
            );
        }
        let tc = generate(&small_spec(4), c.path()).unwrap();
        assert_ne!(ta.by_principal, tc.by_principal);
    }

    #[test]
    fn without_principal_column_or_manifest_in_overwrite_mode() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let with = generate(&small_spec(5), a.path()).unwrap();
        let spec = GenSpec {
            include_principal_column: false,
            delivery: DeliveryMode::Overwrite,
            manifest: false,
            ..small_spec(5)
        };
        let without = generate(&spec, b.path()).unwrap();
        let batches = read_all(b.path(), &without.files);
        assert!(!batches.is_empty());
        for (rel, batch) in &batches {
            assert!(batch.column_by_name("line_item_iam_principal").is_none());
            assert_eq!(
                rel.split('/').count(),
                3,
                "overwrite: files directly in the period"
            );
        }
        assert!(without.by_principal.is_empty() && without.by_role.is_empty());
        assert!(without.manifests.is_empty() && without.stale_files.is_empty());
        assert!(!b.path().join("metadata").exists());
        assert_eq!(
            (without.total_unblended, &without.by_team, &without.by_model),
            (with.total_unblended, &with.by_team, &with.by_model)
        );
    }

    #[test]
    fn demo_line_items_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let items = bedrock_cost_mcp::demo_data::line_items(date(2026, 11, 26));
        write_line_items(&items, dir.path()).unwrap();
        let mut files: Vec<String> = Vec::new();
        for month in ["2026-09", "2026-10", "2026-11"] {
            let rel = format!("data/BILLING_PERIOD={month}/{DEMO_EXPORT}-00001.snappy.parquet");
            assert!(dir.path().join(&rel).is_file(), "{rel}");
            files.push(rel);
        }
        let batches = read_all(dir.path(), &files);
        let rows: usize = batches.iter().map(|(_, b)| b.num_rows()).sum();
        assert_eq!(rows, items.len());
        let cost: f64 = batches
            .iter()
            .flat_map(|(_, b)| {
                (0..b.num_rows())
                    .map(|i| floats(b, "line_item_unblended_cost", i).unwrap())
                    .collect::<Vec<_>>()
            })
            .sum();
        assert!(close(cost, items.iter().map(|l| l.unblended).sum()));
        // A second write into the same place is refused rather than mixed in.
        assert!(matches!(
            write_line_items(&items, dir.path()),
            Err(CurGenError::OutputNotEmpty { .. })
        ));
    }

    #[test]
    fn bad_specs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for spec in [
            GenSpec {
                days: 0,
                ..small_spec(1)
            },
            GenSpec {
                principals: 0,
                ..small_spec(1)
            },
            GenSpec {
                rows_per_file: 0,
                ..small_spec(1)
            },
            GenSpec {
                export_name: "../x".into(),
                ..small_spec(1)
            },
        ] {
            assert!(matches!(
                generate(&spec, dir.path()),
                Err(CurGenError::InvalidSpec(_))
            ));
        }
    }
}
