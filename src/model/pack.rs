//! Packing: a [`ModelSpec`]'s numbers as the little-endian byte arrays of the
//! wire format, in the owned buffers that [`super::PackedModel`] lends to
//! the [`wire`] enums it builds.
//!
//! The expensive part is [`GaussianBytes`], a layer's means and precision
//! factors at its [`Storage`], with `log|U|` computed from the factors as a
//! reader will decode them. Everything else ([`SharedBytes`]: projections,
//! log weights, transition tables, preprocessing) does not depend on the
//! storage and is packed once per model.
//!
//! Rounding is to nearest (ties to even) everywhere. An `i8` column's scale is
//! its largest magnitude over 127, rounded *up* to the next `f16`, so no code
//! leaves `[-127, 127]`; a diagonal entry never rounds to code 0 (it is the
//! square root of a conditional precision and must stay positive). Packing
//! the values a reader returns gives the same bytes again, which is what lets
//! `requantise` and `inspect --json` round-trip a quantised model.

use super::spec::{LayerSpec, ModelSpec};
use super::wire;
use crate::density::{packed_index, LN_2PI};
use crate::kind::{Covariance, Storage};
use crate::quant::QuantisedTable;
use crate::Error;
use alloc::vec;
use alloc::vec::Vec;
use half::f16;

/// `f32` values as little-endian bytes.
pub(crate) fn le32(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

fn le16(values: &[f16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect()
}

fn storage_error(layer: usize, reason: &'static str) -> Error {
    Error::Storage {
        layer: layer.min(u8::MAX as usize) as u8,
        reason,
    }
}

/// `values` rounded to `f16`, or `None` when one overflows the half range.
fn halves(values: &[f32]) -> Option<Vec<f16>> {
    values
        .iter()
        .map(|&v| Some(f16::from_f32(v)).filter(|h| h.is_finite()))
        .collect()
}

/// `log|U| − d/2 · log 2π` of a packed factor, computed in `f64`; NaN when
/// the factor is too short or a diagonal is not positive (the reader then
/// rejects it). Applied to the factor as rounded for storage.
fn log_norm(factor: &[f32], d: usize, covariance: Covariance) -> f32 {
    let mut log_det = 0.0f64;
    for j in 0..d {
        let i = match covariance {
            Covariance::Full => packed_index(j, j),
            Covariance::Diag => j,
        };
        match factor.get(i) {
            Some(&v) if v > 0.0 => log_det += libm::log(v as f64),
            _ => return f32::NAN,
        }
    }
    (log_det - 0.5 * d as f64 * LN_2PI) as f32
}

/// A layer's means, precision factors and log norms packed at one
/// [`Storage`]: the arrays behind [`wire::Means`], [`wire::Factors`] and
/// `wire::Layer::log_norms`.
#[derive(Debug, Clone)]
pub(crate) struct GaussianBytes {
    storage: Storage,
    means: Vec<u8>,
    /// One `f16` scale per `i8` group (empty for the other storages).
    scales: Vec<u8>,
    factors: Vec<u8>,
    log_norms: Vec<u8>,
}

/// One layer's packed factors, before the means join them.
#[derive(Default)]
struct Factors {
    scales: Vec<u8>,
    values: Vec<u8>,
    log_norms: Vec<u8>,
}

impl GaussianBytes {
    /// Packs the components of layer `layer` (its index, for errors) at
    /// `storage`. Factors are packed before means, so a layer whose factors
    /// and means both overflow reports its factors.
    pub(crate) fn pack(layer: usize, l: &LayerSpec, storage: Storage) -> Result<Self, Error> {
        let d = l.dim();
        let factors: Vec<&[f32]> = l
            .components
            .iter()
            .map(|c| c.precision_cholesky.as_slice())
            .collect();
        if factors.iter().any(|f| f.len() != l.covariance.factor_len(d)) {
            return Err(Error::Invalid {
                layer: Some(layer.min(u8::MAX as usize) as u8),
                reason: "precision factor has the wrong length",
            });
        }
        let packed = match storage {
            Storage::F32 => Factors {
                scales: Vec::new(),
                values: le32(factors.iter().flat_map(|f| f.iter().copied())),
                log_norms: le32(factors.iter().map(|f| log_norm(f, d, l.covariance))),
            },
            Storage::F16 => factors_f16(layer, &factors, d, l.covariance)?,
            Storage::I8 => factors_i8(layer, &factors, d, l.covariance)?,
        };
        let means: Vec<f32> = l.components.iter().flat_map(|c| c.mean.iter().copied()).collect();
        let means = match storage {
            Storage::F32 => le32(means),
            Storage::F16 | Storage::I8 => le16(
                &halves(&means)
                    .ok_or_else(|| storage_error(layer, "a mean exceeds the f16 range (±65504)"))?,
            ),
        };
        Ok(GaussianBytes {
            storage,
            means,
            scales: packed.scales,
            factors: packed.values,
            log_norms: packed.log_norms,
        })
    }

    /// The storage these arrays are packed at.
    pub(crate) fn storage(&self) -> Storage {
        self.storage
    }

    /// The means as the wire stores them (`f16` for `I8` storage).
    pub(crate) fn means(&self) -> wire::Means<'_> {
        let values = &self.means;
        match self.storage {
            Storage::F32 => wire::Means::F32 { values },
            Storage::F16 | Storage::I8 => wire::Means::F16 { values },
        }
    }

    /// The precision factors as the wire stores them.
    pub(crate) fn factors(&self) -> wire::Factors<'_> {
        let values = &self.factors;
        match self.storage {
            Storage::F32 => wire::Factors::F32 { values },
            Storage::F16 => wire::Factors::F16 { values },
            Storage::I8 => wire::Factors::I8 {
                scales: &self.scales,
                codes: values,
            },
        }
    }

    /// `log|U_k| − dim/2 · log 2π` per component, `f32` LE.
    pub(crate) fn log_norms(&self) -> &[u8] {
        &self.log_norms
    }
}

