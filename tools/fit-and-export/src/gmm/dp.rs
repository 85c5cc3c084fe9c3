//! Dirichlet-process Gaussian mixture by variational inference (Blei & Jordan
//! 2006): a truncated stick-breaking prior over weights and Normal–Wishart
//! priors over means and precisions. It is the model of scikit-learn's
//! `BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process")`
//! with its default priors, written step for step like it so that its fitted
//! values are a test fixture:
//!
//! * weight concentration prior `1/K`, mean precision prior `1`, mean prior
//!   the data mean, degrees of freedom prior `d`, covariance prior the data
//!   covariance or per-feature variance (both `ddof = 1`);
//! * E-step with the expected log weights and expected log-densities;
//! * M-step updating the stick, mean and Wishart posteriors;
//! * the lower bound as scikit-learn computes it (up to a constant).
//!
//! One deliberate difference: convergence is judged on the lower bound *per
//! row* (scikit-learn uses the total), so `tol` means the same as for EM.
//! Scoring uses the posterior-expected parameters (`weights_`, `means_`,
//! `covariances_`), after pruning components with negligible weight.

use super::base::{gaussian_parameters, Collapse, Fitted, MixtureFit};
use super::mixture::{log_gaussian_prob, log_resp_of, Cov, Mixture, PrecChol};
use super::params::GmmParams;
use anyhow::Result;
use lsgm::Covariance;
use nalgebra::{DMatrix, DVector};
use statrs::function::gamma::{digamma, ln_gamma};

/// Priors of the variational model.
#[derive(Debug, Clone)]
pub struct Priors {
    /// Stick-breaking concentration γ.
    pub weight_concentration: f64,
    /// β₀.
    pub mean_precision: f64,
    /// m₀.
    pub mean: DVector<f64>,
    /// ν₀.
    pub dof: f64,
    /// W₀⁻¹ (full) or its diagonal.
    pub covariance: Cov,
}

impl Priors {
    /// scikit-learn's defaults for data `x` and truncation `k`.
    pub fn defaults(x: &DMatrix<f64>, k: usize, covariance: Covariance) -> Priors {
        let (n, d) = (x.nrows() as f64, x.ncols());
        let mean = DVector::from_iterator(d, x.column_iter().map(|c| c.sum() / n));
        let mut centred = x.clone();
        for (j, mut col) in centred.column_iter_mut().enumerate() {
            col.iter_mut().for_each(|v| *v -= mean[j]);
        }
        let cov = if super::mixture::is_diagonal(covariance) {
            Cov::Diag(DVector::from_iterator(
                d,
                centred
                    .column_iter()
                    .map(|c| c.norm_squared() / (n - 1.0).max(1.0)),
            ))
        } else {
            Cov::Full(centred.transpose() * &centred / (n - 1.0).max(1.0))
        };
        Priors {
            weight_concentration: 1.0 / k as f64,
            mean_precision: 1.0,
            mean,
            dof: d as f64,
            covariance: cov,
        }
    }
}

/// Variational posterior state.
#[derive(Debug, Clone)]
pub struct State {
    /// Stick posteriors (a_k, b_k).
    pub concentration: (DVector<f64>, DVector<f64>),
    /// β_k.
    pub mean_precision: DVector<f64>,
    /// m_k.
    pub means: Vec<DVector<f64>>,
    /// ν_k.
    pub dof: DVector<f64>,
    /// `covariances_`: W_k⁻¹ / ν_k.
    pub covs: Vec<Cov>,
    /// Their precision Cholesky factors.
    pub prec: Vec<PrecChol>,
}

