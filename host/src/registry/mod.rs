//! Registry: which build of each flow runs, and loading builds safely.
//!
//! Builds arrive in the drop folder (`flows.dir`, where `scripts/build-flows`
//! writes) or through `flowbot flows install`, and are installed into the
//! plugin store ([`artifacts`]). The environment's pin file ([`pins`]) then
//! names the installed build of each flow that serves new conversations. A
//! [`Registry::reload`] does both steps off the hot path and swaps the new
//! [`FlowSet`] in at once; updates in flight keep the set they started with.
//!
//! A build that cannot be read, compiled, linked or validated, or whose
//! digest does not match its pin, is rejected with the reason, and the flow
//! keeps the build it had. A build that stops serving stays loaded while
//! conversations still use it, and any installed build is loaded again on
//! demand (from the compiled cache), so a conversation can finish on the
//! build it started with.

pub mod artifacts;
mod flow_set;
pub mod pins;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use serde::Serialize;
use tracing::{debug, info, warn};

pub use artifacts::{Artifact, ArtifactStore, hex_digest};
pub use flow_set::{Canary, FlowSet, HOST_COMMANDS, Selection, canary_bucket};
use pins::PinFile;

use crate::metrics;
use crate::runtime::{FlowComponent, Runtime};

/// Why [`Registry::component`] has no build for a digest.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No build with this digest was ever installed here.
    #[error("build sha256:{0} is not in the plugin store")]
    NotInstalled(String),
    /// The build is installed but could not be read, compiled or validated.
    #[error("{0:#}")]
    Load(anyhow::Error),
}

/// Locations of the drop folder, the plugin store and the pin files.
#[derive(Debug, Clone)]
pub struct RegistryPaths {
    /// Drop folder: every `*.wasm` written here is installed.
    pub drop_dir: PathBuf,
    /// The plugin store.
    pub store_dir: PathBuf,
    /// Folder of pin files, `<environment>.toml`.
    pub environments_dir: PathBuf,
    pub environment: String,
}

/// Time after which a loaded build that no longer serves new conversations
/// is dropped from memory if no conversation used it.
pub const IDLE_BUILD_TTL: Duration = Duration::from_secs(600);

struct LoadedBuild {
    component: Arc<FlowComponent>,
    last_used: Instant,
}

/// The changes one reload made.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// True when the serving set was replaced.
    pub swapped: bool,
    /// True when the command list changed, so Telegram's menu needs updating.
    pub commands_changed: bool,
}

/// Identity of a file in the drop folder as last looked at, so a rescan
/// reads only files that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
}

pub struct Registry {
    runtime: Arc<Runtime>,
    artifacts: ArtifactStore,
    paths: RegistryPaths,
    current: RwLock<Arc<FlowSet>>,
    /// Compiled builds by digest, each with when it was last used. Builds
    /// that do not serve are dropped after [`IDLE_BUILD_TTL`] unused.
    loaded: Mutex<HashMap<String, LoadedBuild>>,
    /// Files of the drop folder already installed or rejected.
    seen: Mutex<HashMap<PathBuf, Fingerprint>>,
    /// Reasons for the newest failed attempt to serve each flow, by flow or
    /// file, for `/flows`.
    errors: Mutex<BTreeMap<String, String>>,
    /// One reload at a time; a reload requested meanwhile waits its turn.
    reload_lock: tokio::sync::Mutex<()>,
}

/// The serving state as `/flows` reports it.
#[derive(Debug, Serialize)]
pub struct RegistryStatus {
    pub environment: String,
    pub flows: BTreeMap<String, FlowStatus>,
    /// Every build held in memory: the serving ones and those still in use.
    pub loaded: Vec<BuildStatus>,
    pub errors: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct FlowStatus {
    pub stable: BuildStatus,
    pub canary: Option<CanaryStatus>,
}

#[derive(Debug, Serialize, Clone)]
pub struct BuildStatus {
    pub name: String,
    pub version: String,
    pub digest: String,
}

#[derive(Debug, Serialize)]
pub struct CanaryStatus {
    pub build: BuildStatus,
    pub percent: u8,
}

impl BuildStatus {
    fn of(component: &FlowComponent) -> Self {
        Self {
            name: component.manifest.name.clone(),
            version: component.manifest.version.clone(),
            digest: component.digest.clone(),
        }
    }
}

impl Registry {
    /// Opens the plugin store and loads what the environment pins. Fails
    /// only when the store or the pin file cannot be used at all; a flow
    /// whose build is rejected is left out and logged.
    pub async fn open(runtime: Arc<Runtime>, paths: RegistryPaths) -> anyhow::Result<Self> {
        pins::validate_environment_name(&paths.environment)?;
        let artifacts = ArtifactStore::open(&paths.store_dir)?;
        let registry = Self {
            runtime,
            artifacts,
            paths,
            current: RwLock::new(Arc::new(FlowSet::default())),
            loaded: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            errors: Mutex::new(BTreeMap::new()),
            reload_lock: tokio::sync::Mutex::new(()),
        };
        // The pin file must be readable at start; later a broken pin file
        // only keeps the running set.
        PinFile::load(
            &registry.paths.environments_dir,
            &registry.paths.environment,
        )?;
        registry.reload().await;
        Ok(registry)
    }

