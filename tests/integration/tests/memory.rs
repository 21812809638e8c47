//! The host's memory stays bounded: a fresh instance per update leaves
//! nothing behind, so resident memory and the number of memory mappings
//! level off over 20,000 updates, and a flow that exhausts its memory cap
//! gives the memory back. The host runs as a child process, so its
//! `/proc/<pid>` figures are its own.

use std::time::Duration;

use botapi_sim::{SimConfig, Simulator};
use flowbot_integration::{HostProcess, REPLY_TIMEOUT, RedisServer, SimUser, TempDir, test_flow};

/// Resident memory (`VmRSS`) of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kilobytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))?;
    Ok(kilobytes * 1024)
}

/// Number of memory mappings of process `pid`.
fn mapping_count(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_to_string(format!("/proc/{pid}/maps"))?
        .lines()
        .count())
}

async fn start_hostile_host(
    sim: &Simulator,
    redis: &RedisServer,
    settings: &str,
) -> anyhow::Result<(HostProcess, TempDir)> {
    let flows = TempDir::new("memory-flows");
    std::fs::write(flows.path().join("hostile.wasm"), test_flow("hostile")?)?;
    let host = HostProcess::start_with(sim, redis, flows.path(), settings, &[])?;
    // The first reply means the host has loaded the flow and polls.
    let warm = SimUser::new(999, "Warm");
    sim.send_text(&warm, "/ping");
    sim.wait_for_messages(warm.id, 1, REPLY_TIMEOUT).await?;
    Ok((host, flows))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_updates_level_off() -> anyhow::Result<()> {
    const USERS: i64 = 200;
    const PINGS_PER_USER: usize = 100;
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let (host, _flows) = start_hostile_host(&sim, &redis, "").await?;

    // One sample per 1,000 updates: 200 users send 5 pings each, then wait
    // for all replies.
    let mut samples = Vec::new();
    for batch in 0..PINGS_PER_USER / 5 {
        for user_id in 0..USERS {
            let user = SimUser::new(10_000 + user_id, "Pinger");
            for _ in 0..5 {
                sim.send_text(&user, "/ping");
            }
        }
        for user_id in 0..USERS {
            sim.wait_for_messages(10_000 + user_id, (batch + 1) * 5, REPLY_TIMEOUT)
                .await?;
        }
        samples.push((resident_bytes(host.pid())?, mapping_count(host.pid())?));
    }
    let last = sim.messages(10_000 + USERS - 1);
    assert_eq!(last.last().map(|m| m.text.as_str()), Some("pong 100"));

    // After a quarter of the run, neither figure grows much more: a leak of
    // one mapping or 1 KiB per update would add 15,000 of them by the end.
    let (rss_early, maps_early) = samples[samples.len() / 4];
    let (rss_end, maps_end) = *samples.last().expect("samples taken");
    let rss_max = samples.iter().map(|(rss, _)| *rss).max().unwrap_or(0);
    eprintln!("rss {rss_early} -> {rss_end} (max {rss_max}), mappings {maps_early} -> {maps_end}");
    assert!(
        maps_end <= maps_early + 200,
        "mappings grew from {maps_early} to {maps_end}"
    );
    assert!(
        rss_end <= rss_early + (16 << 20),
        "rss grew from {rss_early} to {rss_end}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hog_gives_memory_back() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let cap = 64 << 20;
    let settings = format!("[limits]\nmemory_bytes = {cap}\n");
    let (host, _flows) = start_hostile_host(&sim, &redis, &settings).await?;
    let before = resident_bytes(host.pid())?;

    let ann = SimUser::new(1001, "Ann");
    for round in 1..=3 {
        sim.send_text(&ann, "/hog");
        let messages = sim
            .wait_for_messages(ann.id, round * 2 - 1, REPLY_TIMEOUT)
            .await?;
        let apology = &messages[round * 2 - 2].text;
        assert!(
            apology.starts_with("Sorry, something went wrong"),
            "{apology}"
        );
        sim.send_text(&ann, "/ping");
        let messages = sim
            .wait_for_messages(ann.id, round * 2, REPLY_TIMEOUT)
            .await?;
        assert_eq!(messages[round * 2 - 1].text, format!("pong {round}"));
    }
    // The pool returns a slot's pages when its instance is dropped; give
    // the allocator a moment to finish.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = resident_bytes(host.pid())?;
    eprintln!("rss before {before}, after three hogs of {cap} bytes: {after}");
    assert!(after < before + cap as u64 / 2, "rss {before} -> {after}");
    Ok(())
}
