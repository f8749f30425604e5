//! `spend_anomalies`: the tool over [`crate::usecases::anomalies`].

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::tool;

pub use super::args::AnomalyInput;
use super::{fmt_money, respond};
pub use crate::domain::anomaly::{Anomaly, Driver};
pub use crate::usecases::anomalies::{AnomalyOutput, Finding, NewSpender};
use crate::usecases::context::Ctx;

impl Ctx {
    /// Spend spikes (runaway agent loop?) per role, principal or tag: each day vs its prior 14 days (CUR), plus Cost Explorer anomalies.
    #[tool(
        name = "spend_anomalies",
        title = "Spend spikes",
        output_schema = rmcp::handler::server::tool::schema_for_output::<AnomalyOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true)
    )]
    pub async fn spend_anomalies(
        &self,
        Parameters(input): Parameters<AnomalyInput>,
    ) -> CallToolResult {
        respond(self.anomalies(input).await.map(|o| (render(&o), o)))
    }
}

/// A day's total and its split by model.
pub(crate) fn render(o: &AnomalyOutput) -> String {
    let mut t = format!(
        "Spend anomalies by {} from {} to {}: {} found ({} groups checked), most money at risk first.\n",
        o.by, o.period.start, o.period.end, o.row_count, o.groups_checked
    );
    for a in &o.anomalies {
        t.push_str(&format!(
            "- {} {}: {} vs expected {}, +{} (score {}){}{}\n",
            a.day,
            a.who,
            fmt_money(a.actual),
            fmt_money(a.expected),
            fmt_money(a.excess),
            a.score,
            if a.drivers.is_empty() {
                String::new()
            } else {
                format!(
                    "; driven by {}",
                    a.drivers
                        .iter()
                        .map(|d| format!("{} {}", d.model, fmt_money(d.amount)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            a.budget_threatened
                .as_ref()
                .map(|b| format!("; threatens budget {b}"))
                .unwrap_or_default()
        ));
    }
    if let Some(c) = &o.next_cursor {
        t.push_str(&format!(
            "{} of {} findings shown; pass cursor \"{c}\" for more.\n",
            o.anomalies.len(),
            o.row_count
        ));
    }
    for s in &o.new_spenders {
        t.push_str(&format!(
            "New spender {} (first spend {}): {} while too new to judge.\n",
            s.who,
            s.first_day,
            fmt_money(s.amount)
        ));
    }
    t.push_str(&format!("Rule: {}.\n", o.rule));
    for n in &o.notes {
        t.push_str(&format!("Note: {n}\n"));
    }
    t
}

/// `spend_anomalies` in the tool table ([`super::TOOLS`]).
pub const SPEND_ANOMALIES: super::ToolUnit = super::ToolUnit {
    name: "spend_anomalies",
    account: true,
    uses: super::Uses::Anomalies,
    // The tool reads `AnomalyPageInput` (with its paging fields), whose schema
    // differs: its arguments are checked by schema only.
    input: super::input::<super::args::AnomalyInput>(),
    run: |app, args, _| {
        Box::pin(async move {
            let o = app.anomalies(super::arguments(args)?).await?;
            super::answer(render(&o), o)
        })
    },
    route: || {
        ToolRouter::new().with_route((Ctx::spend_anomalies_tool_attr(), Ctx::spend_anomalies))
    },
};
