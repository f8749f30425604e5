//! Period parsing and resolution (`core/src/domain/period.rs`), and the month
//! arithmetic the sources do on a resolved period.
//!
//! Invariants: no panic; an accepted period has start < end and start <= today;
//! writing it back as an explicit ISO range resolves to the same period.
#![no_main]

use chrono::{Duration, NaiveDate};
use libfuzzer_sys::fuzz_target;
use bedrock_cost_core::domain::period::{PeriodInput, add_months, first_of_month, next_month, prev_month};
use bedrock_cost_core::sources::cur_sql::months_of;

// Two bytes pick "today" (1990 to 2169), the rest is the `period` argument
// as a client sends it: JSON, a word or a `{"start", "end"}` object.
fuzz_target!(|data: &[u8]| {
    let [a, b, json @ ..] = data else {
        return;
    };
    let today = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap()
        + Duration::days(u16::from_le_bytes([*a, *b]) as i64);
    let Ok(period) = serde_json::from_slice::<PeriodInput>(json) else {
        return;
    };
    let Ok(p) = period.resolve(today) else {
        return;
    };
    assert!(p.start < p.end, "{period:?} resolved to {p:?}");
    assert!(p.start <= today, "{period:?} starts after {today}");
    assert!(p.days() >= 1);
    // Round trip through the explicit form.
    let again = PeriodInput::Range {
        start: p.start.to_string(),
        end: p.end.to_string(),
    };
    assert_eq!(again.resolve(today), Ok(p), "{period:?} -> {p:?}");
    // What the sources do with an accepted period.
    let tomorrow = today + Duration::days(1);
    let clamped = p.clamp_end(tomorrow);
    assert!(clamped.start < clamped.end);
    let _ = p.is_closed(today);
    let _ = first_of_month(p.end - Duration::days(1));
    let _ = next_month(p.start);
    let _ = prev_month(p.start);
    let _ = add_months(p.start, -13);
    // CUR: the billing months the period touches (one partition each).
    let months = months_of(p.start, p.end);
    assert!(!months.is_empty());
    assert_eq!(months[0], p.start.format("%Y-%m").to_string());
});
