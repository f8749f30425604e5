//! Budget checks for agents before an expensive call: `estimate_cost` (the
//! price of a planned call) and `check_budget` (allow / warn / deny with the
//! budget, what is spent, what is not billed yet, the forecast and the
//! remainder, and how fresh each figure is).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::tool;

pub use super::args::{CheckInput, EstimateInput};
use super::{fmt_money, respond};
use crate::usecases::context::Ctx;

pub use crate::usecases::budget::{CheckOutput, EstimateOutput, Released};

impl Ctx {
    /// Price of a planned Bedrock call, from the AWS Price List (dated snapshot offline).
    #[tool(
        name = "estimate_cost",
        title = "Price a Bedrock call",
        output_schema = rmcp::handler::server::tool::schema_for_output::<EstimateOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true)
    )]
    pub async fn estimate_cost(
        &self,
        Parameters(input): Parameters<EstimateInput>,
    ) -> CallToolResult {
        respond(self.estimate(input).await.map(|o| {
            let t = format!(
                "{} in {}: ${:.6} ({}). Prices per 1K tokens: input ${}, output ${}; source {} as of {}.\n",
                o.model,
                o.region,
                o.cost_usd,
                o.breakdown.iter().map(|(k, v)| format!("{k} ${v:.6}")).collect::<Vec<_>>().join(", "),
                o.unit_prices_per_1k.input_per_1k,
                o.unit_prices_per_1k.output_per_1k,
                o.price_source,
                o.prices_as_of
            );
            (t, o)
        }))
    }

    /// Before an expensive Bedrock call: allow, warn or deny, with price, budget (AWS or local), spend, unbilled checks, forecast, what is left.
    #[tool(
        name = "check_budget",
        title = "Can I afford this call?",
        output_schema = rmcp::handler::server::tool::schema_for_output::<CheckOutput>(),
        annotations(read_only_hint = true)
    )]
    pub async fn check_budget(&self, Parameters(input): Parameters<CheckInput>) -> CallToolResult {
        respond(self.check(input).await.map(|o| (render_check(&o), o)))
    }
}

pub(crate) fn render_check(o: &CheckOutput) -> String {
    let money = |v: Option<f64>| v.map(fmt_money).unwrap_or_else(|| "(withheld)".into());
    let mut t = format!(
        "{} for {}: planned {}, spent {} + unbilled {} this month{}.\n",
        o.verdict.to_uppercase(),
        o.who,
        fmt_money(o.planned_cost),
        money(o.spent),
        money(o.unbilled),
        match (&o.budget, o.remaining_after) {
            (Some(b), Some(r)) => format!(
                "; budget {} {} ({}), {} left after",
                b.name,
                fmt_money(b.limit_usd),
                b.source,
                fmt_money(r)
            ),
            _ => String::new(),
        }
    );
    for r in &o.reasons {
        t.push_str(&format!("- {r}\n"));
    }
    if let Some(f) = o.forecast {
        t.push_str(&format!(
            "Forecast to month end: {} ({}).\n",
            fmt_money(f),
            o.forecast_method
        ));
    }
    if let Some(id) = &o.check_id {
        t.push_str(&format!(
            "Recorded as unbilled spend: check_id {id} (if the call does not run, check again with release: \"{id}\").\n"
        ));
    }
    if let Some(w) = &o.figures_withheld {
        t.push_str(&format!("Note: {w}\n"));
    }
    for n in &o.notes {
        t.push_str(&format!("Note: {n}\n"));
    }
    t
}

/// `estimate_cost` in the tool table ([`super::TOOLS`]).
pub const ESTIMATE_COST: super::ToolUnit = super::ToolUnit {
    name: "estimate_cost",
    // Prices are public and the same in every account (its `region` is the Bedrock region
    // of the call it prices).
    account: false,
    uses: super::Uses::Prices,
    input: super::input::<super::args::EstimateInput>(),
    run: |app, args, _| {
        Box::pin(async move {
            let o = app.estimate(super::arguments(args)?).await?;
            let text = format!(
                "{} in {}: ${:.6} ({} prices as of {})\n",
                o.model, o.region, o.cost_usd, o.price_source, o.prices_as_of
            );
            super::answer(text, o)
        })
    },
    route: || ToolRouter::new().with_route((Ctx::estimate_cost_tool_attr(), Ctx::estimate_cost)),
};

/// `check_budget` in the tool table ([`super::TOOLS`]).
pub const CHECK_BUDGET: super::ToolUnit = super::ToolUnit {
    name: "check_budget",
    account: true,
    uses: super::Uses::Budget,
    input: super::input::<super::args::CheckInput>(),
    run: |app, args, _| {
        Box::pin(async move {
            let o = app.check(super::arguments(args)?).await?;
            super::answer(render_check(&o), o)
        })
    },
    route: || ToolRouter::new().with_route((Ctx::check_budget_tool_attr(), Ctx::check_budget)),
};
