//! `getUpdates`: offsets, limits, long polling, `allowed_updates`, conflicts,
//! and teloxide parsing the update kinds that users cause.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{ANN_ID, WAIT, ann, bot, post_json, start};
use teloxide::payloads::setters::*;
use teloxide::prelude::Requester;
use teloxide::types::{
    AllowedUpdate, ChatId, MediaKind, MessageEntityKind, MessageKind, UpdateKind,
};
use teloxide::{ApiError, RequestError};
use tokio::time::Instant;

fn update_ids(updates: &[teloxide::types::Update]) -> Vec<u32> {
    updates.iter().map(|update| update.id.0).collect()
}

#[tokio::test]
async fn offset_confirms_older_updates() {
    let sim = start().await;
    let bot = bot(&sim);
    let ids: Vec<i64> = (0..3)
        .map(|n| sim.send_text(&ann(), &format!("m{n}")))
        .collect();
    assert_eq!(ids, [1, 2, 3]);

    let all = bot.get_updates().await.unwrap();
    assert_eq!(update_ids(&all), [1, 2, 3]);
    // Without an offset nothing is confirmed.
    assert_eq!(sim.pending_updates(), 3);

    let rest = bot.get_updates().offset(2).await.unwrap();
    assert_eq!(update_ids(&rest), [2, 3]);
    assert_eq!(sim.pending_updates(), 2);

    let none = bot.get_updates().offset(4).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(sim.pending_updates(), 0);
    sim.wait_until_idle(WAIT).await.unwrap();
}

#[tokio::test]
async fn negative_offset_keeps_last_updates() {
    let sim = start().await;
    let bot = bot(&sim);
    for n in 0..4 {
        sim.send_text(&ann(), &format!("m{n}"));
    }
    let last = bot.get_updates().offset(-1).await.unwrap();
    assert_eq!(update_ids(&last), [4]);
    assert_eq!(sim.pending_updates(), 1);
}

