//! ONNX taps and fitting from images, on the shipped demo model and a
//! differently built plain CNN (tests/fixtures/plain-cnn.onnx).

mod common;

use common::{fails, root, stderr, stdout, tool};
use lsgm::frames::read_idx_images;
use lsgm::model::preprocess::{Colour, PixelRange, Resize};
use lsgm::onnx::{Engine, Graph, LoadOptions, Network, Output};
use lsgm::Preprocess;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

#[test]
fn auto_taps_pick_the_last_layer_of_each_stage_on_both_architectures() {
    let demo = Graph::load(&root("models/fmnist-resnet.onnx"), &LoadOptions::default()).unwrap();
    assert_eq!(
        demo.auto_taps(),
        [
            "/stage1/stage1.1/Relu_1",
            "/stage2/stage2.1/Relu_1",
            "/stage3/stage3.1/Relu_1"
        ]
    );
    let plain = Graph::load(&fixture("plain-cnn.onnx"), &LoadOptions::default()).unwrap();
    assert_eq!(
        plain.auto_taps(),
        [
            "/features/features.3/Relu",
            "/features/features.6/Relu",
            "/features/features.9/Relu"
        ]
    );
    let err = plain.find("/features/features.6/Rel").unwrap_err().to_string();
    assert!(err.contains("closest: /features/features.6/Relu"), "{err}");
}

#[test]
fn tapped_features_equal_an_independent_onnxruntime_extraction() {
    let images = read_idx_images(&root("models/samples/fmnist-test-500-images-idx3-ubyte.gz")).unwrap();
    for (model, fixture_file) in [
        (root("models/fmnist-resnet.onnx"), "fmnist-resnet-features.json"),
        (fixture("plain-cnn.onnx"), "plain-cnn-features.json"),
    ] {
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture(fixture_file)).unwrap()).unwrap();
        let taps: Vec<String> = serde_json::from_value(want["taps"].clone()).unwrap();
        let graph = Graph::load(&model, &LoadOptions::default()).unwrap();
        let spec = grey_28(&graph, &want);
        let net = Network::new(graph, &taps, &Engine::default()).unwrap();
        let mut input = spec.buffer();
        let mut out = Output::default();
        let n = want["images"].as_u64().unwrap() as usize;
        let mut worst = 0.0f64;
        for (i, frame) in images.iter().take(n).enumerate() {
            lsgm::frames::to_input(frame, &spec, &mut input).unwrap();
            net.run(&input, &mut out).unwrap();
            for (l, feats) in out.features.iter().enumerate() {
                for (j, &v) in feats.iter().enumerate() {
                    let w = want["features"][l][i][j].as_f64().unwrap();
                    worst = worst.max((v as f64 - w).abs() / (1.0 + w.abs()));
                }
            }
            for (j, &v) in out.logits.iter().enumerate() {
                let w = want["logits"][i][j].as_f64().unwrap();
                worst = worst.max((v as f64 - w).abs() / (1.0 + w.abs()));
            }
        }
        assert!(worst < 1e-4, "{fixture_file}: worst relative difference {worst}");
    }
}

#[test]
fn grid_features_equal_an_independent_onnxruntime_extraction() {
    let images = read_idx_images(&root("models/samples/fmnist-test-500-images-idx3-ubyte.gz")).unwrap();
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("fmnist-resnet-grid-features.json")).unwrap())
            .unwrap();
    let taps: Vec<String> = serde_json::from_value(want["taps"].clone()).unwrap();
    let n = want["images"].as_u64().unwrap() as usize;
    for side in [2u8, 3] {
        let graph = Graph::load(&root("models/fmnist-resnet.onnx"), &LoadOptions::default()).unwrap();
        let spec = grey_28(&graph, &want);
        let net = Network::with_grids(graph, &taps, &vec![side; taps.len()], &Engine::default()).unwrap();
        let want = &want["grids"][side.to_string()];
        let (mut input, mut out, mut worst) = (spec.buffer(), Output::default(), 0.0f64);
        for (i, frame) in images.iter().take(n).enumerate() {
            lsgm::frames::to_input(frame, &spec, &mut input).unwrap();
            net.run(&input, &mut out).unwrap();
            for (l, feats) in out.features.iter().enumerate() {
                assert_eq!(
                    feats.len(),
                    want[l][i].as_array().unwrap().len(),
                    "side {side} tap {l}"
                );
                for (j, &v) in feats.iter().enumerate() {
                    let w = want[l][i][j].as_f64().unwrap();
                    worst = worst.max((v as f64 - w).abs() / (1.0 + w.abs()));
                }
            }
        }
        assert!(worst < 1e-4, "side {side}: worst relative difference {worst}");
    }
}

