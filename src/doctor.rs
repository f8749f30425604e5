//! `bedrock-cost-mcp doctor`: checks the setup and says what to fix.
//!
//! Credentials and identity, region and partition, endpoint overrides, then per tool whether
//! the permissions it needs are granted, each with one free, read-only call (IAM, Budgets,
//! Price List, Agent Registry, Athena) or a local read (CUR export, budget policy). Cost
//! Explorer charges $0.01 a request, so it is called only with `--paid-checks` (one
//! `ListCostAllocationTags`, which also says which `iamPrincipal/*` keys are active).
//!
//! Each tool is judged by the source it will use under the configuration (`Plan`): with a
//! local `--cur` export and no credentials, bedrock_spend (local CUR) and estimate_cost (the
//! bundled price snapshot) answer offline, so the missing credentials fail nothing; the
//! checks and tools that need AWS are skipped with the reason. With no credentials and no
//! local data, the report suggests `--demo`.
//!
//! Exit codes: 0 when every check that ran passed, 1 when one failed, 2 for bad usage.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_credential_types::provider::ProvideCredentials;
use serde::Serialize;

use crate::config::Config;
use crate::error::{ToolError, from_sdk};
use crate::sources::clients;
use crate::sources::cur::{CurEngine, CurLocation};

/// Flags of `doctor`.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Print the checks as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also check Cost Explorer: one ListCostAllocationTags request, billed $0.01 by AWS.
    #[arg(long)]
    pub paid_checks: bool,
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Fail,
    Skipped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
        }
    }
}

/// One check: what was looked at, how it went, and for a failure what to change.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable name: credentials, identity, region, endpoints, iam, budgets, budget_policy,
    /// pricing, agent_registry, athena, cur, cost_explorer, principal_tags, accounts,
    /// invocation_logs, setup.
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// For failures: the IAM action to grant, or the flag or variable to set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The tools that need this check to pass, under this configuration.
    pub tools: Vec<&'static str>,
    /// Skipped because the feature is not configured (not counted as "not checked").
    #[serde(skip)]
    not_configured: bool,
}

impl Check {
    /// The tools it concerns are filled in by `Report::new`, from the `Plan`.
    fn new(name: &'static str) -> Check {
        Check {
            name,
            status: Status::Skipped,
            detail: String::new(),
            fix: None,
            tools: Vec::new(),
            not_configured: false,
        }
    }

    /// Skipped because the feature it checks is not configured.
    fn not_configured(mut self, detail: impl Into<String>) -> Check {
        self.not_configured = true;
        self.skipped(detail)
    }

    fn ok(mut self, detail: impl Into<String>) -> Check {
        self.status = Status::Ok;
        self.detail = one_line(detail.into());
        self
    }

    fn fail(mut self, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        self.status = Status::Fail;
        self.detail = one_line(detail.into());
        self.fix = Some(one_line(fix.into()));
        self
    }

    fn skipped(mut self, detail: impl Into<String>) -> Check {
        self.status = Status::Skipped;
        self.detail = one_line(detail.into());
        self
    }

    /// Append a remark to a failure's fix.
    fn note_fix(mut self, note: &str) -> Check {
        if let Some(f) = &mut self.fix {
            f.push_str(note);
        }
        self
    }
}

/// Multi-line error texts (the credential chain lists every provider it tried) on one line.
fn one_line(s: String) -> String {
    if !s.contains('\n') {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    for l in s.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(l);
    }
    out
}

/// Everything `doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when no check failed.
    pub ok: bool,
    /// `aws` or `demo`.
    pub mode: &'static str,
    pub version: &'static str,
    /// Paid Cost Explorer requests made ($0.01 each).
    pub paid_requests: u32,
    pub checks: Vec<Check>,
    /// Per tool: the source it answers from under this configuration, and the checks it
    /// needs, grouped by outcome.
    pub tools: Vec<ToolStatus>,
    /// What to do next when the setup answers offline, or cannot answer at all (`--demo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Whether one tool's needs are met, from the checks that list it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolStatus {
    pub tool: &'static str,
    /// `fail` when a check it needs failed; `skipped` when it cannot answer in this
    /// configuration (it calls AWS, and there are no credentials, which nothing else needs);
    /// else `ok`.
    pub status: Status,
    /// Where its answers come from under this configuration.
    pub source: String,
    /// Checks it needs that failed.
    pub failed: Vec<&'static str>,
    /// Checks it needs that did not run (paid, or blocked by an earlier failure); checks of
    /// features that are not configured are left out.
    pub not_checked: Vec<&'static str>,
}

impl Report {
    fn new(
        mode: &'static str,
        mut checks: Vec<Check>,
        paid_requests: u32,
        plans: &[ToolPlan],
        hint: Option<String>,
    ) -> Report {
        for c in &mut checks {
            c.tools = plans
                .iter()
                .filter(|p| p.needs.contains(&c.name))
                .map(|p| p.tool)
                .collect();
        }
        let tools = plans
            .iter()
            .map(|p| {
                let with = |st: Status| {
                    checks
                        .iter()
                        .filter(|c| {
                            c.status == st && !c.not_configured && c.tools.contains(&p.tool)
                        })
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                };
                let failed = with(Status::Fail);
                let status = if !failed.is_empty() {
                    Status::Fail
                } else if p.unavailable {
                    Status::Skipped
                } else {
                    Status::Ok
                };
                ToolStatus {
                    tool: p.tool,
                    status,
                    source: p.source.clone(),
                    failed,
                    not_checked: with(Status::Skipped),
                }
            })
            .collect();
        Report {
            ok: checks.iter().all(|c| c.status != Status::Fail),
            mode,
            version: env!("CARGO_PKG_VERSION"),
            paid_requests,
            checks,
            tools,
            hint,
        }
    }

    /// 0 when every check that ran passed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.ok { 0 } else { 1 }
    }
}

/// Where `bedrock_spend` answers from when a call names no source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpendFrom {
    LocalCur,
    S3Cur,
    Athena,
    CostExplorer,
}

impl SpendFrom {
    /// The name the source gives itself (`SpendSource::name`).
    #[cfg(test)]
    fn name(self) -> &'static str {
        match self {
            SpendFrom::LocalCur | SpendFrom::S3Cur => "cur",
            SpendFrom::Athena => "athena",
            SpendFrom::CostExplorer => "cost_explorer",
        }
    }
}

/// The sources the tools use under a configuration, outside demo mode.
///
/// This restates two decisions made elsewhere: `Ctx::build` (which sources exist: a CUR source
/// when `--cur` is set, Athena when `--athena-database` and `--athena-table` are, every other
/// source on AWS, prices from the Price List API falling back to the bundled snapshot) and
/// `Ctx::spend_source` (bedrock_spend's default: CUR, else Athena, else Cost Explorer). The
/// unit test `the_plan_follows_the_servers_choice_of_spend_source` holds them together.
#[derive(Debug, Clone)]
struct Plan {
    spend: SpendFrom,
    /// `--cur` is set: `Some(true)` for a local folder, `Some(false)` for S3.
    cur: Option<bool>,
    athena: bool,
    budget_policy: bool,
    /// AWS credentials were found.
    credentials: bool,
    /// `--allow-writes`: the write tools are offered, so doctor reports on them too.
    writes: bool,
    /// `--invocation-logs` or `--invocation-log-group`: the live layer.
    live: bool,
}

/// One tool under a `Plan`: its source, the checks it needs, and whether it can answer.
#[derive(Debug, Clone)]
struct ToolPlan {
    tool: &'static str,
    source: String,
    needs: Vec<&'static str>,
    /// It calls AWS for every answer, and there are no credentials (which nothing configured
    /// needs: the offline setup).
    unavailable: bool,
}

/// The checks every AWS call needs.
const AWS_BASE: [&str; 3] = ["credentials", "region", "endpoints"];

impl Plan {
    fn new(config: &Config, credentials: bool) -> Plan {
        let cur = config
            .cur
            .as_deref()
            .and_then(|raw| CurLocation::parse(raw).ok())
            .map(|l| matches!(l, CurLocation::Local(_)));
        let athena = config.athena_database.is_some() && config.athena_table.is_some();
        let spend = match (cur, athena) {
            (Some(true), _) => SpendFrom::LocalCur,
            (Some(false), _) => SpendFrom::S3Cur,
            (None, true) => SpendFrom::Athena,
            (None, false) => SpendFrom::CostExplorer,
        };
        Plan {
            spend,
            cur,
            athena,
            budget_policy: config.budget_policy.is_some(),
            credentials,
            writes: config.allow_writes,
            live: config.invocation_logs.is_some() || config.invocation_log_group.is_some(),
        }
    }

