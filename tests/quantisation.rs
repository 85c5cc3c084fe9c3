//! The documented quantisation bound (see `lsgm::quant`):
//! `|score_quantised − score_exact| ≤ Σ_i −ln(1 − r_i)`.

mod common;

use common::*;
use lsgm::{Chain, Covariance, Model, Quantisation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn quantised_scores_stay_within_the_documented_bound() {
    let mut rng = StdRng::seed_from_u64(42);
    let mut worst_ratio: f64 = 0.0;
    for trial in 0..300 {
        let quant = if trial % 2 == 0 {
            Quantisation::U8
        } else {
            Quantisation::U16
        };
        let chain = if trial % 4 < 2 {
            Chain::Paper
        } else {
            Chain::Markov
        };
        let m = rng.random_range(2..=4);
        let ks: Vec<usize> = (0..m).map(|_| rng.random_range(2..=5)).collect();
        let dims: Vec<usize> = (0..m).map(|_| rng.random_range(1..=3)).collect();
        let case = random_case(&mut rng, &ks, &dims, Covariance::Full, chain, quant, false);
        let bound: f64 = case
            .exact_transitions
            .iter()
            .map(|t| {
                let nz = t.iter().copied().filter(|v| *v > 0.0);
                let min = nz.clone().fold(f64::INFINITY, f64::min) as f32;
                let max = nz.fold(0.0, f64::max) as f32;
                -(1.0 - quant.relative_bound(min, max)).ln()
            })
            .sum();
        let bytes = case.spec.encode().unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        let mut scratch = vec![0.0; model.scratch_len()];
        let mut contributions = vec![0.0; m];
        for _ in 0..5 {
            let x = sample_features(&case, &mut rng, 1.5);
            // Exact maths, only the table differs: the bound itself.
            let exact = brute_force(&case, &x, &case.exact_transitions);
            let dequantised = brute_force(&case, &x, &case.transitions);
            assert!(
                (dequantised - exact).abs() <= bound + 1e-9,
                "{quant:?}: {dequantised} vs {exact}, bound {bound}"
            );
            worst_ratio = worst_ratio.max((dequantised - exact).abs() / bound);
            // The f32 scorer on the quantised file adds only f32 rounding.
            let refs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
            let fast = model.score(&refs, &mut scratch, &mut contributions).unwrap() as f64;
            assert!(
                (fast - exact).abs() <= bound + 1e-4 * (1.0 + exact.abs()),
                "{quant:?}: fast {fast} exact {exact}"
            );
        }
    }
    // The bound is not vacuous: some trials come within a factor 20 of it.
    assert!(worst_ratio > 0.05, "worst observed/bound = {worst_ratio}");
}

#[test]
fn quantised_tables_shrink_the_file() {
    let rng = StdRng::seed_from_u64(1);
    let mut sizes = Vec::new();
    for quant in [Quantisation::F32, Quantisation::U16, Quantisation::U8] {
        let mut r = rng.clone();
        let case = random_case(
            &mut r,
            &[50, 50, 50],
            &[1, 1, 1],
            Covariance::Diag,
            Chain::Paper,
            quant,
            false,
        );
        sizes.push(case.spec.encode().unwrap().len());
    }
    // 2 tables of 2500 entries at 4, 2 and 1 bytes each, plus the U8 codebooks
    // (2 × 1 KiB); varint prefixes and the U16 base add a few bytes.
    let near = |got: usize, want: usize| got.abs_diff(want) <= 16;
    assert!(near(sizes[0] - sizes[1], 2 * 2500 * 2), "{sizes:?}");
    assert!(near(sizes[1] - sizes[2], 2 * 2500 - 2 * 1024), "{sizes:?}");
}
