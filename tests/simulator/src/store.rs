//! The simulator's state: known chats and their messages, pending updates,
//! callback queries, commands, the webhook, faults and the call log.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::config::BotProfile;
use crate::faults::FaultSet;
use crate::objects::unix_now;
use crate::types::{ApiCall, BotMessage, CallbackAnswer, SimEvent, Webhook};
use crate::updates::UpdateQueue;

/// Update kinds whose payload is a Message.
const MESSAGE_KINDS: [&str; 6] = [
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
];

/// Update kinds that bring a new message, which takes the next message id.
const NEW_MESSAGE_KINDS: [&str; 3] = ["message", "channel_post", "business_message"];

/// A chat that the simulator has seen in an update.
#[derive(Debug)]
pub(crate) struct ChatRecord {
    /// The Chat object as the latest update carried it.
    pub(crate) chat: Value,
    last_message_id: i32,
    /// The bot's messages by id. Ids grow with send order, so this is send order.
    pub(crate) bot_messages: BTreeMap<i32, BotMessage>,
    /// Ids of messages that users sent and that are not deleted.
    pub(crate) user_messages: BTreeSet<i32>,
}

impl ChatRecord {
    fn new(chat: Value) -> Self {
        ChatRecord {
            chat,
            last_message_id: 0,
            bot_messages: BTreeMap::new(),
            user_messages: BTreeSet::new(),
        }
    }

    /// Returns the next message id of this chat. User and bot messages share
    /// the sequence, as in Telegram.
    pub(crate) fn next_message_id(&mut self) -> i32 {
        self.last_message_id += 1;
        self.last_message_id
    }

    fn note_message_id(&mut self, id: i32) {
        self.last_message_id = self.last_message_id.max(id);
    }
}

/// Key of a command list: the `scope` object as compact JSON and the language code.
pub(crate) type CommandScopeKey = (String, String);

/// Returns the key of the default scope without a language code.
pub(crate) fn default_command_scope() -> CommandScopeKey {
    (r#"{"type":"default"}"#.to_owned(), String::new())
}

/// Everything the simulator stores, behind one mutex in [`Shared`](crate::simulator::Shared).
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) bot: BotProfile,
    pub(crate) chats: HashMap<i64, ChatRecord>,
    pub(crate) updates: UpdateQueue,
    /// Callback query ids that may still be answered.
    pub(crate) open_callback_queries: BTreeSet<String>,
    next_callback_query: u64,
    pub(crate) callback_answers: Vec<CallbackAnswer>,
    pub(crate) calls: Vec<ApiCall>,
    pub(crate) commands: HashMap<CommandScopeKey, Vec<(String, String)>>,
    pub(crate) webhook: Option<Webhook>,
    pub(crate) faults: FaultSet,
    events: broadcast::Sender<SimEvent>,
}

impl State {
    pub(crate) fn new(bot: BotProfile, events: broadcast::Sender<SimEvent>) -> Self {
        State {
            bot,
            chats: HashMap::new(),
            updates: UpdateQueue::default(),
            open_callback_queries: BTreeSet::new(),
            next_callback_query: 0,
            callback_answers: Vec::new(),
            calls: Vec::new(),
            commands: HashMap::new(),
            webhook: None,
            faults: FaultSet::default(),
            events,
        }
    }

    /// Appends a call to the log and returns its index. The status is set when
    /// the response is ready.
    pub(crate) fn record_call(
        &mut self,
        method: &str,
        chat_id: Option<i64>,
        params: Value,
    ) -> usize {
        self.calls.push(ApiCall {
            method: method.to_owned(),
            chat_id,
            params,
            status: None,
            received_at: Instant::now(),
        });
        self.calls.len() - 1
    }

    /// Broadcasts `event` to subscribers. Having no subscriber is not an error.
    pub(crate) fn emit(&self, event: SimEvent) {
        let _ = self.events.send(event);
    }

    /// Adds a chat or refreshes its Chat object, and returns its id.
    pub(crate) fn register_chat(&mut self, chat: &Value) -> Option<i64> {
        let id = chat.get("id")?.as_i64()?;
        self.chats
            .entry(id)
            .and_modify(|record| record.chat = chat.clone())
            .or_insert_with(|| ChatRecord::new(chat.clone()));
        Some(id)
    }

    /// Finds a chat by a `chat_id` parameter: an integer, a decimal string or
    /// the `@username` of a known chat.
    pub(crate) fn resolve_chat(&self, chat_id: &Value) -> Option<i64> {
        match chat_id {
            Value::Number(number) => number.as_i64(),
            Value::String(text) => match text.strip_prefix('@') {
                Some(username) => self.chats.iter().find_map(|(id, record)| {
                    let known = record.chat.get("username").and_then(Value::as_str)?;
                    known.eq_ignore_ascii_case(username).then_some(*id)
                }),
                None => text.trim().parse().ok(),
            },
            _ => None,
        }
    }

