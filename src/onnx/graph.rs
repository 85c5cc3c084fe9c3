//! The ONNX graph before optimisation: its input, its logits, the tensors
//! that can be tapped and the automatic choice among them.

use super::head::{self, Site};
use super::layout::channel_axes;
use super::load::{load, node_name};
use super::logits::{self, Probabilities, Tensors};
use super::stages;
use crate::model::preprocess::{Datum, Layout};
use crate::model::wire::Pooling;
use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tract_onnx::pb;
use tract_onnx::prelude::Datum as _;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// What the user says about a network that its file does not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// `(height, width)` frames are fed at, for a network whose input has
    /// dynamic spatial dimensions (`?×3×?×?`); must match a fixed input.
    pub input_size: Option<(u32, u32)>,
    /// The tensor to use as class logits, when the graph has several
    /// candidate outputs (an output name, a node name, or any tensor).
    pub logits: Option<String>,
    /// An LSGM model's record of the network it was fitted for (its
    /// `source`): compared with this file's identity before anything else,
    /// so a model used with another network is told so, whatever else
    /// differs (see [`Graph::check_fitted_for`]).
    pub fitted_for: Option<String>,
}

/// The network's image input.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// ONNX input name.
    pub name: String,
    /// NCHW or NHWC.
    pub layout: Layout,
    /// 1 or 3.
    pub channels: usize,
    /// Height in pixels (fixed by the file or by [`LoadOptions::input_size`]).
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `f32` or `u8`.
    pub datum: Datum,
    /// Whether height and width were dynamic in the file.
    pub dynamic_size: bool,
}

impl Input {
    /// The tensor shape of one frame.
    pub fn shape(&self) -> [usize; 4] {
        self.layout.shape(self.channels, self.height, self.width)
    }
}

/// The tensor read as class logits, and how the network turns it into
/// probabilities (see [`Probabilities`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    /// Tensor name (what the model file stores).
    pub tensor: String,
    /// Number of classes.
    pub classes: usize,
    /// What the network's output makes of them: the confidence the monitor
    /// reports ([`Probabilities::top_class`]).
    pub probabilities: Probabilities,
    /// Set when the graph's output was read back to its logits (a Softmax,
    /// a Sigmoid, a scale), or could not be: says so, for the user.
    pub note: Option<String>,
    pub(crate) outlet: OutletId,
}

/// A tensor that can be tapped: a 4-D map with a known channel axis and a
/// spatial extent, or a 1×C vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Tap {
    /// The name to tap it by: the ONNX node name, or the output tensor's
    /// name when several nodes share that node name.
    pub name: String,
    /// Output tensor name.
    pub tensor: String,
    /// ONNX node name (may be empty or shared by several nodes).
    pub node: String,
    /// ONNX operator type.
    pub op: String,
    /// Output shape for one frame.
    pub shape: Vec<usize>,
    /// How it becomes a feature vector; `None` when it is a 4-D map whose
    /// channel axis cannot be known (it is listed, but cannot be tapped).
    pub pooling: Option<Pooling>,
    pub(crate) outlet: OutletId,
}

impl Tap {
    /// Channels of the map (the pooled feature vector's length under a global mean).
    pub fn channels(&self) -> usize {
        match self.pooling {
            Some(Pooling::GlobalAverageNhwc | Pooling::GridAverageNhwc { .. }) => self.shape[3],
            _ => self.shape.get(1).copied().unwrap_or(0),
        }
    }

    /// Spatial resolution (H, W) of a 4-D map with a known channel axis.
    pub fn resolution(&self) -> Option<(usize, usize)> {
        match self.pooling? {
            Pooling::GlobalAverageNchw | Pooling::GridAverageNchw { .. } => {
                Some((self.shape[2], self.shape[3]))
            }
            Pooling::GlobalAverageNhwc | Pooling::GridAverageNhwc { .. } => {
                Some((self.shape[1], self.shape[2]))
            }
            Pooling::Vector | Pooling::Precomputed => None,
        }
    }