    /// A local CUR export: bedrock_spend answers without AWS.
    fn local_data(&self) -> bool {
        self.cur == Some(true)
    }

    /// Nothing configured calls AWS: a local CUR export and no Athena.
    fn offline_capable(&self) -> bool {
        self.local_data() && !self.athena
    }

    /// No credentials, and none needed: the tools that call AWS are unavailable, not failed.
    fn offline(&self) -> bool {
        !self.credentials && self.offline_capable()
    }

    /// The CUR source, as said in a tool's source.
    fn cur_name(&self) -> &'static str {
        if self.local_data() {
            "the local CUR export (--cur)"
        } else {
            "the CUR export on S3 (--cur)"
        }
    }

    /// Every tool the server offers under this configuration, in the registry's order
    /// ([`crate::tools::TOOLS`]).
    fn tools(&self) -> Vec<ToolPlan> {
        crate::tools::TOOLS
            .iter()
            .filter(|u| self.writes || !u.writes())
            .map(|u| self.tool(u))
            .collect()
    }

    fn tool(&self, unit: &crate::tools::ToolUnit) -> ToolPlan {
        use crate::tools::Uses;
        let tool = unit.name;
        let snapshot = format!(
            "the bundled price snapshot of {}",
            crate::domain::pricing::SNAPSHOT_DATE
        );
        // (source, checks needed without AWS, checks needed for its AWS calls, every answer
        // calls AWS)
        let (source, local, aws, always_aws): (String, Vec<&str>, Vec<&str>, bool) = match unit.uses
        {
            Uses::Spend => {
                let mut source = match self.spend {
                    SpendFrom::LocalCur | SpendFrom::S3Cur => self.cur_name().to_string(),
                    SpendFrom::Athena => "Athena (--athena-database, --athena-table)".into(),
                    SpendFrom::CostExplorer => "Cost Explorer ($0.01 a request)".into(),
                };
                let mut aws = vec!["principal_tags"];
                if self.live {
                    aws.push("invocation_logs");
                    source.push_str("; model invocation logs for the days not billed yet");
                }
                match self.spend {
                    SpendFrom::LocalCur | SpendFrom::S3Cur => aws.push("cur"),
                    SpendFrom::Athena => {}
                    SpendFrom::CostExplorer => aws.push("cost_explorer"),
                }
                if self.athena {
                    aws.push("athena");
                    if self.spend != SpendFrom::Athena {
                        source.push_str("; Athena when a call asks for it");
                    }
                }
                let local = if self.local_data() {
                    vec!["cur"]
                } else {
                    vec![]
                };
                (source, local, aws, !self.local_data())
            }
            Uses::Principals => {
                let spend = if self.cur.is_some() {
                    self.cur_name()
                } else {
                    "Cost Explorer"
                };
                let spend_check = if self.cur.is_some() {
                    "cur"
                } else {
                    "cost_explorer"
                };
                (
                    format!("IAM users and roles, spend from {spend}"),
                    vec![],
                    vec!["iam", spend_check, "principal_tags"],
                    true,
                )
            }
            Uses::AllocationTags => (
                "Cost Explorer cost-allocation tags".into(),
                vec![],
                vec!["cost_explorer", "principal_tags"],
                true,
            ),
            Uses::Registry => (
                "AWS Agent Registry".into(),
                vec![],
                vec!["agent_registry"],
                true,
            ),
            Uses::Prices => {
                if self.credentials {
                    (
                        format!("the Price List API ({snapshot} if it fails)"),
                        vec![],
                        vec!["pricing"],
                        false,
                    )
                } else {
                    (
                        format!("{snapshot} (no AWS credentials; works offline)"),
                        vec!["pricing"],
                        vec![],
                        false,
                    )
                }
            }
            Uses::Budget => {
                let spend = if self.cur.is_some() {
                    self.cur_name()
                } else {
                    "Cost Explorer"
                };
                let mut limits = Vec::new();
                if self.budget_policy {
                    limits.push("--budget-policy");
                }
                let source = if self.credentials {
                    limits.push("AWS Budgets");
                    format!("spend from {spend}; limits from {}", limits.join(" and "))
                } else {
                    format!(
                        "spend from {spend}; limits from {}; AWS Budgets, IAM tags and the caller's identity (the default who) need AWS credentials",
                        if limits.is_empty() {
                            "nowhere yet (--budget-policy adds local ones)".to_string()
                        } else {
                            limits.join(" and ")
                        }
                    )
                };
                let mut local = vec!["budget_policy", "pricing"];
                let mut aws = vec!["identity", "budgets", "principal_tags"];
                if self.live {
                    aws.push("invocation_logs");
                }
                if self.cur.is_some() {
                    if self.local_data() {
                        local.push("cur");
                    } else {
                        aws.push("cur");
                    }
                } else {
                    aws.push("cost_explorer");
                }
                (source, local, aws, !self.local_data())
            }
            Uses::Anomalies => {
                if self.cur.is_some() {
                    let (local, aws) = if self.local_data() {
                        (vec!["cur"], vec!["cost_explorer"])
                    } else {
                        (vec![], vec!["cur", "cost_explorer"])
                    };
                    (
                        format!(
                            "per-principal baselines from {}{}",
                            self.cur_name(),
                            if self.credentials {
                                "; Cost Explorer anomaly detection"
                            } else {
                                "; Cost Explorer anomaly detection needs AWS credentials"
                            }
                        ),
                        local,
                        aws,
                        !self.local_data(),
                    )
                } else {
                    (
                        "Cost Explorer anomaly detection (per-principal baselines need --cur)"
                            .into(),
                        vec![],
                        vec!["cost_explorer"],
                        true,
                    )
                }
            }
            Uses::ActivateTags => (
                "Cost Explorer cost-allocation tags (activates them: a write, not checked)".into(),
                vec![],
                vec!["cost_explorer"],
                true,
            ),
            Uses::TagPrincipals => (
                "IAM users and roles (tags them: a write, not checked)".into(),
                vec![],
                vec!["iam"],
                true,
            ),
            Uses::Setup => (
                "the account's setup (Data Exports, S3, Cost Explorer tags, Athena, Bedrock logging; plans, and makes changes once confirmed: not checked)".into(),
                vec![],
                vec![],
                true,
            ),
        };
        // The AWS parts count when they will be called: with credentials, or when the tool
        // cannot answer without them (then the credentials check says why it fails).
        let uses_aws = self.credentials || (always_aws && !self.offline());
        let mut needs = local;
        if uses_aws {
            needs.extend(AWS_BASE);
            needs.extend(aws);
        }
        let unavailable = always_aws && self.offline();
        let source = if unavailable {
            format!("{source}: needs AWS credentials (none found)")
        } else {
            source
        };
        let mut seen = Vec::new();
        needs.retain(|n| {
            let fresh = !seen.contains(n);
            seen.push(*n);
            fresh
        });
        ToolPlan {
            tool,
            source,
            needs,
            unavailable,
        }
    }

    /// What to do next: try `--demo` when nothing can answer, say what works when offline.
    fn hint(&self, plans: &[ToolPlan]) -> Option<String> {
        if self.credentials {
            return None;
        }
        if !self.local_data() {
            return Some(
                "no AWS credentials and no local CUR export: nothing to answer from yet. To see the tools work without an AWS account, try the bundled demo data: `bedrock-cost-mcp --demo doctor`, `bedrock-cost-mcp --demo spend --period last_month --by team,model`".into(),
            );
        }
        if self.offline() {
            let unavailable: Vec<&str> = plans
                .iter()
                .filter(|p| p.unavailable)
                .map(|p| p.tool)
                .collect();
            return Some(format!(
                "offline setup: bedrock_spend reads the local CUR export and estimate_cost the bundled price snapshot; {} need AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
                unavailable.join(", ")
            ));
        }
        None
    }
}

/// Longest wait for one check's AWS call (retries included).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

const CREDENTIALS_FIX: &str = "configure the standard AWS chain: AWS_PROFILE=<profile> (after `aws sso login --profile <profile>` for SSO), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys); or run with --demo to use bundled sample data";

/// Run `doctor`: print the report (table or JSON) and return the exit code.
pub async fn main(config: Config, args: &DoctorArgs) -> u8 {
    if let Err(e) = check_usage(&config) {
        eprintln!("error: {e}");
        return 2;
    }
    let report = run(&config, args).await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", render_text(&report));
    }
    report.exit_code()
}

