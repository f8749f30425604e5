//! The demo source: Cost Explorer's answers computed from the bundled demo
//! organisation ([`crate::demo_data`]), so the server answers with no AWS
//! account. It refuses what Cost Explorer refuses, and costs nothing.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::cost_explorer::check_query;
use super::{Progress, SpendAnswer, SpendRow, SpendSource};
use crate::demo_data::{LineItem, line_items};
use crate::domain::group::{Granularity, GroupKey, Metric, SpendQuery};
use crate::domain::period::first_of_month;
use crate::error::ToolError;

/// Cost Explorer-shaped answers from the demo organisation.
pub struct DemoCostExplorer {
    today: NaiveDate,
    /// Generated on first use, so starting the server stays cheap.
    items: std::sync::OnceLock<Vec<LineItem>>,
}

impl DemoCostExplorer {
    /// Data dated relative to `today`.
    pub fn new(today: NaiveDate) -> Self {
        DemoCostExplorer {
            today,
            items: std::sync::OnceLock::new(),
        }
    }

    fn items(&self) -> &[LineItem] {
        self.items.get_or_init(|| {
            line_items(self.today)
                .into_iter()
                .filter(|l| l.line_item_type == "Usage")
                .collect()
        })
    }
}

fn tag<'a>(item: &'a LineItem, key: &str) -> Option<&'a str> {
    let full = format!("iamPrincipal/{key}");
    item.tags
        .iter()
        .find(|(k, _)| *k == full)
        .map(|(_, v)| v.as_str())
}

#[async_trait::async_trait]
impl SpendSource for DemoCostExplorer {
    fn name(&self) -> &'static str {
        "demo"
    }

    fn filters_principals(&self) -> bool {
        false
    }

    async fn spend(&self, q: &SpendQuery, _progress: Progress) -> Result<SpendAnswer, ToolError> {
        check_query(q)?;
        let mut groups: BTreeMap<(NaiveDate, Vec<Option<String>>), f64> = BTreeMap::new();
        let mut adjustments: BTreeMap<(NaiveDate, String), f64> = BTreeMap::new();
        let mut services: Vec<String> = Vec::new();
        for item in self.items() {
            if item.usage_start < q.period.start || item.usage_start >= q.period.end {
                continue;
            }
            // As the real source asks Cost Explorer: credits and refunds carry no principal tag,
            // so they are never grouped (they would land in "untagged"); they come apart.
            if !crate::domain::lines::is_usage(&item.line_item_type) {
                let month = first_of_month(item.usage_start).max(q.period.start);
                *adjustments
                    .entry((month, item.line_item_type.clone()))
                    .or_default() += item.unblended;
                continue;
            }
            let passes = q.filter.tags.iter().all(|(k, values)| {
                let v = tag(item, k).unwrap_or("");
                values.iter().any(|want| want == v)
            });
            if !passes {
                continue;
            }
            if !services.contains(&item.service_name) {
                services.push(item.service_name.clone());
            }
            let bucket = match q.granularity {
                Granularity::Daily => item.usage_start,
                Granularity::Monthly => first_of_month(item.usage_start).max(q.period.start),
            };
            let keys = q
                .group_by
                .iter()
                .map(|k| match k {
                    GroupKey::Tag(t) => tag(item, t).map(str::to_string),
                    GroupKey::Service => Some(item.service_name.clone()),
                    GroupKey::UsageType => Some(item.usage_type.clone()),
                    GroupKey::Region => Some(item.region.clone()),
                    // Refused by `check_query`, as Cost Explorer cannot group by them.
                    GroupKey::Principal
                    | GroupKey::Role
                    | GroupKey::Session
                    | GroupKey::Model
                    | GroupKey::TokenKind
                    | GroupKey::Tier
                    | GroupKey::InferenceScope
                    | GroupKey::InferenceProfile
                    | GroupKey::Day
                    | GroupKey::Month => None,
                })
                .collect();
            let amount = match q.metric {
                Metric::NetUnblended => item.net_unblended.unwrap_or(item.unblended),
                _ => item.unblended,
            };
            *groups.entry((bucket, keys)).or_default() += amount;
        }
        services.sort();
        let today = crate::domain::clock::today();
        let rows = groups
            .into_iter()
            .map(|((bucket_start, keys), amount)| SpendRow {
                bucket_start,
                keys,
                amount,
                usage: None,
                usage_unit: None,
                no_principal: false,
            })
            .collect();
        Ok(SpendAnswer {
            rows,
            currency: "USD".into(),
            // Like Cost Explorer: spend of the current month is not final.
            estimated: q.period.end > first_of_month(today),
            services_counted: services,
            paid_requests: 0,
            cached: false,
            as_of: crate::domain::clock::now(),
            source: "demo",
            notes: vec![
                "demo data: a fictional organisation (Acme Example Corp), not your account".into(),
            ],
            adjustments: adjustments
                .into_iter()
                .map(
                    |((bucket_start, line_item_type), amount)| crate::sources::Adjustment {
                        bucket_start,
                        in_net: false,
                        line_item_type,
                        refers_to: None,
                        amount,
                    },
                )
                .collect(),
            scanned_bytes: None,
            no_principal: None,
            newest_record: None,
        })
    }
}

