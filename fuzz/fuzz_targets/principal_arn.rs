//! Principal ARN parsing and globs (`core/src/domain/principal.rs`).
//!
//! Invariants: no panic; the parts of a parsed ARN are pieces of it; the role
//! ARN of an assumed-role session parses back as that role; role/session
//! keys are consistent; every text matches itself and `*` as a glob.
#![no_main]

use libfuzzer_sys::fuzz_target;
use bedrock_cost_core::domain::principal::{Principal, PrincipalKind, glob_match, role_of, session_of};

// The input is `ARN` or `ARN\nGLOB`.
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (arn, pattern) = text.split_once('\n').unwrap_or((text, "*"));
    let role = role_of(arn);
    let session = session_of(arn);
    match Principal::parse(arn) {
        None => {
            assert_eq!(role, arn);
            assert_eq!(session, "");
        }
        Some(p) => {
            assert_eq!(p.arn, arn);
            assert!(arn.starts_with("arn:"));
            assert!(!p.partition.contains(':') && !p.account.contains(':'));
            assert!(arn.contains(p.name));
            assert_eq!(role, p.role_arn());
            match p.kind {
                PrincipalKind::AssumedRole => {
                    let s = p.session.expect("a session");
                    assert_eq!(session, s);
                    assert!(!p.name.contains('/'));
                    let r = Principal::parse(&role).expect("a role ARN parses");
                    assert_eq!(
                        (r.kind, r.partition, r.account, r.name),
                        (PrincipalKind::Role, p.partition, p.account, p.name),
                        "{arn} -> {role}"
                    );
                    // Grouping by role is idempotent.
                    assert_eq!(role_of(&role), role);
                }
                _ => {
                    assert_eq!(role, arn);
                    assert!(p.session.is_none());
                }
            }
        }
    }
    // Globs.
    assert!(glob_match(arn, arn), "{arn:?} does not match itself");
    assert!(glob_match("*", arn));
    let _ = glob_match(pattern, arn);
    if !pattern.contains(['*', '?']) {
        assert_eq!(glob_match(pattern, arn), pattern == arn);
        assert!(glob_match(
            &format!("{pattern}*"),
            &format!("{pattern}{arn}")
        ));
    }
});
