//! The workouts dialogs as a state machine: an update and the state in, a
//! reply out.
//!
//! A command of this flow always starts its dialog afresh and drops any
//! dialog in progress. The host does not call the flow when it ends a dialog
//! with `/cancel`, so a dialog kept in state may be one the user has already
//! left, and it must never block a command.

use flowbot_sdk::{Args, Callback, Command, Event, Keyboard, Reply, Update, log};

use crate::messages;
use crate::set_line::{self, MAX_EXERCISE_CHARS, MAX_REPS};
use crate::state::{Dialog, MAX_ENTRIES, MAX_NAME_CHARS, State};

/// Handles one update of a conversation.
pub fn handle(update: &Update, state: &mut State) -> Reply {
    match &update.event {
        Event::Cancelled => {
            state.dialog = None;
            Reply::new().done()
        }
        Event::Command(command) => handle_command(command, update.date, state),
        Event::Callback(callback) => handle_callback(callback, state),
        Event::Text(text) => handle_text(text, update.date, state),
        other => match &state.dialog {
            Some(dialog) => reply_in_step(dialog, messages::expects_text(other, &request(dialog))),
            None => Reply::text(messages::HELP).done(),
        },
    }
}

/// The action of a Finish or Cancel button.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ButtonAction {
    Finish,
    Cancel,
}

/// Parses the callback data of a workout button, `finish:<serial>` or
/// `cancel:<serial>`.
fn parse_button(data: &str) -> Option<(ButtonAction, u32)> {
    let (action, serial) = data.split_once(':')?;
    let action = match action {
        "finish" => ButtonAction::Finish,
        "cancel" => ButtonAction::Cancel,
        _ => return None,
    };
    Some((action, serial.parse().ok()?))
}

fn finish_data(serial: u32) -> String {
    format!("finish:{serial}")
}

fn cancel_data(serial: u32) -> String {
    format!("cancel:{serial}")
}

/// Builds the keyboard shown with every message of a step: Cancel while the name
/// is expected, Finish and Cancel while sets are expected, none otherwise.
fn step_keyboard(dialog: &Dialog) -> Keyboard {
    match dialog {
        Dialog::WorkoutName { serial } => {
            Keyboard::new().button(messages::CANCEL_BUTTON, cancel_data(*serial))
        }
        Dialog::WorkoutSets { serial, .. } => Keyboard::new()
            .button(messages::FINISH_BUTTON, finish_data(*serial))
            .button(messages::CANCEL_BUTTON, cancel_data(*serial)),
        Dialog::LogExercise | Dialog::LogReps { .. } => Keyboard::new(),
    }
}

/// Returns what the step expects, as repeated in hints.
fn request(dialog: &Dialog) -> String {
    match dialog {
        Dialog::WorkoutName { .. } => messages::REQUEST_WORKOUT_NAME.to_owned(),
        Dialog::WorkoutSets { .. } => messages::REQUEST_SET.to_owned(),
        Dialog::LogExercise => messages::REQUEST_LOG_EXERCISE.to_owned(),
        Dialog::LogReps { exercise } => messages::request_reps(exercise),
    }
}

/// Sends `text` with the step's keyboard and keeps the dialog going.
fn reply_in_step(dialog: &Dialog, text: impl Into<String>) -> Reply {
    Reply::text(text).with_keyboard(step_keyboard(dialog))
}

/// `date` is the update's Unix time, which `/log` needs to count today's sets.
fn handle_command(command: &Command, date: i64, state: &mut State) -> Reply {
    if !matches!(command.name.as_str(), "workout" | "log" | "history") {
        // The host routes other flows' commands here only while a dialog of
        // this flow is active.
        return match &state.dialog {
            Some(dialog) => reply_in_step(
                dialog,
                messages::command_in_dialog(&command.name, &request(dialog)),
            ),
            None => Reply::text(messages::HELP).done(),
        };
    }

    let reply = match state.dialog.take() {
        Some(Dialog::WorkoutSets { name, entries, .. }) if !entries.is_empty() => {
            log::debug!(
                "dropped an unfinished workout with {} entries",
                entries.len()
            );
            Reply::text(messages::unfinished_workout_dropped(&name, entries.len()))
        }
        _ => Reply::new(),
    };

    let args = command.split_args();
    match command.name.as_str() {
        "workout" => start_workout(reply, args, state),
        "log" => start_log(reply, args, date, state),
        _ => show_history(reply, state),
    }
}

