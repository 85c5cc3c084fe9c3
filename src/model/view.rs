//! [`Model`]: a validated, zero-copy view of a model file.
//!
//! `Model::from_bytes` checks everything once — header, checksum, every shape,
//! every number — so that the scoring hot path can index without re-checking
//! and still never panic.

use super::header;
use super::wire::{self, Body, Pooling, Preprocess};
use crate::bytes::{Floats, LeF16, LeF32};
use crate::density::{FactorData, Gaussians, Mixture, Projection, LN_2PI};
use crate::error::invalid;
use crate::kind::Covariance;
use crate::quant::Table;
use crate::scratch::ScratchSizes;
use crate::{Chain, Error, Verdict, MAX_LAYERS};

/// Largest dimension or component count accepted, so size arithmetic cannot
/// overflow even on 32-bit targets.
const MAX_DIM: u32 = 1 << 14;

/// One layer of a validated model: its tap, pooling and reference
/// contribution around the [`Mixture`] the scorer reads.
#[derive(Debug, Clone, Copy)]
pub struct LayerView<'a> {
    name: &'a str,
    pooling: Pooling,
    median_contribution: f32,
    mixture: Mixture<'a>,
}

impl<'a> LayerView<'a> {
    /// Tap name.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// Pooling kind.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }
    /// The layer's mixture.
    pub fn mixture(&self) -> &Mixture<'a> {
        &self.mixture
    }
    /// Length of the feature vector `score` expects for this layer.
    pub fn dim_in(&self) -> usize {
        self.mixture.dim_in()
    }
    /// Dimension of the mixture (after projection).
    pub fn dim(&self) -> usize {
        self.mixture.dim()
    }
    /// Number of components.
    pub fn components(&self) -> usize {
        self.mixture.components()
    }
    /// The projection, if any.
    pub fn projection(&self) -> Option<Projection<'a>> {
        self.mixture.projection()
    }
    /// The mixture's components.
    pub fn gaussians(&self) -> Gaussians<'a> {
        self.mixture.gaussians()
    }
    /// `log φ_k`.
    pub fn log_weight(&self, k: usize) -> f32 {
        self.mixture.log_weight(k)
    }
    /// Median contribution on held-out in-distribution data.
    pub fn median_contribution(&self) -> f32 {
        self.median_contribution
    }
}

impl<'a> AsRef<Mixture<'a>> for LayerView<'a> {
    fn as_ref(&self) -> &Mixture<'a> {
        &self.mixture
    }
}

/// A validated model, borrowing its bytes. Build it once, score many frames.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    layers: heapless::Vec<LayerView<'a>, MAX_LAYERS>,
    tables: heapless::Vec<Table<'a>, MAX_LAYERS>,
    sizes: ScratchSizes,
    chain: Chain,
    threshold: f32,
    calibration_tpr: f32,
    quantiles: LeF32<'a>,
    preprocess: Option<Preprocess<'a>>,
    source: &'a str,
}

fn f32s<'a>(bytes: &'a [u8], len: usize, layer: Option<u8>, what: &'static str) -> Result<LeF32<'a>, Error> {
    match LeF32::new(bytes) {
        Some(v) if v.len() == len => {
            if v.iter().all(f32::is_finite) {
                Ok(v)
            } else {
                Err(invalid(layer, what))
            }
        }
        _ => Err(invalid(layer, what)),
    }
}

fn f16s<'a>(bytes: &'a [u8], len: usize, layer: Option<u8>, what: &'static str) -> Result<LeF16<'a>, Error> {
    match LeF16::new(bytes) {
        Some(v) if v.len() == len && v.all_finite() => Ok(v),
        _ => Err(invalid(layer, what)),
    }
}

fn dim(v: u32, layer: u8, what: &'static str) -> Result<usize, Error> {
    if v == 0 || v > MAX_DIM {
        return Err(invalid(Some(layer), what));
    }
    Ok(v as usize)
}

