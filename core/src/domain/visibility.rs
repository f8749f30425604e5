//! What an authenticated caller may see of the organisation's spend: principals whose
//! `iamPrincipal/<key>` tag has one of some values, and/or principals whose ARN matches one of
//! some globs. A caller with no visibility at all (stdio, unauthenticated loopback, a token
//! without one) sees everything; that is `Option::None` where a visibility is held.
//!
//! A visibility is never empty-and-permissive: it is built only by [`Visibility::new`], which
//! turns an empty or malformed grant (a tag key with no values, only blank values, blank globs)
//! into [`Visibility::nothing`], which grants nothing and carries the reason to tell the caller.
//! Untagged spend (the empty tag value) is granted only when the configuration opts in.

/// Longest principal glob a visibility or a filter may hold (IAM ARNs are at most 2048
/// characters; a glob past this is an attack, not a principal).
pub const MAX_GLOB_CHARS: usize = 2048;

#[derive(Debug, Clone, PartialEq)]
pub struct Visibility(Inner);

#[derive(Debug, Clone, PartialEq)]
enum Inner {
    Grant {
        /// The tag key and its values (never empty; "" is untagged, only when allowed).
        tag: Option<(String, Vec<String>)>,
        /// ARN globs (never blank).
        principals: Vec<String>,
    },
    Nothing(String),
}

impl Visibility {
    /// A grant by tag values and/or principal globs. Values and globs are trimmed; blank globs
    /// are dropped; the blank tag value (untagged spend) is kept only with `allow_untagged`.
    /// Whatever remains empty grants nothing, and the result says why.
    pub fn new(
        tag_key: Option<&str>,
        tag_values: &[String],
        principals: &[String],
        allow_untagged: bool,
    ) -> Visibility {
        let mut why = Vec::new();
        let tag = match tag_key.map(str::trim) {
            None | Some("") => {
                if !tag_values.is_empty() {
                    why.push("tag values were given without a tag key".to_string());
                }
                None
            }
            Some(key) => {
                let mut values: Vec<String> = Vec::new();
                let mut blank = false;
                for v in tag_values.iter().map(|v| v.trim()) {
                    if v.is_empty() {
                        blank = true;
                        if !allow_untagged {
                            continue;
                        }
                    }
                    if !values.iter().any(|x| x == v) {
                        values.push(v.to_string());
                    }
                }
                if values.is_empty() {
                    why.push(if blank {
                        format!(
                            "its only iamPrincipal/{key} value is blank (untagged spend), which this server grants only with allow_untagged"
                        )
                    } else {
                        format!("it names the tag key iamPrincipal/{key} but no value of it")
                    });
                    None
                } else {
                    Some((key.to_string(), values))
                }
            }
        };
        let mut globs: Vec<String> = Vec::new();
        for g in principals.iter().map(|g| g.trim()) {
            if g.is_empty() {
                continue;
            }
            if g.chars().count() > MAX_GLOB_CHARS {
                why.push(format!(
                    "a principal glob is longer than {MAX_GLOB_CHARS} characters"
                ));
                continue;
            }
            if !globs.iter().any(|x| x == g) {
                globs.push(g.to_string());
            }
        }
        if tag.is_none() && globs.is_empty() {
            if why.is_empty() {
                why.push("it names no tag value and no principal".into());
            }
            return Visibility::nothing(format!(
                "this caller's visibility grants nothing: {}",
                why.join("; ")
            ));
        }
        Visibility(Inner::Grant {
            tag,
            principals: globs,
        })
    }

    /// A visibility that grants nothing, for the reason given.
    pub fn nothing(why: impl Into<String>) -> Visibility {
        Visibility(Inner::Nothing(why.into()))
    }

    /// Why this visibility grants nothing (None: it grants something).
    pub fn grants_nothing(&self) -> Option<&str> {
        match &self.0 {
            Inner::Nothing(why) => Some(why),
            Inner::Grant { .. } => None,
        }
    }

    /// The tag key and its granted values (never an empty list).
    pub fn tag(&self) -> Option<(&str, &[String])> {
        match &self.0 {
            Inner::Grant {
                tag: Some((k, v)), ..
            } => Some((k, v)),
            _ => None,
        }
    }

