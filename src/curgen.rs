//! A deterministic generator of realistic CUR 2.0 Parquet with Bedrock line items,
//! at any size, plus the "known truth" totals of what it wrote.
//!
//! Tests, the demo and the benchmarks need CUR data whose answers are known
//! without trusting the query engine under test. [`generate`] writes the files a
//! CUR 2.0 export with *Include caller identity (IAM principal) allocation data*
//! delivers (aws-facts.md §2.2, §2.4) and sums every amount it writes into a
//! [`Truth`], which it also saves as `truth.json`.
//!
//! Layout: `out_dir/data/BILLING_PERIOD=YYYY-MM/part-00000.snappy.parquet`,
//! `part-00001…`, one folder per billing month touched. Rows are produced day by
//! day and streamed in Arrow batches of at most [`MAX_BATCH_ROWS`] rows, so
//! memory stays bounded whatever the size.
//!
//! What makes the data realistic (and the engine's job non-trivial):
//! - callers are IAM users (some with a path), Bedrock API-key users and
//!   assumed-role sessions (AgentCore `BedrockAgentCore-…`, federated
//!   `first.last@acme.example`, `batch-<n>`) in two accounts (§1.2);
//! - volumes are Zipf-skewed, so a few callers dominate and "top N" means something;
//! - principal tags (`iamPrincipal/team`, `iamPrincipal/cost-center`) are shared by
//!   the sessions of one role, ~20% of identities are untagged, and an unrelated
//!   `resourceTags/user:env` tag appears on some rows (§1.3, §2.2);
//! - usage types follow §1.7 (four token kinds, cross-region variants) with ~0.5%
//!   of an unknown type (`…-ProvisionedThroughput-ModelUnits`, unit `Units`);
//! - `pricing_unit` is mostly `1K tokens`, but some models and lines use `1M tokens`;
//! - ~10% of rows lack `product['model']` and ~5% have a NULL net cost;
//! - each month has Credit and Refund lines next to the Usage lines.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, MapBuilder, MapFieldNames, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::demo_data::{DEMO_ACCOUNT, DemoModel, LineItem, MODELS, mix, round10};
use crate::domain::period::first_of_month;
use crate::domain::principal::role_of;
use crate::domain::usage_type::{self, TokenKind};

/// Largest Arrow batch and Parquet row group written (rows).
pub const MAX_BATCH_ROWS: usize = 131_072;

/// Rows per file for [`write_line_items`] (the demo organisation fits in one file a month).
const DEMO_ROWS_PER_FILE: usize = 1_000_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenSpec {
    /// Number of Usage line items to write (exact); adjustment lines come on top.
    pub rows: u64,
    /// First usage day.
    pub start: NaiveDate,
    /// Number of days covered (may span several billing months).
    pub days: u32,
    pub seed: u64,
    /// Distinct callers (user ARNs and assumed-role session ARNs).
    pub principals: u32,
    /// Rows per Parquet file before the next `part-NNNNN` starts.
    pub rows_per_file: usize,
    /// `false` mimics an export made without `INCLUDE_IAM_PRINCIPAL_DATA`: the
    /// `line_item_iam_principal` column is absent.
    pub include_principal_column: bool,
}

impl GenSpec {
    /// A spec with the caller count scaled to the size (about 40 callers for 20k
    /// rows, 400 for 10M), one-million-row files and the principal column included.
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
        }
    }
}

/// The totals of what was written, computed while writing and independent of any
/// query engine. Amounts are `f64` sums of exactly the values written.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Truth {
    /// Σ `line_item_unblended_cost` over Usage lines.
    pub total_unblended: f64,
    /// Σ `COALESCE(line_item_net_unblended_cost, line_item_unblended_cost)` over Usage lines.
    pub total_net_unblended: f64,
    /// Usage unblended per `line_item_iam_principal`; empty when the column was not written.
    pub by_principal: BTreeMap<String, f64>,
    /// Usage unblended per role (`arn:aws:iam::A:role/R` for sessions, users as they
    /// are, see [`role_of`]); empty when the principal column was not written.
    pub by_role: BTreeMap<String, f64>,
    /// Usage unblended per [`model_name`] of the row.
    pub by_model: BTreeMap<String, f64>,
    /// Usage unblended per token kind (`input`, `output`, `cache_read`, `cache_write`, `other`).
    pub by_token_kind: BTreeMap<String, f64>,
    /// Usage unblended per `tags['iamPrincipal/team']`, `""` for rows without it.
    pub by_team: BTreeMap<String, f64>,
    /// Usage unblended per `"<principal>|<model>"`; empty when the principal column
    /// was not written.
    pub by_principal_model: BTreeMap<String, f64>,
    /// Usage normalised to tokens (`1K tokens` ×1000, `1M tokens` ×1e6) per model;
    /// lines priced in `Units` are left out.
    pub tokens_by_model: BTreeMap<String, f64>,
    /// Unblended sum per `line_item_line_item_type` of the non-Usage lines.
    pub adjustments: BTreeMap<String, f64>,
    /// Usage unblended per billing month `YYYY-MM`.
    pub by_month: BTreeMap<String, f64>,
    /// Usage lines written.
    pub usage_rows: u64,
    /// All lines written (Usage and adjustments).
    pub rows_written: u64,
    /// Parquet files written, relative to the output directory, in write order.
    pub files: Vec<String>,
}

/// Why generation failed; I/O failures name the path.
#[derive(Debug, thiserror::Error)]
pub enum CurGenError {
    #[error("invalid generator spec: {0}")]
    InvalidSpec(String),
    #[error("{path} already holds data; remove it or pick another output directory")]
    OutputNotEmpty { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write Parquet file {path}: {source}")]
    Parquet { path: PathBuf, source: ParquetError },
    #[error("cannot build an Arrow batch for {path}: {source}")]
    Arrow { path: PathBuf, source: ArrowError },
    #[error("cannot encode {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The model-name rule the query engines use (see `domain::usage_type::model_name`).
pub use crate::domain::usage_type::model_name;

// ---------------------------------------------------------------------------
// Schema

/// The columns as written, in order. With `include_principal_column == false`
/// `line_item_iam_principal` is left out (an export without principal data).
///
/// Timestamps are `Timestamp(Millisecond, None)` (UTC wall time). `product` and
/// `tags` are `Map<Utf8, Utf8>` with the entries struct `entries { key (non-null),
/// value }`, as Arrow's `MapBuilder` produces and DataFusion's `m['k']` reads.
pub fn schema(include_principal_column: bool) -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, None);
    let mut fields = vec![
        Field::new("bill_billing_period_start_date", ts(), true),
        Field::new("line_item_usage_start_date", ts(), true),
        Field::new("line_item_usage_end_date", ts(), true),
    ];
    if include_principal_column {
        fields.push(Field::new("line_item_iam_principal", DataType::Utf8, true));
    }
    fields.extend([
        Field::new("line_item_line_item_type", DataType::Utf8, true),
        Field::new("line_item_product_code", DataType::Utf8, true),
        Field::new("line_item_usage_type", DataType::Utf8, true),
        Field::new("line_item_operation", DataType::Utf8, true),
        Field::new("line_item_usage_account_id", DataType::Utf8, true),
        Field::new("line_item_usage_amount", DataType::Float64, true),
        Field::new("pricing_unit", DataType::Utf8, true),
        Field::new("line_item_unblended_cost", DataType::Float64, true),
        Field::new("line_item_net_unblended_cost", DataType::Float64, true),
        Field::new("line_item_currency_code", DataType::Utf8, true),
        Field::new("product_region_code", DataType::Utf8, true),
        Field::new("product", map_type(), true),
        Field::new("tags", map_type(), true),
    ]);
    Arc::new(Schema::new(fields))
}

