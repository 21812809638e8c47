//! Message methods: `sendMessage`, `editMessageText`, `editMessageReplyMarkup`,
//! `deleteMessage` and `answerCallbackQuery`, with Telegram's error replies.

use serde_json::Value;

use crate::objects::{MAX_TEXT_UTF16, bot_message, is_inline_keyboard, unix_now, utf16_len};
use crate::params::{ApiError, Params};
use crate::store::{ChatRecord, State};
use crate::types::{BotMessage, CallbackAnswer, SimEvent};

// Descriptions after "Bad Request: ", as Telegram words them.
const CHAT_ID_EMPTY: &str = "chat_id is empty";
const CHAT_NOT_FOUND: &str = "chat not found";
const TEXT_EMPTY: &str = "message text is empty";
const TEXT_TOO_LONG: &str = "message is too long";
const MESSAGE_ID_MISSING: &str = "message identifier is not specified";
const MESSAGE_ID_INVALID: &str = "MESSAGE_ID_INVALID";
const MESSAGE_TO_EDIT_NOT_FOUND: &str = "message to edit not found";
const MESSAGE_CANT_BE_EDITED: &str = "message can't be edited";
const MESSAGE_NOT_MODIFIED: &str = "message is not modified: specified new message content and \
                                    reply markup are exactly the same as a current content and \
                                    reply markup of the message";
const MESSAGE_TO_DELETE_NOT_FOUND: &str = "message to delete not found";
const QUERY_ID_INVALID: &str =
    "query is too old and response timeout expired or query ID is invalid";
const MARKUP_INVALID: &str = "can't parse reply keyboard markup JSON object";
const BUTTON_TEXT_INVALID: &str =
    "can't parse inline keyboard button: Field \"text\" must be of type String";
const BUTTON_DATA_INVALID: &str = "BUTTON_DATA_INVALID";

/// Maximum `callback_data` length in bytes.
const MAX_CALLBACK_DATA_BYTES: usize = 64;

pub(crate) fn send_message(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    let chat_id = known_chat(state, params)?;
    let text = checked_text(params)?;
    let reply_markup = reply_markup_param(params)?;

    let record = state
        .chats
        .get_mut(&chat_id)
        .expect("known_chat checked the chat");
    let message = BotMessage {
        message_id: record.next_message_id(),
        chat_id,
        text,
        reply_markup,
        parse_mode: params.string("parse_mode"),
        date: unix_now(),
        edit_date: None,
        edits: 0,
        deleted: false,
    };
    record
        .bot_messages
        .insert(message.message_id, message.clone());

    let result = bot_message(&message, &record.chat, &state.bot);
    state.emit(SimEvent::MessageSent(message));
    Ok(result)
}

pub(crate) fn edit_message_text(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    let text = checked_text(params)?;
    let new_keyboard = reply_markup_param(params)?.filter(is_inline_keyboard);
    let parse_mode = params.string("parse_mode");
    let (chat_id, message_id) = message_to_edit(state, params)?;

    let record = state
        .chats
        .get_mut(&chat_id)
        .expect("message_to_edit checked the chat");
    let message = record
        .bot_messages
        .get_mut(&message_id)
        .expect("message_to_edit checked it");
    if message.text == text && inline_keyboard(message) == new_keyboard.as_ref() {
        return Err(ApiError::bad_request(MESSAGE_NOT_MODIFIED));
    }
    message.text = text;
    message.parse_mode = parse_mode;
    replace_inline_keyboard(message, new_keyboard);
    finish_edit(state, chat_id, message_id)
}

pub(crate) fn edit_message_reply_markup(
    state: &mut State,
    params: &Params,
) -> Result<Value, ApiError> {
    let new_keyboard = reply_markup_param(params)?.filter(is_inline_keyboard);
    let (chat_id, message_id) = message_to_edit(state, params)?;

    let record = state
        .chats
        .get_mut(&chat_id)
        .expect("message_to_edit checked the chat");
    let message = record
        .bot_messages
        .get_mut(&message_id)
        .expect("message_to_edit checked it");
    if inline_keyboard(message) == new_keyboard.as_ref() {
        return Err(ApiError::bad_request(MESSAGE_NOT_MODIFIED));
    }
    replace_inline_keyboard(message, new_keyboard);
    finish_edit(state, chat_id, message_id)
}

