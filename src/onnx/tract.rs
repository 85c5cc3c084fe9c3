//! The tract engine: the analysed graph with the logits and the taps as
//! its outputs, optimised once into a runnable plan; one tract state and
//! one reused input tensor per worker.

use super::engine::{Execute, Plan, Values, Visit};
use crate::model::preprocess::{Datum, InputBuffer};
use anyhow::{bail, Context, Result};
use std::path::Path;
use tract_onnx::prelude::Datum as _;
use tract_onnx::prelude::*;

/// tract's optimised plan of a network.
pub(crate) struct TractPlan {
    plan: Arc<TypedRunnableModel>,
    shape: [usize; 4],
    datum: Datum,
}

impl TractPlan {
    /// Selects `outlets` (the logits, then the taps) as the outputs of
    /// `model` (before optimisation renames nodes) and optimises it.
    pub(crate) fn new(
        mut model: InferenceModel,
        outlets: &[OutletId],
        path: &Path,
        float16: bool,
        (shape, datum): ([usize; 4], Datum),
    ) -> Result<TractPlan> {
        model.select_output_outlets(outlets)?;
        let float16 = match float16 {
            true => {
                "; it computes in float16 inside, which tract 0.23 implements only in part: export it \
                     in float32 (float16 gains no speed on a CPU without float16 arithmetic)"
            }
            false => "",
        };
        let plan = model
            .into_optimized()
            .with_context(|| format!("{}: tract cannot optimise this network{float16}", path.display()))?
            .into_runnable()?;
        Ok(TractPlan { plan, shape, datum })
    }
}

impl Plan for TractPlan {
    fn executor(&self) -> Result<Box<dyn Execute>> {
        Ok(Box::new(TractExecutor {
            state: self.plan.spawn().context("cannot set up the network's state")?,
            tensor: None,
            shape: self.shape,
            datum: self.datum,
        }))
    }
}

/// One worker's tract state (the per-operator scratch space) and input
/// tensor, reused from frame to frame.
pub(crate) struct TractExecutor {
    state: TypedSimpleState,
    /// The input tensor, reused while tract holds no other reference to it.
    tensor: Option<Arc<Tensor>>,
    shape: [usize; 4],
    datum: Datum,
}

/// A result tensor's values, borrowed: `f32`, or the `f16` maps of a
/// network converted to float16 inside, or `f64`.
fn values(t: &Tensor) -> Result<Values<'_>> {
    let plain = t.try_as_plain_ram()?;
    let dt = t.datum_type();
    Ok(if dt == f32::datum_type() {
        Values::F32(plain.as_slice::<f32>()?)
    } else if dt == f16::datum_type() {
        Values::F16(plain.as_slice::<f16>()?)
    } else if dt == f64::datum_type() {
        Values::F64(plain.as_slice::<f64>()?)
    } else {
        bail!("the network computed {dt:?} values where floats were expected")
    })
}

impl TractExecutor {
    /// Copies `input` into the reused input tensor (a new one only if
    /// tract still holds the last, or the first time).
    fn input(&mut self, input: &InputBuffer) -> Result<TValue> {
        if self.tensor.as_mut().is_none_or(|t| Arc::get_mut(t).is_none()) {
            let t = match self.datum {
                Datum::F32 => Tensor::zero::<f32>(&self.shape)?,
                Datum::U8 => Tensor::zero::<u8>(&self.shape)?,
            };
            self.tensor = Some(Arc::new(t));
        }
        let shared = self.tensor.as_mut().context("set above")?;
        let tensor = Arc::get_mut(shared).context("checked above: not shared")?;
        let mut plain = tensor.try_as_plain_ram_mut()?;
        match input {
            InputBuffer::F32(v) => plain.as_slice_mut::<f32>()?.copy_from_slice(v),
            InputBuffer::U8(v) => plain.as_slice_mut::<u8>()?.copy_from_slice(v),
        }
        Ok(TValue::from_const(Arc::clone(shared)))
    }
}

impl Execute for TractExecutor {
    fn execute(&mut self, input: &InputBuffer, visit: &mut Visit<'_>) -> Result<()> {
        let tensor = self.input(input)?;
        let result = self.state.run(tvec!(tensor)).context("inference failed")?;
        for (i, t) in result.iter().enumerate() {
            visit(i, t.shape(), values(t)?)?;
        }
        Ok(())
    }

    /// Where tract spends the time: every node of the optimised plan timed
    /// over `runs` inferences of `input` (tract's own plan executor, with
    /// a timing wrapper around its `eval`), as `(node name, operator,
    /// median µs)`, slowest first. For profiling (`examples/tract_profile.rs`),
    /// not the hot path.
    fn profile(&mut self, input: &InputBuffer, runs: usize) -> Result<Vec<(String, String, f64)>> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::{Graph, LoadOptions};

    #[test]
    fn float16_and_float64_results_are_read_as_such() {
        let map = Tensor::from_shape(&[1, 2], &[f16::from_f32(1.5), f16::from_f32(-2.0)]).unwrap();
        assert!(matches!(values(&map).unwrap(), Values::F16(v) if v.len() == 2));
        let f64s = Tensor::from_shape(&[1, 2], &[0.25f64, -3.0]).unwrap();
        assert!(matches!(values(&f64s).unwrap(), Values::F64(&[0.25, -3.0])));
        let ints = Tensor::from_shape(&[1, 2], &[1i64, 2]).unwrap();
        assert!(values(&ints).is_err());
    }

    #[test]
    fn an_executor_reuses_its_input_tensor() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/uint8_input.onnx");
        let graph = Graph::load(&path, &LoadOptions::default()).unwrap();
        let outlet = graph.logits.outlet;
        let shape = graph.input.shape();
        let plan = TractPlan::new(graph.model, &[outlet], &path, false, (shape, Datum::U8)).unwrap();
        let mut exec = TractExecutor {
            state: plan.plan.spawn().unwrap(),
            tensor: None,
            shape,
            datum: Datum::U8,
        };
        let mut tensors = Vec::new();
        for v in [7u8, 200, 7] {
            exec.execute(&InputBuffer::U8(vec![v; 28 * 28]), &mut |_, _, _| Ok(()))
                .unwrap();
            let t = exec.tensor.as_ref().unwrap();
            assert_eq!(Arc::strong_count(t), 1, "tract keeps no reference to the input");
            tensors.push(Arc::as_ptr(t));
        }
        assert!(tensors.iter().all(|&t| t == tensors[0]), "one input tensor");
    }
}
