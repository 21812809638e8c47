//! Start-up and shutdown: connects the parts and runs until shutdown is requested.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use teloxide::prelude::*;
use teloxide::types::BotCommand;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::breaker::Breakers;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::dispatch::inbox::StoredInbox;
use crate::handler::Handler;
use crate::metrics;
use crate::registry::{FlowSet, Registry, RegistryPaths, ReloadReport};
use crate::runtime::Runtime;
use crate::store::{StateStore, StoreError};
use crate::telegram::outbound::Sender;
use crate::telegram::pacing::Pacer;
use crate::telegram::polling::{DEAF_AFTER, PollHealth, Poller};
use crate::watcher;

/// Time given to updates in progress to finish after a stop was requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Time given to the first connection to Redis.
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Instances kept free in the pool for manifest and migration calls.
const LOADING_INSTANCES: usize = 16;
/// Attempts to reach the Bot API at start before giving up.
const STARTUP_ATTEMPTS: u32 = 5;

/// Runs the host until `shutdown` is cancelled, then lets updates in
/// progress finish (up to a grace period) and returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let api_url: url::Url = config
        .telegram
        .api_url
        .parse()
        .with_context(|| format!("invalid Bot API URL {:?}", config.telegram.api_url))?;
    let bot = make_bot(
        &config,
        api_url.clone(),
        Duration::from_secs(config.telegram.request_timeout_secs),
    )?;
    let poll_bot = make_bot(
        &config,
        api_url.clone(),
        config.telegram.poll_request_timeout(),
    )?;

    let me = get_me(&bot, &shutdown).await?;
    let bot_id = i64::try_from(me.id.0).context("bot id out of range")?;
    let bot_username = me.username.clone().unwrap_or_default();
    info!(bot_id, username = %bot_username, api = %api_url.origin().ascii_serialization(), "connected to the Bot API");

    // The Redis client retries for minutes on its own; a host that cannot
    // reach Redis should say so quickly and still obey a stop request.
    let connect = StateStore::connect(
        &config.redis.url,
        &config.redis.key_prefix,
        bot_id,
        config.redis.state_ttl_days,
    );
    let store = tokio::select! {
        _ = shutdown.cancelled() => anyhow::bail!("stopped while connecting to Redis"),
        result = tokio::time::timeout(REDIS_CONNECT_TIMEOUT, connect) => match result {
            Ok(store) => store.context("failed to connect to Redis: check REDIS_URL and its password")?,
            Err(_) => anyhow::bail!(
                "timed out after {} s connecting to Redis: check REDIS_URL and that the server runs",
                REDIS_CONNECT_TIMEOUT.as_secs()
            ),
        },
    };

    // The pool has room for every instance that can run at once: one per update
    // being handled, plus a few for builds being loaded.
    let pool_size = u32::try_from(config.dispatch.max_concurrent + LOADING_INSTANCES)
        .context("dispatch.max_concurrent is too large")?;
    let runtime = Arc::new(Runtime::new(config.limits.clone(), pool_size)?);
    let registry = Arc::new(
        Registry::open(runtime.clone(), registry_paths(&config))
            .await
            .context("failed to load flows")?,
    );
    let flows = registry.snapshot();
    info!(environment = %config.flows.environment, flows = flows.selections().count(), "flows serving");
    if flows.is_empty() {
        warn!(dir = %config.flows.dir.display(), "no flows loaded; the bot can only reply to /help");
    }
    register_commands(&bot, &flows).await;
    if config.flows.watch {
        spawn_watcher(&registry, &bot, &shutdown);
    }
    // getUpdates fails while a webhook is set. Pending updates are kept.
    if let Err(error) = bot.delete_webhook().await {
        warn!(%error, "deleteWebhook failed");
    }

    let pacer = Arc::new(Pacer::new(config.delivery.clone()));
    let sender = Sender::new(bot.clone(), store.clone(), pacer);
    let breakers = Breakers::new(
        config.limits.breaker_failures,
        Duration::from_secs(config.limits.breaker_window_secs),
    );
    let handler = Arc::new(Handler::new(
        runtime,
        registry.clone(),
        store.clone(),
        sender,
        config.dispatch.max_concurrent,
        breakers,
    ));
    let inbox = Arc::new(StoredInbox {
        store: store.clone(),
        bot_username: bot_username.clone(),
    });
    let dispatcher = Dispatcher::new(handler, inbox, config.dispatch.max_queued);
    recover(&store, &dispatcher)
        .await
        .context("failed to recover pending work from Redis")?;
    let health = Arc::new(PollHealth::default());
    if let Some(listen) = config.metrics.address()? {
        // The bot keeps serving users without its metrics; the logged error gives the reason.
        let served = metrics::serve(
            listen,
            health.clone(),
            registry.clone(),
            dispatcher.clone(),
            DEAF_AFTER.as_secs(),
            shutdown.clone(),
        );
        if let Err(error) = served.await {
            error!(
                error = format!("{error:#}"),
                "metrics and health are not served"
            );
        }
    }
    let poller = Poller {
        bot: poll_bot,
        bot_username,
        poll_timeout_secs: config.telegram.poll_timeout_secs,
        request_timeout: config.telegram.poll_request_timeout(),
        dispatcher: dispatcher.clone(),
        store,
        health,
    };
    info!("flowbot started");
    poller.run(shutdown).await;

    info!(
        busy_conversations = dispatcher.busy_conversations(),
        "stopping, finishing updates in progress"
    );
    if tokio::time::timeout(SHUTDOWN_GRACE, dispatcher.drain_all())
        .await
        .is_err()
    {
        warn!(
            busy_conversations = dispatcher.busy_conversations(),
            "grace period over, stopping anyway"
        );
    }
    info!("flowbot stopped");
    Ok(())
}

