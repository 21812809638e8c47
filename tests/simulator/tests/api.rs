//! The URL scheme, the token check, parameter formats and every method's
//! response shape, with teloxide as the client.

mod support;

use std::time::Duration;

use botapi_sim::{BotMessage, CallbackAnswer, SimConfig, Simulator};
use serde_json::json;
use support::{ANN_ID, WAIT, ann, bot, method_url, post_json, start};
use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::payloads::setters::*;
use teloxide::prelude::Requester;
use teloxide::types::{
    BotCommand, BotCommandScope, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId,
    ReplyMarkup, UpdateKind,
};

fn keyboard(buttons: &[(&str, &str)]) -> InlineKeyboardMarkup {
    let row = buttons
        .iter()
        .map(|(text, data)| InlineKeyboardButton::callback(*text, *data));
    InlineKeyboardMarkup::new([row])
}

fn api_error(result: Result<impl std::fmt::Debug, RequestError>) -> ApiError {
    match result {
        Err(RequestError::Api(error)) => error,
        other => panic!("expected a Telegram API error, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_token_is_unauthorized() {
    let sim = start().await;
    let url = format!("{}bot123:wrong/getMe", sim.api_url());
    let response = reqwest::Client::new().post(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "ok": false, "error_code": 401, "description": "Unauthorized" })
    );

    let url = reqwest::Url::parse(&sim.api_url()).unwrap();
    let wrong_bot = teloxide::Bot::new("123:wrong").set_api_url(url);
    assert_eq!(api_error(wrong_bot.get_me().await), ApiError::InvalidToken);
}

#[tokio::test]
async fn unknown_method_is_not_found() {
    let sim = start().await;
    let (status, body) = post_json(&sim, "sendPhoto", json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({ "ok": false, "error_code": 404, "description": "Not Found" })
    );
}

#[tokio::test]
async fn paths_outside_scheme_are_not_found() {
    let sim = start().await;
    let client = reqwest::Client::new();
    for path in ["", "getMe", "x/getMe", &format!("bot{}/", sim.token())] {
        let url = format!("{}{path}", sim.api_url());
        let response = client.post(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "path {path:?}");
    }
}

#[tokio::test]
async fn method_names_ignore_case() {
    let sim = start().await;
    let response = reqwest::get(method_url(&sim, "GETME")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["result"]["id"], 7_000_000_001_i64);
}

#[tokio::test]
async fn query_string_params_are_read() {
    let sim = start().await;
    sim.add_private_chat(&ann());
    let url = format!(
        "{}?chat_id={ANN_ID}&text=from%20query",
        method_url(&sim, "sendMessage")
    );
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(sim.messages(ANN_ID)[0].text, "from query");
}

