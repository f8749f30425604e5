//! One model, whatever the line or the request calls it.
//!
//! A bill names a model several ways: `product['model']` ("Claude Sonnet 4.6"; AWS added it to
//! older lines in a backfill, so early lines of an export may lack it), the stem of a first-party
//! usage type (`USE1-Claude4.6Sonnet-input-tokens`), the service name of a Marketplace model
//! ("Claude Sonnet 4.6 (Amazon Bedrock Edition)", whose usage types name no model:
//! `USE1-MP:USE1_InputTokenCount-Units`). Requests name it by model id
//! (`anthropic.claude-sonnet-4-6`), inference-profile id (`global.anthropic.claude-sonnet-4-6-v1:0`)
//! or ARN. All of these reduce to one [`key`]: the name's words and version numbers, lower-cased,
//! in a fixed order, without provider prefixes, dates, `vN:M` suffixes and filler words
//! ("instruct", "edition"). Grouping and the `model` filter compare keys; the name shown is the
//! most authoritative spelling seen ([`Source`]).

/// Where a model's name came from, most authoritative first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// `product['model']`.
    Product,
    /// A Marketplace service name, "... (Amazon Bedrock Edition)".
    Service,
    /// The stem of a first-party usage type.
    UsageType,
}

/// The name a line gives its model, and where from; None when the line names no model.
pub fn of_line(product_model: &str, usage_type: &str, service: &str) -> Option<(String, Source)> {
    let pm = product_model.trim();
    if !pm.is_empty() {
        return Some((pm.to_string(), Source::Product));
    }
    if let Some(name) = from_service(service) {
        return Some((name, Source::Service));
    }
    let stem = super::usage_type::parse(usage_type).model;
    if stem.is_empty() {
        return None;
    }
    Some((pretty_stem(&stem), Source::UsageType))
}

/// The model a Marketplace service name is for: "Claude Sonnet 4.6 (Amazon Bedrock Edition)" ->
/// "Claude Sonnet 4.6". None for first-party service names.
pub fn from_service(service: &str) -> Option<String> {
    let s = service.trim();
    let (name, _) = s.split_once('(')?;
    let tail = s[name.len()..].to_ascii_lowercase();
    (tail.contains("bedrock edition") && !name.trim().is_empty()).then(|| name.trim().to_string())
}

/// A usage-type stem as a name: `Claude4.6Sonnet` -> "Claude Sonnet 4.6" (the name AWS gives the
/// Claude 4 family), `Claude3.5Sonnet` -> "Claude 3.5 Sonnet", `Nova2.0Lite` -> "Nova 2.0 Lite",
/// `Llama3.3-70B` -> "Llama 3.3 70B", `anthropic.claude-opus-4-8` -> "Claude Opus 4.8".
pub fn pretty_stem(stem: &str) -> String {
    let words = tokens(stem, false);
    if words.is_empty() {
        return stem.to_string();
    }
    let shown: Vec<String> = words.iter().map(|w| show(w)).collect();
    // Claude 4 and later: "Claude <Variant> <version>".
    if words[0] == "claude"
        && let Some(vi) = words.iter().position(|w| is_version(w))
        && words[vi]
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .is_some_and(|major| major >= 4)
    {
        let mut out = vec![shown[0].clone()];
        out.extend(
            shown
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 0 && *i != vi)
                .map(|(_, w)| w.clone()),
        );
        out.push(shown[vi].clone());
        return out.join(" ");
    }
    shown.join(" ")
}

/// The grouping key of any spelling of a model: its words and versions, sorted.
pub fn key(name: &str) -> String {
    let mut words = tokens(name, true);
    words.sort();
    words.dedup();
    words.join(" ")
}

