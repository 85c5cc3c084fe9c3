//! `lsgm-monitor`: classify frames with tract and flag the out-of-distribution
//! ones with LSGM, one JSON line per frame.
//!
//! With no arguments it runs the shipped demo model on the shipped sample
//! frames. Output fields (stable): `source`, `index`, `class`, `confidence`,
//! `score`, `threshold`, `ood`, `worst_layer`, `layers`, `latency_us`
//! (`inference`, `score`); a frame that fails has `source`, `index`, `error`.
//! Exit codes: 0 success, 1 fatal error, 2 usage error, 3 (`--fail-on-ood`)
//! at least one frame was OOD.

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use lsgm::frames::{self, FrameSource, InputSpec};
use lsgm::onnx::{Graph, Network, Output};
use lsgm::Model;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Exit code with `--fail-on-ood` when any frame was out of distribution.
const EXIT_OOD: i32 = 3;

#[derive(Parser)]
#[command(
    version,
    about = "Flag out-of-distribution frames beside tract inference (LSGM)"
)]
struct Args {
    /// ONNX classifier [default: models/fmnist-resnet.onnx].
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// LSGM model file fitted for it [default: models/fmnist-resnet.lsgm].
    #[arg(long)]
    lsgm: Option<PathBuf>,
    /// Frame size of a raw u8 stream on stdin (`-`), e.g. 28x28x1.
    #[arg(long, value_name = "WxHxC")]
    raw: Option<String>,
    /// Use this threshold instead of the calibrated one.
    #[arg(long, conflicts_with = "fpr")]
    threshold: Option<f32>,
    /// Pick the threshold that flags this fraction of in-distribution frames (from the stored quantiles).
    #[arg(long)]
    fpr: Option<f32>,
    /// Print only the summary (stderr), no per-frame lines.
    #[arg(long)]
    summary_only: bool,
    /// Exit with code 3 if any frame is OOD.
    #[arg(long)]
    fail_on_ood: bool,
    /// Benchmark: repeat the inputs to at least this many frames and print median latencies as JSON.
    #[arg(long, value_name = "FRAMES")]
    bench: Option<usize>,
    /// Images, directories (sorted), IDX or .npy files, or `-` for raw frames on stdin
    /// [default: models/samples/frames].
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
    layers: &'a [f32],
    latency_us: Latency,
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
    net: Network,
    spec: InputSpec,
    threshold: f32,
    input: Vec<f32>,
    out: Output,
    scratch: Vec<f32>,
    contributions: Vec<f32>,
}

impl<'m> Monitor<'m> {
    fn new(model: Model<'m>, onnx: &std::path::Path, args: &Args) -> Result<Self> {
        let spec = InputSpec::from_model(&model)?;
        let graph = Graph::load(onnx)?;
        graph.check_fitted_for(model.source())?;
        let mut taps = Vec::new();
        for l in model.layers() {
            let tap = graph
                .find(l.name())
                .with_context(|| format!("the LSGM file taps {:?}", l.name()))?;
            ensure!(
                tap.channels() == l.dim_in(),
                "tap {} has {} channels in the ONNX model but {} in the LSGM file: they do not belong together",
                l.name(),
                tap.channels(),
                l.dim_in()
            );
            taps.push(l.name().to_string());
        }
        let net = Network::new(graph, &taps)?;
        net.check_input(&spec)?;
        let threshold = match (args.threshold, args.fpr) {
            (Some(t), _) => t,
            (None, Some(f)) => model.threshold_for_fpr(f).with_context(|| {
                let qs: Vec<f32> = model.quantiles().map(|q| q.0).collect();
                format!("--fpr {f} is outside the stored quantiles {qs:?}")
            })?,
            (None, None) => model.threshold(),
        };
        Ok(Monitor {
            input: vec![0.0; net.input_len()],
            scratch: vec![0.0; model.scratch_len()],
            contributions: vec![0.0; model.num_layers()],
            out: Output::default(),
            model,
            net,
            spec,
            threshold,
        })
    }

