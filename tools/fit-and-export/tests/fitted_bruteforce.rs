//! A model fitted end to end scores exactly what brute-force enumeration of
//! every component path says, in f64, for both chain modes.

mod common;

use common::traces;
use fit_and_export::fit::{fit, FitOptions};
use fit_and_export::gmm::{GmmParams, MixtureKind};
use fit_and_export::io::FeatureSet;
use fit_and_export::transitions::Counting;
use lsgm::model::wire::Pooling;
use lsgm::reference::Reference;
use lsgm::{Chain, Covariance, Model, Quantisation, Storage};
use nalgebra::DMatrix;

fn brute_force(model: &Model<'_>, x: &[&[f32]]) -> f64 {
    let r = Reference::new(model);
    let ld: Vec<Vec<f64>> = (0..model.num_layers())
        .map(|i| {
            let mut v = r.log_densities(i, x[i]);
            if model.chain().uses_weights(i) {
                for (k, e) in v.iter_mut().enumerate() {
                    *e += model.layer(i).log_weight(k) as f64;
                }
            }
            v
        })
        .collect();
    let ks: Vec<usize> = ld.iter().map(Vec::len).collect();
    let mut terms = Vec::new();
    let total: usize = ks.iter().product();
    for mut code in 0..total {
        let mut path = vec![0; ks.len()];
        for i in (0..ks.len()).rev() {
            path[i] = code % ks[i];
            code /= ks[i];
        }
        let mut lp = 0.0;
        for i in 0..ks.len() {
            lp += ld[i][path[i]];
            if i > 0 {
                lp += (model.transition(i - 1).get(path[i - 1] * ks[i] + path[i]) as f64).ln();
            }
        }
        terms.push(lp);
    }
    let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
}

#[test]
fn fitted_models_score_like_brute_force() {
    let dims = [2usize, 3, 2];
    let data = traces(1500, &dims, 5);
    let set = FeatureSet {
        names: vec!["a".into(), "b".into(), "c".into()],
        poolings: vec![Pooling::Precomputed; 3],
        layers: data
            .iter()
            .zip(dims)
            .map(|(v, d)| DMatrix::from_row_iterator(v.len() / d, d, v.iter().map(|&x| x as f64)))
            .collect(),
    };
    for (chain, counting, covariance) in [
        (Chain::Paper, Counting::Hard, Covariance::Full),
        (Chain::Markov, Counting::Soft, Covariance::Diag),
    ] {
        let opts = FitOptions {
            gmm: GmmParams {
                kind: MixtureKind::Em { components: 4 },
                covariance,
                reg_covar: 1e-6,
                tol: 1e-3,
                max_iter: 100,
                seed: 3,
            },
            chain,
            counting,
            pseudo_count: 0.5,
            holdout: 0.1,
            max_dim: fit_and_export::dimension::DimRule::Keep,
            quantisation: Quantisation::U16,
            storage: Storage::F32,
        };
        let (bytes, _) = fit(&set, &opts, None, "test".into()).unwrap();
        let model = Model::from_bytes(&bytes).unwrap();
        let mut scratch = vec![0.0; model.scratch_len()];
        let mut c = vec![0.0; 3];
        for row in (0..1500).step_by(37) {
            let x: Vec<&[f32]> = (0..3)
                .map(|l| &data[l][row * dims[l]..(row + 1) * dims[l]])
                .collect();
            let fast = model.score(&x, &mut scratch, &mut c).unwrap() as f64;
            let brute = brute_force(&model, &x);
            assert!(
                (fast - brute).abs() <= 1e-4 * (1.0 + brute.abs()),
                "{chain:?} row {row}: {fast} vs {brute}"
            );
        }
    }
}
