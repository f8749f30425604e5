//! Write tools, listed only with `--allow-writes`, and acting only with
//! `confirm: true`: activate cost-allocation tag keys, add tags to a user or
//! role. Neither ever removes anything.

use std::collections::BTreeMap;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResponse;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool};
use schemars::JsonSchema;
use serde::Serialize;

pub use super::args::{ActivateInput, IamKindInput, TagPrincipalInput};
use super::args::{activation_keys, check_tag_principal};
use super::confirm::{Asked, Asker};
use super::respond;
use crate::error::ToolError;
use crate::sources::cost_allocation::ActivationResult;
use crate::sources::iam::IamKind;
use crate::usecases::context::Ctx;

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

impl Ctx {
    /// Activate iamPrincipal/* cost-allocation tag keys (at most 20 per call). Asks the user, or needs "confirm": true. One Cost Explorer request ($0.01). Takes up to 24 h to apply.
    #[tool(
        name = "activate_cost_allocation_tags",
        title = "Activate principal tag keys",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ActivateOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true)
    )]
    pub async fn activate_cost_allocation_tags(
        &self,
        Parameters(mut input): Parameters<ActivateInput>,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> CallToolResponse {
        let question = format!(
            "Activate the cost allocation tag keys {} (ce:UpdateCostAllocationTagsStatus, one Cost Explorer request, $0.01; applies to new usage within 24 hours)?",
            input
                .keys
                .iter()
                .map(|k| format!(
                    "iamPrincipal/{}",
                    k.trim().trim_start_matches("iamPrincipal/")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let asker = Asker::for_call(&ctx, "activate_cost_allocation_tags", responses, state);
        match asker
            .ask(input.confirm == Some(true), &[("confirm".into(), question)])
            .await
        {
            Err(e) => return respond::<()>(Err(e)).into(),
            Ok(Asked::Ask(q)) => return q.into(),
            Ok(Asked::Unavailable) => input.confirm = None,
            Ok(a) if a.single() == Some(true) => input.confirm = Some(true),
            Ok(_) => {
                let o = ActivateOutput {
                    results: vec![],
                    activated: 0,
                    failed: 0,
                    paid_requests: 0,
                    note: "The user declined: nothing was changed.".into(),
                };
                return respond(Ok((o.note.clone(), o))).into();
            }
        }
        respond(self.activate(input).await.map(|o| (render_activate(&o), o))).into()
    }

    /// Add tags to one IAM user or role (never removes). Asks the user, or needs "confirm": true. Uses iam:TagUser / iam:TagRole.
    #[tool(
        name = "tag_principal",
        title = "Tag a user or role",
        output_schema = rmcp::handler::server::tool::schema_for_output::<TagPrincipalOutput>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true)
    )]
    pub async fn tag_principal(
        &self,
        Parameters(mut input): Parameters<TagPrincipalInput>,
        ctx: RequestContext<RoleServer>,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> CallToolResponse {
        let question = format!(
            "Add these tags to IAM {} {} ({}; existing keys get the new value, nothing is removed): {}?",
            match input.kind {
                IamKindInput::User => "user",
                IamKindInput::Role => "role",
            },
            input.name,
            match input.kind {
                IamKindInput::User => "iam:TagUser",
                IamKindInput::Role => "iam:TagRole",
            },
            input
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let asker = Asker::for_call(&ctx, "tag_principal", responses, state);
        match asker
            .ask(input.confirm == Some(true), &[("confirm".into(), question)])
            .await
        {
            Err(e) => return respond::<()>(Err(e)).into(),
            Ok(Asked::Ask(q)) => return q.into(),
            Ok(Asked::Unavailable) => input.confirm = None,
            Ok(a) if a.single() == Some(true) => input.confirm = Some(true),
            Ok(_) => {
                let o = TagPrincipalOutput {
                    kind: match input.kind {
                        IamKindInput::User => IamKind::User,
                        IamKindInput::Role => IamKind::Role,
                    },
                    name: input.name.clone(),
                    added: BTreeMap::new(),
                    note: "The user declined: nothing was changed.".into(),
                };
                return respond(Ok((o.note.clone(), o))).into();
            }
        }
        respond(self.tag(input).await.map(|o| (render_tagged(&o), o))).into()
    }
}

impl Ctx {
    /// `activate_cost_allocation_tags`, shared with the CLI.
    pub async fn activate(&self, input: ActivateInput) -> Result<ActivateOutput, ToolError> {
        let keys = activation_keys(&input)?;
        let (results, paid) = self.sources.allocation.activate(&keys).await?;
        let activated = results.iter().filter(|r| r.activated).count();
        Ok(ActivateOutput {
            failed: results.len() - activated,
            activated,
            results,
            paid_requests: paid,
            note: "Activation takes up to 24 hours and applies to new usage. A key that failed with TagKeysNotFoundException has not been seen on any usage yet.".into(),
        })
    }

    /// `tag_principal`, shared with the CLI.
    pub async fn tag(&self, input: TagPrincipalInput) -> Result<TagPrincipalOutput, ToolError> {
        check_tag_principal(&input)?;
        let kind = match input.kind {
            IamKindInput::User => IamKind::User,
            IamKindInput::Role => IamKind::Role,
        };
        let directory = &self.sources.directory;
        if self.visibility().is_some() {
            let inv = directory.inventory(crate::tools::no_progress()).await?;
            let visible = inv.principals.iter().any(|p| {
                p.kind == kind && p.name == input.name && self.sees_principal(&p.arn, &p.tags)
            });
            if !visible {
                return Err(ToolError::Forbidden(format!(
                    "{} is not a principal this caller may see or tag",
                    input.name
                )));
            }
        }
        directory.tag(kind, &input.name, &input.tags).await?;
        Ok(TagPrincipalOutput {
            kind,
            name: input.name.clone(),
            added: input.tags.clone(),
            note: "Tags on principals reach billing for new Bedrock usage; the iamPrincipal/<key> must also be an active cost-allocation tag.".into(),
        })
    }
}

/// The text of an `activate_cost_allocation_tags` answer.
pub fn render_activate(o: &ActivateOutput) -> String {
    let mut text = format!("Activated {} of {} key(s).\n", o.activated, o.results.len());
    for r in &o.results {
        text.push_str(&format!(
            "- {}: {}\n",
            r.key,
            r.error.as_deref().unwrap_or("activated")
        ));
    }
    text
}

/// The text of a `tag_principal` answer.
pub fn render_tagged(o: &TagPrincipalOutput) -> String {
    format!(
        "Tagged {} {} with {} tag(s).\n",
        if matches!(o.kind, IamKind::User) {
            "user"
        } else {
            "role"
        },
        o.name,
        o.added.len()
    )
}

/// `activate_cost_allocation_tags` in the tool table ([`super::TOOLS`]).
pub const ACTIVATE_COST_ALLOCATION_TAGS: super::ToolUnit = super::ToolUnit {
    name: "activate_cost_allocation_tags",
    account: true,
    uses: super::Uses::ActivateTags,
    input: super::input::<super::args::ActivateInput>(),
    run: |app, args, _| {
        Box::pin(async move {
            let o = app.activate(super::arguments(args)?).await?;
            super::answer(render_activate(&o), o)
        })
    },
    route: || {
        ToolRouter::new().with_route((
            Ctx::activate_cost_allocation_tags_tool_attr(),
            Ctx::activate_cost_allocation_tags,
        ))
    },
};

/// `tag_principal` in the tool table ([`super::TOOLS`]).
pub const TAG_PRINCIPAL: super::ToolUnit = super::ToolUnit {
    name: "tag_principal",
    account: true,
    uses: super::Uses::TagPrincipals,
    input: super::input::<super::args::TagPrincipalInput>(),
    run: |app, args, _| {
        Box::pin(async move {
            let o = app.tag(super::arguments(args)?).await?;
            super::answer(render_tagged(&o), o)
        })
    },
    route: || ToolRouter::new().with_route((Ctx::tag_principal_tool_attr(), Ctx::tag_principal)),
};
