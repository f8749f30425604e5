//! Per-caller scope: what an authenticated HTTP caller may see (see `auth::Visibility`).
//! stdio and unauthenticated loopback HTTP have no caller and see everything.
//!
//! Spend questions get the caller's visibility added to their filter (tag values on Cost
//! Explorer and CUR; principal globs on CUR/Athena only). Asking explicitly for something outside
//! it is an authorization error, never a silently empty answer.

use crate::auth::Visibility;
use crate::domain::group::SpendQuery;
use crate::error::ToolError;
use crate::server::App;
use crate::sources::budgets::Subject;

impl App {
    /// The caller's visibility, if the caller is limited.
    pub(crate) fn visibility(&self) -> Option<&Visibility> {
        self.caller.as_ref().and_then(|c| c.visibility.as_ref())
    }

    fn forbidden(&self, what: &str) -> ToolError {
        let (name, sees) = match &self.caller {
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

    /// Narrow a spend query to the caller's visibility. `cost_explorer`: the query goes to
    /// Cost Explorer, which cannot filter by principal ARN.
    pub(crate) fn scope_query(
        &self,
        q: &mut SpendQuery,
        cost_explorer: bool,
    ) -> Result<(), ToolError> {
        let Some(v) = self.visibility().cloned() else {
            return Ok(());
        };
        if let Some(key) = &v.tag_key {
            match q.filter.tags.get(key) {
                Some(asked) => {
                    if let Some(bad) = asked.iter().find(|a| !v.tag_values.contains(a)) {
                        let shown = if bad.is_empty() {
                            "untagged"
                        } else {
                            bad.as_str()
                        };
                        return Err(self.forbidden(&format!("iamPrincipal/{key} = {shown}")));
                    }
                }
                None => {
                    q.filter.tags.insert(key.clone(), v.tag_values.clone());
                }
            }
            return Ok(());
        }
        if !v.principals.is_empty() {
            if cost_explorer {
                return Err(ToolError::Forbidden(format!(
                    "this caller may see only principals matching [{}], and Cost Explorer cannot filter by principal; ask with source \"cur\" or \"athena\"",
                    v.principals.join(", ")
                )));
            }
            if !q.filter.principals.is_empty() || !q.filter.roles.is_empty() {
                let asked: Vec<&String> =
                    q.filter.principals.iter().chain(&q.filter.roles).collect();
                // A requested glob must be a plain ARN (or ARN glob) inside one visible glob.
                for a in asked {
                    if !v
                        .principals
                        .iter()
                        .any(|g| crate::domain::principal::glob_match(g, a))
                    {
                        return Err(self.forbidden(&format!("principal {a}")));
                    }
                }
            } else {
                q.filter.principals = v.principals.clone();
            }
            return Ok(());
        }
        Err(self.forbidden("any spend"))
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
                v.tag_key
                    .as_ref()
                    .and_then(|k| tags.get(k))
                    .map(String::as_str),
            ),
        }
    }

    /// A budget subject must be visible to the caller.
    pub(crate) fn check_subject(&self, who: &str, s: &Subject) -> Result<(), ToolError> {
        let Some(v) = self.visibility() else {
            return Ok(());
        };
        let tag = v
            .tag_key
            .as_ref()
            .and_then(|k| s.tags.get(k))
            .map(String::as_str);
        let arn_ok = [&s.principal_arn, &s.role_arn]
            .into_iter()
            .flatten()
            .any(|a| v.allows(Some(a), None));
        if arn_ok || v.allows(None, tag) {
            Ok(())
        } else {
            Err(self.forbidden(who))
        }
    }
}
