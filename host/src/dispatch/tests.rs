use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use super::*;
use crate::runtime::{ChatKind, Event, Update};

/// An update stored and dispatched in the middle of the next read, as
/// polling does while a worker reads the inbox.
struct DuringRead {
    inbound: Inbound,
    /// Stored before the read takes its snapshot, so the read returns it.
    stored_first: bool,
}

/// An inbox in memory with the rules of the Redis one: updates are stored
/// before they are dispatched and leave when they are committed.
#[derive(Default)]
struct FakeInbox {
    stored: Mutex<BTreeMap<(ConversationKey, i64), Inbound>>,
    /// Reads that fail before the next one succeeds.
    failing_reads: Mutex<u32>,
    during_read: Mutex<Option<DuringRead>>,
    /// Update ids that no longer parse: a read drops them from the inbox.
    invalid: Mutex<BTreeSet<i64>>,
    dispatcher: OnceLock<Arc<Dispatcher>>,
    reads: Mutex<u32>,
}

impl FakeInbox {
    fn store(&self, inbound: &Inbound) {
        let entry = (inbound.key, inbound.update_id);
        self.stored.lock().unwrap().insert(entry, inbound.clone());
    }

    fn remove(&self, inbound: &Inbound) {
        let entry = (inbound.key, inbound.update_id);
        self.stored.lock().unwrap().remove(&entry);
    }

    fn snapshot(&self, key: ConversationKey, after: Option<i64>, limit: usize) -> Vec<Inbound> {
        self.stored
            .lock()
            .unwrap()
            .values()
            .filter(|inbound| inbound.key == key)
            .filter(|inbound| after.is_none_or(|after| inbound.update_id > after))
            .take(limit)
            .cloned()
            .collect()
    }

    async fn read(
        &self,
        key: ConversationKey,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Refilled, StoreError> {
        *self.reads.lock().unwrap() += 1;
        let during = self.during_read.lock().unwrap().take();
        if let Some(during) = &during
            && during.stored_first
        {
            self.store(&during.inbound);
        }
        let snapshot = self.snapshot(key, after, limit);
        if let Some(during) = during {
            if !during.stored_first {
                self.store(&during.inbound);
            }
            self.dispatcher.get().unwrap().dispatch(during.inbound);
        }
        tokio::task::yield_now().await;

        let mut failing = self.failing_reads.lock().unwrap();
        if *failing > 0 {
            *failing -= 1;
            return Err(StoreError::Decode {
                key: key.to_string(),
                reason: "read failed on purpose".to_owned(),
            });
        }
        let mut refilled = Refilled {
            through: snapshot.last().map(|inbound| inbound.update_id),
            more: snapshot.len() == limit,
            updates: Vec::new(),
        };
        for inbound in snapshot {
            if self.invalid.lock().unwrap().contains(&inbound.update_id) {
                self.remove(&inbound);
            } else {
                refilled.updates.push(inbound);
            }
        }
        Ok(refilled)
    }
}

impl Refill for FakeInbox {
    fn refill(
        &self,
        key: ConversationKey,
        after: Option<i64>,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Refilled, StoreError>> + Send + '_>> {
        Box::pin(self.read(key, after, limit))
    }
}

/// Handles updates like the host's handler as far as order goes. It delays
/// chat 1 by 10 s and every other update by 1 ms, then commits, then takes
/// 1 ms more to deliver. It skips and counts an update already applied, and
/// it commits by removing the update from the inbox, except for the ids in
/// `failing`, which stay stored.
struct Recorder {
    handled: Mutex<Vec<(i64, i64)>>,
    applied: Mutex<BTreeSet<(i64, i64)>>,
    repeats: Mutex<u32>,
    failing: BTreeSet<i64>,
    inbox: Arc<FakeInbox>,
}

impl Handle for Recorder {
    fn handle(&self, inbound: Inbound) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let pause = if inbound.key.chat_id == 1 { 10_000 } else { 1 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let entry = (inbound.key.chat_id, inbound.update_id);
            if self.applied.lock().unwrap().contains(&entry) {
                *self.repeats.lock().unwrap() += 1;
                self.inbox.remove(&inbound);
                return;
            }
            let resume = matches!(inbound.kind, InboundKind::Resume);
            if !resume && !self.failing.contains(&inbound.update_id) {
                self.inbox.remove(&inbound);
                self.applied.lock().unwrap().insert(entry);
            }
            self.handled.lock().unwrap().push(entry);
            // Delivery, after the commit.
            tokio::time::sleep(Duration::from_millis(1)).await;
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

fn setup(max_queued: usize) -> (Arc<Dispatcher>, Arc<Recorder>, Arc<FakeInbox>) {
    setup_failing(max_queued, &[])
}

fn setup_failing(
    max_queued: usize,
    failing: &[i64],
) -> (Arc<Dispatcher>, Arc<Recorder>, Arc<FakeInbox>) {
    let inbox = Arc::new(FakeInbox::default());
    let recorder = Arc::new(Recorder {
        handled: Mutex::new(Vec::new()),
        applied: Mutex::new(BTreeSet::new()),
        repeats: Mutex::new(0),
        failing: failing.iter().copied().collect(),
        inbox: inbox.clone(),
    });
    let dispatcher = Dispatcher::new(recorder.clone(), inbox.clone(), max_queued);
    inbox.dispatcher.set(dispatcher.clone()).ok().unwrap();
    (dispatcher, recorder, inbox)
}

/// Stores, then dispatches, as polling does.
fn receive(dispatcher: &Arc<Dispatcher>, inbox: &FakeInbox, update_id: i64, chat_id: i64) {
    let update = inbound(update_id, chat_id);
    inbox.store(&update);
    dispatcher.dispatch(update);
}

fn handled_ids(recorder: &Recorder, chat_id: i64) -> Vec<i64> {
    let handled = recorder.handled.lock().unwrap();
    handled
        .iter()
        .filter(|(chat, _)| *chat == chat_id)
        .map(|(_, update_id)| *update_id)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn slow_conversation_does_not_hold_others() {
    let (dispatcher, recorder, inbox) = setup(64);
    receive(&dispatcher, &inbox, 1, 1);
    receive(&dispatcher, &inbox, 2, 1);
    receive(&dispatcher, &inbox, 3, 2);
    receive(&dispatcher, &inbox, 4, 2);

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(handled_ids(&recorder, 2), vec![3, 4]);
    assert!(handled_ids(&recorder, 1).is_empty());

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 1), vec![1, 2]);
    assert_eq!(dispatcher.busy_conversations(), 0);
}

#[tokio::test(start_paused = true)]
async fn flood_beyond_bound_is_handled_in_order() {
    let (dispatcher, recorder, inbox) = setup(4);
    // Telegram's ids have gaps, so these do too.
    let ids: Vec<i64> = (1..=100).map(|n| n * 3).collect();
    for update_id in &ids {
        receive(&dispatcher, &inbox, *update_id, 7);
    }
    assert_eq!(dispatcher.queued_updates(), 4, "memory holds the bound");

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), ids);
    assert!(inbox.stored.lock().unwrap().is_empty());
    assert_eq!(dispatcher.busy_conversations(), 0);
}

