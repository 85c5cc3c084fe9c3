//! Per-layer Gaussian mixtures: EM and the Dirichlet-process fit.

pub mod converge;
pub mod dp;
pub mod em;
pub mod kmeans;
pub mod mixture;
pub mod params;

pub use em::Fitted;
pub use mixture::Mixture;
pub use params::{GmmParams, MixtureKind};
