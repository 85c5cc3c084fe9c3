//! `lsgm-monitor`: classify frames with tract and flag the out-of-distribution
//! ones with LSGM, one JSON line per frame, written as each frame is done.
//!
//! With no arguments it runs the shipped demo model on the shipped sample
//! frames. Output fields (stable): `source`, `index`, `class`, `confidence`,
//! `score`, `threshold`, `ood`, `worst_layer`, `worst_tap`, `layers`,
//! `latency_us` (`inference`, `score`), and `reason` when the frame's
//! density overflowed; a frame that fails has `source`, `index`, `error`.
//! Exit codes: 0 success, 1 fatal error or no frame could be read, 2 usage
//! error, 3 (`--fail-on-ood`) at least one frame was OOD.

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use lsgm::frames::{self, FrameSource, Notes};
use lsgm::model::InputBuffer;
use lsgm::onnx::{bind, Bound, Output, Runner};
use lsgm::{Model, Verdict};
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    /// Benchmark: repeat the inputs (whole passes) to at least this many frames and print median
    /// latencies and frames/s as JSON.
    #[arg(long, value_name = "FRAMES", value_parser = clap::value_parser!(u64).range(1..))]
    bench: Option<u64>,
    /// Images (PNG, JPEG, BMP, GIF, TIFF, WebP), directories of them, IDX or .npy files, or `-` for
    /// raw frames on stdin [default: models/samples/frames].
    inputs: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Latency {
    inference: u64,
    score: u64,
}

#[derive(Serialize)]
struct Line<'a> {
    source: &'a str,
    index: usize,
    class: usize,
    confidence: f32,
    score: f32,
    threshold: f32,
    ood: bool,
    worst_layer: u8,
    worst_tap: &'a str,
    layers: &'a [f32],
    latency_us: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    source: &'a str,
    index: usize,
    error: String,
}

/// Everything built once at start-up.
struct Monitor<'m> {
    model: Model<'m>,
    bound: Bound,
    /// One tract state and input tensor, kept for the whole run.
    runner: Runner,
    threshold: f32,
    input: InputBuffer,
    out: Output,
    scratch: Vec<f32>,
    contributions: Vec<f32>,
    notes: Notes,
}

/// One judged frame.
struct Judged {
    class: usize,
    confidence: f32,
    verdict: Verdict,
    inference: Duration,
    scoring: Duration,
}

impl<'m> Monitor<'m> {
    fn new(model: Model<'m>, onnx: &std::path::Path, args: &Args) -> Result<Self> {
        let bound = bind(&model, onnx)?;
        let notes = Notes::default();
        for n in &bound.notes {
            notes.say(n);
        }
        let threshold = match (args.threshold, args.fpr) {
            (Some(t), _) => t,
            (None, Some(f)) => model.threshold_for_fpr(f).with_context(|| {
                let qs: Vec<f32> = model.quantiles().map(|q| q.0).collect();
                format!("--fpr {f} is outside the stored quantiles {qs:?}")
            })?,
            (None, None) => model.threshold(),
        };
        Ok(Monitor {
            runner: bound.network.runner()?,
            input: bound.preprocess.buffer(),
            scratch: vec![0.0; model.scratch_len()],
            contributions: vec![0.0; model.num_layers()],
            out: Output::default(),
            model,
            bound,
            threshold,
            notes,
        })
    }

