//! ASH-S (Djurisic, Bozanic, Ashok & Liu, "Extremely Simple Activation
//! Shaping for Out-of-Distribution Detection", ICLR 2023), on the
//! penultimate feature vector `f` (`d` values) of each frame, then the
//! energy score through the final linear layer. As OpenOOD's `ash_s`
//! (`openood/networks/ash_net.py`): with pruning percentile `p` (90), the
//! `k = d − round(d p / 100)` largest values are kept (numpy's round, half
//! to even; at least one) and the others zeroed, and the result is
//! multiplied by `exp(s₁ / s₂)`, `s₁` the sum of all of `f` and `s₂` that
//! of the kept values. (OpenOOD's `ash` postprocessor itself calls `ash_b`;
//! this is the paper's ASH-S.)

use super::energy;
use crate::eval::detector::{FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use crate::eval::head::Head;
use anyhow::Result;
use nalgebra::DMatrix;

/// The paper's pruning percentile for ASH-S (90 on ImageNet).
pub const PERCENTILE: f64 = 90.0;

/// Energy of the logits of the pruned and sharpened penultimate features;
/// nothing fitted beyond the head.
pub struct AshS {
    /// The pruning percentile `p` (0–100).
    pub percentile: f64,
}

impl Default for AshS {
    fn default() -> AshS {
        AshS {
            percentile: PERCENTILE,
        }
    }
}

impl NamedDetector for AshS {
    const NAME: &'static str = "ash-s";
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
    /// `logsumexp(W ash_s(f) + b)` of every row `f` of the `N × d` penultimate features.
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        let shaped = ash_s(self.head.features(x)?, self.percentile);
        Ok(energy(&self.head.logits(&shaped)))
    }
}

/// ASH-S of every row of `N × d` features: the `k = d − round(d p / 100)`
/// largest values of a row (at least one; among equal values the first)
/// kept, the others zeroed, all scaled by `exp(s₁ / s₂)` (sum of the row
/// over sum of the kept values). A row whose kept values sum to 0 (all
/// zero) is left unscaled.
pub fn ash_s(f: &DMatrix<f64>, percentile: f64) -> DMatrix<f64> {
    sharpened(f, percentile, true)
}

/// Every row of `N × d` features times `exp(s₁ / s₂)`, `s₁` its sum and
/// `s₂` the sum of its `k = d − round(d p / 100)` largest values (at least
/// one; among equal values the first), with the other values zeroed when
/// `prune` (ASH-S) or kept (SCALE, which only borrows the scale). A row
/// whose kept values sum to 0 is left unscaled.
pub(super) fn sharpened(f: &DMatrix<f64>, percentile: f64, prune: bool) -> DMatrix<f64> {
    let d = f.ncols();
    let pruned = (d as f64 * percentile / 100.0).round_ties_even() as usize;
    let k = d.saturating_sub(pruned).max(1);
    let mut out = if prune {
        DMatrix::zeros(f.nrows(), d)
    } else {
        f.clone()
    };
    for (row, mut shaped) in f.row_iter().zip(out.row_iter_mut()) {
        let mut order: Vec<usize> = (0..d).collect();
        order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let kept = &order[..k];
        let s1: f64 = row.iter().sum();
        let s2: f64 = kept.iter().map(|&j| row[j]).sum();
        let scale = if s2 != 0.0 { (s1 / s2).exp() } else { 1.0 };
        if prune {
            for &j in kept {
                shaped[j] = row[j] * scale;
            }
        } else {
            shaped *= scale;
        }
    }
    out
}
