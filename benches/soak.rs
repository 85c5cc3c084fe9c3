//! Soak benchmark: `lsgm-monitor` on one long stream of raw frames, watching its memory and throughput.
//!
//! A benchmark, not a test: it takes minutes, its numbers depend on the machine, and `cargo test`
//! does not run it. It starts the release monitor on the demo model (`models/fmnist-resnet.onnx` +
//! `.lsgm`, the defaults, so it runs from the package root) as
//! `lsgm-monitor --raw 28x28x1 -` and measures three things over the run:
//!
//! - **memory**: the monitor's resident set (`VmRSS` in `/proc/<pid>/status`, Linux only) is sampled
//!   every interval; after warm-up it must stay flat, growth (last sample − first sample after
//!   warm-up) < 1 MB (1,024 kB);
//! - **throughput**: frames/s in each interval (stdout lines per second); min / median / max after
//!   warm-up and the ratio min/median show whether it holds steady (reported, not judged: on a
//!   shared machine other load moves it);
//! - **accounting**: frames generated = frame lines read (drift alarm lines apart) = frames in the monitor's summary line
//!   (stderr), 0 error lines, and the monitor exits with status 0.
//!
//! A generator thread writes `SOAK_FRAMES` frames of 28×28 u8 to the monitor's stdin, then closes
//! it. The mix is deterministic, in every 10 frames: 7 Fashion-MNIST test images (cycled through
//! the 500 of `models/samples/fmnist-test-500-images-idx3-ubyte.gz`, mostly in-distribution), 1
//! MNIST digit (`mnist-100-…`), 1 frame of uniform noise and 1 structured pattern (checkerboard,
//! gradient, flat grey, an inverted Fashion-MNIST image), so some frames are flagged OOD and most
//! are not. The sample files are read with `lsgm::frames`; if they cannot be read, synthetic
//! frames stand in (all OOD) and the header says so. A reader thread only counts stdout lines; the
//! main thread prints one markdown table row per sample, then a verdict block.
//!
//! **Warm-up** is the first 30 s (model load, the worker threads' tract states and buffers,
//! the allocator reaching its steady set of arenas): the RSS baseline is the first sample taken at
//! or after 30 s (the 2nd sample if the run is shorter), and throughput statistics use only the
//! intervals after it. A run too short to have a sample after the baseline cannot show the memory
//! is flat and fails.
//!
//! Run (release build of the monitor, from the package root):
//!
//! ```text
//! cargo bench --bench soak                        # 1,000,000 frames, a sample every 10 s
//! SOAK_FRAMES=100000 cargo bench --bench soak     # a short run
//! ```
//!
//! Environment: `SOAK_FRAMES` (default 1000000, `_` allowed), `SOAK_INTERVAL_S` (default 10),
//! `SOAK_ARGS` (more monitor flags, e.g. `--window 1000 --metrics 127.0.0.1:0 --save-ood DIR`),
//! `LSGM_MONITOR` (the monitor binary; default the one cargo built for this package),
//! `LSGM_ROOT` (its working directory, where `models/` is; default this package's root).
//! Exit status 0 when every check passes, 1 when one fails (the verdict names it) or on an error.
//! A monitor that makes no progress for 5 minutes is killed and the run fails. The output is
//! markdown (the table and the verdict block), ready for docs/fleet.md. Being a bench target, a bare
//! `cargo bench` runs it too.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Bytes per frame: 28×28, one channel.
const FRAME: usize = 28 * 28;
/// Samples before this many seconds are warm-up.
const WARM_UP_S: f64 = 30.0;
/// The largest RSS growth after warm-up that still counts as flat, in kB.
const MAX_GROWTH_KB: i64 = 1024;
/// No new stdout line for this long while the monitor runs: it is stuck.
const STALL: Duration = Duration::from_secs(300);
/// How often the main thread looks whether the monitor has exited.
const POLL: Duration = Duration::from_millis(50);

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and any filter); there is nothing to select, so arguments are ignored.
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: error: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Config {
    monitor: PathBuf,
    /// More monitor flags (`SOAK_ARGS`, split on whitespace), e.g. the fleet options.
    extra: Vec<String>,
    root: PathBuf,
    frames: u64,
    interval: Duration,
}

fn env_var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(format!("{name} is not UTF-8: {v:?}")),
    }
}

