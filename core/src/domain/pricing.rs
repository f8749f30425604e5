//! Bedrock model prices: model name resolution (model ids, inference-profile
//! ids and display names all name the same model), unit normalisation (the
//! Price List quotes per 1K or per 1M tokens) and the bundled snapshot used
//! when the Price List API cannot be reached.

use serde::{Deserialize, Serialize};

use super::usage_type::{Scope, Tier, TokenKind};

/// Date of the bundled price snapshot.
pub const SNAPSHOT_DATE: &str = "2026-11-01";

/// Prices of one model in one region for one way of serving it (tier, scope), USD per 1,000
/// tokens. One Price List row per token kind adds up to one of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelPrice {
    /// Display name, e.g. "Claude Sonnet 4.6".
    pub model: String,
    pub provider: String,
    pub region: String,
    /// standard, batch, flex or priority.
    #[serde(default = "standard")]
    pub tier: String,
    /// in_region, cross_region (a geographic inference profile: `us.`, `eu.`, `apac.`) or global
    /// (`global.` profiles).
    #[serde(default = "in_region")]
    pub scope: String,
    pub input_per_1k: f64,
    pub output_per_1k: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_per_1k: Option<f64>,
    /// Cache writes kept 5 minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_per_1k: Option<f64>,
    /// Cache writes kept 1 hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_per_1k: Option<f64>,
    /// Price List service code the price came from.
    pub service_code: String,
}

fn standard() -> String {
    "standard".into()
}

fn in_region() -> String {
    "in_region".into()
}

/// How a planned call will be served, from what the caller names: an inference-profile id or
/// ARN gives the scope (`global.` -> global; `us.`, `eu.`, `apac.`, `jp.`, `au.`, `ca.`,
/// `us-gov.` -> cross_region; a model id -> in_region); the tier is asked separately.
pub fn scope_of(name: &str) -> Scope {
    let s = name.trim().to_ascii_lowercase();
    let id = s.rsplit_once('/').map_or(s.as_str(), |(_, id)| id);
    if id.starts_with("global.") {
        Scope::Global
    } else if ["us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov."]
        .iter()
        .any(|p| id.starts_with(p))
    {
        Scope::CrossRegion
    } else {
        Scope::InRegion
    }
}

/// An application inference profile names no model: its ARN ends in an opaque id.
pub fn is_application_profile(name: &str) -> bool {
    name.contains(":application-inference-profile/")
}

/// Price per 1K tokens from a Price List price and its unit; None for units
/// that are not token counts.
pub fn per_1k(price: f64, unit: &str) -> Option<f64> {
    let u = unit.trim().to_ascii_lowercase();
    if u.contains("1k") || u.contains("thousand") || u == "1,000 tokens" {
        Some(price)
    } else if u.contains("1m") || u.contains("million") {
        Some(price / 1000.0)
    } else if u == "tokens" || u == "token" {
        Some(price * 1000.0)
    } else {
        None
    }
}

/// A small edit distance for "did you mean" suggestions.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The bundled snapshot (us-east-1 on-demand list prices), used offline.
pub fn snapshot() -> Vec<ModelPrice> {
    let p = |model: &str,
             provider: &str,
             i: f64,
             o: f64,
             cr: Option<f64>,
             cw: Option<f64>,
             sc: &str| ModelPrice {
        model: model.into(),
        provider: provider.into(),
        region: "us-east-1".into(),
        input_per_1k: i,
        output_per_1k: o,
        tier: standard(),
        scope: in_region(),
        cache_read_per_1k: cr,
        cache_write_per_1k: cw,
        // Anthropic's 1-hour cache writes cost twice the input price (5-minute: 1.25x).
        cache_write_1h_per_1k: cw.map(|_| 2.0 * i),
        service_code: sc.into(),
    };
    let fm = "AmazonBedrockFoundationModels";
    let br = "AmazonBedrock";
    vec![
        p(
            "Claude Opus 4.6",
            "Anthropic",
            0.005,
            0.025,
            Some(0.0005),
            Some(0.00625),
            fm,
        ),
        p(
            "Claude Sonnet 4.6",
            "Anthropic",
            0.003,
            0.015,
            Some(0.0003),
            Some(0.00375),
            fm,
        ),
        p(
            "Claude Haiku 4.5",
            "Anthropic",
            0.001,
            0.005,
            Some(0.0001),
            Some(0.00125),
            fm,
        ),
        p(
            "Nova Micro",
            "Amazon",
            0.000035,
            0.00014,
            Some(0.00000875),
            None,
            br,
        ),
        p(
            "Nova Lite",
            "Amazon",
            0.00006,
            0.00024,
            Some(0.000015),
            None,
            br,
        ),
        p("Nova Pro", "Amazon", 0.0008, 0.0032, Some(0.0002), None, br),
        p(
            "Llama 3.3 70B Instruct",
            "Meta",
            0.00072,
            0.00072,
            None,
            None,
            br,
        ),
        p(
            "Titan Text Embeddings V2",
            "Amazon",
            0.00002,
            0.0,
            None,
            None,
            br,
        ),
    ]
}