    /// The granted principal globs.
    pub fn principals(&self) -> &[String] {
        match &self.0 {
            Inner::Grant { principals, .. } => principals,
            Inner::Nothing(_) => &[],
        }
    }

    /// May the caller see a principal with this ARN and this value of the visibility's tag key
    /// (None: untagged or unknown)?
    pub fn allows(&self, arn: Option<&str>, tag: Option<&str>) -> bool {
        if let Some((_, values)) = self.tag() {
            let v = tag.unwrap_or("");
            if values.iter().any(|t| t == v) {
                return true;
            }
        }
        match arn {
            Some(a) => self
                .principals()
                .iter()
                .any(|g| super::principal::glob_match(g, a)),
            None => false,
        }
    }

    /// Is the tag value `v` of key `key` inside this visibility ("" is untagged)?
    pub fn allows_tag(&self, key: &str, v: &str) -> bool {
        self.tag()
            .is_some_and(|(k, values)| k == key && values.iter().any(|t| t == v))
    }

    /// Is every principal a requested glob can match inside one granted glob? Sound, not
    /// complete: a request it cannot prove inside is refused.
    pub fn covers_glob(&self, requested: &str) -> bool {
        self.principals()
            .iter()
            .any(|g| super::principal::glob_covers(g, requested))
    }

    /// One line for error messages.
    pub fn describe(&self) -> String {
        match &self.0 {
            Inner::Nothing(why) => why.clone(),
            Inner::Grant { tag, principals } => {
                let mut parts = Vec::new();
                if let Some((k, values)) = tag {
                    let shown: Vec<&str> = values
                        .iter()
                        .map(|v| if v.is_empty() { "(untagged)" } else { v })
                        .collect();
                    parts.push(format!("iamPrincipal/{k} in [{}]", shown.join(", ")));
                }
                if !principals.is_empty() {
                    parts.push(format!("principals matching [{}]", principals.join(", ")));
                }
                parts.join(" or ")
            }
        }
    }
}

/// Scope that every MCP request needs.
pub const SCOPE_READ: &str = "cost.read";
/// Scope that the write tools (tagging, activating tags) additionally need.
pub const SCOPE_WRITE: &str = "cost.write";
/// Scope that `setup` needs besides `cost.write`: it creates exports, buckets, tables.
pub const SCOPE_SETUP: &str = "cost.setup";
/// Every scope a token or JWT may grant.
pub const SCOPES: [&str; 3] = [SCOPE_READ, SCOPE_WRITE, SCOPE_SETUP];

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// Token name or JWT subject, for logs; never the token.
    pub name: String,
    pub scopes: Vec<String>,
    /// What this caller may see; None: everything.
    pub visibility: Option<Visibility>,
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whoever runs work outside any tool call (a task spawned without the call's scope): it
    /// may see nothing, and its paid requests are charged to a share of its own.
    fn unknown() -> Caller {
        Caller {
            name: "(outside a tool call)".into(),
            scopes: vec![],
            visibility: Some(Visibility::nothing(
                "this work runs outside a tool call, so whose it is is not known",
            )),
        }
    }
}

tokio::task_local! {
    /// The caller of the tool call running on this task: set once, at dispatch ([`run_as`]).
    static CALLER: Option<std::sync::Arc<Caller>>;
}

/// Run one tool call as `caller` (None: stdio, the command line, or unauthenticated loopback
/// HTTP, which see everything). This is the only way the caller travels: the answers' scope and
/// the per-caller share of paid requests both read it with [`current`].
pub async fn run_as<F: std::future::Future>(
    caller: Option<std::sync::Arc<Caller>>,
    call: F,
) -> F::Output {
    CALLER.scope(caller, call).await
}

/// The caller of the tool call this runs in. Outside any call (a task spawned without the
/// call's scope, or code that was never dispatched) the answer is a caller that may see
/// nothing: fail closed, never "everything".
pub fn current() -> Option<std::sync::Arc<Caller>> {
    CALLER
        .try_with(Clone::clone)
        .unwrap_or_else(|_| Some(std::sync::Arc::new(Caller::unknown())))
}

