//! `lsgm-monitor`: classify frames with tract and flag the out-of-distribution
//! ones with LSGM, one JSON line per frame, written as each frame is done.
//!
//! With no arguments it runs the shipped demo model on the shipped sample
//! frames. Output fields (stable): `source`, `index`, `class`, `confidence`,
//! `score`, `threshold`, `ood`, `worst_layer`, `worst_tap`, `layers`,
//! `latency_us` (`inference`, `score`, `total`), and `reason` when the
//! frame's density overflowed; a frame that fails has `source`, `index`,
//! `error`.
//!
//! Frames are judged by `--threads` workers (default: every core), each
//! with its own tract state over the one optimised plan; a reader thread
//! reads and decodes frames ahead of them and this thread writes the lines
//! in input order ([`pipeline`]), with a bounded number of frames in
//! flight so memory stays flat on an endless stream.
//! Exit codes: 0 success, 1 fatal error or no frame could be read, 2 usage
//! error, 3 (`--fail-on-ood`) at least one frame was OOD.

mod judge;
mod pipeline;
mod report;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use judge::{Judged, Shared};
use lsgm::frames::{self, FrameSource};
use lsgm::Model;
use pipeline::Ended;
use report::{emit, ErrorLine, Latency, Line, Tally};
use std::path::PathBuf;
use std::time::Instant;

/// `eprintln!` that never panics: a closed or full stderr loses the line.
macro_rules! say {
    ($($t:tt)*) => { frames::stderr_line(format_args!($($t)*)) };
}

/// Exit code of a fatal error, or of a run in which no frame could be read.
const EXIT_FATAL: i32 = 1;
/// Exit code with `--fail-on-ood` when any frame was out of distribution.
const EXIT_OOD: i32 = 3;

fn finite(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("expected a finite number, got {s:?}")),
    }
}

fn fraction(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("expected a fraction strictly between 0 and 1, got {s:?}")),
    }
}

fn at_least_one(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!(
            "expected a whole number of frames, at least 1, got {s:?}"
        )),
    }
}

fn raw_shape(s: &str) -> Result<(usize, usize, usize), String> {
    frames::parse_raw_shape(s).map_err(|e| e.to_string())
}

#[derive(Parser)]
#[command(
    name = "lsgm-monitor",
    version,
    about = "Flag out-of-distribution frames beside tract inference (LSGM)",
    allow_negative_numbers = true,
    after_help = "Exit codes: 0 success, 1 fatal error (bad model, mismatched files) or no frame could be \
                  read, 2 usage error, 3 with --fail-on-ood when any frame was OOD."
)]
struct Args {
    /// ONNX classifier [default: models/fmnist-resnet.onnx].
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// LSGM model file fitted for it [default: models/fmnist-resnet.lsgm].
    #[arg(long)]
    lsgm: Option<PathBuf>,
    /// Frame size of a raw u8 stream on stdin (`-`), e.g. 28x28x1 (interleaved, RGB order for 3 channels).
    #[arg(long, value_name = "WxHxC", value_parser = raw_shape)]
    raw: Option<(usize, usize, usize)>,
    /// Use this threshold instead of the calibrated one.
    #[arg(long, conflicts_with = "fpr", value_parser = finite, allow_hyphen_values = true)]
    threshold: Option<f32>,
    /// Pick the threshold that flags this fraction of in-distribution frames (from the stored quantiles).
    #[arg(long, value_parser = fraction)]
    fpr: Option<f32>,
    /// Print only the summary (stderr), no per-frame lines.
    #[arg(long)]
    summary_only: bool,
    /// Exit with code 3 if any frame is OOD.
    #[arg(long)]
    fail_on_ood: bool,
    /// Worker threads judging frames [default: every core]. Each holds its own tract state and
    /// buffers; lines still come out in input order. 1 judges one frame at a time.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Threads inside each inference (tract's multithread-mm), one pool shared by the workers.
    /// Lowers the latency of one frame on large networks; costs on small ones. 1 = off.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    intra_threads: u16,
    /// Benchmark: repeat the inputs (whole passes) to at least this many frames and print median
    /// latencies and frames/s as JSON.
    #[arg(long, value_name = "FRAMES", value_parser = at_least_one)]
    bench: Option<u64>,
    /// Images (PNG, JPEG, BMP, GIF, TIFF, WebP), directories of them, IDX or .npy files, or `-` for
    /// raw frames on stdin [default: models/samples/frames].
    inputs: Vec<PathBuf>,
}

