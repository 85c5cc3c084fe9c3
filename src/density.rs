//! Component log-densities from precomputed precision Cholesky factors.
//!
//! For a component with mean `μ` and covariance `Σ`, the fitter stores the
//! upper-triangular `U` with `Σ⁻¹ = U Uᵀ` (scikit-learn's `precisions_cholesky_`)
//! and the constant `c = log|U| − d/2·log 2π`. Then
//!
//! `log N(x | μ, Σ) = c − ½‖(x − μ)ᵀ U‖²`
//!
//! is one triangular product and a dot: no inversion, no determinant, no
//! square root at run time, `d(d+1)/2` multiply-adds per component.
//!
//! **Packing.** `U` is stored column by column, upper triangle only: column `j`
//! holds `U[0..=j, j]` and starts at `j(j+1)/2`. Then `y_j = Σ_{i≤j} (x−μ)_i U_ij`
//! is a contiguous dot product. (A row-major layout with one axpy per row was
//! measured too: 22 % slower on the 16/32/64/128 benchmark model, 4 % faster
//! on the 512-wide one, which is memory-bound either way.) Diagonal
//! covariance stores `1/σ_i` (d values).

use crate::bytes::{dot, LeF32};

/// Covariance structure of a layer's mixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Covariance {
    /// Full covariance: packed upper-triangular precision Cholesky factor.
    Full,
    /// Diagonal covariance: `1/σ` per dimension.
    Diag,
}

impl Covariance {
    /// Number of stored factor values per component of dimension `d`.
    pub const fn factor_len(self, d: usize) -> usize {
        match self {
            Covariance::Full => d * (d + 1) / 2,
            Covariance::Diag => d,
        }
    }
}

/// Index of `U[i][j]` (i ≤ j) in the packed column-major upper triangle.
#[inline]
pub const fn packed_index(i: usize, j: usize) -> usize {
    j * (j + 1) / 2 + i
}

/// `log(2π)`.
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// The Gaussian components of one layer, borrowed from validated model bytes.
#[derive(Debug, Clone, Copy)]
pub struct Gaussians<'a> {
    pub(crate) dim: usize,
    pub(crate) k: usize,
    pub(crate) covariance: Covariance,
    pub(crate) means: LeF32<'a>,
    pub(crate) factors: LeF32<'a>,
    pub(crate) log_norms: LeF32<'a>,
}

impl<'a> Gaussians<'a> {
    /// Dimension of the (projected) feature space.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of components.
    pub fn components(&self) -> usize {
        self.k
    }

    /// Covariance kind.
    pub fn covariance(&self) -> Covariance {
        self.covariance
    }

    /// Mean of component `k`.
    pub fn mean(&self, k: usize) -> LeF32<'a> {
        self.means.slice(k * self.dim, self.dim)
    }

    /// Packed precision factor of component `k` (see the module docs).
    pub fn factor(&self, k: usize) -> LeF32<'a> {
        let n = self.covariance.factor_len(self.dim);
        self.factors.slice(k * n, n)
    }

    /// The stored constant `log|U| − d/2·log 2π` of component `k`.
    pub fn log_norm(&self, k: usize) -> f32 {
        self.log_norms.get(k)
    }

    /// Writes `log N(z | μ_k, Σ_k)` for every component into `out[..K]`.
    /// `diff` is scratch of at least `dim` values. Lengths are checked by the
    /// caller (the model validated them once).
    #[inline]
    pub fn log_densities(&self, z: &[f32], diff: &mut [f32], out: &mut [f32]) {
        let d = self.dim;
        let diff = &mut diff[..d];
        for (k, o) in out[..self.k].iter_mut().enumerate() {
            for ((t, &x), m) in diff.iter_mut().zip(z).zip(self.mean(k).iter()) {
                *t = x - m;
            }
            let f = self.factor(k);
            let maha = match self.covariance {
                Covariance::Full => {
                    let mut s = 0.0f32;
                    for j in 0..d {
                        let y = dot(&diff[..=j], f.slice(packed_index(0, j), j + 1));
                        s += y * y;
                    }
                    s
                }
                Covariance::Diag => diff
                    .iter()
                    .zip(f.iter())
                    .map(|(t, p)| {
                        let y = t * p;
                        y * y
                    })
                    .sum(),
            };
            *o = self.log_norms.get(k) - 0.5 * maha;
        }
    }
}

/// An optional per-layer linear map `z = W (x − m)` (e.g. PCA) applied before
/// the mixture. `W` is row-major `dim × dim_in`.
#[derive(Debug, Clone, Copy)]
pub struct Projection<'a> {
    pub(crate) mean: LeF32<'a>,
    pub(crate) matrix: LeF32<'a>,
}

impl<'a> Projection<'a> {
    /// Centring vector (`dim_in` values).
    pub fn mean(&self) -> LeF32<'a> {
        self.mean
    }

    /// Row-major matrix (`dim × dim_in`).
    pub fn matrix(&self) -> LeF32<'a> {
        self.matrix
    }

    /// `z = W (x − m)`; `centred` is scratch of `x.len()` values.
    #[inline]
    pub fn apply(&self, x: &[f32], centred: &mut [f32], z: &mut [f32]) {
        let n = x.len();
        let centred = &mut centred[..n];
        for ((c, &v), m) in centred.iter_mut().zip(x).zip(self.mean.iter()) {
            *c = v - m;
        }
        for (r, o) in z.iter_mut().enumerate() {
            *o = dot(centred, self.matrix.slice(r * n, n));
        }
    }
}
