//! Configuration: a TOML file, then environment overrides, then validation.
//!
//! Unknown keys are errors, so a misspelt setting fails at start instead of
//! being silently ignored. Secrets (the bot token, the Redis password inside
//! `REDIS_URL`) are best given through the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

pub use crate::telegram::pacing::PacingConfig;

/// Bot token, the name teloxide and its ecosystem use.
pub const ENV_TOKEN: &str = "TELOXIDE_TOKEN";
/// Bot API base URL, for a local Bot API server or the simulator.
pub const ENV_API_URL: &str = "TELOXIDE_API_URL";
/// Redis connection URL, for example `redis://:password@127.0.0.1:6379/0`.
pub const ENV_REDIS_URL: &str = "REDIS_URL";
/// Drop folder of flow builds (`*.wasm`).
pub const ENV_FLOWS_DIR: &str = "FLOWBOT_FLOWS_DIR";
/// Environment whose pin file the host applies, for example `prod`.
pub const ENV_ENVIRONMENT: &str = "FLOWBOT_ENV";

const TELEGRAM_API_URL: &str = "https://api.telegram.org";
/// The address space of a 32-bit linear memory, the most a flow can use.
const MAX_MEMORY_BYTES: usize = 4 << 30;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub telegram: TelegramConfig,
    pub redis: RedisConfig,
    pub flows: FlowsConfig,
    pub limits: LimitsConfig,
    pub dispatch: DispatchConfig,
    pub delivery: PacingConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramConfig {
    /// Bot token; prefer `TELOXIDE_TOKEN` over writing it into a file.
    pub token: Option<String>,
    pub api_url: String,
    /// Long-poll timeout passed to `getUpdates`, in seconds.
    pub poll_timeout_secs: u32,
    /// Timeout of every other Bot API request, in seconds.
    pub request_timeout_secs: u64,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            token: None,
            api_url: TELEGRAM_API_URL.to_owned(),
            poll_timeout_secs: 30,
            request_timeout_secs: 20,
        }
    }
}

impl TelegramConfig {
    /// Client-side timeout of a `getUpdates` call: longer than the long poll,
    /// so an idle poll is never cut off, and finite, so a hung connection is.
    pub fn poll_request_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.poll_timeout_secs) + 15)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    /// First segment of every key, so several bots or apps can share a database.
    pub key_prefix: String,
    /// Days after its last write that a conversation's record expires; 0 keeps
    /// records forever.
    pub state_ttl_days: u32,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/0".to_owned(),
            key_prefix: "flowbot".to_owned(),
            state_ttl_days: 180,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowsConfig {
    /// Drop folder: every `*.wasm` written here is installed into the
    /// plugin store, at start and, with `watch`, whenever it changes.
    pub dir: PathBuf,
    /// Plugin store of every installed build; `<dir>/.store` when absent.
    pub store: Option<PathBuf>,
    /// Folder of the pin files, one `<environment>.toml` per environment.
    pub environments: PathBuf,
    /// Environment whose pin file is applied.
    pub environment: String,
    /// Reloads when a build or a pin file changes, without a restart.
    pub watch: bool,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("flows"),
            store: None,
            environments: PathBuf::from("environments"),
            environment: crate::registry::pins::DEV_ENVIRONMENT.to_owned(),
            watch: true,
        }
    }
}

impl FlowsConfig {
    /// The plugin store's folder.
    pub fn store_dir(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| self.dir.join(".store"))
    }
}

/// Limits applied to every flow invocation, with overrides per flow in
/// `[limits.flows.<name>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Wall-clock deadline of one call into a flow, in milliseconds.
    pub deadline_ms: u64,
    /// Cap on the total linear memory of one flow instance, in bytes.
    pub memory_bytes: usize,
    /// Cap on the state a flow may return, in bytes.
    pub state_bytes: usize,
    /// Cap on the number of actions one call may return.
    pub actions: usize,
    /// Cap on the characters of one text a flow sends or edits; longer
    /// texts than Telegram's 4,096 are split into several messages.
    pub text_chars: usize,
    /// Failures of one flow version within `breaker_window_secs` after
    /// which new conversations are turned away from it; 0 turns this off.
    pub breaker_failures: usize,
    /// Span over which failures count, and how long new conversations are
    /// turned away, in seconds.
    pub breaker_window_secs: u64,
    /// Overrides for single flows, by flow name.
    pub flows: BTreeMap<String, FlowLimits>,
}

