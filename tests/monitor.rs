#![cfg(feature = "monitor")]
//! `lsgm-monitor` end to end on the shipped demo model and samples.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_lsgm-monitor");

/// The monitor binary, through `LSGM_TEST_RUNNER` (e.g. `qemu-aarch64 -L
/// /usr/aarch64-linux-gnu`) when the tests run cross-compiled: cargo's runner
/// wraps the test executable, not the binaries it starts.
fn monitor() -> Command {
    match std::env::var("LSGM_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut c = Command::new(words.next().expect("non-empty"));
            c.args(words).arg(BIN);
            c
        }
        _ => Command::new(BIN),
    }
}

fn run(args: &[&str]) -> Output {
    monitor()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = monitor()
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// The snapshot without run-dependent latencies; numbers compared to 1e-3.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-3 * (1.0 + y.abs())
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.keys().filter(|k| *k != "latency_us").count() == y.keys().filter(|k| *k != "latency_us").count()
                && x.iter()
                    .filter(|(k, _)| *k != "latency_us")
                    .all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn default_run_matches_the_snapshot() {
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = lines(&o);
    let want: Vec<Value> = include_str!("golden/monitor-frames.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(same(g, w), "got {g}\nwant {w}");
        assert!(
            g["latency_us"]["inference"].as_u64().is_some() && g["latency_us"]["score"].as_u64().is_some()
        );
    }
    // The shipped noise frames are flagged, the test images are not.
    let ood: Vec<bool> = got.iter().map(|l| l["ood"].as_bool().unwrap()).collect();
    assert_eq!(&ood[..4], &[false; 4]);
    assert_eq!(&ood[6..], &[true, true]);
    assert!(stderr(&o).contains("8 frames, 0 errors"), "{}", stderr(&o));
}

#[test]
fn in_distribution_frames_pass_at_about_the_calibrated_rate() {
    let o = run(&["models/samples/fmnist-test-500-images-idx3-ubyte.gz"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = lines(&o);
    assert_eq!(l.len(), 500);
    let flagged = l.iter().filter(|v| v["ood"] == true).count() as f64 / 500.0;
    // Calibrated for 5 % on held-out training frames; the test set is close.
    assert!((0.01..=0.10).contains(&flagged), "{flagged}");
    let labels = lsgm::frames::read_idx_labels(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/samples/fmnist-test-500-labels-idx1-ubyte.gz"
    )))
    .unwrap();
    let correct = l
        .iter()
        .zip(&labels)
        .filter(|(v, &y)| v["class"] == y as u64)
        .count();
    assert!(
        correct >= 450,
        "demo classifier accuracy on the sample: {correct}/500"
    );
}

#[test]
fn noise_through_a_pipe_is_all_flagged() {
    // 40 Gaussian N(0.5, 0.25²) and 40 uniform frames, as raw u8 on stdin.
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut raw = Vec::new();
    for i in 0..80 {
        for _ in 0..784 {
            let v = if i < 40 {
                let (u1, u2) = (next().max(1e-12), next());
                0.5 + 0.25 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            } else {
                next()
            };
            raw.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    let o = run_stdin(&["--raw", "28x28x1", "-"], &raw);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = lines(&o);
    assert_eq!(l.len(), 80);
    assert!(l.iter().all(|v| v["ood"] == true), "{l:?}");
    assert_eq!(l[3]["source"], "stdin#3");
    // --fail-on-ood turns that into exit code 3.
    let o = run_stdin(
        &["--raw", "28x28x1", "--fail-on-ood", "--summary-only", "-"],
        &raw,
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(o.stdout.is_empty());
}

#[test]
fn a_partial_last_frame_is_an_error_line_not_a_crash() {
    let raw = vec![0u8; 784 * 2 + 100];
    let o = run_stdin(&["--raw", "28x28x1", "-"], &raw);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = lines(&o);
    assert_eq!(l.len(), 3);
    assert!(
        l[2]["error"].as_str().unwrap().contains("partial frame 2"),
        "{:?}",
        l[2]
    );
    assert!(l[0]["score"].is_number());
}

#[test]
fn an_unreadable_image_in_a_directory_gets_an_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let frames = concat!(env!("CARGO_MANIFEST_DIR"), "/models/samples/frames");
    std::fs::copy(format!("{frames}/00-fmnist-test-0.png"), dir.path().join("a.png")).unwrap();
    std::fs::write(dir.path().join("b.png"), b"not a png").unwrap();
    std::fs::copy(format!("{frames}/07-uniform-noise.png"), dir.path().join("c.png")).unwrap();
    let o = run(&[dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = lines(&o);
    assert_eq!(l.len(), 3);
    assert!(
        l[1]["error"].as_str().unwrap().contains("cannot decode image"),
        "{:?}",
        l[1]
    );
    assert!(l[1]["source"].as_str().unwrap().ends_with("b.png"));
    assert_eq!(
        (l[0]["ood"].as_bool(), l[2]["ood"].as_bool()),
        (Some(false), Some(true))
    );
}

#[test]
fn mismatched_or_broken_model_files_fail_clearly() {
    // A model file of another network.
    let o = run(&["--onnx", "tools/fit-and-export/tests/fixtures/plain-cnn.onnx"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("fitted for another network"),
        "{}",
        stderr(&o)
    );
    // A truncated model file.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/fmnist-resnet.lsgm")).unwrap();
    let cut = dir.path().join("cut.lsgm");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(&["--lsgm", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
    // Not an ONNX model.
    let o = run(&["--onnx", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    // Stdin without --raw, and a bad --raw.
    let o = run(&["-"]);
    assert!(stderr(&o).contains("--raw"), "{}", stderr(&o));
    let o = run(&["--raw", "28x28", "-"]);
    assert!(stderr(&o).contains("WIDTHxHEIGHTxCHANNELS"), "{}", stderr(&o));
    for o in [
        run(&["-"]),
        run(&["--raw", "28x28", "-"]),
        run(&["--lsgm", cut.to_str().unwrap()]),
    ] {
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn threshold_overrides() {
    let o = run(&["--threshold", "1e9", "--summary-only"]);
    assert!(stderr(&o).contains("8 OOD (100.0 %)"), "{}", stderr(&o));
    let o = run(&["--fpr", "0.5"]);
    let l = lines(&o);
    let t = l[0]["threshold"].as_f64().unwrap();
    let o = run(&[]);
    let calibrated = lines(&o)[0]["threshold"].as_f64().unwrap();
    assert!(
        t > calibrated,
        "the median ID score is above the 5 % threshold: {t} vs {calibrated}"
    );
    let o = run(&["--fpr", "0.9999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("outside the stored quantiles"),
        "{}",
        stderr(&o)
    );
}
