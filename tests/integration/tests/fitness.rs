//! A user walks through both fitness flows end to end: real Redis, the
//! simulator and the built components.

use flowbot_integration::{SimUser, TestBot};
use redis::AsyncCommands;

const WORKOUTS_TAG: &str = "workouts~";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_logs_workout_sets_and_history() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts", "exercises"]).await?;
    let ann = SimUser::new(1001, "Ann");

    // The command menu comes from the manifests plus the host's commands.
    let commands: Vec<String> = bot
        .sim
        .commands()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for expected in [
        "workout",
        "log",
        "history",
        "exercises",
        "addexercise",
        "help",
        "cancel",
    ] {
        assert!(
            commands.iter().any(|name| name == expected),
            "/{expected} missing from {commands:?}"
        );
    }
    let allowed = bot.sim.allowed_updates().unwrap_or_default();
    assert!(
        allowed.iter().any(|kind| kind == "my_chat_member"),
        "allowed_updates: {allowed:?}"
    );

    let help = bot.say(&ann, "/help", 1).await?;
    assert!(
        help.text.contains("/workout - Log a workout"),
        "{}",
        help.text
    );
    assert!(help.text.contains("/cancel"), "{}", help.text);

    // A whole workout.
    let prompt = bot.say(&ann, "/workout", 2).await?;
    assert!(
        prompt.text.starts_with("What is the workout called?"),
        "{}",
        prompt.text
    );
    let started = bot.say(&ann, "Leg day", 3).await?;
    assert!(
        started.text.starts_with("Workout \"Leg day\" started."),
        "{}",
        started.text
    );
    let added = bot.say(&ann, "squat 3x5 100kg", 4).await?;
    assert!(
        added.text.starts_with("Added squat 3x5 100kg."),
        "{}",
        added.text
    );
    let buttons = added.buttons();
    assert_eq!(buttons.len(), 2, "{buttons:?}");
    assert_eq!(buttons[0].0, "Finish");
    assert!(
        buttons[0].1.starts_with(WORKOUTS_TAG),
        "button data is tagged: {buttons:?}"
    );
    let added = bot.say(&ann, "bench press 5x5 62.5kg", 5).await?;
    assert!(
        added.text.starts_with("Added bench press 5x5 62.5kg."),
        "{}",
        added.text
    );
    let hint = bot.say(&ann, "squat 3", 6).await?;
    assert!(
        hint.text.contains("for example squat 3x5 100kg"),
        "a bad set line gets a hint: {}",
        hint.text
    );

    let finish = added.buttons()[0].1.clone();
    let summary = bot.press(&ann, added.message_id, &finish, 7).await?;
    assert!(
        summary.text.starts_with("Saved workout #1 \"Leg day\"."),
        "{}",
        summary.text
    );
    assert!(
        summary.text.contains("squat: 3x5 100kg"),
        "{}",
        summary.text
    );
    assert!(
        summary.text.contains("bench press: 5x5 62.5kg"),
        "{}",
        summary.text
    );
    assert!(
        summary.text.contains("Total volume: 3062.5 kg"),
        "{}",
        summary.text
    );
    let answers = bot.sim.callback_answers();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].text.as_deref(), Some("Workout saved."));
    let pressed = bot
        .sim
        .messages(ann.id)
        .into_iter()
        .find(|m| m.message_id == added.message_id)
        .unwrap();
    assert!(
        pressed.buttons().is_empty(),
        "the pressed keyboard is removed"
    );

    // Three quick sets.
    let mut count = 7;
    for (round, (exercise, reps)) in [("Deadlift", 5), ("pull-ups", 8), ("Deadlift", 3)]
        .into_iter()
        .enumerate()
    {
        let question = bot.say(&ann, "/log", count + 1).await?;
        assert_eq!(
            question.text,
            "Which exercise? Send its name, for example squat."
        );
        let reps_question = bot.say(&ann, exercise, count + 2).await?;
        assert!(
            reps_question
                .text
                .starts_with(&format!("How many reps of {exercise}?")),
            "{}",
            reps_question.text
        );
        let logged = bot.say(&ann, &reps.to_string(), count + 3).await?;
        let expected = format!(
            "Logged {exercise}: {reps} reps. Sets logged today: {}.",
            round + 1
        );
        assert_eq!(logged.text, expected);
        count += 3;
    }

    let history = bot.say(&ann, "/history", count + 1).await?;
    assert_eq!(
        history.text,
        "Last workouts, newest first:\n#1 Leg day: 8 sets, volume 3062.5 kg"
    );

    // The state in Redis: the conversation is released and the flow's state
    // holds the saved workout.
    let mut redis = bot.redis.connection().await?;
    let conversation: std::collections::HashMap<String, String> = redis
        .hgetall("flowbot:b7000000001:{c1001:u1001}:conv")
        .await?;
    assert_eq!(
        conversation.get("active"),
        None,
        "no flow holds the conversation: {conversation:?}"
    );
    let state: Vec<u8> = redis
        .hget("flowbot:b7000000001:{c1001:u1001}:state:workouts", "data")
        .await?;
    let state: serde_json::Value = serde_json::from_slice(&state)?;
    let text = state.to_string();
    assert!(text.contains("Leg day"), "{text}");
    let schema: u32 = redis
        .hget("flowbot:b7000000001:{c1001:u1001}:state:workouts", "schema")
        .await?;
    assert_eq!(schema, 1);

    // Every call that carried a chat went to Ann's chat.
    for call in bot.sim.calls() {
        if let Some(chat_id) = call.chat_id {
            assert_eq!(chat_id, ann.id, "{} went to chat {chat_id}", call.method);
        }
    }
    bot.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_adds_and_deletes_an_exercise() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts", "exercises"]).await?;
    let ben = SimUser::new(1002, "Ben");

    let empty = bot.say(&ben, "/exercises", 1).await?;
    assert_eq!(
        empty.text,
        "You have no exercises yet. Send /addexercise to add one."
    );

    let ask = bot.say(&ben, "/addexercise", 2).await?;
    assert_eq!(
        ask.text,
        "Send the name of the new exercise, for example Bench press."
    );
    let group = bot.say(&ben, "Bench press", 3).await?;
    assert_eq!(group.text, "Which muscle group does Bench press train?");
    let labels: Vec<String> = group
        .buttons()
        .into_iter()
        .map(|(label, _)| label)
        .collect();
    assert_eq!(
        labels,
        ["Chest", "Back", "Legs", "Shoulders", "Arms", "Core"]
    );
    let typed = bot.say(&ben, "chest", 4).await?;
    assert!(
        typed.text.starts_with("Press one of the buttons above"),
        "{}",
        typed.text
    );

    let chest = group.buttons()[0].1.clone();
    let added = bot.press(&ben, group.message_id, &chest, 5).await?;
    assert_eq!(added.text, "Added Bench press (Chest).");

    let list = bot.say(&ben, "/exercises", 6).await?;
    assert!(
        list.text.contains("1. Bench press (Chest)"),
        "{}",
        list.text
    );
    let (label, delete) = list.buttons()[0].clone();
    assert_eq!(label, "Delete Bench press");

    bot.sim.press_button(&ben, list.message_id, &delete);
    let edited =
        wait_for_text(&bot, ben.id, list.message_id, "You have no exercises left.").await?;
    assert!(edited.buttons().is_empty(), "{edited:?}");

    let empty = bot.say(&ben, "/exercises", 7).await?;
    assert_eq!(
        empty.text,
        "You have no exercises yet. Send /addexercise to add one."
    );
    bot.stop().await
}