/// Whether the `rows × cols` matrix has orthonormal rows (`W Wᵀ = I` to
/// 1e-4, far above `f32` rounding of unit rows): the residual term's
/// `‖r‖² = ‖x − m‖² − ‖z‖²` needs it. `rows²·cols / 2` operations, once.
fn orthonormal_rows(w: LeF32<'_>, rows: usize, cols: usize) -> bool {
    (0..rows).all(|a| {
        (0..=a).all(|b| {
            let g: f64 = (0..cols)
                .map(|c| w.get(a * cols + c) as f64 * w.get(b * cols + c) as f64)
                .sum();
            (g - if a == b { 1.0 } else { 0.0 }).abs() <= 1e-4
        })
    })
}

fn layer_view<'a>(i: u8, l: &wire::Layer<'a>) -> Result<LayerView<'a>, Error> {
    let at = Some(i);
    let dim_in = dim(l.dim_in, i, "dim_in must be in 1..=16384")?;
    let d = dim(l.dim, i, "dim must be in 1..=16384")?;
    let k = dim(l.components, i, "component count must be in 1..=16384")?;
    let projection = match &l.projection {
        None if d != dim_in => return Err(invalid(at, "dim differs from dim_in without a projection")),
        None => None,
        Some(p) => Some(projection(i, p, dim_in, d)?),
    };
    if let Pooling::GridAverageNchw { side } | Pooling::GridAverageNhwc { side } = l.pooling {
        let cells = side as usize * side as usize;
        if !(2..=Pooling::MAX_GRID).contains(&side) || !dim_in.is_multiple_of(cells) {
            return Err(invalid(
                at,
                "grid pooling: the side must be 2 to 16 and dim_in a multiple of side²",
            ));
        }
    }
    let log_weights = f32s(l.log_weights, k, at, "log weights: wrong length or non-finite")?;
    let total: f64 = log_weights.iter().map(|w| libm::exp(w as f64)).sum();
    if (total - 1.0).abs() > 1e-3 {
        return Err(invalid(at, "mixture weights do not sum to 1"));
    }
    if !l.median_contribution.is_finite() {
        return Err(invalid(at, "median contribution is not finite"));
    }
    Ok(LayerView {
        name: l.name,
        pooling: l.pooling,
        median_contribution: l.median_contribution,
        mixture: Mixture {
            dim_in,
            projection,
            gaussians: gaussians(i, l, d, k)?,
            log_weights,
        },
    })
}

/// A projection's arrays and residual term, checked for a `dim × dim_in` map.
fn projection<'a>(i: u8, p: &wire::Projection<'a>, dim_in: usize, d: usize) -> Result<Projection<'a>, Error> {
    let at = Some(i);
    let (var, dof) = (p.residual_variance, p.residual_dof);
    if !(var > 0.0 && var.is_finite()) {
        return Err(invalid(
            at,
            "projection residual variance must be positive and finite",
        ));
    }
    if !(dof >= 0.0 && dof <= (dim_in - d.min(dim_in)) as f32) {
        return Err(invalid(
            at,
            "projection residual degrees of freedom must be in 0..=dim_in - dim",
        ));
    }
    let log_norm = -0.5 * dof as f64 * libm::log(2.0 * core::f64::consts::PI * var as f64);
    let matrix = f32s(
        p.matrix,
        d * dim_in,
        at,
        "projection matrix: wrong length or non-finite",
    )?;
    if !orthonormal_rows(matrix, d, dim_in) {
        return Err(invalid(at, "projection matrix rows are not orthonormal"));
    }
    Ok(Projection {
        mean: f32s(p.mean, dim_in, at, "projection mean: wrong length or non-finite")?,
        matrix,
        residual_variance: var,
        residual_dof: dof,
        residual_log_norm: log_norm as f32,
        residual_half_precision: (0.5 / var as f64) as f32,
    })
}

