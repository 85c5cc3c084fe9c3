//! How a network turns its class logits into the output it gives, read back
//! from that output once, from the ONNX graph's nodes.
//!
//! An output is the logits only when nothing on the way from the network's
//! last linear layer ([`LINEAR`]: `Gemm`, `MatMul`, `Conv`, …, or the
//! pooling of a fully convolutional head, [`POOLS`]) changes what its
//! values mean: walking back from the output, every node must be one
//! known to keep logits as logits ([`keeps_logits`]) — reshapes, copies,
//! casts and transposes ([`PASSES`]), selections and joins of the values
//! (`Slice`, `Gather`, `Split`, `Concat`), sums and differences of such tensors, and the affine ops that belong to
//! the layer (`BatchNormalization`; `Add`/`Sub` of a constant, `Mul`/`Div`
//! by positive constants). No list of the operators that make
//! probabilities can be complete (a sigmoid is also `0.5 + 0.5·tanh(x/2)`,
//! a log-sigmoid `−Softplus(−x)`): the rule names what keeps logits instead.
//!
//! The output is read back to its logits when it is exactly one of these
//! forms, through reshapes, copies, casts ([`PASSES`]) and `Mul`/`Div`/
//! `Add`/`Sub` by one positive constant (a percentage is `100 ×` the
//! probabilities), keeping the `K` classes all along:
//!
//! * a `Softmax` or `LogSoftmax` over the classes, or `Exp` of such a
//!   `LogSoftmax` ([`Probabilities::Softmax`]: its input is the logits);
//! * a softmax built from separate nodes, `Exp(x) / ReduceSum(Exp(x))` over
//!   the classes ([`Probabilities::Softmax`]: `x` is the logits, or `z` when
//!   `x = z − ReduceMax(z)`, the numerically stable form);
//! * a `Sigmoid` ([`Probabilities::Sigmoid`]: independent per-class
//!   probabilities).
//!
//! Any other output — one with any other node on the way (`Tanh`, `Relu`,
//! `Softplus`, `Neg`, `Log`, `Clip`, `LpNormalization`, a `Div` by a computed
//! tensor, …), or one computed from probabilities by something that is not
//! read through (a node that changes the number of classes, a scale the
//! network computes, a `Softmax` over another axis) — is
//! [`Probabilities::Unknown`]: its meaning is not known, so neither its
//! class nor its confidence is (both null: the top of an output that falls
//! as probability rises, `1 − p` or `−log p`, is the least likely class),
//! and one note names the node.

use super::load::node_name;
use super::logits::{Probabilities, Tensors};
use std::collections::{HashSet, VecDeque};
use tract_onnx::pb;

/// The class logits a network's output was read back to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ending {
    /// The logits tensor.
    pub tensor: String,
    /// `K`.
    pub classes: usize,
    /// How the network turns them into its output.
    pub probabilities: Probabilities,
    /// What was read through, or why nothing could be, for the user; `None`
    /// when the output is the logits.
    pub note: Option<String>,
}

/// Operators that pass a class vector's values on unchanged.
pub(crate) const PASSES: &[&str] = &[
    "Identity",
    "Dropout",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Cast",
    "CastLike",
];

/// Operators whose output is probabilities (or, for `Exp`, unnormalised
/// ones): an output computed from one is never taken as logits, and the
/// note names the probability it is computed from.
const PROBABILITIES: &[&str] = &[
    "Softmax",
    "LogSoftmax",
    "Sigmoid",
    "HardSigmoid",
    "Hardmax",
    "Exp",
];

/// Operators that compute new values from a whole vector (the network's
/// last linear layer): the walk back from an output stops there.
const LINEAR: &[&str] = &[
    "Gemm",
    "MatMul",
    "Conv",
    "ConvTranspose",
    "Einsum",
    "MatMulInteger",
];

/// Poolings that make a class vector from per-position class maps (a
/// fully convolutional head: torchvision's SqueezeNet is `Conv → Relu →
/// GlobalAveragePool`): the walk back stops there as at a linear layer, the
/// activations before them being the maps' (probabilities behind them are
/// still found).
const POOLS: &[&str] = &[
    "GlobalAveragePool",
    "GlobalMaxPool",
    "AveragePool",
    "ReduceMean",
    "ReduceMax",
];

/// Operators that keep logits as logits whatever their other inputs: the
/// walk follows their computed float inputs (beyond [`PASSES`], and the
/// affine ops [`Tensors::keeps_logits`] checks).
const KEEPS: &[&str] = &[
    "Transpose",
    "Slice",
    "Gather",
    "Split",
    "Concat",
    "ReduceSum",
    "Sum",
    "Mean",
    "BatchNormalization",
];