/// Waits until message `message_id` in `chat_id` starts with `prefix` (after an edit).
async fn wait_for_text(
    bot: &TestBot,
    chat_id: i64,
    message_id: i32,
    prefix: &str,
) -> anyhow::Result<flowbot_integration::BotMessage> {
    let started = std::time::Instant::now();
    loop {
        let message = bot
            .sim
            .messages(chat_id)
            .into_iter()
            .find(|m| m.message_id == message_id);
        if let Some(message) = message.filter(|m| m.text.starts_with(prefix)) {
            return Ok(message);
        }
        anyhow::ensure!(
            started.elapsed() < flowbot_integration::REPLY_TIMEOUT,
            "message {message_id} never started with {prefix:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_makes_old_buttons_stale() -> anyhow::Result<()> {
    let bot = TestBot::start(&["workouts"]).await?;
    let ann = SimUser::new(1001, "Ann");
    bot.say(&ann, "/workout Pull", 1).await?;
    let added = bot.say(&ann, "row 3x10 50kg", 2).await?;
    let cancelled = bot.say(&ann, "/cancel", 3).await?;
    assert_eq!(cancelled.text, "Cancelled. Nothing in progress was saved.");

    let finish = added.buttons()[0].1.clone();
    bot.sim.press_button(&ann, added.message_id, &finish);
    let history = bot.say(&ann, "/history", 4).await?;
    assert_eq!(
        history.text,
        "No workouts saved yet. Send /workout to log one."
    );
    let answers = bot.sim.callback_answers();
    assert_eq!(answers.len(), 1);
    assert_eq!(
        answers[0].text.as_deref(),
        Some("This button belongs to a workout that is already closed.")
    );
    bot.stop().await
}