/// A grey 28×28 network's preprocessing with the fixture's mean and std.
fn grey_28(graph: &Graph, want: &Value) -> Preprocess {
    Preprocess {
        input: graph.input.name.clone(),
        logits: graph.logits.tensor.clone(),
        layout: graph.input.layout,
        colour: Colour::Grey,
        height: 28,
        width: 28,
        resize: Resize::Exact,
        datum: graph.input.datum,
        range: PixelRange::Unit,
        mean: vec![want["mean"].as_f64().unwrap() as f32],
        std: vec![want["std"].as_f64().unwrap() as f32],
    }
}

#[test]
fn a_grid_model_is_fitted_stored_bound_and_refused_where_it_cannot_be() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.lsgm");
    let fast = ["--components", "3", "--max-iter", "20", "--max-dim", "8"];
    tool()
        .current_dir(dir.path())
        .args(["--grid", "2,2,1", "--out"])
        .arg(&out)
        .args(fast)
        .assert()
        .success();
    let a = tool().args(["inspect", "--json"]).arg(&out).assert().success();
    let j: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(j["format_version"], 5);
    let layers: Vec<(String, u64, u64)> = j["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["pooling"].as_str().unwrap().to_string(),
                l["grid"].as_u64().unwrap(),
                l["dim_in"].as_u64().unwrap(),
            )
        })
        .collect();
    // stage1.1: 16 channels, stage2.1: 32, stage3.1: 64 (global mean).
    assert_eq!(
        layers,
        [
            ("GridAverageNchw".to_string(), 2, 64),
            ("GridAverageNchw".to_string(), 2, 128),
            ("GlobalAverageNchw".to_string(), 1, 64)
        ]
    );
    let text = stdout(&tool().arg("inspect").arg(&out).assert().success());
    assert!(text.contains("means over a 2×2 grid of NCHW"), "{text}");
    // `features --lsgm` pools as the model says, so its features score.
    let feats = mnist_features(&out, dir.path());
    assert_eq!(common::scores(&out, &feats).len(), 100);

    let fail = |args: &[&str], code: i32, needle: &str| {
        fails(
            tool()
                .current_dir(dir.path())
                .args(args)
                .arg("--out")
                .arg(dir.path().join("no.lsgm"))
                .args(fast),
            code,
            &[needle],
        );
    };
    fail(&["--grid", "2,2"], 1, "--grid gives 2 sides for 3 taps");
    // `features` that fails leaves no --out folder behind.
    let f = dir.path().join("no-features");
    fails(
        tool()
            .args(["features", "--onnx"])
            .arg(root("models/fmnist-resnet.onnx"))
            .args(["--grid", "9", "--mean", "0.286", "--std", "0.353", "--data"])
            .arg(root("models/samples/mnist-100-images-idx3-ubyte.gz"))
            .arg("--out")
            .arg(&f),
        1,
        &["too small for a 9×9 grid"],
    );
    assert!(!f.exists());
    fail(
        &["--grid", "9"],
        1,
        "too small for a 9×9 grid of cells: give a --grid of at most 7",
    );
    fail(&["--grid", "17"], 2, "expected a grid side in 1..=16");
    fail(
        &["--grid", "2", "--layers", "/stage3/stage3.1/Relu_1,/Flatten"],
        1,
        "not a feature map",
    );
    assert!(!dir.path().join("no.lsgm").exists());
}

#[test]
fn fit_from_images_then_extract_features_and_score_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.lsgm");
    let a = tool()
        .current_dir(dir.path())
        .arg("--out")
        .arg(&out)
        .args(["--components", "4", "--max-iter", "30"])
        .assert()
        .success();
    let report: Value = serde_json::from_slice(a.get_output().stdout.trim_ascii()).unwrap();
    assert!(report["seconds"]["extract"].as_f64().unwrap() > 0.0);
    assert_eq!(report["layers"].as_array().unwrap().len(), 3);
    assert_eq!(report["rows"], serde_json::json!([2700, 300]));
    let a = tool().args(["inspect", "--json"]).arg(&out).assert().success();
    let j: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(j["preprocess"]["channels"], 1);
    // No grid: written as version 4, which readers before version 5 read.
    assert_eq!(j["format_version"], 4);
    assert!((j["preprocess"]["mean"][0].as_f64().unwrap() - 0.286).abs() < 1e-6);
    assert!(j["source"]
        .as_str()
        .unwrap()
        .starts_with("fmnist-resnet.onnx bytes:"));

    // Extract with the model file's taps and preprocessing, then score.
    let feats = mnist_features(&out, dir.path());
    let layers = std::fs::read_to_string(feats.join("layers.txt")).unwrap();
    assert_eq!(layers.lines().count(), 3);
    assert!(feats.join("logits.npy").exists());
    let scores = common::scores(&out, &feats);
    let threshold = j["threshold"].as_f64().unwrap();
    let flagged = scores.iter().filter(|&&s| s < threshold).count();
    assert!(flagged >= 90, "MNIST digits flagged: {flagged}/100");
}

