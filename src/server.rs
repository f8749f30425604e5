//! The MCP server: the tool router built from every tool's declaration, the input checks
//! derived from it, authorisation at dispatch, and the prompts and resources. One `Server` for
//! both transports; the tools run over its [`Ctx`] context.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    ErrorData, GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool_handler};

use crate::config::Config;
use crate::error::ToolError;
use crate::sources::Progress;
use crate::tools::schema::{check_input, compact_input, compact_output};
pub use crate::usecases::context::Ctx;

const INSTRUCTIONS: &str = "Answers who spends what on Amazon Bedrock, per IAM principal. \
bedrock_spend: spend for a period grouped by principal tag (tag:<key>), service, usage type or region on Cost Explorer, \
and by principal ARN, role, session, model and token kind on CUR. Periods: start inclusive, end exclusive. \
Untagged spend is always shown. Billing data lags 24-48 h; every answer says as_of and estimated. \
Cost Explorer requests cost $0.01 each; answers are cached, so repeat questions are free. \
Prompts who_is_spending, tag_hygiene_report and before_i_run_this_job chain the tools for common asks.";

/// Added to the instructions when tool calls may pick an AWS account.
const ACCOUNT_INSTRUCTIONS: &str = " AWS-backed tools take optional profile (AWS config profile), \
region (GovCloud/China regions select their partition) and role_arn (IAM role to assume), allowed \
values in their schemas, to answer for another account; omit them for the server's own.";

/// The MCP server: a context and the tools over it. Cheap to clone (the HTTP transport clones
/// it for every request).
#[derive(Clone)]
pub struct Server {
    /// The context the tools run in.
    pub app: Ctx,
    /// Every tool, as declared by its `#[tool]`.
    tool_router: Arc<ToolRouter<Ctx>>,
    /// Per tool, how its arguments are checked (`coerce_args`).
    input_checks: Arc<std::collections::HashMap<String, InputCheck>>,
    /// Tool calls running as MCP tasks (SEP-2663), and who started each.
    tasks: Arc<Tasks>,
}

/// Tasks and their owners: a task belongs to the caller who started it; only that caller can
/// read or cancel it, and each caller runs at most [`MAX_TASKS_PER_CALLER`] at once.
#[derive(Default)]
struct Tasks {
    manager: rmcp::task_manager::TaskManager,
    /// Task id -> owner (the authenticated caller's name; `stdio` without authentication).
    owners: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Working tasks one caller may have at once.
const MAX_TASKS_PER_CALLER: usize = 4;

/// Working tasks the server runs at once, for all callers.
const MAX_TASKS: usize = 32;

/// How long a task may run, and how long its result is kept after (ms).
const TASK_TTL_MS: u64 = 15 * 60 * 1000;

impl Server {
    /// Build the context the configuration asks for and the tools over it (the write tools only
    /// with `--allow-writes`).
    pub async fn build(config: Config) -> Result<Server, String> {
        let app = Ctx::build(config).await?;
        let config = app.config.clone();
        // Every tool in the table; the ones that write (not annotated read-only in their
        // `#[tool]`) only with --allow-writes.
        let mut tool_router = ToolRouter::new();
        for unit in crate::tools::TOOLS {
            let route = (unit.route)();
            if config.allow_writes || !route.map.values().any(|r| crate::tools::writes(&r.attr)) {
                tool_router += route;
            }
        }
        let mut input_checks = std::collections::HashMap::new();
        for route in tool_router.map.values_mut() {
            let mut input = compact_input(&route.attr.input_schema);
            let mut check = check_input(&route.attr.input_schema);
            if crate::tools::unit(&route.attr.name).is_some_and(|u| u.account) {
                crate::accounts::advertise(Arc::make_mut(&mut input), &config);
                crate::accounts::advertise(Arc::make_mut(&mut check), &config);
            }
            input_checks.insert(
                route.attr.name.to_string(),
                InputCheck {
                    read: crate::tools::unit(&route.attr.name)
                        .and_then(|u| u.input.as_ref())
                        .filter(|i| (i.schema)().is_some_and(|s| *s == *route.attr.input_schema))
                        .map(|i| i.read),
                    schema: check,
                },
            );
            route.attr.input_schema = input;
            if let Some(out) = &route.attr.output_schema {
                route.attr.output_schema = Some(compact_output(out));
            }
        }
        Ok(Server {
            app,
            tool_router: Arc::new(tool_router),
            input_checks: Arc::new(input_checks),
            tasks: Arc::new(Tasks::default()),
        })
    }

