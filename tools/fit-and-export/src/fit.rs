//! The whole fit: split, per-layer mixtures, transitions, calibration, export.

use crate::calibrate::{calibrate, Calibration};
use crate::dimension::{self, DimRule};
use crate::gmm::{dp, em, GmmParams, Mixture, MixtureKind};
use crate::io::FeatureSet;
use crate::pca::Pca;
use crate::scoring::{score_all, RowMajor};
use crate::transitions::{self, Counting};
use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lsgm::quant::quantise;
use lsgm::{Chain, LayerSpec, Model, ModelSpec, Preprocess, Quantisation, Storage};
use nalgebra::{DMatrix, DVector};
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
    /// Why this dimension (the `--max-dim` rule's reason).
    pub dim_reason: String,
    /// Mean log-likelihood of the training rows under the exported mixture.
    pub mean_log_likelihood: f64,
    /// Mean log-likelihood of the held-out rows (none with `--holdout 0`).
    pub held_out_log_likelihood: Option<f64>,
    /// Where held-out log-likelihoods sit among the training ones.
    pub held_out: HeldOutCheck,
    /// Training variance kept by the projection (1 without one).
    pub explained_variance: f64,
    /// Held-out variance kept by the projection (1 without one).
    pub held_out_variance: f64,
    /// The projection's residual term (absent without a projection).
    pub residual: Option<ResidualReport>,
    /// Wall seconds of this layer's mixture fit (projection, k-means, EM/VI).
    pub seconds: f64,
}

/// A projected layer's residual term, as the fit report gives it.
#[derive(Debug, Clone, Serialize)]
pub struct ResidualReport {
    /// `σ²`, the variance of each dropped direction (feature units squared).
    pub variance: f64,
    /// `ν`, its degrees of freedom (at most `dropped_axes`).
    pub dof: f64,
    /// Directions the projection drops (`dim_in − dim`).
    pub dropped_axes: usize,
    /// Held-out rows `σ²` and `ν` were matched to.
    pub held_out_rows: usize,
    /// Training rows they were matched to (0 with 200 or more held-out rows).
    pub training_rows: usize,
}

/// Where held-out in-distribution values (log-likelihoods or scores) sit
/// among the training rows' values. A density that generalises scores
/// held-out rows like training rows (about 5 % fall below the training 5th
/// percentile); an overfitted one scores them like the training set's
/// outliers.
#[derive(Debug, Clone, Serialize)]
pub struct HeldOutCheck {
    /// Median over the training rows.
    pub train_median: f64,
    /// Median over the held-out rows (none with `--holdout 0`).
    pub held_out_median: Option<f64>,
    /// Share of held-out rows below the training rows' 5th percentile.
    pub held_out_below_train_p5: Option<f64>,
}

/// [`HeldOutCheck::warning`] fires above this share (4× the 5 % expected).
pub const HELD_OUT_ALARM: f64 = 0.2;

