//! Delivery of a flow's actions to the chat they are bound to, applying the
//! error policy to every failed request.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, KeyboardRemove, MessageId,
    ReplyMarkup as TelegramMarkup, ThreadId,
};
use tracing::{debug, info, warn};

use super::pacing::Pacer;
use super::policy::{self, Decision};
use crate::conversation::ConversationKey;
use crate::metrics;
use crate::runtime::{Action, Button, ReplyMarkup, SendText};
use crate::store::{StateStore, StoreError};

/// Telegram's maximum message length, in UTF-16 code units.
pub const MAX_TEXT_UNITS: usize = 4096;
/// Attempts of one request on transient failures, the first included.
const MAX_ATTEMPTS: u32 = 4;
/// Flood-control waits honoured for one request before it is dropped.
const MAX_FLOOD_WAITS: u32 = 10;

/// Where the actions of one update go: the chat (and topic) of the update,
/// and the callback query it answers, if any. Flows never choose these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub chat_id: i64,
    pub thread_id: Option<i32>,
    pub callback_query_id: Option<String>,
}

/// One action bound to its target: an outbox entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outgoing {
    pub target: Target,
    pub action: Action,
}

/// Result of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The action was sent or settled by the policy.
    Sent,
    /// The chat is gone (bot blocked, chat deleted); nothing more may be sent.
    ChatGone,
}

#[derive(Clone)]
pub struct Sender {
    bot: Bot,
    store: StateStore,
    pacer: Arc<Pacer>,
}

impl Sender {
    pub fn new(bot: Bot, store: StateStore, pacer: Arc<Pacer>) -> Self {
        Self { bot, store, pacer }
    }

    /// Sends the conversation's outbox, oldest first, removing each entry
    /// once Telegram accepted it or the policy settled it. An entry is sent a
    /// second time only if the host stops between sending and removing it.
    pub async fn flush(&self, key: ConversationKey) -> Result<Delivered, StoreError> {
        let entries = self.store.outbox(key).await?;
        self.deliver(key, &entries).await
    }

    /// Like [`Sender::flush`], for a caller that knows the outbox holds
    /// exactly `entries`, such as the worker that just committed them. Only
    /// the conversation's own worker appends to its outbox or pops from it,
    /// so the entries cannot change in the meantime.
    pub async fn deliver(
        &self,
        key: ConversationKey,
        entries: &[String],
    ) -> Result<Delivered, StoreError> {
        for (index, entry) in entries.iter().enumerate() {
            let outgoing: Outgoing = match serde_json::from_str(entry) {
                Ok(outgoing) => outgoing,
                Err(error) => {
                    warn!(%error, "invalid outbox entry dropped");
                    self.store.pop_outbox(key).await?;
                    continue;
                }
            };
            if is_superseded(&outgoing, &entries[index + 1..]) {
                debug!(
                    chat_id = outgoing.target.chat_id,
                    "edit superseded by a newer one, skipped"
                );
                self.store.pop_outbox(key).await?;
                continue;
            }
            if self.send(&outgoing.target, outgoing.action).await == Delivered::ChatGone {
                self.store.clear_outbox(key).await?;
                return Ok(Delivered::ChatGone);
            }
            self.store.pop_outbox(key).await?;
        }
        Ok(Delivered::Sent)
    }

