//! The ONNX graph before optimisation: shapes, candidate taps, auto selection.

use crate::model::wire::Layout;
use anyhow::{bail, Context, Result};
use std::path::Path;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// A node whose output could be tapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Tap {
    /// ONNX node name.
    pub name: String,
    /// tract's name for the operation.
    pub op: String,
    /// Output shape for one frame (batch 1).
    pub shape: Vec<usize>,
}

impl Tap {
    /// Length of the pooled feature vector (channels).
    pub fn channels(&self) -> usize {
        self.shape.get(1).copied().unwrap_or(0)
    }

    /// Spatial resolution (H, W) of a 4-D NCHW output.
    pub fn resolution(&self) -> Option<(usize, usize)> {
        (self.shape.len() == 4).then(|| (self.shape[2], self.shape[3]))
    }
}

/// A loaded, shape-analysed ONNX classifier.
pub struct Graph {
    pub(crate) model: InferenceModel,
    pub(crate) logits: OutletId,
    /// Input name, layout and shape (C, H, W).
    pub input_name: String,
    /// Input layout.
    pub layout: Layout,
    /// (channels, height, width) of one frame.
    pub input_chw: (usize, usize, usize),
    /// Name of the logits output.
    pub logits_name: String,
    /// `NAME bytes:N crc32:XXXXXXXX` of the ONNX file: stored in every model
    /// fitted for it, so the monitor can tell a model fitted for another one.
    pub identity: String,
    taps: Vec<Tap>,
}

fn concrete(dims: &[tract_onnx::tract_hir::infer::DimFact]) -> Vec<Option<usize>> {
    dims.iter()
        .map(|d| {
            d.concretize()
                .and_then(|d| tract_onnx::tract_hir::internal::DimLike::as_usize(&d))
        })
        .collect()
}

impl Graph {
    /// Loads `path`, fixes the batch to 1 and infers every shape.
    pub fn load(path: &Path) -> Result<Graph> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read ONNX model {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let identity = format!(
            "{name} bytes:{} crc32:{:08x}",
            bytes.len(),
            crc32fast::hash(&bytes)
        );
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(|e| anyhow::anyhow!("{}: not a loadable ONNX model: {e}", path.display()))?;
        let input = model.input_outlets()?[0];
        let input_name = model.node(input.node).name.clone();
        let fact = model.input_fact(0)?.clone();
        let dims = concrete(&fact.shape.dims().cloned().collect::<Vec<_>>());
        let (layout, chw) = match dims[..] {
            [_, Some(c), Some(h), Some(w)] if c == 1 || c == 3 => (Layout::Nchw, (c, h, w)),
            [_, Some(h), Some(w), Some(c)] if c == 1 || c == 3 => (Layout::Nhwc, (c, h, w)),
            _ => bail!(
                "{}: input {input_name} has shape {:?}; expected N×C×H×W (or N×H×W×C) with fixed C (1 or 3), H and W",
                path.display(),
                fact.shape
            ),
        };
        let shape: [usize; 4] = match layout {
            Layout::Nchw => [1, chw.0, chw.1, chw.2],
            Layout::Nhwc => [1, chw.1, chw.2, chw.0],
        };
        model.set_input_fact(0, f32::fact(shape).into())?;
        model
            .analyse(false)
            .map_err(|e| anyhow::anyhow!("{}: shape inference failed: {e}", path.display()))?;
        let logits = model.output_outlets()?[0];
        let logits_name = model.node(logits.node).name.clone();
        let mut taps = Vec::new();
        for id in model.eval_order()? {
            let node = model.node(id);
            if node.inputs.is_empty() || node.op.name() == "Const" {
                continue;
            }
            let fact = model.outlet_fact(OutletId::new(id, 0))?;
            if fact.value.concretize().is_some() {
                continue; // folded constant (weights, shapes)
            }
            let Ok(Some(shape)) = fact.shape.as_concrete_finite() else {
                continue;
            };
            let shape: Vec<usize> = shape.to_vec();
            let spatial = match shape.len() {
                4 => shape[0] == 1 && shape[2] * shape[3] > 1,
                2 => shape[0] == 1,
                _ => false,
            };
            if spatial {
                taps.push(Tap {
                    name: node.name.clone(),
                    op: node.op.name().to_string(),
                    shape,
                });
            }
        }
        Ok(Graph {
            model,
            logits,
            input_name,
            layout,
            input_chw: chw,
            logits_name,
            identity,
            taps,
        })
    }

    /// Errors if `source` (a model file's record of its network) names
    /// another ONNX file than this one, by CRC-32. Sources without a CRC
    /// (models fitted from feature files) pass.
    pub fn check_fitted_for(&self, source: &str) -> Result<()> {
        let crc = |s: &str| {
            s.split_whitespace()
                .find_map(|w| w.strip_prefix("crc32:"))
                .map(str::to_owned)
        };
        if let Some(want) = crc(source) {
            let got = crc(&self.identity).unwrap_or_default();
            if want != got {
                bail!(
                    "the LSGM file was fitted for another network ({source}) than this one ({}); \
                     fit one for this network with `fit-and-export --onnx …`",
                    self.identity
                );
            }
        }
        Ok(())
    }

    /// Every tappable node in evaluation order: 4-D outputs with a spatial
    /// extent, and 2-D (vector) outputs.
    pub fn candidates(&self) -> &[Tap] {
        &self.taps
    }

    /// The paper's rule, "the last layer of each main block": for every
    /// spatial resolution the network passes through, the last node whose
    /// output is a 4-D map at that resolution — the post-activation output of
    /// the stage; the deepest of them is the penultimate, pre-pool stage.
    /// Nodes at the input's own resolution count only once a convolution has
    /// run (so input normalisation is never a tap).
    pub fn auto_taps(&self) -> Vec<String> {
        let mut last: Vec<((usize, usize), String)> = Vec::new();
        let mut seen_conv = false;
        for t in &self.taps {
            seen_conv |= t.op.to_ascii_lowercase().contains("conv");
            let Some(res) = t.resolution() else { continue };
            if !seen_conv {
                continue;
            }
            match last.iter_mut().find(|(r, _)| *r == res) {
                Some(entry) => entry.1 = t.name.clone(),
                None => last.push((res, t.name.clone())),
            }
        }
        last.into_iter().map(|(_, n)| n).collect()
    }

    /// The taps named, or an error naming the closest candidates.
    pub fn find(&self, name: &str) -> Result<&Tap> {
        if let Some(t) = self.taps.iter().find(|t| t.name == name) {
            return Ok(t);
        }
        let mut near: Vec<(usize, &str)> = self
            .taps
            .iter()
            .map(|t| (strsim::levenshtein(&t.name, name), t.name.as_str()))
            .collect();
        near.sort();
        let list: Vec<&str> = near.iter().take(5).map(|n| n.1).collect();
        bail!(
            "no tappable node named {name:?} in the ONNX model; closest: {}. List all with `fit-and-export layers --onnx …`",
            list.join(", ")
        )
    }
}
