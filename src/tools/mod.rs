//! Tools: thin and typed. Each file declares its tools (`#[tool]`), states their units in the
//! registry ([`TOOLS`]) and renders their text; the answer comes from a source or, for a question
//! that takes several, from a use case (`crate::usecases`). `respond` turns it into structured
//! content plus a short text table, or an `isError` result naming the fix.

pub mod anomalies;
pub use bedrock_cost_core::tools::args;
pub mod budget;
pub mod confirm;
pub mod lenient;
pub mod principals;
pub mod registry;
pub mod schema;
pub mod scope;
pub mod setup;
pub mod spend;
pub mod writes;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam};
use rmcp::service::RequestContext;
use serde::Serialize;

use crate::error::ToolError;
use crate::sources::{Progress, no_progress};
use crate::usecases::context::Ctx;

use crate::domain::label::fmt_money;

/// While the calendar clock is pinned (`--now`), every answer says so: a line in its notes
/// (added when the answer has none) and in its text.
pub fn note_pinned_clock(text: &mut String, value: &mut serde_json::Value) {
    let Some(note) = crate::domain::clock::note() else {
        return;
    };
    if let serde_json::Value::Object(m) = value
        && let serde_json::Value::Array(notes) = m
            .entry("notes")
            .or_insert_with(|| serde_json::Value::Array(vec![]))
    {
        notes.push(note.clone().into());
    }
    text.push_str("note: ");
    text.push_str(&note);
    text.push('\n');
}

/// The tool result: structured content plus the same answer as a short text.
pub fn respond<T: Serialize>(result: Result<(String, T), ToolError>) -> CallToolResult {
    match result {
        Ok((mut text, out)) => match serde_json::to_value(&out) {
            Ok(mut value) => {
                note_pinned_clock(&mut text, &mut value);
                // The readable text replaces the JSON copy rmcp would add: clients that
                // read structuredContent get the data, the others get the same answer
                // as a table, and the answer stays half the size.
                let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
                r.structured_content = Some(value);
                r
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
                "internal error serialising the answer: {e}"
            ))]),
        },
        Err(e) => {
            tracing::info!(error = %e, "tool error");
            let mut text = e.to_string();
            if let Some(note) = crate::domain::clock::note() {
                text.push_str("\n(");
                text.push_str(&note);
                text.push(')');
            }
            CallToolResult::error(vec![ContentBlock::text(text)])
        }
    }
}

/// Run a tool by name outside MCP, its arguments already checked
/// ([`crate::server::Server::run_tool`]), reporting the progress of long questions to `progress`.
pub async fn run_tool_with_progress(
    app: &Ctx,
    name: &str,
    args: serde_json::Value,
    progress: Progress,
) -> Result<Answer, ToolError> {
    // The command line has no caller: it sees everything, as stdio does.
    let mut a =
        crate::domain::visibility::run_as(None, run_tool_inner(app, name, args, progress)).await?;
    note_pinned_clock(&mut a.text, &mut a.value);
    Ok(a)
}

/// A tool's answer outside MCP: the text the MCP tool returns, its structured content, and the
/// typed output both were made from (for renderings such as the terminal tables, which read
/// fields of the type, never of the JSON).
pub struct Answer {
    pub text: String,
    pub value: serde_json::Value,
    output: Box<dyn std::any::Any + Send>,
}

impl Answer {
    /// The typed output, if the tool answers with a `T`.
    pub fn output<T: 'static>(&self) -> Option<&T> {
        self.output.downcast_ref::<T>()
    }
}

async fn run_tool_inner(
    app: &Ctx,
    name: &str,
    args: serde_json::Value,
    progress: Progress,
) -> Result<Answer, ToolError> {
    let mut args = args;
    // `profile`, `region`, `role_arn`: the account the call runs in (`accounts`).
    if let serde_json::Value::Object(m) = &mut args
        && unit(name).is_some_and(|u| u.account)
        && let Some((picked, account)) = app.for_call(m)?
    {
        let mut a = run_named(&picked, name, args, progress).await?;
        if let serde_json::Value::Object(m) = &mut a.value {
            m.insert("account".into(), account.to_json());
        }
        a.text.push_str(&account.label());
        a.text.push('\n');
        return Ok(a);
    }
    run_named(app, name, args, progress).await
}

/// Reads arguments as one input type; on failure, the path of the argument refused (`top_n`,
/// `period.end`) and serde's reason.
pub type Reader = fn(serde_json::Map<String, serde_json::Value>) -> Result<(), (String, String)>;

/// A tool's input type, as the server checks arguments against it before the tool runs.
pub struct Input {
    /// Read the arguments as the tool will.
    pub read: Reader,
    /// That type's input schema: the reader is used only while the tool still declares it.
    pub schema: fn() -> Option<Arc<rmcp::model::JsonObject>>,
}

/// Runs a tool outside MCP (the CLI `call`) and renders its text: (text, structured).
pub type Runner = for<'a> fn(
    &'a Ctx,
    serde_json::Value,
    Progress,
) -> futures::future::BoxFuture<'a, Result<Answer, ToolError>>;

/// One tool, as everything but its MCP declaration (`#[tool]`: name, description, input and
/// output schemas, whether it writes) sees it. The server's input checks, the account inputs and
/// the CLI `call` derive from [`TOOLS`]; a test holds it to the router's list.
pub struct ToolUnit {
    /// The name its `#[tool]` declares.
    pub name: &'static str,
    /// Takes `profile`, `region` and `role_arn` to answer for another AWS account.
    pub account: bool,
    /// What it reads or changes: `doctor` decides its sources and permission checks from this
    /// (an exhaustive match, so a new kind does not compile until doctor decides).
    pub uses: Uses,
    /// Its input type (None: it takes no arguments, or reads a type of its own).
    pub input: Option<Input>,
    /// How the CLI `call` runs it.
    pub run: Runner,
    /// Its route: the `#[tool]` declaration (name, description, schemas, whether it writes)
    /// and handler, for the MCP router.
    pub route: fn() -> rmcp::handler::server::router::tool::ToolRouter<Ctx>,
}

