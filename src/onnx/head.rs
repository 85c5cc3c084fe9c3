//! The classifier's final linear layer `z = W f + b`, for the OOD detectors
//! that recompute the logits from modified penultimate features (ReAct, Sun,
//! Guo & Li, NeurIPS 2021; ASH, Djurisic et al., ICLR 2023; ViM, Wang et
//! al., CVPR 2022): the node that makes the logits, `W` and `b` from its
//! constant inputs (the ONNX initialisers), and the tensor `f` it reads.
//!
//! Where the layer is ([`Site`]) is found when the graph is loaded; `W` and
//! `b` are read only when asked for ([`Graph::linear_head`]).

use super::graph::{Graph, Tap};
use super::load::node_name;
use crate::model::wire::Pooling;
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// Operators between the linear layer and the logits, or between a pooled
/// map and `f`, that keep the values in order (a `1×K×1×1` output flattened
/// to `1×K`) or copy them (`Dropout` is the identity at inference).
const RESHAPES: &[&str] = &[
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "Dropout",
];

/// Operators that copy their input at inference, looked through from the
/// linear layer's input to the tensor `f` that is tapped.
const COPIES: &[&str] = &["Identity", "Dropout"];

/// The classifier's final linear layer `z = W f + b`, read from the ONNX
/// graph: the logits are `W f + b` for the penultimate feature vector `f`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearHead {
    /// Where it came from, for the user: the node(s), the initialisers and
    /// Gemm's attributes, e.g. `Gemm node "/fc/Gemm" (W = fc.weight, transB
    /// = 1; b = fc.bias), input "/Flatten_output_0"`.
    pub about: String,
    /// The ONNX node that multiplies by `W` (a Gemm or a MatMul).
    pub node: String,
    /// `K`, the number of classes (rows of `W`).
    pub classes: usize,
    /// `d`, the length of `f` (columns of `W`).
    pub dim: usize,
    /// `W`, `K × d` row-major, with Gemm's `alpha` and `transB` applied.
    pub weight: Vec<f32>,
    /// `b`, `K` values, with Gemm's `beta` applied and a one-value bias
    /// broadcast; zeros for a MatMul without an Add.
    pub bias: Vec<f32>,
    /// The tensor `f`: the linear layer's input, looked through `Identity`
    /// and `Dropout` (a `1×d` vector).
    pub input: String,
    /// The name to tap `f` by ([`Graph::find`] finds it).
    pub input_tap: String,
    /// When `f` is the global average of a 4-D map (a `GlobalAveragePool`,
    /// or a `ReduceMean` over H and W, then reshapes): that map's tensor
    /// name and the tap pooling that computes `f` from it.
    pub pooled_from: Option<(String, Pooling)>,
}

/// Where the final linear layer is in the graph (found at load time).
#[derive(Debug, Clone)]
pub(crate) struct Site {
    about: String,
    node: String,
    /// The constant holding `W` (or `Wᵀ`) and Gemm's `alpha`.
    weight: (OutletId, f32),
    /// The constant is stored `d × K` (Gemm without `transB`, MatMul).
    transposed: bool,
    /// The constant holding `b` and Gemm's `beta`.
    bias: Option<(OutletId, f32)>,
    input: String,
    input_tap: String,
    dim: usize,
    pooled_from: Option<(String, Pooling)>,
}

/// The parts of a loaded graph [`locate`] reads.
pub(crate) struct Context<'a> {
    /// tract's analysed graph (constants have values).
    pub model: &'a InferenceModel,
    /// Every labelled outlet by ONNX tensor name.
    pub outlets: &'a HashMap<String, OutletId>,
    /// The ONNX node making each tensor.
    pub producer: &'a HashMap<&'a str, &'a pb::NodeProto>,
    /// The candidate taps.
    pub taps: &'a [Tap],
}

fn attr<'n>(n: &'n pb::NodeProto, name: &str) -> Option<&'n pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

