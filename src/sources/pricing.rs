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
use crate::domain::usage_type::{self, TokenKind};
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
        if !crate::domain::pricing::valid_region(region) {
            return None;
        }
        self.cache_dir
            .as_ref()
            .map(|d| d.join(format!("prices-{region}.json")))
    }

    async fn fetch(&self, region: &str) -> Result<Vec<ModelPrice>, String> {
        // model -> (provider, service code, kind -> price per 1K)
        // model -> (provider, service code, kind -> (price per 1K, is global))
        type Prices = BTreeMap<TokenKind, (f64, bool)>;
        let mut by_model: BTreeMap<String, (String, String, Prices)> = BTreeMap::new();
        for code in ["AmazonBedrock", "AmazonBedrockFoundationModels"] {
            let mut token: Option<String> = None;
            loop {
                let out = self
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
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| from_sdk("Price List", "pricing:GetProducts", &e).to_string())?;
                for doc in out.price_list() {
                    if let Some((model, provider, kind, price)) = parse_product(doc) {
                        let e = by_model
                            .entry(model)
                            .or_insert_with(|| (provider, code.to_string(), BTreeMap::new()));
                        // Anthropic models have a global and a (dearer) in-region price; the
                        // in-region one is kept: it is what a model id or a regional profile pays.
                        let global = is_global(doc);
                        match e.2.get(&kind) {
                            Some((_, false)) if global => {}
                            _ => {
                                e.2.insert(kind, (price, global));
                            }
                        }
                    }
                }
                token = out
                    .next_token()
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(by_model
            .into_iter()
            .filter(|(_, (_, _, k))| k.contains_key(&TokenKind::Input))
            .map(|(model, (provider, service_code, k))| ModelPrice {
                model,
                provider,
                region: region.to_string(),
                input_per_1k: k[&TokenKind::Input].0,
                output_per_1k: k.get(&TokenKind::Output).map(|p| p.0).unwrap_or(0.0),
                cache_read_per_1k: k.get(&TokenKind::CacheRead).map(|p| p.0),
                cache_write_per_1k: k.get(&TokenKind::CacheWrite).map(|p| p.0),
                service_code,
            })
            .collect())
    }
}

/// Whether a product document prices global cross-region inference.
fn is_global(doc: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(doc)
        .ok()
        .and_then(|v| {
            v.pointer("/product/attributes/usagetype")
                .and_then(|u| u.as_str())
                .map(|u| u.to_ascii_lowercase().contains("global"))
        })
        .unwrap_or(false)
}

/// One Price List product document -> (model, provider, token kind, USD per 1K tokens).
pub fn parse_product(doc: &str) -> Option<(String, String, TokenKind, f64)> {
    let v: serde_json::Value = serde_json::from_str(doc).ok()?;
    let attrs = v.get("product")?.get("attributes")?;
    let model = attrs.get("model").and_then(|m| m.as_str())?.to_string();
    let provider = attrs
        .get("provider")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    let usage_type = attrs
        .get("usagetype")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    let inference = attrs
        .get("inferenceType")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut kind = usage_type::parse(usage_type).token_kind;
    if kind == TokenKind::Other {
        kind = if inference.contains("cache read") {
            TokenKind::CacheRead
        } else if inference.contains("cache write") {
            TokenKind::CacheWrite
        } else if inference.contains("output") {
            TokenKind::Output
        } else if inference.contains("input") {
            TokenKind::Input
        } else {
            return None;
        };
    }
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
    Some((model, provider, kind, per_1k(usd, unit)?))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct DiskCache {
    fetched_at: DateTime<Utc>,
    prices: Vec<ModelPrice>,
}

#[async_trait::async_trait]
impl PriceSource for PriceList {
    async fn prices(&self, region: &str) -> PriceBook {
        if !crate::domain::pricing::valid_region(region) {
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
            Ok(prices) if !prices.is_empty() => {
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
                    notes: vec![],
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
    fn parses_price_list_documents_in_both_units() {
        let doc = r#"{"product":{"attributes":{"model":"Claude 2.0","provider":"Anthropic","usagetype":"USE1-Claude2.0-input-tokens","inferenceType":"Input tokens"}},"terms":{"OnDemand":{"X.Y":{"priceDimensions":{"X.Y.Z":{"unit":"1K tokens","pricePerUnit":{"USD":"0.0080000000"}}}}}}}"#;
        assert_eq!(
            parse_product(doc),
            Some((
                "Claude 2.0".into(),
                "Anthropic".into(),
                TokenKind::Input,
                0.008
            ))
        );
        let mp = r#"{"product":{"attributes":{"model":"Claude Sonnet 4.6","usagetype":"USE1-MP:USE1_CacheReadInputTokenCount-Units"}},"terms":{"OnDemand":{"a":{"priceDimensions":{"b":{"unit":"1M tokens","pricePerUnit":{"USD":"0.30"}}}}}}}"#;
        let (_, _, kind, p) = parse_product(mp).unwrap();
        assert_eq!(kind, TokenKind::CacheRead);
        assert!((p - 0.0003).abs() < 1e-12);
        assert_eq!(parse_product("not json"), None);
    }
}
