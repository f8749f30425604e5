//! The context every tool runs in ([`Ctx`]): the configuration, the [`Sources`] of the server's
//! own AWS account (or, per call, of an account the call picked), the ledger and the budget
//! policy. Held as `Arc`s, so the HTTP transport clones it per request cheaply. It knows
//! no tool: the MCP server (`server`) dispatches tools over it.

use std::sync::Arc;

use crate::config::Config;
use crate::error::ToolError;
use crate::sources::athena::{Athena, AthenaSettings};
use crate::sources::budgets::{AwsBudgets, PolicyFile};
use crate::sources::ce_guard::RequestCap;
use crate::sources::cost_allocation::{AllocationTags, CostAllocationTags};
use crate::sources::cost_explorer::{CacheTtl, CeInsights, CostExplorer};
use crate::sources::cur::{CurLocation, CurOrigin, LazyCur};
use crate::sources::demo::{DemoAllocationTags, DemoCostExplorer, DemoDirectory};
use crate::sources::iam::{Iam, PrincipalDirectory};
use crate::sources::identity::{DemoIdentity, Identity, Sts};
use crate::sources::invocation_logs::{InvocationLogs, LogLocation};
use crate::sources::ledger::Ledger;
use crate::sources::pricing::{PriceList, PriceSource, SnapshotPrices};
use crate::sources::registry::{AgentRegistry, AwsAgentRegistry};
use crate::sources::{Lazy, SourceInput, SpendSource, clients, lazy};

/// Budgets that apply to Bedrock, and the names of the ones skipped.
type BudgetList = (Vec<crate::sources::budgets::Budget>, Vec<String>);

/// The context a tool runs in: the configuration, the sources of the account it answers for,
/// and what every account shares (the CUR export, prices, the ledger, the budget policy). The
/// caller is not here: it travels with the call ([`crate::domain::visibility::current`]), set
/// once at dispatch; progress is the tool's argument.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) config: Arc<Config>,
    /// The backends of the account this context answers for.
    pub(crate) sources: Arc<Sources>,
    /// The CUR 2.0 export (the demo's, or `--cur`): one for every account.
    pub(crate) cur: Option<Arc<dyn SpendSource>>,
    /// Bedrock model invocation logs (`--invocation-logs`): the server account's own, so a
    /// context for a picked account has none.
    pub(crate) live: Option<Arc<InvocationLogs>>,
    pub(crate) prices: Arc<dyn PriceSource>,
    pub(crate) ledger: Arc<Ledger>,
    /// The local budget policy: the file's, read at start, or the demo organisation's, sized
    /// on first use (its line items are not generated at start-up).
    policy: Arc<std::sync::OnceLock<Option<Arc<PolicyFile>>>>,
    /// The accounts tool calls picked so far, each with its own sources (`for_account`).
    /// None in a context a call picked (it does not pick again).
    accounts: Option<Arc<AccountCtxs>>,
    /// Charts of recent answers, readable again as resources (`bedrock-cost://charts/<id>`).
    pub(crate) charts: Arc<Charts>,
}

/// Chart id -> (the caller that asked, PNG): at most [`MAX_CHARTS`], each an hour.
pub type Charts = moka::sync::Cache<String, (String, Arc<Vec<u8>>)>;

/// Charts kept at most.
pub const MAX_CHARTS: u64 = 64;

/// Charts of recent `bedrock_spend` answers: `bedrock-cost://charts/<id>` (PNG, an hour).
pub const CHARTS_URI_PREFIX: &str = "bedrock-cost://charts/";

fn charts() -> Arc<Charts> {
    Arc::new(
        moka::sync::Cache::builder()
            .max_capacity(MAX_CHARTS)
            .time_to_live(std::time::Duration::from_secs(3600))
            .build(),
    )
}

/// The backends of one AWS account (the server's own, or one a tool call picked), or of the
/// demo organisation: built once, every client on first use.
pub struct Sources {
    pub(crate) cost_explorer: Arc<dyn SpendSource>,
    /// Configured with `--athena-database`, `--athena-table` and `--athena-output` only.
    pub(crate) athena: Option<Arc<dyn SpendSource>>,
    pub(crate) directory: Arc<dyn PrincipalDirectory>,
    pub(crate) allocation: Arc<dyn AllocationTags>,
    pub(crate) identity: Arc<dyn Identity>,
    pub(crate) registry: Arc<dyn AgentRegistry>,
    /// What only an AWS account has (None for the demo organisation).
    aws: Option<AwsOnly>,
}