/// Operators whose output (at that slot) holds integer positions or sizes:
/// a tensor computed from one names classes or positions, not their scores.
const INDICES: &[(&str, usize, &str)] = &[
    ("TopK", 1, "indices"),
    ("ArgMax", 0, "indices"),
    ("ArgMin", 0, "indices"),
    ("NonZero", 0, "indices"),
    ("NonMaxSuppression", 0, "selected indices"),
    ("Shape", 0, "shape"),
    ("Size", 0, "size"),
];

impl Tensors<'_> {
    /// The computed input of `n` and the one value of its constant input,
    /// for a binary operator with exactly one constant operand whose values
    /// are all equal (`(index of the computed input, value)`).
    fn scalar_operand(&self, n: &pb::NodeProto) -> Option<(usize, f64)> {
        let [a, b] = &n.input[..] else { return None };
        let value = |t: &str| -> Option<f64> {
            let v = (self.constant)(t)?;
            let first = *v.first()?;
            v.iter().all(|&x| x == first).then_some(first as f64)
        };
        match (value(a), value(b)) {
            (None, Some(c)) => Some((0, c)),
            (Some(c), None) => Some((1, c)),
            _ => None,
        }
    }

    /// Why binary node `n` is not read through as a scale or shift, for
    /// the note (empty for other operators).
    fn not_a_scale(&self, n: &pb::NodeProto) -> &'static str {
        if !["Mul", "Div", "Add", "Sub"].contains(&n.op_type.as_str()) {
            return "";
        }
        let constants = n.input.iter().filter(|i| (self.constant)(i).is_some()).count();
        match (constants, self.scalar_operand(n)) {
            (0, _) => " by a computed tensor",
            (_, None) => " by a constant that differs between classes",
            (_, Some(_)) => ", which does not keep the order of the values",
        }
    }

    /// The node producing `t` if it is `op`.
    fn made_by(&self, t: &str, op: &str) -> Option<&pb::NodeProto> {
        self.producer.get(t).copied().filter(|n| n.op_type == op)
    }

    /// Whether `t` holds one value per frame (a sum or maximum over a
    /// whole class vector).
    fn one_value(&self, t: &str) -> bool {
        (self.shape)(t).is_some_and(|s| s.iter().product::<usize>() == 1)
    }

    /// The inputs to walk on if node `n` keeps logits as logits ([`PASSES`],
    /// [`KEEPS`], `Add`/`Sub` of constants or of two such tensors, `Mul`/
    /// `Div` by constants whose values are all positive); `None` when it
    /// may change what the values mean.
    fn keeps_logits<'n>(&self, n: &'n pb::NodeProto) -> Option<Vec<&'n String>> {
        let op = n.op_type.as_str();
        let computed = |i: &&String| !i.is_empty() && (self.constant)(i).is_none() && (self.float)(i);
        let positive = |i: &String| (self.constant)(i).is_some_and(|v| v.iter().all(|&x| x > 0.0));
        let data = match op {
            _ if PASSES.contains(&op) || KEEPS.contains(&op) => match op {
                "Concat" | "Sum" | "Mean" => n.input.iter().collect(),
                _ => n.input.first().into_iter().collect(),
            },
            "Add" => n.input.iter().collect(),
            // c − x reverses the order.
            "Sub" if (self.constant)(n.input.first()?).is_none() => n.input.iter().collect(),
            "Mul" => match &n.input[..] {
                [a, b] if positive(b) => vec![a],
                [a, b] if positive(a) => vec![b],
                _ => return None,
            },
            "Div" => match &n.input[..] {
                [a, b] if positive(b) => vec![a],
                _ => return None,
            },
            _ => return None,
        };
        Some(data.into_iter().filter(computed).collect())
    }

    /// Whether node `n` makes probabilities: an operator of
    /// [`PROBABILITIES`], or a `Div` of a tensor by its own sum.
    fn makes_probabilities(&self, n: &pb::NodeProto) -> bool {
        if PROBABILITIES.contains(&n.op_type.as_str()) {
            return true;
        }
        let [a, s] = &n.input[..] else { return false };
        n.op_type == "Div"
            && self.producer.get(s.as_str()).is_some_and(|r| {
                ["ReduceSum", "ReduceL1"].contains(&r.op_type.as_str()) && r.input.first() == Some(a)
            })
    }
}

/// `output = scale · p + shift` for the probability `p` a walk started from.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Affine {
    scale: f64,
    shift: f64,
}

impl Affine {
    const IDENTITY: Affine = Affine {
        scale: 1.0,
        shift: 0.0,
    };

    /// One step back through node `op` (`Mul`, `Div`, `Add`, `Sub`) whose
    /// input `x` is computed and whose other input is the constant `c`:
    /// that node computes `a·y + b` from its input `y`, so the output is
    /// `scale·(a·y + b) + shift`. `None` unless it keeps the values' order
    /// (`a > 0`).
    fn through(self, op: &str, x: usize, c: f64) -> Option<Affine> {
        let (a, b) = match (op, x) {
            ("Mul", _) => (c, 0.0),
            ("Div", 0) => (1.0 / c, 0.0),
            ("Add", _) => (1.0, c),
            ("Sub", 0) => (1.0, -c),
            _ => return None, // c / y and c − y reverse the order
        };
        (a > 0.0 && a.is_finite() && b.is_finite()).then_some(Affine {
            scale: self.scale * a,
            shift: self.scale * b + self.shift,
        })
    }

