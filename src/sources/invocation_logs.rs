//! The live layer: Amazon Bedrock model invocation logs, priced like the bill, minutes after
//! each call (billing data lags 24-48 h).
//!
//! Bedrock writes one JSON record per call to S3 as gzipped JSON lines under
//! `AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/` ("Model invocation
//! logging", <https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html>);
//! large bodies go to a `data/` folder beside them. This source reads a local folder or an S3
//! prefix with the same handling as the CUR export (`--invocation-logs PATH|s3://bucket/prefix`),
//! skips the folders and objects that hold no records (bodies, Bedrock's permission-check
//! object), prunes objects by the hour in their key, gunzips, and aggregates each object once
//! (kept in memory by key, size and modification time, so a budget check in a loop reads only new
//! objects). Records are parsed by [`crate::domain::invocation_log`]; a bad record is counted and
//! skipped, never fatal.
//!
//! Pricing: each (model, Region) is priced with the same Price List book and the same resolution
//! as `estimate_cost` ([`crate::domain::pricing::resolve`] and
//! [`crate::domain::pricing::per_1k_of`]): the model id or inference profile gives the base model
//! and its scope (in-Region, geographic cross-Region, global); the record names no tier, so calls
//! are priced at the standard (on-demand) tier. A model that cannot be priced (an application
//! inference profile, a provisioned or custom model, a model not in the Price List) is counted
//! and listed, never priced at zero silently. Failed calls (`errorCode`) are counted, not priced.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::cur::CurLocation;
use super::iam::{IamKind, PrincipalDirectory};
use super::pricing::PriceSource;
use super::{Progress, SpendAnswer, SpendRow, SpendSource};
use crate::domain::group::{Granularity, GroupKey, SpendQuery};
use crate::domain::invocation_log::{MAX_RECORD_BYTES, ModelKind, ModelRef, record_of_line};
use crate::domain::period::first_of_month;
use crate::domain::pricing::{Unpriced, per_1k_of, resolve};
use crate::domain::principal::{Principal, PrincipalKind, glob_match, role_of, session_of};
use crate::domain::usage_type::{Tier, TokenKind};
use crate::error::ToolError;

/// The largest object read after gunzip: a log object Bedrock writes holds minutes of records;
/// 1 GiB is far above that and still a bound on what one object can cost.
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;

/// Objects whose aggregates are kept in memory (about 1 KB each for a busy hour's object).
const MAX_CACHED_OBJECTS: usize = 100_000;

/// Objects read at once.
const READ_AHEAD: usize = 8;

/// Where the logs are: a local folder or an S3 prefix (parsed like `--cur`).
pub type LogLocation = CurLocation;

/// IAM tags of the callers, by (account, user or role, name).
pub type TagsByOwner = HashMap<(String, IamKind, String), BTreeMap<String, String>>;

/// An object's size and modification time when it was read, and its aggregate.
type Seen = (u64, DateTime<Utc>, Arc<ObjectAgg>);

/// One aggregation key of an object: the hour, the caller, the model as logged, the Region.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    /// Unix hour (seconds / 3600).
    pub(crate) hour: i64,
    pub(crate) principal: String,
    pub(crate) model: String,
    pub(crate) region: String,
}

/// Token counts (input, output, cache read, cache write), calls and failed calls of a key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sum {
    pub(crate) tokens: [u64; 4],
    pub(crate) calls: u64,
    pub(crate) failed: u64,
}

/// One object, aggregated.
#[derive(Debug, Default)]
pub(crate) struct ObjectAgg {
    pub(crate) groups: HashMap<Key, Sum, foldhash::fast::RandomState>,
    pub(crate) newest: Option<DateTime<Utc>>,
    pub(crate) records: u64,
    pub(crate) skipped: usize,
    /// `request id or line number: problem` of the first skipped records.
    pub(crate) skipped_first: Vec<String>,
    /// Why the object could not be read at all.
    pub(crate) error: Option<String>,
}

/// Aggregate one object's bytes (gzip or plain JSON lines), line by line: the object is never
/// held decompressed (a busy hour's object is tens of MB of JSON), each line at most
/// [`MAX_RECORD_BYTES`] and the object at most [`MAX_OBJECT_BYTES`] after gunzip.
fn aggregate(name: &str, bytes: &[u8]) -> ObjectAgg {
    use std::io::BufRead;
    let mut agg = ObjectAgg::default();
    let reader: Box<dyn std::io::Read + '_> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, reader);
    let mut skipped = crate::domain::invocation_log::Skipped::default();
    let mut line = Vec::with_capacity(4096);
    let (mut total, mut number) = (0u64, 0usize);
    loop {
        line.clear();
        let read = std::io::Read::take(&mut reader, MAX_RECORD_BYTES as u64 + 1)
            .read_until(b'\n', &mut line);
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                agg.error = Some(format!("{name}: not readable to its end ({e})"));
                break;
            }
        };
        if n == 0 {
            break;
        }
        number += 1;
        total += n as u64;
        if total > MAX_OBJECT_BYTES {
            agg.error = Some(format!(
                "{name}: more than {} MiB after gunzip; read no further",
                MAX_OBJECT_BYTES >> 20
            ));
            break;
        }
        let ended = line.last() == Some(&b'\n');
        if !ended && line.len() > MAX_RECORD_BYTES {
            // Too long: skip to its end (bounded by the object's own limit).
            loop {
                line.clear();
                match std::io::Read::take(&mut reader, 1 << 20).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(m) => {
                        total += m as u64;
                        if line.last() == Some(&b'\n') || total > MAX_OBJECT_BYTES {
                            break;
                        }
                    }
                }
            }
            skipped.add(
                number,
                crate::domain::invocation_log::RecordError {
                    request_id: None,
                    problem: crate::domain::invocation_log::Problem::TooLarge {
                        bytes: MAX_RECORD_BYTES + 1,
                        max: MAX_RECORD_BYTES,
                    },
                },
            );
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        add_record(&mut agg, &mut skipped, number, text);
    }
    if agg.error.is_none() && number == 0 && bytes.starts_with(&[0x1f, 0x8b]) {
        agg.error = Some(format!("{name}: an empty gzip object"));
    }
    finish(&mut agg, &skipped, name);
    agg
}

