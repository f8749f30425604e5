//! `setup` as a tool (listed only with `--allow-writes`; over HTTP only for callers with scope
//! `cost.setup`): the plan, or its changes once the user confirms. Clients that support form
//! elicitation are asked (the question lists every call the changes make); the others get the
//! plan and must call again with `confirm: true`. The CLI `setup` runs the same code
//! ([`crate::usecases::setup::run`]).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResponse;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool};
use schemars::JsonSchema;
use serde::Deserialize;

use super::confirm::{Asked, Asker};
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
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> CallToolResponse {
        let asker = Asker::for_call(&ctx, "setup", responses, state);
        let result = tokio::select! {
            r = self.setup_confirmed(input, &asker) => r,
            _ = ctx.ct.cancelled() => Err(ToolError::Cancelled),
        };
        match result {
            Ok(SetupOutcome::Ask(q)) => q.into(),
            Ok(SetupOutcome::Done(text, value)) => respond(Ok((text, value))).into(),
            Err(e) => respond::<()>(Err(e)).into(),
        }
    }

    /// `setup`: the plan; apply or undo once confirmed (asked through `asker` when it can).
    pub async fn setup_confirmed(
        &self,
        input: SetupInput,
        asker: &Asker,
    ) -> Result<SetupOutcome, ToolError> {
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
        let done = |a: &Answer| {
            SetupOutcome::Done(a.render(), serde_json::to_value(a).unwrap_or_default())
        };
        if !changes {
            let a = crate::usecases::setup::run(config, &plan_args)
                .await
                .map_err(tool_error)?;
            return Ok(done(&a));
        }
        let mut input = input;
        let plan = crate::usecases::setup::run(config, &plan_args)
            .await
            .map_err(tool_error)?;
        let declined = |plan: &Answer| {
            let mut v = serde_json::to_value(plan).unwrap_or_default();
            v["declined"] = true.into();
            SetupOutcome::Done(
                format!("The user declined: nothing was changed.\n{}", plan.render()),
                v,
            )
        };
        let unavailable = |plan: &Answer| {
            let mut v = serde_json::to_value(plan).unwrap_or_default();
            v["confirm_required"] = true.into();
            SetupOutcome::Done(
                format!(
                    "Nothing was changed. Show the user this plan; call setup again with confirm: true once they agree.\n{}",
                    plan.render()
                ),
                v,
            )
        };
        // The questions: the undo, or each step still to do on its own (its calls, cost and
        // undo), so that only the accepted ones run.
        let questions: Vec<(String, String)> = if input.undo.is_some() {
            vec![("undo".to_string(), question(&plan, &input))]
        } else {
            let Answer::Plan(p) = &plan else {
                return Ok(unavailable(&plan));
            };
            p.steps
                .iter()
                .filter(|s| {
                    s.state == crate::usecases::setup::StepState::ToDo
                        && (input.steps.is_empty() || input.steps.iter().any(|x| x == s.id))
                })
                .map(|s| {
                    let one = SetupInput {
                        steps: vec![s.id.to_string()],
                        ..input.clone()
                    };
                    (s.id.to_string(), question(&plan, &one))
                })
                .collect()
        };
        if !questions.is_empty() {
            match asker.ask(input.confirm, &questions).await? {
                Asked::Ask(q) => return Ok(SetupOutcome::Ask(q)),
                Asked::Unavailable => return Ok(unavailable(&plan)),
                Asked::Answers(answers) => {
                    let accepted: Vec<String> = questions
                        .iter()
                        .zip(answers)
                        .filter(|(_, yes)| *yes)
                        .map(|((id, _), _)| id.clone())
                        .collect();
                    if accepted.is_empty() {
                        return Ok(declined(&plan));
                    }
                    if input.undo.is_none() {
                        input.steps = accepted;
                    }
                }
            }
        }
        let args = input.request(&state_dir, true)?;
        let a = crate::usecases::setup::run(config, &args)
            .await
            .map_err(tool_error)?;
        Ok(done(&a))
    }
}

/// What a `setup` call comes to: an answer, or (2026-07-28 clients) the questions to ask first.
pub enum SetupOutcome {
    /// The answer's text and structured content.
    Done(String, serde_json::Value),
    /// Ask the user these, then call again with the answers.
    Ask(rmcp::model::InputRequiredResult),
}

/// `setup` in the tool table ([`super::TOOLS`]).
pub const SETUP: super::ToolUnit = super::ToolUnit {
    name: "setup",
    account: false,
    uses: super::Uses::Setup,
    input: super::input::<SetupInput>(),
    run: |app, args, _| {
        Box::pin(async move {
            match app
                .setup_confirmed(super::arguments(args)?, &Asker::nobody("setup"))
                .await?
            {
                SetupOutcome::Done(text, value) => super::answer(text, value),
                SetupOutcome::Ask(_) => Err(ToolError::Unsupported(
                    "setup asked a question the command line cannot show".into(),
                )),
            }
        })
    },
    route: || ToolRouter::new().with_route((Ctx::setup_tool_attr(), Ctx::setup)),
};
