//! Every text the workouts flow sends, in one place.

use flowbot_sdk::Event;

use crate::set_line::{FORMAT, SetEntry, format_kilograms, quote};
use crate::state::{MAX_ENTRIES, MAX_NAME_CHARS, SavedWorkout};

/// Number of workouts `/history` shows.
pub const HISTORY_SHOWN: usize = 5;

pub const HELP: &str =
    "Send /workout to log a workout, /log to log one set, or /history to see your last workouts.";

pub const ASK_WORKOUT_NAME: &str = "What is the workout called? Send a name, for example Leg day.";
pub const REQUEST_WORKOUT_NAME: &str = "Send a name for the workout, for example Leg day.";
pub const REQUEST_SET: &str = "Send a set like squat 3x5 100kg, or press Finish or Cancel.";
pub const REQUEST_LOG_EXERCISE: &str = "Send the name of the exercise, for example squat.";

pub const NAME_EMPTY: &str = "The name is empty. Send a name for the workout, for example Leg day.";
pub const NAME_LOOKS_LIKE_SET: &str = "That looks like a set, but the workout needs a name first. \
     Send a name, for example Leg day.";
pub const ONE_LINE_NAME: &str = "Send the name on a single line.";

pub const ASK_LOG_EXERCISE: &str = "Which exercise? Send its name, for example squat.";
pub const EXERCISE_EMPTY: &str = "The exercise name is empty. Send its name, for example squat.";

pub const FINISH_BUTTON: &str = "Finish";
pub const CANCEL_BUTTON: &str = "Cancel";
pub const NOTICE_SAVED: &str = "Workout saved.";
pub const NOTICE_CANCELLED: &str = "Workout cancelled.";
pub const NOTICE_NOTHING_TO_SAVE: &str =
    "Nothing to save yet. Send a set first, for example squat 3x5 100kg.";
pub const NOTICE_STALE_BUTTON: &str = "This button belongs to a workout that is already closed.";
pub const CANCELLED_UNNAMED: &str = "Cancelled the new workout. Nothing was saved.";
pub const NO_HISTORY: &str = "No workouts saved yet. Send /workout to log one.";

pub fn name_too_long(chars: usize) -> String {
    format!(
        "The name is too long: {chars} characters, the maximum is {MAX_NAME_CHARS}. \
         Send a shorter name."
    )
}

pub fn exercise_too_long(chars: usize) -> String {
    format!(
        "The exercise name is too long: {chars} characters, the maximum is {}. \
         Send a shorter name.",
        crate::set_line::MAX_EXERCISE_CHARS
    )
}

pub fn workout_started(name: &str) -> String {
    format!(
        "Workout \"{name}\" started. Send each set as {FORMAT}, \
         for example squat 3x5 100kg or pull-ups 3x8. Press Finish when you are done."
    )
}

pub fn set_added(entry: &SetEntry) -> String {
    format!("Added {entry}. Send the next set, or press Finish to save the workout.")
}

pub fn too_many_entries() -> String {
    format!(
        "This workout already has {MAX_ENTRIES} entries, the maximum. \
         Press Finish to save it or Cancel to drop it."
    )
}

/// Builds the summary sent when a workout is saved: each exercise with its
/// set lines in the order first entered, then the total volume. Exercise
/// names that differ only in case are grouped under the first spelling.
pub fn workout_saved(number: u32, name: &str, entries: &[SetEntry]) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for entry in entries {
        let key = entry.exercise.to_lowercase();
        match groups
            .iter_mut()
            .find(|(exercise, _)| exercise.to_lowercase() == key)
        {
            Some((_, loads)) => loads.push(entry.load()),
            None => groups.push((entry.exercise.clone(), vec![entry.load()])),
        }
    }

    let mut lines = vec![format!("Saved workout #{number} \"{name}\".")];
    for (exercise, loads) in groups {
        lines.push(format!("{exercise}: {}", loads.join(", ")));
    }
    let volume: u64 = entries.iter().map(SetEntry::volume_grams).sum();
    lines.push(format!("Total volume: {} kg", format_kilograms(volume)));
    lines.join("\n")
}

pub fn workout_cancelled(name: &str) -> String {
    format!("Cancelled the workout \"{name}\". Nothing was saved.")
}

pub fn unfinished_workout_dropped(name: &str, entries: usize) -> String {
    format!(
        "Dropped the unfinished workout \"{name}\" with {}.",
        plural(entries, "entry", "entries")
    )
}

pub fn ask_reps(exercise: &str) -> String {
    format!("How many reps of {exercise}? Send a whole number, for example 5.")
}

pub fn request_reps(exercise: &str) -> String {
    format!("Send the number of reps of {exercise}, for example 5.")
}

pub fn reps_not_a_number(text: &str, exercise: &str) -> String {
    if text.trim().is_empty() {
        return format!("The message is empty. {}", request_reps(exercise));
    }
    format!(
        "{} is not a whole number. {}",
        quote(text.trim()),
        request_reps(exercise)
    )
}

pub fn reps_out_of_range(text: &str, max: u32) -> String {
    format!(
        "{} is out of range. Send a whole number of reps from 1 to {max}, for example 5.",
        quote(text.trim())
    )
}

pub fn set_logged(exercise: &str, reps: u32, sets_logged: u32) -> String {
    format!("Logged {exercise}: {reps} reps. Sets logged today: {sets_logged}.")
}

/// Lists the newest [`HISTORY_SHOWN`] workouts, newest first. `history` is
/// ordered oldest first, as stored.
pub fn history(history: &[SavedWorkout]) -> String {
    let mut lines = vec!["Last workouts, newest first:".to_owned()];
    for workout in history.iter().rev().take(HISTORY_SHOWN) {
        lines.push(format!(
            "#{} {}: {}, volume {} kg",
            workout.number,
            workout.name,
            plural(workout.sets as usize, "set", "sets"),
            format_kilograms(workout.volume_grams)
        ));
    }
    lines.join("\n")
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

fn plural(count: usize, singular: &str, plural: &str) -> String {
    if count == 1 {
        format!("1 {singular}")
    } else {
        format!("{count} {plural}")
    }
}