    /// The pooling of this tap with a `side × side` grid of means (`side =
    /// 1`: its global mean, or a vector tap as it is) and the feature count
    /// it makes. Errors name the tap when it is not a map, or a map with
    /// fewer rows or columns than `side`.
    pub fn grid(&self, side: u8) -> Result<(Pooling, usize)> {
        let pooling = self.pooling.context("checked by Graph::find")?;
        if side == 1 && pooling.with_grid(1).is_none() {
            return Ok((pooling, self.channels()));
        }
        let Some((h, w)) = self.resolution() else {
            bail!(
                "tap {} is a {:?} vector, not a feature map: a {side}×{side} grid needs a 4-D map; \
                 tap a convolution's output, or give --grid 1",
                self.name,
                self.shape
            );
        };
        ensure!(
            h >= side as usize && w >= side as usize,
            "tap {}'s map is {h}×{w} (H×W), too small for a {side}×{side} grid of cells: give a --grid of \
             at most {}, or tap an earlier, larger map",
            self.name,
            h.min(w)
        );
        let grid = pooling.with_grid(side).with_context(|| {
            format!(
                "--grid {side}: a grid has 1 to {} cells per side",
                Pooling::MAX_GRID
            )
        })?;
        let width = grid
            .features(self.channels())
            .context("feature count overflows")?;
        Ok((grid, width))
    }
}

/// A loaded, shape-analysed ONNX classifier.
pub struct Graph {
    pub(crate) model: InferenceModel,
    /// The file it came from.
    pub path: PathBuf,
    /// The image input.
    pub input: Input,
    /// The class logits.
    pub logits: Logits,
    /// `NAME bytes:N crc32:XXXXXXXX [data:FILE]` of the ONNX file and its
    /// external weights: stored in every model fitted for it, so the
    /// monitor can tell a model fitted for another network.
    pub identity: String,
    taps: Vec<Tap>,
    auto: Vec<String>,
    auto_note: Option<String>,
    /// Nodes whose output shape tract could not infer.
    pub unknown_shapes: Vec<String>,
    /// Node names used by more than one node (their taps go by tensor name).
    pub repeated_names: Vec<String>,
    /// Where the final linear layer is, or why there is none
    /// ([`Graph::linear_head`] reads it).
    pub(super) head: std::result::Result<Site, String>,
    /// Whether the network computes in float16 inside (its taps are
    /// converted to `f32` before pooling).
    pub(super) float16: bool,
}

/// How much slower tract runs a float16 network than its float32 original
/// on a CPU without float16 arithmetic: measured with `lsgm-monitor
/// --threads 1 --bench 200` (README, "float16 networks").
const FLOAT16_SLOWER: &str = "the demo network converted to float16 ran 350–490× slower than in \
     float32 on an x86-64 CPU (median inference 0.38–0.56 s against 1.1–1.6 ms a frame)";

/// Operators whose output is the same map as their input, laid out or
/// typed differently: offering them would offer one map twice.
const COPIES: &[&str] = &["Transpose", "Identity", "Dropout", "Cast", "CastLike"];

fn dims(fact: &InferenceFact) -> Option<Vec<Option<usize>>> {
    let shape = &fact.shape;
    if shape.is_open() {
        return None;
    }
    Some(
        shape
            .dims()
            .map(|d| {
                d.concretize()
                    .and_then(|d| tract_onnx::tract_hir::internal::DimLike::as_usize(&d))
            })
            .collect(),
    )
}

fn concrete_shape(model: &InferenceModel, outlet: OutletId) -> Option<Vec<usize>> {
    let fact = model.outlet_fact(outlet).ok()?;
    fact.shape.as_concrete_finite().ok().flatten().map(|s| s.to_vec())
}