/// What the dispatch tells the guard about one request (shared through the request's
/// extensions; rmcp hands the request parts to the handler).
#[derive(Clone, Default)]
pub struct RequestNote(std::sync::Arc<std::sync::Mutex<NoteInner>>);

/// What a [`RequestNote`] holds.
#[derive(Default)]
pub struct NoteInner {
    pub rpc: Option<String>,
    pub tool: Option<String>,
    /// The JSON-RPC id, as JSON text.
    pub id: Option<String>,
    /// A tool was refused for want of this scope.
    pub denied: Option<(String, String)>,
}

impl RequestNote {
    /// Read or change the note.
    pub fn with<R>(&self, f: impl FnOnce(&mut NoteInner) -> R) -> R {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// A tool call, as dispatched (the decoded name and id).
    pub fn call(&self, tool: &str, id: &str) {
        self.with(|n| {
            n.rpc = Some("tools/call".into());
            n.tool = Some(tool.chars().take(64).collect());
            n.id = Some(id.to_string());
        });
    }

    /// The tool needs a scope the caller lacks; the guard answers 403 with a challenge.
    pub fn denied(&self, tool: &str, scope: &str) {
        self.with(|n| n.denied = Some((tool.to_string(), scope.to_string())));
    }
}

#[cfg(test)]
mod caller_tests {
    use super::*;

    #[test]
    fn outside_a_call_the_caller_sees_nothing() {
        let c = current().expect("a caller");
        assert!(c.visibility.as_ref().unwrap().grants_nothing().is_some());
    }

    #[test]
    fn inside_a_call_the_caller_is_the_one_dispatched() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(run_as(None, async { current() }).await.is_none());
            let alice = std::sync::Arc::new(Caller {
                name: "alice".into(),
                scopes: vec![SCOPE_READ.into()],
                visibility: None,
            });
            let seen = run_as(Some(alice), async { current() }).await.unwrap();
            assert_eq!(seen.name, "alice");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(std::string::ToString::to_string).collect()
    }

    #[test]
    fn empty_or_malformed_grants_nothing_and_says_why() {
        for (key, values, principals, why) in [
            (Some("team"), s(&[]), s(&[]), "no value"),
            (Some("team"), s(&["", "  "]), s(&[]), "allow_untagged"),
            (None, s(&["ml"]), s(&[]), "without a tag key"),
            (None, s(&[]), s(&["", " "]), "no tag value and no principal"),
            (Some(" "), s(&[]), s(&[]), "no tag value and no principal"),
        ] {
            let v = Visibility::new(key, &values, &principals, false);
            let got = v
                .grants_nothing()
                .unwrap_or_else(|| panic!("{key:?} {values:?}"));
            assert!(got.contains(why), "{got}");
            assert!(!v.allows(Some("arn:aws:iam::1:user/a"), None));
            assert!(!v.allows(None, Some("")));
            assert!(v.tag().is_none() && v.principals().is_empty());
        }
    }

    #[test]
    fn untagged_needs_the_opt_in() {
        let v = Visibility::new(Some("team"), &s(&["ml", ""]), &[], false);
        assert_eq!(v.tag(), Some(("team", &s(&["ml"])[..])));
        assert!(!v.allows(None, None));
        let v = Visibility::new(Some("team"), &s(&[""]), &[], true);
        assert!(v.allows(None, None) && v.allows_tag("team", ""));
        assert!(!v.allows_tag("team", "ml"));
    }

    #[test]
    fn grants_by_tag_or_principal() {
        let v = Visibility::new(
            Some("team"),
            &s(&["ml"]),
            &s(&["arn:aws:iam::1:role/ml-*"]),
            false,
        );
        assert!(v.allows(None, Some("ml")));
        assert!(!v.allows(None, Some("web")));
        assert!(v.allows(Some("arn:aws:iam::1:role/ml-x"), None));
        assert!(!v.allows(Some("arn:aws:iam::2:role/ml-x"), None));
        assert!(v.covers_glob("arn:aws:iam::1:role/ml-batch-*"));
        assert!(!v.covers_glob("arn:aws:iam::*:role/ml-*"));
        assert_eq!(
            v.describe(),
            "iamPrincipal/team in [ml] or principals matching [arn:aws:iam::1:role/ml-*]"
        );
    }
}
