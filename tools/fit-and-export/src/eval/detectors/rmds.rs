//! Relative Mahalanobis distance (Ren, Fort, Liu, Roy, Padhy &
//! Lakshminarayanan, "A Simple Fix to Mahalanobis Distance for Improving
//! Near-OOD Detection", 2021), on the last tap as
//! [`mahalanobis`](super::mahalanobis): each class's distance minus the
//! distance to one "background" Gaussian fitted on all the training rows
//! (their global mean and covariance), score `−min_c (MD_c(f) − MD_0(f))`,
//! as OpenOOD's `rmds_postprocessor.py`. Both Gaussians are
//! [`TiedGaussians`] (the background one with a single class) with their
//! covariances pseudo-inverted as OpenOOD's scikit-learn
//! `EmpiricalCovariance` does ([`Precision::Pseudo`]), not with
//! `mahalanobis`' 1e-6 ridge: the score is a difference of two distances,
//! which the ridge's small bias in each would not cancel.

use super::mahalanobis::{Precision, TiedGaussians};
use crate::eval::detector::{FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use anyhow::Result;
use nalgebra::DMatrix;

/// Class-conditional Gaussians with a tied covariance, relative to one
/// background Gaussian, on the last tap.
#[derive(Default)]
pub struct Rmds;

impl NamedDetector for Rmds {
    const NAME: &'static str = "rmds";
    const NEEDS: Needs = Needs::TRAIN_LABELS;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        Ok(Box::new(Relative::fit(data.train()?.last_tap(), data.labels()?)?))
    }
}

/// The class Gaussians and the background one.
pub struct Relative {
    classes: TiedGaussians,
    background: TiedGaussians,
}

impl Relative {
    /// Fits on `N × d` features `x` with `N` labels.
    pub fn fit(x: &DMatrix<f64>, labels: &[u8]) -> Result<Self> {
        Ok(Relative {
            classes: TiedGaussians::fit_with(x, labels, Precision::Pseudo)?,
            background: TiedGaussians::fit_with(x, &vec![0; x.nrows()], Precision::Pseudo)?,
        })
    }

    /// `−min_c (MD_c − MD_0)` of every row of `N × d` features (`N` scores).
    pub fn score_rows(&self, x: &DMatrix<f64>) -> Vec<f64> {
        // TiedGaussians' scores are −min_c MD_c and −MD_0.
        let classes = self.classes.score(x);
        let background = self.background.score(x);
        classes.iter().zip(background).map(|(c, b)| c - b).collect()
    }
}

impl FittedDetector for Relative {
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        Ok(self.score_rows(x.last_tap()))
    }
}
