use flowbot_sdk::testing::{callback, command, text, update};
use flowbot_sdk::{Action, Button, EditKeyboard, EditText, ReplyMarkup};

use super::*;
use crate::state::Exercise;

fn rows(spec: &[&[(&str, &str)]]) -> Vec<Vec<Button>> {
    spec.iter()
        .map(|row| {
            row.iter()
                .map(|(text, data)| Button {
                    text: text.to_string(),
                    data: data.to_string(),
                })
                .collect()
        })
        .collect()
}

/// Returns the keyboard of the last message sent.
fn sent_keyboard(reply: &Reply) -> Vec<Vec<Button>> {
    let markup = reply
        .actions()
        .iter()
        .rev()
        .find_map(|action| match action {
            Action::SendText(send) => Some(send.markup.clone()),
            _ => None,
        });
    match markup.flatten() {
        Some(ReplyMarkup::InlineKeyboard(rows)) => rows,
        _ => Vec::new(),
    }
}

fn notice(reply: &Reply) -> Option<&str> {
    reply.callback_answer()?.notice.as_deref()
}

fn group_rows(serial: u32) -> Vec<Vec<Button>> {
    let data: Vec<String> = ["chest", "back", "legs", "shoulders", "arms", "core"]
        .iter()
        .map(|key| format!("group:{serial}:{key}"))
        .collect();
    rows(&[
        &[("Chest", &data[0]), ("Back", &data[1]), ("Legs", &data[2])],
        &[
            ("Shoulders", &data[3]),
            ("Arms", &data[4]),
            ("Core", &data[5]),
        ],
    ])
}

/// Returns a state with these exercises, added through the dialog.
fn state_with(exercises: &[(&str, &str)]) -> State {
    let mut state = State::default();
    for (name, group) in exercises {
        handle(&command("addexercise", name), &mut state);
        let serial = state.question_serial;
        let reply = handle(
            &callback(&format!("group:{serial}:{group}"), None),
            &mut state,
        );
        assert!(reply.is_done(), "adding {name}");
    }
    state
}

fn names(state: &State) -> Vec<&str> {
    state
        .exercises
        .iter()
        .map(|exercise| exercise.name.as_str())
        .collect()
}

// /exercises.

#[test]
fn empty_list_points_to_addexercise() {
    let mut state = State::default();

    let reply = handle(&command("exercises", ""), &mut state);

    assert_eq!(
        reply.texts(),
        ["You have no exercises yet. Send /addexercise to add one."]
    );
    assert!(reply.is_done());
    assert_eq!(state.dialog, None);
}

#[test]
fn list_has_delete_buttons() {
    let mut state = state_with(&[("Bench press", "chest"), ("Squat", "legs")]);

    let reply = handle(&command("exercises", ""), &mut state);

    assert_eq!(
        reply.texts(),
        ["Your exercises:\n\
             1. Bench press (Chest)\n\
             2. Squat (Legs)\n\
             Press a button to delete an exercise, or Close when you are done."]
    );
    assert_eq!(
        sent_keyboard(&reply),
        rows(&[
            &[("Delete Bench press", "del:1")],
            &[("Delete Squat", "del:2")],
            &[("Close", "close")],
        ])
    );
    assert!(!reply.is_done());
    assert_eq!(state.dialog, Some(Dialog::Browsing));
}

#[test]
fn delete_press_edits_list() {
    let mut state = state_with(&[("Bench press", "chest"), ("Squat", "legs")]);
    handle(&command("exercises", ""), &mut state);

    let reply = handle(&callback("del:1", Some(50)), &mut state);

    assert_eq!(notice(&reply), Some("Deleted Bench press."));
    assert_eq!(
        reply.actions()[1],
        Action::EditText(EditText {
            message_id: 50,
            text: "Your exercises:\n\
                   1. Squat (Legs)\n\
                   Press a button to delete an exercise, or Close when you are done."
                .to_owned(),
            keyboard: Some(rows(&[&[("Delete Squat", "del:2")], &[("Close", "close")]])),
        })
    );
    assert_eq!(reply.actions().len(), 2);
    assert!(!reply.is_done());
    assert_eq!(names(&state), ["Squat"]);
    assert_eq!(state.dialog, Some(Dialog::Browsing));
}

