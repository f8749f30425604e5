//! Principals that escape attribution: `untagged_principals` (IAM users and
//! roles missing required tag keys, ranked by Bedrock spend, each with its
//! fix) and `cost_allocation_tags` (which `iamPrincipal/*` keys are active).

use std::collections::{BTreeMap, HashMap};

use chrono::SecondsFormat;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool};
use schemars::JsonSchema;
use serde::Serialize;

pub use super::args::{KindInput, TagsInput, UntaggedInput};
use super::args::{clean_keys, untagged_page};
use super::{progress_reporter, respond};
use crate::domain::group::{Granularity, GroupKey, Metric, SpendFilter, SpendQuery};
use crate::domain::period::PeriodInput;
use crate::domain::principal::{Principal, PrincipalKind, glob_match};
use crate::error::ToolError;
use crate::sources::Progress;
use crate::sources::cost_allocation::AllocationTag;
use crate::sources::iam::{IamKind, IamPrincipal};
use crate::usecases::context::App;

/// Most principals listed in `not_in_iam` (the largest by spend; the rest are summed in a warning).
const MAX_NOT_IN_IAM: usize = 100;

/// A session of a role, with its spend.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionSpend {
    pub session: String,
    pub amount: f64,
}

/// One principal missing required tags.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Finding {
    pub arn: String,
    pub kind: IamKind,
    pub name: String,
    pub path: String,
    pub missing_keys: Vec<String>,
    pub tags: BTreeMap<String, String>,
    /// Bedrock spend in the period (CUR sources), None when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend: Option<f64>,
    /// Largest sessions of a role.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_sessions: Vec<SessionSpend>,
    /// service_linked, may_be_tagged_per_session, no_bedrock_spend.
    pub flags: Vec<String>,
    /// Command that adds the missing keys (fill in the values).
    pub fix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
}

/// Spend by a principal that IAM does not list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Orphan {
    pub principal: String,
    pub amount: f64,
    /// deleted_or_renamed, or other_account.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UntaggedSummary {
    pub principals_scanned: usize,
    pub fully_tagged: usize,
    pub missing_with_spend: usize,
    pub missing_without_spend: usize,
    /// Spend in the period of principals missing a required key (CUR), or of the untagged bucket (Cost Explorer).
    pub unattributed_spend: f64,
    pub total_spend: f64,
}

/// Output of `untagged_principals`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UntaggedOutput {
    pub required_keys: Vec<String>,
    /// input, config or active_cost_allocation_tags.
    pub required_keys_source: String,
    /// cur, cost_explorer or none.
    pub spend_source: String,
    pub period: crate::usecases::spend::PeriodOut,
    pub summary: UntaggedSummary,
    pub findings: Vec<Finding>,
    /// Spend in the data by principals IAM does not list.
    pub not_in_iam: Vec<Orphan>,
    /// Cost Explorer only: untagged spend per required key.
    pub untagged_spend_by_key: BTreeMap<String, f64>,
    /// An IAM policy (or SCP) that requires the keys when users and roles are created and keeps them from being removed.
    pub prevention_policy: serde_json::Value,
    pub iam_requests: u32,
    pub paid_requests: u32,
    pub as_of: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub warnings: Vec<String>,
}

/// Output of `cost_allocation_tags`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TagsOutput {
    pub tags: Vec<AllocationTag>,
    pub active_keys: Vec<String>,
    pub required_keys: Vec<String>,
    /// Required keys no cost-allocation tag exists for yet.
    pub required_missing: Vec<String>,
    /// Required keys that exist but are not active.
    pub required_inactive: Vec<String>,
    pub how_to_activate: String,
    pub notes: Vec<String>,
    pub paid_requests: u32,
    pub cached: bool,
}

/// The IAM policy that makes principals carry the keys from creation on.
pub fn prevention_policy(keys: &[String]) -> serde_json::Value {
    let null_conditions: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (format!("aws:RequestTag/{k}"), serde_json::json!("true")))
        .collect();
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RequireAttributionTagsOnCreate",
                "Effect": "Deny",
                "Action": ["iam:CreateUser", "iam:CreateRole"],
                "Resource": "*",
                "Condition": {"Null": null_conditions}
            },
            {
                "Sid": "KeepAttributionTags",
                "Effect": "Deny",
                "Action": ["iam:UntagUser", "iam:UntagRole"],
                "Resource": "*",
                "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": keys}}
            }
        ]
    })
}

