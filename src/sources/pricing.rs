//! Bedrock prices from the AWS Price List API (`GetProducts` on
//! `AmazonBedrock` and `AmazonBedrockFoundationModels`), cached on disk for a
//! week; when the API cannot be reached, the disk cache (whatever its age,
//! said) or the bundled snapshot (its date stated).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_pricing::Client;
use aws_sdk_pricing::types::{Filter, FilterType};
use chrono::{DateTime, Utc};

use crate::domain::pricing::{ModelPrice, SNAPSHOT_DATE, per_1k, snapshot};
use crate::domain::usage_type::{self, Scope, Tier, TokenKind};
use crate::error::from_sdk;

/// Prices and where they came from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PriceBook {
    pub prices: Vec<ModelPrice>,
    /// price_list, price_cache or snapshot.
    pub source: String,
    /// When the prices were fetched (or the snapshot's date).
    pub as_of: String,
    pub notes: Vec<String>,
}

impl PriceBook {
    pub fn snapshot(note: Option<String>) -> PriceBook {
        PriceBook {
            prices: snapshot(),
            source: "snapshot".into(),
            as_of: SNAPSHOT_DATE.into(),
            notes: note.into_iter().collect(),
        }
    }
}

#[async_trait::async_trait]
pub trait PriceSource: Send + Sync {
    /// Prices for a region; never fails (falls back and says so).
    async fn prices(&self, region: &str) -> PriceBook;
}

/// The bundled snapshot only (demo mode).
pub struct SnapshotPrices;

#[async_trait::async_trait]
impl PriceSource for SnapshotPrices {
    async fn prices(&self, _region: &str) -> PriceBook {
        PriceBook::snapshot(Some("bundled price snapshot (demo mode)".into()))
    }
}

pub struct PriceList {
    client: crate::sources::Lazy<Client>,
    cache_dir: Option<PathBuf>,
    /// An hour per region, one fetch at a time per region (moka's single flight): no lock is
    /// held across a fetch, and a question about one region never waits for another.
    memory: moka::future::Cache<String, PriceBook>,
}

/// Regions kept in memory at once (there are fewer than 40; the bound is for safety).
const MAX_REGIONS: u64 = 64;

const DISK_TTL: chrono::Duration = chrono::Duration::days(7);

impl PriceList {
    pub fn new(client: crate::sources::Lazy<Client>, cache_dir: Option<PathBuf>) -> Self {
        PriceList {
            client,
            cache_dir,
            memory: moka::future::Cache::builder()
                .max_capacity(MAX_REGIONS)
                .time_to_live(Duration::from_secs(3600))
                .build(),
        }
    }

    fn cache_file(&self, region: &str) -> Option<PathBuf> {
        // Only a region code becomes part of a file name (no `/`, no `..`).
        if !crate::domain::names::valid_region(region) {
            return None;
        }
        self.cache_dir
            .as_ref()
            .map(|d| d.join(format!("prices-{region}.json")))
    }

    /// Every Bedrock price of the region from both offers, one [`ModelPrice`] per model, tier
    /// and scope, and notes on rows that disagreed.
    async fn fetch(&self, region: &str) -> Result<(Vec<ModelPrice>, Vec<String>), String> {
        let mut rows = Vec::new();
        for code in OFFERS {
            let mut pages = self
                .client
                .get_products()
                .service_code(code)
                .filters(
                    Filter::builder()
                        .r#type(FilterType::TermMatch)
                        .field("regionCode")
                        .value(region)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .format_version("aws_v1")
                .max_results(100)
                .into_paginator()
                .send();
            while let Some(out) = pages.next().await {
                let out =
                    out.map_err(|e| from_sdk("Price List", "pricing:GetProducts", &e).to_string())?;
                rows.extend(
                    out.price_list()
                        .iter()
                        .filter_map(|doc| parse_product(doc, code)),
                );
            }
        }
        Ok(book_of(region, rows))
    }
}

/// The two Price List offers that price Bedrock: first-party and open-weight models (per 1K
/// tokens), and the Marketplace models (per 1M tokens, some rows without a `model` attribute).
pub const OFFERS: [&str; 2] = ["AmazonBedrock", "AmazonBedrockFoundationModels"];

/// One Price List row, read.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRow {
    pub model: String,
    pub provider: String,
    pub tier: Tier,
    pub scope: Scope,
    pub kind: TokenKind,
    /// USD per 1,000 tokens.
    pub per_1k: f64,
    pub service_code: String,
}

