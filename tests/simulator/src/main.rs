//! `botapi-sim`: serves the Telegram Bot API simulator on loopback, alone
//! (`serve`) or with a terminal chat as one user (`chat`).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use botapi_sim::playground::{self, PlaygroundOptions};
use botapi_sim::{BotProfile, DEFAULT_TOKEN, SimConfig, Simulator};
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "Telegram Bot API simulator on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Bot API until Ctrl-C.
    Serve(ServerArgs),
    /// Serve the Bot API and chat with the bot in this terminal as user 1001 (Ann).
    Chat {
        #[command(flatten)]
        server: ServerArgs,
        /// Maximum seconds to wait for the bot's replies before the next piped
        /// input line and at the end of piped input.
        #[arg(long, default_value_t = 10)]
        settle_secs: u64,
    },
}

#[derive(Args)]
struct ServerArgs {
    /// Loopback address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
    /// Bot token that clients must put in the URL.
    #[arg(long, default_value = DEFAULT_TOKEN)]
    token: String,
    /// The bot's user id.
    #[arg(long, default_value_t = BotProfile::default().id)]
    bot_id: i64,
    /// The bot's first name.
    #[arg(long, default_value_t = BotProfile::default().first_name)]
    bot_name: String,
    /// The bot's username, without '@'.
    #[arg(long, default_value_t = BotProfile::default().username)]
    bot_username: String,
    /// First `update_id` to assign; give each run a higher one when the bot
    /// keeps its state between runs.
    #[arg(long, default_value_t = 1)]
    first_update_id: i64,
}

impl ServerArgs {
    fn into_config(self) -> anyhow::Result<SimConfig> {
        // The simulator accepts any client that knows the token, so it stays
        // off the network.
        if !self.addr.ip().is_loopback() {
            bail!(
                "--addr {} is not a loopback address, use 127.0.0.1 or [::1]",
                self.addr
            );
        }
        Ok(SimConfig {
            addr: self.addr,
            token: self.token,
            bot: BotProfile {
                id: self.bot_id,
                first_name: self.bot_name,
                username: self.bot_username,
            },
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The chat shares the terminal with the logs, so it shows only warnings
    // unless RUST_LOG sets a more verbose filter.
    let default_filter = match cli.command {
        Command::Serve(_) => "info",
        Command::Chat { .. } => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();

    match cli.command {
        Command::Serve(server) => {
            let first_update_id = server.first_update_id;
            serve(server.into_config()?, first_update_id).await
        }
        Command::Chat {
            server,
            settle_secs,
        } => {
            let first_update_id = server.first_update_id;
            chat(
                server.into_config()?,
                first_update_id,
                Duration::from_secs(settle_secs),
            )
            .await
        }
    }
}

async fn serve(config: SimConfig, first_update_id: i64) -> anyhow::Result<()> {
    let sim = Simulator::start(config).await?;
    sim.skip_update_ids_to(first_update_id);
    tokio::signal::ctrl_c()
        .await
        .context("failed to listen for Ctrl-C")?;
    sim.shutdown().await;
    Ok(())
}

async fn chat(
    config: SimConfig,
    first_update_id: i64,
    settle_timeout: Duration,
) -> anyhow::Result<()> {
    let sim = Simulator::start(config).await?;
    sim.skip_update_ids_to(first_update_id);
    let options = PlaygroundOptions {
        scripted: !std::io::stdin().is_terminal(),
        settle_timeout,
        ..PlaygroundOptions::default()
    };
    let input = playground::spawn_stdin_reader();

    let result = tokio::select! {
        result = playground::run(&sim, input, std::io::stdout(), options) => result,
        signal = tokio::signal::ctrl_c() => signal.context("failed to listen for Ctrl-C"),
    };
    sim.shutdown().await;
    result
}
