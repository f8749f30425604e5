//! Month rollups of a CUR export, so the second question about a month does not rescan it.
//!
//! The first question about a billing month scans that month's Parquet files once into a small
//! table: the Bedrock lines only, one row per usage day and raw key (principal, usage type, line
//! item type, region, `product['model']`, `product['servicename']`, the value of each
//! `iamPrincipal/*` tag key, put back together as a `tags` map, the currency and the billing
//! month), with the sums every question needs (`unblended`, `net_unblended`, `tokens`, and the
//! cost of the lines not priced per token, `non_token_unblended` / `non_token_net`). The rollup is written as one Parquet file in
//! the rollup folder; every later question about that month, whatever it groups by or filters
//! on, runs the same SQL on the rollup (`TableShape::rollup`) instead of the export. At 10M line
//! items a month is ~0.4M rollup rows (8.5 MB).
//!
//! A rollup is named after the export location and month, plus a digest of the month's files
//! (path, size, modification time, ETag) and the columns it was built from: a new delivery
//! changes the digest, so the next question builds a new rollup and the old one is deleted.
//! Rollups not rewritten for [`MAX_AGE`] are deleted too. Anything that goes wrong with a
//! rollup (folder not writable, a build error) is logged and the question is answered from the
//! export as without rollups.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::TryStreamExt;

use super::cur_sql::{NET_UNBLENDED, bedrock_lines, other_cost_sum, tokens_sum};
use crate::domain::group::valid_tag_key;

/// Part of every rollup's digest: bump when the rollup's columns or meaning change.
const ROLLUP_VERSION: &str = "cur-rollup-v3";

/// Rollups older than this are deleted when another is written.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// How rollups are kept.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The rollup folder.
    pub dir: PathBuf,
    /// Months whose files add up to less are scanned instead (a scan of them is quick already).
    pub min_bytes: u64,
    /// When a missing rollup is built.
    pub build: Build,
}

/// When a month's missing rollup is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// After answering from the export (a server: later questions read it).
    Background,
    /// Before answering (tests of the rollups themselves).
    BeforeAnswer,
    /// Never: the question is answered from the export (a one-shot command, whose process ends
    /// with the answer: building a rollup first cost it 2.14x DuckDB's time on the same files).
    /// Rollups a server keeps are still read.
    Never,
}

/// The rollup folder, and one build at a time (two builds would only compete for the cores).
pub struct Rollups {
    dir: PathBuf,
    min_bytes: u64,
    building: tokio::sync::Mutex<()>,
}

/// What the export's schema offers the rollup (columns CUR 2.0 may leave out).
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    pub principal: bool,
    pub net: bool,
    pub region: bool,
}

/// Where the export's files are listed.
pub struct Listing {
    pub store: Arc<dyn object_store::ObjectStore>,
    /// The `data/` folder (None: the store's root).
    pub prefix: Option<object_store::path::Path>,
    /// The table URL, part of the rollup's name.
    pub url: String,
}

/// A month whose files are below `Settings::min_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Small;

/// The rollups to query for a period.
#[derive(Default)]
pub struct Picked {
    pub files: Vec<PathBuf>,
    /// How many of them were built for this question.
    pub built: usize,
    /// Months with files but no rollup yet (when not built on the spot).
    pub missing: Vec<String>,
}