impl HeldOutCheck {
    /// Compares `held` with `train` (any order).
    pub fn of(train: &[f64], held: Option<&[f64]>) -> HeldOutCheck {
        let sorted = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v
        };
        let train = sorted(train);
        let p5 = crate::calibrate::quantile(&train, 0.05);
        let held = held.filter(|h| !h.is_empty()).map(sorted);
        HeldOutCheck {
            train_median: crate::calibrate::quantile(&train, 0.5),
            held_out_median: held.as_ref().map(|h| crate::calibrate::quantile(h, 0.5)),
            held_out_below_train_p5: held
                .as_ref()
                .map(|h| h.iter().filter(|&&v| v < p5).count() as f64 / h.len() as f64),
        }
    }

    /// A sentence when the held-out rows do not sit with the training rows.
    pub fn warning(&self, what: &str) -> Option<String> {
        let (below, median) = (self.held_out_below_train_p5?, self.held_out_median?);
        (below > HELD_OUT_ALARM).then(|| {
            format!(
                "{:.0} % of the held-out in-distribution rows have a {what} below the training rows' \
                 5th percentile (expected about 5 %; held-out median {median:.1}, training median {:.1}): \
                 the density fits the training rows rather than their distribution. Fit on more frames, \
                 or lower the dimension (--max-dim) or the components (--dp / --components)",
                below * 100.0,
                self.train_median
            )
        })
    }
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
    /// Where the held-out rows' LSGM scores sit among the training rows'.
    pub scores: HeldOutCheck,
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
        let x_hold = rows(x, &hold_idx);
        let choice = dimension::choose(opts.max_dim, &x_train, &x_hold, opts.gmm.k(), opts.gmm.covariance);
        let pca = choice.projection;
        let project = |m: &DMatrix<f64>| pca.as_ref().map_or_else(|| m.clone(), |p| p.apply(m));
        let z = project(&x_train);
        let supported = dimension::supported_dim(z.nrows(), opts.gmm.k(), opts.gmm.covariance);
        if z.ncols() > supported {
            crate::say!(
                "warning: layer {name}: {} training rows are few for {} {}-dimensional {} components \
                 (they support about {supported} dimensions: K·p(d) ≤ 2n); held-out frames may score \
                 below training frames. Fit on more frames, project with --max-dim, or use \
                 --covariance diag",
                z.nrows(),
                opts.gmm.k(),
                z.ncols(),
                dimension::covariance_name(opts.gmm.covariance)
            );
        }
        let (fitted, mixture) = fit_layer(&z, name, &opts.gmm)?;
        let secs = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        // A layer's log-likelihood includes its projection's residual term,
        // as the core scores it.
        let with_residual = |mut ll: DVector<f64>, x: &DMatrix<f64>| {
            if let Some(p) = &pca {
                ll += DVector::from_vec(p.residual_log_density(x));
            }
            ll
        };
        let (ll, log_resp) = mixture.log_resp(&z);
        let ll = with_residual(ll, &x_train);
        train_resp.push(log_resp.map(f64::exp));
        resp_seconds += t1.elapsed().as_secs_f64();
        phases.fit.push(secs);
        let held_ll =
            (x_hold.nrows() > 0).then(|| with_residual(mixture.log_resp(&project(&x_hold)).0, &x_hold));
        let check = HeldOutCheck::of(ll.as_slice(), held_ll.as_ref().map(|h| h.as_slice()));
        crate::say!(
            "layer {name}: {}{}; {} components; median log-likelihood {:.1} training{}",
            choice.reason,
            pca.as_ref().map_or(String::new(), |p| format!(
                " (residual term for the {} dropped axes: σ² {:.3e}, ν {:.1}, from {})",
                p.matrix.ncols() - p.matrix.nrows(),
                p.residual.0,
                p.residual.1,
                match p.residual_rows {
                    (h, 0) => format!("{h} held-out rows"),
                    (h, t) => format!("{h} held-out and {t} training rows"),
                }
            )),
            mixture.k(),
            check.train_median,
            match (check.held_out_median, check.held_out_below_train_p5) {
                (Some(m), Some(b)) => format!(
                    ", {m:.1} held-out ({:.1} % below the training 5th percentile)",
                    b * 100.0
                ),
                _ => String::new(),
            }
        );
        if let Some(warning) = check.warning("log-likelihood") {
            crate::say!("warning: layer {name}: {warning}");
        }
        reports.push(LayerReport {
            name: name.clone(),
            dim_in: x.ncols(),
            dim: z.ncols(),
            dim_reason: choice.reason,
            components: mixture.k(),
            iterations: fitted.n_iter,
            converged: fitted.converged,
            mean_log_likelihood: ll.mean(),
            held_out_log_likelihood: held_ll.as_ref().map(|h| h.mean()),
            held_out: check,
            explained_variance: pca.as_ref().map_or(1.0, |p| p.explained),
            held_out_variance: choice.held_out_share,
            residual: pca.as_ref().map(|p| ResidualReport {
                variance: p.residual.0,
                dof: p.residual.1,
                dropped_axes: p.matrix.ncols() - p.matrix.nrows(),
                held_out_rows: p.residual_rows.0,
                training_rows: p.residual_rows.1,
            }),
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
    // Every row is scored once; the held-out and training scores are picked
    // from that pass (a row's score does not depend on the others).
    let all_rows = RowMajor::from_matrices(&features.layers);
    let all = score_all(&model, &all_rows).context("scoring the rows")?;
    let pick = |idx: &[usize]| -> Vec<f64> { idx.iter().map(|&i| all[i].score as f64).collect() };
    let scores = pick(calib_idx);
    let score_check = if n_hold > 0 {
        HeldOutCheck::of(&pick(&train_idx), Some(&scores))
    } else {
        HeldOutCheck::of(&scores, None)
    };
    if let Some(warning) = score_check.warning("score") {
        crate::say!("warning: {warning}");
    }
    let Calibration {
        threshold,
        tpr,
        quantiles,
    } = calibrate(&scores);
    spec.threshold = threshold as f32;
    spec.calibration_tpr = tpr as f32;
    spec.quantiles = quantiles.iter().map(|&(q, s)| (q as f32, s as f32)).collect();
    for (l, layer) in spec.layers.iter_mut().enumerate() {
        let mut c: Vec<f64> = calib_idx
            .iter()
            .map(|&i| all[i].contributions[l] as f64)
            .collect();
        c.sort_by(f64::total_cmp);
        layer.median_contribution = crate::calibrate::quantile(&c, 0.5) as f32;
    }
    let storage_effect = if opts.storage == Storage::F32 {
        None
    } else {
        let mut exact = spec.clone();
        exact.layers.iter_mut().for_each(|l| l.storage = Storage::F32);
        let exact = exact.encode().context("encoding the f32 reference model")?;
        let exact =
            score_all(&Model::from_bytes(&exact)?, &all_rows).context("scoring the rows with f32 storage")?;
        Some(storage_effect(
            &scores,
            &calib_idx
                .iter()
                .map(|&i| exact[i].score as f64)
                .collect::<Vec<_>>(),
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
        scores: score_check,
        bytes: bytes.len(),
        storage_effect,
    };
    Ok((bytes, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_check_is_quiet_when_rows_sit_together_and_warns_when_they_do_not() {
        let train: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        // Same distribution: 5 % below the training 5th percentile (49.95).
        let same: Vec<f64> = (0..100).map(|i| i as f64 * 10.0 + 5.0).collect();
        let c = HeldOutCheck::of(&train, Some(&same));
        assert_eq!(c.held_out_below_train_p5, Some(0.05));
        assert!(c.warning("score").is_none());
        // Shifted down: 30 % below.
        let low: Vec<f64> = (0..100).map(|i| i as f64 * 10.0 - 250.0).collect();
        let c = HeldOutCheck::of(&train, Some(&low));
        assert_eq!(c.held_out_below_train_p5, Some(0.3));
        let w = c.warning("score").unwrap();
        assert!(
            w.starts_with("30 % of the held-out") && w.contains("--max-dim"),
            "{w}"
        );
        // No held-out rows: nothing to compare.
        let c = HeldOutCheck::of(&train, None);
        assert!(c.held_out_median.is_none() && c.warning("score").is_none());
    }
}
