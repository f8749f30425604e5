//! Cost Explorer: spend by `iamPrincipal/<key>` tag, service, usage type, region.
//!
//! Usage only is grouped (`RECORD_TYPE` in Usage, DiscountedUsage, SavingsPlanCoveredUsage):
//! credits and refunds carry no principal tag, so grouped by a tag they would fall into its
//! untagged group and net it. They are asked for in a second request, grouped by record type,
//! and listed beside the total. A third request splits an untagged group by usage type, to tell
//! the spend that never has a principal (capacity, non-token meters) from untagged principals
//! (Cost Explorer has no dimension for the principal itself).
//!
//! Every request is $0.01 (each page too), so all calls go through the
//! [`ce_guard`](super::ce_guard): cache, single-flight and an hourly cap.
//! Bedrock spend appears under several SERVICE names (Amazon Bedrock, Amazon Bedrock Service,
//! the Marketplace "(Amazon Bedrock Edition)" models, Amazon Bedrock AgentCore); as the SDK's
//! `ProductAttributeValues` documentation advises
//! (<https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_GetDimensionValues.html>), they
//! are discovered with `GetDimensionValues(SERVICE, "Bedrock")` once a day
//! and all of them are counted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_costexplorer::Client;
use aws_sdk_costexplorer::types::{
    Context, DateInterval, Dimension, DimensionValues, Expression, Granularity as CeGranularity,
    GroupDefinition, GroupDefinitionType, MatchOption, TagValues,
};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use futures::FutureExt;
use serde::Serialize;

use super::ce_guard::{RequestCap, Served, SingleFlightCache};
use super::{Progress, SpendAnswer, SpendRow, SpendSource};
use crate::domain::group::{Granularity, GroupKey, SpendQuery};
use crate::domain::period::{Period, add_months};
use crate::error::{ToolError, from_sdk};

/// Used when service discovery is not possible; the note says so.
pub const FALLBACK_BEDROCK_SERVICES: &[&str] = &["Amazon Bedrock", "Amazon Bedrock Service"];

/// How long answers are kept.
#[derive(Debug, Clone, Copy)]
pub struct CacheTtl {
    /// Periods that end before the current month.
    pub closed: Duration,
    /// Periods that reach into the current month.
    pub open: Duration,
}

impl CacheTtl {
    /// The time for `period`, seen on `today`.
    pub fn for_period(&self, period: &Period, today: NaiveDate) -> Duration {
        if period.is_closed(today) {
            self.closed
        } else {
            self.open
        }
    }
}

/// The normalised request: what the cache is keyed by, and what is sent.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
struct CeRequest {
    start: NaiveDate,
    end: NaiveDate,
    granularity: &'static str,
    metric: &'static str,
    /// (type, key): ("TAG", "iamPrincipal/team"), ("DIMENSION", "SERVICE").
    group_by: Vec<(&'static str, String)>,
    services: Vec<String>,
    /// iamPrincipal/<key> -> values; "" = absent (untagged).
    tags: BTreeMap<String, Vec<String>>,
    /// RECORD_TYPE: the usage record types only (`true`), or all but them (`false`: credits,
    /// refunds, tax, discounts). Credits and refunds carry no principal tag: grouped with usage
    /// by a tag they would land in its untagged group and net it.
    usage_only: bool,
}

/// One fetched answer (all pages).
#[derive(Debug, Clone)]
struct CeFetch {
    rows: Vec<SpendRow>,
    currency: Option<String>,
    estimated: bool,
    pages: u32,
    as_of: DateTime<Utc>,
}

/// The Cost Explorer spend source.
pub struct CostExplorer {
    client: crate::sources::Lazy<Client>,
    answers: SingleFlightCache<CeFetch>,
    services: SingleFlightCache<(Vec<String>, u32, Option<String>)>,
    cap: Arc<RequestCap>,
    ttl: CacheTtl,
}

impl CostExplorer {
    pub fn new(client: crate::sources::Lazy<Client>, cap: Arc<RequestCap>, ttl: CacheTtl) -> Self {
        CostExplorer {
            client,
            answers: SingleFlightCache::new(512),
            services: SingleFlightCache::new(4),
            cap,
            ttl,
        }
    }

