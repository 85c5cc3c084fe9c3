//! What users bring to `fit-and-export`: networks that need to be told
//! something (channel order, normalisation, input size, logits), models
//! bound to their own network, output files, exit codes — on the ONNX
//! fixtures of `tools/fixtures/onnx_fixtures.py`, against onnxruntime.

mod common;

use common::{fails, fit_features, read_f32, scores, stderr, stdout, tool};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn onnx(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx")
        .join(rel)
}

fn reference(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(onnx(name)).unwrap()).unwrap()
}

/// `n` frames of the fixture script's formula as a u8 `.npy` (N×H×W or N×H×W×C).
fn formula_frames(path: &Path, n: usize, h: usize, w: usize, c: usize) {
    let mut data = Vec::with_capacity(n * h * w * c);
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    data.push(((7 * x + 13 * y + 31 * ch + 57 * i + (x * y * (i + 1)) % 17) % 256) as u8);
                }
            }
        }
    }
    let shape: Vec<u64> = if c == 1 {
        vec![n as u64, h as u64, w as u64]
    } else {
        vec![n as u64, h as u64, w as u64, c as u64]
    };
    common::write_npy(path, &shape, data);
}

const FIT_FAST: [&str; 6] = ["--components", "2", "--max-iter", "20", "--reg-covar", "1e-3"];

/// Fits `net` on `frames` into `model` with the input flags in `extra`.
fn fit(net: &str, frames: &Path, model: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    tool()
        .arg("--onnx")
        .arg(onnx(net))
        .arg("--train")
        .arg(frames)
        .arg("--out")
        .arg(model)
        .args(extra)
        .args(FIT_FAST)
        .assert()
}

/// `features --lsgm`: the model's taps and preprocessing on `net`, to run.
fn features_cmd(net: &str, model: &Path, data: &Path, out: &Path) -> assert_cmd::Command {
    let mut cmd = tool();
    cmd.args(["features", "--onnx"])
        .arg(onnx(net))
        .arg("--lsgm")
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out);
    cmd
}

/// Runs [`features_cmd`], which must succeed.
fn features(net: &str, model: &Path, data: &Path, out: &Path) {
    features_cmd(net, model, data, out).assert().success();
}

fn summary(model: &Path) -> String {
    stdout(&tool().arg("inspect").arg(model).assert().success())
}

/// The first rows of a row-major `.npy` against onnxruntime's rows, to 1e-4 relative.
fn rows_match(file: &Path, want: &Value) {
    rows_match_within(file, want, 1e-4);
}

/// [`rows_match`] to `tol` relative.
fn rows_match_within(file: &Path, want: &Value, tol: f64) {
    let got = read_f32(file);
    let want = want.as_array().unwrap();
    let k = want[0].as_array().unwrap().len();
    for (i, row) in want.iter().enumerate() {
        for (j, w) in row.as_array().unwrap().iter().enumerate() {
            let (g, w) = (got[i * k + j] as f64, w.as_f64().unwrap());
            assert!(
                (g - w).abs() < tol * (1.0 + w.abs()),
                "{}: row {i}, column {j}: {g} vs {w}",
                file.display()
            );
        }
    }
}