#[tokio::test(start_paused = true)]
async fn updates_after_a_spill_wait_their_turn() {
    let (dispatcher, recorder, inbox) = setup(2);
    for update_id in 1..=5 {
        receive(&dispatcher, &inbox, update_id, 7);
    }
    // The worker has made room in memory by now, but 3 to 5 are still only
    // in the inbox, so 6 must not overtake them.
    tokio::time::sleep(Duration::from_micros(1500)).await;
    receive(&dispatcher, &inbox, 6, 7);

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), vec![1, 2, 3, 4, 5, 6]);
}

#[tokio::test(start_paused = true)]
async fn update_read_and_dispatched_is_handled_once() {
    let (dispatcher, recorder, inbox) = setup(3);
    for update_id in 1..=4 {
        receive(&dispatcher, &inbox, update_id, 7);
    }
    // The read returns 5 and the dispatch of 5 comes while it runs; the
    // read is partial, so nothing is left spilled.
    *inbox.during_read.lock().unwrap() = Some(DuringRead {
        inbound: inbound(5, 7),
        stored_first: true,
    });

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), vec![1, 2, 3, 4, 5]);
    assert_eq!(*recorder.repeats.lock().unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn update_stored_after_the_read_is_kept() {
    let (dispatcher, recorder, inbox) = setup(3);
    for update_id in 1..=4 {
        receive(&dispatcher, &inbox, update_id, 7);
    }
    // The read misses 5, which is queued in memory during the read.
    *inbox.during_read.lock().unwrap() = Some(DuringRead {
        inbound: inbound(5, 7),
        stored_first: false,
    });

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), vec![1, 2, 3, 4, 5]);
}