#[test]
fn deleting_last_exercise_ends_list() {
    let mut state = state_with(&[("Squat", "legs")]);
    handle(&command("exercises", ""), &mut state);

    let reply = handle(&callback("del:1", Some(50)), &mut state);

    assert_eq!(notice(&reply), Some("Deleted Squat."));
    assert_eq!(
        reply.actions()[1],
        Action::EditText(EditText {
            message_id: 50,
            text: "You have no exercises left. Send /addexercise to add one.".to_owned(),
            keyboard: None,
        })
    );
    assert!(reply.is_done());
    assert!(state.exercises.is_empty());
    assert_eq!(state.dialog, None);
}

#[test]
fn stale_delete_press_changes_nothing() {
    let mut state = state_with(&[("Bench press", "chest"), ("Squat", "legs")]);
    handle(&command("exercises", ""), &mut state);
    handle(&callback("del:1", Some(50)), &mut state);
    // A new exercise never takes the deleted one's id.
    handle(&command("addexercise", "Row"), &mut state);
    handle(&callback("group:3:back", None), &mut state);
    handle(&command("exercises", ""), &mut state);

    let reply = handle(&callback("del:1", Some(50)), &mut state);

    assert_eq!(notice(&reply), Some("This exercise was already deleted."));
    assert_eq!(
        reply.texts(),
        ["Your exercises:\n1. Squat (Legs)\n2. Row (Back)\n\
             Press a button to delete an exercise, or Close when you are done."]
    );
    assert!(!reply.is_done());
    assert_eq!(names(&state), ["Squat", "Row"]);
    assert_eq!(state.exercises[1].id, 3);
}

#[test]
fn delete_press_without_message_id_sends_list() {
    let mut state = state_with(&[("Bench press", "chest"), ("Squat", "legs")]);
    handle(&command("exercises", ""), &mut state);

    let reply = handle(&callback("del:2", None), &mut state);

    assert_eq!(
        reply.texts(),
        ["Your exercises:\n1. Bench press (Chest)\n\
             Press a button to delete an exercise, or Close when you are done."]
    );
    assert_eq!(
        sent_keyboard(&reply),
        rows(&[&[("Delete Bench press", "del:1")], &[("Close", "close")]])
    );
}

#[test]
fn delete_press_during_add_keeps_dialog() {
    let mut state = state_with(&[("Bench press", "chest"), ("Squat", "legs")]);
    handle(&command("addexercise", "Row"), &mut state);
    let before = state.dialog.clone();

    let reply = handle(&callback("del:2", Some(50)), &mut state);

    assert_eq!(notice(&reply), Some("Deleted Squat."));
    assert!(!reply.is_done());
    assert_eq!(state.dialog, before);
}

#[test]
fn close_press_removes_buttons() {
    let mut state = state_with(&[("Squat", "legs")]);
    handle(&command("exercises", ""), &mut state);

    let reply = handle(&callback("close", Some(50)), &mut state);

    assert_eq!(notice(&reply), Some("Closed the list."));
    assert_eq!(
        reply.actions()[1],
        Action::EditKeyboard(EditKeyboard {
            message_id: 50,
            keyboard: None,
        })
    );
    assert!(reply.is_done());
    assert_eq!(state.dialog, None);
    assert_eq!(names(&state), ["Squat"]);
}

#[test]
fn other_input_closes_list() {
    let events = [
        Event::Text("hello".to_owned()),
        Event::Sticker(None),
        Event::Voice,
        Event::EditedMessage(Some("x".to_owned())),
    ];

    for event in events {
        let mut state = state_with(&[("Squat", "legs")]);
        handle(&command("exercises", ""), &mut state);

        let reply = handle(&update(event), &mut state);

        assert_eq!(reply.texts(), ["Closed the exercise list."]);
        assert!(reply.is_done());
        assert_eq!(state.dialog, None);
    }
}

