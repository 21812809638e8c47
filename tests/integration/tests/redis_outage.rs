//! Redis going away while the host works through a conversation's updates:
//! the updates wait until Redis is back and are then handled in order, none
//! skipped.

use std::time::Duration;

use botapi_sim::{Fault, FaultRule};
use flowbot_integration::{SimUser, TestBot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_wait_out_a_redis_restart() -> anyhow::Result<()> {
    let mut bot = TestBot::start(&["tally"]).await?;
    let ann = SimUser::new(1001, "Ann");
    bot.say(&ann, "/tally", 1).await?;

    // Sends take 1 s, so Redis stops while the reply to 1 is on its way
    // and 2 and 3 wait behind it.
    let slow_sends = bot
        .sim
        .add_fault(FaultRule::new(Fault::Delay(Duration::from_secs(1))).for_method("sendMessage"));
    let sends_before = bot.sim.calls_to("sendMessage").len();
    for number in ["1", "2", "3"] {
        bot.sim.send_text(&ann, number);
    }
    let started = std::time::Instant::now();
    while bot.sim.calls_to("sendMessage").len() == sends_before {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "no reply to 1 was sent"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Longer than 6 attempts with backoff take (about 10 s here), so an
    // update that gave up after 6 failed attempts would be skipped.
    bot.redis.restart_after(Duration::from_secs(15)).await?;
    bot.sim.remove_fault(slow_sends);

    // The reply sent while Redis was down could not be removed from the
    // outbox, so it may go out once more, right after itself.
    let distinct = |sim: &botapi_sim::Simulator| {
        let mut texts: Vec<String> = sim
            .messages(ann.id)
            .into_iter()
            .map(|message| message.text)
            .collect();
        let sent = texts.len();
        texts.dedup();
        (texts, sent)
    };
    let started = std::time::Instant::now();
    while distinct(&bot.sim).0.len() < 4 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (texts, sent) = distinct(&bot.sim);
    let expected = [
        "1.0.0-r00 tally started",
        "1.0.0-r00 #1 sum 1",
        "1.0.0-r00 #2 sum 3",
        "1.0.0-r00 #3 sum 6",
    ];
    assert_eq!(texts, expected, "every number counted once, in order");
    assert!(sent <= expected.len() + 1, "{sent} messages sent");
    Ok(())
}
