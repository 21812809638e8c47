//! The plugin store: every flow build ever installed, on disk, addressed by
//! name, version and content digest.
//!
//! Layout under the store's root:
//!
//! - `<name>/<version>/<digest>.wasm`: the component, exactly as installed.
//! - `<name>/<version>/<digest>.json`: the metadata the registry reads
//!   without compiling it (an [`Artifact`]).
//! - `.compiled/<digest>-<engine>.cwasm`: compiled code, keyed by the
//!   digest and by wasmtime's compatibility hash of the engine settings,
//!   so a restart or a rollback does not compile again.
//!
//! Files are written through a temporary file and a rename. A digest names
//! exactly one content, so installing a build never overwrites another one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::warn;

/// One installed build of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub name: String,
    pub version: String,
    /// Hex sha256 of the component file.
    pub digest: String,
    pub state_schema: u32,
    /// When the build was installed, in Unix milliseconds.
    pub installed_at_ms: u64,
    /// When the same bytes were last written to the drop folder again, in
    /// Unix milliseconds; 0 when they never were.
    #[serde(default)]
    pub dropped_at_ms: u64,
    pub size_bytes: u64,
}

impl Artifact {
    /// When the build last arrived, by install or by drop: the newest build
    /// of a flow is the one that arrived last, so dropping an older build's
    /// bytes again (a reverted change) makes it the newest.
    pub fn arrived_at_ms(&self) -> u64 {
        self.installed_at_ms.max(self.dropped_at_ms)
    }

    /// The first 12 hex digits of the digest, as logs and listings show it.
    pub fn short_digest(&self) -> &str {
        &self.digest[..12.min(self.digest.len())]
    }
}

/// The store's folder on disk.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
    /// Metadata files already reported as invalid, so a rescan does not
    /// report them again.
    reported: Arc<Mutex<HashSet<PathBuf>>>,
}

/// Returns the hex sha256 of `bytes`.
pub fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl ArtifactStore {
    /// Opens the store at `root`, creating the folder when it is missing.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root.join(".compiled"))
            .with_context(|| format!("failed to create the plugin store {}", root.display()))?;
        Ok(Self {
            root: root.to_owned(),
            reported: Arc::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns every installed build, oldest first.
    pub fn list(&self) -> anyhow::Result<Vec<Artifact>> {
        let mut artifacts = Vec::new();
        for flow in read_dirs(&self.root)? {
            for version in read_dirs(&flow)? {
                let entries = std::fs::read_dir(&version)
                    .with_context(|| format!("failed to read {}", version.display()))?;
                for entry in entries {
                    let path = entry?.path();
                    if path.extension().is_none_or(|extension| extension != "json") {
                        continue;
                    }
                    // One damaged entry must not hide every other build.
                    match read_metadata(&path) {
                        Ok(artifact) => artifacts.push(artifact),
                        Err(error) => {
                            let new = self.reported.lock().expect("lock poisoned").insert(path);
                            if new {
                                warn!(
                                    error = format!("{error:#}"),
                                    "invalid entry in the plugin store skipped"
                                );
                            }
                        }
                    }
                }
            }
        }
        artifacts.sort_by(|a, b| {
            (a.installed_at_ms, &a.name, &a.digest).cmp(&(b.installed_at_ms, &b.name, &b.digest))
        });
        Ok(artifacts)
    }

    /// Finds the build whose digest is `digest` or starts with it.
    pub fn find(&self, digest: &str) -> anyhow::Result<Option<Artifact>> {
        Ok(self
            .list()?
            .into_iter()
            .find(|artifact| artifact.digest.starts_with(digest) && !digest.is_empty()))
    }

    fn component_path(&self, name: &str, version: &str, digest: &str) -> PathBuf {
        self.root
            .join(name)
            .join(version)
            .join(format!("{digest}.wasm"))
    }

    /// Reads the component of `artifact` and checks that its bytes still
    /// have the recorded digest.
    pub fn read(&self, artifact: &Artifact) -> anyhow::Result<Vec<u8>> {
        let path = self.component_path(&artifact.name, &artifact.version, &artifact.digest);
        let bytes =
            std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
        let actual = hex_digest(&bytes);
        anyhow::ensure!(
            actual == artifact.digest,
            "digest mismatch in {}: the file has sha256:{actual}",
            path.display()
        );
        Ok(bytes)
    }

    /// Stores `bytes` as a build of `name` `version` with the given state
    /// schema. Returns the stored artifact; a build already installed is
    /// returned as it was.
    pub fn add(
        &self,
        bytes: &[u8],
        name: &str,
        version: &str,
        state_schema: u32,
    ) -> anyhow::Result<Artifact> {
        let digest = hex_digest(bytes);
        if let Some(existing) = self.find(&digest)? {
            return Ok(existing);
        }
        // Name and version come from a validated manifest, so they are safe
        // as path segments; the version is checked here once more.
        anyhow::ensure!(
            !version.is_empty()
                && !version.starts_with('.')
                && version
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b".-+_".contains(&byte)),
            "flow {name}: version {version:?} cannot name a folder in the plugin store"
        );
        let artifact = Artifact {
            name: name.to_owned(),
            version: version.to_owned(),
            digest: digest.clone(),
            state_schema,
            installed_at_ms: unix_ms(),
            dropped_at_ms: 0,
            size_bytes: bytes.len() as u64,
        };
        let component = self.component_path(name, version, &digest);
        let folder = component.parent().expect("component path has a folder");
        std::fs::create_dir_all(folder)
            .with_context(|| format!("failed to create {}", folder.display()))?;
        write_atomically(&component, bytes)?;
        let metadata = serde_json::to_vec_pretty(&artifact).context("failed to encode metadata")?;
        write_atomically(&component.with_extension("json"), &metadata)?;
        // A change in the root folder itself notifies a watching host that a
        // build was installed, since the watch does not reach subfolders.
        write_atomically(&self.root.join(".installed"), artifact.digest.as_bytes())?;
        Ok(artifact)
    }

    /// Records that the bytes of `artifact` were written to the drop folder
    /// again, which makes it the flow's newest build.
    pub fn mark_dropped(&self, artifact: &Artifact) -> anyhow::Result<Artifact> {
        let mut artifact = artifact.clone();
        artifact.dropped_at_ms = unix_ms();
        let component = self.component_path(&artifact.name, &artifact.version, &artifact.digest);
        let metadata = serde_json::to_vec_pretty(&artifact).context("failed to encode metadata")?;
        write_atomically(&component.with_extension("json"), &metadata)?;
        write_atomically(&self.root.join(".installed"), artifact.digest.as_bytes())?;
        Ok(artifact)
    }

    /// Path of the compiled code of `digest` for an engine whose
    /// compatibility hash is `engine_hash`.
    pub fn compiled_path(&self, digest: &str, engine_hash: &str) -> PathBuf {
        self.root
            .join(".compiled")
            .join(format!("{digest}-{engine_hash}.cwasm"))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and
/// a rename, so readers see the old file or the whole new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and call, so two writers of one path never share
    // a temporary file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temporary = path.with_file_name(format!(".{name}.{}-{unique}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("failed to write {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("failed to move {} into place", path.display()))
}

/// Subfolders of `dir` whose names do not start with a dot.
fn read_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

fn read_metadata(path: &Path) -> anyhow::Result<Artifact> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("invalid metadata in {}", path.display()))
}

