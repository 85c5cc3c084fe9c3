//! Which axis of a 4-D activation holds the channels.
//!
//! ONNX's convolution, pooling and normalisation operators are defined on
//! N×C×H×W, so their outputs have channels on axis 1. Networks exported
//! from TensorFlow/Keras (tf2onnx) keep their activations N×H×W×C between
//! `Transpose` nodes around every convolution. Averaging such a map over
//! axes 2 and 3 averages over W and C, not over H and W: wrong features
//! that look plausible. So the channel axis is followed through the graph
//! from what is known (the input's layout, the NCHW operators) through
//! transposes and the operators that keep their input's axes; where it
//! cannot be known (after a Reshape, a MatMul, …) it is left unknown and
//! such a tensor is never pooled.

use std::collections::HashMap;
use tract_onnx::pb;

/// Operators whose 4-D outputs are N×C×H×W by the ONNX specification.
const NCHW: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "ConvInteger",
    "QLinearConv",
    "MaxPool",
    "AveragePool",
    "LpPool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "GlobalLpPool",
    "BatchNormalization",
    "InstanceNormalization",
    "LRN",
    "DepthToSpace",
    "SpaceToDepth",
    "MaxRoiPool",
    "MaxUnpool",
];

/// Operators whose output keeps the axes of their (4-D) inputs:
/// element-wise maths, activations, padding, slicing, resampling.
const KEEPS_AXES: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "Ceil",
    "Celu",
    "Clip",
    "Cast",
    "CastLike",
    "Concat",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Floor",
    "Gelu",
    "Greater",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "LeakyRelu",
    "Less",
    "Log",
    "Max",
    "Mean",
    "Min",
    "Mish",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pad",
    "Pow",
    "PRelu",
    "QuantizeLinear",
    "Reciprocal",
    "Relu",
    "Resize",
    "Round",
    "Selu",
    "Sigmoid",
    "Sign",
    "Sin",
    "Cos",
    "Slice",
    "Softplus",
    "Softsign",
    "Split",
    "Sqrt",
    "Sub",
    "Sum",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "Upsample",
    "Where",
];

/// Reductions keep the axes with `keepdims = 1` (their default).
const REDUCE: &[&str] = &[
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceSum",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSumExp",
    "ReduceSumSquare",
];

fn int_attr(n: &pb::NodeProto, name: &str) -> Option<i64> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn ints_attr<'n>(n: &'n pb::NodeProto, name: &str) -> Option<&'n [i64]> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.as_slice())
}

/// Channel axis of every tensor where it is known, by tensor name.
/// `inputs` gives the graph inputs' channel axes; `rank` tells a tensor's
/// rank (from tract's shape analysis), since only 4-D tensors have one.
pub(crate) fn channel_axes(
    graph: &pb::GraphProto,
    inputs: &[(&str, usize)],
    rank: impl Fn(&str) -> Option<usize>,
) -> HashMap<String, usize> {
    let mut axes: HashMap<String, usize> = inputs.iter().map(|&(n, a)| (n.to_string(), a)).collect();
    for node in &graph.node {
        let op = node.op_type.as_str();
        let known: Vec<usize> = node
            .input
            .iter()
            .filter_map(|i| axes.get(i.as_str()).copied())
            .collect();
        let agreed = match known.split_first() {
            Some((&a, rest)) if rest.iter().all(|&b| b == a) => Some(a),
            _ => None,
        };
        let axis = if NCHW.contains(&op) {
            Some(1)
        } else if op == "Transpose" {
            // Output axis i is input axis perm[i]: find where the channels went.
            let from = node.input.first().and_then(|i| axes.get(i.as_str()).copied());
            match (from, ints_attr(node, "perm")) {
                (Some(c), Some(perm)) => perm.iter().position(|&p| p == c as i64),
                (Some(c), None) => Some(3 - c), // default perm reverses the axes
                _ => None,
            }
        } else if KEEPS_AXES.contains(&op) || (REDUCE.contains(&op) && int_attr(node, "keepdims") != Some(0))
        {
            agreed
        } else {
            None
        };
        if let Some(axis) = axis {
            for out in &node.output {
                if !out.is_empty() && rank(out) == Some(4) {
                    axes.insert(out.clone(), axis);
                }
            }
        }
    }
    axes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, input: &[&str], output: &str, perm: Option<Vec<i64>>) -> pb::NodeProto {
        pb::NodeProto {
            op_type: op.into(),
            input: input.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: perm
                .map(|p| {
                    vec![pb::AttributeProto {
                        name: "perm".into(),
                        ints: p,
                        ..Default::default()
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn follows_channels_through_tf2onnx_transposes() {
        let graph = pb::GraphProto {
            node: vec![
                node("Transpose", &["in"], "x0", Some(vec![0, 3, 1, 2])),
                node("Conv", &["x0", "w"], "c1", None),
                node("Transpose", &["c1"], "c1h", Some(vec![0, 2, 3, 1])),
                node("Relu", &["c1h"], "r1", None),
                node("Add", &["r1", "bias"], "a1", None),
                node("Reshape", &["a1", "shape"], "flat", None),
                node("Relu", &["flat"], "r2", None),
            ],
            ..Default::default()
        };
        let rank = |t: &str| Some(if t == "bias" { 1 } else { 4 });
        let axes = channel_axes(&graph, &[("in", 3)], rank);
        assert_eq!(axes["x0"], 1);
        assert_eq!(axes["c1"], 1);
        assert_eq!(axes["c1h"], 3);
        assert_eq!(axes["r1"], 3);
        assert_eq!(axes["a1"], 3);
        assert!(!axes.contains_key("flat") && !axes.contains_key("r2"));
    }
}