fn config() -> Result<Config> {
    let monitor = match (
        env_var("LSGM_MONITOR")?,
        option_env!("CARGO_BIN_EXE_lsgm-monitor"),
    ) {
        (Some(p), _) => PathBuf::from(p),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => {
            return Err(
                "no monitor binary: set LSGM_MONITOR (cargo built this bench without the \
                        `monitor` feature, so there is no lsgm-monitor of its own)"
                    .into(),
            )
        }
    };
    let root = env_var("LSGM_ROOT")?.map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let frames = match env_var("SOAK_FRAMES")? {
        None => 1_000_000,
        Some(v) => match v.replace('_', "").parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("SOAK_FRAMES must be a whole number above 0, not {v:?}")),
        },
    };
    let interval = match env_var("SOAK_INTERVAL_S")? {
        None => Duration::from_secs(10),
        Some(v) => match v.parse::<f64>() {
            Ok(s) if s.is_finite() && (0.01..=86_400.0).contains(&s) => Duration::from_secs_f64(s),
            _ => {
                return Err(format!(
                    "SOAK_INTERVAL_S must be seconds between 0.01 and 86400, not {v:?}"
                ))
            }
        },
    };
    let extra =
        env_var("SOAK_ARGS")?.map_or_else(Vec::new, |a| a.split_whitespace().map(String::from).collect());
    Ok(Config {
        monitor,
        extra,
        root,
        frames,
        interval,
    })
}

/// One row of the table: the state at `t` seconds after the monitor started.
struct Sample {
    t: f64,
    lines: u64,
    rate: f64,
    rss_kb: Option<u64>,
    hwm_kb: Option<u64>,
}

/// `VmRSS` and `VmHWM` (peak RSS) of a live process in kB; `None` when unreadable (not Linux, or
/// the process has exited: a zombie's status has no `Vm` lines).
fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn run() -> Result<bool> {
    let cfg = config()?;
    let mix = Mix::load(&cfg.root.join("models/samples"));
    let mut args: Vec<String> = ["--raw", "28x28x1"].map(String::from).to_vec();
    args.extend(cfg.extra.iter().cloned());
    args.push("-".into());
    println!("# lsgm-monitor soak\n");
    println!(
        "- monitor: `{} {}` in `{}`",
        cfg.monitor.display(),
        args.join(" "),
        cfg.root.display()
    );
    println!("- frames: {} of 28x28x1 u8 ({})", cfg.frames, mix.describe());
    println!(
        "- sample interval: {} s; warm-up: first {WARM_UP_S} s; cores here: {}\n",
        cfg.interval.as_secs_f64(),
        thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut child = Command::new(&cfg.monitor)
        .args(args)
        .current_dir(&cfg.root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cfg.monitor.display()))?;
    let start = Instant::now();
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("the monitor's pipes were not set up".into());
    };
    let lines = Arc::new(AtomicU64::new(0));
    let alarms = Arc::new(AtomicU64::new(0));
    let generator = spawn("generator", move || generate(stdin, mix, cfg.frames))?;
    let reader = {
        let (lines, alarms) = (Arc::clone(&lines), Arc::clone(&alarms));
        spawn("reader", move || count_lines(stdout, &lines, &alarms))?
    };
    let errors = spawn("stderr", move || collect_stderr(stderr))?;

    let (samples, status, stalled) = match sample(&mut child, start, cfg.interval, &lines) {
        Ok(sampled) => sampled,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let end = start.elapsed().as_secs_f64();
    let generated = join(generator)?;
    let read = join(reader)?;
    let stderr_tail = join(errors)?;
    print_end_row(
        &samples,
        end,
        read.as_ref()
            .copied()
            .unwrap_or_else(|_| lines.load(Ordering::Relaxed)),
    );
    let report = Report {
        samples,
        end,
        status,
        stalled,
        generated,
        read,
        alarm_lines: alarms.load(Ordering::Relaxed),
        stderr: stderr_tail,
    };
    Ok(report.verdict())
}

fn spawn<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<JoinHandle<T>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| format!("cannot start the {name} thread: {e}"))
}

fn join<T>(h: JoinHandle<T>) -> Result<T> {
    let name = h.thread().name().unwrap_or("a").to_owned();
    h.join().map_err(|_| format!("the {name} thread panicked"))
}