    /// `of` as the output computes it from `p`, e.g. `100 × the Softmax of "z"`.
    fn applied(self, of: &str) -> String {
        let mut text = of.to_string();
        if self.scale != 1.0 {
            text = format!("{} × {text}", self.scale as f32);
        }
        if self.shift != 0.0 {
            text = format!("{text} {}", Affine::signed(self.shift, true));
        }
        text
    }

    /// `+ b` or `− |b|` (`− b` or `+ |b|` when subtracted).
    fn signed(b: f64, added: bool) -> String {
        match (b > 0.0) == added {
            true => format!("+ {}", b.abs() as f32),
            false => format!("− {}", b.abs() as f32),
        }
    }

    /// How the probability is had back from the output, e.g. `its output / 100`.
    fn inverse(self) -> String {
        let shifted = format!("its output {}", Affine::signed(self.shift, false));
        match (self.scale != 1.0, self.shift != 0.0) {
            (false, false) => "its output".into(),
            (true, false) => format!("its output / {}", self.scale as f32),
            (false, true) => shifted,
            (true, true) => format!("({shifted}) / {}", self.scale as f32),
        }
    }
}

/// Whether Softmax/LogSoftmax node `n` on a `shape` input normalises over
/// the class axis (opset 13 normalises along `axis`, default −1; earlier
/// opsets over every axis from `axis`, default 1, on).
fn over_classes(t: &Tensors, n: &pb::NodeProto, shape: &[usize], k: usize) -> bool {
    let rank = shape.len() as i64;
    let axis = n.attribute.iter().find(|a| a.name == "axis").map(|a| a.i);
    let axis = axis.unwrap_or(if t.opset >= 13 { -1 } else { 1 });
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return false;
    }
    let axis = axis as usize;
    if t.opset >= 13 {
        shape[axis] == k
    } else {
        shape[..axis].iter().product::<usize>() == 1
    }
}

/// Reads back from `output` (a float class-score vector of `k` classes) to
/// the logits and the network's probabilities (see the module docs).
pub(crate) fn ending(t: &Tensors, output: &str, k: usize) -> Ending {
    let mut at = output.to_string();
    let mut affine = Affine::IDENTITY;
    while let Some(&n) = t.producer.get(at.as_str()) {
        let op = n.op_type.as_str();
        if let Some(e) = softmax_by_parts(t, output, n, k, affine) {
            return e;
        }
        if ["Softmax", "LogSoftmax", "Sigmoid"].contains(&op) {
            return probability(t, output, n, k, affine);
        }
        let next = if PASSES.contains(&op) {
            n.input.first().map(|x| (x, affine))
        } else {
            t.scalar_operand(n)
                .and_then(|(x, c)| Some((&n.input[x], affine.through(op, x, c)?)))
        };
        match next.filter(|(x, _)| t.classes(x) == Some(k)) {
            Some((x, a)) => (at, affine) = (x.clone(), a),
            None => return blocked(t, output, n, k),
        }
    }
    plain(output, k)
}

pub(crate) fn plain(output: &str, k: usize) -> Ending {
    Ending {
        tensor: output.to_string(),
        classes: k,
        probabilities: Probabilities::Softmax,
        note: None,
    }
}

/// The ending at Softmax, LogSoftmax or Sigmoid node `n`, reached from
/// `output` through `affine`.
fn probability(t: &Tensors, output: &str, n: &pb::NodeProto, k: usize, affine: Affine) -> Ending {
    let op = n.op_type.as_str();
    let name = node_name(n);
    let Some(x) = n.input.first().filter(|x| t.classes(x) == Some(k)) else {
        return unknown(
            output,
            k,
            format!("its {op} node {name:?} does not read a class-score vector"),
        );
    };
    if op != "Sigmoid" {
        let shape = (t.shape)(x).unwrap_or_default();
        if !over_classes(t, n, &shape, k) {
            return unknown(
                output,
                k,
                format!("its {op} node {name:?} does not normalise over the {k} classes of {x:?} {shape:?}"),
            );
        }
    }
    let kind = match op {
        "Sigmoid" => Probabilities::Sigmoid,
        _ => Probabilities::Softmax,
    };
    let of = format!("the {op} of {x:?}");
    read_back(output, (x, k, kind), &of, affine, op == "LogSoftmax")
}

