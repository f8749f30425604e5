//! Amazon Bedrock model invocation log records: one JSON object per call, as Bedrock writes them
//! to CloudWatch Logs (one log event each) and to Amazon S3 (gzipped JSON-lines objects under
//! `AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/`). The groundwork of a
//! live spend layer: this module only turns bytes into [`Invocation`]s; reading S3 or CloudWatch,
//! gunzip and pricing are the caller's. No I/O.
//!
//! The record, as AWS documents it ("Log entry format",
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html>): the same
//! JSON object for both destinations, with `schemaType` (always `ModelInvocationLog`),
//! `schemaVersion` (`"1.0"`), `timestamp` (ISO 8601, `2024-01-15T12:00:00Z`), `accountId`,
//! `region`, `requestId`, `operation` (`Converse`, `ConverseStream`, `InvokeModel`,
//! `InvokeModelWithResponseStream`: the operations the page lists as logged, only through the
//! `bedrock-runtime` endpoint), `modelId` ("the model ID or inference profile ID"),
//! `identity.arn` ("the AWS STS or IAM ARN of the principal that made the request"), the
//! optional caller-supplied `requestMetadata` (string pairs; at most 16, of at most 256
//! characters: <https://docs.aws.amazon.com/bedrock/latest/userguide/rft-option-2.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/add-metadata-to-prompts.html>),
//! `input.inputTokenCount`, `output.outputTokenCount`, and the bodies
//! (`input.inputBodyJson`, `output.outputBodyJson`, each inline up to 100 KB; larger or binary
//! bodies go to S3 under the data prefix and the record holds a reference, seen in public records
//! as `inputBodyS3Path` / `outputBodyS3Path`).
//!
//! Fields AWS writes that the format table does not list, as public records and the AWS
//! Machine Learning blog show them: `inferenceRegion` (top level: the Region that served a
//! cross-Region call,
//! <https://aws.amazon.com/blogs/machine-learning/getting-started-with-cross-region-inference-in-amazon-bedrock/>),
//! `input.cacheReadInputTokenCount` and `input.cacheWriteInputTokenCount` (prompt caching;
//! `inputTokenCount` then counts the uncached tokens only: a record with 3 input tokens and 28,857
//! cache-write tokens), `errorCode` (top level, on failed calls), `performanceConfig.latency`
//! (`"optimized"` for latency-optimized inference). Their presence and names are taken from
//! public records and third-party schemas, not from an AWS table (see the tests).
//!
//! What this parser does with a record:
//! - the bodies are never kept: serde skips every field not named here (`IgnoredAny`) without
//!   building values, so a body costs a scan, not an allocation;
//! - unknown fields are accepted (AWS adds fields); a duplicate of a field read here is refused
//!   (serde's derive refuses it: which of two token counts would be billed?), a duplicate inside
//!   a skipped body is not looked at, and a duplicate `requestMetadata` key keeps the last value;
//! - a line over [`MAX_RECORD_BYTES`] is refused before parsing, token counts must be whole,
//!   non-negative and at most [`MAX_TOKENS_PER_KIND`], kept strings are bounded and free of
//!   control characters, `accountId` is 12 digits, `schemaVersion` must be 1.x when present;
//! - skipped parts are walked without recursion (serde_json keeps one byte per open bracket),
//!   so a body nested to any depth costs no stack; the fields read are a few levels deep;
//! - nothing panics, whatever the bytes (fuzzed: `fuzz/fuzz_targets/invocation_log.rs`).
//!
//! The model: `modelId` is a foundation-model id or ARN, a system-defined inference profile
//! (`us.anthropic...`, `global.anthropic...`, by id or ARN), an application inference profile ARN
//! (names no model), or another resource (provisioned throughput, custom or imported model,
//! prompt router). [`ModelRef`] resolves it to the base model id and the [`Scope`] with the
//! rules of [`super::pricing::scope_of`] and [`super::pricing::is_application_profile`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::principal::Principal;
use super::usage_type::{Scope, TokenKind};

/// The longest line [`parse_record`] reads. Bedrock keeps bodies inline up to 100 KB each (larger
/// ones go to S3) and a CloudWatch Logs event is at most 1 MB
/// (<https://docs.aws.amazon.com/goto/WebAPI/logs/PutLogEvents>): 2 MiB leaves room for JSON
/// escaping and is still a bound on what one bad line can cost.
pub const MAX_RECORD_BYTES: usize = 2 * 1024 * 1024;

/// The largest token count accepted for one kind in one call: 100 million, ten times the largest
/// context window offered on Bedrock. A count above it is a broken record, not usage.
pub const MAX_TOKENS_PER_KIND: u64 = 100_000_000;

/// How many bad records [`parse_lines`] describes (the rest are counted).
pub const MAX_SKIPPED_SHOWN: usize = 5;

/// Longest id-like field kept (`requestId`, `region`, `operation`, `errorCode`, ...).
pub const MAX_ID_LEN: usize = 256;

/// Longest ARN kept (`modelId`, `identity.arn`): IAM's own ARN limit.
pub const MAX_ARN_LEN: usize = 2048;

/// `requestMetadata` bounds: four times what AWS documents (16 pairs of 256 characters), so a
/// raised AWS limit does not drop spend, and still a bound.
pub const MAX_METADATA_PAIRS: usize = 64;
pub const MAX_METADATA_LEN: usize = 1024;

/// The `schemaType` of every invocation log record.
pub const SCHEMA_TYPE: &str = "ModelInvocationLog";

/// One logged model call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// When the call was made (`timestamp`, converted to UTC).
    pub at: DateTime<Utc>,
    /// The account that made the call (`accountId`, 12 digits).
    pub account: String,
    /// The Region the call was made to (`region`); its log and bill are there.
    pub region: String,
    /// The Region that served it, when Bedrock logged one (`inferenceRegion`: cross-Region
    /// inference).
    pub inference_region: Option<String>,
    /// `requestId`.
    pub request_id: String,
    pub operation: Operation,
    /// A streaming operation (`ConverseStream`, `InvokeModelWithResponseStream`, ...): the same
    /// as [`Operation::is_streaming`], kept here for filters.
    pub streaming: bool,
    /// `modelId` as logged (a model id, inference profile id or ARN); [`Invocation::model`] resolves it.
    pub model_id: String,
    /// The caller (`identity.arn`): an IAM user or role ARN or an STS assumed-role session ARN.
    pub principal_arn: String,
    /// Tokens by kind, 0 where the record has no count.
    pub tokens: Tokens,
    /// Whether the record had any token count. False for calls billed otherwise (images, video):
    /// their zeros mean "not counted", not "free".
    pub token_counts_logged: bool,
    /// The caller's `requestMetadata` tags (cost attribution by team, tenant, ...).
    pub request_metadata: BTreeMap<String, String>,
    /// `performanceConfig.latency` was `"optimized"` (latency-optimized inference, priced apart).
    pub latency_optimized: bool,
    /// `errorCode` of a failed call. The counts are kept as logged; whether a failed call is
    /// billed is for the caller to decide.
    pub error: Option<String>,
}

impl Invocation {
    /// `modelId` resolved (a scan that only groups on `model_id` need not resolve each record).
    pub fn model(&self) -> ModelRef {
        ModelRef::parse(&self.model_id)
    }

    /// The caller's ARN, parsed (None for a value that is not an ARN).
    pub fn principal(&self) -> Option<Principal<'_>> {
        Principal::parse(&self.principal_arn)
    }
}

/// The API operation logged (`operation`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operation {
    InvokeModel,
    InvokeModelWithResponseStream,
    Converse,
    ConverseStream,
    /// Any other operation name, as logged.
    Other(String),
}

impl Operation {
    pub fn parse(name: &str) -> Operation {
        match name {
            "InvokeModel" => Operation::InvokeModel,
            "InvokeModelWithResponseStream" => Operation::InvokeModelWithResponseStream,
            "Converse" => Operation::Converse,
            "ConverseStream" => Operation::ConverseStream,
            other => Operation::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Operation::InvokeModel => "InvokeModel",
            Operation::InvokeModelWithResponseStream => "InvokeModelWithResponseStream",
            Operation::Converse => "Converse",
            Operation::ConverseStream => "ConverseStream",
            Operation::Other(name) => name,
        }
    }

