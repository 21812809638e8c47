//! A flow that misbehaves on purpose (tests/flows/hostile): loops forever,
//! exhausts memory, panics, returns oversized output or reaches for files,
//! the environment and sockets. The user gets an apology, nothing is
//! committed, other users are served, and the next update works.

use std::time::Duration;

use flowbot::config::Config;
use flowbot_integration::{REPLY_TIMEOUT, SimUser, TestBot};

const APOLOGY_START: &str = "Sorry, something went wrong on our side";
const TOO_SLOW_START: &str = "Sorry, that took too long on our side";

fn short_deadline(config: &mut Config) {
    config.limits.deadline_ms = 500;
}

/// A guest that never yields is stopped at its deadline while ten other
/// users are answered, on whichever runtime flavour the test runs.
async fn spin_is_stopped_while_others_are_served() -> anyhow::Result<()> {
    let bot = std::sync::Arc::new(TestBot::start_with(&["hostile"], short_deadline).await?);
    let ann = SimUser::new(1001, "Ann");
    bot.sim.send_text(&ann, "/spin");

    let mut others = tokio::task::JoinSet::new();
    for index in 0..10 {
        let bot = bot.clone();
        others.spawn(async move {
            let user = SimUser::new(1002 + index, format!("User{index}"));
            let pong = bot.say(&user, "/ping", 1).await?;
            anyhow::ensure!(pong.text == "pong 1", "{}", pong.text);
            anyhow::Ok(())
        });
    }
    while let Some(result) = others.join_next().await {
        result??;
    }

    let stopped = bot.last_message(ann.id, 1).await?;
    assert!(stopped.text.starts_with(TOO_SLOW_START), "{}", stopped.text);
    let pong = bot.say(&ann, "/ping", 2).await?;
    assert_eq!(
        pong.text, "pong 1",
        "a fresh instance serves the next update"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spin_stopped_on_multi_thread_runtime() -> anyhow::Result<()> {
    spin_is_stopped_while_others_are_served().await
}

#[tokio::test(flavor = "current_thread")]
async fn spin_stopped_on_current_thread_runtime() -> anyhow::Result<()> {
    spin_is_stopped_while_others_are_served().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_commits_nothing_and_next_works() -> anyhow::Result<()> {
    let bot = TestBot::start(&["hostile"]).await?;
    let ann = SimUser::new(1001, "Ann");
    let ben = SimUser::new(1002, "Ben");

    assert_eq!(bot.say(&ann, "/ping", 1).await?.text, "pong 1");
    assert_eq!(bot.say(&ann, "/div 10 2", 2).await?.text, "5");
    let trapped = bot.say(&ann, "/div 10 0", 3).await?;
    assert!(trapped.text.starts_with(APOLOGY_START), "{}", trapped.text);
    assert_eq!(bot.say(&ann, "/div 9 3", 4).await?.text, "3");
    assert_eq!(bot.say(&ben, "/div 8 4", 1).await?.text, "2");
    // The ping count in state went on from before the trap.
    assert_eq!(bot.say(&ann, "/ping", 5).await?.text, "pong 2");
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hog_is_stopped_at_the_cap() -> anyhow::Result<()> {
    let bot =
        TestBot::start_with(&["hostile"], |config| config.limits.memory_bytes = 32 << 20).await?;
    let ann = SimUser::new(1001, "Ann");
    let stopped = bot.say(&ann, "/hog", 1).await?;
    assert!(stopped.text.starts_with(APOLOGY_START), "{}", stopped.text);
    assert_eq!(bot.say(&ann, "/ping", 2).await?.text, "pong 1");
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_output_commits_nothing() -> anyhow::Result<()> {
    let bot = TestBot::start(&["hostile"]).await?;
    let ann = SimUser::new(1001, "Ann");
    assert_eq!(bot.say(&ann, "/ping", 1).await?.text, "pong 1");

    // A ping after each failure shows the state as it was before it, and
    // keeps the failures from coming in a row, which would reset the state.
    let mut count = 1;
    for (index, command) in ["/bigstate", "/flood", "/longtext 100000"]
        .iter()
        .enumerate()
    {
        count += 1;
        let reply = bot.say(&ann, command, count).await?;
        assert!(
            reply.text.starts_with(APOLOGY_START),
            "{command}: {}",
            reply.text
        );
        count += 1;
        assert_eq!(
            bot.say(&ann, "/ping", count).await?.text,
            format!("pong {}", index + 2),
            "state is as before {command}"
        );
    }
    count -= 1;

    // A text over Telegram's 4,096 characters but under the cap is split.
    bot.sim.send_text(&ann, "/longtext 5000");
    let messages = bot
        .sim
        .wait_for_messages(ann.id, count + 3, REPLY_TIMEOUT)
        .await?;
    let lengths: Vec<usize> = messages[count + 1..].iter().map(|m| m.text.len()).collect();
    assert_eq!(lengths, [4096, 904]);
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_grants_no_files_env_or_sockets() -> anyhow::Result<()> {
    let bot = TestBot::start(&["hostile"]).await?;
    let ann = SimUser::new(1001, "Ann");
    let reply = bot.say(&ann, "/peek", 1).await?;
    let lines: Vec<&str> = reply.text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", reply.text);
    assert!(lines[0].starts_with("file: denied"), "{}", lines[0]);
    assert!(lines[1].starts_with("env: denied"), "{}", lines[1]);
    assert!(lines[2].starts_with("socket: denied"), "{}", lines[2]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_turns_new_conversations_away() -> anyhow::Result<()> {
    let bot =
        TestBot::start_with(&["hostile"], |config| config.limits.breaker_failures = 3).await?;
    let ann = SimUser::new(1001, "Ann");
    for count in 1..=3 {
        let trapped = bot.say(&ann, "/div 1 0", count).await?;
        assert!(trapped.text.starts_with(APOLOGY_START), "{}", trapped.text);
    }

    let ben = SimUser::new(1002, "Ben");
    let turned_away = bot.say(&ben, "/ping", 1).await?;
    assert_eq!(
        turned_away.text,
        "hostile is unavailable right now because it keeps failing. Please try again in a few minutes."
    );
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_that_keeps_failing_is_reset() -> anyhow::Result<()> {
    let bot = TestBot::start(&["hostile"]).await?;
    let mut redis = bot.redis.connection().await?;
    let key = "flowbot:b7000000001:{c1001:u1001}:state:hostile";
    let _: () = redis::cmd("HSET")
        .arg(key)
        .arg(&[
            "data",
            r#"{"pings":7,"poisoned":true}"#,
            "schema",
            "1",
            "version",
            "0.1.0",
        ])
        .query_async(&mut redis)
        .await?;

    let ann = SimUser::new(1001, "Ann");
    for count in 1..=3 {
        let trapped = bot.say(&ann, "/ping", count).await?;
        assert!(trapped.text.starts_with(APOLOGY_START), "{}", trapped.text);
    }
    // After three failures in a row the state is dropped with a notice,
    // before the breaker (five failures by default) turns users away.
    bot.sim.send_text(&ann, "/ping");
    let messages = bot.sim.wait_for_messages(ann.id, 5, REPLY_TIMEOUT).await?;
    assert_eq!(
        messages[3].text,
        "Your saved progress could not be read by this version and was reset."
    );
    assert_eq!(messages[4].text, "pong 1");
    assert_eq!(bot.say(&ann, "/ping", 6).await?.text, "pong 2");
    bot.stop().await
}
