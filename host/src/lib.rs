//! flowbot: a Telegram bot host whose conversation flows are sandboxed
//! WebAssembly components.
//!
//! An update travels through these modules in order:
//!
//! | module | role |
//! | --- | --- |
//! | [`telegram::polling`] | long polling; keeps the offset moving |
//! | [`telegram::inbound`] | classifies an update, finds its conversation key |
//! | [`store`] (inbox) | stores the update before the offset confirms it |
//! | [`dispatch`] | bounded per-conversation queues, parallel across conversations |
//! | [`handler`] | load, route, invoke, commit, deliver for one update |
//! | [`router`] | active flow, command owner or the host itself |
//! | [`runtime`] | wasmtime engine; a fresh, limited instance per update |
//! | [`store`] | commits state, applied id and outbox in one step |
//! | [`telegram::outbound`] | sends the outbox to the update's own chat |
//! | [`telegram::pacing`] | keeps sends within Telegram's rate limits |
//! | [`telegram::policy`] | what each Bot API error means |
//!
//! [`app`] connects them and recovers stored work at start. [`config`] reads
//! the settings, and [`conversation`] defines the key. [`registry`] decides
//! which build of each flow serves: its plugin store keeps every installed
//! build by digest, and the environment's pin file picks one; [`watcher`]
//! reloads it when a build or a pin changes, and [`cli`] is the operator's
//! `flowbot flows` command line. [`metrics`] counts what happened and
//! serves `/metrics` and `/healthz`; [`breaker`] turns new conversations away
//! from a flow version that keeps failing.

pub mod app;
pub mod breaker;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod dispatch;
pub mod handler;
pub mod metrics;
pub mod registry;
pub mod router;
pub mod runtime;
pub mod store;
pub mod telegram;
pub mod watcher;
