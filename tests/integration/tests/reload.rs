//! Hot reload: new builds written to the drop folder are installed and
//! served without a restart, broken builds are rejected while the old build
//! keeps serving, and conversations survive a change of state schema.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowbot::config::Config;
use flowbot_integration::{
    REPLY_TIMEOUT, SimUser, TestBot, drop_build, free_port, http_get, log_dialog_replies,
    patch_bytes, test_flow, with_custom_section,
};

/// The version string in the plain tally build.
const TALLY_V1: &str = "1.0.0-r00";

fn tally_version(round: usize) -> String {
    format!("1.0.0-r{round:02}")
}

/// A workouts build that differs from `component` only by a custom section,
/// so it has a digest of its own and the same behaviour.
fn workouts_variant(component: &[u8], round: usize) -> Vec<u8> {
    with_custom_section(component, "flowbot-test-build", &format!("round {round}"))
}

/// The version a tally reply names, as the round number of its build.
fn round_of(text: &str) -> usize {
    text.split_whitespace()
        .next()
        .and_then(|version| version.strip_prefix("1.0.0-r"))
        .and_then(|round| round.parse().ok())
        .unwrap_or_else(|| panic!("reply without a tally version: {text:?}"))
}

fn with_metrics(config: &mut Config) -> String {
    let address = format!("127.0.0.1:{}", free_port().expect("free port"));
    config.metrics.listen = address.clone();
    address
}

