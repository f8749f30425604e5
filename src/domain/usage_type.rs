//! Bedrock usage types: region prefix, model and token kind
//! (aws-facts.md §1.7). Unknown patterns map to token kind `other`; nothing is dropped.
//!
//! Examples: `USE1-Claude4.6Sonnet-input-tokens`,
//! `USE1-Claude4.6Opus-cache-read-input-token-count-cross-region-global`,
//! `USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-global-standard`,
//! `USE1-MP:USE1_InputTokenCount-Units` (Marketplace).

use serde::Serialize;

/// Which kind of tokens a usage line bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Input,
    Output,
    CacheRead,
    CacheWrite,
    Other,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Input => "input",
            TokenKind::Output => "output",
            TokenKind::CacheRead => "cache_read",
            TokenKind::CacheWrite => "cache_write",
            TokenKind::Other => "other",
        }
    }
}

/// What a usage type says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTypeInfo {
    /// Billing region prefix, e.g. `USE1` (empty when absent).
    pub region_code: String,
    /// Model part, e.g. `Claude4.6Sonnet` (empty when not found).
    pub model: String,
    pub token_kind: TokenKind,
}

/// Usage-type suffixes and the token kind each means. Ordered: the most specific first.
pub const KIND_MARKERS: &[(&str, TokenKind)] = &[
    ("-cache-read-input-token-count", TokenKind::CacheRead),
    ("-cache-read-input-tokens", TokenKind::CacheRead),
    ("-cache-read-tokens", TokenKind::CacheRead),
    ("-cache-write-input-token-count", TokenKind::CacheWrite),
    ("-cache-write-1h-input-token-count", TokenKind::CacheWrite),
    ("-cache-write-1h-tokens", TokenKind::CacheWrite),
    ("-cache-write-input-tokens", TokenKind::CacheWrite),
    ("-cache-write-tokens", TokenKind::CacheWrite),
    ("-mantle-input-tokens", TokenKind::Input),
    ("-mantle-output-tokens", TokenKind::Output),
    ("-input-tokens", TokenKind::Input),
    ("-output-tokens", TokenKind::Output),
];

/// Marketplace usage types (`MP:USE1_InputTokenCount-Units`) name the kind in CamelCase
/// or, for newer models, snake_case.
const MP_MARKERS: &[(&str, TokenKind)] = &[
    ("cachereadinputtokencount", TokenKind::CacheRead),
    ("cache_read_input_tokens", TokenKind::CacheRead),
    ("cachewriteinputtokencount", TokenKind::CacheWrite),
    ("cache_write_input_tokens", TokenKind::CacheWrite),
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
    if let Some(mp) = rest.strip_prefix("MP:") {
        let lower = mp.to_ascii_lowercase();
        let kind = MP_MARKERS
            .iter()
            .find(|(m, _)| lower.contains(m))
            .map(|(_, k)| *k)
            .unwrap_or(TokenKind::Other);
        return UsageTypeInfo {
            region_code,
            model: String::new(),
            token_kind: kind,
        };
    }
    // Find the earliest marker position so "-input-tokens" inside the cache markers
    // does not win over the longer match at the same place.
    let mut best: Option<(usize, usize, TokenKind)> = None;
    for (marker, kind) in KIND_MARKERS {
        if let Some(pos) = rest.find(marker) {
            let better = match best {
                None => true,
                Some((bp, blen, _)) => pos < bp || (pos == bp && marker.len() > blen),
            };
            if better {
                best = Some((pos, marker.len(), *kind));
            }
        }
    }
    match best {
        Some((pos, _, kind)) => UsageTypeInfo {
            region_code,
            model: rest[..pos].to_string(),
            token_kind: kind,
        },
        None => UsageTypeInfo {
            region_code,
            model: String::new(),
            token_kind: TokenKind::Other,
        },
    }
}

/// The model a CUR line is for: `product['model']` when the export has it,
/// else the model part of the usage type, else "unknown". One rule for the
/// engines and the generator, so figures and truth agree.
pub fn model_name(product_model: &str, usage_type: &str) -> String {
    if !product_model.trim().is_empty() {
        return product_model.trim().to_string();
    }
    let m = parse(usage_type).model;
    if m.is_empty() { "unknown".into() } else { m }
}

/// AWS billing region codes: 2-4 upper-case letters followed by a digit (USE1, APN1, EUC1, UGW1).
fn is_region_code(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=5).contains(&b.len())
        && b[..b.len() - 1].iter().all(u8::is_ascii_uppercase)
        && b[b.len() - 1].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples() {
        let cases = [
            (
                "USE1-Claude4.6Sonnet-input-tokens",
                "USE1",
                "Claude4.6Sonnet",
                TokenKind::Input,
            ),
            (
                "USE1-Claude4.6Opus-output-tokens",
                "USE1",
                "Claude4.6Opus",
                TokenKind::Output,
            ),
            (
                "USE1-NovaLite-input-tokens",
                "USE1",
                "NovaLite",
                TokenKind::Input,
            ),
            (
                "USE1-Claude4.6Opus-input-tokens-cross-region-global",
                "USE1",
                "Claude4.6Opus",
                TokenKind::Input,
            ),
            (
                "USE1-Claude4.6Opus-cache-read-input-token-count-cross-region-global",
                "USE1",
                "Claude4.6Opus",
                TokenKind::CacheRead,
            ),
            (
                "USW2-anthropic.claude-opus-4-8-mantle-cache-write-tokens-global-standard",
                "USW2",
                "anthropic.claude-opus-4-8-mantle",
                TokenKind::CacheWrite,
            ),
            (
                "USW2-anthropic.claude-opus-4-8-mantle-input-tokens-global-standard",
                "USW2",
                "anthropic.claude-opus-4-8",
                TokenKind::Input,
            ),
            (
                "EUC1-Claude4.5Haiku-cache-write-1h-input-token-count",
                "EUC1",
                "Claude4.5Haiku",
                TokenKind::CacheWrite,
            ),
        ];
        for (ut, region, model, kind) in cases {
            let i = parse(ut);
            assert_eq!(
                (i.region_code.as_str(), i.model.as_str(), i.token_kind),
                (region, model, kind),
                "{ut}"
            );
        }
    }

    #[test]
    fn marketplace_and_unknown() {
        assert_eq!(
            parse("USE1-MP:USE1_InputTokenCount-Units").token_kind,
            TokenKind::Input
        );
        assert_eq!(
            parse("USE1-MP:USE1_CacheReadInputTokenCount-Units").token_kind,
            TokenKind::CacheRead
        );
        assert_eq!(
            parse("USE1-MP:USE1_output_tokens_global_standard-Units").token_kind,
            TokenKind::Output
        );
        let u = parse("USE1-ProvisionedThroughput-ModelUnits");
        assert_eq!(
            (u.token_kind, u.model.as_str(), u.region_code.as_str()),
            (TokenKind::Other, "", "USE1")
        );
        assert_eq!(parse("").token_kind, TokenKind::Other);
    }
}
