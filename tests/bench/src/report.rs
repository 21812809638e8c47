//! Figures of a finished run: throughput, latency percentiles, error counts,
//! CPU and memory, printed for people and as one JSON line for machines.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use botapi_sim::{ApiCall, BotMessage};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::host_metrics::Stage;
use crate::load::{ErrorCounts, Stop, UserOutcome};
use crate::probes::ProbeReport;
use crate::procfs::{MachineUsage, ProcessUsage};

/// The settings of a run, echoed in the report.
#[derive(Clone, Debug)]
pub struct Settings {
    pub label: Option<String>,
    pub users: usize,
    pub rounds: usize,
    pub slow_chats: usize,
    pub slow_delay: Duration,
    pub rate_limited: f64,
    pub retry_after_secs: u32,
    pub seed: u64,
    pub max_concurrent: Option<usize>,
    pub global_per_second: u32,
    pub chat_per_second: Option<f64>,
    pub chat_burst: Option<u32>,
    /// Pause of each user between a reply and its next step.
    pub think: Duration,
}

/// Why the load phase ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// Every user finished or stopped on a reply timeout.
    Finished,
    TimedOut,
    Interrupted,
    /// The host exited during the load, with this status.
    HostExited(String),
}

/// Resource use of one process over the load phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct UsageWindow {
    pub start: ProcessUsage,
    pub end: ProcessUsage,
    /// Highest `VmRSS` seen by the samples taken during the load.
    pub max_sampled_rss_bytes: u64,
}

/// CPU time of the whole machine over the load phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct MachineWindow {
    pub start: MachineUsage,
    pub end: MachineUsage,
}

/// Everything a run collected, as input to [`Report::new`].
pub struct RunData {
    pub settings: Settings,
    pub outcomes: Vec<UserOutcome>,
    /// Every Bot API call the simulator received, in arrival order.
    pub calls: Vec<ApiCall>,
    /// The bot's messages in each user's chat at the end of the run.
    pub messages: HashMap<i64, Vec<BotMessage>>,
    pub load_started: Instant,
    pub load_ended: Instant,
    pub host: UsageWindow,
    pub redis: UsageWindow,
    pub bench: UsageWindow,
    pub machine: MachineWindow,
    /// Simulator events that the router missed. Their replies were found by
    /// reading the chat and have no end-to-end latency sample.
    pub events_lost: u64,
    /// Chats that belong to no simulated user (the warm-up user's chat).
    pub other_known_chats: HashSet<i64>,
    pub end: RunEnd,
}

/// Percentiles of one set of latency samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    /// Returns the nearest-rank percentiles of `samples`, or `None` when
    /// there are none.
    pub fn of(mut samples: Vec<Duration>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |fraction: f64| {
            let index = (fraction * samples.len() as f64).ceil() as usize;
            samples[index.clamp(1, samples.len()) - 1]
        };
        Some(Self {
            count: samples.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        })
    }

    fn to_json(latency: Option<&Latency>) -> Value {
        match latency {
            None => Value::Null,
            Some(latency) => json!({
                "count": latency.count,
                "p50_ms": millis(latency.p50),
                "p99_ms": millis(latency.p99),
                "max_ms": millis(latency.max),
            }),
        }
    }

    fn to_text(latency: Option<&Latency>) -> String {
        match latency {
            None => "no samples".to_owned(),
            Some(latency) => format!(
                "p50 {:>8}  p99 {:>8}  max {:>8}  ({} samples)",
                format_duration(latency.p50),
                format_duration(latency.p99),
                format_duration(latency.max),
                latency.count
            ),
        }
    }
}

/// Latency samples of one group of users.
#[derive(Default)]
struct Samples {
    /// Update pushed until the router received the simulator's event for
    /// the reply.
    reply: Vec<Duration>,
    /// Update pushed until the host's successful sendMessage request arrived
    /// at the simulator.
    request: Vec<Duration>,
    /// `reply - request` of each step that has both.
    simulator_share: Vec<Duration>,
    /// `reply` of the steps whose reply was first rejected with 429.
    rate_limited_reply: Vec<Duration>,
    /// `reply` of the other steps.
    not_rate_limited_reply: Vec<Duration>,
}

