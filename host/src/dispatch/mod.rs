//! Dispatch: one queue per conversation, drained by one task at a time, with
//! a global bound on updates in progress.
//!
//! Updates of one conversation are handled strictly in `update_id` order,
//! each after the previous one finished, including its commit and delivery.
//! Different conversations run in parallel; the handler bounds how many
//! invoke flows at once. Enqueueing never waits, so a slow conversation
//! never slows intake or any other conversation. A conversation with an
//! empty queue has no task and no map entry, so idle conversations cost no
//! memory.
//!
//! Each conversation keeps at most `max_queued` updates in memory. Every
//! update is already in the conversation's inbox in Redis when it is
//! dispatched, so an update that does not fit is left there: the queue is
//! marked as spilled, and once its worker has handled what it holds, it
//! reads the next updates back from the inbox ([`inbox::StoredInbox`]).
//! Recovery at start uses the same path: a conversation with stored work
//! starts spilled, holding only a marker that delivers its outbox.

pub mod inbox;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::conversation::ConversationKey;
use crate::metrics;
use crate::store::StoreError;
use crate::telegram::inbound::{Inbound, InboundKind};

/// First pause after a failed read of an inbox; it doubles up to the maximum.
const MIN_REFILL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_REFILL_BACKOFF: Duration = Duration::from_secs(10);

/// Handles one update; implemented by the host's handler and by tests.
pub trait Handle: Send + Sync + 'static {
    fn handle(&self, inbound: Inbound) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl Handle for crate::handler::Handler {
    fn handle(&self, inbound: Inbound) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(crate::handler::Handler::handle(self, inbound))
    }
}

/// Updates read back from a conversation's durable inbox.
#[derive(Debug, Default)]
pub struct Refilled {
    /// Updates to handle, in `update_id` order.
    pub updates: Vec<Inbound>,
    /// Newest `update_id` read, including entries that were dropped as
    /// invalid or ignored instead of returned.
    pub through: Option<i64>,
    /// The read stopped at its limit, so the inbox may hold newer updates.
    pub more: bool,
}

/// Reads stored updates back, oldest first. It is implemented over Redis by
/// [`inbox::StoredInbox`] and by tests.
pub trait Refill: Send + Sync + 'static {
    /// Returns at most `limit` updates of `key` newer than `after` (all
    /// stored updates when `after` is `None`).
    fn refill(
        &self,
        key: ConversationKey,
        after: Option<i64>,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Refilled, StoreError>> + Send + '_>>;
}

/// An update in memory and when it was queued.
struct Queued {
    inbound: Inbound,
    since: Instant,
}

impl Queued {
    fn new(inbound: Inbound) -> Self {
        Self {
            inbound,
            since: Instant::now(),
        }
    }
}

/// One conversation's updates in memory.
struct Queue {
    /// Updates to handle in order; the front one stays here while it is
    /// handled, so `dispatch` finds the conversation busy.
    pending: VecDeque<Queued>,
    /// The inbox contains updates that are not in `pending`, all newer
    /// than those that are.
    spilled: bool,
    /// Newest `update_id` this worker took for handling or read from the
    /// inbox; a refill reads only newer ones.
    seen_through: Option<i64>,
    /// Newest `update_id` this worker took for handling.
    taken_through: Option<i64>,
}

impl Queue {
    /// Tells whether `update_id` is in memory.
    fn contains(&self, update_id: i64) -> bool {
        self.pending
            .iter()
            .any(|queued| queued.inbound.update_id == update_id)
    }
}

/// A worker's next step.
enum Step {
    Handle(Box<Inbound>),
    Refill { after: Option<i64> },
    Stop,
}

pub struct Dispatcher {
    queues: Mutex<HashMap<ConversationKey, Queue>>,
    handler: Arc<dyn Handle>,
    inbox: Arc<dyn Refill>,
    /// Maximum number of updates one conversation keeps in memory.
    max_queued: usize,
    tasks: TaskTracker,
}

impl Dispatcher {
    pub fn new(handler: Arc<dyn Handle>, inbox: Arc<dyn Refill>, max_queued: usize) -> Arc<Self> {
        Arc::new(Self {
            queues: Mutex::new(HashMap::new()),
            handler,
            inbox,
            max_queued: max_queued.max(1),
            tasks: TaskTracker::new(),
        })
    }

    /// Queues `inbound` behind earlier updates of its conversation. The
    /// update must already be in the conversation's inbox, because a full
    /// queue leaves it there.
    pub fn dispatch(self: &Arc<Self>, inbound: Inbound) {
        let key = inbound.key;
        let mut queues = self.lock();
        if let Some(queue) = queues.get_mut(&key) {
            let update_id = inbound.update_id;
            if queue.taken_through.is_some_and(|taken| update_id <= taken) {
                // A repeat of an update this worker already took, such as a
                // batch Telegram sends again after a restart. Its commit may
                // have removed it from the inbox before this copy was stored
                // again, so the copy goes to the handler, which finds it
                // applied and removes it.
                queue.pending.push_back(Queued::new(inbound));
                return;
            }
            if queue.contains(update_id) {
                // Read back from the inbox between its store and this call;
                // its commit removes the one inbox entry.
                return;
            }
            // Once one update is left in the inbox, every later one is too,
            // so the refill reads them back in order.
            if queue.spilled || queue.pending.len() >= self.max_queued {
                if !queue.spilled {
                    debug!(%key, max_queued = self.max_queued, "conversation queue full, later updates wait in the inbox");
                }
                queue.spilled = true;
                metrics::increment("flowbot_dispatch_spilled_total", &[]);
            } else {
                queue.pending.push_back(Queued::new(inbound));
            }
            return;
        }
        queues.insert(
            key,
            Queue {
                pending: VecDeque::from([Queued::new(inbound)]),
                spilled: false,
                seen_through: None,
                taken_through: None,
            },
        );
        drop(queues);
        self.spawn_worker(key);
    }

