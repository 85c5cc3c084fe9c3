//! The one error type of the core.
//!
//! Small, `Copy` and allocation-free so that it can travel through a
//! microcontroller's log (`defmt` feature) as well as through `anyhow` on a host.

use core::fmt;

/// Everything that can go wrong when decoding a model file or scoring a frame.
///
/// Decoding errors say what part of the file is wrong; scoring errors say which
/// layer and which input. None of them can be produced by a well-formed model and
/// well-formed input, and no input makes the core panic instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The file is shorter than its header or than the body length it declares.
    Truncated,
    /// The file does not start with the `LSGM` magic bytes: not a model file.
    BadMagic,
    /// The file's format version is not one this build can read.
    UnsupportedVersion(u16),
    /// The CRC-32 of the body does not match the header: the file is corrupt.
    Checksum,
    /// The body is not a valid postcard encoding of the model.
    Decode,
    /// The model decoded but is inconsistent (shapes, non-finite numbers, ...).
    /// `layer` is `None` when the problem is not tied to one layer.
    Invalid {
        /// Index of the offending layer (or transition), if any.
        layer: Option<u8>,
        /// What is wrong, as a short phrase.
        reason: &'static str,
    },
    /// More layers than [`crate::MAX_LAYERS`].
    TooManyLayers,
    /// `score` was given a different number of feature slices than the model has layers.
    LayerCount {
        /// Layers in the model.
        expected: u16,
        /// Feature slices given.
        got: u16,
    },
    /// A feature slice has the wrong length.
    FeatureDim {
        /// Layer index.
        layer: u8,
        /// Dimension the model expects (its `dim_in`).
        expected: u32,
        /// Length of the slice given.
        got: u32,
    },
    /// A feature is NaN or infinite.
    NonFiniteFeature {
        /// Layer index.
        layer: u8,
        /// Position inside the layer's feature slice.
        index: u32,
    },
    /// The caller's scratch buffer is shorter than [`crate::Model::scratch_len`].
    ScratchTooSmall {
        /// Needed length in `f32`s.
        needed: u32,
        /// Given length.
        got: u32,
    },
    /// The contributions buffer is shorter than the number of layers.
    ContributionsTooSmall,
    /// A finite feature vector so far from every component (every component
    /// the previous layer's can reach) that its log-density overflowed `f32`:
    /// the frame is certainly out of distribution.
    Overflow {
        /// Layer index.
        layer: u8,
    },
    /// A tensor passed to a pooling helper does not match the shape given.
    Shape,
    /// A transition table cannot be quantised as asked (see the reason).
    Quantise(&'static str),
    /// The model could not be encoded (too large for the format's counters).
    Encode,
    /// A layer's means or precision factors do not fit the requested reduced
    /// storage (`f16` or `i8`, see [`crate::Storage`]).
    Storage {
        /// Layer index.
        layer: u8,
        /// What does not fit.
        reason: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated => f.write_str(
                "model file is truncated (shorter than its header says): copy it again from where it was \
                 written, or fit it again",
            ),
            Error::BadMagic => f.write_str("not an LSGM model file (bad magic bytes)"),
            Error::UnsupportedVersion(3) => f.write_str(
                "this version-3 model file has projected layers, and version 3 stored no residual term for \
                 them (version 4 added it; version-3 files without projections are still read): fit the \
                 model again with this release",
            ),
            Error::UnsupportedVersion(4) => f.write_str(
                "this version-4 model file names a grid pooling, which only version 5 has: the file is \
                 damaged or was written by a tool that mislabels its version; fit the model again with \
                 this release",
            ),
            Error::UnsupportedVersion(v) if v < crate::model::FORMAT_VERSION => write!(
                f,
                "model format version {v} is older than the oldest this build reads ({}): fit the model \
                 again with this release",
                crate::model::OLDEST_READ_VERSION
            ),
            Error::UnsupportedVersion(v) => write!(
                f,
                "model format version {v} is newer than this build's version {}; upgrade this program, or fit the model with the release that matches it",
                crate::model::FORMAT_VERSION
            ),
            Error::Checksum => f.write_str("model file is corrupt (CRC-32 mismatch)"),
            Error::Decode => f.write_str("model body is not a valid postcard encoding"),
            Error::Invalid {
                layer: Some(l),
                reason,
            } => write!(f, "invalid model: layer {l}: {reason}"),
            Error::Invalid { layer: None, reason } => write!(f, "invalid model: {reason}"),
            Error::TooManyLayers => write!(
                f,
                "model has more than {} layers; select fewer taps",
                crate::MAX_LAYERS
            ),
            Error::LayerCount { expected, got } => {
                write!(f, "expected features for {expected} layers, got {got}")
            }
            Error::FeatureDim { layer, expected, got } => write!(
                f,
                "layer {layer}: expected a feature vector of length {expected}, got {got}"
            ),
            Error::NonFiniteFeature { layer, index } => {
                write!(f, "layer {layer}: feature {index} is NaN or infinite")
            }
            Error::ScratchTooSmall { needed, got } => write!(
                f,
                "scratch buffer holds {got} f32s, the model needs {needed} (Model::scratch_len)"
            ),
            Error::ContributionsTooSmall => {
                f.write_str("contributions buffer is shorter than the number of layers")
            }
            Error::Overflow { layer } => write!(
                f,
                "layer {layer}: features are so far from every component that the density overflowed"
            ),
            Error::Shape => f.write_str("tensor length does not match the shape given"),
            Error::Quantise(reason) => write!(f, "cannot quantise transition table: {reason}"),
            Error::Encode => f.write_str("model is too large to encode"),
            Error::Storage { layer, reason } => write!(
                f,
                "layer {layer}: cannot store the Gaussians in reduced precision: {reason}; store this layer as f32"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

pub(crate) const fn invalid(layer: Option<u8>, reason: &'static str) -> Error {
    Error::Invalid { layer, reason }
}
