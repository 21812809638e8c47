//! The state the workouts flow keeps for one conversation (state schema 1).

use serde::{Deserialize, Serialize};

use crate::set_line::SetEntry;

/// Maximum number of saved workouts kept; older ones are dropped first.
pub const MAX_HISTORY: usize = 50;
/// Maximum number of set lines in one workout, which keeps the summary
/// message under Telegram's 4096-character limit.
pub const MAX_ENTRIES: usize = 30;
/// Maximum length of a workout name in characters.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The dialog in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog: Option<Dialog>,
    /// Saved workouts, oldest first, at most [`MAX_HISTORY`].
    #[serde(default)]
    pub history: Vec<SavedWorkout>,
    /// Number of workouts ever saved; the newest one has this number.
    #[serde(default)]
    pub workouts_saved: u32,
    /// Number of sets logged with `/log` on day `sets_day`.
    #[serde(default)]
    pub sets_logged: u32,
    /// Day that `sets_logged` counts, in days since 1970-01-01 UTC.
    #[serde(default)]
    pub sets_day: i64,
    /// Incremented for every workout started. Finish and Cancel buttons carry
    /// it, so a press on the keyboard of an earlier workout is recognised as
    /// stale.
    #[serde(default)]
    pub workout_serial: u32,
}

/// A step of a dialog that waits for the user's next message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Dialog {
    /// `/workout` waits for the workout's name.
    WorkoutName { serial: u32 },
    /// `/workout` collects set lines until Finish or Cancel.
    WorkoutSets {
        serial: u32,
        name: String,
        entries: Vec<SetEntry>,
    },
    /// `/log` waits for the exercise name.
    LogExercise,
    /// `/log` waits for the number of reps.
    LogReps { exercise: String },
}

/// A finished workout as kept in the history: only what `/history` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedWorkout {
    pub number: u32,
    pub name: String,
    /// Total sets over all lines.
    pub sets: u32,
    /// Total of sets × reps × weight, in grams.
    pub volume_grams: u64,
}

impl State {
    /// Appends a workout to the history, dropping the oldest beyond
    /// [`MAX_HISTORY`], and returns its number.
    pub fn save_workout(&mut self, name: String, entries: &[SetEntry]) -> u32 {
        self.workouts_saved = self.workouts_saved.saturating_add(1);
        let workout = SavedWorkout {
            number: self.workouts_saved,
            name,
            sets: entries.iter().map(|entry| entry.sets).sum(),
            volume_grams: entries.iter().map(SetEntry::volume_grams).sum(),
        };

        self.history.push(workout);
        if self.history.len() > MAX_HISTORY {
            let excess = self.history.len() - MAX_HISTORY;
            self.history.drain(..excess);
        }
        self.workouts_saved
    }

    /// Starts a new workout serial and returns it.
    /// Starts counting sets afresh when `date` (Unix seconds) falls on
    /// another UTC day than the sets counted so far.
    // NOTE: days are UTC days; a user far from UTC sees the count reset at
    // their local UTC midnight, because Telegram sends no time zone.
    pub fn roll_day(&mut self, date: i64) {
        let day = date.div_euclid(86_400);
        if self.sets_day != day {
            self.sets_day = day;
            self.sets_logged = 0;
        }
    }

    pub fn next_workout_serial(&mut self) -> u32 {
        self.workout_serial = self.workout_serial.wrapping_add(1);
        self.workout_serial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sets: u32, reps: u32, weight_grams: Option<u32>) -> SetEntry {
        SetEntry {
            exercise: "squat".to_owned(),
            sets,
            reps,
            weight_grams,
        }
    }

    #[test]
    fn save_workout_totals_sets_and_volume() {
        let mut state = State::default();

        let number = state.save_workout(
            "Legs".to_owned(),
            &[entry(3, 5, Some(100_000)), entry(3, 8, None)],
        );

        assert_eq!(number, 1);
        assert_eq!(
            state.history,
            vec![SavedWorkout {
                number: 1,
                name: "Legs".to_owned(),
                sets: 6,
                volume_grams: 1_500_000,
            }]
        );
    }

    #[test]
    fn history_keeps_newest_workouts() {
        let mut state = State::default();

        for index in 0..MAX_HISTORY + 3 {
            state.save_workout(format!("W{index}"), &[entry(1, 1, None)]);
        }

        assert_eq!(state.history.len(), MAX_HISTORY);
        assert_eq!(state.history[0].number, 4);
        assert_eq!(state.history.last().unwrap().number, 53);
        assert_eq!(state.workouts_saved, 53);
    }

    #[test]
    fn set_count_restarts_each_utc_day() {
        let mut state = State::default();
        let morning = 1_796_374_800; // 2026-12-04 09:00 UTC
        state.roll_day(morning);
        state.sets_logged = 4;

        state.roll_day(morning + 14 * 3600);
        assert_eq!(state.sets_logged, 4, "23:00 the same day keeps the count");
        state.roll_day(morning + 15 * 3600);
        assert_eq!(state.sets_logged, 0, "00:00 the next day starts afresh");
    }

    #[test]
    fn default_state_encodes_small() {
        let bytes = flowbot_sdk::state::encode(&State::default()).unwrap();

        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"history":[],"workouts_saved":0,"sets_logged":0,"sets_day":0,"workout_serial":0}"#
        );
    }

    #[test]
    fn dialog_round_trips_through_json() {
        let state = State {
            dialog: Some(Dialog::WorkoutSets {
                serial: 2,
                name: "Legs".to_owned(),
                entries: vec![entry(3, 5, Some(62_500))],
            }),
            ..State::default()
        };

        let bytes = flowbot_sdk::state::encode(&state).unwrap();

        assert_eq!(flowbot_sdk::state::decode::<State>(&bytes).unwrap(), state);
    }

    #[test]
    fn full_state_stays_small() {
        let mut state = State::default();
        let long_name = "n".repeat(MAX_NAME_CHARS);
        for _ in 0..MAX_HISTORY {
            state.save_workout(long_name.clone(), &[entry(100, 1000, Some(1_000_000))]);
        }
        state.dialog = Some(Dialog::WorkoutSets {
            serial: 1,
            name: long_name.clone(),
            entries: vec![
                SetEntry {
                    exercise: "e".repeat(64),
                    sets: 100,
                    reps: 1000,
                    weight_grams: Some(1_000_000),
                };
                MAX_ENTRIES
            ],
        });

        let bytes = flowbot_sdk::state::encode(&state).unwrap();

        assert!(bytes.len() < 12 * 1024, "state is {} bytes", bytes.len());
    }
}