#[test]
fn other_flow_command_closes_list() {
    let mut state = state_with(&[("Squat", "legs")]);
    handle(&command("exercises", ""), &mut state);

    let reply = handle(&command("workout", ""), &mut state);

    assert_eq!(
        reply.texts(),
        ["Closed the exercise list. Send /workout again to start it."]
    );
    assert!(reply.is_done());
    assert_eq!(state.dialog, None);
}

// /addexercise.

#[test]
fn add_asks_name_then_group() {
    let mut state = State::default();

    let name_prompt = handle(&command("addexercise", ""), &mut state);
    let group_prompt = handle(&text("Bench press"), &mut state);

    assert_eq!(
        name_prompt.texts(),
        ["Send the name of the new exercise, for example Bench press."]
    );
    assert!(!name_prompt.is_done());
    assert_eq!(
        group_prompt.texts(),
        ["Which muscle group does Bench press train?"]
    );
    assert_eq!(sent_keyboard(&group_prompt), group_rows(1));
    assert!(!group_prompt.is_done());
    assert_eq!(
        state.dialog,
        Some(Dialog::AddGroup {
            serial: 1,
            name: "Bench press".to_owned(),
        })
    );
}

#[test]
fn group_press_adds_exercise() {
    let mut state = State::default();
    handle(&command("addexercise", ""), &mut state);
    handle(&text("Bench press"), &mut state);

    let reply = handle(&callback("group:1:chest", Some(60)), &mut state);

    assert_eq!(
        reply.actions(),
        &[
            Action::AnswerCallback(flowbot_sdk::AnswerCallback {
                notice: None,
                alert: false,
            }),
            Action::EditKeyboard(EditKeyboard {
                message_id: 60,
                keyboard: None,
            }),
            Action::SendText(flowbot_sdk::SendText {
                text: "Added Bench press (Chest).".to_owned(),
                markup: None,
            }),
        ]
    );
    assert!(reply.is_done());
    assert_eq!(state.dialog, None);
    assert_eq!(
        state.exercises,
        [Exercise {
            id: 1,
            name: "Bench press".to_owned(),
            group: MuscleGroup::Chest,
        }]
    );
}

#[test]
fn every_group_button_adds_its_group() {
    for group in MuscleGroup::ALL {
        let mut state = State::default();
        handle(&command("addexercise", "Lift"), &mut state);

        let reply = handle(
            &callback(&format!("group:1:{}", group.key()), None),
            &mut state,
        );

        assert_eq!(reply.texts(), [format!("Added Lift ({}).", group.label())]);
        assert_eq!(state.exercises[0].group, group);
    }
}

#[test]
fn name_hints() {
    let long_name = "n".repeat(MAX_NAME_CHARS + 1);
    let cases = [
        (
            "",
            "The name is empty. Send the name of the exercise, for example Bench press.",
        ),
        (
            "  \t ",
            "The name is empty. Send the name of the exercise, for example Bench press.",
        ),
        (
            "Bench\npress",
            "Send the name on a single line, for example Bench press.",
        ),
        (
            long_name.as_str(),
            "The name is too long: 41 characters, the maximum is 40. Send a shorter name.",
        ),
        (
            "bench PRESS",
            "You already have Bench press. Send a different name.",
        ),
        (
            "  Bench   press ",
            "You already have Bench press. Send a different name.",
        ),
    ];

    for (input, expected) in cases {
        let mut state = state_with(&[("Bench press", "chest")]);
        handle(&command("addexercise", ""), &mut state);

        let reply = handle(&text(input), &mut state);

        assert_eq!(reply.texts(), [expected], "input {input:?}");
        assert!(!reply.is_done());
        assert_eq!(state.dialog, Some(Dialog::AddName));
        assert_eq!(state.exercises.len(), 1);
    }
}

