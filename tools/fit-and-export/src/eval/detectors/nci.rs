//! NCI (Liu & Qin, "Detecting Out-of-distribution through the Lens
//! of Neural Collapse", CVPR 2025), as OpenOOD's `nci_postprocessor.py`
//! computes it. Under neural collapse the in-distribution penultimate
//! features `f` (`d` values), centred on the training mean `μ`, point
//! along the predicted class's weight row `w_c` of the final linear layer;
//! the score is that alignment plus a small multiple of the feature's L1
//! norm: `w_c · (f − μ) / ‖f − μ‖ + α ‖f‖₁`, `c = argmax_k z_k`, `α` =
//! 1e-4 (OpenOOD's default; it tunes `α` on OOD validation data, which
//! `eval` never sees). As OpenOOD, `w_c` is not normalised.

use crate::eval::detector::{
    mean_row, predicted, FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData,
};
use crate::eval::head::Head;
use anyhow::{ensure, Result};
use nalgebra::{DMatrix, DVector};

/// OpenOOD's default `α`, the weight of the L1 norm.
pub const ALPHA: f64 = 1e-4;

/// Alignment of the centred features with the predicted class's weights, plus `α ‖f‖₁`.
pub struct Nci {
    /// `α`.
    pub alpha: f64,
}

impl Default for Nci {
    fn default() -> Nci {
        Nci { alpha: ALPHA }
    }
}

impl NamedDetector for Nci {
    const NAME: &'static str = "nci";
    const NEEDS: Needs = Needs::TRAIN_HEAD;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        let head = data.head()?;
        let f = head.features(data.train()?)?;
        Ok(Box::new(Collapse::fit(head, f, self.alpha)?))
    }
}

/// The head, the training mean and `α`.
pub struct Collapse<'a> {
    head: &'a Head,
    /// `μ`, `d`: the mean training penultimate feature.
    pub mean: DVector<f64>,
    alpha: f64,
}

impl<'a> Collapse<'a> {
    /// Fits on the `N × d` training penultimate features `f`.
    pub fn fit(head: &'a Head, f: &DMatrix<f64>, alpha: f64) -> Result<Self> {
        ensure!(f.nrows() > 0, "nci: no training rows");
        let mean = mean_row(f);
        Ok(Collapse { head, mean, alpha })
    }
}

impl FittedDetector for Collapse<'_> {
    /// `w_c · (f − μ) / ‖f − μ‖ + α ‖f‖₁` of every row of the `N × d`
    /// penultimate features (`‖f − μ‖` at least 1e-12).
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        let f = self.head.features(x)?;
        let z = self.head.logits(f);
        Ok(z.row_iter()
            .zip(f.row_iter())
            .map(|(z, f)| {
                let centred = f - self.mean.transpose();
                let w = self.head.weight.row(predicted(z));
                let alignment = w.dot(&centred) / centred.norm().max(1e-12);
                alignment + self.alpha * f.iter().map(|v| v.abs()).sum::<f64>()
            })
            .collect())
    }
}