    /// Starts work on a conversation found with stored work at start: its
    /// outbox is delivered first, then its whole inbox is read back. Meant
    /// to be called before polling starts; on a conversation that already
    /// has a queue it only marks the queue spilled.
    pub fn resume(self: &Arc<Self>, key: ConversationKey) {
        let mut queues = self.lock();
        if let Some(queue) = queues.get_mut(&key) {
            queue.spilled = true;
            return;
        }
        let resume = Inbound {
            update_id: 0,
            key,
            kind: InboundKind::Resume,
        };
        queues.insert(
            key,
            Queue {
                pending: VecDeque::from([Queued::new(resume)]),
                spilled: true,
                seen_through: None,
                taken_through: None,
            },
        );
        drop(queues);
        self.spawn_worker(key);
    }

    fn spawn_worker(self: &Arc<Self>, key: ConversationKey) {
        let dispatcher = self.clone();
        self.tasks.spawn(async move { dispatcher.drain(key).await });
    }

    /// Handles the conversation's updates one by one, reading spilled ones
    /// back from the inbox, until nothing is left. The queue is removed under
    /// the same lock that `dispatch` takes, so no update can slip in between.
    async fn drain(&self, key: ConversationKey) {
        let mut backoff = MIN_REFILL_BACKOFF;
        loop {
            match self.next_step(key) {
                Step::Stop => return,
                Step::Handle(inbound) => {
                    self.handler.handle(*inbound).await;
                    if let Some(queue) = self.lock().get_mut(&key) {
                        queue.pending.pop_front();
                    }
                }
                Step::Refill { after } => {
                    match self.inbox.refill(key, after, self.max_queued).await {
                        Ok(refilled) => {
                            backoff = MIN_REFILL_BACKOFF;
                            self.merge(key, refilled);
                        }
                        Err(error) => {
                            warn!(%key, %error, retry_in_ms = backoff.as_millis() as u64, "failed to read the conversation's inbox, retrying");
                            // Updates dispatched during the failed read are in
                            // the inbox too, and may be newer than some that the
                            // read missed, so the next read brings them back in
                            // order.
                            if let Some(queue) = self.lock().get_mut(&key) {
                                queue.pending.clear();
                                queue.spilled = true;
                            }
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX_REFILL_BACKOFF);
                        }
                    }
                }
            }
        }
    }

    fn next_step(&self, key: ConversationKey) -> Step {
        let mut queues = self.lock();
        let queue = queues
            .get_mut(&key)
            .expect("a draining conversation has a queue");
        if let Some(queued) = queue.pending.front() {
            let inbound = &queued.inbound;
            if !matches!(inbound.kind, InboundKind::Resume) {
                queue.seen_through = queue.seen_through.max(Some(inbound.update_id));
                queue.taken_through = queue.taken_through.max(Some(inbound.update_id));
            }
            let waited = queued.since.elapsed().as_secs_f64();
            metrics::observe(
                "flowbot_update_stage_seconds",
                &[("stage", "queued")],
                waited,
            );
            return Step::Handle(Box::new(inbound.clone()));
        }
        if queue.spilled {
            // Cleared before the read: an update dispatched from now on is
            // queued in memory or sets the flag again, and either way is not
            // lost if the read misses it.
            queue.spilled = false;
            return Step::Refill {
                after: queue.seen_through,
            };
        }
        queues.remove(&key);
        Step::Stop
    }

    /// Adds updates read from the inbox to the queue, together with those
    /// dispatched during the read, in `update_id` order without repeats.
    fn merge(&self, key: ConversationKey, refilled: Refilled) {
        let mut queues = self.lock();
        let queue = queues
            .get_mut(&key)
            .expect("a draining conversation has a queue");
        // Those dispatched during the read come first, so that the sort
        // keeps them, with their queueing time, over the copies read back.
        let mut merged: Vec<Queued> = queue.pending.drain(..).collect();
        merged.extend(refilled.updates.into_iter().map(Queued::new));
        merged.sort_by_key(|queued| queued.inbound.update_id);
        merged.dedup_by_key(|queued| queued.inbound.update_id);
        if refilled.more {
            // The inbox may contain updates between the newest one read and
            // those dispatched meanwhile; they are all read next time.
            let through = refilled.through.unwrap_or(i64::MAX);
            merged.retain(|queued| queued.inbound.update_id <= through);
            queue.spilled = true;
        }
        let mut through = refilled.through;
        if merged.len() > self.max_queued {
            merged.truncate(self.max_queued);
            queue.spilled = true;
            // Whatever was cut off is read again.
            through = through.min(merged.last().map(|queued| queued.inbound.update_id));
        }
        queue.seen_through = queue.seen_through.max(through);
        queue.pending = merged.into();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConversationKey, Queue>> {
        self.queues.lock().expect("dispatch queues lock poisoned")
    }

    /// Number of conversations with queued or running updates.
    pub fn busy_conversations(&self) -> usize {
        self.lock().len()
    }

    /// Number of updates held in memory, across all conversations.
    pub fn queued_updates(&self) -> usize {
        self.lock().values().map(|queue| queue.pending.len()).sum()
    }

    /// Waits until every queued update has been handled. New updates must
    /// no longer be dispatched.
    pub async fn drain_all(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests;
