//! One fictional organisation, generated deterministically, dated relative to a
//! given day: the demo data for every tool and the seed of the CUR generator.
//!
//! "Acme Example Corp" (account 123456789012) runs Bedrock from IAM users, an
//! API-key user, federated data scientists, an AgentCore invoice agent with
//! one session per run, a support bot and an untagged legacy batch role.

use chrono::{Duration, NaiveDate};

use crate::domain::period::{add_months, first_of_month};

pub const DEMO_ACCOUNT: &str = "123456789012";

/// Bumped whenever the generated data changes, so cached demo exports are rebuilt.
pub const DEMO_DATA_VERSION: u32 = 3;

/// One CUR 2.0 line item (the columns we read).
#[derive(Debug, Clone, PartialEq)]
pub struct LineItem {
    pub usage_start: NaiveDate,
    pub principal: String,
    /// Cost-allocation tags with their `iamPrincipal/` prefix.
    pub tags: Vec<(String, String)>,
    pub usage_type: String,
    pub region: String,
    pub service_name: String,
    pub product_code: String,
    /// `product['model']`; empty where the export has no product metadata.
    pub model: String,
    pub provider: String,
    pub usage_amount: f64,
    pub pricing_unit: String,
    pub unblended: f64,
    /// May be NULL in real exports.
    pub net_unblended: Option<f64>,
    /// `Usage`, `Credit`, `Refund`, `Tax`, ...
    pub line_item_type: String,
}

/// A caller in the demo organisation, as CUR records it.
#[derive(Debug, Clone)]
pub struct DemoPrincipal {
    /// ARN as CUR records it (sessions included).
    pub arns: Vec<String>,
    pub tags: Vec<(&'static str, &'static str)>,
    /// Indexes into [`MODELS`].
    pub models: Vec<usize>,
    /// Relative daily volume (thousands of input tokens per day).
    pub volume: f64,
}

/// User or role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoKind {
    User,
    Role,
}

/// How one identity of the organisation calls Bedrock.
#[derive(Debug, Clone, Copy)]
pub struct DemoCalls {
    /// Role session names (empty for a user, who calls as itself).
    pub sessions: &'static [&'static str],
    /// Indexes into [`MODELS`].
    pub models: &'static [usize],
    /// Relative daily volume (thousands of input tokens per day).
    pub volume: f64,
}

/// One IAM identity of the demo organisation: what IAM lists (the directory) and what the bill
/// records of its calls (the line items) both derive from this one entry.
#[derive(Debug, Clone, Copy)]
pub struct DemoIdentity {
    pub kind: DemoKind,
    pub name: &'static str,
    pub path: &'static str,
    pub tags: &'static [(&'static str, &'static str)],
    /// Its role sessions may set session tags (`sts:TagSession`).
    pub tag_session: bool,
    /// IAM still lists it (false: deleted or renamed since it spent).
    pub in_iam: bool,
    /// None: it never calls Bedrock.
    pub calls: Option<DemoCalls>,
}

const ML: &[(&str, &str)] = &[("team", "ml-platform"), ("cost-center", "cc-1001")];

