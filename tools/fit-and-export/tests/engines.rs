//! `fit-and-export --engine onnxruntime`: features and fits from the
//! onnxruntime engine against tract's. These need onnxruntime's library
//! (`ORT_DYLIB_PATH`), so `cargo test` lists them as ignored; CI sets it and
//! runs them with `-- --ignored`, where a missing library fails them.

mod common;

use common::{read_f32, stderr, tool};
use std::path::{Path, PathBuf};

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

/// The library the tests use; a missing one fails the test, never skips it.
fn library() -> String {
    let path = std::env::var("ORT_DYLIB_PATH").unwrap_or_default();
    assert!(
        Path::new(&path).is_file(),
        "ORT_DYLIB_PATH={path:?} names no file: point it at onnxruntime's library"
    );
    path
}

/// `a` equals `b` to `tol` relative (absolute near zero), element by element.
fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + x.abs()),
            "{what}[{k}]: tract {x}, onnxruntime {y}"
        );
    }
}

#[test]
#[ignore = "needs onnxruntime's library in ORT_DYLIB_PATH (pip install onnxruntime); CI runs it"]
fn features_are_the_same_on_both_engines() {
    let lib = library();
    let dir = tempfile::tempdir().unwrap();
    for (engine, out) in [("tract", "t"), ("onnxruntime", "o")] {
        let a = tool()
            .args(["features", "--onnx"])
            .arg(root("models/fmnist-resnet.onnx"))
            .arg("--lsgm")
            .arg(root("models/fmnist-resnet.lsgm"))
            .arg("--data")
            .arg(root("models/samples/fmnist-train-3000-images-idx3-ubyte.gz"))
            .arg("--out")
            .arg(dir.path().join(out))
            .args(["--engine", engine, "--threads", "2"])
            .env("ORT_DYLIB_PATH", &lib)
            .assert();
        assert!(a.get_output().status.success(), "{engine}: {}", stderr(&a));
    }
    for f in ["0.npy", "1.npy", "2.npy", "logits.npy"] {
        let (t, o) = (
            read_f32(&dir.path().join("t").join(f)),
            read_f32(&dir.path().join("o").join(f)),
        );
        assert_eq!(t.len() % 3000, 0, "{f}: 3,000 rows");
        close(&t, &o, 1e-4, f);
    }
}

#[test]
#[ignore = "needs onnxruntime's library in ORT_DYLIB_PATH (pip install onnxruntime); CI runs it"]
fn a_fit_on_onnxruntime_records_the_same_network_and_a_close_threshold() {
    let lib = library();
    let dir = tempfile::tempdir().unwrap();
    let mut fitted = Vec::new();
    for engine in ["tract", "onnxruntime"] {
        let model = dir.path().join(format!("{engine}.lsgm"));
        let a = tool()
            .args(["--engine", engine, "--components", "4", "--seed", "0", "--out"])
            .arg(&model)
            .env("ORT_DYLIB_PATH", &lib)
            .assert();
        assert!(a.get_output().status.success(), "{engine}: {}", stderr(&a));
        let report = tool().arg("inspect").arg(&model).arg("--json").assert().success();
        fitted.push(serde_json::from_slice::<serde_json::Value>(&report.get_output().stdout).unwrap());
    }
    let (t, o) = (&fitted[0], &fitted[1]);
    for k in ["source", "preprocess", "chain", "calibration_tpr"] {
        assert_eq!(t[k], o[k], "{k}");
    }
    let names = |j: &serde_json::Value| -> Vec<serde_json::Value> {
        j["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].clone())
            .collect()
    };
    assert_eq!(names(t), names(o));
    let (a, b) = (t["threshold"].as_f64().unwrap(), o["threshold"].as_f64().unwrap());
    assert!(
        (a - b).abs() <= 0.01 * a.abs(),
        "thresholds {a} (tract) and {b} (onnxruntime)"
    );
    // The onnxruntime fit runs on tract: bound to the network and run.
    let a = tool()
        .args(["features", "--onnx"])
        .arg(root("models/fmnist-resnet.onnx"))
        .arg("--lsgm")
        .arg(dir.path().join("onnxruntime.lsgm"))
        .arg("--data")
        .arg(root("models/samples/frames"))
        .arg("--out")
        .arg(dir.path().join("f"))
        .args(["--engine", "tract"])
        .assert();
    assert!(a.get_output().status.success(), "{}", stderr(&a));
}

#[test]
fn engine_flags_that_do_not_go_together_are_usage_errors() {
    for args in [
        ["--ep", "tensorrt"],
        ["--onnxruntime-lib", "/x/libonnxruntime.so.1.32.0"],
    ] {
        let a = tool().args(args).assert();
        assert_eq!(a.get_output().status.code(), Some(2), "{args:?}: {}", stderr(&a));
    }
}
