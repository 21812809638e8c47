//! Metrics: counters kept in process and served in the Prometheus text
//! format at `/metrics`, next to `/healthz`, on the `[metrics] listen`
//! address.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::dispatch::Dispatcher;
use crate::registry::Registry;
use crate::telegram::polling::PollHealth;

/// A counter's name and its labels, in the order given.
type SeriesKey = (&'static str, Vec<(&'static str, String)>);

/// Every counter of the process.
static COUNTERS: LazyLock<Mutex<BTreeMap<SeriesKey, f64>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// Upper bounds, in seconds, of the buckets of every histogram.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Observations of one histogram series: their sum, their count and a
/// count per bucket. Bucket counts are not cumulative, and the last bucket
/// counts what is above every bound.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// Every histogram of the process.
static HISTOGRAMS: LazyLock<Mutex<BTreeMap<SeriesKey, Histogram>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// Help text of each counter and histogram, printed as `# HELP` lines.
const HELP: &[(&str, &str)] = &[
    ("flowbot_updates_total", "Updates handled, by outcome."),
    (
        "flowbot_dispatch_spilled_total",
        "Updates left in their conversation's inbox in Redis because its in-memory queue was full.",
    ),
    (
        "flowbot_flow_calls_total",
        "Flow invocations, by flow, version, digest (12 hex digits) and result.",
    ),
    (
        "flowbot_flow_call_seconds_total",
        "Wall-clock time spent in flow invocations, by flow and version.",
    ),
    (
        "flowbot_flow_cpu_seconds_total",
        "CPU time spent instantiating and running flows, by flow and version.",
    ),
    (
        "flowbot_telegram_requests_total",
        "Bot API requests for outbound actions, by method and result.",
    ),
    (
        "flowbot_telegram_decisions_total",
        "Error-policy decisions on failed Bot API requests, by method and decision.",
    ),
    (
        "flowbot_update_stage_seconds",
        "Time an update spent in each stage: queued (behind earlier updates of its conversation), handle (waiting for a slot, loading, running the flow, committing), deliver (sending its conversation's outbox).",
    ),
    (
        "flowbot_reloads_total",
        "Reloads and rejections, by result: swapped, rejected (pin file), pin_rejected (a flow's pin), build_rejected (a drop-folder file).",
    ),
];

/// Adds `value` to the counter `name` with `labels`.
pub fn add(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    let labels = labels
        .iter()
        .map(|(key, value)| (*key, (*value).to_owned()))
        .collect();
    let mut counters = COUNTERS.lock().expect("metrics lock poisoned");
    *counters.entry((name, labels)).or_insert(0.0) += value;
}

/// Adds one to the counter `name` with `labels`.
pub fn increment(name: &'static str, labels: &[(&'static str, &str)]) {
    add(name, labels, 1.0);
}

/// Records `seconds` in the histogram `name` with `labels`.
pub fn observe(name: &'static str, labels: &[(&'static str, &str)], seconds: f64) {
    let labels = labels
        .iter()
        .map(|(key, value)| (*key, (*value).to_owned()))
        .collect();
    let bucket = BUCKETS
        .iter()
        .position(|bound| seconds <= *bound)
        .unwrap_or(BUCKETS.len());
    let mut histograms = HISTOGRAMS.lock().expect("metrics lock poisoned");
    let histogram = histograms.entry((name, labels)).or_default();
    histogram.buckets[bucket] += 1;
    histogram.sum += seconds;
    histogram.count += 1;
}

/// Returns the current value of a counter, for tests and reports.
pub fn value(name: &'static str, labels: &[(&'static str, &str)]) -> f64 {
    let labels: Vec<_> = labels
        .iter()
        .map(|(key, value)| (*key, (*value).to_owned()))
        .collect();
    let counters = COUNTERS.lock().expect("metrics lock poisoned");
    counters.get(&(name, labels)).copied().unwrap_or(0.0)
}

/// Renders every counter, plus the polling gauge, in the Prometheus text format.
pub fn render(health: &PollHealth) -> String {
    let counters = COUNTERS.lock().expect("metrics lock poisoned");
    let mut text = String::new();
    let mut current = "";
    for ((name, labels), value) in counters.iter() {
        if *name != current {
            current = name;
            write_header(&mut text, name, "counter");
        }
        let _ = writeln!(
            text,
            "{name}{{{}}} {value}",
            format_labels(labels).join(",")
        );
    }
    drop(counters);
    render_histograms(&mut text);
    if let Some(since) = health.since_last_success() {
        let name = "flowbot_poll_last_success_age_seconds";
        let _ = writeln!(
            text,
            "# HELP {name} Seconds since the last successful getUpdates."
        );
        let _ = writeln!(text, "# TYPE {name} gauge");
        let _ = writeln!(text, "{name} {}", since.as_secs_f64());
    }
    text
}

/// Appends every histogram as `_bucket` series with cumulative counts,
/// then `_sum` and `_count`.
fn render_histograms(text: &mut String) {
    let histograms = HISTOGRAMS.lock().expect("metrics lock poisoned");
    let mut current = "";
    for ((name, labels), histogram) in histograms.iter() {
        if *name != current {
            current = name;
            write_header(text, name, "histogram");
        }
        let labels = format_labels(labels);
        let prefix = if labels.is_empty() {
            String::new()
        } else {
            format!("{},", labels.join(","))
        };
        let mut cumulative = 0;
        for (index, count) in histogram.buckets.iter().enumerate() {
            cumulative += count;
            let bound = BUCKETS
                .get(index)
                .map_or_else(|| "+Inf".to_owned(), f64::to_string);
            let _ = writeln!(text, "{name}_bucket{{{prefix}le=\"{bound}\"}} {cumulative}");
        }
        let labels = labels.join(",");
        let _ = writeln!(text, "{name}_sum{{{labels}}} {}", histogram.sum);
        let _ = writeln!(text, "{name}_count{{{labels}}} {}", histogram.count);
    }
}