#[test]
fn what_a_network_needs_and_the_flags_do_not_say_is_an_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("f.npy");
    formula_frames(&frames, 40, 28, 28, 3);
    let out = dir.path().join("m.lsgm");
    let fit = |net: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--onnx",
            onnx(net).to_str().unwrap(),
            "--train",
            frames.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(["--out".to_string(), out.to_str().unwrap().to_string()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let check = |args: Vec<String>, needle: &str| {
        fails(tool().args(args), 1, &[needle]);
    };
    check(fit("rgb.onnx", &[]), "--channel-order rgb");
    check(fit("rgb.onnx", &["--channel-order", "bgr"]), "--mean and --std");
    check(
        fit(
            "rgb.onnx",
            &[
                "--channel-order",
                "rgb",
                "--mean",
                "123.7,116.3,103.5",
                "--std",
                "58",
            ],
        ),
        "--input-range 0-255",
    );
    check(
        fit("uint8_input.onnx", &["--mean", "0.5", "--std", "0.25"]),
        "drop --mean, --std",
    );
    check(
        fit("dynamic_hw.onnx", &["--channel-order", "rgb"]),
        "--input-size",
    );
    check(
        fit("two_outputs.onnx", &["--mean", "0.5", "--std", "0.25"]),
        "--logits NAME",
    );
    check(
        fit(
            "ext_data/model.onnx",
            &["--channel-order", "rgb", "--mean", "0.5", "--std", "0.25"],
        ),
        "drop --channel-order",
    );
    check(
        fit(
            "ext_data/model.onnx",
            &["--mean", "0.5", "--std", "0.25", "--layer", "relu1,relu2"],
        ),
        "no tappable node named \"relu1,relu2\"",
    );
    check(
        fit(
            "ext_data/model.onnx",
            &["--mean", "0.5", "--std", "0.25", "--layers", "relu1,relu2,relu1"],
        ),
        "tap \"relu1\" is given twice",
    );
}

#[test]
fn usage_errors_exit_2() {
    for (args, needle) in [
        (&["--mean", "nan", "--std", "1"][..], "not a finite number"),
        (&["--mean", "0", "--std", "inf"], "not a positive finite number"),
        (&["--mean", "0", "--std", "0"], "not a positive finite number"),
        (&["--layers", ""], "expected `auto` or a comma list"),
        (&["--layers", ",,"], "expected `auto` or a comma list"),
        (&["--input-size", "0x3"], "HEIGHTxWIDTH"),
        (&["--resize", "fit"], "resize policy"),
        (&["--channel-order", "rgba"], "rgb or bgr"),
        (&["--input-range", "0-2"], "input range"),
        (&["--holdout", "0.95"], "outside [0, 0.9)"),
        (&["--holdout", "-0.1"], "outside [0, 0.9)"),
        (&["--holdout", "a"], "not a number"),
        (&["--threads", "300"], "--threads"),
        (&["--max-dim", "0"], "--max-dim"),
    ] {
        fails(tool().args(args), 2, &[needle]);
    }
    // Negative numbers are plain option values.
    fails(
        tool().args(["--mean", "-0.5", "--std", "2", "--out", "/nonexistent/x.lsgm"]),
        1,
        &["/nonexistent"],
    );
}

#[test]
fn external_weights_fit_and_the_model_refuses_any_other_weights() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("f.npy");
    formula_frames(&frames, 220, 28, 28, 1);
    let model = dir.path().join("m.lsgm");
    fit(
        "ext_data/model.onnx",
        &frames,
        &model,
        &["--mean", "0.5", "--std", "0.25"],
    )
    .success();
    let a = tool().args(["inspect", "--json"]).arg(&model).assert().success();
    let j: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert!(
        j["source"].as_str().unwrap().ends_with("data:model.onnx.data"),
        "{}",
        j["source"]
    );
    // features --lsgm with the model's own network matches onnxruntime …
    let feats = dir.path().join("feats");
    features("ext_data/model.onnx", &model, &frames, &feats);
    rows_match(&feats.join("logits.npy"), &reference("ext_data.json")["logits"]);
    // Flags that would contradict the model's preprocessing are refused.
    fails(
        features_cmd("ext_data/model.onnx", &model, &frames, &feats).args(["--mean", "0.3"]),
        1,
        &["drop --mean"],
    );
    // … and any other network, even the same weights inline, is refused.
    fails(
        &mut features_cmd("ext_data_inline.onnx", &model, &frames, &feats),
        1,
        &["fitted for another network"],
    );
    // eval makes its --out folder first (to check it can write there):
    // what matters is that nothing is written into it.
    let eval_out = dir.path().join("eval");
    std::fs::create_dir(&eval_out).unwrap();
    fails(
        tool()
            .args(["eval", "--onnx"])
            .arg(onnx("ext_data_inline.onnx"))
            .arg("--lsgm")
            .arg(&model)
            .arg("--in")
            .arg(&frames)
            .args(["--ood", "gaussian", "--out"])
            .arg(&eval_out),
        1,
        &["fitted for another network"],
    );
}