    /// A streaming call: the known stream operations, and any other whose name says `Stream`
    /// (`InvokeModelWithBidirectionalStream`).
    pub fn is_streaming(&self) -> bool {
        match self {
            Operation::InvokeModelWithResponseStream | Operation::ConverseStream => true,
            Operation::InvokeModel | Operation::Converse => false,
            Operation::Other(name) => name.contains("Stream"),
        }
    }
}

/// Token counts of one call, by kind. The kinds do not overlap: with prompt caching,
/// `inputTokenCount` counts the uncached input only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    /// Prompt-cache writes, whatever their time to live: the record has one count.
    pub cache_write: u64,
}

impl Tokens {
    /// Every token of the call.
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
    }

    /// The counts under the usage types' token kinds. The record does not tell 5-minute from
    /// 1-hour cache writes; they are listed as [`TokenKind::CacheWrite5m`], the default time to
    /// live, so a caller pricing 1-hour writes must learn that elsewhere.
    pub fn by_kind(&self) -> [(TokenKind, u64); 4] {
        [
            (TokenKind::Input, self.input),
            (TokenKind::Output, self.output),
            (TokenKind::CacheRead, self.cache_read),
            (TokenKind::CacheWrite5m, self.cache_write),
        ]
    }
}

/// What `modelId` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// A foundation-model id (`anthropic.claude-sonnet-4-6`) or ARN
    /// (`arn:aws:bedrock:us-east-1::foundation-model/...`), served in the calling Region.
    Foundation,
    /// A system-defined inference profile, geographic (`us.`, `eu.`, `apac.`, ...) or global
    /// (`global.`), by id or ARN (`...:inference-profile/us.anthropic...`).
    InferenceProfile,
    /// An application inference profile ARN (`...:application-inference-profile/<id>`): it names
    /// no model; the model and scope behind it are the profile's (`GetInferenceProfile`).
    ApplicationProfile,
    /// Any other resource accepted as a model: provisioned throughput, custom or imported
    /// models, prompt routers, non-Bedrock ARNs.
    Other,
}

/// `modelId` resolved: the base model and where the call could run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// `modelId` as logged.
    pub raw: String,
    pub kind: ModelKind,
    /// The base model id, without profile prefix or ARN (`anthropic.claude-sonnet-4-6`,
    /// revision suffixes such as `-v1:0` kept); None where the log line names no model
    /// (application profiles, [`ModelKind::Other`]).
    pub base_id: Option<String>,
    /// In-Region for a foundation model, cross-Region or global for a profile; None where the
    /// log line does not say (application profiles, [`ModelKind::Other`]).
    pub scope: Option<Scope>,
    /// The geography prefix of a cross-Region profile (`us`, `eu`, `apac`, ...).
    pub geo: Option<String>,
}

impl ModelRef {
    /// Resolve a `modelId`. Never fails: what it cannot place is [`ModelKind::Other`].
    pub fn parse(model_id: &str) -> ModelRef {
        let raw = model_id.to_string();
        let other = |raw: String, kind: ModelKind| ModelRef {
            raw,
            kind,
            base_id: None,
            scope: None,
            geo: None,
        };
        if model_id.starts_with("arn:") {
            // arn:partition:service:region:account:resource (the resource may hold `:`).
            let parts: Vec<&str> = model_id.splitn(6, ':').collect();
            if parts.len() != 6 || parts[2] != "bedrock" {
                return other(raw, ModelKind::Other);
            }
            if super::pricing::is_application_profile(model_id) {
                return other(raw, ModelKind::ApplicationProfile);
            }
            return match parts[5].split_once('/') {
                Some(("foundation-model", id)) if !id.is_empty() => ModelRef {
                    base_id: Some(id.to_string()),
                    raw,
                    kind: ModelKind::Foundation,
                    scope: Some(Scope::InRegion),
                    geo: None,
                },
                Some(("inference-profile", id)) => {
                    profile(&raw, id, true).unwrap_or_else(|| other(raw, ModelKind::Other))
                }
                _ => other(raw, ModelKind::Other),
            };
        }
        if model_id.is_empty() || model_id.contains('/') {
            return other(raw, ModelKind::Other);
        }
        match profile(&raw, model_id, false) {
            Some(p) => p,
            None => ModelRef {
                base_id: Some(raw.clone()),
                raw,
                kind: ModelKind::Foundation,
                scope: Some(Scope::InRegion),
                geo: None,
            },
        }
    }

    /// The model's grouping key ([`super::model::key`]), when the line names a model.
    pub fn key(&self) -> Option<String> {
        self.base_id.as_deref().map(super::model::key)
    }
}

/// `raw` as the system-defined profile its id names (`<geo>.<provider>.<model>`), or None.
fn profile(raw: &str, id: &str, from_arn: bool) -> Option<ModelRef> {
    profile_parts(id, from_arn).map(|(base, scope, geo)| ModelRef {
        raw: raw.to_string(),
        kind: ModelKind::InferenceProfile,
        base_id: Some(base),
        scope: Some(scope),
        geo,
    })
}

/// A system-defined profile id (`<geo>.<provider>.<model>`): its base model id, scope and
/// geography. The prefixes are [`super::pricing::scope_of`]'s; an id out of an
/// `inference-profile/` ARN (`from_arn`) is a profile whatever its prefix (a geography added
/// after this code is cross-Region). None for an id that is not a profile.
fn profile_parts(id: &str, from_arn: bool) -> Option<(String, Scope, Option<String>)> {
    let (prefix, rest) = id.split_once('.')?;
    if prefix.is_empty() || !rest.contains('.') {
        return None;
    }
    match super::pricing::scope_of(id) {
        Scope::Global => Some((rest.to_string(), Scope::Global, None)),
        Scope::CrossRegion => Some((
            rest.to_string(),
            Scope::CrossRegion,
            Some(prefix.to_string()),
        )),
        Scope::InRegion if from_arn => Some((
            rest.to_string(),
            Scope::CrossRegion,
            Some(prefix.to_string()),
        )),
        Scope::InRegion => None,
    }
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The record's `requestId`, when it could be read (bounded, no control characters).
    pub request_id: Option<String>,
    pub problem: Problem,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.request_id {
            Some(id) => write!(f, "request {id}: {}", self.problem),
            None => write!(f, "{}", self.problem),
        }
    }
}

impl std::error::Error for RecordError {}

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the record is {bytes} bytes, over the {max}-byte limit")]
    TooLarge { bytes: usize, max: usize },
    /// Not JSON, not an object, a field of the wrong type, a duplicate field.
    #[error("not a readable invocation log record: {0}")]
    Json(String),
    #[error("schemaType is {0}, not \"ModelInvocationLog\"")]
    NotInvocationLog(String),
    #[error("schemaVersion {0} is not a 1.x version")]
    SchemaVersion(String),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{field} {why}")]
    BadField { field: &'static str, why: String },
    #[error("timestamp {0} is not an RFC 3339 date-time")]
    BadTimestamp(String),
    #[error("{field} is {value}: {why}")]
    BadTokenCount {
        field: &'static str,
        value: String,
        why: &'static str,
    },
}

/// Records that [`parse_lines`] skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Bad records in all.
    pub count: usize,
    /// The first [`MAX_SKIPPED_SHOWN`] of them, in line order.
    pub first: Vec<SkippedLine>,
}

/// One skipped record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line number in the text given to [`parse_lines`].
    pub line: usize,
    pub error: RecordError,
}

/// Parse JSON lines (an S3 log object after gunzip, or CloudWatch messages joined by `\n`).
/// Lines of only whitespace are ignored, a `\r` before the `\n` is dropped, every other line is a
/// record: read, or counted in [`Skipped`].
pub fn parse_lines(text: &[u8]) -> (Vec<Invocation>, Skipped) {
    let mut out = Vec::new();
    let skipped = for_each_record(text, |inv| out.push(inv));
    (out, skipped)
}

