//! Bedrock model invocation log records (`core/src/domain/invocation_log.rs`): JSON lines as
//! Bedrock writes them to S3 and CloudWatch Logs.
//!
//! Invariants: no panic; every non-blank line is either read or counted as skipped, and the
//! first skipped ones are described in line order with their line numbers; what is read keeps
//! the parser's bounds (token counts, field lengths, no control characters) and its model
//! resolution agrees with itself; a well-formed record built from arbitrary parts is read back
//! exactly when its parts are acceptable, with those parts.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bedrock_cost_core::domain::invocation_log::{
    Invocation, MAX_ARN_LEN, MAX_ID_LEN, MAX_METADATA_LEN, MAX_METADATA_PAIRS, MAX_RECORD_BYTES,
    MAX_SKIPPED_SHOWN, MAX_TOKENS_PER_KIND, ModelKind, parse_lines, parse_record,
};
use bedrock_cost_core::domain::usage_type::Scope;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// A token count as a JSON number of any kind.
#[derive(Debug, Arbitrary)]
enum Count {
    Whole(u64),
    Signed(i64),
    Float(f64),
}

impl Count {
    fn value(&self) -> Value {
        match self {
            Count::Whole(n) => json!(n),
            Count::Signed(n) => json!(n),
            // NaN and infinities become null.
            Count::Float(x) => json!(x),
        }
    }

