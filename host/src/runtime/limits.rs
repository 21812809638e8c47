//! Per-invocation limits: a memory budget shared by all of an instance's
//! memories, and the epoch ticker that drives wall-clock deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Engine, ResourceLimiter};

/// Interval between epoch increments. A deadline is checked at this
/// granularity, and a running guest yields to the async executor this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Caps the sum of all linear memories and tables of one instance.
///
/// wasmtime's `StoreLimits` caps each memory on its own, so a component with
/// several memories could use a multiple of the cap; this budget counts them
/// together.
#[derive(Debug)]
pub struct MemoryBudget {
    cap_bytes: usize,
    used_bytes: usize,
    /// Set when a growth was refused, so the caller can report the cause.
    pub exhausted: bool,
}

/// Maximum number of elements in one table; generous for Rust guests.
const TABLE_ELEMENTS: usize = 100_000;

impl MemoryBudget {
    pub fn new(cap_bytes: usize) -> Self {
        Self {
            cap_bytes,
            used_bytes: 0,
            exhausted: false,
        }
    }
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used_bytes - current.min(self.used_bytes) + desired;
        if total > self.cap_bytes {
            self.exhausted = true;
            return Ok(false);
        }
        self.used_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > TABLE_ELEMENTS {
            self.exhausted = true;
            return Ok(false);
        }
        Ok(true)
    }
}

/// Increments the engine's epoch every [`EPOCH_TICK`] on a dedicated OS
/// thread, so deadlines fire even when every async worker is busy running a
/// guest that never yields. Stops when dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("flowbot-epoch".to_owned())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("failed to spawn the epoch ticker thread");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_all_memories_together() {
        let mut budget = MemoryBudget::new(100);
        assert!(budget.memory_growing(0, 60, None).unwrap());
        // A second memory would fit the cap alone, but not beside the first.
        assert!(!budget.memory_growing(0, 60, None).unwrap());
        assert!(budget.exhausted);
    }

    #[test]
    fn budget_counts_growth_not_size() {
        let mut budget = MemoryBudget::new(100);
        assert!(budget.memory_growing(0, 40, None).unwrap());
        assert!(budget.memory_growing(40, 90, None).unwrap());
        assert!(!budget.memory_growing(90, 110, None).unwrap());
    }
}