/// The price per 1K tokens of `kind` on `price`'s row, and whether it is the input price standing
/// in for a cache price the row does not list (the note says so). Shared by `estimate_cost` and
/// the invocation-log pricing, so a logged call costs what the same call estimated costs.
pub fn per_1k_of(price: &ModelPrice, kind: TokenKind) -> (f64, bool) {
    let cache = match kind {
        TokenKind::Input | TokenKind::Other => return (price.input_per_1k, false),
        TokenKind::Output => return (price.output_per_1k, false),
        TokenKind::CacheRead => price.cache_read_per_1k,
        TokenKind::CacheWrite5m => price.cache_write_per_1k,
        TokenKind::CacheWrite1h => price.cache_write_1h_per_1k,
    };
    match cache {
        Some(p) => (p, false),
        None => (price.input_per_1k, true),
    }
}

/// Why a model could not be priced.
#[derive(Debug, PartialEq)]
pub enum Unpriced {
    /// No row names the model: the closest model names.
    Unknown(Vec<String>),
    /// The model is listed, but at no tier and scope that costs at least what was asked (a
    /// priority call is never priced from the standard row): the model and the tier-scope
    /// pairs that are listed.
    NotListed { model: String, listed: Vec<String> },
}

/// How a tier's price ranks against the others: batch and flex cost less than standard,
/// priority more (<https://aws.amazon.com/bedrock/pricing/>).
fn tier_rank(t: &str) -> u8 {
    match Tier::parse(t) {
        Some(Tier::Batch | Tier::Flex) => 0,
        Some(Tier::Standard | Tier::Reserved | Tier::Provisioned) | None => 1,
        Some(Tier::Priority) => 2,
    }
}

/// Global cross-Region inference costs less than in-Region or geographic cross-Region
/// (<https://aws.amazon.com/bedrock/pricing/>).
fn scope_rank(s: &str) -> u8 {
    u8::from(s != Scope::Global.as_str())
}

