//! Support for the integration tests: a real redis-server on a free loopback
//! port, the Bot API simulator, the built flow components, and the host
//! running in-process against them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use botapi_sim::{SimConfig, Simulator};
use flowbot::config::Config;
pub use flowbot_test_builds::{drop_build, patch_bytes, with_custom_section};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use botapi_sim::{BotMessage, SimUser};

/// How long a test waits for a reply before failing. Generous, because CI
/// machines are shared; tests assert on what arrives, never on how fast.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Root of the workspace.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

/// Folder with the built flow components (`<flow>.wasm`), from
/// `FLOWBOT_FLOWS_DIR` or `target/flows`.
pub fn built_flows_dir() -> PathBuf {
    let dir = std::env::var_os("FLOWBOT_FLOWS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/flows"));
    assert!(
        dir.join("workouts.wasm").is_file(),
        "flow components missing in {}: run scripts/build-flows (scripts/test does it)",
        dir.display()
    );
    dir
}

/// Folder with the test-only flow components (`hostile.wasm`), from
/// `FLOWBOT_TEST_FLOWS_DIR` or `target/test-flows`.
pub fn test_flows_dir() -> PathBuf {
    let dir = std::env::var_os("FLOWBOT_TEST_FLOWS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/test-flows"));
    assert!(
        dir.join("hostile.wasm").is_file(),
        "test flow components missing in {}: scripts/test builds them",
        dir.display()
    );
    dir
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// A temporary folder removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("flowbot-{label}-{}-{unique}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir can be created");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A redis-server started from `redis-conf/redis.conf` on a free loopback
/// port with a random password; stopped on drop.
pub struct RedisServer {
    child: Child,
    pub url: String,
    port: u16,
    password: String,
    dir: TempDir,
}