/// Lower-case words and versions of a name, without provider or profile prefixes, dates and
/// API-version suffixes (`-v1`, `:0`); adjacent number parts ("4-6") are one version ("4.6").
/// For a key (`for_key`) also without filler words, with one spelling per word, and "2.0" as "2".
fn tokens(name: &str, for_key: bool) -> Vec<String> {
    // CamelCase usage-type stems ("NovaLite", "TitanEmbeddingsV2") are words too.
    let mut spaced = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.trim().chars() {
        if prev_lower && c.is_ascii_uppercase() {
            spaced.push(' ');
        }
        prev_lower = c.is_ascii_lowercase();
        spaced.push(c);
    }
    let mut s = spaced.to_ascii_lowercase();
    // An ARN: keep what follows the last `/` (`.../inference-profile/global.anthropic...`).
    if s.starts_with("arn:")
        && let Some((_, tail)) = s.rsplit_once('/')
    {
        s = tail.to_string();
    }
    if let Some((name, _)) = s.split_once('(') {
        s = name.to_string();
    }
    for prefix in [
        "global.", "us.", "eu.", "apac.", "jp.", "au.", "ca.", "us-gov.",
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_string();
            break;
        }
    }
    if let Some((provider, rest)) = s.split_once('.')
        && !provider.is_empty()
        && provider.chars().all(|c| c.is_ascii_alphanumeric())
        && !rest.is_empty()
        && !provider.chars().next().is_some_and(|c| c.is_ascii_digit())
        && !rest.chars().next().is_some_and(|c| c.is_ascii_digit())
    {
        s = rest.to_string();
    }
    // `:0`, `:0:8k`: the revision of a model id; `-v1`: its API version (a `-v2` can be part of
    // the name: `titan-embed-text-v2` is Titan Text Embeddings V2).
    if let Some(pos) = s.find(':') {
        s.truncate(pos);
    }
    if let Some(stripped) = s.strip_suffix("-v1") {
        s = stripped.to_string();
    }
    // Split into runs of letters and of digits-with-dots; separators go.
    let mut raw: Vec<(String, bool)> = Vec::new();
    let mut sep_before = Vec::new();
    let mut cur = String::new();
    let mut cur_digit = false;
    let mut saw_sep = false;
    for c in s.chars() {
        let digit = c.is_ascii_digit() || (c == '.' && cur_digit && !cur.is_empty());
        if c.is_ascii_alphanumeric() || digit {
            if !cur.is_empty() && digit != cur_digit {
                raw.push((std::mem::take(&mut cur), cur_digit));
                sep_before.push(saw_sep);
                saw_sep = false;
            }
            cur_digit = digit;
            cur.push(c);
        } else {
            if !cur.is_empty() {
                raw.push((std::mem::take(&mut cur), cur_digit));
                sep_before.push(saw_sep);
            }
            saw_sep = true;
        }
    }
    if !cur.is_empty() {
        raw.push((cur, cur_digit));
        sep_before.push(saw_sep);
    }
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let (w, digit) = &raw[i];
        let w = w.trim_end_matches('.').to_string();
        if *digit {
            // A size: digits followed at once by b/m ("70b", "8B").
            if let Some((next, false)) = raw.get(i + 1)
                && !sep_before[i + 1]
                && (next == "b" || next == "m")
            {
                out.push(format!("{w}{next}"));
                i += 2;
                continue;
            }
            // Dates (8 digits) go; short numbers separated only by `-` join into a version.
            if w.len() == 8 && !w.contains('.') {
                i += 1;
                continue;
            }
            let mut version = w.clone();
            while let Some((next, true)) = raw.get(i + 1)
                && sep_before[i + 1]
                && !version.contains('.')
                && version.len() <= 2
                && next.len() <= 2
                && !next.contains('.')
                && !matches!(raw.get(i + 2), Some((b, false)) if !sep_before[i + 2] && (b == "b" || b == "m"))
            {
                version = format!("{version}.{next}");
                i += 1;
            }
            out.push(if for_key {
                trim_zero(&version)
            } else {
                version
            });
        } else if !for_key {
            out.push(w);
        } else if !FILLER.contains(&w.as_str()) {
            out.push(
                ALIASES
                    .iter()
                    .find(|(a, _)| *a == w)
                    .map_or(w.clone(), |(_, b)| b.to_string()),
            );
        }
        i += 1;
    }
    out
}

/// Words that do not tell models apart.
const FILLER: &[&str] = &[
    "instruct", "chat", "edition", "amazon", "bedrock", "model", "v",
];
/// Spellings of one word.
const ALIASES: &[(&str, &str)] = &[("embeddings", "embed"), ("embedding", "embed")];

/// "2.0" -> "2" (Nova 2.0 Lite is `nova-2-lite`), "4.60" stays (a different version).
fn trim_zero(v: &str) -> String {
    v.strip_suffix(".0").unwrap_or(v).to_string()
}

