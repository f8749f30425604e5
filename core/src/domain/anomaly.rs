//! Spike detection on daily spend: a day is anomalous when it exceeds the
//! principal's own trailing baseline by more than `k` robust standard
//! deviations: `actual > median + k * max(1.4826 * MAD, 10% of median, $1)`
//! over the previous [`WINDOW_DAYS`] days (days without spend count as 0), and
//! by at least `min_increase` in money. The median and MAD ignore a few bad
//! days, so one earlier spike does not hide the next; the floors keep a
//! perfectly flat (or empty) series from alarming on noise and keep every
//! score finite.
//!
//! A day is judged only against a full baseline ([`history`]): within the
//! first [`WINDOW_DAYS`] days of the data, or of a group's first spend, the
//! zeros before it are not a baseline but missing history.

use chrono::{Duration, NaiveDate};

/// Days of history a day is judged against.
pub const WINDOW_DAYS: i64 = 14;

/// The smallest robust standard deviation, in USD: a day's spend moving by a dollar means
/// nothing, and an all-zero baseline must not divide by zero.
pub const MIN_SCALE_USD: f64 = 1.0;

/// Median of a slice (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// What the rule concluded about one day.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub expected: f64,
    pub threshold: f64,
    /// (actual - expected) in robust standard deviations; always finite.
    pub score: f64,
    pub anomalous: bool,
}

/// `x`, or 0 when it is not finite (JSON numbers must be finite).
pub fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// Judge `actual` against the trailing `baseline` (oldest first).
pub fn judge(baseline: &[f64], actual: f64, k: f64, min_increase: f64) -> Verdict {
    let m = finite(median(baseline));
    let deviations: Vec<f64> = baseline.iter().map(|x| (x - m).abs()).collect();
    let sigma = finite(1.4826 * median(&deviations))
        .max(0.1 * m.abs())
        .max(MIN_SCALE_USD);
    let threshold = m + k * sigma;
    let score = finite((actual - m) / sigma);
    Verdict {
        expected: m,
        threshold,
        score,
        anomalous: actual > threshold && actual - m >= min_increase,
    }
}

/// Whether a group's day has the full baseline it is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// Data and group both reach back [`WINDOW_DAYS`] days: judge it.
    Full,
    /// The data (or the group's first spend, close to the data's start) begins less than
    /// [`WINDOW_DAYS`] days before: unknown history, not judged.
    DataTooShort,
    /// The group first spent less than [`WINDOW_DAYS`] days before, after at least
    /// [`WINDOW_DAYS`] days of data without it: a new spender, not a statistical anomaly.
    NewGroup,
}

/// The history behind `day` for a group first seen on `first_seen`, in data that starts on
/// `data_start`.
pub fn history(day: NaiveDate, data_start: NaiveDate, first_seen: NaiveDate) -> History {
    let window_start = day - Duration::days(WINDOW_DAYS);
    if data_start <= window_start && first_seen <= window_start {
        History::Full
    } else if first_seen >= data_start + Duration::days(WINDOW_DAYS) {
        History::NewGroup
    } else {
        History::DataTooShort
    }
}

// A model that drove an anomalous day, and its spend that day (no doc comment: it would
// change the tools' output schemas).
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Driver {
    pub model: String,
    pub amount: f64,
}

// A day whose spend for one group is far above its baseline.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Anomaly {
    /// cur_baseline or cost_explorer.
    pub source: String,
    /// The role, principal or tag value.
    pub who: String,
    pub day: String,
    pub expected: f64,
    pub actual: f64,
    pub score: f64,
    /// Models that drove the day.
    pub drivers: Vec<Driver>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_threatened: Option<String>,
    // Hourly findings from invocation logs: the group's calls per minute in that hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls_per_minute: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_series_is_quiet_and_a_spike_is_caught() {
        let steady = [
            10.0, 12.0, 9.0, 11.0, 10.5, 9.5, 11.5, 10.0, 12.5, 8.5, 10.0, 11.0, 9.0, 10.0,
        ];
        assert!(!judge(&steady, 14.0, 3.0, 1.0).anomalous);
        let spike = judge(&steady, 60.0, 3.0, 1.0);
        assert!(spike.anomalous && spike.score > 10.0);
        assert_eq!(spike.expected, 10.0);
        // An all-zero baseline: only the money floors apply.
        assert!(judge(&[0.0; 14], 5.0, 3.0, 1.0).anomalous);
        assert!(!judge(&[0.0; 14], 0.5, 3.0, 1.0).anomalous);
        // One earlier spike in the baseline does not hide the next.
        let mut with_spike = steady;
        with_spike[3] = 80.0;
        assert!(judge(&with_spike, 60.0, 3.0, 1.0).anomalous);
    }

    #[test]
    fn scores_stay_finite_and_in_dollars_over_a_flat_baseline() {
        // Issue #18: 316.19 against a zero baseline scored 316192819112.2.
        let v = judge(&[0.0; 14], 316.19, 3.0, 5.0);
        assert!(v.anomalous);
        assert!((v.score - 316.19).abs() < 1e-9, "{}", v.score);
        let flat = judge(&[100.0; 14], 100.0 + 1e-12, 3.0, 5.0);
        assert!(!flat.anomalous && flat.score.abs() < 1e-9);
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(judge(&[x; 14], 10.0, 3.0, 1.0).score.is_finite());
            assert!(judge(&[1.0; 14], x, 3.0, 1.0).score.is_finite());
        }
        assert!(judge(&[], 10.0, 3.0, 1.0).score.is_finite());
    }

    #[test]
    fn a_day_needs_fourteen_days_of_data_and_of_the_group() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let start = d("2026-01-01");
        // The 15th is the first day with 14 days of data before it.
        assert_eq!(
            history(d("2026-01-14"), start, start),
            History::DataTooShort
        );
        assert_eq!(history(d("2026-01-15"), start, start), History::Full);
        // A group first seen on the 3rd: its history starts near the data's start.
        assert_eq!(
            history(d("2026-01-16"), start, d("2026-01-03")),
            History::DataTooShort
        );
        assert_eq!(
            history(d("2026-01-17"), start, d("2026-01-03")),
            History::Full
        );
        // First seen after 14 days of data without it: new, until it has 14 days of its own.
        assert_eq!(
            history(d("2026-01-20"), start, d("2026-01-15")),
            History::NewGroup
        );
        assert_eq!(
            history(d("2026-01-28"), start, d("2026-01-15")),
            History::NewGroup
        );
        assert_eq!(
            history(d("2026-01-29"), start, d("2026-01-15")),
            History::Full
        );
    }
}