/// A frame as the reader hands it to the workers.
struct Item {
    source: String,
    index: usize,
    frame: Result<frames::Frame>,
    read_at: Instant,
}

/// A worker's result for one frame.
struct Outcome {
    source: String,
    index: usize,
    judged: Result<Judged>,
    read_at: Instant,
}

/// Frames in flight per worker thread (read, queued, judged or waiting for
/// an earlier frame): enough to keep every worker busy, few enough that
/// memory does not grow with the stream.
const IN_FLIGHT_PER_THREAD: usize = 4;

/// Judges every frame of `expanded` (repeated up to `--bench` frames) on
/// `threads` workers and writes a line per frame, in input order, unless
/// `print` is off. Stops early, quietly, when stdout is closed; returns
/// whether it still was open.
fn run_frames(
    shared: &Shared<'_>,
    args: &Args,
    expanded: &[frames::Input],
    threads: usize,
    print: bool,
    tally: &mut Tally,
) -> Result<bool> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let target = args.bench.unwrap_or(0) as usize;
    let raw = args.raw;
    let mut write_error = None;
    let source = |push: &mut dyn FnMut(Item) -> bool| -> Result<()> {
        let mut read = 0usize;
        loop {
            let before = read;
            for (index, (source, frame)) in FrameSource::new(expanded.to_vec(), raw)?.enumerate() {
                read += 1;
                let read_at = Instant::now();
                if !push(Item {
                    source,
                    index,
                    frame,
                    read_at,
                }) {
                    return Ok(());
                }
            }
            if read >= target || read == before {
                return Ok(());
            }
        }
    };
    let work = |judge: &mut judge::Judge<'_, '_>, item: Item| Outcome {
        judged: item.frame.and_then(|f| judge.frame(&f)),
        source: item.source,
        index: item.index,
        read_at: item.read_at,
    };
    let write = |o: Outcome| {
        tally.frames += 1;
        let total = o.read_at.elapsed();
        let emitted = match &o.judged {
            Ok(j) => {
                tally.ood += j.verdict.ood as usize;
                tally.inference.record(j.inference);
                tally.score.record(j.scoring);
                tally.total.record(total);
                print.then(|| emit(&mut out, &line(shared, &o.source, o.index, j, total)))
            }
            Err(e) => {
                tally.errors += 1;
                let (source, index, error) = (&o.source, o.index, format!("{e:#}"));
                print.then(|| emit(&mut out, &ErrorLine { source, index, error }))
            }
        };
        match emitted {
            None | Some(Ok(true)) => true,
            Some(Ok(false)) => false, // stdout was closed
            Some(Err(e)) => {
                write_error = Some(e);
                false
            }
        }
    };
    let ended = pipeline::ordered(
        threads,
        IN_FLIGHT_PER_THREAD * threads,
        source,
        || shared.judge(),
        work,
        write,
    );
    if let Some(e) = write_error {
        return Err(e);
    }
    match ended {
        Ended::Done => Ok(true),
        Ended::Stopped => Ok(false),
        Ended::Failed(e) => Err(e),
    }
}

/// The JSON line of a judged frame (see the crate docs for the fields).
fn line<'a>(
    shared: &'a Shared<'_>,
    source: &'a str,
    index: usize,
    j: &'a Judged,
    total: std::time::Duration,
) -> Line<'a> {
    let tap = |l: u8| shared.model.layer(l as usize).name();
    Line {
        source,
        index,
        class: j.class,
        confidence: j.confidence,
        score: j.verdict.score,
        threshold: j.verdict.threshold,
        ood: j.verdict.ood,
        worst_layer: j.verdict.worst_layer,
        worst_tap: tap(j.verdict.worst_layer),
        layers: &j.contributions,
        latency_us: Latency {
            inference: j.inference.as_micros() as u64,
            score: j.scoring.as_micros() as u64,
            total: total.as_micros() as u64,
        },
        reason: j.verdict.overflow.map(|l| {
            format!(
                "the density of layer {l} ({}) overflowed: the frame is farther from every \
                 in-distribution component than f32 can express",
                tap(l)
            )
        }),
    }
}

/// `1 frame`, `2 frames`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