fn fix_command(p: &IamPrincipal, missing: &[String]) -> String {
    let tags = missing
        .iter()
        .map(|k| format!("Key={k},Value=<{k}>"))
        .collect::<Vec<_>>()
        .join(" ");
    match p.kind {
        IamKind::User => format!("aws iam tag-user --user-name {} --tags {tags}", p.name),
        IamKind::Role => format!("aws iam tag-role --role-name {} --tags {tags}", p.name),
    }
}

/// (account, kind, name) of an IAM entity that a CUR principal ARN maps to.
fn entity_of(arn: &str) -> Option<(String, IamKind, String)> {
    let p = Principal::parse(arn)?;
    let kind = match p.kind {
        PrincipalKind::User => IamKind::User,
        PrincipalKind::AssumedRole | PrincipalKind::Role => IamKind::Role,
        _ => return None,
    };
    Some((p.account.to_string(), kind, p.name.to_string()))
}

impl App {
    /// IAM users and roles missing required tag keys, ranked by Bedrock spend, with fix commands; spend of principals IAM no longer lists; a policy requiring the keys. Cost Explorer ranking: $0.01/request, cached.
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

impl App {
    fn allocation(
        &self,
    ) -> Result<std::sync::Arc<dyn crate::sources::cost_allocation::AllocationTags>, ToolError>
    {
        self.allocation.clone().ok_or_else(|| {
            ToolError::Unsupported(
                "cost-allocation tags are not available from this configuration".into(),
            )
        })
    }

