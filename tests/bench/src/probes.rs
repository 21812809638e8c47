//! Probes that run after the load, against the same host: the cost of one
//! flow call from the host's own counters, the time from a new build being
//! written to the first reply it serves (compiled fresh, and loaded from
//! the compiled cache), and the time from a flow's deadline to the user's
//! apology.
//!
//! The host serves the test flows `tally`, whose replies name its version,
//! and `hostile`, whose `/spin` never returns, from a drop folder of the
//! run's own, so the builds written here never reach `target/flows`.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use botapi_sim::{SimUser, Simulator};
use serde_json::{Value, json};
use tokio::time::Instant;

use flowbot_test_builds::{drop_build, patch_bytes};

use crate::host_metrics::{counter_sum, fetch};
use crate::reloads::{Operator, hex_sha256};
use crate::report::{Latency, format_duration};

/// Version string of the plain tally build; probes patch it in place.
const TALLY_VERSION: &str = "1.0.0-r00";
/// Deadline given to the hostile flow, in milliseconds.
pub const SPIN_DEADLINE_MS: u64 = 200;
/// Maximum wait for one probe's reply.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// First user id of the probes, far from the load's users.
const FIRST_PROBE_USER: i64 = 50_000_000;

/// What the probes measured.
pub struct ProbeReport {
    /// Mean wall-clock and CPU time of one instantiate-and-call, from the
    /// host's counters over the whole run.
    pub call_wall: Option<Duration>,
    pub call_cpu: Option<Duration>,
    pub calls: u64,
    pub reload_cold: Vec<Duration>,
    pub reload_warm: Vec<Duration>,
    pub deadline_overshoot: Vec<Duration>,
}

/// Where the probes write builds and pins, and how they reach the host.
pub struct ProbeSetup<'a> {
    pub sim: &'a Simulator,
    pub operator: &'a Operator,
    pub environments_dir: &'a Path,
    pub metrics_address: &'a str,
    pub tally: Vec<u8>,
}

/// Runs `rounds` of each probe.
pub async fn run(setup: &ProbeSetup<'_>, rounds: usize) -> anyhow::Result<ProbeReport> {
    let mut next_user = FIRST_PROBE_USER;
    let mut reload_cold = Vec::new();
    for round in 1..=rounds {
        let version = format!("1.0.0-c{round:02}");
        let build = patch(&setup.tally, &version)?;
        let written = write_build(&setup.operator.drop_dir, "tally.wasm", &build)?;
        reload_cold.push(first_reply_from(setup.sim, &mut next_user, &version, written).await?);
    }

    let mut reload_warm = Vec::new();
    for round in 1..=rounds {
        let version = format!("1.0.0-w{round:02}");
        let build = patch(&setup.tally, &version)?;
        let file = setup.environments_dir.join(format!(".probe-{round}.wasm"));
        std::fs::write(&file, &build)?;
        setup.operator.install(&file).await?;
        let pin = format!(
            "follow_newest = true\n[flows]\ntally = {{ version = \"{version}\", digest = \"sha256:{}\" }}\n",
            hex_sha256(&build)
        );
        let written = write_build(setup.environments_dir, "dev.toml", pin.as_bytes())?;
        reload_warm.push(first_reply_from(setup.sim, &mut next_user, &version, written).await?);
    }

    let mut deadline_overshoot = Vec::new();
    let deadline = Duration::from_millis(SPIN_DEADLINE_MS);
    for _ in 0..rounds {
        let user = SimUser::new(next_user, "Spinner");
        next_user += 1;
        let sent = Instant::now();
        setup.sim.send_text(&user, "/spin");
        setup
            .sim
            .wait_for_messages(user.id, 1, PROBE_TIMEOUT)
            .await?;
        deadline_overshoot.push(sent.elapsed().saturating_sub(deadline));
    }

    let metrics = fetch(setup.metrics_address, "/metrics").await?;
    let calls = counter_sum(&metrics, "flowbot_flow_calls_total");
    let mean = |name: &str| {
        (calls > 0.0).then(|| Duration::from_secs_f64(counter_sum(&metrics, name) / calls))
    };
    Ok(ProbeReport {
        call_wall: mean("flowbot_flow_call_seconds_total"),
        call_cpu: mean("flowbot_flow_cpu_seconds_total"),
        calls: calls as u64,
        reload_cold,
        reload_warm,
        deadline_overshoot,
    })
}

/// Runs tally dialogs of fresh users until one is answered by `version`;
/// returns the time from `written` to that reply.
async fn first_reply_from(
    sim: &Simulator,
    next_user: &mut i64,
    version: &str,
    written: Instant,
) -> anyhow::Result<Duration> {
    loop {
        let user = SimUser::new(*next_user, "Probe");
        *next_user += 1;
        sim.send_text(&user, "/tally");
        let messages = sim.wait_for_messages(user.id, 1, PROBE_TIMEOUT).await?;
        let replied = Instant::now();
        sim.send_text(&user, "/done");
        sim.wait_for_messages(user.id, 2, PROBE_TIMEOUT).await?;
        if messages[0].text.starts_with(version) {
            return Ok(replied - written);
        }
        if written.elapsed() > PROBE_TIMEOUT {
            bail!("{version} not served within {PROBE_TIMEOUT:?}");
        }
    }
}

/// Returns the tally build with its version replaced by `version`.
fn patch(tally: &[u8], version: &str) -> anyhow::Result<Vec<u8>> {
    patch_bytes(tally, TALLY_VERSION, version)
}

/// Drops `bytes` into `dir` as `name` and returns when the rename happened.
fn write_build(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<Instant> {
    drop_build(dir, name, bytes)?;
    Ok(Instant::now())
}

impl ProbeReport {
    pub fn to_text(&self) -> String {
        let show = |samples: &[Duration]| match Latency::of(samples.to_vec()) {
            Some(latency) => format!(
                "p50 {} / max {} over {}",
                format_duration(latency.p50),
                format_duration(latency.max),
                samples.len()
            ),
            None => "no samples".to_owned(),
        };
        let mean =
            |value: Option<Duration>| value.map(format_duration).unwrap_or_else(|| "-".into());
        format!(
            "probes:\n  \
             instantiate and call: {} wall, {} CPU (mean of {} calls)\n  \
             new build written to first reply, compiled: {}\n  \
             pin changed to first reply, compiled cache warm: {}\n  \
             deadline ({SPIN_DEADLINE_MS} ms) to apology: {}\n",
            mean(self.call_wall),
            mean(self.call_cpu),
            self.calls,
            show(&self.reload_cold),
            show(&self.reload_warm),
            show(&self.deadline_overshoot),
        )
    }

    pub fn to_json(&self) -> Value {
        let millis = |samples: &[Duration]| -> Vec<f64> {
            samples
                .iter()
                .map(|sample| sample.as_secs_f64() * 1000.0)
                .collect()
        };
        json!({
            "call_wall_ms": self.call_wall.map(|value| value.as_secs_f64() * 1000.0),
            "call_cpu_ms": self.call_cpu.map(|value| value.as_secs_f64() * 1000.0),
            "calls": self.calls,
            "reload_cold_ms": millis(&self.reload_cold),
            "reload_warm_ms": millis(&self.reload_warm),
            "deadline_overshoot_ms": millis(&self.deadline_overshoot),
        })
    }
}
