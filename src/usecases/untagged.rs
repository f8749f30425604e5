//! Principals that escape attribution: `untagged_principals` (IAM users and
//! roles missing required tag keys, ranked by Bedrock spend, each with its
//! fix) and `cost_allocation_tags` (which `iamPrincipal/*` keys are active).

use std::collections::{BTreeMap, HashMap};

use chrono::SecondsFormat;
use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::group::{Granularity, GroupKey, Metric, SpendFilter, SpendQuery};
use crate::domain::period::PeriodInput;
use crate::domain::prevention::prevention_policy;
use crate::domain::principal::{Principal, PrincipalKind, glob_match};
use crate::error::ToolError;
use crate::sources::Progress;
use crate::sources::cost_allocation::AllocationTag;
use crate::sources::iam::{IamKind, IamPrincipal};
use crate::usecases::context::Ctx;
pub use bedrock_cost_core::tools::args::{KindInput, TagsInput, UntaggedInput};
use bedrock_cost_core::tools::args::{clean_keys, untagged_page};

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
    /// Roles whose logged calls come from many session names (a shared gateway): their spend
    /// cannot be told apart by caller without session tags (with --invocation-logs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_gateways: Vec<crate::usecases::live::SharedGateway>,
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

impl Ctx {
    /// `cost_allocation_tags`, shared with the CLI.
    pub async fn tag_health(&self, input: TagsInput) -> Result<TagsOutput, ToolError> {
        let required = clean_keys(
            &input
                .required_keys
                .unwrap_or_else(|| self.config.required_tag_keys.clone()),
        )?;
        let listing = self.sources.allocation.principal_tags().await?;
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
                let listing = self.sources.allocation.principal_tags().await.map_err(|e| match e {
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
        if source != "active_cost_allocation_tags" {
            match self.sources.allocation.principal_tags().await {
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
        let inventory = self.sources.directory.inventory(progress.clone()).await?;
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
        } else {
            let ce = &self.sources.cost_explorer;
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
        let shared_gateways = match self.live.clone() {
            None => Vec::new(),
            Some(live) => match self.shared_gateways(&live, period, &inventory).await {
                Ok(g) => g,
                Err(e) => {
                    warnings.push(format!(
                        "shared gateways not read from the invocation logs: {e}"
                    ));
                    Vec::new()
                }
            },
        };
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
            shared_gateways,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