impl Context<'_> {
    fn made(&self, tensor: &str) -> Option<&pb::NodeProto> {
        self.producer.get(tensor).copied()
    }

    /// tract's outlet feeding input `i` of ONNX node `n` (tract skips the
    /// empty names of omitted optional inputs).
    fn input_outlet(&self, n: &pb::NodeProto, i: usize) -> Option<OutletId> {
        n.input.get(i).filter(|s| !s.is_empty())?;
        let at = n.input[..i].iter().filter(|s| !s.is_empty()).count();
        let id = self.outlets.get(n.output.first()?)?.node;
        self.model.node(id).inputs.get(at).copied()
    }

    /// Input `i` of `n` when it is a constant (an initialiser or folded).
    fn constant(&self, n: &pb::NodeProto, i: usize) -> Option<(OutletId, Arc<Tensor>)> {
        let o = self.input_outlet(n, i)?;
        let value = self.model.outlet_fact(o).ok()?.value.concretize()?;
        Some((o, value))
    }

    /// Follows `tensor` back through the operators in `through`.
    fn back<'s>(&'s self, mut tensor: &'s str, through: &[&str]) -> &'s str {
        while let Some(n) = self
            .made(tensor)
            .filter(|n| through.contains(&n.op_type.as_str()))
        {
            match n.input.first() {
                Some(i) => tensor = i,
                None => break,
            }
        }
        tensor
    }

    /// The map whose global average `f` is, with the tap pooling that computes it.
    fn pooled_from(&self, f: &str) -> Option<(String, Pooling)> {
        let n = self.made(self.back(f, RESHAPES))?;
        let map = n.input.first()?;
        let pooling = self.taps.iter().find(|t| &t.tensor == map)?.pooling?;
        let spatial: &[i64] = match pooling {
            Pooling::GlobalAverageNchw => &[2, 3],
            Pooling::GlobalAverageNhwc => &[1, 2],
            _ => return None,
        };
        let averages = match n.op_type.as_str() {
            "GlobalAveragePool" => pooling == Pooling::GlobalAverageNchw,
            "ReduceMean" => {
                let mut axes: Vec<i64> = match attr(n, "axes") {
                    Some(a) => a.ints.clone(),
                    None => {
                        let t = self.constant(n, 1)?.1;
                        let t = t.cast_to::<i64>().ok()?;
                        let plain = t.try_as_plain_ram().ok()?;
                        plain.as_slice::<i64>().ok()?.to_vec()
                    }
                };
                axes.iter_mut().for_each(|a| *a = a.rem_euclid(4));
                axes.sort_unstable();
                axes == spatial
            }
            _ => false,
        };
        averages.then(|| (map.clone(), pooling))
    }
}

/// The linear layer's multiplication: Gemm (with its bias) or MatMul.
struct Product<'n> {
    node: &'n pb::NodeProto,
    weight: (OutletId, f32),
    transposed: bool,
    bias: Option<(OutletId, f32)>,
    about: String,
}

fn gemm<'n>(cx: &Context, n: &'n pb::NodeProto) -> Result<Product<'n>, String> {
    let name = node_name(n);
    let int = |a: &str| attr(n, a).map_or(0, |a| a.i);
    let float = |a: &str| attr(n, a).map_or(1.0, |a| a.f);
    if int("transA") != 0 {
        return Err(format!(
            "its Gemm node {name:?} has transA = 1, so its input is not a feature row"
        ));
    }
    let weight = cx
        .constant(n, 1)
        .ok_or_else(|| format!("the weights of its Gemm node {name:?} are computed, not an initialiser"))?;
    let bias = match n.input.get(2).filter(|s| !s.is_empty()) {
        None => None,
        Some(c) => Some(cx.constant(n, 2).ok_or_else(|| {
            format!("the bias {c:?} of its Gemm node {name:?} is computed, not an initialiser")
        })?),
    };
    let (alpha, beta, trans_b) = (float("alpha"), float("beta"), int("transB"));
    let scaled = |v: f32, what: &str| {
        if v == 1.0 {
            String::new()
        } else {
            format!(", {what} = {v}")
        }
    };
    let about = format!(
        "Gemm node {name:?} (W = {}, transB = {trans_b}{}; b = {}{})",
        n.input[1],
        scaled(alpha, "alpha"),
        n.input
            .get(2)
            .filter(|s| !s.is_empty())
            .map_or("none", String::as_str),
        scaled(beta, "beta")
    );
    Ok(Product {
        node: n,
        weight: (weight.0, alpha),
        transposed: trans_b == 0,
        bias: bias.map(|b| (b.0, beta)),
        about,
    })
}