/// AWS Budgets, Cost Explorer's forecast and anomaly detection, and the account's SDK
/// configuration: the demo organisation has none of them.
struct AwsOnly {
    sdk: Lazy<aws_config::SdkConfig>,
    budgets: AwsBudgets,
    /// AWS budgets, kept five minutes: budget checks in a loop make no AWS call. One fetch at a
    /// time (moka's single flight), no lock held across it.
    budget_cache: moka::future::Cache<(), BudgetList>,
    /// Cost Explorer's forecast and anomaly detection, with the shared paid-request cap.
    insights: CeInsights,
}

fn budget_cache() -> moka::future::Cache<(), BudgetList> {
    moka::future::Cache::builder()
        .max_capacity(1)
        .time_to_live(std::time::Duration::from_secs(300))
        .build()
}

/// The accounts tool calls picked, each built once (moka: one build at a time per account,
/// the least recently used dropped beyond [`MAX_ACCOUNTS`]).
type AccountCtxs = moka::sync::Cache<crate::accounts::Account, Ctx>;

fn account_ctxs() -> Arc<AccountCtxs> {
    Arc::new(
        moka::sync::Cache::builder()
            .max_capacity(MAX_ACCOUNTS as u64)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .build(),
    )
}

/// Most picked accounts kept at once: role patterns (`arn:aws:iam::*:role/X`) allow any number
/// of accounts, so the least recently used one is dropped (with its caches) beyond this.
const MAX_ACCOUNTS: usize = 64;

impl Sources {
    /// One AWS account's sources. Every client is built on first use: no AWS call, no
    /// credential lookup happens here.
    fn aws(
        config: &Config,
        sdk: &Lazy<aws_config::SdkConfig>,
        cap: Arc<RequestCap>,
    ) -> Result<Sources, String> {
        // Cost Explorer keeps answers this long; Athena may reuse a result this old.
        let ttl = CacheTtl {
            closed: config.ttl_closed(),
            open: config.ttl_open(),
        };
        let athena: Option<Arc<dyn SpendSource>> =
            match (&config.athena_database, &config.athena_table) {
                (Some(database), Some(table)) => {
                    let settings = AthenaSettings {
                        catalog: config.athena_catalog.clone(),
                        database: database.clone(),
                        table: table.clone(),
                        workgroup: config.athena_workgroup.clone(),
                        output: config.athena_output.clone(),
                        partition_column: Some(config.athena_partition_column.clone())
                            .filter(|c| !c.is_empty()),
                        timeout: std::time::Duration::from_secs(config.athena_timeout_secs),
                        reuse: ttl,
                    };
                    let sdk = sdk.clone();
                    Some(Arc::new(Athena::new(
                        lazy(move || clients::athena(&sdk)),
                        settings,
                    )?))
                }
                _ => None,
            };
        // Regions of the global services: see `sources::clients`.
        let ce_sdk = sdk.clone();
        let client = lazy(move || clients::cost_explorer(&ce_sdk));
        let (iam_sdk, sts_sdk, budgets_sdk) = (sdk.clone(), sdk.clone(), sdk.clone());
        Ok(Sources {
            cost_explorer: Arc::new(CostExplorer::new(client.clone(), cap.clone(), ttl)),
            athena,
            directory: Arc::new(Iam::new(
                lazy(move || clients::iam(&iam_sdk)),
                std::time::Duration::from_secs(config.iam_cache_secs),
            )),
            allocation: Arc::new(CostAllocationTags::new(client.clone(), cap.clone())),
            identity: Arc::new(Sts::new(lazy(move || clients::sts(&sts_sdk)))),
            registry: Arc::new(AwsAgentRegistry::new(sdk.clone())),
            aws: Some(AwsOnly {
                sdk: sdk.clone(),
                // Budgets is served from the partition's global region.
                budgets: AwsBudgets::new(lazy(move || clients::budgets(&budgets_sdk))),
                budget_cache: budget_cache(),
                insights: CeInsights::new(client, cap),
            }),
        })
    }

    /// The demo organisation's sources: bundled data, no AWS call.
    fn demo() -> Sources {
        Sources {
            cost_explorer: Arc::new(DemoCostExplorer::new(crate::domain::clock::today())),
            athena: None,
            directory: Arc::new(DemoDirectory::new()),
            allocation: Arc::new(DemoAllocationTags::default()),
            identity: Arc::new(DemoIdentity),
            registry: Arc::new(crate::sources::demo::DemoRegistry::new()),
            aws: None,
        }
    }
}

