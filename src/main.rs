//! Thin entry point: parse the command line, log to stderr, run.

use std::io::IsTerminal;
use std::process::ExitCode;

/// `generate-cur`: synthetic CUR 2.0 exports and their truth, for tests, benchmarks and trying
/// the CUR path. A module of the binary, not of the server's library.
mod curgen;

use bedrock_cost_mcp::cli::{Cli, Command, RegistryCommand};
use bedrock_cost_mcp::config::Config;
use bedrock_cost_mcp::error::ToolError;
use bedrock_cost_mcp::server::Server;
use bedrock_cost_mcp::tools::Answer;
use bedrock_cost_mcp::usecases::budget::CheckOutput;
use bedrock_cost_mcp::{terminal, transport};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc: glibc malloc/free were a quarter of the CPU samples under HTTP load
/// (BENCHMARKS.md, session 2), and its per-thread arenas kept DataFusion's freed memory resident.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = Cli::parse();
    cli.config.normalize();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_new(&cli.config.log).unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    if let Err(e) = cli.config.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    bedrock_cost_mcp::domain::clock::pin(cli.config.pinned_now());
    match cli.command {
        Command::Doctor(args) => {
            ExitCode::from(bedrock_cost_mcp::doctor::main(cli.config, &args).await)
        }
        Command::Setup(args) => {
            ExitCode::from(bedrock_cost_mcp::cli::setup_main(&cli.config, &args).await)
        }
        Command::GenerateCur(args) => {
            let today = bedrock_cost_mcp::domain::clock::today();
            let start = args
                .start
                .unwrap_or_else(|| bedrock_cost_mcp::domain::period::prev_month(today));
            // Up to yesterday unless asked: usage is never written into the future.
            let days = args
                .days
                .unwrap_or_else(|| match (today - start).num_days() {
                    n if n > 0 => n as u32,
                    _ => 60,
                });
            let spec = curgen::GenSpec {
                rows: args.rows,
                start,
                days,
                seed: args.seed,
                principals: args.principals,
                rows_per_file: args.rows_per_file,
                include_principal_column: !args.no_principal_column,
                backfill_days: args.backfill_days,
                delivery: match args.delivery {
                    bedrock_cost_mcp::cli::DeliveryArg::Overwrite => {
                        curgen::DeliveryMode::Overwrite
                    }
                    bedrock_cost_mcp::cli::DeliveryArg::CreateNew => {
                        curgen::DeliveryMode::CreateNew
                    }
                },
                manifest: !args.no_manifest,
                export_name: args.export_name.clone(),
                monthly: args.monthly,
                second_currency: args.second_currency.clone(),
                invocation_logs: args.write_invocation_logs,
                logs_only_days: args.logs_only_days,
            };
            match curgen::generate(&spec, &args.out) {
                Ok(truth) => {
                    eprintln!(
                        "wrote {} rows in {} file(s) to {}; truth in {}",
                        truth.rows_written,
                        truth.files.len(),
                        args.out.display(),
                        args.out.join("truth.json").display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Spend(args) => {
            let server = match Server::build(cli.config).await {
                Ok(server) => server,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // Checked as the tool checks its arguments: every refusal names the flag's argument.
            let input = match args.tool_args().and_then(|mut v| {
                if let Some(m) = v.as_object_mut() {
                    server
                        .coerce_args("bedrock_spend", m)
                        .map_err(|e| e.to_string())?;
                }
                serde_json::from_value::<bedrock_cost_mcp::tools::args::SpendInput>(v)
                    .map_err(|e| e.to_string())
            }) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let (spinner, progress) = terminal::Spinner::start("bedrock_spend");
            // The command line has no caller: it sees everything, as stdio does.
            let result = bedrock_cost_mcp::domain::visibility::run_as(
                None,
                server.app.spend_charted(input, progress),
            )
            .await;
            spinner.stop();
            match result {
                Ok((out, png)) => {
                    if let (Some(path), Some(png)) = (&args.chart, png)
                        && let Err(e) = std::fs::write(path, png)
                    {
                        eprintln!("error: cannot write the chart to {}: {e}", path.display());
                        return ExitCode::FAILURE;
                    }
                    let mut text = bedrock_cost_mcp::tools::spend::render_text(&out);
                    let mut value = serde_json::to_value(&out).unwrap_or_default();
                    bedrock_cost_mcp::tools::note_pinned_clock(&mut text, &mut value);
                    if args.json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&value).unwrap_or_default()
                        );
                    } else {
                        print!("{text}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit_code(&e)
                }
            }
        }
        Command::Call(args) => {
            let value = match args
                .args
                .as_deref()
                .map(serde_json::from_str::<serde_json::Value>)
            {
                None => serde_json::Value::Null,
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    eprintln!("error: the arguments are not JSON: {e}");
                    return ExitCode::from(2);
                }
            };
            answer(cli.config, &args.tool, value, args.json, |a| {
                Some(a.text.clone())
            })
            .await
            .map_or_else(|code| code, |_| ExitCode::SUCCESS)
        }
        Command::Untagged(args) => match bedrock_cost_mcp::cli::check_period(&args.period) {
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
            Ok(()) => answer(
                cli.config,
                "untagged_principals",
                args.tool_args(),
                args.json,
                |a| a.output().map(terminal::untagged),
            )
            .await
            .map_or_else(|code| code, |_| ExitCode::SUCCESS),
        },
        Command::CheckBudget(args) => {
            match answer(
                cli.config,
                "check_budget",
                args.tool_args(),
                args.json,
                |a| a.output().map(terminal::check),
            )
            .await
            {
                // A deny is an answer, and scripts gate on it: `check-budget ... && run-job`.
                Ok(a)
                    if a.output()
                        .is_some_and(|o: &CheckOutput| o.verdict == "deny") =>
                {
                    ExitCode::from(3)
                }
                Ok(_) => ExitCode::SUCCESS,
                Err(code) => code,
            }
        }
        Command::HealthCheck(args) => {
            match bedrock_cost_mcp::transport::http::health_check(
                &args.url,
                std::time::Duration::from_secs(args.timeout_secs.clamp(1, 300)),
            )
            .await
            {
                Ok(()) => {
                    println!("ok");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("unhealthy: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::HashToken => {
            let mut token = String::new();
            if std::io::stdin().read_line(&mut token).is_err() || token.trim().is_empty() {
                eprintln!(
                    "error: give the token on stdin: `printf %s \"$TOKEN\" | bedrock-cost-mcp hash-token`"
                );
                return ExitCode::from(2);
            }
            println!(
                "{}",
                bedrock_cost_mcp::auth::tokens::digest_hex(token.trim())
            );
            ExitCode::SUCCESS
        }
        Command::Registry(args) => match args.command {
            RegistryCommand::Search(a) => {
                answer(cli.config, "search_registry", a.tool_args(), a.json, |a| {
                    a.output().map(terminal::registry_search)
                })
                .await
                .map_or_else(|code| code, |_| ExitCode::SUCCESS)
            }
        },
        Command::Serve(args) => {
            let mut config = cli.config;
            config.serving = true;
            let app = match Server::build(config).await {
                Ok(app) => app,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // A person at a terminal rather than an MCP client on the other end of stdio.
            let at_terminal = args.http.is_none() && std::io::stdin().is_terminal();
            if at_terminal {
                eprintln!(
                    "bedrock-cost-mcp is waiting for an MCP client on stdin/stdout (JSON-RPC); a terminal is not one.\n\
                     Connect a client: e.g. `claude mcp add bedrock-cost -- bedrock-cost-mcp serve`, or the client configurations in the README.\n\
                     Or ask from the command line: `bedrock-cost-mcp --demo spend --period last_month --by team,model` (--demo needs no AWS account).\n\
                     Ctrl-D or Ctrl-C quits."
                );
            }
            let result = match args.http {
                Some(addr) => transport::http::serve(app, args.clone(), addr)
                    .await
                    .map_err(|e| e.to_string()),
                None => transport::stdio::serve(app)
                    .await
                    .map_err(|e| e.to_string()),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                // Ctrl-D at the terminal before any client spoke: nothing went wrong.
                Err(e) if at_terminal && e.contains("connection closed") => {
                    eprintln!("stdin closed before an MCP client connected; nothing to do.");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// One tool from the command line: build the server, run the tool (with a
/// progress line on a terminal), print `--json` (the structured answer, as the
/// MCP tool returns it) or `render(answer)` (the text, or a table drawn from the typed output). Exit codes: 2 for bad
/// input or configuration, 1 for a failure upstream.
async fn answer(
    config: Config,
    tool: &str,
    args: serde_json::Value,
    json: bool,
    render: impl Fn(&Answer) -> Option<String>,
) -> Result<Answer, ExitCode> {
    let server = Server::build(config).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let (spinner, progress) = terminal::Spinner::start(tool);
    let result = server.run_tool_with_progress(tool, args, progress).await;
    spinner.stop();
    match result {
        Ok(a) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&a.value).unwrap_or_default()
                );
            } else if let Some(text) = render(&a) {
                print!("{text}");
            } else {
                eprintln!("error: internal: {tool} did not answer with the output its table reads");
                return Err(ExitCode::FAILURE);
            }
            Ok(a)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit_code(&e))
        }
    }
}

/// 2 for a usage error: bad input, or a question the configured sources cannot answer (a
/// flag combination such as `--by principal --source cost_explorer`, or a missing `--cur`);
/// 1 for a failure upstream (AWS, credentials, the network).
fn exit_code(e: &ToolError) -> ExitCode {
    match e {
        ToolError::InvalidInput(_) | ToolError::Unsupported(_) | ToolError::Forbidden(_) => {
            ExitCode::from(2)
        }
        _ => ExitCode::FAILURE,
    }
}
