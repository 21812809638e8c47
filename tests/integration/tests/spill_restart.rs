//! Durability of spilled updates: with a conversation queue of 4, most of a
//! burst waits in the Redis inboxes when the host process is killed with
//! SIGKILL. After a restart, recovery reads every inbox back, and each user
//! gets every tally reply exactly once and in order. The only exception is
//! a reply that was sent but not yet removed from the outbox at a kill,
//! which goes out a second time right after itself.

use std::time::{Duration, Instant};

use botapi_sim::{Fault, FaultRule, SimConfig, Simulator};
use flowbot_integration::{HostProcess, RedisServer, SimUser, TempDir, test_flows_dir};
use redis::AsyncCommands;
use serde_json::json;

/// Keeps at most 4 updates per conversation in memory, so nearly all of a
/// burst is left in Redis.
const SETTINGS: &str = "[dispatch]\nmax_queued = 4\n";
/// Delay of every `sendMessage` while the host should still have most of the
/// work ahead of it when it is killed.
const SEND_DELAY: Duration = Duration::from_millis(30);
/// Delay of every `sendMessage` while a restarted host should still be
/// reading its inboxes back when it is killed again.
const SLOW_SEND_DELAY: Duration = Duration::from_millis(150);
/// Delay of every `getUpdates` while a stored batch must stay unconfirmed:
/// longer than a restart takes, so that a held call of a killed host cannot
/// confirm the batch before the next host requests updates.
const POLL_HOLD: Duration = Duration::from_secs(5);
/// Time for sends that were in flight at a kill to settle in the simulator
/// before the messages are counted. Longer than [`SEND_DELAY`] and
/// [`SLOW_SEND_DELAY`].
const SETTLE: Duration = Duration::from_millis(500);
/// Upper bound of every wait. It is generous, because the host is down in between.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

fn tally_flows() -> anyhow::Result<TempDir> {
    let flows = TempDir::new("spill-restart-flows");
    std::fs::copy(
        test_flows_dir().join("tally.wasm"),
        flows.path().join("tally.wasm"),
    )?;
    Ok(flows)
}

/// Starts the host on `redis` with the tally flow and a queue of 4.
fn start_host(
    sim: &Simulator,
    redis: &RedisServer,
    flows: &TempDir,
) -> anyhow::Result<HostProcess> {
    HostProcess::start_with(sim, redis, flows.path(), SETTINGS, &[])
}

/// Sends `/tally` from every user.
fn start_tallies(sim: &Simulator, users: &[SimUser]) {
    for user in users {
        sim.send_text(user, "/tally");
    }
}

fn users(first_id: i64, count: i64) -> Vec<SimUser> {
    (0..count)
        .map(|index| SimUser::new(first_id + index, format!("User{index}")))
        .collect()
}

/// Returns the tally flow's replies to `/tally` followed by the numbers 1 to `numbers`.
fn expected_replies(numbers: i64) -> Vec<String> {
    let mut replies = vec!["1.0.0-r00 tally started".to_owned()];
    for count in 1..=numbers {
        let sum = count * (count + 1) / 2;
        replies.push(format!("1.0.0-r00 #{count} sum {sum}"));
    }
    replies
}

/// Sends the numbers in `numbers` from every user, round-robin, as one
/// burst: the simulator queues them at once, so a `getUpdates` response
/// carries up to 100 of them, from every conversation.
fn send_numbers(
    sim: &Simulator,
    users: &[SimUser],
    numbers: std::ops::RangeInclusive<i64>,
) -> Vec<i64> {
    let mut burst = Vec::new();
    for number in numbers {
        for user in users {
            burst.push(json!({"message": {
                "from": {"id": user.id, "is_bot": false, "first_name": user.first_name},
                "chat": {"id": user.id, "first_name": user.first_name, "type": "private"},
                "text": number.to_string()}}));
        }
    }
    sim.push_batch(burst)
}

fn texts(sim: &Simulator, chat_id: i64) -> Vec<String> {
    sim.messages(chat_id)
        .into_iter()
        .map(|message| message.text)
        .collect()
}

/// Returns the number of replies in the chat, not counting a reply repeated
/// right after itself.
fn distinct_replies(sim: &Simulator, chat_id: i64) -> usize {
    let mut texts = texts(sim, chat_id);
    texts.dedup();
    texts.len()
}