/// The ending of an output that is `affine` applied to `of` (the
/// probabilities, or their logarithm when `log`) of the logits `x`.
fn read_back(
    output: &str,
    (x, k, kind): (&str, usize, Probabilities),
    of: &str,
    affine: Affine,
    log: bool,
) -> Ending {
    let meaning = match kind {
        Probabilities::Sigmoid => {
            "the network gives each class its own probability: the confidence is the sigmoid of the \
             top class's logit, the network's output for that class, not a softmax"
        }
        _ => "its softmax is the network's probabilities",
    };
    let note = if affine == Affine::IDENTITY {
        format!("{output:?} is {of}: using {x:?} as the logits ({meaning})")
    } else {
        let back = match log {
            true => format!("the exponential of {}", affine.inverse()),
            false => affine.inverse(),
        };
        format!(
            "{output:?} is {}: using {x:?} as the logits ({meaning}); the confidence is the \
             network's probability, {back}",
            affine.applied(of)
        )
    };
    Ending {
        tensor: x.to_string(),
        classes: k,
        probabilities: kind,
        note: Some(note),
    }
}

/// The ending when node `n` is a softmax built from separate nodes —
/// `Div(Exp(x), ReduceSum(Exp(x)))` over the `k` classes, or `Exp` of a
/// `LogSoftmax` — reached from `output` through `affine`; `None` for any
/// other node.
fn softmax_by_parts(
    t: &Tensors,
    output: &str,
    n: &pb::NodeProto,
    k: usize,
    affine: Affine,
) -> Option<Ending> {
    if n.op_type == "Exp" {
        let log = t.made_by(n.input.first()?, "LogSoftmax")?;
        let e = probability(t, output, log, k, affine);
        if e.probabilities == Probabilities::Unknown {
            return Some(e);
        }
        let of = format!("the Exp of the LogSoftmax of {:?}", e.tensor);
        return Some(read_back(
            output,
            (&e.tensor, k, e.probabilities),
            &of,
            affine,
            false,
        ));
    }
    let [num, den] = &n.input[..] else { return None };
    let exp = t.made_by(num, "Exp").filter(|_| n.op_type == "Div")?;
    let sum = t.made_by(den, "ReduceSum")?;
    let x = exp.input.first()?;
    if sum.input.first() != Some(num) || !t.one_value(den) || t.classes(x) != Some(k) {
        return None;
    }
    // exp(z − max z) / Σ exp(z − max z) is the softmax of z.
    let stable = t.made_by(x, "Sub").and_then(|s| {
        let [z, m] = &s.input[..] else { return None };
        let max = t.made_by(m, "ReduceMax")?;
        (max.input.first() == Some(z) && t.one_value(m) && t.classes(z) == Some(k)).then_some(z)
    });
    let logits = stable.unwrap_or(x);
    let of = format!(
        "the softmax of {logits:?} built from its Exp {:?}, ReduceSum {:?} and Div {:?} nodes",
        node_name(exp),
        node_name(sum),
        node_name(n)
    );
    Some(read_back(
        output,
        (logits, k, Probabilities::Softmax),
        &of,
        affine,
        false,
    ))
}

/// The ending of an output computed from the network's probabilities by
/// something that cannot be read through, `why`.
pub(crate) fn unknown(output: &str, k: usize, why: String) -> Ending {
    meaning_unknown(
        output,
        k,
        format!("is computed from the network's probabilities, but {why}"),
    )
}

/// The ending of an output whose meaning is not known: `output` `says`.
fn meaning_unknown(output: &str, k: usize, says: String) -> Ending {
    Ending {
        tensor: output.to_string(),
        classes: k,
        probabilities: Probabilities::Unknown,
        note: Some(format!(
            "{output:?} {says}: what its values mean is not known, so neither its class nor its \
             confidence is (both null; the LSGM score does not depend on them)"
        )),
    }
}

/// The ending when the walk from `output` stops at node `n`: the logits are
/// the output unless a probability lies behind `n`, or a node that may
/// change what logits mean lies between it and the last linear layer.
fn blocked(t: &Tensors, output: &str, n: &pb::NodeProto, k: usize) -> Ending {
    let Some(p) = probability_behind(t, n) else {
        return match not_keeping(t, n) {
            None => plain(output, k),
            Some(m) => meaning_unknown(
                output,
                k,
                format!(
                    "is computed from the network's last linear layer by its {} node {:?}{}, which \
                     is not known to keep logits as logits",
                    m.op_type,
                    node_name(m),
                    t.not_a_scale(m)
                ),
            ),
        };
    };
    let why = match std::ptr::eq(p, n) {
        true => format!(
            "its {} node {:?} ({}) cannot be read back to logits",
            n.op_type,
            node_name(n),
            match n.op_type.as_str() {
                "Div" => "a division by its own sum, which makes probabilities",
                "Exp" => "whose output is unnormalised probabilities",
                _ => "which makes probabilities",
            }
        ),
        false => format!(
            "its node {:?} ({}{}) after the {} node {:?} cannot be read through",
            node_name(n),
            n.op_type,
            t.not_a_scale(n),
            p.op_type,
            node_name(p)
        ),
    };
    unknown(output, k, why)
}