pub(crate) fn delete_message(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    let chat_id = known_chat(state, params)?;
    let message_id = message_id_param(params)?;

    let record = state
        .chats
        .get_mut(&chat_id)
        .expect("known_chat checked the chat");
    if record.user_messages.remove(&message_id) {
        return Ok(Value::Bool(true));
    }
    let message = record
        .bot_messages
        .get_mut(&message_id)
        .filter(|message| !message.deleted)
        .ok_or_else(|| ApiError::bad_request(MESSAGE_TO_DELETE_NOT_FOUND))?;
    message.deleted = true;

    let deleted = message.clone();
    state.emit(SimEvent::MessageDeleted(deleted));
    Ok(Value::Bool(true))
}

/// Answers a callback query. Each query id can be answered once.
///
/// NOTE: Telegram also rejects answers that come later than about 15 seconds
/// after the button press. The simulator does not expire queries.
pub(crate) fn answer_callback_query(state: &mut State, params: &Params) -> Result<Value, ApiError> {
    let query_id = params.string("callback_query_id").unwrap_or_default();
    if !state.open_callback_queries.remove(&query_id) {
        return Err(ApiError::bad_request(QUERY_ID_INVALID));
    }

    let answer = CallbackAnswer {
        callback_query_id: query_id,
        text: params.string("text").filter(|text| !text.is_empty()),
        show_alert: params.flag("show_alert"),
    };
    state.callback_answers.push(answer.clone());
    state.emit(SimEvent::CallbackAnswered(answer));
    Ok(Value::Bool(true))
}

/// Returns the id of the chat that `chat_id` names, which must be known.
fn known_chat(state: &State, params: &Params) -> Result<i64, ApiError> {
    let raw = params
        .raw("chat_id")
        .ok_or_else(|| ApiError::bad_request(CHAT_ID_EMPTY))?;
    state
        .resolve_chat(raw)
        .filter(|id| state.chats.contains_key(id))
        .ok_or_else(|| ApiError::bad_request(CHAT_NOT_FOUND))
}

fn message_id_param(params: &Params) -> Result<i32, ApiError> {
    let id = params
        .int("message_id")?
        .ok_or_else(|| ApiError::bad_request(MESSAGE_ID_MISSING))?;
    i32::try_from(id).map_err(|_| ApiError::bad_request(MESSAGE_ID_INVALID))
}

/// Finds the bot message that an edit method names by `chat_id` and `message_id`.
fn message_to_edit(state: &State, params: &Params) -> Result<(i64, i32), ApiError> {
    // The simulator never sends inline-mode messages, so every
    // inline_message_id is unknown.
    if params.raw("chat_id").is_none() && params.raw("inline_message_id").is_some() {
        return Err(ApiError::bad_request(MESSAGE_ID_INVALID));
    }
    let chat_id = known_chat(state, params)?;
    let message_id = message_id_param(params)?;

    let record: &ChatRecord = &state.chats[&chat_id];
    match record.bot_messages.get(&message_id) {
        Some(message) if !message.deleted => Ok((chat_id, message_id)),
        _ if record.user_messages.contains(&message_id) => {
            Err(ApiError::bad_request(MESSAGE_CANT_BE_EDITED))
        }
        _ => Err(ApiError::bad_request(MESSAGE_TO_EDIT_NOT_FOUND)),
    }
}

/// Stamps an edit on a message and returns the edited Message object.
fn finish_edit(state: &mut State, chat_id: i64, message_id: i32) -> Result<Value, ApiError> {
    let record = &mut state
        .chats
        .get_mut(&chat_id)
        .expect("the caller checked the chat");
    let message = record
        .bot_messages
        .get_mut(&message_id)
        .expect("the caller checked it");
    message.edits += 1;
    message.edit_date = Some(unix_now());

    let edited = message.clone();
    let result = bot_message(&edited, &record.chat, &state.bot);
    state.emit(SimEvent::MessageEdited(edited));
    Ok(result)
}

fn inline_keyboard(message: &BotMessage) -> Option<&Value> {
    message
        .reply_markup
        .as_ref()
        .filter(|markup| is_inline_keyboard(markup))
}

/// Applies the keyboard of an edit. Edit methods only carry inline keyboards,
/// and an edit without one removes the message's inline keyboard. A reply
/// keyboard that the message was sent with is not part of the message, so it stays.
fn replace_inline_keyboard(message: &mut BotMessage, new_keyboard: Option<Value>) {
    if new_keyboard.is_some() || inline_keyboard(message).is_some() {
        message.reply_markup = new_keyboard;
    }
}

