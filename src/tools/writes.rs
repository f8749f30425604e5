//! Write tools, listed only with `--allow-writes`, and acting only with
//! `confirm: true`: activate cost-allocation tag keys, add tags to a user or
//! role. Neither ever removes anything.

use std::collections::BTreeMap;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::respond;
use crate::domain::group::{tag_key, valid_tag_key};
use crate::error::ToolError;
use crate::server::App;
use crate::sources::cost_allocation::ActivationResult;
use crate::sources::iam::IamKind;

/// Input of `activate_cost_allocation_tags`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateInput {
    /// 1-20 principal tag keys (iamPrincipal/ prefix optional).
    pub keys: Vec<String>,
    /// Must be true: this changes billing settings.
    pub confirm: Option<bool>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ActivateOutput {
    pub results: Vec<ActivationResult>,
    pub activated: usize,
    pub failed: usize,
    pub paid_requests: u32,
    pub note: String,
}

/// Input of `tag_principal`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagPrincipalInput {
    /// user or role.
    pub kind: IamKindInput,
    /// User or role name (not ARN).
    pub name: String,
    /// Tags to add (existing keys get the new value; nothing is removed).
    pub tags: BTreeMap<String, String>,
    /// Must be true: this changes IAM.
    pub confirm: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IamKindInput {
    User,
    Role,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TagPrincipalOutput {
    pub kind: IamKind,
    pub name: String,
    pub added: BTreeMap<String, String>,
    pub note: String,
}

fn require_confirm(confirm: Option<bool>, what: &str) -> Result<(), ToolError> {
    if confirm == Some(true) {
        Ok(())
    } else {
        Err(ToolError::invalid(format!(
            "{what} changes your AWS account; call again with \"confirm\": true once the user agreed"
        )))
    }
}

#[tool_router(router = write_router, vis = "pub(crate)")]
impl App {
    /// Activate iamPrincipal/* cost-allocation tag keys (at most 20 per call). Needs "confirm": true. One Cost Explorer request ($0.01). Takes up to 24 h to apply.
    #[tool(
        name = "activate_cost_allocation_tags",
        title = "Activate principal tag keys",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ActivateOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true)
    )]
    pub async fn activate_cost_allocation_tags(
        &self,
        Parameters(input): Parameters<ActivateInput>,
    ) -> CallToolResult {
        let result = async {
            require_confirm(input.confirm, "activating cost-allocation tags")?;
            if input.keys.is_empty() || input.keys.len() > 20 {
                return Err(ToolError::invalid(format!("give 1 to 20 keys per call (got {})", input.keys.len())));
            }
            let mut keys = Vec::new();
            for k in &input.keys {
                let bare = tag_key(k).ok_or_else(|| ToolError::invalid(format!("'{k}' is not a valid tag key")))?;
                keys.push(format!("iamPrincipal/{bare}"));
            }
            let allocation = self.allocation.clone().ok_or_else(|| ToolError::Unsupported("cost-allocation tags are not available".into()))?;
            let (results, paid) = allocation.activate(&keys).await?;
            let activated = results.iter().filter(|r| r.activated).count();
            let out = ActivateOutput {
                failed: results.len() - activated,
                activated,
                results,
                paid_requests: paid,
                note: "Activation takes up to 24 hours and applies to new usage. A key that failed with TagKeysNotFoundException has not been seen on any usage yet.".into(),
            };
            let mut text = format!("Activated {} of {} key(s).\n", out.activated, out.results.len());
            for r in &out.results {
                text.push_str(&format!("- {}: {}\n", r.key, r.error.as_deref().unwrap_or("activated")));
            }
            Ok((text, out))
        }
        .await;
        respond(result)
    }

    /// Add tags to one IAM user or role (never removes). Needs "confirm": true. Uses iam:TagUser / iam:TagRole.
    #[tool(
        name = "tag_principal",
        title = "Tag a user or role",
        output_schema = rmcp::handler::server::tool::schema_for_output::<TagPrincipalOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true)
    )]
    pub async fn tag_principal(
        &self,
        Parameters(input): Parameters<TagPrincipalInput>,
    ) -> CallToolResult {
        let result = async {
            require_confirm(input.confirm, "tagging a principal")?;
            if input.tags.is_empty() || input.tags.len() > 50 {
                return Err(ToolError::invalid("give 1 to 50 tags"));
            }
            for (k, v) in &input.tags {
                if !valid_tag_key(k) || k.starts_with("aws:") || v.len() > 256 {
                    return Err(ToolError::invalid(format!("tag {k}={v} is not valid (keys 1-128 chars, not aws:*; values up to 256)")));
                }
            }
            if input.name.is_empty() || input.name.contains(':') || input.name.contains('/') {
                return Err(ToolError::invalid("name is the user or role name, not its ARN or path"));
            }
            let kind = match input.kind {
                IamKindInput::User => IamKind::User,
                IamKindInput::Role => IamKind::Role,
            };
            let directory = self.directory.clone().ok_or_else(|| ToolError::Unsupported("IAM is not available".into()))?;
            if self.visibility().is_some() {
                let inv = directory.inventory(crate::tools::no_progress()).await?;
                let visible = inv.principals.iter().any(|p| p.kind == kind && p.name == input.name && self.sees_principal(&p.arn, &p.tags));
                if !visible {
                    return Err(ToolError::Forbidden(format!("{} is not a principal this caller may see or tag", input.name)));
                }
            }
            directory.tag(kind, &input.name, &input.tags).await?;
            let out = TagPrincipalOutput {
                kind,
                name: input.name.clone(),
                added: input.tags.clone(),
                note: "Tags on principals reach billing for new Bedrock usage; the iamPrincipal/<key> must also be an active cost-allocation tag.".into(),
            };
            Ok((format!("Tagged {} {} with {} tag(s).\n", if matches!(kind, IamKind::User) { "user" } else { "role" }, out.name, out.added.len()), out))
        }
        .await;
        respond(result)
    }
}