/// Rows into one price per model, tier and scope (a model without an input price is left out).
/// Two rows for the same model, tier, scope and kind with different prices are a conflict: the
/// higher one is kept (a budget check then errs on the safe side) and a note says so; the order
/// of the rows never decides.
pub fn book_of(region: &str, rows: Vec<PriceRow>) -> (Vec<ModelPrice>, Vec<String>) {
    type Key = (String, Tier, Scope);
    let mut by: BTreeMap<Key, (String, String, BTreeMap<TokenKind, f64>)> = BTreeMap::new();
    let mut conflicts: BTreeMap<(String, Tier, Scope, TokenKind), (f64, f64)> = BTreeMap::new();
    for r in rows {
        let e = by
            .entry((r.model.clone(), r.tier, r.scope))
            .or_insert_with(|| (r.provider.clone(), r.service_code.clone(), BTreeMap::new()));
        if e.0.is_empty() {
            e.0 = r.provider.clone();
        }
        match e.2.get(&r.kind).copied() {
            Some(p) if (p - r.per_1k).abs() > 1e-12 => {
                let c = conflicts
                    .entry((r.model.clone(), r.tier, r.scope, r.kind))
                    .or_insert((p.min(r.per_1k), p.max(r.per_1k)));
                c.0 = c.0.min(r.per_1k);
                c.1 = c.1.max(r.per_1k);
                e.2.insert(r.kind, p.max(r.per_1k));
            }
            Some(_) => {}
            None => {
                e.2.insert(r.kind, r.per_1k);
            }
        }
    }
    let notes = conflicts
        .into_iter()
        .map(|((model, tier, scope, kind), (lo, hi))| {
            format!(
                "the Price List has several {} prices for {model} ({} {}): {lo} to {hi} per 1K tokens; the highest is used",
                kind.as_str(),
                tier.as_str(),
                scope.as_str()
            )
        })
        .collect();
    let prices = by
        .into_iter()
        .filter(|(_, (_, _, k))| k.contains_key(&TokenKind::Input))
        .map(
            |((model, tier, scope), (provider, service_code, k))| ModelPrice {
                model,
                provider,
                region: region.to_string(),
                tier: tier.as_str().into(),
                scope: scope.as_str().into(),
                input_per_1k: k[&TokenKind::Input],
                output_per_1k: k.get(&TokenKind::Output).copied().unwrap_or(0.0),
                cache_read_per_1k: k.get(&TokenKind::CacheRead).copied(),
                cache_write_per_1k: k.get(&TokenKind::CacheWrite5m).copied(),
                cache_write_1h_per_1k: k.get(&TokenKind::CacheWrite1h).copied(),
                service_code,
            },
        )
        .collect();
    (prices, notes)
}

