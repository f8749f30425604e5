//! The demo source: Cost Explorer's answers computed from the bundled demo
//! organisation ([`crate::demo_data`]), so the server answers with no AWS
//! account. It refuses what Cost Explorer refuses, and costs nothing.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Utc};

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

    async fn spend(&self, q: &SpendQuery, _progress: Progress) -> Result<SpendAnswer, ToolError> {
        check_query(q)?;
        let mut groups: BTreeMap<(NaiveDate, Vec<Option<String>>), f64> = BTreeMap::new();
        let mut services: Vec<String> = Vec::new();
        for item in self.items() {
            if item.usage_start < q.period.start || item.usage_start >= q.period.end {
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
                    _ => Some(item.region.clone()),
                })
                .collect();
            let amount = match q.metric {
                Metric::NetUnblended => item.net_unblended.unwrap_or(item.unblended),
                _ => item.unblended,
            };
            *groups.entry((bucket, keys)).or_default() += amount;
        }
        services.sort();
        let today = Utc::now().date_naive();
        let rows = groups
            .into_iter()
            .map(|((bucket_start, keys), amount)| SpendRow {
                bucket_start,
                keys,
                amount,
                usage: None,
                usage_unit: None,
            })
            .collect();
        Ok(SpendAnswer {
            rows,
            currency: "USD".into(),
            // Like Cost Explorer: the current month is not final.
            estimated: q.period.end > first_of_month(today)
                && today.month() == q.period.end.pred_opt().unwrap_or(today).month(),
            services_counted: services,
            paid_requests: 0,
            cached: false,
            as_of: Utc::now(),
            source: "demo",
            notes: vec![
                "demo data: a fictional organisation (Acme Example Corp), not your account".into(),
            ],
            adjustments: vec![],
            scanned_bytes: None,
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
        let a = crate::demo_data::DEMO_ACCOUNT;
        let t = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let p = |kind, name: &str, path: &str, tags: BTreeMap<String, String>, tag_session| {
            IamPrincipal {
                kind,
                name: name.to_string(),
                arn: match kind {
                    IamKind::User => format!("arn:aws:iam::{a}:user{path}{name}"),
                    IamKind::Role => format!("arn:aws:iam::{a}:role{path}{name}"),
                },
                path: path.to_string(),
                tags,
                last_used: None,
                tag_session_allowed: tag_session,
            }
        };
        let mut principals = vec![
            p(
                IamKind::User,
                "alice",
                "/",
                t(&[("team", "ml-platform"), ("cost-center", "cc-1001")]),
                false,
            ),
            p(
                IamKind::User,
                "bob",
                "/",
                t(&[("team", "web"), ("cost-center", "cc-2002")]),
                false,
            ),
            p(IamKind::User, "BedrockAPIKey-7f3k", "/", t(&[]), false),
            p(IamKind::User, "carol-admin", "/admins/", t(&[]), false),
            p(
                IamKind::Role,
                "DataScienceRole",
                "/",
                t(&[("team", "ml-platform"), ("cost-center", "cc-1001")]),
                true,
            ),
            p(
                IamKind::Role,
                "InvoiceAgentRole",
                "/agents/",
                t(&[("team", "finance-apps"), ("cost-center", "cc-3003")]),
                false,
            ),
            p(
                IamKind::Role,
                "SupportBotRole",
                "/agents/",
                t(&[("team", "support")]),
                true,
            ),
            p(
                IamKind::Role,
                "AWSServiceRoleForSupport",
                "/aws-service-role/support.amazonaws.com/",
                t(&[]),
                false,
            ),
        ];
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
            as_of: Some(Utc::now()),
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
            last_used: Some(Utc::now().format("%Y-%m-%dT00:00:00Z").to_string()),
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
