//! Pacing of outbound messages within Telegram's limits: per chat, per
//! group and for the whole bot, plus the holds that a 429 answer imposes.
//!
//! Telegram Bot Support's FAQ "My bot is hitting limits, how do I avoid
//! this?" (telegra.ph/Hitting-limits-bot-FAQ) gives about 1 message per
//! second per chat with short bursts, 20 per minute per group and about 30
//! per second overall.
//! Each limit is a token bucket, so short bursts pass at once and longer runs
//! are spread out. Answers to button presses are not messages and are not paced.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// Limits applied to outbound messages, configured under `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PacingConfig {
    /// Sustained messages per second to one chat.
    pub chat_per_second: f64,
    /// Messages to one chat that may go out at once before pacing starts.
    pub chat_burst: u32,
    /// Sustained messages per minute to one group or supergroup.
    pub group_per_minute: f64,
    /// Sustained messages per second across all chats.
    pub global_per_second: f64,
    /// Messages across all chats that may go out at once.
    pub global_burst: u32,
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            chat_per_second: 1.0,
            chat_burst: 3,
            group_per_minute: 20.0,
            global_per_second: 30.0,
            global_burst: 30,
        }
    }
}

impl PacingConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        let rates = [
            self.chat_per_second,
            self.group_per_minute,
            self.global_per_second,
        ];
        anyhow::ensure!(
            rates.iter().all(|rate| rate.is_finite() && *rate > 0.0),
            "invalid delivery limits: every rate must be a positive number"
        );
        anyhow::ensure!(
            self.chat_burst >= 1 && self.global_burst >= 1,
            "invalid delivery limits: bursts must be at least 1"
        );
        Ok(())
    }
}

/// A token bucket: `capacity` tokens, refilled at `rate` tokens per second.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    rate: f64,
    refilled_at: Instant,
}

impl Bucket {
    fn new(capacity: f64, rate: f64, now: Instant) -> Self {
        Self {
            tokens: capacity,
            capacity,
            rate,
            refilled_at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.refilled_at = now;
    }

    /// Time until one token is available; zero when one is available now.
    fn wait(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    fn is_full(&self) -> bool {
        self.tokens >= self.capacity
    }
}

/// Per-chat state: its bucket and a flood-control hold.
#[derive(Debug)]
struct ChatPace {
    bucket: Bucket,
    held_until: Option<Instant>,
}

/// Number of chats tracked before idle ones are forgotten.
const PRUNE_THRESHOLD: usize = 10_000;

pub struct Pacer {
    config: PacingConfig,
    state: Mutex<PacerState>,
}

struct PacerState {
    global: Bucket,
    chats: HashMap<i64, ChatPace>,
}

impl Pacer {
    pub fn new(config: PacingConfig) -> Self {
        let global = Bucket::new(
            f64::from(config.global_burst),
            config.global_per_second,
            Instant::now(),
        );
        Self {
            config,
            state: Mutex::new(PacerState {
                global,
                chats: HashMap::new(),
            }),
        }
    }

    /// Waits until a message to `chat_id` may go out, and takes its tokens.
    pub async fn acquire(&self, chat_id: i64) {
        loop {
            let wait = self.try_acquire(chat_id, Instant::now());
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Holds every message to `chat_id` for `wait`, as a 429 answer demands.
    pub fn hold(&self, chat_id: i64, wait: Duration) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("pacer lock poisoned");
        let chat = self.chat_entry(&mut state, chat_id, now);
        let until = now + wait;
        chat.held_until = Some(chat.held_until.map_or(until, |held| held.max(until)));
    }

    /// Takes the tokens and returns zero when all limits allow a message now,
    /// or returns how long to wait without taking anything.
    fn try_acquire(&self, chat_id: i64, now: Instant) -> Duration {
        let mut state = self.state.lock().expect("pacer lock poisoned");
        if state.chats.len() > PRUNE_THRESHOLD {
            state.chats.retain(|_, chat| {
                chat.bucket.refill(now);
                !chat.bucket.is_full() || chat.held_until.is_some_and(|held| held > now)
            });
        }
        state.global.refill(now);
        let global_wait = state.global.wait();

        let chat = self.chat_entry(&mut state, chat_id, now);
        chat.bucket.refill(now);
        let held = chat
            .held_until
            .map_or(Duration::ZERO, |held| held.saturating_duration_since(now));
        let wait = held.max(chat.bucket.wait()).max(global_wait);
        if !wait.is_zero() {
            return wait;
        }
        chat.held_until = None;
        chat.bucket.tokens -= 1.0;
        state.global.tokens -= 1.0;
        Duration::ZERO
    }

    fn chat_entry<'a>(
        &self,
        state: &'a mut PacerState,
        chat_id: i64,
        now: Instant,
    ) -> &'a mut ChatPace {
        state.chats.entry(chat_id).or_insert_with(|| {
            // Group and supergroup ids are negative; their per-minute limit
            // is stricter than the per-chat one, so it replaces it.
            let bucket = if chat_id < 0 {
                let rate = (self.config.group_per_minute / 60.0).min(self.config.chat_per_second);
                Bucket::new(f64::from(self.config.chat_burst), rate, now)
            } else {
                Bucket::new(
                    f64::from(self.config.chat_burst),
                    self.config.chat_per_second,
                    now,
                )
            };
            ChatPace {
                bucket,
                held_until: None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer() -> Pacer {
        Pacer::new(PacingConfig::default())
    }

    /// Sends `count` messages to `chat_id` and returns the virtual time taken.
    async fn send(pacer: &Pacer, chat_id: i64, count: usize) -> Duration {
        let started = Instant::now();
        for _ in 0..count {
            pacer.acquire(chat_id).await;
        }
        started.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn burst_passes_then_one_per_second() {
        let pacer = pacer();
        assert_eq!(send(&pacer, 1001, 3).await, Duration::ZERO);
        let paced = send(&pacer, 1001, 2).await;
        assert!(paced >= Duration::from_secs(2), "{paced:?}");
        assert!(paced < Duration::from_millis(2100), "{paced:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn chats_are_paced_separately() {
        let pacer = pacer();
        send(&pacer, 1001, 3).await;
        assert_eq!(send(&pacer, 1002, 3).await, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn group_gets_twenty_per_minute() {
        let pacer = pacer();
        let elapsed = send(&pacer, -100123, 23).await;
        // 3 at once, then 20 more at one per 3 seconds.
        assert!(elapsed >= Duration::from_secs(59), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn global_limit_spans_chats() {
        let pacer = pacer();
        let started = Instant::now();
        for chat_id in 0..60 {
            pacer.acquire(chat_id).await;
        }
        // 30 at once, then 30 more at 30 per second.
        assert!(
            started.elapsed() >= Duration::from_millis(990),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hold_delays_only_that_chat() {
        let pacer = pacer();
        pacer.hold(1001, Duration::from_secs(222));
        assert_eq!(send(&pacer, 1002, 1).await, Duration::ZERO);
        let held = send(&pacer, 1001, 1).await;
        assert!(held >= Duration::from_secs(222), "{held:?}");
    }

    #[test]
    fn zero_rate_is_invalid() {
        let config = PacingConfig {
            global_per_second: 0.0,
            ..PacingConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