/// Whether `outlet` holds floats that taps and logits can be read from:
/// `f32`, or `f16` (networks converted to float16 inside) and `f64`, which
/// [`super::network::Runner`] converts to `f32` before pooling.
fn is_float(model: &InferenceModel, outlet: OutletId) -> bool {
    model
        .outlet_fact(outlet)
        .ok()
        .and_then(|f| f.datum_type.concretize())
        .is_some_and(|t| [f16::datum_type(), f32::datum_type(), f64::datum_type()].contains(&t))
}

/// The input's height and width: fixed by the file, or given for a
/// dynamic input (`--input-size`, or the size a model file stores).
fn spatial_size(
    path: &Path,
    name: &str,
    shown: &str,
    (h, w): (Option<usize>, Option<usize>),
    given: Option<(u32, u32)>,
) -> Result<(usize, usize)> {
    let (height, width) = match (h, w, given) {
        (Some(h), Some(w), None) => (h, w),
        (Some(h), Some(w), Some((gh, gw))) => {
            ensure!(
                (gh as usize, gw as usize) == (h, w),
                "{}: the network's input is fixed at {h}×{w} (H×W) but {gh}×{gw} was asked for \
                 (--input-size, or the size stored in the LSGM file); drop --input-size",
                path.display()
            );
            (h, w)
        }
        (_, _, Some((gh, gw))) => {
            ensure!(
                h.is_none_or(|h| h == gh as usize) && w.is_none_or(|w| w == gw as usize),
                "{}: input {name} ({shown}) fixes one side, which the size {gh}×{gw} contradicts",
                path.display()
            );
            (gh as usize, gw as usize)
        }
        (_, _, None) => bail!(
            "{}: input {name} has a dynamic size ({shown}); give the size frames are fed at with \
             --input-size HxW (e.g. --input-size 224x224)",
            path.display()
        ),
    };
    ensure!(
        height > 0 && width > 0 && height <= 1 << 14 && width <= 1 << 14,
        "{}: input size {height}×{width} is out of range",
        path.display()
    );
    Ok((height, width))
}

/// Decides layout, size and element type of the input from its declared
/// fact and the user's `--input-size`.
fn analyse_input(path: &Path, model: &InferenceModel, opts: &LoadOptions) -> Result<Input> {
    let inputs = model.input_outlets()?;
    ensure!(
        !inputs.is_empty(),
        "{}: the graph has no inputs; an image classifier takes one image tensor",
        path.display()
    );
    let names: Vec<String> = inputs.iter().map(|o| model.node(o.node).name.clone()).collect();
    ensure!(
        inputs.len() == 1,
        "{}: the graph has {} inputs ({}); only networks with one image input are supported",
        path.display(),
        inputs.len(),
        names.join(", ")
    );
    let name = names[0].clone();
    let fact = model.input_fact(0)?;
    let datum = match fact.datum_type.concretize() {
        Some(t) if t == f32::datum_type() => Datum::F32,
        Some(t) if t == u8::datum_type() => Datum::U8,
        Some(t) if t == f16::datum_type() => bail!(
            "{}: input {name} is float16; only float32 and uint8 image inputs are supported: convert the \
             network keeping float32 inputs and outputs (onnxconverter-common's \
             convert_float_to_float16(model, keep_io_types=True)), whose float16 maps are tapped",
            path.display()
        ),
        Some(t) => bail!(
            "{}: input {name} has element type {t:?}; only float32 and uint8 image inputs are supported",
            path.display()
        ),
        None => bail!("{}: input {name} declares no element type", path.display()),
    };
    let d = dims(fact).unwrap_or_default();
    let shown = d
        .iter()
        .map(|v| v.map_or("?".to_string(), |v| v.to_string()))
        .collect::<Vec<_>>()
        .join("×");
    ensure!(
        d.len() == 4,
        "{}: input {name} has shape {shown}; expected an image batch N×C×H×W or N×H×W×C",
        path.display()
    );
    ensure!(
        matches!(d[0], None | Some(1)),
        "{}: input {name} has a fixed batch of {} (shape {shown}); export it with batch 1 or a dynamic batch",
        path.display(),
        d[0].unwrap_or(0)
    );
    let colour = |v: Option<usize>| matches!(v, Some(1) | Some(3));
    let (layout, c, h, w) = match (colour(d[1]), colour(d[3])) {
        (true, false) => (Layout::Nchw, d[1], d[2], d[3]),
        (false, true) => (Layout::Nhwc, d[3], d[1], d[2]),
        (true, true) => bail!(
            "{}: input {name} has shape {shown}: axis 1 and axis 3 could both be the channels; \
             export it with a fixed size so the layout is unambiguous",
            path.display()
        ),
        (false, false) => bail!(
            "{}: input {name} has shape {shown}; expected 1 or 3 channels on axis 1 (NCHW) or axis 3 (NHWC)",
            path.display()
        ),
    };
    let dynamic_size = h.is_none() || w.is_none();
    let (height, width) = spatial_size(path, &name, &shown, (h, w), opts.input_size)?;
    Ok(Input {
        name,
        layout,
        channels: c.expect("checked: 1 or 3"),
        height,
        width,
        datum,
        dynamic_size,
    })
}

