//! # fit-and-export — the host side of LSGM
//!
//! Fits a Latent Sequential Gaussian Mixture from per-layer features of
//! in-distribution data and writes the `lsgm` core's model file. Layers:
//!
//! * [`io`] — `.npy` feature directories in, atomic file writes out;
//! * [`gmm`] — per-layer mixtures: k-means++, EM ([`gmm::em`]) and the
//!   variational Dirichlet-process mixture ([`gmm::dp`]), scikit-learn's
//!   conventions throughout;
//! * [`pca`] — per-layer projection; [`dimension`] — how wide each tap's
//!   mixture is (the edge-sized `--max-dim auto` rule);
//! * [`transitions`] — component-to-component tables from training traces;
//! * [`calibrate`] — threshold and quantiles from held-out rows;
//! * [`fit`] — the pipeline; [`scoring`] — bulk scoring with the core;
//! * [`inspect`] — human and JSON views of a model file.

#![deny(missing_docs)]

/// `eprintln!` that never panics: a closed or full stderr (`2>&1 | head`,
/// `2>/dev/full`) loses the line instead.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { lsgm::frames::stderr_line(format_args!($($t)*)) };
}

pub mod calibrate;
pub mod cli;
pub mod dimension;
pub mod eval;
pub mod extract;
pub mod fit;
pub mod gmm;
pub mod inspect;
pub mod io;
pub mod pca;
pub mod scoring;
pub mod transitions;