fn start_workout(reply: Reply, args: Args<'_>, state: &mut State) -> Reply {
    let serial = state.next_workout_serial();
    if args.is_empty() {
        let dialog = Dialog::WorkoutName { serial };
        let reply = reply
            .and_text(messages::ASK_WORKOUT_NAME)
            .with_keyboard(step_keyboard(&dialog));
        state.dialog = Some(dialog);
        return reply;
    }
    accept_workout_name(reply, serial, args.as_str(), state)
}

/// Starts collecting sets under `text` as the name, or requests the name
/// again with a hint when it is not valid.
fn accept_workout_name(reply: Reply, serial: u32, text: &str, state: &mut State) -> Reply {
    let (dialog, text) = match validate_workout_name(text) {
        Ok(name) => {
            let text = messages::workout_started(&name);
            let dialog = Dialog::WorkoutSets {
                serial,
                name,
                entries: Vec::new(),
            };
            (dialog, text)
        }
        Err(hint) => (Dialog::WorkoutName { serial }, hint),
    };

    let reply = reply.and_text(text).with_keyboard(step_keyboard(&dialog));
    state.dialog = Some(dialog);
    reply
}

fn validate_workout_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err(messages::NAME_EMPTY.to_owned());
    }
    if name.contains(['\n', '\r']) {
        return Err(format!(
            "{} {}",
            messages::ONE_LINE_NAME,
            messages::REQUEST_WORKOUT_NAME
        ));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(messages::name_too_long(chars));
    }
    if set_line::parse_set_line(name).is_ok() {
        return Err(messages::NAME_LOOKS_LIKE_SET.to_owned());
    }
    Ok(name.to_owned())
}

fn start_log(reply: Reply, args: Args<'_>, date: i64, state: &mut State) -> Reply {
    if args.is_empty() {
        state.dialog = Some(Dialog::LogExercise);
        return reply.and_text(messages::ASK_LOG_EXERCISE);
    }

    // `/log bench press 5` logs at once, and `/log bench press` requests the
    // reps.
    if let Some((exercise, reps)) = args.split_last_word()
        && !exercise.is_empty()
        && reps.bytes().all(|byte| byte.is_ascii_digit())
    {
        return match validate_exercise(exercise) {
            Ok(exercise) => accept_reps(reply, exercise, reps, date, state),
            Err(hint) => {
                state.dialog = Some(Dialog::LogExercise);
                reply.and_text(hint)
            }
        };
    }
    accept_log_exercise(reply, args.as_str(), state)
}

fn accept_log_exercise(reply: Reply, text: &str, state: &mut State) -> Reply {
    match validate_exercise(text) {
        Ok(exercise) => {
            let reply = reply.and_text(messages::ask_reps(&exercise));
            state.dialog = Some(Dialog::LogReps { exercise });
            reply
        }
        Err(hint) => {
            state.dialog = Some(Dialog::LogExercise);
            reply.and_text(hint)
        }
    }
}

/// Checks an exercise name for `/log`, which keeps it as typed apart from
/// trimming.
fn validate_exercise(text: &str) -> Result<String, String> {
    let exercise = text.trim();
    if exercise.is_empty() {
        return Err(messages::EXERCISE_EMPTY.to_owned());
    }
    if exercise.contains(['\n', '\r']) {
        return Err(format!(
            "{} {}",
            messages::ONE_LINE_NAME,
            messages::REQUEST_LOG_EXERCISE
        ));
    }
    let chars = exercise.chars().count();
    if chars > MAX_EXERCISE_CHARS {
        return Err(messages::exercise_too_long(chars));
    }
    Ok(exercise.to_owned())
}

/// Logs one set of `exercise` when `text` is a valid number of reps, which
/// ends the dialog, or asks for the reps again with a hint.
fn accept_reps(reply: Reply, exercise: String, text: &str, date: i64, state: &mut State) -> Reply {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        let reply = reply.and_text(messages::reps_not_a_number(text, &exercise));
        state.dialog = Some(Dialog::LogReps { exercise });
        return reply;
    }

    // Digits too long for `u32` are out of range as well.
    let Some(reps) = digits
        .parse::<u32>()
        .ok()
        .filter(|reps| (1..=MAX_REPS).contains(reps))
    else {
        let reply = reply.and_text(messages::reps_out_of_range(digits, MAX_REPS));
        state.dialog = Some(Dialog::LogReps { exercise });
        return reply;
    };

    state.roll_day(date);
    state.sets_logged = state.sets_logged.saturating_add(1);
    state.dialog = None;
    reply
        .and_text(messages::set_logged(&exercise, reps, state.sets_logged))
        .done()
}