#[test]
fn the_stored_preprocessing_is_shown_and_reapplied_by_features() {
    // BGR, per-channel mean/std, crop: fit once, then `features --lsgm`
    // must feed the network exactly what onnxruntime was fed for BGR
    // (`crop:28` of a 28×28 frame is torchvision's identity: Resize(28) and
    // CenterCrop(28) leave it as it is; `tests/resize.rs` checks other sizes).
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("f.npy");
    formula_frames(&frames, 220, 28, 28, 3);
    let model = dir.path().join("m.lsgm");
    let flags = [
        "--channel-order",
        "bgr",
        "--mean",
        "0.485,0.456,0.406",
        "--std",
        "0.229,0.224,0.225",
        "--resize",
        "crop:28",
    ];
    // A crop whose S is below the input's side: the numbers and the other
    // policies, no model written.
    let bad = dir.path().join("bad.lsgm");
    let a = fit(
        "rgb.onnx",
        &frames,
        &bad,
        &[&flags[..6], &["--resize", "crop:20"]].concat(),
    )
    .code(1);
    let err = stderr(&a);
    assert!(
        err.contains("--resize crop:20: S = 20 < the input's larger side 28")
            && err.contains("crop:28 or more")
            && err.contains("--resize letterbox"),
        "{err}"
    );
    assert!(!bad.exists());
    fit("rgb.onnx", &frames, &model, &flags).success();
    let summary = summary(&model);
    assert!(
        summary.contains("1×3×28×28 NCHW f32 bgr, range 0-1, mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225], resize crop:28"),
        "{summary}"
    );
    let feats = dir.path().join("feats");
    features("rgb.onnx", &model, &frames, &feats);
    rows_match(&feats.join("logits.npy"), &reference("rgb.json")["logits_if_bgr"]);
}

#[test]
fn uint8_and_dynamic_size_networks_extract_what_onnxruntime_computes() {
    let dir = tempfile::tempdir().unwrap();
    let grey = dir.path().join("g.npy");
    formula_frames(&grey, 4, 28, 28, 1);
    let feats = dir.path().join("u8");
    tool()
        .args(["features", "--onnx"])
        .arg(onnx("uint8_input.onnx"))
        .args(["--layers", "relu1,relu3", "--data"])
        .arg(&grey)
        .arg("--out")
        .arg(&feats)
        .assert()
        .success();
    rows_match(
        &feats.join("1.npy"),
        &reference("uint8_input.json")["taps"]["relu3"],
    );
    // A dynamic-size network at the size given, stored in the model.
    let rgb = dir.path().join("c.npy");
    formula_frames(&rgb, 220, 24, 32, 3);
    let model = dir.path().join("dyn.lsgm");
    let flags = [
        "--input-size",
        "24x32",
        "--channel-order",
        "rgb",
        "--mean",
        "0.485,0.456,0.406",
        "--std",
        "0.229,0.224,0.225",
    ];
    fit("dynamic_hw.onnx", &rgb, &model, &flags).success();
    assert!(summary(&model).contains("1×3×24×32"));
    let feats = dir.path().join("dyn");
    features("dynamic_hw.onnx", &model, &rgb, &feats);
    rows_match(&feats.join("logits.npy"), &reference("dynamic_hw.json")["logits"]);
}

#[test]
fn msp_and_energy_of_a_softmax_network_use_its_real_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("f.npy");
    formula_frames(&frames, 220, 28, 28, 1);
    let model = dir.path().join("m.lsgm");
    let a = fit(
        "softmax.onnx",
        &frames,
        &model,
        &["--mean", "0.5", "--std", "0.25"],
    )
    .success();
    let note = "note: \"probs\" is the Softmax of \"logits_raw\"";
    assert!(stderr(&a).contains(note), "{}", stderr(&a));
    let feats = dir.path().join("feats");
    features("softmax.onnx", &model, &frames, &feats);
    // logits.npy holds the pre-softmax logits, whose softmax is the network's output.
    let r = reference("softmax.json");
    let logits = read_f32(&feats.join("logits.npy"));
    for i in 0..4 {
        let row = &logits[i * 10..(i + 1) * 10];
        let m = row.iter().copied().fold(f32::MIN, f32::max) as f64;
        let z: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
        for (k, &v) in row.iter().enumerate() {
            let p = (v as f64 - m).exp() / z;
            assert!((p - r["probs"][i][k].as_f64().unwrap()).abs() < 1e-5);
        }
    }
}

/// `eval` of `model` on `net` with `frames` as in-distribution, against 20
/// Gaussian frames, with `methods`.
fn eval_net(net: &str, model: &Path, frames: &Path, out: &Path, methods: &str) -> assert_cmd::assert::Assert {
    tool()
        .args(["eval", "--onnx"])
        .arg(onnx(net))
        .arg("--lsgm")
        .arg(model)
        .arg("--in")
        .arg(frames)
        .args([
            "--ood",
            "gaussian",
            "--synthetic",
            "20",
            "--methods",
            methods,
            "--out",
        ])
        .arg(out)
        .assert()
}