    /// Classifies and judges one frame.
    fn frame(&mut self, frame: &frames::Frame) -> Result<Judged> {
        let adjusted = frames::to_input(frame, &self.bound.preprocess, &mut self.input)?;
        for n in adjusted.notes(&self.bound.preprocess) {
            self.notes.say(&n);
        }
        self.runner.run(&self.input, &mut self.out)?;
        let t0 = Instant::now();
        let refs: [&[f32]; lsgm::MAX_LAYERS] =
            std::array::from_fn(|i| self.out.features.get(i).map_or(&[][..], Vec::as_slice));
        let verdict = self
            .model
            .judge(
                &refs[..self.model.num_layers()],
                &mut self.scratch,
                &mut self.contributions,
                Some(self.threshold),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let scoring = t0.elapsed() + self.out.pooling;
        let (class, confidence) = self.out.top_class();
        Ok(Judged {
            class,
            confidence,
            verdict,
            inference: self.out.inference,
            scoring,
        })
    }
}

fn median(v: &mut [u64]) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// Writes one line and flushes it, so a camera feeding one frame a second
/// sees one line a second. `Ok(false)`: stdout was closed (e.g. `| head`).
fn emit(out: &mut impl Write, line: &impl Serialize) -> Result<bool> {
    let text = serde_json::to_string(line)?;
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

/// What a run has seen so far.
#[derive(Default)]
struct Tally {
    frames: usize,
    errors: usize,
    ood: usize,
    inference_us: Vec<u64>,
    score_us: Vec<u64>,
}

impl Monitor<'_> {
    /// The JSON line of one judged frame (see the crate docs for the fields).
    fn line<'a>(&'a self, source: &'a str, index: usize, j: &Judged) -> Line<'a> {
        let tap = |l: u8| self.model.layer(l as usize).name();
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
            layers: &self.contributions,
            latency_us: Latency {
                inference: j.inference.as_micros() as u64,
                score: j.scoring.as_micros() as u64,
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

    /// Runs every frame of `expanded` (repeated up to `--bench` frames),
    /// writing a line per frame unless `print` is off. Stops early, quietly,
    /// when stdout is closed; returns whether it still was open.
    fn run(
        &mut self,
        args: &Args,
        expanded: &[frames::Input],
        print: bool,
        tally: &mut Tally,
    ) -> Result<bool> {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let target = args.bench.unwrap_or(0) as usize;
        loop {
            for (index, (source, item)) in FrameSource::new(expanded.to_vec(), args.raw)?.enumerate() {
                tally.frames += 1;
                let open = match item.and_then(|f| self.frame(&f)) {
                    Ok(j) => {
                        tally.ood += j.verdict.ood as usize;
                        tally.inference_us.push(j.inference.as_micros() as u64);
                        tally.score_us.push(j.scoring.as_micros() as u64);
                        !print || emit(&mut out, &self.line(&source, index, &j))?
                    }
                    Err(e) => {
                        tally.errors += 1;
                        let error = format!("{e:#}");
                        !print
                            || emit(
                                &mut out,
                                &ErrorLine {
                                    source: &source,
                                    index,
                                    error,
                                },
                            )?
                    }
                };
                if !open {
                    return Ok(false);
                }
            }
            if tally.frames >= target || tally.frames == 0 {
                return Ok(true);
            }
        }
    }
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
    let mut mon = Monitor::new(load_model(&lsgm_path, &bytes)?, &onnx, &args)?;

    let print = !args.summary_only && args.bench.is_none();
    let mut t = Tally::default();
    let started = Instant::now();
    let open = mon.run(&args, &expanded, print, &mut t)?;
    let wall = started.elapsed().as_secs_f64();
    let (mi, ms) = (median(&mut t.inference_us), median(&mut t.score_us));
    let scored = t.frames - t.errors;
    if scored > 0 {
        say!(
            "lsgm-monitor: {} frames, {} errors, {} OOD ({:.1} %), median latency: inference {mi} µs, \
             LSGM score {ms} µs; {:.0} frames/s",
            t.frames,
            t.errors,
            t.ood,
            100.0 * t.ood as f64 / scored as f64,
            t.frames as f64 / wall
        );
    } else {
        say!("lsgm-monitor: {} frames, {} errors", t.frames, t.errors);
    }
    if args.bench.is_some() {
        let summary = serde_json::json!({
            "frames": t.frames, "errors": t.errors, "median_inference_us": mi, "median_score_us": ms,
            "score_over_inference": ms as f64 / mi.max(1) as f64, "frames_per_second": t.frames as f64 / wall,
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
