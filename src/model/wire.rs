//! The postcard body of a model file, exactly as it is on the wire.
//!
//! Every numeric array is a borrowed little-endian byte string (see
//! [`crate::bytes`]), so decoding allocates nothing and a model can be used
//! straight from `include_bytes!`. postcard is not self-describing: fields are
//! never reordered or removed; a new layout gets a new
//! [`FORMAT_VERSION`](super::FORMAT_VERSION). Version 2 added the
//! [`Means`] and [`Factors`] storage enums (version 1 had bare `f32` arrays);
//! version 3 the full input description ([`Preprocess`]: colour order,
//! resize policy, datum type, range), an optional preprocessing for models
//! fitted from features, and the tap layout in [`Pooling`]; version 4 the
//! residual term of a [`Projection`] (two `f32`s after its arrays); version 5
//! the grid poolings ([`Pooling::GridAverageNchw`], [`Pooling::GridAverageNhwc`],
//! appended so every earlier variant keeps its postcard index).
//!
//! Field order is the wire order. Arrays (all `f32` little-endian unless noted):
//!
//! | field | length |
//! |---|---|
//! | `quantiles` | pairs `(q, score)` |
//! | `Preprocess::mean`, `std` | `channels` |
//! | `Layer::log_weights`, `log_norms` | `K` |
//! | `Means::F32` / `Means::F16` | `K × dim`, f32 / f16 LE |
//! | `Factors::F32` / `Factors::F16` | `K × n` f32 / f16 LE, `n = dim(dim+1)/2` (full, packed) or `dim` (diag) |
//! | `Factors::I8::scales`, `codes` | f16 LE, `K × dim` (full) or `K` (diag); `K × n` i8 |
//! | `Projection::mean`, `matrix` | `dim_in`, `dim × dim_in` |
//! | `Transition::F32::values` | `K_i × K_{i+1}` |
//! | `Transition::U16::codes` | `K_i × K_{i+1}` u16 LE |
//! | `Transition::U8::codebook`, `codes` | 256, `K_i × K_{i+1}` u8 |

use crate::MAX_LAYERS;
use serde::{Deserialize, Serialize};

pub use super::preprocess::{Colour, Datum, Layout, PixelRange, Resize};
pub use crate::kind::{Chain, Covariance};

/// How a tapped tensor becomes a feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pooling {
    /// Mean over H and W of a 1×C×H×W map.
    GlobalAverageNchw,
    /// Mean over H and W of a 1×H×W×C map (TensorFlow/Keras exports).
    GlobalAverageNhwc,
    /// A 1×C vector, taken as it is.
    Vector,
    /// Fitted from feature files: the caller computes the features.
    Precomputed,
    /// Means over a `side × side` grid of cells of a 1×C×H×W map, cell-major
    /// (`side²·C` features: cell `(r, c)`'s C means at `(r·side + c)·C`). Cell
    /// bounds split H and W as numpy's `array_split` does: the first `H mod
    /// side` rows of cells are one pixel taller. Where a feature lies in the
    /// frame survives the pooling (issue #27: a 2×2 grid separates near-OOD
    /// classes a global mean mixes up).
    GridAverageNchw {
        /// Cells per side, 2..=[`Pooling::MAX_GRID`] (at most H and W).
        side: u8,
    },
    /// [`Pooling::GridAverageNchw`] of a 1×H×W×C map.
    GridAverageNhwc {
        /// Cells per side, 2..=[`Pooling::MAX_GRID`] (at most H and W).
        side: u8,
    },
}

impl Pooling {
    /// The largest grid side a model file may name.
    pub const MAX_GRID: u8 = 16;

    /// Whether this is a grid pooling (which only format version 5 can name).
    pub fn is_grid(self) -> bool {
        matches!(
            self,
            Pooling::GridAverageNchw { .. } | Pooling::GridAverageNhwc { .. }
        )
    }

    /// Cells per side: the grid's side, 1 for every other pooling.
    pub fn side(self) -> usize {
        match self {
            Pooling::GridAverageNchw { side } | Pooling::GridAverageNhwc { side } => side as usize,
            _ => 1,
        }
    }

    /// The pooling of the same map with `side × side` cells (`side = 1`:
    /// the global mean); `None` for a pooling that takes no map or a side
    /// outside 1..=[`Pooling::MAX_GRID`].
    pub fn with_grid(self, side: u8) -> Option<Pooling> {
        let nchw = match self {
            Pooling::GlobalAverageNchw | Pooling::GridAverageNchw { .. } => true,
            Pooling::GlobalAverageNhwc | Pooling::GridAverageNhwc { .. } => false,
            Pooling::Vector | Pooling::Precomputed => return None,
        };
        match (side, nchw) {
            (1, true) => Some(Pooling::GlobalAverageNchw),
            (1, false) => Some(Pooling::GlobalAverageNhwc),
            (2..=Self::MAX_GRID, true) => Some(Pooling::GridAverageNchw { side }),
            (2..=Self::MAX_GRID, false) => Some(Pooling::GridAverageNhwc { side }),
            _ => None,
        }
    }

    /// The variant's name (`GlobalAverageNchw`, …, `GridAverageNhwc`), as
    /// `fit-and-export inspect --json` and Python's `Layer.pooling` give it;
    /// the grid's side is [`Pooling::side`].
    pub fn name(self) -> &'static str {
        match self {
            Pooling::GlobalAverageNchw => "GlobalAverageNchw",
            Pooling::GlobalAverageNhwc => "GlobalAverageNhwc",
            Pooling::Vector => "Vector",
            Pooling::Precomputed => "Precomputed",
            Pooling::GridAverageNchw { .. } => "GridAverageNchw",
            Pooling::GridAverageNhwc { .. } => "GridAverageNhwc",
        }
    }

    /// Features this pooling makes of a map with `channels` channels
    /// (`side²·channels`); `None` on overflow.
    pub fn features(self, channels: usize) -> Option<usize> {
        channels.checked_mul(self.side() * self.side())
    }
}

