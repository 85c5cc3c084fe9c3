//! Host side of [`Storage`]: rounds a layer's means and precision factors to
//! the stored precision and returns the bytes plus the values a reader will
//! see, so the encoder can compute `log|U|` from exactly those.
//!
//! Rounding is to nearest (ties to even) everywhere. An `i8` column's scale is
//! its largest magnitude over 127, rounded *up* to the next `f16`, so no code
//! leaves `[-127, 127]`; a diagonal entry never rounds to code 0 (it is the
//! square root of a conditional precision and must stay positive). Packing
//! the values a reader returns gives the same bytes again, which is what lets
//! `requantise` and `inspect --json` round-trip a quantised model.

use crate::density::{packed_index, Covariance, Storage};
use crate::Error;
use alloc::vec;
use alloc::vec::Vec;
use half::f16;

/// Stored bytes of a layer's means.
pub(crate) enum MeansBytes {
    F32(Vec<u8>),
    F16(Vec<u8>),
}

/// Stored bytes of a layer's factors.
pub(crate) enum FactorBytes {
    F32(Vec<u8>),
    F16(Vec<u8>),
    I8 { scales: Vec<u8>, codes: Vec<u8> },
}

fn storage_error(layer: usize, reason: &'static str) -> Error {
    Error::Storage {
        layer: layer.min(u8::MAX as usize) as u8,
        reason,
    }
}

fn le32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `values` rounded to `f16`, or `None` when one overflows the half range.
fn halves(values: &[f32]) -> Option<Vec<f16>> {
    values
        .iter()
        .map(|&v| Some(f16::from_f32(v)).filter(|h| h.is_finite()))
        .collect()
}

fn le16(values: &[f16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_bits().to_le_bytes()).collect()
}

/// Packs the concatenated means of one layer.
pub(crate) fn means(layer: usize, values: &[f32], storage: Storage) -> Result<MeansBytes, Error> {
    match storage {
        Storage::F32 => Ok(MeansBytes::F32(le32(values))),
        Storage::F16 | Storage::I8 => {
            let h = halves(values)
                .ok_or_else(|| storage_error(layer, "a mean exceeds the f16 range (±65504)"))?;
            Ok(MeansBytes::F16(le16(&h)))
        }
    }
}

/// Packs one layer's factors (`factors[k]` is component `k`'s packed factor
/// of `dim`) and returns them with the values a reader will decode.
pub(crate) fn factors(
    layer: usize,
    factors: &[&[f32]],
    covariance: Covariance,
    dim: usize,
    storage: Storage,
) -> Result<(FactorBytes, Vec<Vec<f32>>), Error> {
    match storage {
        Storage::F32 => {
            let flat: Vec<f32> = factors.iter().flat_map(|f| f.iter().copied()).collect();
            let decoded = factors.iter().map(|f| f.to_vec()).collect();
            Ok((FactorBytes::F32(le32(&flat)), decoded))
        }
        Storage::F16 => {
            let mut flat = Vec::new();
            let mut decoded = Vec::with_capacity(factors.len());
            for f in factors {
                let h = halves(f).ok_or_else(|| {
                    storage_error(layer, "a precision factor exceeds the f16 range (±65504)")
                })?;
                decoded.push(h.iter().map(|v| v.to_f32()).collect());
                flat.extend(h);
            }
            Ok((FactorBytes::F16(le16(&flat)), decoded))
        }
        Storage::I8 => {
            let mut scales = Vec::new();
            let mut codes = Vec::new();
            let mut decoded = Vec::with_capacity(factors.len());
            // (start, length) of each scale group: column j of the packed
            // triangle holds U_0j..U_jj, the diagonal last.
            let groups: Vec<(usize, usize)> = match covariance {
                Covariance::Full => (0..dim).map(|j| (packed_index(0, j), j + 1)).collect(),
                Covariance::Diag => vec![(0, dim)],
            };
            for f in factors {
                let mut dec = vec![0.0f32; f.len()];
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
                        codes.push(q as u8);
                        dec[start + i] = s * q as f32;
                    }
                }
                decoded.push(dec);
            }
            Ok((
                FactorBytes::I8 {
                    scales: le16(&scales),
                    codes,
                },
                decoded,
            ))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i8_codes_stay_in_range_and_keep_the_diagonal_positive() {
        // Column of 3 (dim 2, second column): a tiny diagonal under a big off-diagonal.
        let f = [2.0f32, -100.0, 1e-3];
        let (bytes, decoded) = factors(0, &[&f], Covariance::Full, 2, Storage::I8).unwrap();
        let FactorBytes::I8 { scales, codes } = bytes else {
            panic!("not i8")
        };
        assert_eq!(scales.len(), 2 * 2);
        assert_eq!(codes[0] as i8, 127);
        assert_eq!(codes[1] as i8, -127);
        assert_eq!(codes[2] as i8, 1, "diagonal clamped to code 1");
        assert!((decoded[0][0] - 2.0).abs() <= 2.0 * 2e-3, "{}", decoded[0][0]);
        assert!(decoded[0][2] > 0.0);
        assert!((decoded[0][1] + 100.0).abs() <= 100.0 / 254.0 + 1e-3);
    }

    #[test]
    fn scales_out_of_the_f16_range_are_errors() {
        assert!(i8_scale(&[0.0]).is_err());
        assert!(i8_scale(&[1e7]).is_err());
        assert!(i8_scale(&[1e-4]).is_err());
        assert!(i8_scale(&[1.0]).is_ok());
    }
}
