//! Durability: the host process is killed with SIGKILL in the middle of a
//! 200-user run and started again; every step is applied exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use botapi_sim::{SimConfig, Simulator};
use flowbot_integration::{HostProcess, RedisServer, SimUser, TempDir, built_flows_dir};
use redis::AsyncCommands;

const USERS: i64 = 200;
const ROUNDS: usize = 3;
/// Generous, because the host is down for a while in the middle.
const STEP_TIMEOUT: Duration = Duration::from_secs(90);

/// Waits until the chat has `count` replies, not counting a reply repeated
/// right after itself: the host sends a reply twice only when it died between
/// sending it and recording that it was sent.
async fn wait_for_distinct_replies(
    sim: &Simulator,
    chat_id: i64,
    count: usize,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let mut texts: Vec<String> = sim.messages(chat_id).into_iter().map(|m| m.text).collect();
        texts.dedup();
        if texts.len() >= count {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < STEP_TIMEOUT,
            "chat {chat_id}: {} of {count} replies: {texts:?}",
            texts.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_and_repeats_nothing() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let flows = TempDir::new("restart-flows");
    std::fs::copy(
        built_flows_dir().join("workouts.wasm"),
        flows.path().join("workouts.wasm"),
    )?;
    let mut host = HostProcess::start(&sim, &redis, flows.path())?;

    let steps_done = Arc::new(AtomicUsize::new(0));
    let mut users = tokio::task::JoinSet::new();
    for index in 0..USERS {
        let sim = sim.clone();
        let steps_done = steps_done.clone();
        users.spawn(async move {
            let user = SimUser::new(7000 + index, format!("User{index}"));
            let exercise = format!("press-{index}");
            let mut answered = 0;
            for _ in 0..ROUNDS {
                for text in ["/log", exercise.as_str(), "5"] {
                    sim.send_text(&user, text);
                    answered += 1;
                    wait_for_distinct_replies(&sim, user.id, answered).await?;
                    steps_done.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(user)
        });
    }

    // Kill the host once about a third of all steps are answered.
    let total_steps = USERS as usize * ROUNDS * 3;
    while steps_done.load(Ordering::Relaxed) < total_steps / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    host.kill()?;
    let answered_at_kill = steps_done.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut host = HostProcess::start(&sim, &redis, flows.path())?;

    let mut redis_connection = redis.connection().await?;
    while let Some(result) = users.join_next().await {
        let user = result??;
        let state_key = format!(
            "flowbot:b7000000001:{{c{}:u{}}}:state:workouts",
            user.id, user.id
        );
        let state: Vec<u8> = redis_connection.hget(&state_key, "data").await?;
        let state: serde_json::Value = serde_json::from_slice(&state)?;
        assert_eq!(
            state["sets_logged"], ROUNDS,
            "user {} state: {state}",
            user.id
        );

        let texts: Vec<String> = sim.messages(user.id).into_iter().map(|m| m.text).collect();
        let last = texts.last().cloned().unwrap_or_default();
        assert_eq!(
            last,
            format!(
                "Logged press-{}: 5 reps. Sets logged today: {ROUNDS}.",
                user.id - 7000
            )
        );
        // Only a reply in flight at the kill may repeat, and then right after itself.
        let mut distinct = texts.clone();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            ROUNDS * 3,
            "user {} replies: {texts:?}",
            user.id
        );
    }
    assert!(answered_at_kill < total_steps, "the kill happened mid-run");
    host.stop()?;
    Ok(())
}