/// `Map<Utf8, Utf8>` exactly as [`MapBuilder`] with [`map_field_names`] builds it.
fn map_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(entries), false)),
        false,
    )
}

fn map_field_names() -> MapFieldNames {
    MapFieldNames {
        entry: "entries".to_string(),
        key: "key".to_string(),
        value: "value".to_string(),
    }
}

// ---------------------------------------------------------------------------
// Rows and the partitioned Parquet writer

/// The `product` map of a line.
struct Product<'a> {
    service_name: &'a str,
    /// `None` leaves the `model` key out (exports without product metadata).
    model: Option<&'a str>,
    provider: &'a str,
    region: &'a str,
}

/// One line item, borrowing every string so that writing allocates nothing per row.
struct Row<'a> {
    /// First day of the billing month (also the partition).
    month: NaiveDate,
    usage_start: NaiveDate,
    usage_end: NaiveDate,
    principal: &'a str,
    line_item_type: &'a str,
    product_code: &'a str,
    usage_type: &'a str,
    account: &'a str,
    usage_amount: f64,
    pricing_unit: &'a str,
    unblended: f64,
    net_unblended: Option<f64>,
    region: &'a str,
    product: Product<'a>,
    /// Principal tags with their `iamPrincipal/` prefix.
    tags: &'a [(String, String)],
    /// Value of the non-principal tag `resourceTags/user:env`, if any.
    env_tag: Option<&'a str>,
}

/// Milliseconds since the Unix epoch at 00:00 of `day`.
fn day_ms(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis()
}

/// Arrow builders for one batch, in [`schema`] order.
struct Columns {
    billing_period: TimestampMillisecondBuilder,
    usage_start: TimestampMillisecondBuilder,
    usage_end: TimestampMillisecondBuilder,
    principal: Option<StringBuilder>,
    line_item_type: StringBuilder,
    product_code: StringBuilder,
    usage_type: StringBuilder,
    operation: StringBuilder,
    account: StringBuilder,
    usage_amount: Float64Builder,
    pricing_unit: StringBuilder,
    unblended: Float64Builder,
    net_unblended: Float64Builder,
    currency: StringBuilder,
    region: StringBuilder,
    product: MapBuilder<StringBuilder, StringBuilder>,
    tags: MapBuilder<StringBuilder, StringBuilder>,
    len: usize,
}

impl Columns {
    fn new(include_principal_column: bool) -> Columns {
        let map = || {
            MapBuilder::new(
                Some(map_field_names()),
                StringBuilder::new(),
                StringBuilder::new(),
            )
        };
        Columns {
            billing_period: TimestampMillisecondBuilder::new(),
            usage_start: TimestampMillisecondBuilder::new(),
            usage_end: TimestampMillisecondBuilder::new(),
            principal: include_principal_column.then(StringBuilder::new),
            line_item_type: StringBuilder::new(),
            product_code: StringBuilder::new(),
            usage_type: StringBuilder::new(),
            operation: StringBuilder::new(),
            account: StringBuilder::new(),
            usage_amount: Float64Builder::new(),
            pricing_unit: StringBuilder::new(),
            unblended: Float64Builder::new(),
            net_unblended: Float64Builder::new(),
            currency: StringBuilder::new(),
            region: StringBuilder::new(),
            product: map(),
            tags: map(),
            len: 0,
        }
    }

    fn append(&mut self, row: &Row) -> Result<(), ArrowError> {
        self.billing_period.append_value(day_ms(row.month));
        self.usage_start.append_value(day_ms(row.usage_start));
        self.usage_end.append_value(day_ms(row.usage_end));
        if let Some(p) = &mut self.principal {
            p.append_value(row.principal);
        }
        self.line_item_type.append_value(row.line_item_type);
        self.product_code.append_value(row.product_code);
        self.usage_type.append_value(row.usage_type);
        self.operation.append_value("InvokeModelInference");
        self.account.append_value(row.account);
        self.usage_amount.append_value(row.usage_amount);
        self.pricing_unit.append_value(row.pricing_unit);
        self.unblended.append_value(row.unblended);
        self.net_unblended.append_option(row.net_unblended);
        self.currency.append_value("USD");
        self.region.append_value(row.region);

        let p = &row.product;
        let (k, v) = self.product.entries();
        k.append_value("servicename");
        v.append_value(p.service_name);
        k.append_value("product_name");
        v.append_value(p.service_name);
        if let Some(model) = p.model {
            k.append_value("model");
            v.append_value(model);
        }
        k.append_value("provider");
        v.append_value(p.provider);
        k.append_value("region");
        v.append_value(p.region);
        self.product.append(true)?;

        let (k, v) = self.tags.entries();
        for (key, value) in row.tags {
            k.append_value(key);
            v.append_value(value);
        }
        if let Some(env) = row.env_tag {
            k.append_value("resourceTags/user:env");
            v.append_value(env);
        }
        self.tags.append(true)?;

        self.len += 1;
        Ok(())
    }

    /// Turn the buffered rows into a batch and start empty again.
    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.billing_period.finish()),
            Arc::new(self.usage_start.finish()),
            Arc::new(self.usage_end.finish()),
        ];
        if let Some(p) = &mut self.principal {
            cols.push(Arc::new(p.finish()));
        }
        cols.extend([
            Arc::new(self.line_item_type.finish()) as ArrayRef,
            Arc::new(self.product_code.finish()),
            Arc::new(self.usage_type.finish()),
            Arc::new(self.operation.finish()),
            Arc::new(self.account.finish()),
            Arc::new(self.usage_amount.finish()),
            Arc::new(self.pricing_unit.finish()),
            Arc::new(self.unblended.finish()),
            Arc::new(self.net_unblended.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(self.region.finish()),
            Arc::new(self.product.finish()),
            Arc::new(self.tags.finish()),
        ]);
        self.len = 0;
        RecordBatch::try_new(schema.clone(), cols)
    }
}

