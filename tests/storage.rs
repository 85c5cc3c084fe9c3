//! Reduced-precision storage of means and precision factors (`lsgm::Storage`):
//! the per-value rounding contract, a derived bound on the score change, the
//! f16/i8 kernels against the dense f64 reference, and byte-exact re-encoding.

mod common;

use common::*;
use lsgm::density::packed_index;
use lsgm::reference::Reference;
use lsgm::{Chain, Covariance, Model, ModelSpec, Quantisation, Storage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const STORED: [Storage; 2] = [Storage::F16, Storage::I8];

fn with_storage(spec: &ModelSpec, storage: Storage) -> ModelSpec {
    let mut s = spec.clone();
    s.layers.iter_mut().for_each(|l| l.storage = storage);
    s
}

/// Largest rounding error the storage contract allows for a half-precision value.
fn f16_error(v: f64) -> f64 {
    // 2⁻¹¹ relative in the normal range, half the subnormal spacing below it.
    (v.abs() * 2f64.powi(-11)).max(2f64.powi(-25))
}

/// The i8 contract for component factor `u` (packed, exact) of dimension `d`:
/// the allowed error of every packed entry.
fn i8_errors(u: &[f32], covariance: Covariance, d: usize) -> Vec<f64> {
    let groups: Vec<(usize, usize)> = match covariance {
        Covariance::Full => (0..d).map(|j| (packed_index(0, j), j + 1)).collect(),
        Covariance::Diag => vec![(0, d)],
        other => panic!("no reference for covariance {other}"),
    };
    let mut out = vec![0.0; u.len()];
    for (start, len) in groups {
        let col = &u[start..start + len];
        let max = col.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
        // Scale = max/127 rounded up to the next f16 (≤ 2⁻¹⁰ relative).
        let scale = max / 127.0 * (1.0 + 2f64.powi(-10));
        for (i, &v) in col.iter().enumerate() {
            let is_diag = covariance == Covariance::Diag || i + 1 == len;
            // Half a step, or a whole one where a diagonal is lifted to code 1.
            out[start + i] = if is_diag && (v as f64) < scale / 2.0 {
                scale
            } else {
                scale / 2.0
            };
        }
    }
    out
}

/// A random model; trials alternate full and diagonal covariance, and every
/// third one has projections.
fn random_spec(rng: &mut StdRng, trial: usize) -> (Case, Covariance) {
    let covariance = if trial.is_multiple_of(2) {
        Covariance::Full
    } else {
        Covariance::Diag
    };
    let project = trial.is_multiple_of(3);
    let m = rng.random_range(1..=3);
    let ks: Vec<usize> = (0..m).map(|_| rng.random_range(1..=4)).collect();
    // Up to 20 dimensions: every remainder of the 8-lane kernels.
    let dims: Vec<usize> = (0..m).map(|_| rng.random_range(1..=20)).collect();
    let chain = if rng.random_bool(0.5) {
        Chain::Paper
    } else {
        Chain::Markov
    };
    let case = random_case(
        &mut *rng,
        &ks,
        &dims,
        covariance,
        chain,
        Quantisation::F32,
        project,
    );
    (case, covariance)
}

#[test]
fn stored_values_keep_the_rounding_contract() {
    let mut rng = StdRng::seed_from_u64(11);
    for trial in 0..60 {
        let (case, covariance) = random_spec(&mut rng, trial);
        for storage in STORED {
            let bytes = with_storage(&case.spec, storage).encode().unwrap();
            let back = ModelSpec::from_model(&Model::from_bytes(&bytes).unwrap());
            for (exact, stored) in case.spec.layers.iter().zip(&back.layers) {
                assert_eq!(stored.storage, storage);
                let d = exact.dim();
                for (c, s) in exact.components.iter().zip(&stored.components) {
                    for (&a, &b) in c.mean.iter().zip(&s.mean) {
                        assert!(
                            ((a - b) as f64).abs() <= f16_error(a as f64),
                            "{storage:?} mean {a} → {b}"
                        );
                    }
                    let allowed: Vec<f64> = match storage {
                        Storage::I8 => i8_errors(&c.precision_cholesky, covariance, d),
                        _ => c
                            .precision_cholesky
                            .iter()
                            .map(|&v| f16_error(v as f64))
                            .collect(),
                    };
                    for ((&a, &b), e) in c
                        .precision_cholesky
                        .iter()
                        .zip(&s.precision_cholesky)
                        .zip(&allowed)
                    {
                        assert!(
                            ((a - b) as f64).abs() <= e * (1.0 + 1e-6),
                            "{storage:?} factor {a} → {b} (allowed {e})"
                        );
                    }
                }
            }
        }
    }
}

/// `‖(x − μ)ᵀ U‖²` and `Σ log U_jj` of a packed factor, in f64.
fn maha_logdet(z: &[f64], mean: &[f32], u: &[f32], covariance: Covariance) -> (Vec<f64>, f64) {
    let d = z.len();
    let diff: Vec<f64> = z.iter().zip(mean).map(|(x, &m)| x - m as f64).collect();
    let y: Vec<f64> = match covariance {
        Covariance::Full => (0..d)
            .map(|j| (0..=j).map(|i| diff[i] * u[packed_index(i, j)] as f64).sum())
            .collect(),
        Covariance::Diag => (0..d).map(|j| diff[j] * u[j] as f64).collect(),
        other => panic!("no reference for covariance {other}"),
    };
    let diag = |j: usize| match covariance {
        Covariance::Full => u[packed_index(j, j)] as f64,
        Covariance::Diag => u[j] as f64,
        other => panic!("no reference for covariance {other}"),
    };
    (y, (0..d).map(|j| diag(j).ln()).sum())
}

/// `|score_stored − score_f32| ≤ Σ_layers max_k δ_k`, where `δ_k` bounds the
/// change of component `k`'s log-density from the per-value contract: with
/// `y = (z − μ)ᵀU`, `|Δy_j| ≤ e_j = Σ_i |z_i − μ_i| ΔU_ij + Σ_i |U'_ij| Δμ_i`,
/// so `|Δ ½‖y‖²| ≤ Σ_j (|y_j| e_j + e_j²/2)`, plus the change of `log|U|`.
/// The score is a log-sum-exp over paths whose terms each move by at most
/// `Σ_layers δ`, so it moves by at most that much.
#[test]
fn score_change_stays_within_the_bound_derived_from_the_contract() {
    let mut rng = StdRng::seed_from_u64(12);
    let mut worst_ratio: f64 = 0.0;
    let mut checked = 0;
    for trial in 0..80 {
        let (case, covariance) = random_spec(&mut rng, trial);
        let exact_bytes = case.spec.encode().unwrap();
        let exact_model = Model::from_bytes(&exact_bytes).unwrap();
        let mut scratch = vec![0.0; exact_model.scratch_len()];
        let mut contributions = vec![0.0; exact_model.num_layers()];
        for storage in STORED {
            let bytes = with_storage(&case.spec, storage).encode().unwrap();
            let model = Model::from_bytes(&bytes).unwrap();
            let stored = ModelSpec::from_model(&model);
            for spread in [0.5, 2.0, 10.0] {
                let x = sample_features(&case, &mut rng, spread);
                let mut bound = 0.0;
                for (i, (exact, st)) in case.spec.layers.iter().zip(&stored.layers).enumerate() {
                    let z: Vec<f64> = project(&case, i, &x[i]).0.iter().copied().collect();
                    let d = z.len();
                    let mut worst: f64 = 0.0;
                    for (c, s) in exact.components.iter().zip(&st.components) {
                        let (y, logdet) = maha_logdet(&z, &c.mean, &c.precision_cholesky, covariance);
                        let (_, logdet_s) = maha_logdet(&z, &s.mean, &s.precision_cholesky, covariance);
                        let du = match storage {
                            Storage::I8 => i8_errors(&c.precision_cholesky, covariance, d),
                            _ => c
                                .precision_cholesky
                                .iter()
                                .map(|&v| f16_error(v as f64))
                                .collect(),
                        };
                        let dmu: Vec<f64> = c.mean.iter().map(|&m| f16_error(m as f64)).collect();
                        let abs_diff: Vec<f64> = z
                            .iter()
                            .zip(&c.mean)
                            .map(|(a, &m)| (a - m as f64).abs())
                            .collect();
                        let mut delta = (logdet_s - logdet).abs();
                        for (j, yj) in y.iter().enumerate() {
                            let rows: Vec<(usize, usize)> = match covariance {
                                Covariance::Full => (0..=j).map(|r| (r, packed_index(r, j))).collect(),
                                Covariance::Diag => vec![(j, j)],
                                other => panic!("no reference for covariance {other}"),
                            };
                            let e: f64 = rows
                                .iter()
                                .map(|&(r, p)| {
                                    abs_diff[r] * du[p] + (s.precision_cholesky[p] as f64).abs() * dmu[r]
                                })
                                .sum();
                            delta += yj.abs() * e + 0.5 * e * e;
                        }
                        worst = worst.max(delta);
                    }
                    bound += worst;
                }
                let refs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
                let a = model.score(&refs, &mut scratch, &mut contributions).unwrap() as f64;
                let b = exact_model
                    .score(&refs, &mut scratch, &mut contributions)
                    .unwrap() as f64;
                // Plus the f32 scorer's own rounding on both sides.
                let slack = 2e-4 * (1.0 + b.abs());
                assert!(
                    (a - b).abs() <= bound + slack,
                    "{storage:?} {covariance:?}: {a} vs {b}, bound {bound}"
                );
                if bound > 1e-3 {
                    worst_ratio = worst_ratio.max((a - b).abs() / bound);
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 80 * 2 * 3);
    // The bound is not vacuous.
    assert!(worst_ratio > 0.02, "worst observed/bound = {worst_ratio}");
}

#[test]
fn reduced_precision_kernels_equal_the_dense_f64_reference() {
    let mut rng = StdRng::seed_from_u64(13);
    for trial in 0..60 {
        let (case, covariance) = random_spec(&mut rng, trial);
        for storage in STORED {
            let bytes = with_storage(&case.spec, storage).encode().unwrap();
            let model = Model::from_bytes(&bytes).unwrap();
            // P = U Uᵀ built densely from the decoded values, explicit quadratic form.
            let reference = Reference::new(&model);
            let mut scratch = vec![0.0; model.scratch_len()];
            let mut contributions = vec![0.0; model.num_layers()];
            for _ in 0..5 {
                let x = sample_features(&case, &mut rng, 1.5);
                let refs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
                let fast = model.score(&refs, &mut scratch, &mut contributions).unwrap() as f64;
                let slow = reference.score(&refs);
                assert!(
                    (fast - slow).abs() <= 1e-4 * (1.0 + slow.abs()),
                    "{storage:?} {covariance:?}: {fast} vs {slow}"
                );
            }
        }
    }
}

#[test]
fn stored_models_re_encode_to_the_same_bytes_and_shrink() {
    let mut rng = StdRng::seed_from_u64(14);
    for covariance in [Covariance::Full, Covariance::Diag] {
        let case = random_case(
            &mut rng,
            &[8, 8],
            &[40, 40],
            covariance,
            Chain::Paper,
            Quantisation::U16,
            false,
        );
        let mut sizes = Vec::new();
        for storage in [Storage::F32, Storage::F16, Storage::I8] {
            let bytes = with_storage(&case.spec, storage).encode().unwrap();
            let again = ModelSpec::from_model(&Model::from_bytes(&bytes).unwrap())
                .encode()
                .unwrap();
            assert_eq!(bytes, again, "{storage:?} {covariance:?} does not round-trip");
            sizes.push(bytes.len());
        }
        assert!(
            sizes[1] < sizes[0] && sizes[2] < sizes[1],
            "{covariance:?}: {sizes:?}"
        );
        if covariance == Covariance::Full {
            // d = 40: 4·(40 + 820) bytes per f32 component against 2·40 + 820 + 2·40.
            assert!(sizes[2] * 10 < sizes[0] * 3, "i8 is not below 0.3x: {sizes:?}");
        }
    }
}

#[test]
fn values_outside_the_half_range_are_a_clear_error() {
    let mut rng = StdRng::seed_from_u64(15);
    let mut case = random_case(
        &mut rng,
        &[2],
        &[3],
        Covariance::Full,
        Chain::Paper,
        Quantisation::F32,
        false,
    );
    case.spec.layers[0].components[1].mean[2] = 1e6;
    for storage in STORED {
        let err = with_storage(&case.spec, storage).encode().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("layer 0") && msg.contains("f16 range") && msg.contains("f32"),
            "{msg}"
        );
    }
    assert!(case.spec.encode().is_ok(), "f32 storage holds it");
}
