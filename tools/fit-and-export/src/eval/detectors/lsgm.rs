//! LSGM, the model under evaluation (Xu, Zhu, Li & Xu, "Joint Distribution
//! across Representation Space for Out-of-Distribution Detection",
//! arXiv:2103.12344, 2021): the log joint likelihood of a frame's trace
//! through every tap's mixture, with the core's scorer.

use crate::eval::detector::{FittedDetector, NamedDetector, SetFeatures, TrainingData};
use crate::scoring::{score_all, RowMajor};
use anyhow::Result;
use lsgm::Model;

/// The fitted `.lsgm` model's score; fitted already (by `fit-and-export`).
#[derive(Default)]
pub struct Lsgm;

struct Fitted<'a> {
    model: &'a Model<'a>,
}

impl NamedDetector for Lsgm {
    const NAME: &'static str = "lsgm";

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        Ok(Box::new(Fitted { model: data.model }))
    }
}

impl FittedDetector for Fitted<'_> {
    /// The core's score of every frame from its `N × d_i` tap features.
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        Ok(score_all(self.model, &RowMajor::from_matrices(&x.layers))?
            .into_iter()
            .map(|s| s.score as f64)
            .collect())
    }
}
