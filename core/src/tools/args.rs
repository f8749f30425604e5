//! Tool arguments: every tool's input struct and the checks on it, pure (no
//! rmcp, no AWS, no I/O), so the fuzz crate (`fuzz/`) compiles this file
//! alone and feeds it arbitrary arguments. The tools re-export their input
//! types from here and call these checks before they touch a source.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::group::{
    Granularity, GroupKey, Metric, SpendFilter, SpendQuery, tag_key, valid_tag_key,
};
use crate::domain::period::{Period, PeriodInput};
use crate::domain::principal::Principal;
use crate::domain::usage_type::Tier;
use crate::error::ToolError;

// ---------------------------------------------------------------- bedrock_spend

/// One value or a list of values.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum GranularityInput {
    #[default]
    Monthly,
    Daily,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum MetricInput {
    #[default]
    Unblended,
    NetUnblended,
    Amortized,
}

pub use crate::sources::SourceInput;

/// Input of `bedrock_spend`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendInput {
    /// this_month (default), last_month, last_7_days, last_30_days, or {"start":"YYYY-MM-DD","end":"YYYY-MM-DD"} (end exclusive).
    #[schemars(example = serde_json::json!("last_month"), example = serde_json::json!({"start": "2026-10-01", "end": "2026-11-01"}))]
    pub period: Option<PeriodInput>,
    /// tag:<key>, service, usage_type, region; cur/athena also principal, role, session, model, token_kind, tier, inference_scope, day, month; live also inference_profile. Max 2 (cost_explorer) or 3.
    #[schemars(example = serde_json::json!(["tag:team", "model"]))]
    pub group_by: Option<Vec<String>>,
    /// Tag key (cur/athena also principal, role, model, currency; * globs) -> value(s); "" = untagged.
    #[schemars(example = serde_json::json!({"team": ["ml-platform", ""]}))]
    pub filter: Option<BTreeMap<String, OneOrMany>>,
    /// monthly (default) or daily.
    pub granularity: Option<GranularityInput>,
    /// Default unblended.
    pub metric: Option<MetricInput>,
    /// Default: cur if set, else cost_explorer; live: logs.
    pub source: Option<SourceInput>,
    /// Logs vs bill.
    pub live_vs_bill: Option<bool>,
    /// Top N groups (default 20), rest as "others".
    #[schemars(example = 20)]
    pub top_n: Option<u32>,
    /// From next_cursor.
    pub cursor: Option<String>,
    /// Add a PNG chart.
    pub chart: Option<bool>,
}

/// The word a bare tag key stands for: `team` is `tag:team` (not a group key, no `:`, a valid
/// tag key). The one place this rule lives: the CLI's `--by team` is read with it, and the tools
/// suggest it when given a bare word.
pub fn bare_tag(word: &str) -> Option<String> {
    let w = word.trim();
    (w.parse::<GroupKey>().is_err() && !w.contains(':') && valid_tag_key(w))
        .then(|| format!("tag:{w}"))
}

/// A group key as the tools read it; a bare word that could be a tag key is refused with the
/// `tag:<word>` it may mean.
pub fn group_key(s: &str) -> Result<GroupKey, String> {
    s.parse::<GroupKey>().map_err(|e| match bare_tag(s) {
        Some(tag) => format!("{e}; did you mean \"{tag}\"? (tag keys are written tag:<key>)"),
        None => e,
    })
}

