//! PCA projection per layer (`--max-dim`, see [`crate::dimension`]): the
//! top-D principal axes of the training features, stored in the model as
//! `z = W (x − mean)`.

use lsgm::ProjectionSpec;
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// A fitted projection.
#[derive(Debug, Clone)]
pub struct Pca {
    /// Centring vector (`d_in`).
    pub mean: DVector<f64>,
    /// `D × d_in`, rows are unit principal axes in decreasing variance.
    pub matrix: DMatrix<f64>,
    /// Fraction of the total variance the kept axes explain.
    pub explained: f64,
    /// Total variance of the training rows (the trace of their covariance).
    pub total_variance: f64,
    /// The residual Gaussian `(σ², ν)` on the dropped axes (see
    /// `lsgm::density::Projection`): probabilistic PCA's maximum-likelihood
    /// noise from the training spectrum (Tipping & Bishop 1999, Eq. 8) until
    /// [`Pca::fit_residual`] re-estimates it on other rows.
    pub residual: (f64, f64),
    /// Held-out and training rows the residual term was fitted to.
    pub residual_rows: (usize, usize),
}

/// Fewest held-out rows the residual term is fitted to on their own.
pub const MIN_RESIDUAL_ROWS: usize = 200;

/// The residual variance is at least this share of the total variance
/// (spread over the dropped axes), so `f32` rounding of
/// `‖x − m‖² − ‖z‖²` (relative ~1e-7·√d of `‖x − m‖²`) moves an
/// in-distribution residual term by well under a nat even when the dropped
/// axes carry no variance at all.
pub const RESIDUAL_FLOOR: f64 = 1e-3;

/// Every principal axis of the training rows, in decreasing variance.
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// Centring vector (`d_in`).
    pub mean: DVector<f64>,
    /// `d_in × d_in`, rows are unit principal axes in decreasing variance,
    /// each signed so its largest entry is positive (deterministic).
    pub axes: DMatrix<f64>,
    /// Variance along each axis (`d_in`, decreasing, clipped at 0).
    pub variances: Vec<f64>,
}

impl Spectrum {
    /// Eigen-decomposes the sample covariance of `x` (`n × d_in`).
    pub fn fit(x: &DMatrix<f64>) -> Spectrum {
        let (n, d) = (x.nrows() as f64, x.ncols());
        let mean = DVector::from_iterator(d, x.column_iter().map(|c| c.sum() / n));
        let centred = centre(x, &mean);
        let cov = centred.transpose() * &centred / (n - 1.0).max(1.0);
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let mut axes = DMatrix::zeros(d, d);
        for (r, &i) in order.iter().enumerate() {
            let mut v = eig.eigenvectors.column(i).into_owned();
            let big = v
                .iter()
                .copied()
                .fold(0.0f64, |m, e| if e.abs() > m.abs() { e } else { m });
            if big < 0.0 {
                v = -v;
            }
            axes.row_mut(r).copy_from(&v.transpose());
        }
        let variances = order.iter().map(|&i| eig.eigenvalues[i].max(0.0)).collect();
        Spectrum {
            mean,
            axes,
            variances,
        }
    }

    /// For each `D = 1..=d_in`, the share of the squared deviation of the
    /// rows `x` from the training mean that the top-`D` axes keep
    /// (`out[D − 1]`). On held-out rows this measures what a projection
    /// keeps of data it was not fitted on.
    pub fn kept_share(&self, x: &DMatrix<f64>) -> Vec<f64> {
        let centred = centre(x, &self.mean);
        let total: f64 = centred.iter().map(|v| v * v).sum();
        let projected = centred * self.axes.transpose();
        let mut acc = 0.0;
        projected
            .column_iter()
            .map(|c| {
                acc += c.norm_squared();
                if total > 0.0 {
                    (acc / total).min(1.0)
                } else {
                    1.0
                }
            })
            .collect()
    }

