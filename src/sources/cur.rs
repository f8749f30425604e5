//! CUR 2.0 through the embedded engine (Apache DataFusion) on Parquet, from a
//! local folder or `s3://bucket/prefix`. Streaming and parallel; memory is
//! bounded by the number of groups, not rows.
//!
//! The export layout is `.../data/BILLING_PERIOD=YYYY-MM/*.parquet`; the
//! `BILLING_PERIOD` partition prunes months outside the asked period.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::{ParquetReadOptions, SessionConfig};

use super::cur_rollup::{self, Listing, Rollups};
use super::cur_sql::{self, CurSql, Dialect, RawRow, TableShape};
use super::{Progress, SpendAnswer, SpendSource};
use super::{cur_delivery, cur_map_get, cur_scan};
use crate::domain::group::SpendQuery;
use crate::error::ToolError;

/// Where the CUR files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurLocation {
    Local(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
}

impl CurLocation {
    /// Parse `--cur`: a local folder or `s3://bucket/prefix`.
    pub fn parse(raw: &str) -> Result<CurLocation, String> {
        if let Some(rest) = raw.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("'{raw}' has no bucket; write s3://bucket/prefix"));
            }
            return Ok(CurLocation::S3 {
                bucket: bucket.into(),
                prefix: prefix.trim_matches('/').into(),
            });
        }
        Ok(CurLocation::Local(std::path::PathBuf::from(raw)))
    }
}

/// Whether a map speed-up is on: `BEDROCK_COST_MCP_CUR_VIEW_MAPS=0` or
/// `BEDROCK_COST_MCP_CUR_MAP_GET=0` turns one off (to compare, or to rule it out).
fn fast_maps(var: &str) -> bool {
    std::env::var(var).as_deref() != Ok("0")
}

/// Month rollups of this export: where they are kept, how the files are listed, what the
/// schema offers, and whether missing ones are built after answering (a server) or before (a
/// one-shot command, whose process ends with the answer).
struct RollupSet {
    rollups: Rollups,
    listing: Listing,
    columns: cur_rollup::Columns,
    build: cur_rollup::Build,
}

pub use cur_rollup::Settings as RollupSettings;

/// The embedded CUR engine.
pub struct CurEngine {
    ctx: SessionContext,
    shape: TableShape,
    location: String,
    /// Where the export's files are listed (for deliveries and rollups).
    export_files: Option<(
        Arc<dyn object_store::ObjectStore>,
        Option<object_store::path::Path>,
    )>,
    /// When the files were last listed, the newest file's modification time (when the export
    /// was last delivered) and the number of files; listed again after `DELIVERY_RECHECK`.
    seen: std::sync::Mutex<(Instant, Option<chrono::DateTime<Utc>>, usize)>,
    /// Month rollups (`cur_rollup`), when on and the files can be listed.
    rollups: Option<Arc<RollupSet>>,
    /// How the current delivery of each month is chosen (`cur_delivery`), and the choice.
    deliveries: Option<Deliveries>,
    /// Billing period -> (files listed when probed, whether its lines span the month: a
    /// MONTHLY-granularity export).
    monthly: std::sync::Mutex<std::collections::HashMap<String, (usize, bool)>>,
    /// Numbers the per-question rollup tables.
    seq: std::sync::atomic::AtomicU64,
}

/// Where an export's files and manifests are listed, and the shared choice of files that the
/// [`cur_delivery::CurrentDelivery`] stores read.
struct Deliveries {
    data: Arc<dyn object_store::ObjectStore>,
    data_prefix: Option<object_store::path::Path>,
    meta: Option<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)>,
    selection: Arc<std::sync::RwLock<Arc<cur_delivery::Selection>>>,
}

impl Deliveries {
    /// Choose the files again (a delivery may have arrived).
    async fn refresh(&self) -> Result<(), object_store::Error> {
        let chosen = cur_delivery::select(
            (self.data.as_ref(), self.data_prefix.as_ref()),
            self.meta.as_ref().map(|(s, p)| (s.as_ref(), p.clone())),
        )
        .await?;
        if let Ok(mut s) = self.selection.write() {
            *s = Arc::new(chosen);
        }
        Ok(())
    }

    fn notes(&self) -> Vec<String> {
        let s = self.selection.read().map(|s| s.clone()).unwrap_or_default();
        let mut notes = s.notes.clone();
        if s.by_manifest > 0 {
            notes.push(format!(
                "read the files the export's manifest lists for {} billing period(s) (its current delivery)",
                s.by_manifest
            ));
        }
        notes
    }
}

fn engine_err(e: impl std::fmt::Display) -> ToolError {
    ToolError::Upstream {
        service: "CUR engine".into(),
        code: "QueryFailed".into(),
        message: e.to_string(),
        hint: String::new(),
    }
}

