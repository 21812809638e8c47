//! Dispatch: one queue per conversation, drained by one task at a time, with
//! a global bound on updates in progress.
//!
//! Updates of one conversation are handled strictly in arrival order (which
//! is `update_id` order), each after the previous one finished, including
//! its commit and delivery. Different conversations run in parallel; the
//! handler bounds how many invoke flows at once. Enqueueing never waits, so
//! a slow conversation never slows intake or any other conversation. A
//! conversation with an empty queue has no task and no map entry, so idle
//! conversations cost no memory.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio_util::task::TaskTracker;

use crate::conversation::ConversationKey;
use crate::telegram::inbound::Inbound;

/// Handles one update; implemented by the host's handler and by tests.
pub trait Handle: Send + Sync + 'static {
    fn handle(&self, inbound: Inbound) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl Handle for crate::handler::Handler {
    fn handle(&self, inbound: Inbound) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(crate::handler::Handler::handle(self, inbound))
    }
}

pub struct Dispatcher {
    queues: Mutex<HashMap<ConversationKey, VecDeque<Inbound>>>,
    handler: Arc<dyn Handle>,
    tasks: TaskTracker,
}

impl Dispatcher {
    pub fn new(handler: Arc<dyn Handle>) -> Arc<Self> {
        Arc::new(Self {
            queues: Mutex::new(HashMap::new()),
            handler,
            tasks: TaskTracker::new(),
        })
    }

    /// Queues `inbound` behind earlier updates of its conversation.
    pub fn dispatch(self: &Arc<Self>, inbound: Inbound) {
        let key = inbound.key;
        let mut queues = self.queues.lock().expect("dispatch queues lock poisoned");
        if let Some(queue) = queues.get_mut(&key) {
            // A worker is already draining this conversation.
            queue.push_back(inbound);
            return;
        }
        queues.insert(key, VecDeque::from([inbound]));
        drop(queues);

        let dispatcher = self.clone();
        self.tasks.spawn(async move { dispatcher.drain(key).await });
    }

    /// Handles the conversation's updates one by one until its queue is
    /// empty, then removes the queue under the same lock that `dispatch`
    /// takes, so no update can slip in between.
    async fn drain(&self, key: ConversationKey) {
        loop {
            let inbound = {
                let mut queues = self.queues.lock().expect("dispatch queues lock poisoned");
                let queue = queues
                    .get_mut(&key)
                    .expect("a draining conversation has a queue");
                match queue.front() {
                    Some(inbound) => inbound.clone(),
                    None => {
                        queues.remove(&key);
                        return;
                    }
                }
            };

            self.handler.handle(inbound).await;

            // The update stays queued until handled, so `dispatch` sees a busy
            // conversation and never starts a second worker for it.
            let mut queues = self.queues.lock().expect("dispatch queues lock poisoned");
            if let Some(queue) = queues.get_mut(&key) {
                queue.pop_front();
            }
        }
    }

    /// Number of conversations with queued or running updates.
    pub fn busy_conversations(&self) -> usize {
        self.queues
            .lock()
            .expect("dispatch queues lock poisoned")
            .len()
    }

    /// Waits until every queued update has been handled. New updates must
    /// no longer be dispatched.
    pub async fn drain_all(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runtime::{ChatKind, Event, Update};
    use crate::telegram::inbound::InboundKind;

    /// Records the order of handled updates and holds chat 1 for a while.
    struct Recorder {
        handled: Mutex<Vec<i64>>,
    }

    impl Handle for Recorder {
        fn handle(&self, inbound: Inbound) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            Box::pin(async move {
                if inbound.key.chat_id == 1 {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                self.handled.lock().unwrap().push(inbound.update_id);
            })
        }
    }

    fn inbound(update_id: i64, chat_id: i64) -> Inbound {
        let view = Update {
            update_id,
            date: 0,
            chat_kind: ChatKind::Private,
            user: None,
            message_id: None,
            event: Event::Text(String::new()),
        };
        Inbound {
            update_id,
            key: ConversationKey::new(chat_id, chat_id),
            kind: InboundKind::Flow {
                view,
                callback_query_id: None,
            },
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_conversation_does_not_hold_others() {
        let recorder = Arc::new(Recorder {
            handled: Mutex::new(Vec::new()),
        });
        let dispatcher = Dispatcher::new(recorder.clone());
        dispatcher.dispatch(inbound(1, 1));
        dispatcher.dispatch(inbound(2, 1));
        dispatcher.dispatch(inbound(3, 2));
        dispatcher.dispatch(inbound(4, 2));

        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(*recorder.handled.lock().unwrap(), vec![3, 4]);

        dispatcher.drain_all().await;
        assert_eq!(*recorder.handled.lock().unwrap(), vec![3, 4, 1, 2]);
        assert_eq!(dispatcher.busy_conversations(), 0);
    }
}
