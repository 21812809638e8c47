//! Accessors on the update types and a builder for the manifest.

use crate::{Args, Callback, Command, CommandInfo, Event, Manifest, Update};

impl Manifest {
    /// Creates a manifest without commands.
    ///
    /// `state_schema` is the version of the state layout this build reads
    /// and writes. Raise it when a change to the state needs a migration.
    pub fn new(name: impl Into<String>, version: impl Into<String>, state_schema: u32) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            commands: Vec::new(),
            state_schema,
            migrates_from: Vec::new(),
        }
    }

    /// Declares that [`Flow::migrate`](crate::Flow::migrate) converts state
    /// written under `schema` to this build's schema, so conversations on
    /// an older build move to this one when it is loaded.
    pub fn migrates_from(mut self, schema: u32) -> Self {
        self.migrates_from.push(schema);
        self
    }

    /// Adds a command that starts the flow. `name` has no leading slash.
    pub fn command(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.commands.push(CommandInfo {
            name: name.into(),
            description: description.into(),
        });
        self
    }

    /// Returns whether one of the flow's commands has this name.
    pub fn has_command(&self, name: &str) -> bool {
        self.commands.iter().any(|command| command.name == name)
    }
}

impl Command {
    /// Splits the command's argument text into words and numbers.
    pub fn split_args(&self) -> Args<'_> {
        Args::new(&self.args)
    }
}

impl Update {
    /// Returns the message text when the update is a plain text message.
    pub fn text(&self) -> Option<&str> {
        match &self.event {
            Event::Text(text) => Some(text),
            _ => None,
        }
    }

    /// Returns the command when the update is a bot command.
    pub fn command(&self) -> Option<&Command> {
        match &self.event {
            Event::Command(command) => Some(command),
            _ => None,
        }
    }

    /// Returns the button press when the update is a callback.
    pub fn callback(&self) -> Option<&Callback> {
        match &self.event {
            Event::Callback(callback) => Some(callback),
            _ => None,
        }
    }
}

impl Event {
    /// Describes the event in a few words for a message to the user, such as
    /// "a sticker" or "a voice message".
    pub fn description(&self) -> String {
        let description = match self {
            Event::Text(_) => "a text message",
            Event::Command(_) => "a command",
            Event::Callback(_) => "a button press",
            Event::Sticker(_) => "a sticker",
            Event::Animation => "a GIF",
            Event::Photo(_) => "a photo",
            Event::Voice => "a voice message",
            Event::Document(_) => "a file",
            Event::Location(_) => "a location",
            Event::Contact(_) => "a contact",
            Event::EditedMessage(_) => "an edited message",
            Event::Cancelled => "a /cancel",
            Event::Unknown(kind) => return format!("a message of kind {}", kind.replace('_', " ")),
        };
        description.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Location, testing};

    #[test]
    fn manifest_builder_lists_commands() {
        let manifest = Manifest::new("workouts", "0.1.0", 1)
            .command("workout", "Log a workout")
            .command("history", "Show history");

        assert_eq!(manifest.name, "workouts");
        assert_eq!(manifest.version, "0.1.0");
        assert_eq!(manifest.state_schema, 1);
        assert_eq!(manifest.commands.len(), 2);
        assert_eq!(manifest.commands[1].name, "history");
        assert_eq!(manifest.commands[1].description, "Show history");
        assert!(manifest.has_command("workout"));
        assert!(!manifest.has_command("log"));
    }

    #[test]
    fn update_accessors_match_event() {
        let text = testing::text("hi");
        let command = testing::command("log", "squat 5");
        let callback = testing::callback("finish", Some(9));

        assert_eq!(text.text(), Some("hi"));
        assert!(text.command().is_none());
        assert_eq!(
            command.command().unwrap().split_args().words(),
            ["squat", "5"]
        );
        assert!(command.callback().is_none());
        assert_eq!(callback.callback().unwrap().data, "finish");
        assert_eq!(callback.callback().unwrap().message_id, Some(9));
        assert!(callback.text().is_none());
    }

    #[test]
    fn event_descriptions() {
        assert_eq!(
            Event::Sticker(Some("💪".to_owned())).description(),
            "a sticker"
        );
        assert_eq!(Event::Animation.description(), "a GIF");
        assert_eq!(Event::Voice.description(), "a voice message");
        assert_eq!(
            Event::Location(Location {
                latitude: 0.0,
                longitude: 0.0,
            })
            .description(),
            "a location"
        );
        assert_eq!(
            Event::Unknown("video_note".to_owned()).description(),
            "a message of kind video note"
        );
    }
}
