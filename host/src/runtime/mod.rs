//! Component runtime: the wasmtime engine, loading flow components, and
//! running one update through a fresh, limited instance.
//!
//! Every invocation gets a new `Store` and a new instance, so nothing a flow
//! keeps in memory survives to the next update, and a trapped instance is
//! simply dropped. The WASI context is empty: no files, sockets, environment
//! variables or arguments.

mod bindings;
mod limits;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest, Sha256};
use thiserror::Error;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use bindings::{
    Action, AnswerCallback, Button, Callback, ChatKind, Command, CommandInfo, Contact,
    EditKeyboard, EditText, Event, Location, Manifest, Outcome, ReplyMarkup, SendText, StateChange,
    Update, User,
};
use bindings::{Flow, FlowPre, LogLevel};
pub use limits::EPOCH_TICK;
use limits::{EpochTicker, MemoryBudget};

use crate::config::LimitsConfig;

/// Why an invocation produced no usable outcome. None of these is a host
/// failure: the update is answered with an apology and nothing is committed.
#[derive(Debug, Error)]
pub enum InvokeError {
    #[error("deadline of {0} ms exceeded")]
    Deadline(u64),
    #[error("memory cap of {0} bytes exceeded")]
    OutOfMemory(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("returned an error: {0}")]
    Flow(String),
    #[error("output over the limit: {0}")]
    OutputTooLarge(String),
}

/// The shared wasmtime engine plus the thread that advances its epoch.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Invocation>,
    limits: LimitsConfig,
    _ticker: EpochTicker,
}

/// A compiled, pre-linked flow component and what it declared about itself.
pub struct FlowComponent {
    pub manifest: Manifest,
    /// Hex sha256 of the component file's bytes.
    pub digest: String,
    pre: FlowPre<Invocation>,
}

/// Per-invocation store data.
struct Invocation {
    wasi: WasiCtx,
    table: ResourceTable,
    budget: MemoryBudget,
    flow: Arc<str>,
}