/// [`parse_lines`] without collecting: each record read is handed to `each` (a scan that
/// aggregates keeps no record).
pub fn for_each_record(text: &[u8], mut each: impl FnMut(Invocation)) -> Skipped {
    let mut skipped = Skipped::default();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        match record_of_line(line) {
            None => {}
            Some(Ok(inv)) => each(inv),
            Some(Err(error)) => skipped.add(i + 1, error),
        }
    }
    skipped
}

/// One line of JSON lines (without its `\n`): None when it is blank, else the record or why it
/// is not one. A `\r` before the `\n` is dropped.
pub fn record_of_line(line: &[u8]) -> Option<Result<Invocation, RecordError>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(parse_record(line))
}

impl Skipped {
    /// Count a bad record of 1-based line `line`; the first [`MAX_SKIPPED_SHOWN`] are kept.
    pub fn add(&mut self, line: usize, error: RecordError) {
        self.count += 1;
        if self.first.len() < MAX_SKIPPED_SHOWN {
            self.first.push(SkippedLine { line, error });
        }
    }
}

/// Parse one record (one JSON object, surrounding whitespace allowed).
pub fn parse_record(line: &[u8]) -> Result<Invocation, RecordError> {
    if line.len() > MAX_RECORD_BYTES {
        return Err(RecordError {
            request_id: None,
            problem: Problem::TooLarge {
                bytes: line.len(),
                max: MAX_RECORD_BYTES,
            },
        });
    }
    // UTF-8 checked once for the whole line (serde_json's slice reader checks each string).
    let parsed = match std::str::from_utf8(line) {
        Ok(text) => serde_json::from_str::<Object<RawRecord>>(text),
        Err(_) => serde_json::from_slice::<Object<RawRecord>>(line),
    };
    let raw: RawRecord = match parsed {
        Ok(Object(raw)) => raw,
        Err(e) => {
            return Err(RecordError {
                request_id: salvage_request_id(line),
                problem: Problem::Json(shown(&e.to_string(), 200)),
            });
        }
    };
    let request_id = raw
        .request_id
        .as_deref()
        .filter(|id| shown_id(id))
        .map(str::to_string);
    validate(raw).map_err(|problem| RecordError {
        request_id,
        problem,
    })
}

fn validate(raw: RawRecord<'_>) -> Result<Invocation, Problem> {
    match raw.schema_type.as_deref() {
        None => return Err(Problem::Missing("schemaType")),
        Some(SCHEMA_TYPE) => {}
        Some(other) => return Err(Problem::NotInvocationLog(shown(other, 64))),
    }
    if let Some(v) = raw.schema_version.as_deref()
        && v != "1"
        && !v.starts_with("1.")
    {
        return Err(Problem::SchemaVersion(shown(v, 64)));
    }
    let request_id = required("requestId", raw.request_id, MAX_ID_LEN)?;
    let timestamp = required_borrowed("timestamp", raw.timestamp, 64)?;
    let at = DateTime::parse_from_rfc3339(&timestamp)
        .map_err(|_| Problem::BadTimestamp(shown(&timestamp, 64)))?
        .with_timezone(&Utc);
    let account = required("accountId", raw.account_id, 12)?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::BadField {
            field: "accountId",
            why: format!("is {}, not a 12-digit account id", shown(&account, 32)),
        });
    }
    let region = region_name("region", required("region", raw.region, MAX_ID_LEN)?)?;
    let inference_region = match raw.inference_region {
        Some(r) => Some(region_name(
            "inferenceRegion",
            optional("inferenceRegion", r, MAX_ID_LEN)?,
        )?),
        None => None,
    };
    let operation = Operation::parse(&required("operation", raw.operation, MAX_ID_LEN)?);
    let model_id = required("modelId", raw.model_id, MAX_ARN_LEN)?;
    let principal_arn = required(
        "identity.arn",
        raw.identity.and_then(|i| i.0.arn),
        MAX_ARN_LEN,
    )?;
    let error = match raw.error_code {
        Some(code) => Some(optional("errorCode", code, MAX_ID_LEN)?),
        None => None,
    };
    let input = raw.input.map(|o| o.0).unwrap_or_default();
    let output = raw.output.map(|o| o.0).unwrap_or_default();
    let counts = [
        ("input.inputTokenCount", input.input_token_count),
        ("output.outputTokenCount", output.output_token_count),
        (
            "input.cacheReadInputTokenCount",
            input.cache_read_input_token_count,
        ),
        (
            "input.cacheWriteInputTokenCount",
            input.cache_write_input_token_count,
        ),
    ];
    let token_counts_logged = counts.iter().any(|(_, c)| c.is_some());
    let mut n = [0u64; 4];
    for (slot, (field, count)) in n.iter_mut().zip(counts) {
        if let Some(c) = count {
            *slot = c.tokens(field)?;
        }
    }
    let metadata = raw.request_metadata.unwrap_or_default();
    if metadata.len() > MAX_METADATA_PAIRS {
        return Err(Problem::BadField {
            field: "requestMetadata",
            why: format!(
                "has {} pairs, over the {MAX_METADATA_PAIRS} accepted",
                metadata.len()
            ),
        });
    }
    let mut request_metadata = BTreeMap::new();
    for (k, v) in metadata {
        let k = optional("requestMetadata", k, MAX_METADATA_LEN)?;
        let v = clean(&v, MAX_METADATA_LEN)
            .map(|()| v)
            .map_err(|why| Problem::BadField {
                field: "requestMetadata",
                why,
            })?;
        request_metadata.insert(k, v);
    }
    let latency_optimized = raw
        .performance_config
        .and_then(|p| p.0.latency)
        .is_some_and(|l| l.eq_ignore_ascii_case("optimized"));
    Ok(Invocation {
        at,
        account,
        region,
        inference_region,
        request_id,
        streaming: operation.is_streaming(),
        operation,
        model_id,
        principal_arn,
        tokens: Tokens {
            input: n[0],
            output: n[1],
            cache_read: n[2],
            cache_write: n[3],
        },
        token_counts_logged,
        request_metadata,
        latency_optimized,
        error,
    })
}

/// [`required`] for a field not kept (read in place when it has no escapes).
fn required_borrowed<'a>(
    field: &'static str,
    value: Option<Cow<'a, str>>,
    max: usize,
) -> Result<Cow<'a, str>, Problem> {
    let value = value.ok_or(Problem::Missing(field))?;
    present(field, &value, max)?;
    Ok(value)
}

/// A required text field: present, non-empty, bounded, no control characters.
fn required(field: &'static str, value: Option<String>, max: usize) -> Result<String, Problem> {
    optional(field, value.ok_or(Problem::Missing(field))?, max)
}

/// A present text field: non-empty, bounded, no control characters.
fn optional(field: &'static str, value: String, max: usize) -> Result<String, Problem> {
    present(field, &value, max)?;
    Ok(value)
}

/// The checks of a present text field.
fn present(field: &'static str, value: &str, max: usize) -> Result<(), Problem> {
    if value.is_empty() {
        return Err(Problem::BadField {
            field,
            why: "is empty".into(),
        });
    }
    clean(value, max).map_err(|why| Problem::BadField { field, why })
}

/// A Region name: lower-case letters, digits and `-`.
fn region_name(field: &'static str, value: String) -> Result<String, Problem> {
    if value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(value)
    } else {
        Err(Problem::BadField {
            field,
            why: format!("is {}, not a Region name", shown(&value, 64)),
        })
    }
}

/// Bounded (in bytes) and free of control characters: safe to show and to group on.
fn clean(value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("is {} bytes long, over {max}", value.len()));
    }
    // Printable ASCII (almost every value) has no control character; anything else is decoded.
    let ascii_control = value
        .bytes()
        .fold(false, |seen, b| seen | (b < 0x20) | (b == 0x7f));
    if ascii_control || (!value.is_ascii() && value.chars().any(char::is_control)) {
        return Err(format!("has control characters: {}", shown(value, 64)));
    }
    Ok(())
}

