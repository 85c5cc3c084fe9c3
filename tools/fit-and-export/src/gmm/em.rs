//! Expectation–maximisation for a Gaussian mixture, step for step as
//! scikit-learn's `GaussianMixture` (so its fitted parameters are a fixture we
//! can test against), plus re-seeding of components that collapse. The
//! loop and the k-means start are [`super::base`]'s.

use super::base::{gaussian_parameters, Collapse, Fitted, MixtureFit};
use super::mixture::{precision_cholesky, Cov, Mixture, Singular};
use super::params::GmmParams;
use nalgebra::{DMatrix, DVector};

/// scikit-learn's `_initialize` from responsibilities.
pub fn init_from_resp(x: &DMatrix<f64>, resp: &DMatrix<f64>, p: &GmmParams) -> Result<Mixture, Singular> {
    let (nk, means, covs) = gaussian_parameters(x, resp, p.reg_covar, p.covariance);
    let n = x.nrows() as f64;
    Mixture::new(nk.iter().map(|v| v / n).collect(), means, covs)
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
        mix.2[k] = if super::mixture::is_diagonal(p.covariance) {
            Cov::Diag(v)
        } else {
            Cov::Full(DMatrix::from_diagonal(&v))
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

/// EM as a [`MixtureFit`]: the state is the mixture itself.
pub struct Em {
    p: GmmParams,
    reseeder: Reseeder,
}

impl Em {
    /// EM on `x` for mixtures of `components` components (the re-seeding
    /// budget is ten per component).
    pub fn new(x: &DMatrix<f64>, p: &GmmParams, components: usize) -> Em {
        Em {
            p: *p,
            reseeder: Reseeder {
                variance: global_variance(x),
                budget: 10 * components,
                used: 0,
            },
        }
    }
}

impl MixtureFit for Em {
    type State = Mixture;

    fn params(&self) -> &GmmParams {
        &self.p
    }

    /// [`init_from_resp`]; a k-means cluster with a singular covariance
    /// starts from one re-seeding M-step instead (with a budget of its own).
    fn start(&mut self, x: &DMatrix<f64>, resp: &DMatrix<f64>) -> Result<Mixture, Collapse> {
        init_from_resp(x, resp, &self.p).or_else(|_| {
            let row_ll = DVector::zeros(x.nrows());
            let mut reseeder = Reseeder {
                variance: self.reseeder.variance.clone(),
                budget: self.reseeder.budget,
                used: 0,
            };
            m_step(x, resp, &row_ll, &self.p, &mut reseeder)
        })
    }

    /// The objective is the mean log-likelihood of this E-step, as
    /// scikit-learn's (it describes the parameters before the M-step).
    fn step(&mut self, x: &DMatrix<f64>, mixture: &Mixture) -> Result<(Mixture, f64), Collapse> {
        let (row_ll, log_resp) = mixture.log_resp(x);
        let resp = log_resp.map(f64::exp);
        Ok((
            m_step(x, &resp, &row_ll, &self.p, &mut self.reseeder)?,
            row_ll.mean(),
        ))
    }

    fn mixture(&self, state: &Mixture) -> Mixture {
        state.clone()
    }

    fn reseeds(&self) -> usize {
        self.reseeder.used
    }
}

/// Runs EM from `init` until the mean log-likelihood changes by less than
/// `tol` or `max_iter` is reached. `progress(iter, mean_ll)` after each step.
pub fn run(
    x: &DMatrix<f64>,
    init: Mixture,
    p: &GmmParams,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<Fitted, Collapse> {
    let mut em = Em::new(x, p, init.k());
    Ok(em.run(x, init, progress)?.0)
}
