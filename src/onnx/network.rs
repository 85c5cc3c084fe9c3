//! The optimised runnable: one inference → logits + pooled tap features.

use super::graph::{Graph, Input};
use crate::model::preprocess::{Datum, InputBuffer, Preprocess};
use crate::model::wire::Pooling;
use anyhow::{bail, ensure, Context, Result};
use tract_onnx::prelude::*;

/// What one inference produces.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Class logits (finite).
    pub logits: Vec<f32>,
    /// One pooled feature vector per tap (finite).
    pub features: Vec<Vec<f32>>,
    /// Time spent in tract.
    pub inference: std::time::Duration,
    /// Time spent pooling the taps.
    pub pooling: std::time::Duration,
}

impl Output {
    /// Argmax class and its softmax probability (computed stably from the
    /// logits, so it equals the network's own Softmax output when it has one).
    pub fn top_class(&self) -> (usize, f32) {
        let (class, max) =
            self.logits.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            );
        let sum: f32 = self.logits.iter().map(|&l| (l - max).exp()).sum();
        (class, 1.0 / sum)
    }
}

/// A classifier with tapped hidden layers, optimised once, run per frame.
pub struct Network {
    plan: Arc<TypedRunnableModel>,
    input: Input,
    /// Tap names, in order.
    pub taps: Vec<String>,
    poolings: Vec<Pooling>,
    /// Pooled feature length per tap.
    pub tap_dims: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
}

impl Network {
    /// Selects the logits and `taps` as outputs of the inference graph
    /// (before optimisation renames nodes) and optimises.
    pub fn new(graph: Graph, taps: &[String]) -> Result<Network> {
        let mut outlets = vec![graph.logits.outlet];
        let (mut tap_dims, mut poolings) = (Vec::new(), Vec::new());
        for name in taps {
            let tap = graph.find(name)?;
            tap_dims.push(tap.channels());
            poolings.push(tap.pooling.context("checked by find")?);
            outlets.push(tap.outlet);
        }
        let mut model = graph.model;
        model.select_output_outlets(&outlets)?;
        let plan = model
            .into_optimized()
            .with_context(|| format!("{}: tract cannot optimise this network", graph.path.display()))?
            .into_runnable()?;
        Ok(Network {
            plan,
            input: graph.input,
            taps: taps.to_vec(),
            poolings,
            tap_dims,
            classes: graph.logits.classes,
        })
    }

    /// How each tap becomes its feature vector, in tap order.
    pub fn poolings(&self) -> &[Pooling] {
        &self.poolings
    }

    /// The network's input.
    pub fn input(&self) -> &Input {
        &self.input
    }

    /// Checks that `p` makes this network's input (shape, layout, element type).
    pub fn check_input(&self, p: &Preprocess) -> Result<()> {
        ensure!(
            p.input_shape() == self.input.shape() && p.datum == self.input.datum,
            "the preprocessing makes {:?} {} inputs but the network takes {:?} {}",
            p.input_shape(),
            p.datum,
            self.input.shape(),
            self.input.datum
        );
        Ok(())
    }

    /// Runs one frame (`input` as [`crate::frames::to_input`] writes it)
    /// and writes the logits and pooled features into `out` (its vectors
    /// are reused). Non-finite logits or features are an error.
    pub fn run(&self, input: &InputBuffer, out: &mut Output) -> Result<()> {
        let t0 = std::time::Instant::now();
        let shape = self.input.shape();
        let tensor = match (input, self.input.datum) {
            (InputBuffer::F32(v), Datum::F32) => Tensor::from_shape(&shape, v)?,
            (InputBuffer::U8(v), Datum::U8) => Tensor::from_shape(&shape, v)?,
            _ => bail!(
                "input buffer of the wrong element type for a {} network",
                self.input.datum
            ),
        };
        let result = self.plan.run(tvec!(tensor.into())).context("inference failed")?;
        let t1 = std::time::Instant::now();
        out.inference = t1 - t0;
        let logits = result[0].try_as_plain_ram()?;
        out.logits.clear();
        out.logits.extend_from_slice(logits.as_slice::<f32>()?);
        if let Some(bad) = out.logits.iter().find(|v| !v.is_finite()) {
            bail!("the network's logits are not finite ({bad})");
        }
        out.features.resize(self.taps.len(), Vec::new());
        for (i, feat) in out.features.iter_mut().enumerate() {
            let t = &result[i + 1];
            let shape = t.shape();
            let data = t.try_as_plain_ram()?;
            let data = data.as_slice::<f32>()?;
            feat.resize(self.tap_dims[i], 0.0);
            let pooled = match (self.poolings[i], shape) {
                (Pooling::GlobalAverageNchw, &[a, b, c, d]) => {
                    crate::pool::global_avg_nchw(data, [a, b, c, d], 0, feat)
                }
                (Pooling::GlobalAverageNhwc, &[a, b, c, d]) => {
                    crate::pool::global_avg_nhwc(data, [a, b, c, d], 0, feat)
                }
                (Pooling::Vector, _) if data.len() == feat.len() => {
                    feat.copy_from_slice(data);
                    Ok(())
                }
                _ => Err(crate::Error::Shape),
            };
            pooled.map_err(|e| anyhow::anyhow!("pooling tap {} of shape {shape:?}: {e}", self.taps[i]))?;
            if let Some(j) = feat.iter().position(|v| !v.is_finite()) {
                bail!("tap {}: feature {j} is not finite ({})", self.taps[i], feat[j]);
            }
        }
        out.pooling = t1.elapsed();
        Ok(())
    }
}
