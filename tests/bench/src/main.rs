//! `flowbot-bench`: a load benchmark of the flowbot host.
//!
//! It starts its own redis-server, runs the Bot API simulator in this
//! process, and starts the release host as a child process, so the host's CPU
//! time and memory can be read from `/proc`. Simulated users then run the
//! `/log` dialog of the workouts flow concurrently, each waiting for the
//! bot's reply before its next step. The report gives dialog steps per
//! second, reply latency, the host's CPU time and peak RSS, and counts of
//! misrouted, duplicated, missing and out-of-order replies.
//!
//! | module      | role                                                        |
//! | ----------- | ----------------------------------------------------------- |
//! | `host_metrics` | the host's `/metrics` page: counters, stage histogram    |
//! | `load`      | users, their dialog, judging replies, the event router      |
//! | `processes` | redis-server and host child processes, temporary folders    |
//! | `probes`    | call cost, reload latency, deadline to apology, after load  |
//! | `reloads`   | new builds and pin changes during the load                  |
//! | `procfs`    | CPU time and RSS from `/proc/<pid>/stat` and `status`       |
//! | `report`    | percentiles, error totals, the text report and JSON line    |

mod host_metrics;
mod load;
mod probes;
mod processes;
mod procfs;
mod reloads;
mod report;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use botapi_sim::{Fault, FaultRule, SimConfig, Simulator};
use clap::Parser;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::load::{LoadContext, UserOutcome, UserPlan};
use crate::processes::{HostProcess, RedisServer, TempDir};
use crate::procfs::{MachineUsage, ProcessUsage};
use crate::reloads::{Operator, ReloadPlan};
use crate::report::{MachineWindow, Report, RunData, RunEnd, Settings, UsageWindow};

/// User id of the first simulated user. The others follow in order.
const FIRST_USER_ID: i64 = 1_000_000;
/// User who runs one dialog before the load, to check that the host replies.
const WARM_UP_USER_ID: i64 = 999_999;
/// Maximum wait for the host to start polling after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Maximum wait for each reply of the warm-up dialog.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Time given to the host to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Interval of the resource samples. Progress is printed every fifth one.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Maximum wait after the load for replies still on their way.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Parser, Debug)]
#[command(about = "Load benchmark of the flowbot host against the Bot API simulator")]
struct Cli {
    /// Number of simulated users, all running the /log dialog at once.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Rounds of the /log dialog per user, 3 steps each.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Extra users whose chats get every Bot API call delayed by --slow-delay-ms.
    #[arg(long, default_value_t = 0)]
    slow_chats: usize,
    /// Delay that the simulator adds to each call for a slow chat, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    slow_delay_ms: u64,
    /// Fraction (0 to 1) of dialog steps whose reply the simulator rejects
    /// once with 429 before accepting it. Steps are picked by a hash of
    /// --seed, the user and the step.
    #[arg(long, default_value_t = 0.0)]
    rate_limited: f64,
    /// `retry_after` of those 429 replies, in seconds.
    #[arg(long, default_value_t = 1)]
    retry_after_secs: u32,
    /// Seed that picks the rate-limited steps.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `[dispatch] max_concurrent` of the host [default: the host's default].
    #[arg(long)]
    max_concurrent: Option<usize>,
    /// `[delivery] global_per_second` (messages per second) and
    /// `global_burst` (messages) of the host, both set to this value. The
    /// default is far above what one host sends to the simulator.
    #[arg(long, default_value_t = 100_000)]
    global_per_second: u32,
    /// `[delivery] chat_per_second` of the host, in messages per second
    /// [default: the host's default, Telegram's 1 per second].
    #[arg(long)]
    chat_per_second: Option<f64>,
    /// `[delivery] chat_burst` of the host, in messages [default: the host's default].
    #[arg(long)]
    chat_burst: Option<u32>,
    /// Wall-clock limit of the whole run, in seconds. When it passes, the
    /// report covers what finished and the exit code is 1.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Time a user waits for each reply before counting it missing, in seconds.
    #[arg(long, default_value_t = 60)]
    reply_timeout_secs: u64,
    /// Host binary [default: target/release/flowbot in the workspace].
    #[arg(long)]
    host: Option<PathBuf>,
    /// Folder of built flows [default: target/flows in the workspace].
    #[arg(long)]
    flows_dir: Option<PathBuf>,
    /// Redis configuration [default: redis-conf/redis.conf in the workspace].
    #[arg(long)]
    redis_conf: Option<PathBuf>,
    /// File for the host's output [default: a temporary file, removed at exit].
    #[arg(long)]
    host_log: Option<PathBuf>,
    /// `RUST_LOG` filter of the host.
    #[arg(long, default_value = "info")]
    host_log_filter: String,
    /// Name of this configuration in the JSON line.
    #[arg(long)]
    label: Option<String>,
    /// Pause of each user between a reply and its next step, in
    /// milliseconds. 0 (the default) is a closed loop: the next step goes
    /// out as soon as the reply arrives.
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
    /// Rounds of each probe after the load: new build to first reply, pin
    /// change to first reply, deadline to apology. 0 runs none.
    #[arg(long, default_value_t = 0)]
    probes: usize,
    /// Interval at which a new workouts build is written to the host's drop
    /// folder during the load, in milliseconds. 0 writes none.
    #[arg(long, default_value_t = 0)]
    reload_every_ms: u64,
    /// Interval at which the dev environment's pin of workouts moves to
    /// another build during the load, in milliseconds, as an operator's
    /// `flowbot flows pin` does. The builds are installed, and so compiled,
    /// before the load. 0 changes no pin.
    #[arg(long, default_value_t = 0, conflicts_with = "reload_every_ms")]
    pin_every_ms: u64,
    /// Builds installed for --pin-every-ms. The pins go through them in
    /// turn, so with more changes than builds the later changes pin builds
    /// that the host still has in memory.
    #[arg(long, default_value_t = 15)]
    pin_builds: usize,
    /// Folder of the built test flows tally and hostile, for --probes
    /// [default: target/test-flows in the workspace].
    #[arg(long)]
    test_flows_dir: Option<PathBuf>,
}

