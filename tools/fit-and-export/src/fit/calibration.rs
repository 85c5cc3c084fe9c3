//! Phase 5 of a fit: the threshold, quantiles and median contributions
//! from the packed model's own scores, and what reduced storage costs.

use super::report::{HeldOutCheck, StorageEffect};
use super::split::Split;
use crate::binomial::{self, clopper_pearson, CONFIDENCE, HALF_WIDTH};
use crate::calibrate::{calibrate, quantile, Calibration, TPR};
use crate::io::FeatureSet;
use crate::scoring::{score_all, RowMajor};
use anyhow::{Context, Result};
use lsgm::model::PackedModel;
use lsgm::Storage;

/// Phase 5's result: what calibration writes into the model and the report.
#[derive(Debug, Clone)]
pub struct Calibrated {
    /// Threshold at 95 % TPR, its TPR and the quantiles of the calibration
    /// rows' scores.
    pub calibration: Calibration,
    /// Per layer, the median contribution over the calibration rows.
    pub median_contributions: Vec<f32>,
    /// The [`CONFIDENCE`] interval of the rate the threshold passes on new
    /// in-distribution frames (none with `--holdout 0`: the training rows
    /// calibrated it).
    pub interval: Option<(f64, f64)>,
    /// Where the held-out rows' scores sit among the training rows'.
    pub scores: HeldOutCheck,
    /// With reduced storage: how far the scores are from the f32 twin's.
    pub storage_effect: Option<StorageEffect>,
}

/// Phase 5: scores every row with the core's scorer on the packed model
/// as stored (its calibration fields are not read, so it is packed once,
/// before them, and calibrated here), and calibrates on the held-out rows
/// (the training rows with `--holdout 0`, said in a warning), and says how
/// sure the rate it passes is (`rate_interval`). With `storage` other
/// than f32 it also scores the f32 twin, to report what the reduced storage
/// changes. `holdout` is `--holdout`, for the advice.
pub fn calibrate_model(
    packed: &PackedModel<'_>,
    features: &FeatureSet,
    split: &Split,
    storage: Storage,
    holdout: f64,
) -> Result<Calibrated> {
    let model = packed.model().context("encoding the fitted model")?;
    let held_out = !split.held_out.is_empty();
    let calib_idx: &[usize] = if held_out {
        &split.held_out
    } else {
        crate::say!(
            "warning: --holdout 0: the threshold is calibrated on the training rows and will be optimistic"
        );
        &split.train
    };
    // Every row is scored once; the held-out and training scores are picked
    // from that pass (a row's score does not depend on the others).
    let rows = RowMajor::from_matrices(&features.layers);
    let all = score_all(&model, &rows).context("scoring the rows")?;
    let pick = |idx: &[usize]| -> Vec<f64> { idx.iter().map(|&i| all[i].score as f64).collect() };
    let scores = pick(calib_idx);
    let score_check = if held_out {
        HeldOutCheck::of(&pick(&split.train), Some(&scores))
    } else {
        HeldOutCheck::of(&scores, None)
    };
    if let Some(warning) = score_check.warning(
        "score",
        ", or lower the dimension (--max-dim) or the components (--dp / --components) of the layers",
    ) {
        crate::say!("warning: {warning}");
    }
    let calibration = calibrate(&scores);
    let interval = held_out.then(|| rate_interval(&calibration, holdout));
    let median_contributions = (0..model.num_layers())
        .map(|l| {
            let mut c: Vec<f64> = calib_idx
                .iter()
                .map(|&i| all[i].contributions[l] as f64)
                .collect();
            c.sort_by(f64::total_cmp);
            quantile(&c, 0.5) as f32
        })
        .collect();
    let storage_effect = if storage == Storage::F32 {
        None
    } else {
        Some(storage_effect(
            packed,
            features,
            calib_idx,
            &scores,
            calibration.threshold,
        )?)
    };
    Ok(Calibrated {
        calibration,
        median_contributions,
        interval,
        scores: score_check,
        storage_effect,
    })
}

/// The interval of the rate the threshold passes on new in-distribution
/// frames ([`binomial`]), said on stderr, with a warning when it reaches
/// further than [`HALF_WIDTH`] from [`TPR`]: how many held-out rows (and
/// frames at `holdout`) would bring it within. `c.rows` is at least 20
/// (the split refuses fewer), so the nouns are plural.
fn rate_interval(c: &Calibration, holdout: f64) -> (f64, f64) {
    let (lo, hi) = clopper_pearson(c.passed, c.rows, CONFIDENCE);
    let pct = |v: f64| format!("{:.1}", 100.0 * v);
    crate::say!(
        "threshold {:.3}: passes {} of {} held-out rows ({} %); on new in-distribution frames \
         {}–{} % ({:.0} % interval)",
        c.threshold,
        c.passed,
        c.rows,
        pct(c.tpr),
        pct(lo),
        pct(hi),
        CONFIDENCE * 100.0
    );
    if lo < TPR - HALF_WIDTH || hi > TPR + HALF_WIDTH {
        let needed = binomial::rows_for(TPR, HALF_WIDTH);
        let below = c.rows - c.passed;
        let short = if (c.tpr - TPR).abs() > 5e-4 {
            format!(
                " ({} %, not {:.0} %: the {:.0}th percentile of {} scores leaves whole rows below it, here {below})",
                pct(c.tpr),
                TPR * 100.0,
                (1.0 - TPR) * 100.0,
                c.rows,
            )
        } else {
            String::new()
        };
        crate::say!(
            "warning: the threshold is calibrated on {} held-out rows: it passes {} of them{short}, and on new \
             in-distribution frames it may pass anywhere from {} % to {} % ({:.0} % Clopper–Pearson \
             interval), flagging {}–{} % of them instead of {:.0} %. For {:.0} % ± {:.0} percentage point, \
             hold out at least {needed} rows: {} frames at --holdout {holdout}",
            c.rows,
            c.passed,
            pct(lo),
            pct(hi),
            CONFIDENCE * 100.0,
            pct(1.0 - hi),
            pct(1.0 - lo),
            (1.0 - TPR) * 100.0,
            TPR * 100.0,
            HALF_WIDTH * 100.0,
            binomial::frames_for(needed, holdout)
        );
    }
    (lo, hi)
}

/// Scores the calibration rows (only those: the others are not compared)
/// with the f32 twin of `packed` (only its means and factors are packed
/// again) and compares with `scores`.
fn storage_effect(
    packed: &PackedModel<'_>,
    features: &FeatureSet,
    calib_idx: &[usize],
    scores: &[f64],
    threshold: f64,
) -> Result<StorageEffect> {
    let exact = packed
        .with_storage(Storage::F32)
        .context("encoding the f32 reference model")?;
    let model = exact.model().context("encoding the f32 reference model")?;
    let calib: Vec<_> = features.layers.iter().map(|x| x.select_rows(calib_idx)).collect();
    let exact =
        score_all(&model, &RowMajor::from_matrices(&calib)).context("scoring the rows with f32 storage")?;
    let exact: Vec<f64> = exact.iter().map(|s| s.score as f64).collect();
    Ok(StorageEffect::of(scores, &exact, threshold))
}
