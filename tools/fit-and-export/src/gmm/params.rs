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

impl MixtureKind {
    /// How a warning names a fit of this kind that did not converge, and
    /// what it suggests giving fewer of.
    pub fn not_converged(&self) -> (&'static str, &'static str) {
        match self {
            MixtureKind::Em { .. } => ("EM", "fewer components (--components)"),
            MixtureKind::Dp { .. } => ("the Dirichlet-process fit", "a lower truncation (--dp KMAX)"),
        }
    }

    /// The flag that asked for `k` components and how to ask for fewer,
    /// for an error about too few training rows.
    pub fn fewer_components(&self, k: usize) -> String {
        match self {
            MixtureKind::Em { .. } => format!("--components {k}: give fewer"),
            MixtureKind::Dp { .. } => {
                format!("--dp {k} (the Dirichlet-process truncation, default 40): give a lower one")
            }
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
        ensure!(
            (1..=16384).contains(&self.k()),
            "--components / --dp must be from 1 to 16384 components"
        );
        ensure!(
            self.reg_covar >= 0.0 && self.reg_covar.is_finite(),
            "--reg-covar must be a non-negative finite number"
        );
        ensure!(
            self.tol >= 0.0 && self.tol.is_finite(),
            "--tol must be a non-negative finite number"
        );
        ensure!(self.max_iter >= 1, "--max-iter must be at least 1");
        ensure!(
            super::mixture::fits(self.covariance),
            "--covariance {} is not fitted by this version of fit-and-export; use full or diag",
            self.covariance
        );
        if let MixtureKind::Dp { prune, .. } = self.kind {
            ensure!((0.0..1.0).contains(&prune), "--dp-prune must be in [0, 1)");
        }
        Ok(())
    }
}