/// Files that a run needs, with the defaults filled in.
struct Paths {
    host: PathBuf,
    flows_dir: PathBuf,
    test_flows_dir: PathBuf,
    redis_conf: PathBuf,
}

impl Cli {
    fn validate(&self) -> anyhow::Result<Paths> {
        if self.users == 0 || self.rounds == 0 {
            bail!("invalid --users or --rounds: both must be at least 1");
        }
        if self.global_per_second == 0
            || self
                .chat_per_second
                .is_some_and(|rate| !(rate.is_finite() && rate > 0.0))
            || self.chat_burst == Some(0)
        {
            bail!(
                "invalid --global-per-second, --chat-per-second or --chat-burst: \
                 each must be a positive number"
            );
        }
        if !(0.0..1.0).contains(&self.rate_limited) {
            bail!(
                "invalid --rate-limited {}: expected a fraction from 0 up to 1",
                self.rate_limited
            );
        }
        let root = workspace_root();
        let paths = Paths {
            host: self
                .host
                .clone()
                .unwrap_or_else(|| root.join("target/release/flowbot")),
            flows_dir: self
                .flows_dir
                .clone()
                .unwrap_or_else(|| root.join("target/flows")),
            test_flows_dir: self
                .test_flows_dir
                .clone()
                .unwrap_or_else(|| root.join("target/test-flows")),
            redis_conf: self
                .redis_conf
                .clone()
                .unwrap_or_else(|| root.join("redis-conf/redis.conf")),
        };
        if self.probes > 0 && !paths.test_flows_dir.join("tally.wasm").is_file() {
            bail!(
                "tally.wasm not found in {}: scripts/bench builds the test flows, or pass --test-flows-dir",
                paths.test_flows_dir.display()
            );
        }
        if !paths.host.is_file() {
            bail!(
                "host binary {} not found: run `cargo build --release -p flowbot` or pass --host",
                paths.host.display()
            );
        }
        if !paths.flows_dir.join("workouts.wasm").is_file() {
            bail!(
                "workouts.wasm not found in {}: run scripts/build-flows or pass --flows-dir",
                paths.flows_dir.display()
            );
        }
        if !paths.redis_conf.is_file() {
            bail!(
                "Redis configuration {} not found",
                paths.redis_conf.display()
            );
        }
        Ok(paths)
    }