/// `f16` factors; log norms from the rounded values.
fn factors_f16(layer: usize, factors: &[&[f32]], d: usize, covariance: Covariance) -> Result<Factors, Error> {
    let mut out = Factors::default();
    for f in factors {
        let h = halves(f)
            .ok_or_else(|| storage_error(layer, "a precision factor exceeds the f16 range (±65504)"))?;
        let decoded: Vec<f32> = h.iter().map(|v| v.to_f32()).collect();
        out.log_norms
            .extend(log_norm(&decoded, d, covariance).to_le_bytes());
        out.values.extend(le16(&h));
    }
    Ok(out)
}

/// `i8` codes with one `f16` scale per column of the packed triangle (full)
/// or per component (diag); log norms from `scale · code`.
fn factors_i8(layer: usize, factors: &[&[f32]], d: usize, covariance: Covariance) -> Result<Factors, Error> {
    // (start, length) of each scale group: column j of the packed triangle
    // holds U_0j..U_jj, the diagonal last.
    let groups: Vec<(usize, usize)> = match covariance {
        Covariance::Full => (0..d).map(|j| (packed_index(0, j), j + 1)).collect(),
        Covariance::Diag => vec![(0, d)],
    };
    let mut out = Factors::default();
    let mut scales = Vec::new();
    for f in factors {
        let mut decoded = vec![0.0f32; f.len()];
        for &(start, len) in &groups {
            let col = &f[start..start + len];
            let scale = i8_scale(col).map_err(|r| storage_error(layer, r))?;
            let s = scale.to_f32();
            scales.push(scale);
            for (i, &v) in col.iter().enumerate() {
                let is_diag = covariance == Covariance::Diag || i + 1 == len;
                let mut q = libm::roundf(v / s).clamp(-127.0, 127.0) as i8;
                if is_diag && q < 1 {
                    q = 1;
                }
                out.values.push(q as u8);
                decoded[start + i] = s * q as f32;
            }
        }
        out.log_norms
            .extend(log_norm(&decoded, d, covariance).to_le_bytes());
    }
    out.scales = le16(&scales);
    Ok(out)
}

/// The `f16` scale of one `i8` group: `max |v| / 127`, rounded up.
fn i8_scale(group: &[f32]) -> Result<f16, &'static str> {
    let max = group.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let want = max / 127.0;
    if !(want.is_finite() && want > 0.0) {
        return Err("a precision factor column is zero or non-finite");
    }
    let mut h = f16::from_f32(want);
    if h.to_f32() < want {
        h = f16::from_bits(h.to_bits() + 1);
    }
    if !h.is_finite() {
        return Err("a precision factor exceeds the i8 × f16 range (8.3e6)");
    }
    // Below the normal f16 range the scale itself loses precision.
    if h.to_f32() > want * (1.0 + 1.0 / 512.0) {
        return Err("a precision factor column is below the f16 scale range (all entries < 0.0078)");
    }
    Ok(h)
}

