//! `lsgm-monitor`: classify frames with tract and flag the out-of-distribution
//! ones with LSGM, one JSON line per frame, written as each frame is done.
//!
//! With no arguments it runs the shipped demo model on the shipped sample
//! frames. Output fields (stable): `source`, `index`, `class`, `confidence`
//! (the network's own probability for `class`; both `null` when its ending
//! cannot be read), `score`, `threshold`, `ood`, `worst_layer`, `worst_tap`, `layers`,
//! `latency_us` (`inference`, `score`, `total`), and `reason` when the
//! frame's density overflowed; a frame that fails has `source`, `index`,
//! `error`.
//!
//! Frames are judged by `--threads` workers (default: every core), each
//! with its own tract state over the one optimised plan; a reader thread
//! reads and decodes frames ahead of them and this thread writes the lines
//! in input order ([`pipeline`]), with a bounded number of frames in
//! flight so memory stays flat on an endless stream.
//!
//! For a long-running stream ([`stream`], [`watch`]): SIGINT / SIGTERM
//! finish the frames in flight and print the summary; `--window` runs a
//! drift test on the OOD rate and writes alarm lines ([`drift`]);
//! `--save-ood` keeps the flagged frames, bounded ([`capture`]);
//! `--metrics` serves Prometheus metrics ([`metrics`], [`endpoint`]). None
//! of them runs on the workers: the per-frame score path is the same
//! without them.
//!
//! Exit codes: 0 success (also after SIGINT/SIGTERM), 1 fatal error (also
//! the `--metrics` endpoint stopping during the run) or no frame could be
//! read, 2 usage error, 3 (`--fail-on-ood`) at least one
//! frame was OOD, 4 (`--fail-on-alarm`) a drift alarm was raised.

mod args;
mod capture;
mod drift;
mod endpoint;
mod judge;
mod metrics;
mod pipeline;
mod report;
mod stream;
mod watch;

use anyhow::{Context, Result};
use args::Args;
use judge::{Judged, Shared};
use lsgm::frames::{self, count};
use lsgm::Model;
use pipeline::Ended;
use report::{emit, Tally};
use std::path::Path;
use std::time::Instant;
use watch::Watch;

/// `eprintln!` that never panics: a closed or full stderr loses the line.
macro_rules! say {
    ($($t:tt)*) => { frames::stderr_line(format_args!($($t)*)) };
}

/// Exit code of a fatal error, or of a run in which no frame could be read.
const EXIT_FATAL: i32 = 1;
/// Exit code with `--fail-on-ood` when any frame was out of distribution.
const EXIT_OOD: i32 = 3;
/// Exit code with `--fail-on-alarm` when a drift alarm was raised.
const EXIT_ALARM: i32 = 4;

/// A frame as the reader hands it to the workers.
pub struct Item {
    source: String,
    index: usize,
    frame: Result<frames::Frame>,
    read_at: Instant,
}

/// A worker's result for one frame: the judgement, and the frame itself
/// when it is flagged and `--save-ood` wants it.
pub struct Outcome {
    source: String,
    index: usize,
    judged: Result<(Judged, Option<frames::Frame>)>,
    read_at: Instant,
}

/// Frames in flight per worker thread (read, queued, judged or waiting for
/// an earlier frame): enough to keep every worker busy, few enough that
/// memory does not grow with the stream.
const IN_FLIGHT_PER_THREAD: usize = 4;

/// Judges every frame the source gives (repeated up to `--bench` frames)
/// on `threads` workers and hands the outcomes to `watch` in input order.
/// Stops early, quietly, when stdout is closed or a stop signal came;
/// returns whether stdout still was open.
fn run_frames(watch: &mut Watch<'_, '_>, args: &Args, stop: &stream::Stop, threads: usize) -> Result<bool> {
    let inputs = if args.inputs.is_empty() {
        vec![frames::shipped("models/samples/frames")]
    } else {
        args.inputs.clone()
    };
    let target = args.bench.unwrap_or(0) as usize;
    let source = stream::start(frames::expand_inputs(&inputs), args.raw, target, stop)?;
    let keep = args.save_ood.is_some();
    let shared = watch.shared;
    let work = |judge: &mut judge::Judge<'_, '_>, item: Item| Outcome {
        judged: item.frame.and_then(|f| {
            let j = judge.frame(&f)?;
            let frame = (keep && j.verdict.ood).then_some(f);
            Ok((j, frame))
        }),
        source: item.source,
        index: item.index,
        read_at: item.read_at,
    };
    let ended = pipeline::ordered(
        threads,
        IN_FLIGHT_PER_THREAD * threads,
        source,
        || shared.judge(),
        work,
        |o| watch.outcome(o),
    );
    watch.flush();
    if let Some(e) = watch.write_error.take() {
        return Err(e);
    }
    match ended {
        Ended::Done => Ok(true),
        Ended::Stopped => Ok(false),
        Ended::Failed(e) => Err(e),
    }
}

