//! The state the exercises flow keeps for one conversation (state schema 1).

use serde::{Deserialize, Serialize};

/// Maximum number of exercises, which keeps the list and its keyboard of
/// delete buttons within Telegram's message and keyboard limits.
pub const MAX_EXERCISES: usize = 40;
/// Maximum length of an exercise name in characters.
pub const MAX_NAME_CHARS: usize = 40;

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The dialog in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog: Option<Dialog>,
    /// The user's exercises in the order they were added.
    #[serde(default)]
    pub exercises: Vec<Exercise>,
    /// The id given to the newest exercise. Ids are never reused, so a
    /// delete button of an old list cannot delete a different exercise.
    #[serde(default)]
    pub last_id: u32,
    /// Incremented for every muscle group question. Its buttons carry it, so
    /// a press on the keyboard of an earlier question is recognised as stale.
    #[serde(default)]
    pub question_serial: u32,
}

/// A step of a dialog that waits for the user's next message or press.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Dialog {
    /// `/exercises` shows the list with delete buttons.
    Browsing,
    /// `/addexercise` waits for the name.
    AddName,
    /// `/addexercise` waits for a press of a muscle group button.
    AddGroup { serial: u32, name: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exercise {
    pub id: u32,
    pub name: String,
    pub group: MuscleGroup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MuscleGroup {
    Chest,
    Back,
    Legs,
    Shoulders,
    Arms,
    Core,
}

impl MuscleGroup {
    /// Every group, in the order of the keyboard.
    pub const ALL: [MuscleGroup; 6] = [
        MuscleGroup::Chest,
        MuscleGroup::Back,
        MuscleGroup::Legs,
        MuscleGroup::Shoulders,
        MuscleGroup::Arms,
        MuscleGroup::Core,
    ];

    /// Returns the name shown to users.
    pub fn label(self) -> &'static str {
        match self {
            MuscleGroup::Chest => "Chest",
            MuscleGroup::Back => "Back",
            MuscleGroup::Legs => "Legs",
            MuscleGroup::Shoulders => "Shoulders",
            MuscleGroup::Arms => "Arms",
            MuscleGroup::Core => "Core",
        }
    }

    /// Returns the name used in callback data.
    pub fn key(self) -> &'static str {
        match self {
            MuscleGroup::Chest => "chest",
            MuscleGroup::Back => "back",
            MuscleGroup::Legs => "legs",
            MuscleGroup::Shoulders => "shoulders",
            MuscleGroup::Arms => "arms",
            MuscleGroup::Core => "core",
        }
    }

    pub fn from_key(key: &str) -> Option<MuscleGroup> {
        MuscleGroup::ALL
            .into_iter()
            .find(|group| group.key() == key)
    }
}

impl State {
    /// Adds an exercise under a new id and returns it.
    pub fn add_exercise(&mut self, name: String, group: MuscleGroup) -> &Exercise {
        self.last_id = self.last_id.wrapping_add(1);
        self.exercises.push(Exercise {
            id: self.last_id,
            name,
            group,
        });
        &self.exercises[self.exercises.len() - 1]
    }

    /// Removes the exercise with this id and returns it; `None` when there
    /// is none, as after an earlier press of the same delete button.
    pub fn remove_exercise(&mut self, id: u32) -> Option<Exercise> {
        let index = self
            .exercises
            .iter()
            .position(|exercise| exercise.id == id)?;
        Some(self.exercises.remove(index))
    }

    /// Returns the exercise whose name equals `name` ignoring case.
    pub fn find_by_name(&self, name: &str) -> Option<&Exercise> {
        let name = name.to_lowercase();
        self.exercises
            .iter()
            .find(|exercise| exercise.name.to_lowercase() == name)
    }

    /// Starts a new muscle group question and returns its serial.
    pub fn next_question_serial(&mut self) -> u32 {
        self.question_serial = self.question_serial.wrapping_add(1);
        self.question_serial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused() {
        let mut state = State::default();
        state.add_exercise("Squat".to_owned(), MuscleGroup::Legs);
        state.add_exercise("Row".to_owned(), MuscleGroup::Back);

        let removed = state.remove_exercise(2).unwrap();
        let added_id = state.add_exercise("Curl".to_owned(), MuscleGroup::Arms).id;

        assert_eq!(removed.name, "Row");
        assert_eq!(added_id, 3);
        assert_eq!(state.remove_exercise(2), None);
    }

    #[test]
    fn find_by_name_ignores_case() {
        let mut state = State::default();
        state.add_exercise("Жим лёжа".to_owned(), MuscleGroup::Chest);

        assert_eq!(state.find_by_name("ЖИМ ЛЁЖА").unwrap().id, 1);
        assert!(state.find_by_name("Жим").is_none());
    }

    #[test]
    fn group_keys_round_trip() {
        for group in MuscleGroup::ALL {
            assert_eq!(MuscleGroup::from_key(group.key()), Some(group));
        }
        assert_eq!(MuscleGroup::from_key("Chest"), None);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut state = State::default();
        state.add_exercise("Squat".to_owned(), MuscleGroup::Legs);
        state.dialog = Some(Dialog::AddGroup {
            serial: 1,
            name: "Row".to_owned(),
        });

        let bytes = flowbot_sdk::state::encode(&state).unwrap();

        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"dialog":{"step":"add_group","serial":1,"name":"Row"},"exercises":[{"id":1,"name":"Squat","group":"legs"}],"last_id":1,"question_serial":0}"#
        );
        assert_eq!(flowbot_sdk::state::decode::<State>(&bytes).unwrap(), state);
    }
}