fn is_version(w: &str) -> bool {
    w.chars().next().is_some_and(|c| c.is_ascii_digit())
        && w.chars().all(|c| c.is_ascii_digit() || c == '.')
}

fn show(w: &str) -> String {
    if w.ends_with('b') && w[..w.len() - 1].chars().all(|c| c.is_ascii_digit()) {
        return w.to_ascii_uppercase();
    }
    if is_version(w) {
        return w.to_string();
    }
    if w.len() == 2 && w.starts_with('v') && w[1..].chars().all(|c| c.is_ascii_digit()) {
        return w.to_ascii_uppercase();
    }
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_model_has_one_key() {
        let groups: &[&[&str]] = &[
            &[
                "Claude Sonnet 4.6",
                "Claude4.6Sonnet",
                "Claude Sonnet 4.6 (Amazon Bedrock Edition)",
                "anthropic.claude-sonnet-4-6",
                "us.anthropic.claude-sonnet-4-6-v1:0",
                "global.anthropic.claude-sonnet-4-6",
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-6",
                "claude-sonnet-4-6",
            ],
            &[
                "Claude Haiku 4.5",
                "Claude4.5Haiku",
                "anthropic.claude-haiku-4-5-20251001-v1:0",
            ],
            &[
                "Claude 3.5 Sonnet",
                "Claude3.5Sonnet",
                "anthropic.claude-3-5-sonnet-20240620-v1:0",
            ],
            &["Nova Lite", "NovaLite", "amazon.nova-lite-v1:0"],
            &["Nova 2.0 Lite", "Nova2.0Lite", "amazon.nova-2-lite-v1:0"],
            &[
                "Llama 3.3 70B Instruct",
                "Llama3.3-70B",
                "meta.llama3-3-70b-instruct-v1:0",
                "Llama 3.3 70B",
            ],
            &[
                "Titan Text Embeddings V2",
                "TitanEmbeddingsV2-Text",
                "amazon.titan-embed-text-v2:0",
            ],
        ];
        for g in groups {
            let k = key(g[0]);
            for s in *g {
                assert_eq!(key(s), k, "{s} vs {}", g[0]);
            }
        }
        // Different models stay apart.
        for (a, b) in [
            ("Claude Sonnet 4.6", "Claude Sonnet 4.5"),
            ("Claude Sonnet 4.6", "Claude Opus 4.6"),
            ("Nova Lite", "Nova 2.0 Lite"),
            ("Llama 3.3 70B", "Llama 3.1 70B"),
            ("Llama 3.1 8B", "Llama 3.1 70B"),
        ] {
            assert_ne!(key(a), key(b), "{a} {b}");
        }
    }

    #[test]
    fn names_shown() {
        assert_eq!(pretty_stem("Claude4.6Sonnet"), "Claude Sonnet 4.6");
        assert_eq!(pretty_stem("Claude4.5Haiku"), "Claude Haiku 4.5");
        assert_eq!(pretty_stem("Claude3.5Sonnet"), "Claude 3.5 Sonnet");
        assert_eq!(pretty_stem("NovaLite"), "Nova Lite");
        assert_eq!(pretty_stem("Nova2.0Lite"), "Nova 2.0 Lite");
        assert_eq!(pretty_stem("Llama3.3-70B"), "Llama 3.3 70B");
        assert_eq!(pretty_stem("anthropic.claude-opus-4-8"), "Claude Opus 4.8");
        assert_eq!(
            from_service("Claude Sonnet 4.6 (Amazon Bedrock Edition)").as_deref(),
            Some("Claude Sonnet 4.6")
        );
        assert_eq!(from_service("Amazon Bedrock"), None);
        assert_eq!(
            of_line(
                "",
                "USE1-MP:USE1_InputTokenCount-Units",
                "Claude Haiku 4.5 (Amazon Bedrock Edition)"
            ),
            Some(("Claude Haiku 4.5".into(), Source::Service))
        );
        assert_eq!(
            of_line(" Nova Pro ", "USE1-NovaPro-input-tokens", "Amazon Bedrock"),
            Some(("Nova Pro".into(), Source::Product))
        );
        assert_eq!(
            of_line(
                "",
                "USE1-ProvisionedThroughput-ModelUnits",
                "Amazon Bedrock"
            ),
            None
        );
    }
}
