//! What a fit reports: the final JSON line ([`FitReport`]) and its parts.

use serde::Serialize;

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
    /// The layer's one component was refitted in closed form on every
    /// training row (the fit left one component), so `converged` does not
    /// bear on the model.
    pub closed_form: bool,
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
    /// Held-out rows compared (none with `--holdout 0`).
    pub held_out_rows: Option<usize>,
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
            held_out_rows: held.as_ref().map(Vec::len),
        }
    }

    /// A sentence when the held-out rows do not sit with the training rows;
    /// `lower` is what besides more frames to try (`", or lower …"`, empty
    /// when nothing is left to lower).
    pub fn warning(&self, what: &str, lower: &str) -> Option<String> {
        let (below, median, n) = (
            self.held_out_below_train_p5?,
            self.held_out_median?,
            self.held_out_rows?,
        );
        (below > HELD_OUT_ALARM).then(|| {
            format!(
                "{} of {n} held-out in-distribution rows ({:.0} %) have a {what} below the training rows' \
                 5th percentile (expected about 5 %; held-out median {median:.1}, training median {:.1}): \
                 the density fits the training rows rather than their distribution. Fit on more frames{lower}",
                (below * n as f64).round(),
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
    /// The 95 % (Clopper–Pearson) interval of the TPR the threshold has on
    /// new in-distribution frames, from `holdout_tpr` and the held-out rows
    /// (none with `--holdout 0`).
    pub holdout_tpr_interval: Option<(f64, f64)>,
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

impl StorageEffect {
    /// Compares the calibration rows' scores under the stored model with
    /// those under its f32 twin (same rows, same order).
    pub fn of(stored: &[f64], exact: &[f64], threshold: f64) -> StorageEffect {
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
        assert!(c.warning("score", "").is_none());
        // Shifted down: 30 % below.
        let low: Vec<f64> = (0..100).map(|i| i as f64 * 10.0 - 250.0).collect();
        let c = HeldOutCheck::of(&train, Some(&low));
        assert_eq!(c.held_out_below_train_p5, Some(0.3));
        let w = c
            .warning("score", ", or lower the dimension (--max-dim)")
            .unwrap();
        assert!(
            w.starts_with("30 of 100 held-out in-distribution rows (30 %)")
                && w.ends_with("Fit on more frames, or lower the dimension (--max-dim)"),
            "{w}"
        );
        // No held-out rows: nothing to compare.
        let c = HeldOutCheck::of(&train, None);
        assert!(c.held_out_median.is_none() && c.warning("score", "").is_none());
    }
}
