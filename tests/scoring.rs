//! The fast `f32` scorer against independent `f64` computations.

mod common;

use common::*;
use lsgm::{Chain, Covariance, Error, Model, Quantisation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn score(model: &Model<'_>, features: &[Vec<f32>]) -> (f32, Vec<f32>) {
    let refs: Vec<&[f32]> = features.iter().map(Vec::as_slice).collect();
    let mut scratch = vec![0.0; model.scratch_len()];
    let mut contributions = vec![0.0; model.num_layers()];
    let s = model.score(&refs, &mut scratch, &mut contributions).unwrap();
    (s, contributions)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * (1.0 + b.abs())
}

#[test]
fn forward_recursion_equals_brute_force_enumeration_of_all_paths() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut checked = 0;
    for trial in 0..240 {
        let m = rng.random_range(1..=4);
        let ks: Vec<usize> = (0..m).map(|_| rng.random_range(1..=5)).collect();
        let dims: Vec<usize> = (0..m).map(|_| rng.random_range(1..=4)).collect();
        let covariance = if trial % 2 == 0 {
            Covariance::Full
        } else {
            Covariance::Diag
        };
        let chain = if trial % 4 < 2 {
            Chain::Paper
        } else {
            Chain::Markov
        };
        let project = trial % 3 == 0;
        let case = random_case(
            &mut rng,
            &ks,
            &dims,
            covariance,
            chain,
            Quantisation::F32,
            project,
        );
        let bytes = case.spec.encode().unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        for spread in [0.3, 1.0, 4.0] {
            let x = sample_features(&case, &mut rng, spread);
            let (fast, contributions) = score(&model, &x);
            let brute = brute_force(&case, &x, &case.transitions);
            assert!(
                close(fast as f64, brute, 1e-4),
                "trial {trial} ks {ks:?} dims {dims:?} {covariance:?} {chain:?}: fast {fast} brute {brute}"
            );
            let sum: f32 = contributions.iter().sum();
            assert!((sum - fast).abs() <= 1e-5 * (1.0 + fast.abs()));
            let refs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
            assert!(close(lsgm::reference::score(&model, &refs), brute, 1e-6));
            checked += 1;
        }
    }
    assert_eq!(checked, 720);
}

#[test]
fn densities_equal_explicit_inverse_and_determinant() {
    let mut rng = StdRng::seed_from_u64(11);
    for covariance in [Covariance::Full, Covariance::Diag] {
        for d in [1, 2, 3, 5, 8, 16] {
            let case = random_case(
                &mut rng,
                &[4],
                &[d],
                covariance,
                Chain::Paper,
                Quantisation::F32,
                false,
            );
            let bytes = case.spec.encode().unwrap();
            let model = Model::from_bytes(&bytes).unwrap();
            let g = model.layer(0).gaussians();
            for _ in 0..20 {
                let x = &sample_features(&case, &mut rng, 1.5)[0];
                let mut diff = vec![0.0; d];
                let mut out = vec![0.0; 4];
                g.log_densities(x, &mut diff, &mut out);
                let (z, _) = project(&case, 0, x);
                for (k, c) in case.layers[0].iter().enumerate() {
                    let want = log_normal(&z, c);
                    assert!(
                        close(out[k] as f64, want, 2e-5),
                        "{covariance:?} d={d} k={k}: {} vs {want}",
                        out[k]
                    );
                }
            }
        }
    }
}

#[test]
fn far_away_frames_stay_finite_and_exact() {
    // Features 30–300 standard deviations out: log-densities of −10⁴ and more,
    // and components whose relative density underflows f32 entirely.
    let mut rng = StdRng::seed_from_u64(3);
    for trial in 0..60 {
        let chain = if trial % 2 == 0 {
            Chain::Paper
        } else {
            Chain::Markov
        };
        let case = random_case(
            &mut rng,
            &[5, 4, 5],
            &[3, 2, 3],
            Covariance::Full,
            chain,
            Quantisation::F32,
            false,
        );
        let bytes = case.spec.encode().unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        let scale = [30.0, 100.0, 300.0][trial % 3];
        let x = sample_features(&case, &mut rng, scale);
        let (fast, _) = score(&model, &x);
        let brute = brute_force(&case, &x, &case.transitions);
        assert!(fast.is_finite(), "trial {trial}: {fast}");
        assert!(
            close(fast as f64, brute, 1e-4),
            "trial {trial}: fast {fast} brute {brute}"
        );
    }
}

#[test]
fn unreachable_components_use_the_log_space_fallback() {
    // Layer 0 sits on component 0, which only transitions to component 0 of
    // layer 1; the frame's layer-1 features sit 60σ away from component 0 and
    // on top of component 1. c_1 underflows f32 and must be recomputed in logs.
    let mut rng = StdRng::seed_from_u64(5);
    let mut case = random_case(
        &mut rng,
        &[2, 2],
        &[1, 1],
        Covariance::Diag,
        Chain::Markov,
        Quantisation::F32,
        false,
    );
    let set = |c: &mut lsgm::ComponentSpec, m: f32| {
        c.mean = vec![m];
        c.precision_cholesky = vec![1.0];
    };
    for l in &mut case.spec.layers {
        set(&mut l.components[0], 0.0);
        set(&mut l.components[1], 200.0);
    }
    for l in &mut case.layers {
        for (c, m) in l.iter_mut().zip([0.0, 200.0]) {
            c.mean[0] = m;
            c.cov[(0, 0)] = 1.0;
        }
    }
    let table = vec![1.0, 0.0, 0.5, 0.5];
    case.spec.transitions = vec![lsgm::quant::quantise(&table, Quantisation::F32).unwrap()];
    case.transitions = vec![table.iter().map(|&v| v as f64).collect()];
    let bytes = case.spec.encode().unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let x = vec![vec![0.0f32], vec![140.0f32]];
    let (fast, contributions) = score(&model, &x);
    let brute = brute_force(&case, &x, &case.transitions);
    assert!(close(fast as f64, brute, 1e-4), "fast {fast} brute {brute}");
    assert!(contributions[1] < -1000.0, "{contributions:?}");
}