/// Parse and validate the input into a query (pure; unit-tested).
pub fn build_query(
    input: &SpendInput,
    default_tag_key: &str,
    today: NaiveDate,
) -> Result<SpendQuery, ToolError> {
    let period = input
        .period
        .clone()
        .unwrap_or_default()
        .resolve(today)
        .map_err(|e| ToolError::invalid(e.to_string()))?;
    let group_by = match &input.group_by {
        None => vec![GroupKey::Tag(default_tag_key.to_string())],
        Some(list) => {
            let keys = list
                .iter()
                .enumerate()
                .map(|(i, s)| group_key(s).map_err(|e| format!("group_by[{i}]: {e}")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(ToolError::invalid)?;
            if keys.is_empty() {
                return Err(ToolError::invalid(format!(
                    "group_by is empty; give 1 to 3 keys (e.g. [\"tag:{default_tag_key}\", \"model\"]) or leave it out for tag:{default_tag_key}"
                )));
            }
            if keys.len() > 3 {
                return Err(ToolError::invalid(format!(
                    "group_by takes at most 3 keys, got {}",
                    keys.len()
                )));
            }
            let mut seen = keys.clone();
            seen.sort();
            seen.dedup();
            if seen.len() != keys.len() {
                return Err(ToolError::invalid("group_by lists a key twice"));
            }
            keys
        }
    };
    let mut filter = SpendFilter::default();
    let filters = input.filter.clone().unwrap_or_default();
    if filters.len() > MAX_FILTER_KEYS {
        return Err(ToolError::invalid(format!(
            "filter takes at most {MAX_FILTER_KEYS} keys, got {}",
            filters.len()
        )));
    }
    for (key, values) in filters {
        let values = values.into_vec();
        if values.is_empty() {
            return Err(ToolError::invalid(format!(
                "filter '{key}' has no values; give a value, a list, or \"\" for untagged"
            )));
        }
        check_filter_values(&key, &values)?;
        match key.as_str() {
            "principal" => filter.principals = values,
            "role" => filter.roles = values,
            "model" => filter.models = values,
            // line_item_currency_code (CUR, Athena): an ISO 4217 code.
            "currency" => {
                if let Some(bad) = values
                    .iter()
                    .find(|c| c.len() != 3 || !c.chars().all(|x| x.is_ascii_alphabetic()))
                {
                    return Err(ToolError::invalid(format!(
                        "filter.currency takes ISO 4217 codes such as USD or EUR, got {bad:?}"
                    )));
                }
                filter.currencies = values.iter().map(|c| c.to_ascii_uppercase()).collect();
            }
            _ => {
                let tag = crate::domain::group::tag_key(key.strip_prefix("tag:").unwrap_or(&key)).ok_or_else(|| {
                    ToolError::invalid(format!(
                        "filter key '{key}' is not a tag key; use a principal tag key such as team, or principal, role, model"
                    ))
                })?;
                filter.tags.insert(tag.to_string(), values);
            }
        }
    }
    Ok(SpendQuery {
        period,
        granularity: match input.granularity.unwrap_or_default() {
            GranularityInput::Monthly => Granularity::Monthly,
            GranularityInput::Daily => Granularity::Daily,
        },
        group_by,
        filter,
        metric: match input.metric.unwrap_or_default() {
            MetricInput::Unblended => Metric::Unblended,
            MetricInput::NetUnblended => Metric::NetUnblended,
            MetricInput::Amortized => Metric::Amortized,
        },
    })
}

/// Most keys one `filter` takes.
pub const MAX_FILTER_KEYS: usize = 8;
/// Most values (or globs) one filter key takes.
pub const MAX_FILTER_VALUES: usize = 32;
/// Longest filter value or glob, in characters (AWS tag values are at most 256; IAM ARNs 2048,
/// but no principal ARN a bill records comes near this).
pub const MAX_FILTER_VALUE_CHARS: usize = 1024;
/// Most wildcards (`*`, `?`) in one glob.
pub const MAX_GLOB_WILDCARDS: usize = 8;

/// Bound the values of one filter key: these size the work of every row of the answer.
fn check_filter_values(key: &str, values: &[String]) -> Result<(), ToolError> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(ToolError::invalid(format!(
            "filter '{key}' takes at most {MAX_FILTER_VALUES} values, got {}; ask with a glob (principal, role) or in parts",
            values.len()
        )));
    }
    for v in values {
        if v.chars().count() > MAX_FILTER_VALUE_CHARS {
            return Err(ToolError::invalid(format!(
                "a value of filter '{key}' is longer than {MAX_FILTER_VALUE_CHARS} characters"
            )));
        }
        if v.chars().filter(|c| matches!(c, '*' | '?')).count() > MAX_GLOB_WILDCARDS {
            return Err(ToolError::invalid(format!(
                "a glob of filter '{key}' has more than {MAX_GLOB_WILDCARDS} wildcards (* or ?)"
            )));
        }
    }
    Ok(())
}

