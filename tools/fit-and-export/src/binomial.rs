//! How sure the rate a threshold passes is, when it was measured on `n`
//! held-out rows, and how many rows make it sure enough.
//!
//! The fit sets the threshold at the 5th percentile of the `n` held-out
//! in-distribution scores ([`crate::calibrate`]); it passes `x` of those
//! rows (95 % when `n` is a multiple of 20, a little less otherwise:
//! 28 of 30), and `x / n` estimates the share of *new* in-distribution
//! frames it will pass. [`clopper_pearson`] is the exact (Clopper–Pearson)
//! interval for that share. It is the right interval for a threshold chosen
//! on the same rows: the threshold is (up to interpolation) the `k`-th
//! lowest of `n` scores, and the share of the in-distribution population
//! below the `k`-th lowest of `n` draws is `Beta(k, n + 1 − k)` whatever the
//! score's distribution (order statistics of uniforms); the Clopper–Pearson
//! bounds for `k = n − x` flagged rows are quantiles of `Beta(k, n − k + 1)`
//! and `Beta(k + 1, n − k)`, which bracket it.
//!
//! The bounds are beta quantiles: `statrs`'s inverse regularised
//! incomplete beta function (algorithm AS 64 with AS 109's Newton steps
//! and remark AS R83, in log space), polished by Newton steps on its
//! regularised incomplete beta (continued fraction, log space), because
//! the inverse alone stops early for extreme shapes (3 of a million:
//! 1.6e-3 relative off scipy, where the function itself is within 1e-9).
//! Checked against scipy's `beta.ppf` (Boost's `ibeta_inv`) in
//! `tests/binomial.rs`: within 1e-9 relative from 1 to a million rows
//! (fixture `tools/fixtures/clopper_pearson.py`).
//!
//! [`rows_for`] is the guidance: the held-out rows from which on the
//! interval stays within [`HALF_WIDTH`] of the target rate. Why ±1
//! percentage point: the rate is what `lsgm-monitor`'s drift alarm
//! expects (`p0 = 1 −` the stored TPR), and with `--window 1000` and the
//! default `--alarm-p 1e-6` it alarms at 87 OOD frames of 1,000; a true
//! in-distribution rate of 6 % instead of 5 % makes that 650 times as
//! likely per frame (4.2e-4 against 6.5e-7), 7 % 36,000 times (2.3e-2).
//! It also keeps the false alarms of the threshold itself within a fifth of
//! the intended 5 %.

use statrs::distribution::{Beta, Continuous, ContinuousCDF};

/// Confidence of every interval the fit reports.
pub const CONFIDENCE: f64 = 0.95;

/// How far from the target rate [`rows_for`]'s interval may reach: one
/// percentage point (the module docs say why).
pub const HALF_WIDTH: f64 = 0.01;

/// The exact two-sided interval at `confidence` for a binomial proportion
/// of which `x` of `n` trials were observed (`0 ≤ x ≤ n`, `n ≥ 1`):
/// `[B⁻¹(α/2; x, n − x + 1), B⁻¹(1 − α/2; x + 1, n − x)]`, with 0 and 1 at
/// the ends (`x = 0`, `x = n`).
pub fn clopper_pearson(x: usize, n: usize, confidence: f64) -> (f64, f64) {
    assert!(n >= 1 && x <= n, "clopper_pearson: {x} of {n}");
    let alpha = 1.0 - confidence;
    let quantile = |a: usize, b: usize, p: f64| {
        beta_quantile(
            &Beta::new(a as f64, b as f64).expect("shape parameters are at least 1"),
            p,
        )
    };
    let lower = if x == 0 {
        0.0
    } else {
        quantile(x, n - x + 1, alpha / 2.0)
    };
    let upper = if x == n {
        1.0
    } else {
        quantile(x + 1, n - x, 1.0 - alpha / 2.0)
    };
    (lower, upper)
}

