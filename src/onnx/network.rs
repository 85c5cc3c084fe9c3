//! The optimised runnable: one inference → logits + pooled tap features.

use super::graph::{Graph, Input};
use super::logits::Probabilities;
use crate::model::preprocess::{Datum, InputBuffer, Preprocess};
use crate::model::wire::Pooling;
use anyhow::{bail, ensure, Context, Result};
use tract_onnx::prelude::Datum as _;
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
    /// How the network turns the logits into probabilities: the confidence
    /// of a frame is `probabilities.top_class(&output.logits)`.
    pub probabilities: Probabilities,
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
        let float16 = match graph.float16 {
            true => {
                "; it computes in float16 inside, which tract 0.23 implements only in part: export it \
                     in float32 (float16 gains no speed on a CPU without float16 arithmetic)"
            }
            false => "",
        };
        let plan = model
            .into_optimized()
            .with_context(|| {
                format!(
                    "{}: tract cannot optimise this network{float16}",
                    graph.path.display()
                )
            })?
            .into_runnable()?;
        Ok(Network {
            plan,
            input: graph.input,
            taps: taps.to_vec(),
            poolings,
            tap_dims,
            classes: graph.logits.classes,
            probabilities: graph.logits.probabilities,
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
    /// sets up a fresh tract state: to run many frames, keep a
    /// [`Network::runner`] per thread instead (the results are the same).
    pub fn run(&self, input: &InputBuffer, out: &mut Output) -> Result<()> {
        self.runner()?.run(input, out)
    }

    /// A runner for this network that keeps its tract state and input
    /// tensor from frame to frame: one per worker thread. It shares the
    /// optimised plan (nothing is copied but tap names and dimensions) and
    /// outlives `self`.
    pub fn runner(&self) -> Result<Runner> {
        Ok(Runner {
            state: self.plan.spawn().context("cannot set up the network's state")?,
            tensor: None,
            shape: self.input.shape(),
            datum: self.input.datum,
            taps: self.taps.clone(),
            poolings: self.poolings.clone(),
            tap_dims: self.tap_dims.clone(),
            converted: Vec::new(),
        })
    }
}

/// Runs one [`Network`] frame after frame on one thread, reusing its tract
/// state (the per-operator scratch space) and its input tensor; made by
/// [`Network::runner`]. It is `Send`: hand one to each worker thread.
pub struct Runner {
    state: TypedSimpleState,
    /// The input tensor, reused while tract holds no other reference to it.
    tensor: Option<Arc<Tensor>>,
    shape: [usize; 4],
    datum: Datum,
    taps: Vec<String>,
    poolings: Vec<Pooling>,
    tap_dims: Vec<usize>,
    /// A float16 (or float64) result converted to `f32`, reused.
    converted: Vec<f32>,
}

/// The values of an inference result as `f32`: the tensor's own slice, or
/// (the `f16` maps of a network converted to float16 inside, `f64`) its
/// values converted into `converted`, so that pooling sums in `f32`
/// whatever precision the network computes in.
fn as_f32<'a>(t: &'a Tensor, converted: &'a mut Vec<f32>) -> Result<&'a [f32]> {
    let plain = t.try_as_plain_ram()?;
    let dt = t.datum_type();
    if dt == f32::datum_type() {
        return plain.as_slice::<f32>();
    }
    converted.clear();
    if dt == f16::datum_type() {
        converted.extend(plain.as_slice::<f16>()?.iter().map(|v| v.to_f32()));
    } else if dt == f64::datum_type() {
        converted.extend(plain.as_slice::<f64>()?.iter().map(|&v| v as f32));
    } else {
        bail!("the network computed {dt:?} values where floats were expected");
    }
    Ok(converted)
}

impl Runner {
    /// Copies `input` into the reused input tensor (a new one only if
    /// tract still holds the last, or the first time).
    fn input(&mut self, input: &InputBuffer) -> Result<TValue> {
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
        if self.tensor.as_mut().is_none_or(|t| Arc::get_mut(t).is_none()) {
            let t = match self.datum {
                Datum::F32 => Tensor::zero::<f32>(&self.shape)?,
                Datum::U8 => Tensor::zero::<u8>(&self.shape)?,
            };
            self.tensor = Some(Arc::new(t));
        }
        let shared = self.tensor.as_mut().expect("set above");
        let tensor = Arc::get_mut(shared).expect("checked above: not shared");
        let mut plain = tensor.try_as_plain_ram_mut()?;
        match input {
            InputBuffer::F32(v) => plain.as_slice_mut::<f32>()?.copy_from_slice(v),
            InputBuffer::U8(v) => plain.as_slice_mut::<u8>()?.copy_from_slice(v),
        }
        Ok(TValue::from_const(Arc::clone(shared)))
    }

    /// Where tract spends the time: every node of the optimised plan timed
    /// over `runs` inferences of `input` (tract's own plan executor, with
    /// a timing wrapper around its `eval`), as `(node name, operator,
    /// median µs)`, slowest first. For profiling (`examples/tract_profile.rs`),
    /// not the hot path.
    pub fn profile(&mut self, input: &InputBuffer, runs: usize) -> Result<Vec<(String, String, f64)>> {
        use tract_onnx::tract_core::ops::OpState;
        use tract_onnx::tract_core::plan::{eval, EvalContext};
        let mut times: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
        for _ in 0..runs.max(1) {
            let tensor = self.input(input)?;
            self.state.run_plan_with_eval(
                tvec!(tensor),
                |ctx: &EvalContext<'_>,
                 state: Option<&mut (dyn OpState + 'static)>,
                 node: &TypedNode,
                 inputs: TVec<TValue>| {
                    let t0 = std::time::Instant::now();
                    let r = eval(ctx, state, node, inputs);
                    times
                        .entry(node.id)
                        .or_default()
                        .push(t0.elapsed().as_secs_f64() * 1e6);
                    r
                },
            )?;
        }
        let model = self.state.model();
        let mut rows: Vec<(String, String, f64)> = times
            .into_iter()
            .map(|(id, mut t)| {
                t.sort_by(f64::total_cmp);
                let node = model.node(id);
                (node.name.clone(), node.op.name().to_string(), t[t.len() / 2])
            })
            .collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2));
        Ok(rows)
    }

    /// Runs one frame, as [`Network::run`] does (same results, bit for bit).
    pub fn run(&mut self, input: &InputBuffer, out: &mut Output) -> Result<()> {
        let t0 = std::time::Instant::now();
        let tensor = self.input(input)?;
        let result = self.state.run(tvec!(tensor)).context("inference failed")?;
        let t1 = std::time::Instant::now();
        out.inference = t1 - t0;
        out.logits.clear();
        out.logits
            .extend_from_slice(as_f32(&result[0], &mut self.converted)?);
        if let Some(bad) = out.logits.iter().find(|v| !v.is_finite()) {
            bail!("the network's logits are not finite ({bad})");
        }
        out.features.resize(self.taps.len(), Vec::new());
        for (i, feat) in out.features.iter_mut().enumerate() {
            let t = &result[i + 1];
            let shape = t.shape();
            let data = as_f32(t, &mut self.converted)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::LoadOptions;

    #[test]
    fn float16_maps_are_pooled_in_f32() {
        // 4096 ones: a float16 running sum stops at 2048 (2048 + 1 rounds
        // back to 2048), so a mean summed in float16 would be 0.5.
        let map = Tensor::from_shape(&[1, 1, 64, 64], &vec![f16::from_f32(1.0); 4096]).unwrap();
        let mut converted = Vec::new();
        let values = as_f32(&map, &mut converted).unwrap();
        let mut mean = [0.0f32];
        crate::pool::global_avg_nchw(values, [1, 1, 64, 64], 0, &mut mean).unwrap();
        assert_eq!(mean, [1.0]);
        let f64s = Tensor::from_shape(&[1, 2], &[0.25f64, -3.0]).unwrap();
        assert_eq!(as_f32(&f64s, &mut converted).unwrap(), [0.25, -3.0]);
        let ints = Tensor::from_shape(&[1, 2], &[1i64, 2]).unwrap();
        assert!(as_f32(&ints, &mut converted).is_err());
    }

    #[test]
    fn a_runner_is_send_and_reuses_its_input_tensor() {
        fn send<T: Send>() {}
        send::<Runner>();
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/uint8_input.onnx");
        let graph = Graph::load(&path, &LoadOptions::default()).unwrap();
        let net = Network::new(graph, &["relu1".to_string()]).unwrap();
        let mut runner = net.runner().unwrap();
        let mut out = Output::default();
        let mut rows = Vec::new();
        let mut tensors = Vec::new();
        for v in [7u8, 200, 7] {
            runner.run(&InputBuffer::U8(vec![v; 28 * 28]), &mut out).unwrap();
            rows.push(out.clone());
            let t = runner.tensor.as_ref().unwrap();
            assert_eq!(Arc::strong_count(t), 1, "tract keeps no reference to the input");
            tensors.push(Arc::as_ptr(t));
        }
        assert!(tensors.iter().all(|&t| t == tensors[0]), "one input tensor");
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
