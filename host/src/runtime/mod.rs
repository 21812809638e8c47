//! Component runtime: the wasmtime engine, loading flow components, and
//! running one update through a fresh, limited instance.
//!
//! Every invocation gets a new `Store` and a new instance, so nothing a flow
//! keeps in memory survives to the next update, and a trapped instance is
//! simply dropped. The WASI context is empty: no files, sockets, environment
//! variables or arguments.

mod bindings;
mod limits;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use thiserror::Error;
use tracing::warn;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use bindings::{
    Action, AnswerCallback, Button, Callback, ChatKind, Command, CommandInfo, Contact,
    EditKeyboard, EditText, Event, HandleError, Location, Manifest, Outcome, ReplyMarkup, SendText,
    StateChange, Update, User,
};
use bindings::{Flow, FlowPre, LogLevel};
pub use limits::EPOCH_TICK;
use limits::{EpochTicker, MemoryBudget, pool_config, with_cpu_time};

use crate::config::{Limits, LimitsConfig};
use crate::registry::artifacts::{hex_digest, write_atomically};

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
    #[error("cannot read the stored state: {0}")]
    UnreadableState(String),
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

/// Cause of a failed component load.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("not a valid WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("does not match the flowbot:flow world: {0}")]
    WorldMismatch(String),
    #[error("manifest call failed: {0}")]
    ManifestFailed(String),
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
}

/// A compiled, pre-linked flow component and what it declared about itself.
pub struct FlowComponent {
    pub manifest: Manifest,
    /// Hex sha256 of the component file's bytes.
    pub digest: String,
    /// True when the compiled code came from the cache.
    pub from_cache: bool,
    pre: FlowPre<Invocation>,
}

impl FlowComponent {
    /// Returns whether this build reads state written under `schema`: its
    /// own schema, or one its manifest lists in `migrates_from`.
    pub fn reads_schema(&self, schema: u32) -> bool {
        schema == self.manifest.state_schema || self.manifest.migrates_from.contains(&schema)
    }
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
    /// Creates the engine with an instance pool for `max_instances`
    /// instances at once: updates being handled plus builds being loaded.
    pub fn new(limits: LimitsConfig, max_instances: u32) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // One core per compile, so a reload under load leaves the other
        // cores to the updates being served.
        config.parallel_compilation(false);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_config(
            &limits,
            max_instances,
        )));
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

    /// Hex digest of the engine settings that compiled code depends on;
    /// compiled code is cached under it.
    pub fn engine_hash(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    /// Compiles and links a component, or reads its compiled code from
    /// `compiled_cache` when a previous load left it there, and reads its
    /// manifest. Compilation runs on a blocking thread, off the async
    /// workers that serve updates.
    pub async fn load(
        &self,
        bytes: Vec<u8>,
        compiled_cache: Option<PathBuf>,
    ) -> Result<FlowComponent, LoadError> {
        let digest = hex_digest(&bytes);
        // Compiling takes hundreds of milliseconds of CPU. It runs on a
        // thread of its own at idle priority, and on one core, so under
        // load the updates being served get the CPU first.
        let engine = self.engine.clone();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("flowbot-compile".to_owned())
            .spawn(move || {
                lower_thread_priority();
                let _ = sender.send(compile(&engine, &bytes, compiled_cache));
            })
            .map_err(|error| {
                LoadError::NotAComponent(format!("failed to start compiling: {error}"))
            })?;
        let compiled = receiver
            .await
            .map_err(|error| LoadError::NotAComponent(format!("compile thread failed: {error}")))?;
        let (component, from_cache) = compiled?;

        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|error| LoadError::WorldMismatch(format!("{error:#}")))?;
        let pre = FlowPre::new(instance_pre)
            .map_err(|error| LoadError::WorldMismatch(format!("{error:#}")))?;

        let label: Arc<str> = Arc::from(format!("sha256:{}", &digest[..12]));
        let limits = self.limits.loading();
        let mut store = self.new_store(label, &limits);
        let result = with_deadline(&limits, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_manifest(&mut store).await
        })
        .await;
        let manifest = finish(result, &store, &limits)
            .map_err(|error| LoadError::ManifestFailed(error.to_string()))?;
        validate_manifest(&manifest)
            .map_err(|error| LoadError::InvalidManifest(format!("{error:#}")))?;

        Ok(FlowComponent {
            manifest,
            digest,
            from_cache,
            pre,
        })
    }

    /// Runs `update` through a fresh instance of `flow`. Returns the result
    /// and the CPU time the instantiation and the call took.
    pub async fn handle(
        &self,
        flow: &FlowComponent,
        update: &Update,
        state: Option<&[u8]>,
    ) -> (Result<Outcome, InvokeError>, Duration) {
        let limits = self.limits.for_flow(&flow.manifest.name);
        let mut store = self.new_store(Arc::from(flow.manifest.name.as_str()), &limits);
        let call = with_deadline(&limits, async {
            let instance = flow.pre.instantiate_async(&mut store).await?;
            instance.call_handle(&mut store, update, state).await
        });
        let (result, cpu) = with_cpu_time(call).await;
        let outcome = finish(result, &store, &limits).and_then(|handled| {
            let outcome = handled.map_err(|error| match error {
                HandleError::Failed(message) => InvokeError::Flow(message),
                HandleError::UnreadableState(message) => InvokeError::UnreadableState(message),
            })?;
            check_output(&outcome, &limits)?;
            Ok(outcome)
        });
        (outcome, cpu)
    }

    /// Converts `state` from `from_schema` to the schema of `flow`.
    pub async fn migrate(
        &self,
        flow: &FlowComponent,
        from_schema: u32,
        state: &[u8],
    ) -> Result<Vec<u8>, InvokeError> {
        let limits = self.limits.for_flow(&flow.manifest.name);
        let mut store = self.new_store(Arc::from(flow.manifest.name.as_str()), &limits);
        let result = with_deadline(&limits, async {
            let instance = flow.pre.instantiate_async(&mut store).await?;
            instance.call_migrate(&mut store, from_schema, state).await
        })
        .await;
        finish(result, &store, &limits)?.map_err(InvokeError::Flow)
    }

    /// Creates the store for one invocation: empty WASI context, memory
    /// budget, and an epoch callback that enforces the deadline.
    fn new_store(&self, flow: Arc<str>, limits: &Limits) -> Store<Invocation> {
        let data = Invocation {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            budget: MemoryBudget::new(limits.memory_bytes),
            flow,
        };
        let mut store = Store::new(&self.engine, data);
        store.limiter(|data| &mut data.budget);

        // The callback yields to the executor on every tick, so a busy guest
        // never holds a worker thread, and traps once the deadline has
        // passed, so the guest stops even if nobody polls the timeout in
        // `with_deadline`.
        let deadline = limits.deadline();
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
}

