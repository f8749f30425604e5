//! Budget checks and estimates: the price of a planned call (Price List), the budget that
//! applies to its caller (AWS Budgets or the local policy), the spend so far, the unbilled
//! checks in the ledger and the forecast, as one verdict.

use chrono::{Datelike, SecondsFormat, Timelike};
use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::group::{Granularity, GroupKey, Metric, SpendFilter, SpendQuery};
use crate::domain::label::fmt_money;
use crate::domain::period::{PeriodInput, next_month};
use crate::domain::pricing::{ModelPrice, resolve};
use crate::domain::principal::PrincipalKind;
use crate::domain::usage_type::{Tier, TokenKind};
use crate::error::ToolError;
use crate::sources::budgets::{Budget, Scope, Subject, choose};
use crate::sources::ledger::Entry;
use crate::sources::no_progress;
use crate::usecases::context::Ctx;
pub use bedrock_cost_core::tools::args::{CheckInput, EstimateInput};
use bedrock_cost_core::tools::args::{Planned, Who, estimate_args, parse_who, planned_call};

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EstimateOutput {
    pub model: String,
    pub region: String,
    /// The tier priced: standard, batch, flex or priority.
    pub tier: String,
    /// The scope priced: in_region, cross_region (a geographic profile) or global.
    pub scope: String,
    pub cost_usd: f64,
    /// Per-kind cost: input, output, cache_read, cache_write_5m, cache_write_1h.
    pub breakdown: std::collections::BTreeMap<String, f64>,
    pub unit_prices_per_1k: ModelPrice,
    /// price_list, price_cache or snapshot.
    pub price_source: String,
    pub prices_as_of: String,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CheckOutput {
    /// allow, warn or deny.
    pub verdict: String,
    pub reasons: Vec<String>,
    pub who: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    pub period: crate::usecases::spend::PeriodOut,
    /// Spend so far this month under the budget (absent when withheld).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spent: Option<f64>,
    /// cur, cost_explorer, aws_budgets or none.
    pub spent_source: String,
    /// Our own figure for the budget's scope, when `spent` is AWS Budgets' own actual spend
    /// (the budget's filter or cost types cannot be reproduced from CUR or Cost Explorer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spent_computed: Option<f64>,
    pub spent_as_of: String,
    /// Estimates of earlier checks not billed yet (ledger; absent when withheld).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unbilled: Option<f64>,
    pub unbilled_checks: usize,
    /// Spend since the last billed day from model invocation logs (with --invocation-logs;
    /// absent when withheld), counted in the verdict beside the unbilled checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logged: Option<f64>,
    /// The newest invocation log record read (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_log_record: Option<String>,
    pub planned_cost: f64,
    /// Linear projection of month-to-date spend to the period end (absent when withheld).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<f64>,
    pub forecast_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_after: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent_after: Option<f64>,
    pub ledger_recorded: bool,
    /// The id of the estimate recorded: give it as `release` if the call does not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_id: Option<String>,
    /// The check released by this call (`release`), and its estimate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub released: Option<Released>,
    /// Why the budget's figures are not shown: it covers spend outside what the caller may see.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures_withheld: Option<String>,
    pub notes: Vec<String>,
}

/// Whose spend a check measured, in words: the budget's scope, or for the default budget the
/// subject's role (every session of it), principal or tags.
fn counted_scope(budget: Option<&Budget>, s: &Subject) -> String {
    match budget.map(|b| &b.scope) {
        Some(Scope::Principal { pattern }) => format!("principals matching {pattern}"),
        Some(Scope::Role { pattern }) => {
            format!("every session of roles matching {pattern}")
        }
        Some(Scope::Tag { key, value }) => {
            format!("every principal tagged iamPrincipal/{key}={value}")
        }
        Some(Scope::Bedrock) => "all Bedrock spend of the account".into(),
        Some(Scope::Default) | None => match (&s.role_arn, &s.principal_arn) {
            (Some(r), _) => format!("the role {r} (every session of it)"),
            (None, Some(p)) => format!("the principal {p}"),
            _ => {
                let tags: Vec<String> = s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("principals tagged {}", tags.join(", "))
            }
        },
    }
}

/// What a budget counts, as a spend filter: its scope, or for the default budget the subject's
/// role (every session of it), principal or tags.
fn budget_filter(budget: Option<&Budget>, s: &Subject) -> SpendFilter {
    let mut filter = SpendFilter::default();
    let scope = budget.map(|b| b.scope.clone()).unwrap_or(Scope::Default);
    match &scope {
        Scope::Principal { pattern } => filter.principals = vec![pattern.clone()],
        Scope::Role { pattern } => {
            filter.roles = vec![if pattern.contains(':') {
                pattern.clone()
            } else {
                format!("arn:aws:iam::*:role/{pattern}")
            }];
        }
        Scope::Tag { key, value } => {
            filter.tags.insert(key.clone(), vec![value.clone()]);
        }
        Scope::Bedrock => {}
        Scope::Default => match (&s.role_arn, &s.principal_arn) {
            (Some(r), _) => filter.roles = vec![r.clone()],
            (None, Some(p)) => filter.principals = vec![p.clone()],
            _ => {
                for (k, v) in &s.tags {
                    filter.tags.insert(k.clone(), vec![v.clone()]);
                }
            }
        },
    }
    filter
}

/// An estimate taken back from the ledger: its call did not run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Released {
    pub check_id: String,
    pub amount: f64,
    /// What was checked (model or cost_usd).
    pub what: String,
}

