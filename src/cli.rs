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
