//! From an ONNX classifier and images to per-layer features: tap selection,
//! preprocessing, parallel extraction with the runtime crate's `Network`.

use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lsgm::frames::{self, Frame, InputSpec};
use lsgm::model::wire::Layout;
use lsgm::onnx::{Graph, Network};
use lsgm::PreprocessSpec;
use nalgebra::DMatrix;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Normalisation the demo models were trained with (Fashion-MNIST).
pub const DEMO_MEAN: f32 = 0.2860;
/// See [`DEMO_MEAN`].
pub const DEMO_STD: f32 = 0.3530;

pub use lsgm::frames::shipped;

/// The demo ONNX model.
pub fn demo_onnx() -> PathBuf {
    shipped("models/fmnist-resnet.onnx")
}

/// Parses `--mean`/`--std`: one value for every channel or one per channel.
pub fn channel_list(s: &str, channels: usize, what: &str) -> Result<Vec<f32>> {
    let v: Vec<f32> = s
        .split(',')
        .map(|x| x.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{what}: expected comma-separated numbers, got {s:?}"))?;
    match v.len() {
        1 => Ok(vec![v[0]; channels]),
        n if n == channels => Ok(v),
        n => bail!("{what}: {n} values for a {channels}-channel input; give 1 or {channels}"),
    }
}

/// The tap names: `auto`, or a comma list checked against the graph.
pub fn select_taps(graph: &Graph, layers: &str) -> Result<Vec<String>> {
    let taps = if layers == "auto" {
        graph.auto_taps()
    } else {
        layers
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    ensure!(
        !taps.is_empty(),
        "no layers to tap: the automatic rule found no 4-D feature maps; name them with --layers a,b,c \
         (see `fit-and-export layers --onnx …`)"
    );
    for t in &taps {
        graph.find(t)?;
    }
    Ok(taps)
}

/// The preprocessing stored in the model file.
pub fn preprocess_spec(graph: &Graph, spec: &InputSpec) -> PreprocessSpec {
    PreprocessSpec {
        input: graph.input_name.clone(),
        logits: graph.logits_name.clone(),
        layout: spec.layout,
        channels: spec.channels as u32,
        height: spec.height as u32,
        width: spec.width as u32,
        scale: spec.scale,
        mean: spec.mean.clone(),
        std: spec.std.clone(),
    }
}

/// The input spec for a graph and `--mean/--std`.
pub fn input_spec(graph: &Graph, mean: &[f32], std: &[f32]) -> Result<InputSpec> {
    let (c, h, w) = graph.input_chw;
    ensure!(std.iter().all(|s| *s > 0.0), "--std values must be positive");
    Ok(InputSpec {
        layout: graph.layout,
        channels: c,
        height: h,
        width: w,
        scale: 1.0 / 255.0,
        mean: mean.to_vec(),
        std: std.to_vec(),
    })
}

/// Loads every frame of `path` (IDX, `.npy`, image or directory of images),
/// optionally keeping only rows whose label is in `classes`.
pub fn load_frames(path: &Path, labels: Option<&Path>, classes: Option<&[u8]>) -> Result<Vec<Frame>> {
    let inputs = frames::expand_inputs(&[path.to_path_buf()])?;
    let mut all = Vec::new();
    for (source, f) in frames::FrameSource::new(inputs, None)? {
        all.push(f.with_context(|| source)?);
    }
    ensure!(!all.is_empty(), "{}: no frames", path.display());
    if let Some(lp) = labels {
        let labels = frames::read_idx_labels(lp)?;
        ensure!(
            labels.len() == all.len(),
            "{} has {} labels but {} has {} images",
            lp.display(),
            labels.len(),
            path.display(),
            all.len()
        );
        if let Some(keep) = classes {
            all = all
                .into_iter()
                .zip(labels)
                .filter(|(_, l)| keep.contains(l))
                .map(|(f, _)| f)
                .collect();
            ensure!(
                !all.is_empty(),
                "no images of classes {keep:?} in {}",
                path.display()
            );
        }
    } else if classes.is_some() {
        bail!("--classes needs --labels FILE (an IDX label file aligned with the images)");
    }
    Ok(all)
}

/// Extracted features of many frames.
pub struct Extracted {
    /// One `N × d` matrix per tap.
    pub layers: Vec<DMatrix<f64>>,
    /// `N × classes` logits.
    pub logits: DMatrix<f64>,
    /// How many frames were resized to the network's input.
    pub resized: usize,
}

/// One frame's outputs.
struct Row {
    logits: Vec<f32>,
    features: Vec<Vec<f32>>,
    resized: bool,
}

/// Runs the network on every frame (in parallel, batch 1: tract measured
/// fastest per frame at batch 1 on this class of network).
pub fn extract(net: &Network, spec: &InputSpec, frames: &[Frame]) -> Result<Extracted> {
    net.check_input(spec)?;
    let bar = ProgressBar::new(frames.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("extracting [{bar:30}] {pos}/{len} frames, {per_sec}, eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let rows: Vec<Result<Row>> = frames
        .par_chunks(64)
        .flat_map_iter(|chunk| {
            let mut input = vec![0.0f32; net.input_len()];
            let mut out = lsgm::onnx::Output::default();
            let r: Vec<_> = chunk
                .iter()
                .map(|f| {
                    let resized = frames::to_input(f, spec, &mut input)?;
                    net.run(&input, &mut out).with_context(|| f.source.clone())?;
                    if let Some(bad) = out.features.iter().flatten().find(|v| !v.is_finite()) {
                        bail!("{}: the network produced a non-finite feature ({bad})", f.source);
                    }
                    Ok(Row {
                        logits: out.logits.clone(),
                        features: out.features.clone(),
                        resized,
                    })
                })
                .collect();
            bar.inc(chunk.len() as u64);
            r
        })
        .collect();
    bar.finish_and_clear();
    let n = frames.len();
    let mut layers: Vec<Vec<f64>> = net.tap_dims.iter().map(|&d| Vec::with_capacity(n * d)).collect();
    let mut logits = Vec::with_capacity(n * net.classes);
    let mut resized = 0;
    for r in rows {
        let row = r?;
        logits.extend(row.logits.iter().map(|&v| v as f64));
        for (dst, f) in layers.iter_mut().zip(&row.features) {
            dst.extend(f.iter().map(|&v| v as f64));
        }
        resized += row.resized as usize;
    }
    Ok(Extracted {
        layers: layers
            .into_iter()
            .zip(&net.tap_dims)
            .map(|(v, &d)| DMatrix::from_row_slice(n, d, &v))
            .collect(),
        logits: DMatrix::from_row_slice(n, net.classes, &logits),
        resized,
    })
}

/// Layout name for messages.
pub fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::Nchw => "NCHW",
        Layout::Nhwc => "NHWC",
    }
}
