//! The operator's command line, `flowbot flows ...`: list, install, pin,
//! roll back and canary flow builds. The commands work on the plugin store
//! and the pin files; a running host watches both and applies a change
//! without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::config::Config;
use crate::registry::pins::{self, CanaryPin, Pin, PinFile};
use crate::registry::{Artifact, ArtifactStore, install_into};
use crate::runtime::Runtime;

#[derive(Debug, Subcommand)]
pub enum FlowsCommand {
    /// List installed builds, the environments that pin them, and what the
    /// running host serves.
    List,
    /// Validate a component (compile, link, manifest) and install it into
    /// the plugin store; an installed build is never overwritten.
    Install { file: PathBuf },
    /// Pin FLOW to VERSION in an environment.
    Pin {
        /// Flow name, as in its manifest.
        flow: String,
        /// Version of an installed build, as `flows list` shows it.
        version: String,
        /// Environment whose pin file changes (dev, staging, prod, ...).
        #[arg(long = "env", env = "FLOWBOT_ENV")]
        environment: String,
        /// Digest (or its first digits) when VERSION has several builds.
        #[arg(long)]
        digest: Option<String>,
    },
    /// Put FLOW back on the build it was pinned to before.
    Rollback {
        /// Flow name, as in its manifest.
        flow: String,
        /// Environment whose pin file changes.
        #[arg(long = "env", env = "FLOWBOT_ENV")]
        environment: String,
    },
    /// Send a share of the users of FLOW to a candidate VERSION, or stop the
    /// canary with --stop.
    Canary {
        /// Flow name, as in its manifest.
        flow: String,
        /// Version of the installed candidate build.
        version: Option<String>,
        /// Environment whose pin file changes.
        #[arg(long = "env", env = "FLOWBOT_ENV")]
        environment: String,
        /// Share of users, 1 to 99, that get the candidate.
        #[arg(long, default_value_t = 10)]
        percent: u8,
        /// Digest (or its first digits) when VERSION has several builds.
        #[arg(long)]
        digest: Option<String>,
        /// Remove the canary, so everyone gets the pinned build.
        #[arg(long, conflicts_with = "version")]
        stop: bool,
    },
}

/// Runs one `flowbot flows` command.
pub async fn run(command: FlowsCommand, config: &Config) -> anyhow::Result<()> {
    let store = ArtifactStore::open(&config.flows.store_dir())?;
    let environments = &config.flows.environments;
    match command {
        FlowsCommand::List => list(&store, config).await,
        FlowsCommand::Install { file } => install(&file, config).await,
        FlowsCommand::Pin {
            flow,
            version,
            environment,
            digest,
        } => {
            let artifact = find_build(&store, &flow, &version, digest.as_deref())?;
            let pin = Pin::new(&artifact.version, &artifact.digest);
            let previous = PinFile::update(environments, &environment, |file| {
                Ok(file.pin(&flow, pin.clone()))
            })?;
            print_change(&flow, &environment, previous.as_ref(), &pin);
            Ok(())
        }
        FlowsCommand::Rollback { flow, environment } => {
            let (current, restored, canary) =
                PinFile::update(environments, &environment, |file| {
                    let current = file.flows.get(&flow).cloned();
                    let restored = file.rollback(&flow)?;
                    Ok((current, restored, file.canary.get(&flow).cloned()))
                })?;
            print_change(&flow, &environment, current.as_ref(), &restored);
            if let Some(canary) = canary {
                println!(
                    "note: the canary {} {} ({}% of users) is still active; \
                     stop it with `flowbot flows canary {flow} --stop --env {environment}`",
                    canary.version,
                    short(canary.hex_digest()),
                    canary.percent
                );
            }
            Ok(())
        }
        FlowsCommand::Canary {
            flow,
            version,
            environment,
            percent,
            digest,
            stop,
        } => {
            if stop {
                PinFile::update(environments, &environment, |file| {
                    if file.canary.remove(&flow).is_none() {
                        bail!("{flow} has no canary in {environment}");
                    }
                    Ok(())
                })?;
                println!("{flow} in {environment}: canary stopped");
                return Ok(());
            }
            let Some(version) = version else {
                bail!("give the candidate VERSION, or --stop to end the canary");
            };
            let artifact = find_build(&store, &flow, &version, digest.as_deref())?;
            PinFile::update(environments, &environment, |file| {
                if !file.flows.contains_key(&flow) && !file.follow_newest {
                    bail!("pin {flow} in {environment} before starting a canary beside it");
                }
                if file
                    .flows
                    .get(&flow)
                    .is_some_and(|pin| pin.hex_digest() == artifact.digest)
                {
                    bail!("{flow} {version} is the pinned build in {environment} already");
                }
                let canary = CanaryPin {
                    version: artifact.version.clone(),
                    digest: format!("sha256:{}", artifact.digest),
                    percent,
                };
                file.canary.insert(flow.clone(), canary);
                Ok(())
            })?;
            println!(
                "{flow} in {environment}: {percent}% of users get {} {}",
                artifact.version,
                artifact.short_digest()
            );
            Ok(())
        }
    }
}

