//! The structure behind `--layers auto`: which tappable tensors are the
//! outputs of a network's stages.
//!
//! Everything here is read from the ONNX graph (whose nodes ONNX requires to
//! be topologically sorted) restricted to the part that computes the logits
//! from the input: weights, folded shape arithmetic and branches that do not
//! reach the logits play no part.
//!
//! * A **cut** is a tensor every path from the input to the logits passes
//!   through: when the node producing it has run, it is the only tensor
//!   computed so far that a later node still reads. The inside of a
//!   residual block or of a squeeze-excitation branch is never a cut; a
//!   block's output is.
//! * A **merge** joins branches: an `Add`/`Sum` of two or more computed maps
//!   of the output's shape (not a bias, not hard-swish's `x + 3`), or a
//!   `Concat` of two or more computed maps along the channel axis.
//! * A merge's **stage output** is the last cut on the chain that leaves the
//!   merge through activations and copies only (`Relu`, `Clip`, `HardSwish`,
//!   `x·sigmoid(x)`, `Identity`, …): the `Add` of an inverted-residual block,
//!   the `Relu` after a ResNet block's `Add`, a fire module's `Concat`.
//! * The **head** is what reaches the logits through pooling, reshapes,
//!   activations, dropout and softmax only, with as many channels as there
//!   are classes (SqueezeNet's class-score map); it is never tapped.
//!
//! See [`auto_taps`] for the rule built on these.

use super::graph::Tap;
use crate::model::wire::Pooling;
use std::collections::{HashMap, HashSet};
use tract_onnx::pb;

/// Element-wise activations, followed from a merge to its stage output.
const ACTIVATIONS: &[&str] = &[
    "Relu",
    "Clip",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Celu",
    "HardSwish",
    "Gelu",
    "Mish",
    "Softplus",
    "Tanh",
    "ThresholdedRelu",
];

/// Operators that pass a map on unchanged in value.
const COPIES: &[&str] = &["Identity", "Dropout", "Cast", "CastLike", "Transpose"];

/// Operators between a class-score map and the logits (besides
/// [`ACTIVATIONS`] and [`COPIES`]).
const HEAD: &[&str] = &[
    "GlobalAveragePool",
    "GlobalMaxPool",
    "GlobalLpPool",
    "AveragePool",
    "MaxPool",
    "LpPool",
    "ReduceMean",
    "ReduceMax",
    "ReduceSum",
    "Flatten",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Softmax",
    "LogSoftmax",
    "Sigmoid",
];

/// The most taps `auto` gives; the deepest are kept.
pub(crate) const MAX_TAPS: usize = 5;

/// The tensor-level view of the graph that computes the logits.
struct Flow<'a> {
    nodes: &'a [pb::NodeProto],
    /// Node index producing each tensor.
    producer: HashMap<&'a str, usize>,
    /// Computed tensors that the logits depend on (the input included).
    needed: HashSet<&'a str>,
    /// Nodes the logits depend on that read each needed tensor.
    consumers: HashMap<&'a str, Vec<usize>>,
    /// Tensors that depend on the input and are not folded to constants.
    computed: HashSet<&'a str>,
    logits: &'a str,
    cuts: HashSet<&'a str>,
}