/// The limits one flow gets where they differ from `[limits]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowLimits {
    pub deadline_ms: Option<u64>,
    pub memory_bytes: Option<usize>,
    pub state_bytes: Option<usize>,
    pub actions: Option<usize>,
    pub text_chars: Option<usize>,
}

/// The limits of one invocation, after the flow's overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub deadline_ms: u64,
    pub memory_bytes: usize,
    pub state_bytes: usize,
    pub actions: usize,
    pub text_chars: usize,
}

impl Limits {
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            deadline_ms: 2_000,
            memory_bytes: 64 << 20,
            state_bytes: 256 << 10,
            actions: 50,
            text_chars: 16_384,
            breaker_failures: 5,
            breaker_window_secs: 60,
            flows: BTreeMap::new(),
        }
    }
}

impl LimitsConfig {
    /// Returns the limits of flow `name`: its overrides, else the defaults.
    pub fn for_flow(&self, name: &str) -> Limits {
        let overrides = self.flows.get(name).cloned().unwrap_or_default();
        Limits {
            deadline_ms: overrides.deadline_ms.unwrap_or(self.deadline_ms),
            memory_bytes: overrides.memory_bytes.unwrap_or(self.memory_bytes),
            state_bytes: overrides.state_bytes.unwrap_or(self.state_bytes),
            actions: overrides.actions.unwrap_or(self.actions),
            text_chars: overrides.text_chars.unwrap_or(self.text_chars),
        }
    }

    /// Returns the limits of the manifest call when a build is loaded,
    /// before its flow is known: the most generous of every flow's, so a
    /// flow with raised limits is not rejected at load.
    pub fn loading(&self) -> Limits {
        let mut limits = self.for_flow("");
        for name in self.flows.keys() {
            let flow = self.for_flow(name);
            limits.deadline_ms = limits.deadline_ms.max(flow.deadline_ms);
            limits.memory_bytes = limits.memory_bytes.max(flow.memory_bytes);
            limits.state_bytes = limits.state_bytes.max(flow.state_bytes);
            limits.actions = limits.actions.max(flow.actions);
            limits.text_chars = limits.text_chars.max(flow.text_chars);
        }
        limits
    }

    /// Returns the largest memory cap of any flow, which sizes the
    /// instance pool's memory slots.
    pub fn largest_memory_bytes(&self) -> usize {
        self.flows
            .values()
            .filter_map(|flow| flow.memory_bytes)
            .fold(self.memory_bytes, usize::max)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address for `/metrics` and `/healthz`; empty turns the server off.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".to_owned(),
        }
    }
}

impl MetricsConfig {
    /// Returns the address to serve on, or `None` when turned off.
    pub fn address(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        if self.listen.trim().is_empty() {
            return Ok(None);
        }
        let address = self.listen.parse().with_context(|| {
            format!(
                "invalid metrics.listen {:?}: expected an address like 127.0.0.1:9464",
                self.listen
            )
        })?;
        Ok(Some(address))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    /// Maximum number of updates handled at once across all conversations.
    pub max_concurrent: usize,
    /// Maximum number of updates one conversation keeps in memory. Later
    /// ones wait in its inbox in Redis until the queue has room.
    pub max_queued: usize,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 64,
            max_queued: 32,
        }
    }
}

