//! ONNX `Gemm` for tract in the element type of its operands.
//!
//! tract-onnx 0.23.9 expands `Gemm` into a matrix product plus `beta · C`
//! with `alpha` and `beta` as `f32` constants, so a float16 Gemm's bias term
//! comes out float32 and tract refuses to optimise the network ("Output
//! mismatch after rewiring expansion for output #0: expected 1,10,F16 got
//! 1,10,F32") — every network converted to float16 whose classifier is a
//! linear layer. This is tract's expansion (`tract-onnx`'s
//! `ops/math/gemm.rs`, MIT/Apache-2.0) with the two constants made in the
//! operands' type; [`super::load`] registers it for `Gemm`. For float32 it
//! builds the same graph as tract's.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops;

/// Builds a `Gemm` node (the signature of tract-onnx's operator register).
pub(crate) fn gemm(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let gemm = Gemm {
        alpha: node.get_attr_opt("alpha")?.unwrap_or(1.),
        beta: node.get_attr_opt("beta")?.unwrap_or(1.),
        trans_a: node.get_attr_opt("transA")?.unwrap_or(false),
        trans_b: node.get_attr_opt("transB")?.unwrap_or(false),
    };
    Ok((expand(gemm), vec![]))
}

/// `alpha · A·B + beta · C` (`A`, `B` transposed as asked).
#[derive(Debug, Clone)]
struct Gemm {
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
}

impl Gemm {
    /// A scalar constant of `value` in `dt`, of `wire`'s rank, multiplying `wire`.
    fn scaled(model: &mut TypedModel, name: String, value: f32, wire: OutletId) -> TractResult<OutletId> {
        let fact = model.outlet_fact(wire)?.clone();
        let constant = tensor0(value)
            .cast_to_dt(fact.datum_type)?
            .into_owned()
            .broadcast_into_rank(fact.rank())?;
        let constant = model.add_const(format!("{name}.cst"), constant)?;
        Ok(model.wire_node(name, ops::math::mul(), &[constant, wire])?[0])
    }
}

impl Expansion for Gemm {
    fn name(&self) -> StaticName {
        "Gemm".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        if inputs.len() < 2 {
            bail!(
                "Wrong input number. Rules expect at least 2, node has {}.",
                inputs.len()
            );
        }
        if inputs.len() == 3 {
            s.equals(&inputs[2].datum_type, &outputs[0].datum_type)?;
        }
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&inputs[1].rank, 2)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].rank, 2)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        s.equals(&inputs[1].datum_type, &outputs[0].datum_type)?;
        let (ca, ra) = if self.trans_a { (0, 1) } else { (1, 0) };
        let (cb, rb) = if self.trans_b { (0, 1) } else { (1, 0) };
        s.equals(&inputs[0].shape[ra], &outputs[0].shape[0])?;
        s.equals(&inputs[0].shape[ca], &inputs[1].shape[rb])?;
        s.equals(&inputs[1].shape[cb], &outputs[0].shape[1])?;
        Ok(())
    }

    fn wire(&self, name: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let (a, b, c) = (inputs[0], inputs[1], inputs.get(2));
        let axes = AxesMapping::for_numpy_matmul(2, self.trans_a, self.trans_b, false)?;
        let dt = model.outlet_fact(a)?.datum_type;
        let mut wire = model.wire_node(format!("{name}.ab"), EinSum::new(axes, dt), [a, b].as_ref())?[0];
        if self.alpha != 1.0 {
            wire = Gemm::scaled(model, format!("{name}.alpha_ab"), self.alpha, wire)?;
        }
        if let (true, Some(&c)) = (self.beta != 0.0, c) {
            let mut c = c;
            while model.outlet_fact(wire)?.rank() > model.outlet_fact(c)?.rank() {
                let rank = model.outlet_fact(c)?.rank();
                c = model.wire_node(
                    format!("{name}.c_add_axis_{rank}"),
                    tract_onnx::tract_core::ops::change_axes::AxisOp::Add(0),
                    &[c],
                )?[0];
            }
            let beta_c = Gemm::scaled(model, format!("{name}.beta_c"), self.beta, c)?;
            wire = model.wire_node(name, ops::math::add(), &[wire, beta_c])?[0];
        }
        Ok(tvec!(wire))
    }
}
