//! The MCP server type: one `App` for both transports, holding the sources as
//! `Arc`s so the HTTP transport can clone it per request cheaply.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    ErrorData, GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool_handler};

use crate::config::Config;
use crate::error::ToolError;
use crate::sources::athena::{Athena, AthenaSettings};
use crate::sources::budgets::PolicyFile;
use crate::sources::{Lazy, SpendSource, clients, lazy};

/// Budgets that apply to Bedrock, and the names of the ones skipped.
type BudgetList = (Vec<crate::sources::budgets::Budget>, Vec<String>);
use crate::sources::ce_guard::RequestCap;
use crate::sources::cost_allocation::{AllocationTags, CostAllocationTags};
use crate::sources::cost_explorer::{CacheTtl, CostExplorer};
use crate::sources::cur::{CurLocation, CurOrigin, LazyCur};
use crate::sources::demo::{DemoAllocationTags, DemoCostExplorer, DemoDirectory};
use crate::sources::iam::{Iam, PrincipalDirectory};
use crate::sources::identity::{DemoIdentity, Identity, Sts};
use crate::sources::ledger::Ledger;
use crate::sources::pricing::{PriceList, PriceSource, SnapshotPrices};
use crate::sources::registry::{AgentRegistry, AwsAgentRegistry};
use crate::tools::schema::{check_input, compact_input, compact_output};
use crate::tools::spend::SourceInput;

const INSTRUCTIONS: &str = "Answers who spends what on Amazon Bedrock, per IAM principal. \
bedrock_spend: spend for a period grouped by principal tag (tag:<key>), service, usage type or region on Cost Explorer, \
and by principal ARN, role, session, model and token kind on CUR. Periods: start inclusive, end exclusive. \
Untagged spend is always shown. Billing data lags 24-48 h; every answer says as_of and estimated. \
Cost Explorer requests cost $0.01 each; answers are cached, so repeat questions are free. \
Prompts who_is_spending, tag_hygiene_report and before_i_run_this_job chain the tools for common asks.";

/// Added to the instructions when tool calls may pick an AWS account.
const ACCOUNT_INSTRUCTIONS: &str = " AWS-backed tools take optional profile (AWS config profile), \
region (GovCloud/China regions select their partition) and role_arn (IAM role to assume), allowed \
values in their schemas, to answer for another account; omit them for the server's own.";

/// The server: configuration, sources and the tool router.
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
    budgets: Option<Lazy<aws_sdk_budgets::Client>>,
    /// The AWS configuration, loaded on first use (None in demo mode).
    sdk: Option<Lazy<aws_config::SdkConfig>>,
    /// AWS budgets, kept five minutes: budget checks in a loop make no AWS call. One fetch at a
    /// time (moka's single flight), no lock held across it.
    budget_cache: moka::future::Cache<(), BudgetList>,
    /// Cost Explorer client and the shared paid-request cap (anomaly detection).
    ce_client: Option<(Lazy<aws_sdk_costexplorer::Client>, Arc<RequestCap>)>,
    /// Shared: the HTTP transport clones `App` for every request.
    tool_router: Arc<ToolRouter<App>>,
    /// Per tool, how its arguments are checked (`coerce_args`).
    input_checks: Arc<std::collections::HashMap<String, InputCheck>>,
    /// The authenticated HTTP caller of this request (None: stdio or unauthenticated loopback).
    pub(crate) caller: Option<Arc<crate::auth::Caller>>,
    /// The accounts tool calls picked so far, each with its own sources (`for_account`).
    accounts: Arc<std::sync::Mutex<AccountApps>>,
}

fn budget_cache() -> moka::future::Cache<(), BudgetList> {
    moka::future::Cache::builder()
        .max_capacity(1)
        .time_to_live(std::time::Duration::from_secs(300))
        .build()
}

