//! Per-caller scope: what an authenticated HTTP caller may see (see `domain::visibility`).
//! stdio and unauthenticated loopback HTTP have no caller and see everything; a caller whose
//! visibility grants nothing sees nothing, and is told why.
//!
//! Spend questions get the caller's visibility added to their filter (tag values on Cost
//! Explorer and CUR; principal globs on CUR/Athena only). Asking explicitly for something outside
//! it is an authorization error, never a silently empty answer.

use crate::domain::group::SpendQuery;
use crate::domain::visibility::Visibility;
use crate::error::ToolError;
use crate::sources::budgets::Subject;
use crate::usecases::context::Ctx;

impl Ctx {
    /// The caller of this tool call, set once at dispatch (`domain::visibility::run_as`).
    pub(crate) fn caller(&self) -> Option<std::sync::Arc<crate::domain::visibility::Caller>> {
        crate::domain::visibility::current()
    }

    /// The caller's visibility, if the caller is limited.
    pub(crate) fn visibility(&self) -> Option<Visibility> {
        self.caller().and_then(|c| c.visibility.clone())
    }

    pub(crate) fn forbidden(&self, what: &str) -> ToolError {
        let caller = self.caller();
        let (name, sees) = match &caller {
            Some(c) => (
                c.name.as_str(),
                c.visibility
                    .as_ref()
                    .map(Visibility::describe)
                    .unwrap_or_default(),
            ),
            None => ("-", String::new()),
        };
        ToolError::Forbidden(format!(
            "{what} is outside what caller '{name}' may see ({sees}); ask within that scope or use a token with a wider one"
        ))
    }

    /// Err when the caller's visibility grants nothing at all (with the reason).
    pub(crate) fn sees_anything(&self) -> Result<(), ToolError> {
        let visibility = self.visibility();
        match visibility.as_ref().and_then(Visibility::grants_nothing) {
            Some(why) => Err(ToolError::Forbidden(format!(
                "{why}. Ask the server's operator for a token that names what you may see"
            ))),
            None => Ok(()),
        }
    }

    /// Narrow a spend query to the caller's visibility. `cost_explorer`: the query goes to
    /// Cost Explorer, which cannot filter by principal ARN.
    pub(crate) fn scope_query(
        &self,
        q: &mut SpendQuery,
        cost_explorer: bool,
    ) -> Result<(), ToolError> {
        self.sees_anything()?;
        let Some(v) = self.visibility() else {
            return Ok(());
        };
        if let Some((key, values)) = v.tag() {
            match q.filter.tags.get(key) {
                Some(asked) => {
                    if asked.is_empty() {
                        return Err(self.forbidden(&format!("iamPrincipal/{key} with no value")));
                    }
                    if let Some(bad) = asked.iter().find(|a| !values.contains(a)) {
                        let shown = if bad.is_empty() {
                            "untagged"
                        } else {
                            bad.as_str()
                        };
                        return Err(self.forbidden(&format!("iamPrincipal/{key} = {shown}")));
                    }
                }
                None => {
                    q.filter.tags.insert(key.to_string(), values.to_vec());
                }
            }
            return Ok(());
        }
        // A visibility that grants something and names no tag grants principal globs.
        let globs = v.principals();
        if cost_explorer {
            return Err(ToolError::Forbidden(format!(
                "this caller may see only principals matching [{}], and Cost Explorer cannot filter by principal; ask with source \"cur\" or \"athena\"",
                globs.join(", ")
            )));
        }
        if q.filter.principals.is_empty() {
            q.filter.principals = globs.to_vec();
        } else {
            // Each requested glob must provably stay inside a visible one.
            for a in &q.filter.principals {
                if !v.covers_glob(a) {
                    return Err(self.forbidden(&format!("principal {a}")));
                }
            }
        }
        // Requested roles narrow further: they are ANDed with the principal globs above, so
        // they can only select visible principals.
        Ok(())
    }

    /// May the caller see this principal (ARN and its tags)?
    pub(crate) fn sees_principal(
        &self,
        arn: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> bool {
        match self.visibility() {
            None => true,
            Some(v) => v.allows(
                Some(arn),
                v.tag().and_then(|(k, _)| tags.get(k)).map(String::as_str),
            ),
        }
    }

    /// Is all the spend a budget measures inside what the caller may see? A Bedrock-wide
    /// budget, a role pattern or another tag value is not; the default budget measures only the
    /// (visible) subject's own spend.
    pub(crate) fn sees_budget(&self, b: &crate::sources::budgets::Budget) -> bool {
        use crate::sources::budgets::Scope;
        let Some(v) = self.visibility() else {
            return true;
        };
        match &b.scope {
            Scope::Default => v.grants_nothing().is_none(),
            Scope::Tag { key, value } => v.allows_tag(key, value),
            Scope::Principal { pattern } => v.covers_glob(pattern),
            Scope::Role { .. } | Scope::Bedrock => false,
        }
    }

    /// A budget subject must be visible to the caller.
    pub(crate) fn check_subject(&self, who: &str, s: &Subject) -> Result<(), ToolError> {
        self.sees_anything()?;
        let Some(v) = self.visibility() else {
            return Ok(());
        };
        let arn_ok = [&s.principal_arn, &s.role_arn]
            .into_iter()
            .flatten()
            .any(|a| v.allows(Some(a), None));
        // Tag grants: the subject's value for the visibility's key (None: untagged).
        let tag_ok = v.tag().is_some_and(|(k, _)| {
            let value = s.tags.get(k).map(String::as_str);
            // A tag subject names its own key; a principal's tags come from IAM.
            v.allows(None, Some(value.unwrap_or("")))
        });
        if arn_ok || tag_ok {
            Ok(())
        } else {
            Err(self.forbidden(who))
        }
    }
}