/// "Acme Example Corp": every person, agent and role of the demo, once.
pub const ORGANISATION: &[DemoIdentity] = &[
    DemoIdentity {
        kind: DemoKind::User,
        name: "alice",
        path: "/",
        tags: ML,
        tag_session: false,
        in_iam: true,
        calls: Some(DemoCalls {
            sessions: &[],
            models: &[0, 2],
            volume: 900.0,
        }),
    },
    DemoIdentity {
        kind: DemoKind::User,
        name: "bob",
        path: "/",
        tags: &[("team", "web"), ("cost-center", "cc-2002")],
        tag_session: false,
        in_iam: true,
        calls: Some(DemoCalls {
            sessions: &[],
            models: &[1],
            volume: 400.0,
        }),
    },
    // A Bedrock API key: an IAM user created for it, untagged.
    DemoIdentity {
        kind: DemoKind::User,
        name: "BedrockAPIKey-7f3k",
        path: "/",
        tags: &[],
        tag_session: false,
        in_iam: true,
        calls: Some(DemoCalls {
            sessions: &[],
            models: &[1, 3],
            volume: 250.0,
        }),
    },
    DemoIdentity {
        kind: DemoKind::User,
        name: "carol-admin",
        path: "/admins/",
        tags: &[],
        tag_session: false,
        in_iam: true,
        calls: None,
    },
    // Federated data scientists, one session each.
    DemoIdentity {
        kind: DemoKind::Role,
        name: "DataScienceRole",
        path: "/",
        tags: ML,
        tag_session: true,
        in_iam: true,
        calls: Some(DemoCalls {
            sessions: &["carol@acme.example", "dave@acme.example"],
            models: &[0, 1],
            volume: 700.0,
        }),
    },
    // An AgentCore agent: one session per run.
    DemoIdentity {
        kind: DemoKind::Role,
        name: "InvoiceAgentRole",
        path: "/agents/",
        tags: &[("team", "finance-apps"), ("cost-center", "cc-3003")],
        tag_session: false,
        in_iam: true,
        calls: Some(DemoCalls {
            sessions: &["BedrockAgentCore-3f2a9c1e", "BedrockAgentCore-8b41d07f"],
            models: &[0],
            volume: 1200.0,
        }),
    },
    DemoIdentity {
        kind: DemoKind::Role,
        name: "SupportBotRole",
        path: "/agents/",
        tags: &[("team", "support")],
        tag_session: true,
        in_iam: true,
        calls: Some(DemoCalls {
            sessions: &["support-bot-1"],
            models: &[1, 2],
            volume: 600.0,
        }),
    },
    DemoIdentity {
        kind: DemoKind::Role,
        name: "AWSServiceRoleForSupport",
        path: "/aws-service-role/support.amazonaws.com/",
        tags: &[],
        tag_session: false,
        in_iam: true,
        calls: None,
    },
    // Untagged, and deleted from IAM since: its spend is still in the bill.
    DemoIdentity {
        kind: DemoKind::Role,
        name: "LegacyBatchRole",
        path: "/",
        tags: &[],
        tag_session: false,
        in_iam: false,
        calls: Some(DemoCalls {
            sessions: &["nightly-batch"],
            models: &[3],
            volume: 500.0,
        }),
    },
];

impl DemoIdentity {
    /// Its ARN as IAM lists it.
    pub fn iam_arn(&self) -> String {
        let kind = match self.kind {
            DemoKind::User => "user",
            DemoKind::Role => "role",
        };
        format!(
            "arn:aws:iam::{DEMO_ACCOUNT}:{kind}{}{}",
            self.path, self.name
        )
    }
}

/// A Bedrock model of the demo, with on-demand prices per 1K tokens (USD).
#[derive(Debug, Clone, Copy)]
pub struct DemoModel {
    pub usage_name: &'static str,
    pub display: &'static str,
    pub provider: &'static str,
    pub service_name: &'static str,
    pub product_code: &'static str,
    /// input, output, cache read, cache write per 1K tokens.
    pub prices: [f64; 4],
}

pub const MODELS: &[DemoModel] = &[
    DemoModel {
        usage_name: "Claude4.6Sonnet",
        display: "Claude Sonnet 4.6",
        provider: "Anthropic",
        service_name: "Claude Sonnet 4.6 (Amazon Bedrock Edition)",
        product_code: "7zgyu5r4sonnet46",
        prices: [0.003, 0.015, 0.0003, 0.00375],
    },
    DemoModel {
        usage_name: "Claude4.5Haiku",
        display: "Claude Haiku 4.5",
        provider: "Anthropic",
        service_name: "Claude Haiku 4.5 (Amazon Bedrock Edition)",
        product_code: "9hq2kd1ahaiku45",
        prices: [0.001, 0.005, 0.0001, 0.00125],
    },
    DemoModel {
        usage_name: "NovaLite",
        display: "Nova Lite",
        provider: "Amazon",
        service_name: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        prices: [0.00006, 0.00024, 0.000015, 0.0],
    },
    DemoModel {
        usage_name: "Llama3.3-70B",
        display: "Llama 3.3 70B Instruct",
        provider: "Meta",
        service_name: "Amazon Bedrock",
        product_code: "AmazonBedrock",
        prices: [0.00072, 0.00072, 0.0, 0.0],
    },
];