/// The node nearest the output, walking back from `n` (itself included) to
/// the last linear layer or pooling ([`POOLS`]) over every path, that is
/// not known to keep logits as logits ([`Tensors::keeps_logits`]); `None`
/// when every one does.
fn not_keeping<'a>(t: &Tensors<'a>, n: &'a pb::NodeProto) -> Option<&'a pb::NodeProto> {
    let mut queue = VecDeque::from([n]);
    let mut seen: HashSet<&str> = HashSet::new();
    while let Some(m) = queue.pop_front() {
        if LINEAR.contains(&m.op_type.as_str()) || POOLS.contains(&m.op_type.as_str()) {
            continue;
        }
        let Some(inputs) = t.keeps_logits(m) else {
            return Some(m);
        };
        for x in inputs {
            if let Some(&p) = t.producer.get(x.as_str()).filter(|_| seen.insert(x)) {
                queue.push_back(p);
            }
        }
    }
    None
}

/// The nearest node that makes probabilities, walking back from `n` (itself
/// included) through anything but a linear layer, over computed float
/// tensors (and casts of them); `None` when there is none.
fn probability_behind<'a>(t: &Tensors<'a>, n: &'a pb::NodeProto) -> Option<&'a pb::NodeProto> {
    let mut queue = VecDeque::from([n]);
    let mut seen: HashSet<&str> = HashSet::new();
    while let Some(m) = queue.pop_front() {
        if t.makes_probabilities(m) {
            return Some(m);
        }
        if LINEAR.contains(&m.op_type.as_str()) {
            continue;
        }
        for x in &m.input {
            if x.is_empty() || !seen.insert(x) || (t.constant)(x).is_some() {
                continue;
            }
            let Some(&p) = t.producer.get(x.as_str()) else {
                continue;
            };
            if (t.float)(x) || PASSES.contains(&p.op_type.as_str()) {
                queue.push_back(p);
            }
        }
    }
    None
}

