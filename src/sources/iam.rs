//! IAM: which users and roles exist, with their tags, from one paginated
//! `GetAccountAuthorizationDetails` sweep (not one `List*Tags` call per
//! principal: `ListUsers`/`ListRoles` return no tags;
//! <https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountAuthorizationDetails.html>); and, behind `--allow-writes`, adding tags.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_iam::Client;
use aws_sdk_iam::types::{EntityType, Tag};
use chrono::{DateTime, Utc};

use super::Progress;
use crate::error::{ToolError, from_sdk};

/// User or role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IamKind {
    User,
    Role,
}

impl IamKind {
    /// As the answers write it.
    pub fn as_str(self) -> &'static str {
        match self {
            IamKind::User => "user",
            IamKind::Role => "role",
        }
    }
}

/// An IAM user or role as the inventory sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct IamPrincipal {
    pub kind: IamKind,
    pub name: String,
    pub arn: String,
    pub path: String,
    pub tags: BTreeMap<String, String>,
    /// Roles: when the role was last used (IAM tracks 400 days).
    pub last_used: Option<DateTime<Utc>>,
    /// Roles whose trust policy allows `sts:TagSession`: callers may pass tags per session.
    pub tag_session_allowed: bool,
}

impl IamPrincipal {
    /// Service-linked roles live under /aws-service-role/ and are managed by AWS.
    pub fn service_linked(&self) -> bool {
        self.path.starts_with("/aws-service-role/")
    }

    pub fn account(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or("")
    }
}

/// The account's users and roles.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub principals: Vec<IamPrincipal>,
    /// IAM requests made.
    pub requests: u32,
    /// Problems met on the way (the sweep stopped early, say).
    pub warnings: Vec<String>,
    pub complete: bool,
    pub as_of: Option<DateTime<Utc>>,
}

/// "Which users and roles exist, with which tags."
#[async_trait::async_trait]
pub trait PrincipalDirectory: Send + Sync {
    async fn inventory(&self, progress: Progress) -> Result<Inventory, ToolError>;
    /// Add (never remove) tags on one user or role.
    async fn tag(
        &self,
        kind: IamKind,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ToolError>;
}

/// The IAM-backed directory, with a short cache so paging through a report
/// does not sweep IAM again.
pub struct Iam {
    client: crate::sources::Lazy<Client>,
    cache: tokio::sync::Mutex<Option<(Instant, Inventory)>>,
    ttl: Duration,
}

impl Iam {
    pub fn new(client: crate::sources::Lazy<Client>, ttl: Duration) -> Self {
        Iam {
            client,
            cache: tokio::sync::Mutex::new(None),
            ttl,
        }
    }

    async fn sweep(&self, progress: &Progress) -> Result<Inventory, ToolError> {
        let mut inv = Inventory {
            complete: true,
            ..Default::default()
        };
        // The SDK's paginator follows `Marker` while `IsTruncated`.
        let mut pages = self
            .client
            .get_account_authorization_details()
            .filter(EntityType::User)
            .filter(EntityType::Role)
            .max_items(1000)
            .into_paginator()
            .send();
        while let Some(res) = pages.next().await {
            let out = match res {
                Ok(out) => out,
                Err(e) => {
                    let err = from_sdk("IAM", "iam:GetAccountAuthorizationDetails", &e);
                    if inv.requests == 0 {
                        return Err(err);
                    }
                    // Keep what was read; say the rest is missing.
                    inv.complete = false;
                    inv.warnings.push(format!(
                        "the IAM sweep stopped after {} page(s) ({} principals): {err}. The report covers only those; ask again to retry",
                        inv.requests,
                        inv.principals.len()
                    ));
                    break;
                }
            };
            inv.requests += 1;
            for u in out.user_detail_list() {
                inv.principals.push(IamPrincipal {
                    kind: IamKind::User,
                    name: u.user_name().unwrap_or_default().to_string(),
                    arn: u.arn().unwrap_or_default().to_string(),
                    path: u.path().unwrap_or("/").to_string(),
                    tags: tags_of(u.tags()),
                    last_used: None,
                    tag_session_allowed: false,
                });
            }
            for r in out.role_detail_list() {
                let trust = r
                    .assume_role_policy_document()
                    .map(decode_policy)
                    .unwrap_or_default();
                inv.principals.push(IamPrincipal {
                    kind: IamKind::Role,
                    name: r.role_name().unwrap_or_default().to_string(),
                    arn: r.arn().unwrap_or_default().to_string(),
                    path: r.path().unwrap_or("/").to_string(),
                    tags: tags_of(r.tags()),
                    last_used: r
                        .role_last_used()
                        .and_then(|u| u.last_used_date())
                        .and_then(|d| DateTime::from_timestamp(d.secs(), 0)),
                    tag_session_allowed: trust.contains("sts:TagSession"),
                });
            }
            progress(
                inv.requests as f64,
                0.0,
                format!("IAM inventory: {} principals", inv.principals.len()),
            );
        }
        if inv
            .principals
            .iter()
            .any(|p| p.name.is_empty() || p.arn.is_empty())
        {
            inv.warnings.push(
                "IAM returned principals without a name or ARN; they are listed as they came"
                    .into(),
            );
        }
        inv.as_of = Some(crate::domain::clock::now());
        Ok(inv)
    }
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// IAM returns policy documents URL-encoded.
fn decode_policy(doc: &str) -> String {
    let bytes = doc.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&doc[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait::async_trait]
impl PrincipalDirectory for Iam {
    async fn inventory(&self, progress: Progress) -> Result<Inventory, ToolError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, inv)) = cache.as_ref()
            && at.elapsed() < self.ttl
        {
            let mut inv = inv.clone();
            inv.requests = 0;
            return Ok(inv);
        }
        let inv = self.sweep(&progress).await?;
        if inv.complete {
            *cache = Some((Instant::now(), inv.clone()));
        }
        Ok(inv)
    }

    async fn tag(
        &self,
        kind: IamKind,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ToolError> {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| ToolError::invalid(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        match kind {
            IamKind::Role => {
                self.client
                    .tag_role()
                    .role_name(name)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| from_sdk("IAM", "iam:TagRole", &e))?;
            }
            IamKind::User => {
                self.client
                    .tag_user()
                    .user_name(name)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| from_sdk("IAM", "iam:TagUser", &e))?;
            }
        }
        // The next report must see the new tags.
        *self.cache.lock().await = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_url_encoded_policies() {
        let d = decode_policy(
            "%7B%22Action%22%3A%5B%22sts%3AAssumeRole%22%2C%22sts%3ATagSession%22%5D%7D",
        );
        assert_eq!(d, r#"{"Action":["sts:AssumeRole","sts:TagSession"]}"#);
        assert_eq!(decode_policy("100%"), "100%");
    }
}
