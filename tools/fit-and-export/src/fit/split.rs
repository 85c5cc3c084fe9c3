//! Phase 1 of a fit: which rows fit the mixtures and which calibrate the
//! threshold.

use super::FitOptions;
use anyhow::{bail, ensure, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The rows of a fit, split once for every layer.
#[derive(Debug, Clone)]
pub struct Split {
    /// Rows the mixtures and transitions are fitted on, ascending.
    pub train: Vec<usize>,
    /// Rows held out (never fitted) to calibrate the threshold, ascending;
    /// empty with `--holdout 0`.
    pub held_out: Vec<usize>,
}

/// Phase 1: splits `rows` rows into training and held-out rows
/// ([`FitOptions::holdout`] of them, at random with the fit's seed, so a
/// fit is reproducible), before any work, because every later phase reads
/// the split. Errors when the training rows cannot support the components
/// or there are fewer than 20 held-out rows.
pub fn split(rows: usize, opts: &FitOptions) -> Result<Split> {
    let n_hold = (opts.holdout * rows as f64).round() as usize;
    let n_train = rows - n_hold;
    let k = opts.gmm.k();
    ensure!(
        n_train >= k.max(2),
        "{} cannot support {} ({}, or more data)",
        crate::count(n_train, "training row", "training rows"),
        crate::count(k, "component", "components"),
        opts.gmm.kind.fewer_components(k)
    );
    if opts.holdout > 0.0 && n_hold < 20 {
        bail!(
            "only {} for calibration; use a larger --holdout or more data (at least 20 held-out rows)",
            crate::count(n_hold, "held-out row", "held-out rows")
        );
    }
    let mut idx: Vec<usize> = (0..rows).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(opts.gmm.seed ^ 0x5EED_CA11));
    let (held_out, train) = idx.split_at(n_hold);
    let mut train = train.to_vec();
    train.sort_unstable();
    let mut held_out = held_out.to_vec();
    held_out.sort_unstable();
    Ok(Split { train, held_out })
}