    /// Bedrock service names, one paid request a day. Returns (names, paid requests, note).
    async fn bedrock_services(
        &self,
        today: NaiveDate,
    ) -> Result<(Arc<(Vec<String>, u32, Option<String>)>, Served), ToolError> {
        let client = self.client.clone();
        let cap = self.cap.clone();
        let key = format!("services:{today}");
        self.services
            .get_or_fetch(&key, Duration::from_secs(24 * 3600), move || {
                async move {
                    let start = add_months(today, -13);
                    let end = today + ChronoDuration::days(1);
                    cap.take()?;
                    let res = client
                        .get_dimension_values()
                        .time_period(interval(start, end)?)
                        .dimension(Dimension::Service)
                        .context(Context::CostAndUsage)
                        .search_string("Bedrock")
                        .send()
                        .await;
                    match res {
                        Ok(out) => {
                            let mut names: Vec<String> =
                                out.dimension_values().iter().filter_map(|v| v.value().map(str::to_string)).collect();
                            names.sort();
                            names.dedup();
                            if names.is_empty() {
                                Ok((fallback(), 1, Some("no service named *Bedrock* had spend in the last 13 months; counted the standard Bedrock service names".into())))
                            } else {
                                Ok((names, 1, None))
                            }
                        }
                        Err(e) => {
                            let err = from_sdk("Cost Explorer", "ce:GetDimensionValues", &e);
                            match err {
                                ToolError::AccessDenied { .. } => Ok((
                                    fallback(),
                                    0,
                                    Some(format!("could not list Bedrock service names ({err}); counted only {}", FALLBACK_BEDROCK_SERVICES.join(", "))),
                                )),
                                other => Err(other),
                            }
                        }
                    }
                }
                .boxed()
            })
            .await
    }
}

/// What Cost Explorer can answer; shared with the demo source so both refuse alike.
pub fn check_query(q: &SpendQuery) -> Result<(), ToolError> {
    for k in &q.group_by {
        if !k.on_cost_explorer() {
            return Err(ToolError::Unsupported(format!(
                "Cost Explorer cannot group by '{k}' (it never shows principal ARNs, models or token kinds); use source \"cur\" (start the server with --cur PATH) or group by tag:<key>, service, usage_type or region"
            )));
        }
    }
    if q.group_by.len() > 2 {
        return Err(ToolError::invalid(
            "Cost Explorer groups by at most 2 keys; drop one, or use source \"cur\"",
        ));
    }
    if !q.filter.principals.is_empty()
        || !q.filter.roles.is_empty()
        || !q.filter.models.is_empty()
        || !q.filter.currencies.is_empty()
    {
        return Err(ToolError::Unsupported(
        "filters on principal, role, model or currency need source \"cur\" (start the server with --cur PATH); Cost Explorer filters only on tags".into(),
        ));
    }
    Ok(())
}

fn fallback() -> Vec<String> {
    FALLBACK_BEDROCK_SERVICES
        .iter()
        .map(std::string::ToString::to_string)
        .collect()
}

fn interval(start: NaiveDate, end: NaiveDate) -> Result<DateInterval, ToolError> {
    DateInterval::builder()
        .start(start.to_string())
        .end(end.to_string())
        .build()
        .map_err(|e| ToolError::invalid(e.to_string()))
}

fn build_filter(req: &CeRequest) -> Result<Expression, ToolError> {
    let record_types = Expression::builder()
        .dimensions(
            DimensionValues::builder()
                .key(Dimension::RecordType)
                .set_values(Some(
                    crate::domain::lines::USAGE_RECORD_TYPES
                        .iter()
                        .map(std::string::ToString::to_string)
                        .collect(),
                ))
                .build(),
        )
        .build();
    let mut parts = vec![
        Expression::builder()
            .dimensions(
                DimensionValues::builder()
                    .key(Dimension::Service)
                    .set_values(Some(req.services.clone()))
                    .build(),
            )
            .build(),
        if req.usage_only {
            record_types
        } else {
            Expression::builder().not(record_types).build()
        },
    ];
    for (key, values) in &req.tags {
        if values.is_empty() {
            // Fail closed: a filter that names no value must never be dropped (the request
            // would go out unfiltered and count everyone's spend).
            return Err(ToolError::invalid(format!("filter {key} has no value")));
        }
        let named: Vec<String> = values.iter().filter(|v| !v.is_empty()).cloned().collect();
        let wants_untagged = values.iter().any(std::string::String::is_empty);
        let mut alts = Vec::new();
        if !named.is_empty() {
            alts.push(
                Expression::builder()
                    .tags(
                        TagValues::builder()
                            .key(key)
                            .set_values(Some(named))
                            .match_options(MatchOption::Equals)
                            .build(),
                    )
                    .build(),
            );
        }
        if wants_untagged {
            alts.push(
                Expression::builder()
                    .tags(
                        TagValues::builder()
                            .key(key)
                            .match_options(MatchOption::Absent)
                            .build(),
                    )
                    .build(),
            );
        }
        if alts.len() == 1 {
            parts.extend(alts);
        } else if !alts.is_empty() {
            parts.push(Expression::builder().set_or(Some(alts)).build());
        }
    }
    Ok(Expression::builder().set_and(Some(parts)).build())
}

/// Strip `iamPrincipal/team$` from a TAG group key; empty value = untagged.
fn group_value(kind: &str, raw: &str) -> Option<String> {
    let v = if kind == "TAG" {
        raw.split_once('$').map(|(_, v)| v).unwrap_or(raw)
    } else {
        raw
    };
    if v.is_empty() {
        None
    } else {
        Some(v.to_string())
    }
}

fn parse_amount(raw: Option<&str>) -> Result<f64, ToolError> {
    let s = raw.unwrap_or("0");
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| ToolError::Malformed {
            service: "Cost Explorer".into(),
            message: format!("amount '{s}' is not a number"),
        })
}