/// The row offset a `bedrock_spend` cursor (`rows:<n>`) points at.
pub fn parse_cursor(c: &Option<String>) -> Result<usize, ToolError> {
    match c {
        None => Ok(0),
        Some(c) => c
            .strip_prefix("rows:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ToolError::invalid(format!("cursor '{c}' is not one this server issued; pass next_cursor from the previous answer unchanged"))),
    }
}

/// Rows per page and the offset of the page asked for.
pub fn spend_page(input: &SpendInput) -> Result<(usize, usize), ToolError> {
    let offset = parse_cursor(&input.cursor)?;
    let top_n = input.top_n.unwrap_or(20).clamp(1, 500) as usize;
    Ok((top_n, offset))
}

// -------------------------------------------------------------- spend_anomalies

/// Input of `spend_anomalies`.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AnomalyInput {
    /// Default last_7_days.
    #[schemars(example = serde_json::json!("last_7_days"), example = serde_json::json!({"start": "2026-10-01", "end": "2026-10-15"}))]
    pub period: Option<PeriodInput>,
    /// role (default), principal or tag:<key>.
    #[schemars(example = serde_json::json!("role"), example = serde_json::json!("tag:team"))]
    pub by: Option<String>,
    /// Sensitivity (default 3).
    #[schemars(example = 3.0)]
    pub k: Option<f64>,
    /// Smallest excess, USD (default 5).
    pub min_increase_usd: Option<f64>,
    /// Per page, largest first (default 20).
    pub top_n: Option<u32>,
    /// From next_cursor.
    pub cursor: Option<String>,
}

/// The checked arguments of `spend_anomalies`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyArgs {
    pub period: Period,
    /// Sensitivity, 0.5..=20.
    pub k: f64,
    /// At least 0.
    pub min_increase: f64,
    /// Role, principal or a tag.
    pub by: GroupKey,
}

/// Check `spend_anomalies` arguments against `today` (UTC).
pub fn anomaly_args(input: &AnomalyInput, today: NaiveDate) -> Result<AnomalyArgs, ToolError> {
    let period = input
        .period
        .clone()
        .unwrap_or(PeriodInput::Word("last_7_days".into()))
        .resolve(today)
        .map_err(|e| ToolError::invalid(e.to_string()))?;
    if period.days() > 92 {
        return Err(ToolError::invalid("check at most 92 days at a time"));
    }
    let k = input.k.unwrap_or(3.0);
    if !(0.5..=20.0).contains(&k) {
        return Err(ToolError::invalid("k must be between 0.5 and 20"));
    }
    let min_increase = input.min_increase_usd.unwrap_or(5.0).max(0.0);
    let by_raw = input.by.clone().unwrap_or_else(|| "role".into());
    let by: GroupKey = group_key(&by_raw).map_err(|e| ToolError::invalid(format!("by: {e}")))?;
    if !matches!(by, GroupKey::Role | GroupKey::Principal | GroupKey::Tag(_)) {
        return Err(ToolError::invalid(
            "by must be role, principal or tag:<key>",
        ));
    }
    Ok(AnomalyArgs {
        period,
        k,
        min_increase,
        by,
    })
}

// ------------------------------------------------- estimate_cost, check_budget

/// The planned call.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EstimateInput {
    /// Model id, name or inference profile (global./us. priced apart).
    #[schemars(example = serde_json::json!("anthropic.claude-sonnet-4-6"), example = serde_json::json!("Claude Sonnet 4.6"))]
    pub model: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    /// 5-minute cache writes.
    pub cache_write_tokens: Option<u64>,
    pub cache_write_1h_tokens: Option<u64>,
    /// standard (default), batch, flex or priority.
    #[schemars(example = serde_json::json!("standard"))]
    pub tier: Option<String>,
    /// Default: the configured region.
    #[schemars(example = serde_json::json!("us-east-1"))]
    pub region: Option<String>,
}

/// Input of `check_budget`.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckInput {
    /// Principal ARN, role or tag:<key>=<value>; default the caller (STS).
    #[schemars(example = serde_json::json!("tag:team=ml-platform"), example = serde_json::json!("arn:aws:iam::123456789012:role/MlRole"))]
    pub who: Option<String>,
    /// With token counts (see estimate_cost), or give cost_usd.
    #[schemars(example = serde_json::json!("anthropic.claude-sonnet-4-6"))]
    pub model: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub cache_write_1h_tokens: Option<u64>,
    pub tier: Option<String>,
    /// Planned cost in USD (instead of model and tokens).
    #[schemars(example = 12.5)]
    pub cost_usd: Option<f64>,
    /// false: a what-if (not recorded).
    pub record: Option<bool>,
    /// check_id whose call did not run.
    pub release: Option<String>,
}

