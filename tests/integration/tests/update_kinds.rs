//! Update kinds other than text, in the middle of a dialog and outside one:
//! nothing crashes, each gets an answer or is ignored by policy, and the
//! dialog goes on afterwards.

use flowbot_integration::{REPLY_TIMEOUT, SimUser, TestBot};
use serde_json::{Value, json};

fn ann_json() -> Value {
    json!({"id": 1001, "is_bot": false, "first_name": "Ann", "language_code": "en"})
}

fn ann_chat() -> Value {
    json!({"id": 1001, "first_name": "Ann", "type": "private"})
}

fn bot_member(status: &str) -> Value {
    json!({"user": {"id": 7000000001u64, "is_bot": true, "first_name": "Demo Flow Bot", "username": "demo_flow_bot"},
        "status": status, "until_date": 0})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_kinds_mid_dialog_get_hints() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let ann = SimUser::new(1001, "Ann");
    bot.say(&ann, "/workout", 1).await?;
    bot.say(&ann, "Leg day", 2).await?;

    // Each kind the flow receives, with the hint it answers.
    bot.sim.send_sticker(&ann);
    let sticker = bot.last_message(ann.id, 3).await?;
    assert!(
        sticker
            .text
            .starts_with("I can only read text here, not a sticker."),
        "{}",
        sticker.text
    );

    bot.sim.send_animation(&ann);
    let gif = bot.last_message(ann.id, 4).await?;
    assert!(
        gif.text
            .starts_with("I can only read text here, not a GIF."),
        "{}",
        gif.text
    );

    bot.sim.send_photo(&ann);
    let photo = bot.last_message(ann.id, 5).await?;
    assert!(
        photo
            .text
            .starts_with("I can only read text here, not a photo."),
        "{}",
        photo.text
    );

    bot.sim.push_update(
        json!({"edited_message": {"message_id": 2, "from": ann_json(), "chat": ann_chat(),
        "date": 1796374800, "edit_date": 1796374900, "text": "Arm day"}}),
    );
    let edited = bot.last_message(ann.id, 6).await?;
    assert!(
        edited
            .text
            .starts_with("Editing an earlier message changes nothing here."),
        "{}",
        edited.text
    );

    // A message kind from a future Bot API version that teloxide cannot parse.
    bot.sim.push_update(
        json!({"message": {"message_id": 90, "from": ann_json(), "chat": ann_chat(),
        "date": 1796374900, "hologram": {"file_id": "HOLO1", "depth": 3}}}),
    );
    let unknown = bot.last_message(ann.id, 7).await?;
    assert!(
        unknown.text.starts_with("I can only read text here"),
        "{}",
        unknown.text
    );

    // A channel post is ignored; it reaches no flow and gets no answer.
    bot.sim.push_update(json!({"channel_post": {"message_id": 5,
        "sender_chat": {"id": -1001234, "title": "News", "type": "channel"},
        "chat": {"id": -1001234, "title": "News", "type": "channel"}, "date": 1796374900, "text": "/workout"}}));

    // The dialog continues where it was.
    let added = bot.say(&ann, "squat 3x5 100kg", 8).await?;
    assert!(
        added.text.starts_with("Added squat 3x5 100kg."),
        "{}",
        added.text
    );
    assert!(
        bot.sim.messages(-1001234).is_empty(),
        "nothing is sent to the channel"
    );
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_kinds_outside_a_dialog() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let ann = SimUser::new(1001, "Ann");

    bot.sim.send_sticker(&ann);
    let reply = bot.last_message(ann.id, 1).await?;
    assert_eq!(
        reply.text,
        "I can't handle this here. Send /help to see what I can do."
    );

    bot.sim.send_animation(&ann);
    bot.last_message(ann.id, 2).await?;

    let reply = bot.say(&ann, "hello", 3).await?;
    assert_eq!(
        reply.text,
        "I didn't understand that. Send /help to see what I can do."
    );

    // An edit outside a dialog is not worth an answer; the next message is.
    bot.sim.push_update(
        json!({"edited_message": {"message_id": 1, "from": ann_json(), "chat": ann_chat(),
        "date": 1796374800, "edit_date": 1796374900, "text": "hi"}}),
    );
    let reply = bot.say(&ann, "/cancel", 4).await?;
    assert_eq!(reply.text, "Nothing to cancel.");
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_chat_is_marked_and_unblock_restores_it() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let ann = SimUser::new(1001, "Ann");
    bot.say(&ann, "/log", 1).await?;

    bot.sim.push_update(
        json!({"my_chat_member": {"chat": ann_chat(), "from": ann_json(), "date": 1796375600,
        "old_chat_member": bot_member("member"), "new_chat_member": bot_member("kicked")}}),
    );
    wait_for_flag(&bot, true).await?;

    bot.sim.push_update(
        json!({"my_chat_member": {"chat": ann_chat(), "from": ann_json(), "date": 1796375700,
        "old_chat_member": bot_member("kicked"), "new_chat_member": bot_member("member")}}),
    );
    wait_for_flag(&bot, false).await?;

    // The dialog state survived and the user is served again.
    let reply = bot.say(&ann, "squat", 2).await?;
    assert!(
        reply.text.starts_with("How many reps of squat?"),
        "{}",
        reply.text
    );
    bot.stop().await
}

/// Waits until the chat's inactive flag in Redis is `inactive`.
async fn wait_for_flag(bot: &TestBot, inactive: bool) -> anyhow::Result<()> {
    use redis::AsyncCommands;
    let mut redis = bot.redis.connection().await?;
    let started = std::time::Instant::now();
    loop {
        let flag: bool = redis
            .hexists("flowbot:b7000000001:chat:1001", "inactive")
            .await?;
        if flag == inactive {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < REPLY_TIMEOUT,
            "inactive flag never became {inactive}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
