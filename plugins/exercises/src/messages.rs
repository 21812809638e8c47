//! Every text the exercises flow sends, in one place.

use flowbot_sdk::Event;

use crate::state::{Exercise, MAX_EXERCISES, MAX_NAME_CHARS, MuscleGroup};

pub const HELP: &str = "Send /exercises to list your exercises or /addexercise to add one.";

pub const NO_EXERCISES: &str = "You have no exercises yet. Send /addexercise to add one.";
pub const NO_EXERCISES_LEFT: &str = "You have no exercises left. Send /addexercise to add one.";
pub const LIST_CLOSED: &str = "Closed the exercise list.";
pub const CLOSE_BUTTON: &str = "Close";
pub const NOTICE_LIST_CLOSED: &str = "Closed the list.";
pub const NOTICE_ALREADY_DELETED: &str = "This exercise was already deleted.";
pub const NOTICE_QUESTION_EXPIRED: &str =
    "This question has expired. Send /addexercise to add an exercise.";
pub const NOTICE_UNKNOWN_BUTTON: &str = "This button is no longer in use.";

pub const ASK_NAME: &str = "Send the name of the new exercise, for example Bench press.";
pub const REQUEST_NAME: &str = "Send the name of the exercise, for example Bench press.";
pub const NAME_EMPTY: &str =
    "The name is empty. Send the name of the exercise, for example Bench press.";
pub const ONE_LINE_NAME: &str = "Send the name on a single line, for example Bench press.";

/// Lists the exercises, numbered, with their groups.
pub fn list(exercises: &[Exercise]) -> String {
    let mut lines = vec!["Your exercises:".to_owned()];
    for (index, exercise) in exercises.iter().enumerate() {
        lines.push(format!(
            "{}. {} ({})",
            index + 1,
            exercise.name,
            exercise.group.label()
        ));
    }
    lines.push("Press a button to delete an exercise, or Close when you are done.".to_owned());
    lines.join("\n")
}

pub fn delete_button(exercise: &Exercise) -> String {
    format!("Delete {}", exercise.name)
}

pub fn deleted(exercise: &Exercise) -> String {
    format!("Deleted {}.", exercise.name)
}

pub fn list_closed_for_command(command: &str) -> String {
    format!("{LIST_CLOSED} Send /{command} again to start it.")
}

pub fn too_many_exercises() -> String {
    format!("You have {MAX_EXERCISES} exercises, the maximum. Delete one with /exercises first.")
}

pub fn name_too_long(chars: usize) -> String {
    format!(
        "The name is too long: {chars} characters, the maximum is {MAX_NAME_CHARS}. \
         Send a shorter name."
    )
}

pub fn duplicate_name(existing: &str) -> String {
    format!("You already have {existing}. Send a different name.")
}

pub fn ask_group(name: &str) -> String {
    format!("Which muscle group does {name} train?")
}

pub fn press_group_button(name: &str) -> String {
    format!("Press one of the buttons above to choose the muscle group for {name}.")
}

pub fn added(name: &str, group: MuscleGroup) -> String {
    format!("Added {name} ({}).", group.label())
}

/// Tells the user that only text is read in this step, then repeats what
/// the step expects.
pub fn expects_text(event: &Event, request: &str) -> String {
    match event {
        Event::EditedMessage(_) => {
            format!("Editing an earlier message changes nothing here. {request}")
        }
        other => format!(
            "I can only read text here, not {}. {request}",
            other.description()
        ),
    }
}

pub fn command_in_dialog(command: &str, request: &str) -> String {
    format!("/{command} can't start in the middle of this dialog. {request} To stop, send /cancel.")
}
