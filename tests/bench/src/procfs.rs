//! CPU time and memory of a process, read from `/proc/<pid>/stat` and
//! `/proc/<pid>/status`, and the CPU time of the whole machine from
//! `/proc/stat`. Linux only.

use std::time::Duration;

use anyhow::{Context, bail};

/// CPU time and resident memory of one process, at the moment it was read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessUsage {
    /// CPU time in user mode, all threads together.
    pub user: Duration,
    /// CPU time in kernel mode, all threads together.
    pub system: Duration,
    /// Resident set size now (`VmRSS`), in bytes.
    pub rss_bytes: u64,
    /// Peak resident set size since the process started (`VmHWM`), in bytes.
    pub peak_rss_bytes: u64,
}

impl ProcessUsage {
    /// Reads the usage of process `pid`. Fails when the process is gone or
    /// is a zombie, whose memory fields the kernel no longer reports.
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let stat_path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&stat_path)
            .with_context(|| format!("failed to read {stat_path}"))?;
        let (user_ticks, system_ticks) =
            parse_cpu_ticks(&stat).with_context(|| format!("unexpected format of {stat_path}"))?;

        let status_path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&status_path)
            .with_context(|| format!("failed to read {status_path}"))?;
        let (Some(rss_kib), Some(peak_kib)) =
            (status_kib(&status, "VmRSS"), status_kib(&status, "VmHWM"))
        else {
            bail!("{status_path} has no VmRSS or VmHWM: the process has exited");
        };

        let tick_nanos = clock_tick_nanos();
        Ok(Self {
            user: Duration::from_nanos(user_ticks.saturating_mul(tick_nanos)),
            system: Duration::from_nanos(system_ticks.saturating_mul(tick_nanos)),
            rss_bytes: rss_kib * 1024,
            peak_rss_bytes: peak_kib * 1024,
        })
    }

    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }

    /// Returns the CPU time spent between `earlier` and `self`.
    pub fn cpu_since(&self, earlier: &ProcessUsage) -> Duration {
        self.cpu().saturating_sub(earlier.cpu())
    }
}

/// CPU time of the whole machine since boot, all CPUs together.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MachineUsage {
    /// Time the CPUs spent on any work: user, nice, system, irq, softirq, steal.
    pub busy: Duration,
    /// `busy` plus idle and iowait time.
    pub total: Duration,
    /// Number of CPUs (`cpuN` lines).
    pub cpus: usize,
}

impl MachineUsage {
    pub fn read() -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("failed to read /proc/stat")?;
        let (busy_ticks, total_ticks, cpus) =
            parse_machine_ticks(&stat).context("unexpected format of /proc/stat")?;
        let tick_nanos = clock_tick_nanos();
        Ok(Self {
            busy: Duration::from_nanos(busy_ticks.saturating_mul(tick_nanos)),
            total: Duration::from_nanos(total_ticks.saturating_mul(tick_nanos)),
            cpus,
        })
    }

    /// Returns the number of CPUs kept busy on average between `earlier`
    /// and `self`, by any process.
    pub fn busy_cpus_since(&self, earlier: &MachineUsage) -> f64 {
        let busy = self.busy.saturating_sub(earlier.busy).as_secs_f64();
        let total = self.total.saturating_sub(earlier.total).as_secs_f64();
        if total <= 0.0 {
            return 0.0;
        }
        busy / total * self.cpus as f64
    }
}

/// Returns `(busy, total, cpus)` from `/proc/stat`, the times in clock ticks.
fn parse_machine_ticks(stat: &str) -> Option<(u64, u64, usize)> {
    let summary = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = summary
        .split_whitespace()
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // The fields are user, nice, system, idle, iowait, irq, softirq and
    // steal. Guest time is already part of user and nice.
    let [user, nice, system, idle, iowait, irq, softirq, steal, ..] = ticks[..] else {
        return None;
    };
    let busy = user + nice + system + irq + softirq + steal;
    let cpus = stat
        .lines()
        .filter(|line| {
            line.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    Some((busy, busy + idle + iowait, cpus))
}

/// Length of one clock tick in nanoseconds, the unit of the CPU times in
/// `/proc/<pid>/stat`.
fn clock_tick_nanos() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks_per_second = u64::try_from(ticks_per_second)
        .ok()
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100);
    1_000_000_000 / ticks_per_second
}

/// Returns `(utime, stime)` in clock ticks, fields 14 and 15 of
/// `/proc/<pid>/stat`. The process name (field 2) is in parentheses and may
/// contain spaces or parentheses, so counting starts after the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Field 3 (state) is the first one after the name, so utime is 11 further.
    let user = fields.nth(11)?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some((user, system))
}

/// Returns the value of a `Name:   1234 kB` line of `/proc/<pid>/status`.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_skip_odd_process_name() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1500 0 0 0 \
                    731 95 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some((731, 95)));
    }

    #[test]
    fn cpu_ticks_reject_truncated_line() {
        assert_eq!(parse_cpu_ticks("4242 (flowbot) S 1 4242"), None);
    }

    #[test]
    fn status_values_are_read_in_kib() {
        let status = "Name:\tflowbot\nVmHWM:\t   81234 kB\nVmRSS:\t   80000 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(81234));
        assert_eq!(status_kib(status, "VmRSS"), Some(80000));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn machine_ticks_count_busy_and_cpus() {
        let stat = "cpu  100 5 50 800 10 3 2 1 0 0\n\
                    cpu0 50 2 25 400 5 1 1 0 0 0\n\
                    cpu1 50 3 25 400 5 2 1 1 0 0\n\
                    intr 12345\n";
        assert_eq!(parse_machine_ticks(stat), Some((161, 971, 2)));
    }

    #[test]
    fn own_process_is_readable() {
        let usage = ProcessUsage::read(std::process::id()).expect("own /proc entry");
        assert!(usage.peak_rss_bytes >= usage.rss_bytes);
        assert!(usage.rss_bytes > 0);
    }
}