/// Errors if `source` (a model file's record of its network) names
/// another network than the one whose identity is `identity`.
fn check_identity(identity: &str, source: &str) -> Result<()> {
    let crc = |s: &str| {
        s.split_whitespace()
            .find_map(|w| w.strip_prefix("crc32:"))
            .map(str::to_owned)
    };
    if let Some(want) = crc(source) {
        let got = crc(identity).unwrap_or_default();
        if want != got {
            bail!(
                "the LSGM file was fitted for another network ({source}) than this one ({}); \
                     fit one for this network",
                identity
            );
        }
    }
    Ok(())
}

impl Graph {
    /// Loads `path` (with its external weights), fixes the input to one
    /// frame, infers every shape, finds the logits and lists the taps.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Graph> {
        let loaded = load(path)?;
        if let Some(source) = &opts.fitted_for {
            check_identity(&loaded.identity, source)?;
        }
        let mut model = loaded.model;
        make_names_unique(&mut model);
        let proto = loaded.proto;
        let input = analyse_input(path, &model, opts)?;
        let fact = match input.datum {
            Datum::F32 => f32::fact(input.shape()),
            Datum::U8 => u8::fact(input.shape()),
        };
        model.set_input_fact(0, fact.into())?;
        model
            .analyse(false)
            .with_context(|| format!("{}: tract's shape inference failed", path.display()))?;
        let graph = proto.graph.as_ref().context("the ONNX file holds no graph")?;
        let float16 = computes_in_float16(&model);

