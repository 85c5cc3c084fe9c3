//! Random LSGM models with known covariances, for tests that need an
//! independent reference. Shared by several test binaries; not every binary
//! uses every helper.
#![allow(dead_code)]

use lsgm::model::wire::Pooling;
use lsgm::quant::quantise;
use lsgm::{Chain, ComponentSpec, Covariance, LayerSpec, ModelSpec, ProjectionSpec, Quantisation};
use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::Rng;

/// One component as the test knows it: mean and covariance in f64.
pub struct TrueComponent {
    pub log_weight: f64,
    pub mean: DVector<f64>,
    pub cov: DMatrix<f64>,
}

/// A model plus everything needed to score it independently.
/// A layer's projection `z = W (x − mean)` and its residual Gaussian
/// (variance per dropped direction, degrees of freedom), as the file stores them.
pub struct Residualised {
    pub w: DMatrix<f64>,
    pub mean: DVector<f64>,
    pub variance: f64,
    pub dof: f64,
}

pub struct Case {
    pub spec: ModelSpec,
    pub layers: Vec<Vec<TrueComponent>>,
    /// Projection (W, m) per layer in f64, if any.
    pub projections: Vec<Option<Residualised>>,
    /// Dequantised transitions as the model stores them, row-major.
    pub transitions: Vec<Vec<f64>>,
    /// The transitions before quantisation.
    pub exact_transitions: Vec<Vec<f64>>,
}

