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
//! * **Its ending.** How the network turns the logits into that output
//!   (a Softmax, a Sigmoid, a percentage, or something that cannot be read
//!   back) is [`super::ending`]'s.
//! * **Not class scores.** An output computed from integer indices (a
//!   `Cast` of `TopK`'s indices, an `ArgMax`: class numbers) or shaped like
//!   boxes is never taken as class scores, even when named.

use super::ending::{ending, from_indices, Ending};
use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
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
    pub(crate) fn classes(&self, t: &str) -> Option<usize> {
        (self.float)(t)
            .then(|| (self.shape)(t))
            .flatten()
            .as_deref()
            .and_then(classes)
    }
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
    if let Some(what) = from_indices(t, o) {
        return Some(format!(
            "computed from {what}: numbers naming classes or positions, not scores"
        ));
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
    anyhow!(
        "{}: the network has {} outputs, and which holds the class scores is never guessed: \
         {could_text}{not_text}.{} If one of them holds a classifier's class scores, name it with \
         --logits NAME",
        path.display(),
        outputs.len(),
        detector(t, &not, outputs.len())
    )
}

/// A sentence naming the network (of `outputs` outputs) an object detector
/// when one of the outputs that `not` lists is shaped like boxes; empty
/// otherwise.
fn detector(t: &Tensors, not: &[&String], outputs: usize) -> &'static str {
    let boxes = not
        .iter()
        .any(|o| why_not(t, o).is_some_and(|w| w.contains("boxes")));
    match (boxes, outputs) {
        (false, _) => "",
        (true, 1) => {
            " It looks like an object detector's output (boxes), not a classifier's: LSGM monitors \
             image classifiers."
        }
        (true, _) => {
            " Its outputs look like an object detector's (boxes, and perhaps their scores), not a \
             classifier's: LSGM monitors image classifiers."
        }
    }
}

/// The class logits of a graph whose outputs are `outputs`: those `named`
/// (the tensor `--logits` gives, read back through its ending, or the
/// logits that an output's ending reads back to), else those of its one
/// output (refused unless it is a float class-score vector, and when the
/// network has several outputs).
pub(crate) fn choose(path: &Path, t: &Tensors, outputs: &[String], named: Option<&str>) -> Result<Ending> {
    if let Some(name) = named {
        if let Some(what) = from_indices(t, name) {
            bail!(
                "{}: --logits {name:?} is computed from {what}: numbers naming classes or positions, \
                 not class scores; name the tensor that holds the classes' scores",
                path.display()
            );
        }
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
        [o] => match (why_not(t, o), t.classes(o)) {
            (None, Some(k)) => Ok(ending(t, o, k)),
            (why, _) => bail!(
                "{}: no output of this network is a class-score vector (1×K, K ≥ 2): {o} {} ({}).{} \
                 If it is a classifier, name its logits tensor with --logits NAME",
                path.display(),
                shape_text(&(t.shape)(o)),
                why.unwrap_or_default(),
                match detector(t, &[o], 1) {
                    "" => " LSGM monitors image classifiers.",
                    d => d,
                }
            ),
        },
        _ => Err(several(path, t, outputs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
