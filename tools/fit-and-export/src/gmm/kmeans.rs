//! k-means++ seeding and Lloyd iterations: the initial hard assignment of
//! both EM and the Dirichlet-process fit (scikit-learn's `init_params="kmeans"`).

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

fn sq_dist(x: &DMatrix<f64>, i: usize, c: &DVector<f64>) -> f64 {
    x.row(i).iter().zip(c.iter()).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// k-means++ seeds: the first uniformly, each next one with probability
/// proportional to the squared distance to the nearest seed so far.
pub fn plus_plus(x: &DMatrix<f64>, k: usize, rng: &mut ChaCha8Rng) -> Vec<DVector<f64>> {
    let n = x.nrows();
    let mut centres = vec![x.row(rng.random_range(0..n)).transpose()];
    let mut d2: Vec<f64> = (0..n).into_par_iter().map(|i| sq_dist(x, i, &centres[0])).collect();
    while centres.len() < k {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut t = rng.random::<f64>() * total;
            let mut pick = n - 1;
            for (i, &v) in d2.iter().enumerate() {
                if t < v {
                    pick = i;
                    break;
                }
                t -= v;
            }
            pick
        } else {
            rng.random_range(0..n)
        };
        let c = x.row(pick).transpose();
        d2.par_iter_mut().enumerate().for_each(|(i, v)| *v = v.min(sq_dist(x, i, &c)));
        centres.push(c);
    }
    centres
}

/// Lloyd's algorithm from k-means++ seeds; returns one label per row. An
/// emptied cluster takes the point farthest from its centre.
pub fn labels(x: &DMatrix<f64>, k: usize, rng: &mut ChaCha8Rng, max_iter: usize) -> Vec<usize> {
    let (n, d) = (x.nrows(), x.ncols());
    let mut centres = plus_plus(x, k, rng);
    let mut labels = vec![usize::MAX; n];
    for _ in 0..max_iter {
        let assigned: Vec<(usize, f64)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut best = (0, f64::INFINITY);
                for (c, centre) in centres.iter().enumerate() {
                    let dd = sq_dist(x, i, centre);
                    if dd < best.1 {
                        best = (c, dd);
                    }
                }
                best
            })
            .collect();
        let changed = assigned.iter().zip(&labels).any(|((a, _), b)| a != b);
        labels = assigned.iter().map(|a| a.0).collect();
        if !changed {
            break;
        }
        let mut sums = vec![DVector::<f64>::zeros(d); k];
        let mut counts = vec![0usize; k];
        for (i, &l) in labels.iter().enumerate() {
            sums[l] += x.row(i).transpose();
            counts[l] += 1;
        }
        for c in 0..k {
            if counts[c] > 0 {
                centres[c] = &sums[c] / counts[c] as f64;
            } else {
                let far = (0..n)
                    .max_by(|&a, &b| assigned[a].1.total_cmp(&assigned[b].1))
                    .unwrap_or(0);
                centres[c] = x.row(far).transpose();
                labels[far] = c;
            }
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
