//! Phase 1 of a fit: which rows fit the mixtures and which calibrate the
//! threshold.

use super::FitOptions;
use anyhow::{bail, Result};
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

/// The fewest held-out rows a threshold is calibrated on.
pub const MIN_HELD_OUT: usize = 20;

/// Phase 1: splits `rows` rows into training and held-out rows
/// ([`FitOptions::holdout`] of them, at random with the fit's seed, so a
/// fit is reproducible), before any work, because every later phase reads
/// the split. Errors when the training rows cannot support the components
/// or there are fewer than [`MIN_HELD_OUT`] held-out rows, saying how many
/// rows these flags need ([`min_rows`]): the first error a too-small
/// `--train` meets names what would do.
pub fn split(rows: usize, opts: &FitOptions) -> Result<Split> {
    let k = opts.gmm.k();
    let (n_train, n_hold) = shares(rows, opts.holdout);
    if n_train < k.max(2) || (opts.holdout > 0.0 && n_hold < MIN_HELD_OUT) {
        let need = min_rows(k, opts.holdout);
        let verb = if k == 1 { "needs" } else { "need" };
        let held = match opts.holdout > 0.0 {
            true => format!(
                " and calibrating the threshold needs {MIN_HELD_OUT} held-out rows (--holdout {})",
                opts.holdout
            ),
            false => String::new(),
        };
        bail!(
            "too few rows for these flags: {} {verb} {}{held}, at least {need} rows in all; there {} \
             ({n_train} training, {n_hold} held out). Give at least {need} frames (after --classes), or ask \
             for less: {}{}",
            crate::count(k, "component", "components"),
            crate::count(k.max(2), "training row", "training rows"),
            if rows == 1 {
                "is 1".to_string()
            } else {
                format!("are {rows}")
            },
            opts.gmm.kind.fewer_components(k),
            if opts.holdout > 0.0 {
                ", or a larger --holdout"
            } else {
                ""
            },
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

/// `(training, held-out)` rows of `rows` at `holdout` (held-out rounded).
fn shares(rows: usize, holdout: f64) -> (usize, usize) {
    let n_hold = (holdout * rows as f64).round() as usize;
    (rows - n_hold, n_hold)
}

/// The fewest rows [`split`] accepts for `k` components at `holdout`:
/// at least `max(k, 2)` training rows and, unless `holdout` is 0,
/// [`MIN_HELD_OUT`] held-out rows. Both shares grow with the rows, so the
/// first count that has both is the fewest.
pub fn min_rows(k: usize, holdout: f64) -> usize {
    let enough = |rows: usize| {
        let (train, held) = shares(rows, holdout);
        train >= k.max(2) && (holdout == 0.0 || held >= MIN_HELD_OUT)
    };
    (1..)
        .find(|&rows| enough(rows))
        .expect("holdout < 0.9 leaves rows to train on")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_rows_is_the_fewest_the_split_accepts() {
        for (k, holdout) in [(40, 0.1), (1, 0.1), (1, 0.0), (50, 0.0), (40, 0.5), (3, 0.3)] {
            let need = min_rows(k, holdout);
            let fits = |rows: usize| {
                let (train, held) = shares(rows, holdout);
                train >= k.max(2) && (holdout == 0.0 || held >= MIN_HELD_OUT)
            };
            assert!(fits(need) && !fits(need - 1), "k {k} holdout {holdout}: {need}");
        }
        // 20 held-out rows at 0.1: 195 rows (19.5 rounds up); 40 training
        // rows at 0.5: 80.
        assert_eq!(min_rows(40, 0.1), 195);
        assert_eq!(min_rows(40, 0.5), 80);
        assert_eq!(min_rows(50, 0.0), 50);
    }
}