    /// Convert arguments sent as JSON text or strings to the types the tool declares
    /// (`tools::lenient`), then check them against the tool's input schema, so that a wrong
    /// argument is refused with its name, the forms it takes and an example before the tool
    /// reads its input. Last, the arguments are read as the tool will read them: anything the
    /// schema lets through but the tool's type refuses is named by its path too (never serde's
    /// bare "failed to deserialize parameters").
    pub fn coerce_args(
        &self,
        tool: &str,
        args: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ToolError> {
        let Some(InputCheck { schema, read }) = self.input_checks.get(tool) else {
            return Ok(());
        };
        crate::tools::lenient::coerce(args, schema);
        let mut own = args.clone();
        if crate::tools::unit(tool).is_some_and(|u| u.account) {
            // Taken out before the tool reads its input and checked there (`for_call`).
            for k in ["profile", "region", "role_arn"] {
                own.remove(k);
            }
        }
        crate::tools::lenient::check(&own, schema).map_err(ToolError::invalid)?;
        match read {
            Some(read) => read(own).map_err(|(path, e)| {
                ToolError::invalid(crate::tools::lenient::explain_serde(&path, &e, schema))
            }),
            None => Ok(()),
        }
    }

    /// Does this tool change anything? Every listed tool not annotated read-only does (fail
    /// closed: a new tool without the annotation needs the write scope). An unknown name runs
    /// nothing: rmcp answers that the tool does not exist.
    pub(crate) fn writes(&self, tool: &str) -> bool {
        self.tool_router
            .map
            .get(tool)
            .is_some_and(|r| crate::tools::writes(&r.attr))
    }

    /// Run a tool by name outside MCP (the `call` CLI subcommand): the same inputs, checks, code
    /// and answers as the MCP tools.
    pub async fn run_tool(
        &self,
        name: &str,
        args: serde_json::Value,
    ) -> Result<crate::tools::Answer, ToolError> {
        self.run_tool_with_progress(name, args, crate::sources::no_progress())
            .await
    }

    /// [`Server::run_tool`], reporting the progress of long questions (spend, untagged).
    pub async fn run_tool_with_progress(
        &self,
        name: &str,
        args: serde_json::Value,
        progress: Progress,
    ) -> Result<crate::tools::Answer, ToolError> {
        if crate::tools::unit(name).is_some() && !self.tool_router.map.contains_key(name) {
            return Err(ToolError::Forbidden(format!(
                "{name} changes the AWS account and is offered only with --allow-writes"
            )));
        }
        let mut args = args;
        if let serde_json::Value::Object(m) = &mut args {
            self.coerce_args(name, m)?;
        }
        crate::tools::run_tool_with_progress(&self.app, name, args, progress).await
    }
}

/// How one tool's arguments are checked before it reads them.
#[derive(Clone)]
struct InputCheck {
    /// The input schema with ranges and examples (`tools::schema::check_input`).
    schema: Arc<rmcp::model::JsonObject>,
    /// Read the arguments as the tool's input type reads them.
    read: Option<crate::tools::Reader>,
}

/// The server's icon (`assets/icon.svg`, as a data: URI), shown by clients beside the server's
/// name and tools. It goes in the `initialize` answer only: giving each tool its own copy would
/// add about 400 bytes per tool to every `tools/list` (see the README's client section).
fn server_icon() -> rmcp::model::Icon {
    static SRC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let src = SRC.get_or_init(|| {
        use base64::Engine;
        format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(include_str!("../assets/icon.svg"))
        )
    });
    let mut icon = rmcp::model::Icon::new(src.clone());
    icon.mime_type = Some("image/svg+xml".into());
    icon.sizes = Some(vec!["any".into()]);
    icon
}

/// How long a client may take the lists of tools, prompts and resources as fresh (ms): they
/// are fixed for the life of the process (the flags decide them at start), the same for every
/// caller (scopes are checked when a tool is called, not by hiding it), so any cache may keep
/// them. An hour: a restart with other flags (`--allow-writes`) shows within it.
pub const LIST_TTL_MS: u64 = 60 * 60 * 1000;

/// The caching hints (SEP-2549) for a list, sent only to clients on 2026-07-28 or later (the
/// version that defines them; older clients get the lists as before, not a byte more).
fn list_cache_hints(
    context: &RequestContext<RoleServer>,
) -> (Option<u64>, Option<rmcp::model::CacheScope>) {
    if context
        .protocol_version()
        .is_some_and(|v| v >= rmcp::model::ProtocolVersion::V_2026_07_28)
    {
        (Some(LIST_TTL_MS), Some(rmcp::model::CacheScope::Public))
    } else {
        (None, None)
    }
}

/// What the HTTP transport's guard put on the request (the authenticated caller, the request's
/// note): None over stdio.
fn request_extension<T: Clone + Send + Sync + 'static>(
    context: &RequestContext<RoleServer>,
) -> Option<T> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<T>())
        .cloned()
}

