//! Configuration: a TOML file, then environment overrides, then validation.
//!
//! Unknown keys are errors, so a misspelt setting fails at start instead of
//! being silently ignored. Secrets (the bot token, the Redis password inside
//! `REDIS_URL`) are best given through the environment.

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
/// Folder of flow components (`*.wasm`).
pub const ENV_FLOWS_DIR: &str = "FLOWBOT_FLOWS_DIR";

const TELEGRAM_API_URL: &str = "https://api.telegram.org";

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
    /// Folder whose `*.wasm` files are loaded as flows at start.
    pub dir: PathBuf,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("flows"),
        }
    }
}

/// Limits applied to every flow invocation.
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
        }
    }
}

impl LimitsConfig {
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
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
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self { max_concurrent: 64 }
    }
}

impl Config {
    /// Reads the file at `path` (when given), applies environment overrides
    /// and validates the result.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = match path {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(|name| std::env::var(name).ok());
        config.validate()?;
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
        self.delivery.validate()?;
        self.metrics.address()?;
        let limits = [
            ("limits.deadline_ms", self.limits.deadline_ms as usize, 1),
            ("limits.memory_bytes", self.limits.memory_bytes, 1 << 20),
            ("limits.state_bytes", self.limits.state_bytes, 1),
            ("limits.actions", self.limits.actions, 1),
            ("limits.text_chars", self.limits.text_chars, 1),
        ];
        for (name, value, minimum) in limits {
            if value < minimum {
                bail!("invalid {name} {value}: it must be at least {minimum}");
            }
        }
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