/// Samples every `interval` until the monitor exits (or stalls and is killed), printing each row.
fn sample(
    child: &mut Child,
    start: Instant,
    interval: Duration,
    lines: &AtomicU64,
) -> Result<(Vec<Sample>, ExitStatus, bool)> {
    let pid = child.id();
    let mut samples: Vec<Sample> = Vec::new();
    let mut next = 1u32;
    let (mut seen, mut progress_at) = (0u64, Instant::now());
    println!("| t (s) | lines | frames/s (interval) | VmRSS (kB) | VmHWM (kB) |");
    println!("|---:|---:|---:|---:|---:|");
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("waiting for the monitor: {e}"))?
        {
            return Ok((samples, status, false));
        }
        let now = Instant::now();
        let n = lines.load(Ordering::Relaxed);
        if n != seen {
            (seen, progress_at) = (n, now);
        } else if now - progress_at >= STALL {
            eprintln!(
                "soak: no output for {} s: killing the monitor (pid {pid})",
                STALL.as_secs()
            );
            let _ = child.kill();
            let status = child
                .wait()
                .map_err(|e| format!("waiting for the killed monitor: {e}"))?;
            return Ok((samples, status, true));
        }
        let due = start + interval * next;
        if now < due {
            thread::sleep((due - now).min(POLL));
            continue;
        }
        let t = now.duration_since(start).as_secs_f64();
        // Behind schedule (a suspended machine): the next sample is the next one due in the future.
        next = (t / interval.as_secs_f64()) as u32 + 1;
        let memory = memory_kb(pid);
        if memory.is_none() && child.try_wait().ok().flatten().is_some() {
            continue; // exited between the two looks; the next turn returns its status
        }
        let (prev_t, prev_lines) = samples.last().map_or((0.0, 0), |s| (s.t, s.lines));
        let rate = (n - prev_lines) as f64 / (t - prev_t);
        let s = Sample {
            t,
            lines: n,
            rate,
            rss_kb: memory.map(|m| m.0),
            hwm_kb: memory.map(|m| m.1),
        };
        println!(
            "| {:.1} | {} | {:.1} | {} | {} |",
            s.t,
            s.lines,
            s.rate,
            kb(s.rss_kb),
            kb(s.hwm_kb)
        );
        samples.push(s);
    }
}

fn kb(v: Option<u64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| v.to_string())
}

/// The last, partial interval up to the monitor's exit (no RSS: the process is gone).
fn print_end_row(samples: &[Sample], end: f64, lines: u64) {
    let (prev_t, prev_lines) = samples.last().map_or((0.0, 0), |s| (s.t, s.lines));
    let rate = lines.saturating_sub(prev_lines) as f64 / (end - prev_t).max(1e-9);
    println!("| {end:.1} (exit) | {lines} | {rate:.1} | – | – |");
}

/// Writes the frames, then closes stdin (by dropping it). Returns how many frames were handed over
/// and the write error that stopped it, if any.
fn generate(stdin: ChildStdin, mut mix: Mix, frames: u64) -> (u64, Option<String>) {
    let mut out = BufWriter::with_capacity(1 << 16, stdin);
    let mut frame = [0u8; FRAME];
    for i in 0..frames {
        mix.frame(i, &mut frame);
        if let Err(e) = out.write_all(&frame) {
            return (i, Some(format!("writing frame {i} to the monitor's stdin: {e}")));
        }
    }
    match out.flush() {
        Ok(()) => (frames, None),
        Err(e) => (
            frames,
            Some(format!("flushing the last frames to the monitor's stdin: {e}")),
        ),
    }
}

/// Counts newlines on the monitor's stdout (one line per frame or error), nothing else. A last
/// line without a newline counts too.
/// Counts the frame lines on the monitor's stdout (a verdict or an error
/// line per frame); drift alarm lines (`{"alarm":…}`) are counted apart.
fn count_lines(
    stdout: ChildStdout,
    lines: &AtomicU64,
    alarms: &AtomicU64,
) -> std::result::Result<u64, String> {
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) if line.starts_with(b"{\"alarm\"") => alarms.fetch_add(1, Ordering::Relaxed),
            Ok(_) => lines.fetch_add(1, Ordering::Relaxed),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the monitor's stdout: {e}")),
        };
    }
    Ok(lines.load(Ordering::Relaxed))
}

