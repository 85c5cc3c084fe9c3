//! Maximum softmax probability (Hendrycks & Gimpel, "A Baseline for
//! Detecting Misclassified and Out-of-Distribution Examples in Neural
//! Networks", ICLR 2017): the network's own probability for its top class.
//! For a network that ends in a Sigmoid (independent per-class
//! probabilities) that is `max_c sigmoid(z_c)`, the same number the
//! monitor reports as its confidence, not a softmax the network never
//! computes.

use crate::eval::detector::{
    shifted_exp_sum, FittedDetector, FromLogits, NamedDetector, Needs, TrainingData,
};
use anyhow::Result;
use lsgm::onnx::Probabilities;
use nalgebra::DMatrix;

/// `max_c softmax(z)_c` of the logits `z` (`max_c sigmoid(z_c)` for a
/// sigmoid network); nothing to fit.
#[derive(Default)]
pub struct Msp;

impl NamedDetector for Msp {
    const NAME: &'static str = "msp";
    const NEEDS: Needs = Needs::LOGITS;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        Ok(Box::new(match data.probabilities {
            Probabilities::Sigmoid => FromLogits(max_sigmoid),
            _ => FromLogits(msp),
        }))
    }
}

/// Max sigmoid probability `σ(max_c z_c)` of each row of `N × classes`
/// logits (`N` scores).
pub fn max_sigmoid(logits: &DMatrix<f64>) -> Vec<f64> {
    logits
        .row_iter()
        .map(|r| 1.0 / (1.0 + (-r.max()).exp()))
        .collect()
}

/// Max softmax probability `1 / Σ_c exp(z_c − max z)` of each row of
/// `N × classes` logits (`N` scores).
pub fn msp(logits: &DMatrix<f64>) -> Vec<f64> {
    logits.row_iter().map(|r| 1.0 / shifted_exp_sum(r).1).collect()
}