/// Add one record (a line of an object, or a CloudWatch Logs event's message) to `agg`; a bad
/// one to `skipped`, by its line or event `number`.
pub(crate) fn add_record(
    agg: &mut ObjectAgg,
    skipped: &mut crate::domain::invocation_log::Skipped,
    number: usize,
    text: &[u8],
) {
    match record_of_line(text) {
        None => {}
        Some(Err(e)) => skipped.add(number, e),
        Some(Ok(inv)) => {
            agg.records += 1;
            agg.newest = agg.newest.max(Some(inv.at));
            let t = inv.tokens;
            let e = agg
                .groups
                .entry(Key {
                    hour: inv.at.timestamp().div_euclid(3600),
                    principal: inv.principal_arn,
                    model: inv.model_id,
                    region: inv.region,
                })
                .or_default();
            if inv.error.is_some() {
                e.failed += 1;
                return;
            }
            e.calls += 1;
            for (i, n) in [t.input, t.output, t.cache_read, t.cache_write]
                .into_iter()
                .enumerate()
            {
                e.tokens[i] = e.tokens[i].saturating_add(n);
            }
        }
    }
}

/// The skipped records of `name` into `agg`: their count and the first few, named.
pub(crate) fn finish(
    agg: &mut ObjectAgg,
    skipped: &crate::domain::invocation_log::Skipped,
    name: &str,
) {
    agg.skipped = skipped.count;
    agg.skipped_first = skipped
        .first
        .iter()
        .map(|s| match &s.error.request_id {
            Some(id) => format!("{name} request {id}: {}", s.error.problem),
            None => format!("{name} line {}: {}", s.line, s.error.problem),
        })
        .collect();
}

/// Folders walked at most to find the delivery's date folders before listing everything.
const MAX_LAYOUT_FOLDERS: usize = 512;

/// Where to list for `[from, to)`: the day folders (`.../YYYY/MM/DD/`) of the window under each
/// folder of the delivery layout (`[AWSLogs/<account>/BedrockModelInvocationLogs/]<region>/`)
/// found below `prefix`, so a prefix holding years of logs costs a few LIST pages, not all of
/// them. A layout not recognised within a few levels (or too wide) is listed whole.
async fn day_prefixes(
    store: &Arc<dyn ObjectStore>,
    prefix: Option<&Path>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Option<Path>>, object_store::Error> {
    let whole = vec![prefix.cloned()];
    let is_year = |s: &str| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit());
    let mut frontier = vec![prefix.cloned()];
    let mut dated: Vec<Path> = Vec::new();
    let mut walked = 0usize;
    for _ in 0..5 {
        let mut next = Vec::new();
        for p in &frontier {
            let listing = store.list_with_delimiter(p.as_ref()).await?;
            walked += listing.common_prefixes.len();
            if walked > MAX_LAYOUT_FOLDERS {
                return Ok(whole);
            }
            let names: Vec<&Path> = listing.common_prefixes.iter().collect();
            if !names.is_empty() && names.iter().all(|c| c.filename().is_some_and(is_year)) {
                match p {
                    Some(p) => dated.push(p.clone()),
                    None => return Ok(whole),
                }
            } else if names.iter().any(|c| c.filename().is_some_and(is_year)) {
                // Years beside other folders: not the layout.
                return Ok(whole);
            } else {
                next.extend(names.into_iter().cloned());
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next.into_iter().map(Some).collect();
    }
    if dated.is_empty() {
        return Ok(whole);
    }
    // Records of a day are in that day's folders; an hour's object may land in the next hour.
    let (first, last) = (
        (from - Duration::hours(2)).date_naive(),
        (to + Duration::hours(1)).date_naive(),
    );
    let days = (last - first).num_days() + 1;
    if days.saturating_mul(dated.len() as i64) > MAX_LAYOUT_FOLDERS as i64 {
        return Ok(whole);
    }
    let mut out = Vec::new();
    for d in &dated {
        let mut day = first;
        while day <= last {
            out.push(Some(Path::from(format!("{d}/{}", day.format("%Y/%m/%d")))));
            day += Duration::days(1);
        }
    }
    Ok(out)
}

/// The hour an object's key names (`.../YYYY/MM/DD/HH/<file>`), when it names one.
fn hour_of_key(key: &str) -> Option<DateTime<Utc>> {
    let parts: Vec<&str> = key.split('/').collect();
    if parts.len() < 5 {
        return None;
    }
    let n = parts.len();
    let num = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, m, d, h) = (
        num(parts[n - 5], 4)?,
        num(parts[n - 4], 2)?,
        num(parts[n - 3], 2)?,
        num(parts[n - 2], 2)?,
    );
    NaiveDate::from_ymd_opt(y as i32, m, d)?
        .and_hms_opt(h, 0, 0)
        .map(|t| Utc.from_utc_datetime(&t))
}

/// Whether an object may hold records: JSON lines, gzipped or not; not a body under `data/`,
/// not Bedrock's permission-check object.
fn holds_records(key: &str) -> bool {
    let file = key.rsplit('/').next().unwrap_or(key);
    let lower = file.to_ascii_lowercase();
    !key.split('/').any(|s| s == "data")
        && !lower.contains("permission-check")
        && (lower.ends_with(".json.gz")
            || lower.ends_with(".json")
            || lower.ends_with(".jsonl")
            || lower.ends_with(".jsonl.gz")
            || lower.ends_with(".gz"))
}

/// One priced group of logged calls: an hour, a caller, a model, a Region and a token kind.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveLine {
    pub hour: DateTime<Utc>,
    pub principal: String,
    /// The model's name as the Price List gives it (`Claude Sonnet 4.6`), else as logged.
    pub model: String,
    /// `modelId` as logged (a model id, an inference profile id or ARN).
    pub model_id: String,
    pub region: String,
    /// in_region, cross_region or global.
    pub scope: String,
    pub kind: TokenKind,
    pub tokens: u64,
    pub cost: f64,
    /// Calls (counted on the input line of each group only, so they add up).
    pub calls: u64,
}