    fn settings(&self) -> Settings {
        Settings {
            label: self.label.clone(),
            users: self.users,
            rounds: self.rounds,
            slow_chats: self.slow_chats,
            slow_delay: Duration::from_millis(self.slow_delay_ms),
            rate_limited: self.rate_limited,
            retry_after_secs: self.retry_after_secs,
            seed: self.seed,
            max_concurrent: self.max_concurrent,
            global_per_second: self.global_per_second,
            chat_per_second: self.chat_per_second,
            chat_burst: self.chat_burst,
            think: Duration::from_millis(self.think_ms),
        }
    }

    /// Returns the host's configuration file. Token, URLs and the flows
    /// folder go through the environment, as in production.
    fn host_config(&self, metrics_address: &str, environments: &Path) -> String {
        // The host paces replies like Telegram: about 30 messages per second
        // overall and 1 per second per chat, in bursts of 3. The simulator
        // enforces no limit, so the global one is raised far above what the
        // host can send, or the benchmark would measure the cap. The per-chat
        // limit stays unless --chat-per-second is given, because it sets
        // the latency a user experiences.
        let mut config = format!(
            "# Written by flowbot-bench for one run.\n\
             [delivery]\n\
             global_per_second = {}\n\
             global_burst = {}\n",
            self.global_per_second, self.global_per_second
        );
        if let Some(chat_per_second) = self.chat_per_second {
            // Debug formatting keeps the decimal point that a TOML float needs.
            config.push_str(&format!("chat_per_second = {chat_per_second:?}\n"));
        }
        if let Some(chat_burst) = self.chat_burst {
            config.push_str(&format!("chat_burst = {chat_burst}\n"));
        }
        if let Some(max_concurrent) = self.max_concurrent {
            config.push_str(&format!("[dispatch]\nmax_concurrent = {max_concurrent}\n"));
        }
        // The probes run /spin into its deadline again and again, which
        // would open the breaker, so the breaker is off.
        config.push_str(&format!(
            "[metrics]\nlisten = \"{metrics_address}\"\n\
             [flows]\nenvironments = \"{}\"\n\
             [limits]\nbreaker_failures = 0\n\
             [limits.flows.hostile]\ndeadline_ms = {}\n",
            environments.display(),
            probes::SPIN_DEADLINE_MS
        ));
        config
    }
}

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("flowbot-bench: failed to start the tokio runtime: {error}");
            return ExitCode::from(2);
        }
    };
    // The run stays on this thread (block_on), which child processes rely on:
    // see processes::die_with_parent.
    match runtime.block_on(run(cli)) {
        Ok(report) => {
            print!("{}", report.to_text());
            println!("{}", report.to_json());
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("flowbot-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Starts Redis, the simulator and the host, runs the load and returns the
/// report. The host and Redis are stopped on every path out.
async fn run(cli: Cli) -> anyhow::Result<Report> {
    let deadline = Instant::now() + Duration::from_secs(cli.timeout_secs);
    let paths = cli.validate()?;
    let work_dir = TempDir::create("run")?;

    let redis = RedisServer::start(&paths.redis_conf)?;
    let sim = Simulator::start(SimConfig::default()).await?;

    // The host's drop folder is the run's own, so the builds that the
    // reloads and probes write never reach target/flows.
    let drop_dir = work_dir.path().join("flows");
    let environments = work_dir.path().join("environments");
    std::fs::create_dir_all(&drop_dir)?;
    std::fs::create_dir_all(&environments)?;
    let mut flows = vec![paths.flows_dir.join("workouts.wasm")];
    if cli.probes > 0 {
        flows.push(paths.test_flows_dir.join("tally.wasm"));
        flows.push(paths.test_flows_dir.join("hostile.wasm"));
    }
    for flow in &flows {
        let name = flow.file_name().context("flow file has a name")?;
        std::fs::copy(flow, drop_dir.join(name))
            .with_context(|| format!("failed to copy {}", flow.display()))?;
    }
    let metrics_address = format!("127.0.0.1:{}", processes::free_port()?);
    let config_path = work_dir.path().join("flowbot.toml");
    std::fs::write(
        &config_path,
        cli.host_config(&metrics_address, &environments),
    )
    .with_context(|| format!("failed to write {}", config_path.display()))?;
    let log_path = cli
        .host_log
        .clone()
        .unwrap_or_else(|| work_dir.path().join("flowbot.log"));
    let api_url = sim.api_url();
    let flows_dir = drop_dir.to_string_lossy();
    let env = [
        ("TELOXIDE_TOKEN", sim.token()),
        ("TELOXIDE_API_URL", api_url.as_str()),
        ("REDIS_URL", redis.url.as_str()),
        ("FLOWBOT_FLOWS_DIR", flows_dir.as_ref()),
        ("RUST_LOG", cli.host_log_filter.as_str()),
    ];
    let operator = Operator {
        host_binary: paths.host.clone(),
        config: config_path.clone(),
        drop_dir: drop_dir.clone(),
    };
    // Builds for the pin changes are installed before the host starts, so
    // their compiles are not part of the run.
    let reloads = if cli.pin_every_ms > 0 {
        eprintln!(
            "==> installing {} workouts builds to pin during the load",
            cli.pin_builds
        );
        ReloadPlan::Pins {
            installed: reloads::install_builds(&operator, work_dir.path(), cli.pin_builds).await?,
            operator: operator.clone(),
            interval: Duration::from_millis(cli.pin_every_ms),
        }
    } else if cli.reload_every_ms > 0 {
        ReloadPlan::Builds {
            drop_dir: drop_dir.clone(),
            interval: Duration::from_millis(cli.reload_every_ms),
        }
    } else {
        ReloadPlan::None
    };
    let mut host = HostProcess::spawn(&paths.host, &config_path, &env, &log_path)?;
    eprintln!(
        "==> host {} started (pid {}), output in {}",
        paths.host.display(),
        host.pid(),
        host.log_path().display()
    );

    let mut result = measure(&cli, &sim, &mut host, &redis, reloads, deadline).await;
    if let Ok(report) = &mut result {
        // Read before the probes, so the stages cover the load only.
        match host_metrics::fetch(&metrics_address, "/metrics").await {
            Ok(page) => {
                report.stages = host_metrics::stages(&page);
                let swapped = "flowbot_reloads_total{result=\"swapped\"}";
                report.swaps = host_metrics::counter_sum(&page, swapped) as usize;
            }
            Err(error) => eprintln!("==> host metrics not read: {error:#}"),
        }
    }
    if cli.probes > 0
        && let Ok(report) = &mut result
    {
        let setup = probes::ProbeSetup {
            sim: &sim,
            operator: &operator,
            environments_dir: &environments,
            metrics_address: &metrics_address,
            tally: std::fs::read(paths.test_flows_dir.join("tally.wasm"))?,
        };
        eprintln!("==> probes: {} rounds each", cli.probes);
        match probes::run(&setup, cli.probes).await {
            Ok(probe_report) => report.probes = Some(probe_report),
            Err(error) => eprintln!("==> probes failed: {error:#}"),
        }
    }

    if host.stop(STOP_GRACE).is_none() {
        eprintln!("==> host did not exit within {STOP_GRACE:?} of SIGTERM and was killed");
    }
    sim.shutdown().await;
    drop(redis);
    if result.is_err() {
        eprintln!(
            "==> last lines of the host's output:\n{}",
            host.log_tail(20)
        );
    }
    result
}

/// Waits for the host, warms it up, runs the load and collects the figures.
async fn measure(
    cli: &Cli,
    sim: &Simulator,
    host: &mut HostProcess,
    redis: &RedisServer,
    reloads: ReloadPlan,
    deadline: Instant,
) -> anyhow::Result<Report> {
    wait_until_polling(sim, host, deadline).await?;
    warm_up(sim, deadline).await?;

    let plans = user_plans(cli);
    for plan in plans.iter().filter(|plan| plan.slow) {
        sim.add_fault(
            FaultRule::new(Fault::Delay(Duration::from_millis(cli.slow_delay_ms)))
                .for_chat(plan.user.id),
        );
    }
    let mut routes = HashMap::new();
    let mut inboxes = Vec::with_capacity(plans.len());
    for plan in &plans {
        let (sender, inbox) = mpsc::unbounded_channel();
        routes.insert(plan.user.id, sender);
        inboxes.push(inbox);
    }
    let (router, events_lost) = load::spawn_router(sim, routes);
    let context = Arc::new(LoadContext {
        sim: sim.clone(),
        reply_timeout: Duration::from_secs(cli.reply_timeout_secs),
        retry_after_secs: cli.retry_after_secs,
        cancel: CancellationToken::new(),
        replies: Default::default(),
        think: Duration::from_millis(cli.think_ms),
    });

    let mut monitor = Monitor::start(host.pid(), redis.pid())?;
    eprintln!(
        "==> load: {} users x {} steps",
        plans.len(),
        cli.rounds * load::STEPS_PER_ROUND
    );
    let load_started = Instant::now();
    let stop_reloads = CancellationToken::new();
    let reloads_are_pins = matches!(reloads, ReloadPlan::Pins { .. });
    let reloader = reloads.spawn(stop_reloads.clone());
    let mut users = JoinSet::new();
    for (plan, inbox) in plans.into_iter().zip(inboxes) {
        users.spawn(load::run_user(context.clone(), plan, inbox));
    }
    let (mut outcomes, end) = supervise(&mut users, &context, host, &mut monitor, deadline).await?;
    let load_ended = Instant::now();
    let usage = monitor.finish(host.pid(), redis.pid());
    let reloads_made = match reloader {
        Some(reloader) => {
            stop_reloads.cancel();
            reloader.await.context("reloader task failed")??
        }
        None => 0,
    };

    // Replies may still be on their way, so wait briefly and judge them too.
    settle(sim).await;
    router.abort();
    let mut messages = HashMap::with_capacity(outcomes.len());
    for outcome in &mut outcomes {
        let chat = sim.messages(outcome.plan.user.id);
        outcome.judge_later_messages(&chat);
        messages.insert(outcome.plan.user.id, chat);
    }

    let data = RunData {
        settings: cli.settings(),
        outcomes,
        calls: sim.calls(),
        messages,
        load_started,
        load_ended,
        host: usage.host,
        redis: usage.redis,
        bench: usage.bench,
        machine: usage.machine,
        events_lost: events_lost.load(Ordering::Relaxed),
        other_known_chats: HashSet::from([WARM_UP_USER_ID]),
        end,
    };
    let mut report = Report::new(&data);
    if reloads_are_pins {
        report.pins_changed = reloads_made;
    } else {
        report.reloads_written = reloads_made;
    }
    Ok(report)
}

/// Builds the plans of the normal users, then of the slow ones.
fn user_plans(cli: &Cli) -> Vec<UserPlan> {
    (0..cli.users + cli.slow_chats)
        .map(|index| {
            let user_id = FIRST_USER_ID + i64::try_from(index).expect("user count fits in i64");
            let mut plan = UserPlan::new(user_id, cli.rounds);
            plan.slow = index >= cli.users;
            // Slow chats are left out: their delay rule would match first anyway.
            if !plan.slow {
                for (step, limited) in plan.rate_limited.iter_mut().enumerate() {
                    *limited = load::is_rate_limited(cli.seed, user_id, step, cli.rate_limited);
                }
            }
            plan
        })
        .collect()
}

/// Waits until the host has made its first `getUpdates` call.
async fn wait_until_polling(
    sim: &Simulator,
    host: &mut HostProcess,
    deadline: Instant,
) -> anyhow::Result<()> {
    let give_up = deadline.min(Instant::now() + START_TIMEOUT);
    while sim.calls_to("getUpdates").is_empty() {
        if let Some(status) = host.exit_status() {
            bail!("host exited during start-up: {status}");
        }
        if Instant::now() >= give_up {
            bail!("host did not start polling within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Runs one `/log` dialog before the load, so a host that cannot reply
/// fails fast and the first measured steps do not pay for first use.
async fn warm_up(sim: &Simulator, deadline: Instant) -> anyhow::Result<()> {
    let plan = UserPlan::new(WARM_UP_USER_ID, 1);
    for step in 0..plan.steps() {
        sim.send_text(&plan.user, &plan.input(step));
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .min(WARM_UP_TIMEOUT);
        let messages = sim
            .wait_for_messages(plan.user.id, step + 1, timeout)
            .await
            .context("the warm-up dialog got no reply")?;
        let expected = plan.expected_reply(step);
        if messages[step].text != expected {
            bail!(
                "the warm-up dialog got {:?} where {expected:?} was expected",
                messages[step].text
            );
        }
    }
    Ok(())
}

/// Collects user outcomes until every user is done. Cancels the users when
/// the deadline passes, on Ctrl-C, or when the host exits, and samples
/// resource use meanwhile.
async fn supervise(
    users: &mut JoinSet<UserOutcome>,
    context: &LoadContext,
    host: &mut HostProcess,
    monitor: &mut Monitor,
    deadline: Instant,
) -> anyhow::Result<(Vec<UserOutcome>, RunEnd)> {
    let mut outcomes = Vec::with_capacity(users.len());
    let mut end = RunEnd::Finished;
    let mut samples = tokio::time::interval(SAMPLE_INTERVAL);
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);

    loop {
        let cancelled = context.cancel.is_cancelled();
        tokio::select! {
            joined = users.join_next() => match joined {
                Some(outcome) => outcomes.push(outcome.context("a user task panicked")?),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline), if !cancelled => {
                eprintln!("==> run timeout reached, stopping the users");
                end = RunEnd::TimedOut;
                context.cancel.cancel();
            }
            _ = &mut interrupt, if !cancelled => {
                eprintln!("==> interrupted, stopping the users");
                end = RunEnd::Interrupted;
                context.cancel.cancel();
            }
            _ = samples.tick() => {
                if let Some(status) = host.exit_status() {
                    if !cancelled {
                        eprintln!("==> host exited during the load: {status}");
                        end = RunEnd::HostExited(status.to_string());
                        context.cancel.cancel();
                    }
                    continue;
                }
                monitor.sample(host.pid(), context.replies.load(Ordering::Relaxed));
            }
        }
    }
    Ok((outcomes, end))
}

/// Waits until the host has fetched every pushed update, then a little
/// longer for the replies to those updates.
async fn settle(sim: &Simulator) {
    if sim.wait_until_idle(SETTLE_TIMEOUT).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Resource use of the host, Redis, this process and the whole machine
/// over the load.
struct Monitor {
    started: Instant,
    host: UsageWindow,
    redis: UsageWindow,
    bench: UsageWindow,
    machine: MachineWindow,
    samples: u64,
}

impl Monitor {
    fn start(host_pid: u32, redis_pid: u32) -> anyhow::Result<Self> {
        let window = |pid| -> anyhow::Result<UsageWindow> {
            let start = ProcessUsage::read(pid)?;
            Ok(UsageWindow {
                start,
                end: start,
                max_sampled_rss_bytes: start.rss_bytes,
            })
        };
        Ok(Self {
            started: Instant::now(),
            host: window(host_pid)?,
            redis: window(redis_pid)?,
            bench: window(std::process::id())?,
            machine: MachineWindow {
                start: MachineUsage::read()?,
                end: MachineUsage::default(),
            },
            samples: 0,
        })
    }

    /// Records the host's RSS and prints progress every fifth sample.
    fn sample(&mut self, host_pid: u32, replies: u64) {
        let Ok(usage) = ProcessUsage::read(host_pid) else {
            return;
        };
        self.host.end = usage;
        self.host.max_sampled_rss_bytes = self.host.max_sampled_rss_bytes.max(usage.rss_bytes);
        self.samples += 1;
        if self.samples.is_multiple_of(5) {
            let elapsed = self.started.elapsed().as_secs_f64();
            let machine = MachineUsage::read().unwrap_or_default();
            eprintln!(
                "    {elapsed:5.0} s: {replies} replies ({:.0}/s), host {:.2} cores, \
                 RSS {:.0} MiB, machine {:.2} CPUs busy",
                replies as f64 / elapsed,
                usage.cpu_since(&self.host.start).as_secs_f64() / elapsed,
                usage.rss_bytes as f64 / (1024.0 * 1024.0),
                machine.busy_cpus_since(&self.machine.start)
            );
        }
    }

    /// Takes the final readings. Call it before the host is stopped.
    fn finish(mut self, host_pid: u32, redis_pid: u32) -> Self {
        self.machine.end = MachineUsage::read().unwrap_or(self.machine.start);
        let windows = [
            (&mut self.host, host_pid),
            (&mut self.redis, redis_pid),
            (&mut self.bench, std::process::id()),
        ];
        for (window, pid) in windows {
            // A process that has exited keeps its last sample.
            if let Ok(usage) = ProcessUsage::read(pid) {
                window.end = usage;
                window.max_sampled_rss_bytes = window.max_sampled_rss_bytes.max(usage.rss_bytes);
            }
        }
        self
    }
}
