//! `fit-and-export eval` end to end on the shipped samples.

mod common;

use assert_cmd::Command;
use common::{fails, root};
use serde_json::Value;
use std::path::Path;

fn eval_cmd(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("fit-and-export").unwrap();
    cmd.arg("eval")
        .arg("--onnx")
        .arg(root("models/fmnist-resnet.onnx"))
        .arg("--lsgm")
        .arg(root("models/fmnist-resnet.lsgm"))
        .arg("--in")
        .arg(root("models/samples/fmnist-test-500-images-idx3-ubyte.gz"))
        .arg("--out")
        .arg(out)
        .args(extra);
    cmd
}

fn eval(out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    eval_cmd(out, extra).assert()
}

#[test]
fn report_plots_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let mnist = format!(
        "mnist={}",
        root("models/samples/mnist-100-images-idx3-ubyte.gz").display()
    );
    eval(
        &out,
        &[
            "--in-labels",
            root("models/samples/fmnist-test-500-labels-idx1-ubyte.gz")
                .to_str()
                .unwrap(),
            "--ood",
            &mnist,
            "--ood",
            "gaussian",
            "--ood",
            "blobs",
            "--synthetic",
            "100",
            "--train",
            root("models/samples/fmnist-train-3000-images-idx3-ubyte.gz")
                .to_str()
                .unwrap(),
            "--train-labels",
            root("models/samples/fmnist-train-3000-labels-idx1-ubyte.gz")
                .to_str()
                .unwrap(),
        ],
    )
    .success();
    let r: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["in"]["n"], 500);
    assert!(r["in"]["accuracy"].as_f64().unwrap() > 0.9);
    let rows = r["results"].as_array().unwrap();
    // 3 OOD sets × every detector of the table (per-tap ones once per tap).
    let detectors: usize = fit_and_export::eval::detectors::REGISTRY
        .iter()
        .map(|e| if e.per_tap { 3 } else { 1 })
        .sum();
    assert!(detectors >= 14, "{detectors}");
    assert_eq!(rows.len(), 3 * detectors);
    for row in rows {
        for k in [
            "auroc",
            "tnr_at_95tpr",
            "fpr_at_95tpr",
            "aupr_in",
            "aupr_out",
            "detection_accuracy",
        ] {
            let v = row[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{row}");
        }
        assert!(row["ood"].is_string() && row["method"].is_string() && row["n"].is_u64());
    }
    let lsgm_mnist = rows
        .iter()
        .find(|x| x["ood"] == "mnist" && x["method"] == "lsgm")
        .unwrap();
    assert!(lsgm_mnist["auroc"].as_f64().unwrap() > 0.95, "{lsgm_mnist}");
    for f in [
        "report.md",
        "roc-mnist.png",
        "roc-gaussian.png",
        "roc-blobs.png",
        "histogram-lsgm.png",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("in-distribution is the positive class"));
}

#[test]
fn missing_training_data_skips_those_baselines_and_bad_sets_fail() {
    let dir = tempfile::tempdir().unwrap();
    let a = eval(
        &dir.path().join("r"),
        &["--ood", "rademacher", "--synthetic", "50"],
    )
    .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(err.contains("need --train; skipping"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // A failed run leaves no report and no folder it created.
    fails(
        &mut eval_cmd(
            &dir.path().join("r2"),
            &["--ood", &format!("x={}", empty.display())],
        ),
        1,
        &["no images in this directory"],
    );
    fails(
        &mut eval_cmd(
            &dir.path().join("r3"),
            &["--ood", "gaussian", "--methods", "lsgm,nope"],
        ),
        2,
        &["unknown method \"nope\""],
    );
    fails(
        &mut eval_cmd(&dir.path().join("r4"), &["--ood", "pink-noise"]),
        1,
        &["expected NAME=PATH"],
    );
}

#[test]
fn an_unknown_method_is_a_usage_error_listing_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    // `gmm-layer-00` and `gmm-layer-+1` once reported tap 0's and tap 1's
    // numbers under those names; `all,nope` silently dropped `nope`.
    for methods in [
        "nope",
        "lsgm,nope",
        "all,nope",
        "gmm-layer-00",
        "gmm-layer-+1",
        "gmm-layer",
        "LSGM",
    ] {
        let unknown = methods.rsplit(',').next().unwrap();
        let err = fails(
            &mut eval_cmd(
                &dir.path().join("r"),
                &["--ood", "gaussian", "--methods", methods],
            ),
            2,
            &[&format!("unknown method {unknown:?}")],
        );
        for known in [
            "all",
            "lsgm",
            "msp",
            "energy",
            "mahalanobis-multi",
            "knn",
            "gmm-layer-I",
        ] {
            assert!(err.contains(known), "{methods}: {known} not listed in {err}");
        }
    }
    // A tap the model does not have (3 taps): an error naming the ones it has.
    fails(
        &mut eval_cmd(
            &dir.path().join("r"),
            &["--ood", "gaussian", "--methods", "gmm-layer-3"],
        ),
        1,
        &["gmm-layer-3", "gmm-layer-0 to gmm-layer-2"],
    );
}

#[test]
fn chosen_methods_are_reported_once_in_the_order_given() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    eval(
        &out,
        &[
            "--ood",
            "gaussian",
            "--synthetic",
            "20",
            "--methods",
            "gmm-layer-1,msp,gmm-layer-1",
        ],
    )
    .success();
    let r: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let methods: Vec<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["gmm-layer-1", "msp"]);
}

