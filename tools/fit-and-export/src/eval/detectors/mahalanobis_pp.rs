//! Mahalanobis++ (Müller & Hein, "Mahalanobis++: Feature Normalization as
//! the Missing Ingredient for Reliable OOD Detection", ICML 2025):
//! [`mahalanobis`](super::mahalanobis) on L2-normalised features. The
//! last tap's rows are divided by their norms before the class means and
//! the shared covariance are fitted and before scoring; the score is
//! `−min_c (f̂ − μ_c)ᵀ Σ⁻¹ (f̂ − μ_c)`, `f̂ = f / ‖f‖`, as the authors'
//! OpenOOD postprocessor (`mdsn_postprocessor.py`). The one other
//! difference: `Σ⁻¹` is the pseudo-inverse, as their scikit-learn
//! `EmpiricalCovariance` computes it, not `mahalanobis`' `(Σ + 1e-6 I)⁻¹`,
//! whose absolute ridge would distort the variances (near `1/d`) of
//! normalised features.

use super::knn::normalised;
use super::mahalanobis::{Precision, TiedGaussians};
use crate::eval::detector::{FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use anyhow::Result;

/// Class-conditional Gaussians with a tied covariance on the L2-normalised
/// last tap, fitted on `--train` with `--train-labels`.
#[derive(Default)]
pub struct MahalanobisPp;

impl NamedDetector for MahalanobisPp {
    const NAME: &'static str = "mahalanobis++";
    const NEEDS: Needs = Needs::TRAIN_LABELS;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        let x = normalised(data.train()?.last_tap());
        let fitted = TiedGaussians::fit_with(&x, data.labels()?, Precision::Pseudo)?;
        Ok(Box::new(Normalised(fitted)))
    }
}

/// [`TiedGaussians`] of the L2-normalised last tap.
struct Normalised(TiedGaussians);

impl FittedDetector for Normalised {
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        Ok(self.0.score(&normalised(x.last_tap())))
    }
}
