//! The workouts flow: logs workouts set by set (`/workout`), single sets
//! (`/log`) and shows the last workouts (`/history`).
//!
//! - `dialog`: the dialogs as a state machine over `state::State`.
//! - `set_line`: parsing set lines such as `squat 3x5 100kg`.
//! - `messages`: every text the flow sends.

mod dialog;
mod messages;
mod set_line;
mod state;

use flowbot_sdk::{Flow, Manifest, Reply, Update};

/// The workouts flow, exported as the component's implementation.
pub struct Workouts;

impl Flow for Workouts {
    type State = state::State;

    fn manifest() -> Manifest {
        Manifest::new("workouts", "0.1.0", 1)
            .command("workout", "Log a workout set by set")
            .command("log", "Log one set quickly")
            .command("history", "Show your last five workouts")
    }

    fn handle(update: &Update, state: &mut state::State) -> Result<Reply, String> {
        Ok(dialog::handle(update, state))
    }
}

flowbot_sdk::export_flow!(Workouts);

#[cfg(test)]
mod tests {
    use flowbot_sdk::testing::{callback, command, text};
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
        let manifest = runtime::manifest::<Workouts>();

        assert_eq!(manifest.name, "workouts");
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
                ("workout", "Log a workout set by set"),
                ("log", "Log one set quickly"),
                ("history", "Show your last five workouts"),
            ]
        );
    }

    #[test]
    fn state_bytes_carry_dialog_between_updates() {
        let first = runtime::handle::<Workouts>(command("workout", "Legs"), None).unwrap();
        let stored = replaced(first.state);

        let second = runtime::handle::<Workouts>(text("squat 3x5 100kg"), Some(stored)).unwrap();
        let stored = replaced(second.state);
        let third =
            runtime::handle::<Workouts>(callback("finish:1", Some(5)), Some(stored)).unwrap();

        assert!(!first.done);
        assert!(!second.done);
        assert!(third.done);
        let state: state::State = flowbot_sdk::state::decode(&replaced(third.state)).unwrap();
        assert_eq!(state.history.len(), 1);
        assert_eq!(state.dialog, None);
    }

    #[test]
    fn read_only_updates_leave_state_unchanged() {
        let history = runtime::handle::<Workouts>(command("history", ""), None).unwrap();
        let stale = runtime::handle::<Workouts>(callback("finish:9", Some(5)), None).unwrap();

        assert_eq!(history.state, StateChange::Unchanged);
        assert!(history.done);
        assert_eq!(stale.state, StateChange::Unchanged);
        assert!(stale.done);
    }

    #[test]
    fn undecodable_state_is_reported_as_unreadable() {
        let error = runtime::handle::<Workouts>(command("history", ""), Some(b"[1, 2]".to_vec()))
            .unwrap_err();

        let HandleError::UnreadableState(message) = error else {
            panic!("expected unreadable state, got {error:?}");
        };
        assert!(
            message.starts_with("flow `workouts` (state schema 1): invalid state for "),
            "{message}"
        );
    }

    #[test]
    fn migrate_rejects_other_schemas() {
        assert_eq!(
            runtime::migrate::<Workouts>(0, b"{}".to_vec()),
            Err(
                "flow `workouts` cannot migrate state from schema 0 to schema 1: \
                 it defines no migration"
                    .to_owned()
            )
        );
    }
}