    /// Classifies and scores one frame: (class, confidence, score, inference, scoring).
    fn frame(&mut self, frame: &frames::Frame) -> Result<(usize, f32, f32, Duration, Duration)> {
        frames::to_input(frame, &self.spec, &mut self.input)?;
        self.net.run(&self.input, &mut self.out)?;
        let t0 = Instant::now();
        let refs: [&[f32]; lsgm::MAX_LAYERS] =
            std::array::from_fn(|i| self.out.features.get(i).map_or(&[][..], Vec::as_slice));
        let score = self
            .model
            .score(
                &refs[..self.model.num_layers()],
                &mut self.scratch,
                &mut self.contributions,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let scoring = t0.elapsed() + self.out.pooling;
        let (class, confidence) = self.out.top_class();
        Ok((class, confidence, score, self.out.inference, scoring))
    }
}

fn median(v: &mut [u64]) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
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
    let bytes = std::fs::read(&lsgm_path).with_context(|| format!("cannot read {}", lsgm_path.display()))?;
    let model = Model::from_bytes(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; is it an .lsgm file written by fit-and-export?",
            lsgm_path.display()
        )
    })?;
    let mut mon = Monitor::new(model, &onnx, &args)?;
    let inputs = if args.inputs.is_empty() {
        vec![frames::shipped("models/samples/frames")]
    } else {
        args.inputs.clone()
    };
    let raw = args.raw.as_deref().map(frames::parse_raw_shape).transpose()?;
    let expanded = frames::expand_inputs(&inputs)?;
    if args.bench.is_some() && expanded.contains(&frames::Input::Stdin) {
        bail!("--bench needs file inputs, not stdin");
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut n, mut errors, mut ood) = (0usize, 0usize, 0usize);
    let (mut lat_inf, mut lat_score) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let target = args.bench.unwrap_or(0);
    loop {
        for (index, (source, item)) in FrameSource::new(expanded.clone(), raw)?.enumerate() {
            let result = item.and_then(|f| mon.frame(&f));
            n += 1;
            match result {
                Ok((class, confidence, score, inf, sc)) => {
                    let verdict = mon.model.verdict(score, &mon.contributions, Some(mon.threshold));
                    ood += verdict.ood as usize;
                    let (inf, sc) = (inf.as_micros() as u64, sc.as_micros() as u64);
                    lat_inf.push(inf);
                    lat_score.push(sc);
                    if !args.summary_only && args.bench.is_none() {
                        let line = Line {
                            source: &source,
                            index,
                            class,
                            confidence,
                            score,
                            threshold: mon.threshold,
                            ood: verdict.ood,
                            worst_layer: verdict.worst_layer,
                            layers: &mon.contributions,
                            latency_us: Latency {
                                inference: inf,
                                score: sc,
                            },
                        };
                        writeln!(out, "{}", serde_json::to_string(&line)?)?;
                    }
                }
                Err(e) => {
                    errors += 1;
                    if !args.summary_only && args.bench.is_none() {
                        let line = ErrorLine {
                            source: &source,
                            index,
                            error: format!("{e:#}"),
                        };
                        writeln!(out, "{}", serde_json::to_string(&line)?)?;
                    }
                }
            }
        }
        if n >= target || n == 0 {
            break;
        }
    }
    out.flush()?;
    let wall = started.elapsed().as_secs_f64();
    let (mi, ms) = (median(&mut lat_inf), median(&mut lat_score));
    let scored = n - errors;
    eprintln!(
        "lsgm-monitor: {n} frames, {errors} errors, {ood} OOD ({:.1} %), median latency: inference {mi} µs, \
         LSGM score {ms} µs; {:.0} frames/s",
        100.0 * ood as f64 / scored.max(1) as f64,
        n as f64 / wall
    );
    if args.bench.is_some() {
        let summary = serde_json::json!({
            "frames": n, "median_inference_us": mi, "median_score_us": ms,
            "score_over_inference": ms as f64 / mi.max(1) as f64, "frames_per_second": n as f64 / wall,
        });
        println!("{summary}");
    }
    Ok(if args.fail_on_ood && ood > 0 { EXIT_OOD } else { 0 })
}

fn main() {
    let args = Args::parse();
    match run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("lsgm-monitor: error: {e:#}");
            std::process::exit(1);
        }
    }
}