/// Prints a pin change as `<flow> in <env>: <before> -> <after>`.
fn print_change(flow: &str, environment: &str, before: Option<&Pin>, after: &Pin) {
    let describe = |pin: &Pin| format!("{} {}", pin.version, short(pin.hex_digest()));
    let before = before
        .map(describe)
        .unwrap_or_else(|| "unpinned".to_owned());
    println!("{flow} in {environment}: {before} -> {}", describe(after));
}

/// Finds the one installed build of `flow` `version`, narrowed by `digest`.
fn find_build(
    store: &ArtifactStore,
    flow: &str,
    version: &str,
    digest: Option<&str>,
) -> anyhow::Result<Artifact> {
    let digest = digest.map(pins::strip_digest_prefix);
    let matches: Vec<Artifact> = store
        .list()?
        .into_iter()
        .filter(|artifact| artifact.name == flow && artifact.version == version)
        .filter(|artifact| digest.is_none_or(|digest| artifact.digest.starts_with(digest)))
        .collect();
    match matches.as_slice() {
        [] => bail!(
            "no installed build of {flow} {version}{}: install it with `flowbot flows install FILE`",
            digest
                .map(|digest| format!(" with digest {digest}"))
                .unwrap_or_default()
        ),
        [one] => Ok(one.clone()),
        several => {
            let digests: Vec<&str> = several.iter().map(Artifact::short_digest).collect();
            bail!(
                "{flow} {version} has {} builds ({}): choose one with --digest",
                several.len(),
                digests.join(", ")
            )
        }
    }
}

async fn install(file: &Path, config: &Config) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(file).with_context(|| format!("failed to read {}", file.display()))?;
    // One instance at a time: the manifest call of the build being installed.
    let runtime = Arc::new(Runtime::new(config.limits.clone(), 2)?);
    let store = ArtifactStore::open(&config.flows.store_dir())?;
    let (artifact, _) = install_into(&runtime, &store, bytes)
        .await
        .with_context(|| format!("{} rejected", file.display()))?;
    println!(
        "installed {} {} sha256:{}",
        artifact.name, artifact.version, artifact.digest
    );
    Ok(())
}