impl Config {
    /// Reads the file at `path` (when given), applies environment overrides
    /// and validates the result.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let config = Self::read(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads the file at `path` (when given) and applies environment
    /// overrides, without validating; `validate` checks what running needs.
    pub fn read(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(|name| std::env::var(name).ok());
        Ok(config)
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Applies the environment overrides; `lookup` is `std::env::var` outside tests.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        if let Some(token) = non_empty(ENV_TOKEN) {
            self.telegram.token = Some(token);
        }
        if let Some(url) = non_empty(ENV_API_URL) {
            self.telegram.api_url = url;
        }
        if let Some(url) = non_empty(ENV_REDIS_URL) {
            self.redis.url = url;
        }
        if let Some(dir) = non_empty(ENV_FLOWS_DIR) {
            self.flows.dir = PathBuf::from(dir);
        }
        if let Some(environment) = non_empty(ENV_ENVIRONMENT) {
            self.flows.environment = environment;
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        match &self.telegram.token {
            None => bail!("missing bot token: set {ENV_TOKEN} or telegram.token"),
            Some(token) if token.is_empty() || token.contains('/') || token.trim() != token => {
                bail!("invalid bot token: it must be non-empty, without '/' or surrounding spaces")
            }
            Some(_) => {}
        }
        let api_url = url::Url::parse(&self.telegram.api_url).ok();
        if !api_url.is_some_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host()) {
            bail!(
                "invalid telegram.api_url {:?}: expected an http:// or https:// URL",
                self.telegram.api_url
            );
        }
        if self.telegram.poll_timeout_secs > 50 {
            bail!("invalid telegram.poll_timeout_secs: Telegram allows at most 50 seconds");
        }
        if self.telegram.request_timeout_secs == 0 {
            bail!("invalid telegram.request_timeout_secs 0: it must be at least 1");
        }
        if let Err(error) = redis::Client::open(self.redis.url.as_str()) {
            // The URL may hold a password, so only the parse error is shown.
            bail!(
                "invalid redis.url (or REDIS_URL): {error}; expected redis://[:password@]host:port/db"
            );
        }
        let prefix_ok = !self.redis.key_prefix.is_empty()
            && self
                .redis
                .key_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_'));
        if !prefix_ok {
            bail!(
                "invalid redis.key_prefix {:?}: use ASCII letters, digits, ':', '-' or '_'",
                self.redis.key_prefix
            );
        }
        if self.dispatch.max_concurrent == 0 {
            bail!("invalid dispatch.max_concurrent: it must be at least 1");
        }
        if self.dispatch.max_queued == 0 {
            bail!("invalid dispatch.max_queued: it must be at least 1");
        }
        self.delivery.validate()?;
        self.metrics.address()?;
        let flow_names = std::iter::once(String::new()).chain(self.limits.flows.keys().cloned());
        for flow in flow_names {
            let limits = self.limits.for_flow(&flow);
            let section = if flow.is_empty() {
                "limits".to_owned()
            } else {
                format!("limits.flows.{flow}")
            };
            let checks = [
                ("deadline_ms", limits.deadline_ms as usize, 1),
                ("memory_bytes", limits.memory_bytes, 1 << 20),
                ("state_bytes", limits.state_bytes, 1),
                ("actions", limits.actions, 1),
                ("text_chars", limits.text_chars, 1),
            ];
            for (name, value, minimum) in checks {
                if value < minimum {
                    bail!("invalid {section}.{name} {value}: it must be at least {minimum}");
                }
            }
            if limits.memory_bytes > MAX_MEMORY_BYTES {
                bail!(
                    "invalid {section}.memory_bytes {}: it must be at most {MAX_MEMORY_BYTES} (4 GiB)",
                    limits.memory_bytes
                );
            }
        }
        crate::registry::pins::validate_environment_name(&self.flows.environment)
            .context("invalid flows.environment")?;
        if !self.flows.dir.is_dir() {
            bail!(
                "flows folder {} not found: set flows.dir or {ENV_FLOWS_DIR} (scripts/build-flows fills target/flows)",
                self.flows.dir.display()
            );
        }
        Ok(())
    }