#[tokio::test]
async fn form_params_are_read() {
    let sim = start().await;
    sim.add_private_chat(&ann());
    let markup = json!({ "inline_keyboard": [[{ "text": "Go", "callback_data": "go" }]] });
    let form = [
        ("chat_id", ANN_ID.to_string()),
        ("text", "from form".to_owned()),
        ("reply_markup", markup.to_string()),
    ];
    let response = reqwest::Client::new()
        .post(method_url(&sim, "sendMessage"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let message = &sim.messages(ANN_ID)[0];
    assert_eq!(message.text, "from form");
    assert_eq!(message.buttons(), [("Go".to_owned(), "go".to_owned())]);
}

#[tokio::test]
async fn calls_are_recorded_in_order() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    bot.get_me().await.unwrap();
    bot.send_message(ChatId(ANN_ID), "hi").await.unwrap();
    let _ = bot.send_message(ChatId(5), "nobody").await;

    let calls = sim.calls();
    let summary: Vec<_> = calls
        .iter()
        .map(|call| (call.method.as_str(), call.chat_id, call.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("getMe", None, Some(200)),
            ("sendMessage", Some(ANN_ID), Some(200)),
            ("sendMessage", Some(5), Some(400)),
        ]
    );
    assert_eq!(calls[1].params["text"], "hi");
    assert_eq!(sim.calls_to("sendmessage").len(), 2);
}

#[tokio::test]
async fn get_me_returns_configured_bot() {
    let mut config = SimConfig::default();
    config.bot.username = "other_bot".into();
    let sim = Simulator::start(config).await.unwrap();
    let me = bot(&sim).get_me().await.unwrap();
    assert_eq!(me.id.0, 7_000_000_001);
    assert!(me.is_bot);
    assert_eq!(me.first_name, "Demo Flow Bot");
    assert_eq!(me.username.as_deref(), Some("other_bot"));
    assert_eq!(sim.bot_id(), 7_000_000_001);
}

#[tokio::test]
async fn send_message_returns_full_message() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.send_text(&ann(), "hello");

    let sent = bot
        .send_message(ChatId(ANN_ID), "Pick one")
        .reply_markup(keyboard(&[("Finish", "finish"), ("Cancel", "cancel")]))
        .parse_mode(teloxide::types::ParseMode::Html)
        .await
        .unwrap();
    // The user's message took id 1, and bot messages share the sequence.
    assert_eq!(sent.id, MessageId(2));
    assert_eq!(sent.chat.id, ChatId(ANN_ID));
    assert!(sent.chat.is_private());
    assert_eq!(
        sent.from.as_ref().map(|user| user.id.0),
        Some(7_000_000_001)
    );
    assert_eq!(sent.text(), Some("Pick one"));
    assert_eq!(
        sent.reply_markup(),
        Some(&keyboard(&[("Finish", "finish"), ("Cancel", "cancel")]))
    );
    assert_eq!(sent.edit_date(), None);

    let stored = sim.wait_for_messages(ANN_ID, 1, WAIT).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].message_id, 2);
    assert_eq!(stored[0].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(
        stored[0].buttons(),
        [
            ("Finish".into(), "finish".into()),
            ("Cancel".into(), "cancel".into())
        ]
    );
}

#[tokio::test]
async fn keyboard_remove_is_stored_not_returned() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let sent = bot
        .send_message(ChatId(ANN_ID), "Done")
        .reply_markup(ReplyMarkup::kb_remove())
        .await
        .unwrap();
    assert_eq!(sent.reply_markup(), None);
    let stored = &sim.messages(ANN_ID)[0];
    assert_eq!(
        stored.reply_markup,
        Some(json!({ "remove_keyboard": true }))
    );
    assert!(stored.buttons().is_empty());
}

#[tokio::test]
async fn edit_message_text_sets_edit_date() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let sent = bot
        .send_message(ChatId(ANN_ID), "Pick one")
        .reply_markup(keyboard(&[("Finish", "finish")]))
        .await
        .unwrap();

    let edited = bot
        .edit_message_text(ChatId(ANN_ID), sent.id, "Finished")
        .await
        .unwrap();
    assert_eq!(edited.id, sent.id);
    assert_eq!(edited.text(), Some("Finished"));
    assert!(edited.edit_date().is_some());
    // An edit without reply_markup removes the inline keyboard, as in Telegram.
    assert_eq!(edited.reply_markup(), None);

    let stored = &sim.messages(ANN_ID)[0];
    assert_eq!(stored.text, "Finished");
    assert_eq!(stored.edits, 1);
    assert!(stored.edit_date.is_some());
    assert_eq!(stored.reply_markup, None);
}

#[tokio::test]
async fn edit_message_reply_markup_replaces_keyboard() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let sent = bot
        .send_message(ChatId(ANN_ID), "Pick one")
        .reply_markup(keyboard(&[("A", "a")]))
        .await
        .unwrap();

    let replaced = bot
        .edit_message_reply_markup(ChatId(ANN_ID), sent.id)
        .reply_markup(keyboard(&[("B", "b")]))
        .await
        .unwrap();
    assert_eq!(replaced.reply_markup(), Some(&keyboard(&[("B", "b")])));
    assert_eq!(
        sim.messages(ANN_ID)[0].buttons(),
        [("B".into(), "b".into())]
    );

    let removed = bot
        .edit_message_reply_markup(ChatId(ANN_ID), sent.id)
        .await
        .unwrap();
    assert_eq!(removed.reply_markup(), None);
    let stored = &sim.messages(ANN_ID)[0];
    assert_eq!(stored.reply_markup, None);
    assert_eq!(stored.edits, 2);
    assert_eq!(stored.text, "Pick one");
}

