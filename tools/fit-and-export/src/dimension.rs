//! How wide each tap's mixture is (`--max-dim`): the edge-sized default.
//!
//! Pooled maps of real backbones have 128–1280 channels. A full-covariance
//! mixture of that width is tens of megabytes, costs more to score than the
//! network to run, and cannot be estimated from a few thousand frames: with
//! 2,700 rows and 40 components of 512 dimensions, each component's
//! covariance is a product of `reg_covar` rather than of the data, and
//! held-out in-distribution frames score hundreds of nats below the
//! training frames. The `auto` rule projects such taps (PCA, stored in the
//! model) to the smallest dimension `d` that
//!
//! 1. keeps [`AUTO_SHARE`] of the *held-out* rows' variance (what the
//!    projection keeps of data it was not fitted on), and is at most
//! 2. what the rows support: `K · p(d) ≤ n / ROWS_PER_PARAMETER`, where `K`
//!    is the component count (or DP truncation), `p(d)` the free parameters
//!    of one component (`d(d+3)/2` full, `2d` diagonal) and `n` the
//!    training rows, and at most
//! 3. [`AUTO_CAP`], which bounds the model size on a board.
//!
//! Taps of at most [`AUTO_CAP`] dimensions that the rows support (2.) are
//! fitted as they are, so the demo models (54,000 rows) keep their numbers.
//! Whatever the rule, the fit reports where held-out log-likelihoods sit
//! among the training ones and warns when they do not sit together
//! ([`crate::fit::HeldOutCheck`]).

use crate::pca::{Pca, Spectrum};
use anyhow::{bail, Result};
use lsgm::Covariance;
use nalgebra::DMatrix;
use std::fmt;
use std::str::FromStr;

/// Largest dimension the `auto` rule keeps, and the widest tap it leaves
/// unprojected. 64 dimensions × 40 full-covariance components is 343 KB
/// in f32, so five such taps stay under 2 MB.
pub const AUTO_CAP: usize = 64;

/// Share of the held-out variance the `auto` projection keeps.
pub const AUTO_SHARE: f64 = 0.99;

/// The `auto` rule needs one training row per this many component
/// parameters: `K · p(d) ≤ 2 n`. Measured on ResNet-18 stage features of
/// 2,700 frames (40-component DP, full covariance): the mean held-out
/// log-likelihood sat 0.6 nats below the training one at d = 8 (K·p = 1.6 n),
/// 3 nats at d = 16 (2.3 n), 16 at d = 32 (7.8 n) and 139 at d = 64 (32 n).
/// The demo models (54,000 rows, 64-channel taps: K·p = 1.6 n) pass.
pub const ROWS_PER_PARAMETER: f64 = 0.5;

/// `--max-dim`: how the mixture dimension of each tap is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DimRule {
    /// The module's rule (the default).
    #[default]
    Auto,
    /// No projection: every tap at its full width.
    Keep,
    /// Project taps wider than this to this many principal axes.
    AtMost(usize),
}

impl FromStr for DimRule {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DimRule::Auto),
            "none" => Ok(DimRule::Keep),
            _ => match s.parse::<usize>() {
                Ok(d) if d >= 1 => Ok(DimRule::AtMost(d)),
                _ => bail!("--max-dim takes `auto`, `none` or a dimension of at least 1, not {s:?}"),
            },
        }
    }
}

impl fmt::Display for DimRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimRule::Auto => f.write_str("auto"),
            DimRule::Keep => f.write_str("none"),
            DimRule::AtMost(d) => write!(f, "{d}"),
        }
    }
}

/// The largest `d ≥ 1` with `k · p(d) ≤ n / ROWS_PER_PARAMETER`.
pub fn supported_dim(n: usize, k: usize, covariance: Covariance) -> usize {
    let budget = n as f64 / ROWS_PER_PARAMETER;
    let mut d = 1;
    while (k * covariance.free_parameters(d + 1)) as f64 <= budget {
        d += 1;
    }
    d
}

/// What was chosen for one tap, and why.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The projection, or `None` to fit the tap at its full width.
    pub projection: Option<Pca>,
    /// Share of the held-out rows' variance the choice keeps (1 without a
    /// projection).
    pub held_out_share: f64,
    /// One sentence for the fit report.
    pub reason: String,
}