/// 429 replies served and how the host waited before retrying.
#[derive(Debug, Default)]
struct FloodControl {
    served: usize,
    send_message_calls: usize,
    /// Gaps between a 429 and the next sendMessage to the same chat.
    retry_gaps: Vec<Duration>,
    early_retries: usize,
}

/// The figures of a run.
pub struct Report {
    settings: Settings,
    end: RunEnd,
    steps_planned: usize,
    steps_completed: usize,
    slow_steps_completed: usize,
    /// From the first push until the last normal user's last reply.
    elapsed: Duration,
    /// The whole load phase, slow users included: the window of the CPU figures.
    load_window: Duration,
    reply: Option<Latency>,
    request: Option<Latency>,
    simulator_share: Option<Latency>,
    rate_limited_reply: Option<Latency>,
    not_rate_limited_reply: Option<Latency>,
    slow_reply: Option<Latency>,
    slow_request: Option<Latency>,
    errors: ErrorCounts,
    users_stopped_on_timeout: usize,
    steps_unmatched: usize,
    events_lost: u64,
    flood: FloodControl,
    host: UsageWindow,
    redis: UsageWindow,
    bench: UsageWindow,
    machine: MachineWindow,
    /// New workouts builds written to the drop folder during the load.
    pub reloads_written: usize,
    /// Pin changes of workouts to another installed build during the load.
    pub pins_changed: usize,
    /// Swaps of the serving builds that the host counted by the end of the
    /// load, from `flowbot_reloads_total{result="swapped"}`.
    pub swaps: usize,
    /// Time updates spent in each stage inside the host, from its own
    /// histogram, read after the load.
    pub stages: Vec<Stage>,
    /// Figures of the probes run after the load, when asked for.
    pub probes: Option<ProbeReport>,
}

impl Report {
    pub fn new(data: &RunData) -> Self {
        let ok_sends = successful_sends_by_chat(&data.calls);
        let mut normal = Samples::default();
        let mut slow = Samples::default();
        let mut errors = ErrorCounts::default();
        let mut steps_unmatched = 0;
        let mut steps_completed = 0;
        let mut slow_steps_completed = 0;
        let mut normal_finished_at = data.load_started;
        let mut every_normal_user_finished = true;

        for outcome in &data.outcomes {
            errors.add(&outcome.errors);
            let chat = outcome.plan.user.id;
            let messages = data.messages.get(&chat).map(Vec::as_slice).unwrap_or(&[]);
            let sends = ok_sends.get(&chat).map(Vec::as_slice).unwrap_or(&[]);
            let samples = if outcome.plan.slow {
                &mut slow
            } else {
                &mut normal
            };

            for record in &outcome.steps {
                let Some(reply_id) = record.reply_id else {
                    continue;
                };
                if outcome.plan.slow {
                    slow_steps_completed += 1;
                } else {
                    steps_completed += 1;
                    if let Some(observed_at) = record.observed_at {
                        normal_finished_at = normal_finished_at.max(observed_at);
                    }
                }

                let reply = record.observed_at.map(|at| at - record.pushed_at);
                let request = request_arrival(messages, sends, reply_id)
                    .map(|received_at| received_at.saturating_duration_since(record.pushed_at));
                if request.is_none() {
                    steps_unmatched += 1;
                }
                if let Some(reply) = reply {
                    samples.reply.push(reply);
                    if record.rate_limited {
                        samples.rate_limited_reply.push(reply);
                    } else {
                        samples.not_rate_limited_reply.push(reply);
                    }
                }
                if let Some(request) = request {
                    samples.request.push(request);
                }
                if let (Some(reply), Some(request)) = (reply, request) {
                    samples.simulator_share.push(reply.saturating_sub(request));
                }
            }
            if !outcome.plan.slow && outcome.stop.is_some() {
                every_normal_user_finished = false;
            }
        }
        errors.misrouted += sends_to_unknown_chats(data) as u64;

        // Throughput covers the normal users only, because with slow chats the
        // run lasts as long as the slowest dialog.
        let finished_at = if every_normal_user_finished {
            normal_finished_at
        } else {
            data.load_ended
        };
        let users_stopped_on_timeout = data
            .outcomes
            .iter()
            .filter(|outcome| matches!(outcome.stop, Some(Stop::ReplyTimeout(_))))
            .count();

        Self {
            settings: data.settings.clone(),
            end: data.end.clone(),
            steps_planned: data
                .outcomes
                .iter()
                .map(|outcome| outcome.plan.steps())
                .sum(),
            steps_completed,
            slow_steps_completed,
            elapsed: finished_at.saturating_duration_since(data.load_started),
            load_window: data.load_ended.saturating_duration_since(data.load_started),
            reply: Latency::of(normal.reply),
            request: Latency::of(normal.request),
            simulator_share: Latency::of(normal.simulator_share),
            rate_limited_reply: Latency::of(normal.rate_limited_reply),
            not_rate_limited_reply: Latency::of(normal.not_rate_limited_reply),
            slow_reply: Latency::of(slow.reply),
            slow_request: Latency::of(slow.request),
            errors,
            users_stopped_on_timeout,
            steps_unmatched,
            events_lost: data.events_lost,
            flood: flood_control(&data.calls, data.settings.retry_after_secs),
            host: data.host,
            redis: data.redis,
            bench: data.bench,
            machine: data.machine,
            reloads_written: 0,
            pins_changed: 0,
            swaps: 0,
            stages: Vec::new(),
            probes: None,
        }
    }