impl core::fmt::Display for Pooling {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Pooling::GlobalAverageNchw => "mean over H, W of NCHW",
            Pooling::GlobalAverageNhwc => "mean over H, W of NHWC",
            Pooling::Vector => "vector",
            Pooling::Precomputed => "features given",
            Pooling::GridAverageNchw { side } => return write!(f, "means over a {side}×{side} grid of NCHW"),
            Pooling::GridAverageNhwc { side } => return write!(f, "means over a {side}×{side} grid of NHWC"),
        })
    }
}

/// Input preprocessing the monitor must reproduce (see
/// [`super::preprocess`] for what each step does).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Preprocess<'a> {
    /// ONNX input name.
    pub input: &'a str,
    /// The tensor used as class logits.
    pub logits: &'a str,
    /// Tensor layout of the input.
    pub layout: Layout,
    /// Channels and their order.
    pub colour: Colour,
    /// Input height in pixels.
    pub height: u32,
    /// Input width in pixels.
    pub width: u32,
    /// How frames of another size are brought to the input's.
    pub resize: Resize,
    /// Element type of the input tensor.
    pub datum: Datum,
    /// What a pixel means before mean/std.
    pub range: PixelRange,
    /// Per-channel mean (`channels` f32).
    pub mean: &'a [u8],
    /// Per-channel standard deviation (`channels` f32).
    pub std: &'a [u8],
}

/// Optional linear projection before a layer's mixture, with the isotropic
/// Gaussian on the dropped directions (see [`crate::density::Projection`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Projection<'a> {
    /// Centring vector (`dim_in`).
    pub mean: &'a [u8],
    /// Row-major `dim × dim_in` matrix with orthonormal rows.
    pub matrix: &'a [u8],
    /// Variance `σ² > 0` of each dropped direction.
    pub residual_variance: f32,
    /// Degrees of freedom `ν` of the residual term, `0 ≤ ν ≤ dim_in − dim`.
    pub residual_dof: f32,
}

/// A layer's component means, component-major.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Means<'a> {
    /// `f32` LE.
    F32 {
        /// Values.
        values: &'a [u8],
    },
    /// IEEE binary16 LE.
    F16 {
        /// Values.
        values: &'a [u8],
    },
}

/// A layer's precision factors, component-major (see [`crate::density`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Factors<'a> {
    /// `f32` LE.
    F32 {
        /// Values.
        values: &'a [u8],
    },
    /// IEEE binary16 LE.
    F16 {
        /// Values.
        values: &'a [u8],
    },
    /// `i8` codes with `f16` scales: `U_ij = scale_j · code_ij`.
    I8 {
        /// One scale per column (full) or per component (diag), f16 LE.
        scales: &'a [u8],
        /// Codes, two's complement.
        codes: &'a [u8],
    },
}

/// One tapped layer and its Gaussian mixture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Layer<'a> {
    /// Tap name (ONNX node or tensor name).
    pub name: &'a str,
    /// How the tapped tensor is pooled.
    pub pooling: Pooling,
    /// Length of the pooled feature vector.
    pub dim_in: u32,
    /// Projection to `dim` dimensions, if any (else `dim == dim_in`).
    #[serde(borrow)]
    pub projection: Option<Projection<'a>>,
    /// Dimension the mixture lives in.
    pub dim: u32,
    /// Covariance kind of every component.
    pub covariance: Covariance,
    /// Number of components `K`.
    pub components: u32,
    /// `log φ_k`.
    pub log_weights: &'a [u8],
    /// `log|U_k| − dim/2 · log 2π`.
    pub log_norms: &'a [u8],
    /// Means.
    #[serde(borrow)]
    pub means: Means<'a>,
    /// Precision factors.
    #[serde(borrow)]
    pub factors: Factors<'a>,
    /// Median of this layer's score contribution on held-out in-distribution
    /// data (used to say which layer made a frame OOD).
    pub median_contribution: f32,
}

/// Transition table between layer `i` and `i + 1`, row-major `K_i × K_{i+1}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Transition<'a> {
    /// `f32` values.
    F32 {
        /// Values.
        values: &'a [u8],
    },
    /// 16-bit codes, see [`crate::quant`].
    U16 {
        /// Exponent base bits.
        base: u32,
        /// Codes, u16 LE.
        codes: &'a [u8],
    },
    /// 8-bit codes with a 256-value codebook, see [`crate::quant`].
    U8 {
        /// Codebook (256 f32).
        codebook: &'a [u8],
        /// Codes.
        codes: &'a [u8],
    },
}

/// The whole model body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Body<'a> {
    /// Free text naming the network the model was fitted for (file name, hash).
    pub source: &'a str,
    /// Chain mode.
    pub chain: Chain,
    /// Calibrated threshold: scores below it are OOD.
    pub threshold: f32,
    /// Fraction of held-out in-distribution frames that pass the threshold.
    pub calibration_tpr: f32,
    /// `(q, score)` pairs of the held-out in-distribution score distribution.
    pub quantiles: &'a [u8],
    /// Input preprocessing; `None` for a model fitted from feature files.
    #[serde(borrow)]
    pub preprocess: Option<Preprocess<'a>>,
    /// Layers in network order.
    #[serde(borrow)]
    pub layers: heapless::Vec<Layer<'a>, MAX_LAYERS>,
    /// `layers.len() − 1` transition tables.
    #[serde(borrow)]
    pub transitions: heapless::Vec<Transition<'a>, MAX_LAYERS>,
}
