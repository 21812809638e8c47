//! The `flowbot` binary: parses the command line, sets up logging, runs the
//! host until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flowbot::cli::{self, FlowsCommand};
use flowbot::config::Config;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    version,
    about = "Telegram bot host whose flows are sandboxed WebAssembly components"
)]
struct Cli {
    /// TOML configuration file; environment variables override its values.
    #[arg(long, short, env = "FLOWBOT_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(
        long,
        env = "FLOWBOT_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    /// Environment whose pin file selects the flow builds (dev, staging,
    /// prod, ...); overrides `flows.environment`.
    #[arg(long = "env", env = "FLOWBOT_ENV", global = true)]
    environment: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bot (the default).
    Run,
    /// Validate the configuration and exit.
    CheckConfig,
    /// Manage flow builds: list, install, pin, rollback, canary.
    Flows {
        #[command(subcommand)]
        command: FlowsCommand,
    },
}

/// Prints a failure as one line with its causes, without the backtrace
/// that `RUST_BACKTRACE` would add, and exits with status 1.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The operator's commands print their results; their log shows only
    // problems unless RUST_LOG asks for more.
    let operator_command = matches!(cli.command, Some(Command::Flows { .. }));
    init_logging(
        cli.log_format,
        if operator_command { "warn" } else { "info" },
    );
    let runtime = tokio::runtime::Runtime::new().context("failed to start the tokio runtime")?;
    let mut config = Config::read(cli.config.as_deref())?;
    if let Some(environment) = cli.environment {
        config.flows.environment = environment;
    }
    match cli.command {
        // The operator's commands need no bot token or Redis.
        Some(Command::Flows { command }) => return runtime.block_on(cli::run(command, &config)),
        Some(Command::CheckConfig) => {
            config.validate()?;
            println!("configuration is valid");
            return Ok(());
        }
        Some(Command::Run) | None => config.validate()?,
    }

    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        flowbot::app::run(config, shutdown).await
    })
}

/// Logs to stderr, so stdout carries only what a command prints.
fn init_logging(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colours only on a terminal, so log files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("failed to install the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("stop requested");
    shutdown.cancel();
}
