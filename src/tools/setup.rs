//! `setup` as a tool (listed only with `--allow-writes`; over HTTP only for callers with scope
//! `cost.setup`): the plan, or its changes once the user confirms. Clients that support form
//! elicitation are asked (the question lists every call the changes make); the others get the
//! plan and must call again with `confirm: true`. The CLI `setup` runs the same code
//! ([`crate::usecases::setup::run`]).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool};
use schemars::JsonSchema;
use serde::Deserialize;

use super::respond;
use crate::error::ToolError;
use crate::usecases::context::Ctx;
use crate::usecases::setup::{Answer, STEPS, SetupError, SetupRequest};

/// Input of `setup`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupInput {
    /// export, tags, athena, logging, anomaly_monitor, budgets, prevention (default all).
    #[serde(default)]
    pub steps: Vec<String>,
    /// Bucket of the export and logs (created if missing).
    pub bucket: Option<String>,
    /// Principal tag keys (default team).
    #[serde(default)]
    pub tag_keys: Vec<String>,
    /// Backfill tags from YYYY-MM.
    pub backfill_from: Option<String>,
    /// Email or SNS topic ARN for anomaly alerts and budget actions.
    pub notify: Option<String>,
    /// Also deliver invocation logs to this CloudWatch Logs group.
    pub log_group: Option<String>,
    /// Budget actions that deny Bedrock to a team at 100% (needs notify).
    #[serde(default)]
    pub enforce: bool,
    /// group:NAME, role:NAME or user:NAME to attach the prevention policy to.
    pub attach_prevention: Option<String>,
    /// Make the plan's changes.
    #[serde(default)]
    pub apply: bool,
    /// Step whose changes to remove.
    pub undo: Option<String>,
    /// For clients without elicitation: the user confirmed.
    #[serde(default)]
    pub confirm: bool,
}

impl SetupInput {
    /// The request of this input; the rest as the CLI's defaults.
    fn request(&self, state_dir: &std::path::Path, apply: bool) -> Result<SetupRequest, ToolError> {
        let mut r = SetupRequest {
            apply: apply && self.undo.is_none(),
            undo: if apply { self.undo.clone() } else { None },
            steps: self.steps.clone(),
            bucket: self.bucket.clone(),
            backfill_from: self.backfill_from.clone(),
            notify: self.notify.clone(),
            log_group: self.log_group.clone(),
            enforce: self.enforce,
            attach_prevention: self.attach_prevention.clone(),
            policy_file: state_dir.join("require-tags.json"),
            ..SetupRequest::default()
        };
        if !self.tag_keys.is_empty() {
            r.tag_keys = self.tag_keys.clone();
        }
        crate::usecases::setup::check_args(&r).map_err(ToolError::invalid)?;
        Ok(r)
    }
}

fn tool_error(e: SetupError) -> ToolError {
    match e {
        SetupError::Usage(m) => ToolError::invalid(m),
        SetupError::Failed(m) => ToolError::Unsupported(m),
    }
}

/// The question that asks the user to confirm: every change, call by call.
fn question(plan: &Answer, input: &SetupInput) -> String {
    if let Some(step) = &input.undo {
        return format!(
            "Remove what setup created for step {step} (as its state file records it)? Nothing that existed before setup is touched."
        );
    }
    let Answer::Plan(p) = plan else {
        return String::new();
    };
    let mut q = format!(
        "bedrock-cost-mcp setup will change AWS account {} ({}):\n",
        p.account, p.region
    );
    for s in &p.steps {
        if s.state != crate::usecases::setup::StepState::ToDo
            || !(input.steps.is_empty() || input.steps.iter().any(|x| x == s.id))
        {
            continue;
        }
        q.push_str(&format!("- {} ({}):\n", s.id, s.cost));
        for c in &s.calls {
            q.push_str(&format!("  {} {}\n", c.api, c.params));
        }
        q.push_str(&format!("  undo: {}\n", s.undo));
    }
    q.push_str("Make these changes?");
    q
}

