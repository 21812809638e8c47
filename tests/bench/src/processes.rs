//! Child processes of a run: a redis-server from `redis-conf/` and the
//! flowbot host. Both are killed when their handle is dropped, and by the
//! kernel when the benchmark itself dies.

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn create(label: &str) -> anyhow::Result<Self> {
        let path =
            std::env::temp_dir().join(format!("flowbot-bench-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        Ok(Self(path))
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

/// A redis-server on a free loopback port with a random password and its
/// data in a temporary folder.
pub struct RedisServer {
    child: Child,
    pub url: String,
    _dir: TempDir,
}

impl RedisServer {
    /// Starts redis-server with `config` (normally `redis-conf/redis.conf`)
    /// and waits until it replies to PING.
    pub fn start(config: &Path) -> anyhow::Result<Self> {
        let dir = TempDir::create("redis")?;
        let port = free_port()?;
        let password = random_hex(16)?;
        let mut command = Command::new("redis-server");
        command
            .arg(config)
            .args(["--port", &port.to_string(), "--requirepass", &password])
            .arg("--dir")
            .arg(dir.path())
            .args(["--logfile", "redis.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        die_with_parent(&mut command);
        let child = command
            .spawn()
            .context("failed to start redis-server: run scripts/setup to install it")?;

        let server = Self {
            child,
            url: format!("redis://:{password}@127.0.0.1:{port}/0"),
            _dir: dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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
                bail!("redis-server did not reply to PING within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The flowbot host running as a child process, its output in a log file.
pub struct HostProcess {
    child: Child,
    log: PathBuf,
}

impl HostProcess {
    /// Starts `binary --config <config>` with `env` added to the environment.
    pub fn spawn(
        binary: &Path,
        config: &Path,
        env: &[(&str, &str)],
        log: &Path,
    ) -> anyhow::Result<Self> {
        let output =
            File::create(log).with_context(|| format!("failed to create {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        die_with_parent(&mut command);
        let child = command.spawn().with_context(|| {
            format!(
                "failed to start the host {}: build it with `cargo build --release -p flowbot`",
                binary.display()
            )
        })?;
        Ok(Self {
            child,
            log: log.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns the exit status when the host has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM, waits up to `grace` for the host to exit, then kills it.
    /// Returns the exit status, or `None` when it had to be killed.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exit_status() {
            return Some(status);
        }
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits in pid_t");
        // SAFETY: kill has no memory effects, and the child is not yet reaped,
        // so the pid still names it.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < grace {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Returns the last `lines` lines of the host's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes the kernel kill the child when the thread that spawned it exits, so
/// an interrupted benchmark leaves no redis-server or host behind. The
/// death signal follows the spawning thread, not the process, so children
/// must be spawned from the main thread, which lives as long as the process.
fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent,
    // as a pre_exec hook requires.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("failed to bind a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Returns `bytes` random bytes from `/dev/urandom` as lowercase hex.
fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buffer = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut buffer))
        .context("failed to read /dev/urandom for the Redis password")?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}