    /// True when every planned step got its reply and nothing went wrong.
    pub fn passed(&self) -> bool {
        self.end == RunEnd::Finished
            && self.errors.is_clean()
            && self.steps_completed + self.slow_steps_completed == self.steps_planned
            && self.flood.early_retries == 0
    }

    /// Steps left when the run ended: not sent, or sent and still waiting
    /// for their reply. Steps whose reply timed out count as missing instead.
    pub fn steps_unfinished(&self) -> usize {
        self.steps_planned
            .saturating_sub(self.steps_completed + self.slow_steps_completed)
            .saturating_sub(self.errors.missing as usize)
    }

    pub fn steps_per_second(&self) -> f64 {
        self.steps_completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Returns the report for people, several lines.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "flowbot bench: {}", self.describe_settings());
        row(&mut out, "result", self.verdict());
        let slow_note = if self.settings.slow_chats > 0 {
            " (slow chats not counted)"
        } else {
            ""
        };
        row(
            &mut out,
            "throughput",
            format!(
                "{} dialog steps in {:.2} s = {:.0} steps/s{slow_note}",
                self.steps_completed,
                self.elapsed.as_secs_f64(),
                self.steps_per_second(),
            ),
        );

        let mut latencies = vec![
            ("latency", &self.reply),
            ("  to request", &self.request),
            ("  sim + router", &self.simulator_share),
        ];
        if self.settings.rate_limited > 0.0 {
            latencies.push(("  429 steps", &self.rate_limited_reply));
            latencies.push(("  other steps", &self.not_rate_limited_reply));
        }
        if self.settings.slow_chats > 0 {
            latencies.push(("slow chats", &self.slow_reply));
            latencies.push(("  to request", &self.slow_request));
        }
        for (label, latency) in latencies {
            row(&mut out, label, Latency::to_text(latency.as_ref()));
        }

        for (index, stage) in self.stages.iter().enumerate() {
            let label = if index == 0 { "host stages" } else { "" };
            row(&mut out, label, stage.to_text());
        }
        row(&mut out, "host", self.describe_usage(&self.host));
        row(
            &mut out,
            "",
            format!(
                "peak RSS {} (VmHWM), max sampled RSS {}",
                format_bytes(self.host.end.peak_rss_bytes),
                format_bytes(self.host.max_sampled_rss_bytes)
            ),
        );
        row(&mut out, "redis-server", self.describe_usage(&self.redis));
        row(&mut out, "bench process", self.describe_usage(&self.bench));
        row(&mut out, "machine", self.describe_machine());