/// What a tool reads or changes, as `doctor` plans its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uses {
    /// Spend from the configured spend source (CUR, Athena or Cost Explorer).
    Spend,
    /// IAM users and roles, and their spend.
    Principals,
    /// Cost Explorer's cost-allocation tags.
    AllocationTags,
    /// The AWS Agent Registry.
    Registry,
    /// Model prices (Price List API, or the bundled snapshot).
    Prices,
    /// Budgets: the caller, its limits, its spend and prices.
    Budget,
    /// Spend baselines and Cost Explorer anomaly detection.
    Anomalies,
    /// Activates cost-allocation tags (a write).
    ActivateTags,
    /// Tags IAM users and roles (a write).
    TagPrincipals,
    /// Plans and makes the account's setup (writes; its own scope).
    Setup,
}

impl Uses {
    /// Whether its calls may scan a CUR export, wait on Athena, sweep IAM or make setup
    /// changes: such calls run as MCP tasks for clients that offer them.
    pub fn long_running(&self) -> bool {
        matches!(
            self,
            Uses::Spend | Uses::Principals | Uses::Anomalies | Uses::Setup
        )
    }

    /// The scope an HTTP caller needs beyond `cost.read` (and `cost.write` for a write): the
    /// one place that says which tools need more.
    pub fn extra_scope(&self) -> Option<&'static str> {
        match self {
            Uses::Setup => Some(crate::domain::visibility::SCOPE_SETUP),
            _ => None,
        }
    }
}

/// Does a tool change anything? Every tool not annotated read-only does (fail closed).
pub fn writes(tool: &rmcp::model::Tool) -> bool {
    tool.annotations.as_ref().and_then(|a| a.read_only_hint) != Some(true)
}

impl ToolUnit {
    /// Does it change anything (its `#[tool]` declaration says)?
    pub fn writes(&self) -> bool {
        (self.route)().map.values().any(|r| writes(&r.attr))
    }
}

fn read<T: serde::de::DeserializeOwned>(
    args: serde_json::Map<String, serde_json::Value>,
) -> Result<(), (String, String)> {
    serde_path_to_error::deserialize::<_, T>(serde_json::Value::Object(args))
        .map(|_| ())
        .map_err(|e| (e.path().to_string(), e.inner().to_string()))
}

fn schema_of<T: schemars::JsonSchema + 'static>() -> Option<Arc<rmcp::model::JsonObject>> {
    rmcp::handler::server::common::schema_for_input::<T>().ok()
}

pub(crate) const fn input<T: serde::de::DeserializeOwned + schemars::JsonSchema + 'static>()
-> Option<Input> {
    Some(Input {
        read: read::<T>,
        schema: schema_of::<T>,
    })
}

pub(crate) fn arguments<T: serde::de::DeserializeOwned>(
    args: serde_json::Value,
) -> Result<T, ToolError> {
    let args = if args.is_null() {
        serde_json::json!({})
    } else {
        args
    };
    serde_json::from_value(args).map_err(|e| ToolError::invalid(format!("arguments: {e}")))
}

pub(crate) fn answer<T: Serialize + Send + 'static>(
    text: String,
    o: T,
) -> Result<Answer, ToolError> {
    Ok(Answer {
        text,
        value: serde_json::to_value(&o).map_err(|e| ToolError::Internal(e.to_string()))?,
        output: Box::new(o),
    })
}

/// Every tool, once: each file states its tools; this is the one list of them.
pub static TOOLS: &[ToolUnit] = &[
    spend::BEDROCK_SPEND,
    principals::UNTAGGED_PRINCIPALS,
    principals::COST_ALLOCATION_TAGS,
    registry::SEARCH_REGISTRY,
    registry::LIST_REGISTRIES,
    registry::GET_REGISTRY_RECORD,
    budget::ESTIMATE_COST,
    budget::CHECK_BUDGET,
    anomalies::SPEND_ANOMALIES,
    writes::ACTIVATE_COST_ALLOCATION_TAGS,
    writes::TAG_PRINCIPAL,
    setup::SETUP,
];

/// The tool named `name`, if there is one.
pub fn unit(name: &str) -> Option<&'static ToolUnit> {
    TOOLS.iter().find(|t| t.name == name)
}

async fn run_named(
    app: &Ctx,
    name: &str,
    args: serde_json::Value,
    progress: Progress,
) -> Result<Answer, ToolError> {
    match unit(name) {
        Some(u) => (u.run)(app, args, progress).await,
        None => Err(ToolError::invalid(format!(
            "unknown tool '{name}'; use {}",
            TOOLS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Progress notifications for the request, if the client asked for them.
/// Progress values strictly increase, as the spec requires.
pub fn progress_reporter(ctx: &RequestContext<RoleServer>) -> Progress {
    let Some(token) = ctx.meta.get_progress_token() else {
        return no_progress();
    };
    let peer = ctx.peer.clone();
    let step = Arc::new(AtomicU64::new(0));
    Arc::new(move |_done: f64, total: f64, message: String| {
        let n = step.fetch_add(1, Ordering::Relaxed) + 1;
        let mut param =
            ProgressNotificationParam::new(token.clone(), n as f64).with_message(message);
        if total > 0.0 {
            param = param.with_total(total.max(n as f64));
        }
        let peer = peer.clone();
        tokio::spawn(async move {
            let _ = peer.notify_progress(param).await;
        });
    })
}
