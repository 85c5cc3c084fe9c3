//! A fitted Gaussian mixture in `f64`, and the dense linear algebra shared by
//! EM, the Dirichlet-process fit and export: log-probabilities, responsibilities
//! and precision Cholesky factors (scikit-learn's conventions throughout; the
//! M-step statistics are in [`super::base`]).

use anyhow::{bail, Result};
use lsgm::{ComponentSpec, Covariance};
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

/// Covariance of one component.
#[derive(Debug, Clone, PartialEq)]
pub enum Cov {
    /// Full `d × d` matrix.
    Full(DMatrix<f64>),
    /// Diagonal variances.
    Diag(DVector<f64>),
}

/// Precision Cholesky factor of one component (`Σ⁻¹ = U Uᵀ`, U upper).
#[derive(Debug, Clone, PartialEq)]
pub enum PrecChol {
    /// Upper-triangular `d × d`.
    Full(DMatrix<f64>),
    /// `1/σ` per dimension.
    Diag(DVector<f64>),
}

impl PrecChol {
    /// `log|U|`.
    pub fn log_det(&self) -> f64 {
        match self {
            PrecChol::Full(u) => u.diagonal().iter().map(|v| v.ln()).sum(),
            PrecChol::Diag(p) => p.iter().map(|v| v.ln()).sum(),
        }
    }
}

/// The covariance is not positive definite (even after regularisation).
#[derive(Debug)]
pub struct Singular {
    /// Index of the component.
    pub component: usize,
}

/// scikit-learn's `_compute_precision_cholesky` for one component.
pub fn precision_cholesky(cov: &Cov, component: usize) -> Result<PrecChol, Singular> {
    match cov {
        Cov::Full(s) => {
            let l = s.clone().cholesky().ok_or(Singular { component })?.l();
            let d = l.nrows();
            let inv = l
                .solve_lower_triangular(&DMatrix::identity(d, d))
                .ok_or(Singular { component })?;
            let u = inv.transpose();
            if u.iter().all(|v| v.is_finite()) {
                Ok(PrecChol::Full(u))
            } else {
                Err(Singular { component })
            }
        }
        Cov::Diag(v) => {
            if v.iter().all(|&x| x > 0.0 && x.is_finite()) {
                Ok(PrecChol::Diag(v.map(|x| 1.0 / x.sqrt())))
            } else {
                Err(Singular { component })
            }
        }
    }
}

/// A Gaussian mixture.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    /// Mixing weights (sum to 1).
    pub weights: Vec<f64>,
    /// Means, one per component.
    pub means: Vec<DVector<f64>>,
    /// Covariances.
    pub covs: Vec<Cov>,
    /// Precision Cholesky factors, kept in sync with `covs`.
    pub prec: Vec<PrecChol>,
}

impl Mixture {
    /// Builds a mixture, computing the precision factors.
    pub fn new(weights: Vec<f64>, means: Vec<DVector<f64>>, covs: Vec<Cov>) -> Result<Self, Singular> {
        let prec = covs
            .iter()
            .enumerate()
            .map(|(k, c)| precision_cholesky(c, k))
            .collect::<Result<_, _>>()?;
        Ok(Mixture {
            weights,
            means,
            covs,
            prec,
        })
    }

    /// Number of components.
    pub fn k(&self) -> usize {
        self.weights.len()
    }

    /// Dimension.
    pub fn dim(&self) -> usize {
        self.means[0].len()
    }

    /// Covariance kind.
    pub fn covariance(&self) -> Covariance {
        match self.covs[0] {
            Cov::Full(_) => Covariance::Full,
            Cov::Diag(_) => Covariance::Diag,
        }
    }

    /// `log N(x_n | μ_k, Σ_k)` for every row and component (`N × K`), as in
    /// scikit-learn's `_estimate_log_gaussian_prob`. Components run in parallel.
    pub fn log_gaussian(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        log_gaussian_prob(x, &self.means, &self.prec)
    }

    /// Weighted log-probabilities `log φ_k + log N(x_n | k)` (`N × K`).
    pub fn weighted_log_prob(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        let mut lp = self.log_gaussian(x);
        for (k, mut col) in lp.column_iter_mut().enumerate() {
            let lw = self.weights[k].ln();
            col.iter_mut().for_each(|v| *v += lw);
        }
        lp
    }

    /// Per-row log-likelihood and responsibilities.
    pub fn log_resp(&self, x: &DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
        log_resp_of(self.weighted_log_prob(x))
    }

    /// Mean log-likelihood per row.
    pub fn mean_log_likelihood(&self, x: &DMatrix<f64>) -> f64 {
        self.log_resp(x).0.mean()
    }