/// Flag values that are wrong whatever the account (exit 2), as opposed to setup problems.
fn check_usage(config: &Config) -> Result<(), String> {
    if let Some(raw) = &config.cur {
        CurLocation::parse(raw).map_err(|e| format!("--cur {e}"))?;
    }
    if config.athena_database.is_some() {
        use crate::sources::athena::valid_identifier;
        if !valid_identifier(&config.athena_workgroup) {
            return Err(format!(
                "--athena-workgroup '{}' is not a valid Athena name (letters, digits, _ and -)",
                config.athena_workgroup
            ));
        }
        if let Some(o) = &config.athena_output
            && !o.starts_with("s3://")
        {
            return Err(format!("--athena-output '{o}' must be an s3:// location"));
        }
    }
    Ok(())
}

/// Run every check.
pub async fn run(config: &Config, args: &DoctorArgs) -> Report {
    if config.demo {
        return Report::new(
            "demo",
            vec![Check::new("demo").ok(
                "--demo answers from bundled demo data (a fictional organisation): no AWS account, credentials or permissions are needed, nothing to check. Drop --demo to check your AWS setup",
            )],
            0,
            &[],
            None,
        );
    }
    let sdk = crate::sources::http_client::load_sdk_config().await;
    let env = Env::capture();

    let mut region = region_check(&sdk, &env);
    let endpoints = endpoints_check(&sdk, &env);
    let mut credentials = credentials_check(&sdk, &env).await;
    let has_region = configured_region(&sdk).is_some();
    let has_credentials = credentials.status == Status::Ok;
    let endpoints_ok = endpoints.status != Status::Fail;
    // Each check follows the sources the tools will use: with a local CUR export and no
    // credentials, nothing configured needs AWS, and the checks of AWS are skipped, not failed.
    let plan = Plan::new(config, has_credentials);
    let offline = plan.offline();
    if offline {
        let mut detail = "none found, and none needed: bedrock_spend reads the local CUR export and estimate_cost the bundled price snapshot; the tools that call AWS are skipped (see the TOOL table)".to_string();
        // A profile named but unusable is worth saying, though nothing needs it.
        if let Some(p) = env.get("AWS_PROFILE") {
            detail.push_str(&format!("; AWS_PROFILE={p}: {}", credentials.detail));
        }
        credentials = Check::new("credentials").not_configured(detail);
        if !has_region {
            region = Check::new("region").not_configured(
                "none configured, and none needed offline (estimate_cost prices us-east-1 unless a call names a region)",
            );
        }
    }
    // Why an AWS call cannot be made, if it cannot.
    let blocked = |needs_region: bool| {
        if !has_credentials && offline {
            Some(
                "needs AWS credentials; none are configured, and this configuration does not need them (local CUR export)",
            )
        } else if !has_credentials {
            Some("needs AWS credentials (see the credentials check)")
        } else if !endpoints_ok {
            Some("an AWS_ENDPOINT_URL* override is not a URL (see the endpoints check)")
        } else if needs_region && !has_region {
            Some("needs a region (see the region check)")
        } else {
            None
        }
    };

    let (identity, caller) = match blocked(true) {
        Some(why) => (Check::new("identity").skipped(why), None),
        None => identity_check(&sdk).await,
    };
    if let (Some(arn), Some(r)) = (&caller, configured_region(&sdk))
        && let Some((detail, fix)) = partition_mismatch(r, arn)
    {
        region = region.fail(detail, fix);
    }
    let account = caller
        .as_deref()
        .and_then(|a| a.split(':').nth(4))
        .map(str::to_string);

    let gate = |name: &'static str, needs_region: bool| {
        blocked(needs_region).map(|why| Check::new(name).skipped(why))
    };
    let who = caller.as_deref();

    let iam = async {
        match gate("iam", false) {
            Some(c) => c,
            None => iam_check(&sdk, config, who).await,
        }
    };
    let budgets = async {
        match gate("budgets", false) {
            Some(c) => c,
            None => budgets_check(&sdk, account.as_deref(), who).await,
        }
    };
    let pricing = async {
        if !has_credentials {
            return snapshot_check();
        }
        match gate("pricing", false) {
            Some(c) => c,
            None => pricing_check(&sdk, who).await,
        }
    };
    let registry = async {
        match gate("agent_registry", true) {
            Some(c) => c,
            None => registry_check(&sdk, who).await,
        }
    };
    let athena = async {
        if config.athena_database.is_none() {
            return Check::new("athena").not_configured(
                "not configured (--athena-database and --athena-table enable the Athena source)",
            );
        }
        match gate("athena", true) {
            Some(c) => c,
            None => athena_check(&sdk, config, who).await,
        }
    };
    let cur = cur_check(&sdk, config, blocked(false));
    let cost_explorer = async {
        if let (Some(why), true) = (blocked(false), offline) {
            return (Check::new("cost_explorer").skipped(why), None);
        }
        if !args.paid_checks {
            return (
                Check::new("cost_explorer").skipped(
                    "not checked: every Cost Explorer request costs $0.01; pass --paid-checks to make one ListCostAllocationTags call",
                ),
                None,
            );
        }
        match gate("cost_explorer", false) {
            Some(c) => (c, None),
            None => cost_explorer_check(&sdk, who).await,
        }
    };
    let accounts = accounts_check(config);
    let invocation_logs = async {
        match gate("invocation_logs", true) {
            Some(c) => c,
            None => invocation_logs_check(&sdk, config, who).await,
        }
    };
    let (
        iam,
        budgets,
        pricing,
        registry,
        athena,
        cur,
        (cost_explorer, tags),
        accounts,
        invocation_logs,
    ) = tokio::join!(
        iam,
        budgets,
        pricing,
        registry,
        athena,
        cur,
        cost_explorer,
        accounts,
        invocation_logs
    );
    let paid_requests = u32::from(args.paid_checks && cost_explorer.status != Status::Skipped);
    let mut principal_tags = principal_tags_check(config, &cost_explorer, tags.as_ref());
    if offline && principal_tags.status == Status::Skipped {
        principal_tags = principal_tags.skipped(format!(
            "comes from Cost Explorer (ListCostAllocationTags), which {}",
            blocked(false).unwrap_or_default()
        ));
    }

    let (setup, expected) = setup_check(account.as_deref());
    // A check whose data setup turned on recently is not "missing": it is on its way.
    let waiting = |c: Check, step: &str| match expected.get(step) {
        Some(by) if c.status == Status::Fail && *by > crate::domain::clock::now() => {
            let detail = format!(
                "set up by `setup` ({step}); data expected by {} ({})",
                by.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                c.detail
            );
            c.skipped(detail)
        }
        _ => c,
    };
    let cur = waiting(cur, "export");
    let athena = waiting(athena, "athena");
    let principal_tags = waiting(principal_tags, "tags");
    let checks = vec![
        credentials,
        identity,
        region,
        endpoints,
        iam,
        budgets,
        budget_policy_check(config),
        pricing,
        registry,
        athena,
        cur,
        cost_explorer,
        principal_tags,
        accounts,
        invocation_logs,
        setup,
    ];
    let plans = plan.tools();
    let hint = plan.hint(&plans);
    Report::new("aws", checks, paid_requests, &plans, hint)
}

