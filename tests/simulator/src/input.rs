//! The input side of [`Simulator`]: updates that users cause, such as text,
//! media and button presses.

use serde_json::{Map, Value, json};

use crate::objects;
use crate::simulator::Simulator;
use crate::types::SimUser;

impl Simulator {
    /// Queues a raw Bot API update and returns its `update_id`.
    ///
    /// A missing `update_id` is assigned. The chats that the update names
    /// become known, so the bot may send to them. A new message without
    /// `message_id` or `date` gets the chat's next message id and the current time.
    /// A `callback_query` id becomes answerable once.
    ///
    /// Panics if `update` is not a JSON object.
    pub fn push_update(&self, update: Value) -> i64 {
        self.shared.update(|state| {
            let mut update = update;
            state.absorb_update(&mut update);
            state.updates.push(update)
        })
    }

    /// Queues several raw updates at once, so a single `getUpdates` answer
    /// carries them all (as when a user sends a burst while the bot is busy).
    /// Returns their `update_id`s in order.
    pub fn push_batch(&self, updates: Vec<Value>) -> Vec<i64> {
        self.shared.update(|state| {
            updates
                .into_iter()
                .map(|mut update| {
                    state.absorb_update(&mut update);
                    state.updates.push(update)
                })
                .collect()
        })
    }

    /// Makes the private chat with `user` known without sending a message, as
    /// if the user had started the bot earlier.
    pub fn add_private_chat(&self, user: &SimUser) {
        self.shared.update(|state| {
            state.register_chat(&objects::private_chat(user));
        });
    }

    /// Queues a text message from `user` in their private chat with the bot
    /// and returns its `update_id`. A leading `/command` gets a `bot_command`
    /// entity measured in UTF-16 code units, as Telegram sends it.
    pub fn send_text(&self, user: &SimUser, text: &str) -> i64 {
        let mut content = Map::new();
        content.insert("text".into(), Value::from(text));
        if let Some(entity) = objects::leading_command_entity(text) {
            content.insert("entities".into(), json!([entity]));
        }
        self.push_user_message(user, content)
    }

    /// Queues a sticker message from `user` and returns its `update_id`.
    pub fn send_sticker(&self, user: &SimUser) -> i64 {
        self.push_user_message(user, objects::sticker_fields())
    }

    /// Queues a GIF from `user` and returns its `update_id`. Like Telegram, the
    /// message carries both `animation` and `document`.
    pub fn send_animation(&self, user: &SimUser) -> i64 {
        self.push_user_message(user, objects::animation_fields())
    }

    /// Queues a photo message without a caption from `user` and returns its `update_id`.
    pub fn send_photo(&self, user: &SimUser) -> i64 {
        self.push_user_message(user, objects::photo_fields())
    }

    /// Queues a `callback_query` from `user` pressing a button with `data` on
    /// the bot message `message_id` of their private chat, and returns its `update_id`.
    ///
    /// The query carries the message as it is now, text and keyboard included.
    /// When the message does not exist or was deleted, it carries an
    /// InaccessibleMessage instead. `data` is not checked against the
    /// keyboard, so tests can press stale buttons.
    pub fn press_button(&self, user: &SimUser, message_id: i32, data: &str) -> i64 {
        self.shared.update(|state| {
            let chat_id = state
                .register_chat(&objects::private_chat(user))
                .expect("a private chat object has an integer id");
            let record = &state.chats[&chat_id];
            let message = match record.bot_messages.get(&message_id) {
                Some(message) if !message.deleted => {
                    objects::bot_message(message, &record.chat, &state.bot)
                }
                _ => objects::inaccessible_message(message_id, &record.chat),
            };

            let mut update = json!({
                "callback_query": {
                    "id": state.new_callback_query_id(),
                    "from": objects::user(user),
                    "message": message,
                    "chat_instance": chat_instance(chat_id),
                    "data": data,
                },
            });
            state.absorb_update(&mut update);
            state.updates.push(update)
        })
    }

    fn push_user_message(&self, user: &SimUser, content: Map<String, Value>) -> i64 {
        let mut message = Map::new();
        message.insert("from".into(), objects::user(user));
        message.insert("chat".into(), objects::private_chat(user));
        message.extend(content);
        self.push_update(json!({ "message": message }))
    }
}

/// Returns a stable `chat_instance` for a chat. Telegram's values are opaque
/// decimal strings.
fn chat_instance(chat_id: i64) -> String {
    (-(i128::from(chat_id).abs() * 7_919 + 13)).to_string()
}
