//! Reporting periods: `start` inclusive, `end` exclusive, both ISO dates (UTC).
//!
//! Agents pass either a shortcut word (`last_month`) or an explicit range. The
//! same semantics as Cost Explorer's `TimePeriod`, so a month is
//! `{start: 2026-10-01, end: 2026-11-01}` and never "end inclusive".

use chrono::{Datelike, Duration, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A period as the caller wrote it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum PeriodInput {
    /// One of `this_month`, `month_to_date` (both: 1st of this month to tomorrow),
    /// `last_month`, `last_7_days`, `last_30_days` (full days ending yesterday).
    Word(String),
    /// Explicit range of ISO dates (YYYY-MM-DD): `start` inclusive, `end` exclusive.
    Range {
        /// First day counted (inclusive), YYYY-MM-DD.
        start: String,
        /// Day after the last day counted (exclusive), YYYY-MM-DD.
        end: String,
    },
}

impl Default for PeriodInput {
    fn default() -> Self {
        PeriodInput::Word("this_month".into())
    }
}

/// A resolved period: `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Period {
    /// First day counted (inclusive).
    pub start: NaiveDate,
    /// Day after the last day counted (exclusive).
    pub end: NaiveDate,
}

/// Why a period was refused; the text names the accepted forms.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum PeriodError {
    #[error(
        "unknown period word '{0}'; use one of this_month, month_to_date, last_month, last_7_days, last_30_days, or an object {{\"start\": \"YYYY-MM-DD\", \"end\": \"YYYY-MM-DD\"}} (end exclusive)"
    )]
    UnknownWord(String),
    #[error("'{value}' is not a date in {field}; write it as YYYY-MM-DD, e.g. 2026-10-01")]
    BadDate { field: &'static str, value: String },
    #[error(
        "end {end} must be after start {start} (end is exclusive: a single day D is {{\"start\": \"D\", \"end\": \"D+1\"}})"
    )]
    EndNotAfterStart { start: NaiveDate, end: NaiveDate },
    #[error(
        "start {start} is in the future (today is {today} UTC); billing data exists only up to today"
    )]
    FutureStart { start: NaiveDate, today: NaiveDate },
}

/// Days after a billing month ends during which AWS may still update its export.
pub const RESTATEMENT_DAYS: i64 = 14;

pub fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists in every month")
}

/// First day of the month after `d`'s month.
pub fn next_month(d: NaiveDate) -> NaiveDate {
    let f = first_of_month(d);
    if f.month() == 12 {
        NaiveDate::from_ymd_opt(f.year() + 1, 1, 1).expect("valid date")
    } else {
        NaiveDate::from_ymd_opt(f.year(), f.month() + 1, 1).expect("valid date")
    }
}

/// First day of the month before `d`'s month.
pub fn prev_month(d: NaiveDate) -> NaiveDate {
    let f = first_of_month(d);
    if f.month() == 1 {
        NaiveDate::from_ymd_opt(f.year() - 1, 12, 1).expect("valid date")
    } else {
        NaiveDate::from_ymd_opt(f.year(), f.month() - 1, 1).expect("valid date")
    }
}

/// Add (or subtract) whole months to the first of `d`'s month.
pub fn add_months(d: NaiveDate, months: i32) -> NaiveDate {
    let idx = d.year() * 12 + d.month0() as i32 + months;
    NaiveDate::from_ymd_opt(idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1, 1).expect("valid")
}

fn parse_date(field: &'static str, value: &str) -> Result<NaiveDate, PeriodError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .ok()
        // chrono also reads signed years of 5+ digits ("+262142-12-31"); month arithmetic
        // on those runs off the end of the calendar. A period needs four-digit years.
        .filter(|d| (1..=9999).contains(&d.year()))
        .ok_or_else(|| PeriodError::BadDate {
            field,
            value: value.to_string(),
        })
}

impl PeriodInput {
    /// Resolve against `today` (UTC). Rejects end <= start and future starts.
    pub fn resolve(&self, today: NaiveDate) -> Result<Period, PeriodError> {
        let tomorrow = today + Duration::days(1);
        let p = match self {
            PeriodInput::Word(w) => match w.trim().to_ascii_lowercase().as_str() {
                "this_month" | "month_to_date" => Period {
                    start: first_of_month(today),
                    end: tomorrow,
                },
                "last_month" => Period {
                    start: prev_month(today),
                    end: first_of_month(today),
                },
                "last_7_days" => Period {
                    start: today - Duration::days(7),
                    end: today,
                },
                "last_30_days" => Period {
                    start: today - Duration::days(30),
                    end: today,
                },
                _ => return Err(PeriodError::UnknownWord(w.clone())),
            },
            PeriodInput::Range { start, end } => Period {
                start: parse_date("start", start)?,
                end: parse_date("end", end)?,
            },
        };
        if p.end <= p.start {
            return Err(PeriodError::EndNotAfterStart {
                start: p.start,
                end: p.end,
            });
        }
        if p.start > today {
            return Err(PeriodError::FutureStart {
                start: p.start,
                today,
            });
        }
        Ok(p)
    }
}

impl Period {
    /// Number of days covered.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    /// The same period with its end clamped to `limit` (used to stop at tomorrow).
    pub fn clamp_end(&self, limit: NaiveDate) -> Period {
        Period {
            start: self.start,
            end: self.end.min(limit).max(self.start + Duration::days(1)),
        }
    }