/// A value for a message: at most `max` characters, quoted, control characters escaped.
fn shown(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// The `requestId` of a record that did not parse, when the JSON itself is sound.
fn salvage_request_id(line: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct JustTheId {
        #[serde(rename = "requestId")]
        request_id: Option<String>,
    }
    serde_json::from_slice::<Object<JustTheId>>(line)
        .ok()?
        .0
        .request_id
        .filter(|id| shown_id(id))
}

/// A request id fit to show in an error: non-empty, bounded, no control characters.
fn shown_id(id: &str) -> bool {
    !id.is_empty() && clean(id, MAX_ID_LEN).is_ok()
}

/// The fields read; serde skips all others (the bodies among them) without building values.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord<'a> {
    #[serde(borrow)]
    schema_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    schema_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    account_id: Option<String>,
    region: Option<String>,
    inference_region: Option<String>,
    request_id: Option<String>,
    operation: Option<String>,
    model_id: Option<String>,
    identity: Option<Object<RawIdentity>>,
    error_code: Option<String>,
    request_metadata: Option<BTreeMap<String, String>>,
    input: Option<Object<RawInput>>,
    output: Option<Object<RawOutput>>,
    performance_config: Option<Object<RawPerformance>>,
}

/// `T` read from a JSON object only. serde's derive also builds a struct from an array of its
/// fields in order (`"identity": ["arn:..."]`), which AWS never writes.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(Object)
    }
}

