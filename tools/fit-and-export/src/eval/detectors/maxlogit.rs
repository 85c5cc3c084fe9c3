//! Maximum logit (Hendrycks, Basart, Mazeika, Zou, Kwon, Mostajabi,
//! Steinhardt & Song, "Scaling Out-of-Distribution Detection for Real-World
//! Settings", ICML 2022): the largest unnormalised class score.

use crate::eval::detector::{FittedDetector, FromLogits, NamedDetector, Needs, TrainingData};
use anyhow::Result;
use nalgebra::DMatrix;

/// `max_c z_c` of the logits `z`; nothing to fit.
#[derive(Default)]
pub struct MaxLogit;

impl NamedDetector for MaxLogit {
    const NAME: &'static str = "maxlogit";
    const NEEDS: Needs = Needs::LOGITS;

    fn fit<'a>(&self, _: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        Ok(Box::new(FromLogits(max_logit)))
    }
}

/// The largest value of each row of `N × classes` logits (`N` scores).
pub fn max_logit(logits: &DMatrix<f64>) -> Vec<f64> {
    logits.row_iter().map(|r| r.max()).collect()
}