#[test]
fn bad_inputs_are_typed_errors() {
    let mut rng = StdRng::seed_from_u64(9);
    let case = random_case(
        &mut rng,
        &[3, 2],
        &[2, 3],
        Covariance::Full,
        Chain::Paper,
        Quantisation::U8,
        false,
    );
    let bytes = case.spec.encode().unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut scratch = vec![0.0; model.scratch_len()];
    let mut c = vec![0.0; 2];
    let good = [vec![0.0f32; 2], vec![0.0f32; 3]];
    let r = |f: &[&[f32]], s: &mut [f32], c: &mut [f32]| model.score(f, s, c);
    assert_eq!(
        r(&[&good[0]], &mut scratch, &mut c),
        Err(Error::LayerCount { expected: 2, got: 1 })
    );
    assert_eq!(
        r(&[&good[0], &[0.0; 2]], &mut scratch, &mut c),
        Err(Error::FeatureDim {
            layer: 1,
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        r(&[&good[0], &[0.0, f32::NAN, 0.0]], &mut scratch, &mut c),
        Err(Error::NonFiniteFeature { layer: 1, index: 1 })
    );
    assert_eq!(
        r(&[&[f32::INFINITY, 0.0], &good[1]], &mut scratch, &mut c),
        Err(Error::NonFiniteFeature { layer: 0, index: 0 })
    );
    let need = model.scratch_len();
    assert_eq!(
        r(&[&good[0], &good[1]], &mut scratch[..need - 1], &mut c),
        Err(Error::ScratchTooSmall {
            needed: need as u32,
            got: need as u32 - 1
        })
    );
    assert_eq!(
        r(&[&good[0], &good[1]], &mut scratch, &mut c[..1]),
        Err(Error::ContributionsTooSmall)
    );
    // Finite but absurd features overflow the density: a typed error, not NaN.
    assert_eq!(
        r(&[&[1e30, 1e30], &good[1]], &mut scratch, &mut c),
        Err(Error::Overflow { layer: 0 })
    );
    assert!(r(&[&good[0], &good[1]], &mut scratch, &mut c)
        .unwrap()
        .is_finite());
}

/// Regression (found by the model_decoder fuzz target): a zero transition
/// entry leaves only a component whose density overflows reachable, while an
/// unreachable one stays finite. That used to return `Ok(-inf)`.
#[test]
fn only_overflowed_components_reachable_is_an_overflow_error() {
    let mut rng = StdRng::seed_from_u64(22);
    let mut case = random_case(
        &mut rng,
        &[1, 2],
        &[1, 2],
        Covariance::Full,
        Chain::Paper,
        Quantisation::F32,
        false,
    );
    let far = &mut case.spec.layers[1].components[1];
    far.mean = vec![1.0, 6.7e7];
    far.precision_cholesky = vec![1.0, -4.15e34, 1.0];
    case.spec.transitions = vec![lsgm::quant::quantise(&[0.0, 1.0], Quantisation::F32).unwrap()];
    let bytes = case.spec.encode().unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut scratch = vec![0.0; model.scratch_len()];
    let mut c = [0.0f32; 2];
    let x0 = [case.layers[0][0].mean[0] as f32];
    let got = model.score(&[&x0, &[0.25, 0.25]], &mut scratch, &mut c);
    assert_eq!(got, Err(Error::Overflow { layer: 1 }));
}

#[test]
fn verdict_blames_the_layer_furthest_below_its_median() {
    let mut rng = StdRng::seed_from_u64(21);
    let case = random_case(
        &mut rng,
        &[2, 2, 2],
        &[2, 2, 2],
        Covariance::Diag,
        Chain::Paper,
        Quantisation::F32,
        false,
    );
    let bytes = case.spec.encode().unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    // Medians are 0, -1, -2 (see random_case); layer 2 dropped most.
    let v = model.verdict(-30.0, &[-5.0, -6.0, -19.0], None);
    assert_eq!((v.ood, v.worst_layer, v.threshold), (true, 2, -10.0));
    let v = model.verdict(-5.0, &[-5.0, 0.0, 0.0], Some(-6.0));
    assert_eq!((v.ood, v.worst_layer), (false, 0));
    assert_eq!(model.threshold_for_fpr(0.05), Some(-10.0));
    assert_eq!(model.threshold_for_fpr(0.03), Some(-15.0));
    assert_eq!(model.threshold_for_fpr(0.9), None);
    // Its inverse, on the same quantiles (0.01: -20, 0.05: -10, 0.5: -3).
    assert_eq!(model.fpr_at_threshold(-10.0), Some(0.05));
    assert_eq!(model.fpr_at_threshold(-15.0), Some(0.03));
    assert_eq!(model.fpr_at_threshold(-25.0), None);
    assert_eq!(model.fpr_at_threshold(-2.0), None);
}