/// What `setup` applied here (its state file): per step, when its data is expected. Local: no
/// AWS call. Steps applied for another account than the caller's are not counted.
fn setup_check(account: Option<&str>) -> (Check, BTreeMap<String, chrono::DateTime<chrono::Utc>>) {
    let c = Check::new("setup");
    let mut expected = BTreeMap::new();
    let (path, state) = match crate::usecases::setup::read_default_state() {
        Ok(Some(found)) => found,
        Ok(None) => {
            return (
                c.not_configured(
                    "setup has not been run here: `bedrock-cost-mcp setup --bucket NAME` plans what the answers need (the CUR export, tags, Athena table, invocation logging)",
                ),
                expected,
            );
        }
        Err(e) => return (c.fail(e, "remove or repair the setup state file"), expected),
    };
    if account.is_some_and(|a| a != state.account) {
        return (
            c.skipped(format!(
                "{} records account {}, not this caller's",
                path.display(),
                state.account
            )),
            expected,
        );
    }
    let now = crate::domain::clock::now();
    let mut parts = vec![];
    for (step, at) in &state.applied_at {
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(at) else {
            continue;
        };
        let at = at.with_timezone(&chrono::Utc);
        match crate::usecases::setup::data_delay(step) {
            Some(d) => {
                let by = at + d;
                expected.insert(step.clone(), by);
                parts.push(format!(
                    "{step} applied {}: data {} {}",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    if by > now { "expected by" } else { "due since" },
                    by.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ));
            }
            None => parts.push(format!(
                "{step} applied {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
        }
    }
    if parts.is_empty() {
        return (
            c.ok(format!("{}: no step applied", path.display())),
            expected,
        );
    }
    (c.ok(parts.join("; ")), expected)
}

/// The environment variables doctor reports on.
struct Env {
    vars: Vec<(String, String)>,
    endpoint_url: Option<String>,
}

impl Env {
    fn capture() -> Env {
        // Secrets are never read here, so they cannot end up in a detail.
        let mut vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_") && !k.contains("SECRET") && !k.contains("TOKEN"))
            .collect();
        vars.sort();
        let endpoint_url = vars
            .iter()
            .find(|(k, _)| k == "AWS_ENDPOINT_URL")
            .map(|(_, v)| v.clone());
        Env { vars, endpoint_url }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Credentials of one partition cannot call another partition's endpoints: (detail, fix).
fn partition_mismatch(region: &str, arn: &str) -> Option<(String, String)> {
    let arn_partition = arn.split(':').nth(1).unwrap_or("aws");
    let region_partition = clients::partition(region);
    (arn_partition != region_partition).then(|| {
        (
            format!(
                "{region} is in partition {region_partition}, but the credentials belong to partition {arn_partition} ({arn})"
            ),
            format!(
                "set AWS_REGION to a region of {arn_partition} (e.g. {}), or use credentials of {region_partition}",
                clients::global_region(arn_partition)
            ),
        )
    })
}

/// The configured region, if any (an empty `AWS_REGION` configures none).
fn configured_region(sdk: &SdkConfig) -> Option<&str> {
    sdk.region()
        .map(std::convert::AsRef::as_ref)
        .filter(|r| !r.trim().is_empty())
}

fn region_check(sdk: &SdkConfig, env: &Env) -> Check {
    let c = Check::new("region");
    let Some(region) = configured_region(sdk) else {
        return c.fail(
            "no region configured",
            "set AWS_REGION (e.g. us-east-1; cn-north-1 or cn-northwest-1 in China, us-gov-west-1 in GovCloud), or `region` in the profile",
        );
    };
    let from = if env.get("AWS_REGION").is_some() {
        "AWS_REGION"
    } else if env.get("AWS_DEFAULT_REGION").is_some() {
        "AWS_DEFAULT_REGION"
    } else {
        "the profile or instance metadata"
    };
    let partition = clients::partition(region);
    c.ok(format!(
        "{region}, partition {partition} (from {from}); Budgets and Price List via {}",
        clients::global_region(partition)
    ))
}

fn endpoints_check(sdk: &SdkConfig, env: &Env) -> Check {
    let c = Check::new("endpoints");
    let ignored = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let overrides: Vec<&(String, String)> = env
        .vars
        .iter()
        .filter(|(k, _)| k.starts_with("AWS_ENDPOINT_URL"))
        .collect();
    let mut shown = Vec::new();
    let mut bad = Vec::new();
    for (k, v) in &overrides {
        match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                shown.push(format!("{k}={}", redact(&u)));
            }
            _ => bad.push(format!("{k}={v:?}")),
        }
    }
    if let (None, Some(u)) = (&env.endpoint_url, sdk.endpoint_url()) {
        shown.push(format!("endpoint_url={u} (profile)"));
    }
    for flag in ["AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"] {
        if let Some(v) = env.get(flag) {
            shown.push(format!("{flag}={v}"));
        }
    }
    if !bad.is_empty() {
        return c.fail(
            format!("not a URL: {}", bad.join(", ")),
            "write each AWS_ENDPOINT_URL* as http(s)://host[:port], or unset it",
        );
    }
    if ignored && !overrides.is_empty() {
        return c.ok(format!(
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true: ignoring {}; AWS default endpoints",
            shown.join(", ")
        ));
    }
    if shown.is_empty() {
        c.ok("no overrides: AWS default endpoints")
    } else {
        c.ok(shown.join(", "))
    }
}

/// A URL without user info (an endpoint URL should not carry any, but never print a secret).
fn redact(u: &url::Url) -> String {
    let mut u = u.clone();
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("");
        let _ = u.set_password(None);
    }
    u.to_string().trim_end_matches('/').to_string()
}

async fn credentials_check(sdk: &SdkConfig, env: &Env) -> Check {
    let c = Check::new("credentials");
    let Some(provider) = sdk.credentials_provider() else {
        return c.fail("no credential provider configured", CREDENTIALS_FIX);
    };
    let creds = match tokio::time::timeout(CALL_TIMEOUT, provider.provide_credentials()).await {
        Err(_) => {
            return c.fail(
                format!(
                    "no credentials after {} s (the chain may be waiting on instance metadata)",
                    CALL_TIMEOUT.as_secs()
                ),
                CREDENTIALS_FIX,
            );
        }
        Ok(Err(e)) => {
            let fix = match env.get("AWS_PROFILE") {
                Some(p) => format!(
                    "AWS_PROFILE={p}: check that the profile exists in {} or {} (and run `aws sso login --profile {p}` if it uses SSO); or unset AWS_PROFILE and {}",
                    env.get("AWS_CONFIG_FILE").unwrap_or("~/.aws/config"),
                    env.get("AWS_SHARED_CREDENTIALS_FILE")
                        .unwrap_or("~/.aws/credentials"),
                    CREDENTIALS_FIX
                ),
                None => CREDENTIALS_FIX.to_string(),
            };
            return c.fail(
                format!("no credentials: {}", crate::error::chain_text(&e)),
                fix,
            );
        }
        Ok(Ok(creds)) => creds,
    };
    let profile = env.get("AWS_PROFILE").unwrap_or("default");
    let source = credential_source(
        creds
            .get_property::<Vec<AwsCredentialFeature>>()
            .map(Vec::as_slice)
            .unwrap_or_default(),
        profile,
    );
    let kind = match (creds.session_token(), creds.expiry()) {
        (None, _) => "long-term access key".to_string(),
        (Some(_), Some(at)) => {
            let at: chrono::DateTime<chrono::Utc> = at.into();
            format!("temporary, expire {}", at.format("%Y-%m-%d %H:%M UTC"))
        }
        (Some(_), None) => "temporary (session token)".to_string(),
    };
    let mut detail = format!("from {source}; {kind}");
    if let Some(p) = env.get("AWS_PROFILE")
        && !source.contains("profile")
    {
        detail.push_str(&format!(
            "; AWS_PROFILE={p} is set but other credentials came first"
        ));
    }
    c.ok(detail)
}

/// Name where credentials came from, from the features the SDK's providers record.
fn credential_source(features: &[AwsCredentialFeature], profile: &str) -> String {
    use AwsCredentialFeature as F;
    let has = |f: &F| features.contains(f);
    if has(&F::CredentialsEnvVars) {
        "environment variables (AWS_ACCESS_KEY_ID)".into()
    } else if has(&F::CredentialsEnvVarsStsWebIdToken) {
        "web identity token (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)".into()
    } else if has(&F::CredentialsProfileSso) || has(&F::CredentialsSso) {
        format!("SSO through profile '{profile}'")
    } else if has(&F::CredentialsProfileSourceProfile)
        || has(&F::CredentialsProfileNamedProvider)
        || (has(&F::CredentialsProfile) && has(&F::CredentialsStsAssumeRole))
    {
        format!("an assumed role through profile '{profile}'")
    } else if has(&F::CredentialsProfileProcess) || has(&F::CredentialsProcess) {
        format!("credential_process of profile '{profile}'")
    } else if has(&F::CredentialsProfileLogin) || has(&F::CredentialsLogin) {
        format!("`aws login` through profile '{profile}'")
    } else if has(&F::CredentialsProfileStsWebIdToken) {
        format!("a web identity token through profile '{profile}'")
    } else if has(&F::CredentialsProfile) {
        format!("profile '{profile}' (shared config/credentials files)")
    } else if has(&F::CredentialsHttp) {
        "the container credentials endpoint (ECS task role or EKS Pod Identity)".into()
    } else if has(&F::CredentialsImds) {
        "instance metadata (EC2 instance role)".into()
    } else {
        "the default credential chain".into()
    }
}

/// STS GetCallerIdentity: the check and the caller's ARN.
/// Each account a tool call may pick (`--allow-profiles`, `--allow-regions`, exact
/// `--allow-role-arns`): can it be reached? One free `sts:GetCallerIdentity` each, concurrently.
/// Role patterns cannot be checked without an ARN and are listed as such.
async fn accounts_check(config: &Config) -> Check {
    use crate::accounts::Account;
    // Only calls that pick one of these accounts depend on it: no tool as a whole does.
    let c = Check::new("accounts");
    let mut picks: Vec<(String, Account)> = Vec::new();
    for p in &config.allow_profiles {
        picks.push((
            format!("profile {p}"),
            Account {
                profile: Some(p.clone()),
                ..Default::default()
            },
        ));
    }
    for r in &config.allow_regions {
        picks.push((
            format!("region {r}"),
            Account {
                region: Some(r.clone()),
                ..Default::default()
            },
        ));
    }
    let (exact, patterns): (Vec<&String>, Vec<&String>) = config
        .allow_role_arns
        .iter()
        .partition(|a| !a.contains('*'));
    for a in exact {
        picks.push((
            format!("role {a}"),
            Account {
                role_arn: Some(a.clone()),
                ..Default::default()
            },
        ));
    }
    if picks.is_empty() && patterns.is_empty() {
        return c.not_configured(
            "no allow-lists: tool calls use the server's account (--allow-profiles, --allow-regions and --allow-role-arns let them pick others)",
        );
    }
    let session = config.role_session_name.clone();
    let results = futures::future::join_all(picks.into_iter().map(|(label, account)| {
        let session = session.clone();
        async move {
            let sdk = crate::accounts::load_sdk_config(&account, &session).await;
            let call = clients::sts(&sdk).get_caller_identity().send();
            let outcome = match tokio::time::timeout(CALL_TIMEOUT, call).await {
                Err(_) => Err(format!("STS did not answer in {}s", CALL_TIMEOUT.as_secs())),
                Ok(Err(e)) => Err(short_error(&from_sdk("STS", "sts:GetCallerIdentity", &e))),
                Ok(Ok(out)) => Ok(out.arn().unwrap_or("an unnamed caller").to_string()),
            };
            (label, account, outcome)
        }
    }))
    .await;
    let mut lines = Vec::new();
    let mut fixes = Vec::new();
    for (label, account, outcome) in results {
        match outcome {
            Ok(arn) => lines.push(format!("{label}: ok as {arn}")),
            Err(e) => {
                lines.push(format!("{label}: FAILS: {e}"));
                fixes.push(match (&account.profile, &account.region, &account.role_arn) {
                    (Some(p), _, _) => format!("define profile {p} in your AWS config (with credentials, SSO or a role), or drop it from --allow-profiles"),
                    (_, Some(r), _) => format!("region {r}: the server's credentials must be valid in its partition ({}); drop it from --allow-regions otherwise", clients::partition(r)),
                    (_, _, Some(a)) => format!("allow the server's principal to sts:AssumeRole {a} (and the role's trust policy to trust it), or drop it from --allow-role-arns"),
                    _ => String::new(),
                });
            }
        }
    }
    for p in patterns {
        lines.push(format!(
            "role pattern {p}: not checked (only exact ARNs can be)"
        ));
    }
    let detail = lines.join("; ");
    if fixes.is_empty() {
        c.ok(detail)
    } else {
        c.fail(detail, fixes.join("; "))
    }
}

async fn identity_check(sdk: &SdkConfig) -> (Check, Option<String>) {
    let c = Check::new("identity");
    let call = clients::sts(sdk).get_caller_identity().send();
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => (timed_out(c, "STS"), None),
        Ok(Err(e)) => (
            failed(c, from_sdk("STS", "sts:GetCallerIdentity", &e), None),
            None,
        ),
        Ok(Ok(out)) => match out.arn() {
            Some(arn) => (
                c.ok(format!(
                    "{arn} (account {})",
                    out.account().unwrap_or("unknown")
                )),
                Some(arn.to_string()),
            ),
            None => (
                c.fail(
                    "GetCallerIdentity answered without an Arn",
                    "check AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL: the endpoint is not STS",
                ),
                None,
            ),
        },
    }
}