    /// `cost_allocation_tags`, shared with the CLI.
    pub async fn tag_health(&self, input: TagsInput) -> Result<TagsOutput, ToolError> {
        let required = clean_keys(
            &input
                .required_keys
                .unwrap_or_else(|| self.config.required_tag_keys.clone()),
        )?;
        let listing = self.allocation()?.principal_tags().await?;
        let active_keys: Vec<String> = listing
            .tags
            .iter()
            .filter(|t| t.status == "Active")
            .map(|t| t.key.trim_start_matches("iamPrincipal/").to_string())
            .collect();
        let known: Vec<String> = listing
            .tags
            .iter()
            .map(|t| t.key.trim_start_matches("iamPrincipal/").to_string())
            .collect();
        let required_missing: Vec<String> = required
            .iter()
            .filter(|k| !known.contains(k))
            .cloned()
            .collect();
        let required_inactive: Vec<String> = required
            .iter()
            .filter(|k| known.contains(k) && !active_keys.contains(k))
            .cloned()
            .collect();
        let inactive: Vec<String> = listing
            .tags
            .iter()
            .filter(|t| t.status != "Active")
            .map(|t| t.key.clone())
            .collect();
        let how = format!(
            "Console: Billing and Cost Management > Cost allocation tags > User-defined, select the iamPrincipal/ keys, Activate. API: ce:UpdateCostAllocationTagsStatus, e.g. `aws ce update-cost-allocation-tags-status --cost-allocation-tags-status {}`{}",
            if inactive.is_empty() {
                "TagKey=iamPrincipal/<key>,Status=Active".to_string()
            } else {
                inactive
                    .iter()
                    .map(|k| format!("TagKey={k},Status=Active"))
                    .collect::<Vec<_>>()
                    .join(" ")
            },
            if self.config.allow_writes {
                ", or the activate_cost_allocation_tags tool."
            } else {
                "."
            }
        );
        let mut notes = vec![
            "An iamPrincipal/<key> appears here only after a principal carrying that tag has called Bedrock; activation takes up to 24 hours and applies to new usage.".to_string(),
        ];
        if !required_missing.is_empty() {
            notes.push(format!(
                "No cost-allocation tag exists yet for {}: tag the principals (untagged_principals lists them), let them call Bedrock, then activate.",
                required_missing.iter().map(|k| format!("iamPrincipal/{k}")).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(TagsOutput {
            tags: listing.tags,
            active_keys,
            required_keys: required,
            required_missing,
            required_inactive,
            how_to_activate: how,
            notes,
            paid_requests: listing.paid_requests,
            cached: listing.cached,
        })
    }

    /// `untagged_principals`, shared with the CLI.
    pub async fn untagged(
        &self,
        input: UntaggedInput,
        progress: Progress,
    ) -> Result<UntaggedOutput, ToolError> {
        let today = crate::domain::clock::today();
        let period = input
            .period
            .clone()
            .unwrap_or(PeriodInput::Word("last_30_days".into()))
            .resolve(today)
            .map_err(|e| ToolError::invalid(e.to_string()))?;
        let (max, offset) = untagged_page(&input)?;
        let mut warnings = Vec::new();
        let mut paid = 0;
        // Required keys: input, config, or the active iamPrincipal/* keys.
        let (required, source) = match (
            &input.required_keys,
            self.config.required_tag_keys.is_empty(),
        ) {
            (Some(k), _) => (clean_keys(k)?, "input"),
            (None, false) => (clean_keys(&self.config.required_tag_keys)?, "config"),
            (None, true) => {
                let listing = self.allocation()?.principal_tags().await.map_err(|e| match e {
                    ToolError::AccessDenied { .. } => ToolError::AccessDenied {
                        action: "ce:ListCostAllocationTags (to learn the active keys; or pass required_keys)".into(),
                        message: e.to_string(),
                    },
                    other => other,
                })?;
                paid += listing.paid_requests;
                let keys: Vec<String> = listing
                    .tags
                    .iter()
                    .filter(|t| t.status == "Active")
                    .map(|t| t.key.trim_start_matches("iamPrincipal/").to_string())
                    .collect();
                if keys.is_empty() {
                    return Err(ToolError::invalid(
                        "no iamPrincipal/* cost-allocation tag is active, so there is no required key to check; pass required_keys (e.g. [\"team\"]) or start the server with --required-tag-keys",
                    ));
                }
                (keys, "active_cost_allocation_tags")
            }
        };
        if required.is_empty() {
            return Err(ToolError::invalid(
                "required_keys is empty; name at least one tag key",
            ));
        }
        // Keys given by the caller or the config: say which are not active cost-allocation keys.
        if source != "active_cost_allocation_tags"
            && let Some(alloc) = &self.allocation
        {
            match alloc.principal_tags().await {
                Ok(listing) => {
                    paid += listing.paid_requests;
                    for k in &required {
                        let full = format!("iamPrincipal/{k}");
                        match listing.tags.iter().find(|t| t.key == full) {
                            Some(t) if t.status == "Active" => {}
                            Some(_) => warnings.push(format!("{full} is not an active cost-allocation tag: spend by it is not attributed in billing until it is activated (cost_allocation_tags says how)")),
                            None => warnings.push(format!("{full} is not an activated cost-allocation tag (no principal carrying it has called Bedrock yet, or it was never activated)")),
                        }
                    }
                }
                Err(e) => warnings.push(format!(
                    "could not check which required keys are activated: {e}"
                )),
            }
        }
        let directory = self.directory.clone().ok_or_else(|| {
            ToolError::Unsupported("IAM is not available from this configuration".into())
        })?;
        let inventory = directory.inventory(progress.clone()).await?;
        warnings.extend(inventory.warnings.clone());
        let accounts: std::collections::BTreeSet<String> = inventory
            .principals
            .iter()
            .map(|p| p.account().to_string())
            .collect();

        // Spend per IAM entity: CUR (per principal) when available.
        let mut spend: HashMap<(String, IamKind, String), f64> = HashMap::new();
        let mut sessions: HashMap<(String, IamKind, String), Vec<SessionSpend>> = HashMap::new();
        let mut orphans = Vec::new();
        let mut total_spend = 0.0;
        let mut untagged_by_key = BTreeMap::new();
        let spend_source;
        if let Some(cur) = &self.cur {
            spend_source = "cur";
            let mut q = SpendQuery {
                period,
                granularity: Granularity::Monthly,
                group_by: vec![GroupKey::Principal],
                filter: SpendFilter::default(),
                metric: Metric::Unblended,
            };
            self.scope_query(&mut q, false)?;
            let ans = cur.spend(&q, progress.clone()).await?;
            let mut per_principal: BTreeMap<String, f64> = BTreeMap::new();
            for r in ans.rows {
                total_spend += r.amount;
                if let Some(Some(p)) = r.keys.first() {
                    *per_principal.entry(p.clone()).or_default() += r.amount;
                }
            }
            for (arn, amount) in per_principal {
                match entity_of(&arn) {
                    Some(key) => {
                        *spend.entry(key.clone()).or_default() += amount;
                        if let Some(s) = Principal::parse(&arn).and_then(|p| p.session) {
                            sessions.entry(key).or_default().push(SessionSpend {
                                session: s.to_string(),
                                amount,
                            });
                        }
                    }
                    None => orphans.push(Orphan {
                        principal: arn,
                        amount,
                        reason: "unrecognised_principal".into(),
                    }),
                }
            }
        } else if let Some(ce) = &self.cost_explorer {
            spend_source = "cost_explorer";
            for k in &required {
                let mut q = SpendQuery {
                    period,
                    granularity: Granularity::Monthly,
                    group_by: vec![GroupKey::Tag(k.clone())],
                    filter: SpendFilter::default(),
                    metric: Metric::Unblended,
                };
                if let Err(e) = self.scope_query(&mut q, true) {
                    warnings.push(format!("spend by iamPrincipal/{k} not shown: {e}"));
                    continue;
                }
                match ce.spend(&q, progress.clone()).await {
                    Ok(ans) => {
                        paid += ans.paid_requests;
                        let total: f64 = ans.rows.iter().map(|r| r.amount).sum();
                        total_spend = total_spend.max(total);
                        untagged_by_key.insert(
                            k.clone(),
                            ans.rows
                                .iter()
                                .filter(|r| {
                                    !r.no_principal
                                        && r.keys.first().is_some_and(std::option::Option::is_none)
                                })
                                .map(|r| r.amount)
                                .sum(),
                        );
                    }
                    Err(e) => {
                        warnings.push(format!("could not size the untagged spend for {k}: {e}"));
                    }
                }
            }
        } else {
            spend_source = "none";
        }

        // Findings.
        let kind = input.kind.unwrap_or_default();
        let include_no_spend = input.include_no_spend.unwrap_or(false);
        let mut findings = Vec::new();
        let (mut fully, mut with_spend, mut without_spend) = (0usize, 0usize, 0usize);
        let mut unattributed = 0.0;
        let mut seen = std::collections::HashSet::new();
        for p in &inventory.principals {
            if !self.sees_principal(&p.arn, &p.tags) {
                continue;
            }
            let key = (p.account().to_string(), p.kind, p.name.clone());
            seen.insert(key.clone());
            if (kind == KindInput::User && p.kind != IamKind::User)
                || (kind == KindInput::Role && p.kind != IamKind::Role)
            {
                continue;
            }
            if input
                .path_prefix
                .as_deref()
                .is_some_and(|pp| !p.path.starts_with(pp))
                || input
                    .name
                    .as_deref()
                    .is_some_and(|g| !glob_match(g, &p.name))
            {
                continue;
            }
            let missing: Vec<String> = required
                .iter()
                .filter(|k| p.tags.get(*k).is_none_or(std::string::String::is_empty))
                .cloned()
                .collect();
            if missing.is_empty() {
                fully += 1;
                continue;
            }
            let amount = spend.get(&key).copied();
            let has_spend = amount.is_some_and(|a| a != 0.0);
            if has_spend {
                with_spend += 1;
                unattributed += amount.unwrap_or(0.0);
            } else {
                without_spend += 1;
            }
            let mut flags = Vec::new();
            if p.service_linked() {
                flags.push("service_linked".to_string());
            }
            if p.tag_session_allowed {
                flags.push("may_be_tagged_per_session".to_string());
            }
            if spend_source == "cur" && !has_spend {
                flags.push("no_bedrock_spend".to_string());
            }
            let mut top_sessions = sessions.get(&key).cloned().unwrap_or_default();
            top_sessions.sort_by(|a, b| b.amount.total_cmp(&a.amount));
            top_sessions.truncate(3);
            if has_spend || include_no_spend || spend_source != "cur" {
                findings.push(Finding {
                    arn: p.arn.clone(),
                    kind: p.kind,
                    name: p.name.clone(),
                    path: p.path.clone(),
                    fix: fix_command(p, &missing),
                    missing_keys: missing,
                    tags: p.tags.clone(),
                    spend: if spend_source == "cur" {
                        Some(amount.unwrap_or(0.0))
                    } else {
                        None
                    },
                    top_sessions,
                    flags,
                    last_used: p
                        .last_used
                        .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true)),
                });
            }
        }
        // Spend by principals IAM does not list.
        for (key, amount) in &spend {
            if !seen.contains(key) && *amount != 0.0 {
                let (acct, k, name) = key;
                let reason = if accounts.contains(acct) || accounts.is_empty() {
                    "deleted_or_renamed"
                } else {
                    "other_account"
                };
                let principal = match k {
                    IamKind::User => format!("arn:aws:iam::{acct}:user/{name}"),
                    IamKind::Role => format!("arn:aws:iam::{acct}:role/{name}"),
                };
                unattributed += amount;
                orphans.push(Orphan {
                    principal,
                    amount: *amount,
                    reason: reason.into(),
                });
            }
        }
        orphans.sort_by(|a, b| b.amount.total_cmp(&a.amount));
        if orphans.len() > MAX_NOT_IN_IAM {
            let rest = orphans.split_off(MAX_NOT_IN_IAM);
            let amount: f64 = rest.iter().map(|o| o.amount).sum();
            warnings.push(format!(
                "not_in_iam lists the {MAX_NOT_IN_IAM} largest; {} more principals not in IAM spent ${amount:.2} (group bedrock_spend by principal on CUR to see them all)",
                rest.len()
            ));
        }
        if orphans.iter().any(|o| o.reason == "other_account") {
            let how = if self.config.allow_role_arns.is_empty()
                && self.config.allow_profiles.is_empty()
            {
                "run with that account's credentials to check their tags (or start the server with --allow-role-arns / --allow-profiles and ask again with role_arn or profile)"
            } else {
                "ask again with role_arn or profile naming that account to check their tags"
            };
            warnings.push(format!("spend by principals of other accounts: GetAccountAuthorizationDetails covers only the caller's account; {how}"));
        }
        // Flagged per-session roles are not certain misses.
        findings.sort_by(|a, b| {
            b.spend
                .unwrap_or(0.0)
                .total_cmp(&a.spend.unwrap_or(0.0))
                .then_with(|| a.kind.cmp(&b.kind))
                .then_with(|| a.name.cmp(&b.name))
        });
        if spend_source == "cost_explorer" {
            unattributed = untagged_by_key.values().copied().fold(0.0, f64::max);
        }
        let total_findings = findings.len();
        let page: Vec<Finding> = super::take_page(findings.into_iter().skip(offset), max);
        let next_cursor = (offset + page.len() < total_findings)
            .then(|| format!("findings:{}", offset + page.len()));
        let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0 + 0.0;
        Ok(UntaggedOutput {
            prevention_policy: prevention_policy(&required),
            required_keys: required,
            required_keys_source: source.into(),
            spend_source: spend_source.into(),
            period: crate::usecases::spend::PeriodOut {
                start: period.start.to_string(),
                end: period.end.to_string(),
            },
            summary: UntaggedSummary {
                principals_scanned: inventory.principals.len(),
                fully_tagged: fully,
                missing_with_spend: with_spend,
                missing_without_spend: without_spend,
                unattributed_spend: r4(unattributed),
                total_spend: r4(total_spend),
            },
            findings: page
                .into_iter()
                .map(|mut f| {
                    f.spend = f.spend.map(r4);
                    f.top_sessions
                        .iter_mut()
                        .for_each(|s| s.amount = r4(s.amount));
                    f
                })
                .collect(),
            not_in_iam: orphans
                .into_iter()
                .map(|mut o| {
                    o.amount = r4(o.amount);
                    o
                })
                .collect(),
            untagged_spend_by_key: untagged_by_key
                .into_iter()
                .map(|(k, v)| (k, r4(v)))
                .collect(),
            iam_requests: inventory.requests,
            paid_requests: paid,
            as_of: inventory
                .as_of
                .unwrap_or_else(crate::domain::clock::now)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
            next_cursor,
            warnings,
        })
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
            App::untagged_principals_tool_attr(),
            App::untagged_principals,
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
            App::cost_allocation_tags_tool_attr(),
            App::cost_allocation_tags,
        ))
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_requires_every_key() {
        let p = prevention_policy(&["team".into(), "cost-center".into()]);
        assert_eq!(
            p["Statement"][0]["Condition"]["Null"]["aws:RequestTag/team"],
            "true"
        );
        assert_eq!(
            p["Statement"][1]["Condition"]["ForAnyValue:StringEquals"]["aws:TagKeys"][1],
            "cost-center"
        );
    }

    #[test]
    fn cur_principals_map_to_iam_entities() {
        assert_eq!(
            entity_of("arn:aws:sts::1:assumed-role/R/s"),
            Some(("1".into(), IamKind::Role, "R".into()))
        );
        assert_eq!(
            entity_of("arn:aws:iam::1:user/eng/bob"),
            Some(("1".into(), IamKind::User, "bob".into()))
        );
        assert_eq!(entity_of("garbage"), None);
        assert!(
            clean_keys(&["iamPrincipal/team".into(), "team".into()]).unwrap()
                == vec!["team".to_string()]
        );
        assert!(clean_keys(&["bad\"key".into()]).is_err());
    }
}