/// What a scan of the logs found between two instants.
#[derive(Debug, Clone, Default)]
pub struct LiveScan {
    pub lines: Vec<LiveLine>,
    /// The newest record seen anywhere in the objects read.
    pub newest: Option<DateTime<Utc>>,
    /// Records in the window.
    pub records: u64,
    pub failed_calls: u64,
    pub skipped: usize,
    pub skipped_first: Vec<String>,
    /// Model as logged -> (calls, tokens, why) of calls that could not be priced.
    pub unpriced: BTreeMap<String, (u64, u64, String)>,
    pub objects_read: usize,
    pub objects_cached: usize,
    pub bytes_read: u64,
    pub notes: Vec<String>,
}

impl LiveScan {
    pub fn total(&self) -> f64 {
        self.lines.iter().map(|l| l.cost).sum()
    }
}

/// The live source over a folder or S3 prefix of invocation logs.
pub struct InvocationLogs {
    origin: Origin,
    location: String,
    prices: Arc<dyn PriceSource>,
    directory: Arc<dyn PrincipalDirectory>,
    /// Bedrock's control plane, for the model behind an application inference profile (AWS mode).
    profiles: Option<super::Lazy<aws_sdk_bedrock::Client>>,
    /// Profile ARN -> (base model id, scope, name) or why it could not be read.
    resolved_profiles: tokio::sync::Mutex<HashMap<String, ProfileAnswer>>,
    /// Application profile ARN -> its tags (`k=v, ...`) or why they could not be read.
    profile_tags: tokio::sync::Mutex<HashMap<String, Result<String, String>>>,
}

/// Application inference profiles whose tags one answer reads at most.
const MAX_PROFILES_TAGGED: usize = 50;

/// What GetInferenceProfile said about an application inference profile.
type ProfileAnswer = Result<(String, crate::domain::usage_type::Scope, String), String>;

/// Where the records are read from.
enum Origin {
    /// S3 objects or files: read, gunzipped and aggregated here.
    Objects {
        store: Arc<dyn ObjectStore>,
        prefix: Option<Path>,
        /// Object key -> (size, modification time, aggregate).
        objects: std::sync::Mutex<HashMap<String, Seen>>,
    },
    /// A CloudWatch Logs group: aggregated by Logs Insights on AWS's side.
    Insights(super::logs_insights::Insights),
}