#[tokio::test]
async fn answer_callback_query_records_answer() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let sent = bot
        .send_message(ChatId(ANN_ID), "Pick one")
        .reply_markup(keyboard(&[("Finish", "finish")]))
        .await
        .unwrap();
    sim.press_button(&ann(), sent.id.0, "finish");

    let updates = bot.get_updates().await.unwrap();
    let UpdateKind::CallbackQuery(query) = &updates[0].kind else {
        panic!("expected a callback query, got {:?}", updates[0].kind);
    };
    assert_eq!(query.data.as_deref(), Some("finish"));
    assert_eq!(query.from.id.0, ANN_ID as u64);
    let message = query
        .regular_message()
        .expect("the query should carry the message");
    assert_eq!(message.id, sent.id);
    assert_eq!(message.text(), Some("Pick one"));
    assert_eq!(
        message.reply_markup(),
        Some(&keyboard(&[("Finish", "finish")]))
    );

    let answered = bot
        .answer_callback_query(query.id.clone())
        .text("Saved")
        .show_alert(true)
        .await;
    assert!(answered.is_ok(), "{answered:?}");
    assert_eq!(
        sim.callback_answers(),
        [CallbackAnswer {
            callback_query_id: query.id.0.clone(),
            text: Some("Saved".into()),
            show_alert: true,
        }]
    );
}

#[tokio::test]
async fn delete_message_marks_message_deleted() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let sent = bot.send_message(ChatId(ANN_ID), "Temporary").await.unwrap();
    let mut events = sim.subscribe();

    bot.delete_message(ChatId(ANN_ID), sent.id).await.unwrap();
    let messages: Vec<BotMessage> = sim.messages(ANN_ID);
    assert!(messages[0].deleted);
    let event = events.recv().await.unwrap();
    assert!(
        matches!(event, botapi_sim::SimEvent::MessageDeleted(message) if message.message_id == sent.id.0)
    );

    let again = bot.delete_message(ChatId(ANN_ID), sent.id).await;
    assert_eq!(api_error(again), ApiError::MessageToDeleteNotFound);
}

#[tokio::test]
async fn commands_round_trip() {
    let sim = start().await;
    let bot = bot(&sim);
    let commands = vec![
        BotCommand::new("log", "Log a workout"),
        BotCommand::new("cancel", "Cancel the current flow"),
    ];
    bot.set_my_commands(commands.clone()).await.unwrap();
    bot.set_my_commands([BotCommand::new("stats", "Group stats")])
        .scope(BotCommandScope::AllGroupChats)
        .await
        .unwrap();

    assert_eq!(bot.get_my_commands().await.unwrap(), commands);
    let group = bot
        .get_my_commands()
        .scope(BotCommandScope::AllGroupChats)
        .await
        .unwrap();
    assert_eq!(group, [BotCommand::new("stats", "Group stats")]);
    assert_eq!(
        sim.commands(),
        [
            ("log".to_owned(), "Log a workout".to_owned()),
            ("cancel".to_owned(), "Cancel the current flow".to_owned()),
        ]
    );

    let invalid = bot
        .set_my_commands([BotCommand::new("Log", "Capital letter")])
        .await;
    assert_eq!(
        api_error(invalid),
        ApiError::Unknown("Bad Request: BOT_COMMAND_INVALID".into())
    );
}

#[tokio::test]
async fn webhook_round_trip() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.send_text(&ann(), "queued");
    let url = reqwest::Url::parse("https://bot.example.test/hook").unwrap();
    bot.set_webhook(url.clone())
        .secret_token("s3cret")
        .allowed_updates([teloxide::types::AllowedUpdate::Message])
        .await
        .unwrap();

    let info = bot.get_webhook_info().await.unwrap();
    assert_eq!(info.url, Some(url));
    assert_eq!(info.pending_update_count, 1);
    let webhook = sim.webhook().expect("the webhook should be stored");
    assert_eq!(webhook.secret_token.as_deref(), Some("s3cret"));
    assert_eq!(sim.allowed_updates(), Some(vec!["message".to_owned()]));

    bot.delete_webhook()
        .drop_pending_updates(true)
        .await
        .unwrap();
    let info = bot.get_webhook_info().await.unwrap();
    assert_eq!(info.url, None);
    assert_eq!(info.pending_update_count, 0);
    assert_eq!(sim.webhook(), None);
}