async fn list(store: &ArtifactStore, config: &Config) -> anyhow::Result<()> {
    let environments = pin_files(&config.flows.environments)?;
    let serving = match fetch_status(config).await {
        Ok(status) => Some(status),
        Err(error) => {
            println!("running host: not reachable ({error:#})\n");
            None
        }
    };
    if let Some(status) = &serving {
        let environment = status["environment"].as_str().unwrap_or("?");
        println!("running host: environment {environment}\n");
    }

    println!(
        "{:<16} {:<12} {:<14} {:<18} {:<24} SERVING",
        "FLOW", "VERSION", "DIGEST", "INSTALLED (UTC)", "PINNED IN"
    );
    for artifact in store.list()? {
        let mut pinned_in = Vec::new();
        for (environment, file) in &environments {
            // A host rejects a pin whose version and digest name different
            // builds, so the list must not show such a pin as in effect.
            if let Some(pin) = file.flows.get(&artifact.name)
                && pin.hex_digest() == artifact.digest
            {
                if pin.version == artifact.version {
                    pinned_in.push(environment.clone());
                } else {
                    pinned_in.push(format!("{environment} (invalid: pin says {})", pin.version));
                }
            }
            if let Some(canary) = file.canary.get(&artifact.name)
                && canary.hex_digest() == artifact.digest
            {
                if canary.version == artifact.version {
                    pinned_in.push(format!("{environment} (canary {}%)", canary.percent));
                } else {
                    let claimed = &canary.version;
                    pinned_in.push(format!("{environment} (invalid canary: says {claimed})"));
                }
            }
        }
        let serving = serving
            .as_ref()
            .map(|status| serving_role(status, &artifact))
            .unwrap_or_default();
        println!(
            "{:<16} {:<12} {:<14} {:<18} {:<24} {serving}",
            artifact.name,
            artifact.version,
            artifact.short_digest(),
            format_utc(artifact.installed_at_ms),
            if pinned_in.is_empty() {
                "-".to_owned()
            } else {
                pinned_in.join(", ")
            },
        );
    }
    if let Some(status) = &serving
        && let Some(errors) = status["errors"].as_object()
        && !errors.is_empty()
    {
        println!("\nrejected by the running host:");
        for (subject, reason) in errors {
            println!("  {subject}: {}", reason.as_str().unwrap_or_default());
        }
    }
    Ok(())
}

/// Describes how the running host uses `artifact`: serving, canary, loaded or not at all.
fn serving_role(status: &serde_json::Value, artifact: &Artifact) -> String {
    let flow = &status["flows"][&artifact.name];
    if flow["stable"]["digest"] == artifact.digest.as_str() {
        return "serving".to_owned();
    }
    if flow["canary"]["build"]["digest"] == artifact.digest.as_str() {
        return format!("canary {}%", flow["canary"]["percent"]);
    }
    let loaded = status["loaded"].as_array().is_some_and(|loaded| {
        loaded
            .iter()
            .any(|build| build["digest"] == artifact.digest.as_str())
    });
    if loaded {
        "loaded".to_owned()
    } else {
        String::new()
    }
}

/// Reads every pin file in `dir`, by environment name.
fn pin_files(dir: &Path) -> anyhow::Result<Vec<(String, PinFile)>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(environment) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".toml"))
            .filter(|name| !name.starts_with('.'))
        else {
            continue;
        };
        // One broken file must not hide the others, least of all now.
        match PinFile::load(dir, environment) {
            Ok(file) => files.push((environment.to_owned(), file)),
            Err(error) => println!("pin file of {environment} not read: {error:#}\n"),
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Fetches `/flows` from the running host at `[metrics] listen`.
async fn fetch_status(config: &Config) -> anyhow::Result<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(address) = config.metrics.address()? else {
        bail!("metrics.listen is empty, so the host serves no /flows");
    };
    let connect = tokio::net::TcpStream::connect(address);
    let mut stream = tokio::time::timeout(std::time::Duration::from_secs(2), connect)
        .await
        .with_context(|| format!("timed out connecting to {address}"))?
        .with_context(|| format!("failed to connect to {address}"))?;
    let request = format!("GET /flows HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    let read = stream.read_to_string(&mut response);
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .context("timed out reading /flows")??;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .context("invalid HTTP response from /flows")?;
    serde_json::from_str(body).context("invalid JSON from /flows")
}

fn short(digest: &str) -> &str {
    &digest[..12.min(digest.len())]
}

/// Formats Unix milliseconds as `YYYY-MM-DD HH:MM` in UTC.
fn format_utc(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01, after Howard Hinnant's
    // `civil_from_days` (https://howardhinnant.github.io/date_algorithms.html).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        time / 3600,
        time % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_utc_gives_calendar_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00");
        // 2026-12-04 18:09:56 UTC.
        assert_eq!(format_utc(1_796_407_796_000), "2026-12-04 18:09");
        // 2024-02-29 12:00 UTC, a leap day.
        assert_eq!(format_utc(1_709_208_000_000), "2024-02-29 12:00");
    }
}