async fn iam_check(sdk: &SdkConfig, config: &Config, who: Option<&str>) -> Check {
    use aws_sdk_iam::types::EntityType;
    let c = Check::new("iam");
    let call = clients::iam(sdk)
        .get_account_authorization_details()
        .filter(EntityType::User)
        .filter(EntityType::Role)
        .max_items(1)
        .send();
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => timed_out(c, "IAM"),
        Ok(Err(e)) => failed(
            c,
            from_sdk("IAM", "iam:GetAccountAuthorizationDetails", &e),
            who,
        ),
        Ok(Ok(_)) => {
            let mut detail = "iam:GetAccountAuthorizationDetails allowed (MaxItems=1)".to_string();
            if config.allow_writes {
                detail.push_str(
                    "; iam:TagUser and iam:TagRole (tag_principal) not checked: they are writes",
                );
            }
            c.ok(detail)
        }
    }
}

async fn budgets_check(sdk: &SdkConfig, account: Option<&str>, who: Option<&str>) -> Check {
    let c = Check::new("budgets");
    let Some(account) = account else {
        return c.skipped("needs the account id from sts:GetCallerIdentity (see identity)");
    };
    let call = clients::budgets(sdk)
        .describe_budgets()
        .account_id(account)
        .max_results(1)
        .send();
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => timed_out(c, "AWS Budgets"),
        Ok(Err(e)) => match from_sdk("AWS Budgets", "budgets:ViewBudget", &e) {
            // AWS answers NotFoundException for an account without budgets.
            ToolError::Upstream { code, .. } if code == "NotFoundException" => c.ok(format!(
                "budgets:ViewBudget allowed; no AWS budgets in account {account} (check_budget uses --budget-policy limits only)"
            )),
            err => failed(c, err, who),
        },
        Ok(Ok(out)) => c.ok(if out.budgets().is_empty() {
            format!(
                "budgets:ViewBudget allowed; no AWS budgets in account {account} (check_budget uses --budget-policy limits only)"
            )
        } else {
            format!("budgets:ViewBudget allowed; account {account} has budgets")
        }),
    }
}

fn budget_policy_check(config: &Config) -> Check {
    let c = Check::new("budget_policy");
    let Some(path) = &config.budget_policy else {
        return c.not_configured("not configured (--budget-policy adds local limits)");
    };
    match crate::sources::budgets::PolicyFile::load(path) {
        Ok(p) => c.ok(format!(
            "{}: {} budget(s), warn at {}%, deny at {}%",
            path.display(),
            p.budgets().len(),
            p.warn_percent,
            p.deny_percent
        )),
        Err(e) => c.fail(
            e,
            "fix the TOML file (README: Budget checks) or unset --budget-policy / BEDROCK_COST_MCP_BUDGET_POLICY",
        ),
    }
}

async fn pricing_check(sdk: &SdkConfig, who: Option<&str>) -> Check {
    let c = Check::new("pricing");
    let call = clients::pricing(sdk)
        .get_products()
        .service_code("AmazonBedrock")
        .format_version("aws_v1")
        .max_results(1)
        .send();
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => timed_out(c, "Price List"),
        Ok(Err(e)) => failed(c, from_sdk("Price List", "pricing:GetProducts", &e), who)
            .note_fix("; until then prices come from the bundled snapshot"),
        Ok(Ok(out)) if out.price_list().is_empty() => c.fail(
            "pricing:GetProducts answered no AmazonBedrock products",
            "check the region (the Price List API is served in the partition's global region) and AWS_ENDPOINT_URL_PRICING",
        ),
        Ok(Ok(_)) => c.ok("pricing:GetProducts allowed (AmazonBedrock, MaxResults=1)"),
    }
}

/// Without credentials the Price List API is not called: prices come from the bundled snapshot.
fn snapshot_check() -> Check {
    let c = Check::new("pricing");
    let models = crate::domain::pricing::snapshot().len();
    if models == 0 {
        return c.fail(
            "no AWS credentials for the Price List API, and the bundled price snapshot is empty",
            CREDENTIALS_FIX,
        );
    }
    c.ok(format!(
        "no AWS credentials, so the Price List API is not called: estimate_cost prices from the bundled price snapshot of {} ({models} model prices; works offline)",
        crate::domain::pricing::SNAPSHOT_DATE
    ))
}