fn r4(x: f64) -> f64 {
    // + 0.0 turns -0.0 into 0.0.
    (x * 10_000.0).round() / 10_000.0 + 0.0
}

impl Ctx {
    /// `estimate_cost`, shared with check_budget and the CLI.
    pub async fn estimate(&self, input: EstimateInput) -> Result<EstimateOutput, ToolError> {
        let model = estimate_args(&input)?;
        let region = input.region.clone().unwrap_or_else(|| self.config_region());
        if !crate::domain::names::valid_region(&region) {
            return Err(ToolError::invalid(format!(
                "region '{}' is not an AWS region code; write it like us-east-1 or eu-central-1",
                region.chars().take(40).collect::<String>()
            )));
        }
        let tier = input
            .tier
            .as_deref()
            .and_then(Tier::parse)
            .unwrap_or(Tier::Standard);
        let scope = crate::domain::pricing::scope_of(model);
        let book = self.prices.prices(&region).await;
        let (price, fallback_notes) = match resolve(&book.prices, model, tier, scope) {
            Ok((p, notes)) => (p.clone(), notes),
            Err(crate::domain::pricing::Unpriced::NotListed { model, listed }) => {
                return Err(ToolError::invalid(format!(
                    "no {} {} price is listed for {model} in {region} ({}), and no listed price \
                     costs at least as much, so the call is not priced below what it costs; \
                     listed: {}. Ask for a listed tier, or set `tier` to the one the call will use",
                    tier.as_str(),
                    scope.as_str(),
                    book.source,
                    listed.join(", ")
                )));
            }
            Err(crate::domain::pricing::Unpriced::Unknown(close)) => {
                return Err(ToolError::invalid(format!(
                    "unknown model '{model}' in the {} prices for {region} ({}); closest: {}",
                    if book.source == "snapshot" {
                        "bundled snapshot".to_string()
                    } else {
                        format!(
                            "{} Price List offers",
                            crate::sources::pricing::OFFERS.join(" and ")
                        )
                    },
                    book.source,
                    close.join(", ")
                )));
            }
        };
        let k = |n: Option<u64>| n.unwrap_or(0) as f64 / 1000.0;
        let mut notes = book.notes.clone();
        notes.extend(fallback_notes);
        let mut breakdown = std::collections::BTreeMap::new();
        let mut input_cost = k(input.input_tokens) * price.input_per_1k;
        breakdown.insert(
            "output".to_string(),
            k(input.output_tokens) * price.output_per_1k,
        );
        for (kind, tokens) in [
            (TokenKind::CacheRead, input.cache_read_tokens),
            (TokenKind::CacheWrite5m, input.cache_write_tokens),
            (TokenKind::CacheWrite1h, input.cache_write_1h_tokens),
        ] {
            if tokens.is_none() {
                continue;
            }
            let label = kind.as_str();
            match crate::domain::pricing::per_1k_of(&price, kind) {
                (p, false) => {
                    breakdown.insert(label.to_string(), k(tokens) * p);
                }
                (p, true) => {
                    notes.push(format!(
                        "{} has no {label} price; those tokens are priced as input",
                        price.model
                    ));
                    input_cost += k(tokens) * p;
                }
            }
        }
        breakdown.insert("input".to_string(), input_cost);
        let cost: f64 = breakdown.values().sum();
        let breakdown = breakdown
            .into_iter()
            .map(|(k, v)| (k, (v * 1e8).round() / 1e8))
            .collect();
        Ok(EstimateOutput {
            model: price.model.clone(),
            region,
            tier: price.tier.clone(),
            scope: price.scope.clone(),
            cost_usd: (cost * 1e8).round() / 1e8,
            breakdown,
            unit_prices_per_1k: price,
            price_source: book.source,
            prices_as_of: book.as_of,
            notes,
        })
    }

