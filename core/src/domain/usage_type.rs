//! Bedrock usage types: region prefix, model stem, token kind, inference tier and scope, as AWS
//! writes them in CUR (`line_item_usage_type`), Cost Explorer (`USAGE_TYPE`) and the Price
//! List (`usagetype`). Unknown patterns map to kind `other`; nothing is dropped.
//!
//! First-party (`AmazonBedrock`, `AmazonBedrockService`):
//! `<REGION>-<ModelStem>-<meter>[-<route>][-<tier>]`, e.g. `USE1-Claude4.6Sonnet-input-tokens`,
//! `USW2-Claude4.6Sonnet-cache-write-input-token-count`,
//! `USE1-Nova2.0Lite-output-tokens-cross-region-global-batch`, and the bedrock-mantle form
//! `USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-standard` (AWS Machine Learning blog,
//! "Introducing granular cost attribution for Amazon Bedrock", and the `AmazonBedrock` Price List
//! offer). Routes: `-cross-region-global` (global profiles), `-cross-region[-eu|-apac|-jp|-au|
//! -ca|-in|-us]` (geographic profiles); tiers `-batch`, `-flex`, `-priority`.
//!
//! Marketplace (`AmazonBedrockFoundationModels`, "... (Amazon Bedrock Edition)" services):
//! `<REGION>-MP:<REGION>_<Meter>[_Global|_Geo][_Batch|_Flex|_Priority]-Units`, e.g.
//! `USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units`; the usage amount is in millions of
//! tokens. The meters that contain `InputTokenCount` inside (`CacheRead...`, `CacheWrite...`) are
//! matched first. Reserved (`Reserved_1Month_...`) and provisioned (`ProvisionedThroughput...`)
//! meters are capacity, not tokens.
//!
//! The parser searches for the markers anywhere, not at fixed positions: AWS's order of route and
//! tier suffixes is not documented, and the 1-hour cache-write spelling of first-party lines is
//! inferred from the Marketplace one (`1h`).

use serde::Serialize;

/// Which kind of tokens a usage line bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Input,
    Output,
    CacheRead,
    /// Prompt-cache writes kept 5 minutes (the default).
    CacheWrite5m,
    /// Prompt-cache writes kept 1 hour.
    CacheWrite1h,
    Other,
}

impl TokenKind {
    pub const ALL: [TokenKind; 6] = [
        TokenKind::Input,
        TokenKind::Output,
        TokenKind::CacheRead,
        TokenKind::CacheWrite5m,
        TokenKind::CacheWrite1h,
        TokenKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Input => "input",
            TokenKind::Output => "output",
            TokenKind::CacheRead => "cache_read",
            TokenKind::CacheWrite5m => "cache_write_5m",
            TokenKind::CacheWrite1h => "cache_write_1h",
            TokenKind::Other => "other",
        }
    }
}

/// How a call was served: the inference tier, or the capacity bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// On-demand at the standard rate.
    Standard,
    Batch,
    Flex,
    Priority,
    /// Reserved capacity (tokens per minute bought for a term).
    Reserved,
    /// Provisioned throughput (model units by the hour or term).
    Provisioned,
}

impl Tier {
    pub const ALL: [Tier; 6] = [
        Tier::Standard,
        Tier::Batch,
        Tier::Flex,
        Tier::Priority,
        Tier::Reserved,
        Tier::Provisioned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Standard => "standard",
            Tier::Batch => "batch",
            Tier::Flex => "flex",
            Tier::Priority => "priority",
            Tier::Reserved => "reserved",
            Tier::Provisioned => "provisioned",
        }
    }

    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .or_else(|| {
                s.trim()
                    .eq_ignore_ascii_case("default")
                    .then_some(Tier::Standard)
            })
    }
}

/// Where a call was allowed to run: the source region only, a geography (`us.`, `eu.`,
/// `apac.` inference profiles), or anywhere (`global.` profiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    InRegion,
    CrossRegion,
    Global,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::InRegion, Scope::CrossRegion, Scope::Global];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::InRegion => "in_region",
            Scope::CrossRegion => "cross_region",
            Scope::Global => "global",
        }
    }
}

