//! What an OOD detector is to the harness: fitted on in-distribution data
//! only ([`TrainingData`]), then one score per frame where **higher = more
//! in-distribution**. The detectors themselves and their table are in
//! [`super::detectors`]; [`super::select`] turns `--methods` into detectors.

use super::head::Head;
use anyhow::{anyhow, Result};
use lsgm::onnx::Probabilities;
use lsgm::Model;
use nalgebra::{DMatrix, DVector, Dyn, MatrixView, U1};

/// Features and logits of one set of frames (`N` frames, one row each).
pub struct SetFeatures {
    /// Per tap, `N × d_i` (the tap's pooled features, in the model's tap order).
    pub layers: Vec<DMatrix<f64>>,
    /// `N × classes`: the classifier's logits.
    pub logits: DMatrix<f64>,
    /// `N × d`: the classifier's penultimate features (the input of its
    /// final linear layer), when they are not the last tap and `eval`
    /// tapped them as well ([`super::head::Penultimate::Extra`]).
    pub penultimate: Option<DMatrix<f64>>,
}

impl SetFeatures {
    /// The last tap's `N × d` features (the classifier's penultimate features
    /// on the usual tap choice).
    pub fn last_tap(&self) -> &DMatrix<f64> {
        self.layers.last().expect("a model has at least one tap")
    }

    /// Number of frames `N`.
    pub fn rows(&self) -> usize {
        self.logits.nrows()
    }
}

/// Everything a detector may be fitted on. All of it is in-distribution: no
/// OOD frame is ever seen before scoring. A detector reads the fields it
/// needs; a new kind of data (e.g. the classifier's final linear layer) is a
/// new field here, filled where `eval` builds this struct, and no other
/// detector changes.
pub struct TrainingData<'a> {
    /// The fitted LSGM being evaluated: its per-tap mixtures and chain.
    pub model: &'a Model<'a>,
    /// The `--train` frames' per-tap features (`N × d_i`) and logits
    /// (`N × classes`), when `--train` was given and a chosen detector
    /// needs them ([`Needs::train`]).
    pub train: Option<&'a SetFeatures>,
    /// The `--train-labels` class of each `train` row (`N`), when given.
    pub labels: Option<&'a [u8]>,
    /// The classifier's final linear layer `z = W f + b`, when a chosen
    /// detector needs it ([`Needs::head`]) and the network has one.
    pub head: Option<&'a Head>,
    /// How the network turns the logits into its probabilities (MSP reads
    /// the network's own: a softmax, or a sigmoid per class); never
    /// [`Probabilities::Unknown`] for a detector that reads the logits
    /// ([`Needs::logits`]: those are skipped).
    pub probabilities: Probabilities,
}

impl<'a> TrainingData<'a> {
    /// The training features, or an error naming the flag that gives them.
    pub fn train(&self) -> Result<&'a SetFeatures> {
        self.train.ok_or_else(|| anyhow!("this detector needs --train"))
    }

    /// The training labels (one per `train` row), or an error naming the flag.
    pub fn labels(&self) -> Result<&'a [u8]> {
        self.labels
            .ok_or_else(|| anyhow!("this detector needs --train-labels"))
    }

    /// The final linear layer, or an error saying so.
    pub fn head(&self) -> Result<&'a Head> {
        self.head
            .ok_or_else(|| anyhow!("this detector needs the classifier's final linear layer"))
    }
}

/// What a detector is fitted on beyond the LSGM model and the frames it
/// scores. `eval` extracts the training set only when a chosen detector
/// needs it, and skips (with a warning) the detectors whose data was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// The `--train` frames' features and logits.
    pub train: bool,
    /// Their `--train-labels`.
    pub train_labels: bool,
    /// The classifier's final linear layer (read from the ONNX graph) and
    /// its input, the penultimate features.
    pub head: bool,
    /// The classifier's logits, as scores the network turns into its
    /// probabilities: skipped when its output cannot be read back to them.
    pub logits: bool,
}

impl Needs {
    /// Nothing beyond the model and the scored frames.
    pub const NOTHING: Needs = Needs {
        train: false,
        train_labels: false,
        head: false,
        logits: false,
    };
    /// The logits.
    pub const LOGITS: Needs = Needs {
        logits: true,
        ..Needs::NOTHING
    };
    /// `--train`.
    pub const TRAIN: Needs = Needs {
        train: true,
        ..Needs::NOTHING
    };
    /// `--train` and `--train-labels`.
    pub const TRAIN_LABELS: Needs = Needs {
        train_labels: true,
        ..Needs::TRAIN
    };
    /// The final linear layer.
    pub const HEAD: Needs = Needs {
        head: true,
        ..Needs::NOTHING
    };
    /// `--train` and the final linear layer.
    pub const TRAIN_HEAD: Needs = Needs {
        head: true,
        ..Needs::TRAIN
    };
}

