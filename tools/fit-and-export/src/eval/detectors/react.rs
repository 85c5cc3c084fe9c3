//! ReAct (Sun, Guo & Li, "ReAct: Out-of-distribution Detection With
//! Rectified Activations", NeurIPS 2021): the penultimate activations `f`
//! are clipped at `c`, the `p`-th percentile (`p` = 90) of all the training
//! activations (every value of every `--train` row, numpy's linear
//! interpolation), and the energy score of the logits `W min(f, c) + b` is
//! the score (the paper's Eq. 1–2; OpenOOD's `react_postprocessor.py`).

use super::energy;
use crate::eval::detector::{FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use crate::eval::head::Head;
use anyhow::{ensure, Result};

/// The paper's default percentile.
pub const PERCENTILE: f64 = 90.0;

/// Energy of the logits of the clipped penultimate features.
pub struct React {
    /// The percentile of the training activations to clip at.
    pub percentile: f64,
}

impl Default for React {
    fn default() -> React {
        React {
            percentile: PERCENTILE,
        }
    }
}

impl NamedDetector for React {
    const NAME: &'static str = "react";
    const NEEDS: Needs = Needs::TRAIN_HEAD;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        let head = data.head()?;
        let mut values: Vec<f64> = head.features(data.train()?)?.iter().copied().collect();
        ensure!(!values.is_empty(), "react: no training activations");
        let clip = percentile(&mut values, self.percentile);
        Ok(Box::new(Clipped { head, clip }))
    }
}

/// The `p`-th percentile (0–100) of `values` (not empty) as numpy's
/// `percentile` with its default linear interpolation: position
/// `(n − 1) p / 100` between the sorted values (reorders `values`).
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    let pos = (values.len() - 1) as f64 * (p / 100.0);
    let lo = pos.floor() as usize;
    let (_, &mut a, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let t = pos - lo as f64;
    match above.iter().copied().min_by(f64::total_cmp) {
        Some(b) if t > 0.0 => {
            // numpy's _lerp: from the nearer end, so t = 1 gives b exactly.
            let d = b - a;
            if t >= 0.5 {
                b - d * (1.0 - t)
            } else {
                a + d * t
            }
        }
        _ => a,
    }
}

/// The clip value `c` with the head.
pub struct Clipped<'a> {
    head: &'a Head,
    /// `c`.
    pub clip: f64,
}

impl FittedDetector for Clipped<'_> {
    /// `logsumexp(W min(f, c) + b)` of every row `f` of the `N × d` penultimate features.
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        let f = self.head.features(x)?.map(|v| v.min(self.clip));
        Ok(energy(&self.head.logits(&f)))
    }
}