impl<'a> Flow<'a> {
    fn new(
        graph: &'a pb::GraphProto,
        input: &'a str,
        logits: &'a str,
        constant: &dyn Fn(&str) -> bool,
    ) -> Flow<'a> {
        let nodes = &graph.node[..];
        let producer: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| {
                n.output
                    .iter()
                    .filter(|o| !o.is_empty())
                    .map(move |o| (o.as_str(), i))
            })
            .collect();
        // Computed: depends on the input, and not folded to a constant
        // (shape arithmetic on a fixed-size input is).
        let mut computed: HashSet<&str> = HashSet::from([input]);
        for n in nodes {
            if n.input.iter().any(|i| computed.contains(i.as_str())) {
                computed.extend(
                    n.output
                        .iter()
                        .map(String::as_str)
                        .filter(|o| !o.is_empty() && !constant(o)),
                );
            }
        }
        // Needed: what the logits are computed from.
        let mut needed: HashSet<&str> = HashSet::new();
        if computed.contains(logits) {
            needed.insert(logits);
        }
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in nodes.iter().enumerate().rev() {
            if !n.output.iter().any(|o| needed.contains(o.as_str())) {
                continue;
            }
            for x in &n.input {
                let x = x.as_str();
                if computed.contains(x) {
                    needed.insert(x);
                    let c = consumers.entry(x).or_default();
                    if !c.contains(&i) {
                        c.push(i);
                    }
                }
            }
        }
        for c in consumers.values_mut() {
            c.sort_unstable();
        }
        // Liveness at each step (the input is step 0, node i is step i + 1):
        // a tensor is live from the step that makes it to its last reader.
        let step = |t: &str| producer.get(t).map_or(0, |&i| i + 1);
        let mut delta = vec![0i64; nodes.len() + 3];
        for &t in &needed {
            let end = if t == logits {
                nodes.len() + 2
            } else {
                consumers.get(t).and_then(|c| c.last()).map_or(0, |&i| i + 1)
            };
            let start = step(t);
            if end > start {
                delta[start] += 1;
                delta[end] -= 1;
            }
        }
        let mut live = Vec::with_capacity(delta.len());
        let mut sum = 0;
        for d in delta {
            sum += d;
            live.push(sum);
        }
        let cuts = needed.iter().copied().filter(|&t| live[step(t)] == 1).collect();
        Flow {
            nodes,
            producer,
            needed,
            consumers,
            computed,
            logits,
            cuts,
        }
    }

    /// The computed tensors `t` is computed from, `t` included.
    fn ancestors(&self, t: &'a str) -> HashSet<&'a str> {
        let mut set: HashSet<&str> = HashSet::from([t]);
        for n in self.nodes.iter().rev() {
            if n.output.iter().any(|o| set.contains(o.as_str())) {
                set.extend(
                    n.input
                        .iter()
                        .map(String::as_str)
                        .filter(|i| self.computed.contains(i)),
                );
            }
        }
        set
    }

    /// The tensors computed from `t`, `t` included.
    fn descendants(&self, t: &'a str) -> HashSet<&'a str> {
        let mut set: HashSet<&str> = HashSet::from([t]);
        for n in self.nodes {
            if n.input.iter().any(|i| set.contains(i.as_str())) {
                set.extend(n.output.iter().map(String::as_str).filter(|o| !o.is_empty()));
            }
        }
        set
    }

    /// The graph's other heads — outputs neither computed on the way to the
    /// logits nor from them (an object detector's boxes beside its scores) —
    /// and the tensors every one of them is computed from (the trunk they
    /// share with the logits); `None` when there are none.
    fn other_heads(&self, outputs: &[&'a str]) -> Option<(Vec<&'a str>, HashSet<&'a str>)> {
        let after = self.descendants(self.logits);
        let heads: Vec<&str> = outputs
            .iter()
            .copied()
            .filter(|o| self.computed.contains(o) && !self.needed.contains(o) && !after.contains(o))
            .collect();
        let mut sets = heads.iter().map(|h| self.ancestors(h));
        let first = sets.next()?;
        let trunk = sets.fold(first, |acc, s| acc.intersection(&s).copied().collect());
        Some((heads, trunk))
    }

    fn readers(&self, t: &str) -> &[usize] {
        self.consumers.get(t).map_or(&[], Vec::as_slice)
    }

    fn op(&self, i: usize) -> &str {
        self.nodes[i].op_type.as_str()
    }

    /// The tensor computed from `t` by one activation or copy, or by
    /// `t · sigmoid(t)` (SiLU/Swish, hard-swish as `t · HardSigmoid(t)`).
    fn activated(&self, t: &str) -> Option<&'a str> {
        let next = match *self.readers(t) {
            [c] if ACTIVATIONS.contains(&self.op(c)) || COPIES.contains(&self.op(c)) => c,
            [a, b] => {
                let (s, m) = if self.op(a) == "Mul" { (b, a) } else { (a, b) };
                let gate = self.nodes[s].output.first()?.as_str();
                let ok = matches!(self.op(s), "Sigmoid" | "HardSigmoid")
                    && self.op(m) == "Mul"
                    && self.readers(gate) == [m]
                    && self.nodes[m].input.iter().any(|i| i == t)
                    && self.nodes[m].input.iter().any(|i| i == gate);
                if !ok {
                    return None;
                }
                m
            }
            _ => return None,
        };
        self.nodes[next]
            .output
            .first()
            .map(String::as_str)
            .filter(|o| self.needed.contains(o))
    }

    /// Whether `t` reaches the logits through head operators only.
    fn feeds_head(&self, t: &str) -> bool {
        if t == self.logits {
            return true;
        }
        let readers = self.readers(t);
        !readers.is_empty()
            && readers.iter().all(|&c| {
                let op = self.op(c);
                (HEAD.contains(&op) || ACTIVATIONS.contains(&op) || COPIES.contains(&op))
                    && self.nodes[c]
                        .output
                        .iter()
                        .filter(|o| self.needed.contains(o.as_str()))
                        .all(|o| self.feeds_head(o))
            })
    }
}

/// Whether node `n` joins branches (see the module documentation); `out`
/// is its output's tap.
fn is_merge(flow: &Flow, n: &pb::NodeProto, out: &Tap, shape: &dyn Fn(&str) -> Option<Vec<usize>>) -> bool {
    let joined: Vec<Option<Vec<usize>>> = n
        .input
        .iter()
        .filter(|i| flow.needed.contains(i.as_str()))
        .map(|i| shape(i))
        .collect();
    if joined.len() < 2 {
        return false;
    }
    match n.op_type.as_str() {
        "Add" | "Sum" => joined.iter().all(|s| s.as_deref() == Some(&out.shape[..])),
        "Concat" => {
            let axis = match out.pooling {
                Some(Pooling::GlobalAverageNhwc | Pooling::GridAverageNhwc { .. }) => 3,
                _ => 1,
            };
            joined.iter().all(|s| {
                s.as_ref()
                    .is_some_and(|s| s.len() == 4 && (0..4).all(|k| k == axis || s[k] == out.shape[k]))
            })
        }
        _ => false,
    }
}

/// The last of `maps` at each resolution, in graph order.
fn per_resolution<'t>(maps: &[(usize, &'t Tap)]) -> Vec<(usize, &'t Tap)> {
    let mut last: Vec<(usize, &Tap)> = Vec::new();
    for &(at, tap) in maps {
        match last.iter_mut().find(|(_, t)| t.resolution() == tap.resolution()) {
            Some(entry) => *entry = (at, tap),
            None => last.push((at, tap)),
        }
    }
    last
}

