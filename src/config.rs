//! One configuration, from flags and `BEDROCK_COST_MCP_*` environment
//! variables, validated at startup. AWS itself is configured the standard way
//! (profiles, SSO, `AWS_REGION`, `AWS_ENDPOINT_URL[_<SERVICE>]`).

use std::time::Duration;

use clap::Args;

/// Settings shared by every subcommand (listed after each subcommand's own options).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server options (every subcommand)")]
pub struct Config {
    /// Answer from bundled demo data (a fictional organisation); no AWS account needed.
    #[arg(long, env = "BEDROCK_COST_MCP_DEMO", global = true)]
    pub demo: bool,

    /// Pin the calendar clock: answer as if now were this UTC time (RFC 3339, e.g.
    /// 2026-03-01T09:00:00Z, or a date, read as noon UTC); the clock runs on from there. Periods,
    /// forecasts, ledger and anomaly windows, rollup months and the demo data follow it; token
    /// expiry and cache lifetimes keep real time. Every answer's notes say when it is set.
    #[arg(long, env = "BEDROCK_COST_MCP_NOW", global = true, value_name = "TIME")]
    pub now: Option<String>,

    /// Principal tag key grouped by when a question names none (without the `iamPrincipal/` prefix).
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_DEFAULT_TAG_KEY",
        default_value = "team",
        global = true
    )]
    pub default_tag_key: String,

    /// Most paid Cost Explorer requests ($0.01 each) in any rolling hour; cached answers are free.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_CE_MAX_REQUESTS_PER_HOUR",
        default_value_t = 60,
        global = true
    )]
    pub ce_max_requests_per_hour: usize,

    /// Most paid Cost Explorer requests one authenticated HTTP caller may cause in any rolling
    /// hour (0: no per-caller limit, only --ce-max-requests-per-hour).
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_CE_MAX_REQUESTS_PER_CALLER_PER_HOUR",
        default_value_t = 0,
        global = true
    )]
    pub ce_max_requests_per_caller_per_hour: usize,

    /// Seconds to keep Cost Explorer answers for periods that reach into the current month.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_CACHE_TTL_OPEN_SECS",
        default_value_t = 900,
        global = true
    )]
    pub cache_ttl_open_secs: u64,

    /// Seconds to keep Cost Explorer answers for periods that ended before this month.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_CACHE_TTL_CLOSED_SECS",
        default_value_t = 86_400,
        global = true
    )]
    pub cache_ttl_closed_secs: u64,

    /// CUR 2.0 Parquet export to query with the embedded engine: a local folder or s3://bucket/prefix
    /// (the export folder holding data/BILLING_PERIOD=YYYY-MM/, or the data/ folder itself).
    #[arg(long, env = "BEDROCK_COST_MCP_CUR", global = true)]
    pub cur: Option<String>,

    /// Bedrock model invocation logs for the live layer (spend minutes after each call): a local
    /// folder or s3://bucket/prefix holding the JSON-lines objects Bedrock delivers
    /// (AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/). Enables
    /// `source: "live"`, the unbilled estimate beside billed answers, and live spend in check_budget.
    #[arg(long, env = "BEDROCK_COST_MCP_INVOCATION_LOGS", global = true)]
    pub invocation_logs: Option<String>,

    /// The CloudWatch Logs group Bedrock model invocation logging writes to (in the configured
    /// region), read with Logs Insights queries that aggregate on AWS's side (billed per GB
    /// scanned); instead of --invocation-logs.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_INVOCATION_LOG_GROUP",
        global = true,
        conflicts_with = "invocation_logs"
    )]
    pub invocation_log_group: Option<String>,

    /// Most Logs Insights queries (each billed by the data it scans) in any rolling hour; answers
    /// are cached (5 minutes for windows reaching the last two hours, a day for older ones).
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_INVOCATION_LOG_MAX_QUERIES_PER_HOUR",
        default_value_t = 60,
        global = true
    )]
    pub invocation_log_max_queries_per_hour: u32,

    /// Where month rollups of the CUR export are kept: the first question about a month scans
    /// its files once into a small Parquet summary, later questions read that (default under
    /// the user's cache directory; rebuilt when a delivery changes the month's files).
    #[arg(long, env = "BEDROCK_COST_MCP_CUR_ROLLUP_DIR", global = true)]
    pub cur_rollup_dir: Option<std::path::PathBuf>,

    /// Months of the CUR export smaller than this (MiB of Parquet) get no rollup: scanning them
    /// takes a fraction of a second already (32 MiB is about 1M line items, ~0.2 s).
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_CUR_ROLLUP_MIN_MB",
        default_value_t = 32,
        global = true
    )]
    pub cur_rollup_min_mb: u64,

    /// Answer every CUR question by scanning the export, without month rollups.
    #[arg(long, env = "BEDROCK_COST_MCP_NO_CUR_ROLLUPS", global = true)]
    pub no_cur_rollups: bool,

    /// A server keeps the rollups of this many recent billing months (this month and the ones
    /// before it) ready: built a few seconds after start and checked for new deliveries every
    /// 15 minutes, so even the first question reads a rollup (0: build on demand only).
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_CUR_PREBUILD_MONTHS",
        default_value_t = 2,
        global = true
    )]
    pub cur_prebuild_months: u32,

    /// Set by `serve`: a long-lived process (month rollups are built after the answer that
    /// found them missing; one-shot commands build them before answering).
    #[arg(skip)]
    pub serving: bool,

    /// Athena database holding the CUR 2.0 table (enables the `athena` source).
    #[arg(long, env = "BEDROCK_COST_MCP_ATHENA_DATABASE", global = true)]
    pub athena_database: Option<String>,

    /// Athena CUR 2.0 table name.
    #[arg(long, env = "BEDROCK_COST_MCP_ATHENA_TABLE", global = true)]
    pub athena_table: Option<String>,

    /// Athena workgroup.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_ATHENA_WORKGROUP",
        default_value = "primary",
        global = true
    )]
    pub athena_workgroup: String,

    /// Athena data catalog.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_ATHENA_CATALOG",
        default_value = "AwsDataCatalog",
        global = true
    )]
    pub athena_catalog: String,

    /// s3:// location for Athena query results (default: the workgroup's setting).
    #[arg(long, env = "BEDROCK_COST_MCP_ATHENA_OUTPUT", global = true)]
    pub athena_output: Option<String>,

    /// The CUR table's billing-period partition column; empty for an unpartitioned table.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_ATHENA_PARTITION_COLUMN",
        default_value = "billing_period",
        global = true
    )]
    pub athena_partition_column: String,

    /// Stop an Athena query that runs longer than this many seconds.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_ATHENA_TIMEOUT_SECS",
        default_value_t = 300,
        global = true
    )]
    pub athena_timeout_secs: u64,

    /// Principal tag keys every IAM user and role must carry (comma-separated, without iamPrincipal/).
    /// Default: the active iamPrincipal/* cost-allocation tag keys.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_REQUIRED_TAG_KEYS",
        value_delimiter = ',',
        global = true
    )]
    pub required_tag_keys: Vec<String>,

    /// List and allow the write tools (activate_cost_allocation_tags, tag_principal); each still needs confirm: true.
    #[arg(long, env = "BEDROCK_COST_MCP_ALLOW_WRITES", global = true)]
    pub allow_writes: bool,

    /// AWS profiles a tool call may pick with its `profile` input (comma-separated); empty: none.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_ALLOW_PROFILES",
        value_delimiter = ',',
        global = true
    )]
    pub allow_profiles: Vec<String>,

    /// AWS regions a tool call may pick with its `region` input (comma-separated); empty: none.
    /// GovCloud (us-gov-*) and China (cn-*) regions select their partition.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_ALLOW_REGIONS",
        value_delimiter = ',',
        global = true
    )]
    pub allow_regions: Vec<String>,

    /// IAM role ARNs a tool call may assume with its `role_arn` input (comma-separated; `*` matches
    /// within the ARN, e.g. arn:aws:iam::*:role/FinOpsRead); empty: none.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_ALLOW_ROLE_ARNS",
        value_delimiter = ',',
        global = true
    )]
    pub allow_role_arns: Vec<String>,

    /// Session name used when assuming a role picked with `role_arn` (shows in CloudTrail).
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_ROLE_SESSION_NAME",
        default_value = "bedrock-cost-mcp",
        global = true
    )]
    pub role_session_name: String,

    /// Seconds to keep the IAM inventory (paging through a report reuses it).
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_IAM_CACHE_SECS",
        default_value_t = 300,
        global = true
    )]
    pub iam_cache_secs: u64,

    /// Most hits search_registry returns across all registries.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_REGISTRY_MAX_RESULTS",
        default_value_t = 50,
        global = true
    )]
    pub registry_max_results: usize,

    /// Local budget policy (TOML): limits per tag value, role or principal glob, thresholds, default.
    #[arg(long, env = "BEDROCK_COST_MCP_BUDGET_POLICY", global = true)]
    pub budget_policy: Option<std::path::PathBuf>,

    /// Where check_budget keeps its unbilled-estimate ledger (JSON); default under the user's state directory.
    #[arg(long, env = "BEDROCK_COST_MCP_LEDGER", global = true)]
    pub ledger: Option<std::path::PathBuf>,

    /// Hours an estimate counts as not yet billed (billing lags 24-48 h).
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_LEDGER_WINDOW_HOURS",
        default_value_t = 48,
        global = true
    )]
    pub ledger_window_hours: i64,

    /// Where Price List answers are cached (default under the user's cache directory).
    #[arg(long, env = "BEDROCK_COST_MCP_PRICE_CACHE_DIR", global = true)]
    pub price_cache_dir: Option<std::path::PathBuf>,

    /// Log filter for stderr (tracing EnvFilter syntax), e.g. `info` or `bedrock_cost_mcp=debug`.
    #[arg(
        long,
        env = "BEDROCK_COST_MCP_LOG",
        default_value = "bedrock_cost_mcp=info,rmcp=warn",
        global = true
    )]
    pub log: String,
}