    /// Returns the bot token; `validate` has checked that there is one.
    pub fn token(&self) -> &str {
        self.telegram.token.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_an_error() {
        let error = toml::from_str::<Config>("[telegram]\npoll_timeout = 5\n").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `poll_timeout`"),
            "{error}"
        );
    }

    #[test]
    fn environment_overrides_file() {
        let mut config: Config =
            toml::from_str("[redis]\nurl = \"redis://file\"\n[telegram]\ntoken = \"1:file\"\n")
                .unwrap();
        config.apply_env(|name| match name {
            ENV_TOKEN => Some("1:env".to_owned()),
            ENV_REDIS_URL => Some("redis://env".to_owned()),
            ENV_API_URL => Some("  ".to_owned()),
            _ => None,
        });
        assert_eq!(config.token(), "1:env");
        assert_eq!(config.redis.url, "redis://env");
        assert_eq!(config.telegram.api_url, TELEGRAM_API_URL);
    }

    /// A configuration that passes validation, to change one thing in.
    fn valid() -> Config {
        let mut config = Config::default();
        config.telegram.token = Some("1:abc".to_owned());
        config.flows.dir = std::env::temp_dir();
        config
    }

    #[test]
    fn invalid_values_name_the_setting() {
        type Change = fn(&mut Config);
        let cases: Vec<(Change, &str)> = vec![
            (
                |c| c.telegram.token = Some(String::new()),
                "invalid bot token",
            ),
            (
                |c| c.telegram.api_url = "http://".to_owned(),
                "invalid telegram.api_url",
            ),
            (
                |c| c.telegram.request_timeout_secs = 0,
                "telegram.request_timeout_secs 0",
            ),
            (
                |c| c.redis.url = "localhost:6379".to_owned(),
                "invalid redis.url",
            ),
            (
                |c| c.redis.key_prefix = "a*b".to_owned(),
                "invalid redis.key_prefix",
            ),
            (|c| c.limits.state_bytes = 0, "limits.state_bytes 0"),
            (|c| c.limits.actions = 0, "limits.actions 0"),
            (|c| c.limits.text_chars = 0, "limits.text_chars 0"),
            (|c| c.limits.memory_bytes = 1024, "limits.memory_bytes 1024"),
            (
                |c| {
                    let overrides = FlowLimits {
                        deadline_ms: Some(0),
                        ..FlowLimits::default()
                    };
                    c.limits.flows.insert("workouts".to_owned(), overrides);
                },
                "limits.flows.workouts.deadline_ms 0",
            ),
            (
                |c| c.flows.dir = "/nonexistent/flows".into(),
                "flows folder /nonexistent/flows not found",
            ),
        ];
        assert!(valid().validate().is_ok());
        for (change, expected) in cases {
            let mut config = valid();
            change(&mut config);
            let error = config.validate().unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn flow_limits_override_the_defaults() {
        let config: Config = toml::from_str(
            "[limits]\ndeadline_ms = 1500\n[limits.flows.workouts]\ndeadline_ms = 300\nmemory_bytes = 134217728\n",
        )
        .unwrap();
        let workouts = config.limits.for_flow("workouts");
        assert_eq!(workouts.deadline_ms, 300);
        assert_eq!(workouts.memory_bytes, 128 << 20);
        assert_eq!(workouts.actions, 50);
        let exercises = config.limits.for_flow("exercises");
        assert_eq!(exercises.deadline_ms, 1500);
        assert_eq!(exercises.memory_bytes, 64 << 20);
        assert_eq!(config.limits.largest_memory_bytes(), 128 << 20);
    }

    #[test]
    fn missing_token_is_rejected() {
        let error = Config::default().validate().unwrap_err();
        assert!(error.to_string().contains(ENV_TOKEN), "{error}");
    }

    #[test]
    fn poll_request_timeout_exceeds_long_poll() {
        let telegram = TelegramConfig::default();
        let long_poll = Duration::from_secs(telegram.poll_timeout_secs.into());
        assert!(telegram.poll_request_timeout() > long_poll);
    }
}