#[tokio::test]
async fn limit_caps_batch_size() {
    let sim = start().await;
    let bot = bot(&sim);
    for n in 0..120 {
        sim.send_text(&ann(), &format!("m{n}"));
    }
    let two = bot.get_updates().limit(2).await.unwrap();
    assert_eq!(update_ids(&two), [1, 2]);
    let default = bot.get_updates().await.unwrap();
    assert_eq!(default.len(), 100);
    let (status, body) = post_json(&sim, "getUpdates", json!({ "limit": 1000 })).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn long_poll_returns_when_update_arrives() {
    let sim = start().await;
    let bot = bot(&sim);
    let started = Instant::now();
    let poll = tokio::spawn(async move { bot.get_updates().timeout(10).await });

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!poll.is_finished(), "the poll should wait for an update");
    sim.send_text(&ann(), "wake up");

    let updates = poll.await.unwrap().unwrap();
    assert_eq!(update_ids(&updates), [1]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn long_poll_times_out_empty() {
    let sim = start().await;
    let started = Instant::now();
    let updates = bot(&sim).get_updates().timeout(1).await.unwrap();
    let elapsed = started.elapsed();
    assert!(updates.is_empty());
    assert!(
        elapsed >= Duration::from_secs(1),
        "returned after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "returned after {elapsed:?}"
    );
}

#[tokio::test]
async fn zero_timeout_returns_at_once() {
    let sim = start().await;
    let started = Instant::now();
    let updates = bot(&sim).get_updates().timeout(0).await.unwrap();
    assert!(updates.is_empty());
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn newer_poll_terminates_older() {
    let sim = start().await;
    let first_bot = bot(&sim);
    let first = tokio::spawn(async move { first_bot.get_updates().timeout(10).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let second = bot(&sim).get_updates().await;
    assert!(second.is_ok(), "{second:?}");
    let first = tokio::time::timeout(WAIT, first).await.unwrap().unwrap();
    assert!(
        matches!(
            first,
            Err(RequestError::Api(ApiError::TerminatedByOtherGetUpdates))
        ),
        "{first:?}"
    );
}

#[tokio::test]
async fn webhook_blocks_get_updates() {
    let sim = start().await;
    let (status, _) = post_json(
        &sim,
        "setWebhook",
        json!({ "url": "https://bot.example.test/h" }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post_json(&sim, "getUpdates", json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(
        body["description"],
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to \
         delete the webhook first"
    );
}

#[tokio::test]
async fn default_filter_skips_opt_in_kinds() {
    let sim = start().await;
    let chat = json!({ "id": ANN_ID, "type": "private", "first_name": "Ann" });
    let user = json!({ "id": ANN_ID, "is_bot": false, "first_name": "Ann" });
    sim.push_update(json!({ "chat_member": { "chat": chat, "from": user, "date": 1 } }));
    sim.push_update(json!({ "message_reaction": { "chat": chat, "message_id": 1, "date": 1 } }));
    sim.push_update(
        json!({ "message_reaction_count": { "chat": chat, "message_id": 1, "date": 1 } }),
    );
    let message_id = sim.send_text(&ann(), "hi");

    let updates = bot(&sim).get_updates().await.unwrap();
    assert_eq!(update_ids(&updates), [message_id as u32]);
    assert_eq!(sim.allowed_updates(), None);
    assert_eq!(sim.pending_updates(), 1);
}

#[tokio::test]
async fn allowed_updates_are_remembered() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let sent = bot.send_message(ChatId(ANN_ID), "Pick").await.unwrap();
    sim.press_button(&ann(), sent.id.0, "a");
    let message_id = sim.send_text(&ann(), "hi");

    let only_messages = bot
        .get_updates()
        .allowed_updates([AllowedUpdate::Message])
        .await
        .unwrap();
    assert_eq!(update_ids(&only_messages), [message_id as u32]);
    assert_eq!(sim.allowed_updates(), Some(vec!["message".to_owned()]));

    // A later call without allowed_updates keeps the list.
    sim.press_button(&ann(), sent.id.0, "b");
    let next_message = sim.send_text(&ann(), "again");
    let updates = bot
        .get_updates()
        .offset(message_id as i32 + 1)
        .await
        .unwrap();
    assert_eq!(update_ids(&updates), [next_message as u32]);

    // An empty list restores the default, which includes callback queries.
    let query = sim.press_button(&ann(), sent.id.0, "c");
    let updates = bot
        .get_updates()
        .offset(next_message as i32 + 1)
        .allowed_updates([])
        .await
        .unwrap();
    assert_eq!(update_ids(&updates), [query as u32]);
    assert_eq!(sim.allowed_updates(), None);
}

#[tokio::test]
async fn teloxide_parses_user_update_kinds() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let sent = bot.send_message(ChatId(ANN_ID), "Pick").await.unwrap();
    sim.send_text(&ann(), "/start now");
    sim.send_sticker(&ann());
    sim.send_animation(&ann());
    sim.send_photo(&ann());
    sim.press_button(&ann(), sent.id.0, "pick");
    sim.press_button(&ann(), 999, "stale");
    sim.push_update(json!({ "future_update_kind": { "id": 1, "something": true } }));

    let updates = bot.get_updates().await.unwrap();
    assert_eq!(update_ids(&updates), [1, 2, 3, 4, 5, 6, 7]);
    let message = |index: usize| match &updates[index].kind {
        UpdateKind::Message(message) => message.clone(),
        other => panic!("update {index} should be a message, got {other:?}"),
    };

    let command = message(0);
    assert_eq!(command.text(), Some("/start now"));
    let entities = command.entities().unwrap();
    assert_eq!(entities[0].kind, MessageEntityKind::BotCommand);
    assert_eq!((entities[0].offset, entities[0].length), (0, 6));
    assert_eq!(
        command.from.as_ref().unwrap().username.as_deref(),
        Some("ann")
    );

    let sticker = message(1);
    assert!(sticker.sticker().is_some(), "{sticker:?}");
    let animation = message(2);
    assert!(animation.animation().is_some(), "{animation:?}");
    assert!(matches!(
        &animation.kind,
        MessageKind::Common(common) if matches!(common.media_kind, MediaKind::Animation(_))
    ));
    let photo = message(3);
    assert_eq!(photo.photo().map(<[_]>::len), Some(3));

    let UpdateKind::CallbackQuery(query) = &updates[4].kind else {
        panic!(
            "update 5 should be a callback query, got {:?}",
            updates[4].kind
        );
    };
    assert_eq!(query.data.as_deref(), Some("pick"));
    assert_eq!(
        query.regular_message().map(|message| message.id),
        Some(sent.id)
    );

    let UpdateKind::CallbackQuery(stale) = &updates[5].kind else {
        panic!(
            "update 6 should be a callback query, got {:?}",
            updates[5].kind
        );
    };
    assert!(stale.regular_message().is_none());
    assert!(
        stale.message.is_some(),
        "an inaccessible message is still present"
    );

    assert!(
        matches!(updates[6].kind, UpdateKind::Error(_)),
        "{:?}",
        updates[6].kind
    );
}

#[tokio::test]
async fn user_and_bot_messages_share_ids() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.send_text(&ann(), "one");
    let reply = bot.send_message(ChatId(ANN_ID), "two").await.unwrap();
    sim.send_text(&ann(), "three");

    let updates = bot.get_updates().await.unwrap();
    let ids: Vec<i32> = updates
        .iter()
        .map(|update| match &update.kind {
            UpdateKind::Message(message) => message.id.0,
            other => panic!("expected a message, got {other:?}"),
        })
        .collect();
    assert_eq!(ids, [1, 3]);
    assert_eq!(reply.id.0, 2);
}

#[tokio::test]
async fn push_update_keeps_raw_fields() {
    let sim = start().await;
    let update = json!({
        "update_id": 500,
        "message": {
            "message_id": 7,
            "date": 1_700_000_000,
            "chat": { "id": -1001, "type": "supergroup", "title": "Gym" },
            "from": { "id": 42, "is_bot": false, "first_name": "Bo" },
            "text": "hello group",
        },
    });
    assert_eq!(sim.push_update(update.clone()), 500);
    assert_eq!(sim.send_text(&ann(), "next"), 501);

    let (_, body) = post_json(&sim, "getUpdates", json!({})).await;
    assert_eq!(body["result"][0], update);
    // The group chat is known now, so the bot may send to it.
    let (status, body) = post_json(
        &sim,
        "sendMessage",
        json!({ "chat_id": -1001, "text": "hi" }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["message_id"], 8);
    assert_eq!(body["result"]["chat"]["title"], "Gym");
}
