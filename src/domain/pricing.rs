//! Bedrock model prices: model name resolution (model ids, inference-profile
//! ids and display names all name the same model), unit normalisation (the
//! Price List quotes per 1K or per 1M tokens) and the bundled snapshot used
//! when the Price List API cannot be reached.

use serde::{Deserialize, Serialize};

/// Date of the bundled price snapshot.
pub const SNAPSHOT_DATE: &str = "2026-11-01";

/// On-demand prices of one model in one region, USD per 1,000 tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelPrice {
    /// Display name, e.g. "Claude Sonnet 4.6".
    pub model: String,
    pub provider: String,
    pub region: String,
    pub input_per_1k: f64,
    pub output_per_1k: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_per_1k: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_per_1k: Option<f64>,
    /// Price List service code the price came from.
    pub service_code: String,
}

/// A canonical key: lower-case letters and digits only, provider and
/// inference-profile prefixes and version suffixes removed.
/// `us.anthropic.claude-sonnet-4-6-v1:0`, `anthropic.claude-sonnet-4-6` and
/// `Claude Sonnet 4.6` all give `claudesonnet46`.
pub fn model_key(name: &str) -> String {
    let mut s = name.trim().to_ascii_lowercase();
    for prefix in ["global.", "us.", "eu.", "apac.", "jp.", "au.", "us-gov."] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_string();
            break;
        }
    }
    for provider in [
        "anthropic.",
        "amazon.",
        "meta.",
        "mistral.",
        "cohere.",
        "ai21.",
        "deepseek.",
        "openai.",
        "qwen.",
        "writer.",
    ] {
        if let Some(rest) = s.strip_prefix(provider) {
            s = rest.to_string();
            break;
        }
    }
    // Version suffixes: "-v1:0", "-20250929-v1:0", ":0".
    if let Some(pos) = s.rfind("-v") {
        let tail = &s[pos + 2..];
        if tail.contains(':')
            && tail
                .split(':')
                .all(|p| p.chars().all(|c| c.is_ascii_digit()))
        {
            s.truncate(pos);
        }
    }
    let parts: Vec<&str> = s.split('-').collect();
    let s = parts
        .iter()
        .filter(|p| !(p.len() == 8 && p.chars().all(|c| c.is_ascii_digit())))
        .cloned()
        .collect::<Vec<_>>()
        .join("-");
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
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
        cache_read_per_1k: cr,
        cache_write_per_1k: cw,
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

/// Extra names that do not reduce to the display name's key.
const ALIASES: &[(&str, &str)] = &[
    ("titanembedtext", "titantextembeddingsv2"),
    ("titanembedtextv2", "titantextembeddingsv2"),
];

/// Find a model in `prices` by any of its names; else the closest names.
pub fn resolve<'a>(prices: &'a [ModelPrice], name: &str) -> Result<&'a ModelPrice, Vec<String>> {
    let mut key = model_key(name);
    if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == key) {
        key = to.to_string();
    }
    if let Some(p) = prices.iter().find(|p| model_key(&p.model) == key) {
        return Ok(p);
    }
    let mut close: Vec<(usize, &str)> = prices
        .iter()
        .map(|p| (distance(&model_key(&p.model), &key), p.model.as_str()))
        .collect();
    close.sort();
    close.dedup_by(|a, b| a.1 == b.1);
    Err(close
        .into_iter()
        .take(3)
        .map(|(_, m)| m.to_string())
        .collect())
}

/// Is `r` shaped like an AWS region code (`us-east-1`, `us-gov-west-1`, `cn-north-1`,
/// `eu-central-2`, `us-isob-east-1`)? Checked before a region sizes any work (a Price List
/// lookup, a cache entry, a cache file name).
pub fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    r.len() <= 32
        && parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1]
            .parse::<u8>()
            .is_ok_and(|n| (1..=20).contains(&n))
        && !parts[parts.len() - 1].starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes_are_recognised() {
        for ok in [
            "us-east-1",
            "us-gov-west-1",
            "cn-north-1",
            "eu-central-2",
            "ap-southeast-5",
            "us-isob-east-1",
            "mx-central-1",
        ] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us-east-01",
            "us-east-1/../../x",
            "us_east_1",
            "u-east-1",
            "us--1",
            "us-east-1 ",
            &"a".repeat(40),
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
    }

    #[test]
    fn names_of_one_model_agree() {
        for n in [
            "us.anthropic.claude-sonnet-4-6-v1:0",
            "anthropic.claude-sonnet-4-6",
            "Claude Sonnet 4.6",
            "global.anthropic.claude-sonnet-4-6-20260101-v1:0",
        ] {
            assert_eq!(model_key(n), "claudesonnet46", "{n}");
        }
        assert_eq!(model_key("amazon.nova-lite-v1:0"), "novalite");
        assert_eq!(
            model_key("meta.llama3-3-70b-instruct-v1:0"),
            model_key("Llama 3.3 70B Instruct")
        );
    }

    #[test]
    fn units_normalise_to_per_1k() {
        assert_eq!(per_1k(0.003, "1K tokens"), Some(0.003));
        assert_eq!(per_1k(3.0, "1M tokens"), Some(0.003));
        assert_eq!(per_1k(3.0, "Million Tokens"), Some(0.003));
        assert_eq!(per_1k(1.0, "Hours"), None);
    }

    #[test]
    fn resolves_or_suggests() {
        let s = snapshot();
        assert_eq!(
            resolve(&s, "amazon.titan-embed-text-v2:0").unwrap().model,
            "Titan Text Embeddings V2"
        );
        assert_eq!(
            resolve(&s, "us.anthropic.claude-haiku-4-5-v1:0")
                .unwrap()
                .model,
            "Claude Haiku 4.5"
        );
        let e = resolve(&s, "claude-sonet-4-6").unwrap_err();
        assert_eq!(e[0], "Claude Sonnet 4.6");
    }
}