fn checked_text(params: &Params) -> Result<String, ApiError> {
    let text = params.string("text").unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::bad_request(TEXT_EMPTY));
    }
    // NOTE: Telegram measures the text after it parses parse_mode markup. The
    // simulator measures the raw text, so tags count towards the limit.
    if utf16_len(&text) > MAX_TEXT_UTF16 {
        return Err(ApiError::bad_request(TEXT_TOO_LONG));
    }
    Ok(text)
}

/// Parses and checks `reply_markup`. Inline keyboards are checked button by
/// button. Other markups are stored as given.
fn reply_markup_param(params: &Params) -> Result<Option<Value>, ApiError> {
    let markup = params
        .structured("reply_markup")
        .map_err(|_| ApiError::bad_request(MARKUP_INVALID))?;
    let Some(markup) = markup else {
        return Ok(None);
    };
    if !markup.is_object() {
        return Err(ApiError::bad_request(MARKUP_INVALID));
    }
    if let Some(rows) = markup.get("inline_keyboard") {
        check_inline_keyboard(rows)?;
    }
    Ok(Some(markup))
}

fn check_inline_keyboard(rows: &Value) -> Result<(), ApiError> {
    let rows = rows
        .as_array()
        .ok_or_else(|| ApiError::bad_request(MARKUP_INVALID))?;
    for row in rows {
        let buttons = row
            .as_array()
            .ok_or_else(|| ApiError::bad_request(MARKUP_INVALID))?;
        for button in buttons {
            if !button.get("text").is_some_and(Value::is_string) {
                return Err(ApiError::bad_request(BUTTON_TEXT_INVALID));
            }
            if let Some(data) = button.get("callback_data") {
                let length = data.as_str().map(str::len).unwrap_or(0);
                if !(1..=MAX_CALLBACK_DATA_BYTES).contains(&length) {
                    return Err(ApiError::bad_request(BUTTON_DATA_INVALID));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::sync::broadcast;

    use super::*;
    use crate::config::BotProfile;

    const CHAT: i64 = 1001;

    fn state_with_chat() -> State {
        let mut state = State::new(BotProfile::default(), broadcast::channel(16).0);
        state.register_chat(&json!({ "id": CHAT, "type": "private", "first_name": "Ann" }));
        state
    }

    fn params(value: Value) -> Params {
        Params::from_json(value)
    }

    fn keyboard(data: &str) -> Value {
        json!({ "inline_keyboard": [[{ "text": "Go", "callback_data": data }]] })
    }

    fn description(result: Result<Value, ApiError>) -> String {
        result.expect_err("the call should fail").description
    }

    #[test]
    fn send_assigns_chat_message_ids() {
        let mut state = state_with_chat();
        let first = send_message(&mut state, &params(json!({ "chat_id": CHAT, "text": "a" })));
        let second = send_message(&mut state, &params(json!({ "chat_id": CHAT, "text": "b" })));
        assert_eq!(first.unwrap()["message_id"], 1);
        assert_eq!(second.unwrap()["message_id"], 2);
    }

    #[test]
    fn send_rejects_missing_and_unknown_chat() {
        let mut state = state_with_chat();
        let missing = send_message(&mut state, &params(json!({ "text": "a" })));
        let unknown = send_message(&mut state, &params(json!({ "chat_id": 5, "text": "a" })));
        assert_eq!(description(missing), "Bad Request: chat_id is empty");
        assert_eq!(description(unknown), "Bad Request: chat not found");
    }

    #[test]
    fn send_rejects_blank_text() {
        let mut state = state_with_chat();
        let result = send_message(
            &mut state,
            &params(json!({ "chat_id": CHAT, "text": "  " })),
        );
        assert_eq!(description(result), "Bad Request: message text is empty");
    }

    #[test]
    fn text_limit_counts_utf16_units() {
        let mut state = state_with_chat();
        // 2048 emoji are 4096 UTF-16 units: the limit exactly.
        let at_limit = "\u{1F600}".repeat(2048);
        let over_limit = format!("{at_limit}a");
        let accepted = send_message(
            &mut state,
            &params(json!({ "chat_id": CHAT, "text": at_limit })),
        );
        let rejected = send_message(
            &mut state,
            &params(json!({ "chat_id": CHAT, "text": over_limit })),
        );
        assert!(accepted.is_ok());
        assert_eq!(description(rejected), "Bad Request: message is too long");
    }

    #[test]
    fn long_callback_data_is_rejected() {
        let mut state = state_with_chat();
        let markup = keyboard(&"x".repeat(65));
        let result = send_message(
            &mut state,
            &params(json!({ "chat_id": CHAT, "text": "a", "reply_markup": markup })),
        );
        assert_eq!(description(result), "Bad Request: BUTTON_DATA_INVALID");
    }

    #[test]
    fn edit_without_keyboard_removes_it() {
        let mut state = state_with_chat();
        let markup = keyboard("go");
        send_message(
            &mut state,
            &params(json!({ "chat_id": CHAT, "text": "a", "reply_markup": markup })),
        )
        .unwrap();
        let edited = edit_message_text(
            &mut state,
            &params(json!({ "chat_id": CHAT, "message_id": 1, "text": "a" })),
        )
        .unwrap();
        assert!(edited.get("reply_markup").is_none());
        assert!(edited["edit_date"].is_i64());
        let message = &state.chats[&CHAT].bot_messages[&1];
        assert_eq!(message.reply_markup, None);
        assert_eq!(message.edits, 1);
    }

    #[test]
    fn edit_keeps_reply_keyboard_record() {
        let mut state = state_with_chat();
        let remove = json!({ "remove_keyboard": true });
        send_message(
            &mut state,
            &params(json!({ "chat_id": CHAT, "text": "a", "reply_markup": remove })),
        )
        .unwrap();
        edit_message_text(
            &mut state,
            &params(json!({ "chat_id": CHAT, "message_id": 1, "text": "b" })),
        )
        .unwrap();
        let message = &state.chats[&CHAT].bot_messages[&1];
        assert_eq!(message.reply_markup, Some(remove));
    }

    #[test]
    fn identical_edit_is_not_modified() {
        let mut state = state_with_chat();
        let markup = keyboard("go");
        send_message(
            &mut state,
            &params(json!({ "chat_id": CHAT, "text": "a", "reply_markup": markup })),
        )
        .unwrap();
        let same_text = edit_message_text(
            &mut state,
            &params(
                json!({ "chat_id": CHAT, "message_id": 1, "text": "a", "reply_markup": markup }),
            ),
        );
        let same_markup = edit_message_reply_markup(
            &mut state,
            &params(json!({ "chat_id": CHAT, "message_id": 1, "reply_markup": markup })),
        );
        assert!(description(same_text).starts_with("Bad Request: message is not modified"));
        assert!(description(same_markup).starts_with("Bad Request: message is not modified"));
        assert_eq!(state.chats[&CHAT].bot_messages[&1].edits, 0);
    }

    #[test]
    fn edit_of_user_message_is_rejected() {
        let mut state = state_with_chat();
        let mut update =
            json!({ "message": { "chat": { "id": CHAT, "type": "private" }, "text": "hi" } });
        state.absorb_update(&mut update);
        let result = edit_message_text(
            &mut state,
            &params(json!({ "chat_id": CHAT, "message_id": 1, "text": "b" })),
        );
        assert_eq!(description(result), "Bad Request: message can't be edited");
    }

    #[test]
    fn deleted_message_cannot_be_edited_or_deleted() {
        let mut state = state_with_chat();
        send_message(&mut state, &params(json!({ "chat_id": CHAT, "text": "a" }))).unwrap();
        let target = params(json!({ "chat_id": CHAT, "message_id": 1, "text": "b" }));
        assert_eq!(
            delete_message(&mut state, &target).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            description(delete_message(&mut state, &target)),
            "Bad Request: message to delete not found"
        );
        assert_eq!(
            description(edit_message_text(&mut state, &target)),
            "Bad Request: message to edit not found"
        );
        assert!(state.chats[&CHAT].bot_messages[&1].deleted);
    }

    #[test]
    fn inline_message_id_is_unknown() {
        let mut state = state_with_chat();
        let result = edit_message_text(
            &mut state,
            &params(json!({ "inline_message_id": "AAA", "text": "b" })),
        );
        assert_eq!(description(result), "Bad Request: MESSAGE_ID_INVALID");
    }

    #[test]
    fn callback_query_is_answered_once() {
        let mut state = state_with_chat();
        state.open_callback_queries.insert("q1".into());
        let answer =
            params(json!({ "callback_query_id": "q1", "text": "Saved", "show_alert": true }));
        assert!(answer_callback_query(&mut state, &answer).is_ok());
        assert_eq!(
            description(answer_callback_query(&mut state, &answer)),
            "Bad Request: query is too old and response timeout expired or query ID is invalid"
        );
        assert_eq!(
            state.callback_answers,
            [CallbackAnswer {
                callback_query_id: "q1".into(),
                text: Some("Saved".into()),
                show_alert: true,
            }]
        );
    }
}
