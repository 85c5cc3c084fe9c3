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
//!
//! **Storage.** Factors are 98 % of a full-covariance model file, so they can
//! be stored smaller (see [`crate::Storage`]): as `f16`, or as `i8` codes with one
//! `f16` scale per column — `U_ij = s_j · q_ij` — so that each `y_j` is an
//! integer-weight dot product times one scale. The per-column scale follows
//! the triangle's structure: column `j` produces `y_j = (x_j − x̂_j)/σ_j`, the
//! residual of feature `j` regressed on features `0..j`, so its entries are
//! the regression coefficients (and 1) over one conditional deviation `σ_j`,
//! whereas a row mixes the deviations of every later feature. Diagonal factors
//! have one scale per component.
//! The stored `log|U|` is computed from the dequantised factor, so a
//! quantised component is still an exactly normalised Gaussian — just a
//! slightly different one.

use crate::bytes::{dot, dot_f16, dot_i8, Floats, LeF16, LeF32};
use crate::kind::{Covariance, Storage};

impl Covariance {
    /// Free parameters of one component of dimension `d`: the mean plus the
    /// covariance (what a rows-per-parameter rule counts).
    pub const fn free_parameters(self, d: usize) -> usize {
        match self {
            Covariance::Full => d * (d + 3) / 2,
            Covariance::Diag => 2 * d,
        }
    }

    /// Number of stored factor values per component of dimension `d`.
    pub const fn factor_len(self, d: usize) -> usize {
        match self {
            Covariance::Full => d * (d + 1) / 2,
            Covariance::Diag => d,
        }
    }
}

/// A layer's precision factors as stored: `K × factor_len` values, component-major.
#[derive(Debug, Clone, Copy)]
pub enum FactorData<'a> {
    /// `f32` values.
    F32(LeF32<'a>),
    /// `f16` values.
    F16(LeF16<'a>),
    /// `i8` codes (as bytes) and one `f16` scale per group: per column for
    /// full covariance (`K × dim` scales), per component for diagonal (`K`).
    I8 {
        /// Group scales.
        scales: LeF16<'a>,
        /// Codes.
        codes: &'a [u8],
    },
}

/// The precision factor of one component (see the module docs), dequantised on read.
#[derive(Debug, Clone, Copy)]
pub struct Factor<'a> {
    data: FactorData<'a>,
    covariance: Covariance,
    dim: usize,
}

impl<'a> Factor<'a> {
    /// Number of stored values (`covariance.factor_len(dim)`).
    pub fn len(&self) -> usize {
        self.covariance.factor_len(self.dim)
    }

    /// True for a zero-dimensional factor (never in a valid model).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Packed value `i` (full: column-major upper triangle; diag: `1/σ_i`).
    pub fn get(&self, i: usize) -> f32 {
        match self.data {
            FactorData::F32(v) => v.get(i),
            FactorData::F16(v) => v.get(i),
            FactorData::I8 { scales, codes } => {
                let group = match self.covariance {
                    Covariance::Full => column_of(i),
                    Covariance::Diag => 0,
                };
                scales.get(group) * (codes[i] as i8 as f32)
            }
        }
    }

    /// Diagonal entry `U_jj`.
    pub fn diag(&self, j: usize) -> f32 {
        match self.covariance {
            Covariance::Full => self.get(packed_index(j, j)),
            Covariance::Diag => self.get(j),
        }
    }

    /// Entry `U_ij` of the upper-triangular factor as a dense `dim × dim`
    /// matrix: 0 below the diagonal, and off the diagonal for diagonal
    /// covariance.
    pub fn entry(&self, i: usize, j: usize) -> f32 {
        match self.covariance {
            _ if i == j => self.diag(j),
            Covariance::Full if i < j => self.get(packed_index(i, j)),
            _ => 0.0,
        }
    }

