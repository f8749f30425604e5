//! Writes CUR 2.0 Parquet as a Data Exports export lays it out: the columns (`schema`), Arrow
//! batches of at most [`MAX_BATCH_ROWS`] rows, and `data/BILLING_PERIOD=YYYY-MM/[<delivery>/]
//! <export>-NNNNN.snappy.parquet` files (Data Exports user guide, "Export delivery":
//! <https://docs.aws.amazon.com/cur/latest/userguide/dataexports-export-delivery.html>).
//!
//! The server writes the demo organisation's bill with it (`--demo` on the CUR path); the
//! `generate-cur` command (a module of the binary, not of this library) writes its synthetic
//! bills with it. It only writes: nothing here reads or sums a bill.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate};
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

use crate::demo_data::{DEMO_ACCOUNT, LineItem};

/// Largest Arrow batch and Parquet row group written (rows).
pub const MAX_BATCH_ROWS: usize = 131_072;

/// Rows per file for [`write_line_items`] (the demo organisation fits in one file a month).
const DEMO_ROWS_PER_FILE: usize = 1_000_000;

/// The export name of the demo data's files.
pub const DEMO_EXPORT: &str = "bedrock-demo";

/// Why writing (or generating) an export failed; I/O failures name the path.
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

/// The first day of `day`'s month.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("day 1 exists")
}

/// A create-new delivery: its folder in the billing period and when it was written.
pub struct Delivery {
    pub folder: String,
    pub at_ms: i64,
}
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
pub struct Product<'a> {
    pub service_name: &'a str,
    /// `None` leaves the `model` key out (exports without product metadata).
    pub model: Option<&'a str>,
    pub provider: &'a str,
    pub region: &'a str,
}

/// One line item, borrowing every string so that writing allocates nothing per row.
pub struct Row<'a> {
    /// First day of the billing month (also the partition).
    pub month: NaiveDate,
    pub usage_start: NaiveDate,
    pub usage_end: NaiveDate,
    pub principal: &'a str,
    pub line_item_type: &'a str,
    pub product_code: &'a str,
    pub usage_type: &'a str,
    pub operation: &'a str,
    pub account: &'a str,
    pub usage_amount: f64,
    pub pricing_unit: &'a str,
    pub unblended: f64,
    pub net_unblended: Option<f64>,
    pub currency: &'a str,
    pub region: &'a str,
    pub product: Product<'a>,
    /// Principal tags with their `iamPrincipal/` prefix.
    pub tags: &'a [(String, String)],
    /// Value of the non-principal tag `resourceTags/user:env`, if any.
    pub env_tag: Option<&'a str>,
}

/// Milliseconds since the Unix epoch at 00:00 of `day`.
pub fn day_ms(day: NaiveDate) -> i64 {
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
        self.operation.append_value(row.operation);
        self.account.append_value(row.account);
        self.usage_amount.append_value(row.usage_amount);
        self.pricing_unit.append_value(row.pricing_unit);
        self.unblended.append_value(row.unblended);
        self.net_unblended.append_option(row.net_unblended);
        self.currency.append_value(row.currency);
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

/// Streams rows into `data/BILLING_PERIOD=YYYY-MM/[<delivery>/]<export>-NNNNN.snappy.parquet`
/// (the names Data Exports gives its files).
///
/// Rows must arrive grouped by month (one month is finished before the next
/// starts); a new file starts every `rows_per_file` rows and every month.
pub struct PartitionedWriter<'a> {
    out_dir: &'a Path,
    export: String,
    /// The delivery folder of each month (create-new delivery), `None` for overwrite.
    delivery: Option<Box<dyn Fn(NaiveDate) -> Delivery + 'a>>,
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
    pub fn new(
        out_dir: &'a Path,
        include_principal_column: bool,
        rows_per_file: usize,
        export: &str,
        delivery: Option<Box<dyn Fn(NaiveDate) -> Delivery + 'a>>,
    ) -> Self {
        PartitionedWriter {
            out_dir,
            export: export.to_string(),
            delivery,
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

    pub fn push(&mut self, row: &Row) -> Result<(), CurGenError> {
        if self.month != Some(row.month) {
            self.close_month()?;
            self.month = Some(row.month);
            self.next_part = 1;
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
            self.finish_file(file)
        } else {
            self.open = Some(file);
            Ok(())
        }
    }

    fn open_file(&mut self) -> Result<OpenFile, CurGenError> {
        let month = self.month.expect("a row set the month before any flush");
        let folder = self
            .delivery
            .as_ref()
            .map(|d| format!("{}/", d(month).folder))
            .unwrap_or_default();
        let rel = format!(
            "data/BILLING_PERIOD={}/{folder}{}-{:05}.snappy.parquet",
            month.format("%Y-%m"),
            self.export,
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
            Some(f) => self.finish_file(f),
            None => Ok(()),
        }
    }

    /// Close a file; a create-new delivery's files carry the delivery's time, so "the newest
    /// delivery" is the one written last.
    fn finish_file(&self, f: OpenFile) -> Result<(), CurGenError> {
        let path = f.path.clone();
        close_file(f)?;
        if let (Some(d), Some(month)) = (&self.delivery, self.month) {
            let at = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(d(month).at_ms.max(0) as u64);
            File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(at))
                .map_err(|source| CurGenError::Io { path, source })?;
        }
        Ok(())
    }

    /// Close everything; the files written (relative paths) and the row count.
    pub fn finish(mut self) -> Result<(Vec<String>, u64), CurGenError> {
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
pub fn prepare_out_dir(out_dir: &Path) -> Result<(), CurGenError> {
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
/// with the same schema and layout as `generate-cur`, so the CUR engine can serve
/// `--demo` from Parquet. Items may come in any order; each lands in its month.
pub fn write_line_items(items: &[LineItem], out_dir: &Path) -> Result<(), CurGenError> {
    prepare_out_dir(out_dir)?;
    let mut ordered: Vec<&LineItem> = items.iter().collect();
    ordered.sort_by_key(|li| month_of(li.usage_start));
    let mut writer = PartitionedWriter::new(out_dir, true, DEMO_ROWS_PER_FILE, DEMO_EXPORT, None);
    for li in ordered {
        writer.push(&Row {
            month: month_of(li.usage_start),
            usage_start: li.usage_start,
            usage_end: li.usage_start + Duration::days(1),
            principal: &li.principal,
            line_item_type: &li.line_item_type,
            product_code: &li.product_code,
            usage_type: &li.usage_type,
            operation: "InvokeModelInference",
            account: DEMO_ACCOUNT,
            usage_amount: li.usage_amount,
            pricing_unit: &li.pricing_unit,
            unblended: li.unblended,
            net_unblended: li.net_unblended,
            currency: "USD",
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