#[tokio::test]
async fn edit_of_missing_message_is_rejected() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let result = bot
        .edit_message_text(ChatId(ANN_ID), MessageId(99), "x")
        .await;
    assert_eq!(api_error(result), ApiError::MessageToEditNotFound);
    let result = bot
        .edit_message_reply_markup(ChatId(ANN_ID), MessageId(99))
        .await;
    assert_eq!(api_error(result), ApiError::MessageToEditNotFound);
}

#[tokio::test]
async fn identical_edit_is_not_modified() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let sent = bot
        .send_message(ChatId(ANN_ID), "Same")
        .reply_markup(keyboard(&[("A", "a")]))
        .await
        .unwrap();
    let result = bot
        .edit_message_text(ChatId(ANN_ID), sent.id, "Same")
        .reply_markup(keyboard(&[("A", "a")]))
        .await;
    assert_eq!(api_error(result), ApiError::MessageNotModified);

    let (status, body) = post_json(
        &sim,
        "editMessageReplyMarkup",
        json!({
            "chat_id": ANN_ID,
            "message_id": sent.id.0,
            "reply_markup": { "inline_keyboard": [[{ "text": "A", "callback_data": "a" }]] },
        }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["description"],
        "Bad Request: message is not modified: specified new message content and reply markup \
         are exactly the same as a current content and reply markup of the message"
    );
}

#[tokio::test]
async fn empty_text_is_rejected() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let result = bot.send_message(ChatId(ANN_ID), "").await;
    assert_eq!(api_error(result), ApiError::MessageTextIsEmpty);
    let sent = bot.send_message(ChatId(ANN_ID), "x").await.unwrap();
    let result = bot.edit_message_text(ChatId(ANN_ID), sent.id, " ").await;
    assert_eq!(api_error(result), ApiError::MessageTextIsEmpty);
}

#[tokio::test]
async fn too_long_text_is_rejected() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    // Each emoji is 2 UTF-16 code units, so 2049 of them exceed 4096 units
    // while being only 2049 characters.
    let result = bot
        .send_message(ChatId(ANN_ID), "\u{1F4AA}".repeat(2049))
        .await;
    assert_eq!(api_error(result), ApiError::MessageIsTooLong);
    let at_limit = bot
        .send_message(ChatId(ANN_ID), "\u{1F4AA}".repeat(2048))
        .await;
    assert!(at_limit.is_ok(), "{at_limit:?}");
}

#[tokio::test]
async fn unknown_chat_is_not_found() {
    let sim = start().await;
    let result = bot(&sim).send_message(ChatId(424_242), "hello?").await;
    assert_eq!(api_error(result), ApiError::ChatNotFound);
}

#[tokio::test]
async fn invalid_callback_query_is_rejected() {
    let sim = start().await;
    let bot = bot(&sim);
    sim.add_private_chat(&ann());
    let sent = bot.send_message(ChatId(ANN_ID), "Pick").await.unwrap();
    sim.press_button(&ann(), sent.id.0, "x");
    let updates = bot.get_updates().await.unwrap();
    let UpdateKind::CallbackQuery(query) = &updates[0].kind else {
        panic!("expected a callback query");
    };

    bot.answer_callback_query(query.id.clone()).await.unwrap();
    let expected =
        "Bad Request: query is too old and response timeout expired or query ID is invalid";
    // teloxide 0.17 expects "query id" in lower case, so Telegram's real text
    // reaches the caller as ApiError::Unknown.
    let twice = bot.answer_callback_query(query.id.clone()).await;
    assert_eq!(api_error(twice), ApiError::Unknown(expected.into()));
    let (status, body) = post_json(
        &sim,
        "answerCallbackQuery",
        json!({ "callback_query_id": "nope" }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["description"], expected);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = start().await;
    let addr = sim.addr();
    sim.shutdown().await;
    sim.shutdown().await;
    let connected =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await;
    assert!(
        matches!(connected, Ok(Err(_))),
        "connect after shutdown: {connected:?}"
    );
}