#[test]
fn logit_detectors_say_which_logits_they_read_and_what_a_sigmoid_makes_of_them() {
    // The network's own top probability for a Sigmoid ending is σ(max z):
    // onnxruntime's output says so for the fixture frames.
    let r = reference("outputs/sigmoid.json");
    let rows = |v: &Value| -> Vec<Vec<f64>> { serde_json::from_value(v.clone()).unwrap() };
    let (logits, probs) = (rows(&r["logits"]), rows(&r["outputs"]["probs"]));
    let top =
        fit_and_export::eval::detectors::max_sigmoid(&nalgebra::DMatrix::from_fn(4, 10, |i, k| logits[i][k]));
    for (i, (p, row)) in top.iter().zip(&probs).enumerate() {
        let want = row.iter().copied().fold(f64::MIN, f64::max);
        assert!((p - want).abs() < 1e-6, "frame {i}: {p} vs {want}");
    }
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("f.npy");
    formula_frames(&frames, 220, 28, 28, 1);
    let model = dir.path().join("m.lsgm");
    let norm = ["--mean", "0.5", "--std", "0.25"];
    let a = fit("outputs/sigmoid.onnx", &frames, &model, &norm).success();
    assert!(
        stderr(&a).contains("note: \"probs\" is the Sigmoid of \"logits_raw\""),
        "{}",
        stderr(&a)
    );
    let out = dir.path().join("r");
    eval_net("outputs/sigmoid.onnx", &model, &frames, &out, "msp,energy,lsgm").success();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        (&report["logits"]["tensor"], &report["logits"]["probabilities"]),
        (&Value::from("logits_raw"), &Value::from("sigmoid"))
    );
    for row in report["results"].as_array().unwrap() {
        let from = if row["method"] == "lsgm" {
            Value::Null
        } else {
            Value::from("logits_raw")
        };
        assert_eq!(row["logits"], from, "{row}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("msp is max_k sigmoid(z_k)") && md.contains("`logits_raw`"),
        "{md}"
    );
    // Endings that cannot be read back to logits (a gate the network
    // computes; a Slice of the probabilities, which changes the class
    // count; a log-sigmoid exported as Neg → Softplus → Neg, with no
    // Sigmoid node): the logit detectors are skipped, saying why and naming
    // the node; LSGM is not concerned.
    for (net, output, says) in [
        (
            "gated",
            "scores",
            "its node \"gated\" (Mul by a computed tensor) after the Softmax node",
        ),
        (
            "softmax_slice",
            "sliced",
            "its node \"slice\" (Slice) after the Softmax node",
        ),
        (
            "log_sigmoid",
            "log_probs",
            "by its Neg node \"log_sigmoid\", which is not known to keep logits as logits",
        ),
    ] {
        let onnx = format!("outputs/{net}.onnx");
        let model = dir.path().join(format!("{net}.lsgm"));
        let a = fit(&onnx, &frames, &model, &norm).success();
        assert!(stderr(&a).contains(says), "{}", stderr(&a));
        let out = dir.path().join(net);
        let a = eval_net(&onnx, &model, &frames, &out, "msp,energy,lsgm").success();
        let skipped = format!("msp and energy need the classifier's logits (\"{output}\" is computed from");
        assert!(stderr(&a).contains(&skipped), "{}", stderr(&a));
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
        assert_eq!(report["logits"]["probabilities"], "unknown");
        let note = report["logits"]["note"].as_str().unwrap();
        assert!(note.contains(says), "{note}");
        let methods: Vec<&str> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["method"].as_str().unwrap())
            .collect();
        assert_eq!(methods, ["lsgm"], "{net}");
    }
}