    /// Resolve `who` to a subject (ARNs and tags).
    async fn subject(
        &self,
        who: Option<&str>,
        notes: &mut Vec<String>,
    ) -> Result<(String, Subject), ToolError> {
        let raw = match who.map(str::trim).filter(|w| !w.is_empty()) {
            Some(w) => w.to_string(),
            // The server's own AWS identity is not an HTTP caller's: a limited caller says
            // whom the call runs as.
            None if self.visibility().is_some() => {
                return Err(ToolError::invalid(
                    "who is required for this caller: name the principal ARN, role or tag:<key>=<value> the planned call runs as",
                ));
            }
            None => {
                let arn = self.sources.identity.caller().await?;
                notes.push(format!("who defaulted to the caller's identity {arn}"));
                arn
            }
        };
        let mut s = Subject::default();
        // The account an ARN names: its IAM tags are looked up in that account only.
        let mut account: Option<String> = None;
        let (kind, name) = match parse_who(&raw)? {
            Who::Tag { key, value } => {
                s.tags.insert(key.to_string(), value.to_string());
                return Ok((raw, s));
            }
            Who::Arn(p) => {
                s.principal_arn = Some(raw.clone());
                account = Some(p.account.to_string());
                match p.kind {
                    PrincipalKind::AssumedRole | PrincipalKind::Role => {
                        s.role_arn = Some(p.role_arn());
                        (Some(crate::sources::iam::IamKind::Role), p.name.to_string())
                    }
                    PrincipalKind::User => {
                        (Some(crate::sources::iam::IamKind::User), p.name.to_string())
                    }
                    _ => (None, p.name.to_string()),
                }
            }
            Who::Name(_) => (None, raw.clone()),
        };
        // Tags (and, for a bare name, the principal itself) from IAM.
        match self.sources.directory.inventory(no_progress()).await {
            Ok(inv) => {
                let hit = inv.principals.iter().find(|p| {
                    p.name == name
                        && kind.is_none_or(|k| k == p.kind)
                        && account.as_deref().is_none_or(|a| a == p.account())
                });
                match hit {
                    Some(p) => {
                        s.tags = p.tags.clone();
                        if s.principal_arn.is_none() {
                            s.principal_arn = Some(p.arn.clone());
                            if p.kind == crate::sources::iam::IamKind::Role {
                                s.role_arn =
                                    Some(format!("arn:aws:iam::{}:role/{}", p.account(), p.name));
                            }
                        }
                    }
                    None if s.principal_arn.is_none() => {
                        return Err(ToolError::invalid(format!(
                            "'{raw}' matches no IAM user or role; give a principal ARN, a role name, or tag:<key>=<value>"
                        )));
                    }
                    None => notes.push(format!(
                        "{name} is not in IAM (deleted, or another account); its tags are unknown"
                    )),
                }
            }
            Err(e) => notes.push(format!("could not read the principal's tags from IAM: {e}")),
        }
        Ok((raw, s))
    }