/// A rate for the summary: whole frames/s, one decimal below 10.
fn frames_per_second(rate: f64) -> String {
    if rate < 10.0 {
        format!("{rate:.1}")
    } else {
        format!("{rate:.0}")
    }
}

fn load_model<'b>(path: &Path, bytes: &'b [u8]) -> Result<Model<'b>> {
    Model::from_bytes(bytes).map_err(|e| {
        let hint = match e {
            lsgm::Error::BadMagic | lsgm::Error::Decode => "; is it an .lsgm file written by fit-and-export?",
            _ => "",
        };
        anyhow::anyhow!("{}: {e}{hint}", path.display())
    })
}

/// The drift test of `--window`, with the OOD rate the threshold implies.
fn drift_for(args: &Args, model: &Model<'_>) -> Result<Option<drift::Drift>> {
    let Some(window) = args.window else {
        return Ok(None);
    };
    let expected = match (args.expected_ood_rate, args.threshold, args.fpr) {
        (Some(r), _, _) => r,
        (None, Some(t), _) => model.fpr_at_threshold(t).map(f64::from).with_context(|| {
            format!(
                "--window: the OOD rate --threshold {t} implies is unknown (outside the model's stored \
                 quantiles); give it with --expected-ood-rate"
            )
        })?,
        (None, None, Some(f)) => f as f64,
        (None, None, None) => 1.0 - model.calibration_tpr() as f64,
    };
    let params = drift::DriftParams {
        window: usize::try_from(window).unwrap_or(usize::MAX),
        alpha: args.alarm_p,
        expected_rate: expected,
    };
    let d = drift::Drift::new(params).map_err(anyhow::Error::msg)?;
    say!(
        "lsgm-monitor: drift alarm when at least {} of the last {window} frames are OOD (expected {:.2} %, \
         p <= {:e}), cleared at {} or fewer; under no drift at most {:.3} false alarms per hour at 30 frames/s",
        d.critical(),
        100.0 * expected,
        args.alarm_p,
        d.clearing(),
        drift::false_alarms_per_hour_bound(args.alarm_p, 30.0)
    );
    Ok(Some(d))
}

/// Starts `--intra-threads`' shared pool for tract's matrix products.
fn intra_threads(n: u16) -> Result<()> {
    if n > 1 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n.into())
            .thread_name(|i| format!("tract-{i}"))
            .build()
            .context("cannot start the --intra-threads pool")?;
        tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::MultiThread(
            std::sync::Arc::new(pool),
        ));
    }
    Ok(())
}

/// Starts `--save-ood`'s writer and `--metrics`' server, if asked for.
fn observers(
    args: &Args,
    shared: &Shared<'_>,
    paths: (&Path, &Path),
    bytes: &[u8],
    stop: &stream::Stop,
) -> Result<(Option<capture::Capture>, Option<metrics::Metrics>)> {
    let capture = match &args.save_ood {
        Some(dir) => Some(capture::Capture::start(capture::CaptureParams {
            dir: dir.clone(),
            max_bytes: args.save_max_bytes,
            max_files: usize::try_from(args.save_max_files).unwrap_or(usize::MAX),
            queue: CAPTURE_QUEUE,
            queue_bytes: CAPTURE_QUEUE_BYTES,
        })?),
        None => None,
    };
    let metrics = match args.metrics {
        Some(addr) => {
            let id = metrics::Identity {
                lsgm: &paths.0.display().to_string(),
                lsgm_bytes: bytes,
                onnx: &paths.1.display().to_string(),
                threshold: shared.threshold,
            };
            let save = capture.as_ref().map(|c| c.counters());
            let (m, registry) = metrics::Metrics::new(&shared.model, &id, save, args.window.is_some());
            let bound = endpoint::serve(addr, registry, stop.clone())?;
            say!("lsgm-monitor: serving Prometheus metrics at http://{bound}/metrics");
            Some(m)
        }
        None => None,
    };
    Ok((capture, metrics))
}

/// Flagged frames waiting for the `--save-ood` writer; more are dropped
/// (and counted) rather than slowing the stream. Deep enough for a burst
/// of small frames (256 × 28×28 is 200 KB) ...
const CAPTURE_QUEUE: usize = 256;
/// ... and bounded in bytes for large ones (32 MiB: five 1080p RGB frames).
const CAPTURE_QUEUE_BYTES: u64 = 32 << 20;

