//! What EM and the Dirichlet-process fit share, as scikit-learn's
//! `mixture/_base.py` (`BaseMixture`) is to its concrete mixtures: the
//! k-means start ([`kmeans_resp`]), the convergence loop
//! ([`MixtureFit::run`]) and the component statistics every M-step starts
//! from ([`gaussian_parameters`]). A concrete fit implements
//! [`MixtureFit`]'s start, step and final mixture; [`super::fit`] is the
//! one place that chooses which.

use super::kmeans;
use super::mixture::{is_diagonal, Cov, Mixture, BLOCK};
use super::params::GmmParams;
use anyhow::Result;
use lsgm::Covariance;
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Outcome of a fit.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The mixture as fitted (before [`MixtureFit::export`]).
    pub mixture: Mixture,
    /// Iterations run.
    pub n_iter: usize,
    /// Whether the objective changed by less than `tol`.
    pub converged: bool,
    /// Last objective: the mean log-likelihood of the E-step (EM) or the
    /// per-row variational lower bound (DP).
    pub lower_bound: f64,
    /// Components re-seeded along the way.
    pub reseeds: usize,
}

/// Components were re-seeded too often, or the data's own variance is zero.
#[derive(Debug)]
pub struct Collapse {
    /// Component that failed last.
    pub component: usize,
}

/// A layer's fit and the mixture it exports.
#[derive(Debug)]
pub struct Fit {
    /// The fit.
    pub fitted: Fitted,
    /// What the model stores: [`MixtureFit::export`] of the fitted mixture
    /// (an error when pruning leaves nothing), or, when that leaves one
    /// component, [`MixtureFit::single`].
    pub exported: Result<Mixture>,
    /// `exported` is [`MixtureFit::single`]: one component fitted in closed
    /// form, which the iterations (converged or not) do not affect.
    pub closed_form: bool,
}

/// Hard k-means++/Lloyd responsibilities (seeded): scikit-learn's
/// `init_params="kmeans"`, the start of every fit.
pub fn kmeans_resp(x: &DMatrix<f64>, k: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    kmeans::one_hot(&kmeans::labels(x, k, &mut rng, 100), k)
}

/// A Gaussian mixture fit, step for step as one of scikit-learn's concrete
/// mixtures: the implementor gives the start, one step and the final
/// mixture; the loop and the k-means start are shared.
pub trait MixtureFit {
    /// What one step carries to the next (the mixture for EM, the
    /// variational posterior for the DP fit).
    type State;

    /// The fitting parameters (`max_iter`, `tol`, `k`, the seed).
    fn params(&self) -> &GmmParams;

    /// scikit-learn's `_initialize`: the first state from the k-means
    /// start's responsibilities.
    fn start(&mut self, x: &DMatrix<f64>, resp: &DMatrix<f64>) -> Result<Self::State, Collapse>;

    /// One E-step and M-step: the next state and the objective whose change
    /// `tol` judges.
    fn step(&mut self, x: &DMatrix<f64>, state: &Self::State) -> Result<(Self::State, f64), Collapse>;

    /// The mixture a state scores with.
    fn mixture(&self, state: &Self::State) -> Mixture;

    /// Components re-seeded so far.
    fn reseeds(&self) -> usize {
        0
    }

    /// The mixture to store, from the one fitted (the DP fit prunes).
    fn export(&self, mixture: &Mixture) -> Result<Mixture> {
        Ok(mixture.clone())
    }

    /// The convergence loop (scikit-learn's `BaseMixture.fit`): steps from
    /// `state` until the objective changes by less than `tol` or `max_iter`
    /// steps have run; `progress(iter, objective)` after each. Returns the
    /// fit and its last state.
    fn run(
        &mut self,
        x: &DMatrix<f64>,
        mut state: Self::State,
        progress: &mut dyn FnMut(usize, f64),
    ) -> Result<(Fitted, Self::State), Collapse> {
        let (max_iter, tol) = (self.params().max_iter, self.params().tol);
        let mut objective = f64::NEG_INFINITY;
        let mut converged = false;
        let mut n_iter = 0;
        for it in 1..=max_iter {
            n_iter = it;
            let prev = objective;
            let (next, value) = self.step(x, &state)?;
            state = next;
            objective = value;
            progress(it, objective);
            if (objective - prev).abs() < tol {
                converged = true;
                break;
            }
        }
        let fitted = Fitted {
            mixture: self.mixture(&state),
            n_iter,
            converged,
            lower_bound: objective,
            reseeds: self.reseeds(),
        };
        Ok((fitted, state))
    }

    /// One component fitted on every row of `x` in closed form: the first
    /// M-step ([`MixtureFit::start`]) from responsibilities that are all 1
    /// — EM's sample mean and covariance (plus `reg_covar`), the DP fit's
    /// posterior with truncation 1 — which is where the iterations of a
    /// one-component fit lead (the E-step of one component gives every
    /// row responsibility 1 again).
    fn single(&mut self, x: &DMatrix<f64>) -> Result<Mixture, Collapse> {
        let state = self.start(x, &DMatrix::from_element(x.nrows(), 1, 1.0))?;
        Ok(self.mixture(&state))
    }

