//! Updates that queued up while the host was down are worked off
//! in order per conversation, and replies queued at SIGTERM survive the
//! restart. Also: a slow chat and a flooded chat do not starve other users,
//! and a conversation with more updates than its queue keeps in memory gets
//! them all.

use std::time::Duration;

use botapi_sim::{Fault, FaultRule, SimConfig, Simulator};
use flowbot_integration::{HostProcess, RedisServer, SimUser, TempDir, TestBot, built_flows_dir};
use serde_json::json;

const BACKLOG_USERS: i64 = 300;
const BACKLOG_UPDATES: i64 = 2_000;
const FIRST_UPDATE_ID: i64 = 200_001;

fn flows_dir() -> anyhow::Result<TempDir> {
    let flows = TempDir::new("backlog-flows");
    std::fs::copy(
        built_flows_dir().join("workouts.wasm"),
        flows.path().join("workouts.wasm"),
    )?;
    Ok(flows)
}

/// The texts of step `step` of the `/log` dialog of user `index`: what the
/// user sends and what the bot replies.
fn dialog_step(index: i64, step: i64, round: i64) -> (String, String) {
    match step {
        0 => (
            "/log".to_owned(),
            "Which exercise? Send its name, for example squat.".to_owned(),
        ),
        1 => (
            format!("row-{index}"),
            format!("How many reps of row-{index}? Send a whole number, for example 5."),
        ),
        _ => (
            "6".to_owned(),
            format!(
                "Logged row-{index}: 6 reps. Sets logged today: {}.",
                round + 1
            ),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_after_downtime_is_worked_off_in_order() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let flows = flows_dir()?;

    // 2,000 updates from 300 users, round-robin, each user's in dialog order,
    // with dates spread over ten minutes of downtime.
    let mut backlog = Vec::new();
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); BACKLOG_USERS as usize];
    for offset in 0..BACKLOG_UPDATES {
        let index = offset % BACKLOG_USERS;
        let position = offset / BACKLOG_USERS;
        let (text, reply) = dialog_step(index, position % 3, position / 3);
        let user_id = 20_000 + index;
        let mut update = json!({"update_id": FIRST_UPDATE_ID + offset, "message": {"message_id": position + 1,
            "from": {"id": user_id, "is_bot": false, "first_name": format!("User{index}"), "language_code": "en"},
            "chat": {"id": user_id, "first_name": format!("User{index}"), "type": "private"},
            "date": 1796376300 + offset * 600 / BACKLOG_UPDATES, "text": text}});
        if text.starts_with('/') {
            update["message"]["entities"] =
                json!([{"type": "bot_command", "offset": 0, "length": text.len()}]);
        }
        backlog.push(update);
        expected[index as usize].push(reply);
    }
    sim.push_batch(backlog);

    // Each user has 6 or 7 updates waiting, more than the queue keeps, so
    // they are read back from Redis in several turns.
    let settings = "[dispatch]\nmax_queued = 4\n";
    let mut host = HostProcess::start_with(&sim, &redis, flows.path(), settings, &[])?;
    sim.wait_until_idle(Duration::from_secs(300)).await?;
    for (index, replies) in expected.iter().enumerate() {
        let user_id = 20_000 + index as i64;
        let messages = sim
            .wait_for_messages(user_id, replies.len(), Duration::from_secs(120))
            .await?;
        let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, *replies, "replies of user {user_id}, in order");
    }

    let (status, health) = host.get("/healthz").await?;
    assert_eq!(status, 200, "{health}");
    let (status, metrics) = host.get("/metrics").await?;
    assert_eq!(status, 200);
    let handled = metrics
        .lines()
        .find_map(|line| line.strip_prefix("flowbot_updates_total{outcome=\"handled\"} "))
        .and_then(|value| value.parse::<f64>().ok());
    assert_eq!(handled, Some(BACKLOG_UPDATES as f64), "{metrics}");
    let flow_calls = "flowbot_flow_calls_total{flow=\"workouts\",version=\"0.1.0\",digest=\"";
    assert!(metrics.contains(flow_calls), "{metrics}");
    assert!(metrics.contains("\",result=\"ok\"} "), "{metrics}");

    // Once the backlog is worked off, no conversation has work in memory.
    let started = std::time::Instant::now();
    loop {
        let (_, metrics) = host.get("/metrics").await?;
        let idle = metrics.contains("\nflowbot_dispatch_queued_updates 0\n")
            && metrics.contains("\nflowbot_dispatch_busy_conversations 0\n");
        if idle {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "dispatch gauges not back to 0: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    host.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_queued_at_sigterm_survive_restart() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let flows = flows_dir()?;
    let ann = SimUser::new(1001, "Ann");

    // Every send takes 300 ms, so replies pile up in the outbox.
    sim.add_fault(
        FaultRule::new(Fault::Delay(Duration::from_millis(300))).for_method("sendMessage"),
    );
    let mut host = HostProcess::start(&sim, &redis, flows.path())?;
    for _ in 0..50 {
        sim.send_text(&ann, "/help");
    }
    sim.wait_for_messages(ann.id, 3, Duration::from_secs(60))
        .await?;
    host.stop()?;
    let sent_at_stop = sim.messages(ann.id).len();
    assert!(
        sent_at_stop < 50,
        "the stop came while replies were queued ({sent_at_stop} sent)"
    );

    sim.clear_faults();
    let mut host = HostProcess::start(&sim, &redis, flows.path())?;
    let messages = sim
        .wait_for_messages(ann.id, 50, Duration::from_secs(120))
        .await?;
    assert!(
        messages
            .iter()
            .all(|m| m.text.starts_with("Here is what I can do"))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // At most the reply in flight at the stop goes out twice.
    let total = sim.messages(ann.id).len();
    assert!(
        (50..=51).contains(&total),
        "{total} replies for 50 requests"
    );
    host.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_flooded_chats_do_not_starve_others() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let slow = SimUser::new(3001, "Slow");
    let flooder = SimUser::new(3002, "Flood");

    // Sends to the slow chat take 3 s each; the flooder queues 1,000 updates.
    bot.sim.add_fault(
        FaultRule::new(Fault::Delay(Duration::from_secs(3)))
            .for_method("sendMessage")
            .for_chat(slow.id),
    );
    for _ in 0..5 {
        bot.sim.send_text(&slow, "/help");
    }
    let flood: Vec<_> = (0..1_000)
        .map(|index| {
            json!({"message": {"message_id": index + 1,
                "from": {"id": flooder.id, "is_bot": false, "first_name": "Flood"},
                "chat": {"id": flooder.id, "first_name": "Flood", "type": "private"},
                "date": 1796376300, "text": "spam"}})
        })
        .collect();
    bot.sim.push_batch(flood);

    // Ten other users still get through their whole dialog.
    let mut users = tokio::task::JoinSet::new();
    let bot = std::sync::Arc::new(bot);
    for index in 0..10 {
        let bot = bot.clone();
        users.spawn(async move {
            let user = SimUser::new(3100 + index, format!("User{index}"));
            bot.say(&user, "/log", 1).await?;
            bot.say(&user, "squat", 2).await?;
            let logged = bot.say(&user, "5", 3).await?;
            anyhow::ensure!(
                logged.text.starts_with("Logged squat: 5 reps."),
                "{}",
                logged.text
            );
            anyhow::Ok(())
        });
    }
    while let Some(result) = users.join_next().await {
        result??;
    }
    assert!(
        bot.sim.messages(slow.id).len() < 5,
        "the slow chat was still being served"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_beyond_queue_is_handled_in_order() -> anyhow::Result<()> {
    let bot = TestBot::start_with(&["tally"], |config| config.dispatch.max_queued = 4).await?;
    let ann = SimUser::new(1001, "Ann");

    // 1 + 150 updates against a queue of 4: most of them wait in Redis.
    bot.sim.send_text(&ann, "/tally");
    for number in 1..=150 {
        bot.sim.send_text(&ann, &number.to_string());
    }
    let messages = bot
        .sim
        .wait_for_messages(ann.id, 151, Duration::from_secs(120))
        .await?;

    assert_eq!(messages[0].text, "1.0.0-r00 tally started");
    for (index, message) in messages[1..].iter().enumerate() {
        let count = index as i64 + 1;
        let sum = count * (count + 1) / 2;
        assert_eq!(message.text, format!("1.0.0-r00 #{count} sum {sum}"));
    }
    bot.settle().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bot.sim.messages(ann.id).len(), 151, "no reply twice");
    let spilled = flowbot::metrics::value("flowbot_dispatch_spilled_total", &[]);
    assert!(spilled > 0.0, "the queue overflowed into Redis");
    Ok(())
}
