//! Command line: `serve` (stdio, or streamable HTTP with `--http`).

use std::net::SocketAddr;

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
    Serve(ServeArgs),
    /// Bedrock spend, as the bedrock_spend tool answers it, printed as a table (or JSON).
    Spend(SpendArgs),
    /// Run any tool with JSON arguments and print its answer (a table, or --json):
    /// `bedrock-cost-mcp --demo call untagged_principals '{"include_no_spend": true}'`.
    Call(CallArgs),
    /// Write a deterministic, realistic CUR 2.0 Parquet export (and truth.json) for tests, demos and benchmarks.
    GenerateCur(GenerateCurArgs),
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
    /// Days covered.
    #[arg(long, default_value_t = 60)]
    pub days: u32,
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
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Serve streamable HTTP on this address instead of stdio (loopback only until HTTP auth exists).
    #[arg(long, env = "BEDROCK_COST_MCP_HTTP")]
    pub http: Option<SocketAddr>,

    /// Extra accepted `Host` header values (loopback names are always accepted).
    #[arg(
        long = "allowed-host",
        env = "BEDROCK_COST_MCP_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Accepted browser `Origin` values, with scheme (`https://app.example.com:443`, `:*` for any port).
    /// Loopback origins are always accepted; any other present Origin gets 403.
    #[arg(
        long = "allowed-origin",
        env = "BEDROCK_COST_MCP_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Largest accepted HTTP request body, in bytes.
    #[arg(long, env = "BEDROCK_COST_MCP_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
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