fn load_model<'b>(path: &std::path::Path, bytes: &'b [u8]) -> Result<Model<'b>> {
    Model::from_bytes(bytes).map_err(|e| {
        let hint = match e {
            lsgm::Error::BadMagic | lsgm::Error::Decode => "; is it an .lsgm file written by fit-and-export?",
            _ => "",
        };
        anyhow::anyhow!("{}: {e}{hint}", path.display())
    })
}

fn run(args: Args) -> Result<i32> {
    let onnx = args
        .onnx
        .clone()
        .unwrap_or_else(|| frames::shipped("models/fmnist-resnet.onnx"));
    let lsgm_path = args
        .lsgm
        .clone()
        .unwrap_or_else(|| frames::shipped("models/fmnist-resnet.lsgm"));
    let inputs = if args.inputs.is_empty() {
        vec![frames::shipped("models/samples/frames")]
    } else {
        args.inputs.clone()
    };
    let expanded = frames::expand_inputs(&inputs);
    let bytes = std::fs::read(&lsgm_path).with_context(|| format!("cannot read {}", lsgm_path.display()))?;
    if args.intra_threads > 1 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(args.intra_threads.into())
            .thread_name(|i| format!("tract-{i}"))
            .build()
            .context("cannot start the --intra-threads pool")?;
        tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::MultiThread(
            std::sync::Arc::new(pool),
        ));
    }
    let shared = Shared::new(load_model(&lsgm_path, &bytes)?, &onnx, args.threshold, args.fpr)?;
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    );

    let print = !args.summary_only && args.bench.is_none();
    let mut t = Tally::default();
    let started = Instant::now();
    let open = run_frames(&shared, &args, &expanded, threads, print, &mut t)?;
    let wall = started.elapsed().as_secs_f64();
    let (mi, ms) = (t.inference.quantile(0.5), t.score.quantile(0.5));
    let (total50, total99) = (t.total.quantile(0.5), t.total.quantile(0.99));
    let scored = t.frames - t.errors;
    if scored > 0 {
        say!(
            "lsgm-monitor: {}, {}, {} OOD ({:.1} %); {:.0} frames/s on {}; \
             median latency: inference {mi} µs, LSGM score {ms} µs, frame to verdict {total50} µs \
             (99th percentile {total99} µs)",
            count(t.frames, "frame"),
            count(t.errors, "error"),
            t.ood,
            100.0 * t.ood as f64 / scored as f64,
            t.frames as f64 / wall,
            count(threads, "thread"),
        );
    } else {
        say!(
            "lsgm-monitor: {}, {}",
            count(t.frames, "frame"),
            count(t.errors, "error")
        );
    }
    if args.bench.is_some() {
        // Latencies exist only for judged frames: none when nothing was judged.
        let judged = |v: serde_json::Value| if scored > 0 { v } else { serde_json::Value::Null };
        let summary = serde_json::json!({
            "frames": t.frames, "errors": t.errors, "threads": threads,
            "median_inference_us": judged(mi.into()), "median_score_us": judged(ms.into()),
            "score_over_inference": judged((ms as f64 / mi.max(1) as f64).into()),
            "frames_per_second": t.frames as f64 / wall,
            "median_total_us": judged(total50.into()), "p99_total_us": judged(total99.into()),
        });
        emit(&mut std::io::stdout().lock(), &summary)?;
    }
    if scored == 0 && open {
        say!("lsgm-monitor: error: no frame could be read");
        return Ok(EXIT_FATAL);
    }
    Ok(if args.fail_on_ood && t.ood > 0 {
        EXIT_OOD
    } else {
        0
    })
}

fn main() {
    let args = Args::parse();
    let stdin = args.inputs.iter().filter(|p| p.as_os_str() == "-").count();
    let usage = match (args.raw.is_some(), stdin) {
        (_, 2..) => Some("`-` (stdin) can be read only once: give it once"),
        (true, 0) => Some("--raw describes frames on stdin: add `-` to the inputs"),
        (false, 1) => Some("reading frames from stdin (-) needs --raw WIDTHxHEIGHTxCHANNELS"),
        (_, 1) if args.bench.is_some() => Some("--bench repeats file inputs: it cannot read stdin (-)"),
        _ => None,
    };
    if let Some(msg) = usage {
        Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit();
    }
    match run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            say!("lsgm-monitor: error: {e:#}");
            std::process::exit(EXIT_FATAL);
        }
    }
}