/// More tokens than any one call plausibly uses.
pub const MAX_TOKENS: u64 = 100_000_000;

/// Check `estimate_cost` arguments; returns the model as asked (trimmed).
pub fn estimate_args(input: &EstimateInput) -> Result<&str, ToolError> {
    let model = input
        .model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            ToolError::invalid(
                "model is required (e.g. anthropic.claude-sonnet-4-6 or \"Claude Sonnet 4.6\")",
            )
        })?;
    let counts = [
        input.input_tokens,
        input.output_tokens,
        input.cache_read_tokens,
        input.cache_write_tokens,
        input.cache_write_1h_tokens,
    ];
    if counts.iter().all(std::option::Option::is_none) {
        return Err(ToolError::invalid(
            "give at least one of input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens",
        ));
    }
    if let Some(t) = &input.tier {
        let tier = Tier::parse(t).ok_or_else(|| {
            ToolError::invalid(format!(
                "tier '{}' is not one of standard, batch, flex, priority",
                t.chars().take(40).collect::<String>()
            ))
        })?;
        if matches!(tier, Tier::Reserved | Tier::Provisioned) {
            return Err(ToolError::invalid(
                "reserved and provisioned capacity is paid by the hour or term, not per call; give tier standard, batch, flex or priority",
            ));
        }
    }
    if crate::domain::pricing::is_application_profile(model) {
        return Err(ToolError::invalid(
            "an application inference profile ARN does not say which model it runs; give the model id or the system inference profile it copies (e.g. us.anthropic.claude-sonnet-4-6)",
        ));
    }
    let names = [
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
    ];
    if let Some((name, c)) = names
        .iter()
        .zip(counts)
        .find_map(|(n, c)| c.filter(|c| *c > MAX_TOKENS).map(|c| (n, c)))
    {
        return Err(ToolError::invalid(format!(
            "{name}: {c} is out of range; token counts above {MAX_TOKENS} per call are not plausible; {name} takes a whole number from 0 to {MAX_TOKENS}, e.g. \"{name}\": 1000"
        )));
    }
    Ok(model)
}

/// How `check_budget` learns the planned call's cost.
#[derive(Debug, Clone)]
pub enum Planned {
    /// Given in USD.
    Cost(f64),
    /// To be priced from the model and token counts.
    Priced(EstimateInput),
}

/// Check the planned call of `check_budget`.
pub fn planned_call(input: &CheckInput) -> Result<Planned, ToolError> {
    match (input.cost_usd, &input.model) {
        (Some(c), _) if !c.is_finite() || !(0.0..=1_000_000.0).contains(&c) => Err(
            ToolError::invalid("cost_usd must be between 0 and 1,000,000"),
        ),
        (Some(c), _) => Ok(Planned::Cost(c)),
        (None, Some(_)) => Ok(Planned::Priced(EstimateInput {
            model: input.model.clone(),
            input_tokens: input.input_tokens,
            output_tokens: input.output_tokens,
            cache_read_tokens: input.cache_read_tokens,
            cache_write_tokens: input.cache_write_tokens,
            cache_write_1h_tokens: input.cache_write_1h_tokens,
            tier: input.tier.clone(),
            region: None,
        })),
        (None, None) => Err(ToolError::invalid(
            "describe the planned call: model with token counts, or cost_usd",
        )),
    }
}

