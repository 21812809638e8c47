use flowbot_sdk::testing::{callback, command, text, update};
use flowbot_sdk::{Action, Contact, Event, Location, ReplyMarkup};

use super::*;
use crate::set_line::{SetEntry, SetLineError};

/// Returns the keyboard of the last message sent, as `(text, data)` pairs.
fn sent_keyboard(reply: &Reply) -> Vec<Vec<(String, String)>> {
    let markup = reply
        .actions()
        .iter()
        .rev()
        .find_map(|action| match action {
            Action::SendText(send) => Some(send.markup.clone()),
            _ => None,
        });
    match markup.flatten() {
        Some(ReplyMarkup::InlineKeyboard(rows)) => rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|button| (button.text, button.data))
                    .collect()
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn buttons(pairs: &[(&str, &str)]) -> Vec<Vec<(String, String)>> {
    vec![
        pairs
            .iter()
            .map(|(text, data)| (text.to_string(), data.to_string()))
            .collect(),
    ]
}

fn notice(reply: &Reply) -> Option<&str> {
    reply.callback_answer()?.notice.as_deref()
}

/// Returns a state with the workout "Legs" in progress (serial 1) after the
/// given set lines were sent.
fn workout_in_progress(lines: &[&str]) -> State {
    let mut state = State::default();
    handle(&command("workout", ""), &mut state);
    handle(&text("Legs"), &mut state);
    for line in lines {
        handle(&text(line), &mut state);
    }
    state
}

fn entries(state: &State) -> &[SetEntry] {
    match &state.dialog {
        Some(Dialog::WorkoutSets { entries, .. }) => entries,
        other => panic!("expected the sets step, got {other:?}"),
    }
}

fn non_text_events() -> Vec<(Event, &'static str)> {
    vec![
        (Event::Sticker(Some("💪".to_owned())), "a sticker"),
        (Event::Photo(None), "a photo"),
        (Event::Photo(Some("squat 3x5".to_owned())), "a photo"),
        (Event::Animation, "a GIF"),
        (Event::Voice, "a voice message"),
        (Event::Document(Some("plan.pdf".to_owned())), "a file"),
        (
            Event::Location(Location {
                latitude: 52.5,
                longitude: 13.4,
            }),
            "a location",
        ),
        (
            Event::Contact(Contact {
                phone_number: "+100".to_owned(),
                first_name: "Ann".to_owned(),
            }),
            "a contact",
        ),
        (Event::Unknown("poll".to_owned()), "a message of kind poll"),
    ]
}

const SETS_KEYBOARD: [(&str, &str); 2] = [("Finish", "finish:1"), ("Cancel", "cancel:1")];

// /workout: the name step.

#[test]
fn workout_asks_for_name() {
    let mut state = State::default();

    let reply = handle(&command("workout", ""), &mut state);

    assert_eq!(
        reply.texts(),
        ["What is the workout called? Send a name, for example Leg day."]
    );
    assert_eq!(sent_keyboard(&reply), buttons(&[("Cancel", "cancel:1")]));
    assert!(!reply.is_done());
    assert_eq!(state.dialog, Some(Dialog::WorkoutName { serial: 1 }));
}

#[test]
fn workout_name_starts_sets_step() {
    let mut state = State::default();
    handle(&command("workout", ""), &mut state);

    let reply = handle(&text("  Leg day "), &mut state);

    assert_eq!(
        reply.texts(),
        [
            "Workout \"Leg day\" started. Send each set as <exercise> <sets>x<reps> \
             [<weight>kg], for example squat 3x5 100kg or pull-ups 3x8. \
             Press Finish when you are done."
        ]
    );
    assert_eq!(sent_keyboard(&reply), buttons(&SETS_KEYBOARD));
    assert!(!reply.is_done());
    assert_eq!(
        state.dialog,
        Some(Dialog::WorkoutSets {
            serial: 1,
            name: "Leg day".to_owned(),
            entries: Vec::new(),
        })
    );
}

#[test]
fn workout_args_are_the_name() {
    let mut state = State::default();

    let reply = handle(&command("workout", "Push day"), &mut state);

    assert!(reply.texts()[0].starts_with("Workout \"Push day\" started."));
    assert!(matches!(
        &state.dialog,
        Some(Dialog::WorkoutSets { name, .. }) if name == "Push day"
    ));
}

#[test]
fn workout_invalid_args_ask_for_name() {
    let mut state = State::default();

    let reply = handle(&command("workout", "squat 3x5"), &mut state);

    assert_eq!(reply.texts(), [messages::NAME_LOOKS_LIKE_SET]);
    assert_eq!(state.dialog, Some(Dialog::WorkoutName { serial: 1 }));
}

#[test]
fn workout_name_hints() {
    let long_name = "n".repeat(MAX_NAME_CHARS + 1);
    let cases = [
        (
            "",
            "The name is empty. Send a name for the workout, for example Leg day.",
        ),
        (
            "   ",
            "The name is empty. Send a name for the workout, for example Leg day.",
        ),
        (
            "Leg\nday",
            "Send the name on a single line. Send a name for the workout, for example Leg day.",
        ),
        (
            long_name.as_str(),
            "The name is too long: 65 characters, the maximum is 64. Send a shorter name.",
        ),
        (
            "squat 3x5 100kg",
            "That looks like a set, but the workout needs a name first. \
             Send a name, for example Leg day.",
        ),
    ];

    for (input, expected) in cases {
        let mut state = State::default();
        handle(&command("workout", ""), &mut state);

        let reply = handle(&text(input), &mut state);

        assert_eq!(reply.texts(), [expected], "input {input:?}");
        assert_eq!(sent_keyboard(&reply), buttons(&[("Cancel", "cancel:1")]));
        assert!(!reply.is_done());
        assert_eq!(state.dialog, Some(Dialog::WorkoutName { serial: 1 }));
    }
}

#[test]
fn workout_name_accepts_emoji_and_unicode() {
    for name in ["💪", "Тренировка ног"] {
        let mut state = State::default();
        handle(&command("workout", ""), &mut state);

        let reply = handle(&text(name), &mut state);

        assert!(reply.texts()[0].starts_with(&format!("Workout \"{name}\" started.")));
    }
}

#[test]
fn workout_name_step_hints_non_text() {
    for (event, description) in non_text_events() {
        let mut state = State::default();
        handle(&command("workout", ""), &mut state);

        let reply = handle(&update(event), &mut state);

        assert_eq!(
            reply.texts(),
            [format!(
                "I can only read text here, not {description}. \
                 Send a name for the workout, for example Leg day."
            )]
        );
        assert!(!reply.is_done());
        assert_eq!(state.dialog, Some(Dialog::WorkoutName { serial: 1 }));
    }
}

#[test]
fn workout_name_step_hints_edited_message() {
    let mut state = State::default();
    handle(&command("workout", ""), &mut state);

    let reply = handle(
        &update(Event::EditedMessage(Some("Legs".to_owned()))),
        &mut state,
    );

    assert_eq!(
        reply.texts(),
        ["Editing an earlier message changes nothing here. \
             Send a name for the workout, for example Leg day."]
    );
    assert!(!reply.is_done());
}

// /workout: the sets step.

#[test]
fn set_line_is_acknowledged() {
    let mut state = workout_in_progress(&[]);

    let reply = handle(&text("squat 3x5 100kg"), &mut state);

    assert_eq!(
        reply.texts(),
        ["Added squat 3x5 100kg. Send the next set, or press Finish to save the workout."]
    );
    assert_eq!(sent_keyboard(&reply), buttons(&SETS_KEYBOARD));
    assert!(!reply.is_done());
    assert_eq!(
        entries(&state),
        [SetEntry {
            exercise: "squat".to_owned(),
            sets: 3,
            reps: 5,
            weight_grams: Some(100_000),
        }]
    );
}

#[test]
fn set_lines_accept_varied_input() {
    let cases = [
        ("bench press 5x5 60kg", "Added bench press 5x5 60kg."),
        ("pull-ups 3x8", "Added pull-ups 3x8."),
        ("Жим лёжа 3x5 60kg", "Added Жим лёжа 3x5 60kg."),
        ("ohp 5X5 42,5 KG", "Added ohp 5x5 42.5kg."),
        ("curl 3 x 12 12.25kg", "Added curl 3x12 12.25kg."),
    ];

    for (line, expected_start) in cases {
        let mut state = workout_in_progress(&[]);

        let reply = handle(&text(line), &mut state);

        assert!(
            reply.texts()[0].starts_with(expected_start),
            "{line}: {:?}",
            reply.texts()
        );
        assert_eq!(entries(&state).len(), 1, "{line}");
    }
}

#[test]
fn invalid_set_lines_get_hints() {
    let cases = [
        ("", SetLineError::Empty),
        ("💪", SetLineError::MissingSetsAndReps),
        ("squat", SetLineError::MissingSetsAndReps),
        (
            "squat 3x",
            SetLineError::InvalidSetsAndReps {
                word: "3x".to_owned(),
            },
        ),
        (
            "squat x5",
            SetLineError::InvalidSetsAndReps {
                word: "x5".to_owned(),
            },
        ),
        (
            "squat 0x5",
            SetLineError::SetsOutOfRange {
                word: "0x5".to_owned(),
            },
        ),
        (
            "squat 99999999999x5",
            SetLineError::SetsOutOfRange {
                word: "99999999999x5".to_owned(),
            },
        ),
        (
            "squat 3x5000",
            SetLineError::RepsOutOfRange {
                word: "3x5000".to_owned(),
            },
        ),
        ("3x5 100kg", SetLineError::MissingExercise),
        (
            "squat 3x5 100lb",
            SetLineError::InvalidWeight {
                word: "100lb".to_owned(),
            },
        ),
        (
            "squat 3x5 5000kg",
            SetLineError::WeightOutOfRange {
                word: "5000kg".to_owned(),
            },
        ),
    ];

    for (line, error) in cases {
        let mut state = workout_in_progress(&["squat 3x5 100kg"]);

        let reply = handle(&text(line), &mut state);

        assert_eq!(reply.texts(), [error.to_string()], "line {line:?}");
        assert_eq!(
            sent_keyboard(&reply),
            buttons(&SETS_KEYBOARD),
            "line {line:?}"
        );
        assert!(!reply.is_done());
        assert_eq!(entries(&state).len(), 1, "line {line:?}");
    }
}

#[test]
fn sets_step_rejects_entries_beyond_maximum() {
    let lines = vec!["squat 1x1"; MAX_ENTRIES];
    let mut state = workout_in_progress(&lines);

    let reply = handle(&text("squat 1x1"), &mut state);

    assert_eq!(
        reply.texts(),
        ["This workout already has 30 entries, the maximum. \
             Press Finish to save it or Cancel to drop it."]
    );
    assert_eq!(sent_keyboard(&reply), buttons(&SETS_KEYBOARD));
    assert_eq!(entries(&state).len(), MAX_ENTRIES);
}

#[test]
fn sets_step_hints_non_text() {
    for (event, description) in non_text_events() {
        let mut state = workout_in_progress(&["squat 3x5 100kg"]);

        let reply = handle(&update(event), &mut state);

        assert_eq!(
            reply.texts(),
            [format!(
                "I can only read text here, not {description}. \
                 Send a set like squat 3x5 100kg, or press Finish or Cancel."
            )]
        );
        assert_eq!(sent_keyboard(&reply), buttons(&SETS_KEYBOARD));
        assert!(!reply.is_done());
        assert_eq!(entries(&state).len(), 1);
    }
}

#[test]
fn other_flow_command_in_dialog_gets_hint() {
    let mut state = workout_in_progress(&["squat 3x5 100kg"]);
    let before = state.dialog.clone();

    let reply = handle(&command("exercises", ""), &mut state);

    assert_eq!(
        reply.texts(),
        ["/exercises can't start in the middle of this dialog. \
             Send a set like squat 3x5 100kg, or press Finish or Cancel. To stop, send /cancel."]
    );
    assert_eq!(sent_keyboard(&reply), buttons(&SETS_KEYBOARD));
    assert!(!reply.is_done());
    assert_eq!(state.dialog, before);
}

// /workout: Finish and Cancel.

#[test]
fn finish_saves_and_summarises() {
    let mut state = workout_in_progress(&["squat 3x5 100kg", "pull-ups 3x8", "Squat 1x3 110kg"]);

    let reply = handle(&callback("finish:1", Some(42)), &mut state);

    assert_eq!(notice(&reply), Some("Workout saved."));
    assert_eq!(
        reply.actions()[1],
        Action::EditKeyboard(flowbot_sdk::EditKeyboard {
            message_id: 42,
            keyboard: None,
        })
    );
    assert_eq!(
        reply.texts(),
        ["Saved workout #1 \"Legs\".\n\
             squat: 3x5 100kg, 1x3 110kg\n\
             pull-ups: 3x8\n\
             Total volume: 1830 kg"]
    );
    assert_eq!(reply.actions().len(), 3);
    assert!(reply.is_done());
    assert_eq!(state.dialog, None);
    assert_eq!(state.history.len(), 1);
    assert_eq!(state.history[0].sets, 7);
    assert_eq!(state.history[0].volume_grams, 1_830_000);
}

#[test]
fn finish_without_message_id_edits_nothing() {
    let mut state = workout_in_progress(&["pull-ups 3x8"]);

    let reply = handle(&callback("finish:1", None), &mut state);

    assert_eq!(reply.actions().len(), 2);
    assert_eq!(notice(&reply), Some("Workout saved."));
    assert_eq!(
        reply.texts(),
        ["Saved workout #1 \"Legs\".\npull-ups: 3x8\nTotal volume: 0 kg"]
    );
    assert!(reply.is_done());
}

#[test]
fn finish_numbers_workouts_in_order() {
    let mut state = workout_in_progress(&["pull-ups 3x8"]);
    handle(&callback("finish:1", None), &mut state);
    handle(&command("workout", "Arms"), &mut state);
    handle(&text("curl 3x10 12.5kg"), &mut state);

    let reply = handle(&callback("finish:2", None), &mut state);

    assert_eq!(
        reply.texts(),
        ["Saved workout #2 \"Arms\".\ncurl: 3x10 12.5kg\nTotal volume: 375 kg"]
    );
}

#[test]
fn finish_without_sets_keeps_dialog() {
    let mut state = workout_in_progress(&[]);
    let before = state.dialog.clone();

    let reply = handle(&callback("finish:1", Some(42)), &mut state);

    assert_eq!(
        notice(&reply),
        Some("Nothing to save yet. Send a set first, for example squat 3x5 100kg.")
    );
    assert_eq!(reply.actions().len(), 1);
    assert!(!reply.is_done());
    assert_eq!(state.dialog, before);
    assert!(state.history.is_empty());
}

#[test]
fn cancel_drops_workout() {
    let mut state = workout_in_progress(&["squat 3x5 100kg"]);

    let reply = handle(&callback("cancel:1", Some(42)), &mut state);

    assert_eq!(notice(&reply), Some("Workout cancelled."));
    assert_eq!(
        reply.actions()[1],
        Action::EditKeyboard(flowbot_sdk::EditKeyboard {
            message_id: 42,
            keyboard: None,
        })
    );
    assert_eq!(
        reply.texts(),
        ["Cancelled the workout \"Legs\". Nothing was saved."]
    );
    assert!(reply.is_done());
    assert_eq!(state.dialog, None);
    assert!(state.history.is_empty());
}

#[test]
fn cancel_in_name_step() {
    let mut state = State::default();
    handle(&command("workout", ""), &mut state);

    let reply = handle(&callback("cancel:1", Some(7)), &mut state);

    assert_eq!(notice(&reply), Some("Workout cancelled."));
    assert_eq!(
        reply.texts(),
        ["Cancelled the new workout. Nothing was saved."]
    );
    assert!(reply.is_done());
    assert_eq!(state.dialog, None);
}

#[test]
fn stale_press_without_dialog_changes_nothing() {
    let mut state = workout_in_progress(&["squat 3x5 100kg"]);
    handle(&callback("finish:1", Some(42)), &mut state);
    let before_history = state.history.clone();

    for data in ["finish:1", "cancel:1"] {
        let reply = handle(&callback(data, Some(42)), &mut state);

        assert_eq!(
            notice(&reply),
            Some("This button belongs to a workout that is already closed.")
        );
        assert_eq!(reply.actions().len(), 1, "{data}");
        assert!(reply.is_done());
        assert_eq!(state.dialog, None);
        assert_eq!(state.history, before_history);
    }
}

#[test]
fn stale_press_from_earlier_workout_changes_nothing() {
    let mut state = workout_in_progress(&["squat 3x5 100kg"]);
    handle(&command("workout", "Arms"), &mut state);
    handle(&text("curl 3x10"), &mut state);
    let before = state.dialog.clone();

    let reply = handle(&callback("finish:1", Some(42)), &mut state);

    assert_eq!(
        notice(&reply),
        Some("This button belongs to a workout that is already closed.")
    );
    assert!(!reply.is_done());
    assert_eq!(state.dialog, before);
    assert!(state.history.is_empty());
}

#[test]
fn unknown_button_data_is_stale() {
    for data in ["finish", "finish:x", "delete:1", ""] {
        let mut state = workout_in_progress(&["squat 3x5 100kg"]);

        let reply = handle(&callback(data, Some(1)), &mut state);

        assert_eq!(
            notice(&reply),
            Some("This button belongs to a workout that is already closed."),
            "{data:?}"
        );
        assert!(!reply.is_done());
        assert_eq!(entries(&state).len(), 1);
    }
}

#[test]
fn own_command_drops_unfinished_workout() {
    let mut state = workout_in_progress(&["squat 3x5 100kg"]);

    let reply = handle(&command("history", ""), &mut state);

    assert_eq!(
        reply.texts(),
        [
            "Dropped the unfinished workout \"Legs\" with 1 entry.",
            "No workouts saved yet. Send /workout to log one."
        ]
    );
    assert!(reply.is_done());
    assert_eq!(state.dialog, None);
}

#[test]
fn new_workout_replaces_empty_workout_silently() {
    let mut state = workout_in_progress(&[]);

    let reply = handle(&command("workout", ""), &mut state);

    assert_eq!(reply.texts(), [messages::ASK_WORKOUT_NAME]);
    assert_eq!(state.dialog, Some(Dialog::WorkoutName { serial: 2 }));
}

// /log.

#[test]
fn log_asks_exercise_then_reps() {
    let mut state = State::default();

    let first = handle(&command("log", ""), &mut state);
    let second = handle(&text("  bench  press "), &mut state);
    let third = handle(&text("5"), &mut state);

    assert_eq!(
        first.texts(),
        ["Which exercise? Send its name, for example squat."]
    );
    assert!(!first.is_done());
    assert_eq!(
        second.texts(),
        ["How many reps of bench  press? Send a whole number, for example 5."]
    );
    assert!(!second.is_done());
    assert_eq!(
        third.texts(),
        ["Logged bench  press: 5 reps. Sets logged today: 1."]
    );
    assert!(third.is_done());
    assert_eq!(state.dialog, None);
    assert_eq!(state.sets_logged, 1);
}

#[test]
fn log_count_starts_afresh_next_day() {
    let mut state = State::default();
    let next_day = |mut update: Update| {
        update.date += 86_400;
        update
    };
    handle(&command("log", "squat 5"), &mut state);
    handle(&command("log", "squat 5"), &mut state);
    assert_eq!(state.sets_logged, 2);

    let reply = handle(&next_day(command("log", "squat 5")), &mut state);

    assert_eq!(
        reply.texts(),
        ["Logged squat: 5 reps. Sets logged today: 1."]
    );
}

#[test]
fn log_counts_sets() {
    let mut state = State::default();

    for expected in 1..=3 {
        handle(&command("log", ""), &mut state);
        handle(&text("squat"), &mut state);
        let reply = handle(&text("5"), &mut state);

        assert_eq!(
            reply.texts(),
            [format!(
                "Logged squat: 5 reps. Sets logged today: {expected}."
            )]
        );
    }
}

#[test]
fn log_keeps_unicode_exercise() {
    let mut state = State::default();
    handle(&command("log", ""), &mut state);
    handle(&text("Жим лёжа 💪"), &mut state);

    let reply = handle(&text("8"), &mut state);

    assert_eq!(
        reply.texts(),
        ["Logged Жим лёжа 💪: 8 reps. Sets logged today: 1."]
    );
}

#[test]
fn log_exercise_hints() {
    let long_name = "e".repeat(MAX_EXERCISE_CHARS + 1);
    let cases = [
        (
            "",
            "The exercise name is empty. Send its name, for example squat.",
        ),
        (
            " ",
            "The exercise name is empty. Send its name, for example squat.",
        ),
        (
            "bench\npress",
            "Send the name on a single line. Send the name of the exercise, for example squat.",
        ),
        (
            long_name.as_str(),
            "The exercise name is too long: 65 characters, the maximum is 64. \
             Send a shorter name.",
        ),
    ];

    for (input, expected) in cases {
        let mut state = State::default();
        handle(&command("log", ""), &mut state);

        let reply = handle(&text(input), &mut state);

        assert_eq!(reply.texts(), [expected], "input {input:?}");
        assert!(!reply.is_done());
        assert_eq!(state.dialog, Some(Dialog::LogExercise));
    }
}

#[test]
fn log_reps_hints() {
    let cases = [
        (
            "abc",
            "\"abc\" is not a whole number. Send the number of reps of squat, for example 5.",
        ),
        (
            "",
            "The message is empty. Send the number of reps of squat, for example 5.",
        ),
        (
            "5.5",
            "\"5.5\" is not a whole number. Send the number of reps of squat, for example 5.",
        ),
        (
            "-3",
            "\"-3\" is not a whole number. Send the number of reps of squat, for example 5.",
        ),
        (
            "💪",
            "\"💪\" is not a whole number. Send the number of reps of squat, for example 5.",
        ),
        (
            "5 reps",
            "\"5 reps\" is not a whole number. Send the number of reps of squat, for example 5.",
        ),
        (
            "0",
            "\"0\" is out of range. Send a whole number of reps from 1 to 1000, for example 5.",
        ),
        (
            "1001",
            "\"1001\" is out of range. Send a whole number of reps from 1 to 1000, for example 5.",
        ),
        (
            "99999999999999999999999999",
            "\"99999999999999999999…\" is out of range. \
             Send a whole number of reps from 1 to 1000, for example 5.",
        ),
    ];

    for (input, expected) in cases {
        let mut state = State::default();
        handle(&command("log", ""), &mut state);
        handle(&text("squat"), &mut state);

        let reply = handle(&text(input), &mut state);

        assert_eq!(reply.texts(), [expected], "input {input:?}");
        assert!(!reply.is_done());
        assert_eq!(
            state.dialog,
            Some(Dialog::LogReps {
                exercise: "squat".to_owned(),
            })
        );
        assert_eq!(state.sets_logged, 0);
    }
}

#[test]
fn log_reps_accepts_bounds_and_spaces() {
    for (input, reps) in [("1", 1), (" 1000 ", 1000), ("007", 7)] {
        let mut state = State::default();
        handle(&command("log", ""), &mut state);
        handle(&text("squat"), &mut state);

        let reply = handle(&text(input), &mut state);

        assert_eq!(
            reply.texts(),
            [format!("Logged squat: {reps} reps. Sets logged today: 1.")]
        );
    }
}

#[test]
fn log_steps_hint_non_text() {
    for (event, description) in non_text_events() {
        let mut state = State::default();
        handle(&command("log", ""), &mut state);

        let exercise_reply = handle(&update(event.clone()), &mut state);
        handle(&text("squat"), &mut state);
        let reps_reply = handle(&update(event), &mut state);

        assert_eq!(
            exercise_reply.texts(),
            [format!(
                "I can only read text here, not {description}. \
                 Send the name of the exercise, for example squat."
            )]
        );
        assert_eq!(
            reps_reply.texts(),
            [format!(
                "I can only read text here, not {description}. \
                 Send the number of reps of squat, for example 5."
            )]
        );
        assert!(!reps_reply.is_done());
    }
}

#[test]
fn log_args_log_at_once() {
    let mut state = State::default();

    let reply = handle(&command("log", "bench press 5"), &mut state);

    assert_eq!(
        reply.texts(),
        ["Logged bench press: 5 reps. Sets logged today: 1."]
    );
    assert!(reply.is_done());
}

#[test]
fn log_args_without_reps_ask_for_reps() {
    let mut state = State::default();

    let reply = handle(&command("log", "bench press"), &mut state);

    assert_eq!(
        reply.texts(),
        ["How many reps of bench press? Send a whole number, for example 5."]
    );
    assert!(!reply.is_done());
    assert_eq!(
        state.dialog,
        Some(Dialog::LogReps {
            exercise: "bench press".to_owned(),
        })
    );
}

#[test]
fn log_args_with_invalid_reps_ask_again() {
    let mut state = State::default();

    let reply = handle(&command("log", "squat 0"), &mut state);

    assert_eq!(
        reply.texts(),
        ["\"0\" is out of range. Send a whole number of reps from 1 to 1000, for example 5."]
    );
    assert_eq!(
        state.dialog,
        Some(Dialog::LogReps {
            exercise: "squat".to_owned(),
        })
    );
}

// /history.

#[test]
fn history_without_workouts() {
    let mut state = State::default();

    let reply = handle(&command("history", ""), &mut state);

    assert_eq!(
        reply.texts(),
        ["No workouts saved yet. Send /workout to log one."]
    );
    assert!(reply.is_done());
}

#[test]
fn history_shows_last_five_newest_first() {
    let mut state = State::default();
    for number in 1..=7 {
        handle(&command("workout", &format!("Day {number}")), &mut state);
        handle(&text("squat 3x5 100kg"), &mut state);
        if number == 7 {
            handle(&text("pull-ups 1x8"), &mut state);
        }
        handle(&callback(&format!("finish:{number}"), None), &mut state);
    }

    let reply = handle(&command("history", ""), &mut state);

    assert_eq!(
        reply.texts(),
        ["Last workouts, newest first:\n\
             #7 Day 7: 4 sets, volume 1500 kg\n\
             #6 Day 6: 3 sets, volume 1500 kg\n\
             #5 Day 5: 3 sets, volume 1500 kg\n\
             #4 Day 4: 3 sets, volume 1500 kg\n\
             #3 Day 3: 3 sets, volume 1500 kg"]
    );
    assert!(reply.is_done());
}

#[test]
fn history_counts_one_set() {
    let mut state = State::default();
    handle(&command("workout", "Quick"), &mut state);
    handle(&text("plank 1x1"), &mut state);
    handle(&callback("finish:1", None), &mut state);

    let reply = handle(&command("history", ""), &mut state);

    assert_eq!(
        reply.texts(),
        ["Last workouts, newest first:\n#1 Quick: 1 set, volume 0 kg"]
    );
}

// Input outside any dialog.

#[test]
fn input_without_dialog_gets_help() {
    let events = [
        Event::Text("hello".to_owned()),
        Event::Sticker(None),
        Event::EditedMessage(None),
    ];

    for event in events {
        let mut state = State::default();

        let reply = handle(&update(event), &mut state);

        assert_eq!(
            reply.texts(),
            ["Send /workout to log a workout, /log to log one set, \
                 or /history to see your last workouts."]
        );
        assert!(reply.is_done());
        assert_eq!(state, State::default());
    }
}

#[test]
fn unknown_command_without_dialog_gets_help() {
    let mut state = State::default();

    let reply = handle(&command("exercises", ""), &mut state);

    assert_eq!(reply.texts(), [messages::HELP]);
    assert!(reply.is_done());
}