/// The monitor's stderr: its first and last 20 lines (the summary is the last), and how many in all.
struct StderrTail {
    head: Vec<String>,
    tail: VecDeque<String>,
    total: u64,
    error: Option<String>,
}

fn collect_stderr(stderr: ChildStderr) -> StderrTail {
    const KEEP: usize = 20;
    let mut r = BufReader::new(stderr);
    let mut t = StderrTail {
        head: Vec::new(),
        tail: VecDeque::new(),
        total: 0,
        error: None,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                t.total += 1;
                if t.head.len() < KEEP {
                    t.head.push(text);
                } else {
                    if t.tail.len() == KEEP {
                        t.tail.pop_front();
                    }
                    t.tail.push_back(text);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                t.error = Some(format!("reading the monitor's stderr: {e}"));
                break;
            }
        }
    }
    t
}

/// `lsgm-monitor: 1000000 frames, 0 errors, 51234 OOD (5.1 %); 2345 frames/s on 2 threads; …`
struct Summary {
    frames: u64,
    errors: u64,
    ood: u64,
}

fn parse_summary(line: &str) -> Option<Summary> {
    let head = line.strip_prefix("lsgm-monitor:")?.split(';').next()?;
    let (mut frames, mut errors, mut ood) = (None, None, None);
    for part in head.split(',') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(word)) = (words.next().and_then(|n| n.parse::<u64>().ok()), words.next()) else {
            continue;
        };
        match word {
            "frame" | "frames" => frames = Some(n),
            "error" | "errors" => errors = Some(n),
            "OOD" => ood = Some(n),
            _ => {}
        }
    }
    Some(Summary {
        frames: frames?,
        errors: errors?,
        ood: ood?,
    })
}

struct Report {
    samples: Vec<Sample>,
    end: f64,
    status: ExitStatus,
    stalled: bool,
    generated: (u64, Option<String>),
    read: std::result::Result<u64, String>,
    /// Drift alarm lines on stdout (with `SOAK_ARGS` holding `--window`).
    alarm_lines: u64,
    stderr: StderrTail,
}

impl Report {
    /// Prints the verdict block; true when every check passed.
    fn verdict(&self) -> bool {
        let mut failed: Vec<String> = Vec::new();
        println!("\n## Verdict\n");
        println!("```text");
        self.accounting(&mut failed);
        self.memory(&mut failed);
        self.throughput();
        self.exit(&mut failed);
        println!("```\n");
        if failed.is_empty() {
            println!("PASS: every frame accounted for, RSS flat after warm-up, monitor exited 0");
        } else {
            println!("FAIL:");
            for f in &failed {
                println!("- {f}");
            }
        }
        failed.is_empty()
    }

    fn summary_line(&self) -> Option<&str> {
        let lines = self.stderr.head.iter().chain(self.stderr.tail.iter());
        lines
            .rev()
            .find(|l| parse_summary(l).is_some())
            .map(String::as_str)
    }

    fn accounting(&self, failed: &mut Vec<String>) {
        let (generated, write_error) = (&self.generated.0, &self.generated.1);
        println!("frames generated:        {generated}");
        match &self.read {
            Ok(n) => println!(
                "frame lines read:        {n} (and {} drift alarm lines)",
                self.alarm_lines
            ),
            Err(e) => println!("frame lines read:        ? ({e})"),
        }
        let summary = self.summary_line().and_then(parse_summary);
        match &summary {
            Some(s) => {
                let pct = 100.0 * s.ood as f64 / s.frames.max(1) as f64;
                println!(
                    "summary frames:          {} ({} errors, {} OOD = {pct:.1} %)",
                    s.frames, s.errors, s.ood
                );
            }
            None => println!("summary frames:          ? (no summary line on the monitor's stderr)"),
        }
        if let Some(line) = self.summary_line() {
            println!("monitor summary:         {line}");
        }
        if let Some(e) = write_error {
            failed.push(format!("the generator stopped: {e}"));
        }
        match (&self.read, &summary) {
            (Ok(read), Some(s)) if *read == *generated && s.frames == *generated => {}
            (read, s) => failed.push(format!(
                "frames unaccounted for: generated {generated}, stdout lines {}, summary frames {}",
                read.as_ref().map_or_else(|_| "?".into(), u64::to_string),
                s.as_ref().map_or_else(|| "?".into(), |s| s.frames.to_string())
            )),
        }
        if let Some(s) = summary.as_ref().filter(|s| s.errors > 0) {
            failed.push(format!(
                "{} error lines (every frame written was whole and valid)",
                s.errors
            ));
        }
    }