    pub fn paths(&self) -> &RegistryPaths {
        &self.paths
    }

    /// Returns the flows serving now.
    pub fn snapshot(&self) -> Arc<FlowSet> {
        self.current.read().expect("flow set lock poisoned").clone()
    }

    /// Installs new builds from the drop folder, then applies the pin file,
    /// and swaps the result in when it differs from what serves now.
    pub async fn reload(&self) -> ReloadReport {
        let _turn = self.reload_lock.lock().await;
        let started = Instant::now();
        self.ingest_drop_dir().await;

        let pins = match PinFile::load(&self.paths.environments_dir, &self.paths.environment) {
            Ok(pins) => pins,
            Err(error) => {
                let reason = format!("{error:#}");
                if self.record_error("pin file", &reason) {
                    warn!(error = %reason, "pin file rejected, flows left as they are");
                    metrics::increment("flowbot_reloads_total", &[("result", "rejected")]);
                }
                return ReloadReport::default();
            }
        };
        self.errors
            .lock()
            .expect("errors lock poisoned")
            .remove("pin file");
        let current = self.snapshot();
        let next = self.resolve(&pins, &current).await;

        self.drop_idle_builds(&next);
        if same_builds(&current, &next) {
            debug!("reload found nothing new");
            return ReloadReport::default();
        }
        let commands_changed = current.command_list() != next.command_list();
        for (name, selection) in next.selections() {
            let before = current.selection(name);
            let changed = before.is_none_or(|before| !same_selection(before, selection));
            if changed {
                info!(
                    flow = %name,
                    version = %selection.stable.manifest.version,
                    digest = %&selection.stable.digest[..12],
                    canary = ?selection.canary.as_ref().map(|canary| canary.component.manifest.version.as_str()),
                    "flow now serving"
                );
            }
        }
        for (name, _) in current.selections() {
            if next.selection(name).is_none() {
                info!(flow = %name, "flow no longer served: it has no pin and no build to follow");
            }
        }
        for conflict in next.ignored_commands() {
            warn!(flow = %conflict.flow, command = %conflict.command, reason = conflict.reason, "command ignored");
        }
        *self.current.write().expect("flow set lock poisoned") = Arc::new(next);
        metrics::increment("flowbot_reloads_total", &[("result", "swapped")]);
        info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "flows reloaded"
        );
        ReloadReport {
            swapped: true,
            commands_changed,
        }
    }

