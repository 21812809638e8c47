//! A builder for what a flow returns from one update: actions in order, and
//! whether the flow releases the conversation or clears its state.

use crate::{Action, AnswerCallback, EditKeyboard, EditText, Keyboard, ReplyMarkup, SendText};

/// The result of handling one update.
///
/// Actions run in the order they were added. By default a reply keeps the
/// conversation with the flow and stores its state; [`Reply::done`] releases
/// the conversation and [`Reply::clear_state`] deletes the state.
///
/// ```
/// use flowbot_sdk::{Keyboard, Reply};
///
/// let reply = Reply::text("Added squat 3x5 100kg.")
///     .with_keyboard(Keyboard::new().button("Finish", "finish:1"));
///
/// assert_eq!(reply.texts(), vec!["Added squat 3x5 100kg."]);
/// assert!(!reply.is_done());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reply {
    actions: Vec<Action>,
    done: bool,
    clears_state: bool,
}

impl Reply {
    /// Creates a reply with no actions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a reply that sends one text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new().and_text(text)
    }

    /// Adds a text message to send.
    pub fn and_text(mut self, text: impl Into<String>) -> Self {
        self.actions.push(Action::SendText(SendText {
            text: text.into(),
            markup: None,
        }));
        self
    }

    /// Attaches an inline keyboard to the message added last, which is a
    /// message to send ([`Reply::text`], [`Reply::and_text`]) or an edit
    /// ([`Reply::edit`]). An empty keyboard attaches none, so an edit removes the
    /// message's keyboard.
    ///
    /// # Panics
    ///
    /// Panics when the action added last is not a message or an edit.
    pub fn with_keyboard(mut self, keyboard: Keyboard) -> Self {
        let rows = keyboard.into_rows();
        match self.actions.last_mut() {
            Some(Action::SendText(send)) => {
                send.markup = (!rows.is_empty()).then_some(ReplyMarkup::InlineKeyboard(rows));
            }
            Some(Action::EditText(edit)) => {
                edit.keyboard = (!rows.is_empty()).then_some(rows);
            }
            other => panic!(
                "Reply::with_keyboard needs a message or an edit added before it, \
                 but the last action is {other:?}"
            ),
        }
        self
    }

    /// Adds an edit that replaces the text of a message the bot sent and
    /// removes its keyboard. Follow it with [`Reply::with_keyboard`] to show
    /// a new keyboard instead.
    pub fn edit(mut self, message_id: i32, text: impl Into<String>) -> Self {
        self.actions.push(Action::EditText(EditText {
            message_id,
            text: text.into(),
            keyboard: None,
        }));
        self
    }

    /// Adds an edit that replaces only the keyboard of a message the bot
    /// sent. An empty keyboard removes it.
    pub fn edit_keyboard(mut self, message_id: i32, keyboard: Keyboard) -> Self {
        let rows = keyboard.into_rows();
        self.actions.push(Action::EditKeyboard(EditKeyboard {
            message_id,
            keyboard: (!rows.is_empty()).then_some(rows),
        }));
        self
    }

    /// Adds an edit that removes the keyboard of a message the bot sent.
    pub fn remove_keyboard(self, message_id: i32) -> Self {
        self.edit_keyboard(message_id, Keyboard::new())
    }

    /// Answers the callback press being handled without a notice, which
    /// only stops the spinner on the pressed button.
    pub fn answer_callback(self) -> Self {
        self.push_answer(None, false)
    }

    /// Answers the callback press with a notice that the client shows
    /// briefly over the chat.
    pub fn answer_callback_with_notice(self, notice: impl Into<String>) -> Self {
        self.push_answer(Some(notice.into()), false)
    }

    /// Answers the callback press with a notice that the client shows as a
    /// dialog the user has to close.
    pub fn answer_callback_with_alert(self, notice: impl Into<String>) -> Self {
        self.push_answer(Some(notice.into()), true)
    }

    /// Releases the conversation, so the host routes the next message by
    /// command again. The state is still stored.
    pub fn done(mut self) -> Self {
        self.done = true;
        self
    }

    /// Deletes the flow's state for this conversation, discarding any change
    /// the flow made to it while handling this update.
    pub fn clear_state(mut self) -> Self {
        self.clears_state = true;
        self
    }

    /// Returns the actions in the order they will run.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// Returns the text of every message sent and every text edit, in order.
    pub fn texts(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter_map(|action| match action {
                Action::SendText(send) => Some(send.text.as_str()),
                Action::EditText(edit) => Some(edit.text.as_str()),
                Action::EditKeyboard(_) | Action::AnswerCallback(_) => None,
            })
            .collect()
    }

    /// Returns the answer to the callback press, if the reply has one.
    pub fn callback_answer(&self) -> Option<&AnswerCallback> {
        self.actions.iter().find_map(|action| match action {
            Action::AnswerCallback(answer) => Some(answer),
            _ => None,
        })
    }

    /// Returns whether the reply releases the conversation.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Returns whether the reply deletes the flow's state.
    pub fn clears_state(&self) -> bool {
        self.clears_state
    }

    /// Converts the reply into its actions.
    pub fn into_actions(self) -> Vec<Action> {
        self.actions
    }

    fn push_answer(mut self, notice: Option<String>, alert: bool) -> Self {
        self.actions
            .push(Action::AnswerCallback(AnswerCallback { notice, alert }));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Button;

    fn finish_rows() -> Vec<Vec<Button>> {
        vec![vec![Button {
            text: "Finish".to_owned(),
            data: "finish".to_owned(),
        }]]
    }

    #[test]
    fn text_sends_one_message() {
        let reply = Reply::text("Hello");

        assert_eq!(
            reply.actions(),
            &[Action::SendText(SendText {
                text: "Hello".to_owned(),
                markup: None,
            })]
        );
        assert!(!reply.is_done());
        assert!(!reply.clears_state());
    }

    #[test]
    fn with_keyboard_attaches_to_last_message() {
        let reply = Reply::text("First")
            .and_text("Second")
            .with_keyboard(Keyboard::new().button("Finish", "finish"));

        assert_eq!(
            reply.actions()[0],
            Action::SendText(SendText {
                text: "First".to_owned(),
                markup: None,
            })
        );
        assert_eq!(
            reply.actions()[1],
            Action::SendText(SendText {
                text: "Second".to_owned(),
                markup: Some(ReplyMarkup::InlineKeyboard(finish_rows())),
            })
        );
    }

    #[test]
    fn with_keyboard_attaches_to_edit() {
        let reply = Reply::new()
            .edit(7, "Updated")
            .with_keyboard(Keyboard::new().button("Finish", "finish"));

        assert_eq!(
            reply.actions(),
            &[Action::EditText(EditText {
                message_id: 7,
                text: "Updated".to_owned(),
                keyboard: Some(finish_rows()),
            })]
        );
    }

    #[test]
    fn with_empty_keyboard_attaches_nothing() {
        let reply = Reply::text("Plain").with_keyboard(Keyboard::new());

        assert_eq!(
            reply.actions(),
            &[Action::SendText(SendText {
                text: "Plain".to_owned(),
                markup: None,
            })]
        );
    }

    #[test]
    #[should_panic(expected = "Reply::with_keyboard needs a message or an edit added before it")]
    fn with_keyboard_after_answer_panics() {
        let _ = Reply::new()
            .answer_callback()
            .with_keyboard(Keyboard::new().button("Finish", "finish"));
    }

    #[test]
    #[should_panic(expected = "but the last action is None")]
    fn with_keyboard_on_empty_reply_panics() {
        let _ = Reply::new().with_keyboard(Keyboard::new().button("Finish", "finish"));
    }

    #[test]
    fn edit_keyboard_and_remove_keyboard() {
        let reply = Reply::new()
            .edit_keyboard(3, Keyboard::new().button("Finish", "finish"))
            .remove_keyboard(4);

        assert_eq!(
            reply.actions(),
            &[
                Action::EditKeyboard(EditKeyboard {
                    message_id: 3,
                    keyboard: Some(finish_rows()),
                }),
                Action::EditKeyboard(EditKeyboard {
                    message_id: 4,
                    keyboard: None,
                }),
            ]
        );
    }

    #[test]
    fn callback_answers() {
        let reply = Reply::new()
            .answer_callback()
            .answer_callback_with_notice("Saved")
            .answer_callback_with_alert("Careful");

        let answers: Vec<_> = reply
            .actions()
            .iter()
            .map(|action| match action {
                Action::AnswerCallback(answer) => (answer.notice.as_deref(), answer.alert),
                other => panic!("expected an answer, got {other:?}"),
            })
            .collect();
        assert_eq!(
            answers,
            vec![
                (None, false),
                (Some("Saved"), false),
                (Some("Careful"), true)
            ]
        );
        assert_eq!(reply.callback_answer().unwrap().notice, None);
    }

    #[test]
    fn texts_lists_messages_and_edits_in_order() {
        let reply = Reply::new()
            .answer_callback()
            .remove_keyboard(1)
            .edit(2, "Edited")
            .and_text("Sent");

        assert_eq!(reply.texts(), vec!["Edited", "Sent"]);
    }

    #[test]
    fn done_and_clear_state_flags() {
        let reply = Reply::text("Bye").done().clear_state();

        assert!(reply.is_done());
        assert!(reply.clears_state());
    }
}