/// Waits until a fresh tally dialog of `probe` is answered by `version`.
async fn wait_for_version(bot: &TestBot, probe: &SimUser, version: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let count = bot.sim.messages(probe.id).len();
        let reply = bot.say(probe, "/tally", count + 1).await?;
        bot.say(probe, "/done", count + 2).await?;
        if reply.text.starts_with(version) {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < REPLY_TIMEOUT,
            "{version} not served within {REPLY_TIMEOUT:?}; last reply {:?}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_lose_nothing() -> anyhow::Result<()> {
    let bot = Arc::new(TestBot::start(&["workouts", "tally"]).await?);
    let tally = test_flow("tally")?;
    let workouts = std::fs::read(bot.flows_dir().join("workouts.wasm"))?;
    const USERS: i64 = 100;
    const ROUNDS: usize = 4;
    const RELOADS: usize = 20;

    // Each reload writes a new tally build (its version names the round)
    // and a new workouts build; the time each was written bounds from
    // above the build that may answer.
    let written = Arc::new(Mutex::new(vec![Instant::now()]));
    let reloader = {
        let (bot, written) = (bot.clone(), written.clone());
        tokio::spawn(async move {
            for round in 1..=RELOADS {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let build = patch_bytes(&tally, TALLY_V1, &tally_version(round))?;
                written.lock().unwrap().push(Instant::now());
                drop_build(bot.flows_dir(), "tally.wasm", &build)?;
                drop_build(
                    bot.flows_dir(),
                    "workouts.wasm",
                    &workouts_variant(&workouts, round),
                )?;
            }
            anyhow::Ok(())
        })
    };

    let mut users = tokio::task::JoinSet::new();
    for index in 0..USERS {
        let bot = bot.clone();
        users.spawn(async move {
            let logger = SimUser::new(7000 + index, format!("Logger{index}"));
            let counter = SimUser::new(8000 + index, format!("Counter{index}"));
            let exercise = format!("lift-{index}-Ω");
            let mut replies = Vec::new();
            for round in 0..ROUNDS {
                let sent = round * 3;
                bot.say(&logger, "/log", sent + 1).await?;
                bot.say(&logger, &exercise, sent + 2).await?;
                bot.say(&logger, "5", sent + 3).await?;

                let sent = round * 4;
                for (step, text) in ["/tally", "4", "6", "/done"].iter().enumerate() {
                    let reply = bot.say(&counter, text, sent + step + 1).await?;
                    replies.push((reply.text, Instant::now()));
                }
            }
            anyhow::Ok((logger, exercise, counter, replies))
        });
    }
    while let Some(result) = users.join_next().await {
        let (logger, exercise, counter, replies) = result??;
        let texts: Vec<String> = bot
            .sim
            .messages(logger.id)
            .into_iter()
            .map(|m| m.text)
            .collect();
        let expected = log_dialog_replies(&exercise, 5, ROUNDS);
        assert_eq!(texts, expected, "replies of user {}", logger.id);

        let written = written.lock().unwrap().clone();
        let mut newest_seen = 0;
        for (index, (text, received)) in replies.iter().enumerate() {
            let round = round_of(text);
            let expected_tail = match index % 4 {
                0 => "tally started".to_owned(),
                1 => "#1 sum 4".to_owned(),
                2 => "#2 sum 10".to_owned(),
                _ => format!("done: 2 numbers, sum 10, dialog {}", index / 4 + 1),
            };
            assert!(
                text.ends_with(&expected_tail),
                "user {}: {text:?}",
                counter.id
            );
            // A build answers only after it was written, and a user never
            // goes back to an older build.
            assert!(round < written.len(), "{text:?} from a build never written");
            assert!(
                written[round] <= *received,
                "{text:?} came before its build was written"
            );
            assert!(
                round >= newest_seen,
                "user {} went back to an older build: {text:?}",
                counter.id
            );
            newest_seen = round;
        }
        assert_eq!(
            bot.sim.messages(counter.id).len(),
            replies.len(),
            "no duplicates"
        );
    }
    reloader.await??;

    let probe = SimUser::new(9999, "Probe");
    wait_for_version(&bot, &probe, &tally_version(RELOADS)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_builds_are_rejected_and_old_keeps_serving() -> anyhow::Result<()> {
    let mut metrics = String::new();
    let bot = TestBot::start_with(&["tally"], |config| metrics = with_metrics(config)).await?;
    let ann = SimUser::new(1001, "Ann");
    assert_eq!(
        bot.say(&ann, "/tally", 1).await?.text,
        "1.0.0-r00 tally started"
    );

    let tally = test_flow("tally")?;
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "truncated.wasm",
            tally[..tally.len() / 2].to_vec(),
            "not a valid WebAssembly component",
        ),
        (
            "core-module.wasm",
            core_module,
            "not a valid WebAssembly component",
        ),
        (
            "wrong-world.wasm",
            empty_component,
            "does not match the flowbot:flow world",
        ),
    ];
    let mut sent = 1;
    for (name, bytes, reason) in cases {
        drop_build(bot.flows_dir(), name, &bytes)?;
        let started = Instant::now();
        let rejection = loop {
            let (_, body) = http_get(&metrics, "/flows").await?;
            let status: serde_json::Value = serde_json::from_str(&body)?;
            let key = bot.flows_dir().join(name).display().to_string();
            if let Some(error) = status["errors"][&key].as_str() {
                break error.to_owned();
            }
            anyhow::ensure!(
                started.elapsed() < REPLY_TIMEOUT,
                "{name} not rejected: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(rejection.contains(reason), "{name}: {rejection}");

        // The conversation goes on, on the build it had.
        sent += 1;
        let reply = bot.say(&ann, "2", sent).await?;
        assert_eq!(
            reply.text,
            format!("1.0.0-r00 #{} sum {}", sent - 1, 2 * (sent - 1))
        );
    }
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialog_migrates_to_a_new_schema() -> anyhow::Result<()> {
    let bot = TestBot::start(&["tally"]).await?;
    let ann = SimUser::new(1001, "Ann");
    bot.say(&ann, "/tally", 1).await?;
    bot.say(&ann, "5", 2).await?;
    assert_eq!(bot.say(&ann, "7", 3).await?.text, "1.0.0-r00 #2 sum 12");

    drop_build(
        bot.flows_dir(),
        "tally-schema2.wasm",
        &test_flow("tally-schema2")?,
    )?;
    let probe = SimUser::new(1002, "Probe");
    wait_for_version(&bot, &probe, "2.0.0-r00").await?;

    // The dialog moves to 2.0.0 with its numbers migrated.
    assert_eq!(bot.say(&ann, "3", 4).await?.text, "2.0.0-r00 #3 sum 15");
    let done = bot.say(&ann, "/done", 5).await?;
    assert_eq!(done.text, "2.0.0-r00 done: 3 numbers, sum 15, dialog 1");

    let mut redis = bot.redis.connection().await?;
    let key = "flowbot:b7000000001:{c1001:u1001}:state:tally";
    let schema: String = redis::cmd("HGET")
        .arg(key)
        .arg("schema")
        .query_async(&mut redis)
        .await?;
    assert_eq!(schema, "2");
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialog_without_migration_finishes_then_resets() -> anyhow::Result<()> {
    let bot = TestBot::start(&["tally"]).await?;
    let ann = SimUser::new(1001, "Ann");
    bot.say(&ann, "/tally", 1).await?;
    assert_eq!(bot.say(&ann, "5", 2).await?.text, "1.0.0-r00 #1 sum 5");

    let no_migrate = test_flow("tally-schema2-no-migrate")?;
    drop_build(
        bot.flows_dir(),
        "tally-schema2-no-migrate.wasm",
        &no_migrate,
    )?;
    let probe = SimUser::new(1002, "Probe");
    wait_for_version(&bot, &probe, "2.0.0-r00").await?;

    // The dialog stays on the build that wrote its state until it ends.
    assert_eq!(bot.say(&ann, "7", 3).await?.text, "1.0.0-r00 #2 sum 12");
    let done = bot.say(&ann, "/done", 4).await?;
    assert_eq!(done.text, "1.0.0-r00 done: 2 numbers, sum 12, dialog 1");

    // The next dialog starts on 2.0.0, which cannot read schema 1.
    bot.sim.send_text(&ann, "/tally");
    let messages = bot.sim.wait_for_messages(ann.id, 6, REPLY_TIMEOUT).await?;
    assert_eq!(
        messages[4].text,
        "Your saved progress could not be read by this version and was reset."
    );
    assert_eq!(messages[5].text, "2.0.0-r00 tally started");
    assert_eq!(
        bot.say(&ann, "/done", 7).await?.text,
        "2.0.0-r00 done: 0 numbers, sum 0, dialog 1"
    );
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_state_resets_with_a_notice() -> anyhow::Result<()> {
    let bot = TestBot::start(&["tally"]).await?;
    let mut redis = bot.redis.connection().await?;
    let cases = [
        // Undecodable bytes under the build's own schema.
        (1001, "not json", "1"),
        // A schema no loaded build reads, from a build that is not installed.
        (1002, "{}", "9"),
        // A record the host cannot parse.
        (1003, "{}", "not a number"),
    ];
    for (user_id, data, schema) in cases {
        let key = format!("flowbot:b7000000001:{{c{user_id}:u{user_id}}}:state:tally");
        let _: () = redis::cmd("HSET")
            .arg(&key)
            .arg(&[
                "data", data, "schema", schema, "version", "0.0.1", "digest", "00ff",
            ])
            .query_async(&mut redis)
            .await?;
        let user = SimUser::new(user_id, "User");
        bot.sim.send_text(&user, "/tally");
        let messages = bot.sim.wait_for_messages(user_id, 2, REPLY_TIMEOUT).await?;
        assert_eq!(
            messages[0].text,
            "Your saved progress could not be read by this version and was reset."
        );
        assert_eq!(messages[1].text, "1.0.0-r00 tally started");
        assert_eq!(bot.say(&user, "3", 3).await?.text, "1.0.0-r00 #1 sum 3");
    }
    bot.stop().await
}