impl InvocationLogs {
    /// Open a location. `s3`: the bucket's store, for an S3 location.
    pub fn open(
        location: &LogLocation,
        s3: Option<Arc<dyn ObjectStore>>,
        prices: Arc<dyn PriceSource>,
        directory: Arc<dyn PrincipalDirectory>,
    ) -> Result<InvocationLogs, String> {
        let (store, prefix, shown): (Arc<dyn ObjectStore>, Option<Path>, String) = match location {
            CurLocation::Local(path) => {
                let abs = path.canonicalize().map_err(|e| {
                    format!(
                        "--invocation-logs {}: {e}; pass the folder that holds AWSLogs/ (or any folder below it)",
                        path.display()
                    )
                })?;
                if !abs.is_dir() {
                    return Err(format!(
                        "--invocation-logs {}: not a folder",
                        path.display()
                    ));
                }
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&abs)
                    .map_err(|e| format!("--invocation-logs {}: {e}", path.display()))?;
                (Arc::new(fs), None, abs.display().to_string())
            }
            CurLocation::S3 { bucket, prefix } => {
                let store = s3.ok_or_else(|| {
                    "--invocation-logs s3://... needs AWS credentials (it is not read in demo mode)"
                        .to_string()
                })?;
                let p = (!prefix.is_empty()).then(|| Path::from(prefix.as_str()));
                (store, p, format!("s3://{bucket}/{prefix}"))
            }
        };
        Ok(InvocationLogs {
            origin: Origin::Objects {
                store,
                prefix,
                objects: std::sync::Mutex::new(HashMap::new()),
            },
            location: shown,
            prices,
            directory,
            profiles: None,
            resolved_profiles: tokio::sync::Mutex::new(HashMap::new()),
            profile_tags: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Resolve application inference profiles with this Bedrock client (AWS mode).
    pub fn with_profiles(mut self, client: super::Lazy<aws_sdk_bedrock::Client>) -> Self {
        self.profiles = Some(client);
        self
    }

    /// The base model, scope and name of an application inference profile: its first model's id;
    /// in-Region when its models are in one Region, cross-Region otherwise (kept per process).
    async fn application_profile(
        &self,
        arn: &str,
    ) -> Result<(String, crate::domain::usage_type::Scope, String), String> {
        let Some(client) = &self.profiles else {
            return Err("reading it needs AWS mode (bedrock GetInferenceProfile)".into());
        };
        let mut kept = self.resolved_profiles.lock().await;
        if let Some(a) = kept.get(arn) {
            return a.clone();
        }
        let answer = match client
            .get_inference_profile()
            .inference_profile_identifier(arn)
            .send()
            .await
        {
            Err(e) => {
                Err(
                    crate::error::from_sdk("Amazon Bedrock", "bedrock:GetInferenceProfile", &e)
                        .to_string(),
                )
            }
            Ok(out) => {
                let models: Vec<&str> = out.models().iter().filter_map(|m| m.model_arn()).collect();
                let regions: std::collections::BTreeSet<&str> =
                    models.iter().filter_map(|a| a.split(':').nth(3)).collect();
                match models
                    .first()
                    .and_then(|a| a.split_once("foundation-model/"))
                    .map(|(_, id)| id.to_string())
                {
                    Some(base) if !base.is_empty() => Ok((
                        base,
                        if regions.len() > 1 {
                            crate::domain::usage_type::Scope::CrossRegion
                        } else {
                            crate::domain::usage_type::Scope::InRegion
                        },
                        out.inference_profile_name().to_string(),
                    )),
                    _ => Err(format!(
                        "GetInferenceProfile names no foundation model ({})",
                        models.join(", ")
                    )),
                }
            }
        };
        if kept.len() < 10_000 {
            kept.insert(arn.to_string(), answer.clone());
        }
        answer
    }

    /// A CloudWatch Logs group read with Logs Insights.
    pub fn insights(
        insights: super::logs_insights::Insights,
        prices: Arc<dyn PriceSource>,
        directory: Arc<dyn PrincipalDirectory>,
    ) -> InvocationLogs {
        InvocationLogs {
            location: insights.location(),
            origin: Origin::Insights(insights),
            prices,
            directory,
            profiles: None,
            resolved_profiles: tokio::sync::Mutex::new(HashMap::new()),
            profile_tags: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Read (or take from memory) every object that may hold records in `[from, to)` and
    /// price the calls in that window, hour by hour.
    pub async fn scan(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        progress: Progress,
    ) -> Result<LiveScan, ToolError> {
        let mut scan = LiveScan::default();
        let aggs = match &self.origin {
            Origin::Objects {
                store,
                prefix,
                objects,
            } => {
                read_objects(
                    &self.location,
                    store,
                    prefix.as_ref(),
                    objects,
                    from,
                    to,
                    progress,
                    &mut scan,
                )
                .await?
            }
            Origin::Insights(insights) => {
                let (agg, scanned) = insights.aggregate(from, to, progress).await?;
                scan.bytes_read = scanned.bytes;
                scan.notes.extend(scanned.notes);
                vec![agg]
            }
        };
        self.merge_and_price(&mut scan, &aggs, from, to).await;
        Ok(scan)
    }
}

/// List the objects that may hold records of `[from, to)` and aggregate each (from memory when
/// unchanged since it was read).
#[allow(clippy::too_many_arguments)]
async fn read_objects(
    location: &str,
    store: &Arc<dyn ObjectStore>,
    prefix: Option<&Path>,
    objects: &std::sync::Mutex<HashMap<String, Seen>>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    progress: Progress,
    scan: &mut LiveScan,
) -> Result<Vec<Arc<ObjectAgg>>, ToolError> {
    {
        let mut listed = Vec::new();
        let prefixes = day_prefixes(store, prefix, from, to)
            .await
            .map_err(|e| list_error(location, &e))?;
        for p in &prefixes {
            let mut stream = store.list(p.as_ref());
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| list_error(location, &e))?;
                let key = meta.location.to_string();
                if !holds_records(&key) {
                    continue;
                }
                // Records of hour H are in objects of hour H (delivery may lag into the next).
                if let Some(h) = hour_of_key(&key)
                    && (h + Duration::hours(2) <= from || h >= to + Duration::hours(1))
                {
                    continue;
                }
                listed.push(meta);
            }
        }
        let total = listed.len();
        let mut aggs: Vec<Arc<ObjectAgg>> = Vec::with_capacity(total);
        let mut to_read = Vec::new();
        {
            let objects = objects.lock().expect("objects lock");
            for meta in listed {
                let key = meta.location.to_string();
                match objects.get(&key) {
                    Some((size, modified, agg))
                        if *size == meta.size && *modified == meta.last_modified =>
                    {
                        aggs.push(agg.clone());
                        scan.objects_cached += 1;
                    }
                    _ => to_read.push(meta),
                }
            }
        }
        let store = store.clone();
        let mut reads = futures::stream::iter(to_read.into_iter().map(|meta| {
            let store = store.clone();
            async move {
                let key = meta.location.to_string();
                let bytes = store
                    .get(&meta.location)
                    .await
                    .map_err(|e| (key.clone(), e.to_string()))?
                    .bytes()
                    .await
                    .map_err(|e| (key.clone(), e.to_string()))?;
                let n = bytes.len() as u64;
                let name = key.clone();
                let agg = tokio::task::spawn_blocking(move || aggregate(&name, &bytes))
                    .await
                    .map_err(|e| (key.clone(), e.to_string()))?;
                Ok::<_, (String, String)>((meta, n, agg))
            }
        }))
        .buffer_unordered(READ_AHEAD);
        let mut done = scan.objects_cached;
        while let Some(r) = reads.next().await {
            done += 1;
            if done.is_multiple_of(16) || done == total {
                progress(
                    done as f64,
                    total as f64,
                    format!("reading invocation logs: {done} of {total} objects"),
                );
            }
            match r {
                Ok((meta, n, agg)) => {
                    scan.objects_read += 1;
                    scan.bytes_read += n;
                    let agg = Arc::new(agg);
                    let mut objects = objects.lock().expect("objects lock");
                    if objects.len() >= MAX_CACHED_OBJECTS {
                        objects.clear();
                    }
                    objects.insert(
                        meta.location.to_string(),
                        (meta.size, meta.last_modified, agg.clone()),
                    );
                    aggs.push(agg);
                }
                Err((key, e)) => scan.notes.push(format!("{key} could not be read: {e}")),
            }
        }
        Ok(aggs)
    }
}

impl InvocationLogs {
    /// Merge the window's groups over every aggregate, then price them.
    async fn merge_and_price(
        &self,
        scan: &mut LiveScan,
        aggs: &[Arc<ObjectAgg>],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) {
        // Merge the window's groups over every object.
        let (lo, hi) = (from.timestamp().div_euclid(3600), to.timestamp());
        let mut merged: HashMap<&Key, Sum> = HashMap::new();
        for agg in aggs {
            scan.newest = scan.newest.max(agg.newest);
            scan.skipped += agg.skipped;
            for s in &agg.skipped_first {
                if scan.skipped_first.len() < crate::domain::invocation_log::MAX_SKIPPED_SHOWN {
                    scan.skipped_first.push(s.clone());
                }
            }
            if let Some(e) = &agg.error {
                scan.notes.push(e.clone());
            }
            for (k, s) in &agg.groups {
                if k.hour < lo || k.hour * 3600 >= hi {
                    continue;
                }
                let m = merged.entry(k).or_default();
                for i in 0..4 {
                    m.tokens[i] = m.tokens[i].saturating_add(s.tokens[i]);
                }
                m.calls += s.calls;
                m.failed += s.failed;
            }
        }
        self.price(scan, merged).await;
    }

    /// Price the merged groups: one resolution per (model, Region).
    async fn price(&self, scan: &mut LiveScan, merged: HashMap<&Key, Sum>) {
        type Resolved = Result<(crate::domain::pricing::ModelPrice, String), String>;
        let mut books = HashMap::new();
        let mut resolved: HashMap<(String, String), Resolved> = HashMap::new();
        let mut fallback_notes = std::collections::BTreeSet::new();
        let mut keys: Vec<(&Key, Sum)> = merged.into_iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for (k, s) in keys {
            scan.records += s.calls + s.failed;
            scan.failed_calls += s.failed;
            if s.calls == 0 {
                continue;
            }
            let rk = (k.model.clone(), k.region.clone());
            if !resolved.contains_key(&rk) {
                if !books.contains_key(&k.region) {
                    let book = self.prices.prices(&k.region).await;
                    books.insert(k.region.clone(), book);
                }
                let mut m = ModelRef::parse(&k.model);
                let mut profile_error = None;
                if m.kind == ModelKind::ApplicationProfile {
                    match self.application_profile(&k.model).await {
                        Ok((base, scope, name)) => {
                            fallback_notes.insert(format!(
                                "application inference profile {name} ({}) routes to {base} ({}): priced as that model",
                                k.model,
                                scope.as_str()
                            ));
                            m.base_id = Some(base);
                            m.scope = Some(scope);
                            m.kind = ModelKind::Foundation;
                        }
                        Err(why) => profile_error = Some(why),
                    }
                }
                let book = &books[&k.region];
                let r = match (&m.base_id, m.scope, m.kind) {
                    (_, _, ModelKind::ApplicationProfile) => Err(format!(
                        "an application inference profile whose model could not be read: {}",
                        profile_error.unwrap_or_default()
                    )),
                    (Some(base), Some(scope), _) => {
                        match resolve(&book.prices, base, Tier::Standard, scope) {
                            Ok((p, notes)) => {
                                fallback_notes.extend(notes);
                                Ok((p.clone(), scope.as_str().to_string()))
                            }
                            Err(Unpriced::Unknown(close)) => Err(format!(
                                "not in the {} prices for {} (closest: {})",
                                book.source,
                                k.region,
                                close.join(", ")
                            )),
                            Err(Unpriced::NotListed { model, listed }) => Err(format!(
                                "{model} has no standard {} price in {} (listed: {})",
                                scope.as_str(),
                                k.region,
                                listed.join(", ")
                            )),
                        }
                    }
                    _ => Err("names no foundation model or inference profile (provisioned, custom or imported model)".to_string()),
                };
                resolved.insert(rk.clone(), r);
            }
            let hour = Utc
                .timestamp_opt(k.hour * 3600, 0)
                .single()
                .unwrap_or_default();
            match &resolved[&rk] {
                Err(why) => {
                    let e = scan
                        .unpriced
                        .entry(k.model.clone())
                        .or_insert((0, 0, why.clone()));
                    e.0 += s.calls;
                    e.1 += s.tokens.iter().sum::<u64>();
                }
                Ok((price, scope)) => {
                    let kinds = [
                        TokenKind::Input,
                        TokenKind::Output,
                        TokenKind::CacheRead,
                        TokenKind::CacheWrite5m,
                    ];
                    for (i, kind) in kinds.into_iter().enumerate() {
                        let n = s.tokens[i];
                        if n == 0 && i != 0 {
                            continue;
                        }
                        let (p, as_input) = per_1k_of(price, kind);
                        if as_input && n > 0 {
                            fallback_notes.insert(format!(
                                "{} has no {} price; those tokens are priced as input",
                                price.model,
                                kind.as_str()
                            ));
                        }
                        scan.lines.push(LiveLine {
                            hour,
                            principal: k.principal.clone(),
                            model: price.model.clone(),
                            model_id: k.model.clone(),
                            region: k.region.clone(),
                            scope: scope.clone(),
                            kind,
                            tokens: n,
                            cost: n as f64 / 1000.0 * p,
                            calls: if i == 0 { s.calls } else { 0 },
                        });
                    }
                }
            }
        }
        for b in books.values() {
            if b.source == "snapshot" {
                fallback_notes.insert(format!(
                    "priced with the bundled price snapshot of {}",
                    b.as_of
                ));
            }
        }
        scan.notes.extend(fallback_notes);
    }

    /// IAM tags of the callers, by (account, user or role, name); only when a question needs them.
    pub(crate) async fn tags(&self, progress: Progress) -> Result<TagsByOwner, ToolError> {
        let inv = self.directory.inventory(progress).await?;
        Ok(inv
            .principals
            .iter()
            .map(|p| {
                (
                    (p.account().to_string(), p.kind, p.name.clone()),
                    p.tags.clone(),
                )
            })
            .collect())
    }
}

fn list_error(location: &str, e: &object_store::Error) -> ToolError {
    let text = e.to_string();
    if text.contains("AccessDenied") || text.contains("403") {
        ToolError::AccessDenied {
            action: "s3:ListBucket and s3:GetObject".into(),
            message: format!("invocation logs {location}: {text}"),
        }
    } else {
        ToolError::invalid(format!(
            "the invocation logs at {location} could not be listed: {text}"
        ))
    }
}

/// The IAM identity whose tags a caller carries: a user, or the role behind a session.
fn tag_owner(arn: &str) -> Option<(String, IamKind, String)> {
    let p = Principal::parse(arn)?;
    let kind = match p.kind {
        PrincipalKind::User => IamKind::User,
        PrincipalKind::Role | PrincipalKind::AssumedRole => IamKind::Role,
        _ => return None,
    };
    Some((p.account.to_string(), kind, p.name.to_string()))
}

/// The group keys the logs cannot answer, with why.
pub fn unsupported_key(k: &GroupKey) -> Option<&'static str> {
    match k {
        GroupKey::Service => Some("service: invocation log records name no billing service"),
        GroupKey::UsageType => {
            Some("usage_type: invocation log records carry token counts, not usage types")
        }
        _ => None,
    }
}

/// Turn priced lines into spend rows keyed like the query (same keys and filters as CUR).
pub fn shape(q: &SpendQuery, lines: &[LiveLine], tags: Option<&TagsByOwner>) -> Vec<SpendRow> {
    let model_filter: Vec<String> = q
        .filter
        .models
        .iter()
        .map(|m| crate::domain::model::key(m))
        .collect();
    let empty = BTreeMap::new();
    let tags_of = |arn: &str| -> &BTreeMap<String, String> {
        tags.and_then(|t| tag_owner(arn).and_then(|o| t.get(&o)))
            .unwrap_or(&empty)
    };
    // (bucket, keys) -> (cost, tokens)
    type Groups = BTreeMap<(NaiveDate, Vec<Option<String>>), (f64, f64)>;
    let mut groups = Groups::new();
    let mut passes: HashMap<&str, bool> = HashMap::new();
    for l in lines {
        let pass = *passes.entry(&l.principal).or_insert_with(|| {
            let arn = l.principal.as_str();
            let t = tags_of(arn);
            (q.filter.principals.is_empty()
                || q.filter.principals.iter().any(|g| glob_match(g, arn)))
                && (q.filter.roles.is_empty() || {
                    let role = role_of(arn);
                    q.filter.roles.iter().any(|g| glob_match(g, &role))
                })
                && q.filter.tags.iter().all(|(k, values)| {
                    let v = t.get(k).map(String::as_str).unwrap_or("");
                    values.iter().any(|want| want == v)
                })
        });
        if !pass {
            continue;
        }
        if !q.filter.models.is_empty() {
            let key = crate::domain::model::key(&l.model);
            let id_key = crate::domain::model::key(&l.model_id);
            let keep = q.filter.models.iter().zip(&model_filter).any(|(m, mk)| {
                *mk == key
                    || *mk == id_key
                    || m.eq_ignore_ascii_case(&l.model)
                    || (m.contains('*') && glob_match(m, &l.model))
            });
            if !keep {
                continue;
            }
        }
        let day = l.hour.date_naive();
        if day < q.period.start || day >= q.period.end {
            continue;
        }
        let bucket = match q.granularity {
            Granularity::Daily => day,
            Granularity::Monthly => first_of_month(day).max(q.period.start),
        };
        let keys: Vec<Option<String>> = q
            .group_by
            .iter()
            .map(|k| match k {
                GroupKey::Tag(t) => tags_of(&l.principal)
                    .get(t)
                    .cloned()
                    .filter(|v| !v.is_empty()),
                GroupKey::Principal => Some(l.principal.clone()),
                GroupKey::Role => Some(role_of(&l.principal)),
                GroupKey::Session => Some(session_of(&l.principal)).filter(|s| !s.is_empty()),
                GroupKey::Model => Some(l.model.clone()),
                GroupKey::TokenKind => Some(l.kind.as_str().to_string()),
                GroupKey::Tier => Some(Tier::Standard.as_str().to_string()),
                GroupKey::InferenceScope => Some(l.scope.clone()),
                GroupKey::InferenceProfile => {
                    use crate::domain::invocation_log::{ModelKind, ModelRef};
                    matches!(
                        ModelRef::parse(&l.model_id).kind,
                        ModelKind::InferenceProfile | ModelKind::ApplicationProfile
                    )
                    .then(|| l.model_id.clone())
                }
                GroupKey::Region => Some(l.region.clone()),
                GroupKey::Day => Some(day.to_string()),
                GroupKey::Month => Some(day.format("%Y-%m").to_string()),
                GroupKey::Service | GroupKey::UsageType => None,
            })
            .collect();
        let e = groups.entry((bucket, keys)).or_default();
        e.0 += l.cost;
        e.1 += l.tokens as f64;
    }
    groups
        .into_iter()
        .map(|((bucket_start, keys), (amount, tokens))| SpendRow {
            bucket_start,
            keys,
            amount,
            usage: Some(tokens),
            usage_unit: Some("tokens".into()),
            no_principal: false,
        })
        .collect()
}

/// The start of the hour `t` is in.
pub fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_minute(0))
        .unwrap_or(t)
}