/// A Parquet file being written.
struct OpenFile {
    writer: ArrowWriter<File>,
    path: PathBuf,
    rows: usize,
}

/// Streams rows into `data/BILLING_PERIOD=YYYY-MM/part-NNNNN.snappy.parquet`.
///
/// Rows must arrive grouped by month (one month is finished before the next
/// starts); a new file starts every `rows_per_file` rows and every month.
struct PartitionedWriter<'a> {
    out_dir: &'a Path,
    schema: SchemaRef,
    rows_per_file: usize,
    columns: Columns,
    month: Option<NaiveDate>,
    next_part: u32,
    open: Option<OpenFile>,
    files: Vec<String>,
    rows_written: u64,
}

impl<'a> PartitionedWriter<'a> {
    fn new(out_dir: &'a Path, include_principal_column: bool, rows_per_file: usize) -> Self {
        PartitionedWriter {
            out_dir,
            schema: schema(include_principal_column),
            rows_per_file,
            columns: Columns::new(include_principal_column),
            month: None,
            next_part: 0,
            open: None,
            files: Vec::new(),
            rows_written: 0,
        }
    }

    fn push(&mut self, row: &Row) -> Result<(), CurGenError> {
        if self.month != Some(row.month) {
            self.close_month()?;
            self.month = Some(row.month);
            self.next_part = 0;
        }
        self.columns
            .append(row)
            .map_err(|source| CurGenError::Arrow {
                path: self.out_dir.to_path_buf(),
                source,
            })?;
        let in_file = self.open.as_ref().map_or(0, |f| f.rows);
        if self.columns.len >= MAX_BATCH_ROWS.min(self.rows_per_file - in_file) {
            self.flush()?;
        }
        Ok(())
    }

    /// Write the buffered rows to the current file (opening one if needed) and
    /// close the file once it holds `rows_per_file` rows.
    fn flush(&mut self) -> Result<(), CurGenError> {
        if self.columns.len == 0 {
            return Ok(());
        }
        let mut file = match self.open.take() {
            Some(f) => f,
            None => self.open_file()?,
        };
        let batch = self
            .columns
            .finish(&self.schema)
            .map_err(|source| CurGenError::Arrow {
                path: file.path.clone(),
                source,
            })?;
        file.writer
            .write(&batch)
            .map_err(|source| CurGenError::Parquet {
                path: file.path.clone(),
                source,
            })?;
        file.rows += batch.num_rows();
        self.rows_written += batch.num_rows() as u64;
        if file.rows >= self.rows_per_file {
            close_file(file)
        } else {
            self.open = Some(file);
            Ok(())
        }
    }

    fn open_file(&mut self) -> Result<OpenFile, CurGenError> {
        let month = self.month.expect("a row set the month before any flush");
        let rel = format!(
            "data/BILLING_PERIOD={}/part-{:05}.snappy.parquet",
            month.format("%Y-%m"),
            self.next_part
        );
        let path = self.out_dir.join(&rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|source| CurGenError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let f = File::create(&path).map_err(|source| CurGenError::Io {
            path: path.clone(),
            source,
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(MAX_BATCH_ROWS))
            .build();
        let writer =
            ArrowWriter::try_new(f, self.schema.clone(), Some(props)).map_err(|source| {
                CurGenError::Parquet {
                    path: path.clone(),
                    source,
                }
            })?;
        self.files.push(rel);
        self.next_part += 1;
        Ok(OpenFile {
            writer,
            path,
            rows: 0,
        })
    }

    fn close_month(&mut self) -> Result<(), CurGenError> {
        self.flush()?;
        match self.open.take() {
            Some(f) => close_file(f),
            None => Ok(()),
        }
    }

    /// Close everything; the files written (relative paths) and the row count.
    fn finish(mut self) -> Result<(Vec<String>, u64), CurGenError> {
        self.close_month()?;
        Ok((self.files, self.rows_written))
    }
}

fn close_file(file: OpenFile) -> Result<(), CurGenError> {
    file.writer
        .close()
        .map(|_| ())
        .map_err(|source| CurGenError::Parquet {
            path: file.path,
            source,
        })
}

/// Create `out_dir` and refuse a `data/` folder that already has files: stale
/// parts of an earlier run would silently change every total.
fn prepare_out_dir(out_dir: &Path) -> Result<(), CurGenError> {
    fs::create_dir_all(out_dir).map_err(|source| CurGenError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let data = out_dir.join("data");
    match fs::read_dir(&data) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CurGenError::OutputNotEmpty { path: data });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CurGenError::Io { path: data, source }),
    }
}

// ---------------------------------------------------------------------------
// The demo organisation

/// Write the demo organisation's line items (from [`crate::demo_data::line_items`])
/// with the same schema and layout as [`generate`], so the CUR engine can serve
/// `--demo` from Parquet. Items may come in any order; each lands in its month.
pub fn write_line_items(items: &[LineItem], out_dir: &Path) -> Result<(), CurGenError> {
    prepare_out_dir(out_dir)?;
    let mut ordered: Vec<&LineItem> = items.iter().collect();
    ordered.sort_by_key(|li| first_of_month(li.usage_start));
    let mut writer = PartitionedWriter::new(out_dir, true, DEMO_ROWS_PER_FILE);
    for li in ordered {
        writer.push(&Row {
            month: first_of_month(li.usage_start),
            usage_start: li.usage_start,
            usage_end: li.usage_start + Duration::days(1),
            principal: &li.principal,
            line_item_type: &li.line_item_type,
            product_code: &li.product_code,
            usage_type: &li.usage_type,
            account: DEMO_ACCOUNT,
            usage_amount: li.usage_amount,
            pricing_unit: &li.pricing_unit,
            unblended: li.unblended,
            net_unblended: li.net_unblended,
            region: &li.region,
            product: Product {
                service_name: &li.service_name,
                model: (!li.model.is_empty()).then_some(li.model.as_str()),
                provider: &li.provider,
                region: &li.region,
            },
            tags: &li.tags,
            env_tag: None,
        })?;
    }
    writer.finish().map(|_| ())
}

// ---------------------------------------------------------------------------
// The synthetic organisation

/// Models on top of [`MODELS`]: a second Marketplace model, a larger first-party
/// model, and an embeddings model that only bills input tokens.
const EXTRA_MODELS: &[DemoModel] = &[
    DemoModel {
        usage_name: "Claude4.6Opus",
        display: "Claude Opus 4.6",
        provider: "Anthropic",
        service_name: "Claude Opus 4.6 (Amazon Bedrock Edition)",
        product_code: "4kx8wq2mopus46",
        prices: [0.005, 0.025, 0.0005, 0.00625],
    },
    DemoModel {
        usage_name: "NovaPro",
        display: "Nova Pro",
        provider: "Amazon",
        service_name: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        prices: [0.0008, 0.0032, 0.0002, 0.0],
    },
    DemoModel {
        usage_name: "TitanEmbeddingsV2-Text",
        display: "Titan Text Embeddings V2",
        provider: "Amazon",
        service_name: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        prices: [0.00002, 0.0, 0.0, 0.0],
    },
];