        let outlets = outlets_by_tensor(&model);
        let producer: HashMap<&str, &pb::NodeProto> = graph
            .node
            .iter()
            .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
            .collect();
        let mut name_count: HashMap<&str, usize> = HashMap::new();
        for n in &graph.node {
            *name_count.entry(node_name(n)).or_default() += 1;
        }
        let mut repeated_names: Vec<String> = name_count
            .iter()
            .filter(|(n, &c)| c > 1 && !n.is_empty())
            .map(|(n, _)| n.to_string())
            .collect();
        repeated_names.sort();
        let rank = |t: &str| {
            outlets
                .get(t)
                .and_then(|&o| model.outlet_fact(o).ok())
                .and_then(|f| f.shape.rank().concretize())
                .map(|r| r as usize)
        };
        let input_axis = match input.layout {
            Layout::Nchw => 1,
            Layout::Nhwc => 3,
        };
        let axes = channel_axes(graph, &[(&input.name, input_axis)], rank);
        let (taps, unknown_shapes) = list_taps(&model, graph, &outlets, &axes, &name_count)?;
        let logits = find_logits(path, &model, &outlets, &producer, (&proto, opts))?;
        let cx = head::Context {
            model: &model,
            outlets: &outlets,
            producer: &producer,
            taps: &taps,
        };
        let head = head::locate(&cx, &logits.tensor);
        let fact = |t: &str| outlets.get(t).and_then(|&o| model.outlet_fact(o).ok());
        let (auto, auto_note) = stages::auto_taps(
            graph,
            &input.name,
            (&logits.tensor, logits.classes),
            &taps,
            &|t| fact(t).is_some_and(|f| f.value.concretize().is_some()),
            &|t| outlets.get(t).and_then(|&o| concrete_shape(&model, o)),
        );
        Ok(Graph {
            model,
            path: path.to_path_buf(),
            input,
            logits,
            identity: loaded.identity,
            taps,
            auto,
            auto_note,
            unknown_shapes,
            repeated_names,
            head,
            float16,
        })
    }

    /// Errors if `source` (a model file's record of its network) names
    /// another ONNX file than this one, by CRC-32. Sources without a CRC
    /// (models fitted from feature files) pass.
    pub fn check_fitted_for(&self, source: &str) -> Result<()> {
        check_identity(&self.identity, source)
    }

    /// Every tensor that could be tapped, in graph order: 4-D maps with a
    /// spatial extent and 1×C vectors (`pooling` is `None` for maps whose
    /// channel axis is unknown).
    pub fn candidates(&self) -> &[Tap] {
        &self.taps
    }

    /// The paper's rule, "the last layer of each main block", made
    /// structural: the output of each stage — after its residual `Add` or
    /// its `Concat` and their activation —, one per spatial resolution
    /// (H, W), the deepest being the pre-pool map; never a tensor inside a
    /// block (an inverted-residual expansion, a squeeze-excitation branch),
    /// never the classifier head, never input normalisation; at most five.
    /// Networks without residual merges get the last map of each
    /// resolution. The rule in full is `stages::auto_taps`'s.
    pub fn auto_taps(&self) -> Vec<String> {
        self.auto.clone()
    }

    /// What the user should know before running a network that computes in
    /// float16 inside on a CPU without float16 arithmetic (x86-64, ARM
    /// before ARMv8.2): tract emulates it, far slower than float32
    /// (`FLOAT16_SLOWER`); `None` otherwise.
    pub fn float16_note(&self) -> Option<String> {
        (self.float16 && !tract_linalg::has_fp16()).then(|| {
            format!(
                "{} computes in float16 inside, and this CPU has no float16 arithmetic that tract \
                 uses, so tract emulates it: {FLOAT16_SLOWER}. Export the network in float32 (float16 \
                 gains nothing on such a CPU), or run it where float16 is native (ARMv8.2 and later, \
                 e.g. Jetson Orin) — or, once lsgm-monitor has an onnxruntime engine, with that",
                self.path.display()
            )
        })
    }

    /// What the user should know about [`Graph::auto_taps`]'s choice: set
    /// when the graph has other outputs than the logits' (a detector's
    /// boxes), whose heads it never taps.
    pub fn auto_note(&self) -> Option<&str> {
        self.auto_note.as_deref()
    }

    /// Position of the tap `name` in the network's node order (ONNX lists
    /// nodes topologically, so a tap computed from another comes after it).
    pub fn position(&self, name: &str) -> Result<usize> {
        let tap = self.find(name)?;
        Ok(self
            .taps
            .iter()
            .position(|t| std::ptr::eq(t, tap))
            .unwrap_or(usize::MAX))
    }

    /// The element type tract inferred for `outlet` (the onnxruntime
    /// engine declares its outputs with it).
    #[cfg(feature = "onnxruntime")]
    pub(crate) fn datum_type(&self, outlet: OutletId) -> Result<DatumType> {
        self.model
            .outlet_fact(outlet)?
            .datum_type
            .concretize()
            .with_context(|| {
                format!(
                    "{}: a tapped tensor has no known element type",
                    self.path.display()
                )
            })
    }

    /// The tap called `name` (its tap name or tensor name), or an error
    /// that names the closest candidates.
    pub fn find(&self, name: &str) -> Result<&Tap> {
        if self.repeated_names.iter().any(|n| n == name) {
            let tensors: Vec<&str> = self
                .taps
                .iter()
                .filter(|t| t.node == name)
                .map(|t| t.tensor.as_str())
                .collect();
            bail!(
                "several nodes of the ONNX model are named {name:?}; tap them by their output tensor \
                 names instead ({})",
                tensors.join(", ")
            );
        }
        let found = self
            .taps
            .iter()
            .find(|t| t.name == name)
            .or_else(|| self.taps.iter().find(|t| t.tensor == name));
        match found {
            Some(t) if t.pooling.is_some() => Ok(t),
            Some(t) => bail!(
                "{name:?} is a {:?} map whose channel axis cannot be known (it follows a reshape); \
                 tap a node before it",
                t.shape
            ),
            None if self.unknown_shapes.iter().any(|n| n == name) => {
                bail!("tract could not infer the shape of {name:?}, so it cannot be tapped")
            }
            None => {
                let mut near: Vec<(usize, &str)> = self
                    .taps
                    .iter()
                    .map(|t| (strsim::levenshtein(&t.name, name), t.name.as_str()))
                    .collect();
                near.sort();
                let list: Vec<&str> = near.iter().take(5).map(|n| n.1).collect();
                bail!(
                    "no tappable node named {name:?} in the ONNX model; closest: {} (the `layers` \
                     command lists every tappable node)",
                    list.join(", ")
                )
            }
        }
    }
}

