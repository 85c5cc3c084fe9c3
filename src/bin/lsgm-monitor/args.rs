//! The command line: flags, their parsers, and the usage checks clap
//! cannot express. Every refusal here exits with code 2 before any model
//! or frame is read.

use clap::{CommandFactory, Parser};
use lsgm::frames;
use std::net::SocketAddr;
use std::path::PathBuf;

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

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!(
            "expected a probability strictly between 0 and 1, e.g. 1e-6, got {s:?}"
        )),
    }
}

fn at_least_one(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!("expected a whole number, at least 1, got {s:?}")),
    }
}

fn raw_format(s: &str) -> Result<frames::RawFormat, String> {
    frames::parse_raw_format(s).map_err(|e| e.to_string())
}

/// `--metrics` address: `HOST:PORT` (port 0 picks a free one; the monitor
/// prints the one it got).
fn address(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let mut addrs = s
        .to_socket_addrs()
        .map_err(|e| format!("expected HOST:PORT, e.g. 127.0.0.1:9184 or 0.0.0.0:9184, got {s:?}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address; give an IP, e.g. 127.0.0.1:9184"))
}

/// Exit codes, also listed in `--help`.
pub const AFTER_HELP: &str = "Exit codes: 0 success, 1 fatal error (bad model, mismatched files, a --save-ood \
     directory that cannot be written for a reason other than a full disk, a --metrics port in use, a --window \
     too short for --alarm-p; during a run, the --metrics endpoint stopping) or no frame could be read, 2 usage error, 3 with --fail-on-ood when any frame was OOD, 4 with --fail-on-alarm when a \
     drift alarm was raised (4 wins over 3). SIGINT/SIGTERM: the frames in flight are finished, the summary is \
     printed, and the run exits with the code it earned (0, 3 or 4); a second signal exits at once.";

#[derive(Parser)]
#[command(
    name = "lsgm-monitor",
    version,
    about = "Flag out-of-distribution frames beside tract inference (LSGM)",
    allow_negative_numbers = true,
    after_help = AFTER_HELP
)]
pub struct Args {
    /// ONNX classifier [default: models/fmnist-resnet.onnx].
    #[arg(long)]
    pub onnx: Option<PathBuf>,
    /// LSGM model file fitted for it [default: models/fmnist-resnet.lsgm].
    #[arg(long)]
    pub lsgm: Option<PathBuf>,
    /// Frames of a raw stream on stdin (`-`): WxH:PIX_FMT with ffmpeg's -pix_fmt name rgb24, bgr24 or
    /// gray (GStreamer's RGB, BGR, GRAY8 too), e.g. 640x480:bgr24 for OpenCV's BGR frames; or WxHxC
    /// (C = 1: gray, 3: rgb24), e.g. 28x28x1. BGR frames are made RGB, the model's channel order then applies.
    #[arg(long, value_name = "WxH:PIX_FMT", value_parser = raw_format)]
    pub raw: Option<frames::RawFormat>,
    /// Use this threshold instead of the calibrated one.
    #[arg(long, conflicts_with = "fpr", value_parser = finite, allow_hyphen_values = true)]
    pub threshold: Option<f32>,
    /// Pick the threshold that flags this fraction of in-distribution frames (from the stored quantiles).
    #[arg(long, value_parser = fraction)]
    pub fpr: Option<f32>,
    /// Print only the summary (stderr), no per-frame lines (alarm lines are still printed).
    #[arg(long)]
    pub summary_only: bool,
    /// Exit with code 3 if any frame is OOD.
    #[arg(long)]
    pub fail_on_ood: bool,
    /// Drift alarm: test the OOD rate of the last N frames against the rate the threshold implies
    /// (one-sided exact binomial test at every frame); an alarm is a JSON line of its own.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub window: Option<u64>,
    /// Significance level of the drift test per frame; false alarms per hour are at most
    /// P × 3600 × frames/s.
    #[arg(long, value_name = "P", default_value_t = 1e-6, value_parser = probability, requires = "window")]
    pub alarm_p: f64,
    /// The in-distribution OOD rate the drift test assumes [default: implied by the threshold: 1 − the
    /// calibrated TPR, the --fpr given, or the stored quantiles at --threshold].
    #[arg(long, value_name = "RATE", value_parser = probability, requires = "window")]
    pub expected_ood_rate: Option<f64>,
    /// Exit with code 4 if a drift alarm was raised.
    #[arg(long, requires = "window")]
    pub fail_on_alarm: bool,
    /// Save each OOD frame (its original pixels: PNG, or .npy for float frames) with its verdict as
    /// a JSON sidecar in DIR, oldest removed first past --save-max-files / --save-max-bytes.
    #[arg(long, value_name = "DIR")]
    pub save_ood: Option<PathBuf>,
    /// Most captures (image + sidecar) kept in --save-ood DIR.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = at_least_one, requires = "save_ood")]
    pub save_max_files: u64,
    /// Most bytes kept in --save-ood DIR (images + sidecars; 1073741824 = 1 GiB).
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30, value_parser = at_least_one, requires = "save_ood")]
    pub save_max_bytes: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics, e.g. 0.0.0.0:9184 (port 0: any free port,
    /// printed on stderr).
    #[arg(long, value_name = "ADDR:PORT", value_parser = address)]
    pub metrics: Option<SocketAddr>,
    /// Worker threads judging frames [default: every core]. Each holds its own tract state and
    /// buffers; lines still come out in input order. 1 judges one frame at a time.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Threads inside each inference: tract's multithread-mm (one pool shared by the workers), or
    /// each worker's onnxruntime session's intra-op threads. Lowers the latency of one frame on
    /// large networks; costs on small ones. 1 = off.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub intra_threads: u16,
    #[command(flatten)]
    pub engine: lsgm::onnx::EngineArgs,
    /// Benchmark: repeat the inputs (whole passes) to at least this many frames and print median
    /// latencies and frames/s as JSON.
    #[arg(long, value_name = "FRAMES", value_parser = at_least_one)]
    pub bench: Option<u64>,
    /// Images (PNG, JPEG, BMP, GIF, TIFF, WebP), directories of them (subfolders included, in path
    /// order; a file named like an image or holding one is read as if named — an empty or cut one is
    /// an error line —, other files are skipped with a note), IDX or .npy files, pipes holding one
    /// (<(…), /dev/stdin), or `-` for raw frames on stdin (with --raw) [default:
    /// models/samples/frames].
    pub inputs: Vec<PathBuf>,
}

impl Args {
    /// Parses the command line, exiting with code 2 on a usage error.
    pub fn get() -> Args {
        let args = Args::parse();
        let stdin = args.inputs.iter().filter(|p| p.as_os_str() == "-").count();
        let usage = match (args.raw.is_some(), stdin) {
            (_, 2..) => Some("`-` (stdin) can be read only once: give it once"),
            (true, 0) => Some("--raw describes frames on stdin: add `-` to the inputs"),
            (false, 1) => {
                Some("reading frames from stdin (-) needs --raw, e.g. --raw 640x480:rgb24 or --raw 28x28x1")
            }
            (_, 1) if args.bench.is_some() => Some("--bench repeats file inputs: it cannot read stdin (-)"),
            _ => None,
        };
        if let Some(msg) = usage {
            Args::command()
                .error(clap::error::ErrorKind::ArgumentConflict, msg)
                .exit();
        }
        if let Err(e) = args.engine.engine(usize::from(args.intra_threads)) {
            Args::command()
                .error(clap::error::ErrorKind::ArgumentConflict, e)
                .exit();
        }
        args
    }
}