/// The `K` components of dimension `d`: means and factors of the right
/// length in their storage, positive factor diagonals, and log norms that
/// match the factors.
fn gaussians<'a>(i: u8, l: &wire::Layer<'a>, d: usize, k: usize) -> Result<Gaussians<'a>, Error> {
    let at = Some(i);
    const MEANS: &str = "means: wrong length or non-finite";
    let means = match l.means {
        wire::Means::F32 { values } => Floats::F32(f32s(values, k * d, at, MEANS)?),
        wire::Means::F16 { values } => Floats::F16(f16s(values, k * d, at, MEANS)?),
    };
    const FACTORS: &str = "precision factors: wrong length or non-finite";
    let flen = l.covariance.factor_len(d);
    let factors = match l.factors {
        wire::Factors::F32 { values } => FactorData::F32(f32s(values, k * flen, at, FACTORS)?),
        wire::Factors::F16 { values } => FactorData::F16(f16s(values, k * flen, at, FACTORS)?),
        wire::Factors::I8 { scales, codes } => {
            let groups = match l.covariance {
                Covariance::Full => k * d,
                Covariance::Diag => k,
            };
            let scales = f16s(scales, groups, at, "factor scales: wrong length or non-finite")?;
            if scales.iter().any(|s| s <= 0.0) {
                return Err(invalid(at, "factor scales must be positive"));
            }
            if codes.len() != k * flen {
                return Err(invalid(at, "precision factor codes: wrong length"));
            }
            FactorData::I8 { scales, codes }
        }
    };
    let gaussians = Gaussians {
        dim: d,
        k,
        covariance: l.covariance,
        means,
        factors,
        log_norms: f32s(l.log_norms, k, at, "log norms: wrong length or non-finite")?,
    };
    for c in 0..k {
        let f = gaussians.factor(c);
        let mut log_det = 0.0f64;
        for j in 0..d {
            let diag = f.diag(j);
            if !(diag > 0.0 && diag.is_finite()) {
                return Err(invalid(at, "precision factor has a non-positive diagonal"));
            }
            log_det += libm::log(diag as f64);
        }
        let want = log_det - 0.5 * d as f64 * LN_2PI;
        if (gaussians.log_norm(c) as f64 - want).abs() > 1e-3 * (1.0 + want.abs()) {
            return Err(invalid(at, "log norm does not match the precision factor"));
        }
    }
    Ok(gaussians)
}

fn table<'a>(i: u8, t: &wire::Transition<'a>, rows: usize, cols: usize) -> Result<Table<'a>, Error> {
    let at = Some(i);
    let n = rows * cols;
    let table = match *t {
        wire::Transition::F32 { values } => Table::F32(f32s(
            values,
            n,
            at,
            "transition values: wrong length or non-finite",
        )?),
        wire::Transition::U16 { base, codes } => {
            if codes.len() != 2 * n {
                return Err(invalid(at, "transition codes: wrong length"));
            }
            Table::U16 { base, codes }
        }
        wire::Transition::U8 { codebook, codes } => {
            let codebook = f32s(
                codebook,
                256,
                at,
                "transition codebook: wrong length or non-finite",
            )?;
            if codebook.get(0) != 0.0 {
                return Err(invalid(at, "transition codebook entry 0 must be 0"));
            }
            if codes.len() != n {
                return Err(invalid(at, "transition codes: wrong length"));
            }
            Table::U8 { codebook, codes }
        }
    };
    // Every entry finite and non-negative, every row with positive mass: this
    // is what guarantees the forward recursion can never produce NaN.
    for r in 0..rows {
        let mut sum = 0.0f64;
        for c in 0..cols {
            let v = table.get(r * cols + c);
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(at, "transition entry is negative or non-finite"));
            }
            sum += v as f64;
        }
        if !(sum > 0.5 && sum < 2.0) {
            return Err(invalid(at, "transition row does not sum to 1"));
        }
    }
    Ok(table)
}

fn check_preprocess(p: &Preprocess<'_>) -> Result<(), Error> {
    let mean = LeF32::new(p.mean).ok_or(invalid(None, "preprocess mean: not a whole number of f32s"))?;
    let std = LeF32::new(p.std).ok_or(invalid(None, "preprocess std: not a whole number of f32s"))?;
    super::preprocess::check(
        p.colour,
        (p.height, p.width),
        p.resize,
        (p.datum, p.range),
        mean.iter(),
        std.iter(),
    )
    .map_err(|reason| invalid(None, reason))
}

