//! `--metrics ADDR:PORT`: the run's counters and histograms in the
//! Prometheus / OpenMetrics text format, served over HTTP at `/metrics`
//! for a fleet's Prometheus to scrape.
//!
//! The metrics are written by the one thread that emits the verdicts, in
//! input order, right after a frame's line — never by the workers — so the
//! per-frame score path is untouched, and a scrape that sees
//! `lsgm_frames_total = n` also sees every other counter of those `n`
//! frames (each frame's other counters are updated before its frame
//! counter). The HTTP server ([`crate::endpoint`]) runs on a thread of its
//! own and only reads the atomics (prometheus-client).
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `lsgm_frames_total` | counter | frames handled (judged or failed), as in the summary |
//! | `lsgm_ood_frames_total` | counter | frames judged OOD |
//! | `lsgm_frame_errors_total` | counter | frames that could not be read or judged |
//! | `lsgm_overflow_frames_total` | counter | OOD frames whose density overflowed `f32` (score −3.4e38); kept out of the histograms, whose sums they would swamp for the rest of the run |
//! | `lsgm_drift_alarms_total` | counter | drift alarms raised (only with `--window`, as the two below) |
//! | `lsgm_drift_alarm_active` | gauge | 1 while a drift alarm is raised |
//! | `lsgm_drift_window_ood_rate` | gauge | OOD rate of the last `--window` frames |
//! | `lsgm_score` | histogram | LSGM score (log joint likelihood, nats) of frames that did not overflow; buckets at the model's stored in-distribution quantiles and the threshold |
//! | `lsgm_latency_seconds{stage}` | histogram | `inference`, `score`, `total` (as `latency_us` in the lines) |
//! | `lsgm_layer_contribution_delta{layer,tap}` | histogram | a tap's contribution minus its in-distribution median (nats): how far below normal each tap is (frames that did not overflow) |
//! | `lsgm_worst_layer_ood_frames_total{layer,tap}` | counter | OOD frames whose worst layer was this tap |
//! | `lsgm_saved_frames_total`, `lsgm_save_dropped_total`, `lsgm_save_failed_total`, `lsgm_save_removed_total` | counter | `--save-ood` captures written, dropped (queue full), failed, rotated out (budget or full disk) |
//! | `lsgm_model_info{…}` | info | model identity: file names, CRC-32 of the `.lsgm` bytes, the network it was fitted for, threshold, taps |

use crate::capture::CaptureCounters;
use lsgm::{Model, Verdict};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A tap, as a label set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Tap {
    layer: String,
    tap: String,
}

/// A latency stage, as a label set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Stage {
    stage: &'static str,
}

/// Buckets of a tap's contribution minus its median, nats.
const DELTA_BUCKETS: [f64; 10] = [-400.0, -200.0, -100.0, -50.0, -25.0, -10.0, 0.0, 10.0, 25.0, 50.0];

fn delta_histogram() -> Histogram {
    Histogram::new(DELTA_BUCKETS)
}

fn latency_histogram() -> Histogram {
    // 50 µs to 3.3 s.
    Histogram::new(exponential_buckets(50e-6, 2.0, 17))
}

/// Everything the emitting thread updates.
pub struct Metrics {
    frames: Counter,
    ood: Counter,
    errors: Counter,
    overflow: Counter,
    alarms: Counter,
    alarm_active: Gauge,
    window_rate: Gauge<f64, AtomicU64>,
    score: Histogram,
    latency: Family<Stage, Histogram, fn() -> Histogram>,
    delta: Family<Tap, Histogram, fn() -> Histogram>,
    worst: Family<Tap, Counter>,
    taps: Vec<Tap>,
    medians: Vec<f64>,
}

/// Model identity for `lsgm_model_info`.
pub struct Identity<'a> {
    pub lsgm: &'a str,
    pub lsgm_bytes: &'a [u8],
    pub onnx: &'a str,
    pub threshold: f32,
}

impl Metrics {
    /// The metrics of a run of `model`, registered in a new registry;
    /// `capture` adds the `--save-ood` counters, `drift` the drift metrics
    /// (with `--window`: without it a flat 0 would read as "no drift"
    /// rather than "not measured").
    pub fn new(
        model: &Model<'_>,
        id: &Identity<'_>,
        capture: Option<Arc<CaptureCounters>>,
        drift: bool,
    ) -> (Self, Registry) {
        let m = Metrics {
            frames: Counter::default(),
            ood: Counter::default(),
            errors: Counter::default(),
            overflow: Counter::default(),
            alarms: Counter::default(),
            alarm_active: Gauge::default(),
            window_rate: Gauge::default(),
            score: Histogram::new(score_buckets(model, id.threshold)),
            latency: Family::new_with_constructor(latency_histogram),
            delta: Family::new_with_constructor(delta_histogram),
            worst: Family::default(),
            taps: (0..model.num_layers())
                .map(|l| Tap {
                    layer: l.to_string(),
                    tap: model.layer(l).name().to_string(),
                })
                .collect(),
            medians: model
                .layers()
                .iter()
                .map(|l| l.median_contribution() as f64)
                .collect(),
        };
        let mut r = Registry::default();
        m.register(&mut r, drift);
        r.register("lsgm_model", "Model identity", info(model, id));
        if let Some(c) = capture {
            r.register_collector(Box::new(SaveCounters(c)));
        }
        (m, r)
    }

