//! The plain `f64` scorer: a public baseline and the yardstick of the fast path.
//!
//! [`Reference`] scores a validated [`Model`] the textbook way: it rebuilds
//! each precision matrix `P = U Uᵀ` densely, evaluates
//! `log N(x | μ, Σ) = log|U| − d/2·log 2π − ½ (x − μ)ᵀ P (x − μ)` in `d²`
//! operations per component, and runs the forward recursion (the paper's
//! Eq. 4, or the HMM chain) in log space with a log-sum-exp per entry
//! (`K²` `exp`s per layer). It allocates, so it is for hosts (`std`).
//!
//! Two uses, one contract:
//! * **baseline** — `fit-and-export eval` reports each layer's mixture on
//!   its own ([`Reference::log_densities`] with the layer's weights) next to
//!   the chained score;
//! * **yardstick** — it shares only the model reader with the fast path
//!   ([`Model::score`]), so the tests and the score benchmark check the
//!   packing, the scaling and the `f32` arithmetic against it.
//!
//! Inputs are `features[i]` of length `layer(i).dim_in()` (projected layers
//! are projected here too, with their residual term formed explicitly as
//! `(x − m) − Wᵀz`); scores are natural-log likelihoods in nats, `f64`.

use crate::density::{packed_index, LN_2PI};
use crate::kind::Covariance;
use crate::Model;
use std::vec;
use std::vec::Vec;

fn log_sum_exp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// A model prepared for naive scoring: dense `f64` precision matrices.
pub struct Reference<'m, 'a> {
    model: &'m Model<'a>,
    /// Per layer, per component.
    components: Vec<Vec<Dense>>,
}

/// One component with its dense precision matrix.
struct Dense {
    mean: Vec<f64>,
    /// Row-major `P = U Uᵀ`.
    precision: Vec<f64>,
    log_det_u: f64,
}

impl<'m, 'a> Reference<'m, 'a> {
    /// Builds `P = U Uᵀ` densely for every component.
    pub fn new(model: &'m Model<'a>) -> Self {
        let components = model
            .layers()
            .iter()
            .map(|layer| {
                let g = layer.gaussians();
                let d = g.dim();
                (0..g.components())
                    .map(|k| {
                        let f = g.factor(k);
                        let u = |r: usize, c: usize| -> f64 {
                            match g.covariance() {
                                Covariance::Full if r <= c => f.get(packed_index(r, c)) as f64,
                                Covariance::Diag if r == c => f.get(r) as f64,
                                _ => 0.0,
                            }
                        };
                        let mut p = vec![0.0f64; d * d];
                        for r in 0..d {
                            for c in 0..d {
                                // (U Uᵀ)_rc = Σ_t U_rt U_ct; U is upper, so t ≥ max(r, c).
                                p[r * d + c] = (r.max(c)..d).map(|t| u(r, t) * u(c, t)).sum();
                            }
                        }
                        let log_det_u: f64 = (0..d).map(|j| u(j, j).ln()).sum();
                        Dense {
                            mean: g.mean(k).iter().map(|v| v as f64).collect(),
                            precision: p,
                            log_det_u,
                        }
                    })
                    .collect()
            })
            .collect();
        Reference { model, components }
    }

    /// Per-component `log N(z | μ_k, Σ_k)` of layer `i`: `d²` per component.
    pub fn log_densities(&self, i: usize, x: &[f32]) -> Vec<f64> {
        let layer = self.model.layer(i);
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let (z, residual): (Vec<f64>, f64) = match layer.projection() {
            Some(p) => {
                let n = x.len();
                let w = |r: usize, c: usize| p.matrix().get(r * n + c) as f64;
                let centred: Vec<f64> = (0..n).map(|c| x[c] - p.mean().get(c) as f64).collect();
                let z: Vec<f64> = (0..layer.dim())
                    .map(|r| (0..n).map(|c| w(r, c) * centred[c]).sum())
                    .collect();
                // The residual explicitly, r = (x − m) − Wᵀz, not by Pythagoras.
                let r2: f64 = (0..n)
                    .map(|c| {
                        let back: f64 = (0..z.len()).map(|r| w(r, c) * z[r]).sum();
                        (centred[c] - back).powi(2)
                    })
                    .sum();
                let (var, dof) = (p.residual_variance() as f64, p.residual_dof() as f64);
                let log_density = -0.5 * dof * (2.0 * core::f64::consts::PI * var).ln() - r2 / (2.0 * var);
                (z, log_density)
            }
            None => (x, 0.0),
        };
        let d = z.len();
        self.components[i]
            .iter()
            .map(
                |Dense {
                     mean,
                     precision: p,
                     log_det_u,
                 }| {
                    let diff: Vec<f64> = z.iter().zip(mean).map(|(a, b)| a - b).collect();
                    let maha: f64 = (0..d)
                        .map(|r| diff[r] * (0..d).map(|c| p[r * d + c] * diff[c]).sum::<f64>())
                        .sum();
                    residual + log_det_u - 0.5 * d as f64 * LN_2PI - 0.5 * maha
                },
            )
            .collect()
    }

    /// The log joint likelihood in `f64`, by a log-space forward recursion
    /// (`K²` `exp`s per layer).
    pub fn score(&self, features: &[&[f32]]) -> f64 {
        let model = self.model;
        let mut log_alpha: Vec<f64> = Vec::new();
        for (i, x) in features.iter().enumerate() {
            let layer = model.layer(i);
            let mut ld = self.log_densities(i, x);
            if model.chain().uses_weights(i) {
                for (k, v) in ld.iter_mut().enumerate() {
                    *v += layer.log_weight(k) as f64;
                }
            }
            if i == 0 {
                log_alpha = ld;
            } else {
                let t = model.transition(i - 1);
                let cols = ld.len();
                log_alpha = (0..cols)
                    .map(|k| {
                        let terms = log_alpha
                            .iter()
                            .enumerate()
                            .map(|(j, &a)| a + (t.get(j * cols + k) as f64).ln());
                        ld[k] + log_sum_exp(terms)
                    })
                    .collect();
            }
        }
        log_sum_exp(log_alpha.iter().copied())
    }
}

/// One-shot convenience: [`Reference::new`] then [`Reference::score`].
pub fn score(model: &Model<'_>, features: &[&[f32]]) -> f64 {
    Reference::new(model).score(features)
}