/// Midnight UTC of a day.
pub fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

impl InvocationLogs {
    /// The spend of a query between two instants (hour resolution), with the scan's facts.
    pub async fn spend_between(
        &self,
        q: &SpendQuery,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        progress: Progress,
    ) -> Result<(Vec<SpendRow>, LiveScan), ToolError> {
        if let Some(why) = q.group_by.iter().find_map(unsupported_key) {
            return Err(ToolError::invalid(format!(
                "the live source cannot group by {why}; group by principal, role, session, tag:<key>, model, token_kind, inference_scope, inference_profile, region, day or month"
            )));
        }
        let mut scan = self.scan(from, to, progress.clone()).await?;
        if q.group_by.contains(&GroupKey::InferenceProfile) {
            let notes = self.profile_tags(&scan.lines).await;
            scan.notes.extend(notes);
        }
        let needs_tags = q.group_by.iter().any(GroupKey::is_tag) || !q.filter.tags.is_empty();
        // A tag filter (a scoped caller's, too) that cannot read the tags fails: never shown
        // as untagged or as everyone's.
        let tags = if needs_tags {
            Some(self.tags(progress).await?)
        } else {
            None
        };
        Ok((shape(q, &scan.lines, tags.as_ref()), scan))
    }

    /// The tags of the application inference profiles the lines went through (bedrock
    /// ListTagsForResource, kept per process), one note each, beside the principals' tags:
    /// those tags reach the bill as resource tags, so they are how a team is charged for a
    /// profile. At most [`MAX_PROFILES_TAGGED`] profiles are read per answer.
    async fn profile_tags(&self, lines: &[LiveLine]) -> Vec<String> {
        let arns: std::collections::BTreeSet<&str> = lines
            .iter()
            .map(|l| l.model_id.as_str())
            .filter(|m| crate::domain::pricing::is_application_profile(m))
            .collect();
        let Some(client) = &self.profiles else {
            return if arns.is_empty() {
                vec![]
            } else {
                vec!["application inference profiles' tags are read in AWS mode only (bedrock ListTagsForResource)".into()]
            };
        };
        let mut notes = Vec::new();
        for arn in arns.iter().take(MAX_PROFILES_TAGGED) {
            let kept = self.profile_tags.lock().await.get(*arn).cloned();
            let tags = match kept {
                Some(t) => t,
                None => {
                    let t = match client
                        .list_tags_for_resource()
                        .resource_arn(*arn)
                        .send()
                        .await
                    {
                        Ok(out) => Ok(out
                            .tags()
                            .iter()
                            .map(|t| format!("{}={}", t.key(), t.value()))
                            .collect::<Vec<_>>()
                            .join(", ")),
                        Err(e) => Err(crate::error::from_sdk(
                            "Amazon Bedrock",
                            "bedrock:ListTagsForResource",
                            &e,
                        )
                        .to_string()),
                    };
                    let mut kept = self.profile_tags.lock().await;
                    if kept.len() < 10_000 {
                        kept.insert((*arn).to_string(), t.clone());
                    }
                    t
                }
            };
            let name = match self.resolved_profiles.lock().await.get(*arn) {
                Some(Ok((_, _, name))) => format!("{name} ({arn})"),
                _ => (*arn).to_string(),
            };
            notes.push(match tags {
                Ok(t) if t.is_empty() => format!(
                    "application inference profile {name} has no tags (tag it to charge its calls to a team: bedrock TagResource, then activate the key as a cost allocation tag)"
                ),
                Ok(t) => format!("application inference profile {name} tags: {t}"),
                Err(e) => format!("application inference profile {name}: tags not read ({e})"),
            });
        }
        if arns.len() > MAX_PROFILES_TAGGED {
            notes.push(format!(
                "tags of {} more application inference profiles not read",
                arns.len() - MAX_PROFILES_TAGGED
            ));
        }
        notes
    }

