//! The network as the monitor and the fitter see it, whatever engine runs
//! it: one inference → logits + pooled tap features.

use super::engine::{Engine, EngineKind, Execute, Plan, Values};
use super::graph::{Graph, Input};
use super::logits::Probabilities;
use super::tract::TractPlan;
use crate::model::preprocess::{Datum, InputBuffer, Preprocess};
use crate::model::wire::Pooling;
use anyhow::{bail, ensure, Context, Result};
use std::sync::Arc;

/// What one inference produces.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Class logits (finite).
    pub logits: Vec<f32>,
    /// One pooled feature vector per tap (finite).
    pub features: Vec<Vec<f32>>,
    /// Time spent in the engine.
    pub inference: std::time::Duration,
    /// Time spent pooling the taps.
    pub pooling: std::time::Duration,
}

/// A classifier with tapped hidden layers, built once for an engine, run
/// per frame.
pub struct Network {
    plan: Arc<dyn Plan>,
    input: Input,
    /// What runs it (`tract`, `onnxruntime (cpu)`).
    pub engine: String,
    /// Tap names, in order.
    pub taps: Vec<String>,
    poolings: Vec<Pooling>,
    /// Pooled feature length per tap.
    pub tap_dims: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
    /// How the network turns the logits into probabilities: the confidence
    /// of a frame is `probabilities.top_class(&output.logits)`.
    pub probabilities: Probabilities,
}

impl Network {
    /// Builds `graph` for `engine` with the logits and `taps` as its
    /// outputs (tract: selected before optimisation renames nodes;
    /// onnxruntime: added as graph outputs of the model in memory).
    /// Each tap is pooled by its global mean (a vector tap as it is).
    pub fn new(graph: Graph, taps: &[String], engine: &Engine) -> Result<Network> {
        Network::with_grids(graph, taps, &vec![1; taps.len()], engine)
    }