impl Config {
    /// Check values that clap cannot.
    /// Empty values are no values: a client or bundle that passes an unset setting as an empty
    /// variable (`BEDROCK_COST_MCP_CUR=`) gets the default, not a folder named "".
    pub fn normalize(&mut self) {
        for v in [
            &mut self.cur,
            &mut self.invocation_logs,
            &mut self.invocation_log_group,
            &mut self.athena_database,
            &mut self.athena_table,
            &mut self.athena_output,
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                *v = None;
            }
        }
        if self
            .budget_policy
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            self.budget_policy = None;
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(now) = &self.now {
            crate::domain::clock::parse(now).map_err(|e| format!("--now: {e}"))?;
        }
        if !crate::domain::group::valid_tag_key(&self.default_tag_key) {
            return Err(format!(
                "--default-tag-key '{}' is not a valid tag key",
                self.default_tag_key
            ));
        }
        if self.athena_database.is_some() != self.athena_table.is_some() {
            return Err("--athena-database and --athena-table go together".into());
        }
        if self.ledger_window_hours < 1 {
            return Err("--ledger-window-hours must be at least 1".into());
        }
        validate_allow_lists(self)?;
        if self.ce_max_requests_per_hour == 0 {
            return Err("--ce-max-requests-per-hour must be at least 1".into());
        }
        Ok(())
    }

    /// The pinned calendar time, if `--now` is set (checked by [`Config::validate`]).
    pub fn pinned_now(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.now
            .as_deref()
            .and_then(|s| crate::domain::clock::parse(s).ok())
    }

    /// The month-rollup folder in effect (None: rollups off, or no cache directory known).
    pub fn cur_rollups(&self) -> Option<std::path::PathBuf> {
        if self.no_cur_rollups {
            return None;
        }
        self.cur_rollup_dir.clone().or_else(|| {
            crate::sources::user_dir("XDG_CACHE_HOME", ".cache").map(|d| d.join("cur-rollups"))
        })
    }

    /// How month rollups are kept (None: off).
    pub fn cur_rollup_settings(&self) -> Option<crate::sources::cur::RollupSettings> {
        self.cur_rollups()
            .map(|dir| crate::sources::cur::RollupSettings {
                dir,
                min_bytes: self.cur_rollup_min_mb << 20,
                build: if self.serving {
                    crate::sources::cur_rollup::Build::Background
                } else {
                    crate::sources::cur_rollup::Build::Never
                },
            })
    }

    pub fn ttl_open(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_open_secs)
    }

    pub fn ttl_closed(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_closed_secs)
    }
}