    /// Sends one action, applying the error policy until it is settled.
    pub async fn send(&self, target: &Target, mut action: Action) -> Delivered {
        let mut attempt = 1;
        let mut flood_waits = 0;
        loop {
            let method = method_name(&action);
            let Err(error) = self.execute(target, &action).await else {
                metrics::increment(
                    "flowbot_telegram_requests_total",
                    &[("method", method), ("result", "ok")],
                );
                return Delivered::Sent;
            };
            metrics::increment(
                "flowbot_telegram_requests_total",
                &[("method", method), ("result", "failed")],
            );
            let (decision, reason) = policy::decide(&error);
            metrics::increment(
                "flowbot_telegram_decisions_total",
                &[("method", method), ("decision", decision.name())],
            );
            match decision {
                Decision::Done | Decision::Skip => {
                    debug!(
                        chat_id = target.chat_id,
                        method,
                        ?decision,
                        reason,
                        "request settled by policy"
                    );
                    return Delivered::Sent;
                }
                Decision::SendAsNew => {
                    info!(
                        chat_id = target.chat_id,
                        method, reason, "message to edit is gone, sending a new one"
                    );
                    match action {
                        Action::EditText(edit) => {
                            let markup = edit.keyboard.map(ReplyMarkup::InlineKeyboard);
                            action = Action::SendText(SendText {
                                text: edit.text,
                                markup,
                            });
                        }
                        _ => return Delivered::Sent,
                    }
                }
                Decision::ChatGone => {
                    info!(
                        chat_id = target.chat_id,
                        method, reason, "chat is gone, marking it inactive"
                    );
                    if let Err(error) = self.store.set_chat_inactive(target.chat_id, true).await {
                        warn!(chat_id = target.chat_id, %error, "failed to mark chat inactive");
                    }
                    return Delivered::ChatGone;
                }
                Decision::RetryAfter(wait) if flood_waits < MAX_FLOOD_WAITS => {
                    // Nothing else is sent for this conversation meanwhile;
                    // other conversations keep going.
                    warn!(
                        chat_id = target.chat_id,
                        method,
                        wait_secs = wait.as_secs(),
                        "flood control, waiting"
                    );
                    tokio::time::sleep(wait).await;
                    flood_waits += 1;
                }
                Decision::Retry if attempt < MAX_ATTEMPTS => {
                    let backoff = Duration::from_millis(250 << attempt);
                    warn!(
                        chat_id = target.chat_id,
                        method, attempt, reason, "request failed, retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
                Decision::RetryAfter(_) | Decision::Retry | Decision::Fail => {
                    warn!(
                        chat_id = target.chat_id,
                        method, attempt, reason, "request failed, action dropped"
                    );
                    return Delivered::Sent;
                }
            }
        }
    }

    async fn execute(&self, target: &Target, action: &Action) -> Result<(), RequestError> {
        let chat = ChatId(target.chat_id);
        match action {
            Action::SendText(send) => {
                let chunks = split_text(&send.text, MAX_TEXT_UNITS);
                let last = chunks.len() - 1;
                for (index, chunk) in chunks.into_iter().enumerate() {
                    self.pacer.acquire(target.chat_id).await;
                    let mut request = self.bot.send_message(chat, chunk);
                    if let Some(thread_id) = target.thread_id {
                        request = request.message_thread_id(ThreadId(MessageId(thread_id)));
                    }
                    if index == last
                        && let Some(markup) = &send.markup
                    {
                        request = request.reply_markup(telegram_markup(markup));
                    }
                    request.await?;
                }
            }
            Action::EditText(edit) => {
                // NOTE: an edit cannot grow into several messages, so a text over
                // the limit keeps only its first part.
                let text = split_text(&edit.text, MAX_TEXT_UNITS).swap_remove(0);
                self.pacer.acquire(target.chat_id).await;
                let mut request =
                    self.bot
                        .edit_message_text(chat, MessageId(edit.message_id), text);
                if let Some(keyboard) = &edit.keyboard {
                    request = request.reply_markup(inline_keyboard(keyboard));
                }
                request.await?;
            }
            Action::EditKeyboard(edit) => {
                self.pacer.acquire(target.chat_id).await;
                let mut request = self
                    .bot
                    .edit_message_reply_markup(chat, MessageId(edit.message_id));
                if let Some(keyboard) = &edit.keyboard {
                    request = request.reply_markup(inline_keyboard(keyboard));
                }
                request.await?;
            }
            Action::AnswerCallback(answer) => {
                let Some(query_id) = &target.callback_query_id else {
                    return Ok(());
                };
                let mut request = self.bot.answer_callback_query(query_id.clone().into());
                if let Some(notice) = &answer.notice {
                    request = request.text(notice.clone()).show_alert(answer.alert);
                }
                request.await?;
            }
        }
        Ok(())
    }
}

/// True when a later entry replaces what `outgoing` would show: an edit
/// followed by a newer text edit of the same message, or a keyboard edit
/// followed by a newer keyboard edit. Only the newest text then goes out.
fn is_superseded(outgoing: &Outgoing, later: &[String]) -> bool {
    let (message_id, keyboard_only) = match &outgoing.action {
        Action::EditText(edit) => (edit.message_id, false),
        Action::EditKeyboard(edit) => (edit.message_id, true),
        _ => return false,
    };
    later
        .iter()
        .filter_map(|entry| serde_json::from_str::<Outgoing>(entry).ok())
        .filter(|newer| newer.target.chat_id == outgoing.target.chat_id)
        .any(|newer| match newer.action {
            Action::EditText(edit) => edit.message_id == message_id,
            Action::EditKeyboard(edit) => keyboard_only && edit.message_id == message_id,
            _ => false,
        })
}

fn method_name(action: &Action) -> &'static str {
    match action {
        Action::SendText(_) => "sendMessage",
        Action::EditText(_) => "editMessageText",
        Action::EditKeyboard(_) => "editMessageReplyMarkup",
        Action::AnswerCallback(_) => "answerCallbackQuery",
    }
}

fn telegram_markup(markup: &ReplyMarkup) -> TelegramMarkup {
    match markup {
        ReplyMarkup::InlineKeyboard(keyboard) => {
            TelegramMarkup::InlineKeyboard(inline_keyboard(keyboard))
        }
        ReplyMarkup::RemoveKeyboard => TelegramMarkup::KeyboardRemove(KeyboardRemove::new()),
    }
}

fn inline_keyboard(rows: &[Vec<Button>]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(rows.iter().map(|row| {
        row.iter()
            .map(|button| InlineKeyboardButton::callback(button.text.clone(), button.data.clone()))
            .collect::<Vec<_>>()
    }))
}

/// Splits `text` into parts of at most `max_units` UTF-16 code units,
/// preferring to cut after a newline and never cutting inside a character.
/// Returns one empty part for empty text.
pub fn split_text(text: &str, max_units: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut units = 0;
        let mut end = rest.len();
        let mut last_newline = None;
        for (index, character) in rest.char_indices() {
            if units + character.len_utf16() > max_units {
                end = index;
                break;
            }
            units += character.len_utf16();
            if character == '\n' {
                last_newline = Some(index + 1);
            }
        }
        if end < rest.len()
            && let Some(newline) = last_newline
        {
            end = newline;
        }
        let (part, tail) = rest.split_at(end);
        parts.push(part.to_owned());
        rest = tail;
    }
    if parts.is_empty() {
        parts.push(String::new());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{EditKeyboard, EditText};

    fn entry(action: Action) -> Outgoing {
        let target = Target {
            chat_id: 1001,
            thread_id: None,
            callback_query_id: None,
        };
        Outgoing { target, action }
    }

    fn edit_text(message_id: i32, text: &str) -> Action {
        Action::EditText(EditText {
            message_id,
            text: text.to_owned(),
            keyboard: None,
        })
    }

    #[test]
    fn older_edit_of_same_message_is_superseded() {
        let later = [serde_json::to_string(&entry(edit_text(41, "40 %"))).unwrap()];
        assert!(is_superseded(&entry(edit_text(41, "10 %")), &later));
        assert!(!is_superseded(&entry(edit_text(42, "10 %")), &later));
        let keyboard = Action::EditKeyboard(EditKeyboard {
            message_id: 41,
            keyboard: None,
        });
        assert!(is_superseded(&entry(keyboard), &later));
    }

    #[test]
    fn sends_are_never_superseded() {
        let send = Action::SendText(SendText {
            text: "hi".to_owned(),
            markup: None,
        });
        let later = [serde_json::to_string(&entry(send.clone())).unwrap()];
        assert!(!is_superseded(&entry(send), &later));
    }

    #[test]
    fn outbox_entry_round_trips_as_json() {
        let original = entry(edit_text(41, "done"));
        let json = serde_json::to_string(&original).unwrap();
        let parsed: Outgoing = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.target, original.target);
        assert!(matches!(parsed.action, Action::EditText(edit) if edit.text == "done"));
    }

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_text("hello", 4096), vec!["hello"]);
    }

    #[test]
    fn long_text_splits_at_the_limit() {
        let text = "a".repeat(10_000);
        let parts = split_text(&text, 4096);
        let lengths: Vec<usize> = parts.iter().map(String::len).collect();
        assert_eq!(lengths, vec![4096, 4096, 1808]);
    }

    #[test]
    fn split_never_cuts_a_surrogate_pair() {
        // Each emoji is two UTF-16 units; an odd limit must not cut one.
        let text = "💪".repeat(10);
        let parts = split_text(&text, 5);
        assert!(parts.iter().all(|part| part.encode_utf16().count() <= 5));
        assert_eq!(parts.concat(), text);
        assert_eq!(parts[0], "💪💪");
    }

    #[test]
    fn split_prefers_newlines() {
        let parts = split_text("line one\nline two", 12);
        assert_eq!(parts, vec!["line one\n", "line two"]);
    }
}
