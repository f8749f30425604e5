//! # bedrock-cost-mcp
//!
//! An MCP server that answers "who is spending what on Amazon Bedrock" per
//! IAM principal, from Cost Explorer (principal tags) and CUR 2.0
//! (`line_item_iam_principal`).
//!
//! The map:
//! - [`cli`] and [`config`]: flags and `BEDROCK_COST_MCP_*` variables; [`terminal`]:
//!   tables and a progress line for the commands people run.
//! - [`server`]: the one MCP server type ([`server::Server`]) for both transports: the tool
//!   router, input checks and authorisation at dispatch, over the tools' context
//!   ([`usecases::context::Ctx`]).
//! - [`usecases`]: the tools' context ([`usecases::context::Ctx`] over one account's
//!   [`usecases::context::Sources`]) and the questions that take more than one source, with their
//!   typed answers: spend shaping, untagged principals, budget checks, anomalies.
//! - [`transport`]: stdio and streamable HTTP (Host/Origin checks, shutdown).
//! - [`accounts`]: per-call `profile`/`region`/`role_arn` against the allow-lists; the server
//!   keeps one set of AWS sources per chosen account.
//! - [`auth`]: HTTP only: hashed static tokens, JWT/JWKS resource server, RFC 9728 metadata,
//!   the guard (scopes, rate/concurrency/time/body limits, access log); the caller and its
//!   visibility are [`domain::visibility`] types, applied by [`tools::scope`].
//! - [`tools`]: one file per tool; thin: its declaration, its unit in the registry, its text.
//!   Every tool's input struct and checks live in [`tools::args`] (pure, fuzzed in `fuzz/`).
//! - [`sources`]: one trait per question, one file per backend (Cost Explorer
//!   behind its cache/single-flight/cap guard, the demo organisation).
//! - [`domain`]: periods, principal ARNs, usage types, group keys; no I/O. It, [`error`],
//!   [`tools::args`] and the CUR row mapping ([`sources::cur_sql`], [`sources::rows`]) are the
//!   core crate's (`core/`, `bedrock_cost_core`), re-exported here under the same paths.
//! - [`demo_data`]: the deterministic fictional organisation behind `--demo` (defined once:
//!   IAM's directory and the bill's callers derive from it); [`cur_file`] writes its bill as
//!   CUR 2.0 Parquet. The CUR generator (`generate-cur`) is a module of the binary.
//! - [`chart`]: a `bedrock_spend` answer drawn as PNG (stacked over time, or ranked bars).
//! - [`prompts`] and [`resources`]: MCP prompts that tell the model which tools
//!   to call, and the effective configuration and required-tags policy as JSON.
//! - [`error`]: every failure as an answer that names the fix.
//! - [`doctor`]: the `doctor` subcommand: setup and permission checks, each with its fix.

pub mod accounts;
pub mod auth;
pub mod chart;
pub mod cli;
pub mod config;
pub mod cur_file;
pub mod demo_data;
pub mod doctor;
pub use bedrock_cost_core::{domain, error};
pub mod prompts;
pub mod resources;
pub mod server;
pub mod sources;
pub mod terminal;
pub mod tools;
pub mod transport;
pub mod usecases;
