//! The [`Simulator`] handle: start and shutdown, and the output side that
//! tests read (messages, calls, callback answers, commands, faults).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::info;

use crate::config::SimConfig;
use crate::faults::{FaultId, FaultRule};
use crate::server;
use crate::store::{State, default_command_scope};
use crate::types::{ApiCall, BotMessage, CallbackAnswer, SimEvent, Webhook};

/// Number of events a slow [`Simulator::subscribe`] receiver may fall behind
/// before it starts losing the oldest ones.
const EVENT_CAPACITY: usize = 1024;

/// State shared by the handle and the HTTP handlers.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    state: Mutex<State>,
    /// Counter bumped after every change, so that waiters can re-check the state.
    changes: watch::Sender<u64>,
    events: broadcast::Sender<SimEvent>,
}

impl Shared {
    pub(crate) fn read<R>(&self, read: impl FnOnce(&State) -> R) -> R {
        read(&self.lock())
    }

    /// Runs `change` under the lock, then wakes every waiter.
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut State) -> R) -> R {
        let result = change(&mut self.lock());
        self.notify_changed();
        result
    }

    /// Runs `change` under the lock without waking waiters. The caller calls
    /// [`Shared::notify_changed`] when waiters must see the change.
    pub(crate) fn update_quietly<R>(&self, change: impl FnOnce(&mut State) -> R) -> R {
        change(&mut self.lock())
    }

    pub(crate) fn notify_changed(&self) {
        self.changes
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    pub(crate) fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under the lock leaves plain data behind, which stays usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `done` returns true or `timeout` passes, and returns the
    /// last result of `done`.
    async fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let mut changes = self.subscribe_changes();
        let deadline = Instant::now() + timeout;
        loop {
            if self.read(&done) {
                return true;
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return self.read(&done),
            }
        }
    }
}

/// Stops the server when the last [`Simulator`] handle is dropped.
struct ServerHandle {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// A Telegram Bot API server on loopback. Cloning is cheap and every clone
/// controls the same server.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) shared: Arc<Shared>,
    server: Arc<ServerHandle>,
}

impl Simulator {
    /// Binds `config.addr` and serves the Bot API in a tokio task until
    /// [`Simulator::shutdown`] or until the last handle is dropped.
    pub async fn start(config: SimConfig) -> anyhow::Result<Simulator> {
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("failed to bind the Bot API simulator to {}", config.addr))?;
        let addr = listener
            .local_addr()
            .context("failed to read the simulator's bound address")?;

        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(config.bot.clone(), events.clone())),
            config,
            changes: watch::Sender::new(0),
            events,
        });
        let (shutdown, shutdown_requested) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, shared.clone(), shutdown_requested));
        info!(%addr, bot_id = shared.config.bot.id, "Bot API simulator started");

        let server = Arc::new(ServerHandle {
            addr,
            shutdown,
            task: Mutex::new(Some(task)),
        });
        Ok(Simulator { shared, server })
    }

    /// Returns the base URL for `TELOXIDE_API_URL` or `Bot::set_api_url`,
    /// such as `http://127.0.0.1:43117/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/", self.server.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    pub fn bot_id(&self) -> i64 {
        self.shared.config.bot.id
    }

    /// Stops accepting connections, closes the open ones and waits for the
    /// server task to end. Later calls return at once.
    pub async fn shutdown(&self) {
        self.server.shutdown.send_replace(true);
        let task = self
            .server
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
            info!(addr = %self.server.addr, "Bot API simulator stopped");
        }
    }

    /// Returns the bot's messages in `chat_id` in send order, as they are now.
    /// Edited messages carry their latest text and keyboard, and deleted ones
    /// stay in the list with `deleted` set.
    pub fn messages(&self, chat_id: i64) -> Vec<BotMessage> {
        self.shared.read(|state| {
            state
                .chats
                .get(&chat_id)
                .map(|record| record.bot_messages.values().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// Waits until the bot has sent at least `count` messages to `chat_id`,
    /// deleted ones included, and returns [`Simulator::messages`].
    pub async fn wait_for_messages(
        &self,
        chat_id: i64,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<BotMessage>> {
        let sent_count = |state: &State| {
            state
                .chats
                .get(&chat_id)
                .map_or(0, |record| record.bot_messages.len())
        };
        if self
            .shared
            .wait_until(timeout, |state| sent_count(state) >= count)
            .await
        {
            return Ok(self.messages(chat_id));
        }
        let arrived = self.messages(chat_id);
        let texts: Vec<&str> = arrived
            .iter()
            .map(|message| message.text.as_str())
            .collect();
        bail!(
            "timed out after {timeout:?} waiting for {count} bot messages in chat {chat_id}: \
             {} arrived {texts:?}",
            arrived.len()
        )
    }

    /// Waits until the bot has confirmed every pushed update with a `getUpdates` offset.
    pub async fn wait_until_idle(&self, timeout: Duration) -> anyhow::Result<()> {
        if self
            .shared
            .wait_until(timeout, |state| state.updates.len() == 0)
            .await
        {
            return Ok(());
        }
        bail!(
            "timed out after {timeout:?} waiting for the bot to confirm updates: {} still pending",
            self.pending_updates()
        )
    }

    /// Returns every call received so far, in arrival order.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.shared.read(|state| state.calls.clone())
    }

    /// Returns the calls of one method, compared case-insensitively.
    pub fn calls_to(&self, method: &str) -> Vec<ApiCall> {
        self.shared.read(|state| {
            state
                .calls
                .iter()
                .filter(|call| call.method.eq_ignore_ascii_case(method))
                .cloned()
                .collect()
        })
    }

    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.shared.read(|state| state.callback_answers.clone())
    }

    /// Returns the `(command, description)` list of the default scope without
    /// a language code, as the latest `setMyCommands` for it left it.
    pub fn commands(&self) -> Vec<(String, String)> {
        self.shared.read(|state| {
            state
                .commands
                .get(&default_command_scope())
                .cloned()
                .unwrap_or_default()
        })
    }

    /// Returns the remembered `allowed_updates`, or `None` when the default applies.
    pub fn allowed_updates(&self) -> Option<Vec<String>> {
        self.shared
            .read(|state| state.updates.allowed().map(<[String]>::to_vec))
    }

    pub fn webhook(&self) -> Option<Webhook> {
        self.shared.read(|state| state.webhook.clone())
    }

    /// Makes the next assigned `update_id` at least `update_id`. A host that
    /// keeps state across simulator runs recognises applied updates by id, so
    /// each run should start above the ids of the runs before.
    pub fn skip_update_ids_to(&self, update_id: i64) {
        self.shared
            .update(|state| state.updates.skip_ids_to(update_id));
    }

    /// Returns the number of updates pushed but not yet confirmed by an offset.
    pub fn pending_updates(&self) -> usize {
        self.shared.read(|state| state.updates.len())
    }

    /// Subscribes to the bot's sends, edits, deletions and callback answers.
    /// A receiver that falls more than 1024 events behind loses the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<SimEvent> {
        self.shared.events.subscribe()
    }

    /// Adds a fault rule after the existing ones and returns its id.
    pub fn add_fault(&self, rule: FaultRule) -> FaultId {
        self.shared.update(|state| state.faults.add(rule))
    }

    /// Removes a rule. Returns false when it was already removed or used up.
    pub fn remove_fault(&self, id: FaultId) -> bool {
        self.shared.update(|state| state.faults.remove(id))
    }

    pub fn clear_faults(&self) {
        self.shared.update(|state| state.faults.clear());
    }
}
