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
    items: Vec<LineItem>,
}

impl DemoCostExplorer {
    /// Data dated relative to `today`.
    pub fn new(today: NaiveDate) -> Self {
        DemoCostExplorer {
            items: line_items(today)
                .into_iter()
                .filter(|l| l.line_item_type == "Usage")
                .collect(),
        }
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
        for item in &self.items {
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