fn hex_digest(text: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    d.as_ref()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Rollups {
    pub fn new(dir: PathBuf, min_bytes: u64) -> Rollups {
        Rollups {
            dir,
            min_bytes,
            building: tokio::sync::Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The month's Parquet files as `path size mtime etag` lines, sorted (empty when none),
    /// and their total size.
    async fn fingerprint(
        listing: &Listing,
        month: &str,
    ) -> Result<(String, u64), object_store::Error> {
        let folder = format!("BILLING_PERIOD={month}");
        let prefix = match &listing.prefix {
            Some(p) => object_store::path::Path::from(format!("{p}/{folder}")),
            None => object_store::path::Path::from(folder),
        };
        let metas: Vec<object_store::ObjectMeta> = listing
            .store
            .list(Some(&prefix))
            .try_filter(|m| futures::future::ready(m.location.as_ref().ends_with(".parquet")))
            .try_collect()
            .await?;
        let bytes = metas.iter().map(|m| m.size).sum();
        let mut files: Vec<String> = metas
            .into_iter()
            .map(|m| {
                format!(
                    "{} {} {} {}",
                    m.location,
                    m.size,
                    m.last_modified.timestamp_nanos_opt().unwrap_or_default(),
                    m.e_tag.unwrap_or_default()
                )
            })
            .collect();
        files.sort();
        Ok((files.join("\n"), bytes))
    }

    /// The rollup file a month's current files call for: `Ok(None)` when the month has no
    /// files, `Err(Small)` when they are too few bytes to be worth a rollup.
    async fn name_for(
        &self,
        listing: &Listing,
        cols: Columns,
        month: &str,
    ) -> Result<Result<Option<(String, String)>, Small>, String> {
        let (files, bytes) = Self::fingerprint(listing, month)
            .await
            .map_err(|e| format!("listing {month}: {e}"))?;
        if files.is_empty() {
            return Ok(Ok(None));
        }
        if bytes < self.min_bytes {
            return Ok(Err(Small));
        }
        let stem = hex_digest(&format!("{}\n{month}", listing.url));
        let name = format!(
            "{stem}-{}.parquet",
            hex_digest(&format!("{ROLLUP_VERSION}\n{cols:?}\n{files}"))
        );
        Ok(Ok(Some((stem, name))))
    }

    /// Rollup files for `months`. Months without files have no rollup (the export has no lines
    /// there either); nor have months smaller than `min_bytes`: if any month asked for is such,
    /// the answer comes from the export (no files listed). A month whose rollup is missing is
    /// built now when `build`, else listed in `missing`. An error means: answer from the export.
    pub async fn pick(
        &self,
        ctx: &SessionContext,
        listing: &Listing,
        cols: Columns,
        months: &[String],
        build: bool,
    ) -> Result<Picked, String> {
        let mut picked = Picked::default();
        for month in months {
            let name = match self.name_for(listing, cols, month).await? {
                Ok(Some((_, name))) => name,
                Ok(None) => continue,
                // One month scanned means the whole question is (one query, one engine).
                Err(Small) => return Ok(Picked::default()),
            };
            let path = self.dir.join(&name);
            if path.is_file() {
                picked.files.push(path);
            } else if build {
                if let Some(path) = self.ensure(ctx, listing, cols, month).await? {
                    picked.files.push(path);
                    picked.built += 1;
                }
            } else {
                picked.missing.push(month.clone());
            }
        }
        Ok(picked)
    }

    /// Build the month's rollup unless it exists; its path (None: the month has no files).
    /// The files are listed again after the build: a delivery that landed meanwhile discards it.
    pub async fn ensure(
        &self,
        ctx: &SessionContext,
        listing: &Listing,
        cols: Columns,
        month: &str,
    ) -> Result<Option<PathBuf>, String> {
        let _one = self.building.lock().await;
        let Ok(Some((stem, name))) = self.name_for(listing, cols, month).await? else {
            return Ok(None);
        };
        let path = self.dir.join(&name);
        if path.is_file() {
            return Ok(Some(path));
        }
        self.build(ctx, cols, month, &path).await?;
        if self.name_for(listing, cols, month).await? != Ok(Some((stem.clone(), name.clone()))) {
            let _ = std::fs::remove_file(&path);
            return Err(format!(
                "the {month} files changed while its rollup was built; the next question builds it again"
            ));
        }
        self.prune(&stem, &name);
        Ok(Some(path))
    }

    /// `ensure` each month in turn, logging the ones that could not be built (their questions
    /// are answered from the export).
    pub async fn ensure_all(
        &self,
        ctx: &SessionContext,
        listing: &Listing,
        cols: Columns,
        months: &[String],
    ) {
        for month in months {
            if let Err(e) = self.ensure(ctx, listing, cols, month).await {
                tracing::warn!(%month, error = %e, "CUR rollup not built");
            }
        }
    }

    /// Scan one month of the export into `path` (written beside it, then renamed into place).
    async fn build(
        &self,
        ctx: &SessionContext,
        cols: Columns,
        month: &str,
        path: &Path,
    ) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let started = std::time::Instant::now();
        // `month` comes from `cur_sql::months_of` (YYYY-MM), never from a caller.
        debug_assert!(month.len() == 7 && month.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
        let keys = ctx
            .sql(&tag_keys_sql(month))
            .await
            .map_err(|e| e.to_string())?
            .collect()
            .await
            .map_err(|e| format!("listing the {month} tag keys: {e}"))?;
        let mut tag_keys = Vec::new();
        for b in &keys {
            let col = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)
                .map_err(|e| e.to_string())?;
            let col = col.as_string::<i32>();
            for i in 0..col.len() {
                // A key a question cannot name (see `valid_tag_key`) is left out: no question
                // reads it.
                if col.is_valid(i)
                    && let Some(k) = col.value(i).strip_prefix("iamPrincipal/")
                    && valid_tag_key(k)
                {
                    tag_keys.push(k.to_string());
                }
            }
        }
        tag_keys.sort();
        tag_keys.dedup();
        if tag_keys.len() > MAX_TAG_KEYS {
            return Err(format!(
                "the {month} lines carry {} iamPrincipal/* tag keys (a rollup holds at most {MAX_TAG_KEYS})",
                tag_keys.len()
            ));
        }
        let sql = rollup_sql(cols, month, &tag_keys);
        tracing::debug!(%sql, "CUR rollup sql");
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let tmp_text = tmp.to_string_lossy().to_string();
        let written = async {
            ctx.sql(&sql)
                .await?
                .write_parquet(
                    &tmp_text,
                    DataFrameWriteOptions::new().with_single_file_output(true),
                    None,
                )
                .await
        }
        .await;
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("building the {month} rollup: {e}"));
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot move the rollup into {}: {e}", path.display())
        })?;
        tracing::info!(
            month,
            path = %path.display(),
            ms = started.elapsed().as_millis() as u64,
            "CUR rollup built"
        );
        Ok(())
    }

    /// Delete the other rollups of the same export and month (older deliveries), any rollup
    /// not rewritten for `MAX_AGE`, and builds left behind by a process that stopped an hour
    /// or more ago.
    fn prune(&self, stem: &str, keep: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let age = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            let old_rollup = name.ends_with(".parquet")
                && name != keep
                && (name.starts_with(&format!("{stem}-")) || age > MAX_AGE);
            let left_behind = name.ends_with(".tmp") && age > Duration::from_secs(3600);
            if (old_rollup || left_behind)
                && let Err(err) = std::fs::remove_file(e.path())
            {
                tracing::debug!(file = %name, error = %err, "old CUR rollup not deleted");
            }
        }
    }
}