#[test]
fn float16_networks_fit_and_extract_what_onnxruntime_computes() {
    // onnxconverter-common's keep_io_types conversion: float16 maps between
    // float32 input and output, tapped and pooled in float32; onnxruntime's
    // float16 arithmetic rounds differently from tract's (tests/networks.rs).
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("f.npy");
    formula_frames(&frames, 220, 28, 28, 1);
    let model = dir.path().join("m.lsgm");
    fit(
        "float16/small_cnn.onnx",
        &frames,
        &model,
        &["--mean", "0.5", "--std", "0.25"],
    )
    .success();
    assert!(summary(&model).contains("relu1"), "{}", summary(&model));
    let feats = dir.path().join("feats");
    features("float16/small_cnn.onnx", &model, &frames, &feats);
    let r = reference("float16/small_cnn.json");
    let taps = std::fs::read_to_string(feats.join("layers.txt")).unwrap();
    assert_eq!(taps, "relu1\nrelu2\nrelu3\n");
    for (i, tap) in ["relu1", "relu2", "relu3"].iter().enumerate() {
        rows_match_within(&feats.join(format!("{i}.npy")), &r["taps"][tap], 2e-2);
    }
    rows_match_within(&feats.join("logits.npy"), &r["logits"], 2e-2);
}

#[test]
fn overflowing_rows_are_scored_lowest_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train");
    common::write_dir(&train, &common::traces(400, &[4, 3], 26), &[4, 3]);
    let model = dir.path().join("m.lsgm");
    fit_features(&train, &model, &["--components", "3"])
        .assert()
        .success();
    let test = dir.path().join("test");
    let mut l0 = vec![0.5f32; 4 * 4];
    l0[8..12].fill(1e20); // row 2 explodes
    common::write_dir(&test, &[l0, vec![0.5f32; 4 * 3]], &[4, 3]);
    let scores = scores(&model, &test);
    assert_eq!(scores.len(), 4);
    assert_eq!(scores[2] as f32, f32::MIN);
    assert!(scores[3] > f32::MIN as f64);
    let a = tool()
        .arg("score")
        .arg(&model)
        .arg("--features")
        .arg(&test)
        .arg("--json")
        .assert()
        .success();
    let rows: Vec<Value> = stdout(&a)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[2]["ood"], true);
    assert!(rows[2]["reason"]
        .as_str()
        .unwrap()
        .contains("layer 0 (0) overflowed"));
    assert!(rows[1].get("reason").is_none());
}

#[test]
fn fits_say_what_did_not_converge_and_which_flag_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("f");
    common::write_dir(&features, &common::traces(250, &[4, 3], 20), &[4, 3]);
    let out = dir.path().join("m.lsgm");
    let fit = |extra: &[&str]| fit_features(&features, &out, extra).assert();
    let a = fit(&["--components", "8", "--max-iter", "2"]).success();
    let err = stderr(&a);
    assert_eq!(err.matches("without converging").count(), 2, "{err}");
    assert!(
        err.contains("warning: layer 0: EM stopped after --max-iter 2 iterations")
            && err.contains("raise --max-iter")
            && err.contains("or --covariance diag"),
        "{err}"
    );
    // A diagonal fit is not told to try the diagonal covariance it has.
    let a = fit(&["--components", "8", "--max-iter", "2", "--covariance", "diag"]).success();
    let err = stderr(&a);
    assert!(
        err.contains("without converging") && !err.contains("--covariance diag"),
        "{err}"
    );
    let a = fit(&["--max-iter", "3"]).success();
    assert!(
        stderr(&a).contains("the Dirichlet-process fit stopped"),
        "{}",
        stderr(&a)
    );
    // Too many components for the rows: the message names the flag in use.
    let small = dir.path().join("small");
    common::write_dir(&small, &common::traces(30, &[4, 3], 20), &[4, 3]);
    // The first error says how many rows these flags need: 20 held-out
    // rows at --holdout 0.1 (195 rows), 40 training rows at 0.5 (80).
    fails(
        &mut fit_features(&small, &out, &[]),
        1,
        &[
            "40 components need 40 training rows and calibrating the threshold needs 20 held-out rows \
             (--holdout 0.1), at least 195 rows in all; there are 30 (27 training, 3 held out)",
            "Give at least 195 frames",
            "--dp 40",
        ],
    );
    fails(
        &mut fit_features(&small, &out, &["--holdout", "0.5"]),
        1,
        &["at least 80 rows in all"],
    );
    fails(
        &mut fit_features(&small, &out, &["--components", "50"]),
        1,
        &["--components 50: give fewer"],
    );
}