#[tokio::test(start_paused = true)]
async fn dispatch_after_the_read_is_not_repeated() {
    let (dispatcher, recorder, inbox) = setup(2);
    for update_id in 1..=3 {
        receive(&dispatcher, &inbox, update_id, 7);
    }
    // 4 is stored, read back with 3, and dispatched only afterwards.
    inbox.store(&inbound(4, 7));
    tokio::time::sleep(Duration::from_micros(2500)).await;
    dispatcher.dispatch(inbound(4, 7));

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), vec![1, 2, 3, 4]);
    assert_eq!(*recorder.repeats.lock().unwrap(), 0);
    assert_eq!(dispatcher.busy_conversations(), 0);
}

#[tokio::test(start_paused = true)]
async fn resume_reads_the_whole_inbox() {
    let (dispatcher, recorder, inbox) = setup(4);
    for update_id in 11..=20 {
        inbox.store(&inbound(update_id, 7));
    }
    dispatcher.resume(ConversationKey::new(7, 7));

    dispatcher.drain_all().await;
    let mut expected = vec![0];
    expected.extend(11..=20);
    assert_eq!(handled_ids(&recorder, 7), expected, "resume first");
}

#[tokio::test(start_paused = true)]
async fn failed_inbox_read_is_retried() {
    let (dispatcher, recorder, inbox) = setup(2);
    *inbox.failing_reads.lock().unwrap() = 3;
    for update_id in 1..=6 {
        receive(&dispatcher, &inbox, update_id, 7);
    }

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), (1..=6).collect::<Vec<_>>());
    assert!(*inbox.reads.lock().unwrap() > 3);
}

#[tokio::test(start_paused = true)]
async fn failed_read_keeps_order_of_later_updates() {
    let (dispatcher, recorder, inbox) = setup(2);
    for update_id in 1..=6 {
        receive(&dispatcher, &inbox, update_id, 7);
    }
    // 7 arrives in memory during a read that fails and misses 3 to 6.
    *inbox.failing_reads.lock().unwrap() = 1;
    *inbox.during_read.lock().unwrap() = Some(DuringRead {
        inbound: inbound(7, 7),
        stored_first: false,
    });

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), (1..=7).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn invalid_stored_updates_are_passed_over() {
    let (dispatcher, recorder, inbox) = setup(2);
    for update_id in 1..=8 {
        receive(&dispatcher, &inbox, update_id, 7);
    }
    inbox.invalid.lock().unwrap().extend([4, 5]);

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), vec![1, 2, 3, 6, 7, 8]);
    assert!(inbox.stored.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn update_left_in_inbox_is_not_reread() {
    let (dispatcher, recorder, inbox) = setup_failing(2, &[3]);
    for update_id in 1..=6 {
        receive(&dispatcher, &inbox, update_id, 7);
    }

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), (1..=6).collect::<Vec<_>>());
    let left: Vec<i64> = inbox
        .stored
        .lock()
        .unwrap()
        .keys()
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(left, vec![3], "kept for the next start");
}

#[tokio::test(start_paused = true)]
async fn repeat_of_a_handled_update_is_queued() {
    let (dispatcher, recorder, inbox) = setup(2);
    for update_id in 1..=4 {
        receive(&dispatcher, &inbox, update_id, 7);
    }
    // Telegram sends 1 again while the queue is spilled. Its copy goes to
    // the handler, which finds it applied and clears it from the inbox.
    tokio::time::sleep(Duration::from_micros(1500)).await;
    receive(&dispatcher, &inbox, 1, 7);

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), vec![1, 2, 3, 4]);
    assert_eq!(*recorder.repeats.lock().unwrap(), 1);
    assert!(
        inbox.stored.lock().unwrap().is_empty(),
        "no copy left behind"
    );
}

#[tokio::test(start_paused = true)]
async fn repeat_during_delivery_is_cleared_from_inbox() {
    let (dispatcher, recorder, inbox) = setup(4);
    receive(&dispatcher, &inbox, 1, 7);
    receive(&dispatcher, &inbox, 2, 7);
    // 1 is committed and its reply is being sent when Telegram sends it
    // again, which stores it in the inbox once more.
    tokio::time::sleep(Duration::from_micros(1500)).await;
    assert_eq!(inbox.stored.lock().unwrap().len(), 1, "1 was committed");
    receive(&dispatcher, &inbox, 1, 7);

    dispatcher.drain_all().await;
    assert_eq!(handled_ids(&recorder, 7), vec![1, 2]);
    assert_eq!(*recorder.repeats.lock().unwrap(), 1);
    assert!(
        inbox.stored.lock().unwrap().is_empty(),
        "no copy left behind"
    );
}
