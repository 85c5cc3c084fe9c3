//! The detectors compared in the harness. Every one is fitted on
//! in-distribution training data only and returns "higher = more ID" scores.

use crate::scoring::{score_all, RowMajor};
use anyhow::{ensure, Result};
use lsgm::reference::Reference;
use lsgm::Model;
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

/// Features and logits of one set of frames.
pub struct SetFeatures {
    /// Per tap, `N × d`.
    pub layers: Vec<DMatrix<f64>>,
    /// `N × classes`.
    pub logits: DMatrix<f64>,
}

/// Max softmax probability.
pub fn msp(logits: &DMatrix<f64>) -> Vec<f64> {
    logits
        .row_iter()
        .map(|r| {
            let m = r.max();
            1.0 / r.iter().map(|v| (v - m).exp()).sum::<f64>()
        })
        .collect()
}

/// Energy score: `logsumexp(logits)` (negative free energy).
pub fn energy(logits: &DMatrix<f64>) -> Vec<f64> {
    logits
        .row_iter()
        .map(|r| {
            let m = r.max();
            m + r.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
        })
        .collect()
}

/// The LSGM score with the core's scorer.
pub fn lsgm(model: &Model<'_>, x: &SetFeatures) -> Result<Vec<f64>> {
    Ok(score_all(model, &RowMajor::from_matrices(&x.layers))?
        .into_iter()
        .map(|s| s.score as f64)
        .collect())
}

/// Layer `i`'s own mixture: `log Σ_k φ_k N(x | k)`.
pub fn gmm_layer(model: &Model<'_>, i: usize, x: &SetFeatures) -> Vec<f64> {
    let r = Reference::new(model);
    let layer = model.layer(i);
    let rows = &x.layers[i];
    (0..rows.nrows())
        .into_par_iter()
        .map(|n| {
            let row: Vec<f32> = rows.row(n).iter().map(|&v| v as f32).collect();
            let ld: Vec<f64> = r
                .log_densities(i, &row)
                .iter()
                .enumerate()
                .map(|(k, v)| v + layer.log_weight(k) as f64)
                .collect();
            let m = ld.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            m + ld.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
        })
        .collect()
}

/// Class-conditional Gaussians with a tied covariance (Lee et al. 2018).
pub struct Mahalanobis {
    means: Vec<DVector<f64>>,
    precision: DMatrix<f64>,
}

impl Mahalanobis {
    /// Fits class means and the shared covariance (+1e-6 on the diagonal).
    pub fn fit(x: &DMatrix<f64>, labels: &[u8]) -> Result<Self> {
        let d = x.ncols();
        let classes: Vec<u8> = {
            let mut c = labels.to_vec();
            c.sort_unstable();
            c.dedup();
            c
        };
        let mut means = Vec::new();
        let mut cov = DMatrix::zeros(d, d);
        for &c in &classes {
            let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
            let sub = x.select_rows(idx.iter());
            let mu = DVector::from_iterator(d, sub.column_iter().map(|col| col.mean()));
            let mut centred = sub;
            for (j, mut col) in centred.column_iter_mut().enumerate() {
                col.add_scalar_mut(-mu[j]);
            }
            cov += centred.transpose() * &centred;
            means.push(mu);
        }
        cov /= x.nrows() as f64;
        for j in 0..d {
            cov[(j, j)] += 1e-6;
        }
        let precision = cov.try_inverse();
        ensure!(precision.is_some(), "the tied covariance is singular");
        Ok(Mahalanobis {
            means,
            precision: precision.expect("checked"),
        })
    }

    /// `−min_c (x − μ_c)ᵀ Σ⁻¹ (x − μ_c)`.
    pub fn score(&self, x: &DMatrix<f64>) -> Vec<f64> {
        (0..x.nrows())
            .into_par_iter()
            .map(|n| {
                let row = x.row(n).transpose();
                let nearest = self
                    .means
                    .iter()
                    .map(|mu| {
                        let diff = &row - mu;
                        (diff.transpose() * &self.precision * &diff)[(0, 0)]
                    })
                    .fold(f64::INFINITY, f64::min);
                -nearest
            })
            .collect()
    }
}

fn normalised(x: &DMatrix<f64>) -> DMatrix<f64> {
    let mut y = x.clone();
    for mut r in y.row_iter_mut() {
        let n = r.norm().max(1e-12);
        r /= n;
    }
    y
}

/// Deep k-nearest neighbours (Sun et al. 2022): distance to the k-th nearest
/// L2-normalised training feature, negated.
pub struct Knn {
    bank: DMatrix<f64>,
    k: usize,
}

impl Knn {
    /// Stores the normalised training features.
    pub fn fit(x: &DMatrix<f64>, k: usize) -> Self {
        Knn {
            bank: normalised(x),
            k: k.min(x.nrows()),
        }
    }

    /// `−‖z − b_(k)‖` for every row.
    pub fn score(&self, x: &DMatrix<f64>) -> Vec<f64> {
        let z = normalised(x);
        let bank_t = self.bank.transpose();
        let blocks: Vec<Vec<f64>> = (0..z.nrows().div_ceil(256))
            .into_par_iter()
            .map(|b| {
                let start = b * 256;
                let len = 256.min(z.nrows() - start);
                let sims = z.rows(start, len) * &bank_t; // cosine similarities
                sims.row_iter()
                    .map(|r| {
                        // Unit vectors: ‖a − b‖² = 2 − 2 a·b; k-th nearest = k-th largest similarity.
                        let mut v: Vec<f64> = r.iter().copied().collect();
                        let (_, kth, _) = v.select_nth_unstable_by(self.k - 1, |a, b| b.total_cmp(a));
                        -(2.0 - 2.0 * *kth).max(0.0).sqrt()
                    })
                    .collect()
            })
            .collect();
        blocks.into_iter().flatten().collect()
    }
}

/// Per-layer Mahalanobis scores standardised on held-out ID rows and summed.
pub struct MahalanobisMulti {
    layers: Vec<(Mahalanobis, f64, f64)>,
}

impl MahalanobisMulti {
    /// Fits on `fit_rows`, standardises with the scores of `held_rows`.
    pub fn fit(
        train: &[DMatrix<f64>],
        labels: &[u8],
        fit_rows: &[usize],
        held_rows: &[usize],
    ) -> Result<Self> {
        let fit_labels: Vec<u8> = fit_rows.iter().map(|&i| labels[i]).collect();
        let layers = train
            .iter()
            .map(|x| {
                let m = Mahalanobis::fit(&x.select_rows(fit_rows.iter()), &fit_labels)?;
                let s = m.score(&x.select_rows(held_rows.iter()));
                let mean = s.iter().sum::<f64>() / s.len() as f64;
                let std = (s.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / s.len() as f64)
                    .sqrt()
                    .max(1e-12);
                Ok((m, mean, std))
            })
            .collect::<Result<_>>()?;
        Ok(MahalanobisMulti { layers })
    }

    /// Σ_i (s_i − mean_i) / std_i.
    pub fn score(&self, x: &[DMatrix<f64>]) -> Vec<f64> {
        let mut total = vec![0.0; x[0].nrows()];
        for ((m, mean, std), xi) in self.layers.iter().zip(x) {
            for (t, s) in total.iter_mut().zip(m.score(xi)) {
                *t += (s - mean) / std;
            }
        }
        total
    }
}