#[test]
fn tap_names_map_to_feature_files_inside_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("f");
    let layers = common::traces(300, &[2, 3], 4);
    std::fs::create_dir_all(&features).unwrap();
    // Named files only (no 0.npy / 1.npy): an ONNX-style name must stay inside the folder.
    std::fs::write(features.join("layers.txt"), "/stage1/Relu\n/stage2/Relu\n").unwrap();
    for (name, (v, d)) in ["_stage1_Relu.npy", "_stage2_Relu.npy"]
        .iter()
        .zip(layers.iter().zip([2, 3]))
    {
        std::fs::write(
            features.join(name),
            fit_and_export::io::npy_bytes(v.len() / d, d, v).unwrap(),
        )
        .unwrap();
    }
    let out = dir.path().join("m.lsgm");
    fit_features(&features, &out, &["--components", "3"])
        .assert()
        .success();
    assert!(summary(&out).contains("/stage2/Relu"));
}

#[test]
fn outputs_are_checked_before_the_work_and_never_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("f");
    common::write_dir(&features, &common::traces(300, &[2, 3], 4), &[2, 3]);
    // `fails` checks that the target is left as it was, and that no
    // report is printed.
    let fit = |out: &Path, needle: &str| {
        fails(
            &mut fit_features(&features, out, &["--components", "3"]),
            1,
            &[needle],
        )
    };
    // An output folder that does not exist: said before fitting.
    fit(
        &dir.path().join("missing/m.lsgm"),
        "does not exist or is not writable",
    );
    // A symlink or a directory as the target is refused, and left alone.
    let target = dir.path().join("elsewhere.lsgm");
    std::fs::write(&target, b"keep me").unwrap();
    let link = dir.path().join("link.lsgm");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    fit(&link, "not a regular file");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    fit(dir.path(), "not a regular file");
    // The demo fit checks its output before loading anything.
    let err = fails(tool().args(["--out", "/nonexistent/dir/m.lsgm"]), 1, &[]);
    assert!(!err.contains("extracting"), "{err}");
}

#[test]
fn a_closed_stdout_ends_score_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("f");
    common::write_dir(&features, &common::traces(20_000, &[2, 3], 4), &[2, 3]);
    let model = dir.path().join("m.lsgm");
    fit_features(&features, &model, &["--components", "3"])
        .assert()
        .success();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("fit-and-export"))
        .arg("score")
        .arg(&model)
        .arg("--features")
        .arg(&features)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout); // like `| head -c 8`
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{:?}: {err}", o.status);
    assert!(!err.contains("panicked") && !err.contains("error"), "{err}");
}

/// `features` of the demo network on `data` into `out`, within two minutes
/// (a run that blocks on a pipe is killed and fails); returns stderr.
fn demo_features(data: &Path, out: &Path) -> String {
    let a = tool()
        .args(["features", "--onnx"])
        .arg(common::root("models/fmnist-resnet.onnx"))
        .arg("--lsgm")
        .arg(common::root("models/fmnist-resnet.lsgm"))
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success();
    stderr(&a)
}

#[test]
#[cfg_attr(not(unix), ignore = "named pipes are a Unix feature")]
fn frames_from_a_named_pipe_are_the_frames_of_the_file() {
    // `features --data <(cat t10k.gz)` said "not an IDX file (bad magic)":
    // the pipe was read once to recognise it, then opened again.
    let dir = tempfile::tempdir().unwrap();
    let file = common::root("models/samples/fmnist-test-500-images-idx3-ubyte.gz");
    let fifo = dir.path().join("frames.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer = {
        let (fifo, bytes) = (fifo.clone(), std::fs::read(&file).unwrap());
        std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
    };
    demo_features(&fifo, &dir.path().join("piped"));
    writer.join().unwrap();
    demo_features(&file, &dir.path().join("file"));
    for f in ["0.npy", "1.npy", "2.npy", "logits.npy"] {
        let (piped, whole) = (
            read_f32(&dir.path().join("piped").join(f)),
            read_f32(&dir.path().join("file").join(f)),
        );
        assert_eq!(piped.len(), whole.len(), "{f}");
        assert!(piped == whole, "{f}: features of the piped frames differ");
    }
}