/// Whom `check_budget` asks about, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Who<'a> {
    /// `tag:<key>=<value>`: bare key, trimmed value.
    Tag { key: &'a str, value: &'a str },
    /// A principal ARN.
    Arn(Principal<'a>),
    /// Anything else: a user or role name to look up in IAM.
    Name(&'a str),
}

/// Longest `who`: an IAM ARN is at most 2048 characters.
pub const MAX_WHO_CHARS: usize = 2048;

/// Read `who` (already trimmed and not empty). It names one principal, role or tag value:
/// wildcards are refused (a budget check is about one caller, and `who` becomes a filter).
pub fn parse_who(raw: &str) -> Result<Who<'_>, ToolError> {
    if raw.chars().count() > MAX_WHO_CHARS {
        return Err(ToolError::invalid(format!(
            "who is longer than {MAX_WHO_CHARS} characters; give a principal ARN, a role name or tag:<key>=<value>"
        )));
    }
    if raw.contains(['*', '?']) {
        return Err(ToolError::invalid(format!(
            "who '{}' holds a wildcard; name one principal ARN, role or tag:<key>=<value>",
            raw.chars().take(80).collect::<String>()
        )));
    }
    if let Some(tag) = raw.strip_prefix("tag:") {
        let (k, v) = tag.split_once('=').ok_or_else(|| {
            ToolError::invalid("write a tag as tag:<key>=<value>, e.g. tag:team=ml-platform")
        })?;
        let k = tag_key(k).unwrap_or_default();
        if k.is_empty() || v.trim().is_empty() {
            return Err(ToolError::invalid(format!(
                "'{raw}' is not tag:<key>=<value>"
            )));
        }
        return Ok(Who::Tag {
            key: k,
            value: v.trim(),
        });
    }
    Ok(match Principal::parse(raw) {
        Some(p) => Who::Arn(p),
        None => Who::Name(raw),
    })
}

// ------------------------------------------- untagged_principals, cost_allocation_tags

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum KindInput {
    User,
    Role,
    #[default]
    All,
}

/// Input of `untagged_principals`.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UntaggedInput {
    /// Default: configured, else active iamPrincipal/* keys.
    #[schemars(example = serde_json::json!(["team", "cost-center"]))]
    pub required_keys: Option<Vec<String>>,
    /// user, role or all (default).
    pub kind: Option<KindInput>,
    /// IAM path prefix, e.g. /agents/.
    #[schemars(example = serde_json::json!("/agents/"))]
    pub path_prefix: Option<String>,
    /// Name glob, e.g. *Agent*.
    #[schemars(example = serde_json::json!("*Agent*"))]
    pub name: Option<String>,
    /// Spend period for ranking (default last_30_days).
    #[schemars(example = serde_json::json!("last_30_days"), example = serde_json::json!({"start": "2026-10-01", "end": "2026-11-01"}))]
    pub period: Option<PeriodInput>,
    /// Also list principals without spend.
    pub include_no_spend: Option<bool>,
    /// Page size (default 50).
    pub max_results: Option<u32>,
    /// From next_cursor.
    pub cursor: Option<String>,
}

/// Input of `cost_allocation_tags`.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TagsInput {
    /// Keys to check. Default: configured keys.
    #[schemars(example = serde_json::json!(["team", "cost-center"]))]
    pub required_keys: Option<Vec<String>>,
}

/// Required tag keys, reduced to their bare form, without duplicates.
pub fn clean_keys(keys: &[String]) -> Result<Vec<String>, ToolError> {
    let mut out: Vec<String> = Vec::new();
    for k in keys {
        let k = tag_key(k)
            .ok_or_else(|| ToolError::invalid(format!("'{k}' is not a valid tag key")))?;
        if !out.iter().any(|o| o == k) {
            out.push(k.to_string());
        }
    }
    Ok(out)
}

/// Page size and offset of `untagged_principals` (cursor `findings:<n>`).
pub fn untagged_page(input: &UntaggedInput) -> Result<(usize, usize), ToolError> {
    let max = input.max_results.unwrap_or(50).clamp(1, 500) as usize;
    let offset = match &input.cursor {
        None => 0,
        Some(c) => c
            .strip_prefix("findings:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                ToolError::invalid("cursor is not one this tool issued; pass next_cursor unchanged")
            })?,
    };
    Ok((max, offset))
}

// ------------------------------------------- search_registry, get_registry_record

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RecordTypeInput {
    Agent,
    Mcp,
    Skill,
    Custom,
}

impl RecordTypeInput {
    pub fn api(self) -> &'static str {
        match self {
            RecordTypeInput::Agent => "AGENT",
            RecordTypeInput::Mcp => "MCP",
            RecordTypeInput::Skill => "SKILL",
            RecordTypeInput::Custom => "CUSTOM",
        }
    }
}

/// Input of `search_registry`.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SearchInput {
    /// Keywords; empty: browse.
    #[schemars(example = serde_json::json!("invoice processing agent"))]
    pub query: Option<String>,
    /// agent, mcp, skill, custom.
    pub record_types: Option<Vec<RecordTypeInput>>,
    /// Exact record name.
    pub name: Option<String>,
    /// Exact record version.
    pub version: Option<String>,
    /// Ids or names (default: all readable).
    pub registries: Option<Vec<String>>,
    /// Hits per registry, 1-20 (default 10).
    pub max_results: Option<u32>,
    /// From next_cursor.
    pub cursor: Option<String>,
}