impl Server {
    /// Run a tool call to its answer (the caller set for its answers' scope, the picked
    /// account's context, the request's cancellation).
    async fn dispatch(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
        caller: Option<crate::domain::visibility::Caller>,
        picked: Option<(Ctx, crate::accounts::Account)>,
    ) -> Result<rmcp::model::CallToolResponse, ErrorData> {
        let account = picked.as_ref().map(|(_, a)| a.clone());
        let tool = request.name.clone();
        // A cancelled request (the client went away, or the HTTP deadline dropped the stream)
        // drops the tool's work with it, whatever the tool does.
        let ct = context.ct.clone();
        let run = async move {
            let app = picked.map_or_else(|| self.app.clone(), |(app, _)| app);
            let tcc = rmcp::handler::server::tool::ToolCallContext::new(&app, request, context);
            // The one place the caller is set: the answers' scope and the per-caller share of
            // paid requests read it from here (`domain::visibility::current`).
            crate::domain::visibility::run_as(caller.map(Arc::new), self.tool_router.call(tcc))
                .await
        };
        let mut result = tokio::select! {
            r = run => r,
            () = ct.cancelled() => Err(rmcp::ErrorData::internal_error("the request was cancelled", None)),
        };
        if let (Some(account), Ok(rmcp::model::CallToolResponse::Complete(r))) =
            (account, result.as_mut())
        {
            crate::accounts::annotate(r, &account);
        }
        // The last net: rmcp's own "failed to deserialize parameters" (a tool `typed_check` does
        // not know) is worded as every other input error, with the tool's arguments.
        if let Ok(rmcp::model::CallToolResponse::Complete(r)) = result.as_mut()
            && r.is_error == Some(true)
            && let Some(why) = r
                .content
                .first()
                .and_then(|c| c.as_text())
                .and_then(|t| t.text.strip_prefix("failed to deserialize parameters:"))
                .map(|w| w.trim().to_string())
        {
            let text = match self.input_checks.get(tool.as_ref() as &str) {
                Some(check) => crate::tools::lenient::explain_serde("", &why, &check.schema),
                None => why,
            };
            r.content = vec![rmcp::model::ContentBlock::text(
                ToolError::invalid(text).to_string(),
            )];
        }
        result
    }

    /// Who owns tasks started in this request: the authenticated caller, else `stdio`.
    fn task_owner(context: &RequestContext<RoleServer>) -> String {
        request_extension::<crate::domain::visibility::Caller>(context)
            .map_or_else(|| "stdio".to_string(), |c| c.name.clone())
    }

    /// The task exists and belongs to this request's caller (an unknown and a foreign task
    /// answer alike, so task ids cannot be probed).
    fn task_owned(
        &self,
        task_id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let owner = Self::task_owner(context);
        let owners = self.tasks.owners.lock().expect("task owners lock");
        if owners.get(task_id) == Some(&owner) {
            Ok(())
        } else {
            Err(ErrorData::invalid_params(
                format!("no task {task_id}"),
                None,
            ))
        }
    }

