//! A circuit breaker per flow version: when one version fails repeatedly
//! within a window, new conversations stop entering it for a while.
//!
//! Conversations already in the flow keep going, so a user is never stranded
//! mid-dialog by someone else's failures. Breakers are keyed by the
//! component's digest, so a new build starts with a closed breaker.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tracing::error;

pub struct Breakers {
    /// Failures within `window` that open a breaker.
    threshold: usize,
    /// Span over which failures count, and how long an open breaker stays open.
    window: Duration,
    states: Mutex<HashMap<String, BreakerState>>,
}

#[derive(Default)]
struct BreakerState {
    failures: VecDeque<Instant>,
    open_until: Option<Instant>,
}

impl Breakers {
    /// `threshold` of 0 turns breakers off.
    pub fn new(threshold: usize, window: Duration) -> Self {
        Self {
            threshold,
            window,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failed invocation of the version with `digest`, and opens its
    /// breaker when the failures in the window reach the threshold.
    pub fn record_failure(&self, flow: &str, version: &str, digest: &str) {
        if self.threshold == 0 {
            return;
        }
        let now = Instant::now();
        let mut states = self.states.lock().expect("breaker lock poisoned");
        let state = states.entry(digest.to_owned()).or_default();
        state.failures.push_back(now);
        while state
            .failures
            .front()
            .is_some_and(|at| now.duration_since(*at) > self.window)
        {
            state.failures.pop_front();
        }
        let already_open = state.open_until.is_some_and(|until| until > now);
        if state.failures.len() >= self.threshold && !already_open {
            state.open_until = Some(now + self.window);
            error!(
                flow,
                version,
                digest,
                failures = state.failures.len(),
                window_secs = self.window.as_secs(),
                "flow version keeps failing, new conversations are turned away"
            );
        }
    }

    /// True while new conversations may not enter the version with `digest`.
    pub fn is_open(&self, digest: &str) -> bool {
        let states = self.states.lock().expect("breaker lock poisoned");
        states
            .get(digest)
            .and_then(|state| state.open_until)
            .is_some_and(|until| until > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "5928b26482a4";

    #[tokio::test(start_paused = true)]
    async fn opens_at_threshold_within_window() {
        let breakers = Breakers::new(3, Duration::from_secs(60));
        breakers.record_failure("calc", "1.0.0", DIGEST);
        breakers.record_failure("calc", "1.0.0", DIGEST);
        assert!(!breakers.is_open(DIGEST));
        breakers.record_failure("calc", "1.0.0", DIGEST);
        assert!(breakers.is_open(DIGEST));
        assert!(!breakers.is_open("another-build"));
    }

    #[tokio::test(start_paused = true)]
    async fn closes_after_the_window() {
        let breakers = Breakers::new(2, Duration::from_secs(60));
        breakers.record_failure("calc", "1.0.0", DIGEST);
        breakers.record_failure("calc", "1.0.0", DIGEST);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!breakers.is_open(DIGEST));
    }

    #[tokio::test(start_paused = true)]
    async fn old_failures_do_not_count() {
        let breakers = Breakers::new(2, Duration::from_secs(60));
        breakers.record_failure("calc", "1.0.0", DIGEST);
        tokio::time::advance(Duration::from_secs(61)).await;
        breakers.record_failure("calc", "1.0.0", DIGEST);
        assert!(!breakers.is_open(DIGEST));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_threshold_never_opens() {
        let breakers = Breakers::new(0, Duration::from_secs(60));
        for _ in 0..10 {
            breakers.record_failure("calc", "1.0.0", DIGEST);
        }
        assert!(!breakers.is_open(DIGEST));
    }
}
