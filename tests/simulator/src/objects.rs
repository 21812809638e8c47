//! Builders for Bot API objects (User, Chat, Message and media) in the JSON
//! shape that Telegram sends, plus the text measures that Telegram applies.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::config::BotProfile;
use crate::types::{BotMessage, SimUser};

/// Maximum message text length in UTF-16 code units.
pub(crate) const MAX_TEXT_UTF16: usize = 4096;

/// Returns the current Unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

/// Returns the length of `text` in UTF-16 code units, the unit Telegram uses for
/// text limits and entity offsets.
pub(crate) fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Builds the `bot_command` entity for a message that starts with `/command`
/// or `/command@botname`. Returns `None` for any other text.
pub(crate) fn leading_command_entity(text: &str) -> Option<Value> {
    let rest = text.strip_prefix('/')?;
    let command_len = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    if command_len == 0 {
        return None;
    }
    let command = &text[..1 + command_len];
    Some(json!({
        "type": "bot_command",
        "offset": 0,
        "length": utf16_len(command),
    }))
}

/// Builds the bot's User object.
pub(crate) fn bot_user(bot: &BotProfile) -> Value {
    json!({
        "id": bot.id,
        "is_bot": true,
        "first_name": bot.first_name,
        "username": bot.username,
    })
}

/// Builds the `getMe` result: the bot's User object with the bot-only flags.
pub(crate) fn bot_me(bot: &BotProfile) -> Value {
    let mut me = bot_user(bot);
    let fields = me.as_object_mut().expect("bot_user builds an object");
    fields.insert("can_join_groups".into(), Value::Bool(true));
    fields.insert("can_read_all_group_messages".into(), Value::Bool(false));
    fields.insert("supports_inline_queries".into(), Value::Bool(false));
    fields.insert("can_connect_to_business".into(), Value::Bool(false));
    fields.insert("has_main_web_app".into(), Value::Bool(false));
    me
}

/// Builds a human user's User object.
pub(crate) fn user(user: &SimUser) -> Value {
    let mut object = json!({
        "id": user.id,
        "is_bot": false,
        "first_name": user.first_name,
    });
    let fields = object.as_object_mut().expect("json! builds an object");
    if let Some(username) = &user.username {
        fields.insert("username".into(), Value::from(username.as_str()));
    }
    if let Some(language_code) = &user.language_code {
        fields.insert("language_code".into(), Value::from(language_code.as_str()));
    }
    object
}

/// Builds the Chat object of the private chat between `user` and the bot.
/// Its id equals the user's id, as in Telegram.
pub(crate) fn private_chat(user: &SimUser) -> Value {
    let mut chat = json!({
        "id": user.id,
        "type": "private",
        "first_name": user.first_name,
    });
    if let Some(username) = &user.username {
        chat["username"] = Value::from(username.as_str());
    }
    chat
}

/// Returns whether `markup` is an inline keyboard with at least one button.
/// Telegram treats an empty inline keyboard like no keyboard.
pub(crate) fn is_inline_keyboard(markup: &Value) -> bool {
    markup
        .get("inline_keyboard")
        .and_then(Value::as_array)
        .is_some_and(|rows| {
            rows.iter()
                .filter_map(Value::as_array)
                .any(|row| !row.is_empty())
        })
}

/// Builds the Message object that Telegram returns for a bot message.
///
/// Telegram includes `reply_markup` in a Message only for inline keyboards,
/// so reply keyboards and `remove_keyboard` are left out.
pub(crate) fn bot_message(message: &BotMessage, chat: &Value, bot: &BotProfile) -> Value {
    let mut object = Map::new();
    object.insert("message_id".into(), Value::from(message.message_id));
    object.insert("from".into(), bot_user(bot));
    object.insert("chat".into(), chat.clone());
    object.insert("date".into(), Value::from(message.date));
    if let Some(edit_date) = message.edit_date {
        object.insert("edit_date".into(), Value::from(edit_date));
    }
    object.insert("text".into(), Value::from(message.text.as_str()));
    if let Some(markup) = message
        .reply_markup
        .as_ref()
        .filter(|m| is_inline_keyboard(m))
    {
        object.insert("reply_markup".into(), markup.clone());
    }
    Value::Object(object)
}

