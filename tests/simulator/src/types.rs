//! Public records of what happened: simulated users, the bot's messages, API
//! calls, callback answers and the events the simulator broadcasts.

use serde_json::Value;
use tokio::time::Instant;

/// A Telegram user that tests and the playground act as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimUser {
    pub id: i64,
    pub first_name: String,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

impl SimUser {
    /// Creates a user without a username or language code.
    pub fn new(id: i64, first_name: impl Into<String>) -> Self {
        SimUser {
            id,
            first_name: first_name.into(),
            username: None,
            language_code: None,
        }
    }

    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    pub fn with_language_code(mut self, language_code: impl Into<String>) -> Self {
        self.language_code = Some(language_code.into());
        self
    }
}

/// A message that the bot sent, in its current state.
#[derive(Clone, Debug, PartialEq)]
pub struct BotMessage {
    /// Message id, unique within the chat. User and bot messages share the sequence.
    pub message_id: i32,
    pub chat_id: i64,
    /// Text as the bot sent it. The simulator does not parse `parse_mode` markup,
    /// so HTML or Markdown tags stay in the text.
    pub text: String,
    /// `reply_markup` exactly as the bot sent it: an inline keyboard, a reply
    /// keyboard, `remove_keyboard` or `force_reply`.
    pub reply_markup: Option<Value>,
    pub parse_mode: Option<String>,
    /// Unix time in seconds.
    pub date: i64,
    /// Unix time in seconds of the latest edit.
    pub edit_date: Option<i64>,
    /// Number of successful `editMessageText` and `editMessageReplyMarkup` calls.
    pub edits: u32,
    /// Set by `deleteMessage`. Deleted messages stay in
    /// [`Simulator::messages`](crate::Simulator::messages) with this flag.
    pub deleted: bool,
}

impl BotMessage {
    /// Returns the inline keyboard rows, or `None` when the message has no inline keyboard.
    pub fn inline_keyboard(&self) -> Option<&Vec<Value>> {
        self.reply_markup
            .as_ref()?
            .get("inline_keyboard")?
            .as_array()
    }

    /// Flattens the inline keyboard row by row into `(text, callback_data)` pairs.
    /// Buttons without `callback_data` (URL buttons and the like) get an empty string.
    pub fn buttons(&self) -> Vec<(String, String)> {
        let Some(rows) = self.inline_keyboard() else {
            return Vec::new();
        };
        rows.iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|button| {
                let text = button["text"].as_str().unwrap_or_default().to_owned();
                let data = button["callback_data"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (text, data)
            })
            .collect()
    }
}

/// One HTTP request that reached a Bot API method URL, valid or not.
#[derive(Clone, Debug)]
pub struct ApiCall {
    /// Method name as the Bot API documents it (`sendMessage`), whatever its
    /// case in the URL. An unknown method keeps the name from the URL.
    pub method: String,
    /// The `chat_id` parameter when it is an integer or the `@username` of a known chat.
    pub chat_id: Option<i64>,
    /// Query-string and body parameters merged into one JSON object. Values sent
    /// as query or form parameters stay strings.
    pub params: Value,
    /// HTTP status of the response. `None` while the request is still being
    /// handled (a long poll) and for calls that got no response
    /// ([`Fault::Hang`](crate::Fault::Hang), [`Fault::Reset`](crate::Fault::Reset)).
    pub status: Option<u16>,
    /// Time the request arrived. It follows tokio's clock, so it respects paused time.
    pub received_at: Instant,
}

/// A successful `answerCallbackQuery` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackAnswer {
    pub callback_query_id: String,
    pub text: Option<String>,
    pub show_alert: bool,
}

/// The webhook set by `setWebhook`. The simulator stores it but never calls it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub secret_token: Option<String>,
    pub allowed_updates: Option<Vec<String>>,
}

/// A change on the bot's side, broadcast by [`Simulator::subscribe`](crate::Simulator::subscribe).
#[derive(Clone, Debug, PartialEq)]
pub enum SimEvent {
    MessageSent(BotMessage),
    /// The message after the edit.
    MessageEdited(BotMessage),
    /// The message as it was when deleted, with `deleted` set.
    MessageDeleted(BotMessage),
    CallbackAnswered(CallbackAnswer),
}