/// One Price List product document of offer `code` -> a price row. The model comes from the
/// `model` attribute, else (Marketplace rows) from the service name; the kind, tier and scope
/// from the usage type, refined by `inferenceType` / `service_tier` / `feature` where those say
/// more. Prices per 1M tokens (and Marketplace `Units` of token meters, which are millions of
/// tokens) are turned into per 1K.
pub fn parse_product(doc: &str, code: &str) -> Option<PriceRow> {
    let v: serde_json::Value = serde_json::from_str(doc).ok()?;
    let attrs = v.get("product")?.get("attributes")?;
    let text = |k: &str| attrs.get(k).and_then(|m| m.as_str()).unwrap_or("").trim();
    let model = if !text("model").is_empty() {
        text("model").to_string()
    } else {
        crate::domain::model::from_service(text("servicename"))?
    };
    let usage_type = text("usagetype");
    let info = usage_type::parse(usage_type);
    let inference = text("inferenceType").to_ascii_lowercase();
    let mut kind = info.token_kind;
    if kind == TokenKind::Other && info.tier != Tier::Provisioned && info.tier != Tier::Reserved {
        kind = if inference.contains("cache read") {
            TokenKind::CacheRead
        } else if inference.contains("cache write") && inference.contains("1h") {
            TokenKind::CacheWrite1h
        } else if inference.contains("cache write") {
            TokenKind::CacheWrite5m
        } else if inference.contains("output") {
            TokenKind::Output
        } else if inference.contains("input") {
            TokenKind::Input
        } else {
            return None;
        };
    }
    if kind == TokenKind::Other {
        return None;
    }
    let stated_tier = [text("service_tier"), text("serviceTier")]
        .into_iter()
        .find(|t| !t.is_empty())
        .and_then(Tier::parse);
    let tier = stated_tier.unwrap_or(if inference.ends_with(" flex") {
        Tier::Flex
    } else if inference.ends_with(" priority") {
        Tier::Priority
    } else if text("feature").to_ascii_lowercase().contains("batch") {
        Tier::Batch
    } else {
        info.tier
    });
    let on_demand = v.get("terms")?.get("OnDemand")?.as_object()?;
    let dim = on_demand
        .values()
        .next()?
        .get("priceDimensions")?
        .as_object()?
        .values()
        .next()?;
    let unit = dim.get("unit")?.as_str()?;
    let usd: f64 = dim
        .get("pricePerUnit")?
        .get("USD")?
        .as_str()?
        .parse()
        .ok()?;
    let per_1k = if unit.trim().eq_ignore_ascii_case("units") && info.marketplace {
        usd / 1000.0
    } else {
        per_1k(usd, unit)?
    };
    Some(PriceRow {
        model,
        provider: text("provider").to_string(),
        tier,
        scope: info.scope,
        kind,
        per_1k,
        service_code: code.to_string(),
    })
}

#[derive(serde::Serialize, serde::Deserialize)]
struct DiskCache {
    fetched_at: DateTime<Utc>,
    prices: Vec<ModelPrice>,
}

#[async_trait::async_trait]
impl PriceSource for PriceList {
    async fn prices(&self, region: &str) -> PriceBook {
        if !crate::domain::names::valid_region(region) {
            return PriceBook::snapshot(Some(format!(
                "'{}' is not an AWS region code; bundled price snapshot",
                region.chars().take(40).collect::<String>()
            )));
        }
        self.memory
            .get_with(region.to_string(), self.load(region))
            .await
    }
}

impl PriceList {
    /// The disk cache while fresh, else the Price List API (written to the disk cache), else
    /// the stale disk cache or the snapshot, saying why.
    async fn load(&self, region: &str) -> PriceBook {
        let disk: Option<DiskCache> = self
            .cache_file(region)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| serde_json::from_str(&s).ok());
        if let Some(d) = &disk
            && Utc::now() - d.fetched_at < DISK_TTL
        {
            return PriceBook {
                prices: d.prices.clone(),
                source: "price_cache".into(),
                as_of: d.fetched_at.to_rfc3339(),
                notes: vec![],
            };
        }
        match self.fetch(region).await {
            Ok((prices, notes)) if !prices.is_empty() => {
                let now = Utc::now();
                if let Some(path) = self.cache_file(region) {
                    let _ =
                        std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")));
                    let _ = std::fs::write(
                        &path,
                        serde_json::to_string(&DiskCache {
                            fetched_at: now,
                            prices: prices.clone(),
                        })
                        .unwrap_or_default(),
                    );
                }
                PriceBook {
                    prices,
                    source: "price_list".into(),
                    as_of: now.to_rfc3339(),
                    notes,
                }
            }
            Ok(_) => fallback(
                disk,
                format!("the Price List API returned no Bedrock prices for {region}"),
            ),
            Err(e) => fallback(disk, format!("the Price List API failed ({e})")),
        }
    }
}

