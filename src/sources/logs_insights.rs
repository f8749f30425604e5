//! Model invocation logs in CloudWatch Logs, aggregated by Logs Insights on AWS's side: one
//! `StartQuery` per window sums the token counts per hour, caller, model and Region, so a busy
//! account's records are never pulled one by one. `GetQueryResults` is polled with backoff
//! (progress per poll); a query the caller abandons is stopped (`StopQuery`).
//!
//! Costs: Logs Insights bills the data each query scans ($0.005 per GB in most Regions,
//! <https://aws.amazon.com/cloudwatch/pricing/>); every answer reports the bytes scanned. Answers
//! are kept (5 minutes for windows reaching into the last two hours, a day for older ones), and
//! at most `--invocation-log-max-queries-per-hour` queries run in any rolling hour.
//!
//! Limits (Logs Insights query language and quotas,
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html>): a `stats`
//! query returns at most 10,000 rows; a window whose answer fills them is split in halves down to
//! one hour. Records are JSON, so Insights discovers their fields (`identity.arn`,
//! `input.inputTokenCount`, ...) itself.
//!
//! Where Insights is refused (`AccessDeniedException` or `InvalidOperationException` from
//! StartQuery: a policy with `logs:FilterLogEvents` but not `logs:StartQuery`), the window's
//! records are read one by one with `FilterLogEvents` and aggregated here with the S3 path's
//! parser, at most 2,000,000 records an answer; every answer says which way it was read.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::{QueryStatus, ResultField};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::invocation_logs::{Key, ObjectAgg, Sum};
use super::{Lazy, Progress};
use crate::error::{ToolError, from_sdk};

/// The query: successful calls' token sums per hour, caller, model and Region, and the newest
/// record of each group. Failed calls (`errorCode`) are left out.
pub const QUERY: &str = "filter schemaType = \"ModelInvocationLog\" and not ispresent(errorCode) \
| stats sum(input.inputTokenCount) as input_tokens, sum(output.outputTokenCount) as output_tokens, \
sum(input.cacheReadInputTokenCount) as cache_read_tokens, sum(input.cacheWriteInputTokenCount) as cache_write_tokens, \
count(*) as calls, max(@timestamp) as newest \
by bin(1h) as hour, identity.arn as principal, modelId as model, region";

/// Most rows a `stats` query returns.
pub const MAX_ROWS: usize = 10_000;

/// How long one query may run before it is stopped.
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);

/// Windows reaching this close to now are kept 5 minutes; older ones a day.
const RECENT: i64 = 2 * 3600;

/// Kept answers at most.
const MAX_KEPT: usize = 256;

/// Events one FilterLogEvents read takes at most (the fallback pulls every record).
const MAX_FILTERED_EVENTS: usize = 2_000_000;

/// StartQuery errors that mean Logs Insights is not available to this caller (a policy that
/// grants `logs:FilterLogEvents` but not `logs:StartQuery`, or a Region or account without
/// Insights): the records are then read with FilterLogEvents.
const INSIGHTS_REFUSED: [&str; 2] = ["AccessDeniedException", "InvalidOperationException"];

/// What the queries of one answer scanned.
#[derive(Debug, Default)]
pub struct Scanned {
    pub bytes: u64,
    pub notes: Vec<String>,
}

type Kept = (Instant, Duration, Arc<ObjectAgg>, u64);

pub struct Insights {
    client: Lazy<Client>,
    group: String,
    region: String,
    max_per_hour: u32,
    /// (from, to) in Unix seconds -> (when, how long, aggregate, bytes scanned).
    kept: tokio::sync::Mutex<HashMap<(i64, i64), Kept>>,
    /// When the queries of the last hour started.
    started: std::sync::Mutex<VecDeque<Instant>>,
    /// Why StartQuery was refused, once it was: later windows go to FilterLogEvents at once.
    refused: std::sync::OnceLock<String>,
}

impl Insights {
    pub fn new(client: Lazy<Client>, group: String, region: String, max_per_hour: u32) -> Insights {
        Insights {
            client,
            group,
            region,
            max_per_hour,
            kept: tokio::sync::Mutex::new(HashMap::new()),
            started: std::sync::Mutex::new(VecDeque::new()),
            refused: std::sync::OnceLock::new(),
        }
    }

    pub fn location(&self) -> String {
        format!("CloudWatch Logs group {} ({})", self.group, self.region)
    }

