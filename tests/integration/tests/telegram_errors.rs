//! Bot API errors and double taps, with the error bodies Telegram sends.

use std::time::Duration;

use botapi_sim::{Fault, FaultRule};
use flowbot_integration::{REPLY_TIMEOUT, SimUser, TestBot};
use serde_json::{Value, json};

const NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";

fn press_update(
    query_id: &str,
    user: &SimUser,
    message: &botapi_sim::BotMessage,
    data: &str,
) -> Value {
    json!({"callback_query": {"id": query_id,
        "from": {"id": user.id, "is_bot": false, "first_name": user.first_name, "language_code": "en"},
        "message": {"message_id": message.message_id,
            "from": {"id": 7000000001u64, "is_bot": true, "first_name": "Demo Flow Bot", "username": "demo_flow_bot"},
            "chat": {"id": user.id, "first_name": user.first_name, "type": "private"},
            "date": 1796374950, "text": message.text, "reply_markup": message.reply_markup},
        "chat_instance": "-5500000000000000401", "data": data}})
}

/// Starts a workout with one set and returns the message with Finish/Cancel.
async fn workout_with_one_set(
    bot: &TestBot,
    user: &SimUser,
) -> anyhow::Result<botapi_sim::BotMessage> {
    bot.say(user, "/workout", 1).await?;
    bot.say(user, "Leg day", 2).await?;
    bot.say(user, "squat 3x5 100kg", 3).await
}

/// Two presses of the same button within milliseconds apply once, and
/// both presses are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_tap_applies_once() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let ann = SimUser::new(1001, "Ann");
    let set = workout_with_one_set(&bot, &ann).await?;
    let finish = set.buttons()[0].1.clone();

    bot.sim.push_batch(vec![
        press_update("4400000000000000401", &ann, &set, &finish),
        press_update("4400000000000000402", &ann, &set, &finish),
    ]);
    let summary = bot.last_message(ann.id, 4).await?;
    assert!(
        summary.text.starts_with("Saved workout #1"),
        "{}",
        summary.text
    );
    wait_until(
        || bot.sim.callback_answers().len() == 2,
        "both presses answered",
    )
    .await?;

    let history = bot.say(&ann, "/history", 5).await?;
    assert_eq!(
        history.text,
        "Last workouts, newest first:\n#1 Leg day: 3 sets, volume 1500 kg"
    );
    bot.stop().await
}

/// A send that fails because the user blocked the bot (or is gone)
/// marks the chat inactive; nothing more is sent until the bot is a member again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_send_errors_stop_sending() -> anyhow::Result<()> {
    let cases = [
        (403, "Forbidden: bot was blocked by the user"),
        (403, "Forbidden: user is deactivated"),
        (400, "Bad Request: chat not found"),
    ];
    for (status, description) in cases {
        let bot = TestBot::start(&["workouts"]).await?;
        let ann = SimUser::new(1001, "Ann");
        bot.say(&ann, "/help", 1).await?;

        bot.sim.add_fault(
            FaultRule::new(Fault::api_error(status, description))
                .for_method("sendMessage")
                .for_chat(ann.id),
        );
        bot.sim.send_text(&ann, "/log");
        wait_until(|| sends_to(&bot, ann.id) == 2, "the failing send was made").await?;
        bot.sim.send_text(&ann, "/help");
        bot.sim.wait_until_idle(REPLY_TIMEOUT).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            sends_to(&bot, ann.id),
            2,
            "{description}: no send after the final error"
        );

        // The user comes back: the bot is a member of the chat again.
        bot.sim.clear_faults();
        let member = |status: &str| json!({"user": {"id": 7000000001u64, "is_bot": true, "first_name": "Demo Flow Bot", "username": "demo_flow_bot"}, "status": status, "until_date": 0});
        bot.sim.push_update(
            json!({"my_chat_member": {"chat": {"id": 1001, "first_name": "Ann", "type": "private"},
            "from": {"id": 1001, "is_bot": false, "first_name": "Ann"}, "date": 1796375700,
            "old_chat_member": member("kicked"), "new_chat_member": member("member")}}),
        );
        let help = bot.say(&ann, "/help", 2).await?;
        assert!(
            help.text.starts_with("Here is what I can do"),
            "{description}: {}",
            help.text
        );
        bot.stop().await?;
    }
    Ok(())
}