    /// Start a tool call as a task: the call answers with the task at once; `tasks/get`
    /// answers its state and, once done, the tool's result; `tasks/cancel` drops the work
    /// (an Athena query is stopped, a scan ends).
    fn start_task(
        &self,
        request: rmcp::model::CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
        caller: Option<crate::domain::visibility::Caller>,
        picked: Option<(Ctx, crate::accounts::Account)>,
    ) -> Result<rmcp::model::CallToolResponse, ErrorData> {
        let owner = Self::task_owner(&context);
        {
            let owners = self.tasks.owners.lock().expect("task owners lock");
            let working = owners
                .iter()
                .filter(|(id, o)| {
                    **o == owner
                        && self.tasks.manager.get_task(id).is_ok_and(|t| {
                            matches!(
                                t.status(),
                                rmcp::model::TaskStatus::Working
                                    | rmcp::model::TaskStatus::InputRequired
                            )
                        })
                })
                .count();
            let all = owners
                .keys()
                .filter(|id| {
                    self.tasks.manager.get_task(id).is_ok_and(|t| {
                        matches!(
                            t.status(),
                            rmcp::model::TaskStatus::Working
                                | rmcp::model::TaskStatus::InputRequired
                        )
                    })
                })
                .count();
            if all >= MAX_TASKS {
                return Ok(crate::tools::respond::<()>(Err(ToolError::Unsupported(format!(
                    "the server is running {all} tasks for all callers (at most {MAX_TASKS}); try again in a minute"
                ))))
                .into());
            }
            if working >= MAX_TASKS_PER_CALLER {
                return Ok(crate::tools::respond::<()>(Err(ToolError::Unsupported(format!(
                    "{working} tasks of this caller are still working (at most {MAX_TASKS_PER_CALLER}); wait for one or cancel it"
                ))))
                .into());
            }
        }
        // The task outlives this request: its own cancellation, not the request's.
        context.ct = tokio_util::sync::CancellationToken::new();
        let me = self.clone();
        let task = self.tasks.manager.spawn(
            rmcp::task_manager::TaskOptions::new()
                .with_ttl_ms(TASK_TTL_MS)
                .with_poll_interval_ms(500)
                .with_status_message(format!("{} running", request.name)),
            move |tctx| {
                Box::pin(async move {
                    let run = tokio::time::timeout(
                        std::time::Duration::from_millis(TASK_TTL_MS),
                        me.dispatch(request, context, caller, picked),
                    );
                    tokio::select! {
                        r = run => match r {
                            Ok(Ok(rmcp::model::CallToolResponse::Complete(r))) => Ok(r),
                            Ok(Ok(_)) => Err(rmcp::task_manager::TaskExit::Error(ErrorData::internal_error("the tool asked for input, which a task does not carry: call it without the tasks capability", None))),
                            Ok(Err(e)) => Err(rmcp::task_manager::TaskExit::Error(e)),
                            Err(_) => Err(rmcp::task_manager::TaskExit::Error(ErrorData::internal_error(format!("the task ran longer than {} min and was stopped", TASK_TTL_MS / 60_000), None))),
                        },
                        () = tctx.cancelled() => Err(rmcp::task_manager::TaskExit::Cancelled),
                    }
                })
            },
        );
        let mut owners = self.tasks.owners.lock().expect("task owners lock");
        // Forget owners of tasks the manager no longer keeps.
        owners.retain(|id, _| self.tasks.manager.get_task(id).is_ok());
        owners.insert(task.task_id.clone(), owner);
        Ok(rmcp::model::CallToolResponse::Task(
            rmcp::model::CreateTaskResult::new(task),
        ))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    /// Tools run as the authenticated caller, whose visibility narrows their answers.
    async fn call_tool(
        &self,
        mut request: rmcp::model::CallToolRequestParams,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, rmcp::ErrorData> {
        let caller = request_extension::<crate::domain::visibility::Caller>(&context);
        let note = request_extension::<crate::domain::visibility::RequestNote>(&context);
        // Authorisation happens here, on the name rmcp decoded (escapes, duplicate keys and
        // all), never on a second reading of the body.
        if let Some(n) = &note {
            n.call(
                &request.name,
                &serde_json::to_string(&context.id).unwrap_or_default(),
            );
        }
        if let Some(c) = &caller {
            if self.writes(&request.name) && !c.has_scope(crate::domain::visibility::SCOPE_WRITE) {
                if let Some(n) = &note {
                    n.denied(&request.name, crate::domain::visibility::SCOPE_WRITE);
                }
                return Ok(
                    crate::tools::respond::<()>(Err(ToolError::Forbidden(format!(
                        "{} changes the AWS account and needs scope {}; this caller has {}",
                        request.name,
                        crate::domain::visibility::SCOPE_WRITE,
                        c.scopes.join(" ")
                    ))))
                    .into(),
                );
            }
            if let Some(scope) =
                crate::tools::unit(&request.name).and_then(|u| u.uses.extra_scope())
                && !c.has_scope(scope)
            {
                if let Some(n) = &note {
                    n.denied(&request.name, scope);
                }
                return Ok(
                    crate::tools::respond::<()>(Err(ToolError::Forbidden(format!(
                        "{} needs scope {scope}; this caller has {}",
                        request.name,
                        c.scopes.join(" ")
                    ))))
                    .into(),
                );
            }
            // A caller whose visibility grants nothing may still price a call (public prices).
            if request.name != "estimate_cost"
                && let Some(why) = c
                    .visibility
                    .as_ref()
                    .and_then(crate::domain::visibility::Visibility::grants_nothing)
            {
                return Ok(
                    crate::tools::respond::<()>(Err(ToolError::Forbidden(format!(
                        "{why}. Ask the server's operator for a token that names what you may see"
                    ))))
                    .into(),
                );
            }
        }
        if let Some(args) = request.arguments.as_mut()
            && let Err(e) = self.coerce_args(&request.name, args)
        {
            return Ok(crate::tools::respond::<()>(Err(e)).into());
        }
        // A call may pick the AWS account it runs in (`accounts`).
        let picked = match request.arguments.as_mut() {
            Some(args) if crate::tools::unit(&request.name).is_some_and(|u| u.account) => {
                match self.app.for_call(args) {
                    Ok(picked) => picked,
                    Err(e) => return Ok(crate::tools::respond::<()>(Err(e)).into()),
                }
            }
            _ => None,
        };
        // A client that speaks the tasks extension gets the long tools (CUR and Athena scans,
        // IAM sweeps, setup) as a task at once, and polls it.
        // The client's capabilities come from this request's metadata on 2026-07-28 (the
        // stateless HTTP transport), else from its `initialize`. A write on 2026-07-28 asks its
        // questions inline (`input_required`) and runs as a task once the answers come back.
        let asks_first = self.writes(&request.name)
            && request.input_responses.is_none()
            && context
                .protocol_version()
                .is_some_and(|v| v >= rmcp::model::ProtocolVersion::V_2026_07_28);
        if crate::tools::unit(&request.name).is_some_and(|u| u.uses.long_running())
            && !asks_first
            && context
                .client_capabilities()
                .is_some_and(|c| c.supports_tasks())
        {
            return self.start_task(request, context, caller, picked);
        }
        self.dispatch(request, context, caller, picked).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_tasks()
                .build(),
        )
        .with_server_info(
            Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                .with_icons(vec![server_icon()]),
        )
        .with_instructions({
            let c = &self.app.config;
            if c.allow_profiles.is_empty()
                && c.allow_regions.is_empty()
                && c.allow_role_arns.is_empty()
            {
                INSTRUCTIONS.to_string()
            } else {
                format!("{INSTRUCTIONS}{ACCOUNT_INSTRUCTIONS}")
            }
        })
    }

    async fn get_task(
        &self,
        request: rmcp::model::GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetTaskResult, ErrorData> {
        self.task_owned(&request.task_id, &context)?;
        self.tasks
            .manager
            .get_task(&request.task_id)
            .map(rmcp::model::GetTaskResult::new)
    }

    async fn cancel_task(
        &self,
        request: rmcp::model::CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_owned(&request.task_id, &context)?;
        self.tasks.manager.cancel_task(&request.task_id)
    }

    async fn update_task(
        &self,
        request: rmcp::model::UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.task_owned(&request.task_id, &context)?;
        self.tasks
            .manager
            .update_task(&request.task_id, request.input_responses)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, ErrorData> {
        let mut r = rmcp::model::ListToolsResult::with_all_items(self.tool_router.list_all());
        (r.ttl_ms, r.cache_scope) = list_cache_hints(&context);
        Ok(r)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let mut r = ListPromptsResult::with_all_items(crate::prompts::list());
        (r.ttl_ms, r.cache_scope) = list_cache_hints(&context);
        Ok(r)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        crate::prompts::get(
            &request.name,
            request.arguments.as_ref(),
            &self.app.config.default_tag_key,
            &self.app.config.required_tag_keys,
        )
        .map(Into::into)
        .map_err(|e| ErrorData::invalid_params(e, None))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mut r = ListResourcesResult::with_all_items(crate::resources::list());
        (r.ttl_ms, r.cache_scope) = list_cache_hints(&context);
        Ok(r)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let mut r = ListResourceTemplatesResult::with_all_items(vec![]);
        (r.ttl_ms, r.cache_scope) = list_cache_hints(&context);
        Ok(r)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = request_extension::<crate::domain::visibility::Caller>(&context).map(Arc::new);
        if let Some(id) = request
            .uri
            .strip_prefix(crate::usecases::context::CHARTS_URI_PREFIX)
        {
            let owner = caller
                .as_ref()
                .map_or_else(|| "stdio".to_string(), |c| c.name.clone());
            // Another caller's chart answers like a chart that is gone.
            return match self.app.charts.get(id).filter(|(o, _)| *o == owner) {
                Some((_, png)) => {
                    use base64::Engine;
                    Ok(ReadResourceResult::new(vec![
                        ResourceContents::blob(
                            base64::engine::general_purpose::STANDARD.encode(png.as_slice()),
                            request.uri,
                        )
                        .with_mime_type("image/png"),
                    ])
                    .into())
                }
                None => Err(ErrorData::resource_not_found(
                    format!(
                        "no chart '{}' (charts are kept an hour; ask bedrock_spend with chart: true again)",
                        request.uri
                    ),
                    // SEP-2164: the URI that was not found, for the client to match.
                    Some(serde_json::json!({ "uri": request.uri })),
                )),
            };
        }
        let value = match request.uri.as_str() {
            crate::resources::CONFIG_URI => self.app.effective_config(),
            crate::resources::REQUIRED_TAGS_URI => {
                crate::domain::visibility::run_as(caller, self.app.required_tags_policy()).await
            }
            other => {
                return Err(ErrorData::resource_not_found(
                    format!(
                        "no resource '{other}'; read {} or {}",
                        crate::resources::CONFIG_URI,
                        crate::resources::REQUIRED_TAGS_URI
                    ),
                    Some(serde_json::json!({ "uri": other })),
                ));
            }
        };
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri).with_mime_type("application/json"),
        ])
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn every_tool_but_the_paged_anomalies_is_read_with_its_own_type() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        let config = Cli::try_parse_from(["x", "--demo", "--allow-writes"])
            .unwrap()
            .config;
        let server = Server::build(config).await.unwrap();
        let unread: Vec<&str> = server
            .input_checks
            .iter()
            .filter(|(_, c)| c.read.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        // list_registries takes no arguments; spend_anomalies reads `tools::anomalies::
        // AnomalyPageInput` until its paging fields move into `args::AnomalyInput`.
        for name in unread {
            assert!(
                ["list_registries", "spend_anomalies"].contains(&name),
                "{name} is not read with its input type"
            );
        }
        // The tool table and the router list the same tools, once each.
        let mut routed: Vec<&str> = server
            .tool_router
            .map
            .keys()
            .map(std::convert::AsRef::as_ref)
            .collect();
        let mut listed: Vec<&str> = crate::tools::TOOLS.iter().map(|t| t.name).collect();
        routed.sort_unstable();
        listed.sort_unstable();
        assert_eq!(routed, listed);
        listed.dedup();
        assert_eq!(
            listed.len(),
            crate::tools::TOOLS.len(),
            "a tool listed twice"
        );
    }
}
