//! The whole fit: split, per-layer mixtures, transitions, calibration, export.

use crate::calibrate::{calibrate, Calibration};
use crate::gmm::{dp, em, GmmParams, Mixture, MixtureKind};
use crate::io::FeatureSet;
use crate::pca::Pca;
use crate::scoring::{score_all, RowMajor};
use crate::transitions::{self, Counting};
use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lsgm::quant::quantise;
use lsgm::{Chain, LayerSpec, Model, ModelSpec, Preprocess, Quantisation, Storage};
use nalgebra::DMatrix;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
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
    /// PCA to at most this many dimensions per layer.
    pub max_dim: Option<usize>,
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
        if let Some(d) = self.max_dim {
            ensure!(d >= 1, "--max-dim must be at least 1");
        }
        Ok(())
    }
}

/// Per-layer part of the fit report.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Tap name.
    pub name: String,
    /// Feature length.
    pub dim_in: usize,
    /// Mixture dimension.
    pub dim: usize,
    /// Components after pruning.
    pub components: usize,
    /// Iterations run.
    pub iterations: usize,
    /// Converged within `max_iter`.
    pub converged: bool,
    /// Mean log-likelihood of the training rows under the exported mixture.
    pub mean_log_likelihood: f64,
    /// Variance kept by the projection (1 without one).
    pub explained_variance: f64,
    /// Wall seconds of this layer's mixture fit (projection, k-means, EM/VI).
    pub seconds: f64,
}

/// The final JSON line of a fit.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    /// Per-phase wall seconds.
    pub seconds: Phases,
    /// Per layer.
    pub layers: Vec<LayerReport>,
    /// Rows used for fitting and for calibration.
    pub rows: (usize, usize),
    /// Calibrated threshold.
    pub threshold: f64,
    /// TPR of the threshold on the held-out rows.
    pub holdout_tpr: f64,
    /// Model file size.
    pub bytes: usize,
    /// With `--storage f16`/`i8`: how far the stored model's held-out scores
    /// are from the same model stored as f32.
    pub storage_effect: Option<StorageEffect>,
}

/// Score change caused by reduced-precision storage, on the held-out rows.
#[derive(Debug, Clone, Serialize)]
pub struct StorageEffect {
    /// Median of |score − f32 score| in nats.
    pub median_abs: f64,
    /// Largest |score − f32 score| in nats.
    pub max_abs: f64,
    /// Fraction of held-out rows whose verdict differs at the calibrated threshold.
    pub verdict_flips: f64,
}

/// Wall seconds per phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phases {
    /// Feature extraction (ONNX path only).
    pub extract: Option<f64>,
    /// Per-layer mixture fits.
    pub fit: Vec<f64>,
    /// Final responsibilities of the training rows and transition counting.
    pub transitions: f64,
    /// Held-out scoring and calibration.
    pub calibration: f64,
    /// Encoding.
    pub export: f64,
}

fn rows(x: &DMatrix<f64>, idx: &[usize]) -> DMatrix<f64> {
    x.select_rows(idx.iter())
}

fn fit_layer(x: &DMatrix<f64>, name: &str, p: &GmmParams) -> Result<(em::Fitted, Mixture)> {
    let bar = ProgressBar::new(p.max_iter as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} iter  {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("layer {name}"));
    let mut progress = |it: usize, ll: f64| {
        bar.set_position(it as u64);
        bar.set_message(format!("objective {ll:.4}"));
    };
    let fitted = match p.kind {
        MixtureKind::Em { .. } => em::fit(x, p, &mut progress),
        MixtureKind::Dp { .. } => dp::fit(x, p, &mut progress),
    };
    bar.finish_and_clear();
    if let Ok(f) = &fitted {
        if !f.converged {
            // scikit-learn's ConvergenceWarning, with what to change.
            let (what, fewer) = match p.kind {
                MixtureKind::Em { .. } => ("EM", "fewer components (--components)"),
                MixtureKind::Dp { .. } => ("the Dirichlet-process fit", "a lower truncation (--dp KMAX)"),
            };
            crate::say!(
                "warning: layer {name}: {what} stopped after --max-iter {} iterations without converging \
                 (the objective still changed by more than --tol {:e}); raise --max-iter, loosen --tol, \
                 or try {fewer} or --covariance diag",
                p.max_iter,
                p.tol
            );
        }
    }
    let fitted = fitted.map_err(|e| {
        anyhow::anyhow!(
            "layer {name}: the covariance of component {} stays singular even after re-seeding \
             (reg_covar = {}). Try a larger --reg-covar (e.g. 1e-4), fewer components, \
             --covariance diag, or a projection with --max-dim",
            e.component,
            p.reg_covar
        )
    })?;
    let mixture = match p.kind {
        MixtureKind::Dp { prune, .. } => fitted
            .mixture
            .prune(prune)
            .with_context(|| format!("layer {name}"))?,
        MixtureKind::Em { .. } => fitted.mixture.clone(),
    };
    Ok((fitted, mixture))
}