/// The accounts tool calls picked, with when each was last used.
type AccountApps = std::collections::HashMap<crate::accounts::Account, (App, std::time::Instant)>;

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
    budgets: Lazy<aws_sdk_budgets::Client>,
    registry: Arc<dyn AgentRegistry>,
    ce_client: (Lazy<aws_sdk_costexplorer::Client>, Arc<RequestCap>),
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
            budgets: lazy(move || clients::budgets(&budgets_sdk)),
            registry: Arc::new(AwsAgentRegistry::new(sdk.clone())),
            ce_client: (client, cap),
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
                        .or_else(|| crate::config::user_dir("XDG_CACHE_HOME", ".cache")),
                ))
            }
        };
        let ledger_path = config.ledger.clone().or_else(|| {
            if sdk.is_some() {
                crate::config::user_dir("XDG_STATE_HOME", ".local/state")
                    .map(|d| d.join("ledger.json"))
            } else {
                None
            }
        });
        let ledger = Arc::new(Ledger::open(
            ledger_path,
            chrono::Duration::hours(config.ledger_window_hours),
        ));
        let mut tool_router = Self::spend_router()
            + Self::principals_router()
            + Self::registry_router()
            + Self::budget_router()
            + Self::anomaly_router();
        if config.allow_writes {
            tool_router += Self::write_router();
        }
        let mut input_checks = std::collections::HashMap::new();
        for route in tool_router.map.values_mut() {
            let mut input = compact_input(&route.attr.input_schema);
            let mut check = check_input(&route.attr.input_schema);
            if crate::accounts::ACCOUNT_TOOLS.contains(&route.attr.name.as_ref()) {
                crate::accounts::advertise(Arc::make_mut(&mut input), &config);
                crate::accounts::advertise(Arc::make_mut(&mut check), &config);
            }
            input_checks.insert(
                route.attr.name.to_string(),
                InputCheck {
                    read: typed_reader(&route.attr.name, &route.attr.input_schema),
                    schema: check,
                },
            );
            route.attr.input_schema = input;
            if let Some(out) = &route.attr.output_schema {
                route.attr.output_schema = Some(compact_output(out));
            }
        }
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
            ce_client: None,
            budget_cache: budget_cache(),
            tool_router: Arc::new(tool_router),
            input_checks: Arc::new(input_checks),
            caller: None,
            accounts: Arc::default(),
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
        self.ce_client = Some(s.ce_client);
        self.sdk = Some(sdk);
        self.budget_cache = budget_cache();
    }

    /// This server as seen from the account a tool call picked: its own Cost Explorer cache,
    /// IAM inventory, budgets, registry and Athena, the shared paid-request cap, ledger, prices
    /// and CUR export. Kept for the life of the process (the allow-lists bound how many).
    pub(crate) fn for_account(&self, account: &crate::accounts::Account) -> Result<App, ToolError> {
        account.check(&self.config)?;
        let mut cache = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if let Some((app, used)) = cache.get_mut(account) {
            *used = now;
            return Ok(app.clone());
        }
        if cache.len() >= MAX_ACCOUNTS
            && let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            cache.remove(&oldest);
        }
        let Some((_, cap)) = &self.ce_client else {
            return Err(ToolError::Unsupported(
                "per-call accounts need AWS mode".into(),
            ));
        };
        let sdk = crate::accounts::deferred_sdk_config(
            account.clone(),
            self.config.role_session_name.clone(),
        );
        let sources = AccountSources::build(&self.config, &sdk, cap.clone())
            .map_err(ToolError::Unsupported)?;
        let mut app = self.clone();
        app.use_account(sources, sdk);
        app.caller = None;
        // A picked account does not pick again (and holding the map would be a cycle).
        app.accounts = Arc::default();
        cache.insert(account.clone(), (app.clone(), now));
        Ok(app)
    }

    /// Convert arguments sent as JSON text or strings to the types the tool declares
    /// (`tools::lenient`), then check them against the tool's input schema, so that a wrong
    /// argument is refused with its name, the forms it takes and an example before the tool
    /// reads its input. Last, the arguments are read as the tool will read them: anything the
    /// schema lets through but the tool's type refuses is named by its path too (never serde's
    /// bare "failed to deserialize parameters").
    pub fn coerce_args(
        &self,
        tool: &str,
        args: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), ToolError> {
        let Some(InputCheck { schema, read }) = self.input_checks.get(tool) else {
            return Ok(());
        };
        crate::tools::lenient::coerce(args, schema);
        let mut own = args.clone();
        if crate::accounts::ACCOUNT_TOOLS.contains(&tool) {
            // Taken out before the tool reads its input and checked there (`for_call`).
            for k in ["profile", "region", "role_arn"] {
                own.remove(k);
            }
        }
        crate::tools::lenient::check(&own, schema).map_err(ToolError::invalid)?;
        match read {
            Some(read) => read(own).map_err(|(path, e)| {
                ToolError::invalid(crate::tools::lenient::explain_serde(&path, &e, schema))
            }),
            None => Ok(()),
        }
    }

    /// Run a tool for the account its arguments name (`profile`, `region`, `role_arn`, taken
    /// out of `args`), or for the server's own when they name none.
    pub(crate) fn for_call(
        &self,
        tool: &str,
        args: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<(App, crate::accounts::Account)>, ToolError> {
        if !crate::accounts::ACCOUNT_TOOLS.contains(&tool) {
            return Ok(None);
        }
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
            .map(|r| r.to_string())
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
        let Some(client) = &self.budgets else {
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
                crate::sources::budgets::aws_budgets(client, &account, warn, deny).await
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
        use aws_sdk_costexplorer::types::{
            DateInterval, Dimension, DimensionValues, Expression, Granularity, Metric,
        };
        let Some((client, cap)) = &self.ce_client else {
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
                .map(|s| s.to_string())
                .collect()
        });
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

    /// Cost Explorer anomalies touching Bedrock in the period (none in demo mode).
    pub(crate) async fn ce_anomalies(
        &self,
        period: crate::domain::period::Period,
    ) -> Result<Vec<crate::tools::anomalies::Anomaly>, ToolError> {
        use aws_sdk_costexplorer::types::AnomalyDateInterval;
        let Some((client, cap)) = &self.ce_client else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            cap.take()?;
            let interval = AnomalyDateInterval::builder()
                .start_date(period.start.to_string())
                .end_date(period.end.to_string())
                .build()
                .map_err(|e| ToolError::invalid(e.to_string()))?;
            let page = client
                .get_anomalies()
                .date_interval(interval)
                .max_results(100)
                .set_next_page_token(token.clone())
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
                out.push(crate::tools::anomalies::Anomaly {
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
                        .and_then(|i| i.total_expected_spend())
                        .unwrap_or(0.0),
                    actual: a
                        .impact()
                        .and_then(|i| i.total_actual_spend())
                        .unwrap_or(0.0),
                    score: a.anomaly_score().map(|s| s.max_score()).unwrap_or(0.0),
                    drivers: a
                        .root_causes()
                        .iter()
                        .filter_map(|r| {
                            r.usage_type().map(|u| crate::tools::anomalies::Driver {
                                model: u.to_string(),
                                amount: 0.0,
                            })
                        })
                        .collect(),
                    budget_threatened: None,
                });
            }
            token = page
                .next_page_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Does this tool change anything? Every listed tool not annotated read-only does (fail
    /// closed: a new tool without the annotation needs the write scope). An unknown name runs
    /// nothing: rmcp answers that the tool does not exist.
    pub(crate) fn writes(&self, tool: &str) -> bool {
        self.tool_router.map.get(tool).is_some_and(|r| {
            r.attr.annotations.as_ref().and_then(|a| a.read_only_hint) != Some(true)
        })
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

/// How one tool's arguments are checked before it reads them.
#[derive(Clone)]
struct InputCheck {
    /// The input schema with ranges and examples (`tools::schema::check_input`).
    schema: Arc<rmcp::model::JsonObject>,
    /// Read the arguments as the tool's input type reads them.
    read: Option<Reader>,
}

/// Reads arguments as one input type; on failure, the path of the argument refused (`top_n`,
/// `period.end`) and serde's reason.
type Reader = fn(serde_json::Map<String, serde_json::Value>) -> Result<(), (String, String)>;

/// The reader of `tool`'s input type (`tools::args`), if the tool still reads that type: the
/// schema its route declares (`declared`, before compaction) is that type's. A tool whose input
/// type changed is not read with a stale one (its arguments are still checked by schema).
fn typed_reader(tool: &str, declared: &rmcp::model::JsonObject) -> Option<Reader> {
    use crate::tools::args::*;
    fn read<T: serde::de::DeserializeOwned>(
        args: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), (String, String)> {
        serde_path_to_error::deserialize::<_, T>(serde_json::Value::Object(args))
            .map(|_| ())
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))
    }
    fn pick<T: serde::de::DeserializeOwned + schemars::JsonSchema + 'static>(
        declared: &rmcp::model::JsonObject,
    ) -> Option<Reader> {
        rmcp::handler::server::common::schema_for_input::<T>()
            .is_ok_and(|s| *s == *declared)
            .then_some(read::<T> as Reader)
    }
    match tool {
        "bedrock_spend" => pick::<SpendInput>(declared),
        "spend_anomalies" => pick::<AnomalyInput>(declared),
        "estimate_cost" => pick::<EstimateInput>(declared),
        "check_budget" => pick::<CheckInput>(declared),
        "untagged_principals" => pick::<UntaggedInput>(declared),
        "cost_allocation_tags" => pick::<TagsInput>(declared),
        "search_registry" => pick::<SearchInput>(declared),
        "get_registry_record" => pick::<GetRecordInput>(declared),
        "activate_cost_allocation_tags" => pick::<ActivateInput>(declared),
        "tag_principal" => pick::<TagPrincipalInput>(declared),
        _ => None,
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for App {
    /// Tools run as the authenticated caller, whose visibility narrows their answers.
    async fn call_tool(
        &self,
        mut request: rmcp::model::CallToolRequestParams,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, rmcp::ErrorData> {
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let caller = parts
            .and_then(|p| p.extensions.get::<crate::auth::Caller>())
            .cloned();
        let note = parts
            .and_then(|p| p.extensions.get::<crate::auth::middleware::RequestNote>())
            .cloned();
        // Authorisation happens here, on the name rmcp decoded (escapes, duplicate keys and
        // all), never on a second reading of the body.
        if let Some(n) = &note {
            n.call(
                &request.name,
                &serde_json::to_string(&context.id).unwrap_or_default(),
            );
        }
        if let Some(c) = &caller {
            if self.writes(&request.name) && !c.has_scope(crate::auth::SCOPE_WRITE) {
                if let Some(n) = &note {
                    n.denied(&request.name, crate::auth::SCOPE_WRITE);
                }
                return Ok(
                    crate::tools::respond::<()>(Err(ToolError::Forbidden(format!(
                        "{} changes the AWS account and needs scope {}; this caller has {}",
                        request.name,
                        crate::auth::SCOPE_WRITE,
                        c.scopes.join(" ")
                    ))))
                    .into(),
                );
            }
            // A caller whose visibility grants nothing may still price a call (public prices).
            if request.name != "estimate_cost"
                && let Some(why) = c
                    .visibility
                    .as_ref()
                    .and_then(crate::domain::visibility::Visibility::grants_nothing)
            {
                return Ok(
                    crate::tools::respond::<()>(Err(ToolError::Forbidden(format!(
                        "{why}. Ask the server's operator for a token that names what you may see"
                    ))))
                    .into(),
                );
            }
        }
        if let Some(args) = request.arguments.as_mut()
            && let Err(e) = self.coerce_args(&request.name, args)
        {
            return Ok(crate::tools::respond::<()>(Err(e)).into());
        }
        // A call may pick the AWS account it runs in (`accounts`).
        let picked = match request.arguments.as_mut() {
            Some(args) => match self.for_call(&request.name, args) {
                Ok(picked) => picked,
                Err(e) => return Ok(crate::tools::respond::<()>(Err(e)).into()),
            },
            None => None,
        };
        let account = picked.as_ref().map(|(_, a)| a.clone());
        let tool = request.name.clone();
        // A cancelled request (the client went away, or the HTTP deadline dropped the stream)
        // drops the tool's work with it, whatever the tool does.
        let ct = context.ct.clone();
        let run = async move {
            match (picked, caller) {
                (None, None) => {
                    let tcc =
                        rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
                    self.tool_router.call(tcc).await
                }
                (picked, caller) => {
                    let mut app = picked.map(|(app, _)| app).unwrap_or_else(|| self.clone());
                    let payer: Option<Arc<str>> =
                        caller.as_ref().map(|c| Arc::from(c.name.as_str()));
                    app.caller = caller.map(Arc::new);
                    let tcc =
                        rmcp::handler::server::tool::ToolCallContext::new(&app, request, context);
                    match payer {
                        // Paid requests this call causes count against its caller's share.
                        Some(p) => {
                            crate::sources::ce_guard::PAYER
                                .scope(p, app.tool_router.call(tcc))
                                .await
                        }
                        None => app.tool_router.call(tcc).await,
                    }
                }
            }
        };
        let mut result = tokio::select! {
            r = run => r,
            () = ct.cancelled() => Err(rmcp::ErrorData::internal_error("the request was cancelled", None)),
        };
        if let (Some(account), Ok(rmcp::model::CallToolResponse::Complete(r))) =
            (account, result.as_mut())
        {
            crate::accounts::annotate(r, &account);
        }
        // The last net: rmcp's own "failed to deserialize parameters" (a tool `typed_check` does
        // not know) is worded as every other input error, with the tool's arguments.
        if let Ok(rmcp::model::CallToolResponse::Complete(r)) = result.as_mut()
            && r.is_error == Some(true)
            && let Some(why) = r
                .content
                .first()
                .and_then(|c| c.as_text())
                .and_then(|t| t.text.strip_prefix("failed to deserialize parameters:"))
                .map(|w| w.trim().to_string())
        {
            let text = match self.input_checks.get(tool.as_ref() as &str) {
                Some(check) => crate::tools::lenient::explain_serde("", &why, &check.schema),
                None => why,
            };
            r.content = vec![rmcp::model::ContentBlock::text(
                ToolError::invalid(text).to_string(),
            )];
        }
        result
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions({
            let c = &self.config;
            if c.allow_profiles.is_empty()
                && c.allow_regions.is_empty()
                && c.allow_role_arns.is_empty()
            {
                INSTRUCTIONS.to_string()
            } else {
                format!("{INSTRUCTIONS}{ACCOUNT_INSTRUCTIONS}")
            }
        })
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(crate::prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        crate::prompts::get(
            &request.name,
            request.arguments.as_ref(),
            &self.config.default_tag_key,
            &self.config.required_tag_keys,
        )
        .map(Into::into)
        .map_err(|e| ErrorData::invalid_params(e, None))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(crate::resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let value = match request.uri.as_str() {
            crate::resources::CONFIG_URI => self.effective_config(),
            crate::resources::REQUIRED_TAGS_URI => self.required_tags_policy().await,
            other => {
                return Err(ErrorData::resource_not_found(
                    format!(
                        "no resource '{other}'; read {} or {}",
                        crate::resources::CONFIG_URI,
                        crate::resources::REQUIRED_TAGS_URI
                    ),
                    None,
                ));
            }
        };
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri).with_mime_type("application/json"),
        ])
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Account;

    #[tokio::test(flavor = "multi_thread")]
    async fn every_tool_but_the_paged_anomalies_is_read_with_its_own_type() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        let config = Cli::try_parse_from(["x", "--demo", "--allow-writes"])
            .unwrap()
            .config;
        let app = App::build(config).await.unwrap();
        let unread: Vec<&str> = app
            .input_checks
            .iter()
            .filter(|(_, c)| c.read.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        // list_registries takes no arguments; spend_anomalies reads `tools::anomalies::
        // AnomalyPageInput` until its paging fields move into `args::AnomalyInput`.
        for name in unread {
            assert!(
                ["list_registries", "spend_anomalies"].contains(&name),
                "{name} is not read with its input type"
            );
        }
    }

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
        let cache = app.accounts.lock().unwrap();
        assert_eq!(cache.len(), MAX_ACCOUNTS);
        assert!(cache.contains_key(&role(0)) && !cache.contains_key(&role(1)));
        assert!(cache.contains_key(&role(MAX_ACCOUNTS)));
    }
}
