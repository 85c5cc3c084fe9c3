//! EM and the Dirichlet-process fit against scikit-learn 1.9 fits of the same
//! data from the same starting point (fixtures made by
//! `tools/fixtures/sklearn_gmm.py`; no Python needed here).

use fit_and_export::gmm::dp::{self, Priors};
use fit_and_export::gmm::mixture::{Cov, Mixture, PrecChol};
use fit_and_export::gmm::{em, kmeans, GmmParams, MixtureKind};
use lsgm::{Chain, Covariance, LayerSpec, Model, ModelSpec};
use nalgebra::{DMatrix, DVector};
use serde_json::Value;

fn fixtures() -> Vec<Value> {
    let text = include_str!("fixtures/sklearn_gmm.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

fn matrix(v: &Value) -> DMatrix<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    let (n, d) = (rows.len(), rows[0].len());
    DMatrix::from_row_iterator(n, d, rows.into_iter().flatten())
}

fn vector(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).unwrap()
}

fn covariance(case: &Value) -> Covariance {
    match case["covariance"].as_str().unwrap() {
        "full" => Covariance::Full,
        _ => Covariance::Diag,
    }
}

fn params(case: &Value) -> GmmParams {
    let k = case["k"].as_u64().unwrap() as usize;
    GmmParams {
        kind: if case["kind"] == "em" {
            MixtureKind::Em { components: k }
        } else {
            MixtureKind::Dp { k_max: k, prune: 0.0 }
        },
        covariance: covariance(case),
        reg_covar: case["reg_covar"].as_f64().unwrap(),
        tol: case["tol"].as_f64().unwrap(),
        max_iter: case["max_iter"].as_u64().unwrap() as usize,
        seed: 0,
    }
}

fn init_resp(case: &Value) -> DMatrix<f64> {
    let labels: Vec<usize> = serde_json::from_value(case["init_labels"].clone()).unwrap();
    kmeans::one_hot(&labels, case["k"].as_u64().unwrap() as usize)
}

/// scikit-learn's `precisions_cholesky_` entry for component k as a factor.
fn sk_prec(case: &Value, k: usize) -> PrecChol {
    // `Covariance` is non-exhaustive; the fixtures hold full and diagonal fits.
    if covariance(case) == Covariance::Full {
        PrecChol::Full(matrix(&case["precisions_cholesky"][k]))
    } else {
        PrecChol::Diag(DVector::from_vec(vector(&case["precisions_cholesky"][k])))
    }
}

fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        (got - want).abs() <= rel * (1.0 + want.abs()),
        "{what}: got {got}, scikit-learn {want}"
    );
}

fn assert_prec_close(a: &PrecChol, b: &PrecChol, rel: f64, what: &str) {
    match (a, b) {
        (PrecChol::Full(a), PrecChol::Full(b)) => {
            for (x, y) in a.iter().zip(b.iter()) {
                assert_close(*x, *y, rel, what);
            }
        }
        (PrecChol::Diag(a), PrecChol::Diag(b)) => {
            for (x, y) in a.iter().zip(b.iter()) {
                assert_close(*x, *y, rel, what);
            }
        }
        _ => panic!("{what}: covariance kinds differ"),
    }
}

#[test]
fn em_reaches_scikit_learns_parameters_from_the_same_start() {
    for case in fixtures().iter().filter(|c| c["kind"] == "em") {
        let name = case["name"].as_str().unwrap();
        let x = matrix(&case["x"]);
        let p = params(case);
        let init = em::init_from_resp(&x, &init_resp(case), &p).unwrap();
        let fitted = em::run(&x, init, &p, &mut |_, _| {}).unwrap();
        assert_eq!(
            fitted.n_iter as u64,
            case["n_iter"].as_u64().unwrap(),
            "{name}: iterations"
        );
        assert_eq!(fitted.converged, case["converged"].as_bool().unwrap(), "{name}");
        assert_eq!(fitted.reseeds, 0, "{name}");
        assert_close(
            fitted.lower_bound,
            case["lower_bound"].as_f64().unwrap(),
            1e-9,
            name,
        );
        let m = &fitted.mixture;
        for k in 0..m.k() {
            assert_close(m.weights[k], case["weights"][k].as_f64().unwrap(), 1e-7, name);
            for (j, v) in vector(&case["means"][k]).iter().enumerate() {
                assert_close(m.means[k][j], *v, 1e-7, name);
            }
            assert_prec_close(&m.prec[k], &sk_prec(case, k), 1e-6, name);
        }
        // The final mean log-likelihood equals scikit-learn's score(X).
        assert_close(
            m.mean_log_likelihood(&x),
            case["score"].as_f64().unwrap(),
            1e-8,
            name,
        );
    }
}

