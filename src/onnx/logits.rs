//! Which tensor holds a classifier's class logits, and how the network turns
//! them into the probabilities it outputs — facts about the ONNX graph, read
//! once from its nodes and its tensors' shapes whatever engine runs it.
//!
//! * **Which output.** A network with one output that is a class-score
//!   vector (`1×K`, K ≥ 2) is a classifier. A network with several outputs
//!   (an object detector's boxes and scores, a `(features, logits)` export)
//!   is never resolved by a guess: it is refused with every output, which
//!   could be class scores and which could not and why, unless `--logits`
//!   names the class scores.
//! * **Its ending.** From that output the graph is walked back through the
//!   operators that keep a class vector's values in order — reshapes,
//!   copies, casts, and `Mul`/`Div`/`Add`/`Sub` by one positive constant (a
//!   percentage is `100 ×` the probabilities) — to a `Softmax` or
//!   `LogSoftmax` over the classes ([`Probabilities::Softmax`]: its input is
//!   the logits) or a `Sigmoid` ([`Probabilities::Sigmoid`]: independent
//!   per-class probabilities). An output that reaches none is the logits
//!   itself (its softmax is the usual reading). An output computed from a
//!   probability through anything else (a computed scale, an operator not
//!   listed here) is [`Probabilities::Unknown`]: its confidence is not
//!   known, and a note says why, rather than a softmax of probabilities.

use anyhow::{anyhow, bail, Result};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use tract_onnx::pb;

/// How the network turns its logits `z` into the probabilities it outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probabilities {
    /// `softmax(z)`: the network ends in a Softmax or LogSoftmax over the
    /// classes (read through), or outputs the logits themselves.
    Softmax,
    /// `sigmoid(z_k)`, one independent probability per class: the network
    /// ends in a Sigmoid.
    Sigmoid,
    /// The network's output is computed from its probabilities by something
    /// that cannot be read through: no probability is known (the logits'
    /// note says why), and the output is taken as the class scores as it is.
    Unknown,
}

impl Probabilities {
    /// The top class of `logits` and the network's own probability for it:
    /// its softmax probability, or the sigmoid of its logit; `None` when
    /// the probabilities are [`Probabilities::Unknown`].
    pub fn top_class(self, logits: &[f32]) -> (usize, Option<f32>) {
        let (class, max) =
            logits.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            );
        let p = match self {
            Probabilities::Softmax => {
                let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
                Some(1.0 / sum)
            }
            // Stable on both sides: e^z / (1 + e^z) for negative z.
            Probabilities::Sigmoid if max >= 0.0 => Some(1.0 / (1.0 + (-max).exp())),
            Probabilities::Sigmoid => Some(max.exp() / (1.0 + max.exp())),
            Probabilities::Unknown => None,
        };
        (class, p)
    }

    /// `softmax`, `sigmoid` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Probabilities::Softmax => "softmax",
            Probabilities::Sigmoid => "sigmoid",
            Probabilities::Unknown => "unknown",
        }
    }
}

/// What the analysis reads about the graph's tensors, from whichever engine
/// inferred their shapes and folded their constants.
pub(crate) struct Tensors<'a> {
    /// The ONNX node making each tensor.
    pub producer: &'a HashMap<&'a str, &'a pb::NodeProto>,
    /// A tensor's shape for one frame, when known.
    pub shape: &'a dyn Fn(&str) -> Option<Vec<usize>>,
    /// Whether a tensor holds floating-point values (of any width).
    pub float: &'a dyn Fn(&str) -> bool,
    /// A constant tensor's values (an initialiser, or folded), as `f32`.
    pub constant: &'a dyn Fn(&str) -> Option<Vec<f32>>,
    /// The graph's version of the default ONNX operator set.
    pub opset: i64,
}

/// Number of classes if `shape` is a class-score vector: every dimension 1
/// except one, of at least 2.
pub(crate) fn classes(shape: &[usize]) -> Option<usize> {
    let big: Vec<usize> = shape.iter().copied().filter(|&d| d != 1).collect();
    match big[..] {
        [k] if k >= 2 => Some(k),
        _ => None,
    }
}

pub(crate) fn shape_text(shape: &Option<Vec<usize>>) -> String {
    match shape {
        Some(s) => format!("{s:?}"),
        None => "[?]".into(),
    }
}

impl Tensors<'_> {
    /// `K` if `t` is a float class-score vector.
    fn classes(&self, t: &str) -> Option<usize> {
        (self.float)(t)
            .then(|| (self.shape)(t))
            .flatten()
            .as_deref()
            .and_then(classes)
    }

    /// Number of values of a float tensor.
    fn floats(&self, t: &str) -> Option<usize> {
        (self.float)(t).then(|| (self.shape)(t).map(|s| s.iter().product()))?
    }

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
}

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

/// Operators that pass a class vector's values on unchanged.
const PASSES: &[&str] = &[
    "Identity",
    "Dropout",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Cast",
    "CastLike",
];