    /// Whether the whole period lies before the current month (closed billing months).
    pub fn is_closed(&self, today: NaiveDate) -> bool {
        self.end <= first_of_month(today)
    }

    /// Whether AWS may still change the figures: the period reaches into the current month, or
    /// its last month ended less than two weeks ago. "After the billing period ends, AWS may
    /// update the export delivery for the previous billing period within the first two weeks
    /// after it ended" (Data Exports user guide, "Understanding export delivery",
    /// <https://docs.aws.amazon.com/cur/latest/userguide/dataexports-export-delivery.html>).
    /// Whether the period is made of whole billing months: it starts on a 1st and ends on a 1st
    /// or after `today` (a month to date is all of that month's lines so far).
    pub fn whole_months(&self, today: NaiveDate) -> bool {
        self.start.day() == 1 && (self.end.day() == 1 || self.end > today)
    }

    pub fn may_be_restated(&self, today: NaiveDate) -> bool {
        let last_month = first_of_month(self.end - Duration::days(1));
        today < next_month(last_month) + Duration::days(RESTATEMENT_DAYS)
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} to {} (end exclusive)", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn w(s: &str) -> PeriodInput {
        PeriodInput::Word(s.into())
    }

    #[test]
    fn words_resolve_relative_to_today() {
        let today = d("2026-11-26");
        assert_eq!(
            w("last_month").resolve(today).unwrap(),
            Period {
                start: d("2026-10-01"),
                end: d("2026-11-01")
            }
        );
        assert_eq!(
            w("this_month").resolve(today).unwrap(),
            Period {
                start: d("2026-11-01"),
                end: d("2026-11-27")
            }
        );
        assert_eq!(
            w("month_to_date").resolve(today),
            w("this_month").resolve(today)
        );
        assert_eq!(
            w("last_7_days").resolve(today).unwrap(),
            Period {
                start: d("2026-11-19"),
                end: d("2026-11-26")
            }
        );
        assert_eq!(w("last_30_days").resolve(today).unwrap().days(), 30);
        assert_eq!(
            w("last_month").resolve(d("2026-01-15")).unwrap(),
            Period {
                start: d("2025-12-01"),
                end: d("2026-01-01")
            }
        );
    }

    #[test]
    fn bad_inputs_name_the_accepted_forms() {
        let today = d("2026-11-26");
        let e = w("yesterday-ish").resolve(today).unwrap_err();
        assert!(e.to_string().contains("last_month"), "{e}");
        let r = PeriodInput::Range {
            start: "2026-13-01".into(),
            end: "2026-12-01".into(),
        };
        assert!(
            r.resolve(today)
                .unwrap_err()
                .to_string()
                .contains("YYYY-MM-DD")
        );
        let r = PeriodInput::Range {
            start: "2026-10-05".into(),
            end: "2026-10-05".into(),
        };
        assert!(matches!(
            r.resolve(today),
            Err(PeriodError::EndNotAfterStart { .. })
        ));
        let r = PeriodInput::Range {
            start: "2026-12-01".into(),
            end: "2027-01-01".into(),
        };
        assert!(matches!(
            r.resolve(today),
            Err(PeriodError::FutureStart { .. })
        ));
    }

    #[test]
    fn years_beyond_four_digits_are_refused() {
        // Found with fuzz/fuzz_targets/period.rs: this end was accepted, and the CUR
        // source's month list then stepped past the last date chrono has and panicked.
        let today = d("2026-11-26");
        for end in ["+262142-12-31", "+12026-01-01", "262142-12-31"] {
            let r = PeriodInput::Range {
                start: "2026-01-01".into(),
                end: end.into(),
            };
            assert!(
                matches!(
                    r.resolve(today),
                    Err(PeriodError::BadDate { field: "end", .. })
                ),
                "{end}"
            );
        }
        let r = PeriodInput::Range {
            start: "2026-01-01".into(),
            end: "9999-12-31".into(),
        };
        assert!(r.resolve(today).is_ok());
    }

    #[test]
    fn months_may_be_restated_for_two_weeks_after_they_end() {
        let october = Period {
            start: d("2026-10-01"),
            end: d("2026-11-01"),
        };
        assert!(october.may_be_restated(d("2026-10-20")));
        assert!(october.may_be_restated(d("2026-11-14")));
        assert!(!october.may_be_restated(d("2026-11-15")));
        let december = Period {
            start: d("2026-12-30"),
            end: d("2027-01-01"),
        };
        assert!(december.may_be_restated(d("2027-01-14")));
        assert!(!december.may_be_restated(d("2027-01-15")));
    }

    #[test]
    fn month_arithmetic() {
        assert_eq!(add_months(d("2026-11-26"), -13), d("2025-10-01"));
        assert_eq!(add_months(d("2026-01-31"), -1), d("2025-12-01"));
        assert_eq!(next_month(d("2026-12-09")), d("2027-01-01"));
        assert!(
            Period {
                start: d("2026-10-01"),
                end: d("2026-11-01")
            }
            .is_closed(d("2026-11-26"))
        );
    }

    #[test]
    fn untagged_json_forms_parse() {
        let p: PeriodInput = serde_json::from_str("\"last_month\"").unwrap();
        assert_eq!(p, w("last_month"));
        let p: PeriodInput =
            serde_json::from_str(r#"{"start":"2026-10-01","end":"2026-11-01"}"#).unwrap();
        assert!(matches!(p, PeriodInput::Range { .. }));
    }
}
