//! Environments: one pin file per environment (`<environments>/<name>.toml`)
//! maps each flow to the exact version and digest that runs there.
//!
//! ```toml
//! follow_newest = false        # true: flows without a pin run their newest build
//!
//! [flows]
//! workouts = { version = "0.2.0", digest = "sha256:3f1c..." }
//!
//! [canary]
//! workouts = { version = "0.3.0", digest = "sha256:9ab0...", percent = 10 }
//!
//! [history]                    # earlier pins, newest last; used by rollback
//! workouts = [{ version = "0.1.0", digest = "sha256:77e2..." }]
//! ```
//!
//! The `dev` environment needs no file: without one it follows the newest
//! build of every flow. Every other environment must have its file. The
//! `flowbot flows` commands rewrite the file through a temporary file and a
//! rename, so a host watching the folder never reads half a file; comments
//! in a file they rewrite are not kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::artifacts::write_atomically;

/// The environment that follows the newest builds when it has no pin file.
pub const DEV_ENVIRONMENT: &str = "dev";
/// Earlier pins kept per flow for `flowbot flows rollback`.
const HISTORY_LENGTH: usize = 20;

/// One environment's pin file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinFile {
    /// Runs the newest installed build of every flow that has no pin.
    #[serde(default)]
    pub follow_newest: bool,
    #[serde(default)]
    pub flows: BTreeMap<String, Pin>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub canary: BTreeMap<String, CanaryPin>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub history: BTreeMap<String, Vec<Pin>>,
}

/// An exact build of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub version: String,
    /// `sha256:` and the hex sha256 of the component file.
    pub digest: String,
}

/// A candidate build that serves a share of new conversations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryPin {
    pub version: String,
    pub digest: String,
    /// Share of users, 1 to 99, whose new conversations go to the candidate.
    pub percent: u8,
}

impl Pin {
    pub fn new(version: &str, hex_digest: &str) -> Self {
        Self {
            version: version.to_owned(),
            digest: format!("sha256:{hex_digest}"),
        }
    }

    /// Returns the digest as bare hex, as the artifact store names files.
    pub fn hex_digest(&self) -> &str {
        strip_digest_prefix(&self.digest)
    }
}

impl CanaryPin {
    pub fn hex_digest(&self) -> &str {
        strip_digest_prefix(&self.digest)
    }
}

/// Removes the optional `sha256:` prefix of a digest.
pub fn strip_digest_prefix(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Checks that `name` can name a pin file: 1-32 of `a-z`, `0-9`, `-`, `_`.
pub fn validate_environment_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_".contains(&byte)
        });
    if !valid {
        bail!("invalid environment name {name:?}: use 1-32 of a-z, 0-9, '-' and '_'");
    }
    Ok(())
}

/// The pin file of environment `name` in `dir`.
pub fn pin_file_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.toml"))
}