    /// All values in packed order.
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        let this = *self;
        (0..this.len()).map(move |i| this.get(i))
    }

    /// How the values are stored.
    pub fn data(&self) -> FactorData<'a> {
        self.data
    }

    /// `‖(x − μ)ᵀ U‖²` for `diff = x − μ`.
    #[inline]
    fn mahalanobis(&self, diff: &[f32]) -> f32 {
        let d = self.dim;
        match (self.covariance, self.data) {
            (Covariance::Full, FactorData::F32(f)) => (0..d)
                .map(|j| {
                    let y = dot(&diff[..=j], f.slice(packed_index(0, j), j + 1));
                    y * y
                })
                .sum(),
            (Covariance::Full, FactorData::F16(f)) => (0..d)
                .map(|j| {
                    let y = dot_f16(&diff[..=j], f.slice(packed_index(0, j), j + 1));
                    y * y
                })
                .sum(),
            (Covariance::Full, FactorData::I8 { scales, codes }) => (0..d)
                .map(|j| {
                    let start = packed_index(0, j);
                    let y = scales.get(j) * dot_i8(&diff[..=j], &codes[start..=start + j]);
                    y * y
                })
                .sum(),
            (Covariance::Diag, FactorData::F32(f)) => {
                diff.iter().zip(f.iter()).map(|(t, p)| (t * p) * (t * p)).sum()
            }
            (Covariance::Diag, FactorData::F16(f)) => {
                diff.iter().zip(f.iter()).map(|(t, p)| (t * p) * (t * p)).sum()
            }
            (Covariance::Diag, FactorData::I8 { scales, codes }) => {
                let s = scales.get(0);
                let sum: f32 = diff
                    .iter()
                    .zip(codes)
                    .map(|(t, &c)| {
                        let y = t * (c as i8 as f32);
                        y * y
                    })
                    .sum();
                s * s * sum
            }
        }
    }
}

/// Column `j` of packed index `i`: the `j` with `j(j+1)/2 ≤ i < (j+1)(j+2)/2`.
fn column_of(i: usize) -> usize {
    // Float estimate, then an exact integer correction either way.
    let mut j = ((libm::sqrt(8.0 * i as f64 + 1.0) - 1.0) / 2.0) as usize;
    while j * (j + 1) / 2 > i {
        j -= 1;
    }
    while (j + 1) * (j + 2) / 2 <= i {
        j += 1;
    }
    j
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
    pub(crate) means: Floats<'a>,
    pub(crate) factors: FactorData<'a>,
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

    /// How the means and factors are stored.
    pub fn storage(&self) -> Storage {
        match self.factors {
            FactorData::F32(_) => Storage::F32,
            FactorData::F16(_) => Storage::F16,
            FactorData::I8 { .. } => Storage::I8,
        }
    }

    /// Mean of component `k`.
    pub fn mean(&self, k: usize) -> Floats<'a> {
        self.means.slice(k * self.dim, self.dim)
    }

    /// Packed precision factor of component `k` (see the module docs).
    pub fn factor(&self, k: usize) -> Factor<'a> {
        let n = self.covariance.factor_len(self.dim);
        let data = match self.factors {
            FactorData::F32(v) => FactorData::F32(v.slice(k * n, n)),
            FactorData::F16(v) => FactorData::F16(v.slice(k * n, n)),
            FactorData::I8 { scales, codes } => {
                let groups = match self.covariance {
                    Covariance::Full => self.dim,
                    Covariance::Diag => 1,
                };
                FactorData::I8 {
                    scales: scales.slice(k * groups, groups),
                    codes: &codes[k * n..(k + 1) * n],
                }
            }
        };
        Factor {
            data,
            covariance: self.covariance,
            dim: self.dim,
        }
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
            self.mean(k).sub_from(&z[..d], diff);
            let maha = self.factor(k).mahalanobis(diff);
            *o = self.log_norms.get(k) - 0.5 * maha;
        }
    }
}

/// One layer's mixture as the scorer reads it: an optional projection, the
/// Gaussian components and their log weights. Built only by
/// [`crate::Model::from_bytes`], which has checked every length.
#[derive(Debug, Clone, Copy)]
pub struct Mixture<'a> {
    pub(crate) dim_in: usize,
    pub(crate) projection: Option<Projection<'a>>,
    pub(crate) gaussians: Gaussians<'a>,
    pub(crate) log_weights: LeF32<'a>,
}

