//! Mahalanobis distance to the nearest class mean under a covariance shared
//! by all classes (Lee, Lee, Lee & Shin, "A Simple Unified Framework for
//! Detecting Out-of-Distribution Samples and Adversarial Attacks", NeurIPS
//! 2018), on the last tap's features, without the paper's input
//! perturbation: class means and the covariance pooled over the classes
//! (divided by `N`, as OpenOOD's `mds_postprocessor.py`), 1e-6 added to its
//! diagonal, score `−min_c (f − μ_c)ᵀ Σ⁻¹ (f − μ_c)`. On `--layers auto`
//! models the last tap is the map the classifier pools into its
//! penultimate features (`tests/baselines.rs` checks it against numpy).

use crate::eval::detector::{FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use anyhow::{ensure, Result};
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

/// Class-conditional Gaussians with a tied covariance on the last tap,
/// fitted on `--train` with `--train-labels`.
#[derive(Default)]
pub struct Mahalanobis;

impl NamedDetector for Mahalanobis {
    const NAME: &'static str = "mahalanobis";
    const NEEDS: Needs = Needs::TRAIN_LABELS;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        let fitted = TiedGaussians::fit(data.train()?.last_tap(), data.labels()?)?;
        Ok(Box::new(LastTap(fitted)))
    }
}

/// [`TiedGaussians`] applied to the last tap.
struct LastTap(TiedGaussians);

impl FittedDetector for LastTap {
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        Ok(self.0.score(x.last_tap()))
    }
}

/// Class means `μ_c` and the precision `Σ⁻¹` of the shared covariance.
pub struct TiedGaussians {
    means: Vec<DVector<f64>>,
    precision: DMatrix<f64>,
}

impl TiedGaussians {
    /// Fits the class means and the shared covariance (+1e-6 on the
    /// diagonal) of `N × d` features `x` with `N` labels.
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
        Ok(TiedGaussians {
            means,
            precision: precision.expect("checked"),
        })
    }

    /// `−min_c (x − μ_c)ᵀ Σ⁻¹ (x − μ_c)` for every row of `N × d` features (`N` scores).
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
