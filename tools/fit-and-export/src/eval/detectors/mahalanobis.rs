//! Mahalanobis distance to the nearest class mean under a covariance shared
//! by all classes (Lee, Lee, Lee & Shin, "A Simple Unified Framework for
//! Detecting Out-of-Distribution Samples and Adversarial Attacks", NeurIPS
//! 2018), on the last tap's features, without the paper's input
//! perturbation: class means and the covariance pooled over the classes
//! (divided by `N`, as OpenOOD's `mds_postprocessor.py`), 1e-6 added to its
//! diagonal, score `−min_c (f − μ_c)ᵀ Σ⁻¹ (f − μ_c)`. On `--layers auto`
//! models the last tap is the map the classifier pools into its
//! penultimate features (`tests/baselines.rs` checks it against numpy).

use super::vim::pinv;
use crate::eval::detector::{mean_row, FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
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

/// How [`TiedGaussians`] inverts the shared covariance `Σ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Precision {
    /// `(Σ + r I)⁻¹`: `mahalanobis`' regularisation (`r` = 1e-6), an
    /// absolute amount, sized for raw features (variances near 1).
    Ridge(f64),
    /// `pinv(Σ)` (numpy's cut-off), as scikit-learn's `EmpiricalCovariance`
    /// that OpenOOD (RMDS) and the Mahalanobis++ code use: scale-free, so
    /// right for L2-normalised features, whose variances are near `1/d` and
    /// which an absolute ridge would distort.
    Pseudo,
}

impl TiedGaussians {
    /// Fits the class means and the shared covariance (+1e-6 on the
    /// diagonal) of `N × d` features `x` with `N` labels.
    pub fn fit(x: &DMatrix<f64>, labels: &[u8]) -> Result<Self> {
        Self::fit_with(x, labels, Precision::Ridge(1e-6))
    }

    /// [`TiedGaussians::fit`] with the covariance inverted as `precision` says.
    pub fn fit_with(x: &DMatrix<f64>, labels: &[u8], precision: Precision) -> Result<Self> {
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
            let mu = mean_row(&sub);
            let mut centred = sub;
            for (j, mut col) in centred.column_iter_mut().enumerate() {
                col.add_scalar_mut(-mu[j]);
            }
            cov += centred.transpose() * &centred;
            means.push(mu);
        }
        cov /= x.nrows() as f64;
        let precision = match precision {
            Precision::Ridge(r) => {
                for j in 0..d {
                    cov[(j, j)] += r;
                }
                cov.try_inverse()
            }
            Precision::Pseudo => Some(pinv(&cov)),
        };
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
