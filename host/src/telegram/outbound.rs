//! Delivery of a flow's actions to the chat they are bound to, applying the
//! error policy to every failed request.

use std::time::Duration;

use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, KeyboardRemove, MessageId,
    ReplyMarkup as TelegramMarkup, ThreadId,
};
use tracing::{debug, info, warn};

use super::policy::{self, Decision};
use crate::runtime::{Action, AnswerCallback, Button, ReplyMarkup, SendText};
use crate::store::StateStore;

/// Telegram's maximum message length, in UTF-16 code units.
pub const MAX_TEXT_UNITS: usize = 4096;
/// Attempts of one request on transient failures, the first included.
const MAX_ATTEMPTS: u32 = 4;
/// Longest flood-control wait honoured inline; a longer one drops the action.
// TODO: park such actions in a persistent per-chat outbox instead of dropping them.
const MAX_INLINE_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Where the actions of one update go: the chat (and topic) of the update,
/// and the callback query it answers, if any. Flows never choose these.
#[derive(Debug, Clone)]
pub struct Target {
    pub chat_id: i64,
    pub thread_id: Option<i32>,
    pub callback_query_id: Option<String>,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Every action was sent or settled by the policy.
    All,
    /// The chat is gone (bot blocked, chat deleted); the rest was not sent.
    ChatGone,
}

#[derive(Clone)]
pub struct Sender {
    bot: Bot,
    store: StateStore,
}

impl Sender {
    pub fn new(bot: Bot, store: StateStore) -> Self {
        Self { bot, store }
    }

    /// Sends `actions` in order. A callback press the actions leave unanswered
    /// is answered at the end, so the user's client stops its spinner.
    pub async fn deliver(&self, target: &Target, actions: &[Action]) -> Delivered {
        let mut answered = false;
        for action in actions {
            if let Action::AnswerCallback(_) = action {
                if answered || target.callback_query_id.is_none() {
                    debug!(
                        chat_id = target.chat_id,
                        "dropping a callback answer with no press to answer"
                    );
                    continue;
                }
                answered = true;
            }
            if self.deliver_one(target, action.clone()).await == Delivered::ChatGone {
                return Delivered::ChatGone;
            }
        }
        if !answered && target.callback_query_id.is_some() {
            let answer = Action::AnswerCallback(AnswerCallback {
                notice: None,
                alert: false,
            });
            return self.deliver_one(target, answer).await;
        }
        Delivered::All
    }

    /// Sends a plain text reply, used by the host for its own messages.
    pub async fn reply(&self, target: &Target, text: &str) -> Delivered {
        let action = Action::SendText(SendText {
            text: text.to_owned(),
            markup: None,
        });
        self.deliver(target, &[action]).await
    }

    async fn deliver_one(&self, target: &Target, mut action: Action) -> Delivered {
        let mut attempt = 1;
        loop {
            let Err(error) = self.execute(target, &action).await else {
                return Delivered::All;
            };
            let (decision, reason) = policy::decide(&error);
            let method = method_name(&action);
            match decision {
                Decision::Done | Decision::Skip => {
                    debug!(
                        chat_id = target.chat_id,
                        method,
                        ?decision,
                        reason,
                        "request settled by policy"
                    );
                    return Delivered::All;
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
                        _ => return Delivered::All,
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
                Decision::RetryAfter(wait)
                    if wait <= MAX_INLINE_RETRY_AFTER && attempt < MAX_ATTEMPTS =>
                {
                    warn!(
                        chat_id = target.chat_id,
                        method,
                        wait_secs = wait.as_secs(),
                        "flood control, waiting"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
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
                    return Delivered::All;
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
                let mut request =
                    self.bot
                        .edit_message_text(chat, MessageId(edit.message_id), text);
                if let Some(keyboard) = &edit.keyboard {
                    request = request.reply_markup(inline_keyboard(keyboard));
                }
                request.await?;
            }
            Action::EditKeyboard(edit) => {
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