/// What a usage type says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTypeInfo {
    /// Billing region prefix, e.g. `USE1` (empty when absent).
    pub region_code: String,
    /// Model part of a first-party usage type, e.g. `Claude4.6Sonnet` (empty when the usage type
    /// names no model: Marketplace lines, capacity, unknown shapes).
    pub model: String,
    pub token_kind: TokenKind,
    pub tier: Tier,
    pub scope: Scope,
    /// A Marketplace meter (`MP:`): its usage amount is in millions of tokens.
    pub marketplace: bool,
}

impl UsageTypeInfo {
    /// Does the line count tokens (so its usage amount converts to tokens)?
    pub fn counts_tokens(&self) -> bool {
        self.token_kind != TokenKind::Other
    }
}

/// First-party meters and the kind each bills, most specific first.
pub const KIND_MARKERS: &[(&str, TokenKind)] = &[
    ("-cache-read-input-token-count", TokenKind::CacheRead),
    ("-cache-read-input-tokens", TokenKind::CacheRead),
    ("-cache-read-tokens", TokenKind::CacheRead),
    ("-cache-write-1h-input-token-count", TokenKind::CacheWrite1h),
    ("-cache-write-1h-input-tokens", TokenKind::CacheWrite1h),
    ("-cache-write-1h-tokens", TokenKind::CacheWrite1h),
    ("-cache-write-input-token-count", TokenKind::CacheWrite5m),
    ("-cache-write-input-tokens", TokenKind::CacheWrite5m),
    ("-cache-write-tokens", TokenKind::CacheWrite5m),
    ("-mantle-input-tokens", TokenKind::Input),
    ("-mantle-output-tokens", TokenKind::Output),
    ("-input-tokens", TokenKind::Input),
    ("-output-tokens", TokenKind::Output),
];

/// Marketplace meters (lower-cased, CamelCase or snake_case), most specific first.
const MP_MARKERS: &[(&str, TokenKind)] = &[
    ("cachereadinputtokencount", TokenKind::CacheRead),
    ("cache_read_input_tokens", TokenKind::CacheRead),
    ("cachewrite1hinputtokencount", TokenKind::CacheWrite1h),
    ("cache_write_1h_input_tokens", TokenKind::CacheWrite1h),
    ("cachewriteinputtokencount", TokenKind::CacheWrite5m),
    ("cache_write_input_tokens", TokenKind::CacheWrite5m),
    ("inputtokencount", TokenKind::Input),
    ("input_tokens", TokenKind::Input),
    ("outputtokencount", TokenKind::Output),
    ("output_tokens", TokenKind::Output),
];

/// Parse a usage type. Never fails: unknown shapes give `TokenKind::Other`.
pub fn parse(usage_type: &str) -> UsageTypeInfo {
    let (region_code, rest) = match usage_type.split_once('-') {
        Some((r, rest)) if is_region_code(r) => (r.to_string(), rest),
        _ => (String::new(), usage_type),
    };
    let lower = rest.to_ascii_lowercase();
    if let Some(mp) = lower.strip_prefix("mp:") {
        let capacity = capacity_tier(mp);
        let kind = if capacity.is_some() {
            TokenKind::Other
        } else {
            MP_MARKERS
                .iter()
                .find(|(m, _)| mp.contains(m))
                .map(|(_, k)| *k)
                .unwrap_or(TokenKind::Other)
        };
        // `_Global` / `_Geo` scope and `_Batch` / `_Flex` / `_Priority` tiers, as `_`-separated parts.
        let parts: Vec<&str> = mp.split(['_', '-']).collect();
        let scope = if parts.contains(&"global") {
            Scope::Global
        } else if parts.contains(&"geo") || parts.contains(&"crossregion") {
            Scope::CrossRegion
        } else {
            Scope::InRegion
        };
        return UsageTypeInfo {
            region_code,
            model: String::new(),
            token_kind: kind,
            tier: capacity.unwrap_or_else(|| tier_of(&parts)),
            scope,
            marketplace: true,
        };
    }
    let capacity = capacity_tier(&lower);
    // The earliest meter, the longest at one place ("-input-tokens" sits inside the cache meters).
    let mut best: Option<(usize, usize, TokenKind)> = None;
    if capacity.is_none() {
        for (marker, kind) in KIND_MARKERS {
            if let Some(pos) = lower.find(marker) {
                let better = match best {
                    None => true,
                    Some((bp, blen, _)) => pos < bp || (pos == bp && marker.len() > blen),
                };
                if better {
                    best = Some((pos, marker.len(), *kind));
                }
            }
        }
    }
    let (model, token_kind, tail) = match best {
        Some((pos, len, kind)) => (rest[..pos].to_string(), kind, &lower[pos + len..]),
        None => (String::new(), TokenKind::Other, lower.as_str()),
    };
    let parts: Vec<&str> = tail.split('-').filter(|p| !p.is_empty()).collect();
    let scope = if tail.contains("cross-region-global") || parts.first() == Some(&"global") {
        Scope::Global
    } else if tail.contains("cross-region") || tail.contains("geo") {
        Scope::CrossRegion
    } else {
        Scope::InRegion
    };
    UsageTypeInfo {
        region_code,
        model,
        token_kind,
        tier: capacity.unwrap_or_else(|| tier_of(&parts)),
        scope,
        marketplace: false,
    }
}