/// Waits until every user has at least `count` distinct replies.
async fn wait_for_replies(sim: &Simulator, users: &[SimUser], count: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    for user in users {
        while distinct_replies(sim, user.id) < count {
            anyhow::ensure!(
                started.elapsed() < STEP_TIMEOUT,
                "user {}: {} of {count} replies after {STEP_TIMEOUT:?}: {:?}",
                user.id,
                distinct_replies(sim, user.id),
                texts(sim, user.id)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Waits until the users have at least `count` replies in total.
async fn wait_for_total_replies(
    sim: &Simulator,
    users: &[SimUser],
    count: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let total: usize = users.iter().map(|user| sim.messages(user.id).len()).sum();
        if total >= count {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < STEP_TIMEOUT,
            "{total} of {count} replies in total after {STEP_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until each user has at least the number of messages at the same
/// index of `counts`.
async fn wait_for_messages_each(
    sim: &Simulator,
    users: &[SimUser],
    counts: &[usize],
) -> anyhow::Result<()> {
    let started = Instant::now();
    for (user, &count) in users.iter().zip(counts) {
        while sim.messages(user.id).len() < count {
            anyhow::ensure!(
                started.elapsed() < STEP_TIMEOUT,
                "user {}: {} of {count} messages after {STEP_TIMEOUT:?}: {:?}",
                user.id,
                sim.messages(user.id).len(),
                texts(sim, user.id)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

/// Waits until each user's inbox contains `count` updates with an
/// `update_id` of at least `first_id`.
async fn wait_for_stored(
    redis: &RedisServer,
    sim: &Simulator,
    users: &[SimUser],
    first_id: i64,
    count: usize,
) -> anyhow::Result<()> {
    let mut connection = redis.connection().await?;
    let started = Instant::now();
    for user in users {
        let key = inbox_key(sim, user);
        loop {
            let stored: usize = connection.zcount(&key, first_id, "+inf").await?;
            if stored >= count {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < STEP_TIMEOUT,
                "user {}: {stored} of {count} updates from id {first_id} on stored after {STEP_TIMEOUT:?}",
                user.id
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

/// Waits until every user's outbox is empty, so no reply is in flight.
async fn wait_for_empty_outboxes(
    redis: &RedisServer,
    sim: &Simulator,
    users: &[SimUser],
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let sizes = outbox_sizes(redis, sim, users).await?;
        if sizes.iter().all(|&size| size == 0) {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < STEP_TIMEOUT,
            "outboxes contain {sizes:?} entries after {STEP_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn inbox_key(sim: &Simulator, user: &SimUser) -> String {
    format!(
        "flowbot:b{}:{{c{}:u{}}}:inbox",
        sim.bot_id(),
        user.id,
        user.id
    )
}

/// Returns the updates in the user's Redis inbox as `update_id`, message
/// text, and whether the conversation's applied set contains the id.
async fn stored_updates(
    redis: &RedisServer,
    sim: &Simulator,
    user: &SimUser,
) -> anyhow::Result<Vec<(i64, String, bool)>> {
    let mut connection = redis.connection().await?;
    let entries: Vec<(String, i64)> = connection
        .zrange_withscores(inbox_key(sim, user), 0, -1)
        .await?;
    let applied_key = format!(
        "flowbot:b{}:{{c{}:u{}}}:applied",
        sim.bot_id(),
        user.id,
        user.id
    );
    let mut updates = Vec::with_capacity(entries.len());
    for (raw, update_id) in entries {
        let update: serde_json::Value = serde_json::from_str(&raw)?;
        let text = update["message"]["text"].as_str().unwrap_or_default();
        let applied: Option<f64> = connection.zscore(&applied_key, update_id).await?;
        updates.push((update_id, text.to_owned(), applied.is_some()));
    }
    Ok(updates)
}

/// Returns the number of updates in each user's Redis inbox.
async fn inbox_sizes(
    redis: &RedisServer,
    sim: &Simulator,
    users: &[SimUser],
) -> anyhow::Result<Vec<usize>> {
    let mut connection = redis.connection().await?;
    let mut sizes = Vec::with_capacity(users.len());
    for user in users {
        sizes.push(connection.zcard(inbox_key(sim, user)).await?);
    }
    Ok(sizes)
}

/// Returns the number of entries in each user's Redis outbox.
async fn outbox_sizes(
    redis: &RedisServer,
    sim: &Simulator,
    users: &[SimUser],
) -> anyhow::Result<Vec<usize>> {
    let mut connection = redis.connection().await?;
    let mut sizes = Vec::with_capacity(users.len());
    for user in users {
        let key = format!(
            "flowbot:b{}:{{c{}:u{}}}:outbox",
            sim.bot_id(),
            user.id,
            user.id
        );
        sizes.push(connection.llen(&key).await?);
    }
    Ok(sizes)
}

/// Kills the host with SIGKILL, lets sends in flight settle, and returns how
/// many messages each user had then: the position in each chat where a reply
/// sent but not yet removed from the outbox may appear a second time.
async fn kill_and_count(
    host: &mut HostProcess,
    sim: &Simulator,
    users: &[SimUser],
) -> anyhow::Result<Vec<usize>> {
    host.kill()?;
    tokio::time::sleep(SETTLE).await;
    Ok(users
        .iter()
        .map(|user| sim.messages(user.id).len())
        .collect())
}

/// Reads `flowbot_dispatch_spilled_total` from the host's metrics.
async fn spilled_total(host: &HostProcess) -> anyhow::Result<f64> {
    let (status, metrics) = host.get("/metrics").await?;
    anyhow::ensure!(status == 200, "GET /metrics returned {status}: {metrics}");
    let value = metrics
        .lines()
        .find_map(|line| line.strip_prefix("flowbot_dispatch_spilled_total"))
        .map(|rest| rest.trim_start_matches("{}"))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    Ok(value)
}

/// Checks that `texts` is exactly `expected`, except that a reply may repeat
/// right after itself at a position listed in `kill_points` (the number of
/// messages the chat had when the host was killed), at most once per kill.
fn assert_replies(user_id: i64, texts: &[String], expected: &[String], kill_points: &[usize]) {
    let mut replies = Vec::with_capacity(texts.len());
    let mut repeats = Vec::new();
    for (position, text) in texts.iter().enumerate() {
        if position > 0 && texts[position - 1] == *text {
            repeats.push(position);
        } else {
            replies.push(text.clone());
        }
    }
    for position in &repeats {
        assert!(
            kill_points.contains(position),
            "user {user_id}: reply {:?} repeated at position {position}, but the host was \
             killed when the chat had {kill_points:?} messages; only the reply in flight at \
             a kill may go out twice, right at that point. Replies: {texts:?}",
            texts[*position]
        );
    }
    assert!(
        repeats.len() <= kill_points.len(),
        "user {user_id}: {} repeated replies for {} kills, at most one per kill is allowed: \
         positions {repeats:?}",
        repeats.len(),
        kill_points.len()
    );
    for (index, (reply, wanted)) in replies.iter().zip(expected).enumerate() {
        let window = &replies[index.saturating_sub(3)..(index + 3).min(replies.len())];
        assert_eq!(
            reply, wanted,
            "user {user_id}: reply {index} is wrong (a gap, a wrong sum or an order change); \
             replies around it: {window:?}; kills after {kill_points:?} messages"
        );
    }
    assert_eq!(
        replies.len(),
        expected.len(),
        "user {user_id}: number of distinct replies; all replies: {texts:?}"
    );
}

/// Checks every user's replies, then that every inbox and outbox is empty.
async fn assert_all_handled(
    sim: &Simulator,
    redis: &RedisServer,
    users: &[SimUser],
    numbers: i64,
    kill_points: &[Vec<usize>],
) -> anyhow::Result<()> {
    // Replies sent later than the last expected one would be repeats too.
    tokio::time::sleep(SETTLE).await;
    let expected = expected_replies(numbers);
    for (index, user) in users.iter().enumerate() {
        let points: Vec<usize> = kill_points.iter().map(|counts| counts[index]).collect();
        assert_replies(user.id, &texts(sim, user.id), &expected, &points);
    }
    for user in users {
        let left = stored_updates(redis, sim, user).await?;
        assert!(
            left.is_empty(),
            "user {}: updates left in the inbox after every reply went out, as \
             (update_id, text, recorded as applied): {left:?}",
            user.id
        );
    }
    let outboxes = outbox_sizes(redis, sim, users).await?;
    assert!(
        outboxes.iter().all(|&size| size == 0),
        "replies left in the outboxes: {outboxes:?}"
    );
    Ok(())
}

/// Five users send /tally and 100 numbers each in one burst. The host is
/// killed while most of it waits in Redis, then started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_spilled_inboxes_keeps_order() -> anyhow::Result<()> {
    const USERS: i64 = 5;
    const NUMBERS: i64 = 100;
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let flows = tally_flows()?;
    let users = users(41_000, USERS);

    sim.add_fault(FaultRule::new(Fault::Delay(SEND_DELAY)).for_method("sendMessage"));
    let mut host = start_host(&sim, &redis, &flows)?;
    start_tallies(&sim, &users);
    send_numbers(&sim, &users, 1..=NUMBERS);

    // Every update is stored once the simulator has seen it confirmed.
    sim.wait_until_idle(STEP_TIMEOUT).await?;
    wait_for_total_replies(&sim, &users, 8 * USERS as usize).await?;
    let spilled = spilled_total(&host).await?;
    assert!(
        spilled > 0.0,
        "the conversation queues overflowed into Redis"
    );
    let waiting: usize = inbox_sizes(&redis, &sim, &users).await?.iter().sum();
    let sent_at_kill = kill_and_count(&mut host, &sim, &users).await?;
    let all_updates = (USERS * (NUMBERS + 1)) as usize;
    assert!(
        waiting * 2 > all_updates,
        "most updates were still waiting in Redis just before the kill: {waiting} of {all_updates}"
    );

    sim.clear_faults();
    let mut host = start_host(&sim, &redis, &flows)?;
    wait_for_replies(&sim, &users, expected_replies(NUMBERS).len()).await?;
    assert_all_handled(&sim, &redis, &users, NUMBERS, &[sent_at_kill]).await?;
    host.stop()?;
    Ok(())
}

/// Kills during the read-back itself. New updates arrive while the
/// restarted host reads the inboxes back. One batch of them is stored but
/// not yet confirmed to the simulator at a kill, so it is delivered again,
/// and more updates arrive as the host starts once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_readback_keeps_order() -> anyhow::Result<()> {
    const USERS: i64 = 3;
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let flows = tally_flows()?;
    let users = users(42_000, USERS);

    // First run: a burst of /tally and 1..=60, killed early.
    let fast_sends =
        sim.add_fault(FaultRule::new(Fault::Delay(SEND_DELAY)).for_method("sendMessage"));
    let mut host = start_host(&sim, &redis, &flows)?;
    start_tallies(&sim, &users);
    send_numbers(&sim, &users, 1..=60);
    sim.wait_until_idle(STEP_TIMEOUT).await?;
    wait_for_total_replies(&sim, &users, 5 * USERS as usize).await?;
    let first_kill = kill_and_count(&mut host, &sim, &users).await?;
    sim.remove_fault(fast_sends);

    // Second run: sends are slow, so the read-back of about 50 updates per
    // user is still going on when 61..=90 arrive and when the host is
    // killed again. getUpdates is held back, so the host stores the batch
    // of 61..=90 but cannot confirm it before the kill.
    let slow_sends =
        sim.add_fault(FaultRule::new(Fault::Delay(SLOW_SEND_DELAY)).for_method("sendMessage"));
    let mut host = start_host(&sim, &redis, &flows)?;
    let resumed: Vec<usize> = first_kill.iter().map(|count| count + 5).collect();
    wait_for_messages_each(&sim, &users, &resumed).await?;
    let held_polls =
        sim.add_fault(FaultRule::new(Fault::Delay(POLL_HOLD)).for_method("getUpdates"));
    let burst = send_numbers(&sim, &users, 61..=90);
    let first_id = *burst.first().expect("the burst has updates");
    wait_for_stored(&redis, &sim, &users, first_id, 30).await?;
    let second_kill = kill_and_count(&mut host, &sim, &users).await?;
    let unconfirmed = sim.pending_updates();
    sim.remove_fault(held_polls);
    for (user, &count) in users.iter().zip(&second_kill) {
        assert!(
            count < expected_replies(60).len(),
            "user {}: the second kill came during the read-back ({count} messages)",
            user.id
        );
    }
    assert!(
        unconfirmed >= 30 * USERS as usize,
        "the batch of 61..=90 was not confirmed at the second kill: {unconfirmed} updates pending"
    );

    // Third run: 91..=100 arrive as the host starts, together with the
    // batch delivered again; killed once more during the read-back.
    let mut host = start_host(&sim, &redis, &flows)?;
    send_numbers(&sim, &users, 91..=100);
    let resumed: Vec<usize> = second_kill.iter().map(|count| count + 5).collect();
    wait_for_messages_each(&sim, &users, &resumed).await?;
    let third_kill = kill_and_count(&mut host, &sim, &users).await?;
    sim.remove_fault(slow_sends);
    for (user, &count) in users.iter().zip(&third_kill) {
        assert!(
            count < expected_replies(100).len(),
            "user {}: the third kill came during the read-back ({count} messages)",
            user.id
        );
    }

    // Last run: everything left is worked off.
    let mut host = start_host(&sim, &redis, &flows)?;
    wait_for_replies(&sim, &users, expected_replies(100).len()).await?;
    let kill_points = [first_kill, second_kill, third_kill];
    assert_all_handled(&sim, &redis, &users, 100, &kill_points).await?;
    host.stop()?;
    Ok(())
}

/// A batch that the host stored and fully handled, but whose offset never
/// reached the simulator before a kill, is delivered again after the
/// restart and stored in the inboxes again. The applied set must catch
/// every update of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_applied_batch_is_not_repeated() -> anyhow::Result<()> {
    const USERS: i64 = 2;
    // 2 users times 50 numbers fill one getUpdates response of 100 updates.
    const FIRST_BATCH: i64 = 50;
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let flows = tally_flows()?;
    let users = users(43_000, USERS);

    let mut host = start_host(&sim, &redis, &flows)?;
    start_tallies(&sim, &users);
    wait_for_replies(&sim, &users, 1).await?;
    sim.wait_until_idle(STEP_TIMEOUT).await?;

    let held_polls =
        sim.add_fault(FaultRule::new(Fault::Delay(POLL_HOLD)).for_method("getUpdates"));
    send_numbers(&sim, &users, 1..=FIRST_BATCH);
    wait_for_replies(&sim, &users, expected_replies(FIRST_BATCH).len()).await?;
    wait_for_empty_outboxes(&redis, &sim, &users).await?;
    let unconfirmed = sim.pending_updates();
    // Nothing was in flight, so no reply may go out twice.
    host.kill()?;
    sim.remove_fault(held_polls);
    assert_eq!(
        unconfirmed,
        (USERS * FIRST_BATCH) as usize,
        "the batch was handled but not confirmed at the kill"
    );

    let mut host = start_host(&sim, &redis, &flows)?;
    send_numbers(&sim, &users, FIRST_BATCH + 1..=100);
    wait_for_replies(&sim, &users, expected_replies(100).len()).await?;
    assert_all_handled(&sim, &redis, &users, 100, &[]).await?;
    let (status, metrics) = host.get("/metrics").await?;
    assert_eq!(status, 200, "{metrics}");
    let duplicates = metrics
        .lines()
        .find_map(|line| line.strip_prefix("flowbot_updates_total{outcome=\"duplicate\"} "))
        .and_then(|value| value.trim().parse::<f64>().ok());
    assert_eq!(
        duplicates,
        Some(unconfirmed as f64),
        "every update of the batch delivered again is skipped as applied: {metrics}"
    );
    host.stop()?;
    Ok(())
}

/// Like [`redelivered_applied_batch_is_not_repeated`], but the kill comes
/// when only part of the batch is handled: after the restart the inboxes
/// contain the rest of it, and the batch delivered again brings back the
/// handled part too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_partly_applied_batch_keeps_order() -> anyhow::Result<()> {
    const USERS: i64 = 2;
    const FIRST_BATCH: i64 = 50;
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let flows = tally_flows()?;
    let users = users(44_000, USERS);

    let mut host = start_host(&sim, &redis, &flows)?;
    start_tallies(&sim, &users);
    wait_for_replies(&sim, &users, 1).await?;
    sim.wait_until_idle(STEP_TIMEOUT).await?;

    let slow_sends =
        sim.add_fault(FaultRule::new(Fault::Delay(SEND_DELAY)).for_method("sendMessage"));
    let held_polls =
        sim.add_fault(FaultRule::new(Fault::Delay(POLL_HOLD)).for_method("getUpdates"));
    send_numbers(&sim, &users, 1..=FIRST_BATCH);
    wait_for_messages_each(&sim, &users, &[20, 20]).await?;
    let unconfirmed = sim.pending_updates();
    let sent_at_kill = kill_and_count(&mut host, &sim, &users).await?;
    sim.remove_fault(held_polls);
    sim.remove_fault(slow_sends);
    assert_eq!(
        unconfirmed,
        (USERS * FIRST_BATCH) as usize,
        "the batch was partly handled but not confirmed at the kill"
    );
    for (user, &count) in users.iter().zip(&sent_at_kill) {
        assert!(
            count < expected_replies(FIRST_BATCH).len(),
            "user {}: the kill came before the batch was handled ({count} messages)",
            user.id
        );
    }

    let mut host = start_host(&sim, &redis, &flows)?;
    send_numbers(&sim, &users, FIRST_BATCH + 1..=100);
    wait_for_replies(&sim, &users, expected_replies(100).len()).await?;
    assert_all_handled(&sim, &redis, &users, 100, &[sent_at_kill]).await?;
    host.stop()?;
    Ok(())
}

/// The batch delivered again after a kill arrives while the restarted host
/// is still sending the reply to an update of that batch that it has just
/// committed. The copy stored again must not stay in the inbox: once the
/// applied set no longer records its id, the next start would apply it a
/// second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_during_delivery_is_applied_once() -> anyhow::Result<()> {
    const FIRST_BATCH: i64 = 50;
    // More updates than the applied set keeps (100), so the ids of the batch
    // drop out of it.
    const LAST_NUMBER: i64 = 160;
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let flows = tally_flows()?;
    let users = users(45_000, 1);

    // First run: the batch 1..=50 is stored but never confirmed, and the
    // host is killed with most of it unhandled.
    let mut host = start_host(&sim, &redis, &flows)?;
    start_tallies(&sim, &users);
    wait_for_replies(&sim, &users, 1).await?;
    sim.wait_until_idle(STEP_TIMEOUT).await?;
    // Held longer than usual, because the next run's first poll waits 3 s.
    let held_polls =
        sim.add_fault(FaultRule::new(Fault::Delay(POLL_HOLD * 2)).for_method("getUpdates"));
    let slow_sends =
        sim.add_fault(FaultRule::new(Fault::Delay(SEND_DELAY)).for_method("sendMessage"));
    let batch = send_numbers(&sim, &users, 1..=FIRST_BATCH);
    wait_for_messages_each(&sim, &users, &[10]).await?;
    let first_kill = kill_and_count(&mut host, &sim, &users).await?;
    let unconfirmed = sim.pending_updates();
    sim.remove_fault(held_polls);
    sim.remove_fault(slow_sends);
    assert_eq!(
        unconfirmed, FIRST_BATCH as usize,
        "the batch was not confirmed at the kill"
    );

    // Second run: every send takes 2 s and the first getUpdates 3 s, so the
    // batch arrives again while the worker sends the reply to an update of
    // it that it has already committed.
    let slow_sends = sim
        .add_fault(FaultRule::new(Fault::Delay(Duration::from_secs(2))).for_method("sendMessage"));
    sim.add_fault(
        FaultRule::new(Fault::Delay(Duration::from_secs(3)))
            .for_method("getUpdates")
            .times(1),
    );
    let earlier_polls = sim.calls_to("getUpdates").len();
    let mut host = start_host(&sim, &redis, &flows)?;
    let newest = *batch.last().expect("the batch has updates");
    // The restarted host confirms the batch once it has dispatched it.
    let started = Instant::now();
    while !sim.calls_to("getUpdates")[earlier_polls..]
        .iter()
        .any(|call| {
            call.params["offset"]
                .as_i64()
                .is_some_and(|offset| offset > newest)
        })
    {
        anyhow::ensure!(
            started.elapsed() < STEP_TIMEOUT,
            "the restarted host did not receive the batch again"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sim.remove_fault(slow_sends);
    wait_for_replies(&sim, &users, expected_replies(FIRST_BATCH).len()).await?;
    send_numbers(&sim, &users, FIRST_BATCH + 1..=LAST_NUMBER);
    wait_for_replies(&sim, &users, expected_replies(LAST_NUMBER).len()).await?;
    tokio::time::sleep(SETTLE).await;
    let left = stored_updates(&redis, &sim, &users[0]).await?;
    assert!(
        left.is_empty(),
        "user {}: updates stored again while their replies were being sent stay in the \
         inbox, as (update_id, text, recorded as applied): {left:?}; once the applied set \
         no longer records them, the next start applies them a second time",
        users[0].id
    );
    host.stop()?;

    // Third run, after a clean stop: one more number.
    let mut host = start_host(&sim, &redis, &flows)?;
    send_numbers(&sim, &users, LAST_NUMBER + 1..=LAST_NUMBER + 1);
    wait_for_replies(&sim, &users, expected_replies(LAST_NUMBER + 1).len()).await?;
    assert_all_handled(&sim, &redis, &users, LAST_NUMBER + 1, &[first_kill]).await?;
    host.stop()?;
    Ok(())
}