impl PinFile {
    /// Reads the pin file of environment `name`. The dev environment without
    /// a file follows the newest builds; any other environment needs one.
    pub fn load(dir: &Path, name: &str) -> anyhow::Result<Self> {
        validate_environment_name(name)?;
        let path = pin_file_path(dir, name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if name == DEV_ENVIRONMENT {
                    return Ok(Self {
                        follow_newest: true,
                        ..Self::default()
                    });
                }
                bail!(
                    "pin file {} not found: create it with `flowbot flows pin FLOW VERSION --env {name}`",
                    path.display()
                );
            }
            Err(error) => {
                return Err(error).with_context(|| format!("failed to read {}", path.display()));
            }
        };
        let file: Self = toml::from_str(&text)
            .with_context(|| format!("invalid pin file {}", path.display()))?;
        file.validate()
            .with_context(|| format!("invalid pin file {}", path.display()))?;
        Ok(file)
    }

    /// Writes the pin file of environment `name` through a temporary file
    /// and a rename.
    pub fn save(&self, dir: &Path, name: &str) -> anyhow::Result<()> {
        validate_environment_name(name)?;
        self.validate()?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let body = toml::to_string_pretty(self).context("failed to encode the pin file")?;
        let text = format!(
            "# Flow versions of the {name} environment, written by `flowbot flows`.\n\n{body}"
        );
        write_atomically(&pin_file_path(dir, name), text.as_bytes())
    }

    /// Reads the pin file of environment `name` (empty when there is none),
    /// applies `change` and writes it back, holding a lock on
    /// `.<name>.lock` throughout, so commands run at the same time cannot
    /// lose each other's changes. Returns what `change` returned.
    pub fn update<T>(
        dir: &Path,
        name: &str,
        change: impl FnOnce(&mut PinFile) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        validate_environment_name(name)?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let lock_path = dir.join(format!(".{name}.lock"));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("failed to open {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("failed to lock {}", lock_path.display()))?;

        let mut file = if pin_file_path(dir, name).exists() {
            Self::load(dir, name)?
        } else {
            Self {
                follow_newest: name == DEV_ENVIRONMENT,
                ..Self::default()
            }
        };
        let result = change(&mut file)?;
        file.save(dir, name)?;
        // The lock is released when `lock` is dropped here.
        Ok(result)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let pins = self.flows.iter().map(|(flow, pin)| (flow, &pin.digest));
        let canaries = self.canary.iter().map(|(flow, pin)| (flow, &pin.digest));
        for (flow, digest) in pins.chain(canaries) {
            let hex = strip_digest_prefix(digest);
            let lower_hex = |byte: u8| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
            if hex.len() != 64 || !hex.bytes().all(lower_hex) {
                bail!("flow {flow}: digest {digest:?} is not sha256: and 64 lowercase hex digits");
            }
        }
        for (flow, canary) in &self.canary {
            if !(1..=99).contains(&canary.percent) {
                bail!(
                    "canary of {flow}: percent {} must be from 1 to 99",
                    canary.percent
                );
            }
        }
        Ok(())
    }

    /// Pins `flow` to `pin`, keeping the previous pin in the history, and
    /// ends a canary of the same build, which is then promoted. Returns the
    /// previous pin, if there was one.
    pub fn pin(&mut self, flow: &str, pin: Pin) -> Option<Pin> {
        if self
            .canary
            .get(flow)
            .is_some_and(|canary| canary.hex_digest() == pin.hex_digest())
        {
            self.canary.remove(flow);
        }
        let previous = self.flows.insert(flow.to_owned(), pin.clone());
        if let Some(previous) = &previous
            && *previous != pin
        {
            let history = self.history.entry(flow.to_owned()).or_default();
            history.push(previous.clone());
            let excess = history.len().saturating_sub(HISTORY_LENGTH);
            history.drain(..excess);
        }
        previous
    }

    /// Puts `flow` back on the pin before the current one and returns it.
    pub fn rollback(&mut self, flow: &str) -> anyhow::Result<Pin> {
        if !self.flows.contains_key(flow) {
            bail!("flow {flow} is not pinned in this environment");
        }
        let Some(previous) = self.history.get_mut(flow).and_then(Vec::pop) else {
            bail!("flow {flow} has no earlier pin to roll back to");
        };
        if self.history.get(flow).is_some_and(Vec::is_empty) {
            self.history.remove(flow);
        }
        self.flows.insert(flow.to_owned(), previous.clone());
        Ok(previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const DIGEST_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flowbot-pins-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn dev_without_file_follows_newest() {
        let dir = temp_dir("dev");
        let file = PinFile::load(&dir, DEV_ENVIRONMENT).unwrap();
        assert!(file.follow_newest);
        assert!(file.flows.is_empty());
    }

    #[test]
    fn other_environment_needs_a_file() {
        let dir = temp_dir("prod");
        let error = PinFile::load(&dir, "prod").unwrap_err().to_string();
        assert!(error.contains("prod.toml not found"), "{error}");
    }

    #[test]
    fn pin_then_rollback_restores_previous() {
        let dir = temp_dir("rollback");
        let mut file = PinFile::default();
        assert_eq!(file.pin("workouts", Pin::new("0.1.0", DIGEST_A)), None);
        file.pin("workouts", Pin::new("0.2.0", DIGEST_B));
        file.save(&dir, "staging").unwrap();

        let mut file = PinFile::load(&dir, "staging").unwrap();
        assert_eq!(file.flows["workouts"].version, "0.2.0");
        let restored = file.rollback("workouts").unwrap();
        assert_eq!(restored, Pin::new("0.1.0", DIGEST_A));
        assert_eq!(file.flows["workouts"], restored);
        assert!(file.rollback("workouts").is_err(), "history is used up");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pinning_the_canary_build_ends_the_canary() {
        let mut file = PinFile::default();
        file.pin("workouts", Pin::new("0.1.0", DIGEST_A));
        file.canary.insert(
            "workouts".to_owned(),
            CanaryPin {
                version: "0.2.0".to_owned(),
                digest: format!("sha256:{DIGEST_B}"),
                percent: 20,
            },
        );
        file.pin("workouts", Pin::new("0.2.0", DIGEST_B));
        assert!(file.canary.is_empty());
    }

    #[test]
    fn updates_at_once_keep_every_change() {
        let dir = temp_dir("update");
        let flows: Vec<String> = (0..8).map(|index| format!("flow{index}")).collect();
        std::thread::scope(|scope| {
            for flow in &flows {
                let dir = &dir;
                scope.spawn(move || {
                    PinFile::update(dir, "staging", |file| {
                        file.pin(flow, Pin::new("1.0.0", DIGEST_A));
                        Ok(())
                    })
                    .unwrap();
                });
            }
        });
        let file = PinFile::load(&dir, "staging").unwrap();
        assert_eq!(file.flows.len(), flows.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pinning_the_same_build_adds_no_history() {
        let mut file = PinFile::default();
        file.pin("workouts", Pin::new("0.1.0", DIGEST_A));
        file.pin("workouts", Pin::new("0.1.0", DIGEST_A));
        assert!(file.history.is_empty());
    }

    #[test]
    fn invalid_files_are_rejected_with_the_reason() {
        let cases = [
            (
                "[flows]\nworkouts = { version = \"1\", digest = \"sha256:12\" }\n",
                "64 lowercase hex",
            ),
            (
                &format!(
                    "[flows]\nworkouts = {{ version = \"1\", digest = \"{}\" }}\n",
                    DIGEST_A.to_uppercase()
                ),
                "64 lowercase hex",
            ),
            (
                "[flows]\nworkouts = { version = \"1\" }\n",
                "missing field `digest`",
            ),
            ("colour = \"blue\"\n", "unknown field `colour`"),
            (
                &format!(
                    "[canary]\nworkouts = {{ version = \"1\", digest = \"{DIGEST_A}\", percent = 100 }}\n"
                ),
                "from 1 to 99",
            ),
        ];
        for (index, (text, expected)) in cases.iter().enumerate() {
            let dir = temp_dir(&format!("invalid-{index}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("prod.toml"), text).unwrap();
            let error = format!("{:#}", PinFile::load(&dir, "prod").unwrap_err());
            assert!(error.contains(expected), "{text}: {error}");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn environment_names_are_checked() {
        assert!(validate_environment_name("prod").is_ok());
        assert!(validate_environment_name("eu-west_2").is_ok());
        assert!(validate_environment_name("../prod").is_err());
        assert!(validate_environment_name("").is_err());
        assert!(validate_environment_name("Prod").is_err());
    }
}