        let errors = &self.errors;
        row(
            &mut out,
            "errors",
            format!(
                "misrouted {}, duplicated {}, missing {}, out of order {}",
                errors.misrouted, errors.duplicated, errors.missing, errors.out_of_order
            ),
        );
        row(
            &mut out,
            "",
            format!(
                "unexpected {}, late {}, unfinished steps {}",
                errors.unexpected,
                errors.late,
                self.steps_unfinished()
            ),
        );
        if self.settings.rate_limited > 0.0 {
            row(&mut out, "flood control", self.describe_flood_control());
        }
        if self.events_lost > 0 || self.steps_unmatched > 0 {
            row(
                &mut out,
                "measurement",
                format!(
                    "{} simulator events missed by the router, \
                     {} replies without a matching sendMessage call",
                    self.events_lost, self.steps_unmatched
                ),
            );
        }
        if self.reloads_written > 0 {
            row(
                &mut out,
                "reloads",
                format!(
                    "{} new workouts builds written during the load, {} swaps by its end",
                    self.reloads_written, self.swaps
                ),
            );
        }
        if self.pins_changed > 0 {
            row(
                &mut out,
                "reloads",
                format!(
                    "{} pin changes of workouts to another installed build during the load, \
                     {} swaps by its end",
                    self.pins_changed, self.swaps
                ),
            );
        }
        if let Some(probes) = &self.probes {
            out.push_str(&probes.to_text());
        }
        out
    }

    /// Returns the report as one line of JSON.
    pub fn to_json(&self) -> Value {
        let mut report = json!({
            "bench": "flowbot",
            "label": self.settings.label,
            "passed": self.passed(),
            "end": self.end_name(),
            "steps_planned": self.steps_planned,
            "steps_completed": self.steps_completed,
            "slow_steps_completed": self.slow_steps_completed,
            "steps_unfinished": self.steps_unfinished(),
            "elapsed_s": self.elapsed.as_secs_f64(),
            "load_window_s": self.load_window.as_secs_f64(),
            "steps_per_second": self.steps_per_second(),
            "host": self.usage_json(&self.host),
            "redis": self.usage_json(&self.redis),
            "bench_process": self.usage_json(&self.bench),
            "machine": {
                "cpus": self.machine.end.cpus,
                "busy_cpus": self.machine_busy_cpus(),
                "other_processes_cpus": self.other_processes_cpus(),
            },
            "users_stopped_on_timeout": self.users_stopped_on_timeout,
            "events_lost": self.events_lost,
            "steps_unmatched": self.steps_unmatched,
        });
        // Built in parts, because one json! call this large exceeds the
        // compiler's default macro recursion limit.
        let fields = report.as_object_mut().expect("json! built an object");
        fields.insert("settings".to_owned(), self.settings_json());
        fields.insert("latency".to_owned(), self.latency_json());
        fields.insert("errors".to_owned(), self.errors_json());
        fields.insert("reloads_written".to_owned(), json!(self.reloads_written));
        fields.insert("pins_changed".to_owned(), json!(self.pins_changed));
        fields.insert("swaps".to_owned(), json!(self.swaps));
        let stages: Vec<Value> = self.stages.iter().map(Stage::to_json).collect();
        fields.insert("host_stages".to_owned(), json!(stages));
        if let Some(probes) = &self.probes {
            fields.insert("probes".to_owned(), probes.to_json());
        }
        report
    }

    fn settings_json(&self) -> Value {
        let settings = &self.settings;
        json!({
            "users": settings.users,
            "rounds": settings.rounds,
            "slow_chats": settings.slow_chats,
            "slow_delay_ms": millis(settings.slow_delay),
            "rate_limited": settings.rate_limited,
            "retry_after_secs": settings.retry_after_secs,
            "seed": settings.seed,
            "max_concurrent": settings.max_concurrent,
            "global_per_second": settings.global_per_second,
            "chat_per_second": settings.chat_per_second,
            "chat_burst": settings.chat_burst,
            "think_ms": millis(settings.think),
        })
    }

    fn latency_json(&self) -> Value {
        json!({
            "reply": Latency::to_json(self.reply.as_ref()),
            "to_request": Latency::to_json(self.request.as_ref()),
            "simulator_share": Latency::to_json(self.simulator_share.as_ref()),
            "rate_limited_steps": Latency::to_json(self.rate_limited_reply.as_ref()),
            "other_steps": Latency::to_json(self.not_rate_limited_reply.as_ref()),
            "slow_reply": Latency::to_json(self.slow_reply.as_ref()),
            "slow_to_request": Latency::to_json(self.slow_request.as_ref()),
        })
    }

    fn errors_json(&self) -> Value {
        let errors = &self.errors;
        let flood = &self.flood;
        json!({
            "misrouted": errors.misrouted,
            "duplicated": errors.duplicated,
            "missing": errors.missing,
            "out_of_order": errors.out_of_order,
            "unexpected": errors.unexpected,
            "late": errors.late,
            "served_429": flood.served,
            "send_message_calls": flood.send_message_calls,
            "early_retries": flood.early_retries,
            "min_retry_gap_ms": flood.retry_gaps.iter().min().map(|gap| millis(*gap)),
        })
    }

    fn describe_settings(&self) -> String {
        let settings = &self.settings;
        let mut text = format!(
            "{} users x {} rounds of /log, max_concurrent {}",
            settings.users,
            settings.rounds,
            settings
                .max_concurrent
                .map_or("at the host's default".to_owned(), |value| value
                    .to_string())
        );
        let chat_pacing = match (settings.chat_per_second, settings.chat_burst) {
            (None, None) => "per-chat pacing at the host's default".to_owned(),
            (rate, burst) => format!(
                "per-chat pacing {}/s, burst {}",
                rate.map_or("default".to_owned(), |rate| rate.to_string()),
                burst.map_or("default".to_owned(), |burst| burst.to_string())
            ),
        };
        let _ = write!(
            text,
            ", {chat_pacing}, global pacing {}/s",
            settings.global_per_second
        );
        if !settings.think.is_zero() {
            let _ = write!(text, ", {} ms think time", settings.think.as_millis());
        }
        if settings.slow_chats > 0 {
            let _ = write!(
                text,
                ", {} slow chats (+{} ms per call)",
                settings.slow_chats,
                settings.slow_delay.as_millis()
            );
        }
        if settings.rate_limited > 0.0 {
            let _ = write!(
                text,
                ", {:.1}% of replies rejected once with 429 retry_after {}",
                settings.rate_limited * 100.0,
                settings.retry_after_secs
            );
        }
        text
    }

    fn end_name(&self) -> String {
        match &self.end {
            RunEnd::Finished => "finished".to_owned(),
            RunEnd::TimedOut => "timed out".to_owned(),
            RunEnd::Interrupted => "interrupted".to_owned(),
            RunEnd::HostExited(status) => format!("host exited ({status})"),
        }
    }

    fn verdict(&self) -> String {
        if self.passed() {
            return "passed: every reply arrived once, in order, in its own chat".to_owned();
        }
        let mut problems = Vec::new();
        if self.end != RunEnd::Finished {
            problems.push(self.end_name());
        }
        if !self.errors.is_clean() {
            problems.push("wrong, repeated or missing replies".to_owned());
        }
        if self.flood.early_retries > 0 {
            problems.push("retries sooner than retry_after".to_owned());
        }
        format!("FAILED: {}", problems.join(", "))
    }

    /// Returns the average number of cores `usage` kept busy over the load.
    fn cores(&self, usage: &UsageWindow) -> f64 {
        usage.end.cpu_since(&usage.start).as_secs_f64() / self.load_window.as_secs_f64().max(1e-9)
    }

    /// Returns the CPU time of `usage` per step with a reply, slow chats included.
    fn cpu_per_step(&self, usage: &UsageWindow) -> Duration {
        let steps = self.steps_completed + self.slow_steps_completed;
        usage.end.cpu_since(&usage.start) / u32::try_from(steps.max(1)).unwrap_or(u32::MAX)
    }

    fn describe_usage(&self, usage: &UsageWindow) -> String {
        let cpu = usage.end.cpu_since(&usage.start);
        let user = usage.end.user.saturating_sub(usage.start.user);
        let system = usage.end.system.saturating_sub(usage.start.system);
        format!(
            "CPU {:.2} s (user {:.2} s, sys {:.2} s) in the {:.2} s load = {:.2} cores, {} per step",
            cpu.as_secs_f64(),
            user.as_secs_f64(),
            system.as_secs_f64(),
            self.load_window.as_secs_f64(),
            self.cores(usage),
            format_duration(self.cpu_per_step(usage)),
        )
    }

    fn usage_json(&self, usage: &UsageWindow) -> Value {
        json!({
            "cpu_s": usage.end.cpu_since(&usage.start).as_secs_f64(),
            "user_s": usage.end.user.saturating_sub(usage.start.user).as_secs_f64(),
            "sys_s": usage.end.system.saturating_sub(usage.start.system).as_secs_f64(),
            "cpu_total_s": usage.end.cpu().as_secs_f64(),
            "cores": self.cores(usage),
            "cpu_per_step_us": self.cpu_per_step(usage).as_secs_f64() * 1e6,
            "peak_rss_bytes": usage.end.peak_rss_bytes,
            "max_sampled_rss_bytes": usage.max_sampled_rss_bytes,
        })
    }

    fn machine_busy_cpus(&self) -> f64 {
        self.machine.end.busy_cpus_since(&self.machine.start)
    }

    /// CPUs kept busy by processes other than the host, Redis and this one,
    /// such as a build running at the same time.
    fn other_processes_cpus(&self) -> f64 {
        let measured: f64 = [&self.host, &self.redis, &self.bench]
            .iter()
            .map(|usage| self.cores(usage))
            .sum();
        (self.machine_busy_cpus() - measured).max(0.0)
    }

    fn describe_machine(&self) -> String {
        format!(
            "{:.2} of {} CPUs busy during the load, {:.2} of them by other processes",
            self.machine_busy_cpus(),
            self.machine.end.cpus,
            self.other_processes_cpus()
        )
    }

    fn describe_flood_control(&self) -> String {
        let flood = &self.flood;
        let share = flood.served as f64 / flood.send_message_calls.max(1) as f64 * 100.0;
        let min_gap = flood
            .retry_gaps
            .iter()
            .min()
            .map_or("none".to_owned(), |gap| format_duration(*gap));
        format!(
            "{} of {} sendMessage calls answered 429 ({share:.1}%), \
             shortest wait before the retry {min_gap}, retries sooner than retry_after: {}",
            flood.served, flood.send_message_calls, flood.early_retries
        )
    }
}

