//! Static bearer tokens from a TOML file, stored hashed.
//!
//! ```toml
//! [[token]]
//! name = "ide-alice"                 # shown in the access log
//! sha256 = "9f86d08..."              # hex SHA-256 of the token: `bedrock-cost-mcp hash-token`
//! scopes = ["cost.read"]             # add "cost.write" for the write tools
//! # Optional: what this caller may see (default: everything).
//! visibility = { tag_key = "team", tag_values = ["ml-platform"] }
//! # or: visibility = { principals = ["arn:aws:iam::123456789012:role/ml-*"] }
//! # A blank value ("") is untagged spend: granted only with allow_untagged = true.
//! ```
//!
//! A visibility that would grant nothing (a tag key without values, only blank values without
//! `allow_untagged`, no principal) is refused when the file is loaded: it is a mistake, and a
//! token that silently saw everything or nothing would hide it.
//!
//! Tokens are compared by hashing the presented token and comparing the 32-byte digests in
//! constant time against every entry (no early exit), so neither the match nor its position
//! leaks through timing.

use serde::Deserialize;

use super::{Caller, SCOPE_READ, Visibility};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "token")]
    tokens: Vec<RawToken>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    sha256: String,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    #[serde(default)]
    visibility: Option<RawVisibility>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVisibility {
    #[serde(default)]
    tag_key: Option<String>,
    #[serde(default)]
    tag_values: Vec<String>,
    #[serde(default)]
    principals: Vec<String>,
    /// Grant untagged spend (the blank tag value) too.
    #[serde(default)]
    allow_untagged: bool,
}

fn default_scopes() -> Vec<String> {
    vec![SCOPE_READ.to_string()]
}

struct Entry {
    digest: [u8; 32],
    caller: Caller,
}

/// The loaded token file.
pub struct TokenFile {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: digests stay out of logs too.
        f.debug_struct("TokenFile")
            .field(
                "names",
                &self
                    .entries
                    .iter()
                    .map(|e| &e.caller.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// SHA-256 of a token.
pub fn digest(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex of a token's SHA-256 (what the file stores).
pub fn digest_hex(token: &str) -> String {
    digest(token).iter().map(|b| format!("{b:02x}")).collect()
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for i in 0..32 {
        diff |= a[i] ^ b[i];
    }
    std::hint::black_box(diff) == 0
}

impl TokenFile {
    pub fn load(path: &std::path::Path) -> Result<TokenFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--auth-tokens {}: {e}", path.display()))?;
        TokenFile::parse(&text).map_err(|e| format!("--auth-tokens {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<TokenFile, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if raw.tokens.is_empty() {
            return Err("no [[token]] entries".into());
        }
        let mut entries = Vec::new();
        let mut names = std::collections::HashSet::new();
        for t in raw.tokens {
            if !names.insert(t.name.clone()) {
                return Err(format!("token name '{}' appears twice", t.name));
            }
            let hex = t.sha256.trim().to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "token '{}': sha256 must be 64 hex digits (make one with `bedrock-cost-mcp hash-token`)",
                    t.name
                ));
            }
            let mut digest = [0u8; 32];
            for (i, d) in digest.iter_mut().enumerate() {
                *d = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
            }
            for s in &t.scopes {
                if !crate::domain::visibility::SCOPES.contains(&s.as_str()) {
                    return Err(format!(
                        "token '{}': unknown scope '{s}'; use {}",
                        t.name,
                        crate::domain::visibility::SCOPES.join(", ")
                    ));
                }
            }
            let visibility = match &t.visibility {
                None => None,
                Some(v) => {
                    if v.tag_key.is_some() && !v.principals.is_empty() {
                        return Err(format!(
                            "token '{}': give visibility by tag (tag_key, tag_values) or by principals, not both",
                            t.name
                        ));
                    }
                    if let Some(k) = &v.tag_key
                        && !crate::domain::group::valid_tag_key(k)
                    {
                        return Err(format!("token '{}': '{k}' is not a valid tag key", t.name));
                    }
                    let vis = Visibility::new(
                        v.tag_key.as_deref(),
                        &v.tag_values,
                        &v.principals,
                        v.allow_untagged,
                    );
                    if let Some(why) = vis.grants_nothing() {
                        return Err(format!(
                            "token '{}': {why}; list what it may see (tag_values, principals), or remove visibility to let it see everything",
                            t.name
                        ));
                    }
                    Some(vis)
                }
            };
            entries.push(Entry {
                digest,
                caller: Caller {
                    name: t.name,
                    scopes: t.scopes,
                    visibility,
                },
            });
        }
        Ok(TokenFile { entries })
    }

    /// The caller a token belongs to, if any. Checks every entry.
    pub fn lookup(&self, token: &str) -> Option<Caller> {
        let d = digest(token);
        let mut found = None;
        for e in &self.entries {
            if ct_eq(&d, &e.digest) {
                found = Some(e.caller.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_tokens_match_and_bad_files_say_why() {
        let file = format!(
            "[[token]]\nname = \"a\"\nsha256 = \"{}\"\n[[token]]\nname = \"b\"\nsha256 = \"{}\"\nscopes = [\"cost.read\", \"cost.write\"]\nvisibility = {{ tag_key = \"team\", tag_values = [\"ml\"] }}\n",
            digest_hex("secret-a"),
            digest_hex("secret-b").to_uppercase()
        );
        let t = TokenFile::parse(&file).unwrap();
        assert_eq!(t.lookup("secret-a").unwrap().scopes, vec!["cost.read"]);
        let b = t.lookup("secret-b").unwrap();
        assert!(b.has_scope("cost.write"));
        assert!(b.visibility.unwrap().allows(None, Some("ml")));
        assert!(t.lookup("secret-c").is_none());
        assert!(!format!("{t:?}").contains(&digest_hex("secret-a")));
        for (bad, why) in [
            ("", "no [[token]]"),
            ("[[token]]\nname=\"x\"\nsha256=\"abc\"\n", "64 hex"),
            (
                &format!(
                    "[[token]]\nname=\"x\"\nsha256=\"{}\"\nscopes=[\"admin\"]\n",
                    digest_hex("x")
                ),
                "unknown scope",
            ),
            (
                &format!(
                    "[[token]]\nname=\"x\"\nsha256=\"{}\"\nvisibility = {{ tag_key = \"team\" }}\n",
                    digest_hex("x")
                ),
                "grants nothing",
            ),
            (
                &format!(
                    "[[token]]\nname=\"x\"\nsha256=\"{}\"\nvisibility = {{ tag_key = \"team\", tag_values = [\"\"] }}\n",
                    digest_hex("x")
                ),
                "allow_untagged",
            ),
            (
                &format!(
                    "[[token]]\nname=\"x\"\nsha256=\"{}\"\nvisibility = {{ principals = [\"\"] }}\n",
                    digest_hex("x")
                ),
                "grants nothing",
            ),
        ] {
            let e = TokenFile::parse(bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
