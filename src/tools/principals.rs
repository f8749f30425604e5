//! `untagged_principals` and `cost_allocation_tags`: the tools over [`crate::usecases::untagged`].

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool};

pub use super::args::{KindInput, TagsInput, UntaggedInput};
use super::{progress_reporter, respond};
use crate::error::ToolError;
use crate::sources::iam::IamKind;
use crate::usecases::context::Ctx;

pub use crate::usecases::untagged::{
    Finding, Orphan, SessionSpend, TagsOutput, UntaggedOutput, UntaggedSummary,
};

impl Ctx {
    /// IAM users and roles missing required tag keys, ranked by Bedrock spend, with fixes, spend of principals IAM no longer lists, a policy requiring the keys. Cost Explorer $0.01/request.
    #[tool(
        name = "untagged_principals",
        title = "Principals that escape attribution",
        output_schema = rmcp::handler::server::tool::schema_for_output::<UntaggedOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true)
    )]
    pub async fn untagged_principals(
        &self,
        Parameters(input): Parameters<UntaggedInput>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let progress = progress_reporter(&ctx);
        let result = tokio::select! {
            r = self.untagged(input, progress) => r.map(|o| (render_untagged(&o), o)),
            _ = ctx.ct.cancelled() => Err(ToolError::Cancelled),
        };
        respond(result)
    }

    /// iamPrincipal/* cost-allocation tag keys: status, last use, missing or inactive required keys, how to activate ($0.01 Cost Explorer request, cached 1 h).
    #[tool(
        name = "cost_allocation_tags",
        title = "Principal tag activation",
        output_schema = rmcp::handler::server::tool::schema_for_output::<TagsOutput>(),
        annotations(read_only_hint = true, idempotent_hint = true)
    )]
    pub async fn cost_allocation_tags(
        &self,
        Parameters(input): Parameters<TagsInput>,
    ) -> CallToolResult {
        respond(self.tag_health(input).await.map(|o| (render_tags(&o), o)))
    }
}

pub(crate) fn render_untagged(o: &UntaggedOutput) -> String {
    let s = &o.summary;
    let mut t = format!(
        "Principals missing {} ({}): {} of {} scanned; {} with Bedrock spend, {} without. Spend {} to {} (source {}): {} of {} not attributable.\n",
        o.required_keys.join(", "),
        o.required_keys_source,
        s.missing_with_spend + s.missing_without_spend,
        s.principals_scanned,
        s.missing_with_spend,
        s.missing_without_spend,
        o.period.start,
        o.period.end,
        o.spend_source,
        super::fmt_money(s.unattributed_spend),
        super::fmt_money(s.total_spend),
    );
    for f in &o.findings {
        t.push_str(&format!(
            "- {} {} missing {}{}{}\n  fix: {}\n",
            match f.kind {
                IamKind::User => "user",
                IamKind::Role => "role",
            },
            f.name,
            f.missing_keys.join(", "),
            f.spend
                .map(|a| format!(", spend {}", super::fmt_money(a)))
                .unwrap_or_default(),
            if f.flags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", f.flags.join(", "))
            },
            f.fix
        ));
    }
    for orphan in &o.not_in_iam {
        t.push_str(&format!(
            "- not in IAM ({}): {} spend {}\n",
            orphan.reason,
            orphan.principal,
            super::fmt_money(orphan.amount)
        ));
    }
    for (k, v) in &o.untagged_spend_by_key {
        t.push_str(&format!(
            "Untagged spend for {k}: {}\n",
            super::fmt_money(*v)
        ));
    }
    if let Some(c) = &o.next_cursor {
        t.push_str(&format!("More findings: pass cursor \"{c}\".\n"));
    }
    t.push_str("Prevention: prevention_policy denies creating users/roles without the keys and removing them.\n");
    for w in &o.warnings {
        t.push_str(&format!("Warning: {w}\n"));
    }
    t
}

pub(crate) fn render_tags(o: &TagsOutput) -> String {
    let mut t = String::from("iamPrincipal cost-allocation tags:\n");
    for tag in &o.tags {
        t.push_str(&format!(
            "- {} {} (last used {})\n",
            tag.key,
            tag.status,
            tag.last_used.as_deref().unwrap_or("never")
        ));
    }
    if o.tags.is_empty() {
        t.push_str("- none yet\n");
    }
    if !o.required_missing.is_empty() {
        t.push_str(&format!(
            "Required but not present: {}\n",
            o.required_missing.join(", ")
        ));
    }
    if !o.required_inactive.is_empty() {
        t.push_str(&format!(
            "Required but inactive: {}\n",
            o.required_inactive.join(", ")
        ));
    }
    t.push_str(&format!("How to activate: {}\n", o.how_to_activate));
    for n in &o.notes {
        t.push_str(&format!("Note: {n}\n"));
    }
    t
}

/// `untagged_principals` in the tool table ([`super::TOOLS`]).
pub const UNTAGGED_PRINCIPALS: super::ToolUnit = super::ToolUnit {
    name: "untagged_principals",
    account: true,
    uses: super::Uses::Principals,
    input: super::input::<super::args::UntaggedInput>(),
    run: |app, args, progress| {
        Box::pin(async move {
            let o = app.untagged(super::arguments(args)?, progress).await?;
            super::answer(render_untagged(&o), o)
        })
    },
    route: || {
        ToolRouter::new().with_route((
            Ctx::untagged_principals_tool_attr(),
            Ctx::untagged_principals,
        ))
    },
};

/// `cost_allocation_tags` in the tool table ([`super::TOOLS`]).
pub const COST_ALLOCATION_TAGS: super::ToolUnit = super::ToolUnit {
    name: "cost_allocation_tags",
    account: true,
    uses: super::Uses::AllocationTags,
    input: super::input::<super::args::TagsInput>(),
    run: |app, args, _| {
        Box::pin(async move {
            let o = app.tag_health(super::arguments(args)?).await?;
            super::answer(render_tags(&o), o)
        })
    },
    route: || {
        ToolRouter::new().with_route((
            Ctx::cost_allocation_tags_tool_attr(),
            Ctx::cost_allocation_tags,
        ))
    },
};
