//! The exercises flow: lists the user's exercises with delete buttons
//! (`/exercises`) and adds one with its muscle group (`/addexercise`).
//!
//! - `dialog`: the dialogs as a state machine over `state::State`.
//! - `messages`: every text the flow sends.

mod dialog;
mod messages;
mod state;

use flowbot_sdk::{Flow, Manifest, Reply, Update};

/// The exercises flow, exported as the component's implementation.
pub struct Exercises;

impl Flow for Exercises {
    type State = state::State;

    fn manifest() -> Manifest {
        Manifest::new("exercises", "0.1.0", 1)
            .command("exercises", "List your exercises")
            .command("addexercise", "Add an exercise")
    }

    fn handle(update: &Update, state: &mut state::State) -> Result<Reply, String> {
        Ok(dialog::handle(update, state))
    }
}

flowbot_sdk::export_flow!(Exercises);

#[cfg(test)]
mod tests {
    use flowbot_sdk::testing::{callback, command};
    use flowbot_sdk::{HandleError, StateChange, runtime};

    use super::*;

    fn replaced(change: StateChange) -> Vec<u8> {
        match change {
            StateChange::Replace(bytes) => bytes,
            other => panic!("expected a replaced state, got {other:?}"),
        }
    }

    #[test]
    fn manifest_lists_commands() {
        let manifest = runtime::manifest::<Exercises>();

        assert_eq!(manifest.name, "exercises");
        assert_eq!(manifest.version, "0.1.0");
        assert_eq!(manifest.state_schema, 1);
        let commands: Vec<_> = manifest
            .commands
            .iter()
            .map(|command| (command.name.as_str(), command.description.as_str()))
            .collect();
        assert_eq!(
            commands,
            [
                ("exercises", "List your exercises"),
                ("addexercise", "Add an exercise")
            ]
        );
    }

    #[test]
    fn state_bytes_carry_exercises_between_updates() {
        let question = runtime::handle::<Exercises>(command("addexercise", "Squat"), None).unwrap();
        let stored = replaced(question.state);
        let added =
            runtime::handle::<Exercises>(callback("group:1:legs", Some(3)), Some(stored)).unwrap();
        let stored = replaced(added.state);

        let listed = runtime::handle::<Exercises>(command("exercises", ""), Some(stored)).unwrap();

        assert!(!question.done);
        assert!(added.done);
        assert!(!listed.done);
        let state: state::State = flowbot_sdk::state::decode(&replaced(listed.state)).unwrap();
        assert_eq!(state.exercises.len(), 1);
        assert_eq!(state.dialog, Some(state::Dialog::Browsing));
    }

    #[test]
    fn empty_list_leaves_state_unchanged() {
        let outcome = runtime::handle::<Exercises>(command("exercises", ""), None).unwrap();

        assert_eq!(outcome.state, StateChange::Unchanged);
        assert!(outcome.done);
    }

    #[test]
    fn undecodable_state_is_reported_as_unreadable() {
        let error = runtime::handle::<Exercises>(command("exercises", ""), Some(b"{".to_vec()))
            .unwrap_err();

        let HandleError::UnreadableState(message) = error else {
            panic!("expected unreadable state, got {error:?}");
        };
        assert!(
            message.starts_with("flow `exercises` (state schema 1): invalid state for "),
            "{message}"
        );
    }

    #[test]
    fn migrate_rejects_other_schemas() {
        assert_eq!(
            runtime::migrate::<Exercises>(2, b"{}".to_vec()),
            Err(
                "flow `exercises` cannot migrate state from schema 2 to schema 1: \
                 it defines no migration"
                    .to_owned()
            )
        );
    }
}