async fn fetch_all(
    client: crate::sources::Lazy<Client>,
    cap: Arc<RequestCap>,
    req: CeRequest,
    progress: Progress,
) -> Result<CeFetch, ToolError> {
    let mut rows = Vec::new();
    let mut pager = super::ce_guard::PaidPages::new(&cap);
    let mut estimated = false;
    let mut currency = None;
    let filter = build_filter(&req)?;
    let granularity = if req.granularity == "DAILY" {
        CeGranularity::Daily
    } else {
        CeGranularity::Monthly
    };
    while let Some(token) = pager.next()? {
        let mut call = client
            .get_cost_and_usage()
            .time_period(interval(req.start, req.end)?)
            .granularity(granularity.clone())
            .metrics(req.metric)
            .filter(filter.clone())
            .set_next_page_token(token);
        for (kind, key) in &req.group_by {
            let t = if *kind == "TAG" {
                GroupDefinitionType::Tag
            } else {
                GroupDefinitionType::Dimension
            };
            call = call.group_by(GroupDefinition::builder().r#type(t).key(key).build());
        }
        let out = call
            .send()
            .await
            .map_err(|e| from_sdk("Cost Explorer", "ce:GetCostAndUsage", &e))?;
        if out.results_by_time.is_none() {
            // Cost Explorer always sends ResultsByTime (empty when nothing matched): without
            // it the answer would read as $0, which it is not.
            return Err(ToolError::Malformed {
                service: "Cost Explorer".into(),
                message: "GetCostAndUsage answered without ResultsByTime".into(),
            });
        }
        let pages = pager.pages;
        progress(pages as f64, 0.0, format!("Cost Explorer page {pages}"));
        for bucket in out.results_by_time() {
            let start = bucket
                .time_period()
                .and_then(|p| NaiveDate::parse_from_str(p.start(), "%Y-%m-%d").ok())
                .ok_or_else(|| ToolError::Malformed {
                    service: "Cost Explorer".into(),
                    message: "a ResultsByTime entry has no valid TimePeriod.Start".into(),
                })?;
            estimated |= bucket.estimated();
            if req.group_by.is_empty() {
                if let Some(m) = bucket.total().and_then(|t| t.get(req.metric)) {
                    currency = currency.or(m.unit().map(str::to_string));
                    rows.push(SpendRow {
                        bucket_start: start,
                        keys: vec![],
                        amount: parse_amount(m.amount())?,
                        usage: None,
                        usage_unit: None,
                        no_principal: false,
                    });
                }
                continue;
            }
            for g in bucket.groups() {
                let keys: Vec<Option<String>> = req
                    .group_by
                    .iter()
                    .zip(
                        g.keys()
                            .iter()
                            .map(String::as_str)
                            .chain(std::iter::repeat("")),
                    )
                    .map(|((kind, _), raw)| group_value(kind, raw))
                    .collect();
                let m = g.metrics().and_then(|m| m.get(req.metric));
                let Some(m) = m else {
                    return Err(ToolError::Malformed {
                        service: "Cost Explorer".into(),
                        message: format!("group {:?} has no {} metric", g.keys(), req.metric),
                    });
                };
                if let (Some(c), Some(u)) = (&currency, m.unit())
                    && c != u
                {
                    return Err(ToolError::invalid(format!(
                        "Cost Explorer answered in two currencies ({c}, {u}); amounts in different currencies are never added together"
                    )));
                }
                currency = currency.or(m.unit().map(str::to_string));
                rows.push(SpendRow {
                    bucket_start: start,
                    keys,
                    amount: parse_amount(m.amount())?,
                    usage: None,
                    usage_unit: None,
                    no_principal: false,
                });
            }
        }
        pager.after(out.next_page_token());
    }
    Ok(CeFetch {
        rows,
        currency,
        estimated,
        pages: pager.pages,
        as_of: crate::domain::clock::now(),
    })
}

#[async_trait::async_trait]
impl SpendSource for CostExplorer {
    fn name(&self) -> &'static str {
        "cost_explorer"
    }

    fn filters_principals(&self) -> bool {
        false
    }

    async fn bedrock_service_names(&self) -> Option<Vec<String>> {
        self.bedrock_services(crate::domain::clock::today())
            .await
            .ok()
            .map(|(found, _)| found.0.clone())
    }

    async fn spend(&self, q: &SpendQuery, progress: Progress) -> Result<SpendAnswer, ToolError> {
        let today = crate::domain::clock::today();
        let mut notes = Vec::new();
        check_query(q)?;
        let oldest = add_months(today, -13);
        if q.period.start < oldest {
            return Err(ToolError::invalid(format!(
                "Cost Explorer keeps 13 months of history plus the current month, so the start must be on or after {oldest}; ask for a later period, or use source \"cur\" for older data"
            )));
        }
        let tomorrow = today + ChronoDuration::days(1);
        let period = q.period.clamp_end(tomorrow);
        if period.end != q.period.end {
            notes.push(format!(
                "end clamped to {} (no billing data exists after today)",
                period.end
            ));
        }
        let (services, served_services) = self.bedrock_services(today).await?;
        let (service_names, service_requests, service_note) = services.as_ref().clone();
        notes.extend(service_note);
        let tags: BTreeMap<String, Vec<String>> = q
            .filter
            .tags
            .iter()
            .map(|(k, v)| (format!("iamPrincipal/{k}"), v.clone()))
            .collect();
        let req = CeRequest {
            start: period.start,
            end: period.end,
            granularity: match q.granularity {
                Granularity::Daily => "DAILY",
                Granularity::Monthly => "MONTHLY",
            },
            metric: q.metric.ce_name(),
            group_by: q.group_by.iter().map(ce_group).collect(),
            services: service_names.clone(),
            tags: tags.clone(),
            usage_only: true,
        };
        let ttl = self.ttl.for_period(&period, today);
        let mut paid = if served_services == Served::Fetched {
            service_requests
        } else {
            0
        };
        let mut cached = true;
        let (fetch, served) = self.fetch(req.clone(), ttl, progress.clone()).await?;
        paid += if served == Served::Fetched {
            fetch.pages
        } else {
            0
        };
        cached &= served == Served::Shared;
        let mut rows = fetch.rows.clone();
        let mut estimated = fetch.estimated;
        let currency = fetch.currency.clone().unwrap_or_else(|| "USD".into());
        // The untagged group holds untagged principals and lines without any principal alike:
        // split off what a second request by usage type shows to be the latter.
        let untagged: f64 = rows
            .iter()
            .filter(|r| {
                q.group_by
                    .iter()
                    .zip(&r.keys)
                    .any(|(k, v)| k.is_tag() && v.is_none())
            })
            .map(|r| r.amount)
            .sum();
        let tag_keys: Vec<&String> = q
            .group_by
            .iter()
            .filter_map(|k| match k {
                GroupKey::Tag(t) => Some(t),
                _ => None,
            })
            .collect();
        // Never widen what was asked: when a filter (the caller's visibility, the question's
        // own) already names the key, split only if it admits untagged principals.
        let split_allowed = |key: &String| {
            tags.get(&format!("iamPrincipal/{key}"))
                .is_none_or(|values| values.iter().any(String::is_empty))
        };
        if untagged.abs() >= 0.005 && tag_keys.len() == 1 && split_allowed(tag_keys[0]) {
            let key = tag_keys[0];
            let mut split_tags = tags.clone();
            split_tags.insert(format!("iamPrincipal/{key}"), vec![String::new()]);
            let mut group_by: Vec<(&'static str, String)> = q
                .group_by
                .iter()
                .filter(|k| !k.is_tag())
                .map(ce_group)
                .collect();
            group_by.push(("DIMENSION", "USAGE_TYPE".to_string()));
            let split_req = CeRequest {
                group_by,
                tags: split_tags,
                ..req.clone()
            };
            match self.fetch(split_req, ttl, progress.clone()).await {
                Ok((split, served)) => {
                    paid += if served == Served::Fetched { split.pages } else { 0 };
                    cached &= served == Served::Shared;
                    estimated |= split.estimated;
                    let moved = split_no_principal(q, &mut rows, &split.rows);
                    if moved.abs() >= 0.005 {
                        notes.push(format!(
                            "Cost Explorer cannot tell a principal without the iamPrincipal/{key} tag from a line without any principal: {} of the untagged spend is on usage types that never carry a principal (provisioned throughput, reserved capacity, AgentCore compute, other non-token meters) and is shown as no_principal (inferred from the usage type); the rest stays untagged",
                            crate::domain::label::fmt_money(moved)
                        ));
                    } else {
                        notes.push(format!("the untagged group is spend by principals without the iamPrincipal/{key} tag (no usage type without a principal was found in it)"));
                    }
                }
                Err(e) => notes.push(format!(
                    "the untagged group may also hold spend without any principal (provisioned throughput, AgentCore compute): the request to split it failed ({e})"
                )),
            }
        } else if untagged.abs() >= 0.005 {
            notes.push("the untagged groups may also hold spend without any principal (provisioned throughput, AgentCore compute): Cost Explorer cannot tell them apart, and a split is asked only for one tag key".into());
        }
        // Credits, refunds, tax and discounts, beside the total (they carry no principal tag:
        // with a tag filter none would match, so they are asked only for the whole account).
        let mut adjustments = Vec::new();
        if tags.is_empty() {
            let adj_req = CeRequest {
                granularity: "MONTHLY",
                group_by: vec![("DIMENSION", "RECORD_TYPE".to_string())],
                usage_only: false,
                ..req.clone()
            };
            match self.fetch(adj_req, ttl, progress).await {
                Ok((adj, served)) => {
                    paid += if served == Served::Fetched {
                        adj.pages
                    } else {
                        0
                    };
                    cached &= served == Served::Shared;
                    for r in adj.rows.iter().filter(|r| r.amount.abs() >= 0.000_05) {
                        let record_type = r.keys.first().cloned().flatten().unwrap_or_default();
                        let line_item_type =
                            crate::domain::lines::cur_name_of_record_type(&record_type);
                        adjustments.push(crate::sources::Adjustment {
                            bucket_start: r.bucket_start,
                            in_net: q.metric == crate::domain::group::Metric::NetUnblended
                                && crate::domain::lines::in_net(&line_item_type),
                            line_item_type,
                            refers_to: None,
                            amount: r.amount,
                        });
                    }
                }
                Err(e) => notes.push(format!(
                    "credits, refunds and other adjustments not read: {e}"
                )),
            }
        } else {
            notes.push("credits, refunds, tax and discounts are account-wide (they carry no principal tag), so a tag-filtered answer lists none".into());
        }
        Ok(SpendAnswer {
            rows,
            currency,
            estimated,
            services_counted: service_names,
            paid_requests: paid,
            cached,
            as_of: fetch.as_of,
            source: "cost_explorer",
            notes,
            adjustments,
            scanned_bytes: None,
            no_principal: None,
            newest_record: None,
        })
    }
}

impl CostExplorer {
    /// One request (all its pages), through the cache, single flight and the paid-request cap.
    async fn fetch(
        &self,
        req: CeRequest,
        ttl: Duration,
        progress: Progress,
    ) -> Result<(Arc<CeFetch>, Served), ToolError> {
        let key = serde_json::to_string(&req).map_err(|e| ToolError::invalid(e.to_string()))?;
        let (client, cap) = (self.client.clone(), self.cap.clone());
        self.answers
            .get_or_fetch(&key, ttl, move || {
                fetch_all(client, cap, req, progress).boxed()
            })
            .await
    }
}

/// A group key as Cost Explorer names it. Only the keys `check_query` lets through reach here;
/// the others have no Cost Explorer dimension (a new key must be decided on here to compile).
fn ce_group(k: &GroupKey) -> (&'static str, String) {
    match k {
        GroupKey::Tag(t) => ("TAG", format!("iamPrincipal/{t}")),
        GroupKey::Service => ("DIMENSION", "SERVICE".to_string()),
        GroupKey::UsageType => ("DIMENSION", "USAGE_TYPE".to_string()),
        GroupKey::Region => ("DIMENSION", "REGION".to_string()),
        GroupKey::Principal
        | GroupKey::Role
        | GroupKey::Session
        | GroupKey::Model
        | GroupKey::TokenKind
        | GroupKey::Tier
        | GroupKey::InferenceScope
        | GroupKey::InferenceProfile
        | GroupKey::Day
        | GroupKey::Month => unreachable!("refused by check_query: {k}"),
    }
}

/// Does this usage type never carry a principal (capacity, and meters that are not tokens:
/// AgentCore compute, Guardrails, Knowledge Bases)?
fn without_principal(usage_type: &str) -> bool {
    let info = crate::domain::usage_type::parse(usage_type);
    !info.counts_tokens()
}

/// Move the untagged spend of usage types without a principal out of the untagged rows into
/// rows flagged `no_principal`; the amount moved. `split` rows are keyed like the query's
/// non-tag keys, then the usage type.
fn split_no_principal(q: &SpendQuery, rows: &mut Vec<SpendRow>, split: &[SpendRow]) -> f64 {
    let tag_pos = q.group_by.iter().position(GroupKey::is_tag);
    let Some(tag_pos) = tag_pos else {
        return 0.0;
    };
    // (bucket, the non-tag keys) -> amount without a principal
    let mut without: BTreeMap<(NaiveDate, Vec<Option<String>>), f64> = BTreeMap::new();
    for r in split {
        let Some((ut, others)) = r.keys.split_last() else {
            continue;
        };
        if ut.as_deref().is_some_and(without_principal) {
            *without
                .entry((r.bucket_start, others.to_vec()))
                .or_default() += r.amount;
        }
    }
    let mut moved = 0.0;
    for ((bucket, others), amount) in without {
        if amount.abs() < 0.000_05 {
            continue;
        }
        // The untagged row of the same bucket and other keys.
        let mut keys = others.clone();
        keys.insert(tag_pos, None);
        let Some(row) = rows
            .iter_mut()
            .find(|r| r.bucket_start == bucket && r.keys == keys && !r.no_principal)
        else {
            continue;
        };
        let take = amount.min(row.amount);
        row.amount -= take;
        moved += take;
        rows.push(SpendRow {
            bucket_start: bucket,
            keys,
            amount: take,
            usage: None,
            usage_unit: None,
            no_principal: true,
        });
    }
    rows.retain(|r| {
        r.no_principal || r.amount.abs() >= 0.000_05 || !r.keys.iter().any(Option::is_none)
    });
    moved
}

/// Cost Explorer's forecast and anomaly detection for one account: its client (built on first
/// use) and the paid-request cap every Cost Explorer call shares.
#[derive(Clone)]
pub struct CeInsights {
    client: super::Lazy<Client>,
    cap: Arc<RequestCap>,
}

impl CeInsights {
    pub fn new(client: super::Lazy<Client>, cap: Arc<RequestCap>) -> Self {
        CeInsights { client, cap }
    }

    /// The paid-request cap, shared with every account's Cost Explorer.
    pub fn cap(&self) -> &Arc<RequestCap> {
        &self.cap
    }

    /// The forecast of unblended spend on `services` from `start` to `end` (`GetCostForecast`,
    /// one paid request, counted against the cap; None when the period is too short).
    pub async fn forecast(
        &self,
        services: Vec<String>,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<Option<f64>, ToolError> {
        forecast(&self.client, &self.cap, services, start, end).await
    }

    /// Anomalies touching Bedrock in the period (`GetAnomalies`, every page a paid request).
    pub async fn anomalies(
        &self,
        period: Period,
    ) -> Result<Vec<crate::domain::anomaly::Anomaly>, ToolError> {
        anomalies(&self.client, &self.cap, period).await
    }
}

/// Cost Explorer's forecast of unblended spend on `services` from `start` to `end`
/// (`GetCostForecast`, one paid request, counted against `cap`).
async fn forecast(
    client: &Client,
    cap: &RequestCap,
    services: Vec<String>,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Option<f64>, ToolError> {
    use aws_sdk_costexplorer::types::{
        DateInterval, Dimension, DimensionValues, Expression, Granularity, Metric,
    };
    cap.take()?;
    let interval = DateInterval::builder()
        .start(start.to_string())
        .end(end.to_string())
        .build()
        .map_err(|e| ToolError::invalid(e.to_string()))?;
    let filter = Expression::builder()
        .dimensions(
            DimensionValues::builder()
                .key(Dimension::Service)
                .set_values(Some(services))
                .build(),
        )
        .build();
    let out = client
        .get_cost_forecast()
        .time_period(interval)
        .metric(Metric::UnblendedCost)
        .granularity(Granularity::Monthly)
        .filter(filter)
        .send()
        .await
        .map_err(|e| crate::error::from_sdk("Cost Explorer", "ce:GetCostForecast", &e))?;
    Ok(out
        .total()
        .and_then(|t| t.amount())
        .and_then(|a| a.parse::<f64>().ok()))
}

/// Cost Explorer anomalies touching Bedrock in the period (`GetAnomalies`; each page is a
/// paid request, counted against `cap`).
async fn anomalies(
    client: &Client,
    cap: &RequestCap,
    period: Period,
) -> Result<Vec<crate::domain::anomaly::Anomaly>, ToolError> {
    use aws_sdk_costexplorer::types::AnomalyDateInterval;
    let mut out = Vec::new();
    let mut pager = super::ce_guard::PaidPages::new(cap);
    while let Some(token) = pager.next()? {
        let interval = AnomalyDateInterval::builder()
            .start_date(period.start.to_string())
            .end_date(period.end.to_string())
            .build()
            .map_err(|e| ToolError::invalid(e.to_string()))?;
        let page = client
            .get_anomalies()
            .date_interval(interval)
            .max_results(100)
            .set_next_page_token(token)
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("Cost Explorer", "ce:GetAnomalies", &e))?;
        for a in page.anomalies() {
            let bedrock = a
                .root_causes()
                .iter()
                .any(|r| r.service().is_some_and(|s| s.contains("Bedrock")))
                || a.dimension_value().is_some_and(|d| d.contains("Bedrock"));
            if !bedrock {
                continue;
            }
            out.push(crate::domain::anomaly::Anomaly {
                calls_per_minute: None,
                source: "cost_explorer".into(),
                who: a.dimension_value().unwrap_or("Amazon Bedrock").to_string(),
                day: a
                    .anomaly_start_date()
                    .unwrap_or("")
                    .chars()
                    .take(10)
                    .collect(),
                expected: a
                    .impact()
                    .and_then(aws_sdk_costexplorer::types::Impact::total_expected_spend)
                    .unwrap_or(0.0),
                actual: a
                    .impact()
                    .and_then(aws_sdk_costexplorer::types::Impact::total_actual_spend)
                    .unwrap_or(0.0),
                score: a
                    .anomaly_score()
                    .map(aws_sdk_costexplorer::types::AnomalyScore::max_score)
                    .unwrap_or(0.0),
                drivers: a
                    .root_causes()
                    .iter()
                    .filter_map(|r| {
                        r.usage_type().map(|u| crate::domain::anomaly::Driver {
                            model: u.to_string(),
                            amount: 0.0,
                        })
                    })
                    .collect(),
                budget_threatened: None,
            });
        }
        pager.after(page.next_page_token());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_group_values_strip_the_key() {
        assert_eq!(
            group_value("TAG", "iamPrincipal/team$ml"),
            Some("ml".into())
        );
        assert_eq!(group_value("TAG", "iamPrincipal/team$"), None);
        assert_eq!(
            group_value("DIMENSION", "Amazon Bedrock"),
            Some("Amazon Bedrock".into())
        );
        assert!(parse_amount(Some("12.50")).unwrap() == 12.5);
        assert!(parse_amount(Some("abc")).is_err());
        assert!(parse_amount(Some("NaN")).is_err());
    }
}