fn run(args: Args) -> Result<i32> {
    let stop = stream::Stop::install()?;
    let onnx = args
        .onnx
        .clone()
        .unwrap_or_else(|| frames::shipped("models/fmnist-resnet.onnx"));
    let lsgm_path = args
        .lsgm
        .clone()
        .unwrap_or_else(|| frames::shipped("models/fmnist-resnet.lsgm"));
    let bytes = std::fs::read(&lsgm_path).with_context(|| format!("cannot read {}", lsgm_path.display()))?;
    let engine = args.engine.engine(usize::from(args.intra_threads))?;
    if engine.kind == lsgm::onnx::EngineKind::Tract {
        intra_threads(args.intra_threads)?;
    }
    let shared = Shared::new(
        load_model(&lsgm_path, &bytes)?,
        &onnx,
        &engine,
        args.threshold,
        args.fpr,
    )?;
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    );
    let drift = drift_for(&args, &shared.model)?;
    let (capture, metrics) = observers(&args, &shared, (&lsgm_path, &onnx), &bytes, &stop)?;
    let mut watch = Watch {
        shared: &shared,
        out: std::io::BufWriter::new(std::io::stdout().lock()),
        print: !args.summary_only && args.bench.is_none(),
        tally: Tally::default(),
        drift,
        metrics,
        capture,
        capture_warned: false,
        write_error: None,
    };
    let started = Instant::now();
    let open = run_frames(&mut watch, &args, &stop, threads)?;
    let wall = started.elapsed().as_secs_f64();
    let saved = watch.capture.take().map(capture::Capture::finish);
    let alarms = watch.drift.as_ref().map_or(0, drift::Drift::alarms);
    let t = &watch.tally;
    // What ran the frames, in the summary and --bench's JSON: `2 threads, tract`.
    let ran_on = (threads, engine.describe());
    summary(t, wall, &ran_on, alarms, saved.as_ref(), &args, stop.signal());
    if let Some(reason) = stop.failure() {
        anyhow::bail!("{reason}");
    }
    if args.bench.is_some() {
        bench_json(t, wall, &ran_on)?;
    }
    let scored = t.frames - t.errors;
    if scored == 0 && open && stop.signal().is_none() {
        say!("lsgm-monitor: error: no frame could be read");
        return Ok(EXIT_FATAL);
    }
    Ok(match () {
        () if args.fail_on_alarm && alarms > 0 => EXIT_ALARM,
        () if args.fail_on_ood && t.ood > 0 => EXIT_OOD,
        () => 0,
    })
}

/// The one-line summary on stderr; `ran_on` is the worker count and the engine.
fn summary(
    t: &Tally,
    wall: f64,
    ran_on: &(usize, String),
    alarms: u64,
    saved: Option<&capture::CaptureTotals>,
    args: &Args,
    signal: Option<&str>,
) {
    let r = t.reported();
    let scored = t.frames - t.errors;
    let mut text = format!(
        "lsgm-monitor: {}, {}",
        count(t.frames, "frame", "frames"),
        count(t.errors, "error", "errors")
    );
    if scored > 0 {
        text += &format!(
            ", {} OOD ({:.1} %); {} frames/s on {}, {}; median latency: inference {} µs, LSGM score {} µs, \
             frame to verdict {} µs (99th percentile {} µs)",
            t.ood,
            100.0 * t.ood as f64 / scored as f64,
            frames_per_second(t.frames as f64 / wall),
            count(ran_on.0, "thread", "threads"),
            ran_on.1,
            r.inference,
            r.score,
            r.total,
            r.total_p99,
        );
    }
    if let Some(w) = args.window {
        text += &format!(
            "; {} (window {w})",
            count(alarms as usize, "drift alarm", "drift alarms")
        );
    }
    if let (Some(c), Some(dir)) = (saved, &args.save_ood) {
        text += &format!(
            "; saved {} to {} ({} dropped, {} failed, {} rotated out)",
            count(c.saved as usize, "OOD frame", "OOD frames"),
            dir.display(),
            c.dropped,
            c.failed,
            c.removed
        );
        if let Some(e) = &c.first_error {
            text += &format!(" (first failure: {e})");
        }
    }
    if let Some(sig) = signal {
        text += &format!("; stopped by {sig}");
    }
    say!("{text}");
}

/// `--bench`'s JSON on stdout.
fn bench_json(t: &Tally, wall: f64, (threads, engine): &(usize, String)) -> Result<()> {
    let r = t.reported();
    // Latencies exist only for judged frames: none when nothing was judged.
    let judged = |v: serde_json::Value| {
        if t.frames > t.errors {
            v
        } else {
            serde_json::Value::Null
        }
    };
    let summary = serde_json::json!({
        "frames": t.frames, "errors": t.errors, "threads": threads, "engine": engine,
        "median_inference_us": judged(r.inference.into()), "median_score_us": judged(r.score.into()),
        "score_over_inference": judged((r.score as f64 / r.inference.max(1) as f64).into()),
        "frames_per_second": t.frames as f64 / wall,
        "median_total_us": judged(r.total.into()), "p99_total_us": judged(r.total_p99.into()),
    });
    emit(&mut std::io::stdout().lock(), &summary)?;
    Ok(())
}

fn main() {
    let args = Args::get();
    match run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            say!("lsgm-monitor: error: {e:#}");
            std::process::exit(EXIT_FATAL);
        }
    }
}
