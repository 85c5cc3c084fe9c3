//! Binding a fitted model to its network: the one place that checks they
//! belong together, used by every command that turns frames into scores.

use super::engine::Engine;
use super::graph::{Graph, LoadOptions};
use super::network::Network;
use crate::model::preprocess::Preprocess;
use crate::Model;
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;

/// A network loaded for a fitted model: what the monitor, `features
/// --lsgm` and `eval` run frames through.
pub struct Bound {
    /// The optimised network, tapping the model's layers in order.
    pub network: Network,
    /// How frames become its input (from the model file).
    pub preprocess: Preprocess,
    /// What the user should know about the network (e.g. a Softmax output
    /// read through to its logits).
    pub notes: Vec<String>,
}

/// A network's graph checked against a fitted model ([`check`]), not yet
/// optimised: a caller that needs more taps than the model's adds them to
/// `taps` before [`Checked::build`], so the network is loaded and optimised
/// once.
pub struct Checked {
    /// The loaded graph.
    pub graph: Graph,
    /// The model's tap names, in order.
    pub taps: Vec<String>,
    /// Grid side of each of the model's taps (1: global mean); taps added
    /// after them are pooled by their global mean.
    pub grids: Vec<u8>,
    /// How frames become its input (from the model file).
    pub preprocess: Preprocess,
    /// What the user should know about the network.
    pub notes: Vec<String>,
}

impl Checked {
    /// Builds the network for `engine` with `taps` tapped and checks its
    /// input against the preprocessing.
    pub fn build(mut self, engine: &Engine) -> Result<Bound> {
        self.grids.resize(self.taps.len(), 1);
        let network = Network::with_grids(self.graph, &self.taps, &self.grids, engine)?;
        network.check_input(&self.preprocess)?;
        Ok(Bound {
            network,
            preprocess: self.preprocess,
            notes: self.notes,
        })
    }
}

/// Loads `onnx` as `model` was fitted for it and checks that they belong
/// together ([`check`]), then builds it for `engine` with the model's taps.
pub fn bind(model: &Model<'_>, onnx: &Path, engine: &Engine) -> Result<Bound> {
    check(model, onnx)?.build(engine)
}

/// Loads `onnx` as `model` was fitted for it and checks that they belong
/// together: the network's identity (CRC-32 of the ONNX file and its
/// external weights), the logits tensor, every tap's name, channel count
/// and layout, and the input's layout, channels, size and element type.
/// Errors say which file to fit again.
pub fn check(model: &Model<'_>, onnx: &Path) -> Result<Checked> {
    let Some(wire) = model.preprocess() else {
        bail!(
            "this LSGM model was fitted from feature files and stores no input preprocessing, so it \
             scores features, not frames; fit one from images (with the network and training frames) instead"
        );
    };
    let preprocess = Preprocess::from_wire(wire);
    let opts = LoadOptions {
        input_size: Some((preprocess.height, preprocess.width)),
        logits: Some(preprocess.logits.clone()),
        fitted_for: Some(model.source().to_owned()),
    };
    let graph = Graph::load(onnx, &opts)?;
    let input = &graph.input;
    ensure!(
        input.layout == preprocess.layout
            && input.channels == preprocess.channels()
            && input.datum == preprocess.datum,
        "{}: its input is {} {} with {} channel(s), the LSGM file expects {} {} with {}: they do not belong together",
        onnx.display(),
        input.layout,
        input.datum,
        input.channels,
        preprocess.layout,
        preprocess.datum,
        preprocess.channels()
    );
    let (mut taps, mut grids) = (Vec::new(), Vec::new());
    for l in model.layers() {
        let tap = graph
            .find(l.name())
            .with_context(|| format!("the LSGM file taps {:?}", l.name()))?;
        // The model file checked the side (1..=16), so it fits in a u8.
        let side = l.pooling().side() as u8;
        ensure!(
            tap.grid(side).ok() == Some((l.pooling(), l.dim_in())),
            "tap {} is {:?} ({}) in the ONNX model but has {} features ({}) in the LSGM file: \
             they do not belong together",
            l.name(),
            tap.shape,
            tap.pooling
                .map_or_else(|| "not a map".to_string(), |p| p.to_string()),
            l.dim_in(),
            l.pooling()
        );
        taps.push(l.name().to_string());
        grids.push(side);
    }
    let notes = graph
        .logits
        .note
        .iter()
        .cloned()
        .chain(graph.float16_note())
        .collect();
    Ok(Checked {
        graph,
        taps,
        grids,
        preprocess,
        notes,
    })
}
