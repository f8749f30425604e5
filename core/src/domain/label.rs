//! Short labels for tables and charts that never make two different values look the same.
//!
//! A principal ARN is shortened in its middle: the partition prefix goes
//! (`arn:aws:sts::123456789012:assumed-role/R/S` -> `123456789012:assumed-role/R/S`), then the
//! middle of the resource is cut with `…`, keeping the account, the kind, the start of the role
//! and the end of the session (where sessions differ). A set of labels is then widened where
//! two different values came out the same, up to the full value. The structured answers keep
//! the full values; only text and pictures are shortened.

/// `1234.5` -> `1,234.50`; negative amounts keep their sign.
pub fn fmt_money(x: f64) -> String {
    let neg = x < 0.0;
    let cents = (x.abs() * 100.0).round() as u128;
    let (units, frac) = (cents / 100, cents % 100);
    let digits = units.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!(
        "{}{grouped}.{frac:02}",
        if neg && cents > 0 { "-" } else { "" }
    )
}

/// `s` in at most `max` characters (when it can be: never fewer than 8), cut in the middle.
/// ARNs lose their prefix first, then the middle of the resource, then all of the account
/// but its last four digits (`…9012:`), keeping the kind while there is room.
pub fn shorten(s: &str, max: usize) -> String {
    let max = max.max(8);
    let len = |x: &str| x.chars().count();
    if len(s) <= max {
        return s.to_string();
    }
    let fields: Vec<&str> = s.splitn(6, ':').collect();
    if fields.len() == 6 && fields[0] == "arn" {
        let (account, resource) = (fields[4], fields[5]);
        let tail4: String = {
            let c: Vec<char> = account.chars().collect();
            c[c.len().saturating_sub(4)..].iter().collect()
        };
        let heads = if account.is_empty() {
            vec![String::new()]
        } else {
            vec![format!("{account}:"), format!("…{tail4}:")]
        };
        for head in &heads {
            if len(head) + len(resource) <= max {
                return format!("{head}{resource}");
            }
            // Keep the kind (`role/`, `assumed-role/`, `user/`) with at least 10 characters of
            // the rest; else the resource cut in its middle.
            if let Some((kind, rest)) = resource.split_once('/') {
                let room = max as isize - len(head) as isize - len(kind) as isize - 1;
                if room >= 10 {
                    return format!("{head}{kind}/{}", middle(rest, room as usize));
                }
            }
        }
        let head = heads.last().cloned().unwrap_or_default();
        let rest = resource.split_once('/').map(|(_, r)| r).unwrap_or(resource);
        let room = max as isize - len(&head) as isize;
        if room >= 6 {
            return format!("{head}{}", middle(rest, room as usize));
        }
    }
    middle(s, max)
}

/// `s` cut to `max` characters with `…` in the middle, keeping more of the end (where
/// session names and ids differ) than of the start.
fn middle(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1).max(2);
    let front = keep * 2 / 5;
    let back = keep - front;
    let mut out: String = chars[..front].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - back..]);
    out
}

/// Labels for `values` (same order), each at most `max` characters where that keeps them
/// apart; values that would print the same get longer labels, up to the full value.
pub fn distinct(values: &[&str], max: usize) -> Vec<String> {
    distinct_by(values, max, shorten)
}

/// [`distinct`] with another shortening (`short(value, max)`, which must return the value
/// itself once `max` reaches its length).
pub fn distinct_by(
    values: &[&str],
    max: usize,
    short: impl Fn(&str, usize) -> String,
) -> Vec<String> {
    let mut widths = vec![max; values.len()];
    let mut labels: Vec<String> = values.iter().map(|v| short(v, max)).collect();
    loop {
        let mut seen: std::collections::HashMap<&str, Vec<usize>> = Default::default();
        for (i, l) in labels.iter().enumerate() {
            seen.entry(l.as_str()).or_default().push(i);
        }
        let clashes: Vec<usize> = seen
            .into_values()
            .filter(|ix| ix.iter().any(|&i| values[i] != values[ix[0]]))
            .flatten()
            .filter(|&i| labels[i] != values[i])
            .collect();
        if clashes.is_empty() {
            return labels;
        }
        for i in clashes {
            widths[i] += 6;
            labels[i] = if widths[i] >= values[i].chars().count() {
                values[i].to_string()
            } else {
                short(values[i], widths[i])
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "arn:aws:sts::123456789012:assumed-role/InvoiceAgentRole/BedrockSession-7f3a9c";
    const B: &str = "arn:aws:sts::123456789012:assumed-role/InvoiceAgentRole/BedrockSession-2d81e0";
    const C: &str = "arn:aws:sts::210987654321:assumed-role/InvoiceAgentRole/BedrockSession-7f3a9c";

    #[test]
    fn shortens_in_the_middle_keeping_account_kind_and_tail() {
        let s = shorten(A, 48);
        assert!(s.chars().count() <= 48, "{s}");
        assert!(s.starts_with("123456789012:assumed-role/Invoice"), "{s}");
        assert!(s.ends_with("7f3a9c"), "{s}");
        assert_eq!(shorten("short", 60), "short");
        assert_eq!(
            shorten("arn:aws:iam::123456789012:role/InvoiceAgentRole", 60),
            "arn:aws:iam::123456789012:role/InvoiceAgentRole"
        );
        assert_eq!(
            shorten("arn:aws:iam::123456789012:role/InvoiceAgentRole", 40),
            "123456789012:role/InvoiceAgentRole"
        );
        assert_eq!(shorten("abcdefghijklmnop", 8), "ab…lmnop");
    }

    #[test]
    fn different_values_never_share_a_label() {
        for max in [8, 12, 20, 30, 44, 60] {
            let labels = distinct(&[A, B, C, A], max);
            assert_eq!(labels[0], labels[3]);
            assert_ne!(labels[0], labels[1], "{max}: {labels:?}");
            assert_ne!(labels[0], labels[2], "{max}: {labels:?}");
            assert_ne!(labels[1], labels[2], "{max}: {labels:?}");
        }
        // Values that differ only in the middle are widened up to the whole value.
        let (x, y) = ("aaaaaaaaaaXaaaaaaaaaa", "aaaaaaaaaaYaaaaaaaaaa");
        let l = distinct(&[x, y], 10);
        assert_ne!(l[0], l[1], "{l:?}");
    }
}

#[cfg(test)]
mod money_tests {
    use super::fmt_money;

    #[test]
    fn money_formats() {
        assert_eq!(fmt_money(1234.5), "1,234.50");
        assert_eq!(fmt_money(-25.0), "-25.00");
        assert_eq!(fmt_money(0.004), "0.00");
        assert_eq!(fmt_money(1_000_000.0), "1,000,000.00");
    }
}