    /// The notes every live answer carries.
    pub fn scan_notes(&self, scan: &LiveScan) -> Vec<String> {
        let mut notes = vec![format!(
            "invocation logs {} ({} objects read, {} from memory, {} records in the window); priced at the standard tier with the estimate_cost prices, hour by hour",
            self.location, scan.objects_read, scan.objects_cached, scan.records
        )];
        match scan.newest {
            Some(t) => notes.push(format!(
                "newest log record seen: {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            None => notes.push("no log record seen: is model invocation logging on, and delivering to this location? (bedrock GetModelInvocationLoggingConfiguration)".into()),
        }
        if scan.skipped > 0 {
            notes.push(format!(
                "{} malformed records skipped; first: {}",
                scan.skipped,
                scan.skipped_first.join("; ")
            ));
        }
        if scan.failed_calls > 0 {
            notes.push(format!(
                "{} failed calls (errorCode) are counted, not priced",
                scan.failed_calls
            ));
        }
        for (model, (calls, tokens, why)) in &scan.unpriced {
            notes.push(format!(
                "{calls} calls ({tokens} tokens) of {model} are not priced: {why}"
            ));
        }
        notes.extend(scan.notes.iter().cloned());
        notes
    }
}

#[async_trait::async_trait]
impl SpendSource for InvocationLogs {
    fn name(&self) -> &'static str {
        "live"
    }

    async fn spend(&self, q: &SpendQuery, progress: Progress) -> Result<SpendAnswer, ToolError> {
        let (rows, scan) = self
            .spend_between(
                q,
                midnight(q.period.start),
                midnight(q.period.end),
                progress,
            )
            .await?;
        Ok(SpendAnswer {
            rows,
            currency: "USD".into(),
            estimated: true,
            services_counted: vec!["Amazon Bedrock (model invocation logs)".into()],
            paid_requests: 0,
            cached: false,
            as_of: crate::domain::clock::now(),
            source: "live",
            notes: self.scan_notes(&scan),
            adjustments: vec![],
            scanned_bytes: Some(scan.bytes_read),
            no_principal: Some(0.0),
            newest_record: scan.newest,
        })
    }
}

/// Where the account's model invocation logging delivers, as Bedrock reports it
/// (`GetModelInvocationLoggingConfiguration`, in the client's Region).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoggingSetup {
    /// `s3://bucket/prefix` of the S3 destination.
    pub s3: Option<String>,
    /// The CloudWatch Logs group.
    pub log_group: Option<String>,
    /// Bodies delivered besides the metadata (text, image, embedding, video).
    pub bodies: Vec<&'static str>,
}