/// Compares held-out scores of the stored model with its f32 twin.
fn storage_effect(stored: &[f64], exact: &[f64], threshold: f64) -> StorageEffect {
    let mut diffs: Vec<f64> = stored.iter().zip(exact).map(|(a, b)| (a - b).abs()).collect();
    diffs.sort_by(f64::total_cmp);
    let flips = stored
        .iter()
        .zip(exact)
        .filter(|(a, b)| (**a < threshold) != (**b < threshold))
        .count();
    StorageEffect {
        median_abs: crate::calibrate::quantile(&diffs, 0.5),
        max_abs: diffs.last().copied().unwrap_or(0.0),
        verdict_flips: flips as f64 / stored.len().max(1) as f64,
    }
}

/// Fits and encodes a model. Returns the file bytes and the report.
pub fn fit(
    features: &FeatureSet,
    opts: &FitOptions,
    preprocess: Option<Preprocess>,
    source: String,
) -> Result<(Vec<u8>, FitReport)> {
    opts.validate()?;
    let n = features.rows();
    let n_hold = (opts.holdout * n as f64).round() as usize;
    let n_train = n - n_hold;
    let k = opts.gmm.k();
    let fewer = match opts.gmm.kind {
        MixtureKind::Em { .. } => format!("--components {k}: give fewer"),
        MixtureKind::Dp { .. } => {
            format!("--dp {k} (the Dirichlet-process truncation, default 40): give a lower one")
        }
    };
    ensure!(
        n_train >= k.max(2),
        "{n_train} training rows cannot support {k} components ({fewer}, or more data)"
    );
    if opts.holdout > 0.0 && n_hold < 20 {
        bail!("only {n_hold} held-out rows for calibration; use a larger --holdout or more data (at least 20 held-out rows)");
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(opts.gmm.seed ^ 0x5EED_CA11));
    let (hold_idx, train_idx) = idx.split_at(n_hold);
    let mut train_idx = train_idx.to_vec();
    train_idx.sort_unstable();
    let mut hold_idx = hold_idx.to_vec();
    hold_idx.sort_unstable();

    let mut phases = Phases::default();
    let mut layer_specs = Vec::new();
    let mut reports = Vec::new();
    let mut train_resp = Vec::new();
    let mut resp_seconds = 0.0;
    for ((name, x), &pooling) in features
        .names
        .iter()
        .zip(&features.layers)
        .zip(&features.poolings)
    {
        let t0 = Instant::now();
        let x_train = rows(x, &train_idx);
        let constant = x_train.column_iter().filter(|c| c.max() == c.min()).count();
        ensure!(
            constant < x_train.ncols(),
            "layer {name}: every feature is constant over the training rows; this layer carries no information, drop it"
        );
        if constant > 0 {
            crate::say!(
                "warning: layer {name}: {constant} of {} features are constant (dead channels?); \
                 reg_covar keeps them fitted, --max-dim would project them away",
                x_train.ncols()
            );
        }
        let pca = match opts.max_dim {
            Some(d) if d < x_train.ncols() => Some(Pca::fit(&x_train, d).rounded()),
            _ => None,
        };
        let z = pca
            .as_ref()
            .map_or_else(|| x_train.clone(), |p| p.apply(&x_train));
        if opts.gmm.covariance == lsgm::Covariance::Full && z.nrows() <= z.ncols() {
            crate::say!(
                "warning: layer {name}: {} training rows for a {}-dimensional full covariance, too few to \
                 estimate it (only --reg-covar keeps it invertible); project with --max-dim, use \
                 --covariance diag, or fit on more frames",
                z.nrows(),
                z.ncols()
            );
        }
        let (fitted, mixture) = fit_layer(&z, name, &opts.gmm)?;
        let secs = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let (ll, log_resp) = mixture.log_resp(&z);
        train_resp.push(log_resp.map(f64::exp));
        resp_seconds += t1.elapsed().as_secs_f64();
        phases.fit.push(secs);
        reports.push(LayerReport {
            name: name.clone(),
            dim_in: x.ncols(),
            dim: z.ncols(),
            components: mixture.k(),
            iterations: fitted.n_iter,
            converged: fitted.converged,
            mean_log_likelihood: ll.mean(),
            explained_variance: pca.as_ref().map_or(1.0, |p| p.explained),
            seconds: secs,
        });
        layer_specs.push(LayerSpec {
            name: name.clone(),
            pooling,
            dim_in: x.ncols(),
            projection: pca.as_ref().map(Pca::to_spec),
            covariance: opts.gmm.covariance,
            storage: opts.storage,
            components: mixture.to_specs(),
            median_contribution: 0.0,
        });
    }

    let t0 = Instant::now();
    let tables = train_resp
        .windows(2)
        .map(|w| {
            quantise(
                &transitions::table(&w[0], &w[1], opts.counting, opts.pseudo_count),
                opts.quantisation,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .context("quantising the transition tables")?;
    phases.transitions = resp_seconds + t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let mut spec = ModelSpec {
        source,
        chain: opts.chain,
        threshold: 0.0,
        calibration_tpr: 0.0,
        quantiles: Vec::new(),
        preprocess,
        layers: layer_specs,
        transitions: tables,
    };
    let draft = spec.encode().context("encoding the fitted model")?;
    let model = Model::from_bytes(&draft)?;
    let calib_idx: &[usize] = if n_hold > 0 {
        &hold_idx
    } else {
        crate::say!(
            "warning: --holdout 0: the threshold is calibrated on the training rows and will be optimistic"
        );
        &train_idx
    };
    let held: Vec<DMatrix<f64>> = features.layers.iter().map(|x| rows(x, calib_idx)).collect();
    let scored = score_all(&model, &RowMajor::from_matrices(&held)).context("scoring the held-out rows")?;
    let scores: Vec<f64> = scored.iter().map(|s| s.score as f64).collect();
    let Calibration {
        threshold,
        tpr,
        quantiles,
    } = calibrate(&scores);
    spec.threshold = threshold as f32;
    spec.calibration_tpr = tpr as f32;
    spec.quantiles = quantiles.iter().map(|&(q, s)| (q as f32, s as f32)).collect();
    for (l, layer) in spec.layers.iter_mut().enumerate() {
        let mut c: Vec<f64> = scored.iter().map(|s| s.contributions[l] as f64).collect();
        c.sort_by(f64::total_cmp);
        layer.median_contribution = crate::calibrate::quantile(&c, 0.5) as f32;
    }
    let storage_effect = if opts.storage == Storage::F32 {
        None
    } else {
        let mut exact = spec.clone();
        exact.layers.iter_mut().for_each(|l| l.storage = Storage::F32);
        let exact = exact.encode().context("encoding the f32 reference model")?;
        let exact = score_all(&Model::from_bytes(&exact)?, &RowMajor::from_matrices(&held))
            .context("scoring the held-out rows with f32 storage")?;
        Some(storage_effect(
            &scores,
            &exact.iter().map(|s| s.score as f64).collect::<Vec<_>>(),
            threshold,
        ))
    };
    phases.calibration = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let bytes = spec.encode().context("encoding the calibrated model")?;
    phases.export = t0.elapsed().as_secs_f64();
    let report = FitReport {
        seconds: phases,
        layers: reports,
        rows: (n_train, n_hold),
        threshold,
        holdout_tpr: tpr,
        bytes: bytes.len(),
        storage_effect,
    };
    Ok((bytes, report))
}