fn unix_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(label: &str) -> ArtifactStore {
        let dir =
            std::env::temp_dir().join(format!("flowbot-store-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        ArtifactStore::open(&dir).unwrap()
    }

    #[test]
    fn installing_keeps_every_version() {
        let store = temp_store("versions");
        let first = store.add(b"build one", "workouts", "0.1.0", 1).unwrap();
        let second = store.add(b"build two", "workouts", "0.2.0", 1).unwrap();
        let rebuilt = store.add(b"build three", "workouts", "0.2.0", 1).unwrap();

        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(store.read(&first).unwrap(), b"build one");
        assert_eq!(store.read(&second).unwrap(), b"build two");
        assert_eq!(store.read(&rebuilt).unwrap(), b"build three");
        std::fs::remove_dir_all(store.root()).unwrap();
    }

    #[test]
    fn installing_the_same_bytes_twice_keeps_one() {
        let store = temp_store("twice");
        let first = store.add(b"same", "workouts", "0.1.0", 1).unwrap();
        let again = store.add(b"same", "workouts", "0.1.0", 1).unwrap();
        assert_eq!(first, again);
        assert_eq!(store.list().unwrap().len(), 1);
        std::fs::remove_dir_all(store.root()).unwrap();
    }

    #[test]
    fn damaged_entry_hides_no_other_build() {
        let store = temp_store("damaged");
        let good = store.add(b"good", "workouts", "0.1.0", 1).unwrap();
        let bad = store.add(b"bad", "workouts", "0.2.0", 1).unwrap();
        let metadata = store
            .component_path("workouts", "0.2.0", &bad.digest)
            .with_extension("json");
        std::fs::write(metadata, b"{ truncated").unwrap();
        assert_eq!(store.list().unwrap(), vec![good]);
        std::fs::remove_dir_all(store.root()).unwrap();
    }

    #[test]
    fn dropping_old_bytes_again_makes_them_newest() {
        let store = temp_store("dropped");
        let old = store.add(b"old", "workouts", "0.1.0", 1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let new = store.add(b"new", "workouts", "0.1.0", 1).unwrap();
        assert!(new.arrived_at_ms() > old.arrived_at_ms());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let again = store.mark_dropped(&old).unwrap();
        assert!(again.arrived_at_ms() > new.arrived_at_ms());
        assert_eq!(store.find(&old.digest).unwrap(), Some(again));
        std::fs::remove_dir_all(store.root()).unwrap();
    }

    #[test]
    fn find_accepts_a_digest_prefix() {
        let store = temp_store("find");
        let artifact = store.add(b"build", "exercises", "1.0.0", 2).unwrap();
        assert_eq!(store.find(&artifact.digest[..10]).unwrap(), Some(artifact));
        assert_eq!(store.find("0000000000").unwrap(), None);
        assert_eq!(store.find("").unwrap(), None);
        std::fs::remove_dir_all(store.root()).unwrap();
    }

    #[test]
    fn tampered_file_fails_its_digest_check() {
        let store = temp_store("tampered");
        let artifact = store.add(b"original", "workouts", "0.1.0", 1).unwrap();
        let path = store.component_path("workouts", "0.1.0", &artifact.digest);
        std::fs::write(&path, b"changed").unwrap();
        let error = store.read(&artifact).unwrap_err().to_string();
        assert!(error.contains("digest mismatch"), "{error}");
        std::fs::remove_dir_all(store.root()).unwrap();
    }

    #[test]
    fn version_that_escapes_its_folder_is_rejected() {
        let store = temp_store("escape");
        assert!(store.add(b"x", "workouts", "../../etc", 1).is_err());
        assert!(store.add(b"y", "workouts", "", 1).is_err());
        std::fs::remove_dir_all(store.root()).unwrap();
    }
}
