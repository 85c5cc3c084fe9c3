//! GEN (Liu, Lochman & Zach, "GEN: Pushing the Limits of Softmax-Based
//! Out-of-Distribution Detection", CVPR 2023): the negative generalised
//! entropy of the softmax, `−G_γ(p) = −Σ_j p_j^γ (1 − p_j)^γ` over the `M`
//! largest probabilities (the paper's Eq. 6 with its top-`M` truncation), as
//! OpenOOD's `gen_postprocessor.py` computes it.

use crate::eval::detector::{predicted, FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use anyhow::Result;
use nalgebra::DMatrix;

/// The paper's default `γ`.
pub const GAMMA: f64 = 0.1;
/// The paper's default `M` (capped at the number of classes).
pub const M: usize = 100;

/// `−G_γ` of the softmax of the logits over its `m` largest probabilities;
/// nothing to fit.
#[derive(Clone, Copy)]
pub struct Gen {
    /// The exponent `γ`.
    pub gamma: f64,
    /// How many of the largest probabilities enter the sum.
    pub m: usize,
}

impl Default for Gen {
    fn default() -> Gen {
        Gen { gamma: GAMMA, m: M }
    }
}

impl NamedDetector for Gen {
    const NAME: &'static str = "gen";
    const NEEDS: Needs = Needs::LOGITS;

    fn fit<'a>(&self, _: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        Ok(Box::new(*self))
    }
}

impl FittedDetector for Gen {
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        Ok(generalised_entropy(&x.logits, self.gamma, self.m))
    }
}

/// `−Σ_{j ∈ top m} p_j^γ (1 − p_j)^γ` of each row of `N × classes` logits
/// (`N` scores, higher = more in-distribution). `1 − p_j` is the sum of the
/// other classes' probabilities, so a confident row keeps its precision.
pub fn generalised_entropy(logits: &DMatrix<f64>, gamma: f64, m: usize) -> Vec<f64> {
    logits
        .row_iter()
        .map(|r| {
            let top = predicted(r);
            let e: Vec<f64> = r.iter().map(|v| (v - r[top]).exp()).collect();
            let sum: f64 = e.iter().sum();
            let others = |j: usize| match j == top {
                true => e
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != top)
                    .map(|(_, v)| v)
                    .sum(),
                false => sum - e[j],
            };
            let mut terms: Vec<(f64, f64)> = (0..e.len()).map(|j| (e[j] / sum, others(j) / sum)).collect();
            terms.sort_by(|a, b| b.0.total_cmp(&a.0));
            -terms
                .iter()
                .take(m.min(terms.len()))
                .map(|(p, q)| p.powf(gamma) * q.powf(gamma))
                .sum::<f64>()
        })
        .collect()
}
