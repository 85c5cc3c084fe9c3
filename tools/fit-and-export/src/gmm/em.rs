//! Expectation–maximisation for a Gaussian mixture, step for step as
//! scikit-learn's `GaussianMixture` (so its fitted parameters are a fixture we
//! can test against), plus re-seeding of components that collapse.

use super::converge::iterate;
use super::kmeans;
use super::mixture::{gaussian_parameters, precision_cholesky, Cov, Mixture, Singular};
use super::params::GmmParams;
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Outcome of a fit.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The mixture.
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

/// scikit-learn's `_initialize` from responsibilities.
pub fn init_from_resp(x: &DMatrix<f64>, resp: &DMatrix<f64>, p: &GmmParams) -> Result<Mixture, Singular> {
    let (nk, means, covs) = gaussian_parameters(x, resp, p.reg_covar, p.covariance);
    let n = x.nrows() as f64;
    Mixture::new(nk.iter().map(|v| v / n).collect(), means, covs)
}

/// Hard k-means++/Lloyd responsibilities (seeded).
pub fn kmeans_resp(x: &DMatrix<f64>, k: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    kmeans::one_hot(&kmeans::labels(x, k, &mut rng, 100), k)
}

fn global_variance(x: &DMatrix<f64>) -> DVector<f64> {
    let n = x.nrows() as f64;
    DVector::from_iterator(
        x.ncols(),
        x.column_iter().map(|c| {
            let m = c.sum() / n;
            c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n
        }),
    )
}

struct Reseeder {
    variance: DVector<f64>,
    budget: usize,
    used: usize,
}

impl Reseeder {
    /// Re-seeds component `k` on the worst-explained row not yet taken.
    fn reseed(
        &mut self,
        mix: &mut (Vec<f64>, Vec<DVector<f64>>, Vec<Cov>),
        k: usize,
        x: &DMatrix<f64>,
        order: &mut impl Iterator<Item = usize>,
        p: &GmmParams,
    ) -> Result<(), Collapse> {
        self.used += 1;
        if self.used > self.budget {
            return Err(Collapse { component: k });
        }
        let row = order.next().ok_or(Collapse { component: k })?;
        mix.0[k] = 1.0 / x.nrows() as f64;
        mix.1[k] = x.row(row).transpose();
        let v = self.variance.map(|s| s + p.reg_covar);
        mix.2[k] = match p.covariance {
            lsgm::Covariance::Full => Cov::Full(DMatrix::from_diagonal(&v)),
            lsgm::Covariance::Diag => Cov::Diag(v),
        };
        Ok(())
    }
}

/// M-step; components holding less than one row's worth of mass, or whose
/// covariance is not positive definite, are re-seeded.
fn m_step(
    x: &DMatrix<f64>,
    resp: &DMatrix<f64>,
    row_ll: &DVector<f64>,
    p: &GmmParams,
    reseeder: &mut Reseeder,
) -> Result<Mixture, Collapse> {
    let (nk, means, covs) = gaussian_parameters(x, resp, p.reg_covar, p.covariance);
    let total: f64 = nk.sum();
    let mut parts = (nk.iter().map(|v| v / total).collect::<Vec<_>>(), means, covs);
    let mut worst: Vec<usize> = (0..x.nrows()).collect();
    worst.sort_by(|&a, &b| row_ll[a].total_cmp(&row_ll[b]));
    let mut order = worst.into_iter();
    for k in 0..parts.0.len() {
        if nk[k] < 1.0 || precision_cholesky(&parts.2[k], k).is_err() {
            reseeder.reseed(&mut parts, k, x, &mut order, p)?;
        }
    }
    let s: f64 = parts.0.iter().sum();
    parts.0.iter_mut().for_each(|w| *w /= s);
    Mixture::new(parts.0, parts.1, parts.2).map_err(|e| Collapse {
        component: e.component,
    })
}

/// Runs EM from `init` until the mean log-likelihood changes by less than
/// `tol` or `max_iter` is reached. `progress(iter, mean_ll)` after each step.
pub fn run(
    x: &DMatrix<f64>,
    init: Mixture,
    p: &GmmParams,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<Fitted, Collapse> {
    let mut reseeder = Reseeder {
        variance: global_variance(x),
        budget: 10 * init.k(),
        used: 0,
    };
    let done = iterate(init, p.max_iter, p.tol, progress, |mixture| {
        // The objective is the mean log-likelihood of this E-step, as
        // scikit-learn's (it describes the parameters before the M-step).
        let (row_ll, log_resp) = mixture.log_resp(x);
        let resp = log_resp.map(f64::exp);
        Ok((m_step(x, &resp, &row_ll, p, &mut reseeder)?, row_ll.mean()))
    })?;
    Ok(Fitted {
        mixture: done.state,
        n_iter: done.n_iter,
        converged: done.converged,
        lower_bound: done.objective,
        reseeds: reseeder.used,
    })
}

/// k-means initialisation then [`run`].
pub fn fit(
    x: &DMatrix<f64>,
    p: &GmmParams,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<Fitted, Collapse> {
    let resp = kmeans_resp(x, p.k(), p.seed);
    let init = match init_from_resp(x, &resp, p) {
        Ok(m) => m,
        Err(_) => {
            // A k-means cluster with a singular covariance: start EM from
            // one re-seeding M-step instead.
            let row_ll = DVector::zeros(x.nrows());
            let mut reseeder = Reseeder {
                variance: global_variance(x),
                budget: 10 * p.k(),
                used: 0,
            };
            m_step(x, &resp, &row_ll, p, &mut reseeder)?
        }
    };
    run(x, init, p, progress)
}
