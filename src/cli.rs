//! Command line: `serve` (stdio, or streamable HTTP with `--http`), and
//! commands for people that answer with the same tools: `spend`, `untagged`,
//! `check-budget`, `registry search`, `call`.
//!
//! Exit codes: 0 answered, 1 a failure upstream (AWS, credentials), 2 bad
//! input (a wrong flag or argument, or a question the configured sources cannot answer, such
//! as `--by principal --source cost_explorer`), 3 `check-budget` said deny.

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "bedrock-cost-mcp",
    version,
    about = "MCP server: who is spending what on Amazon Bedrock, per IAM principal"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP on stdio (default) or streamable HTTP (`--http 127.0.0.1:8000`, endpoint `/mcp`).
    Serve(crate::transport::http::HttpSettings),
    /// Check the setup (credentials, region, endpoints, each tool's permissions) and say what to fix.
    Doctor(crate::doctor::DoctorArgs),
    /// Plan (and with --apply make) what the answers need: the CUR 2.0 export, the principal tags
    /// and their backfill, the Athena table, invocation logging, the prevention policy; --undo STEP.
    Setup(SetupArgs),
    /// Bedrock spend, as the bedrock_spend tool answers it, printed as a table (or JSON).
    Spend(SpendArgs),
    /// Run any tool with JSON arguments and print its answer (a table, or --json):
    /// `bedrock-cost-mcp --demo call untagged_principals '{"include_no_spend": true}'`.
    Call(CallArgs),
    /// IAM users and roles missing required tag keys, ranked by Bedrock spend, with fixes (untagged_principals).
    Untagged(UntaggedArgs),
    /// allow / warn / deny before a Bedrock job (check_budget); exits 3 on deny.
    CheckBudget(CheckBudgetArgs),
    /// AWS Agent Registry: `registry search "invoice agent"`.
    Registry(RegistryArgs),
    /// Write a deterministic, realistic CUR 2.0 Parquet export (and truth.json) for tests, demos and benchmarks.
    GenerateCur(GenerateCurArgs),
    /// Read a token on stdin and print its SHA-256, the form --auth-tokens files store.
    HashToken,
    /// Exit 0 when a running HTTP server answers its /healthz (the container HEALTHCHECK: the
    /// image has no shell or curl), 1 otherwise.
    HealthCheck(HealthCheckArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct UntaggedArgs {
    /// Tag keys each principal needs, comma-separated (default: --required-tag-keys, else the active iamPrincipal/* keys).
    #[arg(long = "required-keys", value_delimiter = ',')]
    pub required_keys: Vec<String>,
    /// user, role or all.
    #[arg(long, default_value = "all")]
    pub kind: String,
    /// IAM path prefix, e.g. /agents/.
    #[arg(long)]
    pub path_prefix: Option<String>,
    /// Name glob, e.g. '*Agent*'.
    #[arg(long)]
    pub name: Option<String>,
    /// Spend period for ranking: last_30_days, this_month, last_month, last_7_days.
    #[arg(long, default_value = "last_30_days")]
    pub period: String,
    /// Also list principals without spend.
    #[arg(long)]
    pub include_no_spend: bool,
    /// Page size.
    #[arg(long, default_value_t = 50)]
    pub max: u32,
    /// next_cursor from the previous answer.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Print the structured answer as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl UntaggedArgs {
    /// The `untagged_principals` arguments.
    pub fn tool_args(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "kind": self.kind,
            "period": self.period,
            "max_results": self.max,
        });
        if !self.required_keys.is_empty() {
            v["required_keys"] = serde_json::json!(self.required_keys);
        }
        if let Some(p) = &self.path_prefix {
            v["path_prefix"] = serde_json::json!(p);
        }
        if let Some(n) = &self.name {
            v["name"] = serde_json::json!(n);
        }
        if self.include_no_spend {
            v["include_no_spend"] = serde_json::json!(true);
        }
        if let Some(c) = &self.cursor {
            v["cursor"] = serde_json::json!(c);
        }
        v
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct CheckBudgetArgs {
    /// Principal ARN, role, or tag:<key>=<value> (default: the caller).
    #[arg(long)]
    pub who: Option<String>,
    /// Model id or name of the planned calls, e.g. "Claude Sonnet 4.6".
    #[arg(long)]
    pub model: Option<String>,
    /// Input tokens in all.
    #[arg(long)]
    pub input_tokens: Option<u64>,
    /// Output tokens in all.
    #[arg(long)]
    pub output_tokens: Option<u64>,
    #[arg(long)]
    pub cache_read_tokens: Option<u64>,
    #[arg(long)]
    pub cache_write_tokens: Option<u64>,
    /// Planned cost in USD, instead of model and tokens.
    #[arg(long)]
    pub cost_usd: Option<f64>,
    /// Record the estimate as unbilled spend, for a check right before a job that will run
    /// (`check-budget --record ... && run-job`). Without it the check is a what-if.
    #[arg(long)]
    pub record: bool,
    /// Print the structured answer as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl CheckBudgetArgs {
    /// The `check_budget` arguments.
    pub fn tool_args(&self) -> serde_json::Value {
        let mut v = serde_json::json!({});
        let mut set = |k: &str, x: serde_json::Value| {
            if !x.is_null() {
                v[k] = x;
            }
        };
        set("who", serde_json::json!(self.who));
        set("model", serde_json::json!(self.model));
        set("input_tokens", serde_json::json!(self.input_tokens));
        set("output_tokens", serde_json::json!(self.output_tokens));
        set(
            "cache_read_tokens",
            serde_json::json!(self.cache_read_tokens),
        );
        set(
            "cache_write_tokens",
            serde_json::json!(self.cache_write_tokens),
        );
        set("cost_usd", serde_json::json!(self.cost_usd));
        set("record", serde_json::json!(self.record));
        v
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub command: RegistryCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RegistryCommand {
    /// Search every readable registry at once (search_registry); an empty QUERY browses.
    Search(RegistrySearchArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct RegistrySearchArgs {
    /// Keywords, e.g. "invoice processing agent".
    #[arg(default_value = "")]
    pub query: String,
    /// Record types, comma-separated: agent, mcp, skill, custom.
    #[arg(long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Registry ids or names, comma-separated (default: all readable).
    #[arg(long = "registry", value_delimiter = ',')]
    pub registries: Vec<String>,
    /// Hits per registry, 1-20.
    #[arg(long)]
    pub max: Option<u32>,
    /// next_cursor from the previous answer (browsing).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Print the structured answer as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl RegistrySearchArgs {
    /// The `search_registry` arguments.
    pub fn tool_args(&self) -> serde_json::Value {
        let mut v = serde_json::json!({});
        if !self.query.is_empty() {
            v["query"] = serde_json::json!(self.query);
        }
        if !self.types.is_empty() {
            v["record_types"] = serde_json::json!(self.types);
        }
        if !self.registries.is_empty() {
            v["registries"] = serde_json::json!(self.registries);
        }
        if let Some(m) = self.max {
            v["max_results"] = serde_json::json!(m);
        }
        if let Some(c) = &self.cursor {
            v["cursor"] = serde_json::json!(c);
        }
        v
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateCurArgs {
    /// Output folder (gets data/BILLING_PERIOD=YYYY-MM/*.parquet and truth.json).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Approximate number of usage line items.
    #[arg(long, default_value_t = 100_000)]
    pub rows: u64,
    /// First usage day (YYYY-MM-DD); default: the first day of last month.
    #[arg(long)]
    pub start: Option<chrono::NaiveDate>,
    /// Days covered; default: from the first usage day up to yesterday (never into the future
    /// unless asked), or 60 days when --start is today or later.
    #[arg(long)]
    pub days: Option<u32>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Distinct callers (users and roles).
    #[arg(long, default_value_t = 60)]
    pub principals: u32,
    #[arg(long, default_value_t = 1_000_000)]
    pub rows_per_file: usize,
    /// Leave out line_item_iam_principal, as an export without IAM principal data.
    #[arg(long)]
    pub no_principal_column: bool,
    /// Write every line of the second account in this currency (ISO 4217, e.g. EUR), as an
    /// account billed in another currency; truth.json's by_currency has the usage per currency.
    #[arg(long, value_name = "CODE")]
    pub second_currency: Option<String>,
    /// Also write Bedrock model invocation logs of the same calls under OUT/invocation-logs/
    /// (AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/*.json.gz, for the
    /// standard-tier token lines) and the catalogue's prices as Price List products
    /// (OUT/pricelist.json, the body of the emulator's POST /_emulator/pricing/products); token counts become whole tokens.
    #[arg(long)]
    pub write_invocation_logs: bool,
    /// With --write-invocation-logs: the last N days are logged but not billed yet (no CUR lines).
    #[arg(long, default_value_t = 0, requires = "write_invocation_logs")]
    pub logs_only_days: u32,
    /// How refreshes are delivered: overwrite (files directly in each BILLING_PERIOD folder) or
    /// create-new (a <timestamp>-<id>/ folder per refresh, with an earlier partial refresh left
    /// next to the current one, as Data Exports leaves them).
    #[arg(long, value_enum, default_value = "overwrite")]
    pub delivery: DeliveryArg,
    /// Do not write metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json.
    #[arg(long)]
    pub no_manifest: bool,
    /// Lines of the first N days lack product['model'] (written before AWS's product-metadata backfill).
    #[arg(long, default_value_t = 0)]
    pub backfill_days: u32,
    /// The export's name (file names, manifests).
    #[arg(long, default_value = "bedrock-cur")]
    pub export_name: String,
    /// Time granularity MONTHLY: one line per month (from the 1st) where a daily export has one per day.
    #[arg(long)]
    pub monthly: bool,
}

/// `generate-cur --delivery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeliveryArg {
    Overwrite,
    CreateNew,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SpendArgs {
    /// this_month, month_to_date, last_month, last_7_days, last_30_days (or use --start/--end).
    #[arg(long, default_value = "this_month")]
    pub period: String,
    /// First day (inclusive), YYYY-MM-DD; with --end.
    #[arg(long, requires = "end")]
    pub start: Option<String>,
    /// Day after the last day (exclusive), YYYY-MM-DD; with --start.
    #[arg(long, requires = "start")]
    pub end: Option<String>,
    /// Group keys, comma-separated: team (a tag key) or tag:<key>, principal, role, session, model, token_kind, service, usage_type, region, day, month.
    #[arg(long, value_delimiter = ',')]
    pub by: Vec<String>,
    /// Filters KEY=VALUE (repeatable): a tag key, principal, role or model; an empty VALUE selects untagged.
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// cost_explorer, cur or athena (default: cur when configured, else cost_explorer).
    #[arg(long)]
    pub source: Option<String>,
    /// monthly or daily.
    #[arg(long, default_value = "monthly")]
    pub granularity: String,
    /// unblended, net_unblended or amortized.
    #[arg(long, default_value = "unblended")]
    pub metric: String,
    /// Keep the N largest groups.
    #[arg(long, default_value_t = 20)]
    pub top: u32,
    /// Print the structured answer as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also draw the answer as a PNG chart into FILE (stacked over time, or ranked bars).
    #[arg(long, value_name = "FILE")]
    pub chart: Option<std::path::PathBuf>,
}

impl SpendArgs {
    /// The `bedrock_spend` arguments. A bad `--period` (or `--start`/`--end`) is refused in
    /// flag terms; `--by team` is `tag:team` (`tools::args::bare_tag`, the rule the tools suggest).
    pub fn tool_args(&self) -> Result<serde_json::Value, String> {
        let period = match (&self.start, &self.end) {
            (Some(start), Some(end)) => {
                check_dates(start, end)?;
                serde_json::json!({"start": start, "end": end})
            }
            _ => {
                check_period(&self.period)?;
                serde_json::json!(self.period)
            }
        };
        let group_by: Vec<String> = self
            .by
            .iter()
            .map(|k| crate::tools::args::bare_tag(k).unwrap_or_else(|| k.clone()))
            .collect();
        let mut filter = serde_json::Map::new();
        for f in &self.filters {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                format!("--filter '{f}' must be KEY=VALUE, e.g. --filter team=ml-platform")
            })?;
            let entry = filter
                .entry(k.to_string())
                .or_insert_with(|| serde_json::json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(serde_json::json!(v));
            }
        }
        let mut v = serde_json::json!({
            "period": period,
            "granularity": self.granularity,
            "metric": self.metric,
            "top_n": self.top,
        });
        if !group_by.is_empty() {
            v["group_by"] = serde_json::json!(group_by);
        }
        if !filter.is_empty() {
            v["filter"] = serde_json::Value::Object(filter);
        }
        if let Some(s) = &self.source {
            v["source"] = serde_json::json!(s);
        }
        if self.chart.is_some() {
            v["chart"] = serde_json::json!(true);
        }
        Ok(v)
    }
}

/// The period words, as `--period` takes them.
const PERIOD_WORDS: &str = "this_month, month_to_date, last_month, last_7_days or last_30_days";

/// Check a `--period` word; a bad one is told the words and `--start`/`--end` (a JSON object
/// is how the tools take a range, not how the command line does).
pub fn check_period(word: &str) -> Result<(), String> {
    use crate::domain::period::{PeriodError, PeriodInput};
    match PeriodInput::Word(word.to_string()).resolve(crate::domain::clock::today()) {
        Err(PeriodError::UnknownWord(_)) => Err(format!(
            "--period '{word}' is not a period; use {PERIOD_WORDS}, or --start YYYY-MM-DD --end YYYY-MM-DD for a range (end exclusive), e.g. --start 2026-10-01 --end 2026-11-01"
        )),
        _ => Ok(()),
    }
}

/// Check `--start` and `--end`, in flag terms.
fn check_dates(start: &str, end: &str) -> Result<(), String> {
    use crate::domain::period::{PeriodError, PeriodInput};
    let range = PeriodInput::Range {
        start: start.to_string(),
        end: end.to_string(),
    };
    match range.resolve(crate::domain::clock::today()) {
        Err(PeriodError::BadDate { field, value }) => Err(format!(
            "--{field} '{value}' is not a date; write it as YYYY-MM-DD, e.g. --start 2026-10-01 --end 2026-11-01 (end exclusive), or use --period {PERIOD_WORDS}"
        )),
        Err(PeriodError::EndNotAfterStart { start, end }) => Err(format!(
            "--end {end} must be after --start {start} (--end is exclusive: one day D is --start D --end D+1)"
        )),
        // Future starts and the like: the tool's own message.
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// Tool name, e.g. check_budget.
    pub tool: String,
    /// Arguments as a JSON object (default {}).
    pub args: Option<String>,
    /// Print the structured answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `setup`'s flags ([`crate::usecases::setup::SetupRequest`]; the defaults are the use case's).
#[derive(clap::Args, Debug, Clone)]
pub struct SetupArgs {
    /// Make the changes of the plan (the steps not done yet; with --steps, only those).
    #[arg(long)]
    pub apply: bool,
    /// Remove what an earlier --apply of STEP created (as the state file records it).
    #[arg(long, value_name = "STEP", conflicts_with = "apply")]
    pub undo: Option<String>,
    /// Only these steps (comma-separated): export, tags, athena, logging, anomaly_monitor,
    /// budgets, prevention.
    #[arg(long, value_delimiter = ',')]
    pub steps: Vec<String>,
    /// The bucket of the CUR export and the invocation logs (created when missing).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Name of the CUR 2.0 export.
    #[arg(long, default_value = crate::usecases::setup::DEFAULT_EXPORT_NAME)]
    pub export_name: String,
    /// Prefix of the export in the bucket.
    #[arg(long, default_value = crate::usecases::setup::DEFAULT_EXPORT_PREFIX)]
    pub export_prefix: String,
    /// Principal tag keys to activate (without `iamPrincipal/`).
    #[arg(long, value_delimiter = ',', default_value = crate::usecases::setup::DEFAULT_TAG_KEY)]
    pub tag_keys: Vec<String>,
    /// Ask AWS to backfill the tags from this month (YYYY-MM, at most 12 months back).
    #[arg(long, value_name = "YYYY-MM")]
    pub backfill_from: Option<String>,
    /// Athena database to create.
    #[arg(long, default_value = crate::usecases::setup::DEFAULT_DATABASE)]
    pub database: String,
    /// Athena table to create over the export.
    #[arg(long, default_value = crate::usecases::setup::DEFAULT_TABLE)]
    pub table: String,
    /// Where Athena writes the DDL results (default s3://BUCKET/athena-results/).
    #[arg(long)]
    pub athena_results: Option<String>,
    /// Prefix of the invocation logs in the bucket.
    #[arg(long, default_value = crate::usecases::setup::DEFAULT_LOGS_PREFIX)]
    pub logs_prefix: String,
    /// Also deliver invocation logs to this CloudWatch Logs group (created when missing, with
    /// the IAM role Bedrock delivers with); without --bucket, only there.
    #[arg(long, value_name = "NAME")]
    pub log_group: Option<String>,
    /// Email or SNS topic ARN for the anomaly monitor's alerts and the budget actions.
    #[arg(long)]
    pub notify: Option<String>,
    /// Budgets step: also an action per tag budget that attaches a deny-Bedrock policy to the
    /// team's roles and users at 100% of actual spend (with its execution role; needs --notify).
    #[arg(long)]
    pub enforce: bool,
    /// Where the prevention policy is written.
    #[arg(long, default_value = crate::usecases::setup::DEFAULT_POLICY_FILE)]
    pub policy_file: std::path::PathBuf,
    /// Also make the prevention policy a customer managed IAM policy attached to
    /// group:NAME, role:NAME or user:NAME (e.g. the group your administrators are in).
    #[arg(long, value_name = "KIND:NAME")]
    pub attach_prevention: Option<String>,
    /// The state file of applied steps (default $XDG_STATE_HOME/bedrock-cost-mcp/setup.json).
    #[arg(long)]
    pub state: Option<std::path::PathBuf>,
    /// Print the plan (and results) as JSON.
    #[arg(long)]
    pub json: bool,
}

impl SetupArgs {
    pub fn request(&self) -> crate::usecases::setup::SetupRequest {
        crate::usecases::setup::SetupRequest {
            apply: self.apply,
            undo: self.undo.clone(),
            steps: self.steps.clone(),
            bucket: self.bucket.clone(),
            export_name: self.export_name.clone(),
            export_prefix: self.export_prefix.clone(),
            tag_keys: self.tag_keys.clone(),
            backfill_from: self.backfill_from.clone(),
            database: self.database.clone(),
            table: self.table.clone(),
            athena_results: self.athena_results.clone(),
            logs_prefix: self.logs_prefix.clone(),
            log_group: self.log_group.clone(),
            notify: self.notify.clone(),
            policy_file: self.policy_file.clone(),
            attach_prevention: self.attach_prevention.clone(),
            enforce: self.enforce,
            state: self.state.clone(),
        }
    }
}

/// `bedrock-cost-mcp setup`: 0 when the plan (or every applied step) is fine, 1 when a step
/// failed, 2 on bad usage.
pub async fn setup_main(config: &crate::config::Config, args: &SetupArgs) -> u8 {
    use crate::usecases::setup::{SetupError, run};
    match run(config, &args.request()).await {
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                SetupError::Usage(_) => 2,
                SetupError::Failed(_) => 1,
            }
        }
        Ok(answer) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&answer).unwrap_or_default()
                );
            } else {
                print!("{}", answer.render());
            }
            u8::from(answer.failed())
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct HealthCheckArgs {
    /// The server's health endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8000/healthz")]
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}