impl<'a> Mixture<'a> {
    /// Length of the feature vector the layer takes (before projection).
    pub fn dim_in(&self) -> usize {
        self.dim_in
    }
    /// Dimension the components live in (after projection).
    pub fn dim(&self) -> usize {
        self.gaussians.dim
    }
    /// Number of components `K`.
    pub fn components(&self) -> usize {
        self.gaussians.k
    }
    /// The projection, if any.
    pub fn projection(&self) -> Option<Projection<'a>> {
        self.projection
    }
    /// The components.
    pub fn gaussians(&self) -> Gaussians<'a> {
        self.gaussians
    }
    /// `log φ_k`.
    pub fn log_weight(&self, k: usize) -> f32 {
        self.log_weights.get(k)
    }

    /// `ℓ_k = log N(x | k) [+ log φ_k]` for every component into `out[..K]`,
    /// where a projected layer's density includes its residual term. `x` has
    /// `dim_in` values; `centred` (`dim_in` if projected), `z` and `diff`
    /// (`dim`) are scratch. Returns `max_k ℓ_k`.
    pub(crate) fn log_densities(
        &self,
        x: &[f32],
        with_weights: bool,
        (centred, z, diff): (&mut [f32], &mut [f32], &mut [f32]),
        out: &mut [f32],
    ) -> f32 {
        let d = self.dim();
        let (z, residual): (&[f32], f32) = match &self.projection {
            Some(p) => {
                let r = p.apply(x, centred, &mut z[..d]);
                (&z[..d], r)
            }
            None => (x, 0.0),
        };
        let out = &mut out[..self.components()];
        self.gaussians.log_densities(z, diff, out);
        for (c, v) in out.iter_mut().enumerate() {
            *v += residual
                + if with_weights {
                    self.log_weights.get(c)
                } else {
                    0.0
                };
        }
        out.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }
}

/// An optional per-layer linear map `z = W (x − m)` (e.g. PCA) applied before
/// the mixture, with a term for what it drops. `W` is row-major
/// `dim × dim_in` with orthonormal rows.
///
/// The residual `r = (x − m) − Wᵀz` lies in the `dim_in − dim` dropped
/// directions; without a term for it, a frame far out only along those
/// directions would look normal. The term is the log-density of an isotropic
/// Gaussian with `ν` degrees of freedom and variance `σ²` at `r`:
/// `−(ν/2) ln(2π σ²) − ‖r‖² / (2σ²)`, with `‖r‖² = ‖x − m‖² − ‖z‖²`
/// (Pythagoras, since the rows are orthonormal). With `ν = dim_in − dim` it
/// is probabilistic PCA's noise model (Tipping & Bishop 1999, Eq. 6); the
/// fitter matches `ν` and `σ²` to held-out residuals (Box 1954, see
/// `fit-and-export`'s `pca.rs`). It is the same for every component, so it
/// adds to the layer's contribution.
#[derive(Debug, Clone, Copy)]
pub struct Projection<'a> {
    pub(crate) mean: LeF32<'a>,
    pub(crate) matrix: LeF32<'a>,
    pub(crate) residual_variance: f32,
    pub(crate) residual_dof: f32,
    /// `−(ν/2) ln(2π σ²)`.
    pub(crate) residual_log_norm: f32,
    /// `1 / (2σ²)`.
    pub(crate) residual_half_precision: f32,
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

    /// Variance `σ²` of each dropped direction (feature units squared).
    pub fn residual_variance(&self) -> f32 {
        self.residual_variance
    }

    /// Degrees of freedom `ν` of the residual term (at most `dim_in − dim`).
    pub fn residual_dof(&self) -> f32 {
        self.residual_dof
    }

    /// The residual log-density for a squared residual norm `r2`.
    #[inline]
    pub fn residual_log_density(&self, r2: f32) -> f32 {
        self.residual_log_norm - self.residual_half_precision * r2
    }

    /// `z = W (x − m)`; `centred` is scratch of `x.len()` values. Returns the
    /// residual log-density (see the type's docs); `‖r‖²` is clamped at 0
    /// against rounding.
    #[inline]
    pub fn apply(&self, x: &[f32], centred: &mut [f32], z: &mut [f32]) -> f32 {
        let n = x.len();
        let centred = &mut centred[..n];
        for ((c, &v), m) in centred.iter_mut().zip(x).zip(self.mean.iter()) {
            *c = v - m;
        }
        for (r, o) in z.iter_mut().enumerate() {
            *o = dot(centred, self.matrix.slice(r * n, n));
        }
        let r2 = sum_of_squares(centred) - sum_of_squares(z);
        self.residual_log_density(r2.max(0.0))
    }
}

/// `Σ v²` with eight independent accumulators (pairwise-like rounding, and
/// vectorisable).
#[inline]
fn sum_of_squares(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|x| x * x).sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x * x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_of_inverts_packed_index() {
        for j in 0..300 {
            for i in 0..=j {
                assert_eq!(column_of(packed_index(i, j)), j);
            }
        }
    }
}
