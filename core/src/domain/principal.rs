//! IAM principal ARNs as CUR 2.0 records them in `line_item_iam_principal`.
//!
//! Users appear as `arn:aws:iam::A:user/path/name`; roles as the assumed-role
//! session `arn:aws:sts::A:assumed-role/Role/session`. Grouping "per role"
//! strips the session name; the role's IAM path is not in the session ARN, so
//! roles are matched against IAM by name
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns>).

/// What kind of principal an ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    AssumedRole,
    Role,
    FederatedUser,
    Root,
    Other,
}

/// A parsed principal ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal<'a> {
    pub arn: &'a str,
    pub partition: &'a str,
    pub account: &'a str,
    pub kind: PrincipalKind,
    /// User name or role name (without path).
    pub name: &'a str,
    /// Session name for assumed roles.
    pub session: Option<&'a str>,
}

impl<'a> Principal<'a> {
    pub fn parse(arn: &'a str) -> Option<Principal<'a>> {
        let mut parts = arn.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let partition = parts.next()?;
        let _service = parts.next()?;
        let _region = parts.next()?;
        let account = parts.next()?;
        let resource = parts.next()?;
        let (kind, rest) = resource.split_once('/').unwrap_or((resource, ""));
        let (kind, name, session) = match kind {
            "user" => (
                PrincipalKind::User,
                rest.rsplit('/').next().unwrap_or(rest),
                None,
            ),
            "role" => (
                PrincipalKind::Role,
                rest.rsplit('/').next().unwrap_or(rest),
                None,
            ),
            "assumed-role" => {
                let (role, session) = rest.split_once('/').unwrap_or((rest, ""));
                (PrincipalKind::AssumedRole, role, Some(session))
            }
            "federated-user" => (PrincipalKind::FederatedUser, rest, None),
            "root" => (PrincipalKind::Root, "root", None),
            _ => (PrincipalKind::Other, rest, None),
        };
        Some(Principal {
            arn,
            partition,
            account,
            kind,
            name,
            session,
        })
    }

    /// The role behind an assumed-role session (`arn:aws:iam::A:role/R`); other
    /// principals are returned as they are.
    pub fn role_arn(&self) -> String {
        match self.kind {
            PrincipalKind::AssumedRole => {
                format!(
                    "arn:{}:iam::{}:role/{}",
                    self.partition, self.account, self.name
                )
            }
            _ => self.arn.to_string(),
        }
    }
}

/// Role grouping key for any ARN string; unparseable values are kept as-is.
pub fn role_of(arn: &str) -> String {
    Principal::parse(arn)
        .map(|p| p.role_arn())
        .unwrap_or_else(|| arn.to_string())
}

/// Session name of an assumed-role ARN, or empty.
pub fn session_of(arn: &str) -> String {
    Principal::parse(arn)
        .and_then(|p| p.session.map(str::to_string))
        .unwrap_or_default()
}

/// Shell-style glob with `*` (any run) and `?` (one character); case-sensitive.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        // A `*` in the pattern is always a wildcard, even where the text has a `*`.
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Does every text `requested` can match also match `granted`? Both are globs (`*` any run,
/// `?` one character). Sound, not complete: `true` is a proof, `false` may be a request that
/// is inside in fact but cannot be shown to be (it is refused). A `*` of the request must lie
/// inside a `*` of the grant; a `?` of the request inside a `?` or a `*`; a literal character
/// inside the same literal, a `?` or a `*`. O(|granted| x |requested|).
pub fn glob_covers(granted: &str, requested: &str) -> bool {
    let g: Vec<char> = granted.chars().collect();
    let r: Vec<char> = requested.chars().collect();
    // row[j]: granted[..i] covers requested[..j].
    let mut row = vec![false; r.len() + 1];
    row[0] = true;
    for &gc in &g {
        let mut next = vec![false; r.len() + 1];
        if gc == '*' {
            // The star covers the empty run, then absorbs any request token.
            next[0] = row[0];
            for j in 1..=r.len() {
                next[j] = row[j] || next[j - 1];
            }
        } else {
            for j in 1..=r.len() {
                let rc = r[j - 1];
                let one = match gc {
                    '?' => rc != '*',
                    c => rc == c && rc != '*' && rc != '?',
                };
                next[j] = row[j - 1] && one;
            }
        }
        row = next;
    }
    row[r.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_cover_is_sound() {
        for (g, r, want) in [
            ("arn:aws:iam::1:role/ml-*", "arn:aws:iam::1:role/ml-x", true),
            ("arn:aws:iam::1:role/ml-*", "arn:aws:iam::1:role/ml-*", true),
            (
                "arn:aws:iam::1:role/ml-*",
                "arn:aws:iam::1:role/ml-a*b?",
                true,
            ),
            ("arn:aws:iam::1:role/ml-*", "arn:aws:iam::1:role/*", false),
            (
                "arn:aws:iam::1:role/ml-*",
                "arn:aws:iam::*:role/ml-*",
                false,
            ),
            // A `?` grants one character, never a request's `*` or `?`... of any length.
            ("arn:aws:iam::1:role/A?", "arn:aws:iam::1:role/A*", false),
            ("arn:aws:iam::1:role/A?", "arn:aws:iam::1:role/A?", true),
            ("arn:aws:iam::1:role/AB", "arn:aws:iam::1:role/A?", false),
            ("*", "anything*at?all", true),
            ("a*b*c", "a*x*b*y*c", true),
            ("a*b*c", "a*c", false),
            ("", "", true),
            ("", "*", false),
        ] {
            assert_eq!(glob_covers(g, r), want, "{g} covers {r}");
        }
        // Whenever it says yes, every sample text of the request matches the grant.
        let samples = ["", "x", "ab", "a*b", "role/ml-", "role/ml-zz"];
        for g in ["role/ml-*", "*ml*", "role/?l-*", "r*"] {
            for r in [
                "role/ml-*",
                "role/ml-?",
                "*",
                "role/*",
                "r?le/ml-x",
                "role/ml-a*",
            ] {
                if glob_covers(g, r) {
                    for fill in samples {
                        let text = r.replace('*', fill).replace('?', "q");
                        assert!(glob_match(g, &text), "{g} covers {r} but not {text}");
                    }
                }
            }
        }
    }

    #[test]
    fn parses_users_and_sessions() {
        let u = Principal::parse("arn:aws:iam::123456789012:user/eng/alice").unwrap();
        assert_eq!(
            (u.kind, u.name, u.account),
            (PrincipalKind::User, "alice", "123456789012")
        );
        assert_eq!(u.role_arn(), "arn:aws:iam::123456789012:user/eng/alice");
        let s = Principal::parse("arn:aws:sts::123456789012:assumed-role/AppRole/bob@acme.org")
            .unwrap();
        assert_eq!(s.kind, PrincipalKind::AssumedRole);
        assert_eq!(s.session, Some("bob@acme.org"));
        assert_eq!(s.role_arn(), "arn:aws:iam::123456789012:role/AppRole");
        let g = Principal::parse("arn:aws-us-gov:sts::1:assumed-role/R/s").unwrap();
        assert_eq!(g.role_arn(), "arn:aws-us-gov:iam::1:role/R");
        assert_eq!(role_of("not-an-arn"), "not-an-arn");
        assert_eq!(session_of("arn:aws:iam::1:user/x"), "");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match(
            "arn:aws:sts::*:assumed-role/Agent*/*",
            "arn:aws:sts::1:assumed-role/AgentRunner/s-1"
        ));
        assert!(!glob_match("*/alice", "arn:aws:iam::1:user/alicex"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn star_is_a_wildcard_even_against_a_star() {
        // Found by fuzz/fuzz_targets/principal_arn.rs: the pattern's `*` was first
        // compared literally with the text's `*`, so "*" did not match "*x".
        assert!(glob_match("*", "*x"));
        assert!(glob_match("a*", "a*b"));
        assert!(glob_match("*/R", "*arn:aws:iam::1:role/x/R"));
        assert!(glob_match("*x*", "**x"));
    }
}