impl RedisServer {
    pub fn start() -> anyhow::Result<Self> {
        let dir = TempDir::new("redis");
        let port = free_port()?;
        let password = format!("test-{}-{port}", std::process::id());
        let child = Self::spawn(port, &password, dir.path())?;
        let url = format!("redis://:{password}@127.0.0.1:{port}/0");
        let server = Self {
            child,
            url,
            port,
            password,
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn spawn(port: u16, password: &str, dir: &Path) -> anyhow::Result<Child> {
        let config = workspace_root().join("redis-conf/redis.conf");
        Command::new("redis-server")
            .arg(&config)
            .args(["--port", &port.to_string(), "--requirepass", password])
            .arg("--dir")
            .arg(dir)
            .args(["--logfile", "redis.log", "--appendfsync", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("failed to start redis-server: run scripts/setup to install it")
    }

    /// Stops the server with SIGTERM, which makes it write its data, waits
    /// `pause`, then starts it again on the same port and data folder.
    pub async fn restart_after(&mut self, pause: Duration) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        self.child.wait()?;
        tokio::time::sleep(pause).await;
        self.child = Self::spawn(self.port, &self.password, self.dir.path())?;
        self.wait_ready()
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.url.as_str())?;
        let started = Instant::now();
        loop {
            if let Ok(mut connection) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("redis-server did not answer PING within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub async fn connection(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url.as_str())?;
        Ok(client.get_multiplexed_async_connection().await?)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `GET path` to `address` and returns the status code and body.
pub async fn http_get(address: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no HTTP status")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Returns a free TCP port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The replies to `rounds` `/log` dialogs of the workouts flow, each
/// logging `reps` reps of `exercise`, from a user with no sets today.
pub fn log_dialog_replies(
    exercise: &str,
    reps: impl std::fmt::Display,
    rounds: usize,
) -> Vec<String> {
    let mut replies = Vec::new();
    for round in 1..=rounds {
        replies.push("Which exercise? Send its name, for example squat.".to_owned());
        replies.push(format!(
            "How many reps of {exercise}? Send a whole number, for example 5."
        ));
        replies.push(format!(
            "Logged {exercise}: {reps} reps. Sets logged today: {round}."
        ));
    }
    replies
}

/// Reads the built test flow `name` (`<name>.wasm` in the test flows folder).
pub fn test_flow(name: &str) -> anyhow::Result<Vec<u8>> {
    let path = test_flows_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))
}

/// Delivery limits far above Telegram's, because the simulator does not
/// enforce any and tests with hundreds of users would otherwise take
/// minutes. Pacing itself is tested in the host's unit tests.
pub const FAST_DELIVERY_TOML: &str = "[delivery]\nchat_per_second = 1000.0\nchat_burst = 1000\n\
     group_per_minute = 60000.0\nglobal_per_second = 100000.0\nglobal_burst = 100000\n";

fn fast_delivery() -> flowbot::config::PacingConfig {
    let config: Config = toml::from_str(FAST_DELIVERY_TOML).expect("valid delivery settings");
    config.delivery
}

/// The `flowbot` binary running as a child process, for tests that kill it.
pub struct HostProcess {
    child: Child,
    /// Address of the host's `/metrics` and `/healthz`.
    pub metrics_address: String,
    config_file: PathBuf,
    _config: TempDir,
}

/// Runs `flowbot --config <config_file> <args>` with `flows_dir` as the drop
/// folder and no bot token, and returns what it printed; fails when it
/// exits with an error.
pub fn run_flowbot(config_file: &Path, flows_dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(host_binary()?)
        .arg("--config")
        .arg(config_file)
        .args(args)
        .env("FLOWBOT_FLOWS_DIR", flows_dir)
        .env_remove("TELOXIDE_TOKEN")
        .env_remove("FLOWBOT_ENV")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "flowbot {} failed with {}: {stdout}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

/// The `flowbot` binary that `scripts/test` builds before the tests.
fn host_binary() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let binary = target.join("debug/flowbot");
    anyhow::ensure!(
        binary.is_file(),
        "host binary missing at {}: run cargo build -p flowbot (scripts/test does it)",
        binary.display()
    );
    Ok(binary)
}

impl HostProcess {
    /// Starts `target/debug/flowbot` against `sim` and `redis`, serving the
    /// flows in `flows_dir`. Its log goes to the test output.
    pub fn start(sim: &Simulator, redis: &RedisServer, flows_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(sim, redis, flows_dir, "", &[])
    }

    /// Like [`HostProcess::start`], with `settings` added to the
    /// configuration file and `args` given to the binary.
    pub fn start_with(
        sim: &Simulator,
        redis: &RedisServer,
        flows_dir: &Path,
        settings: &str,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let binary = host_binary()?;
        let config = TempDir::new("host-config");
        let config_file = config.path().join("flowbot.toml");
        let metrics_address = format!("127.0.0.1:{}", free_port()?);
        let settings = format!(
            "[telegram]\npoll_timeout_secs = 1\n[metrics]\nlisten = \"{metrics_address}\"\n{FAST_DELIVERY_TOML}{settings}"
        );
        std::fs::write(&config_file, settings)?;
        let child = Command::new(&binary)
            .arg("--config")
            .arg(&config_file)
            .args(args)
            .env("TELOXIDE_TOKEN", sim.token())
            .env("TELOXIDE_API_URL", sim.api_url())
            .env("REDIS_URL", &redis.url)
            .env("FLOWBOT_FLOWS_DIR", flows_dir)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("failed to start {}", binary.display()))?;
        Ok(Self {
            child,
            metrics_address,
            config_file,
            _config: config,
        })
    }

    /// Runs `flowbot <args>` with this host's configuration and drop folder,
    /// as an operator would beside it, and returns what it printed.
    pub fn command(&self, flows_dir: &Path, args: &[&str]) -> anyhow::Result<String> {
        run_flowbot(&self.config_file, flows_dir, args)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fetches `path` from the host's metrics server and returns the status
    /// code and body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        http_get(&self.metrics_address, path).await
    }

    /// Kills the host with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Stops the host with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "host exited with {status} after SIGTERM");
        Ok(())
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host running in-process against its own Redis and simulator.
pub struct TestBot {
    pub sim: Simulator,
    pub redis: RedisServer,
    shutdown: CancellationToken,
    host: Option<JoinHandle<anyhow::Result<()>>>,
    flows: TempDir,
}

impl TestBot {
    /// Starts a host serving the built flows named in `flows`.
    pub async fn start(flows: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(flows, |_| {}).await
    }

    /// Like [`TestBot::start`], with `adjust` applied to the configuration.
    pub async fn start_with(
        flows: &[&str],
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        init_logging();
        let flows_dir = TempDir::new("flows");
        for flow in flows {
            let file = format!("{flow}.wasm");
            let built = match *flow {
                "workouts" | "exercises" => built_flows_dir(),
                _ => test_flows_dir(),
            };
            std::fs::copy(built.join(&file), flows_dir.path().join(&file))
                .with_context(|| format!("failed to copy flow {file}"))?;
        }
        let redis = RedisServer::start()?;
        let sim = Simulator::start(SimConfig::default()).await?;

        let mut config = Config::default();
        config.telegram.token = Some(sim.token().to_owned());
        config.telegram.api_url = sim.api_url();
        config.telegram.poll_timeout_secs = 1;
        config.redis.url = redis.url.clone();
        config.flows.dir = flows_dir.path().to_owned();
        config.delivery = fast_delivery();
        // Tests run in parallel, so a fixed metrics port would clash.
        config.metrics.listen = String::new();
        adjust(&mut config);
        config.validate()?;

        let shutdown = CancellationToken::new();
        let host = tokio::spawn(flowbot::app::run(config, shutdown.clone()));
        let mut bot = Self {
            sim,
            redis,
            shutdown,
            host: Some(host),
            flows: flows_dir,
        };
        bot.wait_until_polling().await?;
        Ok(bot)
    }

    /// The drop folder the host installs new builds from.
    pub fn flows_dir(&self) -> &Path {
        self.flows.path()
    }

    /// Waits until the host has registered its commands and polls.
    async fn wait_until_polling(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        while !self
            .sim
            .calls()
            .iter()
            .any(|call| call.method == "getUpdates")
        {
            if started.elapsed() > REPLY_TIMEOUT {
                bail!("host did not start polling within {REPLY_TIMEOUT:?}");
            }
            if self.host.as_ref().is_some_and(JoinHandle::is_finished) {
                let result = self.host.take().expect("checked above").await?;
                bail!("host stopped during start-up: {result:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Sends `text` from `user` and waits until the chat has `expected` bot
    /// messages in total; returns the newest one.
    pub async fn say(
        &self,
        user: &SimUser,
        text: &str,
        expected: usize,
    ) -> anyhow::Result<BotMessage> {
        self.sim.send_text(user, text);
        self.last_message(user.id, expected).await
    }

    /// Presses `data` on bot message `message_id` and waits until the chat
    /// has `expected` bot messages in total; returns the newest one.
    pub async fn press(
        &self,
        user: &SimUser,
        message_id: i32,
        data: &str,
        expected: usize,
    ) -> anyhow::Result<BotMessage> {
        self.sim.press_button(user, message_id, data);
        self.last_message(user.id, expected).await
    }

    pub async fn last_message(&self, chat_id: i64, expected: usize) -> anyhow::Result<BotMessage> {
        let messages = self
            .sim
            .wait_for_messages(chat_id, expected, REPLY_TIMEOUT)
            .await?;
        Ok(messages
            .last()
            .cloned()
            .expect("wait_for_messages returns at least one"))
    }

    /// Waits until the simulator holds no unconfirmed updates and the host has
    /// had time to finish them, judged by the chat's message count settling.
    pub async fn settle(&self) {
        let started = Instant::now();
        while self.sim.pending_updates() > 0 && started.elapsed() < REPLY_TIMEOUT {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the host and returns its result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.host.take() {
            Some(host) => host.await.context("host task panicked")?,
            None => Ok(()),
        }
    }
}

impl Drop for TestBot {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