/// Builds the InaccessibleMessage object that a callback query carries when its
/// message is gone: `date` 0 marks it as inaccessible.
pub(crate) fn inaccessible_message(message_id: i32, chat: &Value) -> Value {
    json!({ "message_id": message_id, "chat": chat, "date": 0 })
}

/// Returns the message fields of a sticker message, as Telegram sends them.
pub(crate) fn sticker_fields() -> Map<String, Value> {
    let fields = json!({
        "sticker": {
            "file_id": "CAACAgIAAxkBAAIBSimStickerThumbsUp",
            "file_unique_id": "AgADSimSticker01",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": false,
            "is_video": false,
            "emoji": "\u{1F44D}",
            "set_name": "SimulatorStickers",
            "file_size": 23_508,
            "thumbnail": {
                "file_id": "AAMCAgADGQEAAgFSimStickerThumb",
                "file_unique_id": "AQADSimThumb01",
                "width": 128,
                "height": 128,
                "file_size": 4_210,
            },
        },
    });
    into_map(fields)
}

/// Returns the message fields of a GIF message. Telegram sends a GIF as an
/// animation and repeats it as a document for older clients.
pub(crate) fn animation_fields() -> Map<String, Value> {
    let file = json!({
        "file_id": "CgACAgQAAxkBAAIBSimAnimationDance",
        "file_unique_id": "AgADSimAnimation01",
        "file_name": "dance.mp4",
        "mime_type": "video/mp4",
        "file_size": 181_467,
    });
    let mut animation = file.clone();
    animation["width"] = Value::from(320);
    animation["height"] = Value::from(240);
    animation["duration"] = Value::from(3);
    into_map(json!({ "animation": animation, "document": file }))
}

/// Returns the message fields of a photo message: one photo in three sizes.
pub(crate) fn photo_fields() -> Map<String, Value> {
    let sizes: Vec<Value> = [(90, 67, 1_403), (320, 240, 18_722), (800, 600, 71_235)]
        .into_iter()
        .enumerate()
        .map(|(index, (width, height, file_size))| {
            json!({
                "file_id": format!("AgACAgIAAxkBAAIBSimPhotoSize{index}"),
                "file_unique_id": format!("AQADSimPhoto0{index}"),
                "width": width,
                "height": height,
                "file_size": file_size,
            })
        })
        .collect();
    into_map(json!({ "photo": sizes }))
}

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("fixture builders pass JSON objects"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_len_counts_surrogate_pairs() {
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("é"), 1);
        assert_eq!(utf16_len("\u{1F600}"), 2);
    }

    #[test]
    fn command_entity_covers_command_only() {
        let entity = leading_command_entity("/start now").unwrap();
        assert_eq!(entity["type"], "bot_command");
        assert_eq!(entity["offset"], 0);
        assert_eq!(entity["length"], 6);
    }

    #[test]
    fn command_entity_includes_bot_name() {
        let entity = leading_command_entity("/log@demo_flow_bot").unwrap();
        assert_eq!(entity["length"], 18);
    }

    #[test]
    fn command_entity_rejects_plain_text() {
        assert_eq!(leading_command_entity("hello /start"), None);
        assert_eq!(leading_command_entity("/"), None);
        assert_eq!(leading_command_entity("/ start"), None);
    }

    #[test]
    fn empty_inline_keyboard_is_no_keyboard() {
        assert!(!is_inline_keyboard(&json!({ "inline_keyboard": [] })));
        assert!(!is_inline_keyboard(&json!({ "inline_keyboard": [[]] })));
        assert!(!is_inline_keyboard(&json!({ "remove_keyboard": true })));
        assert!(is_inline_keyboard(
            &json!({ "inline_keyboard": [[{ "text": "A", "callback_data": "a" }]] })
        ));
    }

    #[test]
    fn bot_message_omits_reply_keyboards() {
        let message = BotMessage {
            message_id: 3,
            chat_id: 10,
            text: "hi".into(),
            reply_markup: Some(json!({ "remove_keyboard": true })),
            parse_mode: None,
            date: 1,
            edit_date: None,
            edits: 0,
            deleted: false,
        };
        let chat = json!({ "id": 10, "type": "private", "first_name": "Ann" });
        let object = bot_message(&message, &chat, &BotProfile::default());
        assert_eq!(object["message_id"], 3);
        assert_eq!(object["from"]["is_bot"], true);
        assert!(object.get("reply_markup").is_none());
        assert!(object.get("edit_date").is_none());
    }
}
