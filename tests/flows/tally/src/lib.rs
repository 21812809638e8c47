//! A counting flow for the host's reload, pin and migration tests, built
//! for the tests only and never shipped. Every reply names the build's
//! version, so a test can tell which build answered.
//!
//! - `/tally` starts a dialog; each number sent adds to it; `/done` ends it.
//! - The version is [`VERSION`], a string the tests patch in the built
//!   component to make many builds out of one, so it must stay the same
//!   length and appear only as this constant.
//! - Feature `schema2` builds 2.0.0 with state schema 2, which migrates
//!   schema 1; feature `schema2-no-migrate` builds the same without the
//!   migration.

use flowbot_sdk::{Event, Flow, Manifest, Reply, Update, state};
use serde::{Deserialize, Serialize};

#[cfg(not(any(feature = "schema2", feature = "schema2-no-migrate")))]
pub const VERSION: &str = "1.0.0-r00";
#[cfg(any(feature = "schema2", feature = "schema2-no-migrate"))]
pub const VERSION: &str = "2.0.0-r00";

#[cfg(not(any(feature = "schema2", feature = "schema2-no-migrate")))]
const SCHEMA: u32 = 1;
#[cfg(any(feature = "schema2", feature = "schema2-no-migrate"))]
const SCHEMA: u32 = 2;

pub struct Tally;

/// Schema 1 keeps `numbers`; schema 2 renamed it to `values`, so state of
/// one schema does not decode as the other.
#[cfg(not(any(feature = "schema2", feature = "schema2-no-migrate")))]
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    numbers: Vec<i64>,
    dialogs: u32,
}

#[cfg(any(feature = "schema2", feature = "schema2-no-migrate"))]
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    values: Vec<i64>,
    dialogs: u32,
}

impl State {
    fn items(&mut self) -> &mut Vec<i64> {
        #[cfg(not(any(feature = "schema2", feature = "schema2-no-migrate")))]
        return &mut self.numbers;
        #[cfg(any(feature = "schema2", feature = "schema2-no-migrate"))]
        return &mut self.values;
    }
}

#[derive(Deserialize)]
struct SchemaOne {
    numbers: Vec<i64>,
    dialogs: u32,
}

impl Flow for Tally {
    type State = State;

    fn manifest() -> Manifest {
        let manifest = Manifest::new("tally", VERSION, SCHEMA).command("tally", "Add up numbers");
        if cfg!(feature = "schema2") {
            manifest.migrates_from(1)
        } else {
            manifest
        }
    }

    fn handle(update: &Update, state: &mut State) -> Result<Reply, String> {
        let reply = match &update.event {
            Event::Command(command) if command.name == "tally" => {
                state.items().clear();
                Reply::text(format!("{VERSION} tally started"))
            }
            Event::Command(command) if command.name == "done" => {
                let count = state.items().len();
                let sum: i64 = state.items().iter().sum();
                state.items().clear();
                state.dialogs += 1;
                Reply::text(format!(
                    "{VERSION} done: {count} numbers, sum {sum}, dialog {}",
                    state.dialogs
                ))
                .done()
            }
            Event::Text(text) => match text.trim().parse::<i64>() {
                Ok(number) => {
                    state.items().push(number);
                    let sum: i64 = state.items().iter().sum();
                    Reply::text(format!("{VERSION} #{} sum {sum}", state.items().len()))
                }
                Err(_) => Reply::text(format!("{VERSION} expected a number or /done")),
            },
            _ => Reply::text(format!("{VERSION} expected a number or /done")),
        };
        Ok(reply)
    }

    fn migrate(from_schema: u32, stored: Vec<u8>) -> Result<Vec<u8>, String> {
        if !cfg!(feature = "schema2") || from_schema != 1 {
            return Err(format!(
                "tally {VERSION} cannot migrate schema {from_schema}"
            ));
        }
        let old: SchemaOne = state::decode(&stored)?;
        let mut new = State::default();
        *new.items() = old.numbers;
        new.dialogs = old.dialogs;
        state::encode(&new)
    }
}

flowbot_sdk::export_flow!(Tally);