    /// The core's component specs (f32, packed factors).
    pub fn to_specs(&self) -> Vec<ComponentSpec> {
        (0..self.k())
            .map(|k| ComponentSpec {
                log_weight: self.weights[k].ln() as f32,
                mean: self.means[k].iter().map(|&v| v as f32).collect(),
                precision_cholesky: match &self.prec[k] {
                    PrecChol::Diag(p) => p.iter().map(|&v| v as f32).collect(),
                    PrecChol::Full(u) => {
                        let d = u.nrows();
                        let mut out = vec![0.0f32; d * (d + 1) / 2];
                        for j in 0..d {
                            for i in 0..=j {
                                out[lsgm::density::packed_index(i, j)] = u[(i, j)] as f32;
                            }
                        }
                        out
                    }
                },
            })
            .collect()
    }

    /// Drops components with weight below `cut` and renormalises.
    pub fn prune(&self, cut: f64) -> Result<Mixture> {
        let keep: Vec<usize> = (0..self.k()).filter(|&k| self.weights[k] >= cut).collect();
        if keep.is_empty() {
            bail!("every component has weight below the pruning cut {cut}; lower the cut");
        }
        let total: f64 = keep.iter().map(|&k| self.weights[k]).sum();
        Ok(Mixture {
            weights: keep.iter().map(|&k| self.weights[k] / total).collect(),
            means: keep.iter().map(|&k| self.means[k].clone()).collect(),
            covs: keep.iter().map(|&k| self.covs[k].clone()).collect(),
            prec: keep.iter().map(|&k| self.prec[k].clone()).collect(),
        })
    }
}

/// Rows per block in the GEMM loops: big enough for an efficient product,
/// small enough that temporaries stay in cache.
pub(crate) const BLOCK: usize = 2048;

/// `log N(x_n | μ_k, U_k)` for all rows and components.
pub fn log_gaussian_prob(x: &DMatrix<f64>, means: &[DVector<f64>], prec: &[PrecChol]) -> DMatrix<f64> {
    let (n, d) = (x.nrows(), x.ncols());
    let constant = |k: usize| prec[k].log_det() - 0.5 * d as f64 * lsgm::density::LN_2PI;
    if let Some(PrecChol::Diag(_)) = prec.first() {
        // scikit-learn's expansion: Σ μ²p − 2 X (μ∘p)ᵀ + X² pᵀ with p = 1/σ²,
        // two matrix products for all components at once.
        let k = prec.len();
        let p = DMatrix::from_fn(d, k, |j, c| match &prec[c] {
            PrecChol::Diag(v) => v[j] * v[j],
            PrecChol::Full(_) => unreachable!("one covariance kind per mixture"),
        });
        let mp = DMatrix::from_fn(d, k, |j, c| means[c][j] * p[(j, c)]);
        let x2 = x.component_mul(x);
        let mut out = &x2 * &p - (x * &mp) * 2.0;
        for c in 0..k {
            let mu2p: f64 = (0..d).map(|j| means[c][j] * mp[(j, c)]).sum();
            let cst = constant(c);
            out.column_mut(c)
                .iter_mut()
                .for_each(|v| *v = cst - 0.5 * (*v + mu2p));
        }
        return out;
    }
    let cols: Vec<DVector<f64>> = (0..means.len())
        .into_par_iter()
        .map(|k| {
            let PrecChol::Full(u) = &prec[k] else {
                unreachable!("one covariance kind per mixture")
            };
            // Y = X U − μᵀU, maha = Σ_j Y²: a GEMM per block of rows, so the
            // temporary stays small.
            let mu_u = means[k].transpose() * u;
            let mut maha = DVector::<f64>::zeros(n);
            for start in (0..n).step_by(BLOCK) {
                let len = BLOCK.min(n - start);
                let y = x.rows(start, len) * u;
                for (i, row) in y.row_iter().enumerate() {
                    maha[start + i] = row.iter().zip(mu_u.iter()).map(|(a, b)| (a - b) * (a - b)).sum();
                }
            }
            let c = constant(k);
            maha.map(|m| c - 0.5 * m)
        })
        .collect();
    DMatrix::from_columns(&cols)
}

/// Log-sum-exp per row and the normalised log-responsibilities.
pub fn log_resp_of(mut weighted: DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let n = weighted.nrows();
    let mut norm = DVector::zeros(n);
    for (i, mut row) in weighted.row_iter_mut().enumerate() {
        let m = row.max();
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        norm[i] = lse;
        row.iter_mut().for_each(|v| *v -= lse);
    }
    (norm, weighted)
}

/// The covariance kinds this fitter builds. The core's [`Covariance`] is
/// `#[non_exhaustive]`: [`crate::gmm::GmmParams::validate`] refuses any kind
/// not listed here before fitting, so the fitting code branches on
/// [`is_diagonal`] alone.
pub fn fits(c: Covariance) -> bool {
    matches!(c, Covariance::Full | Covariance::Diag)
}

/// Whether `c` (one that [`fits`]) is fitted as diagonal variances rather
/// than full matrices.
pub fn is_diagonal(c: Covariance) -> bool {
    c == Covariance::Diag
}
