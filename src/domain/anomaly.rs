//! Spike detection on daily spend: a day is anomalous when it exceeds the
//! principal's own trailing baseline by more than `k` robust standard
//! deviations: `actual > median + k * max(1.4826 * MAD, 10% of median)` over
//! the previous `window` days (days without spend count as 0), and by at
//! least `min_increase` in money. The median and MAD ignore a few bad days,
//! so one earlier spike does not hide the next; the 10% floor keeps a
//! perfectly flat series from alarming on noise.

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
    /// (actual - expected) in robust standard deviations.
    pub score: f64,
    pub anomalous: bool,
}

/// Judge `actual` against the trailing `baseline` (oldest first).
pub fn judge(baseline: &[f64], actual: f64, k: f64, min_increase: f64) -> Verdict {
    let m = median(baseline);
    let deviations: Vec<f64> = baseline.iter().map(|x| (x - m).abs()).collect();
    let sigma = (1.4826 * median(&deviations)).max(0.1 * m).max(1e-9);
    let threshold = m + k * sigma;
    let score = (actual - m) / sigma;
    Verdict {
        expected: m,
        threshold,
        score,
        anomalous: actual > threshold && actual - m >= min_increase,
    }
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
        // A new principal with no history: only the money floor applies.
        assert!(judge(&[0.0; 14], 5.0, 3.0, 1.0).anomalous);
        assert!(!judge(&[0.0; 14], 0.5, 3.0, 1.0).anomalous);
        // One earlier spike in the baseline does not hide the next.
        let mut with_spike = steady;
        with_spike[3] = 80.0;
        assert!(judge(&with_spike, 60.0, 3.0, 1.0).anomalous);
    }
}