/// Runs `call` with a timeout a few ticks past the deadline, as a second
/// line of defence behind the epoch callback. `None` means it timed out.
async fn with_deadline<R>(
    limits: &Limits,
    call: impl Future<Output = wasmtime::Result<R>>,
) -> Option<wasmtime::Result<R>> {
    tokio::time::timeout(limits.deadline() + EPOCH_TICK * 5, call)
        .await
        .ok()
}

/// Turns the result of a call into the cause of its failure, if any.
fn finish<R>(
    result: Option<wasmtime::Result<R>>,
    store: &Store<Invocation>,
    limits: &Limits,
) -> Result<R, InvokeError> {
    let deadline_ms = limits.deadline_ms;
    let Some(result) = result else {
        return Err(InvokeError::Deadline(deadline_ms));
    };
    result.map_err(|error| {
        if store.data().budget.exhausted {
            InvokeError::OutOfMemory(limits.memory_bytes)
        } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            InvokeError::Deadline(deadline_ms)
        } else {
            InvokeError::Trap(format!("{error:?}"))
        }
    })
}

fn check_output(outcome: &Outcome, limits: &Limits) -> Result<(), InvokeError> {
    if let StateChange::Replace(state) = &outcome.state
        && state.len() > limits.state_bytes
    {
        return Err(InvokeError::OutputTooLarge(format!(
            "state of {} bytes, cap {}",
            state.len(),
            limits.state_bytes
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
    if longest_text > limits.text_chars {
        return Err(InvokeError::OutputTooLarge(format!(
            "text of {longest_text} characters, cap {}",
            limits.text_chars
        )));
    }
    if outcome.actions.len() > limits.actions {
        return Err(InvokeError::OutputTooLarge(format!(
            "{} actions, cap {}",
            outcome.actions.len(),
            limits.actions
        )));
    }
    Ok(())
}

/// Moves the calling thread to the `SCHED_IDLE` policy, under which Linux
/// runs it almost only on CPU time that other threads leave idle: its
/// weight is 3 against 1024 for a thread of nice 0 (see sched(7)). Where
/// that fails, the thread gets nice 19 instead; a failure of both only
/// leaves it at normal priority. Both calls apply to the calling thread
/// alone when given id 0.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler and setpriority change scheduling
    // attributes of the calling thread and read only `param`, which lives
    // for the whole call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let _ = libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        }
    }
}

/// Compiles `bytes`, or deserializes the compiled code at `cache` when it
/// is there and fits this engine. Writes the cache after compiling; a
/// cache that cannot be written only costs a compile at the next load.
fn compile(
    engine: &Engine,
    bytes: &[u8],
    cache: Option<PathBuf>,
) -> Result<(Component, bool), LoadError> {
    if let Some(cache) = cache.as_deref().filter(|cache| cache.is_file()) {
        // SAFETY: wasmtime runs deserialized code without verifying it. The
        // cache file was written by `Component::serialize` into the plugin
        // store, which must be writable only by the host's operator, under a
        // name that contains the component's digest and the engine's
        // compatibility hash. wasmtime also rejects code compiled for other
        // settings.
        match unsafe { Component::deserialize_file(engine, cache) } {
            Ok(component) => return Ok((component, true)),
            Err(error) => {
                warn!(cache = %cache.display(), %error, "compiled cache unusable, compiling again")
            }
        }
    }
    let component = Component::new(engine, bytes)
        .map_err(|error| LoadError::NotAComponent(format!("{error:#}")))?;
    if let Some(cache) = &cache {
        let written = component
            .serialize()
            .map_err(anyhow::Error::from)
            .and_then(|compiled| write_atomically(cache, &compiled));
        if let Err(error) = written {
            warn!(cache = %cache.display(), error = format!("{error:#}"), "failed to write the compiled cache");
        }
    }
    Ok((component, false))
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::lower_thread_priority;

    #[test]
    fn compile_thread_runs_at_idle_priority() {
        let (policy, nice) = std::thread::spawn(|| {
            lower_thread_priority();
            // SAFETY: both calls only read scheduling attributes of the
            // calling thread.
            unsafe {
                (
                    libc::sched_getscheduler(0),
                    libc::getpriority(libc::PRIO_PROCESS, 0),
                )
            }
        })
        .join()
        .expect("priority thread panicked");
        assert!(
            policy == libc::SCHED_IDLE || nice == 19,
            "policy {policy}, nice {nice}"
        );
    }
}