/// Check the allow-lists at startup, so a typo fails there and not in a tool call.
pub fn validate_allow_lists(config: &Config) -> Result<(), String> {
    if let Some(p) = config.allow_profiles.iter().find(|p| {
        p.trim().is_empty() || p.chars().any(|c| c.is_whitespace() || c == '[' || c == ']')
    }) {
        return Err(format!(
            "--allow-profiles: '{p}' is not a profile name (names from ~/.aws/config, comma-separated)"
        ));
    }
    if let Some(r) = config
        .allow_regions
        .iter()
        .find(|r| !crate::domain::names::valid_region(r))
    {
        return Err(format!(
            "--allow-regions: '{r}' is not an AWS region (e.g. us-east-1, us-gov-west-1, cn-northwest-1)"
        ));
    }
    if let Some(a) = config
        .allow_role_arns
        .iter()
        .find(|a| !crate::domain::names::valid_role_arn(a, true))
    {
        return Err(format!(
            "--allow-role-arns: '{a}' is not an IAM role ARN or pattern (e.g. arn:aws:iam::111122223333:role/FinOpsRead or arn:aws:iam::*:role/FinOpsRead)"
        ));
    }
    if config.role_session_name.len() < 2
        || config.role_session_name.len() > 64
        || !config
            .role_session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "=,.@_-".contains(c))
    {
        return Err(format!(
            "--role-session-name '{}' must be 2-64 characters of letters, digits and =,.@_-",
            config.role_session_name
        ));
    }
    Ok(())
}