fn fallback(disk: Option<DiskCache>, why: String) -> PriceBook {
    match disk {
        Some(d) => PriceBook {
            prices: d.prices,
            source: "price_cache".into(),
            as_of: d.fetched_at.to_rfc3339(),
            notes: vec![format!(
                "{why}; using cached prices from {} (stale)",
                d.fetched_at.format("%Y-%m-%d")
            )],
        },
        None => PriceBook::snapshot(Some(format!(
            "{why}; using the bundled price snapshot of {SNAPSHOT_DATE}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_price_list_documents_of_both_offers() {
        let doc = r#"{"product":{"attributes":{"model":"Claude 2.0","provider":"Anthropic","usagetype":"USE1-Claude2.0-input-tokens","inferenceType":"Input tokens"}},"terms":{"OnDemand":{"X.Y":{"priceDimensions":{"X.Y.Z":{"unit":"1K tokens","pricePerUnit":{"USD":"0.0080000000"}}}}}}}"#;
        let r = parse_product(doc, "AmazonBedrock").unwrap();
        assert_eq!(
            (r.model.as_str(), r.kind, r.tier, r.scope, r.per_1k),
            (
                "Claude 2.0",
                TokenKind::Input,
                Tier::Standard,
                Scope::InRegion,
                0.008
            )
        );
        // A Marketplace row without `model`: named from its service, `Units` are per 1M tokens.
        let mp = r#"{"product":{"attributes":{"servicename":"Claude Sonnet 4.6 (Amazon Bedrock Edition)","usagetype":"USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units"}},"terms":{"OnDemand":{"a":{"priceDimensions":{"b":{"unit":"Units","pricePerUnit":{"USD":"6.00"}}}}}}}"#;
        let r = parse_product(mp, "AmazonBedrockFoundationModels").unwrap();
        assert_eq!(
            (r.model.as_str(), r.kind, r.scope),
            ("Claude Sonnet 4.6", TokenKind::CacheWrite1h, Scope::Global)
        );
        assert!((r.per_1k - 0.006).abs() < 1e-12);
        // Tiers from service_tier, the inferenceType suffix, the feature or the usage type.
        let flex = r#"{"product":{"attributes":{"model":"Nova Pro","usagetype":"USE1-NovaPro-input-tokens-flex","inferenceType":"Input tokens flex"}},"terms":{"OnDemand":{"a":{"priceDimensions":{"b":{"unit":"1K tokens","pricePerUnit":{"USD":"0.0004"}}}}}}}"#;
        assert_eq!(
            parse_product(flex, "AmazonBedrock").unwrap().tier,
            Tier::Flex
        );
        let batch = r#"{"product":{"attributes":{"model":"Nova Pro","usagetype":"USE1-NovaPro-input-tokens","feature":"Batch Inference"}},"terms":{"OnDemand":{"a":{"priceDimensions":{"b":{"unit":"1K tokens","pricePerUnit":{"USD":"0.0004"}}}}}}}"#;
        assert_eq!(
            parse_product(batch, "AmazonBedrock").unwrap().tier,
            Tier::Batch
        );
        assert_eq!(parse_product("not json", "AmazonBedrock"), None);
    }

    #[test]
    fn conflicting_rows_never_depend_on_their_order() {
        let row = |p: f64| PriceRow {
            model: "Nova Pro".into(),
            provider: "Amazon".into(),
            tier: Tier::Standard,
            scope: Scope::InRegion,
            kind: TokenKind::Input,
            per_1k: p,
            service_code: "AmazonBedrock".into(),
        };
        for rows in [
            vec![row(0.0008), row(0.0009)],
            vec![row(0.0009), row(0.0008)],
        ] {
            let (book, notes) = book_of("us-east-1", rows);
            assert_eq!(book[0].input_per_1k, 0.0009);
            assert!(notes[0].contains("several input prices"), "{notes:?}");
        }
    }
}
