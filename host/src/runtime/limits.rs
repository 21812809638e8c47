//! Per-invocation limits: a memory budget shared by all of an instance's
//! memories, the epoch ticker that drives wall-clock deadlines, the
//! instance pool sized to match the caps, and CPU time accounting.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Engine, PoolingAllocationConfig, ResourceLimiter};

use crate::config::LimitsConfig;

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
/// Core module instances one component may create. A Rust `wasm32-wasip2`
/// component has its own module plus the WASI adapter and the shim and
/// fixup modules that wit-component adds, so four; the rest is headroom.
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
/// Linear memories one component may have, all counted by one
/// [`MemoryBudget`]. A Rust component has one; the rest is headroom for
/// components built by other toolchains.
const MEMORIES_PER_COMPONENT: u32 = 4;
/// Tables one component may have.
const TABLES_PER_COMPONENT: u32 = 8;

/// Settings of the pooling instance allocator for `max_instances`
/// component instances at once, with memory slots as large as the largest
/// memory cap, so the pool never refuses what the budget allows.
pub fn pool_config(limits: &LimitsConfig, max_instances: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(max_instances)
        .total_core_instances(max_instances * CORE_INSTANCES_PER_COMPONENT)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(max_instances * MEMORIES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_memories_per_module(MEMORIES_PER_COMPONENT)
        .total_tables(max_instances * TABLES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_tables_per_module(TABLES_PER_COMPONENT)
        .table_elements(TABLE_ELEMENTS)
        .total_stacks(max_instances)
        .max_memory_size(limits.largest_memory_bytes());
    pool
}

/// Polls `future` to completion and returns its output with the CPU time
/// the polling thread spent in it: guest code runs inside `poll`, on
/// whichever worker thread polls it, so time spent waiting is not counted.
pub async fn with_cpu_time<F: Future>(future: F) -> (F::Output, Duration) {
    let mut future = std::pin::pin!(future);
    let mut spent = Duration::ZERO;
    let output = std::future::poll_fn(|context| {
        let started = thread_cpu_time();
        let poll = future.as_mut().poll(context);
        spent += thread_cpu_time().saturating_sub(started);
        poll
    })
    .await;
    (output, spent)
}

/// CPU time of the calling thread so far.
fn thread_cpu_time() -> Duration {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `time`, which lives on this
    // stack frame; CLOCK_THREAD_CPUTIME_ID is supported on Linux and macOS.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    if result != 0 {
        return Duration::ZERO;
    }
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

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

    /// A core module with `count` memories of 600 pages (37.5 MiB) each,
    /// in the binary format: the header, then a memory section.
    fn module_with_memories(count: u8) -> Vec<u8> {
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        // Each memory type: no maximum (0x00), minimum 600 as LEB128.
        let memory = [0x00, 0xd8, 0x04];
        bytes.extend([0x05, 1 + 3 * count, count]);
        for _ in 0..count {
            bytes.extend(memory);
        }
        bytes
    }

    #[test]
    fn two_memories_share_one_cap_in_the_pool() {
        let limits = LimitsConfig::default();
        let mut config = wasmtime::Config::new();
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool_config(
            &limits, 2,
        )));
        let engine = Engine::new(&config).unwrap();
        let instantiate = |count: u8| {
            let module = wasmtime::Module::new(&engine, module_with_memories(count)).unwrap();
            let mut store = wasmtime::Store::new(&engine, MemoryBudget::new(limits.memory_bytes));
            store.limiter(|budget| budget);
            let result = wasmtime::Instance::new(&mut store, &module, &[]);
            (result.is_ok(), store.data().exhausted)
        };

        // One memory of 37.5 MiB fits the 64 MiB cap; two do not, although
        // each alone would.
        assert_eq!(instantiate(1), (true, false));
        assert_eq!(instantiate(2), (false, true));
    }

    #[tokio::test]
    async fn cpu_time_counts_work_not_waiting() {
        let (_, busy) = with_cpu_time(async {
            let started = std::time::Instant::now();
            let mut counter = 0u64;
            while started.elapsed() < Duration::from_millis(30) {
                counter = std::hint::black_box(counter + 1);
            }
        })
        .await;
        let (_, idle) = with_cpu_time(tokio::time::sleep(Duration::from_millis(30))).await;
        // Waiting costs a few microseconds of polling, busy work its time.
        assert!(busy > idle, "busy {busy:?}, idle {idle:?}");
        assert!(idle < Duration::from_millis(20), "idle {idle:?}");
    }

    #[test]
    fn budget_counts_growth_not_size() {
        let mut budget = MemoryBudget::new(100);
        assert!(budget.memory_growing(0, 40, None).unwrap());
        assert!(budget.memory_growing(40, 90, None).unwrap());
        assert!(!budget.memory_growing(90, 110, None).unwrap());
    }
}