#[derive(Deserialize)]
struct RawIdentity {
    arn: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawInput {
    input_token_count: Option<RawCount>,
    cache_read_input_token_count: Option<RawCount>,
    cache_write_input_token_count: Option<RawCount>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawOutput {
    output_token_count: Option<RawCount>,
}

#[derive(Deserialize)]
struct RawPerformance {
    latency: Option<String>,
}

/// A JSON number as written, judged after parsing so the message can name the field. A decimal
/// is judged as serde_json reads it: without its `float_roundtrip` feature, a number one ulp from
/// a whole one (`131071.99999999999`) may read as that whole number. AWS writes integers.
#[derive(Debug, Clone, Copy)]
enum RawCount {
    Whole(u64),
    Negative(i64),
    Float(f64),
}

impl RawCount {
    fn tokens(self, field: &'static str) -> Result<u64, Problem> {
        let bad = |value: String, why| Problem::BadTokenCount { field, value, why };
        match self {
            RawCount::Whole(n) if n <= MAX_TOKENS_PER_KIND => Ok(n),
            RawCount::Whole(n) => Err(bad(n.to_string(), "over the accepted maximum")),
            RawCount::Negative(n) => Err(bad(n.to_string(), "negative")),
            RawCount::Float(x) if !x.is_finite() => Err(bad(x.to_string(), "not finite")),
            RawCount::Float(x) if x < 0.0 => Err(bad(x.to_string(), "negative")),
            RawCount::Float(x) if x.fract() != 0.0 => Err(bad(x.to_string(), "not whole")),
            // Whole, non-negative and at most 1e8: exact as u64.
            RawCount::Float(x) if x <= MAX_TOKENS_PER_KIND as f64 => Ok(x as u64),
            RawCount::Float(x) => Err(bad(x.to_string(), "over the accepted maximum")),
        }
    }
}

impl<'de> Deserialize<'de> for RawCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl Visitor<'_> for CountVisitor {
            type Value = RawCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a token count (a number)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawCount, E> {
                Ok(RawCount::Whole(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawCount, E> {
                Ok(u64::try_from(v).map_or(RawCount::Negative(v), RawCount::Whole))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawCount, E> {
                Ok(RawCount::Float(v))
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::principal::PrincipalKind;

    fn ok(line: &str) -> Invocation {
        parse_record(line.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{line}"))
    }

    fn err(line: &str) -> RecordError {
        match parse_record(line.as_bytes()) {
            Ok(inv) => panic!("accepted: {inv:?}\n{line}"),
            Err(e) => e,
        }
    }

    /// A minimal well-formed record around `extra` top-level fields (a JSON fragment that
    /// starts with a comma, or empty).
    fn record(model_id: &str, input: &str, output: &str, extra: &str) -> String {
        format!(
            r#"{{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"2026-10-06T14:14:00Z","accountId":"123456789012","identity":{{"arn":"arn:aws:iam::123456789012:user/alice"}},"region":"us-east-1","requestId":"r-1","operation":"Converse","modelId":"{model_id}","input":{input},"output":{output}{extra}}}"#
        )
    }

    /// The example under "Log entry format" in the Bedrock user guide
    /// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html),
    /// verbatim.
    #[test]
    fn the_user_guide_log_entry_example() {
        let doc = r#"{
    "schemaType": "ModelInvocationLog",
    "schemaVersion": "1.0",
    "timestamp": "2024-01-15T12:00:00Z",
    "accountId": "123456789012",
    "region": "us-east-1",
    "requestId": "abcd1234-5678-efgh-ijkl-mnopqrstuvwx",
    "operation": "Converse",
    "modelId": "anthropic.claude-sonnet-4-20250514-v1:0",
    "identity": {
        "arn": "arn:aws:sts::123456789012:assumed-role/MyRole/session-name"
    },
    "requestMetadata": {
        "team": "orchestrator",
        "environment": "production"
    },
    "input": {
        "inputContentType": "application/json",
        "inputBodyJson": { },
        "inputTokenCount": 25
    },
    "output": {
        "outputContentType": "application/json",
        "outputBodyJson": { },
        "outputTokenCount": 150
    }
}"#;
        let inv = ok(doc);
        assert_eq!(
            inv.at,
            DateTime::parse_from_rfc3339("2024-01-15T12:00:00Z").unwrap()
        );
        assert_eq!(
            (
                inv.account.as_str(),
                inv.region.as_str(),
                inv.request_id.as_str()
            ),
            (
                "123456789012",
                "us-east-1",
                "abcd1234-5678-efgh-ijkl-mnopqrstuvwx"
            )
        );
        assert_eq!(
            (inv.operation.clone(), inv.streaming),
            (Operation::Converse, false)
        );
        assert_eq!(inv.model().kind, ModelKind::Foundation);
        assert_eq!(
            inv.model().base_id.as_deref(),
            Some("anthropic.claude-sonnet-4-20250514-v1:0")
        );
        assert_eq!(inv.model().scope, Some(Scope::InRegion));
        assert_eq!(
            inv.model().key(),
            Some(crate::domain::model::key("Claude Sonnet 4"))
        );
        assert_eq!(
            inv.tokens,
            Tokens {
                input: 25,
                output: 150,
                cache_read: 0,
                cache_write: 0
            }
        );
        assert!(inv.token_counts_logged);
        assert_eq!(inv.request_metadata["team"], "orchestrator");
        assert_eq!(inv.request_metadata["environment"], "production");
        assert_eq!(inv.error, None);
        assert_eq!(inv.inference_region, None);
        assert!(!inv.latency_optimized);
        // The session ARN of an assumed role: the role behind it, and the session.
        let p = inv.principal().unwrap();
        assert_eq!(p.kind, PrincipalKind::AssumedRole);
        assert_eq!(p.role_arn(), "arn:aws:iam::123456789012:role/MyRole");
        assert_eq!(p.session, Some("session-name"));
    }

    /// The `InvokeModel` example with `requestMetadata` in the user guide
    /// (https://docs.aws.amazon.com/bedrock/latest/userguide/rft-option-2.html and
    /// add-metadata-to-prompts.html). Shape as published; the placeholders `XXXXX` /
    /// `XXXXXXX` are replaced by an account id, and the 300-token completion is shortened.
    #[test]
    fn the_user_guide_request_metadata_example() {
        let doc = r#"{
    "schemaType": "ModelInvocationLog",
    "schemaVersion": "1.0",
    "timestamp": "2024-09-11T17:16:18Z",
    "accountId": "111122223333",
    "identity": {
        "arn": "arn:aws:sts::111122223333:assumed-role/Admin/XXXXXX"
    },
    "region": "us-east-1",
    "requestId": "7ee514f3-9eff-467c-af75-8fd564ce58e5",
    "operation": "InvokeModel",
    "modelId": "meta.llama3-1-405b-instruct-v1:0",
    "input": {
        "inputContentType": "application/json",
        "inputBodyJson": {
            "prompt": "story of two dogs",
            "max_tokens_to_sample": 300
        },
        "inputTokenCount": 13
    },
    "output": {
        "outputContentType": "application/json",
        "outputBodyJson": {
            "type": "completion",
            "completion": " Here is a story about two dogs:\n\nRex and Charlie were best friends ...",
            "stop_reason": "max_tokens",
            "stop": null
        },
        "outputTokenCount": 300
    },
    "requestMetadata": {
        "project": "CustomerService",
        "intent": "ComplaintResolution",
        "priority": "High"
    }
}"#;
        let inv = ok(doc);
        assert_eq!(inv.operation, Operation::InvokeModel);
        assert_eq!((inv.tokens.input, inv.tokens.output), (13, 300));
        assert_eq!(inv.request_metadata.len(), 3);
        assert_eq!(inv.request_metadata["priority"], "High");
        assert_eq!(
            inv.model().key(),
            Some(crate::domain::model::key("Llama 3.1 405B Instruct"))
        );
        assert_eq!(inv.principal().unwrap().name, "Admin");
    }

    /// A streaming call through a geographic profile that was served elsewhere. The AWS ML blog
    /// (getting-started-with-cross-region-inference-in-amazon-bedrock) shows the fields of it
    /// that matter, with the rest elided:
    /// `{"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", ... "region": "us-east-1",
    /// "operation": "Converse", ... "inferenceRegion": "us-west-2"}`; the rest follows a public
    /// `ConverseStream` record (inferenceRegion us-east-2 for a us-east-1 call).
    #[test]
    fn a_streaming_cross_region_record() {
        let line = r#"{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"2026-09-14T04:12:37Z","accountId":"123456789012","region":"us-east-1","requestId":"5e0c7c4e-2a3b-4f7a-9f0e-0123456789ab","operation":"ConverseStream","modelId":"us.anthropic.claude-sonnet-4-5-20250929-v1:0","inferenceRegion":"us-east-2","identity":{"arn":"arn:aws:sts::123456789012:assumed-role/AmazonBedrockAgentCoreHarnessDefaultServiceRole-abc/BedrockAgentCore-6f1d"},"input":{"inputBodyJson":{"messages":[{"role":"user","content":[{"text":"hi"}]}]},"inputTokenCount":1840,"cacheReadInputTokenCount":0,"cacheWriteInputTokenCount":0},"output":{"outputBodyJson":[{"metadata":{"usage":{"inputTokens":1840,"outputTokens":61}}}],"outputTokenCount":61}}"#;
        let inv = ok(line);
        assert_eq!(
            (inv.operation.clone(), inv.streaming),
            (Operation::ConverseStream, true)
        );
        assert_eq!(inv.inference_region.as_deref(), Some("us-east-2"));
        assert_eq!(inv.model().kind, ModelKind::InferenceProfile);
        assert_eq!(
            inv.model().base_id.as_deref(),
            Some("anthropic.claude-sonnet-4-5-20250929-v1:0")
        );
        assert_eq!(
            (inv.model().scope, inv.model().geo.as_deref()),
            (Some(Scope::CrossRegion), Some("us"))
        );
        assert_eq!((inv.tokens.input, inv.tokens.output), (1840, 61));
        assert!(inv.token_counts_logged);

        // InvokeModelWithResponseStream: the body is the list of stream chunks.
        let line = record(
            "anthropic.claude-3-haiku-20240307-v1:0",
            r#"{"inputContentType":"application/json","inputBodyJson":{"prompt":"x"},"inputTokenCount":7}"#,
            r#"{"outputContentType":"application/json","outputBodyJson":[{"outputText":" Hello!","index":0,"totalOutputTextTokenCount":11}],"outputTokenCount":11}"#,
            "",
        )
        .replace("\"Converse\"", "\"InvokeModelWithResponseStream\"");
        let inv = ok(&line);
        assert_eq!(inv.operation, Operation::InvokeModelWithResponseStream);
        assert!(inv.streaming);
        // A stream operation this code does not name.
        assert!(Operation::parse("InvokeModelWithBidirectionalStream").is_streaming());
        assert!(!Operation::parse("CountTokens").is_streaming());
        assert_eq!(Operation::parse("CountTokens").as_str(), "CountTokens");
    }

    /// Global profiles, by id (the model id of the AWS blog's global cross-Region CloudTrail
    /// sample) and by ARN.
    #[test]
    fn global_and_geographic_profiles() {
        for (model_id, base, scope, geo) in [
            (
                "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "anthropic.claude-sonnet-4-5-20250929-v1:0",
                Scope::Global,
                None,
            ),
            (
                "arn:aws:bedrock:ap-southeast-2:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "anthropic.claude-sonnet-4-5-20250929-v1:0",
                Scope::Global,
                None,
            ),
            (
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-7",
                "anthropic.claude-opus-4-7",
                Scope::CrossRegion,
                Some("us"),
            ),
            (
                "eu.amazon.nova-pro-v1:0",
                "amazon.nova-pro-v1:0",
                Scope::CrossRegion,
                Some("eu"),
            ),
            (
                "apac.anthropic.claude-3-5-sonnet-20240620-v1:0",
                "anthropic.claude-3-5-sonnet-20240620-v1:0",
                Scope::CrossRegion,
                Some("apac"),
            ),
            (
                "au.anthropic.claude-sonnet-4-6",
                "anthropic.claude-sonnet-4-6",
                Scope::CrossRegion,
                Some("au"),
            ),
            (
                "us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0",
                "anthropic.claude-3-5-sonnet-20240620-v1:0",
                Scope::CrossRegion,
                Some("us-gov"),
            ),
            // A geography this code does not list, in a profile ARN: still a profile.
            (
                "arn:aws:bedrock:ap-south-1:123456789012:inference-profile/in.anthropic.claude-sonnet-4-6",
                "anthropic.claude-sonnet-4-6",
                Scope::CrossRegion,
                Some("in"),
            ),
        ] {
            let inv = ok(&record(
                model_id,
                r#"{"inputTokenCount":1}"#,
                r#"{"outputTokenCount":2}"#,
                "",
            ));
            let m = &inv.model();
            assert_eq!(m.raw, model_id);
            assert_eq!(m.kind, ModelKind::InferenceProfile, "{model_id}");
            assert_eq!(m.base_id.as_deref(), Some(base), "{model_id}");
            assert_eq!(
                (m.scope, m.geo.as_deref()),
                (Some(scope), geo),
                "{model_id}"
            );
            // The scope is the pricing rule's (but for the geography it does not list yet).
            if geo != Some("in") {
                assert_eq!(
                    Some(crate::domain::pricing::scope_of(model_id)),
                    m.scope,
                    "{model_id}"
                );
            }
        }
        // Same model, one key, whatever the route.
        let k = |id: &str| ModelRef::parse(id).key();
        assert_eq!(
            k("global.anthropic.claude-sonnet-4-6"),
            k("anthropic.claude-sonnet-4-6")
        );
        assert_eq!(
            k("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-6"),
            k("us.anthropic.claude-sonnet-4-6")
        );
    }

    /// An application inference profile ARN with cache reads and writes, a body moved to S3 and
    /// `inferenceRegion`: a record delivered to S3 as a public write-up shows it (the account,
    /// ids and S3 path are placeholders there too).
    #[test]
    fn an_application_profile_with_cache_tokens() {
        let line = r#"{"timestamp":"2025-08-07T02:48:23Z","accountId":"123456789012","identity":{"arn":"arn:aws:sts::123456789012:assumed-role/github-actions/claude-code"},"region":"us-east-1","requestId":"c448be01-5f60-4d31-8049-0123456789ab","operation":"InvokeModelWithResponseStream","modelId":"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6","input":{"inputContentType":"application/json","inputBodyS3Path":"s3://logs/data/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2025/08/07/02/input.json","inputTokenCount":3,"cacheReadInputTokenCount":0,"cacheWriteInputTokenCount":28857},"output":{"outputContentType":"application/json","outputBodyJson":[{"type":"message_start"}],"outputTokenCount":142},"inferenceRegion":"us-east-2","schemaType":"ModelInvocationLog","schemaVersion":"1.0"}"#;
        let inv = ok(line);
        assert_eq!(inv.model().kind, ModelKind::ApplicationProfile);
        assert_eq!(
            (inv.model().base_id.clone(), inv.model().scope),
            (None, None)
        );
        assert_eq!(inv.model().key(), None);
        assert_eq!(
            inv.tokens,
            Tokens {
                input: 3,
                output: 142,
                cache_read: 0,
                cache_write: 28857
            }
        );
        assert_eq!(inv.tokens.total(), 3 + 142 + 28857);
        assert_eq!(
            inv.tokens.by_kind(),
            [
                (TokenKind::Input, 3),
                (TokenKind::Output, 142),
                (TokenKind::CacheRead, 0),
                (TokenKind::CacheWrite5m, 28857)
            ]
        );
        assert_eq!(inv.inference_region.as_deref(), Some("us-east-2"));
        assert!(inv.streaming);

        // Cache reads, from a public record through a profile ARN.
        let inv = ok(&record(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-7",
            r#"{"inputTokenCount":1,"cacheReadInputTokenCount":238604,"cacheWriteInputTokenCount":1314}"#,
            r#"{"outputTokenCount":512}"#,
            "",
        ));
        assert_eq!(
            (inv.tokens.cache_read, inv.tokens.cache_write),
            (238_604, 1314)
        );
    }

    #[test]
    fn other_model_resources() {
        for (id, kind) in [
            (
                "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
                ModelKind::Foundation,
            ),
            (
                "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123",
                ModelKind::Other,
            ),
            (
                "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.titan-text-express-v1:0:8k/xyz",
                ModelKind::Other,
            ),
            (
                "arn:aws:bedrock:us-east-1:123456789012:imported-model/k2j3",
                ModelKind::Other,
            ),
            (
                "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1",
                ModelKind::Other,
            ),
            (
                "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint",
                ModelKind::Other,
            ),
            ("arn:aws:bedrock:us-east-1", ModelKind::Other),
            (
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/nodots",
                ModelKind::Other,
            ),
            ("amazon.nova-canvas-v1:0", ModelKind::Foundation),
            ("some/path", ModelKind::Other),
        ] {
            let m = ModelRef::parse(id);
            assert_eq!(m.kind, kind, "{id}");
            assert_eq!(m.base_id.is_some(), m.scope.is_some(), "{id}");
            assert_eq!(
                m.base_id.is_some(),
                matches!(kind, ModelKind::Foundation | ModelKind::InferenceProfile),
                "{id}"
            );
        }
        assert_eq!(
            ModelRef::parse(
                "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
            )
            .base_id
            .as_deref(),
            Some("amazon.titan-embed-text-v2:0")
        );
    }

    /// An IAM user, a role and an assumed-role session as callers.
    #[test]
    fn callers() {
        for (arn, kind, role) in [
            (
                "arn:aws:iam::123456789012:user/dev/alice",
                PrincipalKind::User,
                "arn:aws:iam::123456789012:user/dev/alice",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/ml-batch/i-0abc",
                PrincipalKind::AssumedRole,
                "arn:aws:iam::123456789012:role/ml-batch",
            ),
            (
                "arn:aws:iam::123456789012:role/service-role/kb",
                PrincipalKind::Role,
                "arn:aws:iam::123456789012:role/service-role/kb",
            ),
        ] {
            let line = record("amazon.nova-lite-v1:0", "{}", "{}", "")
                .replace("arn:aws:iam::123456789012:user/alice", arn);
            let inv = ok(&line);
            assert_eq!(inv.principal_arn, arn);
            let p = inv.principal().unwrap();
            assert_eq!((p.kind, p.role_arn()), (kind, role.to_string()));
        }
    }

    /// A failed call: `errorCode` at the top level (the field public schemas of the record list;
    /// AWS's table does not show an error record), no output.
    #[test]
    fn an_error_record() {
        let line = r#"{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"2026-10-06T14:14:00Z","accountId":"123456789012","identity":{"arn":"arn:aws:sts::123456789012:assumed-role/app/s1"},"region":"eu-west-1","requestId":"e-1","operation":"Converse","modelId":"eu.anthropic.claude-sonnet-4-6","errorCode":"ThrottlingException","input":{"inputContentType":"application/json","inputBodyJson":{"messages":[]}}}"#;
        let inv = ok(line);
        assert_eq!(inv.error.as_deref(), Some("ThrottlingException"));
        assert_eq!(inv.tokens, Tokens::default());
        assert!(!inv.token_counts_logged);
        // An empty or control-laden error code is not one.
        assert!(matches!(
            err(&line.replace("ThrottlingException", "")).problem,
            Problem::BadField {
                field: "errorCode",
                ..
            }
        ));
    }

    /// Embedding models log input tokens only; image models may log no count at all.
    #[test]
    fn embedding_and_image_records() {
        let inv = ok(&record(
            "amazon.titan-embed-text-v2:0",
            r#"{"inputContentType":"application/json","inputBodyJson":{"inputText":"hello"},"inputTokenCount":2}"#,
            r#"{"outputContentType":"application/json","outputBodyJson":{"embedding":[0.1,-0.2],"inputTextTokenCount":2}}"#,
            "",
        ).replace("\"Converse\"", "\"InvokeModel\""));
        assert_eq!((inv.tokens.input, inv.tokens.output), (2, 0));
        assert!(inv.token_counts_logged);
        assert_eq!(
            inv.model().key(),
            Some(crate::domain::model::key("Titan Text Embeddings V2"))
        );

        let inv = ok(&record(
            "amazon.nova-canvas-v1:0",
            r#"{"inputContentType":"application/json","inputBodyJson":{"taskType":"TEXT_IMAGE"}}"#,
            r#"{"outputContentType":"application/json","outputBodyS3Path":"s3://b/data/out.json"}"#,
            "",
        ));
        assert_eq!(inv.tokens, Tokens::default());
        assert!(!inv.token_counts_logged);
        // No input or output object at all, and explicit nulls.
        let inv = ok(&record("amazon.nova-canvas-v1:0", "null", "null", ""));
        assert!(!inv.token_counts_logged);
        let inv = ok(&record(
            "amazon.nova-canvas-v1:0",
            r#"{"inputTokenCount":null}"#,
            "{}",
            "",
        ));
        assert!(!inv.token_counts_logged);
    }

    #[test]
    fn unknown_fields_are_accepted() {
        let line = record(
            "amazon.nova-micro-v1:0",
            r#"{"inputTokenCount":5,"newInputField":{"deep":[1,2,{"x":null}]},"inputImageS3Path":"s3://x"}"#,
            r#"{"outputTokenCount":6,"outputVideoDurationSeconds":6.0,"outputVideoS3Path":"s3://y"}"#,
            r#","status":"Success","trace":{"guardrail":{}},"performanceConfig":{"latency":"optimized","other":1},"identity2":[],"futureNumber":1e308"#,
        )
        .replace(r#"{"arn":"#, r#"{"type":"AssumedRole","arn":"#);
        let inv = ok(&line);
        assert_eq!((inv.tokens.input, inv.tokens.output), (5, 6));
        assert!(inv.latency_optimized);
        // performanceConfig "standard" is not latency-optimized.
        let inv = ok(&line.replace("\"optimized\"", "\"standard\""));
        assert!(!inv.latency_optimized);
    }

    #[test]
    fn malformed_records_are_refused() {
        for bad in [
            "",
            "   ",
            "{",
            "[]",
            "null",
            "42",
            "\"text\"",
            "{}}",
            r#"{"schemaType":"ModelInvocationLog","requestId":"r-9"} trailing"#,
            r#"{"schemaType":"ModelInvocationLog","requestId":"r-9","#,
            "\u{feff}{}",
        ] {
            let e = err(bad);
            assert!(matches!(e.problem, Problem::Json(_)), "{bad:?}: {e}");
        }
        // A record, or a part of one, written as an array of its fields: not what AWS writes.
        let e = err(
            r#"["ModelInvocationLog","1.0","2026-10-06T14:14:00Z","123456789012","us-east-1",null,"r-1","Converse","m.x",null,null,null,null,null,null]"#,
        );
        assert!(
            matches!(&e.problem, Problem::Json(m) if m.contains("expected a JSON object")),
            "{e}"
        );
        let line = record("m.x", "[5]", "{}", "");
        assert!(matches!(err(&line).problem, Problem::Json(_)), "{line}");
        let line = record("m.x", "{}", "{}", "").replace(
            r#"{"arn":"arn:aws:iam::123456789012:user/alice"}"#,
            r#"["arn:aws:iam::123456789012:user/alice"]"#,
        );
        assert!(matches!(err(&line).problem, Problem::Json(_)), "{line}");
        // Not UTF-8.
        let e = parse_record(b"{\"schemaType\":\"ModelInvocation\xffLog\"}").unwrap_err();
        assert!(matches!(e.problem, Problem::Json(_)), "{e}");
        // Sound JSON but not a record: the schema type says so.
        assert_eq!(err("{}").problem, Problem::Missing("schemaType"));
        let e = err(&record("m.x", "{}", "{}", "").replace("ModelInvocationLog", "SomethingElse"));
        assert_eq!(
            e.problem,
            Problem::NotInvocationLog("\"SomethingElse\"".into())
        );
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        let e = err(&record("m.x", "{}", "{}", "").replace("\"1.0\"", "\"2.0\""));
        assert_eq!(e.problem, Problem::SchemaVersion("\"2.0\"".into()));
        assert!(
            parse_record(
                record("m.x", "{}", "{}", "")
                    .replace("\"1.0\"", "\"1.1\"")
                    .as_bytes()
            )
            .is_ok()
        );
        // A field of the wrong type: the request id is still reported.
        let e = err(&record("m.x", r#"{"inputTokenCount":"12"}"#, "{}", ""));
        assert!(matches!(e.problem, Problem::Json(_)), "{e}");
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        assert!(e.to_string().starts_with("request r-1: "), "{e}");
        let e = err(&record("m.x", "{}", "{}", "").replace(
            r#""accountId":"123456789012""#,
            r#""accountId":123456789012"#,
        ));
        assert!(matches!(e.problem, Problem::Json(_)), "{e}");
        // Required fields.
        for (field, from, to) in [
            ("requestId", r#""requestId":"r-1","#, ""),
            ("timestamp", r#""timestamp":"2026-10-06T14:14:00Z","#, ""),
            ("accountId", r#""accountId":"123456789012","#, ""),
            ("region", r#""region":"us-east-1","#, ""),
            ("operation", r#""operation":"Converse","#, ""),
            ("modelId", r#""modelId":"m.x","#, ""),
        ] {
            let line = record("m.x", "{}", "{}", "").replace(from, to);
            assert_eq!(err(&line).problem, Problem::Missing(field), "{line}");
        }
        // Bad values.
        let base = record("m.x", "{}", "{}", "");
        for (from, to, field) in [
            ("2026-10-06T14:14:00Z", "yesterday", "timestamp"),
            ("2026-10-06T14:14:00Z", "2026-10-06 14:14:00", "timestamp"),
            ("123456789012", "XXXXX", "accountId"),
            ("123456789012\"", "12345678901x\"", "accountId"),
            ("us-east-1", "US East", "region"),
            ("\"r-1\"", "\"\"", "requestId"),
            ("\"r-1\"", "\"r\\u001b[31m\"", "requestId"),
            ("\"m.x\"", "\"\"", "modelId"),
        ] {
            let e = err(&base.replacen(from, to, 1));
            let named = match &e.problem {
                Problem::BadField { field, .. } => *field,
                Problem::BadTimestamp(_) => "timestamp",
                other => panic!("{from} -> {to}: {other}"),
            };
            assert_eq!(named, field, "{from} -> {to}");
        }
        // A request id with control characters is not echoed, nor an empty one (found by
        // fuzz/fuzz_targets/invocation_log.rs: it was reported as `request : ...`).
        assert_eq!(
            err(&base.replacen("\"r-1\"", "\"r\\u001b[31m\"", 1)).request_id,
            None
        );
        let e = err(&base.replacen("\"r-1\"", "\"\"", 1));
        assert_eq!(e.request_id, None);
        assert_eq!(e.to_string(), "requestId is empty");
        // Over-long fields.
        let long = "a".repeat(MAX_ARN_LEN + 1);
        assert!(matches!(
            err(&record(&long, "{}", "{}", "")).problem,
            Problem::BadField {
                field: "modelId",
                ..
            }
        ));
    }

    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        let inv = ok(&record("m.x", "{}", "{}", "")
            .replace("2026-10-06T14:14:00Z", "2026-10-06T23:14:00.123+09:00"));
        assert_eq!(
            inv.at,
            DateTime::parse_from_rfc3339("2026-10-06T14:14:00.123Z").unwrap()
        );
    }

    #[test]
    fn a_record_without_identity_is_refused_with_its_request_id() {
        let base = record("m.x", "{}", "{}", "");
        for line in [
            base.replace(
                r#""identity":{"arn":"arn:aws:iam::123456789012:user/alice"},"#,
                "",
            ),
            base.replace(r#"{"arn":"arn:aws:iam::123456789012:user/alice"}"#, "{}"),
            base.replace(r#"{"arn":"arn:aws:iam::123456789012:user/alice"}"#, "null"),
        ] {
            let e = err(&line);
            assert_eq!(e.problem, Problem::Missing("identity.arn"), "{line}");
            assert_eq!(e.request_id.as_deref(), Some("r-1"));
            assert_eq!(e.to_string(), "request r-1: identity.arn is missing");
        }
    }

    #[test]
    fn token_counts_are_bounded() {
        let with = |n: &str| record("m.x", &format!(r#"{{"inputTokenCount":{n}}}"#), "{}", "");
        assert_eq!(ok(&with("0")).tokens.input, 0);
        assert_eq!(ok(&with("12.0")).tokens.input, 12);
        assert_eq!(ok(&with("1e3")).tokens.input, 1000);
        assert_eq!(ok(&with("-0")).tokens.input, 0);
        assert_eq!(
            ok(&with(&MAX_TOKENS_PER_KIND.to_string())).tokens.input,
            MAX_TOKENS_PER_KIND
        );
        for (n, why) in [
            (
                (MAX_TOKENS_PER_KIND + 1).to_string(),
                "over the accepted maximum",
            ),
            (u64::MAX.to_string(), "over the accepted maximum"),
            ("18446744073709551616".into(), "over the accepted maximum"),
            (
                "99999999999999999999999999999999999999".into(),
                "over the accepted maximum",
            ),
            ("1e308".into(), "over the accepted maximum"),
            ("-1".into(), "negative"),
            (i64::MIN.to_string(), "negative"),
            ("-0.5".into(), "negative"),
            ("12.5".into(), "not whole"),
            ("1e-9".into(), "not whole"),
        ] {
            match err(&with(&n)).problem {
                Problem::BadTokenCount { field, why: w, .. } => {
                    assert_eq!((field, w), ("input.inputTokenCount", why), "{n}");
                }
                other => panic!("{n}: {other}"),
            }
        }
        // serde_json refuses what is not a JSON number (1e400 overflows f64).
        assert!(matches!(err(&with("1e400")).problem, Problem::Json(_)));
        assert!(matches!(err(&with("NaN")).problem, Problem::Json(_)));
        // Each kind is checked under its own name.
        let e = err(&record("m.x", "{}", r#"{"outputTokenCount":-3}"#, ""));
        assert!(matches!(
            e.problem,
            Problem::BadTokenCount {
                field: "output.outputTokenCount",
                ..
            }
        ));
        let e = err(&record(
            "m.x",
            r#"{"cacheWriteInputTokenCount":1e12}"#,
            "{}",
            "",
        ));
        assert!(matches!(
            e.problem,
            Problem::BadTokenCount {
                field: "input.cacheWriteInputTokenCount",
                ..
            }
        ));
        // All four at the maximum: the total does not overflow.
        let m = MAX_TOKENS_PER_KIND;
        let inv = ok(&record(
            "m.x",
            &format!(
                r#"{{"inputTokenCount":{m},"cacheReadInputTokenCount":{m},"cacheWriteInputTokenCount":{m}}}"#
            ),
            &format!(r#"{{"outputTokenCount":{m}}}"#),
            "",
        ));
        assert_eq!(inv.tokens.total(), 4 * m);
    }

    /// Decision: a duplicate of a field this parser reads is refused. serde_json into a
    /// `serde_json::Value` keeps the last of duplicate keys; serde's derive, used here, refuses
    /// them ("duplicate field"), and that is what a billing parser wants: two `inputTokenCount`s
    /// or two `requestId`s make the record ambiguous. Duplicates inside skipped parts (the bodies)
    /// are not looked at; in `requestMetadata` (a map) the last value is kept.
    #[test]
    fn duplicate_keys() {
        // What serde_json::Value would do: the last wins.
        let v: serde_json::Value = serde_json::from_str(r#"{"a":1,"a":2}"#).unwrap();
        assert_eq!(v["a"], 2);
        // Here: refused. The request id is still reported when it is not the ambiguous field.
        let e = err(&record(
            "m.x",
            r#"{"inputTokenCount":1,"inputTokenCount":900}"#,
            "{}",
            "",
        ));
        assert!(
            matches!(&e.problem, Problem::Json(m) if m.contains("duplicate field")),
            "{e}"
        );
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        let e = err(&record("m.x", "{}", "{}", r#","requestId":"r-2""#));
        assert!(
            matches!(&e.problem, Problem::Json(m) if m.contains("duplicate field `requestId`")),
            "{e}"
        );
        assert_eq!(e.request_id, None);
        let e = err(&record("m.x", "{}", "{}", r#","modelId":"other.model""#));
        assert!(
            matches!(&e.problem, Problem::Json(m) if m.contains("duplicate field `modelId`")),
            "{e}"
        );
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        // Inside a body: accepted.
        let inv = ok(&record(
            "m.x",
            r#"{"inputBodyJson":{"k":1,"k":2},"inputTokenCount":4}"#,
            "{}",
            r#","unknownTwice":1,"unknownTwice":2"#,
        ));
        assert_eq!(inv.tokens.input, 4);
        // requestMetadata: the last value of a key.
        let inv = ok(&record(
            "m.x",
            "{}",
            "{}",
            r#","requestMetadata":{"team":"a","team":"b"}"#,
        ));
        assert_eq!(inv.request_metadata["team"], "b");
    }

    #[test]
    fn request_metadata_is_bounded() {
        let pairs = |n: usize| {
            let body: Vec<String> = (0..n).map(|i| format!(r#""k{i}":"v""#)).collect();
            record(
                "m.x",
                "{}",
                "{}",
                &format!(r#","requestMetadata":{{{}}}"#, body.join(",")),
            )
        };
        assert_eq!(
            ok(&pairs(MAX_METADATA_PAIRS)).request_metadata.len(),
            MAX_METADATA_PAIRS
        );
        assert!(matches!(
            err(&pairs(MAX_METADATA_PAIRS + 1)).problem,
            Problem::BadField {
                field: "requestMetadata",
                ..
            }
        ));
        let long = "v".repeat(MAX_METADATA_LEN + 1);
        let e = err(&record(
            "m.x",
            "{}",
            "{}",
            &format!(r#","requestMetadata":{{"k":"{long}"}}"#),
        ));
        assert!(matches!(
            e.problem,
            Problem::BadField {
                field: "requestMetadata",
                ..
            }
        ));
        // Values are strings, as the API takes them; an empty value is allowed, an empty key not.
        assert!(matches!(
            err(&record("m.x", "{}", "{}", r#","requestMetadata":{"k":1}"#)).problem,
            Problem::Json(_)
        ));
        assert_eq!(
            ok(&record("m.x", "{}", "{}", r#","requestMetadata":{"k":""}"#)).request_metadata["k"],
            ""
        );
        assert!(
            err(&record("m.x", "{}", "{}", r#","requestMetadata":{"":"v"}"#))
                .to_string()
                .contains("requestMetadata is empty")
        );
    }

    #[test]
    fn size_and_depth_are_bounded() {
        // Over the limit: refused before parsing, so no request id.
        let filler = "x".repeat(MAX_RECORD_BYTES);
        let line = record(
            "m.x",
            &format!(r#"{{"inputBodyJson":"{filler}"}}"#),
            "{}",
            "",
        );
        let e = err(&line);
        assert_eq!(
            e.problem,
            Problem::TooLarge {
                bytes: line.len(),
                max: MAX_RECORD_BYTES
            }
        );
        assert_eq!(e.request_id, None);
        // Just under: a large inline body is fine.
        let filler = "x".repeat(MAX_RECORD_BYTES - 1024);
        assert!(
            parse_record(
                record(
                    "m.x",
                    &format!(r#"{{"inputBodyJson":"{filler}"}}"#),
                    "{}",
                    ""
                )
                .as_bytes()
            )
            .is_ok()
        );
        // A body nested 100,000 deep is skipped without recursion (no stack overflow)...
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let inv = ok(&record(
            "m.x",
            &format!(r#"{{"inputBodyJson":{deep},"inputTokenCount":3}}"#),
            "{}",
            "",
        ));
        assert_eq!(inv.tokens.input, 3);
        // ...and unbalanced, refused.
        let e = err(&record(
            "m.x",
            &format!(r#"{{"inputBodyJson":{}}}"#, "[".repeat(100_000)),
            "{}",
            "",
        ));
        assert!(matches!(e.problem, Problem::Json(_)), "{e}");
        // Nesting where a field read is expected: refused at once by its type.
        let e = err(&record(
            "m.x",
            &format!(r#"{{"inputTokenCount":{deep}}}"#),
            "{}",
            "",
        ));
        assert!(matches!(e.problem, Problem::Json(_)), "{e}");
        let e = err(&record(
            "m.x",
            "{}",
            "{}",
            &format!(r#","requestMetadata":{{"k":{deep}}}"#),
        ));
        assert!(matches!(e.problem, Problem::Json(_)), "{e}");
        // Long messages are cut.
        let e = err(&record(
            "m.x",
            &format!(r#"{{"inputTokenCount":"{}"}}"#, "9".repeat(5000)),
            "{}",
            "",
        ));
        assert!(e.to_string().len() < 400, "{}", e.to_string().len());
    }

    #[test]
    fn lines() {
        let good = |id: &str| {
            record("m.x", r#"{"inputTokenCount":1}"#, "{}", "")
                .replace("\"r-1\"", &format!("\"{id}\""))
        };
        let mut text = String::new();
        text.push_str(&good("a"));
        text.push_str("\r\n\n   \t\r\n");
        text.push_str(&good("b"));
        text.push('\n');
        text.push_str("{not json\n");
        text.push_str(
            &record("m.x", "{}", "{}", "")
                .replace(
                    r#""identity":{"arn":"arn:aws:iam::123456789012:user/alice"},"#,
                    "",
                )
                .replace("\"r-1\"", "\"c\""),
        );
        text.push('\n');
        for i in 0..6 {
            text.push_str(&format!("[{i}]\n"));
        }
        text.push_str(&good("d")); // no final newline
        let (invs, skipped) = parse_lines(text.as_bytes());
        let ids: Vec<&str> = invs.iter().map(|i| i.request_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "d"]);
        assert_eq!(skipped.count, 8);
        assert_eq!(skipped.first.len(), MAX_SKIPPED_SHOWN);
        let shown: Vec<(usize, Option<&str>)> = skipped
            .first
            .iter()
            .map(|s| (s.line, s.error.request_id.as_deref()))
            .collect();
        // Lines 2-3 are blank; 5 is not JSON, 6 has no caller, 7-12 are arrays, 13 is "d".
        assert_eq!(
            shown,
            [(5, None), (6, Some("c")), (7, None), (8, None), (9, None)]
        );
        assert_eq!(
            skipped.first[1].error.problem,
            Problem::Missing("identity.arn")
        );
        // Nothing at all.
        assert_eq!(parse_lines(b""), (vec![], Skipped::default()));
        assert_eq!(parse_lines(b"\n\n \r\n"), (vec![], Skipped::default()));
        // Arbitrary bytes: no panic, every non-blank line accounted for.
        let junk: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let (invs, skipped) = parse_lines(&junk);
        let lines = junk
            .split(|b| *b == b'\n')
            .filter(|l| {
                !l.strip_suffix(b"\r")
                    .unwrap_or(l)
                    .iter()
                    .all(u8::is_ascii_whitespace)
            })
            .count();
        assert_eq!(invs.len() + skipped.count, lines);
    }
}
