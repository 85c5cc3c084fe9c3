//! Per-frame scoring latency of the core, next to the naive `f64` reference.
//!
//! Two model shapes with K = 50 and full covariance: a small ResNet monitor
//! (4 taps of 16/32/64/128 channels) and a large one (64/128/256/512), both
//! chain modes, `f32` / `u16` / `u8` transition tables, and (paper chain, u16)
//! `f16` / `i8` storage of means and factors. Throughput is reported
//! in multiply-adds (MACs) per second, so docs/benchmarks.md can compare it with the
//! machine's arithmetic limit. Run: `cargo bench --bench score`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lsgm::model::wire::Pooling;
use lsgm::quant::quantise;
use lsgm::reference::Reference;
use lsgm::{Chain, ComponentSpec, Covariance, LayerSpec, Model, ModelSpec, Quantisation, Storage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;

const K: usize = 50;

/// A random well-conditioned model: U = diag(0.5..2) + small upper noise.
fn model(dims: &[usize], chain: Chain, quant: Quantisation, storage: Storage) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(1);
    let layers = dims
        .iter()
        .enumerate()
        .map(|(i, &d)| LayerSpec {
            name: format!("tap{i}"),
            pooling: Pooling::Precomputed,
            dim_in: d,
            projection: None,
            covariance: Covariance::Full,
            storage,
            components: (0..K)
                .map(|_| ComponentSpec {
                    log_weight: -(K as f32).ln(),
                    mean: (0..d).map(|_| rng.random_range(-1.0..1.0)).collect(),
                    precision_cholesky: (0..d)
                        .flat_map(|j| (0..=j).map(move |i| (i, j)))
                        .map(|(i, j)| {
                            if i == j {
                                rng.random_range(0.5..2.0)
                            } else {
                                rng.random_range(-0.05..0.05)
                            }
                        })
                        .collect(),
                })
                .collect(),
            median_contribution: 0.0,
        })
        .collect();
    let transitions = (1..dims.len())
        .map(|_| {
            let mut t: Vec<f32> = (0..K * K).map(|_| rng.random_range(0.001..1.0)).collect();
            for row in t.chunks_mut(K) {
                let s: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
            quantise(&t, quant).unwrap()
        })
        .collect();
    ModelSpec {
        source: "bench".into(),
        chain,
        threshold: 0.0,
        calibration_tpr: 0.95,
        quantiles: vec![],
        preprocess: None,
        layers,
        transitions,
    }
    .encode()
    .unwrap()
}

/// Multiply-adds per frame: `K·(d(d+1)/2 + d)` per layer plus `K²` per transition.
fn macs(dims: &[usize]) -> u64 {
    let dens: usize = dims.iter().map(|d| K * (d * (d + 1) / 2 + d)).sum();
    (dens + (dims.len() - 1) * K * K) as u64
}

fn bench(c: &mut Criterion) {
    for (shape, dims) in [("small", [16usize, 32, 64, 128]), ("large", [64, 128, 256, 512])] {
        let mut group = c.benchmark_group(format!("score/{shape}"));
        group.throughput(Throughput::Elements(macs(&dims)));
        let mut rng = StdRng::seed_from_u64(2);
        let frame: Vec<Vec<f32>> = dims
            .iter()
            .map(|&d| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let refs: Vec<&[f32]> = frame.iter().map(Vec::as_slice).collect();
        let mut variants: Vec<(Chain, Quantisation, Storage)> = Vec::new();
        for chain in [Chain::Paper, Chain::Markov] {
            for quant in [Quantisation::F32, Quantisation::U16, Quantisation::U8] {
                variants.push((chain, quant, Storage::F32));
            }
        }
        variants.push((Chain::Paper, Quantisation::U16, Storage::F16));
        variants.push((Chain::Paper, Quantisation::U16, Storage::I8));
        for (chain, quant, storage) in variants {
            let bytes = model(&dims, chain, quant, storage);
            let model = Model::from_bytes(&bytes).unwrap();
            let mut scratch = vec![0.0; model.scratch_len()];
            let mut contributions = vec![0.0; model.num_layers()];
            let name = match storage {
                Storage::F32 => format!("{quant:?}"),
                _ => format!("{quant:?}-{storage:?}"),
            };
            group.bench_function(BenchmarkId::new(format!("{chain:?}"), name), |b| {
                b.iter(|| {
                    model
                        .score(black_box(&refs), &mut scratch, &mut contributions)
                        .unwrap()
                })
            });
        }
        let bytes = model(&dims, Chain::Paper, Quantisation::F32, Storage::F32);
        let model = Model::from_bytes(&bytes).unwrap();
        let reference = Reference::new(&model);
        group.sample_size(10);
        group.bench_function(BenchmarkId::new("Paper", "naive-f64"), |b| {
            b.iter(|| reference.score(black_box(&refs)))
        });
        group.finish();
    }
}

/// The shipped demo models (f32 and i8 storage), on features at a component's mean.
fn demo(c: &mut Criterion) {
    let mut group = c.benchmark_group("score/demo");
    for name in ["fmnist-resnet.lsgm", "fmnist-resnet-i8.lsgm"] {
        let path = format!("{}/models/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        let frame: Vec<Vec<f32>> = model
            .layers()
            .iter()
            .map(|l| l.gaussians().mean(0).iter().collect())
            .collect();
        let refs: Vec<&[f32]> = frame.iter().map(Vec::as_slice).collect();
        let mut scratch = vec![0.0; model.scratch_len()];
        let mut contributions = vec![0.0; model.num_layers()];
        group.bench_function(name, |b| {
            b.iter(|| {
                model
                    .score(black_box(&refs), &mut scratch, &mut contributions)
                    .unwrap()
            })
        });
    }
    let mut map = vec![0.0f32; 16 * 28 * 28];
    map.iter_mut().enumerate().for_each(|(i, v)| *v = (i % 7) as f32);
    let mut pooled = vec![0.0f32; 16];
    group.bench_function("pool 16x28x28", |b| {
        b.iter(|| lsgm::pool::global_avg_nchw(black_box(&map), [1, 16, 28, 28], 0, &mut pooled).unwrap())
    });
    // The same map over a 2×2 grid (`fit-and-export --grid 2`): one pass over
    // the same pixels, so it should cost about what the global mean does.
    let mut cells = vec![0.0f32; 4 * 16];
    group.bench_function("pool 16x28x28 grid 2x2", |b| {
        b.iter(|| lsgm::pool::grid_avg_nchw(black_box(&map), [1, 16, 28, 28], 0, 2, &mut cells).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench, demo
}
criterion_main!(benches);