/// Operators that turn logits into probabilities.
const PROBABILITIES: &[&str] = &["Softmax", "LogSoftmax", "Sigmoid"];

/// Operators that compute new values from a whole vector: the search for a
/// probability behind an ending that cannot be read through stops there.
const LINEAR: &[&str] = &[
    "Gemm",
    "MatMul",
    "Conv",
    "ConvTranspose",
    "Einsum",
    "MatMulInteger",
];

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
        if PROBABILITIES.contains(&op) {
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

fn plain(output: &str, k: usize) -> Ending {
    Ending {
        tensor: output.to_string(),
        classes: k,
        probabilities: Probabilities::Softmax,
        note: None,
    }
}

/// The ending at probability node `n`, reached from `output` through `affine`.
fn probability(t: &Tensors, output: &str, n: &pb::NodeProto, k: usize, affine: Affine) -> Ending {
    let op = n.op_type.as_str();
    let name = super::load::node_name(n);
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
    let (probabilities, meaning) = match op {
        "Sigmoid" => (
            Probabilities::Sigmoid,
            "the network gives each class its own probability: the confidence is the sigmoid of the \
             top class's logit, the network's output for that class, not a softmax",
        ),
        _ => (
            Probabilities::Softmax,
            "its softmax is the network's probabilities",
        ),
    };
    let of = format!("the {op} of {x:?}");
    let note = if affine == Affine::IDENTITY {
        format!("{output:?} is {of}: using {x:?} as the logits ({meaning})")
    } else {
        let back = match op {
            "LogSoftmax" => format!("the exponential of {}", affine.inverse()),
            _ => affine.inverse(),
        };
        format!(
            "{output:?} is {}: using {x:?} as the logits ({meaning}); the confidence is the \
             network's probability, {back}",
            affine.applied(&of)
        )
    };
    Ending {
        tensor: x.clone(),
        classes: k,
        probabilities,
        note: Some(note),
    }
}

fn unknown(output: &str, k: usize, why: String) -> Ending {
    Ending {
        tensor: output.to_string(),
        classes: k,
        probabilities: Probabilities::Unknown,
        note: Some(format!(
            "{output:?} is computed from the network's probabilities, but {why}: it is taken as the \
             class scores as it is and the confidence is not known (null)"
        )),
    }
}

/// The ending when the walk from `output` stops at node `n`: the logits are
/// the output unless a probability lies behind `n` (through anything but a
/// linear layer, which makes new logits).
fn blocked(t: &Tensors, output: &str, n: &pb::NodeProto, k: usize) -> Ending {
    let mut stack: Vec<&str> = match LINEAR.contains(&n.op_type.as_str()) {
        true => Vec::new(),
        false => n.input.iter().map(String::as_str).collect(),
    };
    let mut seen: HashSet<&str> = HashSet::new();
    while let Some(x) = stack.pop() {
        if !seen.insert(x) || t.floats(x) != Some(k) {
            continue;
        }
        let Some(&p) = t.producer.get(x) else { continue };
        if PROBABILITIES.contains(&p.op_type.as_str()) {
            let why = format!(
                "its node {:?} ({}{}) after the {} node {:?} cannot be read through",
                super::load::node_name(n),
                n.op_type,
                t.not_a_scale(n),
                p.op_type,
                super::load::node_name(p)
            );
            return unknown(output, k, why);
        }
        if !LINEAR.contains(&p.op_type.as_str()) {
            stack.extend(p.input.iter().map(String::as_str));
        }
    }
    plain(output, k)
}

/// Why graph output `o` cannot be a classifier's class scores, or `None`
/// when it could.
fn why_not(t: &Tensors, o: &str) -> Option<String> {
    let Some(shape) = (t.shape)(o) else {
        return Some("its shape is unknown".into());
    };
    if !(t.float)(o) {
        return Some("not a float tensor".into());
    }
    if classes(&shape).is_some() {
        return None;
    }
    let big = shape.iter().filter(|&&d| d != 1).count();
    Some(match shape[..] {
        [.., n, 4] if n > 1 && shape.len() >= 2 => format!("{n} boxes of 4 coordinates"),
        _ if big == 0 => "a single value".into(),
        _ => "not a 1×K vector".into(),
    })
}

/// The refusal of a network with several outputs and no `--logits`.
fn several(path: &Path, t: &Tensors, outputs: &[String]) -> anyhow::Error {
    let shown = |o: &String| format!("{o} {}", shape_text(&(t.shape)(o)));
    let (could, not): (Vec<&String>, Vec<&String>) = outputs.iter().partition(|o| why_not(t, o).is_none());
    let could_text = match could.len() {
        0 => "none of them could be the class logits".to_string(),
        1 => format!("1 output could be the class logits: {}", shown(could[0])),
        n => format!(
            "{n} outputs could be the class logits: {}",
            could.iter().map(|o| shown(o)).collect::<Vec<_>>().join(", ")
        ),
    };
    let not_text = match not.len() {
        0 => String::new(),
        n => format!(
            "; {n} could not: {}",
            not.iter()
                .map(|o| format!("{} ({})", shown(o), why_not(t, o).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let boxes = not
        .iter()
        .any(|o| why_not(t, o).is_some_and(|w| w.contains("boxes")));
    anyhow!(
        "{}: the network has {} outputs, and which holds the class scores is never guessed: \
         {could_text}{not_text}.{} If one of them holds a classifier's class scores, name it with \
         --logits NAME",
        path.display(),
        outputs.len(),
        if boxes {
            " Its outputs look like an object detector's (boxes and their scores), not a classifier's: \
             LSGM monitors image classifiers."
        } else {
            ""
        }
    )
}

/// The class logits of a graph whose outputs are `outputs`: those `named`
/// (the tensor `--logits` gives, read back through its ending, or the
/// logits that an output's ending reads back to), else those of its one
/// output (refused unless it is a float class-score vector, and when the
/// network has several outputs).
pub(crate) fn choose(path: &Path, t: &Tensors, outputs: &[String], named: Option<&str>) -> Result<Ending> {
    if let Some(name) = named {
        let Some(k) = t.classes(name) else {
            bail!(
                "{}: --logits {name:?} has shape {}, not a float class-score vector (1×K)",
                path.display(),
                shape_text(&(t.shape)(name))
            );
        };
        let own = ending(t, name, k);
        if own.note.is_some() {
            return Ok(own);
        }
        // The logits a model file stores are the tensor an output reads back to.
        let behind = outputs
            .iter()
            .filter(|o| t.classes(o) == Some(k))
            .map(|o| ending(t, o, k))
            .find(|e| e.tensor == name && e.note.is_some());
        return Ok(behind.unwrap_or(own));
    }
    match outputs {
        [] => bail!("{}: the graph has no outputs", path.display()),
        [o] => match t.classes(o) {
            Some(k) => Ok(ending(t, o, k)),
            None => bail!(
                "{}: no output of this network is a class-score vector (1×K, K ≥ 2): {o} {} ({}); \
                 LSGM monitors a classifier — name its logits tensor with --logits NAME",
                path.display(),
                shape_text(&(t.shape)(o)),
                why_not(t, o).unwrap_or_default()
            ),
        },
        _ => Err(several(path, t, outputs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    /// float `shape` and whose constants (`c…`) hold `constants`.
    fn read(nodes: &[pb::NodeProto], constants: &[(&str, Vec<f32>)], shape: &[usize], opset: i64) -> Ending {
        let producer: HashMap<&str, &pb::NodeProto> =
            nodes.iter().map(|n| (n.output[0].as_str(), n)).collect();
        let constants: HashMap<&str, Vec<f32>> = constants.iter().cloned().collect();
        let shape = |t: &str| (!constants.contains_key(t)).then(|| shape.to_vec());
        let tensors = Tensors {
            producer: &producer,
            shape: &shape,
            float: &|_| true,
            constant: &|t| constants.get(t).cloned(),
            opset,
        };
        ending(&tensors, "out", 4)
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
            let e = softmax_then(op, input, c.clone());
            assert_eq!(
                (e.tensor.as_str(), e.probabilities),
                ("out", Probabilities::Unknown),
                "{op} {c:?}"
            );
            let note = e.note.unwrap();
            assert!(note.contains("after the Softmax node \"p\""), "{op}: {note}");
            let why = match c.len() {
                4 => "(Mul by a constant that differs between classes)",
                _ => ", which does not keep the order of the values)",
            };
            assert!(note.contains(why), "{op}: {note}");
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
        // A gate computed from other probabilities is not read through.
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
        assert_eq!(e.probabilities, Probabilities::Unknown);
        assert!(e.note.unwrap().contains("(Mul by a computed tensor)"));
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

    #[test]
    fn the_confidence_is_the_probability_of_the_top_class() {
        let z = [1.0f32, 3.0, -2.0];
        let (class, p) = Probabilities::Softmax.top_class(&z);
        let sum: f32 = z.iter().map(|v| v.exp()).sum();
        assert_eq!(class, 1);
        assert!((p.unwrap() - 3f32.exp() / sum).abs() < 1e-6);
        let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
        assert_eq!(Probabilities::Sigmoid.top_class(&z), (1, Some(sigmoid(3.0))));
        // e^95 overflows f32, e^−95 ≈ 5.5e-42 does not.
        let (_, p) = Probabilities::Sigmoid.top_class(&[-95.0, -120.0]);
        assert!((p.unwrap() as f64 / (-95f64).exp() - 1.0).abs() < 1e-2, "{p:?}");
        assert_eq!(Probabilities::Unknown.top_class(&z), (1, None));
    }
}
