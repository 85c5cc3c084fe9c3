//! fDBD (Liu & Qin, "Fast Decision Boundary based Out-of-Distribution
//! Detector", ICML 2024): how far the penultimate features `f` (`d`
//! values) are from the decision boundaries of the final linear layer
//! `z = W f + b`, relative to how far they are from the training mean. For
//! the predicted class `c = argmax_k z_k`, the distance from `f` to the
//! boundary between `c` and class `k` is `|z_c − z_k| / ‖w_c − w_k‖`; the
//! score is the mean of that over the `K − 1` other classes divided by
//! `‖f − μ‖`, `μ` the mean `--train` penultimate feature (the paper's
//! regulariser; OpenOOD's `fdbd_postprocessor.py` default,
//! `distance_as_normalizer: True`). OpenOOD sums over the classes instead
//! of averaging: the same ranking.

use crate::eval::detector::{
    mean_row, predicted, FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData,
};
use crate::eval::head::Head;
use anyhow::{ensure, Result};
use nalgebra::{DMatrix, DVector};

/// Mean distance to the decision boundaries over the distance to the training mean.
#[derive(Default)]
pub struct Fdbd;

impl NamedDetector for Fdbd {
    const NAME: &'static str = "fdbd";
    const NEEDS: Needs = Needs::TRAIN_HEAD;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        let head = data.head()?;
        let f = head.features(data.train()?)?;
        Ok(Box::new(Boundaries::fit(head, f)?))
    }
}

/// The head, the training mean and `‖w_c − w_k‖` for every pair of classes.
pub struct Boundaries<'a> {
    head: &'a Head,
    /// `μ`, `d`: the mean training penultimate feature.
    pub mean: DVector<f64>,
    /// `K × K`: `‖w_c − w_k‖` (0 on the diagonal).
    gaps: DMatrix<f64>,
}

impl<'a> Boundaries<'a> {
    /// Fits on the `N × d` training penultimate features `f`. A head with
    /// fewer than two classes, or two classes with the same weight row (no
    /// boundary between them), is refused.
    pub fn fit(head: &'a Head, f: &DMatrix<f64>) -> Result<Self> {
        let w = &head.weight;
        let k = w.nrows();
        ensure!(
            k >= 2,
            "fdbd: the final linear layer has {k} class; a decision boundary needs two"
        );
        ensure!(f.nrows() > 0, "fdbd: no training rows");
        let gaps = DMatrix::from_fn(k, k, |c, j| (w.row(c) - w.row(j)).norm());
        for c in 0..k {
            for j in c + 1..k {
                ensure!(
                    gaps[(c, j)] > 0.0,
                    "fdbd: classes {c} and {j} have the same weights in the final linear layer, \
                     so there is no decision boundary between them"
                );
            }
        }
        let mean = mean_row(f);
        Ok(Boundaries { head, mean, gaps })
    }
}

impl FittedDetector for Boundaries<'_> {
    /// `mean_{k ≠ c} |z_c − z_k| / ‖w_c − w_k‖ / ‖f − μ‖` of every row of
    /// the `N × d` penultimate features (`‖f − μ‖` at least 1e-12).
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        let f = self.head.features(x)?;
        let z = self.head.logits(f);
        let others = (z.ncols() - 1) as f64;
        Ok(z.row_iter()
            .zip(f.row_iter())
            .map(|(z, f)| {
                let c = predicted(z);
                let to_boundaries: f64 = (0..z.len())
                    .filter(|&k| k != c)
                    .map(|k| (z[c] - z[k]).abs() / self.gaps[(c, k)])
                    .sum();
                let from_mean = (f - self.mean.transpose()).norm().max(1e-12);
                to_boundaries / others / from_mean
            })
            .collect())
    }
}