fn matmul<'n>(cx: &Context, n: &'n pb::NodeProto) -> Result<Product<'n>, String> {
    let name = node_name(n);
    let weight = cx.constant(n, 1).ok_or_else(|| {
        format!("its MatMul node {name:?} does not multiply by a constant (an initialiser)")
    })?;
    Ok(Product {
        node: n,
        weight: (weight.0, 1.0),
        transposed: true,
        bias: None,
        about: format!("MatMul node {name:?} (W = {}, transposed)", n.input[1]),
    })
}

/// An `Add` of a constant bias to a MatMul's product.
fn add<'a>(cx: &'a Context, n: &'a pb::NodeProto) -> Result<Product<'a>, String> {
    let name = node_name(n);
    let fail = || format!("its Add node {name:?} does not add a constant bias to a MatMul");
    let (product, (bias, _)) = match (cx.constant(n, 0), cx.constant(n, 1)) {
        (None, Some(b)) => (0, b),
        (Some(b), None) => (1, b),
        _ => return Err(fail()),
    };
    let m = n.input.get(product).and_then(|t| cx.made(t));
    let m = m.filter(|m| m.op_type == "MatMul").ok_or_else(fail)?;
    let mut p = matmul(cx, m)?;
    p.bias = Some((bias, 1.0));
    p.about = format!("{} and Add node {name:?} (b = {})", p.about, n.input[1 - product]);
    Ok(p)
}

/// Finds the final linear layer of a graph whose logits are `logits`: the
/// node making them (through reshapes) must be a Gemm, or a MatMul followed
/// by an Add (or alone), multiplying a tappable `1×d` vector by a constant.
/// The error says what was found instead.
pub(crate) fn locate(cx: &Context, logits: &str) -> Result<Site, String> {
    let tensor = cx.back(logits, RESHAPES);
    let n = cx
        .made(tensor)
        .ok_or_else(|| format!("the logits {logits:?} are not computed by any node"))?;
    let p = match n.op_type.as_str() {
        "Gemm" => gemm(cx, n)?,
        "MatMul" => matmul(cx, n)?,
        "Add" => add(cx, n)?,
        op => {
            return Err(format!(
                "the logits {logits:?} are made by node {:?} ({op}), not by a linear layer \
                 (a Gemm, or a MatMul followed by an Add)",
                node_name(n)
            ))
        }
    };
    let x = p.node.input.first().map_or("", String::as_str);
    let input = cx.back(x, COPIES);
    let tap = cx
        .taps
        .iter()
        .find(|t| t.tensor == input && t.pooling == Some(Pooling::Vector))
        .ok_or_else(|| {
            format!(
                "the input {input:?} of its linear layer ({}) is not a 1×d feature vector",
                p.about
            )
        })?;
    Ok(Site {
        about: format!("{}, input {input:?}", p.about),
        node: node_name(p.node).to_string(),
        weight: p.weight,
        transposed: p.transposed,
        bias: p.bias,
        input: input.to_string(),
        input_tap: tap.name.clone(),
        dim: tap.channels(),
        pooled_from: cx.pooled_from(input),
    })
}

/// The finite `f32` values and shape of constant `o`.
fn floats(model: &InferenceModel, o: OutletId, what: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let t = model
        .outlet_fact(o)?
        .value
        .concretize()
        .ok_or_else(|| anyhow!("{what} is not a constant"))?;
    let f = t.cast_to::<f32>()?;
    let v = f.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
    anyhow::ensure!(
        v.iter().all(|x| x.is_finite()),
        "{what} holds a NaN or infinite value"
    );
    Ok((t.shape().to_vec(), v))
}

