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
//!   `Cast` of `TopK`'s indices, an `ArgMax`: class numbers) is never
//!   taken as class scores, even when named.
//! * **Boxes.** An output named with `box` in it, or shaped as rows of
//!   per-box values ([`boxes_like`]), is never taken as class scores
//!   unless `--logits` names it, and the refusal calls the network an
//!   object detector.

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
    /// The network's output may not be its logits: a node on the way from
    /// its last linear layer may change what the values mean, or it is
    /// computed from the probabilities by something that cannot be read
    /// through (the logits' note says which). Neither the class nor the
    /// probability is known: the top of an output that falls as
    /// probability rises (`1 − p`, `−log p`) is the least likely class.
    Unknown,
}

impl Probabilities {
    /// The top class of `logits` and the network's own probability for it:
    /// its softmax probability, or the sigmoid of its logit; `None` when
    /// the probabilities are [`Probabilities::Unknown`] (the values' order
    /// is not known either, so no class is named).
    pub fn top_class(self, logits: &[f32]) -> Option<(usize, f32)> {
        let (class, max) =
            logits.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            );
        let p = match self {
            Probabilities::Softmax => {
                let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
                1.0 / sum
            }
            // Stable on both sides: e^z / (1 + e^z) for negative z.
            Probabilities::Sigmoid if max >= 0.0 => 1.0 / (1.0 + (-max).exp()),
            Probabilities::Sigmoid => max.exp() / (1.0 + max.exp()),
            Probabilities::Unknown => return None,
        };
        Some((class, p))
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

/// What makes graph output `o` look like an object detector's, or `None`
/// when nothing does: a name with `box` in it (`boxes`, `bbox`), or rows of
/// per-box values — `[.., N, C]` with exactly two axes above 1 and `N > 1`
/// rows of `C = 4` coordinates, or more rows than values with `C ≥ 5`
/// (`C` of 5 to 7: boxes with a score, a class or a batch index, a post-NMS
/// list; wider: a detector's per-anchor predictions, YOLO's 4 coordinates,
/// objectness and class scores or a RetinaNet head's class scores). Wider rows than there are rows (`C ≥ N`:
/// a transformer's tokens, a square map) are not called boxes.
fn boxes_like(o: &str, shape: &[usize]) -> Option<String> {
    let big = shape.iter().filter(|&&d| d != 1).count();
    let rows = match shape[..] {
        [.., n, c] if big == 2 && n > 1 => Some((n, c)),
        _ => None,
    };
    match rows {
        Some((n, 4)) => Some(format!("{n} boxes of 4 coordinates")),
        Some((n, c @ 5..=7)) if n > c => Some(format!(
            "{n} rows of {c} values, as a detector's boxes with their score, class or batch index"
        )),
        Some((n, c)) if n > c && c >= 5 => Some(format!(
            "{n} rows of {c} values, as a detector's per-anchor predictions (box coordinates, \
             objectness or class scores: YOLO-style)"
        )),
        _ if o.to_lowercase().contains("box") => Some("named like boxes".into()),
        _ => None,
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
    if let Some(boxes) = boxes_like(o, &shape) {
        return Some(boxes);
    }
    if classes(&shape).is_some() {
        return None;
    }
    let big = shape.iter().filter(|&&d| d != 1).count();
    Some(match big {
        0 => "a single value".into(),
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
/// when one of the outputs that `not` lists looks like boxes
/// ([`boxes_like`]); empty otherwise.
fn detector(t: &Tensors, not: &[&String], outputs: usize) -> &'static str {
    let boxes = not
        .iter()
        .any(|o| (t.shape)(o).is_some_and(|s| boxes_like(o, &s).is_some()));
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
        let (class, p) = Probabilities::Softmax.top_class(&z).unwrap();
        let sum: f32 = z.iter().map(|v| v.exp()).sum();
        assert_eq!(class, 1);
        assert!((p - 3f32.exp() / sum).abs() < 1e-6);
        let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
        assert_eq!(Probabilities::Sigmoid.top_class(&z), Some((1, sigmoid(3.0))));
        // e^95 overflows f32, e^−95 ≈ 5.5e-42 does not.
        let (_, p) = Probabilities::Sigmoid.top_class(&[-95.0, -120.0]).unwrap();
        assert!((p as f64 / (-95f64).exp() - 1.0).abs() < 1e-2, "{p:?}");
        // Neither a class nor a confidence when the ending is unknown.
        assert_eq!(Probabilities::Unknown.top_class(&z), None);
    }
}
