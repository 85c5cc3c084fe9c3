//! The classifier's final linear layer `z = W f + b` for the detectors that
//! recompute logits from modified penultimate features or measure them
//! against its weights (ReAct, ASH-S, ViM, fDBD, NNGuide, SCALE, NCI):
//! `W` and `b` from the ONNX graph ([`lsgm::onnx::Graph::linear_head`]) and
//! where its input `f` is in the extracted features. `f` is never guessed:
//! it is the model's last tap when that tap is `f` itself or the map the
//! network global-average-pools into `f` (the tap's pooling is that mean);
//! otherwise `f` is tapped as well, for `eval` only.

use super::detector::{Detector, SetFeatures};
use anyhow::{bail, Result};
use lsgm::frames::Notes;
use lsgm::onnx::{Checked, LinearHead};
use lsgm::Model;
use nalgebra::{DMatrix, DVector};

/// Where the penultimate features `f` are in a [`SetFeatures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penultimate {
    /// The last tap ([`SetFeatures::last_tap`]).
    LastTap,
    /// An extra tap extracted for `eval` ([`SetFeatures::penultimate`]).
    Extra,
}

/// The final linear layer in `f64`, as the detectors use it.
pub struct Head {
    /// `W`, `K × d` (classes × penultimate features).
    pub weight: DMatrix<f64>,
    /// `b`, `K`.
    pub bias: DVector<f64>,
    /// Where `f` is.
    pub features: Penultimate,
    /// Which node `W` and `b` came from, for the report.
    pub about: String,
}

impl Head {
    /// `W` and `b` of an ONNX head, with `f` at `features`.
    pub fn new(h: &LinearHead, features: Penultimate) -> Head {
        Head {
            weight: DMatrix::from_fn(h.classes, h.dim, |c, j| h.weight[c * h.dim + j] as f64),
            bias: DVector::from_iterator(h.classes, h.bias.iter().map(|&v| v as f64)),
            features,
            about: h.about.clone(),
        }
    }

    /// The `N × d` penultimate features of a set.
    pub fn features<'x>(&self, x: &'x SetFeatures) -> Result<&'x DMatrix<f64>> {
        let f = match self.features {
            Penultimate::LastTap => x.last_tap(),
            Penultimate::Extra => match &x.penultimate {
                Some(f) => f,
                None => bail!("the penultimate features were not extracted"),
            },
        };
        if f.ncols() != self.weight.ncols() {
            bail!(
                "the penultimate features have {} values, the final linear layer takes {}",
                f.ncols(),
                self.weight.ncols()
            );
        }
        Ok(f)
    }

    /// `N × K` logits `f Wᵀ + b` of `N × d` features (rows of `f`).
    pub fn logits(&self, f: &DMatrix<f64>) -> DMatrix<f64> {
        let mut z = f * self.weight.transpose();
        for mut row in z.row_iter_mut() {
            row += self.bias.transpose();
        }
        z
    }
}

/// Reads the final linear layer from the checked network when one of
/// `detectors` needs it: `None` when none does, else the head or why there
/// is none (a network without a linear layer, a tensor that cannot be
/// tapped), for the warning that skips them. When `f` is not the last tap
/// it is added to `checked.taps`, so the one network built from `checked`
/// extracts it too.
pub fn load_for(
    detectors: &[Box<dyn Detector>],
    checked: &mut Checked,
    model: &Model,
    notes: &Notes,
) -> Option<Result<Head, String>> {
    let needed = detectors.iter().any(|d| d.needs().head);
    needed.then(|| load(checked, model, notes).map_err(|e| format!("{e:#}")))
}

fn load(checked: &mut Checked, model: &Model, notes: &Notes) -> Result<Head> {
    let graph = &checked.graph;
    let h = graph.linear_head()?;
    let last = model.layer(model.num_layers() - 1).name();
    let tap = graph.find(last)?;
    let pooled = tap.pooling.map(|p| (tap.tensor.clone(), p));
    let features = if tap.tensor == h.input {
        notes.say(&format!(
            "final linear layer: {}; its input is the last tap",
            h.about
        ));
        Penultimate::LastTap
    } else if pooled.is_some() && h.pooled_from == pooled {
        notes.say(&format!(
            "final linear layer: {}; its input is the mean over H, W of the last tap {last:?}",
            h.about
        ));
        Penultimate::LastTap
    } else {
        notes.say(&format!(
            "final linear layer: {}; its input is not the last tap {last:?} (nor that tap's mean \
             over H, W), so {:?} is tapped as well for the detectors that use the layer \
             (knn, mahalanobis, mahalanobis++ and rmds still read the last tap)",
            h.about, h.input_tap
        ));
        graph.find(&h.input_tap)?;
        checked.taps.push(h.input_tap.clone());
        Penultimate::Extra
    };
    Ok(Head::new(&h, features))
}