/// An OOD detector before fitting.
pub trait Detector {
    /// The name in `--methods` and in the reports (`gmm-layer-2` for tap 2 of
    /// a per-tap detector).
    fn name(&self) -> String;

    /// What [`Detector::fit`] reads from its [`TrainingData`].
    fn needs(&self) -> Needs {
        Needs::NOTHING
    }

    /// Fits on in-distribution data only.
    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>>;
}

/// A fitted detector.
pub trait FittedDetector {
    /// One score per frame (row) of `x`, `N` in all; higher = more in-distribution.
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>>;
}

/// A detector with one fixed name (all but per-tap families): implementing
/// this implements [`Detector`], and [`Entry::of`] makes its table row.
pub trait NamedDetector: Default + 'static {
    /// The name in `--methods` and in the reports.
    const NAME: &'static str;
    /// What [`NamedDetector::fit`] reads from its [`TrainingData`].
    const NEEDS: Needs = Needs::NOTHING;

    /// Fits on in-distribution data only.
    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>>;
}

impl<D: NamedDetector> Detector for D {
    fn name(&self) -> String {
        D::NAME.into()
    }

    fn needs(&self) -> Needs {
        D::NEEDS
    }

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        NamedDetector::fit(self, data)
    }
}

/// A score that is a function of the logits alone, nothing fitted (MSP,
/// energy, max logit): `N × classes` logits to `N` scores.
pub struct FromLogits(pub fn(&DMatrix<f64>) -> Vec<f64>);

impl FittedDetector for FromLogits {
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        Ok((self.0)(&x.logits))
    }
}

/// One row of a `DMatrix<f64>` of logits, as `row_iter` gives it.
pub type LogitRow<'a> = MatrixView<'a, f64, U1, Dyn, U1, Dyn>;

/// `(m, Σ_c exp(z_c − m))` with `m = max_c z_c` of one row of logits: the
/// overflow-free parts of the softmax and of `logsumexp`.
pub fn shifted_exp_sum(row: LogitRow) -> (f64, f64) {
    let m = row.max();
    (m, row.iter().map(|v| (v - m).exp()).sum::<f64>())
}

/// The predicted class of one row of logits: the index of its largest
/// value (the first among equal ones), as `argmax`.
pub fn predicted(row: LogitRow) -> usize {
    (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b })
}

/// The mean row `μ` (`d`) of `N × d` features, e.g. the training mean.
pub fn mean_row(x: &DMatrix<f64>) -> DVector<f64> {
    DVector::from_iterator(x.ncols(), x.column_iter().map(|col| col.mean()))
}

/// One row of [`REGISTRY`](super::detectors::REGISTRY): a detector, or a family of one detector per tap.
#[derive(Debug)]
pub struct Entry {
    /// The name in `--methods`; a per-tap family's detectors are `NAME-I`
    /// for tap `I` (0-based).
    pub name: &'static str,
    /// One detector per tap rather than one in all.
    pub per_tap: bool,
    /// Makes the detector (for tap `tap` of a per-tap family; 0 otherwise).
    pub make: fn(tap: usize) -> Box<dyn Detector>,
}

fn make<D: NamedDetector>(_: usize) -> Box<dyn Detector> {
    Box::new(D::default())
}

impl Entry {
    /// The row of a [`NamedDetector`].
    pub const fn of<D: NamedDetector>() -> Entry {
        Entry {
            name: D::NAME,
            per_tap: false,
            make: make::<D>,
        }
    }

    /// One detector per tap, named `NAME-I`, made by `make(tap)`.
    pub const fn per_tap(name: &'static str, make: fn(usize) -> Box<dyn Detector>) -> Entry {
        Entry {
            name,
            per_tap: true,
            make,
        }
    }

    /// Its detectors for a model with `taps` taps, in tap order.
    pub fn detectors(&self, taps: usize) -> Vec<Box<dyn Detector>> {
        let taps = if self.per_tap { 0..taps } else { 0..1 };
        taps.map(self.make).collect()
    }
}
