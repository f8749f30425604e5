//! Write tools, listed only with `--allow-writes`, and acting only with
//! `confirm: true`: activate cost-allocation tag keys, add tags to a user or
//! role. Neither ever removes anything.

use std::collections::BTreeMap;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Serialize;

pub use super::args::{ActivateInput, IamKindInput, TagPrincipalInput};
use super::args::{activation_keys, check_tag_principal};
use super::respond;
use crate::error::ToolError;
use crate::sources::cost_allocation::ActivationResult;
use crate::sources::iam::IamKind;
use crate::usecases::context::App;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ActivateOutput {
    pub results: Vec<ActivationResult>,
    pub activated: usize,
    pub failed: usize,
    pub paid_requests: u32,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TagPrincipalOutput {
    pub kind: IamKind,
    pub name: String,
    pub added: BTreeMap<String, String>,
    pub note: String,
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
            let keys = activation_keys(&input)?;
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
            check_tag_principal(&input)?;
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
