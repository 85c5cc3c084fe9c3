//! NNGuide (Park, Jung & Teoh, "Nearest Neighbor Guidance for
//! Out-of-Distribution Detection", ICCV 2023), as OpenOOD v1.5's
//! `nnguide_postprocessor.py` computes it. On the penultimate features `f`
//! and the logits `z = W f + b`:
//!
//! - guide bank: a random `α` = 1 % of the `--train` rows (at least one;
//!   OpenOOD takes the first batches of its shuffled training loader until
//!   they hold more than `α N` rows), each row `f_i / ‖f_i‖ · E(z_i)`, its
//!   L2-normalised features scaled by its energy `E(z) = logsumexp(z)`;
//! - score `E(z) · mean of the K largest (f / ‖f‖) · g_i` over the bank's
//!   rows `g_i` (`K` = 100, capped at the bank's size with a note).
//!
//! The paper's guidance is exactly this mean of the top-`K` energy-scaled
//! cosine similarities, times the energy of the frame itself. OpenOOD's
//! normaliser adds 1e-10 to every normalised value; this one does not.

use super::energy;
use super::knn::{normalised, per_row_of_similarities};
use crate::eval::detector::{FittedDetector, NamedDetector, Needs, SetFeatures, TrainingData};
use crate::eval::head::Head;
use anyhow::{ensure, Result};
use nalgebra::DMatrix;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// OpenOOD's `K`: how many of the bank's rows guide a frame.
pub const K: usize = 100;
/// OpenOOD's `α`: the share of the training rows in the bank.
pub const FRACTION: f64 = 0.01;
/// The seed of the bank's draw, fixed so that a run is reproducible.
pub const SEED: u64 = 0x4E4E_6775;

/// Energy times the mean top-`k` similarity to a guide bank.
pub struct NnGuide {
    /// How many of the bank's rows (capped at its size).
    pub k: usize,
    /// The share `α` of the training rows drawn into the bank (0–1).
    pub fraction: f64,
}

impl Default for NnGuide {
    fn default() -> NnGuide {
        NnGuide {
            k: K,
            fraction: FRACTION,
        }
    }
}

impl NamedDetector for NnGuide {
    const NAME: &'static str = "nnguide";
    const NEEDS: Needs = Needs::TRAIN_HEAD;

    fn fit<'a>(&self, data: &TrainingData<'a>) -> Result<Box<dyn FittedDetector + 'a>> {
        let head = data.head()?;
        let f = head.features(data.train()?)?;
        let rows = bank_rows(f.nrows(), self.fraction, SEED);
        let bank = GuideBank::fit(head, &f.select_rows(rows.iter()), self.k)?;
        if bank.k < self.k {
            crate::say!(
                "note: nnguide: the guide bank has {} rows ({} % of {} training rows), so K = {} \
                 instead of {}",
                bank.k,
                self.fraction * 100.0,
                f.nrows(),
                bank.k,
                self.k
            );
        }
        Ok(Box::new(bank))
    }
}

/// The bank's rows: `round(α N)` distinct row indices (at least one, at
/// most `N`) drawn with `seed`, in increasing order.
pub fn bank_rows(n: usize, fraction: f64, seed: u64) -> Vec<usize> {
    let size = ((n as f64 * fraction).round() as usize).clamp(1, n.max(1));
    let mut rows = sample(&mut ChaCha8Rng::seed_from_u64(seed), n, size.min(n)).into_vec();
    rows.sort_unstable();
    rows
}

/// The guide bank `g_i` with the head and `k`.
pub struct GuideBank<'a> {
    head: &'a Head,
    /// `M × d`: normalised bank features, each row times its energy.
    guides: DMatrix<f64>,
    /// `K`, at most `M`.
    pub k: usize,
}

impl<'a> GuideBank<'a> {
    /// The bank of the `M × d` penultimate features `f` (all of them), with
    /// `k` capped at `M`.
    pub fn fit(head: &'a Head, f: &DMatrix<f64>, k: usize) -> Result<Self> {
        ensure!(f.nrows() > 0, "nnguide: no training rows for the guide bank");
        ensure!(k > 0, "nnguide: K must be at least 1");
        let mut guides = normalised(f);
        for (mut row, e) in guides.row_iter_mut().zip(energy(&head.logits(f))) {
            row *= e;
        }
        Ok(GuideBank {
            head,
            k: k.min(f.nrows()),
            guides,
        })
    }
}

impl FittedDetector for GuideBank<'_> {
    /// `E(z) · mean_{top K} (f / ‖f‖) · g_i` of every row of the `N × d` penultimate features.
    fn score(&self, x: &SetFeatures) -> Result<Vec<f64>> {
        let f = self.head.features(x)?;
        let energies = energy(&self.head.logits(f));
        let k = self.k;
        let guidance = per_row_of_similarities(&normalised(f), &self.guides, |v| {
            v.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            v[..k].iter().sum::<f64>() / k as f64
        });
        Ok(guidance
            .into_iter()
            .zip(energies)
            .map(|(guidance, e)| e * guidance)
            .collect())
    }
}