    /// Spend so far this period for a budget's scope.
    /// Spend so far this month for the budget's scope: amount, source, as of, and the last day
    /// with billed spend (the projection's base: billing lags 24-48 h behind usage).
    async fn spent_for(
        &self,
        budget: Option<&Budget>,
        s: &Subject,
        period: crate::domain::period::Period,
        notes: &mut Vec<String>,
    ) -> (f64, String, String, Option<chrono::NaiveDate>) {
        let filter = budget_filter(budget, s);
        let q = SpendQuery {
            period,
            granularity: Granularity::Monthly,
            group_by: vec![],
            filter: filter.clone(),
            metric: Metric::Unblended,
        };
        let needs_cur = !filter.principals.is_empty() || !filter.roles.is_empty();
        let source = if needs_cur {
            self.cur.clone()
        } else {
            Some(
                self.cur
                    .clone()
                    .unwrap_or_else(|| self.sources.cost_explorer.clone()),
            )
        };
        if let Some(src) = source {
            // By day, to know which days are billed; a source that cannot tell days (a
            // MONTHLY-granularity export) is asked for the month.
            let mut daily = q.clone();
            daily.granularity = Granularity::Daily;
            if src.name() == "cur" {
                daily.group_by = vec![GroupKey::Day];
            }
            let mut monthly = q;
            if src.name() == "cur" && monthly.group_by.is_empty() {
                monthly.group_by = vec![GroupKey::Month];
            }
            let answered = match src.spend(&daily, no_progress()).await {
                Ok(a) => Ok((a, true)),
                Err(_) => src.spend(&monthly, no_progress()).await.map(|a| (a, false)),
            };
            match answered {
                Ok((a, by_day)) => {
                    let billed_through = if by_day {
                        a.rows
                            .iter()
                            .filter(|r| r.amount.abs() >= 0.000_5)
                            .map(|r| r.bucket_start)
                            .max()
                    } else {
                        None
                    };
                    return (
                        a.rows.iter().map(|r| r.amount).sum(),
                        a.source.to_string(),
                        a.as_of.to_rfc3339_opts(SecondsFormat::Secs, true),
                        billed_through,
                    );
                }
                Err(e) => notes.push(format!("could not read spend: {e}")),
            }
        } else if needs_cur {
            notes.push(
                "spend of a single principal or role needs the CUR source (start with --cur PATH)"
                    .into(),
            );
        }
        if let Some(a) = budget.and_then(|b| b.aws_actual_spend) {
            return (
                a,
                "aws_budgets".into(),
                crate::domain::clock::now().to_rfc3339_opts(SecondsFormat::Secs, true),
                None,
            );
        }
        (
            0.0,
            "none".into(),
            crate::domain::clock::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            None,
        )
    }