/// Capacity meters: provisioned throughput and reserved tiers.
fn capacity_tier(lower: &str) -> Option<Tier> {
    if lower.contains("provisionedthroughput") || lower.contains("provisioned-throughput") {
        Some(Tier::Provisioned)
    } else if lower.contains("reserved") {
        Some(Tier::Reserved)
    } else {
        None
    }
}

fn tier_of(parts: &[&str]) -> Tier {
    if parts.contains(&"batch") {
        Tier::Batch
    } else if parts.contains(&"flex") {
        Tier::Flex
    } else if parts.contains(&"priority") {
        Tier::Priority
    } else {
        Tier::Standard
    }
}

/// AWS billing region codes: 2-4 upper-case letters followed by a digit (USE1, APN1, EUC1,
/// UGW1), or the bare `EU` of eu-west-1.
fn is_region_code(s: &str) -> bool {
    let b = s.as_bytes();
    s == "EU"
        || ((3..=5).contains(&b.len())
            && b[..b.len() - 1].iter().all(u8::is_ascii_uppercase)
            && b[b.len() - 1].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_party_meters_routes_and_tiers() {
        let cases = [
            (
                "USE1-Claude4.6Sonnet-input-tokens",
                "USE1",
                "Claude4.6Sonnet",
                TokenKind::Input,
                Tier::Standard,
                Scope::InRegion,
            ),
            (
                "USE1-Claude4.6Opus-output-tokens",
                "USE1",
                "Claude4.6Opus",
                TokenKind::Output,
                Tier::Standard,
                Scope::InRegion,
            ),
            (
                "USE1-Claude4.6Opus-input-tokens-cross-region-global",
                "USE1",
                "Claude4.6Opus",
                TokenKind::Input,
                Tier::Standard,
                Scope::Global,
            ),
            (
                "USE1-Claude4.6Opus-cache-read-input-token-count-cross-region-global",
                "USE1",
                "Claude4.6Opus",
                TokenKind::CacheRead,
                Tier::Standard,
                Scope::Global,
            ),
            (
                "USW2-Claude4.6Sonnet-cache-write-input-token-count",
                "USW2",
                "Claude4.6Sonnet",
                TokenKind::CacheWrite5m,
                Tier::Standard,
                Scope::InRegion,
            ),
            (
                "EUC1-Claude4.5Haiku-cache-write-1h-input-token-count",
                "EUC1",
                "Claude4.5Haiku",
                TokenKind::CacheWrite1h,
                Tier::Standard,
                Scope::InRegion,
            ),
            (
                "USE1-Nova2.0Lite-output-tokens-cross-region-global-batch",
                "USE1",
                "Nova2.0Lite",
                TokenKind::Output,
                Tier::Batch,
                Scope::Global,
            ),
            (
                "USE1-NovaLite-input-tokens-flex",
                "USE1",
                "NovaLite",
                TokenKind::Input,
                Tier::Flex,
                Scope::InRegion,
            ),
            (
                "USE1-NovaPro-input-tokens-priority",
                "USE1",
                "NovaPro",
                TokenKind::Input,
                Tier::Priority,
                Scope::InRegion,
            ),
            (
                "EU-Claude4.6Sonnet-input-tokens-cross-region-eu",
                "EU",
                "Claude4.6Sonnet",
                TokenKind::Input,
                Tier::Standard,
                Scope::CrossRegion,
            ),
            (
                "USE1-Llama3.3-70B-input-tokens-batch",
                "USE1",
                "Llama3.3-70B",
                TokenKind::Input,
                Tier::Batch,
                Scope::InRegion,
            ),
            (
                "USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-global-standard",
                "USW2",
                "anthropic.claude-opus-4-8-mantle",
                TokenKind::CacheWrite5m,
                Tier::Standard,
                Scope::Global,
            ),
            (
                "USW2-anthropic.claude-opus-4-8-mantle-input-tokens-global-standard",
                "USW2",
                "anthropic.claude-opus-4-8",
                TokenKind::Input,
                Tier::Standard,
                Scope::Global,
            ),
        ];
        for (ut, region, model, kind, tier, scope) in cases {
            let i = parse(ut);
            assert_eq!(
                (
                    i.region_code.as_str(),
                    i.model.as_str(),
                    i.token_kind,
                    i.tier,
                    i.scope,
                    i.marketplace
                ),
                (region, model, kind, tier, scope, false),
                "{ut}"
            );
        }
    }

    #[test]
    fn marketplace_meters() {
        let cases = [
            (
                "USE1-MP:USE1_InputTokenCount-Units",
                TokenKind::Input,
                Tier::Standard,
                Scope::InRegion,
            ),
            (
                "USE1-MP:USE1_OutputTokenCount_Global-Units",
                TokenKind::Output,
                Tier::Standard,
                Scope::Global,
            ),
            (
                "USE1-MP:USE1_CacheReadInputTokenCount-Units",
                TokenKind::CacheRead,
                Tier::Standard,
                Scope::InRegion,
            ),
            (
                "USE1-MP:USE1_CacheWriteInputTokenCount_Global-Units",
                TokenKind::CacheWrite5m,
                Tier::Standard,
                Scope::Global,
            ),
            (
                "USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units",
                TokenKind::CacheWrite1h,
                Tier::Standard,
                Scope::Global,
            ),
            (
                "USE1-MP:USE1_InputTokenCount_Global_Batch-Units",
                TokenKind::Input,
                Tier::Batch,
                Scope::Global,
            ),
            (
                "USE1-MP:USE1_InputTokenCount_Batch-Units",
                TokenKind::Input,
                Tier::Batch,
                Scope::InRegion,
            ),
            (
                "USE1-MP:USE1_output_tokens_global_standard-Units",
                TokenKind::Output,
                Tier::Standard,
                Scope::Global,
            ),
            (
                "USE1-MP:USE1_Reserved_1Month_InputTPM_Geo-Units",
                TokenKind::Other,
                Tier::Reserved,
                Scope::CrossRegion,
            ),
            (
                "USE1-MP:USE1_ProvisionedThroughput_1MonthCommit_ModelUnits_Usage-Units",
                TokenKind::Other,
                Tier::Provisioned,
                Scope::InRegion,
            ),
        ];
        for (ut, kind, tier, scope) in cases {
            let i = parse(ut);
            assert_eq!(
                (
                    i.token_kind,
                    i.tier,
                    i.scope,
                    i.marketplace,
                    i.model.as_str()
                ),
                (kind, tier, scope, true, ""),
                "{ut}"
            );
        }
    }

    #[test]
    fn capacity_and_unknown() {
        let u = parse("USE1-ProvisionedThroughput-ModelUnits");
        assert_eq!(
            (
                u.token_kind,
                u.tier,
                u.model.as_str(),
                u.region_code.as_str()
            ),
            (TokenKind::Other, Tier::Provisioned, "", "USE1")
        );
        assert_eq!(parse("").token_kind, TokenKind::Other);
        assert_eq!(
            parse("USE1-AgentCore-Runtime-vCPU-Hours").token_kind,
            TokenKind::Other
        );
        assert!(!parse("USE1-AgentCore-Runtime-vCPU-Hours").counts_tokens());
        assert_eq!(Tier::parse("DEFAULT"), Some(Tier::Standard));
        assert_eq!(Tier::parse("flex"), Some(Tier::Flex));
        assert_eq!(Tier::parse("fast"), None);
    }
}