    /// The projection onto the top `dim` axes as the file stores it (`f32`
    /// rounded), its residual term fitted (see [`Pca::fit_residual`]) to
    /// the `held_out` rows if there are at least [`MIN_RESIDUAL_ROWS`],
    /// else to the held-out and `train` rows together: the variance of
    /// `‖r‖²` that sets `ν` is too noisy on a few dozen rows, and the
    /// training rows' slightly smaller residuals (the axes were fitted to
    /// them) matter less than that noise. The threshold is calibrated on
    /// held-out scores either way.
    pub fn projection(&self, dim: usize, train: &DMatrix<f64>, held_out: &DMatrix<f64>) -> Pca {
        let mut p = self.truncate(dim).rounded();
        if held_out.nrows() >= MIN_RESIDUAL_ROWS {
            p.fit_residual(held_out);
            p.residual_rows = (held_out.nrows(), 0);
        } else {
            let mut both = DMatrix::zeros(held_out.nrows() + train.nrows(), train.ncols());
            both.rows_mut(0, held_out.nrows()).copy_from(held_out);
            both.rows_mut(held_out.nrows(), train.nrows()).copy_from(train);
            p.fit_residual(&both);
            p.residual_rows = (held_out.nrows(), train.nrows());
        }
        p
    }

    /// The projection onto the top `dim` axes.
    pub fn truncate(&self, dim: usize) -> Pca {
        let dim = dim.min(self.variances.len());
        let total: f64 = self.variances.iter().sum();
        let kept: f64 = self.variances[..dim].iter().sum();
        let dof = self.variances.len() - dim;
        Pca {
            mean: self.mean.clone(),
            matrix: self.axes.rows(0, dim).into_owned(),
            explained: if total > 0.0 { kept / total } else { 1.0 },
            total_variance: total,
            residual: residual_gaussian(total - kept, dof, total),
            residual_rows: (0, 0),
        }
    }
}

/// `(σ², ν)` for a mean squared residual `dropped` spread over `dof` axes,
/// `σ²` floored at [`RESIDUAL_FLOOR`] of the total variance per axis (and at
/// the smallest normal `f32`).
fn residual_gaussian(dropped: f64, dof: usize, total: f64) -> (f64, f64) {
    let per_axis = dof.max(1) as f64;
    let floor = (RESIDUAL_FLOOR * total / per_axis).max(f64::from(f32::MIN_POSITIVE));
    ((dropped.max(0.0) / per_axis).max(floor), dof as f64)
}

fn centre(x: &DMatrix<f64>, mean: &DVector<f64>) -> DMatrix<f64> {
    let mut centred = x.clone();
    for (j, mut col) in centred.column_iter_mut().enumerate() {
        col.iter_mut().for_each(|v| *v -= mean[j]);
    }
    centred
}

impl Pca {
    /// Projects rows: `(X − 1 meanᵀ) Wᵀ`.
    pub fn apply(&self, x: &DMatrix<f64>) -> DMatrix<f64> {
        centre(x, &self.mean) * self.matrix.transpose()
    }

    /// `‖r‖²` per row of `x`, `r = (x − m) − Wᵀ W (x − m)` the part the
    /// projection drops.
    pub fn residual_norms(&self, x: &DMatrix<f64>) -> Vec<f64> {
        let centred = centre(x, &self.mean);
        let z = &centred * self.matrix.transpose();
        let back = &z * &self.matrix;
        (centred - back).row_iter().map(|r| r.norm_squared()).collect()
    }

