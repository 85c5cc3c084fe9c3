//! The whole fit, as phases with typed results (as scikit-learn's
//! `mixture/_base.py` drives its concrete mixtures):
//!
//! 1. [`split::split`] — training and held-out rows ([`split::Split`]);
//! 2. [`layer::fit_mixture`] — per layer, the dimension and the mixture
//!    ([`layer::LayerFit`]);
//! 3. [`layer::responsibilities`] — per layer, the rows under that mixture
//!    ([`layer::Responsibilities`]);
//! 4. [`transitions`] — the tables between consecutive layers;
//! 5. [`calibration::calibrate_model`] — the threshold and its kin from the
//!    packed model's scores ([`calibration::Calibrated`]);
//! 6. [`encode`] — the model file.
//!
//! The model is packed once ([`ModelSpec::pack`]) between phases 4 and 5,
//! validated once to score with, and serialised once with its calibration.
//! [`fit`] runs them and assembles the [`FitReport`].

pub mod calibration;
pub mod layer;
pub mod report;
pub mod split;

use crate::dimension::DimRule;
use crate::gmm::GmmParams;
use crate::io::FeatureSet;
use crate::transitions::{self as tables, Counting};
use anyhow::{ensure, Context, Result};
use calibration::Calibrated;
use layer::Tap;
use lsgm::model::PackedModel;
use lsgm::quant::{quantise, QuantisedTable};
use lsgm::{Chain, ModelSpec, Preprocess, Quantisation, Storage};
use nalgebra::DMatrix;
pub use report::{
    FitReport, HeldOutCheck, LayerReport, Phases, ResidualReport, StorageEffect, HELD_OUT_ALARM,
};
use std::time::Instant;

/// Everything that shapes a fit beyond the data.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Per-layer mixture parameters.
    pub gmm: GmmParams,
    /// Chain mode.
    pub chain: Chain,
    /// Transition counting.
    pub counting: Counting,
    /// Added to every transition count.
    pub pseudo_count: f64,
    /// Fraction of rows held out for calibration.
    pub holdout: f64,
    /// How each layer's mixture dimension is chosen.
    pub max_dim: DimRule,
    /// Transition table storage.
    pub quantisation: Quantisation,
    /// Storage of every layer's means and precision factors.
    pub storage: Storage,
}

impl FitOptions {
    /// Checks the options before any work.
    pub fn validate(&self) -> Result<()> {
        self.gmm.validate()?;
        ensure!(
            (0.0..0.9).contains(&self.holdout),
            "--holdout must be in [0, 0.9) (default 0.1), got {}",
            self.holdout
        );
        ensure!(
            self.pseudo_count >= 0.0 && self.pseudo_count.is_finite(),
            "--pseudo-count must be non-negative"
        );
        if let DimRule::AtMost(d) = self.max_dim {
            ensure!(d >= 1, "--max-dim must be at least 1");
        }
        Ok(())
    }
}

/// Phase 4: the transition table between each pair of consecutive layers,
/// counted from the training rows' responsibilities (`resp[i]` is layer
/// `i`'s, phase 3) and quantised for storage; it needs every layer's
/// responsibilities, so it runs after the last layer.
pub fn transitions(resp: &[DMatrix<f64>], opts: &FitOptions) -> Result<Vec<QuantisedTable>> {
    resp.windows(2)
        .map(|w| {
            quantise(
                &tables::table(&w[0], &w[1], opts.counting, opts.pseudo_count),
                opts.quantisation,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .context("quantising the transition tables")
}

/// Phase 6: the model file: the packed model (phase 5 scored it) with the
/// calibration set, serialised without packing or validating it again.
pub fn encode(mut packed: PackedModel<'_>, calibrated: &Calibrated) -> Result<Vec<u8>> {
    let c = &calibrated.calibration;
    let quantiles: Vec<(f32, f32)> = c.quantiles.iter().map(|&(q, s)| (q as f32, s as f32)).collect();
    packed
        .calibrate(
            c.threshold as f32,
            c.tpr as f32,
            &quantiles,
            &calibrated.median_contributions,
        )
        .context("encoding the calibrated model")?;
    packed.to_bytes().context("encoding the calibrated model")
}

/// Fits and encodes a model: the phases in order, timed. Returns the file
/// bytes and the report.
pub fn fit(
    features: &FeatureSet,
    opts: &FitOptions,
    preprocess: Option<Preprocess>,
    source: String,
) -> Result<(Vec<u8>, FitReport)> {
    opts.validate()?;
    let split = split::split(features.rows(), opts)?;
    let mut phases = Phases::default();
    let (mut layers, mut reports, mut resp) = (Vec::new(), Vec::new(), Vec::new());
    let mut resp_seconds = 0.0;
    for ((name, x), &pooling) in features
        .names
        .iter()
        .zip(&features.layers)
        .zip(&features.poolings)
    {
        let fitted = layer::fit_mixture(Tap { name, pooling, x }, &split, opts)?;
        let r = layer::responsibilities(&fitted);
        phases.fit.push(fitted.seconds);
        resp_seconds += r.seconds;
        reports.push(layer::report(&fitted, &r, opts.gmm.k()));
        layers.push(fitted.spec(opts));
        resp.push(r.train);
    }

    let t0 = Instant::now();
    let tables = transitions(&resp, opts)?;
    phases.transitions = resp_seconds + t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let spec = ModelSpec {
        source,
        chain: opts.chain,
        threshold: 0.0,
        calibration_tpr: 0.0,
        quantiles: Vec::new(),
        preprocess,
        layers,
        transitions: tables,
    };
    let packed = spec.pack().context("encoding the fitted model")?;
    let packing = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let calibrated = calibration::calibrate_model(&packed, features, &split, opts.storage, opts.holdout)?;
    phases.calibration = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let bytes = encode(packed, &calibrated)?;
    phases.export = packing + t0.elapsed().as_secs_f64();
    let report = FitReport {
        seconds: phases,
        layers: reports,
        rows: (split.train.len(), split.held_out.len()),
        threshold: calibrated.calibration.threshold,
        holdout_tpr: calibrated.calibration.tpr,
        holdout_tpr_interval: calibrated.interval,
        scores: calibrated.scores,
        bytes: bytes.len(),
        storage_effect: calibrated.storage_effect,
    };
    Ok((bytes, report))
}