impl Ctx {
    /// Build the sources the configuration asks for. Loads the AWS configuration
    /// (lazily: no network call happens here) unless in demo mode.
    pub async fn build(config: Config) -> Result<Ctx, String> {
        let sdk = if config.demo {
            None
        } else {
            Some(crate::sources::http_client::deferred_sdk_config())
        };
        let lazy_cur: Option<Arc<LazyCur>> = match (&config.cur, &sdk) {
            (Some(raw), _) => {
                let location = CurLocation::parse(raw)?;
                if let CurLocation::Local(path) = &location
                    && !path.is_dir()
                {
                    return Err(format!(
                        "--cur {raw}: no such folder; pass the CUR 2.0 export folder (holding data/BILLING_PERIOD=YYYY-MM/)"
                    ));
                }
                let s3 = match (&location, &sdk) {
                    (CurLocation::S3 { bucket, .. }, Some(sdk)) => {
                        Some(crate::sources::s3::store(sdk, bucket)?)
                    }
                    _ => None,
                };
                Some(Arc::new(LazyCur::new(
                    CurOrigin::Location(location, s3),
                    config.cur_rollup_settings(),
                )))
            }
            (None, None) => Some(Arc::new(LazyCur::new(
                CurOrigin::Demo(crate::domain::clock::today()),
                config.cur_rollup_settings(),
            ))),
            (None, Some(_)) => None,
        };
        // Not for the demo: its bundled export is far below --cur-rollup-min-mb.
        if config.serving
            && config.cur.is_some()
            && config.cur_prebuild_months > 0
            && let Some(lazy) = &lazy_cur
        {
            tokio::spawn(lazy.clone().keep_rollups(config.cur_prebuild_months));
        }
        let cur: Option<Arc<dyn SpendSource>> = lazy_cur.map(|c| c as Arc<dyn SpendSource>);
        let policy = Arc::new(std::sync::OnceLock::new());
        match &config.budget_policy {
            Some(p) => {
                let _ = policy.set(Some(Arc::new(PolicyFile::load(p)?)));
            }
            None if !config.demo => {
                let _ = policy.set(None);
            }
            // The demo organisation has budgets of its own (allow, warn and deny): `policy()`.
            None => {}
        }
        let prices: Arc<dyn PriceSource> = match &sdk {
            None => Arc::new(SnapshotPrices),
            Some(sdk) => {
                // The Price List API is served from the partition's global region.
                let pricing_sdk = sdk.clone();
                Arc::new(PriceList::new(
                    lazy(move || clients::pricing(&pricing_sdk)),
                    config
                        .price_cache_dir
                        .clone()
                        .or_else(|| crate::sources::user_dir("XDG_CACHE_HOME", ".cache")),
                ))
            }
        };
        let ledger_path = config.ledger.clone().or_else(|| {
            if sdk.is_some() {
                crate::sources::user_dir("XDG_STATE_HOME", ".local/state")
                    .map(|d| d.join("ledger.json"))
            } else {
                None
            }
        });
        let ledger = Arc::new(Ledger::open(
            ledger_path,
            chrono::Duration::hours(config.ledger_window_hours),
        ));
        let sources = match &sdk {
            None => Sources::demo(),
            Some(sdk) => {
                // One hourly budget for every paid Cost Explorer request, whichever account.
                let cap = Arc::new(RequestCap::with_per_caller(
                    config.ce_max_requests_per_hour,
                    config.ce_max_requests_per_caller_per_hour,
                ));
                Sources::aws(&config, sdk, cap)?
            }
        };
        let live = match (&config.invocation_logs, &config.invocation_log_group) {
            (None, None) => None,
            (_, Some(group)) => {
                let Some(sdk) = &sdk else {
                    return Err(
                        "--invocation-log-group reads CloudWatch Logs: it needs AWS mode (not --demo)"
                            .into(),
                    );
                };
                let logs_sdk = sdk.clone();
                let region = sdk
                    .region()
                    .map_or_else(|| "us-east-1".to_string(), ToString::to_string);
                let bedrock_sdk = sdk.clone();
                Some(Arc::new(
                    InvocationLogs::insights(
                        crate::sources::logs_insights::Insights::new(
                            lazy(move || clients::logs(&logs_sdk)),
                            group.clone(),
                            region,
                            config.invocation_log_max_queries_per_hour,
                        ),
                        prices.clone(),
                        sources.directory.clone(),
                    )
                    .with_profiles(lazy(move || clients::bedrock(&bedrock_sdk))),
                ))
            }
            (Some(raw), None) => {
                let location = LogLocation::parse(raw)?;
                let s3 = match (&location, &sdk) {
                    (CurLocation::S3 { bucket, .. }, Some(sdk)) => {
                        Some(crate::sources::s3::store(sdk, bucket)?)
                    }
                    _ => None,
                };
                let logs =
                    InvocationLogs::open(&location, s3, prices.clone(), sources.directory.clone())?;
                Some(Arc::new(match &sdk {
                    Some(sdk) => {
                        let bedrock_sdk = sdk.clone();
                        logs.with_profiles(lazy(move || clients::bedrock(&bedrock_sdk)))
                    }
                    None => logs,
                }))
            }
        };
        Ok(Ctx {
            config: Arc::new(config),
            sources: Arc::new(sources),
            cur,
            live,
            prices,
            ledger,
            policy,
            accounts: Some(account_ctxs()),
            charts: charts(),
        })
    }