/// Dispatches the work a previous run left in Redis: per conversation, the
/// outbox first, then the stored updates in `update_id` order, read back as
/// the conversation's worker gets to them. Runs before polling starts, so it
/// can also unmark conversations with nothing left.
async fn recover(store: &StateStore, dispatcher: &Arc<Dispatcher>) -> Result<(), StoreError> {
    let (mut conversations, mut idle) = (0, 0);
    for key in store.pending_conversations().await? {
        if store.unmark_if_idle(key).await? {
            idle += 1;
            continue;
        }
        conversations += 1;
        dispatcher.resume(key);
    }
    info!(conversations, idle, "recovering pending work");
    Ok(())
}

/// Watches the drop folder, the pin files and the plugin store, and after
/// a reload that changed the command list registers it with Telegram.
fn spawn_watcher(registry: &Arc<Registry>, bot: &Bot, shutdown: &CancellationToken) {
    let paths = registry.paths();
    let folders = vec![
        paths.drop_dir.clone(),
        paths.environments_dir.clone(),
        paths.store_dir.clone(),
    ];
    let (bot, swapped) = (bot.clone(), registry.clone());
    let on_swap = move |report: ReloadReport| {
        if report.commands_changed {
            let (bot, registry) = (bot.clone(), swapped.clone());
            tokio::spawn(async move { register_commands(&bot, &registry.snapshot()).await });
        }
    };
    tokio::spawn(watcher::run(
        registry.clone(),
        folders,
        on_swap,
        shutdown.clone(),
    ));
}

/// Where the registry finds builds, the plugin store and the pin files.
pub fn registry_paths(config: &Config) -> RegistryPaths {
    RegistryPaths {
        drop_dir: config.flows.dir.clone(),
        store_dir: config.flows.store_dir(),
        environments_dir: config.flows.environments.clone(),
        environment: config.flows.environment.clone(),
    }
}

fn make_bot(config: &Config, api_url: url::Url, timeout: Duration) -> anyhow::Result<Bot> {
    let client = teloxide::net::default_reqwest_settings()
        .timeout(timeout)
        .build()
        .context("failed to build the HTTP client")?;
    Ok(Bot::with_client(config.token(), client).set_api_url(api_url))
}

async fn get_me(bot: &Bot, shutdown: &CancellationToken) -> anyhow::Result<teloxide::types::Me> {
    let mut attempt = 1;
    loop {
        match bot.get_me().await {
            Ok(me) => return Ok(me),
            Err(error) if attempt < STARTUP_ATTEMPTS => {
                warn!(%error, attempt, "getMe failed, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => anyhow::bail!("stopped before the Bot API responded"),
                    _ = tokio::time::sleep(Duration::from_secs(1 << attempt)) => {}
                }
                attempt += 1;
            }
            Err(error) => {
                return Err(error)
                    .context("getMe failed: check the bot token and TELOXIDE_API_URL");
            }
        }
    }
}

/// Registers every flow and host command with `setMyCommands`, so Telegram
/// clients show them in the command menu. A failure is logged, not fatal.
async fn register_commands(bot: &Bot, flows: &FlowSet) {
    let commands: Vec<BotCommand> = flows
        .command_list()
        .into_iter()
        .map(|(command, description)| BotCommand::new(command, description))
        .collect();
    let count = commands.len();
    match bot.set_my_commands(commands).await {
        Ok(_) => info!(count, "commands registered"),
        Err(error) => warn!(%error, "setMyCommands failed"),
    }
}
