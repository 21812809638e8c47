//! The exercises dialogs as a state machine: an update and the state in, a
//! reply out.
//!
//! A command of this flow always starts its dialog afresh and drops any
//! dialog in progress. The host does not call the flow when it ends a dialog
//! with `/cancel`, so a dialog kept in state may be one the user has already
//! left, and it must never block a command.

use flowbot_sdk::{Callback, Command, Event, Keyboard, Reply, Update, log};

use crate::messages;
use crate::state::{Dialog, MAX_EXERCISES, MAX_NAME_CHARS, MuscleGroup, State};

/// Callback data of the Close button under the list.
const CLOSE_DATA: &str = "close";

/// Handles one update of a conversation.
pub fn handle(update: &Update, state: &mut State) -> Reply {
    match &update.event {
        Event::Cancelled => {
            state.dialog = None;
            Reply::new().done()
        }
        Event::Command(command) => handle_command(command, state),
        Event::Callback(callback) => handle_callback(callback, state),
        Event::Text(text) => handle_text(text, state),
        other => handle_other_event(other, state),
    }
}

/// A button of this flow, parsed from its callback data.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ButtonPress {
    /// `del:<id>`: delete the exercise with this id.
    Delete { id: u32 },
    /// `close`: close the list.
    Close,
    /// `group:<serial>:<key>`: the answer to a muscle group question.
    Group { serial: u32, group: MuscleGroup },
}

fn parse_button(data: &str) -> Option<ButtonPress> {
    if data == CLOSE_DATA {
        return Some(ButtonPress::Close);
    }
    if let Some(id) = data.strip_prefix("del:") {
        return Some(ButtonPress::Delete {
            id: id.parse().ok()?,
        });
    }
    let (serial, key) = data.strip_prefix("group:")?.split_once(':')?;
    Some(ButtonPress::Group {
        serial: serial.parse().ok()?,
        group: MuscleGroup::from_key(key)?,
    })
}

fn delete_data(id: u32) -> String {
    format!("del:{id}")
}

fn group_data(serial: u32, group: MuscleGroup) -> String {
    format!("group:{serial}:{}", group.key())
}

/// Builds the list's keyboard: one delete button per exercise, then Close.
fn list_keyboard(state: &State) -> Keyboard {
    let mut keyboard = Keyboard::new();
    for exercise in &state.exercises {
        keyboard = keyboard
            .button(messages::delete_button(exercise), delete_data(exercise.id))
            .row();
    }
    keyboard.button(messages::CLOSE_BUTTON, CLOSE_DATA)
}

/// Builds the muscle group keyboard, three buttons to a row.
fn group_keyboard(serial: u32) -> Keyboard {
    let mut keyboard = Keyboard::new();
    for (index, group) in MuscleGroup::ALL.into_iter().enumerate() {
        if index == 3 {
            keyboard = keyboard.row();
        }
        keyboard = keyboard.button(group.label(), group_data(serial, group));
    }
    keyboard
}

fn handle_command(command: &Command, state: &mut State) -> Reply {
    match command.name.as_str() {
        "exercises" => {
            state.dialog = None;
            show_list(state)
        }
        "addexercise" => {
            state.dialog = None;
            start_add(command.args.trim(), state)
        }
        other => match state.dialog.take() {
            // The host routes other flows' commands here only while a dialog
            // of this flow is active. The list is only on display, so it
            // gives way, but an unfinished exercise keeps the dialog.
            None => Reply::text(messages::HELP).done(),
            Some(Dialog::Browsing) => Reply::text(messages::list_closed_for_command(other)).done(),
            Some(Dialog::AddName) => {
                state.dialog = Some(Dialog::AddName);
                Reply::text(messages::command_in_dialog(other, messages::REQUEST_NAME))
            }
            Some(Dialog::AddGroup { serial, name }) => {
                let reply = Reply::text(messages::command_in_dialog(
                    other,
                    &messages::press_group_button(&name),
                ))
                .with_keyboard(group_keyboard(serial));
                state.dialog = Some(Dialog::AddGroup { serial, name });
                reply
            }
        },
    }
}

/// Sends the list with its delete buttons and keeps the conversation for
/// the presses, or a message that there is nothing to list.
fn show_list(state: &mut State) -> Reply {
    if state.exercises.is_empty() {
        return Reply::text(messages::NO_EXERCISES).done();
    }
    state.dialog = Some(Dialog::Browsing);
    Reply::text(messages::list(&state.exercises)).with_keyboard(list_keyboard(state))
}

/// Starts `/addexercise`: with `args` as the name when given, otherwise by
/// asking for it.
fn start_add(args: &str, state: &mut State) -> Reply {
    if state.exercises.len() >= MAX_EXERCISES {
        return Reply::text(messages::too_many_exercises()).done();
    }
    if args.is_empty() {
        state.dialog = Some(Dialog::AddName);
        return Reply::text(messages::ASK_NAME);
    }
    accept_name(args, state)
}

/// Asks for the muscle group when `text` is a valid new name, or for the
/// name again with a hint.
fn accept_name(text: &str, state: &mut State) -> Reply {
    match validate_name(text, state) {
        Ok(name) => {
            let serial = state.next_question_serial();
            let reply =
                Reply::text(messages::ask_group(&name)).with_keyboard(group_keyboard(serial));
            state.dialog = Some(Dialog::AddGroup { serial, name });
            reply
        }
        Err(hint) => {
            state.dialog = Some(Dialog::AddName);
            Reply::text(hint)
        }
    }
}

