//! Guest SDK for writing flowbot flows as WebAssembly components.
//!
//! A flow is a type that implements [`Flow`]: it names its commands in a
//! [`Manifest`], keeps typed state (serde) and turns each [`Update`] into a
//! [`Reply`]. [`export_flow!`] then implements the component exports of the
//! `flowbot:flow` WIT world for that type, so a flow crate never touches
//! `wit-bindgen` itself:
//!
//! ```no_run
//! use flowbot_sdk::{Flow, Manifest, Reply, Update};
//!
//! struct Echo;
//!
//! impl Flow for Echo {
//!     type State = ();
//!
//!     fn manifest() -> Manifest {
//!         Manifest::new("echo", "0.1.0", 1).command("echo", "Repeat a message")
//!     }
//!
//!     fn handle(update: &Update, _state: &mut ()) -> Result<Reply, String> {
//!         let command = update.command().ok_or("expected the /echo command")?;
//!         Ok(Reply::text(command.args.clone()).done())
//!     }
//! }
//!
//! flowbot_sdk::export_flow!(Echo);
//! ```
//!
//! Modules:
//!
//! - [`flow`]: the [`Flow`] trait.
//! - [`runtime`]: decoding state, calling a flow and encoding the outcome.
//! - [`reply`] and [`keyboard`]: building the actions a flow returns.
//! - [`args`]: splitting a command's arguments into words and numbers.
//! - [`update`]: accessors on the update types and the manifest builder.
//! - [`state`]: the JSON encoding of flow state.
//! - [`log`]: writing to the host's log.
//! - [`testing`]: building updates in native unit tests.

pub mod args;
pub mod flow;
pub mod keyboard;
pub mod log;
pub mod reply;
pub mod runtime;
pub mod state;
pub mod testing;
pub mod update;

/// Bindings generated from `wit/flow.wit`. Public only because
/// [`export_flow!`] expands to paths inside it in the flow's crate.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "flow",
        additional_derives: [PartialEq],
        pub_export_macro: true,
        default_bindings_module: "::flowbot_sdk::bindings",
    });
}

pub use args::{ArgError, Args};
pub use bindings::flowbot::flow::types::{
    Action, AnswerCallback, Button, Callback, ChatKind, Command, CommandInfo, Contact,
    EditKeyboard, EditText, Event, HandleError, Location, Manifest, Outcome, ReplyMarkup, SendText,
    StateChange, Update, User,
};
pub use flow::Flow;
pub use keyboard::Keyboard;
pub use reply::Reply;

/// Implements the component exports of the `flowbot:flow` world for a type
/// that implements [`Flow`]. Invoke it once, at the top level of a flow's
/// `cdylib` crate.
///
/// The exports call [`runtime::manifest`], [`runtime::handle`] and
/// [`runtime::migrate`], which unit tests can call directly.
#[macro_export]
macro_rules! export_flow {
    ($flow:ty) => {
        const _: () = {
            struct FlowExports;

            impl $crate::bindings::Guest for FlowExports {
                fn manifest() -> $crate::Manifest {
                    $crate::runtime::manifest::<$flow>()
                }

                fn handle(
                    update: $crate::Update,
                    state: ::core::option::Option<::std::vec::Vec<u8>>,
                ) -> ::core::result::Result<$crate::Outcome, $crate::HandleError> {
                    $crate::runtime::handle::<$flow>(update, state)
                }

                fn migrate(
                    from_schema: u32,
                    state: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    $crate::runtime::migrate::<$flow>(from_schema, state)
                }
            }

    $crate::bindings::export!(FlowExports with_types_in $crate::bindings);
        };
    };
}
