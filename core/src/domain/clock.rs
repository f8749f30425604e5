//! The calendar clock: what "now" and "today" (UTC) are for every piece of calendar logic:
//! period words (`this_month`, `last_7_days`), forecasts, the unbilled ledger's window, anomaly
//! baselines, which months a server keeps rolled up, Cost Explorer's 13-month limit, whether a
//! month is closed, the demo organisation's data and `generate-cur`'s default dates.
//!
//! It reads the real time unless the process pinned it with [`pin`] (the `--now` flag,
//! `BEDROCK_COST_MCP_NOW`): the clock then starts at the pinned instant and runs on at real
//! speed, so a server pinned to `2026-02-29T09:00:00Z` answers as it would on that morning.
//! Every answer then says so in its notes ([`note`]).
//!
//! What keeps real time on purpose: token expiry (`exp`/`nbf`), cache lifetimes, rate-limit
//! windows, file ages: they measure elapsed time, not the calendar.

use std::sync::OnceLock;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

struct Pin {
    at: DateTime<Utc>,
    since: Instant,
}

static PIN: OnceLock<Option<Pin>> = OnceLock::new();

/// Read a pinned time: RFC 3339 (`2026-03-01T09:00:00Z`, any offset) or a date
/// (`2026-03-01`, read as 12:00 UTC that day).
pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"))
            .and_utc());
    }
    Err(format!(
        "'{s}' is not a time; write it as RFC 3339 (2026-03-01T09:00:00Z) or a date (2026-03-01, read as noon UTC)"
    ))
}

/// Pin the clock for this process (`None`: real time). The first call wins; later calls and
/// calls after the clock was first read change nothing, so a process has one calendar.
pub fn pin(at: Option<DateTime<Utc>>) {
    let _ = PIN.set(at.map(|at| Pin {
        at,
        since: Instant::now(),
    }));
}

/// The calendar's now (UTC).
pub fn now() -> DateTime<Utc> {
    match PIN.get_or_init(|| None) {
        Some(p) => {
            p.at + chrono::Duration::from_std(p.since.elapsed()).unwrap_or(chrono::Duration::zero())
        }
        None => Utc::now(),
    }
}

/// The calendar's today (UTC).
pub fn today() -> NaiveDate {
    now().date_naive()
}

/// The pinned instant, if the clock is pinned.
pub fn pinned() -> Option<DateTime<Utc>> {
    PIN.get().and_then(|p| p.as_ref().map(|p| p.at))
}

/// The note every answer carries while the clock is pinned.
pub fn note() -> Option<String> {
    pinned().map(|at| {
        format!(
            "the calendar clock is pinned (--now / BEDROCK_COST_MCP_NOW): it started at {} and runs on from there; periods, forecasts and windows are computed for that date, not the real one",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_times_parse_in_both_forms() {
        assert_eq!(
            parse("2028-02-29T09:00:00Z").unwrap().to_rfc3339(),
            "2028-02-29T09:00:00+00:00"
        );
        // An offset is turned into UTC: 01:30 at +02:00 is the day before in UTC.
        assert_eq!(
            parse("2027-01-01T01:30:00+02:00").unwrap().date_naive(),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
        assert_eq!(
            parse("2026-12-31").unwrap().to_rfc3339(),
            "2026-12-31T12:00:00+00:00"
        );
        for bad in ["", "yesterday", "2027-02-29", "2026-13-01T00:00:00Z"] {
            assert!(parse(bad).unwrap_err().contains("RFC 3339"), "{bad}");
        }
    }
}