/// Whether any tensor of the analysed graph is float16.
fn computes_in_float16(model: &InferenceModel) -> bool {
    model.nodes().iter().any(|n| {
        n.outputs
            .iter()
            .any(|o| o.fact.datum_type.concretize() == Some(f16::datum_type()))
    })
}

/// Every labelled outlet of tract's graph by ONNX tensor name.
fn outlets_by_tensor(model: &InferenceModel) -> HashMap<String, OutletId> {
    let mut outlets = HashMap::new();
    for (id, node) in model.nodes().iter().enumerate() {
        for slot in 0..node.outputs.len() {
            let o = OutletId::new(id, slot);
            if let Some(label) = model.outlet_label(o) {
                outlets.insert(label.to_string(), o);
            }
        }
    }
    outlets
}

/// The candidate taps in graph order, and the nodes whose shape tract could
/// not infer. A node's first output is a candidate when it is a float 1×C
/// vector or a 4-D map with a spatial extent (pooled by its channel axis,
/// `None` when unknown), and not a copy of another map ([`COPIES`]).
fn list_taps(
    model: &InferenceModel,
    graph: &pb::GraphProto,
    outlets: &HashMap<String, OutletId>,
    axes: &HashMap<String, usize>,
    name_count: &HashMap<&str, usize>,
) -> Result<(Vec<Tap>, Vec<String>)> {
    let mut taps = Vec::new();
    let mut unknown_shapes = Vec::new();
    for n in &graph.node {
        let Some(tensor) = n.output.first().filter(|t| !t.is_empty()) else {
            continue;
        };
        let Some(&outlet) = outlets.get(tensor) else {
            continue;
        };
        if COPIES.contains(&n.op_type.as_str()) || model.outlet_fact(outlet)?.value.concretize().is_some() {
            continue; // a copy, or a folded constant (weights, shapes)
        }
        let Some(shape) = concrete_shape(model, outlet) else {
            unknown_shapes.push(node_name(n).to_string());
            continue;
        };
        if !is_float(model, outlet) {
            continue;
        }
        let pooling = match shape[..] {
            [1, _, _, _] => match axes.get(tensor.as_str()) {
                Some(1) if shape[2] * shape[3] > 1 => Some(Pooling::GlobalAverageNchw),
                Some(3) if shape[1] * shape[2] > 1 => Some(Pooling::GlobalAverageNhwc),
                Some(_) => continue, // a 1×1 map: its vector is offered after the Flatten
                None => None,
            },
            [1, c] if c > 0 => Some(Pooling::Vector),
            _ => continue,
        };
        let node = node_name(n);
        let name = if name_count.get(node).copied().unwrap_or(0) > 1 || node.is_empty() {
            tensor.clone()
        } else {
            node.to_string()
        };
        taps.push(Tap {
            name,
            tensor: tensor.clone(),
            node: node.to_string(),
            op: n.op_type.clone(),
            shape,
            pooling,
            outlet,
        });
    }
    Ok((taps, unknown_shapes))
}

