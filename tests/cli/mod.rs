//! Running the `lsgm-monitor` binary from integration tests. Shared by
//! several test binaries; not every binary uses every helper.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

mod live;
#[allow(unused_imports)] // not every test binary uses both
pub use live::{allow_descriptors, Live};

/// The monitor binary under test: `LSGM_MONITOR_BIN` when set (a board
/// binary from `tools/boards/build.sh`, e.g. `dist/aarch64-unknown-linux-gnu/
/// lsgm-monitor`), else the one cargo built beside these tests.
fn binary() -> String {
    match std::env::var("LSGM_MONITOR_BIN") {
        Ok(path) if !path.trim().is_empty() => path,
        _ => env!("CARGO_BIN_EXE_lsgm-monitor").to_string(),
    }
}

/// The monitor binary, through `LSGM_TEST_RUNNER` (e.g. `qemu-aarch64 -L
/// /usr/aarch64-linux-gnu`) when it is built for another architecture: CI
/// runs these host-built tests against each board binary under qemu-user.
pub fn monitor() -> Command {
    match std::env::var("LSGM_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut c = Command::new(words.next().expect("non-empty"));
            c.args(words).arg(binary());
            c
        }
        _ => Command::new(binary()),
    }
}

pub fn run(args: &[&str]) -> Output {
    monitor()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

pub fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The monitor started with every stream piped.
pub fn spawn(args: &[&str]) -> std::process::Child {
    monitor()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = spawn(args);
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// `n` frames of 28×28 uniform noise as raw u8 (a fixed LCG, so every run
/// sees the same frames).
pub fn uniform_noise(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..n * 784)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

/// The first `n` frames of the shipped Fashion-MNIST test sample (in
/// distribution for the demo model) as raw u8.
pub fn fmnist_frames(n: usize) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/samples/fmnist-test-500-images-idx3-ubyte.gz"
    );
    let frames = lsgm::frames::read_idx_images(std::path::Path::new(path)).unwrap();
    frames[..n]
        .iter()
        .flat_map(|f| f.pixels.as_u8().unwrap())
        .copied()
        .collect()
}

/// Writes `raw` (28×28 u8 frames) as an uncompressed IDX file.
pub fn write_idx(path: &std::path::Path, raw: &[u8]) {
    let mut bytes = vec![0, 0, 8, 3];
    for d in [(raw.len() / 784) as u32, 28, 28] {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(raw);
    std::fs::write(path, bytes).unwrap();
}

/// The numbers of the summary line: frames, errors, OOD.
pub fn summary_counts(stderr: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with("lsgm-monitor: ") && l.contains(" frame"))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    let before = |noun: &str| -> u64 {
        let i = words
            .iter()
            .position(|w| w.starts_with(noun))
            .unwrap_or_else(|| panic!("no {noun} in {line}"));
        words[i - 1].parse().unwrap()
    };
    let ood = if line.contains(" OOD") { before("OOD") } else { 0 };
    (before("frame"), before("error"), ood)
}
