//! Usage-type parsing (`core/src/domain/usage_type.rs`) and the model-name rules (`core/src/domain/model.rs`).
//!
//! Invariants: no panic; the region is a prefix and the model a substring of the input; a
//! usage type built from parts parses back into those parts; a line's `product['model']` always
//! names it; a model's grouping key does not depend on how it is cased or padded.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use bedrock_cost_core::domain::model;
use bedrock_cost_core::domain::usage_type::{KIND_MARKERS, TokenKind, parse};

/// The parser's own marker table.
const MARKERS: &[(&str, TokenKind)] = KIND_MARKERS;

#[derive(Debug, Arbitrary)]
struct Parts {
    region: (u8, u8, u8, u8),
    model: String,
    marker: u8,
    suffix: String,
    product_model: String,
    service: String,
}

// The input is the usage type as text; the same bytes also pick the parts
// of a built usage type.
fuzz_target!(|data: &[u8]| {
    let raw = &*String::from_utf8_lossy(data);
    let Ok(parts) = Parts::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    // Any text.
    let info = parse(raw);
    assert!(raw.starts_with(&info.region_code));
    assert!(raw.contains(&info.model));
    if !info.region_code.is_empty() {
        assert!(raw[info.region_code.len()..].starts_with('-'));
    }
    let named = model::of_line(&parts.product_model, raw, &parts.service);
    if !parts.product_model.trim().is_empty() {
        assert_eq!(
            named,
            Some((parts.product_model.trim().to_string(), model::Source::Product))
        );
    }
    if let Some((name, _)) = &named {
        let k = model::key(name);
        assert_eq!(k, model::key(&format!("  {name} ")), "{name:?}");
    }
    let _ = model::pretty_stem(&parts.model);

    // Built from parts: REGION-model<marker><suffix>, with a model free of '-' so the marker is
    // the first one in the text, and no capacity word (provisioned/reserved meters bill no
    // tokens).
    let (a, b, c, len) = parts.region;
    let letters = [a, b, c].map(|l| (b'A' + l % 26) as char);
    let region: String = letters[..2 + (len % 2) as usize]
        .iter()
        .chain(std::iter::once(&((b'0' + len % 10) as char)))
        .collect();
    if parts.model.contains('-') || parts.model.to_ascii_lowercase().starts_with("mp:") {
        return;
    }
    let (marker, kind) = MARKERS[parts.marker as usize % MARKERS.len()];
    let built = format!("{region}-{}{marker}{}", parts.model, parts.suffix);
    let lower = built.to_ascii_lowercase();
    if lower.contains("provisionedthroughput")
        || lower.contains("provisioned-throughput")
        || lower.contains("reserved")
    {
        return;
    }
    let info = parse(&built);
    assert_eq!(
        (
            info.region_code.as_str(),
            info.model.as_str(),
            info.token_kind
        ),
        (region.as_str(), parts.model.as_str(), kind),
        "{built}"
    );
});