/// The engine's memory pool in bytes: `BEDROCK_COST_MCP_CUR_MEMORY_LIMIT_MB` (default 2048).
fn memory_limit() -> usize {
    std::env::var("BEDROCK_COST_MCP_CUR_MEMORY_LIMIT_MB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|mb| *mb >= 64)
        .unwrap_or(2048)
        << 20
}

impl CurEngine {
    /// Open the export. Checks that files exist and reads the schema once.
    pub async fn open(
        location: &CurLocation,
        s3: Option<Arc<dyn object_store::ObjectStore>>,
        rollups: Option<RollupSettings>,
    ) -> Result<CurEngine, ToolError> {
        // DataFusion's own settings can be tuned with DATAFUSION_* environment variables
        // (e.g. DATAFUSION_EXECUTION_BATCH_SIZE); unset ones keep DataFusion's defaults.
        let base = SessionConfig::from_env().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring DATAFUSION_* settings");
            SessionConfig::new()
        });
        let mut base = base;
        // Create-new deliveries put each refresh in a `<timestamp>-<id>/` folder inside the
        // period: read below it (DataFusion skips non-partition subfolders by default, which
        // made such an export look empty); `cur_delivery` picks which delivery is read.
        base.options_mut()
            .execution
            .listing_table_ignore_subdirectory = false;
        let config = base.with_target_partitions(
            std::thread::available_parallelism()
                .map(std::num::NonZero::get)
                .unwrap_or(2),
        );
        // No list-files cache: DataFusion's default keeps a table's file list forever, and a
        // server would never see the next delivery (a file added to the month).
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            // Operators that keep state (grouping, sorting) take memory from a bounded pool; a
            // question that needs more fails with a clear error instead of taking the host.
            .with_memory_limit(memory_limit(), 1.0)
            .with_cache_manager(
                datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
                    .with_list_files_cache_limit(0),
            )
            .build_arc()
            .map_err(engine_err)?;
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features();
        // `m['k']` on a map through `cur_map_get` (see there), ahead of DataFusion's planners.
        if fast_maps("BEDROCK_COST_MCP_CUR_MAP_GET")
            && let Some(planners) = state.expr_planners()
        {
            planners.insert(0, Arc::new(cur_map_get::MapGetPlanner));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let mut listing: Option<(
            Arc<dyn object_store::ObjectStore>,
            Option<object_store::path::Path>,
        )> = None;
        let selection = Arc::new(std::sync::RwLock::new(Arc::new(
            cur_delivery::Selection::default(),
        )));
        let filtered =
            |store: Arc<dyn object_store::ObjectStore>| -> Arc<dyn object_store::ObjectStore> {
                Arc::new(cur_delivery::CurrentDelivery::new(store, selection.clone()))
            };
        let mut deliveries: Option<Deliveries> = None;
        let table_url = match location {
            CurLocation::Local(path) => {
                if !path.is_dir() {
                    return Err(ToolError::invalid(format!(
                        "CUR folder {} does not exist or is not a folder; pass the export folder that holds data/BILLING_PERIOD=YYYY-MM/ (or the data/ folder itself)",
                        path.display()
                    )));
                }
                let data = if path.join("data").is_dir() {
                    path.join("data")
                } else {
                    path.clone()
                };
                let abs = data.canonicalize().map_err(|e| {
                    ToolError::invalid(format!("cannot read {}: {e}", data.display()))
                })?;
                if let Ok(fs) = object_store::local::LocalFileSystem::new_with_prefix(&abs) {
                    let fs: Arc<dyn object_store::ObjectStore> = Arc::new(fs);
                    // The manifests are in the export folder's metadata/, next to data/.
                    let meta = abs
                        .parent()
                        .map(|root| root.join("metadata"))
                        .filter(|m| m.is_dir());
                    let meta = meta.and_then(|m| {
                        object_store::local::LocalFileSystem::new_with_prefix(&m)
                            .ok()
                            .map(|s| {
                                (
                                    Arc::new(s) as Arc<dyn object_store::ObjectStore>,
                                    object_store::path::Path::from(""),
                                )
                            })
                    });
                    deliveries = Some(Deliveries {
                        data: fs.clone(),
                        data_prefix: None,
                        meta,
                        selection: selection.clone(),
                    });
                    listing = Some((filtered(fs), None));
                }
                // DataFusion reads file:// URLs through this store: the same choice of files.
                let url =
                    url::Url::parse("file://").map_err(|e| ToolError::invalid(e.to_string()))?;
                ctx.register_object_store(
                    &url,
                    filtered(Arc::new(object_store::local::LocalFileSystem::new())),
                );
                format!("{}/", abs.display())
            }
            CurLocation::S3 { bucket, prefix } => {
                let raw = s3.ok_or_else(|| ToolError::invalid("no S3 client configured"))?;
                let store = filtered(raw.clone());
                let url = url::Url::parse(&format!("s3://{bucket}"))
                    .map_err(|e| ToolError::invalid(e.to_string()))?;
                ctx.register_object_store(&url, store.clone());
                let base = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                };
                // Use <prefix>/data/ when the export folder was given.
                let data_prefix = object_store::path::Path::from(format!("{base}data"));
                let has_data = {
                    use futures::TryStreamExt;
                    store
                        .list(Some(&data_prefix))
                        .try_next()
                        .await
                        .map_err(|e| s3_error(bucket, &e))?
                        .is_some()
                };
                let listed = if has_data {
                    data_prefix
                } else {
                    object_store::path::Path::from(base.trim_end_matches('/'))
                };
                // metadata/ sits next to data/ (also when the data/ prefix itself was given).
                let meta_prefix = if has_data {
                    Some(format!("{base}metadata"))
                } else {
                    base.trim_end_matches('/')
                        .strip_suffix("data")
                        .map(|root| format!("{root}metadata"))
                };
                deliveries = Some(Deliveries {
                    data: raw.clone(),
                    data_prefix: Some(listed.clone()),
                    meta: meta_prefix.map(|p| (raw.clone(), object_store::path::Path::from(p))),
                    selection: selection.clone(),
                });
                listing = Some((store.clone(), Some(listed)));
                if has_data {
                    format!("s3://{bucket}/{base}data/")
                } else {
                    format!("s3://{bucket}/{base}")
                }
            }
        };
        if let Some(d) = &deliveries {
            d.refresh().await.map_err(|e| {
                ToolError::invalid(format!("cannot list the CUR export at {table_url}: {e}"))
            })?;
        }
        let options = ParquetReadOptions::default()
            .file_extension(".parquet")
            .table_partition_cols(vec![("BILLING_PERIOD".to_string(), DataType::Utf8)]);
        let unreadable = |e: datafusion::error::DataFusionError| {
            ToolError::invalid(format!(
                "cannot read CUR 2.0 Parquet at {table_url}: {e}. Expected files under BILLING_PERIOD=YYYY-MM/ folders"
            ))
        };
        ctx.register_parquet("cur", &table_url, options.clone())
            .await
            .map_err(unreadable)?;
        // Again with the string maps' values as views (see `cur_scan`): the inferred schema,
        // without the partition column the options add back.
        let inferred = ctx
            .table("cur")
            .await
            .map_err(engine_err)?
            .schema()
            .as_arrow()
            .clone();
        let file_fields: Vec<_> = inferred
            .fields()
            .iter()
            .filter(|f| f.name() != "BILLING_PERIOD")
            .cloned()
            .collect();
        let file_schema = datafusion::arrow::datatypes::Schema::new(file_fields);
        if let Some(viewed) = cur_scan::with_view_maps(&file_schema)
            && fast_maps("BEDROCK_COST_MCP_CUR_VIEW_MAPS")
        {
            ctx.deregister_table("cur").map_err(engine_err)?;
            ctx.register_parquet("cur_files", &table_url, options.schema(&viewed))
                .await
                .map_err(unreadable)?;
            let listing = ctx.table_provider("cur_files").await.map_err(engine_err)?;
            ctx.deregister_table("cur_files").map_err(engine_err)?;
            ctx.register_table("cur", Arc::new(cur_scan::ViewMapTable { inner: listing }))
                .map_err(engine_err)?;
        }
        let df = ctx.table("cur").await.map_err(engine_err)?;
        let schema = df.schema();
        let has = |c: &str| schema.fields().iter().any(|f| f.name() == c);
        let missing: Vec<&str> = [
            "line_item_usage_start_date",
            "line_item_unblended_cost",
            "line_item_usage_type",
            "line_item_line_item_type",
            "tags",
            "product",
        ]
        .into_iter()
        .filter(|c| !has(c))
        .collect();
        if !missing.is_empty() {
            return Err(ToolError::invalid(format!(
                "{table_url} does not look like a CUR 2.0 export: missing column(s) {}. Point --cur at a CUR 2.0 (Data Exports, Parquet) export",
                missing.join(", ")
            )));
        }
        let shape = TableShape {
            table: "cur".into(),
            partition_column: Some("BILLING_PERIOD".into()),
            has_principal: has("line_item_iam_principal"),
            rollup: false,
        };
        let (delivered, files) = match &listing {
            Some((store, prefix)) => newest_parquet(store.as_ref(), prefix.as_ref()).await,
            None => (None, 0),
        };
        let columns = cur_rollup::Columns {
            principal: shape.has_principal,
            net: has("line_item_net_unblended_cost"),
            region: has("product_region_code"),
        };
        let rollups = match (rollups, &listing) {
            (Some(settings), Some((store, prefix))) => Some(Arc::new(RollupSet {
                rollups: Rollups::new(settings.dir, settings.min_bytes),
                listing: Listing {
                    store: store.clone(),
                    prefix: prefix.clone(),
                    url: table_url.clone(),
                },
                columns,
                build: settings.build,
            })),
            _ => None,
        };
        Ok(CurEngine {
            ctx,
            shape,
            location: table_url,
            export_files: listing,
            seen: std::sync::Mutex::new((Instant::now(), delivered, files)),
            rollups,
            deliveries,
            monthly: Default::default(),
            seq: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Whether the export carries IAM principal data.
    pub fn has_principal(&self) -> bool {
        self.shape.has_principal
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Parquet files found under the location.
    pub fn files(&self) -> usize {
        self.seen.lock().map(|s| s.2).unwrap_or_default()
    }

    /// The newest Parquet file's modification time (when the export was last delivered).
    pub fn delivered(&self) -> Option<chrono::DateTime<Utc>> {
        self.seen.lock().ok().and_then(|s| s.1)
    }

    /// The last delivery and the number of files, listed again when the last listing is over
    /// `DELIVERY_RECHECK` old (a server runs for days; CUR delivers up to a few times a day).
    async fn delivery(&self) -> (Option<chrono::DateTime<Utc>>, usize) {
        let stale = self
            .seen
            .lock()
            .map(|s| s.0.elapsed() > DELIVERY_RECHECK)
            .unwrap_or(true);
        if stale && let Some((store, prefix)) = &self.export_files {
            if let Some(d) = &self.deliveries
                && let Err(e) = d.refresh().await
            {
                tracing::warn!(error = %e, "cannot list the CUR export again; keeping the last choice of files");
            }
            let (delivered, files) = newest_parquet(store.as_ref(), prefix.as_ref()).await;
            if let Ok(mut s) = self.seen.lock() {
                *s = (Instant::now(), delivered, files);
            }
        }
        (self.delivered(), self.files())
    }

    /// Build the missing rollups of the last `months` billing months (newest first).
    async fn prebuild(&self, months: u32) {
        let Some(set) = self.rollups.as_ref() else {
            return;
        };
        let mut month = crate::domain::period::first_of_month(crate::domain::clock::today());
        let mut names = Vec::new();
        for _ in 0..months {
            names.push(month.format("%Y-%m").to_string());
            month = crate::domain::period::prev_month(month);
        }
        set.rollups
            .ensure_all(&self.ctx, &set.listing, set.columns, &names)
            .await;
    }

    /// Answer from the month rollups. None: rollups are off, the period has no files, a
    /// month's rollup is missing (then built after the answer, when in the background), or
    /// something failed (logged); the answer comes from the export then. The note says which.
    async fn answer_from_rollups(
        &self,
        q: &SpendQuery,
        progress: Progress,
    ) -> (Option<(CurSql, Vec<RecordBatch>)>, Option<String>) {
        let Some(set) = self.rollups.as_ref() else {
            return (None, None);
        };
        let months = cur_sql::months_of(q.period.start, q.period.end);
        let picked = with_ticker(
            progress,
            "summarising the month's CUR files (once per delivery)",
            set.rollups.pick(
                &self.ctx,
                &set.listing,
                set.columns,
                &months,
                set.build == cur_rollup::Build::BeforeAnswer,
            ),
        )
        .await;
        let picked = match picked {
            Ok(p) if !p.missing.is_empty() && set.build == cur_rollup::Build::Never => {
                return (None, None);
            }
            Ok(p) if !p.missing.is_empty() => {
                let (ctx, set2, missing) = (self.ctx.clone(), set.clone(), p.missing.clone());
                tokio::spawn(async move {
                    set2.rollups
                        .ensure_all(&ctx, &set2.listing, set2.columns, &missing)
                        .await;
                });
                return (
                    None,
                    Some(format!(
                        "scanned the export; {} now summarised in the background, so later questions about it read a small rollup instead",
                        p.missing.join(", ")
                    )),
                );
            }
            Ok(p) if !p.files.is_empty() => p,
            Ok(_) => return (None, None),
            Err(e) => {
                tracing::warn!(error = %e, "CUR rollup unavailable; answering from the export");
                return (None, None);
            }
        };
        let table = format!(
            "cur_rollup_{}",
            self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let shape = TableShape {
            table: table.clone(),
            partition_column: None,
            has_principal: self.shape.has_principal,
            rollup: true,
        };
        let answered = async {
            cur_rollup::register(&self.ctx, &table, &picked.files).await?;
            let sql = cur_sql::build(q, &shape, Dialect::DataFusion).map_err(|e| e.to_string())?;
            tracing::debug!(sql = %sql.sql, "CUR rollup query");
            let batches = self.run(&sql).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((sql, batches))
        }
        .await;
        let _ = self.ctx.deregister_table(&table);
        match answered {
            Ok(found) => {
                let note = format!(
                    "read from {} month rollup(s) of the export{} (kept in {}; rebuilt when a delivery changes the month's files)",
                    picked.files.len(),
                    if picked.built > 0 {
                        format!(", {} built for this question", picked.built)
                    } else {
                        String::new()
                    },
                    set.rollups.dir().display()
                );
                (Some(found), Some(note))
            }
            Err(e) => {
                tracing::warn!(error = %e, "CUR rollup query failed; answering from the export");
                (None, None)
            }
        }
    }

    /// A MONTHLY-granularity export (Data Exports "time granularity") has one line per month,
    /// dated from the 1st: a daily or part-of-a-month question would silently put the whole
    /// month on the 1st or miss it. Refuse those with the reason; whole months are exact.
    async fn refuse_days_of_monthly_lines(&self, q: &SpendQuery) -> Result<(), ToolError> {
        use crate::domain::group::Granularity;
        let today = crate::domain::clock::today();
        if q.granularity == Granularity::Monthly && q.period.whole_months(today) {
            return Ok(());
        }
        let files = self.files();
        let mut monthly = Vec::new();
        for period in cur_sql::months_of(q.period.start, q.period.end) {
            let known = self
                .monthly
                .lock()
                .ok()
                .and_then(|m| m.get(&period).copied())
                .filter(|(n, _)| *n == files)
                .map(|(_, m)| m);
            let is_monthly = match known {
                Some(m) => m,
                None => {
                    let probe = format!(
                        "SELECT 1 FROM {} WHERE \"BILLING_PERIOD\" = '{period}' \
                         AND line_item_line_item_type = 'Usage' \
                         AND line_item_usage_end_date > line_item_usage_start_date + INTERVAL '1' DAY LIMIT 1",
                        self.shape.table
                    );
                    let found = self.ctx.sql(&probe).await.map_err(engine_err)?;
                    let rows: usize = found
                        .collect()
                        .await
                        .map_err(engine_err)?
                        .iter()
                        .map(datafusion::arrow::array::RecordBatch::num_rows)
                        .sum();
                    if let Ok(mut m) = self.monthly.lock() {
                        m.insert(period.clone(), (files, rows > 0));
                    }
                    rows > 0
                }
            };
            if is_monthly {
                monthly.push(period);
            }
        }
        if monthly.is_empty() {
            return Ok(());
        }
        Err(ToolError::invalid(format!(
            "this CUR export has MONTHLY time granularity for {} (one line per month, dated from the 1st), so {} cannot be told from it: ask for whole months with granularity monthly (e.g. period last_month or this_month), or point --cur at an export with DAILY or HOURLY granularity",
            monthly.join(", "),
            if q.granularity == Granularity::Daily {
                "spend per day"
            } else {
                "spend for part of a month"
            }
        )))
    }

    async fn run(&self, q: &CurSql) -> Result<Vec<RecordBatch>, ToolError> {
        let df = self.ctx.sql(&q.sql).await.map_err(engine_err)?;
        let params: Vec<ScalarValue> = q
            .params
            .iter()
            .map(|p| ScalarValue::Utf8(Some(p.clone())))
            .collect();
        let df = if params.is_empty() {
            df
        } else {
            df.with_param_values(params).map_err(engine_err)?
        };
        df.collect().await.map_err(engine_err)
    }
}

/// The newest Parquet file's modification time and the number of files.
async fn newest_parquet(
    store: &dyn object_store::ObjectStore,
    prefix: Option<&object_store::path::Path>,
) -> (Option<chrono::DateTime<Utc>>, usize) {
    use futures::StreamExt;
    let mut stream = store.list(prefix);
    let (mut newest, mut files) = (None, 0usize);
    while let Some(Ok(meta)) = stream.next().await {
        if meta.location.as_ref().ends_with(".parquet") {
            files += 1;
            newest = newest.max(Some(meta.last_modified));
        }
    }
    (newest, files)
}

fn s3_error(bucket: &str, e: &object_store::Error) -> ToolError {
    let text = e.to_string();
    if text.contains("AccessDenied") || text.contains("403") {
        ToolError::AccessDenied {
            action: "s3:ListBucket and s3:GetObject".into(),
            message: format!("bucket {bucket}: {text}"),
        }
    } else if text.contains("NoSuchBucket") || text.contains("404") {
        ToolError::invalid(format!("S3 bucket {bucket} not found: {text}"))
    } else {
        ToolError::Unreachable {
            service: "S3".into(),
            message: text,
        }
    }
}

/// Read engine batches into raw rows (group columns as strings, then cost, tokens, other_cost).
pub fn batches_to_rows(
    batches: &[RecordBatch],
    n_group_cols: usize,
) -> Result<Vec<RawRow>, ToolError> {
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    cur_sql::check_group_count(total)?;
    let mut rows = Vec::new();
    for b in batches {
        if b.num_columns() != n_group_cols + 3 {
            return Err(engine_err(format!(
                "expected {} columns, got {}",
                n_group_cols + 3,
                b.num_columns()
            )));
        }
        let strings = (0..n_group_cols)
            .map(|i| cast(b.column(i), &DataType::Utf8).map_err(engine_err))
            .collect::<Result<Vec<_>, _>>()?;
        let cost = cast(b.column(n_group_cols), &DataType::Float64).map_err(engine_err)?;
        let usage = cast(b.column(n_group_cols + 1), &DataType::Float64).map_err(engine_err)?;
        let other = cast(b.column(n_group_cols + 2), &DataType::Float64).map_err(engine_err)?;
        let cost = cost.as_primitive::<Float64Type>();
        let usage = usage.as_primitive::<Float64Type>();
        let other = other.as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let values = strings
                .iter()
                .map(|a| {
                    let s = a.as_string::<i32>();
                    (!s.is_null(r)).then(|| s.value(r).to_string())
                })
                .collect();
            rows.push(RawRow {
                values,
                cost: if cost.is_null(r) { 0.0 } else { cost.value(r) },
                tokens: (!usage.is_null(r)).then(|| usage.value(r)),
                other_cost: if other.is_null(r) {
                    0.0
                } else {
                    other.value(r)
                },
            });
        }
    }
    Ok(rows)
}

/// Report progress every second while `fut` runs (queries over 1 s).
pub async fn with_ticker<T>(
    progress: Progress,
    label: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tick.tick() => progress(start.elapsed().as_secs_f64(), 0.0, format!("{label}: {:.0} s", start.elapsed().as_secs_f64())),
        }
    }
}

#[async_trait::async_trait]
impl SpendSource for CurEngine {
    fn name(&self) -> &'static str {
        "cur"
    }

    async fn spend(&self, q: &SpendQuery, progress: Progress) -> Result<SpendAnswer, ToolError> {
        // Built on the export's shape first: its refusals (no principal column, bad tag key)
        // hold whatever answers.
        let sql = cur_sql::build(q, &self.shape, Dialect::DataFusion)?;
        self.refuse_days_of_monthly_lines(q).await?;
        let (found, rollup_note) = self.answer_from_rollups(q, progress.clone()).await;
        let (sql, batches) = match found {
            Some(found) => found,
            None => {
                tracing::debug!(sql = %sql.sql, "CUR query");
                let batches = with_ticker(progress, "scanning CUR Parquet", self.run(&sql)).await?;
                (sql, batches)
            }
        };
        let raw = batches_to_rows(&batches, sql.columns.len())?;
        let shaped = cur_sql::shape_off_thread(q, &sql.columns, raw).await?;
        let (delivered, files) = self.delivery().await;
        let mut notes = vec![format!(
            "CUR export {} ({} Parquet files{}); CUR lags real usage by up to 24 h",
            self.location,
            files,
            delivered
                .map(|d| format!(", last delivered {}", d.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default()
        )];
        notes.extend(rollup_note);
        if let Some(d) = &self.deliveries {
            notes.extend(d.notes());
        }
        notes.extend(cur_sql::shaped_notes(&shaped));
        Ok(SpendAnswer {
            rows: shaped.rows,
            currency: shaped.currency.unwrap_or_else(|| "USD".into()),
            estimated: q.period.may_be_restated(crate::domain::clock::today()),
            services_counted: vec![],
            paid_requests: 0,
            cached: false,
            as_of: delivered.unwrap_or_else(crate::domain::clock::now),
            source: "cur",
            notes,
            adjustments: shaped.adjustments,
            scanned_bytes: None,
            no_principal: Some(shaped.no_principal),
            newest_record: None,
        })
    }
}

/// How to get the export when it is first needed.
pub enum CurOrigin {
    /// A configured export.
    Location(CurLocation, Option<Arc<dyn object_store::ObjectStore>>),
    /// The demo organisation, written as Parquet on first use.
    Demo(chrono::NaiveDate),
}

/// Opens the engine on first use, so startup stays fast; a failed open is
/// reported to the caller and retried on the next call.
pub struct LazyCur {
    origin: CurOrigin,
    rollups: Option<RollupSettings>,
    engine: tokio::sync::OnceCell<CurEngine>,
    /// Answers kept for five minutes: exports change at most a few times a
    /// day, and budget checks in a loop should not rescan them.
    answers: std::sync::Mutex<std::collections::HashMap<SpendQuery, (Instant, SpendAnswer)>>,
}

const ANSWER_TTL: Duration = Duration::from_secs(300);

/// How old the export's file listing may get before an answer lists it again.
const DELIVERY_RECHECK: Duration = Duration::from_secs(60);

impl LazyCur {
    /// `rollups`: how month rollups are kept (None: every question scans the export).
    pub fn new(origin: CurOrigin, rollups: Option<RollupSettings>) -> Self {
        LazyCur {
            origin,
            rollups,
            engine: tokio::sync::OnceCell::new(),
            answers: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    async fn engine(&self) -> Result<&CurEngine, ToolError> {
        self.engine
            .get_or_try_init(|| async {
                match &self.origin {
                    CurOrigin::Location(loc, s3) => {
                        CurEngine::open(loc, s3.clone(), self.rollups.clone()).await
                    }
                    CurOrigin::Demo(today) => {
                        let dir = demo_export(*today).await?;
                        CurEngine::open(&CurLocation::Local(dir), None, self.rollups.clone()).await
                    }
                }
            })
            .await
    }
}

/// Seconds a server waits after start before building rollups (start-up stays light), and
/// between checks for new deliveries.
const PREBUILD_DELAY: Duration = Duration::from_secs(2);
const PREBUILD_EVERY: Duration = Duration::from_secs(15 * 60);

impl LazyCur {
    /// Keep the rollups of the last `months` billing months (this one included) built: a
    /// server's loop, so that even its first question reads a rollup. Opens the export; a
    /// failure is logged and tried again on the next round.
    pub async fn keep_rollups(self: Arc<Self>, months: u32) {
        tokio::time::sleep(PREBUILD_DELAY).await;
        loop {
            match self.engine().await {
                Ok(engine) => engine.prebuild(months).await,
                Err(e) => tracing::warn!(error = %e, "CUR export not opened for rollups"),
            }
            tokio::time::sleep(PREBUILD_EVERY).await;
        }
    }
}

/// Where the demo export is written: the user's cache folder (`$XDG_CACHE_HOME` or
/// `~/.cache`, then `bedrock-cost-mcp/demo`), never a shared, predictable folder under /tmp
/// where another local user could plant files before us. Without a home, a private folder
/// (mode 0700, random name) made for this process.
fn demo_base() -> Result<std::path::PathBuf, ToolError> {
    if let Some(dir) = crate::sources::user_dir("XDG_CACHE_HOME", ".cache") {
        return Ok(dir.join("demo"));
    }
    static PRIVATE: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
        std::sync::OnceLock::new();
    PRIVATE
        .get_or_init(|| {
            tempfile::Builder::new()
                .prefix("bedrock-cost-mcp-demo-")
                .tempdir()
                .map(tempfile::TempDir::keep)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| {
            ToolError::Internal(format!("cannot make a folder for the demo CUR export: {e}"))
        })
}

/// Write the demo organisation's CUR export once per calendar day (atomically: concurrent
/// servers each write their own copy, one wins).
async fn demo_export(today: chrono::NaiveDate) -> Result<std::path::PathBuf, ToolError> {
    let base = demo_base()?;
    let dir = base.join(format!("v{}-{today}", crate::demo_data::DEMO_DATA_VERSION));
    if dir.join("data").is_dir() {
        return Ok(dir);
    }
    tokio::task::spawn_blocking(move || {
        let io = |e: std::io::Error| {
            ToolError::Internal(format!(
                "cannot write the demo CUR export under {}: {e}",
                base.display()
            ))
        };
        std::fs::create_dir_all(&base).map_err(io)?;
        let tmp = base.join(format!(".{}-{}", today, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        crate::cur_file::write_line_items(&crate::demo_data::line_items(today), &tmp)
            .map_err(|e| ToolError::Internal(format!("cannot write the demo CUR export: {e}")))?;
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another process won the race; its copy is identical.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Ok(dir)
    })
    .await
    .map_err(|e| ToolError::Internal(format!("demo export task failed: {e}")))?
}

#[async_trait::async_trait]
impl SpendSource for LazyCur {
    fn name(&self) -> &'static str {
        "cur"
    }

    async fn spend(&self, q: &SpendQuery, progress: Progress) -> Result<SpendAnswer, ToolError> {
        if let Some((at, ans)) = self.answers.lock().expect("cache lock").get(q)
            && at.elapsed() < ANSWER_TTL
        {
            let mut ans = ans.clone();
            ans.cached = true;
            return Ok(ans);
        }
        let mut ans = self.engine().await?.spend(q, progress).await?;
        if matches!(self.origin, CurOrigin::Demo(_)) {
            ans.notes.push(
                "demo data: a fictional organisation (Acme Example Corp), not your account".into(),
            );
        }
        let mut answers = self.answers.lock().expect("cache lock");
        if answers.len() >= 256 {
            answers.retain(|_, (at, _)| at.elapsed() < ANSWER_TTL);
            if answers.len() >= 256 {
                answers.clear();
            }
        }
        answers.insert(q.clone(), (Instant::now(), ans.clone()));
        Ok(ans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            CurLocation::parse("s3://b/cur/exp/").unwrap(),
            CurLocation::S3 {
                bucket: "b".into(),
                prefix: "cur/exp".into()
            }
        );
        assert!(CurLocation::parse("s3:///x").is_err());
        assert_eq!(
            CurLocation::parse("/tmp/x").unwrap(),
            CurLocation::Local("/tmp/x".into())
        );
    }
}

/// The rollup against the export on hand-made lines: a tag key no question can name (a quote
/// in it), resource tags, lines without tags, another service's lines, a Marketplace model line
/// without a principal, and a month whose lines carry no tag at all.
#[cfg(test)]
mod rollup_tests {
    use super::*;
    use crate::demo_data::LineItem;
    use crate::domain::group::{Granularity, GroupKey, Metric, SpendFilter};
    use crate::domain::period::Period;
    use chrono::NaiveDate;

    fn line(
        day: &str,
        principal: &str,
        tags: &[(&str, &str)],
        service: &str,
        cost: f64,
    ) -> LineItem {
        LineItem {
            usage_start: NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap(),
            principal: principal.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            usage_type: "USE1-Claude4.5Sonnet-input-tokens".into(),
            region: "us-east-1".into(),
            service_name: service.into(),
            product_code: if service == "Amazon Bedrock" {
                "AmazonBedrock"
            } else {
                "AmazonEC2"
            }
            .into(),
            model: "Claude Sonnet 4.5".into(),
            provider: "Anthropic".into(),
            usage_amount: cost * 100.0,
            pricing_unit: "1K tokens".into(),
            unblended: cost,
            net_unblended: Some(cost * 0.9),
            line_item_type: "Usage".into(),
        }
    }

    async fn ask(e: &CurEngine, group_by: Vec<GroupKey>, filter: SpendFilter) -> SpendAnswer {
        let q = SpendQuery {
            period: Period {
                start: NaiveDate::from_ymd_opt(2026, 9, 20).unwrap(),
                end: NaiveDate::from_ymd_opt(2026, 10, 20).unwrap(),
            },
            granularity: Granularity::Monthly,
            group_by,
            filter,
            metric: Metric::Unblended,
        };
        e.spend(&q, Arc::new(|_, _, _| {})).await.unwrap()
    }

    fn figures(a: &SpendAnswer) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = a
            .rows
            .iter()
            .map(|r| {
                (
                    format!("{} {:?}", r.bucket_start, r.keys),
                    format!("{:.4}", r.amount),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn rollups_give_the_exports_figures_on_odd_lines() {
        let dir = tempfile::tempdir().unwrap();
        let rollups = tempfile::tempdir().unwrap();
        let alice = "arn:aws:iam::123456789012:user/alice";
        let role = "arn:aws:sts::123456789012:assumed-role/Agent/s1";
        let items = vec![
            line(
                "2026-09-25",
                alice,
                &[("iamPrincipal/team", "ml")],
                "Amazon Bedrock",
                1.25,
            ),
            line(
                "2026-09-26",
                role,
                &[
                    ("iamPrincipal/team", "ops"),
                    ("iamPrincipal/o'brien", "x"),
                    ("user:env", "dev"),
                ],
                "Amazon Bedrock",
                2.5,
            ),
            line("2026-09-27", role, &[], "Amazon Bedrock", 4.0),
            line("2026-09-28", "", &[], "Amazon EC2", 100.0),
            line(
                "2026-09-29",
                "",
                &[],
                "Claude (Amazon Bedrock Edition)",
                8.0,
            ),
            // October: no tags at all.
            line("2026-10-02", alice, &[], "Amazon Bedrock", 16.0),
            line("2026-10-25", alice, &[], "Amazon Bedrock", 32.0),
        ];
        crate::cur_file::write_line_items(&items, dir.path()).unwrap();
        let loc = CurLocation::Local(dir.path().to_path_buf());
        let scan = CurEngine::open(&loc, None, None).await.unwrap();
        let settings = RollupSettings {
            dir: rollups.path().to_path_buf(),
            min_bytes: 0,
            build: cur_rollup::Build::BeforeAnswer,
        };
        let rolled = CurEngine::open(&loc, None, Some(settings)).await.unwrap();
        let cases = vec![
            (vec![GroupKey::Tag("team".into())], SpendFilter::default()),
            (
                vec![GroupKey::Principal, GroupKey::Model],
                SpendFilter::default(),
            ),
            (
                vec![GroupKey::Service, GroupKey::TokenKind],
                SpendFilter::default(),
            ),
            (
                vec![GroupKey::Role],
                SpendFilter {
                    tags: [("team".to_string(), vec![String::new()])].into(),
                    ..Default::default()
                },
            ),
        ];
        for (group_by, filter) in cases {
            let a = ask(&rolled, group_by.clone(), filter.clone()).await;
            let b = ask(&scan, group_by.clone(), filter).await;
            assert!(
                a.notes.iter().any(|n| n.contains("month rollup(s)")),
                "{group_by:?}: {:?}",
                a.notes
            );
            assert_eq!(figures(&a), figures(&b), "{group_by:?}");
            assert!(!a.rows.is_empty());
        }
        // Bedrock lines only (EC2's 100 left out), to the cent: 1.25 + 2.5 + 4 + 8 + 16 in period.
        let all = ask(
            &rolled,
            vec![GroupKey::Tag("team".into())],
            SpendFilter::default(),
        )
        .await;
        let total: f64 = all.rows.iter().map(|r| r.amount).sum();
        assert!((total - 31.75).abs() < 1e-9, "{total}");
        let untagged: f64 = all
            .rows
            .iter()
            .filter(|r| r.keys[0].is_none())
            .map(|r| r.amount)
            .sum();
        assert!((untagged - 28.0).abs() < 1e-9, "{untagged}");
        // Two months, two rollups.
        let built = std::fs::read_dir(rollups.path()).unwrap().count();
        assert_eq!(built, 2);

        // Below the size threshold a month gets no rollup, and a question touching it is
        // answered from the export as a whole (never the big month's rollup alone).
        let month_bytes = |m: &str| -> u64 {
            std::fs::read_dir(dir.path().join("data").join(format!("BILLING_PERIOD={m}")))
                .unwrap()
                .flatten()
                .map(|e| e.metadata().unwrap().len())
                .sum()
        };
        let (sept, oct) = (month_bytes("2026-09"), month_bytes("2026-10"));
        assert!(sept > oct, "{sept} {oct}");
        let fresh = tempfile::tempdir().unwrap();
        let settings = RollupSettings {
            dir: fresh.path().to_path_buf(),
            min_bytes: oct + 1,
            build: cur_rollup::Build::BeforeAnswer,
        };
        let mixed = CurEngine::open(&loc, None, Some(settings)).await.unwrap();
        let a = ask(&mixed, vec![GroupKey::Principal], SpendFilter::default()).await;
        let b = ask(&scan, vec![GroupKey::Principal], SpendFilter::default()).await;
        assert!(
            !a.notes.iter().any(|n| n.contains("rollup")),
            "{:?}",
            a.notes
        );
        assert_eq!(figures(&a), figures(&b));
        let total: f64 = a.rows.iter().map(|r| r.amount).sum();
        assert!((total - 31.75).abs() < 1e-9, "{total}");
    }

    /// A month carrying more principal tag keys than a rollup holds is answered from the export.
    #[tokio::test]
    async fn too_many_tag_keys_fall_back_to_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let rollups = tempfile::tempdir().unwrap();
        let keys: Vec<String> = (0..=cur_rollup::MAX_TAG_KEYS)
            .map(|i| format!("iamPrincipal/k{i}"))
            .collect();
        let items: Vec<LineItem> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let p = format!("arn:aws:iam::123456789012:user/u{i}");
                line(
                    "2026-09-25",
                    &p,
                    &[(k.as_str(), "v")],
                    "Amazon Bedrock",
                    1.0,
                )
            })
            .collect();
        crate::cur_file::write_line_items(&items, dir.path()).unwrap();
        let loc = CurLocation::Local(dir.path().to_path_buf());
        let settings = RollupSettings {
            dir: rollups.path().to_path_buf(),
            min_bytes: 0,
            build: cur_rollup::Build::BeforeAnswer,
        };
        let e = CurEngine::open(&loc, None, Some(settings)).await.unwrap();
        let a = ask(&e, vec![GroupKey::Tag("k7".into())], SpendFilter::default()).await;
        assert!(
            !a.notes.iter().any(|n| n.contains("rollup")),
            "{:?}",
            a.notes
        );
        let total: f64 = a.rows.iter().map(|r| r.amount).sum();
        assert!((total - keys.len() as f64).abs() < 1e-9, "{total}");
        let k7: f64 = a
            .rows
            .iter()
            .filter(|r| r.keys[0].as_deref() == Some("v"))
            .map(|r| r.amount)
            .sum();
        assert!((k7 - 1.0).abs() < 1e-9, "{k7}");
        assert_eq!(std::fs::read_dir(rollups.path()).unwrap().count(), 0);
    }
}