#[test]
fn name_is_trimmed_and_collapsed() {
    let mut state = State::default();
    handle(&command("addexercise", ""), &mut state);

    let reply = handle(&text("  Incline   bench  "), &mut state);

    assert_eq!(
        reply.texts(),
        ["Which muscle group does Incline bench train?"]
    );
}

#[test]
fn unicode_and_emoji_names_are_accepted() {
    for name in ["Жим лёжа", "🏋️ Deadlift", "💪"] {
        let mut state = State::default();
        handle(&command("addexercise", ""), &mut state);
        handle(&text(name), &mut state);

        let reply = handle(&callback("group:1:back", None), &mut state);

        assert_eq!(reply.texts(), [format!("Added {name} (Back).")]);
    }
}

#[test]
fn duplicate_check_ignores_unicode_case() {
    let mut state = state_with(&[("Жим лёжа", "chest")]);
    handle(&command("addexercise", ""), &mut state);

    let reply = handle(&text("ЖИМ ЛЁЖА"), &mut state);

    assert_eq!(
        reply.texts(),
        ["You already have Жим лёжа. Send a different name."]
    );
}

#[test]
fn name_step_hints_non_text() {
    let cases = [
        (
            Event::Sticker(Some("💪".to_owned())),
            "I can only read text here, not a sticker. \
             Send the name of the exercise, for example Bench press.",
        ),
        (
            Event::Animation,
            "I can only read text here, not a GIF. \
             Send the name of the exercise, for example Bench press.",
        ),
        (
            Event::Photo(Some("Bench".to_owned())),
            "I can only read text here, not a photo. \
             Send the name of the exercise, for example Bench press.",
        ),
        (
            Event::EditedMessage(Some("Bench".to_owned())),
            "Editing an earlier message changes nothing here. \
             Send the name of the exercise, for example Bench press.",
        ),
    ];

    for (event, expected) in cases {
        let mut state = State::default();
        handle(&command("addexercise", ""), &mut state);

        let reply = handle(&update(event), &mut state);

        assert_eq!(reply.texts(), [expected]);
        assert!(!reply.is_done());
        assert_eq!(state.dialog, Some(Dialog::AddName));
    }
}

#[test]
fn group_step_asks_for_button_press() {
    let events = [
        Event::Text("Chest".to_owned()),
        Event::Text(String::new()),
        Event::Sticker(None),
        Event::Voice,
    ];

    for event in events {
        let mut state = State::default();
        handle(&command("addexercise", "Row"), &mut state);
        let before = state.dialog.clone();

        let reply = handle(&update(event), &mut state);

        assert_eq!(
            reply.texts(),
            ["Press one of the buttons above to choose the muscle group for Row."]
        );
        assert_eq!(sent_keyboard(&reply), group_rows(1));
        assert!(!reply.is_done());
        assert_eq!(state.dialog, before);
    }
}

#[test]
fn stale_group_press_after_add_changes_nothing() {
    let mut state = state_with(&[("Row", "back")]);

    let reply = handle(&callback("group:1:legs", Some(60)), &mut state);

    assert_eq!(
        notice(&reply),
        Some("This question has expired. Send /addexercise to add an exercise.")
    );
    assert_eq!(reply.actions().len(), 1);
    assert!(reply.is_done());
    assert_eq!(state.exercises[0].group, MuscleGroup::Back);
}

#[test]
fn group_press_from_earlier_question_changes_nothing() {
    let mut state = State::default();
    handle(&command("addexercise", "Row"), &mut state);
    handle(&command("addexercise", "Squat"), &mut state);
    let before = state.dialog.clone();

    let reply = handle(&callback("group:1:back", Some(60)), &mut state);

    assert_eq!(
        notice(&reply),
        Some("This question has expired. Send /addexercise to add an exercise.")
    );
    assert!(!reply.is_done());
    assert_eq!(state.dialog, before);
    assert!(state.exercises.is_empty());
}

