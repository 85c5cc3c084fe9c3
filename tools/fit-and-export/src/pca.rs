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
}

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

    /// The projection onto the top `dim` axes.
    pub fn truncate(&self, dim: usize) -> Pca {
        let dim = dim.min(self.variances.len());
        let total: f64 = self.variances.iter().sum();
        let kept: f64 = self.variances[..dim].iter().sum();
        Pca {
            mean: self.mean.clone(),
            matrix: self.axes.rows(0, dim).into_owned(),
            explained: if total > 0.0 { kept / total } else { 1.0 },
        }
    }
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

    /// The core's projection spec (f32). Projection is then applied to f32
    /// features on the device, exactly as stored here.
    pub fn to_spec(&self) -> ProjectionSpec {
        ProjectionSpec {
            mean: self.mean.iter().map(|&v| v as f32).collect(),
            matrix: self.matrix.transpose().iter().map(|&v| v as f32).collect(),
        }
    }

    /// The projection with the f32-rounded parameters the device will use.
    pub fn rounded(&self) -> Pca {
        Pca {
            mean: self.mean.map(|v| v as f32 as f64),
            matrix: self.matrix.map(|v| v as f32 as f64),
            explained: self.explained,
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
