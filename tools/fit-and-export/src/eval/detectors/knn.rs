//! Deep nearest neighbours (Sun, Ming, Zhu & Li, "Out-of-Distribution
//! Detection with Deep Nearest Neighbors", ICML 2022) on the last tap's
//! features: the paper's score, minus the Euclidean distance from the
//! L2-normalised features to the `k`-th nearest normalised training row
//! (OpenOOD's `knn_postprocessor.py` returns minus its square, the same
//! ranking). On `--layers auto` models the last tap is the map the
//! classifier global-average-pools into its penultimate features, so this
//! is the published detector; `eval` notes when the last tap is not
//! (`tests/baselines.rs` checks it against numpy).

use crate::eval::detector::{FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use anyhow::{ensure, Result};
use nalgebra::DMatrix;
use rayon::prelude::*;

/// The default `k` (the paper's choice for CIFAR-10).
pub const K: usize = 50;

/// Distance to the `k`-th nearest L2-normalised `--train` feature, negated.
pub struct Knn {
    /// Which neighbour (capped at the training rows).
    pub k: usize,
}

impl Default for Knn {
    fn default() -> Knn {
        Knn { k: K }
    }
}

impl NamedDetector for Knn {
    const NAME: &'static str = "knn";
    const NEEDS: Needs = Needs::TRAIN;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        Ok(Box::new(KnnBank::fit(data.train()?.last_tap(), self.k)?))
    }
}

/// The rows of `N × d` features divided by their L2 norms (a zero row stays zero).
pub(super) fn normalised(x: &DMatrix<f64>) -> DMatrix<f64> {
    let mut y = x.clone();
    for mut r in y.row_iter_mut() {
        let n = r.norm().max(1e-12);
        r /= n;
    }
    y
}

/// The normalised training features and `k`.
pub struct KnnBank {
    bank: DMatrix<f64>,
    k: usize,
}

impl KnnBank {
    /// Stores the normalised rows of `N × d` training features (`k` capped
    /// at `N`); an error for no rows or `k = 0`, which have no `k`-th
    /// neighbour.
    pub fn fit(x: &DMatrix<f64>, k: usize) -> Result<Self> {
        ensure!(
            x.nrows() > 0,
            "knn: no training rows for the bank; give --train frames"
        );
        ensure!(k > 0, "knn: k must be at least 1");
        Ok(KnnBank {
            bank: normalised(x),
            k: k.min(x.nrows()),
        })
    }

    /// `−‖z − b_(k)‖` for every row of `N × d` features (`N` scores).
    pub fn score_rows(&self, x: &DMatrix<f64>) -> Vec<f64> {
        let k = self.k;
        per_row_of_similarities(&normalised(x), &self.bank, |v| {
            // Unit vectors: ‖a − b‖² = 2 − 2 a·b; k-th nearest = k-th largest similarity.
            let (_, kth, _) = v.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            -(2.0 - 2.0 * *kth).max(0.0).sqrt()
        })
    }
}

/// `reduce` of every row of the `N × M` inner products `z bankᵀ` of `N × d`
/// queries with `M × d` bank rows (`N` values, in row order), computed 256
/// query rows at a time in parallel so that all `N × M` are never held at once.
pub(super) fn per_row_of_similarities(
    z: &DMatrix<f64>,
    bank: &DMatrix<f64>,
    reduce: impl Fn(&mut [f64]) -> f64 + Sync,
) -> Vec<f64> {
    let bank_t = bank.transpose();
    let blocks: Vec<Vec<f64>> = (0..z.nrows().div_ceil(256))
        .into_par_iter()
        .map(|b| {
            let start = b * 256;
            let len = 256.min(z.nrows() - start);
            let sims = z.rows(start, len) * &bank_t;
            sims.row_iter()
                .map(|r| {
                    let mut v: Vec<f64> = r.iter().copied().collect();
                    reduce(&mut v)
                })
                .collect()
        })
        .collect();
    blocks.into_iter().flatten().collect()
}

impl FittedDetector for KnnBank {
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        Ok(self.score_rows(x.last_tap()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_training_rows_or_k_zero_is_an_error_not_a_panic() {
        let empty = DMatrix::<f64>::zeros(0, 4);
        let err = KnnBank::fit(&empty, K).err().expect("no rows must be refused");
        assert!(err.to_string().contains("no training rows"), "{err}");
        let one = DMatrix::from_row_slice(1, 2, &[1.0, 0.0]);
        assert!(KnnBank::fit(&one, 0).is_err());
        // k is capped at the rows: one row, k = 50 scores against that row.
        let bank = KnnBank::fit(&one, K).unwrap();
        let q = DMatrix::from_row_slice(2, 2, &[2.0, 0.0, 0.0, 3.0]);
        let s = bank.score_rows(&q);
        assert!(s[0].abs() < 1e-12, "same direction: distance 0, got {}", s[0]);
        assert!(
            (s[1] + 2f64.sqrt()).abs() < 1e-12,
            "orthogonal unit vectors: −√2, got {}",
            s[1]
        );
    }
}