impl WasiView for Invocation {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::flowbot::flow::host::Host for Invocation {
    fn log(&mut self, level: LogLevel, message: String) {
        let flow = &*self.flow;
        match level {
            LogLevel::Trace => tracing::trace!(flow, "{message}"),
            LogLevel::Debug => tracing::debug!(flow, "{message}"),
            LogLevel::Info => tracing::info!(flow, "{message}"),
            LogLevel::Warn => tracing::warn!(flow, "{message}"),
            LogLevel::Error => tracing::error!(flow, "{message}"),
        }
    }
}

impl bindings::flowbot::flow::types::Host for Invocation {}

impl Runtime {
    pub fn new(limits: LimitsConfig) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("failed to create the wasmtime engine")?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("failed to add WASI to the linker")?;
        Flow::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(anyhow::Error::from)
            .context("failed to add the flowbot host interface to the linker")?;

        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            limits,
            _ticker: ticker,
        })
    }

    /// Compiles and links the component at `path` and reads its manifest.
    pub async fn load(&self, path: &Path) -> anyhow::Result<FlowComponent> {
        let bytes = tokio::fs::read(path)
            .await
            .with_context(|| format!("failed to read {}", path.display()))?;
        let digest = hex_digest(&bytes);

        let engine = self.engine.clone();
        let component = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .context("compile task panicked")?
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} is not a valid component", path.display()))?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not match the flow world", path.display()))?;
        let pre = FlowPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("{} does not export the flow world", path.display()))?;

        let mut store = self.new_store(Arc::from(path.display().to_string()));
        let result = self
            .with_deadline(async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance.call_manifest(&mut store).await
            })
            .await;
        let manifest = self
            .finish(result, &store)
            .with_context(|| format!("manifest call of {} failed", path.display()))?;
        validate_manifest(&manifest)
            .with_context(|| format!("invalid manifest in {}", path.display()))?;

        Ok(FlowComponent {
            manifest,
            digest,
            pre,
        })
    }

    /// Runs `update` through a fresh instance of `flow`.
    pub async fn handle(
        &self,
        flow: &FlowComponent,
        update: &Update,
        state: Option<&[u8]>,
    ) -> Result<Outcome, InvokeError> {
        let mut store = self.new_store(Arc::from(flow.manifest.name.as_str()));
        let result = self
            .with_deadline(async {
                let instance = flow.pre.instantiate_async(&mut store).await?;
                instance.call_handle(&mut store, update, state).await
            })
            .await;
        let outcome = self.finish(result, &store)?.map_err(InvokeError::Flow)?;
        self.check_output(&outcome)?;
        Ok(outcome)
    }

    /// Converts `state` from `from_schema` to the schema of `flow`.
    pub async fn migrate(
        &self,
        flow: &FlowComponent,
        from_schema: u32,
        state: &[u8],
    ) -> Result<Vec<u8>, InvokeError> {
        let mut store = self.new_store(Arc::from(flow.manifest.name.as_str()));
        let result = self
            .with_deadline(async {
                let instance = flow.pre.instantiate_async(&mut store).await?;
                instance.call_migrate(&mut store, from_schema, state).await
            })
            .await;
        self.finish(result, &store)?.map_err(InvokeError::Flow)
    }

    /// Creates the store for one invocation: empty WASI context, memory
    /// budget, and an epoch callback that enforces the deadline.
    fn new_store(&self, flow: Arc<str>) -> Store<Invocation> {
        let data = Invocation {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            budget: MemoryBudget::new(self.limits.memory_bytes),
            flow,
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|data| &mut data.budget);

        // The callback yields to the executor on every tick, so a busy guest
        // never holds a worker thread, and traps once the deadline has
        // passed, so the guest stops even if nobody polls the timeout in
        // `with_deadline`.
        let deadline = self.limits.deadline();
        let started = Instant::now();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if started.elapsed() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Runs `call` with a timeout a few ticks past the deadline, as a second
    /// line of defence behind the epoch callback. `None` means it timed out.
    async fn with_deadline<R>(
        &self,
        call: impl Future<Output = wasmtime::Result<R>>,
    ) -> Option<wasmtime::Result<R>> {
        tokio::time::timeout(self.limits.deadline() + EPOCH_TICK * 5, call)
            .await
            .ok()
    }

    /// Turns the result of a call into the cause of its failure, if any.
    fn finish<R>(
        &self,
        result: Option<wasmtime::Result<R>>,
        store: &Store<Invocation>,
    ) -> Result<R, InvokeError> {
        let deadline_ms = self.limits.deadline_ms;
        let Some(result) = result else {
            return Err(InvokeError::Deadline(deadline_ms));
        };
        result.map_err(|error| {
            if store.data().budget.exhausted {
                InvokeError::OutOfMemory(self.limits.memory_bytes)
            } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                InvokeError::Deadline(deadline_ms)
            } else {
                InvokeError::Trap(format!("{error:?}"))
            }
        })
    }

    fn check_output(&self, outcome: &Outcome) -> Result<(), InvokeError> {
        if let StateChange::Replace(state) = &outcome.state
            && state.len() > self.limits.state_bytes
        {
            return Err(InvokeError::OutputTooLarge(format!(
                "state of {} bytes, cap {}",
                state.len(),
                self.limits.state_bytes
            )));
        }
        let longest_text = outcome
            .actions
            .iter()
            .map(|action| match action {
                Action::SendText(send) => send.text.chars().count(),
                Action::EditText(edit) => edit.text.chars().count(),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        if longest_text > self.limits.text_chars {
            return Err(InvokeError::OutputTooLarge(format!(
                "text of {longest_text} characters, cap {}",
                self.limits.text_chars
            )));
        }
        if outcome.actions.len() > self.limits.actions {
            return Err(InvokeError::OutputTooLarge(format!(
                "{} actions, cap {}",
                outcome.actions.len(),
                self.limits.actions
            )));
        }
        Ok(())
    }
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Checks the names Telegram and the router rely on.
fn validate_manifest(manifest: &Manifest) -> anyhow::Result<()> {
    let name_ok = !manifest.name.is_empty()
        && manifest.name.len() <= 32
        && manifest.name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_'
        });
    anyhow::ensure!(
        name_ok,
        "flow name {:?} must be 1-32 of a-z, 0-9, '-', '_'",
        manifest.name
    );
    anyhow::ensure!(
        !manifest.version.trim().is_empty(),
        "flow {} has an empty version",
        manifest.name
    );
    for command in &manifest.commands {
        let command_ok = !command.name.is_empty()
            && command.name.len() <= 32
            && command
                .name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
        anyhow::ensure!(
            command_ok,
            "command {:?} of flow {} must be 1-32 of a-z, 0-9, '_'",
            command.name,
            manifest.name
        );
        anyhow::ensure!(
            (1..=256).contains(&command.description.chars().count()),
            "command /{} of flow {} needs a description of 1-256 characters",
            command.name,
            manifest.name
        );
    }
    Ok(())
}