    /// This server as seen from the account a tool call picked: its own Cost Explorer cache,
    /// IAM inventory, budgets, registry and Athena, the shared paid-request cap, ledger, prices
    /// and CUR export. Kept for the life of the process (the allow-lists bound how many).
    pub(crate) fn for_account(&self, account: &crate::accounts::Account) -> Result<Ctx, ToolError> {
        account.check(&self.config)?;
        let Some(aws) = &self.sources.aws else {
            return Err(ToolError::Unsupported(
                "per-call accounts need AWS mode".into(),
            ));
        };
        let build = || -> Result<Ctx, ToolError> {
            let sdk = crate::accounts::deferred_sdk_config(
                account.clone(),
                self.config.role_session_name.clone(),
            );
            let sources = Sources::aws(&self.config, &sdk, aws.insights.cap().clone())
                .map_err(ToolError::Unsupported)?;
            Ok(Ctx {
                sources: Arc::new(sources),
                // A picked account does not pick again (and holding the cache would be a cycle).
                accounts: None,
                // The invocation logs are the server account's.
                live: None,
                ..self.clone()
            })
        };
        match &self.accounts {
            Some(cache) => cache
                .try_get_with(account.clone(), build)
                .map_err(|e| (*e).clone()),
            None => build(),
        }
    }