    /// The groups of `[from, to)` (whole hours), kept or queried.
    pub(crate) async fn aggregate(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        progress: Progress,
    ) -> Result<(Arc<ObjectAgg>, Scanned), ToolError> {
        let lo = from.timestamp().div_euclid(3600) * 3600;
        let hi = (to.timestamp() + 3599).div_euclid(3600) * 3600;
        let mut scanned = Scanned::default();
        if hi <= lo {
            return Ok((Arc::new(ObjectAgg::default()), scanned));
        }
        let mut kept = self.kept.lock().await;
        if let Some((at, ttl, agg, bytes)) = kept.get(&(lo, hi))
            && at.elapsed() < *ttl
        {
            scanned.notes.push(format!(
                "CloudWatch Logs answer kept from {} s ago (it scanned {bytes} bytes then; nothing scanned now)",
                at.elapsed().as_secs()
            ));
            return Ok((agg.clone(), scanned));
        }
        let agg = match self.refused.get() {
            Some(why) => self.filtered(lo, hi, why, &progress, &mut scanned).await?,
            None => match self.queried(lo, hi, &progress, &mut scanned).await {
                Err(_) if self.refused.get().is_some() => {
                    let why = self.refused.get().cloned().unwrap_or_default();
                    self.filtered(lo, hi, &why, &progress, &mut scanned).await?
                }
                other => other?,
            },
        };
        let recent = hi > crate::domain::clock::now().timestamp() - RECENT;
        let ttl = if recent {
            Duration::from_secs(300)
        } else {
            Duration::from_secs(86_400)
        };
        if kept.len() >= MAX_KEPT {
            kept.retain(|_, (at, ttl, _, _)| at.elapsed() < *ttl);
            if kept.len() >= MAX_KEPT {
                kept.clear();
            }
        }
        let agg = Arc::new(agg);
        kept.insert((lo, hi), (Instant::now(), ttl, agg.clone(), scanned.bytes));
        Ok((agg, scanned))
    }

    /// `[lo, hi)` through Logs Insights `stats` queries, split where an answer fills the row
    /// limit.
    async fn queried(
        &self,
        lo: i64,
        hi: i64,
        progress: &Progress,
        scanned: &mut Scanned,
    ) -> Result<ObjectAgg, ToolError> {
        let mut agg = ObjectAgg::default();
        // Windows still to ask, split when an answer fills the row limit.
        let mut windows = vec![(lo, hi)];
        let mut queries = 0u32;
        while let Some((a, b)) = windows.pop() {
            let (rows, bytes) = self.query(a, b, progress).await?;
            queries += 1;
            scanned.bytes += bytes;
            if rows.len() >= MAX_ROWS && b - a > 3600 {
                let mid = a + ((b - a) / 7200) * 3600;
                windows.push((mid, b));
                windows.push((a, mid));
                continue;
            }
            if rows.len() >= MAX_ROWS {
                scanned.notes.push(format!(
                    "the hour from {} has more than {MAX_ROWS} caller-model-Region groups: Logs Insights returned the first {MAX_ROWS}, the rest is missing",
                    Utc.timestamp_opt(a, 0).single().unwrap_or_default()
                ));
            }
            read_rows(&rows, &mut agg);
        }
        scanned.notes.push(format!(
            "{queries} Logs Insights quer{} scanned {} bytes (billed per GB scanned)",
            if queries == 1 { "y" } else { "ies" },
            scanned.bytes
        ));
        Ok(agg)
    }

    /// `[lo, hi)` read record by record with FilterLogEvents (Insights refused: `why`), bounded
    /// by [`MAX_FILTERED_EVENTS`]. No scan charge, but every record crosses the network and the
    /// API is throttled (a few requests a second per account and Region).
    async fn filtered(
        &self,
        lo: i64,
        hi: i64,
        why: &str,
        progress: &Progress,
        scanned: &mut Scanned,
    ) -> Result<ObjectAgg, ToolError> {
        let mut agg = ObjectAgg::default();
        let mut skipped = crate::domain::invocation_log::Skipped::default();
        let (mut events, mut pages, mut bytes) = (0usize, 0u32, 0u64);
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .filter_log_events()
                .log_group_name(&self.group)
                .start_time(lo * 1000)
                // Inclusive in milliseconds: the window's last millisecond.
                .end_time(hi * 1000 - 1)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| self.error("logs:FilterLogEvents", &e))?;
            pages += 1;
            for ev in out.events() {
                events += 1;
                if events > MAX_FILTERED_EVENTS {
                    return Err(ToolError::Unsupported(format!(
                        "more than {MAX_FILTERED_EVENTS} records in {} between {} and {}: too many to read one by one with FilterLogEvents ({why}); grant logs:StartQuery so Logs Insights sums them on AWS's side, or ask a shorter period",
                        self.group,
                        Utc.timestamp_opt(lo, 0).single().unwrap_or_default(),
                        Utc.timestamp_opt(hi, 0).single().unwrap_or_default()
                    )));
                }
                let text = ev.message().unwrap_or_default().as_bytes();
                bytes += text.len() as u64;
                super::invocation_logs::add_record(&mut agg, &mut skipped, events, text);
            }
            progress(
                f64::from(pages),
                0.0,
                format!("FilterLogEvents over {}: {events} records read", self.group),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() && !out.events().is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        super::invocation_logs::finish(&mut agg, &skipped, &format!("log group {}", self.group));
        scanned.notes.push(format!(
            "read with FilterLogEvents, record by record ({events} records, {bytes} bytes, {pages} pages), because Logs Insights was refused: {why}"
        ));
        Ok(agg)
    }