/// Models whose every line is priced per `1M tokens`; the others switch to
/// `1M tokens` on ~10% of lines, so a model's quantities mix both units.
const MILLION_UNIT_MODELS: &[&str] = &["Claude4.6Opus", "TitanEmbeddingsV2-Text"];

/// Billing region prefix and region code (`product_region_code`).
const REGIONS: [(&str, &str); 2] = [("USE1", "us-east-1"), ("USW2", "us-west-2")];

const ACCOUNTS: [&str; 2] = [DEMO_ACCOUNT, "210987654321"];
/// Share of unblended cost the account's discount takes off the net cost.
const NET_DISCOUNT: [f64; 2] = [0.05, 0.0];

/// Usage-type suffixes of the four token kinds (aws-facts.md §1.7), in price order.
const KIND_SUFFIXES: [&str; 4] = [
    "input-tokens",
    "output-tokens",
    "cache-read-input-token-count",
    "cache-write-input-token-count",
];
/// How often each token kind appears as a line, relative.
const KIND_ROW_WEIGHTS: [f64; 4] = [0.4, 0.3, 0.2, 0.1];
/// Typical thousands of tokens on one line of each kind.
const KIND_BASE_KTOKENS: [f64; 4] = [400.0, 60.0, 900.0, 120.0];

/// The unknown usage type (token kind `other`, unit `Units`) and its price per unit.
const PROVISIONED_SUFFIX: &str = "ProvisionedThroughput-ModelUnits";
const PROVISIONED_PRICE: f64 = 1.75;

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