    /// [`Network::new`] with tap `i` pooled over a `grids[i] × grids[i]`
    /// grid of cells (1: the global mean); see [`super::graph::Tap::grid`]
    /// for what is refused.
    pub fn with_grids(graph: Graph, taps: &[String], grids: &[u8], engine: &Engine) -> Result<Network> {
        engine.check()?;
        ensure!(grids.len() == taps.len(), "one grid side per tap");
        let mut outlets = vec![graph.logits.outlet];
        let (mut tap_dims, mut poolings) = (Vec::new(), Vec::new());
        for (name, &side) in taps.iter().zip(grids) {
            let tap = graph.find(name)?;
            let (pooling, width) = tap.grid(side)?;
            tap_dims.push(width);
            poolings.push(pooling);
            outlets.push(tap.outlet);
        }
        let input = graph.input.clone();
        let io = (input.shape(), input.datum);
        let (classes, probabilities) = (graph.logits.classes, graph.logits.probabilities);
        let plan: Arc<dyn Plan> = match engine.kind {
            EngineKind::Tract => Arc::new(TractPlan::new(
                graph.model,
                &outlets,
                &graph.path,
                graph.float16,
                io,
            )?),
            #[cfg(feature = "onnxruntime")]
            EngineKind::OnnxRuntime => Arc::new(super::onnxruntime::OrtPlan::new(&graph, taps, engine)?),
            #[allow(unreachable_patterns)]
            other => bail!("this build has no {other} engine"),
        };
        Ok(Network {
            plan,
            input,
            engine: engine.describe(),
            taps: taps.to_vec(),
            poolings,
            tap_dims,
            classes,
            probabilities,
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
    /// are reused). Non-finite logits or features are an error. Each call
    /// sets up a fresh engine state: to run many frames, keep a
    /// [`Network::runner`] per thread instead (the results are the same).
    pub fn run(&self, input: &InputBuffer, out: &mut Output) -> Result<()> {
        self.runner()?.run(input, out)
    }

    /// A runner for this network that keeps its engine state and input
    /// buffers from frame to frame: one per worker thread. It shares the
    /// built plan (nothing is copied but tap names and dimensions) and
    /// outlives `self`.
    pub fn runner(&self) -> Result<Runner> {
        Ok(Runner {
            exec: self.plan.executor()?,
            shape: self.input.shape(),
            datum: self.input.datum,
            taps: self.taps.clone(),
            poolings: self.poolings.clone(),
            tap_dims: self.tap_dims.clone(),
            converted: Vec::new(),
        })
    }
}

/// Runs one [`Network`] frame after frame on one thread, reusing its
/// engine state and buffers; made by [`Network::runner`]. It is `Send`:
/// hand one to each worker thread.
pub struct Runner {
    exec: Box<dyn Execute>,
    shape: [usize; 4],
    datum: Datum,
    taps: Vec<String>,
    poolings: Vec<Pooling>,
    tap_dims: Vec<usize>,
    /// A float16 (or float64) result converted to `f32`, reused.
    converted: Vec<f32>,
}

/// `values` as `f32`: the engine's own slice, or (the `f16` maps of a
/// network converted to float16 inside, `f64`) its values converted into
/// `converted`, so that pooling sums in `f32` whatever precision the
/// network computes in.
fn as_f32<'a>(values: Values<'a>, converted: &'a mut Vec<f32>) -> &'a [f32] {
    match values {
        Values::F32(v) => v,
        Values::F16(v) => {
            converted.clear();
            converted.extend(v.iter().map(|h| h.to_f32()));
            converted
        }
        Values::F64(v) => {
            converted.clear();
            converted.extend(v.iter().map(|&d| d as f32));
            converted
        }
    }
}

/// Pools tap `name`'s tensor (`shape`, `data`) into `feat` by `pooling`.
fn pool(name: &str, pooling: Pooling, shape: &[usize], data: &[f32], feat: &mut [f32]) -> Result<()> {
    let pooled = crate::pool::tensor(pooling, shape, data, 0, feat);
    pooled.map_err(|e| anyhow::anyhow!("pooling tap {name} of shape {shape:?}: {e}"))?;
    if let Some(j) = feat.iter().position(|v| !v.is_finite()) {
        bail!("tap {name}: feature {j} is not finite ({})", feat[j]);
    }
    Ok(())
}

impl Runner {
    /// Checks that `input` is this network's input: element type and length.
    fn check(&self, input: &InputBuffer) -> Result<()> {
        let len = match (input, self.datum) {
            (InputBuffer::F32(v), Datum::F32) => v.len(),
            (InputBuffer::U8(v), Datum::U8) => v.len(),
            _ => bail!(
                "input buffer of the wrong element type for a {} network",
                self.datum
            ),
        };
        ensure!(
            len == self.shape.iter().product::<usize>(),
            "input buffer of {len} values for an input of shape {:?}",
            self.shape
        );
        Ok(())
    }

    /// Per-node times of `runs` inferences of `input`, slowest first (the
    /// tract engine only; `examples/tract_profile.rs`).
    pub fn profile(&mut self, input: &InputBuffer, runs: usize) -> Result<Vec<(String, String, f64)>> {
        self.check(input)?;
        self.exec.profile(input, runs)
    }

    /// Runs one frame, as [`Network::run`] does (same results, bit for bit).
    pub fn run(&mut self, input: &InputBuffer, out: &mut Output) -> Result<()> {
        self.check(input)?;
        let t0 = std::time::Instant::now();
        let mut t1 = None;
        out.features.resize(self.taps.len(), Vec::new());
        let (taps, poolings, dims) = (&self.taps, &self.poolings, &self.tap_dims);
        let converted = &mut self.converted;
        let mut seen = 0;
        self.exec.execute(input, &mut |i, shape, values| {
            seen += 1;
            let data = as_f32(values, converted);
            if i == 0 {
                t1 = Some(std::time::Instant::now());
                out.logits.clear();
                out.logits.extend_from_slice(data);
                if let Some(bad) = out.logits.iter().find(|v| !v.is_finite()) {
                    bail!("the network's logits are not finite ({bad})");
                }
                return Ok(());
            }
            let t = i - 1;
            let feat = out
                .features
                .get_mut(t)
                .context("the engine returned more outputs than taps")?;
            feat.resize(dims[t], 0.0);
            pool(&taps[t], poolings[t], shape, data, feat)
        })?;
        ensure!(
            seen == self.taps.len() + 1,
            "the engine returned {seen} outputs for the logits and {} taps",
            self.taps.len()
        );
        let t1 = t1.unwrap_or(t0);
        out.inference = t1 - t0;
        out.pooling = t1.elapsed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::LoadOptions;

    #[test]
    fn float16_maps_are_pooled_in_f32() {
        // 4096 ones: a float16 running sum stops at 2048 (2048 + 1 rounds
        // back to 2048), so a mean summed in float16 would be 0.5.
        let map = vec![half::f16::from_f32(1.0); 4096];
        let mut converted = Vec::new();
        let values = as_f32(Values::F16(&map), &mut converted);
        let mut mean = [0.0f32];
        crate::pool::global_avg_nchw(values, [1, 1, 64, 64], 0, &mut mean).unwrap();
        assert_eq!(mean, [1.0]);
        assert_eq!(as_f32(Values::F64(&[0.25, -3.0]), &mut converted), [0.25, -3.0]);
    }

    #[test]
    fn a_runner_is_send_and_gives_a_fresh_runs_results() {
        fn send<T: Send>() {}
        send::<Runner>();
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/uint8_input.onnx");
        let graph = Graph::load(&path, &LoadOptions::default()).unwrap();
        let net = Network::new(graph, &["relu1".to_string()], &Engine::default()).unwrap();
        assert_eq!(net.engine, "tract");
        let mut runner = net.runner().unwrap();
        let mut out = Output::default();
        let mut rows = Vec::new();
        for v in [7u8, 200, 7] {
            runner.run(&InputBuffer::U8(vec![v; 28 * 28]), &mut out).unwrap();
            rows.push(out.clone());
        }
        assert_eq!(
            (&rows[0].logits, &rows[0].features),
            (&rows[2].logits, &rows[2].features)
        );
        assert_ne!(rows[0].logits, rows[1].logits);
        let mut fresh = Output::default();
        net.run(&InputBuffer::U8(vec![200; 28 * 28]), &mut fresh).unwrap();
        assert_eq!(
            (&fresh.logits, &fresh.features),
            (&rows[1].logits, &rows[1].features)
        );
        let e = runner
            .run(&InputBuffer::F32(vec![0.0; 28 * 28]), &mut out)
            .unwrap_err();
        assert!(e.to_string().contains("wrong element type"), "{e}");
        let e = runner.run(&InputBuffer::U8(vec![0; 27]), &mut out).unwrap_err();
        assert!(e.to_string().contains("27 values"), "{e}");
    }
}