    /// Run an account-taking tool for the account its arguments name (`profile`, `region`,
    /// `role_arn`, taken out of `args`), or for the server's own when they name none.
    pub(crate) fn for_call(
        &self,
        args: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<(Ctx, crate::accounts::Account)>, ToolError> {
        match crate::accounts::Account::take(args)? {
            None => Ok(None),
            Some(account) => Ok(Some((self.for_account(&account)?, account))),
        }
    }

    /// The configured AWS region (us-east-1 in demo mode or when none is configured).
    pub(crate) fn config_region(&self) -> String {
        self.sources
            .aws
            .as_ref()
            .and_then(|a| a.sdk.region())
            .map(std::string::ToString::to_string)
            .unwrap_or_else(|| "us-east-1".into())
    }

    /// The local budget policy, if any (the demo's is sized from its spend on first use).
    fn policy(&self) -> Option<Arc<PolicyFile>> {
        self.policy
            .get_or_init(|| {
                Some(Arc::new(crate::demo_data::policy(
                    crate::domain::clock::today(),
                )))
            })
            .clone()
    }

    pub(crate) fn policy_budgets(&self) -> Vec<crate::sources::budgets::Budget> {
        self.policy()
            .as_ref()
            .map(|p| p.budgets())
            .unwrap_or_default()
    }

    /// AWS budgets about Bedrock or an iamPrincipal tag (none in demo mode).
    pub(crate) async fn aws_budgets(&self) -> Result<BudgetList, ToolError> {
        let Some(aws) = &self.sources.aws else {
            return Ok((vec![], vec![]));
        };
        let (warn, deny) = self
            .policy()
            .as_ref()
            .map(|p| (p.warn_percent, p.deny_percent))
            .unwrap_or((80.0, 100.0));
        aws.budget_cache
            .try_get_with((), async {
                let arn = self.sources.identity.caller().await?;
                let account = arn.split(':').nth(4).unwrap_or_default().to_string();
                aws.budgets.list(&account, warn, deny).await
            })
            .await
            .map_err(|e| (*e).clone())
    }

    /// Cost Explorer's forecast of Bedrock spend from `start` to `end` (None in demo mode,
    /// or when the period is too short to forecast). One paid request.
    pub(crate) async fn ce_forecast(
        &self,
        start: chrono::NaiveDate,
        end: chrono::NaiveDate,
    ) -> Result<Option<f64>, ToolError> {
        let Some(aws) = &self.sources.aws else {
            return Ok(None);
        };
        if end <= start {
            return Ok(None);
        }
        // Every Bedrock-family service with spend (AgentCore, Marketplace model editions, ...),
        // as the spend answers count them; the standard names when discovery is not possible.
        let services = self
            .sources
            .cost_explorer
            .bedrock_service_names()
            .await
            .unwrap_or_else(|| {
                crate::sources::cost_explorer::FALLBACK_BEDROCK_SERVICES
                    .iter()
                    .map(std::string::ToString::to_string)
                    .collect()
            });
        aws.insights.forecast(services, start, end).await
    }

    /// Cost Explorer anomalies touching Bedrock in the period (none in demo mode).
    pub(crate) async fn ce_anomalies(
        &self,
        period: crate::domain::period::Period,
    ) -> Result<Vec<crate::domain::anomaly::Anomaly>, ToolError> {
        let Some(aws) = &self.sources.aws else {
            return Ok(vec![]);
        };
        aws.insights.anomalies(period).await
    }

    /// The spend source for a request: the one asked for, or the default.
    pub(crate) fn spend_source(
        &self,
        requested: Option<SourceInput>,
    ) -> Result<Arc<dyn SpendSource>, ToolError> {
        let athena = &self.sources.athena;
        match (requested, &self.cur, athena) {
            (Some(SourceInput::Live), _, _) => match &self.live {
                Some(live) => Ok(live.clone()),
                None => Err(ToolError::Unsupported(
                    "the live source is not configured; start the server with --invocation-logs PATH|s3://bucket/prefix (where Bedrock model invocation logging delivers)".into(),
                )),
            },
            (None | Some(SourceInput::Cur), Some(cur), _) => Ok(cur.clone()),
            (None, None, Some(athena)) | (Some(SourceInput::Athena), _, Some(athena)) => {
                Ok(athena.clone())
            }
            (None | Some(SourceInput::CostExplorer), _, _) => Ok(self.sources.cost_explorer.clone()),
            (Some(SourceInput::Cur), None, _) => Err(ToolError::Unsupported(
                "the CUR source is not configured; start the server with --cur PATH (a CUR 2.0 Parquet folder or s3://bucket/prefix)".into(),
            )),
            (Some(SourceInput::Athena), _, None) => Err(ToolError::Unsupported(
                "the Athena source is not configured; start the server with --athena-database, --athena-table and --athena-output".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Account;

    #[tokio::test(flavor = "multi_thread")]
    async fn picked_accounts_are_kept_per_account_and_the_least_recent_is_dropped() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        let config = Cli::try_parse_from(["x", "--allow-role-arns", "arn:aws:iam::*:role/R"])
            .unwrap()
            .config;
        let app = Ctx::build(config).await.unwrap();
        let role = |i: usize| Account {
            role_arn: Some(format!("arn:aws:iam::{:012}:role/R", i)),
            ..Default::default()
        };
        let first = app.for_account(&role(0)).unwrap();
        let again = app.for_account(&role(0)).unwrap();
        assert!(
            Arc::ptr_eq(&first.ledger, &app.ledger),
            "the ledger is shared"
        );
        assert!(
            Arc::ptr_eq(&first.sources, &again.sources),
            "one set of sources per account"
        );
        assert!(!Arc::ptr_eq(&first.sources, &app.sources));
        for i in 1..MAX_ACCOUNTS {
            app.for_account(&role(i)).unwrap();
        }
        // Touch account 0 again: account 1 is now the least recently used.
        app.for_account(&role(0)).unwrap();
        app.for_account(&role(MAX_ACCOUNTS)).unwrap();
        let cache = app.accounts.as_ref().unwrap();
        cache.run_pending_tasks();
        assert_eq!(cache.entry_count(), MAX_ACCOUNTS as u64);
        assert!(cache.contains_key(&role(0)) && !cache.contains_key(&role(1)));
        assert!(cache.contains_key(&role(MAX_ACCOUNTS)));
    }
}