/// The taps `--layers auto` chooses, in graph order:
///
/// 1. Candidates are the cuts that are maps with a known channel axis and a
///    spatial extent (not 1×1), produced at or after the first convolution,
///    and not the head.
/// 2. Each merge gives its stage output when that is a candidate. If any
///    does, per spatial resolution (H, W) the last stage output is tapped —
///    resolutions without one are skipped — and the deepest candidate (the
///    pre-pool map: MobileNet's and EfficientNet's 1×1 head convolution,
///    ResNet's last block) replaces the tap at its own resolution.
/// 3. Otherwise (plain VGG-style networks), the last candidate per
///    resolution is tapped.
/// 4. At most [`MAX_TAPS`], the deepest.
///
/// A graph with other heads than the logits' (`--logits` naming a
/// detector's scores beside its boxes) has its candidates restricted to the
/// trunk every head is computed from, so that no tap lies inside the
/// class-score head or the others; the note returned says so.
pub(crate) fn auto_taps(
    graph: &pb::GraphProto,
    input: &str,
    (logits, classes): (&str, usize),
    taps: &[Tap],
    constant: &dyn Fn(&str) -> bool,
    shape: &dyn Fn(&str) -> Option<Vec<usize>>,
) -> (Vec<String>, Option<String>) {
    let flow = Flow::new(graph, input, logits, constant);
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let heads = flow.other_heads(&outputs);
    // Outputs computed from the class scores that are not a reading of them
    // (a detector's count of detections), listed too.
    let after = flow.descendants(logits);
    let derived: Vec<&str> = outputs
        .iter()
        .copied()
        .filter(|&o| o != logits && after.contains(o))
        .filter(|&o| shape(o).as_deref().and_then(super::logits::classes) != Some(classes))
        .collect();
    let note = heads.as_ref().map(|(h, _)| {
        let derived = match derived.len() {
            0 => String::new(),
            _ => format!("; {} computed from them", derived.join(", ")),
        };
        format!(
            "the network has other outputs than the class scores {logits:?} ({}{derived}): `--layers \
             auto` taps only maps that every output is computed from (the trunk they share), none inside \
             a head",
            h.join(", ")
        )
    });
    let first_conv = graph.node.iter().position(|n| n.op_type.contains("Conv"));
    let by_tensor: HashMap<&str, &Tap> = taps.iter().map(|t| (t.tensor.as_str(), t)).collect();
    let candidate = |t: &str| -> Option<(usize, &Tap)> {
        let tap = by_tensor.get(t)?;
        let at = *flow.producer.get(t)?;
        let ok = tap.resolution().is_some()
            && first_conv.is_some_and(|c| at >= c)
            && flow.cuts.contains(t)
            && heads.as_ref().is_none_or(|(_, trunk)| trunk.contains(t))
            && !(tap.channels() == classes && flow.feeds_head(t));
        ok.then_some((at, *tap))
    };
    let candidates: Vec<(usize, &Tap)> = taps.iter().filter_map(|t| candidate(&t.tensor)).collect();

    let mut stages: Vec<(usize, &Tap)> = Vec::new();
    for n in graph.node.iter() {
        let Some(out) = n.output.first().map(String::as_str) else {
            continue;
        };
        let Some(tap) = by_tensor.get(out).filter(|t| t.resolution().is_some()) else {
            continue;
        };
        if !flow.needed.contains(out) || !is_merge(&flow, n, tap, shape) {
            continue;
        }
        let (mut t, mut best) = (out, candidate(out));
        while let Some(next) = flow.activated(t) {
            t = next;
            best = candidate(t).or(best);
        }
        stages.extend(best.filter(|b| stages.iter().all(|s| s.0 != b.0)));
    }

    let mut chosen = if stages.is_empty() {
        per_resolution(&candidates)
    } else {
        let mut chosen = per_resolution(&stages);
        if let Some(&deepest) = candidates.last() {
            chosen.retain(|(_, t)| t.resolution() != deepest.1.resolution());
            chosen.push(deepest);
        }
        chosen
    };
    chosen.sort_by_key(|(at, _)| *at);
    let skip = chosen.len().saturating_sub(MAX_TAPS);
    let names = chosen
        .into_iter()
        .skip(skip)
        .map(|(_, t)| t.name.clone())
        .collect();
    (names, note)
}
