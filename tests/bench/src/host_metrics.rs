//! The host's own figures, read from its `/metrics` page: counter sums and
//! the time updates spent in each stage (`flowbot_update_stage_seconds`).

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::report::format_duration;

const STAGE_HISTOGRAM: &str = "flowbot_update_stage_seconds";

/// Sends `GET path` to the host's metrics server and returns the body.
pub async fn fetch(address: &str, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("failed to connect to the host's metrics at {address}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}

/// Sums every series of counter `name` in a Prometheus text page. A name
/// that ends in `}` selects the one series with exactly those labels.
pub fn counter_sum(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|line| {
            let rest = line.strip_prefix(name).unwrap_or("!");
            if name.ends_with('}') {
                rest.starts_with(' ')
            } else {
                rest.starts_with('{')
            }
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One stage of the host's stage histogram. The percentiles are the upper
/// bounds of the buckets they fall in, so they are only as fine as the
/// host's buckets.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub count: u64,
    pub mean: Duration,
    pub p50_bound: Option<f64>,
    pub p99_bound: Option<f64>,
}

/// The series of one stage as read from the page.
#[derive(Default)]
struct StageSeries {
    name: String,
    /// Upper bound and cumulative count of each bucket.
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

/// Reads every stage of the stage histogram in `page`, in page order.
pub fn stages(page: &str) -> Vec<Stage> {
    let mut series: Vec<StageSeries> = Vec::new();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(STAGE_HISTOGRAM) else {
            continue;
        };
        let (Some(stage), Some(value)) = (label(rest, "stage"), line.rsplit(' ').next()) else {
            continue;
        };
        let index = match series.iter().position(|known| known.name == stage) {
            Some(index) => index,
            None => {
                series.push(StageSeries {
                    name: stage,
                    ..StageSeries::default()
                });
                series.len() - 1
            }
        };
        let entry = &mut series[index];
        if rest.starts_with("_bucket") {
            let bound = match label(rest, "le").as_deref() {
                Some("+Inf") => f64::INFINITY,
                Some(bound) => bound.parse().unwrap_or(f64::NAN),
                None => continue,
            };
            entry.buckets.push((bound, value.parse().unwrap_or(0)));
        } else if rest.starts_with("_sum") {
            entry.sum = value.parse().unwrap_or(0.0);
        } else if rest.starts_with("_count") {
            entry.count = value.parse().unwrap_or(0);
        }
    }
    series.into_iter().map(Stage::from_series).collect()
}

/// Returns the value of label `name` in the `{...}` part of `series`.
fn label(series: &str, name: &str) -> Option<String> {
    let start = series.find(&format!("{name}=\""))? + name.len() + 2;
    let end = series[start..].find('"')? + start;
    Some(series[start..end].to_owned())
}

/// Returns the upper bound of the bucket that the `quantile` of `count`
/// observations falls in, from cumulative bucket counts.
fn quantile_bound(buckets: &[(f64, u64)], count: u64, quantile: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = (quantile * count as f64).ceil() as u64;
    buckets
        .iter()
        .find(|(_, cumulative)| *cumulative >= rank)
        .map(|(bound, _)| *bound)
}

fn describe_bound(bound: Option<f64>) -> String {
    match bound {
        Some(bound) if bound.is_finite() => {
            format!("<= {}", format_duration(Duration::from_secs_f64(bound)))
        }
        Some(_) => "above the largest bucket".to_owned(),
        None => "-".to_owned(),
    }
}

impl Stage {
    fn from_series(series: StageSeries) -> Self {
        let mean = if series.count > 0 {
            series.sum / series.count as f64
        } else {
            0.0
        };
        Stage {
            p50_bound: quantile_bound(&series.buckets, series.count, 0.50),
            p99_bound: quantile_bound(&series.buckets, series.count, 0.99),
            name: series.name,
            count: series.count,
            mean: Duration::from_secs_f64(mean),
        }
    }

    pub fn to_text(&self) -> String {
        format!(
            "{}: mean {}, p50 {}, p99 {} ({} updates)",
            self.name,
            format_duration(self.mean),
            describe_bound(self.p50_bound),
            describe_bound(self.p99_bound),
            self.count
        )
    }

    pub fn to_json(&self) -> Value {
        let millis = |bound: Option<f64>| bound.filter(|b| b.is_finite()).map(|b| b * 1000.0);
        json!({
            "stage": self.name,
            "count": self.count,
            "mean_ms": self.mean.as_secs_f64() * 1000.0,
            "p50_bound_ms": millis(self.p50_bound),
            "p99_bound_ms": millis(self.p99_bound),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_sum_adds_series_or_picks_one() {
        let page = "\
flowbot_reloads_total{result=\"swapped\"} 4
flowbot_reloads_total{result=\"rejected\"} 1
flowbot_reloads_total_other{result=\"swapped\"} 9
";
        assert_eq!(counter_sum(page, "flowbot_reloads_total"), 5.0);
        let swapped = "flowbot_reloads_total{result=\"swapped\"}";
        assert_eq!(counter_sum(page, swapped), 4.0);
    }

    #[test]
    fn stages_are_read_from_a_page() {
        let page = "\
# TYPE flowbot_update_stage_seconds histogram
flowbot_update_stage_seconds_bucket{stage=\"handle\",le=\"0.001\"} 50
flowbot_update_stage_seconds_bucket{stage=\"handle\",le=\"0.005\"} 98
flowbot_update_stage_seconds_bucket{stage=\"handle\",le=\"0.01\"} 100
flowbot_update_stage_seconds_bucket{stage=\"handle\",le=\"+Inf\"} 100
flowbot_update_stage_seconds_sum{stage=\"handle\"} 0.2
flowbot_update_stage_seconds_count{stage=\"handle\"} 100
";
        let stages = stages(page);
        assert_eq!(stages.len(), 1);
        let handle = &stages[0];
        assert_eq!(handle.name, "handle");
        assert_eq!(handle.count, 100);
        assert_eq!(handle.mean, Duration::from_millis(2));
        assert_eq!(handle.p50_bound, Some(0.001));
        assert_eq!(handle.p99_bound, Some(0.01));
    }
}
