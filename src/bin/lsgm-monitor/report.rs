//! What the monitor writes: one JSON line per frame, flushed as it is
//! written, and the run's tally for the summary.

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// Per-frame latencies, microseconds.
#[derive(Serialize)]
pub struct Latency {
    /// Running the network (tract), taps included.
    pub inference: u64,
    /// Pooling the taps and the LSGM score.
    pub score: u64,
    /// From the frame being read to its line being written: queueing,
    /// preprocessing, inference, scoring and waiting for earlier frames.
    pub total: u64,
}

/// The line of a judged frame (field order is the output's).
#[derive(Serialize)]
pub struct Line<'a> {
    pub source: &'a str,
    pub index: usize,
    /// `null`, like `confidence`, when the network's ending is unknown.
    pub class: Option<usize>,
    /// `null` when the network's probabilities are unknown.
    pub confidence: Option<f32>,
    pub score: f32,
    pub threshold: f32,
    pub ood: bool,
    pub worst_layer: u8,
    pub worst_tap: &'a str,
    pub layers: &'a [f32],
    pub latency_us: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The line of a frame that could not be read or judged.
#[derive(Serialize)]
pub struct ErrorLine<'a> {
    pub source: &'a str,
    pub index: usize,
    pub error: String,
}

/// Writes one line and flushes it, so a camera feeding one frame a second
/// sees one line a second. `Ok(false)`: stdout was closed (e.g. `| head`).
pub fn emit(out: &mut impl Write, line: &impl Serialize) -> Result<bool> {
    let text = serde_json::to_string(line)?;
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

/// Latencies in microseconds, 1 µs to 1 hour at 3 significant digits, in
/// a fixed ~100 KB whatever the run's length (an endless stream keeps
/// memory flat).
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"))
    }
}

impl Latencies {
    /// Records one latency (saturated into the range).
    pub fn record(&mut self, d: Duration) {
        self.0.saturating_record((d.as_micros() as u64).max(1));
    }

    /// The `q`-quantile in µs (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }
}

/// What a run has seen so far.
#[derive(Default)]
pub struct Tally {
    pub frames: usize,
    pub errors: usize,
    pub ood: usize,
    pub inference: Latencies,
    pub score: Latencies,
    pub total: Latencies,
}

/// The latencies the summary and `--bench` report, µs (0 when no frame
/// was judged).
pub struct Reported {
    /// Median inference.
    pub inference: u64,
    /// Median pooling + LSGM score.
    pub score: u64,
    /// Median frame to verdict.
    pub total: u64,
    /// 99th percentile of frame to verdict.
    pub total_p99: u64,
}

impl Tally {
    /// The reported latencies of the run so far.
    pub fn reported(&self) -> Reported {
        Reported {
            inference: self.inference.quantile(0.5),
            score: self.score.quantile(0.5),
            total: self.total.quantile(0.5),
            total_p99: self.total.quantile(0.99),
        }
    }
}