/// The demo organisation's IAM users and roles: most of the callers in the
/// demo spend, plus an admin with no Bedrock use and a service-linked role.
/// `LegacyBatchRole` is missing on purpose: it was deleted but its spend is
/// still in the CUR data.
pub struct DemoDirectory {
    tagged: std::sync::Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

impl Default for DemoDirectory {
    fn default() -> Self {
        Self::new()
    }
}

impl DemoDirectory {
    pub fn new() -> Self {
        DemoDirectory {
            tagged: std::sync::Mutex::new(BTreeMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl super::iam::PrincipalDirectory for DemoDirectory {
    async fn inventory(&self, _progress: Progress) -> Result<super::iam::Inventory, ToolError> {
        use super::iam::{IamKind, IamPrincipal, Inventory};
        use crate::demo_data::{DemoKind, ORGANISATION};
        let mut principals: Vec<IamPrincipal> = ORGANISATION
            .iter()
            .filter(|id| id.in_iam)
            .map(|id| IamPrincipal {
                kind: match id.kind {
                    DemoKind::User => IamKind::User,
                    DemoKind::Role => IamKind::Role,
                },
                name: id.name.to_string(),
                arn: id.iam_arn(),
                path: id.path.to_string(),
                tags: id
                    .tags
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect::<BTreeMap<_, _>>(),
                last_used: None,
                tag_session_allowed: id.tag_session,
            })
            .collect();
        let tagged = self.tagged.lock().expect("demo lock");
        for pr in &mut principals {
            if let Some(extra) = tagged.get(&pr.name) {
                pr.tags.extend(extra.clone());
            }
        }
        Ok(Inventory {
            principals,
            requests: 0,
            warnings: vec![],
            complete: true,
            as_of: Some(crate::domain::clock::now()),
        })
    }

    async fn tag(
        &self,
        _kind: super::iam::IamKind,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), ToolError> {
        self.tagged
            .lock()
            .expect("demo lock")
            .entry(name.to_string())
            .or_default()
            .extend(tags.clone());
        Ok(())
    }
}

/// The demo organisation's cost-allocation tags: team and cost-center active,
/// owner seen but never activated.
pub struct DemoAllocationTags {
    activated: std::sync::Mutex<Vec<String>>,
}

impl Default for DemoAllocationTags {
    fn default() -> Self {
        DemoAllocationTags {
            activated: std::sync::Mutex::new(vec![]),
        }
    }
}

#[async_trait::async_trait]
impl super::cost_allocation::AllocationTags for DemoAllocationTags {
    async fn principal_tags(&self) -> Result<super::cost_allocation::TagListing, ToolError> {
        use super::cost_allocation::AllocationTag;
        let activated = self.activated.lock().expect("demo lock").clone();
        let tag = |key: &str, status: &str| AllocationTag {
            key: key.to_string(),
            status: if activated.iter().any(|k| k == key) {
                "Active".into()
            } else {
                status.to_string()
            },
            tag_type: "UserDefined".into(),
            last_updated: Some("2026-09-02T00:00:00Z".into()),
            last_used: Some(
                crate::domain::clock::now()
                    .format("%Y-%m-%dT00:00:00Z")
                    .to_string(),
            ),
        };
        Ok(super::cost_allocation::TagListing {
            tags: vec![
                tag("iamPrincipal/cost-center", "Active"),
                tag("iamPrincipal/owner", "Inactive"),
                tag("iamPrincipal/team", "Active"),
            ],
            paid_requests: 0,
            cached: false,
        })
    }

    async fn principal_tags_if_free(&self) -> Option<super::cost_allocation::TagListing> {
        self.principal_tags().await.ok()
    }

    async fn activate(
        &self,
        keys: &[String],
    ) -> Result<(Vec<super::cost_allocation::ActivationResult>, u32), ToolError> {
        let known = [
            "iamPrincipal/cost-center",
            "iamPrincipal/owner",
            "iamPrincipal/team",
        ];
        let results = keys
            .iter()
            .map(|k| {
                let ok = known.contains(&k.as_str());
                if ok {
                    self.activated.lock().expect("demo lock").push(k.clone());
                }
                super::cost_allocation::ActivationResult {
                    key: k.clone(),
                    activated: ok,
                    error: (!ok).then(|| {
                        "TagKeysNotFoundException: no usage carried this key yet".to_string()
                    }),
                }
            })
            .collect();
        Ok((results, 0))
    }
}

/// The demo organisation's Agent Registry: two registries with MCP servers,
/// A2A agents and a skill, some of them running as the demo roles whose
/// spend is in the demo data. Search is keyword scoring; only APPROVED
/// records are discoverable, as in AWS.
pub struct DemoRegistry {
    records: Vec<(usize, super::registry::RawRecord)>,
}

impl Default for DemoRegistry {
    fn default() -> Self {
        Self::new()
    }
}

const DEMO_REGISTRIES: [(&str, &str, &str); 2] = [
    (
        "rgPlatformTool1",
        "platform-tools",
        "Shared MCP servers and skills of the platform team",
    ),
    (
        "rgFinanceAgent2",
        "finance-agents",
        "Agents of the finance applications team",
    ),
];

impl DemoRegistry {
    pub fn new() -> Self {
        use super::registry::{RawDescriptors, RawRecord};
        let a = crate::demo_data::DEMO_ACCOUNT;
        let rec = |reg: usize,
                   id: &str,
                   name: &str,
                   kind: &str,
                   status: &str,
                   desc: &str,
                   d: RawDescriptors,
                   role: Option<&str>| {
            (
                reg,
                RawRecord {
                    registry_arn: format!("arn:aws:agent-registry:us-east-1:{a}:registry/{}", DEMO_REGISTRIES[reg].0),
                    record_id: id.into(),
                    record_arn: format!("arn:aws:agent-registry:us-east-1:{a}:registry/{}/record/{id}", DEMO_REGISTRIES[reg].0),
                    name: name.into(),
                    display_name: None,
                    description: Some(desc.into()),
                    record_type: kind.into(),
                    version: "1.0".into(),
                    status: status.into(),
                    updated_at: "2026-11-02T10:00:00Z".into(),
                    descriptors: d,
                    custom_metadata: role.map(|r| serde_json::json!({ "iamRoleArn": format!("arn:aws:iam::{a}:role/{r}") })),
                },
            )
        };
        let mcp = |url: &str, tools: &[&str]| {
            RawDescriptors {
            mcp_server: Some(serde_json::json!({"remotes": [{"type": "streamable-http", "url": url}]}).to_string()),
            mcp_tools: Some(serde_json::json!({"tools": tools.iter().map(|t| serde_json::json!({"name": t})).collect::<Vec<_>>()}).to_string()),
            ..Default::default()
        }
        };
        let agent = |url: &str, skills: &[&str]| {
            RawDescriptors {
            a2a_card: Some(serde_json::json!({"url": url, "skills": skills.iter().map(|s| serde_json::json!({"id": s, "name": s})).collect::<Vec<_>>()}).to_string()),
            ..Default::default()
        }
        };
        let records = vec![
            rec(0, "rcJiraIssues01", "jira-issues-mcp", "MCP", "APPROVED", "Search, create and triage Jira issues", mcp("https://mcp.acme.example/jira/mcp", &["search_issues", "create_issue", "add_comment"]), Some("SupportBotRole")),
            rec(0, "rcDocsSearch02", "docs-search-mcp", "MCP", "APPROVED", "Semantic search over internal engineering documentation", mcp("https://mcp.acme.example/docs/mcp", &["search_docs", "get_page"]), None),
            rec(0, "rcSupportTri03", "support-triage-agent", "AGENT", "APPROVED", "Classifies support tickets and drafts answers", agent("https://agents.acme.example/support-triage", &["classify_ticket", "draft_reply"]), Some("SupportBotRole")),
            rec(0, "rcCostReview04", "bedrock-cost-review", "SKILL", "APPROVED", "Reviews Bedrock spend per team and proposes savings", RawDescriptors { skill_md: Some("# Bedrock cost review\nReviews Bedrock spend per team and proposes savings.".into()), ..Default::default() }, None),
            rec(0, "rcDataDraft05", "dataset-profiler-mcp", "MCP", "DRAFT", "Profiles datasets (not approved yet)", mcp("https://mcp.acme.example/profiler/mcp", &["profile"]), None),
            rec(1, "rcInvoiceAg06", "invoice-processing-agent", "AGENT", "APPROVED", "Extracts, validates and posts supplier invoices", agent("https://agents.acme.example/invoices", &["extract_invoice", "match_purchase_order", "post_to_ledger"]), Some("InvoiceAgentRole")),
            rec(1, "rcErpLedger07", "erp-ledger-mcp", "MCP", "APPROVED", "Reads and writes the ERP general ledger for invoice posting", mcp("https://mcp.acme.example/erp/mcp", &["get_account", "post_journal_entry"]), Some("InvoiceAgentRole")),
            rec(1, "rcForecast08", "budget-forecaster", "AGENT", "DEPRECATED", "Forecasts department budgets (replaced)", agent("https://agents.acme.example/forecast", &["forecast"]), None),
        ];
        DemoRegistry { records }
    }
}

#[async_trait::async_trait]
impl super::registry::AgentRegistry for DemoRegistry {
    async fn registries(&self) -> Result<Vec<super::registry::RegistryInfo>, ToolError> {
        Ok(DEMO_REGISTRIES
            .iter()
            .map(|(id, name, desc)| super::registry::RegistryInfo {
                id: id.to_string(),
                arn: format!(
                    "arn:aws:agent-registry:us-east-1:{}:registry/{id}",
                    crate::demo_data::DEMO_ACCOUNT
                ),
                name: name.to_string(),
                description: Some(desc.to_string()),
                status: "READY".into(),
                authorizer: "AWS_IAM".into(),
            })
            .collect())
    }

    async fn search(
        &self,
        registry_id: &str,
        query: &str,
        filters: Option<serde_json::Value>,
        max_results: i32,
    ) -> Result<Vec<super::registry::RawRecord>, ToolError> {
        let reg = DEMO_REGISTRIES
            .iter()
            .position(|r| r.0 == registry_id)
            .ok_or_else(|| ToolError::invalid(format!("no registry '{registry_id}'")))?;
        let terms: Vec<String> = query
            .to_lowercase()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let wanted_types: Vec<String> = filters
            .as_ref()
            .map(|f| {
                let mut out = Vec::new();
                collect_types(f, &mut out);
                out
            })
            .unwrap_or_default();
        let mut scored: Vec<(usize, &super::registry::RawRecord)> = self
            .records
            .iter()
            .filter(|(r, rec)| {
                *r == reg
                    && rec.status == "APPROVED"
                    && (wanted_types.is_empty() || wanted_types.contains(&rec.record_type))
            })
            .map(|(_, rec)| {
                let name = rec.name.to_lowercase();
                let text = format!(
                    "{} {}",
                    rec.description.clone().unwrap_or_default(),
                    rec.descriptors.mcp_tools.clone().unwrap_or_default()
                )
                .to_lowercase();
                (
                    terms
                        .iter()
                        .map(|t| {
                            3 * usize::from(name.contains(t.as_str()))
                                + usize::from(text.contains(t.as_str()))
                        })
                        .sum(),
                    rec,
                )
            })
            .filter(|(score, _)| *score > 0)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.name.cmp(&b.1.name)));
        Ok(scored
            .into_iter()
            .take(max_results.max(1) as usize)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn browse(
        &self,
        registry_id: &str,
        record_types: &[String],
        _max: i32,
        _next: Option<String>,
    ) -> Result<(Vec<super::registry::RawRecord>, Option<String>), ToolError> {
        let reg = DEMO_REGISTRIES
            .iter()
            .position(|r| r.0 == registry_id)
            .ok_or_else(|| ToolError::invalid(format!("no registry '{registry_id}'")))?;
        Ok((
            self.records
                .iter()
                .filter(|(r, rec)| {
                    *r == reg
                        && rec.status == "APPROVED"
                        && (record_types.is_empty() || record_types.contains(&rec.record_type))
                })
                .map(|(_, rec)| rec.clone())
                .collect(),
            None,
        ))
    }

    async fn get(
        &self,
        registry_id: &str,
        record_ids: &[String],
    ) -> Result<
        (
            Vec<super::registry::RawRecord>,
            Vec<super::registry::RecordError>,
        ),
        ToolError,
    > {
        let reg = DEMO_REGISTRIES
            .iter()
            .position(|r| r.0 == registry_id)
            .ok_or_else(|| ToolError::invalid(format!("no registry '{registry_id}'")))?;
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for id in record_ids {
            match self
                .records
                .iter()
                .find(|(r, rec)| *r == reg && &rec.record_id == id && rec.status == "APPROVED")
            {
                Some((_, rec)) => found.push(rec.clone()),
                None => errors.push(super::registry::RecordError {
                    registry_id: registry_id.into(),
                    record_id: id.clone(),
                    code: "RESOURCE_NOT_FOUND".into(),
                    message: "no such discoverable record".into(),
                }),
            }
        }
        Ok((found, errors))
    }
}

/// Record types named in a search filter document (`recordType` `$eq` / `$in`).
fn collect_types(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, val) in o {
                if k == "recordType" {
                    if let Some(s) = val.get("$eq").and_then(|s| s.as_str()) {
                        out.push(s.to_string());
                    }
                    if let Some(a) = val.get("$in").and_then(|a| a.as_array()) {
                        out.extend(a.iter().filter_map(|s| s.as_str().map(str::to_string)));
                    }
                } else {
                    collect_types(val, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_types(x, out)),
        _ => {}
    }
}
