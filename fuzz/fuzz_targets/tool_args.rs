//! Every tool's arguments (`core/src/tools/args.rs`): JSON parsed into the tool's
//! input struct, as rmcp does, then the tool's checks.
//!
//! Invariants: no panic; what the checks accept is within the documented
//! bounds (periods, group keys, page sizes, tag keys, cursors, id counts);
//! group keys and browse cursors round-trip through their text form.
#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use bedrock_cost_core::domain::group::{GroupKey, valid_tag_key};
use bedrock_cost_core::tools::args::*;

fn check_group_keys(keys: &[GroupKey]) {
    for k in keys {
        let text = k.to_string();
        assert_eq!(text.parse::<GroupKey>().as_ref(), Ok(k), "{k:?} -> {text}");
        if let GroupKey::Tag(t) = k {
            assert!(valid_tag_key(t), "{t:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&tool, json)) = data.split_first() else {
        return;
    };
    let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    match tool % 11 {
        0 => {
            let Ok(input) = serde_json::from_slice::<SpendInput>(json) else {
                return;
            };
            if let Ok(q) = build_query(&input, "team", today) {
                assert!(q.period.start < q.period.end && q.period.start <= today);
                assert!((1..=3).contains(&q.group_by.len()));
                let mut seen = q.group_by.clone();
                seen.sort();
                seen.dedup();
                assert_eq!(seen.len(), q.group_by.len());
                check_group_keys(&q.group_by);
                for k in q.filter.tags.keys() {
                    assert!(valid_tag_key(k), "{k:?}");
                }
            }
            if let Ok((top_n, _offset)) = spend_page(&input) {
                assert!((1..=500).contains(&top_n));
            }
        }
        1 => {
            let Ok(input) = serde_json::from_slice::<AnomalyInput>(json) else {
                return;
            };
            if let Ok(a) = anomaly_args(&input, today) {
                assert!(a.period.start < a.period.end && a.period.days() <= 92);
                assert!((0.5..=20.0).contains(&a.k));
                assert!(a.min_increase >= 0.0);
                assert!(matches!(
                    a.by,
                    GroupKey::Role | GroupKey::Principal | GroupKey::Tag(_)
                ));
                check_group_keys(std::slice::from_ref(&a.by));
            }
        }
        2 => {
            let Ok(input) = serde_json::from_slice::<EstimateInput>(json) else {
                return;
            };
            if let Ok(model) = estimate_args(&input) {
                assert!(!model.is_empty() && model.trim() == model);
            }
        }
        3 => {
            let Ok(input) = serde_json::from_slice::<CheckInput>(json) else {
                return;
            };
            match planned_call(&input) {
                Ok(Planned::Cost(c)) => assert!(c.is_finite() && (0.0..=1_000_000.0).contains(&c)),
                Ok(Planned::Priced(e)) => {
                    let _ = estimate_args(&e);
                }
                Err(_) => {}
            }
            if let Some(who) = input
                .who
                .as_deref()
                .map(str::trim)
                .filter(|w| !w.is_empty())
            {
                match parse_who(who) {
                    Ok(Who::Tag { key, value }) => {
                        assert!(valid_tag_key(key));
                        assert!(!value.is_empty() && value.trim() == value);
                    }
                    Ok(Who::Arn(p)) => assert_eq!(p.arn, who),
                    Ok(Who::Name(n)) => assert_eq!(n, who),
                    // Refused: a bad tag form, a wildcard, or longer than an ARN can be.
                    Err(_) => assert!(
                        who.starts_with("tag:")
                            || who.contains(['*', '?'])
                            || who.chars().count() > bedrock_cost_core::tools::args::MAX_WHO_CHARS
                    ),
                }
            }
        }
        4 => {
            let Ok(input) = serde_json::from_slice::<UntaggedInput>(json) else {
                return;
            };
            if let Ok((max, _offset)) = untagged_page(&input) {
                assert!((1..=500).contains(&max));
            }
            if let Some(keys) = &input.required_keys
                && let Ok(clean) = clean_keys(keys)
            {
                assert!(clean.len() <= keys.len());
                for (i, k) in clean.iter().enumerate() {
                    assert!(valid_tag_key(k));
                    assert!(!clean[..i].contains(k));
                }
            }
            if let Some(p) = input.period {
                let _ = p.resolve(today);
            }
        }
        5 => {
            let Ok(input) = serde_json::from_slice::<TagsInput>(json) else {
                return;
            };
            if let Some(keys) = &input.required_keys {
                let _ = clean_keys(keys);
            }
        }
        6 => {
            let Ok(input) = serde_json::from_slice::<SearchInput>(json) else {
                return;
            };
            if let Ok((per, query)) = search_args(&input) {
                assert!((1..=20).contains(&per));
                assert!(query.chars().count() <= 256 && query.trim() == query);
            }
            if let Some(f) = search_filters(&input) {
                assert!(f.is_object());
            }
            if let Some(c) = &input.cursor
                && let Ok(cursor) = BrowseCursor::decode(c)
            {
                assert_eq!(BrowseCursor::decode(&cursor.encode()).ok(), Some(cursor));
            }
        }
        7 => {
            // A cursor as raw text.
            let Ok(text) = std::str::from_utf8(json) else {
                return;
            };
            if let Ok(cursor) = BrowseCursor::decode(text) {
                assert_eq!(BrowseCursor::decode(&cursor.encode()).ok(), Some(cursor));
            }
            let _ = parse_cursor(&Some(text.to_string()));
        }
        8 => {
            let Ok(input) = serde_json::from_slice::<GetRecordInput>(json) else {
                return;
            };
            if let Ok(ids) = record_ids(&input) {
                assert!((1..=100).contains(&ids.len()));
            }
        }
        9 => {
            let Ok(input) = serde_json::from_slice::<ActivateInput>(json) else {
                return;
            };
            if let Ok(keys) = activation_keys(&input) {
                assert!((1..=20).contains(&keys.len()) && input.confirm == Some(true));
                for k in keys {
                    let bare = k.strip_prefix("iamPrincipal/").expect("prefixed");
                    assert!(valid_tag_key(bare));
                }
            }
        }
        _ => {
            let Ok(input) = serde_json::from_slice::<TagPrincipalInput>(json) else {
                return;
            };
            if check_tag_principal(&input).is_ok() {
                assert!(input.confirm == Some(true));
                assert!((1..=50).contains(&input.tags.len()));
                assert!(!input.name.is_empty() && !input.name.contains([':', '/']));
            }
        }
    }
});
