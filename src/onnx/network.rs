//! The optimised runnable: one inference → logits + pooled tap features.

use super::graph::Graph;
use crate::frames::InputSpec;
use crate::model::wire::Layout;
use anyhow::{ensure, Context, Result};
use tract_onnx::prelude::*;

/// What one inference produces.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Class logits.
    pub logits: Vec<f32>,
    /// One pooled feature vector per tap.
    pub features: Vec<Vec<f32>>,
    /// Time spent in tract.
    pub inference: std::time::Duration,
    /// Time spent pooling the taps.
    pub pooling: std::time::Duration,
}

impl Output {
    /// Argmax class and its softmax probability.
    pub fn top_class(&self) -> (usize, f32) {
        let max = self.logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = self.logits.iter().map(|&l| (l - max).exp()).sum();
        let (class, _) =
            self.logits.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            );
        (class, 1.0 / sum)
    }
}

/// A classifier with tapped hidden layers, optimised once, run per frame.
pub struct Network {
    plan: Arc<TypedRunnableModel>,
    input_shape: [usize; 4],
    /// Tap names, in order.
    pub taps: Vec<String>,
    /// Pooled feature length per tap.
    pub tap_dims: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
}

impl Network {
    /// Selects the logits and `taps` as outputs of the inference graph (before
    /// optimisation renames nodes) and optimises.
    pub fn new(graph: Graph, taps: &[String]) -> Result<Network> {
        let mut outlets = vec![graph.logits];
        let mut tap_dims = Vec::new();
        for name in taps {
            let tap = graph.find(name)?;
            tap_dims.push(tap.channels());
            let id = graph.model.node_id_by_name(name)?;
            outlets.push(OutletId::new(id, 0));
        }
        let (c, h, w) = graph.input_chw;
        let input_shape = match graph.layout {
            Layout::Nchw => [1, c, h, w],
            Layout::Nhwc => [1, h, w, c],
        };
        let classes = graph
            .model
            .outlet_fact(graph.logits)?
            .shape
            .as_concrete_finite()
            .ok()
            .flatten()
            .and_then(|s| s.last().copied())
            .context("cannot infer the number of classes from the logits' shape")?;
        let mut model = graph.model;
        model.select_output_outlets(&outlets)?;
        let plan = model
            .into_optimized()
            .map_err(|e| anyhow::anyhow!("optimising the ONNX model failed: {e}"))?
            .into_runnable()?;
        Ok(Network {
            plan,
            input_shape,
            taps: taps.to_vec(),
            tap_dims,
            classes,
        })
    }

    /// The input a frame must become.
    pub fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Checks that `spec` produces this network's input.
    pub fn check_input(&self, spec: &InputSpec) -> Result<()> {
        let want = match spec.layout {
            Layout::Nchw => [1, spec.channels, spec.height, spec.width],
            Layout::Nhwc => [1, spec.height, spec.width, spec.channels],
        };
        ensure!(
            want == self.input_shape,
            "the model file's preprocessing makes {want:?} inputs but the ONNX model takes {:?}",
            self.input_shape
        );
        Ok(())
    }

    /// Runs one frame (`input` laid out as the network expects) and writes
    /// the logits and pooled features into `out` (its vectors are reused).
    pub fn run(&self, input: &[f32], out: &mut Output) -> Result<()> {
        let t0 = std::time::Instant::now();
        let tensor = Tensor::from_shape(&self.input_shape, input)?;
        let result = self
            .plan
            .run(tvec!(tensor.into()))
            .map_err(|e| anyhow::anyhow!("inference failed: {e}"))?;
        let t1 = std::time::Instant::now();
        out.inference = t1 - t0;
        let logits = result[0].try_as_plain_ram()?;
        out.logits.clear();
        out.logits.extend_from_slice(logits.as_slice::<f32>()?);
        out.features.resize(self.taps.len(), Vec::new());
        for (i, feat) in out.features.iter_mut().enumerate() {
            let t = &result[i + 1];
            let shape = t.shape();
            let data = t.try_as_plain_ram()?;
            let data = data.as_slice::<f32>()?;
            feat.resize(self.tap_dims[i], 0.0);
            match shape.len() {
                4 => crate::pool::global_avg_nchw(data, [shape[0], shape[1], shape[2], shape[3]], 0, feat)
                    .map_err(|e| anyhow::anyhow!("pooling tap {}: {e}", self.taps[i]))?,
                _ => feat.copy_from_slice(&data[..self.tap_dims[i]]),
            }
        }
        out.pooling = t1.elapsed();
        Ok(())
    }
}
