//! Tools: thin and typed. Each file validates its input, makes one source
//! call and shapes a typed output; `respond` turns it into structured content
//! plus a short text table, or an `isError` result naming the fix.

pub mod anomalies;
pub mod args;
pub mod budget;
pub mod lenient;
pub mod principals;
pub mod registry;
pub mod schema;
pub mod scope;
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

use crate::domain::label::fmt_money;

use crate::usecases::take_page;

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
    app: &crate::usecases::context::App,
    name: &str,
    args: serde_json::Value,
    progress: Progress,
) -> Result<(String, serde_json::Value), ToolError> {
    let (mut text, mut value) = run_tool_inner(app, name, args, progress).await?;
    note_pinned_clock(&mut text, &mut value);
    Ok((text, value))
}

async fn run_tool_inner(
    app: &crate::usecases::context::App,
    name: &str,
    args: serde_json::Value,
    progress: Progress,
) -> Result<(String, serde_json::Value), ToolError> {
    let mut args = args;
    // `profile`, `region`, `role_arn`: the account the call runs in (`accounts`).
    if let serde_json::Value::Object(m) = &mut args
        && let Some((picked, account)) = app.for_call(name, m)?
    {
        let (mut text, mut value) = run_named(&picked, name, args, progress).await?;
        if let serde_json::Value::Object(m) = &mut value {
            m.insert("account".into(), account.to_json());
        }
        text.push_str(&account.label());
        text.push('\n');
        return Ok((text, value));
    }
    run_named(app, name, args, progress).await
}

async fn run_named(
    app: &crate::usecases::context::App,
    name: &str,
    args: serde_json::Value,
    progress: Progress,
) -> Result<(String, serde_json::Value), ToolError> {
    fn input<T: serde::de::DeserializeOwned>(args: serde_json::Value) -> Result<T, ToolError> {
        serde_json::from_value(args).map_err(|e| ToolError::invalid(format!("arguments: {e}")))
    }
    fn out<T: Serialize>(text: String, o: T) -> Result<(String, serde_json::Value), ToolError> {
        Ok((
            text,
            serde_json::to_value(o).map_err(|e| ToolError::invalid(e.to_string()))?,
        ))
    }
    let args = if args.is_null() {
        serde_json::json!({})
    } else {
        args
    };
    match name {
        "bedrock_spend" => {
            let o = app.spend(input(args)?, progress).await?;
            out(spend::render_text(&o), o)
        }
        "untagged_principals" => {
            let o = app.untagged(input(args)?, progress).await?;
            out(principals::render_untagged(&o), o)
        }
        "cost_allocation_tags" => {
            let o = app.tag_health(input(args)?).await?;
            out(principals::render_tags(&o), o)
        }
        "estimate_cost" => {
            let o = app.estimate(input(args)?).await?;
            out(
                format!(
                    "{} in {}: ${:.6} ({} prices as of {})\n",
                    o.model, o.region, o.cost_usd, o.price_source, o.prices_as_of
                ),
                o,
            )
        }
        "check_budget" => {
            let o = app.check(input(args)?).await?;
            out(budget::render_check(&o), o)
        }
        "spend_anomalies" => {
            let o = app.anomalies(input(args)?).await?;
            out(anomalies::render(&o), o)
        }
        "search_registry" => {
            let o = app.registry_search(input(args)?).await?;
            out(registry::render_search(&o), o)
        }
        "get_registry_record" => {
            let o = app.registry_get(input(args)?).await?;
            out(registry::render_records(&o.records, &o.errors), o)
        }
        _ => Err(ToolError::invalid(format!(
            "unknown tool '{name}'; use bedrock_spend, untagged_principals, cost_allocation_tags, estimate_cost, check_budget, spend_anomalies, search_registry or get_registry_record"
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