/// The kinds of identity behind callers (aws-facts.md §1.2).
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
        let arns: Vec<String> = match kind {
            IdentityKind::User => vec![format!(
                "arn:aws:iam::{acct}:user/{}",
                indexed(USER_NAMES, nth)
            )],
            IdentityKind::PathUser => vec![format!(
                "arn:aws:iam::{acct}:user/{}/{}",
                USER_PATHS[rng.below(USER_PATHS.len())],
                indexed(USER_NAMES, nth)
            )],
            IdentityKind::ApiKeyUser => vec![format!(
                "arn:aws:iam::{acct}:user/BedrockAPIKey-{:03x}{nth}",
                rng.next_u64() & 0xfff
            )],
            IdentityKind::AgentCoreRole => {
                let role = indexed(AGENT_ROLES, nth);
                (0..3 + rng.below(4))
                    .map(|s| {
                        // The low hex digit is the session index: unique within the role.
                        let id = (rng.next_u64() as u32 & !0xf) | s as u32;
                        format!("arn:aws:sts::{acct}:assumed-role/{role}/BedrockAgentCore-{id:08x}")
                    })
                    .collect()
            }
            IdentityKind::FederatedRole => {
                let role = indexed(FEDERATED_ROLES, nth);
                (0..2 + rng.below(4))
                    .map(|s| {
                        let first = FIRST_NAMES[(ident * 5 + s) % FIRST_NAMES.len()];
                        let last = LAST_NAMES[(ident + s * 3) % LAST_NAMES.len()];
                        format!(
                            "arn:aws:sts::{acct}:assumed-role/{role}/{first}.{last}@acme.example"
                        )
                    })
                    .collect()
            }
            IdentityKind::BatchRole => {
                let role = indexed(BATCH_ROLES, nth);
                (0..1 + rng.below(3))
                    .map(|s| format!("arn:aws:sts::{acct}:assumed-role/{role}/batch-{}", s + 1))
                    .collect()
            }
        };
        for arn in arns.into_iter().take(count - out.len()) {
            let u = rng.next_f64();
            out.push(Caller {
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

/// One pre-built usage type with what the truth needs to know about it.
struct UsageTypeEntry {
    text: String,
    kind: TokenKind,
    /// Model-key ids: `[with product['model'], without it]`.
    model_key: [usize; 2],
}

/// Everything fixed before the first row: callers, catalogue, usage types,
/// model keys. Rows then only pick indexes into these.
struct World {
    models: Vec<&'static DemoModel>,
    million_unit: Vec<bool>,
    callers: Vec<Caller>,
    /// Cumulative Zipf weights in caller order (for picking by binary search).
    cumulative: Vec<f64>,
    /// The heaviest caller of each account (Refund lines name it).
    top_caller: [Option<usize>; 2],
    usage_types: Vec<UsageTypeEntry>,
    /// Model-key id -> [`model_name`] value.
    model_keys: Vec<String>,
}

impl World {
    fn new(spec: &GenSpec) -> World {
        let models: Vec<&'static DemoModel> = MODELS.iter().chain(EXTRA_MODELS).collect();
        let million_unit = models
            .iter()
            .map(|m| MILLION_UNIT_MODELS.contains(&m.usage_name))
            .collect();
        let callers = callers(spec.seed, spec.principals as usize, models.len());

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

        let mut keys: BTreeMap<String, usize> = BTreeMap::new();
        let mut model_keys = Vec::new();
        let mut key_id = |name: String| {
            *keys.entry(name).or_insert_with_key(|k| {
                model_keys.push(k.clone());
                model_keys.len() - 1
            })
        };
        let mut usage_types = Vec::new();
        for (prefix, _) in REGIONS {
            for m in &models {
                for suffix in KIND_SUFFIXES {
                    for variant in ["", "-cross-region-global"] {
                        let text = format!("{prefix}-{}-{suffix}{variant}", m.usage_name);
                        usage_types.push(UsageTypeEntry {
                            model_key: [
                                key_id(model_name(m.display, &text)),
                                key_id(model_name("", &text)),
                            ],
                            kind: usage_type::parse(&text).token_kind,
                            text,
                        });
                    }
                }
            }
        }
        for (prefix, _) in REGIONS {
            for m in &models {
                let text = format!("{prefix}-{PROVISIONED_SUFFIX}");
                usage_types.push(UsageTypeEntry {
                    model_key: [
                        key_id(model_name(m.display, &text)),
                        key_id(model_name("", &text)),
                    ],
                    kind: usage_type::parse(&text).token_kind,
                    text,
                });
            }
        }

        World {
            models,
            million_unit,
            callers,
            cumulative,
            top_caller,
            usage_types,
            model_keys,
        }
    }

    /// Index of the token usage type for region, model, kind and variant
    /// (0 = plain, 1 = cross-region global), in the order [`World::new`] built them.
    fn token_usage_type(&self, region: usize, model: usize, kind: usize, variant: usize) -> usize {
        ((region * self.models.len() + model) * KIND_SUFFIXES.len() + kind) * 2 + variant
    }

    fn provisioned_usage_type(&self, region: usize, model: usize) -> usize {
        REGIONS.len() * self.models.len() * KIND_SUFFIXES.len() * 2
            + region * self.models.len()
            + model
    }

    fn pick_caller(&self, u: f64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        self.cumulative
            .partition_point(|&c| c <= u * total)
            .min(self.callers.len() - 1)
    }

    /// Draw the Usage line number `index` (a pure function of seed and index).
    fn usage_line(&self, seed: u64, index: u64) -> UsageLine {
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
        let m = self.models[model];
        let region = if rng.next_f64() < 0.85 {
            c.home_region
        } else {
            1 - c.home_region
        };
        let has_model = rng.next_f64() >= 0.10;
        let net_null = rng.next_f64() < 0.05;
        let env_tag = (rng.next_f64() < 0.3).then(|| ENV_VALUES[rng.below(ENV_VALUES.len())]);
        let jitter = 0.05 + 1.95 * rng.next_f64();

        if rng.next_f64() < 0.005 {
            // Model-unit hours.
            let amount = round10(jitter);
            return UsageLine {
                caller,
                model,
                region,
                usage_type: self.provisioned_usage_type(region, model),
                has_model,
                usage_amount: amount,
                unit: Unit::Units,
                unblended: round10(amount * PROVISIONED_PRICE),
                net_null,
                env_tag,
            };
        }

        // Token kinds the model bills (a zero price means the kind does not exist).
        let total_w: f64 = (0..4)
            .filter(|&k| m.prices[k] > 0.0)
            .map(|k| KIND_ROW_WEIGHTS[k])
            .sum();
        let mut w = rng.next_f64() * total_w;
        let kind = (0..4)
            .filter(|&k| m.prices[k] > 0.0)
            .find(|&k| {
                w -= KIND_ROW_WEIGHTS[k];
                w < 0.0
            })
            .unwrap_or(0);
        let variant = usize::from(m.provider == "Anthropic" && rng.next_f64() < 0.25);
        let million = self.million_unit[model] || rng.next_f64() < 0.10;
        let k_tokens = KIND_BASE_KTOKENS[kind] * c.volume * jitter;
        let (usage_amount, unit, unblended) = if million {
            let amount = round10(k_tokens / 1000.0);
            (
                amount,
                Unit::MillionTokens,
                round10(amount * round10(m.prices[kind] * 1000.0)),
            )
        } else {
            let amount = round10(k_tokens);
            (
                amount,
                Unit::ThousandTokens,
                round10(amount * m.prices[kind]),
            )
        };
        UsageLine {
            caller,
            model,
            region,
            usage_type: self.token_usage_type(region, model, kind, variant),
            has_model,
            usage_amount,
            unit,
            unblended,
            net_null,
            env_tag,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    ThousandTokens,
    MillionTokens,
    Units,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::ThousandTokens => "1K tokens",
            Unit::MillionTokens => "1M tokens",
            Unit::Units => "Units",
        }
    }
    /// Tokens per unit of usage amount; `None` for non-token units.
    fn tokens(self) -> Option<f64> {
        match self {
            Unit::ThousandTokens => Some(1e3),
            Unit::MillionTokens => Some(1e6),
            Unit::Units => None,
        }
    }
}

/// One drawn Usage line, as indexes into the [`World`].
struct UsageLine {
    caller: usize,
    model: usize,
    region: usize,
    usage_type: usize,
    has_model: bool,
    usage_amount: f64,
    unit: Unit,
    unblended: f64,
    net_null: bool,
    env_tag: Option<&'static str>,
}

// ---------------------------------------------------------------------------
// Truth bookkeeping

/// Every token kind, for turning the `by_kind` array into names.
const TOKEN_KINDS: [TokenKind; 5] = [
    TokenKind::Input,
    TokenKind::Output,
    TokenKind::CacheRead,
    TokenKind::CacheWrite,
    TokenKind::Other,
];

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

/// Dense accumulators indexed by caller / model key / kind, turned into the
/// string-keyed [`Truth`] maps once at the end (no per-row string work).
struct Tally {
    total_unblended: f64,
    total_net_unblended: f64,
    usage_rows: u64,
    by_caller: Vec<Acc>,
    by_model: Vec<Acc>,
    by_caller_model: Vec<Acc>,
    tokens_by_model: Vec<Acc>,
    /// Indexed by `TokenKind as usize`.
    by_kind: [Acc; 5],
    by_month: BTreeMap<String, f64>,
    adjustments: BTreeMap<String, f64>,
}

impl Tally {
    fn new(world: &World) -> Tally {
        let n_keys = world.model_keys.len();
        Tally {
            total_unblended: 0.0,
            total_net_unblended: 0.0,
            usage_rows: 0,
            by_caller: vec![Acc::default(); world.callers.len()],
            by_model: vec![Acc::default(); n_keys],
            by_caller_model: vec![Acc::default(); world.callers.len() * n_keys],
            tokens_by_model: vec![Acc::default(); n_keys],
            by_kind: [Acc::default(); 5],
            by_month: BTreeMap::new(),
            adjustments: BTreeMap::new(),
        }
    }

    fn add_usage(&mut self, world: &World, line: &UsageLine, net: Option<f64>) {
        let ut = &world.usage_types[line.usage_type];
        let key = ut.model_key[usize::from(!line.has_model)];
        self.total_unblended += line.unblended;
        self.total_net_unblended += net.unwrap_or(line.unblended);
        self.usage_rows += 1;
        self.by_caller[line.caller].add(line.unblended);
        self.by_model[key].add(line.unblended);
        self.by_caller_model[line.caller * world.model_keys.len() + key].add(line.unblended);
        if let Some(per_unit) = line.unit.tokens() {
            self.tokens_by_model[key].add(line.usage_amount * per_unit);
        }
        self.by_kind[ut.kind as usize].add(line.unblended);
    }

    fn into_truth(
        self,
        world: &World,
        include_principal_column: bool,
        files: Vec<String>,
        rows_written: u64,
    ) -> Truth {
        let used = |a: &Acc| a.lines > 0;
        let n_keys = world.model_keys.len();
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
            if include_principal_column {
                by_principal.insert(c.arn.clone(), acc.sum);
                *by_role.entry(role_of(&c.arn)).or_insert(0.0) += acc.sum;
                for (k, cm) in self.by_caller_model[i * n_keys..(i + 1) * n_keys]
                    .iter()
                    .enumerate()
                {
                    if used(cm) {
                        by_principal_model
                            .insert(format!("{}|{}", c.arn, world.model_keys[k]), cm.sum);
                    }
                }
            }
        }
        let keyed = |accs: &[Acc]| -> BTreeMap<String, f64> {
            accs.iter()
                .enumerate()
                .filter(|(_, a)| used(a))
                .map(|(k, a)| (world.model_keys[k].clone(), a.sum))
                .collect()
        };
        Truth {
            total_unblended: self.total_unblended,
            total_net_unblended: self.total_net_unblended,
            by_principal,
            by_role,
            by_model: keyed(&self.by_model),
            by_token_kind: TOKEN_KINDS
                .iter()
                .filter(|k| used(&self.by_kind[**k as usize]))
                .map(|k| (k.as_str().to_string(), self.by_kind[*k as usize].sum))
                .collect(),
            by_team,
            by_principal_model,
            tokens_by_model: keyed(&self.tokens_by_model),
            adjustments: self.adjustments,
            by_month: self.by_month,
            usage_rows: self.usage_rows,
            rows_written,
            files,
        }
    }
}

/// The month being generated: its covered days and Usage spend per account,
/// which sizes the month's Credit and Refund lines.
struct MonthState {
    month: NaiveDate,
    first_day: NaiveDate,
    last_day: NaiveDate,
    spend: [f64; 2],
    total: f64,
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One Credit or Refund line of a month.
struct Adjustment<'a> {
    line_item_type: &'static str,
    caller: Option<&'a Caller>,
    model: usize,
    region: usize,
    amount: f64,
}

/// Finish a month after its Usage lines: record its spend and write its
/// adjustments. Per account with callers: a promotional Credit without a principal
/// (2% of the account's Usage spend, at least $1, on Claude Sonnet 4.6 as in the
/// demo) and a Refund naming the account's heaviest caller (0.5%, at least $0.50),
/// which an engine must still keep out of per-principal spend. Both span the
/// month's covered days.
fn close_month(
    world: &World,
    state: &MonthState,
    writer: &mut PartitionedWriter,
    tally: &mut Tally,
) -> Result<(), CurGenError> {
    tally
        .by_month
        .insert(state.month.format("%Y-%m").to_string(), state.total);
    for (account, top) in world.top_caller.iter().enumerate() {
        let Some(top) = *top else { continue };
        let caller = &world.callers[top];
        let adjustments = [
            Adjustment {
                line_item_type: "Credit",
                caller: None,
                model: 0,
                region: 0,
                amount: -cents((0.02 * state.spend[account]).max(1.0)),
            },
            Adjustment {
                line_item_type: "Refund",
                caller: Some(caller),
                model: caller.models[0],
                region: caller.home_region,
                amount: -cents((0.005 * state.spend[account]).max(0.5)),
            },
        ];
        for adj in adjustments {
            let model = world.models[adj.model];
            let region = REGIONS[adj.region].1;
            writer.push(&Row {
                month: state.month,
                usage_start: state.first_day,
                usage_end: state.last_day + Duration::days(1),
                principal: adj.caller.map_or("", |c| c.arn.as_str()),
                line_item_type: adj.line_item_type,
                product_code: model.product_code,
                usage_type: &world.usage_types[world.token_usage_type(adj.region, adj.model, 0, 0)]
                    .text,
                account: ACCOUNTS[account],
                usage_amount: 0.0,
                pricing_unit: Unit::ThousandTokens.as_str(),
                unblended: adj.amount,
                net_unblended: Some(adj.amount),
                region,
                product: Product {
                    service_name: model.service_name,
                    model: Some(model.display),
                    provider: model.provider,
                    region,
                },
                tags: adj.caller.map_or(&[][..], |c| &c.tags[..]),
                env_tag: None,
            })?;
            *tally
                .adjustments
                .entry(adj.line_item_type.to_string())
                .or_insert(0.0) += adj.amount;
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
    } else if spec
        .start
        .checked_add_signed(Duration::days(i64::from(spec.days)))
        .is_none()
    {
        "start + days is out of the calendar range"
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

/// Generate CUR 2.0 Parquet for `spec` under `out_dir` (see the module docs for the
/// layout) and return the truth, also written to `out_dir/truth.json`.
///
/// Exactly `spec.rows` Usage lines are spread over the days by weekday weight;
/// each month then gets its Credit and Refund lines. The same spec always gives
/// byte-identical files and truth. Fails if `out_dir/data` already has files.
pub fn generate(spec: &GenSpec, out_dir: &Path) -> Result<Truth, CurGenError> {
    validate(spec)?;
    prepare_out_dir(out_dir)?;
    let world = World::new(spec);
    let mut writer =
        PartitionedWriter::new(out_dir, spec.include_principal_column, spec.rows_per_file);
    let mut tally = Tally::new(&world);

    let days: Vec<NaiveDate> = (0..spec.days)
        .map(|d| spec.start + Duration::days(i64::from(d)))
        .collect();
    let total_weight: u128 = days.iter().map(|&d| day_weight(d)).sum();
    let mut weight_so_far = 0u128;
    let mut index = 0u64;
    let mut state: Option<MonthState> = None;

    for &day in &days {
        let month = first_of_month(day);
        if state.as_ref().is_some_and(|s| s.month != month) {
            let done = state.take().expect("checked above");
            close_month(&world, &done, &mut writer, &mut tally)?;
        }
        let st = state.get_or_insert(MonthState {
            month,
            first_day: day,
            last_day: day,
            spend: [0.0; 2],
            total: 0.0,
        });
        st.last_day = day;

        weight_so_far += day_weight(day);
        // Cumulative integer split: the per-day counts add up to exactly spec.rows.
        let rows_through = (u128::from(spec.rows) * weight_so_far / total_weight) as u64;
        while index < rows_through {
            let line = world.usage_line(spec.seed, index);
            let c = &world.callers[line.caller];
            let m = world.models[line.model];
            let net =
                (!line.net_null).then(|| round10(line.unblended * (1.0 - NET_DISCOUNT[c.account])));
            let region = REGIONS[line.region].1;
            writer.push(&Row {
                month,
                usage_start: day,
                usage_end: day + Duration::days(1),
                principal: &c.arn,
                line_item_type: "Usage",
                product_code: m.product_code,
                usage_type: &world.usage_types[line.usage_type].text,
                account: ACCOUNTS[c.account],
                usage_amount: line.usage_amount,
                pricing_unit: line.unit.as_str(),
                unblended: line.unblended,
                net_unblended: net,
                region,
                product: Product {
                    service_name: m.service_name,
                    model: line.has_model.then_some(m.display),
                    provider: m.provider,
                    region,
                },
                tags: &c.tags,
                env_tag: line.env_tag,
            })?;
            tally.add_usage(&world, &line, net);
            st.spend[c.account] += line.unblended;
            st.total += line.unblended;
            index += 1;
        }
    }
    if let Some(done) = state {
        close_month(&world, &done, &mut writer, &mut tally)?;
    }

    let (files, rows_written) = writer.finish()?;
    let truth = tally.into_truth(&world, spec.include_principal_column, files, rows_written);
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
    use datafusion::arrow::array::{Array, AsArray, MapArray, StringArray};
    use datafusion::arrow::datatypes::{Float64Type, TimestampMillisecondType};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::time::Instant;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// ~20k rows over three billing months, several files per month.
    fn small_spec(seed: u64) -> GenSpec {
        GenSpec {
            rows_per_file: 3_000,
            ..GenSpec::scaled(20_000, date(2026, 9, 20), 45, seed)
        }
    }

    /// Every batch of every file the truth lists, with the file's path.
    fn read_all(dir: &Path, truth: &Truth) -> Vec<(String, RecordBatch)> {
        let mut out = Vec::new();
        for rel in &truth.files {
            let file = File::open(dir.join(rel)).unwrap();
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            let meta = builder.metadata().clone();
            for rg in meta.row_groups() {
                assert!(rg.num_rows() as usize <= MAX_BATCH_ROWS);
                assert_eq!(
                    rg.column(0).compression(),
                    datafusion::parquet::basic::Compression::SNAPPY
                );
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

    #[test]
    fn written_files_match_schema_layout_and_truth() {
        let dir = tempfile::tempdir().unwrap();
        let spec = small_spec(7);
        let t0 = Instant::now();
        let truth = generate(&spec, dir.path()).unwrap();
        eprintln!(
            "generated {} rows in {:?}",
            truth.rows_written,
            t0.elapsed()
        );

        assert_eq!(
            fs::read_to_string(dir.path().join("truth.json")).unwrap(),
            serde_json::to_string_pretty(&truth).unwrap()
        );
        assert_eq!(truth.usage_rows, spec.rows);
        // Two adjustment lines per account and month, three months.
        assert_eq!(truth.rows_written, spec.rows + 3 * 2 * 2);
        let months: Vec<&str> = truth.by_month.keys().map(String::as_str).collect();
        assert_eq!(months, ["2026-09", "2026-10", "2026-11"]);

        let mut unblended = 0.0;
        let mut net = 0.0;
        let mut by_model: BTreeMap<String, f64> = BTreeMap::new();
        let mut by_team: BTreeMap<String, f64> = BTreeMap::new();
        let mut by_month: BTreeMap<String, f64> = BTreeMap::new();
        let (mut rows, mut usage, mut no_model, mut null_net) = (0u64, 0u64, 0u64, 0u64);
        let mut units: BTreeMap<String, u64> = BTreeMap::new();
        let expected_schema = schema(true);
        for (rel, b) in read_all(dir.path(), &truth) {
            assert_eq!(b.schema().fields(), expected_schema.fields(), "{rel}");
            let period = b
                .column_by_name("bill_billing_period_start_date")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            let start = b
                .column_by_name("line_item_usage_start_date")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            let kind = strings(&b, "line_item_line_item_type");
            let ut = strings(&b, "line_item_usage_type");
            let principal = strings(&b, "line_item_iam_principal");
            let region = strings(&b, "product_region_code");
            let unit = strings(&b, "pricing_unit");
            let cost = b
                .column_by_name("line_item_unblended_cost")
                .unwrap()
                .as_primitive::<Float64Type>();
            let net_cost = b
                .column_by_name("line_item_net_unblended_cost")
                .unwrap()
                .as_primitive::<Float64Type>();
            let product = b.column_by_name("product").unwrap().as_map();
            let tags = b.column_by_name("tags").unwrap().as_map();
            for i in 0..b.num_rows() {
                rows += 1;
                let p = chrono::DateTime::from_timestamp_millis(period.value(i))
                    .unwrap()
                    .date_naive();
                let s = chrono::DateTime::from_timestamp_millis(start.value(i))
                    .unwrap()
                    .date_naive();
                let folder = format!("data/BILLING_PERIOD={}/", p.format("%Y-%m"));
                assert!(rel.starts_with(&folder), "{rel} holds a row of {p}");
                assert_eq!((p.day(), first_of_month(s)), (1, p));
                // The usage type's region prefix agrees with product_region_code.
                let prefix = if region.value(i) == "us-east-1" {
                    "USE1-"
                } else {
                    "USW2-"
                };
                assert!(ut.value(i).starts_with(prefix));
                if kind.value(i) != "Usage" {
                    assert!(["Credit", "Refund"].contains(&kind.value(i)));
                    assert!(cost.value(i) < 0.0);
                    continue;
                }
                usage += 1;
                assert!(!principal.value(i).is_empty());
                let c = cost.value(i);
                unblended += c;
                net += if net_cost.is_null(i) {
                    null_net += 1;
                    c
                } else {
                    net_cost.value(i)
                };
                let model = map_get(product, i, "model");
                no_model += u64::from(model.is_none());
                *by_model
                    .entry(model_name(model.unwrap_or(""), ut.value(i)))
                    .or_default() += c;
                let team = map_get(tags, i, "iamPrincipal/team").unwrap_or("");
                *by_team.entry(team.to_string()).or_default() += c;
                *by_month.entry(p.format("%Y-%m").to_string()).or_default() += c;
                *units.entry(unit.value(i).to_string()).or_default() += 1;
            }
        }
        assert_eq!((rows, usage), (truth.rows_written, truth.usage_rows));
        assert!(
            close(unblended, truth.total_unblended),
            "{unblended} vs {}",
            truth.total_unblended
        );
        assert!(close(net, truth.total_net_unblended));
        assert!(net < unblended, "the net cost carries a discount");
        for (got, want) in [
            (&by_model, &truth.by_model),
            (&by_team, &truth.by_team),
            (&by_month, &truth.by_month),
        ] {
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>()
            );
            for (k, v) in got {
                assert!(close(*v, want[k]), "{k}: {v} vs {}", want[k]);
            }
        }
        // The deterministic "holes" are there in about the promised shares.
        let share = |n: u64| n as f64 / usage as f64;
        assert!(
            (0.07..0.13).contains(&share(no_model)),
            "{}",
            share(no_model)
        );
        assert!(
            (0.03..0.07).contains(&share(null_net)),
            "{}",
            share(null_net)
        );
        assert!((0.002..0.01).contains(&share(units["Units"])));
        assert!(units["1M tokens"] > units["Units"] && units["1K tokens"] > units["1M tokens"]);
    }

    #[test]
    fn truth_shows_the_realistic_mix() {
        let dir = tempfile::tempdir().unwrap();
        let truth = generate(&small_spec(11), dir.path()).unwrap();
        let principals: Vec<&String> = truth.by_principal.keys().collect();
        for needle in [
            ":user/",
            ":user/BedrockAPIKey-",
            "/BedrockAgentCore-",
            "@acme.example",
            "/batch-",
        ] {
            assert!(principals.iter().any(|p| p.contains(needle)), "no {needle}");
        }
        assert!(
            principals
                .iter()
                .any(|p| p.matches('/').count() >= 2 && p.contains(":user/"))
        );
        for account in ACCOUNTS {
            assert!(principals.iter().any(|p| p.contains(account)));
        }
        assert!(truth.by_role.keys().any(|r| r.contains(":role/")));
        assert!(truth.by_role.len() < truth.by_principal.len());
        assert!(truth.by_team.contains_key(""), "some callers are untagged");
        assert_eq!(
            truth.by_token_kind.keys().collect::<Vec<_>>(),
            ["cache_read", "cache_write", "input", "other", "output"]
        );
        for model in [
            "Claude Sonnet 4.6",
            "Claude4.6Sonnet",
            "Titan Text Embeddings V2",
            "unknown",
        ] {
            assert!(truth.by_model.contains_key(model), "{model}");
        }
        assert!(
            !truth.tokens_by_model.contains_key("unknown"),
            "Units lines carry no tokens"
        );
        assert!(truth.adjustments["Credit"] < 0.0 && truth.adjustments["Refund"] < 0.0);

        // Per-key breakdowns add up to the total.
        for map in [
            &truth.by_principal,
            &truth.by_role,
            &truth.by_model,
            &truth.by_token_kind,
            &truth.by_team,
            &truth.by_principal_model,
            &truth.by_month,
        ] {
            assert!(close(map.values().sum::<f64>(), truth.total_unblended));
        }
        // Zipf: the top caller alone outspends the bottom half together.
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
        assert_eq!(
            fs::read(a.path().join("truth.json")).unwrap(),
            fs::read(b.path().join("truth.json")).unwrap()
        );
        for rel in &ta.files {
            assert_eq!(
                fs::read(a.path().join(rel)).unwrap(),
                fs::read(b.path().join(rel)).unwrap(),
                "{rel}"
            );
        }
        assert_eq!(ta, tb);
        let tc = generate(&small_spec(4), c.path()).unwrap();
        assert_ne!(ta.by_principal, tc.by_principal);
    }

    #[test]
    fn without_principal_column() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let with = generate(&small_spec(5), a.path()).unwrap();
        let spec = GenSpec {
            include_principal_column: false,
            ..small_spec(5)
        };
        let without = generate(&spec, b.path()).unwrap();
        let batches = read_all(b.path(), &without);
        assert!(!batches.is_empty());
        for (_, batch) in &batches {
            assert!(batch.column_by_name("line_item_iam_principal").is_none());
            assert_eq!(batch.schema().fields(), schema(false).fields());
        }
        assert!(without.by_principal.is_empty() && without.by_role.is_empty());
        assert!(without.by_principal_model.is_empty());
        // The same lines otherwise: equal totals, teams and models.
        assert_eq!(
            (without.total_unblended, &without.by_team, &without.by_model),
            (with.total_unblended, &with.by_team, &with.by_model)
        );
    }

    #[test]
    fn demo_line_items_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let items = crate::demo_data::line_items(date(2026, 11, 26));
        write_line_items(&items, dir.path()).unwrap();
        let mut files: Vec<String> = Vec::new();
        for month in ["2026-09", "2026-10", "2026-11"] {
            let rel = format!("data/BILLING_PERIOD={month}/part-00000.snappy.parquet");
            assert!(dir.path().join(&rel).is_file(), "{rel}");
            files.push(rel);
        }
        let fake_truth = Truth {
            files,
            ..generate_nothing()
        };
        let batches = read_all(dir.path(), &fake_truth);
        let rows: usize = batches.iter().map(|(_, b)| b.num_rows()).sum();
        assert_eq!(rows, items.len());
        let cost: f64 = batches
            .iter()
            .flat_map(|(_, b)| {
                b.column_by_name("line_item_unblended_cost")
                    .unwrap()
                    .as_primitive::<Float64Type>()
                    .values()
                    .to_vec()
            })
            .sum();
        assert!(close(cost, items.iter().map(|l| l.unblended).sum()));
        // A second write into the same place is refused rather than mixed in.
        assert!(matches!(
            write_line_items(&items, dir.path()),
            Err(CurGenError::OutputNotEmpty { .. })
        ));
    }

    /// An empty truth, for reading files that [`write_line_items`] wrote.
    fn generate_nothing() -> Truth {
        Truth {
            total_unblended: 0.0,
            total_net_unblended: 0.0,
            by_principal: BTreeMap::new(),
            by_role: BTreeMap::new(),
            by_model: BTreeMap::new(),
            by_token_kind: BTreeMap::new(),
            by_team: BTreeMap::new(),
            by_principal_model: BTreeMap::new(),
            tokens_by_model: BTreeMap::new(),
            adjustments: BTreeMap::new(),
            by_month: BTreeMap::new(),
            usage_rows: 0,
            rows_written: 0,
            files: Vec::new(),
        }
    }

    #[test]
    fn model_name_rule() {
        assert_eq!(
            model_name("Claude Sonnet 4.6", "USE1-Claude4.6Sonnet-input-tokens"),
            "Claude Sonnet 4.6"
        );
        assert_eq!(
            model_name(
                "",
                "USE1-Claude4.6Opus-cache-read-input-token-count-cross-region-global"
            ),
            "Claude4.6Opus"
        );
        assert_eq!(
            model_name("", "USE1-ProvisionedThroughput-ModelUnits"),
            "unknown"
        );
        assert_eq!(model_name("", ""), "unknown");
        assert_eq!(
            model_name("Nova Pro", "USE1-ProvisionedThroughput-ModelUnits"),
            "Nova Pro"
        );
    }

    #[test]
    fn usage_types_parse_to_their_kind() {
        let world = World::new(&small_spec(1));
        for (r, region) in REGIONS.iter().enumerate() {
            for m in 0..world.models.len() {
                for (k, want) in TOKEN_KINDS[..4].iter().enumerate() {
                    for v in 0..2 {
                        let ut = &world.usage_types[world.token_usage_type(r, m, k, v)];
                        assert_eq!(ut.kind, *want, "{}", ut.text);
                        assert!(ut.text.starts_with(region.0));
                    }
                }
                let pt = &world.usage_types[world.provisioned_usage_type(r, m)];
                assert_eq!(pt.kind, TokenKind::Other, "{}", pt.text);
            }
        }
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
        ] {
            assert!(matches!(
                generate(&spec, dir.path()),
                Err(CurGenError::InvalidSpec(_))
            ));
        }
    }
}