/// Returns, per chat, the sendMessage calls that succeeded, in arrival order.
fn successful_sends_by_chat(calls: &[ApiCall]) -> HashMap<i64, Vec<&ApiCall>> {
    let mut sends: HashMap<i64, Vec<&ApiCall>> = HashMap::new();
    for call in calls {
        if call.method == "sendMessage"
            && call.status == Some(200)
            && let Some(chat) = call.chat_id
        {
            sends.entry(chat).or_default().push(call);
        }
    }
    sends
}

/// Returns when the request that created message `reply_id` arrived. The
/// n-th successful sendMessage of a chat created its n-th bot message,
/// because the host sends to one chat one request at a time. The text is
/// compared too, so a broken assumption gives no sample instead of a wrong one.
fn request_arrival(messages: &[BotMessage], sends: &[&ApiCall], reply_id: i32) -> Option<Instant> {
    let position = messages
        .iter()
        .position(|message| message.message_id == reply_id)?;
    let call = sends.get(position)?;
    let sent_text = call.params.get("text").and_then(Value::as_str)?;
    (sent_text == messages[position].text).then_some(call.received_at)
}

/// Counts sendMessage calls to chats that belong to no user of the run.
fn sends_to_unknown_chats(data: &RunData) -> usize {
    let users: HashSet<i64> = data
        .outcomes
        .iter()
        .map(|outcome| outcome.plan.user.id)
        .collect();
    data.calls
        .iter()
        .filter(|call| call.method == "sendMessage")
        .filter_map(|call| call.chat_id)
        .filter(|chat| !users.contains(chat) && !data.other_known_chats.contains(chat))
        .count()
}

