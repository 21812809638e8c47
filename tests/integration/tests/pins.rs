//! Operators install, pin, roll back and canary flow builds with
//! `flowbot flows` while a host runs with `--env staging`. The host applies
//! every change without a restart and rejects a pin whose digest does not
//! match, serving the build it had.

use std::path::Path;
use std::time::{Duration, Instant};

use botapi_sim::{SimConfig, Simulator};
use flowbot::registry::canary_bucket;
use flowbot_integration::{
    HostProcess, REPLY_TIMEOUT, RedisServer, SimUser, TempDir, patch_bytes, run_flowbot, test_flow,
};

/// Sends `text` from `user` and returns the newest reply once the chat has
/// `expected` bot messages.
async fn say(
    sim: &Simulator,
    user: &SimUser,
    text: &str,
    expected: usize,
) -> anyhow::Result<String> {
    sim.send_text(user, text);
    let messages = sim
        .wait_for_messages(user.id, expected, REPLY_TIMEOUT)
        .await?;
    Ok(messages.last().expect("at least one message").text.clone())
}

/// Starts and ends tally dialogs of fresh users from `first_id` on until
/// one is answered by `version`; returns the next unused user id.
async fn wait_for_version(sim: &Simulator, first_id: i64, version: &str) -> anyhow::Result<i64> {
    let started = Instant::now();
    let mut user_id = first_id;
    loop {
        let user = SimUser::new(user_id, "Probe");
        user_id += 1;
        let reply = say(sim, &user, "/tally", 1).await?;
        say(sim, &user, "/done", 2).await?;
        if reply.starts_with(version) {
            return Ok(user_id);
        }
        anyhow::ensure!(
            started.elapsed() < REPLY_TIMEOUT,
            "{version} not served within {REPLY_TIMEOUT:?}; last reply {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_rollback_and_canary_apply_without_restart() -> anyhow::Result<()> {
    let redis = RedisServer::start()?;
    let sim = Simulator::start(SimConfig::default()).await?;
    let work = TempDir::new("pins");
    let drop_dir = work.path().join("drop");
    std::fs::create_dir_all(&drop_dir)?;
    let flows_settings = format!(
        "[flows]\nstore = \"{}\"\nenvironments = \"{}\"\n",
        path_text(&work.path().join("store")),
        path_text(&work.path().join("environments"))
    );
    let cli_config = work.path().join("cli.toml");
    std::fs::write(&cli_config, &flows_settings)?;

    // The operator installs two builds and pins the first.
    let tally = test_flow("tally")?;
    let r01 = patch_bytes(&tally, "1.0.0-r00", "1.0.0-r01")?;
    for (name, bytes) in [("tally-r00.wasm", &tally), ("tally-r01.wasm", &r01)] {
        let file = work.path().join(name);
        std::fs::write(&file, bytes)?;
        let output = run_flowbot(
            &cli_config,
            &drop_dir,
            &["flows", "install", &path_text(&file)],
        )?;
        assert!(output.starts_with("installed tally 1.0.0-r0"), "{output}");
    }
    let installed_twice = run_flowbot(
        &cli_config,
        &drop_dir,
        &[
            "flows",
            "install",
            &path_text(&work.path().join("tally-r00.wasm")),
        ],
    )?;
    assert!(installed_twice.contains("1.0.0-r00"), "{installed_twice}");
    let pinned = run_flowbot(
        &cli_config,
        &drop_dir,
        &["flows", "pin", "tally", "1.0.0-r00", "--env", "staging"],
    )?;
    assert!(
        pinned.starts_with("tally in staging: unpinned -> 1.0.0-r00"),
        "{pinned}"
    );

    let host = HostProcess::start_with(
        &sim,
        &redis,
        &drop_dir,
        &flows_settings,
        &["--env", "staging"],
    )?;
    let mut next_user = wait_for_version(&sim, 2000, "1.0.0-r00").await?;

    let pinned = host.command(
        &drop_dir,
        &["flows", "pin", "tally", "1.0.0-r01", "--env", "staging"],
    )?;
    assert!(
        pinned.starts_with("tally in staging: 1.0.0-r00"),
        "{pinned}"
    );
    next_user = wait_for_version(&sim, next_user, "1.0.0-r01").await?;

    let rolled_back = host.command(
        &drop_dir,
        &["flows", "rollback", "tally", "--env", "staging"],
    )?;
    assert!(rolled_back.contains("-> 1.0.0-r00"), "{rolled_back}");
    next_user = wait_for_version(&sim, next_user, "1.0.0-r00").await?;

    // Half of the users, picked by a stable hash of their id, get r01.
    host.command(
        &drop_dir,
        &[
            "flows",
            "canary",
            "tally",
            "1.0.0-r01",
            "--percent",
            "50",
            "--env",
            "staging",
        ],
    )?;
    let started = Instant::now();
    loop {
        let (_, body) = host.get("/flows").await?;
        let status: serde_json::Value = serde_json::from_str(&body)?;
        if status["flows"]["tally"]["canary"]["percent"] == 50 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < REPLY_TIMEOUT,
            "canary not applied: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut on_canary = 0;
    for user_id in next_user..next_user + 40 {
        let user = SimUser::new(user_id, "Canary");
        let reply = say(&sim, &user, "/tally", 1).await?;
        let expected = if canary_bucket("tally", user_id) < 50 {
            on_canary += 1;
            "1.0.0-r01"
        } else {
            "1.0.0-r00"
        };
        assert!(reply.starts_with(expected), "user {user_id}: {reply:?}");
        // The same user stays on the same side.
        let again = say(&sim, &user, "/done", 2).await?;
        assert!(again.starts_with(expected), "user {user_id}: {again:?}");
    }
    assert!(
        (5..=35).contains(&on_canary),
        "{on_canary} of 40 on the canary"
    );

    let listing = host.command(&drop_dir, &["flows", "list"])?;
    let row = |version: &str| row_of(&listing, version);
    assert!(row("1.0.0-r00").ends_with("serving"), "{listing}");
    assert!(row("1.0.0-r00").contains("staging"), "{listing}");
    assert!(row("1.0.0-r01").ends_with("canary 50%"), "{listing}");

    // A pin edited by hand to a digest that matches no build is rejected,
    // and the pinned build keeps serving.
    let environments = work.path().join("environments");
    let wrong = "a".repeat(64);
    std::fs::write(
        environments.join("staging.toml"),
        format!("[flows]\ntally = {{ version = \"1.0.0-r01\", digest = \"sha256:{wrong}\" }}\n"),
    )?;
    let started = Instant::now();
    loop {
        let (_, body) = host.get("/flows").await?;
        let status: serde_json::Value = serde_json::from_str(&body)?;
        if let Some(error) = status["errors"]["tally"].as_str() {
            assert!(error.contains("digest mismatch"), "{error}");
            assert_eq!(status["flows"]["tally"]["stable"]["version"], "1.0.0-r00");
            break;
        }
        anyhow::ensure!(
            started.elapsed() < REPLY_TIMEOUT,
            "mismatch not reported: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outside_canary = (next_user + 100..)
        .find(|user_id| canary_bucket("tally", *user_id) >= 50)
        .expect("some user is outside the canary");
    let user = SimUser::new(outside_canary, "After");
    assert!(
        say(&sim, &user, "/tally", 1)
            .await?
            .starts_with("1.0.0-r00")
    );

    // A pin whose version names another build than its digest is listed
    // as invalid, not as in effect.
    let r00_digest = flowbot::registry::artifacts::hex_digest(&tally);
    std::fs::write(
        environments.join("staging.toml"),
        format!(
            "[flows]\ntally = {{ version = \"1.0.0-r01\", digest = \"sha256:{r00_digest}\" }}\n"
        ),
    )?;
    let listing = host.command(&drop_dir, &["flows", "list"])?;
    let r00 = row_of(&listing, "1.0.0-r00");
    assert!(
        r00.contains("staging (invalid: pin says 1.0.0-r01)"),
        "{listing}"
    );
    Ok(())
}

/// Returns the `flows list` row of tally `version`.
fn row_of(listing: &str, version: &str) -> String {
    listing
        .lines()
        .find(|line| line.starts_with("tally") && line.contains(version))
        .unwrap_or_default()
        .to_owned()
}
