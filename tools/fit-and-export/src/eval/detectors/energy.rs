//! Energy score (Liu, Wang, Owens & Li, "Energy-based Out-of-distribution
//! Detection", NeurIPS 2020), at temperature 1. For a network that ends in a
//! Sigmoid the logits are its pre-sigmoid scores, and this is their
//! (softmax) free energy: a score of the logits, not of a probability the
//! network gives.

use crate::eval::detector::{
    shifted_exp_sum, FittedDetector, FromLogits, NamedDetector, Needs, TrainingData,
};
use anyhow::Result;
use nalgebra::DMatrix;

/// `logsumexp(z)` of the logits `z` (the negative free energy); nothing to fit.
#[derive(Default)]
pub struct Energy;

impl NamedDetector for Energy {
    const NAME: &'static str = "energy";
    const NEEDS: Needs = Needs::LOGITS;

    fn fit<'a>(&self, _: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        Ok(Box::new(FromLogits(energy)))
    }
}

/// `logsumexp` of each row of `N × classes` logits (`N` scores).
pub fn energy(logits: &DMatrix<f64>) -> Vec<f64> {
    logits
        .row_iter()
        .map(|r| {
            let (m, sum) = shifted_exp_sum(r);
            m + sum.ln()
        })
        .collect()
}
