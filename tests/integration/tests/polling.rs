//! Long polling survives a 502 HTML page, 502 and 504 error
//! bodies, a hung connection and a reset connection, and then handles the
//! next update exactly once.

use std::time::Duration;

use botapi_sim::{Fault, FaultRule};
use flowbot_integration::{SimUser, TestBot};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_outlives_gateway_errors_and_hangs() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let ann = SimUser::new(1001, "Ann");

    let gateway_page = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>";
    let faults = [
        Fault::Raw {
            status: 502,
            content_type: "text/html".to_owned(),
            body: gateway_page.to_owned(),
        },
        Fault::api_error(502, "Bad Gateway"),
        Fault::api_error(504, "Gateway Timeout"),
        Fault::Hang,
        Fault::Reset,
    ];
    for fault in faults {
        bot.sim
            .add_fault(FaultRule::new(fault).for_method("getUpdates").times(1));
    }
    // The long poll in flight when the faults were added would take the
    // update at once; push it only after the first fault was served.
    let started = std::time::Instant::now();
    while !bot
        .sim
        .calls_to("getUpdates")
        .iter()
        .any(|call| call.status == Some(502))
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "no poll reached the faults"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let polls_before = bot.sim.calls_to("getUpdates").len();
    bot.sim
        .push_update(json!({"update_id": 101601, "message": {"message_id": 160,
        "from": {"id": 1001, "is_bot": false, "first_name": "Ann", "language_code": "en"},
        "chat": {"id": 1001, "first_name": "Ann", "type": "private"},
        "date": 1796375900, "text": "still there?"}}));

    // Three 5xx answers (teloxide waits 10 s on each), a hang cut off by the
    // client timeout, a reset, then the update.
    let reply = bot
        .sim
        .wait_for_messages(ann.id, 1, Duration::from_secs(120))
        .await?;
    assert_eq!(
        reply[0].text,
        "I didn't understand that. Send /help to see what I can do."
    );

    bot.sim.wait_until_idle(Duration::from_secs(30)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        bot.sim.messages(ann.id).len(),
        1,
        "the update is handled exactly once"
    );

    // Failed calls never moved the offset: every poll before the update was
    // delivered asked for the same offset or none.
    let offsets: Vec<Option<i64>> = bot.sim.calls_to("getUpdates")[polls_before..]
        .iter()
        .map(|call| call.params.get("offset").and_then(|offset| offset.as_i64()))
        .collect();
    assert!(offsets.len() >= 6, "the loop kept polling: {offsets:?}");
    let first = offsets[0];
    let first_advance = offsets.iter().position(|offset| *offset == Some(101602));
    let before_advance = &offsets[..first_advance.unwrap_or(offsets.len())];
    assert!(
        before_advance.iter().all(|offset| *offset == first),
        "offset moved on a failed call: {offsets:?}"
    );
    bot.stop().await
}
