//! ViM (Wang, Li, Feng & Zhang, "ViM: Out-Of-Distribution with
//! Virtual-logit Matching", CVPR 2022), as OpenOOD's `vim_postprocessor.py`
//! (and the authors' `benchmark.py`) compute it. On the penultimate
//! features `f` (`d` values) and the final linear layer `W`, `b`:
//!
//! - origin `u = −pinv(W) b` (the paper's Eq. 3);
//! - principal subspace: the `D` leading eigenvectors of `Σ = (1/N) Σ_i
//!   (f_i − u)(f_i − u)ᵀ` over the `--train` rows (covariance about `u`,
//!   scikit-learn's `EmpiricalCovariance(assume_centered=True)`), `P⊥` the
//!   other `d − D` (Eq. 4);
//! - `α = mean_i max_c z_ic / mean_i ‖P⊥ᵀ(f_i − u)‖` over the training rows,
//!   `z = W f + b` (Eq. 6);
//! - score `logsumexp(W f + b) − α ‖P⊥ᵀ(f − u)‖`: the energy minus the
//!   virtual logit, the negated logarithm of Eq. 7's virtual-class
//!   probability up to a monotone map (OpenOOD's `-vlogit + energy`).

use super::energy;
use crate::eval::detector::{FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use crate::eval::head::Head;
use anyhow::{ensure, Result};
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// ViM with the principal dimension of [`principal_dim`] (or a fixed one).
#[derive(Default)]
pub struct Vim {
    /// `D`; `None` for [`principal_dim`] of the feature length.
    pub dim: Option<usize>,
}

/// The principal dimension `D` for `d`-dimensional features: the authors'
/// code (`benchmark.py`: `D = 1000` when `d ≥ 2048`, else 512, for its
/// 768- to 2048-dimensional networks), and `d / 2` below 768 features, as
/// OpenOOD runs it on smaller networks (`dim` 256 for the 512 features of
/// ResNet-18 on CIFAR, 42 for LeNet's 84). Always below `d`.
pub fn principal_dim(d: usize) -> usize {
    match d {
        2048.. => 1000,
        768.. => 512,
        _ => d / 2,
    }
}

impl NamedDetector for Vim {
    const NAME: &'static str = "vim";
    const NEEDS: Needs = Needs::TRAIN_HEAD;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        let head = data.head()?;
        let f = head.features(data.train()?)?;
        let dim = self.dim.unwrap_or_else(|| principal_dim(f.ncols()));
        Ok(Box::new(VirtualLogit::fit(head, f, dim)?))
    }
}

/// The fitted origin, residual subspace and scale.
pub struct VirtualLogit<'a> {
    head: &'a Head,
    /// `u`, `d`.
    pub origin: DVector<f64>,
    /// `P⊥`, `d × (d − D)`: the eigenvectors of the `d − D` smallest eigenvalues.
    pub residual: DMatrix<f64>,
    /// `α`.
    pub alpha: f64,
}

/// `pinv(W)` as numpy computes it: singular values below `1e-15 · σ_max` dropped.
pub(super) fn pinv(w: &DMatrix<f64>) -> DMatrix<f64> {
    let svd = w.clone().svd(true, true);
    let cut = 1e-15 * svd.singular_values.max();
    svd.pseudo_inverse(cut).expect("both factors were computed")
}

impl<'a> VirtualLogit<'a> {
    /// Fits on the `N × d` training penultimate features `f` with `D = dim`.
    pub fn fit(head: &'a Head, f: &DMatrix<f64>, dim: usize) -> Result<Self> {
        let d = f.ncols();
        ensure!(
            dim < d,
            "vim: the principal dimension {dim} leaves no residual of {d} features"
        );
        let origin = -(pinv(&head.weight) * &head.bias);
        let centred = about(f, &origin);
        let cov = centred.tr_mul(&centred) / f.nrows() as f64;
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let residual = eig.eigenvectors.select_columns(order[dim..].iter());
        let norms = row_norms(&(centred * &residual));
        let logits = head.logits(f);
        let max_logit = logits.row_iter().map(|r| r.max()).sum::<f64>() / f.nrows() as f64;
        let mean_norm = norms.iter().sum::<f64>() / norms.len() as f64;
        ensure!(
            mean_norm > 0.0,
            "vim: the training features have no residual outside their {dim} principal axes"
        );
        Ok(VirtualLogit {
            head,
            origin,
            residual,
            alpha: max_logit / mean_norm,
        })
    }
}

/// The rows of `f` minus `u`.
fn about(f: &DMatrix<f64>, u: &DVector<f64>) -> DMatrix<f64> {
    let mut c = f.clone();
    for mut row in c.row_iter_mut() {
        row -= u.transpose();
    }
    c
}

fn row_norms(x: &DMatrix<f64>) -> Vec<f64> {
    x.row_iter().map(|r| r.norm()).collect()
}

impl FittedDetector for VirtualLogit<'_> {
    /// `logsumexp(W f + b) − α ‖P⊥ᵀ(f − u)‖` of every row of the `N × d` penultimate features.
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        let f = self.head.features(x)?;
        let norms = row_norms(&(about(f, &self.origin) * &self.residual));
        let energies = energy(&self.head.logits(f));
        Ok(energies
            .iter()
            .zip(norms)
            .map(|(e, n)| e - self.alpha * n)
            .collect())
    }
}
