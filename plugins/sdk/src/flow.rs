//! The trait a flow implements.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Manifest, Reply, Update};

/// A conversation flow: its manifest, its state type and its update handler.
///
/// The host creates a fresh component instance for every update, so nothing
/// survives between calls except what the flow keeps in [`Flow::State`].
pub trait Flow {
    /// The flow's state for one conversation, stored by the host as JSON.
    ///
    /// `Default` is the state on first contact and after the state was
    /// cleared. Give new fields `#[serde(default)]` so that state written by
    /// an older build of the same schema still decodes.
    type State: Serialize + DeserializeOwned + Default;

    /// Describes the flow: name, version, commands and state schema version.
    fn manifest() -> Manifest;

    /// Handles one update of the conversation.
    ///
    /// Changes made to `state` are stored, unless the reply clears the state
    /// with [`Reply::clear_state`]. The host logs an `Err`, stores nothing and
    /// sends the user an apology, so use it only for failures the flow cannot
    /// turn into a reply.
    fn handle(update: &Update, state: &mut Self::State) -> Result<Reply, String>;

    /// Converts state bytes written under `from_schema` into this build's
    /// schema, [`Manifest::state_schema`].
    ///
    /// The host calls it only for a schema other than this build's. The
    /// default rejects every schema with an error that names both versions,
    /// which suits a flow that has only ever had one schema. The helpers in
    /// [`crate::state`] decode and encode the JSON.
    fn migrate(from_schema: u32, state: Vec<u8>) -> Result<Vec<u8>, String> {
        let _ = state;
        let manifest = Self::manifest();
        Err(format!(
            "flow `{}` cannot migrate state from schema {from_schema} to schema {}: \
             it defines no migration",
            manifest.name, manifest.state_schema
        ))
    }
}