/// Most `iamPrincipal/*` tag keys a rollup carries; a month with more is answered from the
/// export (real organisations activate a handful).
pub const MAX_TAG_KEYS: usize = 64;

/// The `iamPrincipal/*` tag keys present on the month's lines (the only tags a question reads),
/// checked like a caller's tag key since they become SQL text. All lines, not only Bedrock's:
/// testing for Bedrock would read the `product` map too and double the cost, and a key only
/// other services carry merely adds an empty column.
pub fn tag_keys_sql(month: &str) -> String {
    format!(
        "SELECT DISTINCT k FROM (SELECT unnest(map_keys(tags)) AS k FROM cur \
         WHERE \"BILLING_PERIOD\" = '{month}')"
    )
}

/// The rollup of one billing month: Bedrock lines grouped by usage day, every raw key and the
/// value of each principal tag key in `tag_keys` (keys without the `iamPrincipal/` prefix,
/// already checked by `valid_tag_key`); the tags are put back together as a `tags` map, so a
/// question's `tags['iamPrincipal/<key>']` reads the rollup as it reads the export. Grouping by
/// a few strings instead of the whole map keeps the grouping on DataFusion's columnar path.
pub fn rollup_sql(cols: Columns, month: &str, tag_keys: &[String]) -> String {
    let principal = if cols.principal {
        "line_item_iam_principal"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let region = if cols.region {
        "product_region_code"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let net = if cols.net {
        NET_UNBLENDED
    } else {
        "line_item_unblended_cost"
    };
    let mut tag_cols = String::new();
    for (i, k) in tag_keys.iter().enumerate() {
        debug_assert!(valid_tag_key(k));
        tag_cols.push_str(&format!("tags['iamPrincipal/{k}'] AS tag_{i}, "));
    }
    // No key at all: a map with one key no question can name (tag keys are never empty).
    let (names, values) = if tag_keys.is_empty() {
        (
            "'iamPrincipal/'".to_string(),
            "CAST(NULL AS VARCHAR)".to_string(),
        )
    } else {
        (
            tag_keys
                .iter()
                .map(|k| format!("'iamPrincipal/{k}'"))
                .collect::<Vec<_>>()
                .join(", "),
            (0..tag_keys.len())
                .map(|i| format!("tag_{i}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    let groups = (1..=8 + tag_keys.len())
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let other_unblended = other_cost_sum("line_item_unblended_cost");
    let other_net = other_cost_sum(net);
    let tokens = tokens_sum();
    format!(
        "SELECT line_item_usage_start_date, line_item_iam_principal, line_item_usage_type, \
         line_item_line_item_type, product_region_code, product_model, product_servicename, \
         line_item_currency_code, '{month}' AS billing_period, \
         map(make_array({names}), make_array({values})) AS tags, unblended, net_unblended, tokens, \
         non_token_unblended, non_token_net \
         FROM (SELECT date_trunc('day', line_item_usage_start_date) AS line_item_usage_start_date, \
         {principal} AS line_item_iam_principal, line_item_usage_type, line_item_line_item_type, \
         {region} AS product_region_code, product['model'] AS product_model, \
         product['servicename'] AS product_servicename, \
         COALESCE(line_item_currency_code, 'USD') AS line_item_currency_code, {tag_cols}\
         SUM(line_item_unblended_cost) AS unblended, SUM({net}) AS net_unblended, {tokens} AS tokens, \
         {other_unblended} AS non_token_unblended, {other_net} AS non_token_net \
         FROM cur WHERE \"BILLING_PERIOD\" = '{month}' AND {} GROUP BY {groups})",
        bedrock_lines(cols.principal, "product['servicename']")
    )
}

/// Register the rollup files as table `name` (one table over all of them).
pub async fn register(ctx: &SessionContext, name: &str, files: &[PathBuf]) -> Result<(), String> {
    let paths: Vec<String> = files
        .iter()
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    let df = ctx
        .read_parquet(paths, ParquetReadOptions::default())
        .await
        .map_err(|e| format!("reading rollups: {e}"))?;
    ctx.register_table(name, df.into_view())
        .map_err(|e| format!("registering rollups: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_new_rollup_and_fresh_ones_of_other_months() {
        let dir = tempfile::tempdir().unwrap();
        let rollups = Rollups::new(dir.path().to_path_buf(), 0);
        let day = Duration::from_secs(24 * 3600);
        let files = [
            ("aaa-new.parquet", Duration::ZERO), // the one just written
            ("aaa-old.parquet", Duration::ZERO), // same export and month: an old delivery
            ("bbb-x.parquet", day),              // another month, used yesterday
            ("ccc-x.parquet", MAX_AGE + day),    // another month, not rewritten for 31 days
            ("aaa-new.123.tmp", Duration::from_secs(60)), // a build under way elsewhere
            ("bbb-x.99.tmp", 2 * day),           // a build whose process stopped
            ("notes.txt", MAX_AGE + day),        // not ours
        ];
        for (name, age) in files {
            let f = std::fs::File::create(dir.path().join(name)).unwrap();
            f.set_modified(SystemTime::now() - age).unwrap();
        }
        rollups.prune("aaa", "aaa-new.parquet");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "aaa-new.123.tmp",
                "aaa-new.parquet",
                "bbb-x.parquet",
                "notes.txt"
            ]
        );
    }
}
