//! Cost-allocation tag keys (Cost Explorer): which `iamPrincipal/*` keys are
//! activated, and activating them. Both are paid Cost Explorer requests and
//! go through the same hourly cap; listings are cached for an hour.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_costexplorer::Client;
use aws_sdk_costexplorer::types::{CostAllocationTagStatus, CostAllocationTagStatusEntry};
use futures::FutureExt;

use super::ce_guard::{RequestCap, Served, SingleFlightCache};
use crate::error::{ToolError, from_sdk};

/// One cost-allocation tag key.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct AllocationTag {
    /// Full key, e.g. `iamPrincipal/team`.
    pub key: String,
    /// Active or Inactive.
    pub status: String,
    /// UserDefined or AWSGenerated.
    pub tag_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
}

/// Result of an activation request, per key.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ActivationResult {
    pub key: String,
    pub activated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The listing and how it was obtained.
#[derive(Debug, Clone)]
pub struct TagListing {
    pub tags: Vec<AllocationTag>,
    pub paid_requests: u32,
    pub cached: bool,
}

#[async_trait::async_trait]
pub trait AllocationTags: Send + Sync {
    /// Every `iamPrincipal/*` cost-allocation tag key.
    async fn principal_tags(&self) -> Result<TagListing, ToolError>;
    /// Activate keys (full `iamPrincipal/<key>` names), at most 20.
    async fn activate(&self, keys: &[String]) -> Result<(Vec<ActivationResult>, u32), ToolError>;
    /// The listing when it costs no paid request (cached, or a free source); never calls AWS.
    async fn principal_tags_if_free(&self) -> Option<TagListing> {
        None
    }
}

pub struct CostAllocationTags {
    client: crate::sources::Lazy<Client>,
    cap: Arc<RequestCap>,
    cache: SingleFlightCache<(Vec<AllocationTag>, u32)>,
}

impl CostAllocationTags {
    pub fn new(client: crate::sources::Lazy<Client>, cap: Arc<RequestCap>) -> Self {
        CostAllocationTags {
            client,
            cap,
            cache: SingleFlightCache::new(4),
        }
    }
}

#[async_trait::async_trait]
impl AllocationTags for CostAllocationTags {
    async fn principal_tags(&self) -> Result<TagListing, ToolError> {
        let (client, cap) = (self.client.clone(), self.cap.clone());
        let (v, served) = self
            .cache
            .get_or_fetch("iamPrincipal", Duration::from_secs(3600), move || {
                async move {
                    let mut tags = Vec::new();
                    let mut pager = super::ce_guard::PaidPages::new(&cap);
                    while let Some(token) = pager.next()? {
                        let out = client
                            .list_cost_allocation_tags()
                            .max_results(1000)
                            .set_next_token(token)
                            .send()
                            .await
                            .map_err(|e| {
                                from_sdk("Cost Explorer", "ce:ListCostAllocationTags", &e)
                            })?;
                        for t in out.cost_allocation_tags() {
                            if t.tag_key().starts_with("iamPrincipal/") {
                                tags.push(AllocationTag {
                                    key: t.tag_key().to_string(),
                                    status: t.status().as_str().to_string(),
                                    tag_type: t.r#type().as_str().to_string(),
                                    last_updated: t.last_updated_date().map(str::to_string),
                                    last_used: t.last_used_date().map(str::to_string),
                                });
                            }
                        }
                        pager.after(out.next_token());
                    }
                    tags.sort_by(|a, b| a.key.cmp(&b.key));
                    Ok((tags, pager.pages))
                }
                .boxed()
            })
            .await?;
        Ok(TagListing {
            tags: v.0.clone(),
            paid_requests: if served == Served::Fetched { v.1 } else { 0 },
            cached: served == Served::Shared,
        })
    }

    async fn principal_tags_if_free(&self) -> Option<TagListing> {
        self.cache.peek("iamPrincipal").await.map(|v| TagListing {
            tags: v.0.clone(),
            paid_requests: 0,
            cached: true,
        })
    }

    async fn activate(&self, keys: &[String]) -> Result<(Vec<ActivationResult>, u32), ToolError> {
        if keys.is_empty() || keys.len() > 20 {
            return Err(ToolError::invalid(format!(
                "give 1 to 20 tag keys per call (got {})",
                keys.len()
            )));
        }
        self.cap.take()?;
        let entries: Vec<CostAllocationTagStatusEntry> = keys
            .iter()
            .map(|k| {
                CostAllocationTagStatusEntry::builder()
                    .tag_key(k)
                    .status(CostAllocationTagStatus::Active)
                    .build()
                    .map_err(|e| ToolError::invalid(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        let out = self
            .client
            .update_cost_allocation_tags_status()
            .set_cost_allocation_tags_status(Some(entries))
            .send()
            .await
            .map_err(|e| from_sdk("Cost Explorer", "ce:UpdateCostAllocationTagsStatus", &e))?;
        let results = keys
            .iter()
            .map(|k| {
                let err = out
                    .errors()
                    .iter()
                    .find(|e| e.tag_key() == Some(k.as_str()));
                ActivationResult {
                    key: k.clone(),
                    activated: err.is_none(),
                    error: err.map(|e| {
                        format!(
                            "{}: {}",
                            e.code().unwrap_or("Error"),
                            e.message().unwrap_or("")
                        )
                    }),
                }
            })
            .collect();
        self.cache.clear();
        Ok((results, 1))
    }
}