/// Counts the 429 replies and checks that each retry waited `retry_after`.
fn flood_control(calls: &[ApiCall], retry_after_secs: u32) -> FloodControl {
    let retry_after = Duration::from_secs(u64::from(retry_after_secs));
    let mut flood = FloodControl::default();
    let mut rejected_at: HashMap<i64, Instant> = HashMap::new();
    for call in calls.iter().filter(|call| call.method == "sendMessage") {
        flood.send_message_calls += 1;
        let Some(chat) = call.chat_id else {
            continue;
        };
        if let Some(refused) = rejected_at.remove(&chat) {
            let gap = call.received_at.saturating_duration_since(refused);
            if gap < retry_after {
                flood.early_retries += 1;
            }
            flood.retry_gaps.push(gap);
        }
        if call.status == Some(429) {
            flood.served += 1;
            rejected_at.insert(chat, call.received_at);
        }
    }
    flood
}

/// Appends one line of the text report: `label` in a column of its own.
fn row(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{label:<16}{value}");
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Formats a duration with a unit that keeps three significant digits.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 1e-3 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{:.0} µs", seconds * 1e6)
    }
}

fn format_bytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let latency = Latency::of((1..=100).map(ms).collect()).unwrap();
        assert_eq!(latency.count, 100);
        assert_eq!(latency.p50, ms(50));
        assert_eq!(latency.p99, ms(99));
        assert_eq!(latency.max, ms(100));
    }

    #[test]
    fn percentiles_of_one_sample() {
        let latency = Latency::of(vec![ms(7)]).unwrap();
        assert_eq!(latency.p50, ms(7));
        assert_eq!(latency.p99, ms(7));
    }

    #[test]
    fn no_samples_no_percentiles() {
        assert_eq!(Latency::of(Vec::new()), None);
    }

    fn send_call(chat: i64, text: &str, status: u16, received_at: Instant) -> ApiCall {
        ApiCall {
            method: "sendMessage".to_owned(),
            chat_id: Some(chat),
            params: json!({ "chat_id": chat, "text": text }),
            status: Some(status),
            received_at,
        }
    }

    fn bot_message(chat: i64, message_id: i32, text: &str) -> BotMessage {
        BotMessage {
            message_id,
            chat_id: chat,
            text: text.to_owned(),
            reply_markup: None,
            parse_mode: None,
            date: 0,
            edit_date: None,
            edits: 0,
            deleted: false,
        }
    }

    #[test]
    fn flood_control_checks_retry_gap() {
        let start = Instant::now();
        let calls = [
            send_call(1, "a", 429, start),
            send_call(2, "b", 429, start),
            send_call(1, "a", 200, start + ms(1000)),
            send_call(2, "b", 200, start + ms(400)),
        ];
        let flood = flood_control(&calls, 1);
        assert_eq!(flood.served, 2);
        assert_eq!(flood.send_message_calls, 4);
        assert_eq!(flood.early_retries, 1);
        assert_eq!(flood.retry_gaps, [ms(1000), ms(400)]);
    }

    #[test]
    fn request_is_matched_by_position_and_text() {
        let start = Instant::now();
        let messages = [bot_message(1, 2, "first"), bot_message(1, 4, "second")];
        let first = send_call(1, "first", 200, start);
        let second = send_call(1, "second", 200, start + ms(5));
        assert_eq!(
            request_arrival(&messages, &[&first, &second], 4),
            Some(start + ms(5))
        );
        // Sends out of step with the messages give no sample.
        assert_eq!(request_arrival(&messages, &[&second, &first], 4), None);
        assert_eq!(request_arrival(&messages, &[&first], 4), None);
    }

    #[test]
    fn durations_keep_a_readable_unit() {
        assert_eq!(format_duration(ms(1500)), "1.50 s");
        assert_eq!(format_duration(ms(12)), "12.0 ms");
        assert_eq!(format_duration(Duration::from_micros(250)), "250 µs");
    }
}
