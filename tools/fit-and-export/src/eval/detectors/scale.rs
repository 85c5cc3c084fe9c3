//! SCALE (Xu, Chen, Franchi & Yao, "Scaling for Training Time and Post-hoc
//! Out-of-distribution Detection Enhancement", ICLR 2024): ASH-S's
//! sharpening without its pruning. The penultimate features `f` (`d`
//! values) are multiplied by `exp(s₁ / s₂)`, `s₁` the sum of `f` and `s₂`
//! the sum of its `k = d − round(d p / 100)` largest values (`p` = 85, the
//! paper's and OpenOOD's default), all values kept, and the score is the
//! energy of the logits `W (f · exp(s₁ / s₂)) + b`, as OpenOOD's
//! `scale_postprocessor.py` (`ScaleNet.forward_threshold` and `scale` in
//! `openood/networks/scale_net.py`).

use super::ash::sharpened;
use super::energy;
use crate::eval::detector::{FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use crate::eval::head::Head;
use anyhow::Result;
use nalgebra::DMatrix;

/// The paper's percentile `p` (85, OpenOOD's default).
pub const PERCENTILE: f64 = 85.0;

/// Energy of the logits of the scaled penultimate features; nothing fitted
/// beyond the head.
pub struct Scale {
    /// The percentile `p` (0–100): the top `100 − p` % of the values make `s₂`.
    pub percentile: f64,
}

impl Default for Scale {
    fn default() -> Scale {
        Scale {
            percentile: PERCENTILE,
        }
    }
}

impl NamedDetector for Scale {
    const NAME: &'static str = "scale";
    const NEEDS: Needs = Needs::HEAD;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        Ok(Box::new(Fitted {
            head: data.head()?,
            percentile: self.percentile,
        }))
    }
}

struct Fitted<'a> {
    head: &'a Head,
    percentile: f64,
}

impl FittedDetector for Fitted<'_> {
    /// `logsumexp(W scaled(f) + b)` of every row `f` of the `N × d` penultimate features.
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        let shaped = scaled(self.head.features(x)?, self.percentile);
        Ok(energy(&self.head.logits(&shaped)))
    }
}

/// SCALE of every row of `N × d` features: the row times `exp(s₁ / s₂)`,
/// `s₁` its sum, `s₂` the sum of its `k = d − round(d p / 100)` largest
/// values (at least one); a row whose `s₂` is 0 is left as it is.
pub fn scaled(f: &DMatrix<f64>, percentile: f64) -> DMatrix<f64> {
    sharpened(f, percentile, false)
}
