//! # fit-and-export — the host side of LSGM
//!
//! Fits a Latent Sequential Gaussian Mixture from per-layer features of
//! in-distribution data and writes the `lsgm` core's model file. Layers,
//! bottom up:
//!
//! * [`io`] — `.npy` feature directories in (through the core's one `.npy`
//!   reader), atomic file writes out; [`extract`] — features from frames
//!   through the core's tract taps;
//! * [`gmm`] — per-layer mixtures: [`gmm::base`] holds what every mixture
//!   fit shares (the k-means++ start, the convergence loop, the component
//!   statistics) behind [`gmm::MixtureFit`]; EM ([`gmm::em`]) and the
//!   variational Dirichlet-process mixture ([`gmm::dp`]) implement it, and
//!   [`gmm::fit`] is the one place the kind is chosen; scikit-learn's
//!   conventions throughout;
//! * [`pca`] — per-layer projection; [`dimension`] — how wide each tap's
//!   mixture is (the edge-sized `--max-dim auto` rule);
//! * [`transitions`] — component-to-component tables from training traces;
//! * [`calibrate`] — threshold and quantiles from held-out rows;
//!   [`binomial`] — how sure the rate they measure is (Clopper–Pearson)
//!   and how many rows make it sure enough;
//!   [`scoring`] — bulk scoring with the core;
//! * [`fit`] — the pipeline as phases with typed results: split → per-layer
//!   mixture → responsibilities → transitions → calibration → encode;
//! * [`eval`] — the OOD benchmark harness: a [`eval::detector::Detector`]
//!   trait and one table of detectors ([`eval::detectors::REGISTRY`]);
//! * [`inspect`] — human and JSON views of a model file; [`cli`] — the
//!   flags shared by the fitting commands (the core's named choices are
//!   parsed by clap directly).

#![deny(missing_docs)]

/// `eprintln!` that never panics: a closed or full stderr (`2>&1 | head`,
/// `2>/dev/full`) loses the line instead.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { lsgm::frames::stderr_line(format_args!($($t)*)) };
}

pub use lsgm::frames::count;

pub mod binomial;
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
