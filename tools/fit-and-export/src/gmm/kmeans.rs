//! k-means++ seeding and Lloyd iterations: the initial hard assignment of
//! both EM and the Dirichlet-process fit (scikit-learn's `init_params="kmeans"`).
//!
//! Seeding is *greedy* k-means++ as in scikit-learn: each step samples
//! `2 + ⌊ln k⌋` candidates with probability ∝ D² and keeps the one that
//! lowers the potential most. (Plain single-candidate k-means++ left EM
//! 10–25 nats/row worse on 128-wide features in the benchmark.) Distances use
//! `‖x‖² − 2 x·c + ‖c‖²` with one matrix product per pass.

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Squared distances of every row to one point (column-major friendly).
fn dist_to(x: &DMatrix<f64>, c: &DVector<f64>) -> Vec<f64> {
    let mut d = vec![0.0; x.nrows()];
    for (j, col) in x.column_iter().enumerate() {
        let cj = c[j];
        for (acc, &v) in d.iter_mut().zip(col.iter()) {
            let t = v - cj;
            *acc += t * t;
        }
    }
    d
}

fn sample(weights: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = weights.iter().sum();
    if total.is_nan() || total <= 0.0 {
        return rng.random_range(0..weights.len());
    }
    let mut t = rng.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if t < w {
            return i;
        }
        t -= w;
    }
    weights.len() - 1
}

/// Greedy k-means++ seeds.
pub fn plus_plus(x: &DMatrix<f64>, k: usize, rng: &mut ChaCha8Rng) -> Vec<DVector<f64>> {
    let n = x.nrows();
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centres = vec![x.row(rng.random_range(0..n)).transpose()];
    let mut d2 = dist_to(x, &centres[0]);
    while centres.len() < k {
        // Candidates are drawn first (sequentially, so the seed fixes them),
        // then evaluated in parallel.
        let cands: Vec<usize> = (0..trials).map(|_| sample(&d2, rng)).collect();
        let scored: Vec<(f64, Vec<f64>, usize)> = cands
            .par_iter()
            .map(|&cand| {
                let dc = dist_to(x, &x.row(cand).transpose());
                let merged: Vec<f64> = d2.iter().zip(&dc).map(|(a, b)| a.min(*b)).collect();
                (merged.iter().sum(), merged, cand)
            })
            .collect();
        let best = scored.into_iter().reduce(|a, b| if b.0 < a.0 { b } else { a });
        let (_, merged, cand) = best.expect("at least two trials");
        d2 = merged;
        centres.push(x.row(cand).transpose());
    }
    centres
}

/// Nearest centre and squared distance of every row.
fn assign(x: &DMatrix<f64>, centres: &[DVector<f64>], row_sq: &[f64]) -> Vec<(usize, f64)> {
    let c = DMatrix::from_columns(centres); // d × K
    let c_sq: Vec<f64> = centres.iter().map(|v| v.norm_squared()).collect();
    const BLOCK: usize = 4096;
    let blocks: Vec<Vec<(usize, f64)>> = (0..x.nrows().div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let start = b * BLOCK;
            let len = BLOCK.min(x.nrows() - start);
            let cross = x.rows(start, len) * &c; // len × K
            (0..len)
                .map(|i| {
                    let mut best = (0, f64::INFINITY);
                    for (k, cs) in c_sq.iter().enumerate() {
                        let d = (row_sq[start + i] - 2.0 * cross[(i, k)] + cs).max(0.0);
                        if d < best.1 {
                            best = (k, d);
                        }
                    }
                    best
                })
                .collect()
        })
        .collect();
    blocks.into_iter().flatten().collect()
}

/// Lloyd's algorithm from greedy k-means++ seeds; one label per row. Stops
/// when no label changes or, as scikit-learn's `KMeans(tol=1e-4)`, when the
/// centres move by less than `1e-4 ×` the mean feature variance (squared).
/// An emptied cluster takes the point farthest from its centre.
pub fn labels(x: &DMatrix<f64>, k: usize, rng: &mut ChaCha8Rng, max_iter: usize) -> Vec<usize> {
    let (n, d) = (x.nrows(), x.ncols());
    let mut centres = plus_plus(x, k, rng);
    let row_sq: Vec<f64> = x.row_iter().map(|r| r.norm_squared()).collect();
    let mean_var = x
        .column_iter()
        .map(|c| {
            let m = c.mean();
            c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64
        })
        .sum::<f64>()
        / d as f64;
    let tol = 1e-4 * mean_var;
    let mut labels = vec![usize::MAX; n];
    for _ in 0..max_iter {
        let assigned = assign(x, &centres, &row_sq);
        let changed = assigned.iter().zip(&labels).filter(|((a, _), b)| a != *b).count();
        labels = assigned.iter().map(|a| a.0).collect();
        if changed == 0 {
            break;
        }
        let mut sums = DMatrix::<f64>::zeros(k, d);
        let mut counts = vec![0usize; k];
        for &l in &labels {
            counts[l] += 1;
        }
        for (j, col) in x.column_iter().enumerate() {
            for (&l, &v) in labels.iter().zip(col.iter()) {
                sums[(l, j)] += v;
            }
        }
        let mut shift = 0.0;
        for c in 0..k {
            let new = if counts[c] > 0 {
                sums.row(c).transpose() / counts[c] as f64
            } else {
                let far = (0..n)
                    .max_by(|&a, &b| assigned[a].1.total_cmp(&assigned[b].1))
                    .unwrap_or(0);
                labels[far] = c;
                x.row(far).transpose()
            };
            shift += (&new - &centres[c]).norm_squared();
            centres[c] = new;
        }
        if shift <= tol {
            // Final assignment to the converged centres.
            labels = assign(x, &centres, &row_sq).into_iter().map(|a| a.0).collect();
            break;
        }
    }
    labels
}

/// One-hot responsibilities from labels.
pub fn one_hot(labels: &[usize], k: usize) -> DMatrix<f64> {
    let mut r = DMatrix::zeros(labels.len(), k);
    for (i, &l) in labels.iter().enumerate() {
        r[(i, l)] = 1.0;
    }
    r
}