async fn registry_check(sdk: &SdkConfig, who: Option<&str>) -> Check {
    let c = Check::new("agent_registry");
    let region = configured_region(sdk).unwrap_or_default().to_string();
    let call = clients::registry_control(sdk)
        .list_registries()
        .max_results(1)
        .send();
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => timed_out(c, "Agent Registry"),
        Ok(Err(e)) => failed(
            c,
            from_sdk("Agent Registry", "agent-registry:ListRegistries", &e),
            who,
        ),
        Ok(Ok(out)) => c.ok(if out.registries().is_empty() {
            format!("agent-registry:ListRegistries allowed; no registries in {region}")
        } else {
            format!(
                "agent-registry:ListRegistries allowed; registries in {region} (first: {}); searching also needs agent-registry:SearchDiscoverableRegistryRecords",
                out.registries()[0].name()
            )
        }),
    }
}

/// Where model invocation logging delivers (free: bedrock GetModelInvocationLoggingConfiguration),
/// against what the live layer is configured to read.
async fn invocation_logs_check(sdk: &SdkConfig, config: &Config, who: Option<&str>) -> Check {
    use crate::sources::invocation_logs::{logging_setup, reads_delivery};
    let c = Check::new("invocation_logs");
    let region = configured_region(sdk).unwrap_or("us-east-1").to_string();
    let turn_on = format!(
        "turn logging on in {region}: aws bedrock put-model-invocation-logging-configuration --logging-config '{{\"s3Config\":{{\"bucketName\":\"<bucket>\",\"keyPrefix\":\"bedrock\"}},\"textDataDeliveryEnabled\":false,\"imageDataDeliveryEnabled\":false,\"embeddingDataDeliveryEnabled\":false}}' (the bucket policy must let bedrock.amazonaws.com write), then start with --invocation-logs s3://<bucket>/bedrock"
    );
    let live = config.invocation_logs.is_some() || config.invocation_log_group.is_some();
    let client = clients::bedrock(sdk);
    let setup = match tokio::time::timeout(CALL_TIMEOUT, logging_setup(&client)).await {
        // Not configured: what logging does is news, not a failure.
        Err(_) | Ok(Err(_)) if !live => {
            return c.not_configured(
                "not configured (--invocation-logs or --invocation-log-group enable the live layer); the logging configuration could not be read",
            );
        }
        Err(_) => return timed_out(c, "Amazon Bedrock"),
        Ok(Err(e)) => return failed(c, e, who),
        Ok(Ok(s)) => s,
    };
    let configured = config
        .invocation_logs
        .as_deref()
        .map(|l| format!("--invocation-logs {l}"))
        .or_else(|| {
            config
                .invocation_log_group
                .as_deref()
                .map(|g| format!("--invocation-log-group {g}"))
        });
    let goes = [
        setup.s3.clone(),
        setup
            .log_group
            .as_ref()
            .map(|g| format!("CloudWatch Logs group {g}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" and ");
    let bodies = if setup.bodies.is_empty() {
        "metadata only".to_string()
    } else {
        format!("with {} bodies", setup.bodies.join(", "))
    };
    let Some(configured) = configured else {
        return if setup.is_on() {
            c.not_configured(format!(
                "model invocation logging in {region} delivers to {goes} ({bodies}); start with {} to answer the hours the bill has not reached",
                match &setup.s3 {
                    Some(s3) => format!("--invocation-logs {s3}"),
                    None => format!(
                        "--invocation-log-group {}",
                        setup.log_group.clone().unwrap_or_default()
                    ),
                }
            ))
        } else {
            c.not_configured(format!(
                "model invocation logging is off in {region}; the live layer (spend minutes after each call) needs it: {turn_on}"
            ))
        };
    };
    if !setup.is_on() {
        return c.fail(
            format!("{configured} is set, but model invocation logging is off in {region}: no new record will arrive"),
            turn_on,
        );
    }
    let matches = match (&config.invocation_logs, &config.invocation_log_group) {
        (Some(l), _) if l.starts_with("s3://") => {
            setup.s3.as_deref().is_some_and(|d| reads_delivery(l, d))
        }
        // A local folder: a copy of the delivery, whatever its name.
        (Some(_), _) => true,
        (None, Some(g)) => setup.log_group.as_deref() == Some(g.as_str()),
        (None, None) => true,
    };
    if matches {
        c.ok(format!(
            "model invocation logging in {region} delivers to {goes} ({bodies}); {configured} reads it"
        ))
    } else {
        c.fail(
            format!("{configured} does not read where logging in {region} delivers: {goes}"),
            format!(
                "point the server at the delivery ({}), or change the logging configuration",
                match (&setup.s3, &setup.log_group) {
                    (Some(s3), _) if config.invocation_logs.is_some() =>
                        format!("--invocation-logs {s3}"),
                    (_, Some(g)) => format!("--invocation-log-group {g}"),
                    (Some(s3), None) => format!("--invocation-logs {s3}"),
                    (None, None) => String::new(),
                }
            ),
        )
    }
}

async fn athena_check(sdk: &SdkConfig, config: &Config, who: Option<&str>) -> Check {
    use aws_sdk_athena::types::WorkGroupState;
    let c = Check::new("athena");
    let wg = &config.athena_workgroup;
    let call = clients::athena(sdk).get_work_group().work_group(wg).send();
    let out = match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => return timed_out(c, "Athena"),
        Ok(Err(e)) => {
            let err = from_sdk("Athena", "athena:GetWorkGroup", &e);
            if let ToolError::Upstream { code, message, .. } = &err
                && code == "InvalidRequestException"
            {
                return c.fail(
                    format!("workgroup '{wg}': {message}"),
                    "name an existing workgroup with --athena-workgroup (BEDROCK_COST_MCP_ATHENA_WORKGROUP)",
                );
            }
            return failed(c, err, who);
        }
        Ok(Ok(out)) => out,
    };
    let Some(group) = out.work_group() else {
        return c.fail(
            format!("workgroup '{wg}' not found"),
            "name an existing workgroup with --athena-workgroup (BEDROCK_COST_MCP_ATHENA_WORKGROUP)",
        );
    };
    if group.state() == Some(&WorkGroupState::Disabled) {
        return c.fail(
            format!("workgroup '{wg}' is disabled"),
            format!("enable it (aws athena update-work-group --work-group {wg} --state ENABLED) or pick another with --athena-workgroup"),
        );
    }
    let conf = group.configuration();
    let output = config
        .athena_output
        .clone()
        .map(|o| format!("{o} (--athena-output)"))
        .or_else(|| {
            conf.and_then(|c| c.result_configuration())
                .and_then(|r| r.output_location())
                .map(|o| format!("{o} (workgroup)"))
        })
        .or_else(|| {
            conf.and_then(|c| c.managed_query_results_configuration())
                .filter(|m| m.enabled())
                .map(|_| "managed query results (workgroup)".to_string())
        });
    let Some(output) = output else {
        return c.fail(
            format!("workgroup '{wg}' has no query result location"),
            "pass --athena-output s3://bucket/prefix (BEDROCK_COST_MCP_ATHENA_OUTPUT) or set the workgroup's result location",
        );
    };
    c.ok(format!(
        "athena:GetWorkGroup allowed; workgroup '{wg}', results to {output}; table {}.{} not queried (queries are billed per TB scanned)",
        config.athena_database.as_deref().unwrap_or_default(),
        config.athena_table.as_deref().unwrap_or_default()
    ))
}

async fn cur_check(sdk: &SdkConfig, config: &Config, blocked: Option<&str>) -> Check {
    let c = Check::new("cur");
    let Some(raw) = &config.cur else {
        return c.not_configured("not configured (--cur PATH reads a CUR 2.0 Parquet export)");
    };
    let Ok(location) = CurLocation::parse(raw) else {
        return c.fail(
            format!("--cur {raw} is not a folder or s3:// URL"),
            "pass a local folder or s3://bucket/prefix",
        );
    };
    let s3 = match &location {
        CurLocation::S3 { bucket, .. } => {
            if let Some(why) = blocked {
                return c.skipped(format!("{raw} is on S3: {why}"));
            }
            match crate::sources::s3::store(sdk, bucket) {
                Ok(s) => Some(s),
                Err(e) => return c.fail(e, "check the bucket name and AWS_ENDPOINT_URL_S3"),
            }
        }
        CurLocation::Local(_) => None,
    };
    let opened = tokio::time::timeout(CALL_TIMEOUT, CurEngine::open(&location, s3, None)).await;
    let engine = match opened {
        Err(_) => return timed_out(c, "CUR export"),
        Ok(Err(err)) => {
            let fix = match &err {
                ToolError::AccessDenied { action, .. } => {
                    format!("grant {action} on the export's bucket and prefix")
                }
                _ => "point --cur (BEDROCK_COST_MCP_CUR) at the CUR 2.0 export folder that holds data/BILLING_PERIOD=YYYY-MM/*.parquet".into(),
            };
            return c.fail(short_error(&err), fix);
        }
        Ok(Ok(engine)) => engine,
    };
    let delivered = engine
        .delivered()
        .map(|d| format!(", last delivered {}", d.format("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    if !engine.has_principal() {
        return c.fail(
            format!(
                "{}: {} Parquet file(s){delivered}, but no line_item_iam_principal column: spend by principal, role or session is unavailable",
                engine.location(),
                engine.files()
            ),
            "in Billing > Data Exports, create a CUR 2.0 export with \"Include caller identity (IAM principal) allocation data\" (INCLUDE_IAM_PRINCIPAL_DATA) and point --cur at it",
        );
    }
    c.ok(format!(
        "{}: {} Parquet file(s){delivered}; line_item_iam_principal present; {}",
        engine.location(),
        engine.files(),
        rollup_folder(config)
    ))
}

/// Whether month rollups can be kept (a folder that cannot be written only costs speed).
fn rollup_folder(config: &Config) -> String {
    let Some(dir) = config.cur_rollups() else {
        return "month rollups off (--no-cur-rollups): every question scans the export".into();
    };
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    let writable = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match writable {
        Ok(()) => {
            let kept = std::fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
                        .count()
                })
                .unwrap_or(0);
            format!("month rollups in {} ({kept} kept)", dir.display())
        }
        Err(e) => format!(
            "month rollups cannot be written in {} ({e}): every question scans the export; set --cur-rollup-dir to a writable folder",
            dir.display()
        ),
    }
}

/// What ListCostAllocationTags said about `iamPrincipal/*` keys.
struct PrincipalTags {
    active: Vec<String>,
    inactive: Vec<String>,
    truncated: bool,
}

async fn cost_explorer_check(sdk: &SdkConfig, who: Option<&str>) -> (Check, Option<PrincipalTags>) {
    let c = Check::new("cost_explorer");
    // One request, however many tags there are: the first 1000 (the most a page holds).
    let call = clients::cost_explorer(sdk)
        .list_cost_allocation_tags()
        .max_results(1000)
        .send();
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Err(_) => (timed_out(c, "Cost Explorer"), None),
        Ok(Err(e)) => (
            failed(
                c,
                from_sdk("Cost Explorer", "ce:ListCostAllocationTags", &e),
                who,
            ),
            None,
        ),
        Ok(Ok(out)) => {
            let (mut active, mut inactive) = (Vec::new(), Vec::new());
            for t in out.cost_allocation_tags() {
                if let Some(key) = t.tag_key().strip_prefix("iamPrincipal/") {
                    if t.status().as_str() == "Active" {
                        active.push(key.to_string());
                    } else {
                        inactive.push(key.to_string());
                    }
                }
            }
            active.sort();
            inactive.sort();
            let truncated = out.next_token().is_some_and(|t| !t.is_empty());
            let check = c.ok(format!(
                "ce:ListCostAllocationTags allowed (1 paid request, $0.01; {} tag key(s){}); ce:GetCostAndUsage, ce:GetDimensionValues and ce:GetAnomalies not checked (each is a paid request)",
                out.cost_allocation_tags().len(),
                if truncated { ", first page of 1000 only" } else { "" }
            ));
            (
                check,
                Some(PrincipalTags {
                    active,
                    inactive,
                    truncated,
                }),
            )
        }
    }
}

fn principal_tags_check(
    config: &Config,
    cost_explorer: &Check,
    tags: Option<&PrincipalTags>,
) -> Check {
    let c = Check::new("principal_tags");
    let Some(tags) = tags else {
        return c.skipped(if cost_explorer.status == Status::Fail {
            "needs the cost_explorer check to pass".to_string()
        } else {
            "not checked: comes from the cost_explorer check (--paid-checks)".to_string()
        });
    };
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|k| format!("iamPrincipal/{k}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let detail = format!(
        "active: {}; inactive: {}{}",
        list(&tags.active),
        list(&tags.inactive),
        if tags.truncated {
            " (among the first 1000 tag keys)"
        } else {
            ""
        }
    );
    let activate = |keys: &[String]| {
        format!(
            "activate {} in Billing > Cost allocation tags (or call activate_cost_allocation_tags with --allow-writes); it takes up to 24 h to show in Cost Explorer",
            list(keys)
        )
    };
    if tags.active.is_empty() {
        let fix = if tags.inactive.is_empty() {
            "tag IAM users and roles (e.g. team=...), call Bedrock with them, then activate iamPrincipal/<key> in Billing > Cost allocation tags once the key appears (about 24 h)".to_string()
        } else {
            activate(&tags.inactive)
        };
        return c.fail(
            format!("no active iamPrincipal/* cost-allocation tag: spend by tag shows as untagged; {detail}"),
            fix,
        );
    }
    let missing: Vec<String> = config
        .required_tag_keys
        .iter()
        .filter(|k| !tags.active.contains(k))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return c.fail(
            format!("required key(s) not active: {}; {detail}", list(&missing)),
            activate(&missing),
        );
    }
    if !tags.active.contains(&config.default_tag_key) {
        return c.fail(
            format!(
                "the default group key iamPrincipal/{} is not active; {detail}",
                config.default_tag_key
            ),
            format!(
                "pass --default-tag-key {} (BEDROCK_COST_MCP_DEFAULT_TAG_KEY), or {}",
                tags.active[0],
                activate(std::slice::from_ref(&config.default_tag_key))
            ),
        );
    }
    c.ok(detail)
}