impl Site {
    /// Reads `W` and `b` (for `classes` classes) from the graph's constants.
    fn read(&self, model: &InferenceModel, classes: usize) -> Result<LinearHead> {
        let (shape, w) = floats(model, self.weight.0, "W")?;
        let (k, d) = match (shape.as_slice(), self.transposed) {
            (&[k, d], false) | (&[d, k], true) => (k, d),
            _ => return Err(anyhow!("W has shape {shape:?}, not a matrix")),
        };
        anyhow::ensure!(
            k == classes && d == self.dim,
            "W is {k}×{d} (classes × features) but the logits have {classes} classes and the \
             input {} features",
            self.dim
        );
        let alpha = self.weight.1;
        let weight = (0..k * d)
            .map(|i| {
                let (c, j) = (i / d, i % d);
                alpha
                    * if self.transposed {
                        w[j * k + c]
                    } else {
                        w[c * d + j]
                    }
            })
            .collect();
        let bias = match self.bias {
            None => vec![0.0; k],
            Some((o, beta)) => match floats(model, o, "b")?.1[..] {
                [one] => vec![beta * one; k],
                ref b if b.len() == k => b.iter().map(|v| beta * v).collect(),
                ref b => return Err(anyhow!("b has {} values for {k} classes", b.len())),
            },
        };
        Ok(LinearHead {
            about: self.about.clone(),
            node: self.node.clone(),
            classes: k,
            dim: d,
            weight,
            bias,
            input: self.input.clone(),
            input_tap: self.input_tap.clone(),
            pooled_from: self.pooled_from.clone(),
        })
    }
}

impl Graph {
    /// The classifier's final linear layer `z = W f + b` (`W`: classes ×
    /// d, `b`: classes), read from the node that makes the logits (through
    /// reshapes): a Gemm (its `alpha`, `beta` and `transB` applied) or a
    /// MatMul followed by an Add, whose weights are constants and whose
    /// input is a tappable `1×d` vector `f`. A network without one (a
    /// convolution head, computed weights) is an error naming the network
    /// and what makes its logits.
    pub fn linear_head(&self) -> Result<LinearHead> {
        let path = self.path.display();
        let site = self
            .head
            .as_ref()
            .map_err(|why| anyhow!("{path}: no final linear layer: {why}"))?;
        site.read(&self.model, self.logits.classes)
            .map_err(|e| anyhow!("{path}: the final linear layer {}: {e}", site.about))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(weight: (OutletId, f32), transposed: bool, bias: Option<(OutletId, f32)>) -> Site {
        Site {
            about: "test".into(),
            node: "fc".into(),
            weight,
            transposed,
            bias,
            input: "f".into(),
            input_tap: "f".into(),
            dim: 3,
            pooled_from: None,
        }
    }

    #[test]
    fn w_and_b_follow_trans_b_alpha_beta_and_broadcasting() {
        let mut m = InferenceModel::default();
        // Stored d × K (Gemm without transB, MatMul) and K × d (transB = 1).
        let w_dk = m
            .add_const("w_dk", tensor2(&[[1f32, 2.], [3., 4.], [5., 6.]]))
            .unwrap();
        let w_kd = m
            .add_const("w_kd", tensor2(&[[1f32, 3., 5.], [2., 4., 6.]]))
            .unwrap();
        let one = m.add_const("one", tensor1(&[0.5f32])).unwrap();
        let two = m.add_const("two", tensor1(&[0.5f32, -1.])).unwrap();
        let want = vec![2., 6., 10., 4., 8., 12.]; // alpha = 2 times the 2 × 3 matrix [[1, 3, 5], [2, 4, 6]]
        let h = site((w_dk, 2.0), true, Some((one, 3.0))).read(&m, 2).unwrap();
        assert_eq!(
            (h.weight, h.bias, h.classes, h.dim),
            (want.clone(), vec![1.5, 1.5], 2, 3)
        );
        let h = site((w_kd, 2.0), false, Some((two, 1.0))).read(&m, 2).unwrap();
        assert_eq!((h.weight, h.bias), (want, vec![0.5, -1.0]));
        assert_eq!(
            site((w_kd, 1.0), false, None).read(&m, 2).unwrap().bias,
            vec![0.0; 2]
        );
        let err = site((w_kd, 1.0), false, None)
            .read(&m, 3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("W is 2×3") && err.contains("3 classes"), "{err}");
        let err = site((w_dk, 1.0), false, None)
            .read(&m, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("W is 3×2"), "{err}");
    }
}