    /// Returns a fresh callback query id. Telegram's ids are opaque decimal strings.
    pub(crate) fn new_callback_query_id(&mut self) -> String {
        self.next_callback_query += 1;
        format!("{}{:06}", self.bot.id, self.next_callback_query)
    }

    /// Registers the chats, messages and callback queries of an incoming
    /// update, and fills in the `message_id` and `date` of a new message when
    /// they are missing.
    pub(crate) fn absorb_update(&mut self, update: &mut Value) {
        let Some(fields) = update.as_object_mut() else {
            return;
        };
        for (kind, payload) in fields.iter_mut() {
            if MESSAGE_KINDS.contains(&kind.as_str()) {
                let is_new = NEW_MESSAGE_KINDS.contains(&kind.as_str());
                self.absorb_message(payload, is_new);
            } else if kind == "callback_query" {
                if let Some(id) = payload.get("id").and_then(Value::as_str) {
                    self.open_callback_queries.insert(id.to_owned());
                }
                if let Some(chat) = payload.pointer("/message/chat") {
                    self.register_chat(&chat.clone());
                }
            } else if let Some(chat) = payload.get("chat") {
                self.register_chat(&chat.clone());
            }
        }
    }

    fn absorb_message(&mut self, message: &mut Value, is_new: bool) {
        let Some(chat) = message.get("chat").cloned() else {
            return;
        };
        let Some(chat_id) = self.register_chat(&chat) else {
            return;
        };
        let record = self
            .chats
            .get_mut(&chat_id)
            .expect("chat was just registered");
        let Some(fields) = message.as_object_mut() else {
            return;
        };

        let given_id = fields
            .get("message_id")
            .and_then(Value::as_i64)
            .and_then(|id| i32::try_from(id).ok());
        let message_id = match given_id {
            Some(id) => {
                record.note_message_id(id);
                id
            }
            // An edit refers to an earlier message, so only new messages get an id.
            None if !is_new => return,
            None => {
                let id = record.next_message_id();
                fields.insert("message_id".into(), Value::from(id));
                id
            }
        };
        if is_new {
            record.user_messages.insert(message_id);
        }
        if !fields.contains_key("date") {
            fields.insert("date".into(), Value::from(unix_now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn state() -> State {
        State::new(BotProfile::default(), broadcast::channel(4).0)
    }

    #[test]
    fn absorb_assigns_message_ids_per_chat() {
        let mut state = state();
        let mut first =
            json!({ "message": { "chat": { "id": 1, "type": "private" }, "text": "a" } });
        let mut second =
            json!({ "message": { "chat": { "id": 1, "type": "private" }, "text": "b" } });
        let mut other =
            json!({ "message": { "chat": { "id": 2, "type": "private" }, "text": "c" } });
        state.absorb_update(&mut first);
        state.absorb_update(&mut second);
        state.absorb_update(&mut other);
        assert_eq!(first["message"]["message_id"], 1);
        assert_eq!(second["message"]["message_id"], 2);
        assert_eq!(other["message"]["message_id"], 1);
        assert!(first["message"]["date"].is_i64());
    }

    #[test]
    fn absorb_keeps_given_message_id() {
        let mut state = state();
        let mut update = json!({
            "message": { "message_id": 40, "chat": { "id": 1, "type": "private" }, "date": 5 }
        });
        state.absorb_update(&mut update);
        assert_eq!(update["message"]["date"], 5);
        assert_eq!(state.chats.get_mut(&1).unwrap().next_message_id(), 41);
    }

    #[test]
    fn absorb_leaves_edit_without_id() {
        let mut state = state();
        let mut update = json!({
            "edited_message": { "chat": { "id": 1, "type": "private" }, "text": "b" }
        });
        state.absorb_update(&mut update);
        assert!(update["edited_message"].get("message_id").is_none());
        assert!(state.chats[&1].user_messages.is_empty());
    }

    #[test]
    fn absorb_registers_chat_of_other_kinds() {
        let mut state = state();
        let mut update = json!({
            "my_chat_member": { "chat": { "id": -100, "type": "supergroup", "title": "Gym" } }
        });
        state.absorb_update(&mut update);
        assert!(state.chats.contains_key(&-100));
    }

    #[test]
    fn absorb_opens_callback_query() {
        let mut state = state();
        let mut update = json!({ "callback_query": { "id": "77", "chat_instance": "1" } });
        state.absorb_update(&mut update);
        assert!(state.open_callback_queries.contains("77"));
    }

    #[test]
    fn resolve_chat_accepts_username() {
        let mut state = state();
        state.register_chat(&json!({ "id": -5, "type": "channel", "username": "news" }));
        assert_eq!(state.resolve_chat(&json!("@News")), Some(-5));
        assert_eq!(state.resolve_chat(&json!("@missing")), None);
        assert_eq!(state.resolve_chat(&json!("-5")), Some(-5));
        assert_eq!(state.resolve_chat(&json!(12)), Some(12));
    }
}
