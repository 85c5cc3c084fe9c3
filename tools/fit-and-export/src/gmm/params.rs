//! Validated fitting parameters (invalid values are an error before any work).

use anyhow::{ensure, Result};
use lsgm::Covariance;

/// Which mixture to fit per layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MixtureKind {
    /// EM with a fixed number of components.
    Em {
        /// K.
        components: usize,
    },
    /// Variational Dirichlet-process mixture with truncation `k_max`.
    Dp {
        /// Truncation level.
        k_max: usize,
        /// Components whose expected weight is below this are pruned.
        prune: f64,
    },
}

/// Parameters of one per-layer mixture fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GmmParams {
    /// EM or DP.
    pub kind: MixtureKind,
    /// Full or diagonal covariance.
    pub covariance: Covariance,
    /// Added to covariance diagonals.
    pub reg_covar: f64,
    /// Convergence threshold on the change of the per-row objective.
    pub tol: f64,
    /// Iteration cap.
    pub max_iter: usize,
    /// Seed of k-means++.
    pub seed: u64,
}

/// The command line's defaults: a DP mixture, full covariance.
impl Default for GmmParams {
    fn default() -> Self {
        GmmParams {
            kind: MixtureKind::Dp {
                k_max: 20,
                prune: 1e-3,
            },
            covariance: Covariance::Full,
            reg_covar: 1e-6,
            tol: crate::cli::DP_DEFAULTS.0,
            max_iter: crate::cli::DP_DEFAULTS.1,
            seed: 0,
        }
    }
}

impl GmmParams {
    /// The component count to start from (K or the truncation level).
    pub fn k(&self) -> usize {
        match self.kind {
            MixtureKind::Em { components } => components,
            MixtureKind::Dp { k_max, .. } => k_max,
        }
    }

    /// Checks every value; the message says what to use instead.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.k() >= 1, "the number of components must be at least 1");
        ensure!(self.k() <= 16384, "at most 16384 components are supported");
        ensure!(
            self.reg_covar >= 0.0 && self.reg_covar.is_finite(),
            "--reg-covar must be a non-negative number (default 1e-6)"
        );
        ensure!(
            self.tol >= 0.0 && self.tol.is_finite(),
            "--tol must be a non-negative number (default 1e-3)"
        );
        ensure!(self.max_iter >= 1, "--max-iter must be at least 1");
        if let MixtureKind::Dp { prune, .. } = self.kind {
            ensure!(
                (0.0..1.0).contains(&prune),
                "the DP pruning cut must be in [0, 1)"
            );
        }
        Ok(())
    }
}
