//! Budgets that can apply to a Bedrock caller: AWS Budgets filtered on an
//! `iamPrincipal/<key>` tag or on Bedrock (DescribeBudgets with
//! ShowFilterExpression), and a local policy file (TOML) with limits per tag
//! value, role or principal glob.
//!
//! Precedence (most specific first): principal, role, tag, Bedrock-wide,
//! default. At the same level an AWS budget wins over the local policy.

use std::path::Path;

use aws_sdk_budgets::types::{Dimension, Expression, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::domain::principal::glob_match;
use crate::error::{ToolError, from_sdk};

/// What a budget covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// Principal ARN glob.
    Principal { pattern: String },
    /// Role ARN glob (arn:aws:iam::A:role/Name).
    Role { pattern: String },
    /// Principal tag key and value.
    Tag { key: String, value: String },
    /// All Bedrock spend of the account.
    Bedrock,
    /// The policy's default limit for anyone.
    Default,
}

impl Scope {
    /// Lower is more specific.
    pub fn rank(&self) -> u8 {
        match self {
            Scope::Principal { .. } => 0,
            Scope::Role { .. } => 1,
            Scope::Tag { .. } => 2,
            Scope::Bedrock => 3,
            Scope::Default => 4,
        }
    }

    /// The ledger key: checks under one budget see each other's estimates.
    pub fn key(&self) -> String {
        match self {
            Scope::Principal { pattern } => format!("principal:{pattern}"),
            Scope::Role { pattern } => format!("role:{pattern}"),
            Scope::Tag { key, value } => format!("tag:{key}={value}"),
            Scope::Bedrock => "bedrock".into(),
            Scope::Default => "default".into(),
        }
    }
}

/// A monthly budget.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Budget {
    pub name: String,
    /// aws_budgets or local_policy.
    pub source: String,
    pub scope: Scope,
    pub limit_usd: f64,
    pub warn_percent: f64,
    pub deny_percent: f64,
    /// AWS Budgets' own actual spend, when it reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_actual_spend: Option<f64>,
    /// The parts of the budget's filter and cost types that spend from CUR or Cost Explorer
    /// cannot reproduce (then AWS's own actual spend is used, when it reports one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_reproduced: Vec<String>,
}

/// Who is asking, resolved.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub principal_arn: Option<String>,
    pub role_arn: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl Budget {
    pub fn applies_to(&self, s: &Subject) -> bool {
        match &self.scope {
            Scope::Principal { pattern } => s
                .principal_arn
                .as_deref()
                .is_some_and(|p| glob_match(pattern, p)),
            Scope::Role { pattern } => s.role_arn.as_deref().is_some_and(|r| {
                glob_match(pattern, r) || r.rsplit('/').next() == Some(pattern.as_str())
            }),
            Scope::Tag { key, value } => s.tags.get(key).is_some_and(|v| v == value),
            Scope::Bedrock | Scope::Default => true,
        }
    }
}

/// Pick the budget that applies (see the module docs for the order).
pub fn choose<'a>(budgets: &'a [Budget], s: &Subject) -> Option<&'a Budget> {
    budgets
        .iter()
        .filter(|b| b.applies_to(s))
        .min_by_key(|b| (b.scope.rank(), u8::from(b.source != "aws_budgets")))
}

/// The local policy file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default = "default_warn")]
    pub warn_percent: f64,
    #[serde(default = "default_deny")]
    pub deny_percent: f64,
    pub default: Option<PolicyDefault>,
    #[serde(default)]
    pub budgets: Vec<PolicyBudget>,
}