/// `features --lsgm MODEL` of the 100 shipped MNIST digits into `dir/feats`.
fn mnist_features(model: &Path, dir: &Path) -> PathBuf {
    let feats = dir.join("feats");
    tool()
        .args(["features", "--onnx"])
        .arg(root("models/fmnist-resnet.onnx"))
        .arg("--lsgm")
        .arg(model)
        .arg("--data")
        .arg(root("models/samples/mnist-100-images-idx3-ubyte.gz"))
        .arg("--out")
        .arg(&feats)
        .assert()
        .success();
    feats
}

#[test]
fn bad_onnx_and_image_inputs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.lsgm");
    let fail = |args: &[&str], needle: &str| {
        fails(
            tool().current_dir(dir.path()).args(args).arg("--out").arg(&out),
            1,
            &[needle],
        );
    };
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not onnx").unwrap();
    fail(&["--onnx", junk.to_str().unwrap()], "not an ONNX model");
    fail(&["--onnx", "/nonexistent.onnx"], "cannot read ONNX model");
    let plain = fixture("plain-cnn.onnx");
    fail(
        &["--onnx", plain.to_str().unwrap()],
        "give the normalisation it was trained with as --mean and --std",
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fail(
        &["--train", empty.to_str().unwrap()],
        "no images in this directory",
    );
    let corrupt = dir.path().join("corrupt-idx3-ubyte");
    std::fs::write(
        &corrupt,
        [0u8, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3],
    )
    .unwrap();
    fail(&["--train", corrupt.to_str().unwrap()], "ends early");
    let images = root("models/samples/fmnist-test-500-images-idx3-ubyte.gz");
    let labels = root("models/samples/fmnist-train-3000-labels-idx1-ubyte.gz");
    fail(
        &[
            "--train",
            images.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--classes",
            "0,1",
        ],
        "has 3000 labels but",
    );
    fail(
        &["--train", images.to_str().unwrap(), "--classes", "0,1"],
        "--classes needs --labels",
    );
    fail(
        &["--layers", "/stage2/stage2.1/Relu_2"],
        "closest: /stage2/stage2.1/Relu_1",
    );
    // The chain runs from each tap to the next deeper one: a list out of
    // network order is refused, not fitted as a scrambled chain.
    fail(
        &["--layers", "/stage2/stage2.1/Relu_1,/stage1/stage1.1/Relu_1"],
        "\"/stage1/stage1.1/Relu_1\" comes before \"/stage2/stage2.1/Relu_1\" in the network",
    );
}

#[test]
fn frames_of_another_size_are_refused_or_resized_by_the_stated_policy_and_said_once() {
    // 8 grey 40×40 PNGs: the network takes 28×28.
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    for i in 0..30u8 {
        let img = image::GrayImage::from_fn(40, 40, |x, y| {
            image::Luma([((x * 5 + y * 3) as u8).wrapping_add(i * 7)])
        });
        img.save(imgs.join(format!("{i:02}.png"))).unwrap();
    }
    let out = dir.path().join("m.lsgm");
    let fit = |extra: &[&str]| {
        let mut cmd = tool();
        cmd.arg("--train")
            .arg(&imgs)
            .arg("--out")
            .arg(&out)
            .args([
                "--components",
                "2",
                "--holdout",
                "0",
                "--max-iter",
                "5",
                "--reg-covar",
                "1e-3",
            ])
            .args(extra);
        cmd
    };
    // No policy given: refused, naming the flag, and no file written.
    fails(&mut fit(&[]), 1, &["40×40", "--resize"]);
    let a = fit(&["--resize", "stretch"]).assert().success();
    let err = stderr(&a);
    let note = "note: frames of 40×40 (W×H) are stretched to the network's 28×28 (stretch, bilinear)";
    assert_eq!(err.matches(note).count(), 1, "{err}");
    let summary = stdout(&tool().arg("inspect").arg(&out).assert().success());
    assert!(summary.contains("resize stretch"), "{summary}");
}