#[test]
fn densities_match_score_samples() {
    for case in fixtures().iter().filter(|c| c["kind"] == "em") {
        let name = case["name"].as_str().unwrap();
        let x = matrix(&case["x"]);
        let k = case["k"].as_u64().unwrap() as usize;
        // A mixture built from scikit-learn's own fitted parameters.
        let prec: Vec<PrecChol> = (0..k).map(|c| sk_prec(case, c)).collect();
        let mix = Mixture {
            weights: vector(&case["weights"]),
            means: (0..k)
                .map(|c| DVector::from_vec(vector(&case["means"][c])))
                .collect(),
            covs: vec![Cov::Diag(DVector::zeros(1)); k],
            prec: prec.clone(),
        };
        let want = vector(&case["score_samples"]);
        let (ll, _) = mix.log_resp(&x);
        for (i, w) in want.iter().enumerate() {
            let rel = (ll[i] - w).abs() / w.abs().max(1e-12);
            assert!(rel <= 1e-6, "{name} row {i}: {} vs {w}", ll[i]);
        }
        // The device's f32 scorer on a one-layer model of the same mixture.
        let spec = ModelSpec {
            source: name.into(),
            chain: Chain::Paper,
            threshold: 0.0,
            calibration_tpr: 0.95,
            quantiles: vec![],
            preprocess: None,
            layers: vec![LayerSpec {
                name: "only".into(),
                pooling: lsgm::model::wire::Pooling::Precomputed,
                dim_in: x.ncols(),
                projection: None,
                covariance: covariance(case),
                storage: lsgm::Storage::F32,
                components: mix.to_specs(),
                median_contribution: 0.0,
            }],
            transitions: vec![],
        };
        let bytes = spec.encode().unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        let mut scratch = vec![0.0; model.scratch_len()];
        let mut c = [0.0f32];
        for (i, w) in want.iter().enumerate() {
            let row: Vec<f32> = x.row(i).iter().map(|&v| v as f32).collect();
            let s = model.score(&[&row], &mut scratch, &mut c).unwrap() as f64;
            assert!(
                (s - w).abs() <= 2e-5 * (1.0 + w.abs()),
                "{name} row {i}: f32 core {s} vs {w}"
            );
        }
    }
}

#[test]
fn dp_fit_matches_scikit_learns_bayesian_gaussian_mixture() {
    for case in fixtures().iter().filter(|c| c["kind"] == "dp") {
        let name = case["name"].as_str().unwrap();
        let x = matrix(&case["x"]);
        let p = params(case);
        let priors = Priors::defaults(&x, p.k(), p.covariance);
        let (fitted, state) = dp::run(&x, &init_resp(case), &priors, &p, &mut |_, _| {}).unwrap();
        assert_eq!(fitted.n_iter as u64, case["n_iter"].as_u64().unwrap(), "{name}");
        let n = x.nrows() as f64;
        // Documented tolerance: 1e-6 relative on the lower bound and the
        // posterior parameters, 1e-6 absolute on the weights.
        assert_close(
            fitted.lower_bound * n,
            case["lower_bound"].as_f64().unwrap(),
            1e-6,
            name,
        );
        for (k, w) in vector(&case["weights"]).iter().enumerate() {
            assert!(
                (fitted.mixture.weights[k] - w).abs() < 1e-6,
                "{name} weight {k}: {} vs {w}",
                fitted.mixture.weights[k]
            );
            for (j, v) in vector(&case["means"][k]).iter().enumerate() {
                assert_close(fitted.mixture.means[k][j], *v, 1e-6, name);
            }
            assert_close(
                state.dof[k],
                case["degrees_of_freedom"][k].as_f64().unwrap(),
                1e-6,
                name,
            );
            assert_close(
                state.mean_precision[k],
                case["mean_precision"][k].as_f64().unwrap(),
                1e-6,
                name,
            );
            assert_prec_close(&fitted.mixture.prec[k], &sk_prec(case, k), 1e-6, name);
        }
        // Pruning keeps the components scikit-learn gives weight to.
        let kept = fitted.mixture.prune(0.01).unwrap().k();
        let sk_kept = vector(&case["weights"]).iter().filter(|&&w| w >= 0.01).count();
        assert_eq!(kept, sk_kept, "{name}");
    }
}