    /// What the parser should read: Some(Some(n)) a count, Some(None) no count, None refused.
    fn expected(&self) -> Option<Option<u64>> {
        match *self {
            Count::Whole(n) => (n <= MAX_TOKENS_PER_KIND).then_some(Some(n)),
            Count::Signed(n) => u64::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_TOKENS_PER_KIND)
                .map(Some),
            Count::Float(x) if !x.is_finite() => Some(None),
            Count::Float(x) => {
                // Judged as serde_json reads the number back: without its `float_roundtrip`
                // feature a decimal one ulp from a whole number can read as that number.
                // (A number it cannot read back is refused.)
                let x: f64 = serde_json::from_str(&serde_json::to_string(&x).unwrap())
                    .unwrap_or(f64::INFINITY);
                (x >= 0.0 && x.fract() == 0.0 && x <= MAX_TOKENS_PER_KIND as f64)
                    .then_some(Some(x as u64))
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Parts {
    request_id: String,
    operation: String,
    model_id: String,
    arn: String,
    counts: [Option<Count>; 4],
    metadata: Vec<(String, String)>,
    error_code: Option<String>,
}

fn clean(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

fn check(inv: &Invocation) {
    let counts = [
        inv.tokens.input,
        inv.tokens.output,
        inv.tokens.cache_read,
        inv.tokens.cache_write,
    ];
    assert!(counts.iter().all(|n| *n <= MAX_TOKENS_PER_KIND), "{inv:?}");
    assert!(inv.token_counts_logged || counts.iter().all(|n| *n == 0));
    assert_eq!(inv.tokens.total(), counts.iter().sum::<u64>());
    assert!(clean(&inv.request_id, MAX_ID_LEN));
    assert!(clean(&inv.region, MAX_ID_LEN));
    assert!(clean(inv.operation.as_str(), MAX_ID_LEN));
    assert!(clean(&inv.model_id, MAX_ARN_LEN));
    assert!(clean(&inv.principal_arn, MAX_ARN_LEN));
    assert!(inv.account.len() == 12 && inv.account.bytes().all(|b| b.is_ascii_digit()));
    assert!(inv.error.as_deref().is_none_or(|e| clean(e, MAX_ID_LEN)));
    assert!(inv.request_metadata.len() <= MAX_METADATA_PAIRS);
    assert_eq!(inv.streaming, inv.operation.is_streaming());
    let m = &inv.model();
    match m.kind {
        ModelKind::Foundation => {
            assert_eq!(m.scope, Some(Scope::InRegion), "{m:?}");
            assert!(m.geo.is_none());
        }
        ModelKind::InferenceProfile => {
            assert!(
                matches!(m.scope, Some(Scope::CrossRegion | Scope::Global)),
                "{m:?}"
            );
            assert_eq!(
                m.geo.is_some(),
                m.scope == Some(Scope::CrossRegion),
                "{m:?}"
            );
        }
        ModelKind::ApplicationProfile | ModelKind::Other => {
            assert_eq!((&m.base_id, m.scope, &m.geo), (&None, None, &None), "{m:?}");
        }
    }
    if let Some(base) = &m.base_id {
        assert!(!base.is_empty() && m.raw.contains(base.as_str()), "{m:?}");
        assert_eq!(m.key(), Some(bedrock_cost_core::domain::model::key(base)));
    }
}

fuzz_target!(|data: &[u8]| {
    // Any bytes, as lines.
    let (invocations, skipped) = parse_lines(data);
    let lines: Vec<usize> = data
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| {
            !l.strip_suffix(b"\r")
                .unwrap_or(l)
                .iter()
                .all(u8::is_ascii_whitespace)
        })
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(invocations.len() + skipped.count, lines.len());
    assert_eq!(skipped.first.len(), skipped.count.min(MAX_SKIPPED_SHOWN));
    assert!(skipped.first.windows(2).all(|w| w[0].line < w[1].line));
    for s in &skipped.first {
        assert!(lines.contains(&s.line));
        assert!(
            s.error
                .request_id
                .as_deref()
                .is_none_or(|id| clean(id, MAX_ID_LEN))
        );
        let _ = s.error.to_string();
    }
    invocations.iter().for_each(check);

    // The same bytes as the parts of a well-formed record.
    let Ok(parts) = Parts::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let mut input = Map::new();
    let mut output = Map::new();
    let names = [
        "inputTokenCount",
        "outputTokenCount",
        "cacheReadInputTokenCount",
        "cacheWriteInputTokenCount",
    ];
    for (name, count) in names.iter().zip(&parts.counts) {
        if let Some(c) = count {
            let side = if *name == "outputTokenCount" {
                &mut output
            } else {
                &mut input
            };
            side.insert((*name).to_string(), c.value());
        }
    }
    input.insert(
        "inputBodyJson".into(),
        json!({"messages": [{"text": parts.arn}]}),
    );
    let metadata: Map<String, Value> = parts
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut record = json!({
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2026-10-06T14:14:00Z",
        "accountId": "123456789012",
        "region": "us-east-1",
        "requestId": parts.request_id,
        "operation": parts.operation,
        "modelId": parts.model_id,
        "identity": {"arn": parts.arn},
        "requestMetadata": metadata,
        "input": input,
        "output": output,
    });
    if let Some(code) = &parts.error_code {
        record["errorCode"] = json!(code);
    }
    let line = serde_json::to_vec(&record).unwrap();
    if line.len() > MAX_RECORD_BYTES {
        assert!(parse_record(&line).is_err());
        return;
    }
    let expected: Option<Vec<Option<u64>>> = parts
        .counts
        .iter()
        .map(|c| c.as_ref().map_or(Some(None), Count::expected))
        .collect();
    let acceptable = clean(&parts.request_id, MAX_ID_LEN)
        && clean(&parts.operation, MAX_ID_LEN)
        && clean(&parts.model_id, MAX_ARN_LEN)
        && clean(&parts.arn, MAX_ARN_LEN)
        && parts
            .error_code
            .as_deref()
            .is_none_or(|e| clean(e, MAX_ID_LEN))
        && metadata.len() <= MAX_METADATA_PAIRS
        && metadata.iter().all(|(k, v)| {
            clean(k, MAX_METADATA_LEN)
                && v.as_str().is_some_and(|v| {
                    v.len() <= MAX_METADATA_LEN && !v.chars().any(char::is_control)
                })
        })
        && expected.is_some();
    match parse_record(&line) {
        Ok(inv) => {
            assert!(acceptable, "accepted {parts:?}");
            check(&inv);
            let counts = expected.unwrap();
            let got = [
                inv.tokens.input,
                inv.tokens.output,
                inv.tokens.cache_read,
                inv.tokens.cache_write,
            ];
            for (want, got) in counts.iter().zip(got) {
                assert_eq!(want.unwrap_or(0), got, "{parts:?}");
            }
            assert_eq!(inv.token_counts_logged, counts.iter().any(Option::is_some));
            assert_eq!(inv.request_id, parts.request_id);
            assert_eq!(inv.operation.as_str(), parts.operation);
            assert_eq!(inv.model_id, parts.model_id);
            assert_eq!(inv.principal_arn, parts.arn);
            assert_eq!(inv.error, parts.error_code);
            assert_eq!(inv.request_metadata.len(), metadata.len());
        }
        Err(e) => {
            assert!(!acceptable, "refused {parts:?}: {e}");
            // The request id is reported when it is clean.
            assert_eq!(
                e.request_id.is_some(),
                clean(&parts.request_id, MAX_ID_LEN),
                "{parts:?}: {e}"
            );
        }
    }
});