pub fn normal(rng: &mut StdRng) -> f64 {
    // Box–Muller; rand's distributions crate is not worth a dependency here.
    let u1: f64 = rng.random_range(1e-12..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn random_spd(rng: &mut StdRng, d: usize, diag: bool) -> DMatrix<f64> {
    if diag {
        return DMatrix::from_diagonal(&DVector::from_fn(d, |_, _| rng.random_range(0.2..3.0)));
    }
    let b = DMatrix::from_fn(d, d, |_, _| normal(rng));
    &b * b.transpose() + DMatrix::identity(d, d) * 0.3
}

/// scikit-learn's precision Cholesky: Σ = L Lᵀ, U = (L⁻¹)ᵀ, upper triangular.
pub fn precision_cholesky(cov: &DMatrix<f64>) -> DMatrix<f64> {
    let l = cov.clone().cholesky().expect("SPD").l();
    l.try_inverse().expect("invertible").transpose()
}

pub fn pack(u: &DMatrix<f64>, covariance: Covariance) -> Vec<f32> {
    let d = u.nrows();
    match covariance {
        Covariance::Diag => (0..d).map(|i| u[(i, i)] as f32).collect(),
        Covariance::Full => {
            let mut out = vec![0.0f32; d * (d + 1) / 2];
            for j in 0..d {
                for i in 0..=j {
                    out[lsgm::density::packed_index(i, j)] = u[(i, j)] as f32;
                }
            }
            out
        }
        other => panic!("test helper: no packing for covariance {other}"),
    }
}

fn random_weights(rng: &mut StdRng, k: usize) -> Vec<f64> {
    let w: Vec<f64> = (0..k).map(|_| rng.random_range(0.05..1.0)).collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|v| v / s).collect()
}

/// A random model. `dims[i]` is the mixture dimension; with `project`, every
/// other layer gets a random projection from `dims[i] + 1` inputs.
pub fn random_case(
    rng: &mut StdRng,
    ks: &[usize],
    dims: &[usize],
    covariance: Covariance,
    chain: Chain,
    quant: Quantisation,
    project: bool,
) -> Case {
    let mut layers = Vec::new();
    let mut specs = Vec::new();
    let mut projections = Vec::new();
    for (i, (&k, &d)) in ks.iter().zip(dims).enumerate() {
        let weights = random_weights(rng, k);
        let comps: Vec<TrueComponent> = weights
            .iter()
            .map(|&w| TrueComponent {
                log_weight: (w as f32).ln() as f64,
                mean: DVector::from_fn(d, |_, _| 2.0 * normal(rng)),
                cov: random_spd(rng, d, covariance == Covariance::Diag),
            })
            .collect();
        let projection = (project && i % 2 == 1).then(|| {
            // Orthonormal rows (the format requires them): Q of a random
            // (d + 2) × d matrix, transposed.
            let q = DMatrix::from_fn(d + 2, d, |_, _| normal(rng)).qr().q();
            let w = q.transpose();
            let m = DVector::from_fn(d + 2, |_, _| normal(rng));
            let variance = 0.3 + rng.random::<f64>();
            let dof = 2.0 * rng.random::<f64>();
            (w, m, variance as f32 as f64, dof as f32 as f64)
        });
        specs.push(LayerSpec {
            name: format!("layer{i}"),
            pooling: Pooling::Precomputed,
            dim_in: projection.as_ref().map_or(d, |(w, ..)| w.ncols()),
            projection: projection.as_ref().map(|(w, m, variance, dof)| ProjectionSpec {
                mean: m.iter().map(|&v| v as f32).collect(),
                matrix: (0..w.nrows())
                    .flat_map(|r| (0..w.ncols()).map(move |c| (r, c)))
                    .map(|(r, c)| w[(r, c)] as f32)
                    .collect(),
                residual_variance: *variance as f32,
                residual_dof: *dof as f32,
            }),
            covariance,
            storage: lsgm::Storage::F32,
            components: comps
                .iter()
                .map(|c| ComponentSpec {
                    log_weight: c.log_weight as f32,
                    mean: c.mean.iter().map(|&v| v as f32).collect(),
                    precision_cholesky: pack(&precision_cholesky(&c.cov), covariance),
                })
                .collect(),
            median_contribution: -(i as f32),
        });
        // Keep the f64 truth consistent with what the f32 file stores.
        let comps = comps
            .into_iter()
            .map(|c| TrueComponent {
                mean: c.mean.map(|v| v as f32 as f64),
                ..c
            })
            .collect();
        layers.push(comps);
        projections.push(projection.map(|(w, m, variance, dof)| Residualised {
            w: w.map(|v| v as f32 as f64),
            mean: m.map(|v| v as f32 as f64),
            variance,
            dof,
        }));
    }
    let mut transitions = Vec::new();
    let mut exact = Vec::new();
    let mut tables = Vec::new();
    for i in 0..ks.len().saturating_sub(1) {
        let (r, c) = (ks[i], ks[i + 1]);
        let mut t: Vec<f32> = Vec::new();
        for _ in 0..r {
            let mut row: Vec<f64> = (0..c)
                .map(|_| {
                    if rng.random_bool(0.2) {
                        0.0
                    } else {
                        rng.random_range(0.001..1.0)
                    }
                })
                .collect();
            if row.iter().all(|v| *v == 0.0) {
                row[0] = 1.0;
            }
            let s: f64 = row.iter().sum();
            t.extend(row.iter().map(|v| (v / s) as f32));
        }
        let q = quantise(&t, quant).unwrap();
        exact.push(t.iter().map(|&v| v as f64).collect());
        transitions.push((0..t.len()).map(|j| q.get(j) as f64).collect());
        tables.push(q);
    }
    let spec = ModelSpec {
        source: "random test model".into(),
        chain,
        threshold: -10.0,
        calibration_tpr: 0.95,
        quantiles: vec![(0.01, -20.0), (0.05, -10.0), (0.5, -3.0)],
        preprocess: None,
        layers: specs,
        transitions: tables,
    };
    Case {
        spec,
        layers,
        projections,
        transitions,
        exact_transitions: exact,
    }
}

/// `log N(x | μ, Σ)` with an explicit inverse and determinant of Σ.
pub fn log_normal(x: &DVector<f64>, c: &TrueComponent) -> f64 {
    let d = x.len() as f64;
    let inv = c.cov.clone().try_inverse().expect("invertible");
    let diff = x - &c.mean;
    let maha = (diff.transpose() * inv * &diff)[(0, 0)];
    -0.5 * maha - 0.5 * c.cov.determinant().ln() - 0.5 * d * (2.0 * std::f64::consts::PI).ln()
}

/// The mixture-space input of layer `i` for raw features `x`, and the
/// residual's log-density `−(ν/2) ln(2πσ²) − ‖r‖²/(2σ²)` with the residual
/// `r = (x − m) − Wᵀz` formed explicitly (0 without a projection).
pub fn project(case: &Case, i: usize, x: &[f32]) -> (DVector<f64>, f64) {
    let x = DVector::from_iterator(x.len(), x.iter().map(|&v| v as f64));
    match &case.projections[i] {
        Some(p) => {
            let centred = x - &p.mean;
            let z = &p.w * &centred;
            let r = &centred - p.w.transpose() * &z;
            let log_density = -0.5 * p.dof * (2.0 * std::f64::consts::PI * p.variance).ln()
                - r.norm_squared() / (2.0 * p.variance);
            (z, log_density)
        }
        None => (x, 0.0),
    }
}

/// Brute force: enumerate all Π K_i paths, sum their probabilities in log space.
pub fn brute_force(case: &Case, features: &[Vec<f32>], transitions: &[Vec<f64>]) -> f64 {
    let chain = case.spec.chain;
    let ld: Vec<Vec<f64>> = case
        .layers
        .iter()
        .enumerate()
        .map(|(i, comps)| {
            let (z, residual) = project(case, i, &features[i]);
            comps
                .iter()
                .map(|c| {
                    residual + log_normal(&z, c) + if chain.uses_weights(i) { c.log_weight } else { 0.0 }
                })
                .collect()
        })
        .collect();
    let ks: Vec<usize> = ld.iter().map(Vec::len).collect();
    let mut path = vec![0usize; ks.len()];
    let mut terms = Vec::new();
    loop {
        let mut lp = 0.0;
        for i in 0..ks.len() {
            lp += ld[i][path[i]];
            if i > 0 {
                lp += transitions[i - 1][path[i - 1] * ks[i] + path[i]].ln();
            }
        }
        terms.push(lp);
        // Odometer increment.
        let mut i = ks.len();
        loop {
            if i == 0 {
                let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                return m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln();
            }
            i -= 1;
            path[i] += 1;
            if path[i] < ks[i] {
                break;
            }
            path[i] = 0;
        }
    }
}

/// Features near a random component of each layer, with `spread` noise.
pub fn sample_features(case: &Case, rng: &mut StdRng, spread: f64) -> Vec<Vec<f32>> {
    case.spec
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let k = rng.random_range(0..case.layers[i].len());
            match &case.projections[i] {
                // Any input works through a projection; keep it moderate.
                Some(_) => (0..l.dim_in).map(|_| (normal(rng) * spread) as f32).collect(),
                None => case.layers[i][k]
                    .mean
                    .iter()
                    .map(|&m| (m + normal(rng) * spread) as f32)
                    .collect(),
            }
        })
        .collect()
}