/// A layer's storage-independent arrays.
#[derive(Debug, Clone)]
pub(crate) struct LayerBytes {
    /// The projection's mean and matrix.
    pub(crate) projection: Option<(Vec<u8>, Vec<u8>)>,
    /// `log φ_k`.
    pub(crate) log_weights: Vec<u8>,
}

/// Every array of a model that does not depend on the storage of its means
/// and factors.
#[derive(Debug, Clone)]
pub(crate) struct SharedBytes {
    /// Per layer.
    pub(crate) layers: Vec<LayerBytes>,
    /// Per transition table: its values (`F32`), codes (`U16`) or codebook
    /// (`U8`, whose codes are already bytes), see [`transition`].
    pub(crate) tables: Vec<Vec<u8>>,
    /// The preprocessing's mean and std.
    pub(crate) preprocess: Option<(Vec<u8>, Vec<u8>)>,
}

impl SharedBytes {
    /// Packs `spec`'s storage-independent arrays (cannot fail).
    pub(crate) fn pack(spec: &ModelSpec) -> SharedBytes {
        let layers = spec
            .layers
            .iter()
            .map(|l| LayerBytes {
                projection: l
                    .projection
                    .as_ref()
                    .map(|p| (le32(p.mean.iter().copied()), le32(p.matrix.iter().copied()))),
                log_weights: le32(l.components.iter().map(|c| c.log_weight)),
            })
            .collect();
        let tables = spec
            .transitions
            .iter()
            .map(|t| match t {
                QuantisedTable::F32(values) => le32(values.iter().copied()),
                QuantisedTable::U16 { codes, .. } => codes.iter().flat_map(|c| c.to_le_bytes()).collect(),
                QuantisedTable::U8 { codebook, .. } => le32(codebook.iter().copied()),
            })
            .collect();
        let preprocess = spec
            .preprocess
            .as_ref()
            .map(|p| (le32(p.mean.iter().copied()), le32(p.std.iter().copied())));
        SharedBytes {
            layers,
            tables,
            preprocess,
        }
    }
}

/// The wire form of table `t` over `bytes`, its packed array in
/// [`SharedBytes::tables`].
pub(crate) fn transition<'a>(t: &'a QuantisedTable, bytes: &'a [u8]) -> wire::Transition<'a> {
    match t {
        QuantisedTable::F32(_) => wire::Transition::F32 { values: bytes },
        QuantisedTable::U16 { base, .. } => wire::Transition::U16 {
            base: *base,
            codes: bytes,
        },
        QuantisedTable::U8 { codes, .. } => wire::Transition::U8 {
            codebook: bytes,
            codes,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i8_codes_stay_in_range_and_keep_the_diagonal_positive() {
        // Column of 3 (dim 2, second column): a tiny diagonal under a big off-diagonal.
        let f = [2.0f32, -100.0, 1e-3];
        let packed = factors_i8(0, &[&f], 2, Covariance::Full).unwrap();
        let (scales, codes) = (&packed.scales, &packed.values);
        assert_eq!(scales.len(), 2 * 2);
        assert_eq!(codes[0] as i8, 127);
        assert_eq!(codes[1] as i8, -127);
        assert_eq!(codes[2] as i8, 1, "diagonal clamped to code 1");
        let scale =
            |j: usize| f16::from_bits(u16::from_le_bytes([scales[2 * j], scales[2 * j + 1]])).to_f32();
        let decoded = [
            scale(0) * codes[0] as i8 as f32,
            scale(1) * codes[1] as i8 as f32,
            scale(1) * codes[2] as i8 as f32,
        ];
        assert!((decoded[0] - 2.0).abs() <= 2.0 * 2e-3, "{}", decoded[0]);
        assert!(decoded[2] > 0.0);
        assert!((decoded[1] + 100.0).abs() <= 100.0 / 254.0 + 1e-3);
        let want = log_norm(&decoded, 2, Covariance::Full);
        assert_eq!(
            packed.log_norms,
            want.to_le_bytes(),
            "log norm of the decoded factor"
        );
    }

    #[test]
    fn scales_out_of_the_f16_range_are_errors() {
        assert!(i8_scale(&[0.0]).is_err());
        assert!(i8_scale(&[1e7]).is_err());
        assert!(i8_scale(&[1e-4]).is_err());
        assert!(i8_scale(&[1.0]).is_ok());
    }
}
