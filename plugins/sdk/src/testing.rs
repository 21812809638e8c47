//! Updates for native unit tests of a flow: a private chat with one user
//! (id 1001), carrying the event under test.

use crate::{Callback, ChatKind, Command, Event, Update, User};

/// Date of every test update: 2026-12-04 09:00 UTC.
pub const DATE: i64 = 1_796_374_800;

/// Builds an update with `update_id` 1, message id 1 and [`DATE`] that
/// carries `event`.
pub fn update(event: Event) -> Update {
    let message_id = match event {
        Event::Callback(_) => None,
        _ => Some(1),
    };
    Update {
        update_id: 1,
        date: DATE,
        chat_kind: ChatKind::Private,
        user: Some(User {
            id: 1001,
            first_name: "Test".to_owned(),
            username: None,
            language_code: None,
        }),
        message_id,
        event,
    }
}

/// Builds a plain text message.
pub fn text(text: &str) -> Update {
    update(Event::Text(text.to_owned()))
}

/// Builds a command; `name` has no leading slash.
pub fn command(name: &str, args: &str) -> Update {
    update(Event::Command(Command {
        name: name.to_owned(),
        args: args.to_owned(),
    }))
}

/// Builds a press of a button with this callback data on the message with
/// id `message_id`.
pub fn callback(data: &str, message_id: Option<i32>) -> Update {
    update(Event::Callback(Callback {
        data: data.to_owned(),
        message_id,
    }))
}