#[test]
fn class_folders_are_read_whole_in_path_order() {
    // torchvision's ImageFolder layout with a stray image: every image is
    // read (the strays alone were fitted before, with no note), in path
    // order: the rows of a flat folder of the same images in that order.
    let dir = tempfile::tempdir().unwrap();
    let frames = lsgm::frames::read_idx_images(&common::root(
        "models/samples/fmnist-test-500-images-idx3-ubyte.gz",
    ))
    .unwrap();
    let (tree, flat) = (dir.path().join("tree"), dir.path().join("flat"));
    let places = [
        "coat/00.png",
        "coat/01.png",
        "coat/02.png",
        "shirt/03.png",
        "shirt/04.png",
        "stray.png",
    ];
    for (i, place) in places.iter().enumerate() {
        let img = image::GrayImage::from_raw(28, 28, frames[i].pixels.as_u8().unwrap().to_vec()).unwrap();
        for p in [tree.join(place), flat.join(format!("{i}.png"))] {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            img.save(&p).unwrap();
        }
    }
    let said = demo_features(&tree, &dir.path().join("tree-features"));
    assert!(
        said.contains(&format!(
            "{}: 5 images from 2 subfolders (+1 at the top level)",
            tree.display()
        )),
        "{said}"
    );
    demo_features(&flat, &dir.path().join("flat-features"));
    let rows = |d: &str| read_f32(&dir.path().join(d).join("logits.npy"));
    assert_eq!(rows("tree-features").len(), 6 * 10);
    assert!(rows("tree-features") == rows("flat-features"));
}

#[test]
fn a_multi_member_gzip_gives_the_features_of_its_one_member_twin() {
    // `gzip -c a > f.gz; gzip -c b >> f.gz` is a valid gzip (gzip -t,
    // Python's gzip); its second member was refused as the file ending
    // early.
    use std::io::Write;
    let gz = |bytes: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    };
    let frames = lsgm::frames::read_idx_images(&common::root(
        "models/samples/fmnist-test-500-images-idx3-ubyte.gz",
    ))
    .unwrap();
    let mut idx = vec![0, 0, 8, 3, 0, 0, 0, 40, 0, 0, 0, 28, 0, 0, 0, 28];
    for f in &frames[..40] {
        idx.extend_from_slice(f.pixels.as_u8().unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one.idx.gz"), dir.path().join("two.idx.gz"));
    std::fs::write(&one, gz(&idx)).unwrap();
    // Split inside frame 20.
    let at = 16 + 784 * 20 + 300;
    std::fs::write(&two, [gz(&idx[..at]), gz(&idx[at..])].concat()).unwrap();
    demo_features(&one, &dir.path().join("one"));
    demo_features(&two, &dir.path().join("two"));
    for f in ["0.npy", "1.npy", "2.npy", "logits.npy"] {
        let (a, b) = (
            read_f32(&dir.path().join("one").join(f)),
            read_f32(&dir.path().join("two").join(f)),
        );
        assert!(a == b, "{f}: the two-member file's features differ");
    }
    assert_eq!(read_f32(&dir.path().join("two/logits.npy")).len(), 40 * 10);
}

#[test]
#[cfg_attr(not(unix), ignore = "symbolic links are made with std::os::unix")]
fn a_tree_that_cannot_be_read_whole_stops_the_fit_naming_what() {
    // The monitor writes an error line for a loop or an empty image in a
    // folder and judges the rest; a fit needs every frame: the first such
    // entry is the error, and nothing is written.
    let frames = lsgm::frames::read_idx_images(&common::root(
        "models/samples/fmnist-test-500-images-idx3-ubyte.gz",
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for (i, place) in ["a/0.png", "c/1.png"].iter().enumerate() {
        let p = tree.join(place);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        image::GrayImage::from_raw(28, 28, frames[i].pixels.as_u8().unwrap().to_vec())
            .unwrap()
            .save(&p)
            .unwrap();
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(&tree, tree.join("b")).unwrap();
    let mut cmd = tool();
    cmd.arg("--onnx")
        .arg(common::root("models/fmnist-resnet.onnx"))
        .args(["--mean", "0.2860", "--std", "0.3530", "--train"])
        .arg(&tree)
        .arg("--out")
        .arg(dir.path().join("tree.lsgm"));
    let link = tree.join("b").display().to_string();
    let err = fails(&mut cmd, 1, &[&format!("{link}: a symbolic link to"), "(a loop)"]);
    // Its note says what the fit does, not the monitor's error lines.
    assert!(
        err.contains("1 folder or link could not be read (b): reading stops at the first in path order")
            && !err.contains("an error line each"),
        "{err}"
    );
    std::fs::remove_file(tree.join("b")).unwrap();
    std::fs::write(tree.join("c/2.png"), b"").unwrap();
    let empty = tree.join("c/2.png").display().to_string();
    fails(&mut cmd, 1, &[&format!("{empty}: empty file (0 bytes)")]);
}