fn m_step(x: &DMatrix<f64>, resp: &DMatrix<f64>, pr: &Priors, p: &GmmParams) -> Result<State, Collapse> {
    let (nk, xk, sk) = gaussian_parameters(x, resp, p.reg_covar, p.covariance);
    let k = nk.len();
    // Stick-breaking: a = 1 + N_k, b = γ + Σ_{j>k} N_j.
    let a = nk.map(|v| 1.0 + v);
    let mut tail = 0.0;
    let mut b = DVector::zeros(k);
    for i in (0..k).rev() {
        b[i] = pr.weight_concentration + tail;
        tail += nk[i];
    }
    let beta = nk.map(|v| pr.mean_precision + v);
    let means: Vec<DVector<f64>> = (0..k)
        .map(|i| (&pr.mean * pr.mean_precision + &xk[i] * nk[i]) / beta[i])
        .collect();
    let dof = nk.map(|v| pr.dof + v);
    let covs: Vec<Cov> = (0..k)
        .map(|i| {
            let diff = &xk[i] - &pr.mean;
            let shrink = nk[i] * pr.mean_precision / beta[i];
            match (&pr.covariance, &sk[i]) {
                (Cov::Full(c0), Cov::Full(s)) => {
                    Cov::Full((c0 + s * nk[i] + &diff * diff.transpose() * shrink) / dof[i])
                }
                (Cov::Diag(c0), Cov::Diag(s)) => Cov::Diag(
                    (c0 + s * nk[i] + diff.map(|v| v * v) * (pr.mean_precision / beta[i]) * nk[i]) / dof[i],
                ),
                _ => unreachable!("priors and statistics share the covariance kind"),
            }
        })
        .collect();
    let prec = covs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            super::mixture::precision_cholesky(c, i).map_err(|e| Collapse {
                component: e.component,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(State {
        concentration: (a, b),
        mean_precision: beta,
        means,
        dof,
        covs,
        prec,
    })
}

/// `E[log π_k]` under the stick-breaking posterior.
fn log_weights(s: &State) -> DVector<f64> {
    let (a, b) = &s.concentration;
    let k = a.len();
    let mut out = DVector::zeros(k);
    let mut acc = 0.0;
    for i in 0..k {
        let dsum = digamma(a[i] + b[i]);
        out[i] = digamma(a[i]) - dsum + acc;
        acc += digamma(b[i]) - dsum;
    }
    out
}

/// Expected weighted log-probabilities (`N × K`).
fn weighted_log_prob(x: &DMatrix<f64>, s: &State) -> DMatrix<f64> {
    let d = x.ncols() as f64;
    let mut lp = log_gaussian_prob(x, &s.means, &s.prec);
    let lw = log_weights(s);
    for (k, mut col) in lp.column_iter_mut().enumerate() {
        let nu = s.dof[k];
        let log_lambda = d * 2f64.ln()
            + (0..x.ncols())
                .map(|i| digamma(0.5 * (nu - i as f64)))
                .sum::<f64>();
        let shift = -0.5 * d * nu.ln() + 0.5 * (log_lambda - d / s.mean_precision[k]) + lw[k];
        col.iter_mut().for_each(|v| *v += shift);
    }
    lp
}

/// scikit-learn's `_compute_lower_bound` (total, not per row).
fn lower_bound(s: &State, log_resp: &DMatrix<f64>, d: usize) -> f64 {
    let df = d as f64;
    let entropy: f64 = log_resp
        .iter()
        .map(|&l| if l > f64::NEG_INFINITY { l.exp() * l } else { 0.0 })
        .sum();
    let mut log_wishart = 0.0;
    for k in 0..s.dof.len() {
        let nu = s.dof[k];
        let log_det = s.prec[k].log_det() - 0.5 * df * nu.ln();
        let gl: f64 = (0..d).map(|i| ln_gamma(0.5 * (nu - i as f64))).sum();
        log_wishart += -(nu * log_det + nu * df * 0.5 * 2f64.ln() + gl);
    }
    let (a, b) = &s.concentration;
    let log_norm_weight: f64 = -(0..a.len())
        .map(|k| ln_gamma(a[k]) + ln_gamma(b[k]) - ln_gamma(a[k] + b[k]))
        .sum::<f64>();
    let log_beta: f64 = s.mean_precision.iter().map(|v| v.ln()).sum();
    -entropy - log_wishart - log_norm_weight - 0.5 * df * log_beta
}

/// The posterior-expected mixture (scikit-learn's `weights_`, `means_`,
/// `covariances_`).
pub fn expected_mixture(s: &State) -> Mixture {
    let (a, b) = &s.concentration;
    let k = a.len();
    let mut w = Vec::with_capacity(k);
    let mut stick = 1.0;
    for i in 0..k {
        let sum = a[i] + b[i];
        w.push(a[i] / sum * stick);
        stick *= b[i] / sum;
    }
    let total: f64 = w.iter().sum();
    Mixture {
        weights: w.iter().map(|v| v / total).collect(),
        means: s.means.clone(),
        covs: s.covs.clone(),
        prec: s.prec.clone(),
    }
}

/// The DP fit as a [`MixtureFit`]: the state is the variational posterior.
pub struct Dp {
    priors: Priors,
    p: GmmParams,
    prune: f64,
}

impl Dp {
    /// The DP fit under `priors`; [`MixtureFit::export`] prunes components
    /// whose expected weight is below `prune`.
    pub fn new(priors: Priors, p: &GmmParams, prune: f64) -> Dp {
        Dp { priors, p: *p, prune }
    }
}

impl MixtureFit for Dp {
    type State = State;

    fn params(&self) -> &GmmParams {
        &self.p
    }

    /// The M-step from the start's responsibilities.
    fn start(&mut self, x: &DMatrix<f64>, resp: &DMatrix<f64>) -> Result<State, Collapse> {
        m_step(x, resp, &self.priors, &self.p)
    }

    /// The objective is the lower bound per row.
    fn step(&mut self, x: &DMatrix<f64>, state: &State) -> Result<(State, f64), Collapse> {
        let (_, log_resp) = log_resp_of(weighted_log_prob(x, state));
        let resp = log_resp.map(f64::exp);
        let next = m_step(x, &resp, &self.priors, &self.p)?;
        let lb = lower_bound(&next, &log_resp, x.ncols()) / x.nrows() as f64;
        Ok((next, lb))
    }

    fn mixture(&self, state: &State) -> Mixture {
        expected_mixture(state)
    }

    fn export(&self, mixture: &Mixture) -> Result<Mixture> {
        mixture.prune(self.prune)
    }
}

/// The DP fit from initial responsibilities (nothing pruned); also returns
/// the final state.
pub fn run(
    x: &DMatrix<f64>,
    init_resp: &DMatrix<f64>,
    priors: &Priors,
    p: &GmmParams,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<(Fitted, State), Collapse> {
    let mut dp = Dp::new(priors.clone(), p, 0.0);
    let start = dp.start(x, init_resp)?;
    dp.run(x, start, progress)
}