fn default_warn() -> f64 {
    80.0
}
fn default_deny() -> f64 {
    100.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDefault {
    pub monthly_usd: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBudget {
    pub name: Option<String>,
    /// `key=value` of a principal tag.
    pub tag: Option<String>,
    /// Role ARN glob (or role name).
    pub role: Option<String>,
    /// Principal ARN glob.
    pub principal: Option<String>,
    /// true: all Bedrock spend of the account.
    #[serde(default)]
    pub bedrock: bool,
    pub monthly_usd: f64,
    pub warn_percent: Option<f64>,
    pub deny_percent: Option<f64>,
}

impl PolicyFile {
    pub fn load(path: &Path) -> Result<PolicyFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read budget policy {}: {e}", path.display()))?;
        let p: PolicyFile = toml::from_str(&text)
            .map_err(|e| format!("budget policy {} is not valid: {e}", path.display()))?;
        p.validate()
            .map_err(|e| format!("budget policy {}: {e}", path.display()))?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), String> {
        if !(0.0..=1000.0).contains(&self.warn_percent)
            || !(0.0..=1000.0).contains(&self.deny_percent)
            || self.warn_percent > self.deny_percent
        {
            return Err("warn_percent must be between 0 and deny_percent".into());
        }
        for (i, b) in self.budgets.iter().enumerate() {
            let scopes = [
                b.tag.is_some(),
                b.role.is_some(),
                b.principal.is_some(),
                b.bedrock,
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if scopes != 1 {
                return Err(format!(
                    "budgets[{i}] needs exactly one of tag, role, principal or bedrock = true"
                ));
            }
            if b.monthly_usd < 0.0 || !b.monthly_usd.is_finite() {
                return Err(format!(
                    "budgets[{i}].monthly_usd must be a positive amount"
                ));
            }
            if let Some(t) = &b.tag
                && !t.contains('=')
            {
                return Err(format!("budgets[{i}].tag must be key=value"));
            }
        }
        Ok(())
    }

    pub fn budgets(&self) -> Vec<Budget> {
        let mut out: Vec<Budget> = self
            .budgets
            .iter()
            .map(|b| {
                let scope = if let Some(t) = &b.tag {
                    let (k, v) = t.split_once('=').unwrap_or((t, ""));
                    Scope::Tag {
                        key: k.trim().trim_start_matches("iamPrincipal/").into(),
                        value: v.trim().into(),
                    }
                } else if let Some(r) = &b.role {
                    Scope::Role { pattern: r.clone() }
                } else if let Some(p) = &b.principal {
                    Scope::Principal { pattern: p.clone() }
                } else {
                    Scope::Bedrock
                };
                Budget {
                    name: b.name.clone().unwrap_or_else(|| scope.key()),
                    source: "local_policy".into(),
                    scope,
                    limit_usd: b.monthly_usd,
                    warn_percent: b.warn_percent.unwrap_or(self.warn_percent),
                    deny_percent: b.deny_percent.unwrap_or(self.deny_percent),
                    aws_actual_spend: None,
                    not_reproduced: Vec::new(),
                }
            })
            .collect();
        if let Some(d) = &self.default {
            out.push(Budget {
                name: "default".into(),
                source: "local_policy".into(),
                scope: Scope::Default,
                limit_usd: d.monthly_usd,
                warn_percent: self.warn_percent,
                deny_percent: self.deny_percent,
                aws_actual_spend: None,
                not_reproduced: Vec::new(),
            });
        }
        out
    }
}

/// The scope an AWS budget's filter expresses, if it is one we can apply.
fn scope_of(e: &Expression) -> Option<Scope> {
    if let Some(t) = e.tags() {
        let key = t.key().unwrap_or("");
        let key = key.strip_prefix("user:").unwrap_or(key);
        if let Some(k) = key.strip_prefix("iamPrincipal/")
            && let [v] = t.values()
        {
            return Some(Scope::Tag {
                key: k.into(),
                value: v.clone(),
            });
        }
        return None;
    }
    if let Some(d) = e.dimensions() {
        if *d.key() == Dimension::Service && d.values().iter().all(|v| v.contains("Bedrock")) {
            return Some(Scope::Bedrock);
        }
        return None;
    }
    // And: the most specific applicable part wins; Not (credits, refunds) is ignored.
    let parts: Vec<Scope> = e.and().iter().filter_map(scope_of).collect();
    parts.into_iter().min_by_key(Scope::rank)
}

/// What of a budget's filter the spend query for `scope` does not apply: dimensions other than
/// a Bedrock-family SERVICE (linked account, region, usage type, ...), services outside Bedrock,
/// tags beyond the one the scope is, `Or` and `Not`, several values of a tag.
fn filter_not_reproduced(e: &Expression, scope: &Scope, out: &mut Vec<String>) {
    if let Some(t) = e.tags() {
        let key = t.key().unwrap_or("");
        let key = key.strip_prefix("user:").unwrap_or(key);
        let same = matches!(scope, Scope::Tag { key: k, value }
            if key.strip_prefix("iamPrincipal/") == Some(k.as_str()) && t.values() == [value.clone()]);
        if !same {
            out.push(format!("tag {key} = {}", t.values().join("|")));
        }
    }
    if let Some(d) = e.dimensions() {
        let bedrock =
            *d.key() == Dimension::Service && d.values().iter().all(|v| v.contains("Bedrock"));
        // Usage record types only: what the spend query counts.
        let usage = d.key().as_str() == "RECORD_TYPE"
            && d.values().iter().all(|v| crate::domain::lines::is_usage(v));
        if !bedrock && !usage {
            out.push(format!("{} = {}", d.key().as_str(), d.values().join("|")));
        }
    }
    if e.cost_categories().is_some() {
        out.push("a cost category".into());
    }
    if !e.or().is_empty() {
        out.push("an Or of filters".into());
    }
    if e.not().is_some() {
        out.push("a Not filter".into());
    }
    for part in e.and() {
        filter_not_reproduced(part, scope, out);
    }
}

/// What of a budget's cost types the usage spend (unblended, without credits, refunds, tax and
/// fees) does not reproduce. Credits, refunds and tax carry no principal tag, so a budget on a
/// tag, role or principal sees none of them either way; a budget on all of Bedrock does.
fn cost_types_not_reproduced(
    c: Option<&aws_sdk_budgets::types::CostTypes>,
    scope: &Scope,
) -> Vec<String> {
    // The API's defaults when CostTypes is absent: credits, refunds, tax, discounts included.
    let on = |v: Option<bool>| v.unwrap_or(true);
    let mut out = Vec::new();
    if c.and_then(aws_sdk_budgets::types::CostTypes::use_blended)
        .unwrap_or(false)
    {
        out.push("blended cost".to_string());
    }
    if c.and_then(aws_sdk_budgets::types::CostTypes::use_amortized)
        .unwrap_or(false)
    {
        out.push("amortized cost".to_string());
    }
    if matches!(scope, Scope::Bedrock) {
        for (name, v) in [
            (
                "credits",
                c.and_then(aws_sdk_budgets::types::CostTypes::include_credit),
            ),
            (
                "refunds",
                c.and_then(aws_sdk_budgets::types::CostTypes::include_refund),
            ),
            (
                "tax",
                c.and_then(aws_sdk_budgets::types::CostTypes::include_tax),
            ),
        ] {
            if on(v) {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// AWS Budgets of one account, its client built on first use.
#[derive(Clone)]
pub struct AwsBudgets(super::Lazy<aws_sdk_budgets::Client>);

impl AwsBudgets {
    pub fn new(client: super::Lazy<aws_sdk_budgets::Client>) -> Self {
        AwsBudgets(client)
    }

    /// Monthly budgets of `account` on Bedrock or on an iamPrincipal tag, and the names of the
    /// ones skipped.
    pub async fn list(
        &self,
        account: &str,
        warn: f64,
        deny: f64,
    ) -> Result<(Vec<Budget>, Vec<String>), ToolError> {
        aws_budgets(&self.0, account, warn, deny).await
    }
}

/// Monthly AWS budgets on Bedrock or on an iamPrincipal tag.
async fn aws_budgets(
    client: &aws_sdk_budgets::Client,
    account: &str,
    warn: f64,
    deny: f64,
) -> Result<(Vec<Budget>, Vec<String>), ToolError> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut pages = client
        .describe_budgets()
        .account_id(account)
        .show_filter_expression(true)
        .max_results(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                // No budgets at all is answered with NotFoundException.
                let err = from_sdk("AWS Budgets", "budgets:ViewBudget", &e);
                if let ToolError::Upstream { code, .. } = &err
                    && code == "NotFoundException"
                {
                    break;
                }
                return Err(err);
            }
        };
        for b in page.budgets() {
            let Some(scope) = b.filter_expression().and_then(scope_of) else {
                skipped.push(b.budget_name().to_string());
                continue;
            };
            if *b.time_unit() != TimeUnit::Monthly {
                skipped.push(format!(
                    "{} ({} budget)",
                    b.budget_name(),
                    b.time_unit().as_str()
                ));
                continue;
            }
            let Some(limit) = b
                .budget_limit()
                .and_then(|s| s.amount().parse::<f64>().ok())
            else {
                skipped.push(b.budget_name().to_string());
                continue;
            };
            let mut not_reproduced = Vec::new();
            if let Some(e) = b.filter_expression() {
                filter_not_reproduced(e, &scope, &mut not_reproduced);
            }
            // Record types: a filter expression names them as a RECORD_TYPE dimension (above);
            // otherwise the (deprecated, still answered) CostTypes say which count.
            let names_record_types = b
                .filter_expression()
                .is_some_and(|e| format!("{e:?}").contains("RECORD_TYPE"));
            if !names_record_types {
                #[allow(deprecated)]
                let cost_types = b.cost_types();
                not_reproduced.extend(cost_types_not_reproduced(cost_types, &scope));
            }
            for m in b.metrics() {
                if m.as_str() != "UnblendedCost" {
                    not_reproduced.push(format!("metric {}", m.as_str()));
                }
            }
            out.push(Budget {
                name: b.budget_name().to_string(),
                source: "aws_budgets".into(),
                not_reproduced,
                scope,
                limit_usd: limit,
                warn_percent: warn,
                deny_percent: deny,
                aws_actual_spend: b
                    .calculated_spend()
                    .and_then(|c| c.actual_spend())
                    .and_then(|s| s.amount().parse().ok()),
            });
        }
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses_and_precedence_picks_the_most_specific() {
        let p: PolicyFile = toml::from_str(
            r#"
            warn_percent = 75
            [default]
            monthly_usd = 50
            [[budgets]]
            tag = "team=ml-platform"
            monthly_usd = 1500
            [[budgets]]
            role = "arn:aws:iam::*:role/InvoiceAgentRole"
            monthly_usd = 300
            deny_percent = 95
            "#,
        )
        .unwrap();
        p.validate().unwrap();
        let budgets = p.budgets();
        let mut s = Subject {
            role_arn: Some("arn:aws:iam::1:role/InvoiceAgentRole".into()),
            ..Default::default()
        };
        s.tags.insert("team".into(), "ml-platform".into());
        let b = choose(&budgets, &s).unwrap();
        assert_eq!(
            (b.limit_usd, b.warn_percent, b.deny_percent),
            (300.0, 75.0, 95.0)
        );
        s.role_arn = Some("arn:aws:iam::1:role/Other".into());
        assert_eq!(choose(&budgets, &s).unwrap().limit_usd, 1500.0);
        s.tags.clear();
        assert_eq!(choose(&budgets, &s).unwrap().scope, Scope::Default);
        let bad: PolicyFile = toml::from_str("[[budgets]]\nmonthly_usd = 1\n").unwrap();
        assert!(bad.validate().unwrap_err().contains("exactly one"));
    }

    #[test]
    fn aws_filters_map_to_scopes() {
        use aws_sdk_budgets::types::{ExpressionDimensionValues, TagValues};
        let tag = Expression::builder()
            .tags(
                TagValues::builder()
                    .key("iamPrincipal/team")
                    .values("ml")
                    .build(),
            )
            .build();
        let svc = Expression::builder()
            .dimensions(
                ExpressionDimensionValues::builder()
                    .key(Dimension::Service)
                    .values("Amazon Bedrock")
                    .build()
                    .unwrap(),
            )
            .build();
        let both = Expression::builder()
            .and(svc.clone())
            .and(tag.clone())
            .build();
        assert_eq!(
            scope_of(&tag),
            Some(Scope::Tag {
                key: "team".into(),
                value: "ml".into()
            })
        );
        assert_eq!(scope_of(&svc), Some(Scope::Bedrock));
        assert_eq!(
            scope_of(&both),
            Some(Scope::Tag {
                key: "team".into(),
                value: "ml".into()
            })
        );
    }
}