/// tract refuses to optimise a graph whose node names repeat (ONNX only
/// recommends unique names, and exporters do repeat them); taps and logits
/// are found by outlet, so the repeats are renamed after their first output
/// tensor (unique in ONNX), else suffixed with the node id.
fn make_names_unique(model: &mut InferenceModel) {
    let mut count: HashMap<String, usize> = HashMap::new();
    for n in model.nodes() {
        *count.entry(n.name.clone()).or_default() += 1;
    }
    for id in 0..model.nodes().len() {
        if count[&model.node(id).name] > 1 {
            let label = model.outlet_label(OutletId::new(id, 0)).map(str::to_string);
            let name = match label {
                Some(l) if !count.contains_key(&l) => l,
                _ => format!("{}#{id}", model.node(id).name),
            };
            model.node_mut(id).name = name;
        }
    }
}

/// The graph's version of the default operator set (`""` or `ai.onnx`).
fn default_opset(proto: &pb::ModelProto) -> i64 {
    proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version)
}

/// The graph's class logits ([`logits::choose`] on tract's shapes and
/// constants): `--logits` (a tensor or a node name), else the one output
/// shaped like a class-score vector, read back through its ending.
fn find_logits(
    path: &Path,
    model: &InferenceModel,
    outlets: &HashMap<String, OutletId>,
    producer: &HashMap<&str, &pb::NodeProto>,
    (proto, opts): (&pb::ModelProto, &LoadOptions),
) -> Result<Logits> {
    let outlet = |t: &str| -> Option<OutletId> {
        outlets
            .get(t)
            .copied()
            .or_else(|| model.node_id_by_name(t).ok().map(|id| OutletId::new(id, 0)))
    };
    let named = match &opts.logits {
        Some(name) => {
            let o = outlet(name)
                .with_context(|| format!("{}: --logits {name:?}: no such tensor or node", path.display()))?;
            Some(model.outlet_label(o).unwrap_or(name).to_string())
        }
        None => None,
    };
    let shape = |t: &str| outlet(t).and_then(|o| concrete_shape(model, o));
    let float = |t: &str| outlet(t).is_some_and(|o| is_float(model, o));
    let constant = |t: &str| -> Option<Vec<f32>> {
        let value = model.outlet_fact(outlet(t)?).ok()?.value.concretize()?;
        let value = value.cast_to::<f32>().ok()?;
        let plain = value.try_as_plain_ram().ok()?;
        Some(plain.as_slice::<f32>().ok()?.to_vec())
    };
    let tensors = Tensors {
        producer,
        shape: &shape,
        float: &float,
        constant: &constant,
        opset: default_opset(proto),
    };
    let graph = proto.graph.as_ref().context("the ONNX file holds no graph")?;
    let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let ending = logits::choose(path, &tensors, &outputs, named.as_deref())?;
    Ok(Logits {
        outlet: outlet(&ending.tensor).context("the logits tensor has no outlet")?,
        tensor: ending.tensor,
        classes: ending.classes,
        probabilities: ending.probabilities,
        note: ending.note,
    })
}
