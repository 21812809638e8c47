//! Concurrent users never see each other's data, and one user's burst is
//! handled in order, from real Bot API JSON.

use std::sync::Arc;

use flowbot_integration::{REPLY_TIMEOUT, SimUser, TestBot, log_dialog_replies};
use serde_json::{Value, json};

const USERS: i64 = 200;
const ROUNDS: usize = 3;

/// A text message from user `user_id` in their private chat, with the
/// `bot_command` entity Telegram adds to a leading command.
fn text_update(update_id: i64, message_id: i64, user_id: i64, name: &str, text: &str) -> Value {
    let mut update = json!({"update_id": update_id, "message": {"message_id": message_id,
        "from": {"id": user_id, "is_bot": false, "first_name": name, "language_code": "en"},
        "chat": {"id": user_id, "first_name": name, "type": "private"},
        "date": 1796374800, "text": text}});
    if text.starts_with('/') {
        let command = text.split_whitespace().next().unwrap_or_default();
        let length = command.encode_utf16().count();
        update["message"]["entities"] =
            json!([{"type": "bot_command", "offset": 0, "length": length}]);
    }
    update
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_users_log_sets_at_once() -> anyhow::Result<()> {
    let bot = Arc::new(TestBot::start(&["workouts"]).await?);

    let mut users = tokio::task::JoinSet::new();
    for index in 0..USERS {
        let bot = bot.clone();
        users.spawn(async move {
            let user = SimUser::new(5000 + index, format!("User{index}"));
            // A name only this user types, so a misrouted reply is visible.
            let exercise = format!("lift-{index}-Ω");
            let reps = index % 20 + 1;
            for round in 0..ROUNDS {
                let sent = round * 3;
                bot.say(&user, "/log", sent + 1).await?;
                bot.say(&user, &exercise, sent + 2).await?;
                bot.say(&user, &reps.to_string(), sent + 3).await?;
            }
            anyhow::Ok((user, exercise, reps))
        });
    }

    while let Some(result) = users.join_next().await {
        let (user, exercise, reps) = result??;
        let texts: Vec<String> = bot
            .sim
            .messages(user.id)
            .into_iter()
            .map(|m| m.text)
            .collect();
        let expected = log_dialog_replies(&exercise, reps, ROUNDS);
        assert_eq!(texts, expected, "replies of user {}", user.id);
    }

    // Every reply went to the chat whose update caused it.
    for call in bot.sim.calls_to("sendMessage") {
        let text = call.params["text"].as_str().unwrap_or_default();
        if let Some(index) = text
            .split("lift-")
            .nth(1)
            .and_then(|rest| rest.split('-').next())
        {
            let owner = 5000 + index.parse::<i64>()?;
            assert_eq!(
                call.chat_id,
                Some(owner),
                "{text:?} was sent to the wrong chat"
            );
        }
    }
    Ok(())
}

/// Two quick messages of one user in one `getUpdates` batch; both
/// changes must land in state, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_two_keeps_both_changes() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let ann = SimUser::new(1001, "Ann");
    bot.say(&ann, "/workout", 1).await?;
    bot.say(&ann, "Groceries", 2).await?;

    // The case's updates, with set lines in place of the list items.
    bot.sim.push_batch(vec![
        text_update(100101, 11, 1001, "Ann", "milk 1x1"),
        text_update(100102, 12, 1001, "Ann", "bread 1x2"),
    ]);
    let messages = bot.sim.wait_for_messages(ann.id, 4, REPLY_TIMEOUT).await?;
    assert!(
        messages[2].text.starts_with("Added milk 1x1."),
        "{}",
        messages[2].text
    );
    assert!(
        messages[3].text.starts_with("Added bread 1x2."),
        "{}",
        messages[3].text
    );

    let finish = messages[3].buttons()[0].1.clone();
    let summary = bot.press(&ann, messages[3].message_id, &finish, 5).await?;
    assert!(
        summary.text.contains("milk: 1x1\nbread: 1x2"),
        "both sets saved in order: {}",
        summary.text
    );
    bot.stop().await
}

/// Three forwarded answers in one batch are consumed one step at a
/// time, each prompt sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_batch_fills_each_step_once() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let ann = SimUser::new(1001, "Ann");
    bot.say(&ann, "/log", 1).await?;

    let forwarded = |update_id: i64, message_id: i64, text: &str, origin_date: i64| {
        let mut update = text_update(update_id, message_id, 1001, "Ann", text);
        update["message"]["date"] = json!(1796374860);
        update["message"]["forward_origin"] =
            json!({"type": "hidden_user", "sender_user_name": "Notes", "date": origin_date});
        update
    };
    bot.sim.push_batch(vec![
        forwarded(100201, 21, "Bench press", 1796300000),
        forwarded(100202, 22, "8", 1796300001),
        forwarded(100203, 23, "/history", 1796300002),
    ]);
    let messages = bot.sim.wait_for_messages(ann.id, 4, REPLY_TIMEOUT).await?;
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Which exercise? Send its name, for example squat.",
            "How many reps of Bench press? Send a whole number, for example 5.",
            "Logged Bench press: 8 reps. Sets logged today: 1.",
            "No workouts saved yet. Send /workout to log one.",
        ]
    );
    bot.stop().await
}

/// Two users' dialogs interleave; each answer is graded against its own
/// user's state, and every call made for an update targets that update's chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_users_keep_their_own_state() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let ann = SimUser::new(1001, "Ann");
    let ben = SimUser::new(1002, "Ben").with_language_code("de");

    bot.say(&ann, "/log", 1).await?;
    bot.say(&ben, "/log", 1).await?;
    bot.say(&ann, "set A squat", 2).await?;
    bot.say(&ben, "set B deadlift", 2).await?;
    bot.sim.push_batch(vec![
        text_update(100303, 33, 1001, "Ann", "42"),
        text_update(100304, 34, 1002, "Ben", "7"),
    ]);

    let ann_reply = bot.last_message(ann.id, 3).await?;
    let ben_reply = bot.last_message(ben.id, 3).await?;
    assert_eq!(
        ann_reply.text,
        "Logged set A squat: 42 reps. Sets logged today: 1."
    );
    assert_eq!(
        ben_reply.text,
        "Logged set B deadlift: 7 reps. Sets logged today: 1."
    );

    for call in bot.sim.calls_to("sendMessage") {
        let text = call.params["text"].as_str().unwrap_or_default();
        if text.contains("set A") {
            assert_eq!(call.chat_id, Some(1001), "{text:?}");
        }
        if text.contains("set B") {
            assert_eq!(call.chat_id, Some(1002), "{text:?}");
        }
    }
    bot.stop().await
}