/// Input of `get_registry_record`.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct GetRecordInput {
    #[schemars(example = serde_json::json!("rec-0123456789abcdef"))]
    pub record_id: Option<String>,
    /// Up to 100 record ids.
    pub record_ids: Option<Vec<String>>,
    /// Registry id or name (default: every READY registry).
    pub registry: Option<String>,
}

/// The registry search filter for record types, name and version.
pub fn search_filters(input: &SearchInput) -> Option<serde_json::Value> {
    let mut parts = Vec::new();
    if let Some(types) = input.record_types.as_ref().filter(|t| !t.is_empty()) {
        let list: Vec<&str> = types.iter().map(|t| t.api()).collect();
        parts.push(if list.len() == 1 {
            serde_json::json!({"recordType": {"$eq": list[0]}})
        } else {
            serde_json::json!({"recordType": {"$in": list}})
        });
    }
    if let Some(n) = &input.name {
        parts.push(serde_json::json!({"name": {"$eq": n}}));
    }
    if let Some(v) = &input.version {
        parts.push(serde_json::json!({"recordVersion": {"$eq": v}}));
    }
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(serde_json::json!({ "$and": parts })),
    }
}

/// Where browsing continues: a registry and its page token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowseCursor {
    /// Index into the registries browsed.
    pub r: usize,
    pub t: Option<String>,
}

impl BrowseCursor {
    /// The opaque `next_cursor` text.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Read a cursor this tool issued.
    pub fn decode(c: &str) -> Result<BrowseCursor, ToolError> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                ToolError::invalid("cursor is not one this tool issued; pass next_cursor unchanged")
            })
    }
}

/// Hits per registry and the trimmed query of `search_registry`.
pub fn search_args(input: &SearchInput) -> Result<(i32, String), ToolError> {
    let per = input.max_results.unwrap_or(10).clamp(1, 20) as i32;
    let query = input.query.clone().unwrap_or_default().trim().to_string();
    if query.chars().count() > 256 {
        return Err(ToolError::invalid(
            "query is limited to 256 characters; keep it topical and put constraints in record_types, name or version",
        ));
    }
    Ok((per, query))
}

/// The record ids `get_registry_record` asks for: 1 to 100.
pub fn record_ids(input: &GetRecordInput) -> Result<Vec<String>, ToolError> {
    let mut ids: Vec<String> = input.record_ids.clone().unwrap_or_default();
    if let Some(i) = ids.iter().position(|id| id.trim().is_empty()) {
        return Err(ToolError::invalid(format!(
            "record_ids[{i}] is empty; give record ids as search_registry lists them, e.g. \"record_ids\": [\"rec-0123456789abcdef\"]"
        )));
    }
    if let Some(id) = &input.record_id {
        if id.trim().is_empty() {
            return Err(ToolError::invalid(
                "record_id is empty; give a record id as search_registry lists it, e.g. \"record_id\": \"rec-0123456789abcdef\" (or 1 to 100 record_ids)",
            ));
        }
        ids.insert(0, id.clone());
    }
    ids.dedup();
    if ids.is_empty() || ids.len() > 100 {
        return Err(ToolError::invalid("give record_id, or 1 to 100 record_ids"));
    }
    Ok(ids)
}

// ------------------------------------- activate_cost_allocation_tags, tag_principal

/// Input of `activate_cost_allocation_tags`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateInput {
    /// 1-20 principal tag keys (iamPrincipal/ prefix optional).
    #[schemars(example = serde_json::json!(["team"]))]
    pub keys: Vec<String>,
    /// Must be true: this changes billing settings.
    pub confirm: Option<bool>,
}

/// Input of `tag_principal`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagPrincipalInput {
    /// user or role.
    pub kind: IamKindInput,
    /// User or role name (not ARN).
    #[schemars(example = serde_json::json!("MlRole"))]
    pub name: String,
    /// Tags to add (existing keys get the new value; nothing is removed).
    #[schemars(example = serde_json::json!({"team": "ml-platform"}))]
    pub tags: BTreeMap<String, String>,
    /// Must be true: this changes IAM.
    pub confirm: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IamKindInput {
    User,
    Role,
}

