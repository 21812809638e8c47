//! Routing: who handles an update, the active flow, a command's owner or the
//! host itself.
//!
//! Inline buttons are tagged with the flow that sent them (`<flow>~<data>`),
//! so a press on a list sent by a flow that has since finished still reaches
//! that flow, and a press can never reach a flow that did not send it.

use crate::registry::FlowSet;
use crate::runtime::{Action, Event, ReplyMarkup};

/// Separator between the flow name and the flow's own callback data.
const TAG_SEPARATOR: char = '~';
/// Telegram's limit on callback data, in bytes.
pub const MAX_CALLBACK_DATA: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Hand the update to this flow; for presses, `data` is the flow's own
    /// callback data with the tag removed.
    Flow {
        flow: String,
        callback_data: Option<String>,
    },
    Help,
    Start,
    Cancel,
    /// Text or a command that no flow handles.
    NotUnderstood,
    /// A kind of message that only a flow in a dialog could use.
    Unsupported,
    /// A button from a flow that is not loaded, or not tagged by this host.
    StaleButton,
    /// A button of another flow while `active` holds the conversation.
    Busy {
        active: String,
    },
    /// Nothing to do, and nothing worth telling the user.
    Ignore,
}

/// Decides who handles `event` when `active` holds the conversation.
pub fn route(active: Option<&str>, event: &Event, flows: &FlowSet) -> Route {
    let active = active.filter(|name| flows.get(name).is_some());
    let to_flow = |flow: &str| Route::Flow {
        flow: flow.to_owned(),
        callback_data: None,
    };

    if let Event::Command(command) = event {
        match command.name.as_str() {
            "help" => return Route::Help,
            "cancel" => return Route::Cancel,
            "start" if active.is_none() => return Route::Start,
            _ => {}
        }
    }
    if let Event::Callback(callback) = event {
        let Some((flow, data)) = split_callback_data(&callback.data) else {
            return Route::StaleButton;
        };
        if flows.get(flow).is_none() {
            return Route::StaleButton;
        }
        return match active {
            Some(active) if active != flow => Route::Busy {
                active: active.to_owned(),
            },
            _ => Route::Flow {
                flow: flow.to_owned(),
                callback_data: Some(data.to_owned()),
            },
        };
    }
    if let Some(active) = active {
        return to_flow(active);
    }
    match event {
        Event::Command(command) => match flows.flow_for_command(&command.name) {
            Some(flow) => to_flow(flow),
            None => Route::NotUnderstood,
        },
        Event::Text(_) => Route::NotUnderstood,
        Event::EditedMessage(_) => Route::Ignore,
        _ => Route::Unsupported,
    }
}

/// Splits tagged callback data into the flow name and the flow's own data.
pub fn split_callback_data(data: &str) -> Option<(&str, &str)> {
    data.split_once(TAG_SEPARATOR)
}

/// Tags every button in `actions` with `flow`. Fails, naming the button, when
/// tagged data would exceed Telegram's 64-byte limit or the data is empty.
pub fn tag_buttons(flow: &str, actions: &mut [Action]) -> Result<(), String> {
    let keyboards = actions.iter_mut().filter_map(|action| match action {
        Action::SendText(send) => match &mut send.markup {
            Some(ReplyMarkup::InlineKeyboard(keyboard)) => Some(keyboard),
            _ => None,
        },
        Action::EditText(edit) => edit.keyboard.as_mut(),
        Action::EditKeyboard(edit) => edit.keyboard.as_mut(),
        Action::AnswerCallback(_) => None,
    });
    for button in keyboards.flatten().flatten() {
        let tagged = format!("{flow}{TAG_SEPARATOR}{}", button.data);
        if button.data.is_empty() || tagged.len() > MAX_CALLBACK_DATA {
            return Err(format!(
                "button {:?} has callback data of {} bytes; allowed is 1 to {} for flow {flow}",
                button.text,
                button.data.len(),
                MAX_CALLBACK_DATA - flow.len() - 1
            ));
        }
        button.data = tagged;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Button, Callback, Command, SendText};

    fn command(name: &str) -> Event {
        Event::Command(Command {
            name: name.to_owned(),
            args: String::new(),
        })
    }

    fn press(data: &str) -> Event {
        Event::Callback(Callback {
            data: data.to_owned(),
            message_id: Some(5),
        })
    }

    #[test]
    fn host_commands_win_over_active_flow() {
        let flows = FlowSet::default();
        assert_eq!(route(None, &command("help"), &flows), Route::Help);
        assert_eq!(route(None, &command("cancel"), &flows), Route::Cancel);
        assert_eq!(route(None, &command("start"), &flows), Route::Start);
    }

    #[test]
    fn unknown_input_without_flows() {
        let flows = FlowSet::default();
        assert_eq!(
            route(None, &command("workout"), &flows),
            Route::NotUnderstood
        );
        assert_eq!(
            route(None, &Event::Text("hi".to_owned()), &flows),
            Route::NotUnderstood
        );
        assert_eq!(
            route(None, &Event::Sticker(None), &flows),
            Route::Unsupported
        );
        assert_eq!(
            route(None, &Event::EditedMessage(None), &flows),
            Route::Ignore
        );
    }

    #[test]
    fn active_flow_that_is_not_loaded_is_ignored() {
        let flows = FlowSet::default();
        assert_eq!(
            route(Some("gone"), &Event::Text("hi".to_owned()), &flows),
            Route::NotUnderstood
        );
    }

    #[test]
    fn untagged_or_unknown_buttons_are_stale() {
        let flows = FlowSet::default();
        assert_eq!(route(None, &press("finish"), &flows), Route::StaleButton);
        assert_eq!(
            route(None, &press("gone~finish"), &flows),
            Route::StaleButton
        );
    }

    #[test]
    fn tagging_round_trips() {
        let keyboard = vec![vec![Button {
            text: "Finish".to_owned(),
            data: "finish".to_owned(),
        }]];
        let mut actions = vec![Action::SendText(SendText {
            text: "Set saved".to_owned(),
            markup: Some(ReplyMarkup::InlineKeyboard(keyboard)),
        })];
        tag_buttons("workouts", &mut actions).unwrap();
        let Action::SendText(send) = &actions[0] else {
            unreachable!()
        };
        let Some(ReplyMarkup::InlineKeyboard(keyboard)) = &send.markup else {
            unreachable!()
        };
        assert_eq!(keyboard[0][0].data, "workouts~finish");
        assert_eq!(
            split_callback_data(&keyboard[0][0].data),
            Some(("workouts", "finish"))
        );
    }

    #[test]
    fn tagging_rejects_data_over_the_limit() {
        let keyboard = vec![vec![Button {
            text: "Big".to_owned(),
            data: "x".repeat(60),
        }]];
        let mut actions = vec![Action::SendText(SendText {
            text: "t".to_owned(),
            markup: Some(ReplyMarkup::InlineKeyboard(keyboard)),
        })];
        let error = tag_buttons("workouts", &mut actions).unwrap_err();
        assert!(error.contains("allowed is 1 to 55"), "{error}");
    }
}
