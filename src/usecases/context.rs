//! The context every tool runs in: the configuration, the sources for the server's own AWS
//! account (and, per call, for an account the call picked), the caller, the ledger and the
//! budget policy. Held as `Arc`s, so the HTTP transport clones it per request cheaply. It knows
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
use crate::sources::ledger::Ledger;
use crate::sources::pricing::{PriceList, PriceSource, SnapshotPrices};
use crate::sources::registry::{AgentRegistry, AwsAgentRegistry};
use crate::sources::{Lazy, SourceInput, SpendSource, clients, lazy};

/// Budgets that apply to Bedrock, and the names of the ones skipped.
type BudgetList = (Vec<crate::sources::budgets::Budget>, Vec<String>);

/// The context of a tool call: configuration, sources, caller.
#[derive(Clone)]
pub struct App {
    pub(crate) config: Arc<Config>,
    pub(crate) cost_explorer: Option<Arc<dyn SpendSource>>,
    pub(crate) cur: Option<Arc<dyn SpendSource>>,
    pub(crate) athena: Option<Arc<dyn SpendSource>>,
    pub(crate) directory: Option<Arc<dyn PrincipalDirectory>>,
    pub(crate) allocation: Option<Arc<dyn AllocationTags>>,
    pub(crate) registry: Option<Arc<dyn AgentRegistry>>,
    pub(crate) prices: Arc<dyn PriceSource>,
    pub(crate) identity: Arc<dyn Identity>,
    pub(crate) ledger: Arc<Ledger>,
    /// The local budget policy: the file's, read at start, or the demo organisation's, sized
    /// on first use (its line items are not generated at start-up).
    policy: Arc<std::sync::OnceLock<Option<Arc<PolicyFile>>>>,
    budgets: Option<AwsBudgets>,
    /// The AWS configuration, loaded on first use (None in demo mode).
    sdk: Option<Lazy<aws_config::SdkConfig>>,
    /// AWS budgets, kept five minutes: budget checks in a loop make no AWS call. One fetch at a
    /// time (moka's single flight), no lock held across it.
    budget_cache: moka::future::Cache<(), BudgetList>,
    /// Cost Explorer's forecast and anomaly detection, with the shared paid-request cap.
    insights: Option<CeInsights>,
    /// The accounts tool calls picked so far, each with its own sources (`for_account`).
    /// None in a context a call picked (it does not pick again).
    accounts: Option<Arc<AccountApps>>,
}

fn budget_cache() -> moka::future::Cache<(), BudgetList> {
    moka::future::Cache::builder()
        .max_capacity(1)
        .time_to_live(std::time::Duration::from_secs(300))
        .build()
}

/// The accounts tool calls picked, each built once (moka: one build at a time per account,
/// the least recently used dropped beyond [`MAX_ACCOUNTS`]).
type AccountApps = moka::sync::Cache<crate::accounts::Account, App>;

