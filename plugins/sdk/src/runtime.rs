//! The glue between the component exports and a [`Flow`]: decodes the state,
//! calls the flow and turns its [`Reply`] into an [`Outcome`].
//!
//! [`crate::export_flow!`] calls these functions. They are public so that a
//! flow's unit tests can drive the flow through the same path the host uses.

use crate::{Flow, HandleError, Manifest, Outcome, Reply, StateChange, Update, state};

/// Returns the flow's manifest.
pub fn manifest<F: Flow>() -> Manifest {
    F::manifest()
}

/// Handles one update: decodes `stored` state (the default when absent),
/// calls [`Flow::handle`] and reports how the state changed.
///
/// The state change is `unchanged` when the flow's state encodes to the same
/// JSON after the call as before it, `clear` when the reply clears stored
/// state, and `replace` otherwise. Stored bytes that do not decode as
/// `F::State` fail with [`HandleError::UnreadableState`], naming the flow
/// and schema, so the host resets the state instead of failing every update.
pub fn handle<F: Flow>(update: Update, stored: Option<Vec<u8>>) -> Result<Outcome, HandleError> {
    let mut flow_state = match &stored {
        Some(bytes) => state::decode::<F::State>(bytes).map_err(|error| {
            let manifest = F::manifest();
            HandleError::UnreadableState(format!(
                "flow `{}` (state schema {}): {error}",
                manifest.name, manifest.state_schema
            ))
        })?,
        None => F::State::default(),
    };

    // Re-encoding the decoded state, instead of comparing with the stored
    // bytes, keeps `unchanged` exact when the stored JSON was formatted
    // differently or had fields this build ignores.
    let before = state::encode(&flow_state).map_err(HandleError::Failed)?;
    let reply = F::handle(&update, &mut flow_state).map_err(HandleError::Failed)?;

    let state_change = if reply.clears_state() {
        match stored {
            Some(_) => StateChange::Clear,
            None => StateChange::Unchanged,
        }
    } else {
        let after = state::encode(&flow_state).map_err(HandleError::Failed)?;
        if after == before {
            StateChange::Unchanged
        } else {
            StateChange::Replace(after)
        }
    };

    Ok(outcome(reply, state_change))
}

/// Converts state written under `from_schema`. State already in this build's
/// schema is returned as it is; any other schema goes to [`Flow::migrate`].
pub fn migrate<F: Flow>(from_schema: u32, stored: Vec<u8>) -> Result<Vec<u8>, String> {
    if from_schema == F::manifest().state_schema {
        return Ok(stored);
    }
    F::migrate(from_schema, stored)
}

fn outcome(reply: Reply, state: StateChange) -> Outcome {
    let done = reply.is_done();
    Outcome {
        state,
        actions: reply.into_actions(),
        done,
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::testing;

    /// Counts `/count` commands; `/noop` changes nothing, `/reset` clears.
    struct Counter;

    #[derive(Default, Serialize, Deserialize)]
    struct Count {
        value: u32,
    }

    impl Flow for Counter {
        type State = Count;

        fn manifest() -> Manifest {
            Manifest::new("counter", "0.1.0", 2).command("count", "Count")
        }

        fn handle(update: &Update, state: &mut Count) -> Result<Reply, String> {
            let command = update.command().ok_or("expected a command")?;
            match command.name.as_str() {
                "count" => {
                    state.value += 1;
                    Ok(Reply::text(format!("Count: {}", state.value)).done())
                }
                "reset" => Ok(Reply::text("Reset.").clear_state().done()),
                _ => Ok(Reply::text("Nothing changed.")),
            }
        }
    }

    fn replaced_bytes(outcome: &Outcome) -> &[u8] {
        match &outcome.state {
            StateChange::Replace(bytes) => bytes,
            other => panic!("expected a replaced state, got {other:?}"),
        }
    }

    #[test]
    fn handle_starts_from_default_state() {
        let outcome = handle::<Counter>(testing::command("count", ""), None).unwrap();

        assert_eq!(replaced_bytes(&outcome), br#"{"value":1}"#);
        assert!(outcome.done);
        assert_eq!(outcome.actions.len(), 1);
    }

    #[test]
    fn handle_decodes_stored_state() {
        let stored = br#"{"value":41}"#.to_vec();

        let outcome = handle::<Counter>(testing::command("count", ""), Some(stored)).unwrap();

        assert_eq!(replaced_bytes(&outcome), br#"{"value":42}"#);
    }

    #[test]
    fn handle_reports_unchanged_state() {
        let stored = br#"{ "value": 5 }"#.to_vec();

        let outcome = handle::<Counter>(testing::command("noop", ""), Some(stored)).unwrap();

        assert_eq!(outcome.state, StateChange::Unchanged);
        assert!(!outcome.done);
    }

    #[test]
    fn handle_reports_unchanged_default_state() {
        let outcome = handle::<Counter>(testing::command("noop", ""), None).unwrap();

        assert_eq!(outcome.state, StateChange::Unchanged);
    }

    #[test]
    fn handle_clears_stored_state() {
        let stored = br#"{"value":5}"#.to_vec();

        let outcome = handle::<Counter>(testing::command("reset", ""), Some(stored)).unwrap();

        assert_eq!(outcome.state, StateChange::Clear);
        assert!(outcome.done);
    }

    #[test]
    fn handle_clear_without_stored_state_is_unchanged() {
        let outcome = handle::<Counter>(testing::command("reset", ""), None).unwrap();

        assert_eq!(outcome.state, StateChange::Unchanged);
    }

    #[test]
    fn handle_rejects_undecodable_state() {
        let stored = b"not json".to_vec();

        let error = handle::<Counter>(testing::command("count", ""), Some(stored)).unwrap_err();

        let HandleError::UnreadableState(message) = error else {
            panic!("expected unreadable state, got {error:?}");
        };
        assert!(
            message.starts_with("flow `counter` (state schema 2): invalid state for "),
            "{message}"
        );
    }

    #[test]
    fn handle_passes_flow_errors_through() {
        let error = handle::<Counter>(testing::text("hello"), None).unwrap_err();

        assert_eq!(error, HandleError::Failed("expected a command".to_owned()));
    }

    #[test]
    fn migrate_returns_current_schema_unchanged() {
        let stored = br#"{"value":5}"#.to_vec();

        assert_eq!(migrate::<Counter>(2, stored.clone()).unwrap(), stored);
    }

    #[test]
    fn migrate_default_rejects_other_schemas() {
        let error = migrate::<Counter>(1, b"{}".to_vec()).unwrap_err();

        assert_eq!(
            error,
            "flow `counter` cannot migrate state from schema 1 to schema 2: \
             it defines no migration"
        );
    }
}
