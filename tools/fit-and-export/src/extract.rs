//! From an ONNX classifier and images to per-layer features: tap selection,
//! the preprocessing the flags describe, parallel extraction with the
//! runtime crate's `Network`.

use crate::cli::InputArgs;
use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lsgm::frames::{self, Frame, Notes};
use lsgm::model::preprocess::{Colour, Datum, PixelRange, Resize};
use lsgm::onnx::{Graph, Network};
use lsgm::Preprocess;
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

/// The tap names: `--layer` (repeatable), else `--layers` (`auto` or a
/// comma list), each checked against the graph.
pub fn select_taps(graph: &Graph, a: &InputArgs) -> Result<Vec<String>> {
    let taps: Vec<String> = if !a.layer.is_empty() {
        a.layer.clone()
    } else if a.layers == "auto" {
        graph.auto_taps()
    } else {
        a.layers
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    ensure!(
        !taps.is_empty(),
        "no layers to tap: the automatic rule found no 4-D feature map (with a known channel axis) after a \
         convolution; name the taps with --layers a,b,c (see `fit-and-export layers --onnx …`)"
    );
    for (i, t) in taps.iter().enumerate() {
        graph.find(t)?;
        ensure!(
            !taps[..i].contains(t),
            "tap {t:?} is given twice; give each tap once"
        );
    }
    Ok(taps)
}

/// The preprocessing the flags describe for `graph`. Nothing is guessed:
/// a 3-channel network needs `--channel-order`, a float network `--mean`
/// and `--std` (the demo network, when `--onnx` is not given, has its own),
/// a uint8 network takes raw pixels and refuses them; `--resize` defaults
/// to `exact` (frames of another size are refused).
pub fn preprocess(graph: &Graph, a: &InputArgs, demo: bool) -> Result<Preprocess> {
    let input = &graph.input;
    let path = graph.path.display();
    let c = input.channels;
    let colour = match (c, a.channel_order) {
        (1, None | Some(Colour::Grey)) => Colour::Grey,
        (1, Some(order)) => {
            bail!("--channel-order {order}: {path} takes 1-channel (grey) input; drop --channel-order")
        }
        (_, Some(Colour::Grey)) => bail!("--channel-order grey: {path} takes 3 channels; give rgb or bgr"),
        (_, Some(order)) => order,
        (_, None) => bail!(
            "{path} takes 3-channel input: say which order its channels are in with --channel-order rgb \
             (PyTorch, PIL, TensorFlow) or --channel-order bgr (OpenCV, Caffe)"
        ),
    };
    let (range, mean, std) = match input.datum {
        Datum::U8 => {
            ensure!(
                a.mean.is_none() && a.std.is_none() && a.input_range.is_none(),
                "{path} takes raw uint8 pixels and normalises them inside its graph; drop --mean, --std \
                 and --input-range"
            );
            crate::say!("note: {path} takes uint8 input: frames are fed as raw pixel values (0–255)");
            (PixelRange::Byte, vec![0.0; c], vec![1.0; c])
        }
        Datum::F32 => {
            let range = a.input_range.unwrap_or(PixelRange::Unit);
            let (mean, std) = match (&a.mean, &a.std) {
                (Some(m), Some(s)) => (m.for_channels(c, "--mean")?, s.for_channels(c, "--std")?),
                (None, None) if demo => (vec![DEMO_MEAN; c], vec![DEMO_STD; c]),
                _ => bail!(
                    "{path} takes float input: give the normalisation it was trained with as --mean and \
                     --std, in --input-range units (default 0-1, pixel / 255), e.g. --mean 0.485,0.456,0.406 \
                     --std 0.229,0.224,0.225 (ImageNet), or --mean 0 --std 1 for none"
                ),
            };
            ensure!(
                range == PixelRange::Byte || mean.iter().all(|m| m.abs() <= 1.0),
                "--mean {mean:?} lies outside [0, 1], but pixels are taken as 0-1 (pixel / 255); if the \
                 network was trained on 0–255 values, add --input-range 0-255"
            );
            (range, mean, std)
        }
    };
    let (height, width) = (input.height as u32, input.width as u32);
    let resize = match &a.resize {
        Some(s) => Resize::parse(s, height, width)?,
        None => Resize::Exact,
    };
    let p = Preprocess {
        input: input.name.clone(),
        logits: graph.logits.tensor.clone(),
        layout: input.layout,
        colour,
        height,
        width,
        resize,
        datum: input.datum,
        range,
        mean,
        std,
    };
    p.validate()
        .map_err(|e| anyhow::anyhow!("the preprocessing for {path} is not valid: {e}"))?;
    Ok(p)
}

/// A network loaded for fitting or `features` from the flags.
pub struct Prepared {
    /// The optimised network, tapping what `--layers`/`--layer` chose.
    pub network: Network,
    /// How frames become its input (what the model file will store).
    pub preprocess: Preprocess,
    /// The ONNX file's identity (what the model file will record).
    pub identity: String,
}

/// Loads `onnx` with the flags' options, chooses the taps and the
/// preprocessing (see [`select_taps`], [`preprocess`]) and optimises it;
/// what the user should know about the network goes to `notes`.
pub fn prepare(onnx: &Path, a: &InputArgs, demo: bool, notes: &Notes) -> Result<Prepared> {
    let graph = Graph::load(onnx, &a.load_options())?;
    if let Some(n) = &graph.logits.note {
        notes.say(n);
    }
    let taps = select_taps(&graph, a)?;
    let preprocess = preprocess(&graph, a, demo)?;
    let identity = graph.identity.clone();
    Ok(Prepared {
        network: Network::new(graph, &taps)?,
        preprocess,
        identity,
    })
}

/// Frames with their labels.
pub struct Loaded {
    /// The frames, in file order.
    pub frames: Vec<Frame>,
    /// Their labels, when a label file was given.
    pub labels: Option<Vec<u8>>,
}

/// Loads every frame of `path` (IDX, `.npy`, an image or a directory of
/// images) and, with `labels`, their labels, keeping only rows whose label
/// is in `classes`. The first frame that cannot be read is the error.
pub fn load_frames(path: &Path, labels: Option<&Path>, classes: Option<&[u8]>) -> Result<Loaded> {
    let inputs = frames::expand_inputs(&[path.to_path_buf()]);
    let mut all = Vec::new();
    for (_, f) in frames::FrameSource::new(inputs, None)? {
        all.push(f?); // every frame error names its file (and frame)
    }
    ensure!(!all.is_empty(), "{}: no frames", path.display());
    let Some(lp) = labels else {
        ensure!(
            classes.is_none(),
            "--classes needs --labels FILE (an IDX label file aligned with the images)"
        );
        return Ok(Loaded {
            frames: all,
            labels: None,
        });
    };
    let labels = frames::read_idx_labels(lp)?;
    ensure!(
        labels.len() == all.len(),
        "{} has {} labels but {} has {} images",
        lp.display(),
        labels.len(),
        path.display(),
        all.len()
    );
    let Some(keep) = classes else {
        return Ok(Loaded {
            frames: all,
            labels: Some(labels),
        });
    };
    for class in keep.iter().filter(|c| !labels.contains(c)) {
        crate::say!(
            "warning: --classes {class}: no image of {} has this label",
            lp.display()
        );
    }
    let (frames, labels): (Vec<Frame>, Vec<u8>) = all
        .into_iter()
        .zip(labels)
        .filter(|(_, l)| keep.contains(l))
        .unzip();
    ensure!(
        !frames.is_empty(),
        "no images of classes {keep:?} in {}",
        path.display()
    );
    Ok(Loaded {
        frames,
        labels: Some(labels),
    })
}

/// Extracted features of many frames.
pub struct Extracted {
    /// One `N × d` matrix per tap.
    pub layers: Vec<DMatrix<f64>>,
    /// `N × classes` logits.
    pub logits: DMatrix<f64>,
}

/// One frame's outputs.
struct Row {
    logits: Vec<f32>,
    features: Vec<Vec<f32>>,
}

/// Runs the network on every frame (in parallel, batch 1: tract measured
/// fastest per frame at batch 1 on this class of network), saying once in
/// `notes` what was done to frames. The first failing frame is the error.
pub fn extract(net: &Network, p: &Preprocess, frames: &[Frame], notes: &Notes) -> Result<Extracted> {
    net.check_input(p)?;
    let bar = ProgressBar::new(frames.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("extracting [{bar:30}] {pos}/{len} frames, {per_sec}, eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let rows: Vec<Result<Row>> = frames
        .par_chunks(64)
        .flat_map_iter(|chunk| {
            let mut input = p.buffer();
            let mut out = lsgm::onnx::Output::default();
            let r: Vec<_> = chunk
                .iter()
                .map(|f| {
                    let adjusted = frames::to_input(f, p, &mut input)?;
                    adjusted.notes(p).iter().for_each(|n| notes.say(n));
                    net.run(&input, &mut out).with_context(|| f.source.clone())?;
                    Ok(Row {
                        logits: out.logits.clone(),
                        features: out.features.clone(),
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
    for r in rows {
        let row = r?;
        logits.extend(row.logits.iter().map(|&v| v as f64));
        for (dst, f) in layers.iter_mut().zip(&row.features) {
            dst.extend(f.iter().map(|&v| v as f64));
        }
    }
    Ok(Extracted {
        layers: layers
            .into_iter()
            .zip(&net.tap_dims)
            .map(|(v, &d)| DMatrix::from_row_slice(n, d, &v))
            .collect(),
        logits: DMatrix::from_row_slice(n, net.classes, &logits),
    })
}