    /// Builds the next serving set from `pins`; a flow whose pinned build
    /// cannot be served keeps its build from `current`.
    async fn resolve(&self, pins: &PinFile, current: &FlowSet) -> FlowSet {
        let installed = match self.artifacts.list() {
            Ok(installed) => installed,
            Err(error) => {
                let reason = format!("{error:#}");
                if self.record_error("plugin store", &reason) {
                    warn!(error = %reason, "plugin store unreadable, flows left as they are");
                }
                return clone_set(current);
            }
        };
        self.errors
            .lock()
            .expect("errors lock poisoned")
            .remove("plugin store");
        let mut names: Vec<String> = pins.flows.keys().cloned().collect();
        if pins.follow_newest {
            names.extend(installed.iter().map(|artifact| artifact.name.clone()));
        }
        names.sort();
        names.dedup();
        // Reasons recorded for flows that are no longer pinned go; those of
        // drop folder files, the pin file and the store are kept apart.
        self.errors
            .lock()
            .expect("errors lock poisoned")
            .retain(|subject, _| {
                let flow = subject.strip_suffix(" canary").unwrap_or(subject);
                subject.contains(std::path::MAIN_SEPARATOR)
                    || subject == "pin file"
                    || names.iter().any(|name| name == flow)
                    || pins.canary.contains_key(flow)
            });
        for name in pins.canary.keys().filter(|name| !names.contains(name)) {
            let reason = format!("canary: {name} has a canary but no pinned build beside it");
            if self.record_error(&canary_subject(name), &reason) {
                warn!(flow = %name, error = %reason, "canary rejected");
            }
        }

        let mut next = FlowSet::default();
        for name in names {
            // A candidate is never its own stable build, even when it is the
            // newest one in an environment that follows the newest builds.
            let candidate = pins.canary.get(&name).map(|canary| canary.hex_digest());
            let stable = match pins.flows.get(&name) {
                Some(pin) => {
                    self.pinned(&installed, &name, &pin.version, pin.hex_digest())
                        .await
                }
                None => self.newest(&installed, &name, candidate).await,
            };
            let stable = match stable {
                Ok(stable) => stable,
                Err(error) => {
                    let reason = format!("{error:#}");
                    if self.record_error(&name, &reason) {
                        metrics::increment("flowbot_reloads_total", &[("result", "pin_rejected")]);
                        match current.get(&name) {
                            Some(kept) => warn!(
                                flow = %name,
                                error = %reason,
                                kept = %kept.manifest.version,
                                "build rejected, flow keeps the build it had"
                            ),
                            None => warn!(
                                flow = %name,
                                error = %reason,
                                "build rejected, flow not served"
                            ),
                        }
                    }
                    if let Some(selection) = current.selection(&name) {
                        next.insert_selection(selection.clone());
                    }
                    continue;
                }
            };
            self.errors
                .lock()
                .expect("errors lock poisoned")
                .remove(&name);
            if let Err(error) = next.insert(stable) {
                warn!(flow = %name, %error, "flow skipped");
                continue;
            }
            if let Some(canary) = pins.canary.get(&name) {
                let candidate = self
                    .pinned(&installed, &name, &canary.version, canary.hex_digest())
                    .await
                    .and_then(|component| next.set_canary(component, canary.percent));
                match candidate {
                    Ok(()) => {
                        self.errors
                            .lock()
                            .expect("errors lock poisoned")
                            .remove(&canary_subject(&name));
                    }
                    Err(error) => {
                        let reason = format!("canary: {error:#}");
                        if self.record_error(&canary_subject(&name), &reason) {
                            warn!(flow = %name, error = %reason, "canary rejected, all users get the pinned build");
                        }
                    }
                }
            }
        }
        next
    }

    /// Loads the installed build of `name` with exactly `version` and `digest`.
    async fn pinned(
        &self,
        installed: &[Artifact],
        name: &str,
        version: &str,
        digest: &str,
    ) -> anyhow::Result<Arc<FlowComponent>> {
        let Some(artifact) = installed.iter().find(|artifact| artifact.digest == digest) else {
            let same_version: Vec<String> = installed
                .iter()
                .filter(|artifact| artifact.name == name && artifact.version == version)
                .map(|artifact| format!("sha256:{}", artifact.digest))
                .collect();
            if same_version.is_empty() {
                bail!(
                    "pinned build {name} {version} sha256:{digest} is not installed: \
                     install it with `flowbot flows install FILE` or pin another build"
                );
            }
            bail!(
                "digest mismatch: {name} {version} is pinned to sha256:{digest}, which is not \
                 installed; the installed builds of {name} {version} are {}",
                same_version.join(", ")
            );
        };
        if artifact.name != name || artifact.version != version {
            bail!(
                "pin of {name} {version} names sha256:{digest}, which is {} {}",
                artifact.name,
                artifact.version
            );
        }
        self.component_of(artifact).await
    }

    /// Loads the build of `name` that arrived last, other than `excluded`.
    async fn newest(
        &self,
        installed: &[Artifact],
        name: &str,
        excluded: Option<&str>,
    ) -> anyhow::Result<Arc<FlowComponent>> {
        let artifact = installed
            .iter()
            .filter(|artifact| artifact.name == name && Some(artifact.digest.as_str()) != excluded)
            .max_by_key(|artifact| artifact.arrived_at_ms())
            .with_context(|| format!("no build of {name} is installed"))?;
        self.component_of(artifact).await
    }

    /// Returns the loaded build with `digest`, loading it from the store
    /// when this process has not loaded it yet.
    pub async fn component(&self, digest: &str) -> Result<Arc<FlowComponent>, RegistryError> {
        if let Some(component) = self.loaded_component(digest) {
            return Ok(component);
        }
        let artifact = self
            .artifacts
            .find(digest)
            .map_err(RegistryError::Load)?
            .filter(|artifact| artifact.digest == digest)
            .ok_or_else(|| RegistryError::NotInstalled(digest.to_owned()))?;
        self.component_of(&artifact)
            .await
            .map_err(RegistryError::Load)
    }

    fn loaded_component(&self, digest: &str) -> Option<Arc<FlowComponent>> {
        let mut loaded = self.loaded.lock().expect("loaded lock poisoned");
        let build = loaded.get_mut(digest)?;
        build.last_used = Instant::now();
        Some(build.component.clone())
    }