/// Write tools act only on `confirm: true`.
pub fn require_confirm(confirm: Option<bool>, what: &str) -> Result<(), ToolError> {
    if confirm == Some(true) {
        Ok(())
    } else {
        Err(ToolError::invalid(format!(
            "{what} changes your AWS account; call again with \"confirm\": true once the user agreed"
        )))
    }
}

/// The `iamPrincipal/<key>` cost-allocation tag keys to activate (1 to 20).
pub fn activation_keys(input: &ActivateInput) -> Result<Vec<String>, ToolError> {
    require_confirm(input.confirm, "activating cost-allocation tags")?;
    if input.keys.is_empty() || input.keys.len() > 20 {
        return Err(ToolError::invalid(format!(
            "give 1 to 20 keys per call (got {})",
            input.keys.len()
        )));
    }
    let mut keys = Vec::new();
    for k in &input.keys {
        let bare = tag_key(k)
            .ok_or_else(|| ToolError::invalid(format!("'{k}' is not a valid tag key")))?;
        keys.push(format!("iamPrincipal/{bare}"));
    }
    Ok(keys)
}

/// Check `tag_principal` arguments.
pub fn check_tag_principal(input: &TagPrincipalInput) -> Result<(), ToolError> {
    require_confirm(input.confirm, "tagging a principal")?;
    if input.tags.is_empty() || input.tags.len() > 50 {
        return Err(ToolError::invalid("give 1 to 50 tags"));
    }
    for (k, v) in &input.tags {
        if !valid_tag_key(k) || k.starts_with("aws:") || v.len() > 256 {
            return Err(ToolError::invalid(format!(
                "tag {k}={v} is not valid (keys 1-128 chars, not aws:*; values up to 256)"
            )));
        }
    }
    if input.name.is_empty() || input.name.contains(':') || input.name.contains('/') {
        return Err(ToolError::invalid(
            "name is the user or role name, not its ARN or path",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(v: serde_json::Value) -> Result<SpendQuery, ToolError> {
        let input: SpendInput = serde_json::from_value(v).unwrap();
        build_query(
            &input,
            "team",
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        )
    }

    #[test]
    fn group_by_takes_one_to_three_keys() {
        // Found by fuzz/fuzz_targets/tool_args.rs: an empty list was accepted.
        let e = spend(serde_json::json!({"group_by": []})).unwrap_err();
        assert!(e.to_string().contains("tag:team"), "{e}");
        assert!(spend(serde_json::json!({"group_by": ["model"]})).is_ok());
        assert!(
            spend(serde_json::json!({"group_by": ["model", "region", "day", "month"]})).is_err()
        );
    }

    #[test]
    fn filters_are_bounded() {
        let many: Vec<String> = (0..MAX_FILTER_VALUES + 1)
            .map(|i| format!("r{i}"))
            .collect();
        let e = spend(serde_json::json!({"filter": {"role": many}})).unwrap_err();
        assert!(e.to_string().contains("at most 32"), "{e}");
        let keys: serde_json::Map<String, serde_json::Value> = (0..MAX_FILTER_KEYS + 1)
            .map(|i| (format!("k{i}"), serde_json::json!("v")))
            .collect();
        assert!(spend(serde_json::json!({"filter": keys})).is_err());
        let long = "x".repeat(MAX_FILTER_VALUE_CHARS + 1);
        assert!(spend(serde_json::json!({"filter": {"principal": long}})).is_err());
        let stars = "*".repeat(MAX_GLOB_WILDCARDS + 1);
        assert!(spend(serde_json::json!({"filter": {"principal": stars}})).is_err());
        let stars = "*".repeat(MAX_GLOB_WILDCARDS);
        assert!(spend(serde_json::json!({"filter": {"principal": stars}})).is_ok());
    }

    #[test]
    fn who_names_one_subject() {
        assert!(parse_who("arn:aws:sts::1:assumed-role/R/*").is_err());
        assert!(parse_who("Role?").is_err());
        assert!(parse_who(&"a".repeat(MAX_WHO_CHARS + 1)).is_err());
        assert!(matches!(parse_who("tag:team=ml"), Ok(Who::Tag { .. })));
        assert!(matches!(
            parse_who("arn:aws:iam::123456789012:role/R"),
            Ok(Who::Arn(_))
        ));
    }
}