/// Writes the `# HELP` line of `name`, when it has one, and its `# TYPE` line.
fn write_header(text: &mut String, name: &str, kind: &str) {
    if let Some((_, help)) = HELP.iter().find(|(known, _)| *known == name) {
        let _ = writeln!(text, "# HELP {name} {help}");
    }
    let _ = writeln!(text, "# TYPE {name} {kind}");
}

/// Formats labels as `key="value"` pairs, escaped.
fn format_labels(labels: &[(&'static str, String)]) -> Vec<String> {
    labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
        .collect()
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What the pages read.
#[derive(Clone)]
struct Pages {
    health: Arc<PollHealth>,
    deaf_after_secs: u64,
    registry: Arc<Registry>,
    dispatcher: Arc<Dispatcher>,
}

/// Serves `/metrics`, `/healthz` and `/flows` on `listen` until `shutdown`.
/// `/healthz` returns 503 when no `getUpdates` succeeded for
/// `deaf_after_secs`; `/flows` returns the serving builds as JSON.
pub async fn serve(
    listen: SocketAddr,
    health: Arc<PollHealth>,
    registry: Arc<Registry>,
    dispatcher: Arc<Dispatcher>,
    deaf_after_secs: u64,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let router = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(health_page))
        .route("/flows", get(flows_page))
        .with_state(Pages {
            health,
            deaf_after_secs,
            registry,
            dispatcher,
        });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "failed to listen for metrics on {listen}: {error} (set [metrics] listen)"
            )
        })?;
    info!(%listen, "metrics and health served");
    tokio::spawn(async move {
        let served =
            axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(error) = served.await {
            warn!(%error, "metrics server failed");
        }
    });
    Ok(())
}

async fn metrics_page(State(pages): State<Pages>) -> impl IntoResponse {
    let mut text = render(&pages.health);
    render_dispatch_gauges(&mut text, &pages.dispatcher);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Appends the dispatcher's gauges: conversations with work in progress and
/// the updates they hold in memory.
fn render_dispatch_gauges(text: &mut String, dispatcher: &Dispatcher) {
    let gauges = [
        (
            "flowbot_dispatch_busy_conversations",
            "Conversations with queued or running updates.",
            dispatcher.busy_conversations(),
        ),
        (
            "flowbot_dispatch_queued_updates",
            "Updates held in memory by conversation queues; more may wait in Redis.",
            dispatcher.queued_updates(),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} gauge");
        let _ = writeln!(text, "{name} {value}");
    }
}

async fn flows_page(State(pages): State<Pages>) -> impl IntoResponse {
    let body = serde_json::to_string_pretty(&pages.registry.status())
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
    ([(header::CONTENT_TYPE, "application/json")], body)
}

async fn health_page(State(pages): State<Pages>) -> impl IntoResponse {
    match pages.health.since_last_success() {
        Some(since) if since.as_secs() <= pages.deaf_after_secs => (
            StatusCode::OK,
            format!("ok: last getUpdates {} s ago\n", since.as_secs()),
        ),
        Some(since) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("deaf: no successful getUpdates for {} s\n", since.as_secs()),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: no successful getUpdates yet\n".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_groups_series_by_name() {
        increment("flowbot_updates_total", &[("outcome", "test-render")]);
        increment("flowbot_updates_total", &[("outcome", "test-render")]);
        add(
            "flowbot_flow_call_seconds_total",
            &[("flow", "w\"x"), ("version", "1")],
            0.5,
        );

        let text = render(&PollHealth::default());
        assert!(
            text.contains("# TYPE flowbot_updates_total counter"),
            "{text}"
        );
        assert!(
            text.contains("flowbot_updates_total{outcome=\"test-render\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("flowbot_flow_call_seconds_total{flow=\"w\\\"x\",version=\"1\"} 0.5"),
            "{text}"
        );
        assert_eq!(
            value("flowbot_updates_total", &[("outcome", "test-render")]),
            2.0
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let labels = [("stage", "test-histogram")];
        observe("flowbot_update_stage_seconds", &labels, 0.0002);
        observe("flowbot_update_stage_seconds", &labels, 0.003);
        observe("flowbot_update_stage_seconds", &labels, 60.0);

        let text = render(&PollHealth::default());
        let series = "flowbot_update_stage_seconds_bucket{stage=\"test-histogram\",le=";
        for (bound, count) in [
            ("0.0005", 1),
            ("0.0025", 1),
            ("0.005", 2),
            ("10", 2),
            ("+Inf", 3),
        ] {
            let line = format!("{series}\"{bound}\"}} {count}");
            assert!(text.contains(&line), "missing {line:?} in {text}");
        }
        assert!(
            text.contains("# TYPE flowbot_update_stage_seconds histogram"),
            "{text}"
        );
        let count = "flowbot_update_stage_seconds_count{stage=\"test-histogram\"} 3";
        assert!(text.contains(count), "{text}");
        let sum: f64 = text
            .lines()
            .find_map(|line| {
                line.strip_prefix("flowbot_update_stage_seconds_sum{stage=\"test-histogram\"} ")
            })
            .and_then(|value| value.parse().ok())
            .expect("a sum line");
        assert!((sum - 60.0032).abs() < 1e-9, "sum {sum}");
    }
}