    /// Take one slot of the hourly cap, or say when the next frees.
    fn take_slot(&self) -> Result<(), ToolError> {
        let mut started = self.started.lock().expect("cap lock");
        let hour = Duration::from_secs(3600);
        while started.front().is_some_and(|t| t.elapsed() >= hour) {
            started.pop_front();
        }
        if started.len() >= self.max_per_hour as usize {
            let wait = started
                .front()
                .map_or(0, |t| hour.saturating_sub(t.elapsed()).as_secs());
            return Err(ToolError::Unsupported(format!(
                "Logs Insights query cap reached: {} queries in the last hour (--invocation-log-max-queries-per-hour {}; each is billed by the data it scans). The next slot frees in about {wait} s; kept answers are still served",
                started.len(),
                self.max_per_hour
            )));
        }
        started.push_back(Instant::now());
        Ok(())
    }

    /// Run one query over `[from, to)` to its end; its rows and bytes scanned.
    async fn query(
        &self,
        from: i64,
        to: i64,
        progress: &Progress,
    ) -> Result<(Vec<Vec<ResultField>>, u64), ToolError> {
        self.take_slot()?;
        let started = self
            .client
            .start_query()
            .log_group_name(&self.group)
            .start_time(from)
            // Inclusive in seconds: the last second of the window.
            .end_time(to - 1)
            .query_string(QUERY)
            .limit(MAX_ROWS as i32)
            .send()
            .await
            .map_err(|e| {
                use aws_smithy_types::error::metadata::ProvideErrorMetadata;
                if e.code().is_some_and(|c| INSIGHTS_REFUSED.contains(&c)) {
                    let _ = self.refused.set(format!(
                        "{} ({})",
                        e.code().unwrap_or_default(),
                        e.message().unwrap_or("logs:StartQuery refused")
                    ));
                }
                self.error("logs:StartQuery", &e)
            })?;
        let id = started.query_id().unwrap_or_default().to_string();
        let mut guard = {
            let (client, id) = (self.client.clone(), id.clone());
            super::StopOnDrop::new(format!("Logs Insights {id}"), move || {
                Box::pin(async move {
                    let _ = client.stop_query().query_id(id).send().await;
                })
            })
        };
        let deadline = Instant::now() + QUERY_TIMEOUT;
        let mut wait = Duration::from_millis(200);
        let mut polls = 0u32;
        loop {
            let out = self
                .client
                .get_query_results()
                .query_id(&id)
                .send()
                .await
                .map_err(|e| self.error("logs:GetQueryResults", &e))?;
            polls += 1;
            let status = out.status().cloned().unwrap_or(QueryStatus::Scheduled);
            let stats = out.statistics();
            progress(
                f64::from(polls),
                0.0,
                format!(
                    "Logs Insights query {}: {} records matched, {} bytes scanned",
                    status.as_str(),
                    stats.map_or(
                        0.0,
                        aws_sdk_cloudwatchlogs::types::QueryStatistics::records_matched
                    ),
                    stats.map_or(
                        0.0,
                        aws_sdk_cloudwatchlogs::types::QueryStatistics::bytes_scanned
                    )
                ),
            );
            match status {
                QueryStatus::Complete => {
                    guard.disarm();
                    let bytes = stats.map_or(
                        0.0,
                        aws_sdk_cloudwatchlogs::types::QueryStatistics::bytes_scanned,
                    ) as u64;
                    return Ok((out.results().to_vec(), bytes));
                }
                QueryStatus::Failed | QueryStatus::Cancelled | QueryStatus::Timeout => {
                    guard.disarm();
                    return Err(ToolError::Upstream {
                        service: "CloudWatch Logs".into(),
                        code: status.as_str().into(),
                        message: format!(
                            "the Logs Insights query over {} ended {}",
                            self.group,
                            status.as_str()
                        ),
                        hint: String::new(),
                    });
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(ToolError::Upstream {
                    service: "CloudWatch Logs".into(),
                    code: "Timeout".into(),
                    message: format!(
                        "the Logs Insights query over {} ran longer than {} s and was stopped",
                        self.group,
                        QUERY_TIMEOUT.as_secs()
                    ),
                    hint: String::new(),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }

    fn error<E, R>(
        &self,
        action: &str,
        e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> ToolError
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        use aws_smithy_types::error::metadata::ProvideErrorMetadata;
        if e.code() == Some("ResourceNotFoundException") {
            return ToolError::invalid(format!(
                "the log group {} does not exist in {}: model invocation logging writes to a group in the Region it is configured in; point AWS_REGION at that Region, or check the name (bedrock GetModelInvocationLoggingConfiguration shows it)",
                self.group, self.region
            ));
        }
        from_sdk("CloudWatch Logs", action, e)
    }
}

/// An Insights time value: `2024-01-15 12:00:00.000` (what `bin` and `max(@timestamp)` show) or
/// milliseconds since the epoch.
fn insights_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Utc.timestamp_millis_opt(s.parse().ok()?).single();
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|t| Utc.from_utc_datetime(&t))
}

/// A sum as Insights prints it (`12345`, `1.2345E7`): whole and non-negative, else 0.
fn count(s: Option<&str>) -> u64 {
    s.and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|x| x.is_finite() && *x >= 0.0)
        .map_or(0, |x| x.round().min(u64::MAX as f64) as u64)
}

/// Rows of the query into groups; a row without hour or caller is skipped (counted).
fn read_rows(rows: &[Vec<ResultField>], agg: &mut ObjectAgg) {
    for row in rows {
        let field = |name: &str| {
            row.iter()
                .find(|f| f.field() == Some(name))
                .and_then(|f| f.value())
        };
        let (Some(hour), Some(principal)) =
            (field("hour").and_then(insights_time), field("principal"))
        else {
            agg.skipped += 1;
            continue;
        };
        let sum = Sum {
            tokens: [
                count(field("input_tokens")),
                count(field("output_tokens")),
                count(field("cache_read_tokens")),
                count(field("cache_write_tokens")),
            ],
            calls: count(field("calls")),
            failed: 0,
        };
        agg.records += sum.calls;
        agg.newest = agg.newest.max(field("newest").and_then(insights_time));
        let e = agg
            .groups
            .entry(Key {
                hour: hour.timestamp().div_euclid(3600),
                principal: principal.to_string(),
                model: field("model").unwrap_or_default().to_string(),
                region: field("region").unwrap_or_default().to_string(),
            })
            .or_default();
        for i in 0..4 {
            e.tokens[i] = e.tokens[i].saturating_add(sum.tokens[i]);
        }
        e.calls += sum.calls;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, value: &str) -> ResultField {
        ResultField::builder().field(name).value(value).build()
    }

    #[test]
    fn rows_read_as_groups() {
        let mut agg = ObjectAgg::default();
        read_rows(
            &[
                vec![
                    f("hour", "2026-03-02 14:00:00.000"),
                    f("principal", "arn:aws:iam::123456789012:user/alice"),
                    f("model", "us.anthropic.claude-sonnet-4-6"),
                    f("region", "us-east-1"),
                    f("input_tokens", "1.2345E4"),
                    f("output_tokens", "100"),
                    f("calls", "3"),
                    f("newest", "2026-03-02 14:59:01.250"),
                ],
                vec![f("principal", "x")],
            ],
            &mut agg,
        );
        assert_eq!((agg.records, agg.skipped, agg.groups.len()), (3, 1, 1));
        let (k, s) = agg.groups.iter().next().unwrap();
        assert_eq!(k.hour * 3600, 1_772_460_000);
        assert_eq!(s.tokens, [12_345, 100, 0, 0]);
        assert_eq!(
            agg.newest.unwrap().to_rfc3339(),
            "2026-03-02T14:59:01.250+00:00"
        );
        assert_eq!(
            insights_time("1772460000000").unwrap().timestamp(),
            1_772_460_000
        );
        assert_eq!(count(Some("-5")), 0);
        assert_eq!(count(Some("NaN")), 0);
    }
}
