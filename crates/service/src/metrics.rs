//! Prometheus metrics in the text exposition format: HTTP requests by route and status with
//! a latency histogram (in process), jobs by state, queue depth and job durations (from the
//! database, so every server reports the whole queue).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use assay_store::{JobState, Store, StoreError};

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// In-process request counters.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    /// Counts one request.
    pub fn record(&self, route: &str, status: u16, elapsed: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let stats = routes.entry(route.to_string()).or_default();
        *stats.by_status.entry(status).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                stats.buckets[i] += 1;
            }
        }
        stats.count += 1;
        stats.sum += secs;
    }

    /// The exposition text.
    pub async fn render(&self, store: &Store) -> Result<String, StoreError> {
        let counts = store.job_counts().await?;
        let (duration_sum_ms, duration_count) = store.result_durations().await?;
        let mut out = String::new();
        out.push_str("# HELP assay_jobs Jobs by state.\n# TYPE assay_jobs gauge\n");
        for (state, n) in &counts {
            let _ = writeln!(out, "assay_jobs{{state=\"{}\"}} {n}", state.as_str());
        }
        let depth = counts
            .iter()
            .find(|(s, _)| *s == JobState::Queued)
            .map_or(0, |(_, n)| *n);
        out.push_str(
            "# HELP assay_queue_depth Jobs waiting for a worker.\n# TYPE assay_queue_depth gauge\n",
        );
        let _ = writeln!(out, "assay_queue_depth {depth}");
        out.push_str("# HELP assay_job_duration_seconds Run time of finished jobs.\n# TYPE assay_job_duration_seconds summary\n");
        let _ = writeln!(
            out,
            "assay_job_duration_seconds_sum {}",
            duration_sum_ms as f64 / 1000.0
        );
        let _ = writeln!(out, "assay_job_duration_seconds_count {duration_count}");
        out.push_str("# HELP assay_http_requests_total HTTP requests by route and status.\n# TYPE assay_http_requests_total counter\n");
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        for (route, stats) in routes.iter() {
            for (status, n) in &stats.by_status {
                let _ = writeln!(
                    out,
                    "assay_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP assay_http_request_duration_seconds HTTP latency.\n# TYPE assay_http_request_duration_seconds histogram\n");
        for (route, stats) in routes.iter() {
            for (bound, n) in BUCKETS.iter().zip(stats.buckets) {
                let _ = writeln!(
                    out,
                    "assay_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "assay_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "assay_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                stats.sum
            );
            let _ = writeln!(
                out,
                "assay_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                stats.count
            );
        }
        Ok(out)
    }
}