    /// The whole fit: the k-means start, [`MixtureFit::run`] and
    /// [`MixtureFit::export`]. When the export keeps one component it is
    /// refitted by [`MixtureFit::single`]: a DP fit stopped by `max_iter`
    /// (or a converged one) leaves it fitted to the rows the pruned
    /// components did not hold (up to `K · prune` of the weight), and
    /// whether the iterations converged then no longer matters. Should the
    /// closed form fail (a singular covariance), the exported one is kept.
    fn fit(&mut self, x: &DMatrix<f64>, progress: &mut dyn FnMut(usize, f64)) -> Result<Fit, Collapse> {
        let resp = kmeans_resp(x, self.params().k(), self.params().seed);
        let start = self.start(x, &resp)?;
        let (fitted, _) = self.run(x, start, progress)?;
        let (exported, closed_form) = match self.export(&fitted.mixture) {
            Ok(m) if m.k() == 1 => match self.single(x) {
                Ok(single) => (Ok(single), true),
                Err(_) => (Ok(m), false),
            },
            other => (other, false),
        };
        Ok(Fit {
            exported,
            closed_form,
            fitted,
        })
    }
}

/// scikit-learn's `_estimate_gaussian_parameters`: `N_k`, means and
/// covariances (with `reg_covar` on the diagonal) from responsibilities.
pub fn gaussian_parameters(
    x: &DMatrix<f64>,
    resp: &DMatrix<f64>,
    reg_covar: f64,
    covariance: Covariance,
) -> (DVector<f64>, Vec<DVector<f64>>, Vec<Cov>) {
    let eps10 = 10.0 * f64::EPSILON;
    let nk: DVector<f64> = DVector::from_iterator(resp.ncols(), resp.column_iter().map(|c| c.sum() + eps10));
    let sums = resp.transpose() * x; // K × d
    let means: Vec<DVector<f64>> = (0..resp.ncols())
        .map(|k| sums.row(k).transpose() / nk[k])
        .collect();
    let covs = if is_diagonal(covariance) {
        diag_covariances(x, resp, &nk, &means, &sums, reg_covar)
    } else {
        full_covariances(x, resp, &nk, &means, reg_covar)
    };
    (nk, means, covs)
}

/// `Σ_n r_n (x_n − μ)(x_n − μ)ᵀ / N_k + reg·I` per component, accumulated
/// per block of rows.
fn full_covariances(
    x: &DMatrix<f64>,
    resp: &DMatrix<f64>,
    nk: &DVector<f64>,
    means: &[DVector<f64>],
    reg_covar: f64,
) -> Vec<Cov> {
    let d = x.ncols();
    (0..resp.ncols())
        .into_par_iter()
        .map(|k| {
            let r = resp.column(k);
            let mut cov = DMatrix::zeros(d, d);
            for start in (0..x.nrows()).step_by(BLOCK) {
                let len = BLOCK.min(x.nrows() - start);
                let mut diff = x.rows(start, len).into_owned();
                for (j, mut col) in diff.column_iter_mut().enumerate() {
                    let m = means[k][j];
                    col.iter_mut().for_each(|v| *v -= m);
                }
                // (r ∘ D)ᵀ D with the transpose materialised: nalgebra's
                // `gemm_tr` is dot-product based, `gemm` is the fast kernel.
                let mut weighted_t = diff.transpose();
                let rb = r.rows(start, len);
                for (mut col, &w) in weighted_t.column_iter_mut().zip(rb.iter()) {
                    col *= w;
                }
                cov.gemm(1.0, &weighted_t, &diff, 1.0);
            }
            cov /= nk[k];
            for j in 0..d {
                cov[(j, j)] += reg_covar;
            }
            Cov::Full(cov)
        })
        .collect()
}

/// avg_X2 − 2 avg_X_means + avg_means2 + reg per component, as
/// scikit-learn, with avg_X2 = rᵀ X² / N_k from one matrix product
/// (`sums` is rᵀ X).
fn diag_covariances(
    x: &DMatrix<f64>,
    resp: &DMatrix<f64>,
    nk: &DVector<f64>,
    means: &[DVector<f64>],
    sums: &DMatrix<f64>,
    reg_covar: f64,
) -> Vec<Cov> {
    let avg_x2 = resp.transpose() * x.component_mul(x);
    (0..resp.ncols())
        .map(|k| {
            Cov::Diag(DVector::from_fn(x.ncols(), |j, _| {
                let m = means[k][j];
                let avg_x_means = m * sums[(k, j)] / nk[k];
                avg_x2[(k, j)] / nk[k] - 2.0 * avg_x_means + m * m + reg_covar
            }))
        })
        .collect()
}