    /// Index of the RSS baseline: the first sample at or after warm-up, else the 2nd sample.
    fn baseline(&self) -> Option<usize> {
        let after = self.samples.iter().position(|s| s.t >= WARM_UP_S);
        after.or(if self.samples.len() >= 2 { Some(1) } else { None })
    }

    fn memory(&self, failed: &mut Vec<String>) {
        let base = self.baseline();
        let last = self.samples.len().checked_sub(1);
        let (Some(b), Some(l)) = (base, last) else {
            println!(
                "RSS:                     not enough samples ({})",
                self.samples.len()
            );
            failed.push("run too short to judge memory: no sample after warm-up".into());
            return;
        };
        let (bs, ls) = (&self.samples[b], &self.samples[l]);
        let after = &self.samples[b..];
        let max = after
            .iter()
            .filter(|s| s.rss_kb.is_some())
            .rev() // the first of equal maxima
            .max_by_key(|s| s.rss_kb);
        let (Some(base_kb), Some(last_kb), Some(max)) = (bs.rss_kb, ls.rss_kb, max) else {
            println!("RSS:                     not readable (needs Linux /proc/<pid>/status)");
            failed.push("RSS could not be read".into());
            return;
        };
        let max_kb = max.rss_kb.unwrap_or(0);
        let mb = |kb: i64| kb as f64 / 1024.0;
        let growth = last_kb as i64 - base_kb as i64;
        println!(
            "RSS after warm-up:       {base_kb} kB at {:.1} s (sample {} of {})",
            bs.t,
            b + 1,
            self.samples.len()
        );
        println!("RSS at the last sample:  {last_kb} kB at {:.1} s", ls.t);
        println!("RSS max after warm-up:   {max_kb} kB at {:.1} s", max.t);
        println!("RSS peak (VmHWM):        {} kB", kb(ls.hwm_kb));
        println!(
            "RSS growth:              {:+.3} MB (last - after warm-up); max - after warm-up {:+.3} MB; limit < 1 MB",
            mb(growth),
            mb(max_kb as i64 - base_kb as i64)
        );
        if l == b {
            failed.push("run too short to judge memory: no sample after the warm-up baseline".into());
        } else if growth >= MAX_GROWTH_KB {
            failed.push(format!(
                "RSS grew {:.3} MB after warm-up (limit < 1 MB)",
                mb(growth)
            ));
        }
    }

    fn throughput(&self) {
        let mut rates: Vec<f64> = match self.baseline() {
            Some(b) => self.samples[b + 1..].iter().map(|s| s.rate).collect(),
            None => Vec::new(),
        };
        rates.sort_by(f64::total_cmp);
        if rates.is_empty() {
            println!("frames/s after warm-up:  n/a (no interval after warm-up)");
        } else {
            let n = rates.len();
            let median = if n % 2 == 1 {
                rates[n / 2]
            } else {
                (rates[n / 2 - 1] + rates[n / 2]) / 2.0
            };
            let ratio = if median > 0.0 {
                format!("{:.3}", rates[0] / median)
            } else {
                "n/a".into()
            };
            println!(
                "frames/s after warm-up:  min {:.1}, median {median:.1}, max {:.1} over {n} intervals; min/median {ratio}",
                rates[0],
                rates[n - 1],
            );
        }
        let lines = self.read.as_ref().copied().unwrap_or(0);
        println!(
            "whole run:               {lines} lines in {:.1} s = {:.1} frames/s",
            self.end,
            lines as f64 / self.end
        );
    }