fn timed_out(c: Check, service: &str) -> Check {
    c.fail(
        format!(
            "no answer from {service} within {} s",
            CALL_TIMEOUT.as_secs()
        ),
        "check network access, proxies (HTTPS_PROXY) and AWS_ENDPOINT_URL* overrides",
    )
}

/// A failed call as a failed check, with the fix the error names.
fn failed(c: Check, err: ToolError, who: Option<&str>) -> Check {
    let to = who.map(|w| format!(" to {w}")).unwrap_or_default();
    let fix = match &err {
        ToolError::AccessDenied { action, .. } => {
            format!("grant {action}{to} (an IAM policy statement allowing \"{action}\")")
        }
        ToolError::NoCredentials(_) => CREDENTIALS_FIX.to_string(),
        ToolError::Throttled { .. } => "AWS throttled the call; run doctor again in a minute".into(),
        ToolError::Unreachable { .. } => {
            "check network access, proxies (HTTPS_PROXY), the region and AWS_ENDPOINT_URL* overrides".into()
        }
        _ => "see the AWS error; rerun with BEDROCK_COST_MCP_LOG=debug for the request".into(),
    };
    c.fail(short_error(&err), fix)
}

/// A tool error's text without the advice the fix column gives.
fn short_error(err: &ToolError) -> String {
    match err {
        ToolError::AccessDenied { action, message } => {
            format!("access denied for {action}: {message}")
        }
        ToolError::NoCredentials(m) => format!("no usable credentials: {m}"),
        ToolError::Upstream {
            service,
            code,
            message,
            ..
        } => format!("{service} error {code}: {message}"),
        ToolError::Unreachable { service, message } => format!("cannot reach {service}: {message}"),
        ToolError::InvalidInput(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The report as an aligned table, fixes under their check, and a summary line.
pub fn render_text(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "bedrock-cost-mcp {} doctor ({} mode)\n",
        report.version,
        if report.mode == "demo" { "demo" } else { "AWS" }
    );
    let name_w = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(5)
        .max("CHECK".len());
    let status_w = "skipped".len();
    let _ = writeln!(s, "{:name_w$}  {:status_w$}  DETAIL", "CHECK", "STATUS");
    for c in &report.checks {
        let _ = writeln!(
            s,
            "{:name_w$}  {:status_w$}  {}",
            c.name,
            c.status.as_str(),
            c.detail
        );
        if let Some(fix) = &c.fix {
            let _ = writeln!(s, "{:name_w$}  {:status_w$}  fix: {fix}", "", "");
            if !c.tools.is_empty() {
                let _ = writeln!(
                    s,
                    "{:name_w$}  {:status_w$}  affects: {}",
                    "",
                    "",
                    c.tools.join(", ")
                );
            }
        }
    }
    if !report.tools.is_empty() {
        let tool_w = report.tools.iter().map(|t| t.tool.len()).max().unwrap_or(4);
        let _ = writeln!(
            s,
            "\n{:tool_w$}  {:status_w$}  SOURCE; NEEDS",
            "TOOL", "STATUS"
        );
        for t in &report.tools {
            let mut needs = vec![t.source.clone()];
            if !t.failed.is_empty() {
                needs.push(format!("failed: {}", t.failed.join(", ")));
            }
            if !t.not_checked.is_empty() {
                needs.push(format!("not checked: {}", t.not_checked.join(", ")));
            }
            if needs.len() == 1 && t.status == Status::Ok {
                needs.push("every check passed".into());
            }
            let _ = writeln!(
                s,
                "{:tool_w$}  {:status_w$}  {}",
                t.tool,
                t.status.as_str(),
                needs.join("; ")
            );
        }
    }
    let count = |st: Status| report.checks.iter().filter(|c| c.status == st).count();
    let _ = writeln!(
        s,
        "\n{} ok, {} failed, {} skipped; {} paid Cost Explorer request(s).",
        count(Status::Ok),
        count(Status::Fail),
        count(Status::Skipped),
        report.paid_requests
    );
    if let Some(hint) = &report.hint {
        let _ = writeln!(s, "{hint}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_outside_the_credentials_partition_is_named() {
        assert!(partition_mismatch("us-east-1", "arn:aws:iam::1:user/a").is_none());
        assert!(partition_mismatch("cn-north-1", "arn:aws-cn:iam::1:user/a").is_none());
        let (detail, fix) = partition_mismatch("us-east-1", "arn:aws-cn:iam::1:user/a").unwrap();
        assert!(detail.contains("partition aws, but the credentials belong to partition aws-cn"));
        assert!(fix.starts_with("set AWS_REGION to a region of aws-cn (e.g. cn-northwest-1)"));
        assert_eq!(
            one_line("chain. Attempted:\n  Env: no\n  Profile: no".into()),
            "chain. Attempted: Env: no; Profile: no"
        );
    }

    #[test]
    fn credential_sources_are_named() {
        use AwsCredentialFeature as F;
        assert!(credential_source(&[F::CredentialsEnvVars], "default").contains("environment"));
        assert_eq!(
            credential_source(&[F::CredentialsProfile], "dev"),
            "profile 'dev' (shared config/credentials files)"
        );
        assert!(
            credential_source(&[F::CredentialsProfile, F::CredentialsProfileSso], "sso")
                .starts_with("SSO through profile 'sso'")
        );
        assert!(credential_source(&[F::CredentialsImds], "default").contains("instance"));
        assert_eq!(credential_source(&[], "x"), "the default credential chain");
    }

    #[test]
    fn failures_name_the_action_and_exit_1() {
        let c = failed(
            Check::new("iam"),
            ToolError::AccessDenied {
                action: "iam:GetAccountAuthorizationDetails".into(),
                message: "nope".into(),
            },
            Some("arn:aws:iam::1:user/a"),
        );
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.fix
                .as_deref()
                .unwrap()
                .starts_with("grant iam:GetAccountAuthorizationDetails to arn:aws:iam::1:user/a")
        );
        let plans = [ToolPlan {
            tool: "untagged_principals",
            source: "IAM".into(),
            needs: vec!["iam"],
            unavailable: false,
        }];
        let r = Report::new("aws", vec![c, Check::new("x").ok("fine")], 0, &plans, None);
        assert_eq!(r.exit_code(), 1);
        assert_eq!(r.tools[0].status, Status::Fail);
        let text = render_text(&r);
        assert!(
            text.contains("fix: grant iam:GetAccountAuthorizationDetails"),
            "{text}"
        );
        assert!(text.contains("affects: untagged_principals"), "{text}");
        let r = Report::new("aws", vec![Check::new("x").skipped("later")], 0, &[], None);
        assert_eq!(r.exit_code(), 0);
    }

    fn config(args: &[&str]) -> Config {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        let mut argv = vec!["x"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("flags").config
    }

    /// doctor reports on the tools the server offers, from the one registry: the read-only
    /// ones, and the writes with --allow-writes.
    #[test]
    fn the_plan_covers_every_tool_the_server_offers() {
        let names = |plan: &Plan| plan.tools().iter().map(|t| t.tool).collect::<Vec<_>>();
        let read_only = names(&Plan::new(&config(&[]), true));
        assert_eq!(
            read_only,
            [
                "bedrock_spend",
                "untagged_principals",
                "cost_allocation_tags",
                "search_registry",
                "list_registries",
                "get_registry_record",
                "estimate_cost",
                "check_budget",
                "spend_anomalies"
            ]
        );
        let all = Plan::new(&config(&["--allow-writes"]), true).tools();
        assert_eq!(all.len(), crate::tools::TOOLS.len());
        let tag = all.iter().find(|t| t.tool == "tag_principal").unwrap();
        assert!(tag.needs.contains(&"iam"), "{:?}", tag.needs);
        assert!(all.iter().all(|t| !t.source.is_empty()));
    }

    /// doctor restates the server's choice of spend source: the two must agree.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_plan_follows_the_servers_choice_of_spend_source() {
        let dir = tempfile::tempdir().unwrap();
        let cur = dir.path().join("cur");
        std::fs::create_dir_all(&cur).unwrap();
        let ledger = dir.path().join("ledger.json");
        let (cur, ledger) = (cur.to_str().unwrap(), ledger.to_str().unwrap());
        let athena = ["--athena-database", "db", "--athena-table", "t"];
        let cases: [Vec<&str>; 4] = [
            vec![],
            vec!["--cur", cur],
            athena.to_vec(),
            [&["--cur", cur][..], &athena[..]].concat(),
        ];
        for args in cases {
            let mut argv = vec!["--ledger", ledger, "--no-cur-rollups"];
            argv.extend(&args);
            let config = config(&argv);
            let plan = Plan::new(&config, true);
            let app = crate::usecases::context::Ctx::build(config).await.unwrap();
            let source = app.spend_source(None).unwrap();
            assert_eq!(plan.spend.name(), source.name(), "{args:?}");
            assert_eq!(plan.cur.is_some(), app.cur.is_some(), "{args:?}");
            assert_eq!(plan.athena, app.sources.athena.is_some(), "{args:?}");
        }
    }

    #[test]
    fn a_local_export_without_credentials_answers_offline() {
        let dir = tempfile::tempdir().unwrap();
        let offline = Plan::new(&config(&["--cur", dir.path().to_str().unwrap()]), false);
        assert!(offline.offline());
        let plans = offline.tools();
        let get = |t: &str| plans.iter().find(|p| p.tool == t).unwrap().clone();
        let spend = get("bedrock_spend");
        assert!(!spend.unavailable);
        assert_eq!(spend.needs, vec!["cur"]);
        let estimate = get("estimate_cost");
        assert!(!estimate.unavailable && estimate.source.contains("bundled price snapshot"));
        assert_eq!(estimate.needs, vec!["pricing"]);
        let budget = get("check_budget");
        assert!(!budget.unavailable);
        assert!(!budget.needs.contains(&"credentials"), "{budget:?}");
        for t in [
            "search_registry",
            "cost_allocation_tags",
            "untagged_principals",
        ] {
            let p = get(t);
            assert!(p.unavailable && p.needs.is_empty(), "{p:?}");
            assert!(p.source.ends_with("needs AWS credentials (none found)"));
        }
        assert!(offline.hint(&plans).unwrap().starts_with("offline setup"));

        // Athena configured: AWS is needed after all, so missing credentials fail.
        let athena = Plan::new(
            &config(&[
                "--cur",
                dir.path().to_str().unwrap(),
                "--athena-database",
                "db",
                "--athena-table",
                "t",
            ]),
            false,
        );
        assert!(!athena.offline());
        assert!(
            athena
                .tool(crate::tools::unit("search_registry").unwrap())
                .needs
                .contains(&"credentials")
        );

        // Nothing to answer from: --demo is suggested; Cost Explorer answers bedrock_spend.
        let none = Plan::new(&config(&[]), false);
        assert_eq!(none.spend, SpendFrom::CostExplorer);
        let plans = none.tools();
        assert!(none.hint(&plans).unwrap().contains("--demo"));
        let spend = none.tool(crate::tools::unit("bedrock_spend").unwrap());
        assert!(!spend.unavailable && spend.needs.contains(&"credentials"));
        assert!(spend.needs.contains(&"cost_explorer"));
        assert!(
            none.tool(crate::tools::unit("estimate_cost").unwrap())
                .source
                .contains("bundled price snapshot")
        );

        // With credentials, prices come from the Price List API; no hint.
        let aws = Plan::new(&config(&[]), true);
        assert!(
            aws.tool(crate::tools::unit("estimate_cost").unwrap())
                .source
                .starts_with("the Price List API")
        );
        assert!(aws.hint(&aws.tools()).is_none());
    }
}