/// A 429 with `retry_after` holds every request to that chat until the
/// time is up, then the reply goes out; other chats keep getting replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_control_waits_for_retry_after() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let ann = SimUser::new(1001, "Ann");
    let ben = SimUser::new(1002, "Ben");

    bot.sim.add_fault(
        FaultRule::new(Fault::retry_after(3))
            .for_method("sendMessage")
            .for_chat(ann.id)
            .times(1),
    );
    bot.sim.send_text(&ann, "/help");
    let ben_reply = bot.say(&ben, "/log", 1).await?;
    assert!(
        ben_reply.text.starts_with("Which exercise?"),
        "{}",
        ben_reply.text
    );

    let help = bot.last_message(ann.id, 1).await?;
    assert!(
        help.text.starts_with("Here is what I can do"),
        "{}",
        help.text
    );
    let to_ann: Vec<_> = bot
        .sim
        .calls_to("sendMessage")
        .into_iter()
        .filter(|call| call.chat_id == Some(ann.id))
        .collect();
    assert_eq!(to_ann.len(), 2, "one refused attempt, one after the wait");
    let waited = to_ann[1].received_at.duration_since(to_ann[0].received_at);
    assert!(
        waited >= Duration::from_secs(3),
        "retried after {waited:?}, before retry_after ended"
    );
    bot.stop().await
}

/// "message is not modified" is success and "message to edit not
/// found" sends the text as a new message; neither reaches the user as an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_errors_are_settled_by_policy() -> anyhow::Result<()> {
    let bot = TestBot::start(&["exercises"]).await?;
    let ann = SimUser::new(1001, "Ann");
    for (index, name) in ["Squat", "Row"].into_iter().enumerate() {
        let sent = index * 3;
        bot.say(&ann, "/addexercise", sent + 1).await?;
        let group = bot.say(&ann, name, sent + 2).await?;
        let legs = group.buttons()[2].1.clone();
        bot.press(&ann, group.message_id, &legs, sent + 3).await?;
    }
    let list = bot.say(&ann, "/exercises", 7).await?;

    // The edit after the first delete is refused as not modified.
    bot.sim.add_fault(
        FaultRule::new(Fault::api_error(400, NOT_MODIFIED))
            .for_method("editMessageText")
            .times(1),
    );
    bot.sim
        .press_button(&ann, list.message_id, &list.buttons()[0].1);
    wait_until(|| bot.sim.callback_answers().len() == 3, "press answered").await?;
    bot.sim.wait_until_idle(REPLY_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        bot.sim.messages(ann.id).len(),
        7,
        "no error message after not modified"
    );

    // The list message is gone: the new list arrives as a new message.
    bot.sim.add_fault(
        FaultRule::new(Fault::api_error(
            400,
            "Bad Request: message to edit not found",
        ))
        .for_method("editMessageText")
        .times(1),
    );
    bot.sim
        .press_button(&ann, list.message_id, &list.buttons()[1].1);
    let replacement = bot.last_message(ann.id, 8).await?;
    assert!(
        replacement.text.starts_with("You have no exercises left"),
        "{}",
        replacement.text
    );
    bot.stop().await
}

fn sends_to(bot: &TestBot, chat_id: i64) -> usize {
    bot.sim
        .calls_to("sendMessage")
        .iter()
        .filter(|call| call.chat_id == Some(chat_id))
        .count()
}

async fn wait_until(condition: impl Fn() -> bool, what: &str) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    while !condition() {
        anyhow::ensure!(
            started.elapsed() < REPLY_TIMEOUT,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