/// Returns the name trimmed and with inner whitespace collapsed, or the hint
/// to send when it is empty, too long, on several lines or already taken.
fn validate_name(text: &str, state: &State) -> Result<String, String> {
    if text.trim().contains(['\n', '\r']) {
        return Err(messages::ONE_LINE_NAME.to_owned());
    }
    let name = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(messages::NAME_EMPTY.to_owned());
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(messages::name_too_long(chars));
    }
    if let Some(existing) = state.find_by_name(&name) {
        return Err(messages::duplicate_name(&existing.name));
    }
    Ok(name)
}

fn handle_text(text: &str, state: &mut State) -> Reply {
    match state.dialog.take() {
        None => Reply::text(messages::HELP).done(),
        Some(Dialog::Browsing) => Reply::text(messages::LIST_CLOSED).done(),
        Some(Dialog::AddName) => accept_name(text, state),
        Some(Dialog::AddGroup { serial, name }) => {
            let reply = Reply::text(messages::press_group_button(&name))
                .with_keyboard(group_keyboard(serial));
            state.dialog = Some(Dialog::AddGroup { serial, name });
            reply
        }
    }
}

fn handle_other_event(event: &Event, state: &mut State) -> Reply {
    match state.dialog.take() {
        None => Reply::text(messages::HELP).done(),
        Some(Dialog::Browsing) => Reply::text(messages::LIST_CLOSED).done(),
        Some(Dialog::AddName) => {
            state.dialog = Some(Dialog::AddName);
            Reply::text(messages::expects_text(event, messages::REQUEST_NAME))
        }
        Some(Dialog::AddGroup { serial, name }) => {
            let reply = Reply::text(messages::press_group_button(&name))
                .with_keyboard(group_keyboard(serial));
            state.dialog = Some(Dialog::AddGroup { serial, name });
            reply
        }
    }
}

fn handle_callback(callback: &Callback, state: &mut State) -> Reply {
    match parse_button(&callback.data) {
        Some(ButtonPress::Delete { id }) => delete_exercise(id, callback.message_id, state),
        Some(ButtonPress::Close) => close_list(callback.message_id, state),
        Some(ButtonPress::Group { serial, group }) => {
            choose_group(serial, group, callback.message_id, state)
        }
        None => {
            log::debug!("ignored a press of the unknown button {:?}", callback.data);
            let reply = Reply::new().answer_callback_with_notice(messages::NOTICE_UNKNOWN_BUTTON);
            release_if_idle(reply, state)
        }
    }
}

/// Deletes the exercise and shows the new list on the pressed message. A
/// press for an exercise already deleted refreshes the list and changes
/// nothing else.
fn delete_exercise(id: u32, message_id: Option<i32>, state: &mut State) -> Reply {
    let reply = match state.remove_exercise(id) {
        Some(exercise) => Reply::new().answer_callback_with_notice(messages::deleted(&exercise)),
        None => Reply::new().answer_callback_with_notice(messages::NOTICE_ALREADY_DELETED),
    };

    if state.exercises.is_empty() {
        if state.dialog == Some(Dialog::Browsing) {
            state.dialog = None;
        }
        let reply = match message_id {
            Some(message_id) => reply.edit(message_id, messages::NO_EXERCISES_LEFT),
            None => reply.and_text(messages::NO_EXERCISES_LEFT),
        };
        return release_if_idle(reply, state);
    }

    let text = messages::list(&state.exercises);
    let reply = match message_id {
        Some(message_id) => reply.edit(message_id, text),
        None => reply.and_text(text),
    };
    release_if_idle(reply.with_keyboard(list_keyboard(state)), state)
}

/// Removes the buttons from the list and releases the conversation when
/// the list was the dialog in progress.
fn close_list(message_id: Option<i32>, state: &mut State) -> Reply {
    if state.dialog == Some(Dialog::Browsing) {
        state.dialog = None;
    }
    let reply = Reply::new().answer_callback_with_notice(messages::NOTICE_LIST_CLOSED);
    let reply = match message_id {
        Some(message_id) => reply.remove_keyboard(message_id),
        None => reply,
    };
    release_if_idle(reply, state)
}

/// Adds the exercise named in the current question, or answers that the
/// pressed question has expired.
fn choose_group(
    serial: u32,
    group: MuscleGroup,
    message_id: Option<i32>,
    state: &mut State,
) -> Reply {
    let name = match state.dialog.take() {
        Some(Dialog::AddGroup {
            serial: current,
            name,
        }) if current == serial => name,
        other => {
            log::debug!("ignored a press of the stale muscle group button for question {serial}");
            state.dialog = other;
            let reply = Reply::new().answer_callback_with_notice(messages::NOTICE_QUESTION_EXPIRED);
            return release_if_idle(reply, state);
        }
    };

    let text = messages::added(&name, group);
    state.add_exercise(name, group);
    let reply = Reply::new().answer_callback();
    let reply = match message_id {
        Some(message_id) => reply.remove_keyboard(message_id),
        None => reply,
    };
    reply.and_text(text).done()
}

/// Releases the conversation when no dialog is left in progress.
fn release_if_idle(reply: Reply, state: &State) -> Reply {
    if state.dialog.is_none() {
        reply.done()
    } else {
        reply
    }
}

#[cfg(test)]
#[path = "dialog_tests.rs"]
mod tests;
