//! The shapes of AWS names the server takes from its callers and flags: region codes and IAM
//! role ARNs. Checked before a name sizes any work (an account, a cache entry, a file name).

/// An AWS region code: a 2-4 letter area, lowercase letter parts, then a number 1-20 without a
/// leading zero (us-east-1, us-gov-west-1, cn-northwest-1, us-isob-east-1, eusc-de-east-1).
pub fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    let Some((last, named)) = parts.split_last() else {
        return false;
    };
    (5..=32).contains(&r.len())
        && named.len() >= 2
        && (2..=4).contains(&named[0].len())
        && named
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.starts_with('0')
        && last.bytes().all(|b| b.is_ascii_digit())
        && last.parse::<u8>().is_ok_and(|n| (1..=20).contains(&n))
}

/// `arn:<partition>:iam::<account>:role/<path/name>`; `*` allowed in patterns.
pub fn valid_role_arn(arn: &str, pattern: bool) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let account_ok = |a: &str| {
        (a.len() == 12 && a.chars().all(|c| c.is_ascii_digit())) || (pattern && a.contains('*'))
    };
    parts.len() == 6
        && parts[0] == "arn"
        && (parts[1].starts_with("aws") || (pattern && parts[1] == "*"))
        && parts[2] == "iam"
        && parts[3].is_empty()
        && account_ok(parts[4])
        && parts[5].len() > "role/".len()
        && parts[5].starts_with("role/")
        && (pattern || !arn.contains('*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes_are_recognised() {
        for ok in [
            "us-east-1",
            "us-gov-west-1",
            "cn-north-1",
            "eu-central-2",
            "ap-southeast-5",
            "us-isob-east-1",
            "mx-central-1",
            "eusc-de-east-1",
        ] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "us-east-01",
            "us-east-1/../../x",
            "us_east_1",
            "u-east-1",
            "us--1",
            "us-east-1 ",
            &"a".repeat(40),
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
    }
}
