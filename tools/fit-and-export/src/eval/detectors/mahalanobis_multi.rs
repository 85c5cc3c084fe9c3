//! Multi-layer Mahalanobis (Lee et al., NeurIPS 2018, the feature ensemble):
//! the [`TiedGaussians`] score of every tap, combined. The paper weights the
//! layers by a logistic regression fitted on OOD validation data; with no OOD
//! data at hand, each layer's score is standardised by its mean and standard
//! deviation on held-out in-distribution rows and the layers are summed.

use super::mahalanobis::TiedGaussians;
use crate::eval::detector::{FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use anyhow::Result;
use nalgebra::DMatrix;

/// Per-tap Mahalanobis fitted on nine tenths of `--train` (rows `i % 10 ≠ 0`),
/// standardised on the other tenth, summed.
#[derive(Default)]
pub struct MahalanobisMulti;

impl NamedDetector for MahalanobisMulti {
    const NAME: &'static str = "mahalanobis-multi";
    const NEEDS: Needs = Needs::TRAIN_LABELS;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        let train = data.train()?;
        let n = train.rows();
        let held: Vec<usize> = (0..n).filter(|i| i % 10 == 0).collect();
        let fit: Vec<usize> = (0..n).filter(|i| i % 10 != 0).collect();
        Ok(Box::new(StandardisedSum::fit(
            &train.layers,
            data.labels()?,
            &fit,
            &held,
        )?))
    }
}

/// Per-tap [`TiedGaussians`] with the mean and standard deviation of their
/// held-out scores.
pub struct StandardisedSum {
    layers: Vec<(TiedGaussians, f64, f64)>,
}

impl StandardisedSum {
    /// Fits on `fit_rows` of every tap's `N × d_i` features (labels: `N`),
    /// standardises with the scores of `held_rows`.
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
                let m = TiedGaussians::fit(&x.select_rows(fit_rows.iter()), &fit_labels)?;
                let s = m.score(&x.select_rows(held_rows.iter()));
                let mean = s.iter().sum::<f64>() / s.len() as f64;
                let std = (s.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / s.len() as f64)
                    .sqrt()
                    .max(1e-12);
                Ok((m, mean, std))
            })
            .collect::<Result<_>>()?;
        Ok(StandardisedSum { layers })
    }
}

impl FittedDetector for StandardisedSum {
    /// `Σ_i (s_i − mean_i) / std_i` over the taps' `N × d_i` features.
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        let mut total = vec![0.0; x.layers[0].nrows()];
        for ((m, mean, std), xi) in self.layers.iter().zip(&x.layers) {
            for (t, s) in total.iter_mut().zip(m.score(xi)) {
                *t += (s - mean) / std;
            }
        }
        Ok(total)
    }
}