#[test]
fn unknown_button_data_changes_nothing() {
    for data in [
        "group:1:feet",
        "group:x:chest",
        "del:x",
        "del:",
        "bogus",
        "",
    ] {
        let mut state = State::default();
        handle(&command("addexercise", "Row"), &mut state);
        let before = state.dialog.clone();

        let reply = handle(&callback(data, Some(1)), &mut state);

        assert_eq!(
            notice(&reply),
            Some("This button is no longer in use."),
            "{data:?}"
        );
        assert!(!reply.is_done());
        assert_eq!(state.dialog, before);
    }
}

#[test]
fn other_flow_command_during_add_gets_hint() {
    let mut state = State::default();
    handle(&command("addexercise", ""), &mut state);

    let name_reply = handle(&command("workout", ""), &mut state);
    handle(&text("Row"), &mut state);
    let group_reply = handle(&command("log", ""), &mut state);

    assert_eq!(
        name_reply.texts(),
        ["/workout can't start in the middle of this dialog. \
             Send the name of the exercise, for example Bench press. To stop, send /cancel."]
    );
    assert!(!name_reply.is_done());
    assert_eq!(
        group_reply.texts(),
        ["/log can't start in the middle of this dialog. \
             Press one of the buttons above to choose the muscle group for Row. \
             To stop, send /cancel."]
    );
    assert_eq!(sent_keyboard(&group_reply), group_rows(1));
    assert!(!group_reply.is_done());
    assert!(matches!(state.dialog, Some(Dialog::AddGroup { .. })));
}

#[test]
fn add_args_are_the_name() {
    let mut state = state_with(&[("Squat", "legs")]);

    let valid = handle(&command("addexercise", "Deadlift"), &mut state);
    let duplicate = handle(&command("addexercise", "squat"), &mut state);

    assert_eq!(valid.texts(), ["Which muscle group does Deadlift train?"]);
    assert_eq!(
        duplicate.texts(),
        ["You already have Squat. Send a different name."]
    );
    assert_eq!(state.dialog, Some(Dialog::AddName));
}

#[test]
fn add_rejects_beyond_maximum() {
    let mut state = State::default();
    for index in 0..MAX_EXERCISES {
        state.add_exercise(format!("E{index}"), MuscleGroup::Core);
    }

    let reply = handle(&command("addexercise", ""), &mut state);

    assert_eq!(
        reply.texts(),
        ["You have 40 exercises, the maximum. Delete one with /exercises first."]
    );
    assert!(reply.is_done());
    assert_eq!(state.dialog, None);
}

#[test]
fn full_list_fits_telegram_limits() {
    let mut state = State::default();
    for index in 0..MAX_EXERCISES {
        state.add_exercise(format!("{index:0>40}"), MuscleGroup::Shoulders);
    }

    let reply = handle(&command("exercises", ""), &mut state);

    assert!(reply.texts()[0].chars().count() <= 4096);
    let buttons: usize = sent_keyboard(&reply).iter().map(Vec::len).sum();
    assert!(buttons <= 100);
}

#[test]
fn commands_restart_dialogs() {
    let mut state = state_with(&[("Squat", "legs")]);
    handle(&command("addexercise", "Row"), &mut state);

    let listed = handle(&command("exercises", ""), &mut state);
    let name_prompt_again = handle(&command("addexercise", ""), &mut state);

    assert!(listed.texts()[0].starts_with("Your exercises:"));
    assert_eq!(name_prompt_again.texts(), [messages::ASK_NAME]);
    assert_eq!(state.dialog, Some(Dialog::AddName));
}

#[test]
fn input_without_dialog_gets_help() {
    for event in [Event::Text("hi".to_owned()), Event::Animation] {
        let mut state = State::default();

        let reply = handle(&update(event), &mut state);

        assert_eq!(
            reply.texts(),
            ["Send /exercises to list your exercises or /addexercise to add one."]
        );
        assert!(reply.is_done());
    }
}

#[test]
fn unknown_command_without_dialog_gets_help() {
    let mut state = State::default();

    let reply = handle(&command("workout", ""), &mut state);

    assert_eq!(reply.texts(), [messages::HELP]);
    assert!(reply.is_done());
}