    fn exit(&self, failed: &mut Vec<String>) {
        let code = self
            .status
            .code()
            .map_or_else(|| self.status.to_string(), |c| c.to_string());
        println!("monitor exit status:     {code}");
        let s = &self.stderr;
        if s.total as usize > s.head.len() + s.tail.len() {
            println!(
                "monitor stderr:          {} lines, first and last {} shown",
                s.total,
                s.head.len()
            );
        }
        for l in s
            .head
            .iter()
            .chain(s.tail.iter())
            .filter(|l| parse_summary(l).is_none())
        {
            println!("monitor stderr:          {l}");
        }
        if let Some(e) = &s.error {
            failed.push(e.clone());
        }
        if self.stalled {
            failed.push(format!(
                "the monitor made no progress for {} s and was killed",
                STALL.as_secs()
            ));
        }
        if !self.status.success() {
            failed.push(format!("the monitor exited with {}", self.status));
        }
    }
}

/// The deterministic frame mix: in every 10 frames, 7 Fashion-MNIST, 1 MNIST, 1 noise, 1 pattern.
struct Mix {
    fmnist: Vec<u8>,
    mnist: Vec<u8>,
    rng: u64,
    note: String,
}

impl Mix {
    fn load(samples: &Path) -> Mix {
        let mut notes = Vec::new();
        let mut read = |name: &str| match idx_frames(&samples.join(name)) {
            Ok(px) => {
                notes.push(format!("{} from {name}", px.len() / FRAME));
                px
            }
            Err(e) => {
                notes.push(format!("{name} unreadable ({e}): synthetic frames instead"));
                Vec::new()
            }
        };
        let fmnist = read("fmnist-test-500-images-idx3-ubyte.gz");
        let mnist = read("mnist-100-images-idx3-ubyte.gz");
        Mix {
            fmnist,
            mnist,
            rng: 0x9E37_79B9_7F4A_7C15,
            note: notes.join(", "),
        }
    }

    fn describe(&self) -> String {
        format!(
            "in every 10: 7 Fashion-MNIST, 1 MNIST, 1 uniform noise, 1 pattern; cycled images: {}",
            self.note
        )
    }

    /// xorshift64*.
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn image(set: &[u8], k: u64) -> Option<&[u8]> {
        let n = (set.len() / FRAME) as u64;
        let i = usize::try_from(k % n.max(1)).ok()?;
        set.get(i * FRAME..(i + 1) * FRAME)
    }

    fn frame(&mut self, i: u64, out: &mut [u8; FRAME]) {
        let (round, slot) = (i / 10, i % 10);
        let image = match slot {
            0..=6 => Self::image(&self.fmnist, round * 7 + slot),
            7 => Self::image(&self.mnist, round),
            _ => None,
        };
        match (image, slot) {
            (Some(px), _) => out.copy_from_slice(px),
            (None, 9) => self.pattern(round, out),
            (None, _) if slot < 8 && i.is_multiple_of(2) => self.pattern(round + slot, out),
            (None, _) => self.noise(out),
        }
    }

    fn noise(&mut self, out: &mut [u8; FRAME]) {
        for chunk in out.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }

    fn pattern(&mut self, round: u64, out: &mut [u8; FRAME]) {
        let r = self.next();
        let kind = round % 4;
        if kind == 3 {
            if let Some(px) = Self::image(&self.fmnist, r) {
                for (o, p) in out.iter_mut().zip(px) {
                    *o = 255 - p;
                }
                return;
            }
        }
        for (k, o) in out.iter_mut().enumerate() {
            let (y, x) = ((k / 28) as u64, (k % 28) as u64);
            *o = match kind {
                0 => {
                    let p = 2 + r % 6;
                    if (y / p + x / p).is_multiple_of(2) {
                        255
                    } else {
                        0
                    }
                }
                1 => match r % 3 {
                    0 => (x * 255 / 27) as u8,
                    1 => (y * 255 / 27) as u8,
                    _ => ((x + y) * 255 / 54) as u8,
                },
                _ => (r >> 8) as u8,
            };
        }
    }
}

/// The pixels of an IDX file (gzipped or not) of 28×28 u8 images, read by
/// the monitor's own IDX reader.
fn idx_frames(path: &Path) -> Result<Vec<u8>> {
    let frames = lsgm::frames::read_idx_images(path).map_err(|e| format!("{e:#}"))?;
    let mut pixels = Vec::with_capacity(frames.len() * FRAME);
    for f in &frames {
        match f.pixels.as_u8() {
            Some(px) if px.len() == FRAME => pixels.extend_from_slice(px),
            _ => return Err(format!("{}: not 28x28 u8 images", path.display())),
        }
    }
    Ok(pixels)
}
