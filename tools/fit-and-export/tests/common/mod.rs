//! Synthetic traces from a known layered mixture, written as feature files.
#![allow(dead_code)]

use fit_and_export::io::{npy_bytes, write_atomic};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(1e-12..1.0);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` rows of a chain of `dims.len()` layers, 3 clusters per layer; the
/// cluster of layer i+1 follows that of layer i with probability 0.8.
pub fn traces(n: usize, dims: &[usize], seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<Vec<Vec<f64>>> = dims
        .iter()
        .map(|&d| {
            (0..3)
                .map(|_| (0..d).map(|_| normal(&mut rng) * 4.0).collect())
                .collect()
        })
        .collect();
    let mut layers: Vec<Vec<f32>> = dims.iter().map(|&d| Vec::with_capacity(n * d)).collect();
    for _ in 0..n {
        let mut z = rng.random_range(0..3);
        for (l, &d) in dims.iter().enumerate() {
            if l > 0 && rng.random::<f64>() > 0.8 {
                z = rng.random_range(0..3);
            }
            for c in &centres[l][z][..d] {
                layers[l].push((c + normal(&mut rng)) as f32);
            }
        }
    }
    layers
}

/// Writes `layers` as `dir/0.npy, 1.npy, …`.
pub fn write_dir(dir: &Path, layers: &[Vec<f32>], dims: &[usize]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, (v, &d)) in layers.iter().zip(dims).enumerate() {
        write_atomic(
            &dir.join(format!("{i}.npy")),
            &npy_bytes(v.len() / d, d, v).unwrap(),
        )
        .unwrap();
    }
}

/// Writes `data` (row-major, `shape` a frame stack such as N×H×W or
/// N×H×W×C) as a `.npy` file of `T`.
pub fn write_npy<T: npyz::AutoSerialize>(path: &Path, shape: &[u64], data: impl IntoIterator<Item = T>) {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut out)
        .begin_nd()
        .unwrap();
    writer.extend(data).unwrap();
    writer.finish().unwrap();
    std::fs::write(path, out).unwrap();
}