    /// `check_budget`, shared with the CLI.
    pub async fn check(&self, input: CheckInput) -> Result<CheckOutput, ToolError> {
        let mut notes = Vec::new();
        let mut reasons = Vec::new();
        // A check whose call did not run: its estimate leaves the ledger first, so this answer
        // already counts without it. A limited caller releases only its own checks.
        let released = match input.release.as_deref().map(str::trim) {
            None => None,
            Some(id) if id.is_empty() || id.len() > 64 => {
                return Err(ToolError::invalid(
                    "release takes the check_id of an earlier check (chk_ and 32 hex digits)",
                ));
            }
            Some(id) => {
                let prefix = match self.caller().as_deref() {
                    Some(c) if c.visibility.is_some() => format!("caller:{}|", c.name),
                    _ => String::new(),
                };
                let e = self
                    .ledger
                    .release(id, &prefix)
                    .await
                    .map_err(ToolError::invalid)?;
                reasons.push(format!(
                    "released check {id}: its {} estimate no longer counts as unbilled spend",
                    fmt_money(e.amount)
                ));
                Some(Released {
                    check_id: id.to_string(),
                    amount: r4(e.amount),
                    what: e.what,
                })
            }
        };
        // The planned call (none when the call only releases an earlier check).
        let planned = match planned_call(&input) {
            Err(_) if released.is_some() && input.cost_usd.is_none() && input.model.is_none() => {
                Planned::Cost(0.0)
            }
            other => other?,
        };
        let planned = match planned {
            Planned::Cost(c) => c,
            Planned::Priced(estimate) => {
                let e = self.estimate(estimate).await?;
                notes.push(format!(
                    "planned call priced from {} ({} as of {})",
                    e.model, e.price_source, e.prices_as_of
                ));
                e.cost_usd
            }
        };
        let (who, subject) = self.subject(input.who.as_deref(), &mut notes).await?;
        self.check_subject(&who, &subject)?;
        let today = crate::domain::clock::today();
        let period = PeriodInput::Word("this_month".into())
            .resolve(today)
            .map_err(|e| ToolError::invalid(e.to_string()))?;
        // Budgets: AWS and local.
        let mut budgets = self.policy_budgets();
        match self.aws_budgets().await {
            Ok((b, skipped)) => {
                budgets.extend(b);
                if !skipped.is_empty() {
                    notes.push(format!(
                        "AWS budgets not about Bedrock or an iamPrincipal tag were ignored: {}",
                        skipped.join(", ")
                    ));
                }
            }
            Err(e) => notes.push(format!(
                "AWS Budgets unavailable ({e}); using the local policy only"
            )),
        }
        let budget = choose(&budgets, &subject).cloned();
        let (mut spent, mut spent_source, spent_as_of, billed_through) = self
            .spent_for(budget.as_ref(), &subject, period, &mut notes)
            .await;
        // A budget whose filter or cost types our sources cannot reproduce is measured by AWS's
        // own figure; ours is shown beside it.
        let mut spent_computed = None;
        // Carries amounts: said only when the budget's figures are not withheld.
        let mut measured_note = None;
        if let Some(b) = budget.as_ref().filter(|b| !b.not_reproduced.is_empty()) {
            match b.aws_actual_spend {
                Some(aws) if spent_source != "aws_budgets" => {
                    measured_note = Some(format!(
                        "budget {} also counts {}, which {} cannot reproduce: AWS Budgets' own actual spend ({}) is used; {} is the spend of its scope from {}",
                        b.name,
                        b.not_reproduced.join(", "),
                        spent_source,
                        fmt_money(aws),
                        fmt_money(spent),
                        spent_source
                    ));
                    spent_computed = Some(r4(spent));
                    spent = aws;
                    spent_source = "aws_budgets".into();
                }
                Some(_) => {}
                None => notes.push(format!(
                    "budget {} also counts {}, which cannot be reproduced here, and AWS Budgets reports no actual spend for it yet: spend of its scope is used",
                    b.name,
                    b.not_reproduced.join(", ")
                )),
            }
        }
        // A limited caller's estimates count only toward its own checks: it cannot push the
        // checks of callers it may not see (another team, the whole account) toward deny.
        let caller = self.caller();
        let ledger_key = budget.as_ref().map(|b| match caller.as_deref() {
            Some(c) if c.visibility.is_some() => format!("caller:{}|{}", c.name, b.scope.key()),
            _ => b.scope.key(),
        });
        // A budget whose scope reaches beyond what the caller may see: its verdict is given,
        // its figures (spend of others) are not.
        let withheld = budget
            .as_ref()
            .filter(|b| !self.sees_budget(b))
            .map(|b| {
                format!(
                    "budget {} covers spend outside what this caller may see; its figures are withheld, only the verdict is given",
                    b.name
                )
            });
        let now = crate::domain::clock::now();
        // Estimates of calls the bill already covers are released: a day before the last billed
        // day is complete (a later day has lines), so only checks from the start of the last
        // billed day on count as unbilled (and never before the budget's period).
        let since = billed_through
            .unwrap_or(period.start)
            .max(period.start)
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        // Spend the bill does not show yet, from the invocation logs: from the day after the
        // last billed day (a partly billed day is left to the bill) to now.
        let logged_from = billed_through
            .map_or(period.start, |d| d + chrono::Duration::days(1))
            .max(period.start)
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        let (logged, newest_log) = match self
            .logged_spend(&budget_filter(budget.as_ref(), &subject), logged_from, now)
            .await
        {
            None => (None, None),
            Some(Ok((amount, newest, _))) => (Some(amount), newest),
            Some(Err(e)) => {
                reasons.push(format!(
                    "the invocation logs could not be read ({e}): spend since the last billed day is not counted"
                ));
                (None, None)
            }
        };
        // A check made before the newest log record was read is taken to be in the logs (its
        // call ran by then, and Bedrock delivers records within minutes): counted once, there.
        let since = match newest_log {
            Some(n) if logged.is_some() => since.max(n),
            _ => since,
        };
        let (unbilled, unbilled_checks) = match &ledger_key {
            Some(key) => self.ledger.unbilled(key, since, now).await,
            None => (0.0, 0),
        };
        // From here on "unbilled" is both: the logs' spend and the checks not logged yet.
        let checks_unbilled = unbilled;
        let unbilled = unbilled + logged.unwrap_or(0.0);
        // Linear projection over the month, from the days with billed spend (billing lags usage
        // by 24-48 h: dividing by every elapsed day would understate the rate), plus the checks
        // not billed yet. With no billed day yet, from the time elapsed.
        let days_in_month = (next_month(today) - period.start).num_days() as f64;
        let (linear, linear_method) = match billed_through {
            Some(last) if last >= period.start => {
                let billed_days = ((last - period.start).num_days() + 1) as f64;
                (
                    spent / billed_days * days_in_month + unbilled,
                    format!(
                        "linear projection of the {billed_days} billed day(s) through {last} (billing lags usage by 24-48 h), plus unbilled checks"
                    ),
                )
            }
            _ => {
                let elapsed = (today.day() as f64 - 1.0
                    + now.time().num_seconds_from_midnight() as f64 / 86_400.0)
                    .max(0.5);
                (
                    spent / elapsed * days_in_month + unbilled,
                    "linear projection of month-to-date billed spend over the time elapsed, plus unbilled checks".to_string(),
                )
            }
        };
        // Account-wide Bedrock budgets use Cost Explorer's own forecast for the rest of the month.
        let (forecast, forecast_method) = match budget.as_ref().map(|b| &b.scope) {
            Some(Scope::Bedrock) => match self.ce_forecast(today, next_month(today)).await {
                Ok(Some(rest)) => (
                    spent + unbilled + rest,
                    "Cost Explorer GetCostForecast for the rest of the month, plus spend so far"
                        .to_string(),
                ),
                Ok(None) => (linear, linear_method),
                Err(e) => {
                    notes.push(format!(
                        "Cost Explorer forecast unavailable ({e}); linear projection used"
                    ));
                    (linear, linear_method)
                }
            },
            _ => (linear, linear_method),
        };
        let after = spent + unbilled + planned;
        let (verdict, remaining_after, percent_after) = match &budget {
            None => {
                reasons.push("no budget applies (no AWS budget on Bedrock or this principal's tags, and no local policy entry)".into());
                ("allow", None, None)
            }
            Some(b) => {
                let pct = if b.limit_usd > 0.0 {
                    after / b.limit_usd * 100.0
                } else {
                    f64::INFINITY
                };
                reasons.push(format!(
                    "budget {} ({}): {} of {} after this call ({:.1}%)",
                    b.name,
                    b.source,
                    fmt_money(after),
                    fmt_money(b.limit_usd),
                    pct
                ));
                let v = if pct >= b.deny_percent {
                    reasons.push(format!(
                        "at or above the deny threshold of {}%",
                        b.deny_percent
                    ));
                    "deny"
                } else if pct >= b.warn_percent {
                    reasons.push(format!(
                        "at or above the warn threshold of {}%",
                        b.warn_percent
                    ));
                    "warn"
                } else if forecast > b.limit_usd {
                    reasons.push(format!(
                        "forecast {} exceeds the budget by the end of the month",
                        fmt_money(forecast)
                    ));
                    "warn"
                } else {
                    "allow"
                };
                (
                    v,
                    Some(r4(b.limit_usd - after)),
                    Some((pct * 10.0).round() / 10.0),
                )
            }
        };
        // An open spike for the same caller (CUR, last three days) is worth knowing before spending more.
        if self.cur.is_some() && subject.role_arn.is_some() {
            let recent = bedrock_cost_core::tools::args::AnomalyInput {
                period: Some(PeriodInput::Range {
                    start: (today - chrono::Duration::days(3)).to_string(),
                    end: (today + chrono::Duration::days(1)).to_string(),
                }),
                by: Some("role".into()),
                ..Default::default()
            };
            if let Ok(found) = self.anomalies_from(recent, false).await {
                for a in found
                    .anomalies
                    .iter()
                    .filter(|a| Some(&a.who) == subject.role_arn.as_ref())
                {
                    reasons.push(format!(
                        "open anomaly: {} spent {} on {} against an expected {}",
                        a.who,
                        fmt_money(a.actual),
                        a.day,
                        fmt_money(a.expected)
                    ));
                }
            }
        }
        if let Some(l) = logged {
            reasons.push(format!(
                "{} logged since {} (model invocation logs, newest record {}), not billed yet",
                fmt_money(l),
                logged_from.format("%Y-%m-%d %H:%M UTC"),
                newest_log.map_or_else(
                    || "none".to_string(),
                    |t| t.to_rfc3339_opts(SecondsFormat::Secs, true)
                )
            ));
        }
        if unbilled_checks > 0 {
            reasons.push(format!(
                "{} from {unbilled_checks} recent check(s) not billed yet; the forecast {} counts them once (billed spend alone projects to {})",
                fmt_money(checks_unbilled),
                fmt_money(forecast),
                fmt_money(forecast - unbilled)
            ));
        }
        reasons.push(format!(
            "billed spend {} from {spent_source}, as of {spent_as_of}; billing lags 24-48 h",
            fmt_money(spent)
        ));
        reasons.push(format!(
            "spend counted for {}",
            counted_scope(budget.as_ref(), &subject)
        ));
        let record = input.record.unwrap_or(true);
        if !record {
            reasons.push(
                "what-if (record false): this estimate is not recorded as unbilled spend".into(),
            );
        }
        let mut ledger_recorded = false;
        let mut check_id = None;
        if let Some(ledger_key) = ledger_key
            && record
            && verdict != "deny"
            && planned > 0.0
        {
            let id = crate::sources::ledger::new_id();
            match self
                .ledger
                .record(Entry {
                    key: ledger_key,
                    at: now,
                    amount: planned,
                    what: input.model.clone().unwrap_or_else(|| "cost_usd".into()),
                    id: id.clone(),
                })
                .await
            {
                Ok(()) => {
                    ledger_recorded = true;
                    check_id = Some(id).filter(|i| !i.is_empty());
                }
                Err(e) => notes.push(format!("could not record the estimate in the ledger: {e}")),
            }
        }
        let mut out = CheckOutput {
            verdict: verdict.into(),
            reasons,
            who,
            budget,
            period: crate::usecases::spend::PeriodOut {
                start: period.start.to_string(),
                end: period.end.to_string(),
            },
            spent: Some(r4(spent)),
            spent_source,
            spent_as_of,
            unbilled: Some(r4(checks_unbilled)),
            unbilled_checks,
            logged: logged.map(r4),
            newest_log_record: newest_log.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            planned_cost: (planned * 1e8).round() / 1e8,
            forecast: Some(r4(forecast)),
            forecast_method,
            remaining_after,
            percent_after,
            ledger_recorded,
            check_id,
            released,
            figures_withheld: None,
            spent_computed,
            notes,
        };
        if let Some(why) = withheld {
            out.spent = None;
            out.spent_computed = None;
            if let Some(b) = out.budget.as_mut() {
                b.aws_actual_spend = None;
            }
            out.unbilled = None;
            out.logged = None;
            out.forecast = None;
            out.remaining_after = None;
            out.percent_after = None;
            // Every reason that carries an amount goes; the verdict's own reason stays.
            out.reasons = vec![format!(
                "verdict {verdict} from budget {}",
                out.budget.as_ref().map(|b| b.name.as_str()).unwrap_or("-")
            )];
            out.figures_withheld = Some(why);
        } else {
            out.notes.extend(measured_note);
        }
        Ok(out)
    }
}
