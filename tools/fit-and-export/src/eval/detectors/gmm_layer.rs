//! One tap's own mixture of the fitted LSGM, without the chain: the
//! single-layer density that LSGM (Xu et al., arXiv:2103.12344) links across
//! taps, reported per tap as an ablation.

use crate::eval::detector::{Detector, FittedDetector, SetFeatures, TrainingData};
use anyhow::Result;
use lsgm::reference::Reference;
use lsgm::Model;
use rayon::prelude::*;

/// The family name in `--methods`: `gmm-layer-I` for tap `I`.
pub const NAME: &str = "gmm-layer";

/// `log Σ_k φ_k N(x_tap | k)` with the model's mixture of tap `tap`.
pub struct GmmLayer {
    /// Which tap (0-based).
    pub tap: usize,
}

struct Fitted<'a> {
    model: &'a Model<'a>,
    tap: usize,
}

impl Detector for GmmLayer {
    fn name(&self) -> String {
        format!("{NAME}-{}", self.tap)
    }

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        Ok(Box::new(Fitted {
            model: data.model,
            tap: self.tap,
        }))
    }
}

impl FittedDetector for Fitted<'_> {
    /// Scores the rows of the tap's `N × d` features.
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        let (model, i) = (self.model, self.tap);
        let r = Reference::new(model);
        let layer = model.layer(i);
        let rows = &x.layers[i];
        Ok((0..rows.nrows())
            .into_par_iter()
            .map(|n| {
                let row: Vec<f32> = rows.row(n).iter().map(|&v| v as f32).collect();
                let ld: Vec<f64> = r
                    .log_densities(i, &row)
                    .iter()
                    .enumerate()
                    .map(|(k, v)| v + layer.log_weight(k) as f64)
                    .collect();
                let m = ld.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                m + ld.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
            })
            .collect())
    }
}