    /// Drops loaded builds that do not serve in `set` and were not used for
    /// [`IDLE_BUILD_TTL`].
    fn drop_idle_builds(&self, set: &FlowSet) {
        let serving: Vec<&str> = set
            .selections()
            .flat_map(|(_, selection)| {
                let canary = selection
                    .canary
                    .as_ref()
                    .map(|canary| canary.component.digest.as_str());
                std::iter::once(selection.stable.digest.as_str()).chain(canary)
            })
            .collect();
        let mut loaded = self.loaded.lock().expect("loaded lock poisoned");
        loaded.retain(|digest, build| {
            let keep = serving.contains(&digest.as_str()) || build.last_used.elapsed() < IDLE_BUILD_TTL;
            if !keep {
                debug!(flow = %build.component.manifest.name, version = %build.component.manifest.version, "idle build dropped from memory");
            }
            keep
        });
    }

    async fn component_of(&self, artifact: &Artifact) -> anyhow::Result<Arc<FlowComponent>> {
        if let Some(component) = self.loaded_component(&artifact.digest) {
            return Ok(component);
        }
        let bytes = self.artifacts.read(artifact)?;
        let component = self.compile(bytes, &artifact.digest).await?;
        Ok(component)
    }

    /// Compiles (or reads the compiled cache of) `bytes`, validates the
    /// component and remembers it by digest.
    async fn compile(&self, bytes: Vec<u8>, digest: &str) -> anyhow::Result<Arc<FlowComponent>> {
        let cache = self
            .artifacts
            .compiled_path(digest, &self.runtime.engine_hash());
        let component = load_logged(&self.runtime, bytes, cache).await?;
        Ok(self.remember(component))
    }

    fn remember(&self, component: FlowComponent) -> Arc<FlowComponent> {
        let component = Arc::new(component);
        let build = LoadedBuild {
            component: component.clone(),
            last_used: Instant::now(),
        };
        self.loaded
            .lock()
            .expect("loaded lock poisoned")
            .insert(component.digest.clone(), build);
        component
    }

    /// Installs `bytes` written to the drop folder. Bytes installed before
    /// are marked as dropped again, so they become the newest build, as a
    /// developer who reverts a change expects.
    async fn install_dropped(&self, bytes: Vec<u8>) -> anyhow::Result<Artifact> {
        let (artifact, component) = install_into(&self.runtime, &self.artifacts, bytes).await?;
        match component {
            Some(component) => {
                self.remember(component);
                Ok(artifact)
            }
            None => self.artifacts.mark_dropped(&artifact),
        }
    }

    /// Installs every `*.wasm` of the drop folder that changed since it was
    /// last looked at. A file that fails is logged and retried when it
    /// changes again, which is how a half-written file is handled.
    async fn ingest_drop_dir(&self) {
        let files = match wasm_files(&self.paths.drop_dir) {
            Ok(files) => files,
            Err(error) => {
                debug!(error = format!("{error:#}"), "drop folder unreadable");
                return;
            }
        };
        // Files that are gone take their rejection reasons with them.
        {
            let mut seen = self.seen.lock().expect("seen lock poisoned");
            let mut errors = self.errors.lock().expect("errors lock poisoned");
            seen.retain(|path, _| {
                let present = files.iter().any(|(file, _)| file == path);
                if !present {
                    errors.remove(&path.display().to_string());
                }
                present
            });
        }
        for (path, fingerprint) in files {
            let known = self
                .seen
                .lock()
                .expect("seen lock poisoned")
                .get(&path)
                .copied();
            if known == Some(fingerprint) {
                continue;
            }
            let result = match tokio::fs::read(&path).await {
                Ok(bytes) => self.install_dropped(bytes).await,
                Err(error) => Err(anyhow::Error::from(error)),
            };
            match result {
                Ok(artifact) => {
                    debug!(path = %path.display(), digest = %artifact.short_digest(), "drop folder file is installed");
                    self.errors
                        .lock()
                        .expect("errors lock poisoned")
                        .remove(&path.display().to_string());
                }
                Err(error) => {
                    metrics::increment("flowbot_reloads_total", &[("result", "build_rejected")]);
                    let reason = format!("{error:#}");
                    warn!(path = %path.display(), error = %reason, "build rejected, flows left as they are");
                    self.record_error(&path.display().to_string(), &reason);
                }
            }
            self.seen
                .lock()
                .expect("seen lock poisoned")
                .insert(path, fingerprint);
        }
    }

