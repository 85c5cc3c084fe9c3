//! Maximum softmax probability (Hendrycks & Gimpel, "A Baseline for
//! Detecting Misclassified and Out-of-Distribution Examples in Neural
//! Networks", ICLR 2017).

use crate::eval::detector::{shifted_exp_sum, FittedDetector, FromLogits, NamedDetector, TrainingData};
use anyhow::Result;
use nalgebra::DMatrix;

/// `max_c softmax(z)_c` of the logits `z`; nothing to fit.
#[derive(Default)]
pub struct Msp;

impl NamedDetector for Msp {
    const NAME: &'static str = "msp";

    fn fit<'a>(&self, _: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        Ok(Box::new(FromLogits(msp)))
    }
}

/// Max softmax probability `1 / Σ_c exp(z_c − max z)` of each row of
/// `N × classes` logits (`N` scores).
pub fn msp(logits: &DMatrix<f64>) -> Vec<f64> {
    logits.row_iter().map(|r| 1.0 / shifted_exp_sum(r).1).collect()
}