/// The price of `name` served at `tier` and `scope`, with notes on any fallback. Never "the
/// last row wins": the book holds one row per model, tier and scope (see `sources::pricing`).
/// When the exact row is missing, the fallback is the in-Region, then the standard price, and
/// only one that costs at least as much as the asked one (a budget check must not understate
/// a call); the note says so. With no such row the answer is [`Unpriced::NotListed`].
pub fn resolve<'a>(
    prices: &'a [ModelPrice],
    name: &str,
    tier: Tier,
    scope: Scope,
) -> Result<(&'a ModelPrice, Vec<String>), Unpriced> {
    let key = super::model::key(name);
    let rows: Vec<&ModelPrice> = prices
        .iter()
        .filter(|p| super::model::key(&p.model) == key)
        .collect();
    if rows.is_empty() {
        // Models sharing a word with the name first ("haiku" -> the Claude Haiku models), then
        // by edit distance.
        let words: Vec<&str> = key.split(' ').filter(|w| !w.is_empty()).collect();
        let mut close: Vec<(bool, usize, &str)> = prices
            .iter()
            .map(|p| {
                let mk = super::model::key(&p.model);
                let shares = mk.split(' ').any(|m| words.contains(&m));
                (!shares, distance(&mk, &key), p.model.as_str())
            })
            .collect();
        close.sort();
        let mut seen = std::collections::HashSet::new();
        close.retain(|c| seen.insert(c.2));
        return Err(Unpriced::Unknown(
            close
                .into_iter()
                .take(3)
                .map(|(_, _, m)| m.to_string())
                .collect(),
        ));
    }
    let find = |t: Tier, s: Scope| {
        rows.iter()
            .find(|p| p.tier == t.as_str() && p.scope == s.as_str())
            .copied()
    };
    if let Some(p) = find(tier, scope) {
        return Ok((p, vec![]));
    }
    let at_least = |p: &&ModelPrice| {
        tier_rank(&p.tier) >= tier_rank(tier.as_str())
            && scope_rank(&p.scope) >= scope_rank(scope.as_str())
    };
    let Some(fallback) = [
        (tier, Scope::InRegion),
        (tier, Scope::CrossRegion),
        (Tier::Standard, scope),
        (Tier::Standard, Scope::InRegion),
        (Tier::Standard, Scope::CrossRegion),
    ]
    .into_iter()
    .filter_map(|(t, s)| find(t, s))
    .find(at_least) else {
        return Err(Unpriced::NotListed {
            model: rows[0].model.clone(),
            listed: rows
                .iter()
                .map(|p| format!("{} {}", p.tier, p.scope))
                .collect(),
        });
    };
    Ok((
        fallback,
        vec![format!(
            "no {} {} price is listed for {}; the {} {} price is used",
            tier.as_str(),
            scope.as_str(),
            fallback.model,
            fallback.tier,
            fallback.scope
        )],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_normalise_to_per_1k() {
        assert_eq!(per_1k(0.003, "1K tokens"), Some(0.003));
        assert_eq!(per_1k(3.0, "1M tokens"), Some(0.003));
        assert_eq!(per_1k(3.0, "Million Tokens"), Some(0.003));
        assert_eq!(per_1k(1.0, "Hours"), None);
    }

    #[test]
    fn prices_resolve_by_any_name_tier_and_scope() {
        let mut book = snapshot();
        let mut global = book[1].clone();
        global.scope = "global".into();
        global.input_per_1k = 0.0027;
        book.push(global);
        let (p, notes) = resolve(
            &book,
            "us.anthropic.claude-sonnet-4-6-v1:0",
            Tier::Standard,
            Scope::InRegion,
        )
        .unwrap();
        assert_eq!(
            (p.model.as_str(), p.input_per_1k, notes.len()),
            ("Claude Sonnet 4.6", 0.003, 0)
        );
        let name = "global.anthropic.claude-sonnet-4-6";
        let (p, _) = resolve(&book, name, Tier::Standard, scope_of(name)).unwrap();
        assert_eq!(p.input_per_1k, 0.0027);
        // A tier that is not listed falls back, and says so.
        let (p, notes) = resolve(&book, "Claude Sonnet 4.6", Tier::Batch, Scope::Global).unwrap();
        assert_eq!(p.input_per_1k, 0.0027);
        assert!(notes[0].contains("no batch global price"), "{notes:?}");
        let Unpriced::Unknown(close) =
            resolve(&book, "claude-sonet-4.6", Tier::Standard, Scope::InRegion).unwrap_err()
        else {
            panic!("an unknown model")
        };
        assert_eq!(close[0], "Claude Sonnet 4.6");
        // A priority call is never priced from a cheaper row; a flex call may take the
        // standard one (it costs at least as much).
        let (p, notes) = resolve(&book, "Claude Sonnet 4.6", Tier::Flex, Scope::InRegion).unwrap();
        assert_eq!((p.tier.as_str(), p.input_per_1k), ("standard", 0.003));
        assert!(notes[0].contains("no flex in_region price"), "{notes:?}");
        assert_eq!(
            resolve(&book, "Claude Sonnet 4.6", Tier::Priority, Scope::Global).unwrap_err(),
            Unpriced::NotListed {
                model: "Claude Sonnet 4.6".into(),
                listed: vec!["standard in_region".into(), "standard global".into()],
            }
        );
        // An in-Region call is never priced from the cheaper global row.
        let only_global: Vec<ModelPrice> = book
            .iter()
            .filter(|p| p.scope == "global")
            .cloned()
            .collect();
        assert!(matches!(
            resolve(
                &only_global,
                "Claude Sonnet 4.6",
                Tier::Standard,
                Scope::InRegion
            ),
            Err(Unpriced::NotListed { .. })
        ));
        let (p, _) = resolve(
            &book,
            "amazon.titan-embed-text-v2:0",
            Tier::Standard,
            Scope::InRegion,
        )
        .unwrap();
        assert_eq!(p.model, "Titan Text Embeddings V2");
        assert_eq!(
            scope_of(
                "arn:aws:bedrock:us-east-1:1:inference-profile/eu.anthropic.claude-sonnet-4-6"
            ),
            Scope::CrossRegion
        );
        assert!(is_application_profile(
            "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc123"
        ));
    }
}
