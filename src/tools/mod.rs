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

/// `1234.5` -> `1,234.50`; negative amounts keep their sign.
pub fn fmt_money(x: f64) -> String {
    let neg = x < 0.0;
    let cents = (x.abs() * 100.0).round() as u128;
    let (units, frac) = (cents / 100, cents % 100);
    let digits = units.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!(
        "{}{grouped}.{frac:02}",
        if neg && cents > 0 { "-" } else { "" }
    )
}

/// Most bytes of listed items (as JSON) in one answer page: big pages near the 25,000-token
/// tool-output limit of some clients (Claude Code's MAX_MCP_OUTPUT_TOKENS) get cut off, so a
/// page stops earlier and its cursor continues.
pub const PAGE_BYTES: usize = 40 * 1024;

/// Up to `max` items, stopping before their JSON passes [`PAGE_BYTES`] (always at least one).
pub fn take_page<T: Serialize>(items: impl IntoIterator<Item = T>, max: usize) -> Vec<T> {
    let mut bytes = 0;
    items
        .into_iter()
        .take(max)
        .enumerate()
        .take_while(|(i, item)| {
            bytes += serde_json::to_vec(item).map(|v| v.len() + 1).unwrap_or(0);
            *i == 0 || bytes <= PAGE_BYTES
        })
        .map(|(_, item)| item)
        .collect()
}

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

/// Run a tool by name outside MCP (the `call` CLI subcommand): the same
/// inputs, code and answers as the MCP tools. Returns (text, structured).
pub async fn run_tool(
    app: &crate::server::App,
    name: &str,
    args: serde_json::Value,
) -> Result<(String, serde_json::Value), ToolError> {
    run_tool_with_progress(app, name, args, no_progress()).await
}

/// [`run_tool`], reporting the progress of long questions (spend, untagged) to `progress`.
pub async fn run_tool_with_progress(
    app: &crate::server::App,
    name: &str,
    args: serde_json::Value,
    progress: Progress,
) -> Result<(String, serde_json::Value), ToolError> {
    let (mut text, mut value) = run_tool_inner(app, name, args, progress).await?;
    note_pinned_clock(&mut text, &mut value);
    Ok((text, value))
}

async fn run_tool_inner(
    app: &crate::server::App,
    name: &str,
    args: serde_json::Value,
    progress: Progress,
) -> Result<(String, serde_json::Value), ToolError> {
    let mut args = args;
    if let serde_json::Value::Object(m) = &mut args {
        app.coerce_args(name, m)?;
    }
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
    app: &crate::server::App,
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

#[cfg(test)]
mod tests {
    use super::fmt_money;

    #[test]
    fn money_formats() {
        assert_eq!(fmt_money(1234.5), "1,234.50");
        assert_eq!(fmt_money(-25.0), "-25.00");
        assert_eq!(fmt_money(0.004), "0.00");
        assert_eq!(fmt_money(1_000_000.0), "1,000,000.00");
    }
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn take_page_stops_at_the_byte_budget_but_never_returns_nothing() {
        let small: Vec<String> = (0..10).map(|i| format!("item{i}")).collect();
        assert_eq!(take_page(small.clone(), 3), small[..3]);
        assert_eq!(take_page(small.clone(), 50).len(), 10);
        let big: Vec<String> = (0..10).map(|_| "x".repeat(15 * 1024)).collect();
        let page = take_page(big.clone(), 50);
        assert_eq!(page.len(), 2, "3 x 15 KiB > 40 KiB");
        let huge = vec!["y".repeat(100 * 1024)];
        assert_eq!(
            take_page(huge, 50).len(),
            1,
            "one oversized item still goes out"
        );
    }
}