/// The `p` quantile of `beta`: `statrs`'s inverse, then Newton steps
/// `q ← q − (F(q) − p) / f(q)` until they stop mattering (at most 8; two
/// take 1.6e-3 to 1e-10 relative).
fn beta_quantile(beta: &Beta, p: f64) -> f64 {
    let mut q = beta.inverse_cdf(p);
    for _ in 0..8 {
        let step = (beta.cdf(q) - p) / beta.ln_pdf(q).exp();
        let next = q - step;
        if !next.is_finite() || next <= 0.0 || next >= 1.0 {
            break;
        }
        q = next;
        if step.abs() <= 1e-15 * q {
            break;
        }
    }
    q
}

/// Rows of `n` distinct scores at or above their `1 − rate` quantile
/// (linear interpolation, as [`crate::calibrate::quantile`]): the rows a
/// threshold calibrated for `rate` passes.
pub fn passed(n: usize, rate: f64) -> usize {
    let pos = (1.0 - rate) * (n - 1) as f64;
    let below = pos.floor() as usize + usize::from(pos.fract() > 0.0);
    n - below
}

/// Whether the interval of a threshold calibrated for `rate` on `n` rows
/// lies within `rate ± half_width`.
fn within(n: usize, rate: f64, half_width: f64) -> bool {
    let (lo, hi) = clopper_pearson(passed(n, rate), n, CONFIDENCE);
    lo >= rate - half_width && hi <= rate + half_width
}

/// The fewest held-out rows `n` from which on a threshold calibrated for
/// `rate` has its [`CONFIDENCE`] interval within `rate ± half_width`: the
/// first `n` where it holds for `n` and the next 100 counts (the rounding
/// of the quantile makes the interval jitter with `n`, with a period of
/// `1 / (1 − rate)` rows: 20 at 95 %). For 95 % ± 1 point: 2,362 rows.
pub fn rows_for(rate: f64, half_width: f64) -> usize {
    const RUN: usize = 100;
    let (mut n, mut start) = (2, None);
    loop {
        match (within(n, rate, half_width), start) {
            (true, None) => start = Some(n),
            (true, Some(s)) if n - s >= RUN => return s,
            (false, _) => start = None,
            _ => {}
        }
        n += 1;
    }
}

/// The fewest frames whose `holdout` share (rounded, as the fit splits)
/// is at least `rows`.
pub fn frames_for(rows: usize, holdout: f64) -> usize {
    let mut frames = (rows as f64 / holdout).ceil() as usize;
    while ((holdout * frames as f64).round() as usize) < rows {
        frames += 1;
    }
    while frames > 1 && ((holdout * (frames - 1) as f64).round() as usize) >= rows {
        frames -= 1;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passed_rows_follow_the_interpolated_quantile() {
        // 30 rows: the 5th percentile sits at position 1.45, between the
        // 2nd and 3rd lowest; 28 pass. 21 rows: at 20 · (1 − 0.95) =
        // 1.0000000000000009 in f64 (as in numpy), just above the 2nd
        // lowest: 19 pass. 20 and 40 rows: 95 %.
        assert_eq!(passed(30, 0.95), 28);
        assert_eq!(passed(21, 0.95), 19);
        assert_eq!((passed(20, 0.95), passed(40, 0.95)), (19, 38));
        assert_eq!(passed(300, 0.95), 285);
        assert_eq!(passed(1, 0.95), 1);
    }

    #[test]
    fn frames_for_is_the_fewest_the_split_gives_enough_rows() {
        // The split holds out round(holdout · frames) rows.
        let split = |frames: usize, h: f64| (h * frames as f64).round() as usize;
        for (rows, h) in [(2362, 0.1), (20, 0.5), (300, 0.3), (1, 0.1)] {
            let f = frames_for(rows, h);
            assert!(
                split(f, h) >= rows && split(f - 1, h) < rows,
                "{rows} at {h}: {f}"
            );
        }
    }
}