impl Ctx {
    /// Plan what the answers need (CUR export with caller identity, principal tags, Athena table, invocation logging, policy) and, confirmed, make it; undo a step.
    #[tool(
        name = "setup",
        title = "Set up cost data",
        output_schema = rmcp::handler::server::tool::schema_for_output::<serde_json::Value>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true)
    )]
    pub async fn setup(
        &self,
        Parameters(input): Parameters<SetupInput>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let result = tokio::select! {
            r = self.setup_confirmed(input, Some(&ctx.peer)) => r,
            _ = ctx.ct.cancelled() => Err(ToolError::Cancelled),
        };
        respond(result)
    }

    /// `setup`: the plan; apply or undo once confirmed (asked through `peer` when it can).
    pub async fn setup_confirmed(
        &self,
        input: SetupInput,
        peer: Option<&rmcp::Peer<RoleServer>>,
    ) -> Result<(String, serde_json::Value), ToolError> {
        for s in input.steps.iter().chain(input.undo.iter()) {
            if !STEPS.contains(&s.as_str()) {
                return Err(ToolError::invalid(format!(
                    "unknown step '{s}'; the steps are {}",
                    STEPS.join(", ")
                )));
            }
        }
        let state_dir = crate::usecases::setup::default_state_dir();
        let config = self.config.as_ref();
        let changes = input.apply || input.undo.is_some();
        let plan_args = input.request(&state_dir, false)?;
        if !changes {
            let a = crate::usecases::setup::run(config, &plan_args)
                .await
                .map_err(tool_error)?;
            return Ok((a.render(), serde_json::to_value(&a).unwrap_or_default()));
        }
        let mut input = input;
        if !input.confirm {
            let plan = crate::usecases::setup::run(config, &plan_args)
                .await
                .map_err(tool_error)?;
            let declined = |plan: &Answer| {
                let mut v = serde_json::to_value(plan).unwrap_or_default();
                v["declined"] = true.into();
                Ok((
                    format!("The user declined: nothing was changed.\n{}", plan.render()),
                    v,
                ))
            };
            let unavailable = |plan: &Answer| {
                let mut v = serde_json::to_value(plan).unwrap_or_default();
                v["confirm_required"] = true.into();
                Ok((
                    format!(
                        "Nothing was changed. Show the user this plan; call setup again with confirm: true once they agree.\n{}",
                        plan.render()
                    ),
                    v,
                ))
            };
            if input.undo.is_some() {
                match super::confirm_change(peer, false, question(&plan, &input)).await {
                    super::Confirmation::Yes => {}
                    super::Confirmation::Declined => return declined(&plan),
                    super::Confirmation::Unavailable => return unavailable(&plan),
                }
            } else {
                // Each step is asked on its own (its calls, cost and undo); only the accepted
                // ones run.
                let Answer::Plan(p) = &plan else {
                    return unavailable(&plan);
                };
                let to_do: Vec<&'static str> = p
                    .steps
                    .iter()
                    .filter(|s| {
                        s.state == crate::usecases::setup::StepState::ToDo
                            && (input.steps.is_empty() || input.steps.iter().any(|x| x == s.id))
                    })
                    .map(|s| s.id)
                    .collect();
                let mut accepted = vec![];
                for id in &to_do {
                    let one = SetupInput {
                        steps: vec![(*id).to_string()],
                        ..input.clone()
                    };
                    match super::confirm_change(peer, false, question(&plan, &one)).await {
                        super::Confirmation::Yes => accepted.push((*id).to_string()),
                        super::Confirmation::Declined => {}
                        super::Confirmation::Unavailable => return unavailable(&plan),
                    }
                }
                if accepted.is_empty() && !to_do.is_empty() {
                    return declined(&plan);
                }
                input.steps = accepted;
            }
        }
        let args = input.request(&state_dir, true)?;
        let a = crate::usecases::setup::run(config, &args)
            .await
            .map_err(tool_error)?;
        Ok((a.render(), serde_json::to_value(&a).unwrap_or_default()))
    }
}

/// `setup` in the tool table ([`super::TOOLS`]).
pub const SETUP: super::ToolUnit = super::ToolUnit {
    name: "setup",
    account: false,
    uses: super::Uses::Setup,
    input: super::input::<SetupInput>(),
    run: |app, args, _| {
        Box::pin(async move {
            let (text, value) = app.setup_confirmed(super::arguments(args)?, None).await?;
            super::answer(text, value)
        })
    },
    route: || ToolRouter::new().with_route((Ctx::setup_tool_attr(), Ctx::setup)),
};
