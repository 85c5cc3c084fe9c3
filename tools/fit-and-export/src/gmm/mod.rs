//! Per-layer Gaussian mixtures: EM and the Dirichlet-process fit, both
//! [`MixtureFit`]s over [`base`]'s shared start, loop and statistics.

pub mod base;
pub mod dp;
pub mod em;
pub mod kmeans;
pub mod mixture;
pub mod params;

pub use base::{Collapse, Fit, Fitted, MixtureFit};
pub use mixture::Mixture;
use nalgebra::DMatrix;
pub use params::{GmmParams, MixtureKind};

/// Fits one layer's mixture of the kind `p` names, from the k-means start
/// to the exported mixture: the one place EM or the DP fit is chosen.
/// `progress(iter, objective)` after each step.
pub fn fit(x: &DMatrix<f64>, p: &GmmParams, progress: &mut dyn FnMut(usize, f64)) -> Result<Fit, Collapse> {
    match p.kind {
        MixtureKind::Em { components } => em::Em::new(x, p, components).fit(x, progress),
        MixtureKind::Dp { k_max, prune } => {
            let priors = dp::Priors::defaults(x, k_max, p.covariance);
            dp::Dp::new(priors, p, prune).fit(x, progress)
        }
    }
}