/// Chooses the dimension of one tap by `rule`. `train` are the rows the
/// mixture is fitted on, `held_out` the calibration rows (the training
/// rows are used when there are none), `k` the component count or DP
/// truncation.
pub fn choose(
    rule: DimRule,
    train: &DMatrix<f64>,
    held_out: &DMatrix<f64>,
    k: usize,
    covariance: Covariance,
) -> Choice {
    let d_in = train.ncols();
    let full = |reason: String| Choice {
        projection: None,
        held_out_share: 1.0,
        reason,
    };
    let (check, rows) = if held_out.nrows() > 0 {
        (held_out, "held-out")
    } else {
        (train, "training")
    };
    match rule {
        DimRule::Keep => full("--max-dim none: fitted at full width".into()),
        DimRule::AtMost(d) if d >= d_in => full(format!(
            "--max-dim {d}: {} fitted as {}",
            crate::count(d_in, "dimension", "dimensions"),
            if d_in == 1 { "it is" } else { "they are" }
        )),
        DimRule::AtMost(d) => {
            let spectrum = Spectrum::fit(train);
            let share = spectrum.kept_share(check)[d - 1];
            Choice {
                projection: Some(spectrum.projection(d, train, held_out)),
                held_out_share: share,
                reason: format!("--max-dim {d}"),
            }
        }
        DimRule::Auto => {
            let by_rows = supported_dim(train.nrows(), k, covariance);
            if d_in <= AUTO_CAP && d_in <= by_rows {
                return full(format!(
                    "{d_in} ≤ {AUTO_CAP} dimensions, supported by {}: fitted as they are",
                    crate::count(train.nrows(), "row", "rows")
                ));
            }
            let spectrum = Spectrum::fit(train);
            let shares = spectrum.kept_share(check);
            let by_share = shares
                .iter()
                .position(|&s| s >= AUTO_SHARE)
                .map_or(d_in, |i| i + 1);
            let d = by_share.min(by_rows).min(AUTO_CAP).min(d_in);
            let binding = if d == by_share {
                format!(
                    "the fewest axes keeping {:.0} % of the {rows} variance",
                    AUTO_SHARE * 100.0
                )
            } else if d == by_rows {
                format!(
                    "the most {} support for up to {} \
                     (K·p(d) ≤ {:.0}·n; {:.0} % of the {rows} variance needs {by_share})",
                    crate::count(train.nrows(), "training row", "training rows"),
                    crate::count(
                        k,
                        &format!("{covariance}-covariance component"),
                        &format!("{covariance}-covariance components")
                    ),
                    1.0 / ROWS_PER_PARAMETER,
                    AUTO_SHARE * 100.0
                )
            } else {
                format!(
                    "the cap {AUTO_CAP} ({:.0} % of the {rows} variance needs {by_share}, the rows support {by_rows})",
                    AUTO_SHARE * 100.0
                )
            };
            if d >= d_in {
                return full(format!(
                    "{} kept: {binding}",
                    crate::count(d_in, "dimension", "dimensions")
                ));
            }
            Choice {
                projection: Some(spectrum.projection(d, train, held_out)),
                held_out_share: shares[d - 1],
                reason: format!("PCA {d_in} → {d}: {binding}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_rule() {
        for (s, r) in [
            ("auto", DimRule::Auto),
            ("none", DimRule::Keep),
            ("12", DimRule::AtMost(12)),
        ] {
            assert_eq!(s.parse::<DimRule>().unwrap(), r);
            assert_eq!(r.to_string(), s);
        }
        for bad in ["0", "-3", "all", ""] {
            let e = bad.parse::<DimRule>().unwrap_err().to_string();
            assert!(e.contains("--max-dim") && e.contains("auto"), "{e}");
        }
    }

    #[test]
    fn rows_bound_matches_the_formula() {
        // 2,700 rows, 40 full components: 40·d(d+3)/2 ≤ 5,400 ⇒ d(d+3) ≤ 270 ⇒ d = 15 (15·18 = 270).
        assert_eq!(supported_dim(2_700, 40, Covariance::Full), 15);
        // Diagonal: 40·2d ≤ 5,400 ⇒ d ≤ 67.
        assert_eq!(supported_dim(2_700, 40, Covariance::Diag), 67);
        // The demo: 54,000 rows support 64-dimensional full components.
        assert!(supported_dim(54_000, 40, Covariance::Full) >= 64);
        assert_eq!(supported_dim(1, 40, Covariance::Full), 1);
    }

    /// Rows with variance 100, 10, 1, 0.01, 0.01, … along the coordinate axes.
    fn graded(n: usize, d: usize, seed: u64) -> DMatrix<f64> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        DMatrix::from_fn(n, d, |_, j| {
            let sd = [10.0, 3.1623, 1.0].get(j).copied().unwrap_or(0.1);
            sd * (rng.random::<f64>() - 0.5) * 12f64.sqrt()
        })
    }

    #[test]
    fn auto_keeps_narrow_taps_and_projects_wide_ones_by_variance_and_rows() {
        // 64 dims, 40 components: 54,000 rows support them (the demo) …
        let narrow = graded(54_000, 64, 1);
        let c = choose(DimRule::Auto, &narrow, &graded(50, 64, 2), 40, Covariance::Full);
        assert!(
            c.projection.is_none() && c.reason.contains("fitted as they are"),
            "{}",
            c.reason
        );
        // … 2,700 do not: 64 → at most 15.
        let c = choose(
            DimRule::Auto,
            &graded(2_700, 64, 1),
            &graded(50, 64, 2),
            40,
            Covariance::Full,
        );
        assert!(
            c.projection.as_ref().unwrap().matrix.nrows() <= 15,
            "{}",
            c.reason
        );

        // 100 dims, the variance is in 3 axes + 97·0.01 = 0.97 of 112.97 ⇒ 3 axes keep 99.1 %.
        let (train, held) = (graded(4_000, 100, 3), graded(400, 100, 4));
        let c = choose(DimRule::Auto, &train, &held, 4, Covariance::Full);
        assert_eq!(c.projection.as_ref().unwrap().matrix.nrows(), 3, "{}", c.reason);
        assert!(
            c.held_out_share >= AUTO_SHARE && c.reason.contains("held-out variance"),
            "{}",
            c.reason
        );

        // Too few rows for 40 components: the rows bound binds (d = 1).
        let c = choose(DimRule::Auto, &graded(60, 100, 5), &held, 40, Covariance::Full);
        assert_eq!(c.projection.as_ref().unwrap().matrix.nrows(), 1, "{}", c.reason);
        assert!(c.reason.contains("rows support"), "{}", c.reason);

        let c = choose(DimRule::AtMost(7), &train, &held, 4, Covariance::Full);
        assert_eq!(c.projection.unwrap().matrix.nrows(), 7);
        assert!(choose(DimRule::Keep, &train, &held, 4, Covariance::Full)
            .projection
            .is_none());
    }
}