/// `features` of the demo network (with the demo model's preprocessing) on
/// `data`, then `score --json`: the core's verdict for every frame, as
/// lsgm-monitor gives it at the model's threshold.
fn verdicts(data: &Path, dir: &Path) -> Vec<bool> {
    Command::cargo_bin("fit-and-export")
        .unwrap()
        .args(["features", "--onnx"])
        .arg(root("models/fmnist-resnet.onnx"))
        .arg("--lsgm")
        .arg(root("models/fmnist-resnet.lsgm"))
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(dir)
        .assert()
        .success();
    let a = Command::cargo_bin("fit-and-export")
        .unwrap()
        .arg("score")
        .arg(root("models/fmnist-resnet.lsgm"))
        .arg("--features")
        .arg(dir)
        .arg("--json")
        .assert()
        .success();
    String::from_utf8_lossy(&a.get_output().stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["ood"]
                .as_bool()
                .unwrap()
        })
        .collect()
}

#[test]
fn the_operating_point_at_the_stored_threshold_is_the_monitors_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let (fmnist, mnist) = (
        root("models/samples/fmnist-test-500-images-idx3-ubyte.gz"),
        root("models/samples/mnist-100-images-idx3-ubyte.gz"),
    );
    eval(
        &out,
        &[
            "--ood",
            &format!("mnist={}", mnist.display()),
            "--methods",
            "lsgm,msp,gmm-layer-2",
        ],
    )
    .success();
    let r: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    // The threshold used is the model's, as inspect reads it.
    let a = Command::cargo_bin("fit-and-export")
        .unwrap()
        .args(["inspect", "--json"])
        .arg(root("models/fmnist-resnet.lsgm"))
        .assert()
        .success();
    let model: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    let threshold = model["threshold"].as_f64().unwrap();
    assert_eq!(r["stored_threshold"]["value"].as_f64().unwrap(), threshold);
    assert_eq!(r["stored_threshold"]["method"], "lsgm");

    // Independently: the share of each set the core's verdicts call OOD.
    let share = |v: &[bool]| v.iter().filter(|&&o| o).count() as f64 / v.len() as f64;
    let (in_ood, mnist_ood) = (
        verdicts(&fmnist, &dir.path().join("fmnist")),
        verdicts(&mnist, &dir.path().join("mnist")),
    );
    assert_eq!((in_ood.len(), mnist_ood.len()), (500, 100));
    assert_eq!(
        r["stored_threshold"]["in_flagged"].as_f64().unwrap(),
        share(&in_ood)
    );
    let rows = r["results"].as_array().unwrap();
    let lsgm = rows.iter().find(|x| x["method"] == "lsgm").unwrap();
    let f = &lsgm["flagged_at_threshold"];
    assert_eq!(f["threshold"].as_f64().unwrap(), threshold);
    assert_eq!(f["in"].as_f64().unwrap(), share(&in_ood), "{f}");
    assert_eq!(f["ood"].as_f64().unwrap(), share(&mnist_ood), "{f}");
    // A share that is neither 0 nor 1 checks the count, not just its ends.
    assert!(share(&in_ood) > 0.0 && share(&in_ood) < 0.2, "{}", share(&in_ood));
    // Methods without a stored threshold: null, as the report says.
    for m in ["msp", "gmm-layer-2"] {
        let row = rows.iter().find(|x| x["method"] == m).unwrap();
        assert!(row["flagged_at_threshold"].is_null(), "{row}");
    }
    assert!(r["stored_threshold"]["meaning"]
        .as_str()
        .unwrap()
        .contains("null for every other method"));
    // report.md: the paragraph and the column.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let n_in = in_ood.iter().filter(|&&o| o).count();
    assert!(
        md.contains(&format!(
            "It flags {:.2} % of the in-distribution test frames ({n_in} of 500)",
            100.0 * share(&in_ood)
        )),
        "{md}"
    );
    assert!(md.contains("| caught at stored threshold |"), "{md}");
    assert!(
        md.contains(&format!("| {:.4} |", share(&mnist_ood))) && md.contains("| — |"),
        "{md}"
    );
}