impl LoggingSetup {
    pub fn is_on(&self) -> bool {
        self.s3.is_some() || self.log_group.is_some()
    }
}

/// Read the logging configuration (one free control-plane call).
pub async fn logging_setup(client: &aws_sdk_bedrock::Client) -> Result<LoggingSetup, ToolError> {
    let out = client
        .get_model_invocation_logging_configuration()
        .send()
        .await
        .map_err(|e| {
            crate::error::from_sdk(
                "Amazon Bedrock",
                "bedrock:GetModelInvocationLoggingConfiguration",
                &e,
            )
        })?;
    let Some(c) = out.logging_config() else {
        return Ok(LoggingSetup::default());
    };
    let s3 = c.s3_config().map(|s| {
        let prefix = s.key_prefix().unwrap_or_default().trim_matches('/');
        if prefix.is_empty() {
            format!("s3://{}", s.bucket_name())
        } else {
            format!("s3://{}/{prefix}", s.bucket_name())
        }
    });
    let log_group = c
        .cloud_watch_config()
        .map(|w| w.log_group_name().to_string())
        .filter(|g| !g.is_empty());
    let bodies = [
        ("text", c.text_data_delivery_enabled()),
        ("image", c.image_data_delivery_enabled()),
        ("embedding", c.embedding_data_delivery_enabled()),
        ("video", c.video_data_delivery_enabled()),
    ]
    .into_iter()
    .filter(|(_, on)| *on == Some(true))
    .map(|(name, _)| name)
    .collect();
    Ok(LoggingSetup {
        s3,
        log_group,
        bodies,
    })
}