/// What integer tensor `tensor` is computed from — `the indices of TopK node
/// "topk"` —, read back through copies, casts, constant offsets and scales
/// and constant lookup tables; `None` when it is not.
pub(crate) fn from_indices(t: &Tensors, tensor: &str) -> Option<String> {
    let mut at = tensor;
    loop {
        let n = *t.producer.get(at)?;
        let slot = n.output.iter().position(|o| o == at)?;
        let op = n.op_type.as_str();
        if let Some((_, _, what)) = INDICES.iter().find(|(o, s, _)| *o == op && *s == slot) {
            return Some(format!("the {what} of {op} node {:?}", node_name(n)));
        }
        let computed: Vec<&String> = n
            .input
            .iter()
            .filter(|i| !i.is_empty() && (t.constant)(i).is_none())
            .collect();
        let follows = PASSES.contains(&op) || ["Add", "Sub", "Mul", "Div", "Gather"].contains(&op);
        match computed[..] {
            [x] if follows => at = x,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn node(op: &str, input: &[&str], output: &str, axis: Option<i64>) -> pb::NodeProto {
        pb::NodeProto {
            op_type: op.into(),
            name: output.into(),
            input: input.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: axis
                .map(|i| {
                    vec![pb::AttributeProto {
                        name: "axis".into(),
                        i,
                        ..Default::default()
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    /// The ending of `out` in a graph of `nodes` whose computed tensors are
    /// float `shape` unless `shapes` says otherwise, and whose constants
    /// (`c…`) hold `constants`.
    fn read_shaped(
        nodes: &[pb::NodeProto],
        constants: &[(&str, Vec<f32>)],
        (shape, shapes): (&[usize], &[(&str, &[usize])]),
        opset: i64,
    ) -> Ending {
        let producer: HashMap<&str, &pb::NodeProto> =
            nodes.iter().map(|n| (n.output[0].as_str(), n)).collect();
        let constants: HashMap<&str, Vec<f32>> = constants.iter().cloned().collect();
        let shapes: HashMap<&str, &[usize]> = shapes.iter().copied().collect();
        let shape =
            |t: &str| (!constants.contains_key(t)).then(|| shapes.get(t).copied().unwrap_or(shape).to_vec());
        let tensors = Tensors {
            producer: &producer,
            shape: &shape,
            float: &|_| true,
            constant: &|t| constants.get(t).cloned(),
            opset,
        };
        let k = shape("out")
            .as_deref()
            .and_then(super::super::logits::classes)
            .unwrap();
        ending(&tensors, "out", k)
    }

    fn read(nodes: &[pb::NodeProto], constants: &[(&str, Vec<f32>)], shape: &[usize], opset: i64) -> Ending {
        read_shaped(nodes, constants, (shape, &[]), opset)
    }

    /// Asserts that `e` is the output taken as it is, with no confidence,
    /// and that its note says each of `says`.
    fn unknown_saying(e: Ending, says: &[&str]) {
        assert_eq!(
            (e.tensor.as_str(), e.probabilities),
            ("out", Probabilities::Unknown)
        );
        let note = e.note.unwrap();
        assert!(says.iter().all(|s| note.contains(s)), "{note}");
    }

    #[test]
    fn constant_ops_are_read_through_only_when_they_keep_the_order() {
        let softmax_then = |op: &str, input: [&str; 2], c: Vec<f32>| {
            read(
                &[
                    node("Gemm", &["f", "w"], "z", None),
                    node("Softmax", &["z"], "p", Some(1)),
                    node(op, &input, "out", None),
                ],
                &[("c", c)],
                &[1, 4],
                13,
            )
        };
        // (p − 0.5) · 100 as Sub then Mul: 100 × p − 50.
        let e = read(
            &[
                node("Gemm", &["f", "w"], "z", None),
                node("Softmax", &["z"], "p", Some(1)),
                node("Sub", &["p", "c_half"], "q", None),
                node("Mul", &["c_hundred", "q"], "out", None),
            ],
            &[("c_half", vec![0.5]), ("c_hundred", vec![100.0; 4])],
            &[1, 4],
            13,
        );
        assert_eq!(
            (e.tensor.as_str(), e.probabilities),
            ("z", Probabilities::Softmax)
        );
        let note = e.note.unwrap();
        assert!(
            note.contains("\"out\" is 100 × the Softmax of \"z\" − 50")
                && note.contains("(its output + 50) / 100"),
            "{note}"
        );
        // A per-class scale, a negative scale and c − p do not keep the order.
        for (op, input, c) in [
            ("Mul", ["p", "c"], vec![1.0, 2.0, 3.0, 4.0]),
            ("Mul", ["p", "c"], vec![-1.0]),
            ("Sub", ["c", "p"], vec![1.0]),
            ("Div", ["c", "p"], vec![1.0]),
        ] {
            let why = match c.len() {
                4 => "(Mul by a constant that differs between classes)",
                _ => ", which does not keep the order of the values)",
            };
            unknown_saying(softmax_then(op, input, c), &["after the Softmax node \"p\"", why]);
        }
        // Division by a positive constant is a scale.
        let e = softmax_then("Div", ["p", "c"], vec![0.01]);
        assert!(e.note.unwrap().contains("100 × the Softmax"));
        // A LogSoftmax's probability is the exponential of its output.
        let e = read(
            &[
                node("LogSoftmax", &["z"], "lp", None),
                node("Mul", &["lp", "c"], "out", None),
            ],
            &[("c", vec![2.0])],
            &[1, 4],
            13,
        );
        assert_eq!(e.probabilities, Probabilities::Softmax);
        assert!(e.note.unwrap().contains("the exponential of its output / 2"));
    }

    #[test]
    fn a_probability_behind_a_linear_layer_is_not_the_networks_output() {
        // An MLP whose hidden layer has as many sigmoid units as classes.
        let e = read(
            &[
                node("Sigmoid", &["h"], "s", None),
                node("MatMul", &["s", "w"], "z", None),
                node("Add", &["z", "c"], "out", None),
            ],
            &[("c", vec![0.0; 4]), ("w", vec![0.0; 16])],
            &[1, 4],
            13,
        );
        assert_eq!(e, plain("out", 4));
        // A gate computed from other probabilities is not read through; the
        // note names the nearest probability, the class scores' Softmax.
        let e = read(
            &[
                node("Softmax", &["z"], "p", None),
                node("Sigmoid", &["g"], "gate", None),
                node("Mul", &["p", "gate"], "out", None),
            ],
            &[],
            &[1, 4],
            13,
        );
        unknown_saying(e, &["(Mul by a computed tensor) after the Softmax node \"p\""]);
        // A Sigmoid of a constant (a learned per-class temperature) is a
        // constant, not the network's probabilities.
        let e = read(
            &[
                node("Gemm", &["f", "w"], "z", None),
                node("Sigmoid", &["c_raw"], "c_t", None),
                node("Mul", &["z", "c_t"], "out", None),
            ],
            &[
                ("c_raw", vec![0.0, 0.1, 0.2, 0.3]),
                ("c_t", vec![0.5, 0.6, 0.7, 0.8]),
            ],
            &[1, 4],
            13,
        );
        assert_eq!(e, plain("out", 4));
    }

    #[test]
    fn probabilities_behind_a_change_of_class_count_are_never_logits() {
        // Softmax over 6 values, then 4 of them kept (Slice, TopK, Gather
        // with fewer indices): the walk crosses the change of size.
        for op in ["Slice", "TopK", "Gather"] {
            let e = read_shaped(
                &[
                    node("Gemm", &["f", "w"], "z", None),
                    node("Softmax", &["z"], "p", Some(1)),
                    node(op, &["p", "c_i"], "out", Some(1)),
                ],
                &[("c_i", vec![4.0])],
                (&[1, 4], &[("z", &[1, 6]), ("p", &[1, 6])]),
                13,
            );
            unknown_saying(
                e,
                &[&format!("its node \"out\" ({op}) after the Softmax node \"p\"")],
            );
        }
        // Two Sigmoid vectors of 2 joined into 4.
        let e = read_shaped(
            &[
                node("Sigmoid", &["a"], "pa", None),
                node("Sigmoid", &["b"], "pb", None),
                node("Concat", &["pa", "pb"], "out", Some(1)),
            ],
            &[],
            (
                &[1, 4],
                &[("a", &[1, 2]), ("b", &[1, 2]), ("pa", &[1, 2]), ("pb", &[1, 2])],
            ),
            13,
        );
        unknown_saying(e, &["its node \"out\" (Concat) after the Sigmoid node \"pa\""]);
        // An operator that makes probabilities and is not read through.
        for op in ["HardSigmoid", "Hardmax", "Exp"] {
            let e = read(&[node(op, &["z"], "out", None)], &[], &[1, 4], 13);
            let its = format!("its {op} node \"out\" (");
            unknown_saying(e, &[&its, "cannot be read back to logits"]);
        }
    }

    #[test]
    fn a_softmax_built_from_separate_nodes_is_read_through() {
        let parts = |x: &str| {
            vec![
                node("Exp", &[x], "e", None),
                node("ReduceSum", &["e", "c_axis"], "s", None),
                node("Div", &["e", "s"], "out", None),
            ]
        };
        let run = |nodes: Vec<pb::NodeProto>, sum_shape: &[usize]| {
            read_shaped(
                &nodes,
                &[("c_axis", vec![1.0])],
                (&[1, 4], &[("s", sum_shape), ("m", &[1, 1])]),
                13,
            )
        };
        let e = run(parts("z"), &[1, 1]);
        assert_eq!(
            (e.tensor.as_str(), e.probabilities),
            ("z", Probabilities::Softmax)
        );
        let note = e.note.unwrap();
        assert!(
            note.contains(
                "\"out\" is the softmax of \"z\" built from its Exp \"e\", ReduceSum \"s\" and Div \
                 \"out\" nodes: using \"z\" as the logits"
            ),
            "{note}"
        );
        // The stable form, exp(z − max z): the logits are z.
        let mut nodes = vec![
            node("ReduceMax", &["z"], "m", None),
            node("Sub", &["z", "m"], "x", None),
        ];
        nodes.extend(parts("x"));
        let e = run(nodes, &[1, 1]);
        assert_eq!(
            (e.tensor.as_str(), e.probabilities),
            ("z", Probabilities::Softmax)
        );
        // A sum over another axis (here: none, keeping 4 values) is not a
        // softmax over the classes, and is said.
        let e = run(parts("z"), &[1, 4]);
        unknown_saying(
            e,
            &["its Div node \"out\" (a division by its own sum, which makes probabilities)"],
        );
        // exp(LogSoftmax(z)) is the Softmax of z.
        let e = read(
            &[
                node("LogSoftmax", &["z"], "lp", Some(1)),
                node("Exp", &["lp"], "out", None),
            ],
            &[],
            &[1, 4],
            13,
        );
        assert_eq!(
            (e.tensor.as_str(), e.probabilities),
            ("z", Probabilities::Softmax)
        );
    }

    #[test]
    fn tensors_computed_from_indices_are_named() {
        let nodes = [
            node("Softmax", &["z"], "p", Some(1)),
            pb::NodeProto {
                output: vec!["values".into(), "idx".into()],
                ..node("TopK", &["p", "c_k"], "topk", Some(1))
            },
            node("Cast", &["idx"], "classes", None),
            node("Add", &["classes", "c_one"], "labels", None),
            node("ArgMax", &["z"], "top", Some(1)),
            node("Cast", &["top"], "top_f", None),
            node("Mul", &["classes", "values"], "mixed", None),
        ];
        let mut producer: HashMap<&str, &pb::NodeProto> = HashMap::new();
        for n in &nodes {
            for o in &n.output {
                producer.insert(o.as_str(), n);
            }
        }
        let constants = ["c_k", "c_one"];
        let tensors = Tensors {
            producer: &producer,
            shape: &|_| Some(vec![1, 4]),
            float: &|_| true,
            constant: &|t| constants.contains(&t).then(|| vec![1.0]),
            opset: 13,
        };
        let from = |t: &str| from_indices(&tensors, t);
        // TopK's indices, cast and offset by a constant (1-based labels).
        for t in ["idx", "classes", "labels"] {
            assert_eq!(
                from(t).as_deref(),
                Some("the indices of TopK node \"topk\""),
                "{t}"
            );
        }
        assert_eq!(
            from("top_f").as_deref(),
            Some("the indices of ArgMax node \"top\"")
        );
        // TopK's values are scores; a product with a computed tensor is
        // not followed.
        assert_eq!((from("values"), from("mixed"), from("p")), (None, None, None));
    }

    #[test]
    fn logits_scaled_by_a_constant_are_the_logits() {
        // A temperature after the linear layer: no probability to read back to.
        let e = read(
            &[
                node("Gemm", &["f", "w"], "z", None),
                node("Div", &["z", "c"], "out", None),
            ],
            &[("c", vec![2.0])],
            &[1, 4],
            13,
        );
        assert_eq!(e, plain("out", 4));
    }

    #[test]
    fn only_nodes_known_to_keep_logits_leave_the_logits() {
        let gemm = || node("Gemm", &["f", "w"], "z", None);
        // Between the linear layer and the output: reshapes, a per-channel
        // affine (BatchNormalization), a centring, a positive per-class
        // scale, the sum of two linear heads.
        let e = read(
            &[
                gemm(),
                node("Gemm", &["f", "w2"], "z2", None),
                node("Add", &["z", "z2"], "sum", None),
                node(
                    "BatchNormalization",
                    &["sum", "c_s", "c_b", "c_m", "c_v"],
                    "bn",
                    None,
                ),
                node("Transpose", &["bn"], "tr", None),
                node("ReduceMean", &["tr"], "mean", None),
                node("Sub", &["tr", "mean"], "centred", None),
                node("Mul", &["centred", "c_pos"], "out", None),
            ],
            &[
                ("c_pos", vec![1.0, 2.0, 3.0, 4.0]),
                ("c_s", vec![1.0; 4]),
                ("c_b", vec![0.0; 4]),
                ("c_m", vec![0.0; 4]),
                ("c_v", vec![1.0; 4]),
            ],
            &[1, 4],
            13,
        );
        assert_eq!(e, plain("out", 4));
        // Anything else on the way makes the output's meaning unknown, and
        // the note names the node nearest the output.
        let neg_softplus_neg = [
            gemm(),
            node("Neg", &["z"], "a", None),
            node("Softplus", &["a"], "b", None),
            node("Neg", &["b"], "out", None),
        ];
        let tanh_sigmoid = [
            gemm(),
            node("Mul", &["z", "c_half"], "h", None),
            node("Tanh", &["h"], "th", None),
            node("Mul", &["th", "c_half"], "th2", None),
            node("Add", &["th2", "c_half"], "out", None),
        ];
        let relu_norm = [
            gemm(),
            node("Relu", &["z"], "r", None),
            node("ReduceSum", &["r", "c_axis"], "s", None),
            node("Add", &["s", "c_half"], "s2", None),
            node("Div", &["r", "s2"], "out", None),
        ];
        let per_class_negative = [gemm(), node("Mul", &["z", "c_mixed"], "out", None)];
        let reversed = [gemm(), node("Sub", &["c_half", "z"], "out", None)];
        let constants = [
            ("c_half", vec![0.5]),
            ("c_axis", vec![1.0]),
            ("c_mixed", vec![1.0, -1.0, 1.0, 1.0]),
        ];
        for (nodes, says) in [
            (
                &neg_softplus_neg[..],
                "by its Neg node \"out\", which is not known to keep",
            ),
            (&tanh_sigmoid[..], "by its Tanh node \"th\", which"),
            (
                &relu_norm[..],
                "by its Div node \"out\" by a computed tensor, which",
            ),
            (
                &per_class_negative[..],
                "by its Mul node \"out\" by a constant that differs",
            ),
            (
                &reversed[..],
                "by its Sub node \"out\", which does not keep the order",
            ),
        ] {
            let one = [("s", &[1, 1][..]), ("s2", &[1, 1])];
            let e = read_shaped(nodes, &constants, (&[1, 4], &one), 13);
            unknown_saying(e, &[says, "neither its class nor its confidence is (both null"]);
        }
    }

    #[test]
    fn a_softmax_must_normalise_over_the_classes() {
        let softmax = |axis: Option<i64>, opset: i64| {
            read(&[node("Softmax", &["z"], "out", axis)], &[], &[1, 4, 1, 1], opset).probabilities
        };
        // Opset 13's default axis is the last (size 1 here): every output 1.
        assert_eq!(softmax(None, 13), Probabilities::Unknown);
        assert_eq!(softmax(Some(1), 13), Probabilities::Softmax);
        assert_eq!(softmax(Some(-3), 13), Probabilities::Softmax);
        // Before opset 13, from axis 1 (the default) on.
        assert_eq!(softmax(None, 11), Probabilities::Softmax);
        assert_eq!(softmax(Some(0), 11), Probabilities::Softmax);
        assert_eq!(softmax(Some(2), 11), Probabilities::Unknown);
    }
}