    fn register(&self, r: &mut Registry, drift: bool) {
        let mut counters = vec![
            ("lsgm_frames", "Frames handled (judged or failed)", &self.frames),
            ("lsgm_ood_frames", "Frames judged out of distribution", &self.ood),
            (
                "lsgm_frame_errors",
                "Frames that could not be read or judged",
                &self.errors,
            ),
            (
                "lsgm_overflow_frames",
                "OOD frames whose density overflowed f32",
                &self.overflow,
            ),
        ];
        if drift {
            counters.push(("lsgm_drift_alarms", "Drift alarms raised", &self.alarms));
            let (active, rate) = (self.alarm_active.clone(), self.window_rate.clone());
            r.register(
                "lsgm_drift_alarm_active",
                "1 while a drift alarm is raised",
                active,
            );
            r.register(
                "lsgm_drift_window_ood_rate",
                "OOD rate of the last --window frames",
                rate,
            );
        }
        for (name, help, counter) in counters {
            r.register(name, help, counter.clone());
        }
        let score = self.score.clone();
        r.register("lsgm_score", "LSGM score, log joint likelihood (nats)", score);
        r.register(
            "lsgm_latency_seconds",
            "Per-frame latency by stage",
            self.latency.clone(),
        );
        let delta = "A tap's contribution minus its in-distribution median (nats)";
        r.register("lsgm_layer_contribution_delta", delta, self.delta.clone());
        let worst = "OOD frames whose worst layer was this tap";
        r.register("lsgm_worst_layer_ood_frames", worst, self.worst.clone());
    }

    /// Records a judged frame: its verdict, its per-layer contributions and
    /// its latencies (inference, score, total). A frame whose density
    /// overflowed is counted apart and kept out of the score and
    /// contribution histograms (its −3.4e38 would swamp their sums).
    pub fn judged(&self, v: &Verdict, contributions: &[f32], latency: [Duration; 3]) {
        if v.overflow.is_some() {
            self.overflow.inc();
        } else {
            self.score.observe(v.score as f64);
            for (l, (&c, &median)) in contributions.iter().zip(&self.medians).enumerate() {
                self.delta.get_or_create(&self.taps[l]).observe(c as f64 - median);
            }
        }
        for (stage, d) in ["inference", "score", "total"].into_iter().zip(latency) {
            self.latency
                .get_or_create(&Stage { stage })
                .observe(d.as_secs_f64());
        }
        if v.ood {
            if let Some(tap) = self.taps.get(v.worst_layer as usize) {
                self.worst.get_or_create(tap).inc();
            }
            self.ood.inc();
        }
        self.frames.inc();
    }

    /// Records a frame that failed.
    pub fn failed(&self) {
        self.errors.inc();
        self.frames.inc();
    }

    /// Records the drift test's state after a frame.
    pub fn drift(&self, window_rate: f64, raised_now: bool, active: bool) {
        self.window_rate.set(window_rate);
        if raised_now {
            self.alarms.inc();
        }
        self.alarm_active.set(active as i64);
    }
}

/// The score histogram's buckets: the stored quantiles' scores and the
/// threshold, increasing, finite.
fn score_buckets(model: &Model<'_>, threshold: f32) -> Vec<f64> {
    let mut b: Vec<f64> = model
        .quantiles()
        .map(|(_, s)| s as f64)
        .chain([threshold as f64])
        .filter(|v| v.is_finite())
        .collect();
    b.sort_by(f64::total_cmp);
    b.dedup();
    b
}

fn info(model: &Model<'_>, id: &Identity<'_>) -> Info<Vec<(String, String)>> {
    let taps: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    Info::new(vec![
        ("lsgm_file".into(), id.lsgm.into()),
        (
            "lsgm_crc32".into(),
            format!("{:08x}", crc32fast::hash(id.lsgm_bytes)),
        ),
        ("onnx_file".into(), id.onnx.into()),
        ("fitted_for".into(), model.source().into()),
        ("threshold".into(), id.threshold.to_string()),
        ("taps".into(), taps.join(",")),
        ("monitor_version".into(), env!("CARGO_PKG_VERSION").into()),
    ])
}

/// The `--save-ood` writer's counters, read at scrape time.
struct SaveCounters(Arc<CaptureCounters>);

impl std::fmt::Debug for SaveCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SaveCounters")
    }
}

impl Collector for SaveCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let c = &self.0;
        for (name, help, v) in [
            ("lsgm_saved_frames", "OOD frames saved by --save-ood", &c.saved),
            (
                "lsgm_save_dropped",
                "OOD frames not saved: the writer's queue was full",
                &c.dropped,
            ),
            ("lsgm_save_failed", "OOD frames whose save failed", &c.failed),
            (
                "lsgm_save_removed",
                "Captures removed, oldest first, to stay in budget or make room on a full disk",
                &c.removed,
            ),
        ] {
            let counter = ConstCounter::new(v.load(Ordering::Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}
