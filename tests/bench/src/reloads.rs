//! Reloads during the load, by the two paths a host takes to a new build.
//!
//! - A developer's path: a new workouts build is written to the drop folder,
//!   and the host compiles it.
//! - An operator's path: builds are installed with `flowbot flows install`
//!   before the load, which compiles them into the plugin store's cache,
//!   and the load then pins one after another with `flowbot flows pin`.
//!
//! Every build is the original with a custom section that numbers it, so it
//! has a digest of its own and behaves the same.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
pub use flowbot_test_builds::hex_sha256;
use flowbot_test_builds::{drop_build, with_custom_section};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How the host's `flowbot flows` commands reach its configuration and
/// plugin store.
#[derive(Debug, Clone)]
pub struct Operator {
    pub host_binary: PathBuf,
    pub config: PathBuf,
    pub drop_dir: PathBuf,
}

impl Operator {
    /// Runs `flowbot flows ARGS` and returns what it printed.
    pub async fn flows(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = tokio::process::Command::new(&self.host_binary)
            .arg("--config")
            .arg(&self.config)
            .arg("flows")
            .args(args)
            .env("FLOWBOT_FLOWS_DIR", &self.drop_dir)
            .output()
            .await
            .context("failed to run flowbot flows")?;
        if !output.status.success() {
            bail!(
                "flowbot flows {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Installs `file`, which compiles it into the plugin store's cache.
    pub async fn install(&self, file: &Path) -> anyhow::Result<()> {
        let file = file.to_str().context("build path is not UTF-8")?;
        self.flows(&["install", file]).await.map(drop)
    }
}

/// Returns `original` with a custom section named `flowbot-bench-build`
/// that contains `number`.
pub fn numbered(original: &[u8], number: usize) -> Vec<u8> {
    with_custom_section(original, "flowbot-bench-build", &number.to_string())
}

/// Writes a new workouts build to `drop_dir` every `interval` until `stop`,
/// and returns how many it wrote.
fn spawn_build_writer(
    drop_dir: PathBuf,
    interval: Duration,
    stop: CancellationToken,
) -> JoinHandle<anyhow::Result<usize>> {
    tokio::spawn(async move {
        let original = std::fs::read(drop_dir.join("workouts.wasm"))?;
        let mut written = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(written),
                _ = tokio::time::sleep(interval) => {}
            }
            written += 1;
            drop_build(&drop_dir, "workouts.wasm", &numbered(&original, written))?;
        }
    })
}

/// What reloads a run makes during its load.
pub enum ReloadPlan {
    None,
    /// A new build in the drop folder every interval.
    Builds {
        drop_dir: PathBuf,
        interval: Duration,
    },
    /// A pin change to another installed build every interval.
    Pins {
        operator: Operator,
        installed: Installed,
        interval: Duration,
    },
}

impl ReloadPlan {
    /// Starts the reloads; the task returns how many it made once `stop`
    /// is cancelled.
    pub fn spawn(self, stop: CancellationToken) -> Option<JoinHandle<anyhow::Result<usize>>> {
        match self {
            ReloadPlan::None => None,
            ReloadPlan::Builds { drop_dir, interval } => {
                Some(spawn_build_writer(drop_dir, interval, stop))
            }
            ReloadPlan::Pins {
                operator,
                installed,
                interval,
            } => Some(spawn_pinner(operator, installed, interval, stop)),
        }
    }
}

/// Builds installed for [`spawn_pinner`], by digest.
pub struct Installed {
    version: String,
    digests: Vec<String>,
}

/// Installs `count` numbered workouts builds through `operator`.
pub async fn install_builds(
    operator: &Operator,
    work_dir: &Path,
    count: usize,
) -> anyhow::Result<Installed> {
    let original = std::fs::read(operator.drop_dir.join("workouts.wasm"))?;
    let mut digests = Vec::with_capacity(count);
    let mut version = String::new();
    for number in 1..=count {
        let build = numbered(&original, 1000 + number);
        let file = work_dir.join(format!("workouts-{number}.wasm"));
        std::fs::write(&file, &build)?;
        let file = file.to_str().context("build path is not UTF-8")?;
        // "installed workouts 0.1.0 sha256:..."
        let printed = operator.flows(&["install", file]).await?;
        version = printed
            .split_whitespace()
            .nth(2)
            .with_context(|| format!("unexpected output of flows install: {printed:?}"))?
            .to_owned();
        digests.push(hex_sha256(&build));
    }
    Ok(Installed { version, digests })
}

/// Pins the next of `installed` in the dev environment every `interval`
/// until `stop`, and returns how many pins it changed. After the last build
/// it starts again at the first, which the host then still has in memory.
fn spawn_pinner(
    operator: Operator,
    installed: Installed,
    interval: Duration,
    stop: CancellationToken,
) -> JoinHandle<anyhow::Result<usize>> {
    tokio::spawn(async move {
        let mut changed = 0;
        for digest in installed.digests.iter().cycle() {
            tokio::select! {
                _ = stop.cancelled() => return Ok(changed),
                _ = tokio::time::sleep(interval) => {}
            }
            let pin = [
                "pin",
                "workouts",
                &installed.version,
                "--digest",
                digest,
                "--env",
                "dev",
            ];
            operator.flows(&pin).await?;
            changed += 1;
        }
        Ok(changed)
    })
}