fn account_apps() -> Arc<AccountApps> {
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

/// The sources that call one AWS account: the server's own, or one a tool call picked
/// (`accounts`). The paid-request cap is shared by all of them.
struct AccountSources {
    cost_explorer: Arc<dyn SpendSource>,
    athena: Option<Arc<dyn SpendSource>>,
    directory: Arc<dyn PrincipalDirectory>,
    allocation: Arc<dyn AllocationTags>,
    identity: Arc<dyn Identity>,
    budgets: AwsBudgets,
    registry: Arc<dyn AgentRegistry>,
    insights: CeInsights,
}

impl AccountSources {
    /// Every client is built on first use: no AWS call, no credential lookup happens here.
    fn build(
        config: &Config,
        sdk: &Lazy<aws_config::SdkConfig>,
        cap: Arc<RequestCap>,
    ) -> Result<AccountSources, String> {
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
        Ok(AccountSources {
            cost_explorer: Arc::new(CostExplorer::new(client.clone(), cap.clone(), ttl)),
            athena,
            directory: Arc::new(Iam::new(
                lazy(move || clients::iam(&iam_sdk)),
                std::time::Duration::from_secs(config.iam_cache_secs),
            )),
            allocation: Arc::new(CostAllocationTags::new(client.clone(), cap.clone())),
            identity: Arc::new(Sts::new(lazy(move || clients::sts(&sts_sdk)))),
            // Budgets is served from the partition's global region.
            budgets: AwsBudgets::new(lazy(move || clients::budgets(&budgets_sdk))),
            registry: Arc::new(AwsAgentRegistry::new(sdk.clone())),
            insights: CeInsights::new(client, cap),
        })
    }
}

impl App {
    /// Build the sources the configuration asks for. Loads the AWS configuration
    /// (lazily: no network call happens here) unless in demo mode.
    pub async fn build(config: Config) -> Result<App, String> {
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
        let mut app = App {
            config: Arc::new(config),
            cost_explorer: None,
            cur,
            athena: None,
            directory: None,
            allocation: None,
            registry: None,
            prices,
            identity: Arc::new(DemoIdentity),
            ledger,
            policy,
            budgets: None,
            sdk: None,
            insights: None,
            budget_cache: budget_cache(),
            accounts: Some(account_apps()),
        };
        match sdk {
            None => {
                app.cost_explorer = Some(Arc::new(DemoCostExplorer::new(
                    crate::domain::clock::today(),
                )));
                app.directory = Some(Arc::new(DemoDirectory::new()));
                app.allocation = Some(Arc::new(DemoAllocationTags::default()));
                app.registry = Some(Arc::new(crate::sources::demo::DemoRegistry::new()));
            }
            Some(sdk) => {
                // One hourly budget for every paid Cost Explorer request, whichever account.
                let cap = Arc::new(RequestCap::with_per_caller(
                    app.config.ce_max_requests_per_hour,
                    app.config.ce_max_requests_per_caller_per_hour,
                ));
                let sources = AccountSources::build(&app.config, &sdk, cap)?;
                app.use_account(sources, sdk);
            }
        }
        Ok(app)
    }

    /// Point the AWS-backed fields at one account's sources.
    fn use_account(&mut self, s: AccountSources, sdk: Lazy<aws_config::SdkConfig>) {
        self.cost_explorer = Some(s.cost_explorer);
        self.athena = s.athena;
        self.directory = Some(s.directory);
        self.allocation = Some(s.allocation);
        self.identity = s.identity;
        self.budgets = Some(s.budgets);
        self.registry = Some(s.registry);
        self.insights = Some(s.insights);
        self.sdk = Some(sdk);
        self.budget_cache = budget_cache();
    }

    /// This server as seen from the account a tool call picked: its own Cost Explorer cache,
    /// IAM inventory, budgets, registry and Athena, the shared paid-request cap, ledger, prices
    /// and CUR export. Kept for the life of the process (the allow-lists bound how many).
    pub(crate) fn for_account(&self, account: &crate::accounts::Account) -> Result<App, ToolError> {
        account.check(&self.config)?;
        let Some(insights) = &self.insights else {
            return Err(ToolError::Unsupported(
                "per-call accounts need AWS mode".into(),
            ));
        };
        let build = || -> Result<App, ToolError> {
            let sdk = crate::accounts::deferred_sdk_config(
                account.clone(),
                self.config.role_session_name.clone(),
            );
            let sources = AccountSources::build(&self.config, &sdk, insights.cap().clone())
                .map_err(ToolError::Unsupported)?;
            let mut app = self.clone();
            app.use_account(sources, sdk);
            // A picked account does not pick again (and holding the cache would be a cycle).
            app.accounts = None;
            Ok(app)
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
    ) -> Result<Option<(App, crate::accounts::Account)>, ToolError> {
        match crate::accounts::Account::take(args)? {
            None => Ok(None),
            Some(account) => Ok(Some((self.for_account(&account)?, account))),
        }
    }

    /// The configured AWS region (us-east-1 in demo mode or when none is configured).
    pub(crate) fn config_region(&self) -> String {
        self.sdk
            .as_ref()
            .and_then(|s| s.region())
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
        let Some(budgets) = &self.budgets else {
            return Ok((vec![], vec![]));
        };
        let (warn, deny) = self
            .policy()
            .as_ref()
            .map(|p| (p.warn_percent, p.deny_percent))
            .unwrap_or((80.0, 100.0));
        self.budget_cache
            .try_get_with((), async {
                let arn = self.identity.caller().await?;
                let account = arn.split(':').nth(4).unwrap_or_default().to_string();
                budgets.list(&account, warn, deny).await
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
        let Some(insights) = &self.insights else {
            return Ok(None);
        };
        if end <= start {
            return Ok(None);
        }
        // Every Bedrock-family service with spend (AgentCore, Marketplace model editions, ...),
        // as the spend answers count them; the standard names when discovery is not possible.
        let services = match &self.cost_explorer {
            Some(ce) => ce.bedrock_service_names().await,
            None => None,
        }
        .unwrap_or_else(|| {
            crate::sources::cost_explorer::FALLBACK_BEDROCK_SERVICES
                .iter()
                .map(std::string::ToString::to_string)
                .collect()
        });
        insights.forecast(services, start, end).await
    }

    /// Cost Explorer anomalies touching Bedrock in the period (none in demo mode).
    pub(crate) async fn ce_anomalies(
        &self,
        period: crate::domain::period::Period,
    ) -> Result<Vec<crate::domain::anomaly::Anomaly>, ToolError> {
        let Some(insights) = &self.insights else {
            return Ok(vec![]);
        };
        insights.anomalies(period).await
    }

    /// The spend source for a request: the one asked for, or the default.
    pub(crate) fn spend_source(
        &self,
        requested: Option<SourceInput>,
    ) -> Result<Arc<dyn SpendSource>, ToolError> {
        match requested {
            None if self.cur.is_some() => Ok(self.cur.clone().expect("checked")),
            None if self.athena.is_some() => Ok(self.athena.clone().expect("checked")),
            Some(SourceInput::Cur) if self.cur.is_some() => Ok(self.cur.clone().expect("checked")),
            None | Some(SourceInput::CostExplorer) => self
                .cost_explorer
                .clone()
                .ok_or_else(|| ToolError::Unsupported("Cost Explorer is not configured".into())),
            Some(SourceInput::Cur) => Err(ToolError::Unsupported(
                "the CUR source is not configured; start the server with --cur PATH (a CUR 2.0 Parquet folder or s3://bucket/prefix)".into(),
            )),
            Some(SourceInput::Athena) if self.athena.is_some() => Ok(self.athena.clone().expect("checked")),
            Some(SourceInput::Athena) => Err(ToolError::Unsupported(
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
        let app = App::build(config).await.unwrap();
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
            Arc::ptr_eq(
                first.cost_explorer.as_ref().unwrap(),
                again.cost_explorer.as_ref().unwrap()
            ),
            "one set of sources per account"
        );
        assert!(!Arc::ptr_eq(
            first.cost_explorer.as_ref().unwrap(),
            app.cost_explorer.as_ref().unwrap()
        ));
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