fn show_history(reply: Reply, state: &State) -> Reply {
    if state.history.is_empty() {
        return reply.and_text(messages::NO_HISTORY).done();
    }
    reply.and_text(messages::history(&state.history)).done()
}

fn handle_text(text: &str, date: i64, state: &mut State) -> Reply {
    match state.dialog.take() {
        None => Reply::text(messages::HELP).done(),
        Some(Dialog::WorkoutName { serial }) => {
            accept_workout_name(Reply::new(), serial, text, state)
        }
        Some(Dialog::WorkoutSets {
            serial,
            name,
            mut entries,
        }) => {
            let reply_text = if entries.len() >= MAX_ENTRIES {
                messages::too_many_entries()
            } else {
                match set_line::parse_set_line(text) {
                    Ok(entry) => {
                        let text = messages::set_added(&entry);
                        entries.push(entry);
                        text
                    }
                    Err(error) => error.to_string(),
                }
            };
            let dialog = Dialog::WorkoutSets {
                serial,
                name,
                entries,
            };
            let reply = reply_in_step(&dialog, reply_text);
            state.dialog = Some(dialog);
            reply
        }
        Some(Dialog::LogExercise) => accept_log_exercise(Reply::new(), text, state),
        Some(Dialog::LogReps { exercise }) => {
            accept_reps(Reply::new(), exercise, text, date, state)
        }
    }
}

fn handle_callback(callback: &Callback, state: &mut State) -> Reply {
    let Some((action, pressed_serial)) = parse_button(&callback.data) else {
        return stale_button(&callback.data, state);
    };
    let current_serial = match &state.dialog {
        Some(Dialog::WorkoutName { serial } | Dialog::WorkoutSets { serial, .. }) => *serial,
        _ => return stale_button(&callback.data, state),
    };
    if pressed_serial != current_serial {
        return stale_button(&callback.data, state);
    }

    match action {
        ButtonAction::Finish => finish_workout(callback.message_id, state),
        ButtonAction::Cancel => cancel_workout(callback.message_id, state),
    }
}

/// Removes the keyboard of the pressed message, when the callback carries
/// its id, because the workout its buttons belong to is closed.
fn remove_pressed_keyboard(reply: Reply, message_id: Option<i32>) -> Reply {
    match message_id {
        Some(message_id) => reply.remove_keyboard(message_id),
        None => reply,
    }
}

/// Saves the workout in progress, or returns a notice that there is nothing
/// to save when it has no sets yet.
fn finish_workout(message_id: Option<i32>, state: &mut State) -> Reply {
    let Some(Dialog::WorkoutSets { name, entries, .. }) = &state.dialog else {
        return Reply::new().answer_callback_with_notice(messages::NOTICE_NOTHING_TO_SAVE);
    };
    if entries.is_empty() {
        return Reply::new().answer_callback_with_notice(messages::NOTICE_NOTHING_TO_SAVE);
    }

    let (name, entries) = (name.clone(), entries.clone());
    state.dialog = None;
    let number = state.save_workout(name.clone(), &entries);
    let reply = Reply::new().answer_callback_with_notice(messages::NOTICE_SAVED);
    remove_pressed_keyboard(reply, message_id)
        .and_text(messages::workout_saved(number, &name, &entries))
        .done()
}

fn cancel_workout(message_id: Option<i32>, state: &mut State) -> Reply {
    let text = match state.dialog.take() {
        Some(Dialog::WorkoutSets { name, .. }) => messages::workout_cancelled(&name),
        _ => messages::CANCELLED_UNNAMED.to_owned(),
    };
    let reply = Reply::new().answer_callback_with_notice(messages::NOTICE_CANCELLED);
    remove_pressed_keyboard(reply, message_id)
        .and_text(text)
        .done()
}

/// Answers a press on a keyboard of a workout that is no longer in
/// progress, changing nothing.
fn stale_button(data: &str, state: &State) -> Reply {
    log::debug!("ignored a press of the stale workout button {data:?}");
    let reply = Reply::new().answer_callback_with_notice(messages::NOTICE_STALE_BUTTON);
    if state.dialog.is_none() {
        reply.done()
    } else {
        reply
    }
}

#[cfg(test)]
#[path = "dialog_tests.rs"]
mod tests;