/// Whether `--invocation-logs s3://...` reads what logging delivers to `delivered`
/// (`s3://bucket[/prefix]`): the same bucket, at or below the delivery prefix.
pub fn reads_delivery(configured: &str, delivered: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('/').to_string();
    let (c, d) = (norm(configured), norm(delivered));
    c == d || c.starts_with(&format!("{d}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_windows_day_folders_are_listed_under_the_delivery_layout() {
        use object_store::ObjectStoreExt;
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        for key in [
            "logs/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2025/01/02/03/a.json.gz",
            "logs/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/03/02/23/b.json.gz",
            "logs/AWSLogs/123456789012/BedrockModelInvocationLogs/eu-west-1/2026/03/03/00/c.json.gz",
            "logs/AWSLogs/123456789012/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
        ] {
            store
                .put(
                    &Path::from(key),
                    object_store::PutPayload::from_static(b"x"),
                )
                .await
                .unwrap();
        }
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let got = day_prefixes(
            &store,
            Some(&Path::from("logs")),
            at("2026-03-03T00:00:00Z"),
            at("2026-03-03T12:00:00Z"),
        )
        .await
        .unwrap();
        let shown: Vec<String> = got
            .iter()
            .map(|p| p.as_ref().unwrap().to_string())
            .collect();
        let base = "logs/AWSLogs/123456789012/BedrockModelInvocationLogs";
        assert_eq!(
            shown,
            [
                format!("{base}/eu-west-1/2026/03/02"),
                format!("{base}/eu-west-1/2026/03/03"),
                format!("{base}/us-east-1/2026/03/02"),
                format!("{base}/us-east-1/2026/03/03"),
            ]
        );
        // Not the layout (years beside other folders): everything is listed.
        store
            .put(
                &Path::from("other/2026/x.json"),
                object_store::PutPayload::from_static(b"x"),
            )
            .await
            .unwrap();
        store
            .put(
                &Path::from("other/misc/y.json"),
                object_store::PutPayload::from_static(b"x"),
            )
            .await
            .unwrap();
        let got = day_prefixes(
            &store,
            Some(&Path::from("other")),
            at("2026-03-03T00:00:00Z"),
            at("2026-03-03T12:00:00Z"),
        )
        .await
        .unwrap();
        assert_eq!(got, vec![Some(Path::from("other"))]);
    }

    #[test]
    fn a_configured_location_reads_the_delivery_at_or_below_its_prefix() {
        assert!(reads_delivery("s3://logs/bedrock", "s3://logs/bedrock/"));
        assert!(reads_delivery(
            "s3://logs/bedrock/AWSLogs/123456789012",
            "s3://logs/bedrock"
        ));
        assert!(reads_delivery("s3://logs/x", "s3://logs"));
        assert!(!reads_delivery("s3://logs/bedrock2", "s3://logs/bedrock"));
        assert!(!reads_delivery("s3://other/bedrock", "s3://logs/bedrock"));
    }

    #[test]
    fn object_keys_name_their_hour_and_bodies_are_not_records() {
        let k = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/12/05/14/20261205T1400Z_abc.json.gz";
        assert_eq!(
            hour_of_key(k).unwrap().to_rfc3339(),
            "2026-12-05T14:00:00+00:00"
        );
        assert!(holds_records(k));
        assert!(!holds_records(
            "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/12/05/14/data/x.json"
        ));
        assert!(!holds_records(
            "AWSLogs/123456789012/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check"
        ));
        assert_eq!(hour_of_key("logs/a.json"), None);
        assert_eq!(hour_of_key("2026/13/05/14/a.json"), None);
    }

    #[test]
    fn an_object_aggregates_per_hour_caller_model_and_region() {
        let rec = |id: &str, at: &str, who: &str, inp: u64, out: u64, err: bool| {
            format!(
                r#"{{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"{at}","accountId":"123456789012","region":"us-east-1","requestId":"{id}","operation":"Converse","modelId":"us.anthropic.claude-sonnet-4-6","identity":{{"arn":"{who}"}},"input":{{"inputTokenCount":{inp}}},"output":{{"outputTokenCount":{out}}}{}}}"#,
                if err {
                    r#","errorCode":"ThrottlingException""#
                } else {
                    ""
                }
            )
        };
        let a = "arn:aws:sts::123456789012:assumed-role/Agent/s1";
        let text = [
            rec("r1", "2026-12-05T14:01:00Z", a, 100, 10, false),
            rec("r2", "2026-12-05T14:59:59Z", a, 50, 5, false),
            rec("r3", "2026-12-05T15:00:00Z", a, 7, 1, false),
            rec("r4", "2026-12-05T15:10:00Z", a, 9, 0, true),
            "{not json".to_string(),
        ]
        .join("\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let agg = aggregate("o", &gz.finish().unwrap());
        assert_eq!((agg.records, agg.skipped, agg.groups.len()), (4, 1, 2));
        let h14 = agg
            .groups
            .iter()
            .find(|(k, _)| k.hour * 3600 % 86400 == 14 * 3600)
            .unwrap()
            .1;
        assert_eq!((h14.tokens, h14.calls, h14.failed), ([150, 15, 0, 0], 2, 0));
        let h15 = agg
            .groups
            .iter()
            .find(|(k, _)| k.hour * 3600 % 86400 == 15 * 3600)
            .unwrap()
            .1;
        assert_eq!((h15.tokens, h15.calls, h15.failed), ([7, 1, 0, 0], 1, 1));
        assert_eq!(
            agg.newest.unwrap().to_rfc3339(),
            "2026-12-05T15:10:00+00:00"
        );
        assert!(
            agg.skipped_first[0].starts_with("o line 5"),
            "{:?}",
            agg.skipped_first
        );
        let broken = aggregate("b", &[0x1f, 0x8b, 0, 1, 2]);
        assert!(broken.error.unwrap().contains("not readable"));
        // A line over the record limit is skipped whole; the next one is read.
        let long = format!(
            "{{\"x\":\"{}\"}}\n{}\n",
            "a".repeat(MAX_RECORD_BYTES + 10),
            rec("r9", "2026-12-05T16:00:00Z", a, 1, 1, false)
        );
        let agg = aggregate("l", long.as_bytes());
        assert_eq!((agg.records, agg.skipped), (1, 1));
        assert!(
            agg.skipped_first[0].contains("l line 1"),
            "{:?}",
            agg.skipped_first
        );
    }
}