    /// Fits the residual term to the rows `x` (held-out rows when there are
    /// any, so a projection fitted on fewer rows than dimensions is not
    /// judged by its own rank-deficient training spectrum).
    ///
    /// `‖r‖²` is a weighted sum of the dropped axes' squared coordinates;
    /// Box (1954, Theorem 3.1) approximates its law by a scaled `g·χ²_h`
    /// matched to its mean `m` and variance `v`: `h = 2m²/v`, `g = v/2m`
    /// (the approximation behind the SPE or Q statistic of PCA monitoring,
    /// Jackson & Mudholkar 1979). The term is then an isotropic Gaussian with
    /// `ν = h` degrees of freedom and `σ² = g`, whose in-distribution spread
    /// (`√(h/2)` nats) matches that of `‖r‖²`. Probabilistic PCA's
    /// `ν = dim_in − dim`, `σ² = m/ν` (Tipping & Bishop 1999) is the
    /// special case of an isotropic residual; on an uneven residual spectrum
    /// it over-weights the term by `(dim_in − dim)/h` and cost detection in
    /// our tests (76 vs 99 of 100 MNIST digits flagged on the demo network).
    /// It is the fallback when `x` has fewer than two rows or `v = 0`.
    /// `h` is at most `dim_in − dim`; `σ²` is floored at
    /// [`RESIDUAL_FLOOR`] of the total variance per dropped axis.
    pub fn fit_residual(&mut self, x: &DMatrix<f64>) {
        if x.nrows() == 0 {
            return;
        }
        let r2 = self.residual_norms(x);
        let n = r2.len() as f64;
        let mean = r2.iter().sum::<f64>() / n;
        let dof = self.matrix.ncols() - self.matrix.nrows();
        self.residual = residual_gaussian(mean, dof, self.total_variance);
        if r2.len() > 1 && mean > 0.0 {
            let var = r2.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
            if var > 0.0 {
                let h = (2.0 * mean * mean / var).min(dof as f64);
                let floor = residual_gaussian(0.0, dof, self.total_variance).0;
                self.residual = ((mean / h).max(floor), h);
            }
        }
    }

    /// The residual term's log-density for each row of `x`, with `σ²` and
    /// `ν` rounded to `f32` as the file stores them.
    pub fn residual_log_density(&self, x: &DMatrix<f64>) -> Vec<f64> {
        let (variance, dof) = self.residual;
        let (variance, dof) = (variance as f32 as f64, dof as f32 as f64);
        let norm = -0.5 * dof * (2.0 * std::f64::consts::PI * variance).ln();
        self.residual_norms(x)
            .into_iter()
            .map(|r2| norm - r2 / (2.0 * variance))
            .collect()
    }

    /// The core's projection spec (f32). Projection is then applied to f32
    /// features on the device, exactly as stored here.
    pub fn to_spec(&self) -> ProjectionSpec {
        let (variance, dof) = self.residual;
        ProjectionSpec {
            mean: self.mean.iter().map(|&v| v as f32).collect(),
            matrix: self.matrix.transpose().iter().map(|&v| v as f32).collect(),
            residual_variance: variance as f32,
            residual_dof: dof as f32,
        }
    }

    /// The projection with the f32-rounded parameters the device will use.
    pub fn rounded(&self) -> Pca {
        Pca {
            mean: self.mean.map(|v| v as f32 as f64),
            matrix: self.matrix.map(|v| v as f32 as f64),
            explained: self.explained,
            total_variance: self.total_variance,
            residual: self.residual,
            residual_rows: self.residual_rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_dominant_axis_and_orders_by_variance() {
        // Points along (3, 4)/5 with ±0.1 on the orthogonal axis at every t, so the
        // noise is exactly uncorrelated with the signal.
        let rows: Vec<f64> = (0..200)
            .flat_map(|i| {
                let t = ((i / 2) as f64 - 49.5) / 5.0;
                let e = if i % 2 == 0 { 0.1 } else { -0.1 };
                [0.6 * t - 0.8 * e + 1.0, 0.8 * t + 0.6 * e - 2.0]
            })
            .collect();
        let x = DMatrix::from_row_slice(200, 2, &rows);
        let p = Spectrum::fit(&x).truncate(2);
        assert!(
            (p.matrix[(0, 0)] - 0.6).abs() < 1e-9 && (p.matrix[(0, 1)] - 0.8).abs() < 1e-9,
            "{}",
            p.matrix
        );
        assert!((p.mean[0] - 1.0).abs() < 0.1 && (p.mean[1] + 2.0).abs() < 0.1);
        let one = Spectrum::fit(&x).truncate(1);
        assert!(one.explained > 0.999 && one.explained < 1.0);
        assert_eq!(one.apply(&x).ncols(), 1);
    }
}