    /// Records why `subject` (a flow, or a file of the drop folder) was
    /// rejected. Returns false when the same reason was already recorded,
    /// so a rescan does not log it again.
    fn record_error(&self, subject: &str, reason: &str) -> bool {
        let mut errors = self.errors.lock().expect("errors lock poisoned");
        if errors.get(subject).is_some_and(|known| known == reason) {
            return false;
        }
        errors.insert(subject.to_owned(), reason.to_owned());
        true
    }

    /// Returns what serves now, what this process loaded, and the newest
    /// rejection reasons.
    pub fn status(&self) -> RegistryStatus {
        let set = self.snapshot();
        let flows = set
            .selections()
            .map(|(name, selection)| {
                let status = FlowStatus {
                    stable: BuildStatus::of(&selection.stable),
                    canary: selection.canary.as_ref().map(|canary| CanaryStatus {
                        build: BuildStatus::of(&canary.component),
                        percent: canary.percent,
                    }),
                };
                (name.clone(), status)
            })
            .collect();
        let mut loaded: Vec<BuildStatus> = self
            .loaded
            .lock()
            .expect("loaded lock poisoned")
            .values()
            .map(|build| BuildStatus::of(&build.component))
            .collect();
        loaded.sort_by(|a, b| {
            (&a.name, &a.version, &a.digest).cmp(&(&b.name, &b.version, &b.digest))
        });
        RegistryStatus {
            environment: self.paths.environment.clone(),
            flows,
            loaded,
            errors: self.errors.lock().expect("errors lock poisoned").clone(),
        }
    }
}

/// The key under which the rejection of `flow`'s canary is recorded.
fn canary_subject(flow: &str) -> String {
    format!("{flow} canary")
}

/// Validates `bytes` as a flow (compile, link, manifest) and installs it
/// into `store`. Returns the artifact, and the loaded component when it was
/// not installed before; a build already installed is returned as it was.
pub async fn install_into(
    runtime: &Runtime,
    store: &ArtifactStore,
    bytes: Vec<u8>,
) -> anyhow::Result<(Artifact, Option<FlowComponent>)> {
    let digest = hex_digest(&bytes);
    if let Some(existing) = store.find(&digest)?
        && existing.digest == digest
    {
        return Ok((existing, None));
    }
    let cache = store.compiled_path(&digest, &runtime.engine_hash());
    let component = load_logged(runtime, bytes.clone(), cache).await?;
    let manifest = &component.manifest;
    let artifact = store.add(
        &bytes,
        &manifest.name,
        &manifest.version,
        manifest.state_schema,
    )?;
    info!(
        flow = %artifact.name,
        version = %artifact.version,
        digest = %artifact.short_digest(),
        "build installed"
    );
    Ok((artifact, Some(component)))
}

/// Loads a component through `runtime` and logs how long it took.
async fn load_logged(
    runtime: &Runtime,
    bytes: Vec<u8>,
    cache: PathBuf,
) -> anyhow::Result<FlowComponent> {
    let started = Instant::now();
    let component = runtime.load(bytes, Some(cache)).await?;
    info!(
        flow = %component.manifest.name,
        version = %component.manifest.version,
        digest = %&component.digest[..12],
        cached = component.from_cache,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "flow loaded"
    );
    Ok(component)
}

/// The `*.wasm` files of `dir` whose names do not start with a dot (editors
/// and `scripts/build-flows` write dot-named temporary files).
fn wasm_files(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Fingerprint)>> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden || path.extension().is_none_or(|extension| extension != "wasm") {
            continue;
        }
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        if metadata.is_file() {
            let fingerprint = Fingerprint {
                len: metadata.len(),
                modified: metadata.modified().ok(),
            };
            files.push((path, fingerprint));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

fn same_selection(a: &Selection, b: &Selection) -> bool {
    let canary = |selection: &Selection| {
        selection
            .canary
            .as_ref()
            .map(|canary| (canary.component.digest.clone(), canary.percent))
    };
    a.stable.digest == b.stable.digest && canary(a) == canary(b)
}

fn same_builds(a: &FlowSet, b: &FlowSet) -> bool {
    let mut a_flows = a.selections();
    let mut b_flows = b.selections();
    loop {
        match (a_flows.next(), b_flows.next()) {
            (None, None) => return true,
            (Some((a_name, a_selection)), Some((b_name, b_selection)))
                if a_name == b_name && same_selection(a_selection, b_selection) => {}
            _ => return false,
        }
    }
}

fn clone_set(set: &FlowSet) -> FlowSet {
    let mut copy = FlowSet::default();
    for (_, selection) in set.selections() {
        copy.insert_selection(selection.clone());
    }
    copy
}