impl<'a> Model<'a> {
    /// Decodes and validates a model file. Never panics: any byte string gives
    /// a model or a typed error.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let (version, body) = header::body(bytes)?;
        // A version-3 body reads as version 4 up to the first projection
        // (the Option tag comes before the fields version 4 added), so a
        // version-3 file with any projection is refused here, whatever
        // the decoder made of the bytes after it.
        // Likewise a file older than version 5 cannot name a grid pooling.
        let decoded = postcard::take_from_bytes::<Body<'a>>(body);
        let newer_than = |b: &Body<'_>| {
            b.layers
                .iter()
                .any(|l| (version < 4 && l.projection.is_some()) || (version < 5 && l.pooling.is_grid()))
        };
        if version < super::FORMAT_VERSION && decoded.as_ref().map_or(version < 4, |(b, _)| newer_than(b)) {
            return Err(Error::UnsupportedVersion(version));
        }
        let (body, rest) = decoded.map_err(|_| Error::Decode)?;
        if !rest.is_empty() {
            return Err(invalid(None, "trailing bytes inside the body"));
        }
        Self::from_body(body)
    }

    pub(crate) fn from_body(body: Body<'a>) -> Result<Self, Error> {
        if body.layers.is_empty() {
            return Err(invalid(None, "no layers"));
        }
        if body.transitions.len() + 1 != body.layers.len() {
            return Err(invalid(
                None,
                "need exactly one transition table between consecutive layers",
            ));
        }
        if !body.threshold.is_finite() {
            return Err(invalid(None, "threshold is not finite"));
        }
        if !(0.0..=1.0).contains(&body.calibration_tpr) {
            return Err(invalid(None, "calibration TPR must be in [0, 1]"));
        }
        let quantiles = match LeF32::new(body.quantiles) {
            Some(q) if q.len().is_multiple_of(2) && q.iter().all(f32::is_finite) => q,
            _ => return Err(invalid(None, "quantiles must be finite (q, score) pairs")),
        };
        if let Some(p) = &body.preprocess {
            check_preprocess(p)?;
        }
        let mut layers = heapless::Vec::new();
        for (i, l) in body.layers.iter().enumerate() {
            // Cannot fail: both vectors have capacity MAX_LAYERS.
            layers
                .push(layer_view(i as u8, l)?)
                .map_err(|_| Error::TooManyLayers)?;
        }
        let mut tables = heapless::Vec::new();
        for (i, t) in body.transitions.iter().enumerate() {
            let (rows, cols) = (layers[i].components(), layers[i + 1].components());
            tables
                .push(table(i as u8, t, rows, cols)?)
                .map_err(|_| Error::TooManyLayers)?;
        }
        let sizes = ScratchSizes {
            max_dim_in_projected: layers
                .iter()
                .filter(|l| l.projection().is_some())
                .map(|l| l.dim_in())
                .max()
                .unwrap_or(0),
            max_dim: layers.iter().map(|l| l.dim()).max().unwrap_or(0),
            max_k: layers.iter().map(|l| l.components()).max().unwrap_or(0),
        };
        Ok(Model {
            layers,
            tables,
            sizes,
            chain: body.chain,
            threshold: body.threshold,
            calibration_tpr: body.calibration_tpr,
            quantiles,
            preprocess: body.preprocess,
            source: body.source,
        })
    }

    /// Number of layers `m`.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Layer `i` (panics if `i ≥ num_layers()`).
    pub fn layer(&self, i: usize) -> &LayerView<'a> {
        &self.layers[i]
    }

    /// All layers in order.
    pub fn layers(&self) -> &[LayerView<'a>] {
        &self.layers
    }

    /// Transition table between layer `i` and `i + 1`.
    pub fn transition(&self, i: usize) -> &Table<'a> {
        &self.tables[i]
    }

    /// Chain mode.
    pub fn chain(&self) -> Chain {
        self.chain
    }

    /// Calibrated threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Fraction of held-out in-distribution frames at or above the threshold.
    pub fn calibration_tpr(&self) -> f32 {
        self.calibration_tpr
    }

    /// `(q, score)` quantiles of held-out in-distribution scores.
    pub fn quantiles(&self) -> impl Iterator<Item = (f32, f32)> + 'a {
        let q = self.quantiles;
        (0..q.len() / 2).map(move |i| (q.get(2 * i), q.get(2 * i + 1)))
    }

    /// Input preprocessing; `None` for a model fitted from feature files
    /// (it scores features, not frames).
    pub fn preprocess(&self) -> Option<&Preprocess<'a>> {
        self.preprocess.as_ref()
    }

    /// Free-text name of the network the model was fitted for.
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// Length in `f32`s of the scratch buffer `score` needs.
    pub fn scratch_len(&self) -> usize {
        self.sizes.len()
    }

    /// Scores one frame. `features[i]` is layer `i`'s pooled feature vector
    /// (length `layer(i).dim_in()`), `scratch` has at least `scratch_len()`
    /// values and `contributions[..m]` receives each layer's share of the
    /// score. Returns the log joint likelihood. Allocates nothing.
    pub fn score(
        &self,
        features: &[&[f32]],
        scratch: &mut [f32],
        contributions: &mut [f32],
    ) -> Result<f32, Error> {
        let layers = crate::chain::Layers {
            chain: self.chain,
            mixtures: &self.layers,
            tables: &self.tables,
            sizes: self.sizes,
        };
        crate::chain::forward(layers, features, scratch, contributions)
    }

    /// The verdict for a score and its contributions, against `threshold`
    /// (`None`: the calibrated one).
    pub fn verdict(&self, score: f32, contributions: &[f32], threshold: Option<f32>) -> Verdict {
        Verdict::new(
            score,
            threshold.unwrap_or(self.threshold),
            contributions,
            self.layers.iter().map(|l| l.median_contribution),
        )
    }

    /// Scores one frame and judges it against `threshold` (`None`: the
    /// calibrated one): [`Model::score`] then [`Model::verdict`], except that
    /// a frame whose density overflows (farther from every component than
    /// `f32` can express) is not an error but the most out-of-distribution
    /// frame there is: [`Verdict::overflow`], with `contributions` of the
    /// layers before it as scored, [`crate::OVERFLOW_SCORE`] at the
    /// overflowing layer and 0 after it (they still sum to the score).
    /// Every other error (wrong lengths, NaN features, small buffers) is
    /// returned. Allocates nothing.
    pub fn judge(
        &self,
        features: &[&[f32]],
        scratch: &mut [f32],
        contributions: &mut [f32],
        threshold: Option<f32>,
    ) -> Result<Verdict, Error> {
        match self.score(features, scratch, contributions) {
            Ok(score) => Ok(self.verdict(score, contributions, threshold)),
            Err(Error::Overflow { layer }) => {
                let m = self.num_layers();
                let l = layer as usize;
                contributions[l] = crate::OVERFLOW_SCORE;
                contributions[l + 1..m].fill(0.0);
                Ok(Verdict::overflow(layer, threshold.unwrap_or(self.threshold)))
            }
            Err(e) => Err(e),
        }
    }

    /// The inverse of [`Model::threshold_for_fpr`]: the fraction of
    /// in-distribution frames a `threshold` flags (its expected
    /// false-positive rate), interpolated linearly between the stored
    /// quantiles. `None` if the model carries no quantiles or `threshold`
    /// is outside their scores. `lsgm-monitor --window` takes it as the OOD
    /// rate its drift test expects under `--threshold`.
    pub fn fpr_at_threshold(&self, threshold: f32) -> Option<f32> {
        let mut prev: Option<(f32, f32)> = None;
        for (q, s) in self.quantiles() {
            if s == threshold {
                return Some(q); // a stored quantile, exactly (as its twin does)
            }
            if let Some((q0, s0)) = prev {
                if s0 < threshold && threshold < s {
                    return Some(q0 + (q - q0) * (threshold - s0) / (s - s0));
                }
            }
            prev = Some((q, s));
        }
        None
    }

    /// The threshold whose expected false-positive rate on in-distribution
    /// frames is `fpr`, interpolated from the stored quantiles. `None` if the
    /// model carries no quantiles or `fpr` is outside their range.
    pub fn threshold_for_fpr(&self, fpr: f32) -> Option<f32> {
        let mut prev: Option<(f32, f32)> = None;
        for (q, s) in self.quantiles() {
            if (q - fpr).abs() < 1e-9 {
                return Some(s);
            }
            if let Some((q0, s0)) = prev {
                if q0 < fpr && fpr < q {
                    return Some(s0 + (s - s0) * (fpr - q0) / (q - q0));
                }
            }
            prev = Some((q, s));
        }
        None
    }
}