/// The demo organisation's callers, in [`ORGANISATION`]'s order, as CUR records their ARNs: a
/// user as itself, a role as its assumed-role sessions.
pub fn principals() -> Vec<DemoPrincipal> {
    let a = DEMO_ACCOUNT;
    ORGANISATION
        .iter()
        .filter_map(|id| {
            let calls = id.calls?;
            let arns = match id.kind {
                DemoKind::User => vec![format!("arn:aws:iam::{a}:user/{}", id.name)],
                DemoKind::Role => calls
                    .sessions
                    .iter()
                    .map(|s| format!("arn:aws:sts::{a}:assumed-role/{}/{s}", id.name))
                    .collect(),
            };
            Some(DemoPrincipal {
                arns,
                tags: id.tags.to_vec(),
                models: calls.models.to_vec(),
                volume: calls.volume,
            })
        })
        .collect()
}

/// splitmix64: a small, deterministic hash for reproducible data.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A deterministic factor in [0.5, 1.5) from the parts.
fn jitter(parts: &[u64]) -> f64 {
    let h = parts.iter().fold(0x00C0_FFEE_u64, |acc, p| mix(acc ^ p));
    0.5 + (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Round to 10 decimal places, as CUR amounts are.
pub fn round10(x: f64) -> f64 {
    (x * 1e10).round() / 1e10
}

const KINDS: [&str; 4] = [
    "input-tokens",
    "output-tokens",
    "cache-read-input-token-count",
    "cache-write-input-token-count",
];
/// Output, cache-read, cache-write volume relative to input.
const KIND_RATIO: [f64; 4] = [1.0, 0.25, 0.6, 0.08];

/// Index in [`principals`] of the support bot whose loop runs away.
pub const RUNAWAY_PRINCIPAL: usize = 5;
/// How many days before `today` the runaway loop happened.
pub const RUNAWAY_DAYS_AGO: i64 = 2;

/// Daily line items from the first day of the month two months before `today`
/// up to yesterday, plus one credit line per month. Deterministic for a given `today`.
pub fn line_items(today: NaiveDate) -> Vec<LineItem> {
    let start = add_months(first_of_month(today), -2);
    let mut out = Vec::new();
    let mut day = start;
    let ps = principals();
    while day < today {
        let dn = (day - NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid")).num_days() as u64;
        for (pi, p) in ps.iter().enumerate() {
            for (si, arn) in p.arns.iter().enumerate() {
                for &mi in &p.models {
                    let m = MODELS[mi];
                    for (ki, kind) in KINDS.iter().enumerate() {
                        let price = m.prices[ki];
                        if price == 0.0 {
                            continue;
                        }
                        let mut j = jitter(&[dn, pi as u64, si as u64, mi as u64, ki as u64]);
                        // A runaway agent loop: the support bot spends 12x two days ago.
                        if pi == RUNAWAY_PRINCIPAL
                            && day == today - Duration::days(RUNAWAY_DAYS_AGO)
                        {
                            j *= 12.0;
                        }
                        let k_tokens = round10(
                            p.volume * KIND_RATIO[ki] * j
                                / p.arns.len() as f64
                                / p.models.len() as f64,
                        );
                        let cost = round10(k_tokens * price);
                        out.push(LineItem {
                            usage_start: day,
                            principal: arn.clone(),
                            tags: p
                                .tags
                                .iter()
                                .map(|(k, v)| (format!("iamPrincipal/{k}"), v.to_string()))
                                .collect(),
                            usage_type: format!("USE1-{}-{}", m.usage_name, kind),
                            region: "us-east-1".into(),
                            service_name: m.service_name.into(),
                            product_code: m.product_code.into(),
                            model: m.display.into(),
                            provider: m.provider.into(),
                            usage_amount: k_tokens,
                            pricing_unit: "1K tokens".into(),
                            unblended: cost,
                            // Some exports leave net cost NULL; mimic it on the API-key user.
                            net_unblended: if pi == 2 {
                                None
                            } else {
                                Some(round10(cost * 0.97))
                            },
                            line_item_type: "Usage".into(),
                        });
                    }
                }
            }
        }
        // The invoice agent's AgentCore runtime: compute billed under "Amazon Bedrock
        // AgentCore" with no IAM principal on the line (the no_principal bucket, never "tag
        // these principals").
        let vcpu_hours = round10(40.0 * jitter(&[dn, 97]));
        out.push(LineItem {
            usage_start: day,
            principal: String::new(),
            tags: vec![],
            usage_type: "USE1-AgentCore-Runtime-vCPU-Hours".into(),
            region: "us-east-1".into(),
            service_name: "Amazon Bedrock AgentCore".into(),
            product_code: "AmazonBedrockAgentCore".into(),
            model: String::new(),
            provider: "Amazon".into(),
            usage_amount: vcpu_hours,
            pricing_unit: "vCPU-Hours".into(),
            unblended: round10(vcpu_hours * 0.0895),
            net_unblended: Some(round10(vcpu_hours * 0.0895 * 0.97)),
            line_item_type: "Usage".into(),
        });
        // A promotional credit on the first of each month, not tied to a principal.
        if day == first_of_month(day) {
            out.push(LineItem {
                usage_start: day,
                principal: String::new(),
                tags: vec![],
                usage_type: "USE1-Claude4.6Sonnet-input-tokens".into(),
                region: "us-east-1".into(),
                service_name: MODELS[0].service_name.into(),
                product_code: MODELS[0].product_code.into(),
                model: MODELS[0].display.into(),
                provider: MODELS[0].provider.into(),
                usage_amount: 0.0,
                pricing_unit: "1K tokens".into(),
                unblended: -25.0,
                net_unblended: Some(-25.0),
                line_item_type: "Credit".into(),
            });
        }
        day += Duration::days(1);
    }
    out
}

/// The demo organisation's budget policy, sized from its own spend this month so that a check
/// of a $5 call answers deny for finance-apps, warn for web and allow for ml-platform on any
/// day of the month (the limits follow the calendar clock's month-to-date spend).
pub fn policy(today: NaiveDate) -> crate::sources::budgets::PolicyFile {
    use crate::sources::budgets::{PolicyBudget, PolicyFile};
    let start = first_of_month(today);
    let end = add_months(start, 1);
    // This month's usage per team, in one pass over the demo's lines.
    let mut by_team: std::collections::HashMap<String, f64> = Default::default();
    for l in line_items(today) {
        if l.line_item_type != "Usage" || l.usage_start < start || l.usage_start >= end {
            continue;
        }
        if let Some((_, team)) = l.tags.iter().find(|(k, _)| k == "iamPrincipal/team") {
            *by_team.entry(team.clone()).or_default() += l.unblended;
        }
    }
    let spent = |team: &str| by_team.get(team).copied().unwrap_or(0.0);
    let budget = |team: &str, usd: f64| PolicyBudget {
        name: Some(format!("demo-{team}")),
        tag: Some(format!("team={team}")),
        role: None,
        principal: None,
        bedrock: false,
        // Whole cents, rounded up.
        monthly_usd: (usd * 100.0).ceil() / 100.0,
        warn_percent: None,
        deny_percent: None,
    };
    PolicyFile {
        warn_percent: 80.0,
        deny_percent: 100.0,
        default: None,
        budgets: vec![
            // $1 above its spend: a $5 call goes past 100%.
            budget("finance-apps", spent("finance-apps") + 1.0),
            // A $5 call lands at 90% of it.
            budget("web", (spent("web") + 5.0) / 0.9),
            // Far above a month of its spend.
            budget("ml-platform", spent("ml-platform") * 40.0 + 1_000.0),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_covers_last_month() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let a = line_items(today);
        assert_eq!(a, line_items(today));
        assert!(
            a.iter()
                .any(|l| l.usage_start == NaiveDate::from_ymd_opt(2026, 10, 31).unwrap())
        );
        assert!(a.iter().all(|l| l.usage_start < today
            && l.usage_start >= NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()));
        assert!(
            a.iter()
                .any(|l| l.tags.is_empty() && l.line_item_type == "Usage")
        );
        assert!(a.iter().any(|l| l.net_unblended.is_none()));
    }
}
