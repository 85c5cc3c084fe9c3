//! # lsgm — the LSGM out-of-distribution scoring core
//!
//! A CNN's softmax stays confidently wrong on frames unlike anything it was
//! trained on. LSGM (Latent Sequential Gaussian Mixture) flags them: each
//! tapped hidden layer has a Gaussian mixture over its pooled features,
//! consecutive layers are linked by transition matrices between mixture
//! components, and a frame's score is the log joint likelihood of its trace
//! through the layers. Low score = out of distribution.
//!
//! This crate is the part that runs on the device. It is `no_std`, never
//! allocates while scoring, and reads its model straight from the file bytes,
//! so the same code runs beside tract on a Raspberry Pi and alone on a
//! Cortex-M4. The layers, bottom up; each uses only those above it in this
//! list (the arrows the module imports follow), plus the one [`Error`] type,
//! which sits beside them all (its messages quote the format version):
//!
//! * [`bytes`] — unaligned little-endian `f32`, `f16` and `i8` arrays inside
//!   the model bytes, and the dot products over them.
//! * [`kind`] — the choices a model is built from, each with one name:
//!   [`Chain`], [`Covariance`], [`Storage`], [`Quantisation`] (`Display`,
//!   `FromStr`, and clap's `ValueEnum` with the `clap` feature).
//! * [`density`] — component log-densities from precomputed precision
//!   Cholesky factors (full or diagonal), with an optional projection and
//!   its residual term; a layer's [`density::Mixture`].
//! * [`quant`] — transition tables as `f32`, `u16` or `u8` codes with a
//!   proven bound on the score error.
//! * [`chain`] — the scaled forward recursion over mixtures and tables, the
//!   whole hot path; it knows nothing of the file around them.
//! * [`Verdict`] — score vs threshold and the layer to blame.
//! * [`model`] — the file: a 16-byte header ([`model::field`], signed by
//!   [`model::header`]) and a postcard body ([`model::wire`]);
//!   [`Model::from_bytes`] validates it all once into the views the layers
//!   above read; [`Model::judge`] makes a frame whose density overflows the
//!   most out-of-distribution frame there is, not an error. With `alloc`,
//!   [`ModelSpec`] builds and encodes one, and [`Preprocess`] is the one
//!   description of how a frame becomes the network's input
//!   ([`model::preprocess`]).
//! * [`pool`] — global average pooling of tapped tensors (stands alone).
//! * `reference` (`std`) — the plain `f64` scorer: a public baseline and the
//!   tests' yardstick.
//! * `onnx` (feature) — tract inference with tapped hidden layers, and
//!   `onnx::bind`, which checks that a model belongs to a network;
//!   `frames` (feature) — image, IDX, `.npy` and raw-stream loaders
//!   (recognised by content) and the code that applies a [`Preprocess`].
//!
//! ```
//! # fn demo(bytes: &[u8], features: &[&[f32]]) -> Result<(), lsgm::Error> {
//! let model = lsgm::Model::from_bytes(bytes)?;          // once
//! let mut scratch = vec![0.0; model.scratch_len()];       // once
//! let mut contributions = vec![0.0; model.num_layers()];  // once
//! let score = model.score(features, &mut scratch, &mut contributions)?; // per frame
//! let verdict = model.verdict(score, &contributions, None);
//! # let _ = verdict; Ok(()) }
//! ```
//!
//! Features: `std` (implies `alloc`), `alloc` (the encoder), `onnx` and
//! `frames` (the monitor's inference and loaders), `monitor` (the
//! `lsgm-monitor` binary; these four are the default), `clap` (`ValueEnum`
//! on the [`kind`] enums), `defmt` (`defmt::Format` on [`Error`],
//! [`Verdict`] and the [`kind`] enums). With
//! `--no-default-features` the crate builds for `thumbv7em-none-eabihf`
//! without any allocator.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod bytes;
pub mod chain;
pub mod density;
mod error;
#[cfg(feature = "frames")]
pub mod frames;
pub mod kind;
mod math;
pub mod model;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod pool;
pub mod quant;
#[cfg(feature = "std")]
pub mod reference;
mod scratch;
mod verdict;

pub use error::Error;
pub use kind::{Chain, Covariance, ParseError, Quantisation, Storage};
pub use model::Model;
#[cfg(feature = "alloc")]
pub use model::{ComponentSpec, LayerSpec, ModelSpec, Preprocess, ProjectionSpec};
pub use scratch::{scratch_len_for, Scratch};
pub use verdict::{Verdict, OVERFLOW_SCORE};

/// Most layers a model may have (the layer list lives in a fixed-capacity
/// vector so that decoding needs no heap).
pub const MAX_LAYERS: usize = 16;
