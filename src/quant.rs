//! Quantised transition tables.
//!
//! A transition table `A_i` (row-major, `K_i × K_{i+1}`, rows sum to 1) is the
//! only part of the model whose size grows with `K²`, so it is what we quantise.
//! Both quantisers are *relative*: every non-zero probability `a` is stored as
//! `â` with `|â / a − 1| ≤ r`, and zeros stay exactly zero. That choice buys a
//! clean guarantee on the score:
//!
//! **Bound.** The LSGM likelihood is a sum over paths of products of
//! non-negative terms, each path containing exactly one entry of every table.
//! If every entry of table `i` is off by a factor in `[1 − r_i, 1 + r_i]`, so is
//! every path, hence the sum, hence
//! `|score_quantised − score_exact| ≤ Σ_i −ln(1 − r_i)` nats
//! (plus `f32` arithmetic rounding). [`Quantisation::relative_bound`] gives `r`
//! and `tests/quantisation.rs` checks the bound on random models.
//!
//! * `U16`: the `f32` bit pattern keeps 5 exponent bits (relative to a
//!   per-table base) and the top 11 mantissa bits, rounded to nearest:
//!   `r = 2⁻¹²`. Decoding is one shift and one add, as cheap as the linear
//!   alternative, which has no relative bound at all for small probabilities.
//!   Non-zero entries must span less than 2³¹ (any pseudo-count guarantees it).
//! * `U8`: a per-table codebook of 255 log-spaced values between the table's
//!   smallest and largest non-zero entry (code 0 is exact zero):
//!   `r = exp(s/2) − 1` with `s = ln(max/min) / 254`; for a typical table with
//!   a 10⁵ spread, `r ≈ 2.3 %`, i.e. ≤ 0.023 nats per transition.

use crate::bytes::LeF32;
use crate::kind::Quantisation;

/// Relative error of [`Quantisation::U16`]: half a unit in the 11th mantissa bit.
pub const U16_RELATIVE_BOUND: f64 = 1.0 / 4096.0;

/// Bits dropped from an `f32` by the `U16` code.
const U16_SHIFT: u32 = 12;

impl Quantisation {
    /// Relative error bound `r` for a table whose non-zero entries span
    /// `[min_nonzero, max]`; see the module docs.
    pub fn relative_bound(self, min_nonzero: f32, max: f32) -> f64 {
        match self {
            Quantisation::F32 => 0.0,
            Quantisation::U16 => U16_RELATIVE_BOUND,
            Quantisation::U8 => {
                let s = if min_nonzero > 0.0 && max > min_nonzero {
                    libm::log(max as f64 / min_nonzero as f64) / 254.0
                } else {
                    0.0
                };
                // The codebook itself is stored as f32: one more half-ulp.
                libm::exp(s / 2.0) - 1.0 + f32::EPSILON as f64
            }
        }
    }
}

/// A validated, borrowed transition table, read in place from the model bytes.
#[derive(Debug, Clone, Copy)]
pub enum Table<'a> {
    /// Row-major `f32` values.
    F32(LeF32<'a>),
    /// `U16` codes (little-endian u16) and the table's exponent base bits.
    U16 {
        /// Bit pattern added to `code << 12`.
        base: u32,
        /// Row-major codes, two bytes each.
        codes: &'a [u8],
    },
    /// `U8` codes and the table's 256-entry codebook (entry 0 is 0.0).
    U8 {
        /// Decoded values for each code.
        codebook: LeF32<'a>,
        /// Row-major codes.
        codes: &'a [u8],
    },
}

#[inline]
fn u16_value(base: u32, code: u16) -> f32 {
    let v = f32::from_bits(base.wrapping_add((code as u32) << U16_SHIFT));
    if code == 0 {
        0.0
    } else {
        v
    }
}

impl Table<'_> {
    /// Number of stored entries.
    pub fn len(&self) -> usize {
        match self {
            Table::F32(v) => v.len(),
            Table::U16 { codes, .. } => codes.len() / 2,
            Table::U8 { codes, .. } => codes.len(),
        }
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The storage kind.
    pub fn quantisation(&self) -> Quantisation {
        match self {
            Table::F32(_) => Quantisation::F32,
            Table::U16 { .. } => Quantisation::U16,
            Table::U8 { .. } => Quantisation::U8,
        }
    }

    /// Dequantised entry `i` (row-major index), exactly as the scorer uses it.
    pub fn get(&self, i: usize) -> f32 {
        match self {
            Table::F32(v) => v.get(i),
            Table::U16 { base, codes } => {
                u16_value(*base, u16::from_le_bytes([codes[2 * i], codes[2 * i + 1]]))
            }
            Table::U8 { codebook, codes } => codebook.get(codes[i] as usize),
        }
    }

    /// `out[k] = Σ_j alpha[j] · A(j, k)` for a table with `alpha.len()` rows and
    /// `out.len()` columns. This is the K×K product of the forward recursion.
    #[inline]
    pub fn propagate(&self, alpha: &[f32], out: &mut [f32]) {
        let cols = out.len();
        out.fill(0.0);
        match self {
            Table::F32(v) => {
                for (j, &a) in alpha.iter().enumerate() {
                    let row = v.slice(j * cols, cols);
                    for (o, x) in out.iter_mut().zip(row.iter()) {
                        *o += a * x;
                    }
                }
            }
            Table::U16 { base, codes } => {
                for (j, &a) in alpha.iter().enumerate() {
                    let row = &codes[2 * j * cols..2 * (j + 1) * cols];
                    for (o, c) in out.iter_mut().zip(row.chunks_exact(2)) {
                        *o += a * u16_value(*base, u16::from_le_bytes([c[0], c[1]]));
                    }
                }
            }
            Table::U8 { codebook, codes } => {
                let mut book = [0.0f32; 256];
                for (b, v) in book.iter_mut().zip(codebook.iter()) {
                    *b = v;
                }
                for (j, &a) in alpha.iter().enumerate() {
                    let row = &codes[j * cols..(j + 1) * cols];
                    for (o, &c) in out.iter_mut().zip(row) {
                        *o += a * book[c as usize];
                    }
                }
            }
        }
    }
}

#[cfg(feature = "alloc")]
pub use encode::{quantise, QuantisedTable};

#[cfg(feature = "alloc")]
mod encode {
    use super::*;
    use crate::Error;
    use alloc::vec::Vec;

    /// An owned transition table ready to be written into a model file.
    #[derive(Debug, Clone, PartialEq)]
    pub enum QuantisedTable {
        /// Plain values.
        F32(Vec<f32>),
        /// `U16` codes and base bits.
        U16 {
            /// Exponent base bit pattern.
            base: u32,
            /// Row-major codes.
            codes: Vec<u16>,
        },
        /// `U8` codes and codebook (256 values, entry 0 is 0.0).
        U8 {
            /// Decoded value of each code.
            codebook: Vec<f32>,
            /// Row-major codes.
            codes: Vec<u8>,
        },
    }

    impl QuantisedTable {
        /// Dequantised entry `i`, bit-identical to what the scorer reads.
        pub fn get(&self, i: usize) -> f32 {
            match self {
                QuantisedTable::F32(v) => v[i],
                QuantisedTable::U16 { base, codes } => u16_value(*base, codes[i]),
                QuantisedTable::U8 { codebook, codes } => codebook[codes[i] as usize],
            }
        }

        /// Number of entries.
        pub fn len(&self) -> usize {
            match self {
                QuantisedTable::F32(v) => v.len(),
                QuantisedTable::U16 { codes, .. } => codes.len(),
                QuantisedTable::U8 { codes, .. } => codes.len(),
            }
        }

        /// True when empty.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }

    /// Quantises a row-major probability table. Entries must be finite and
    /// non-negative; zeros are kept exactly.
    pub fn quantise(table: &[f32], kind: Quantisation) -> Result<QuantisedTable, Error> {
        if table.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::Quantise("entries must be finite and non-negative"));
        }
        let nonzero = || table.iter().copied().filter(|v| *v > 0.0);
        let max = nonzero().fold(0.0f32, f32::max);
        let min = nonzero().fold(f32::INFINITY, f32::min);
        match kind {
            Quantisation::F32 => Ok(QuantisedTable::F32(table.to_vec())),
            Quantisation::U16 => {
                if max == 0.0 {
                    return Ok(QuantisedTable::U16 {
                        base: 0,
                        codes: alloc::vec![0; table.len()],
                    });
                }
                if min < f32::MIN_POSITIVE {
                    return Err(Error::Quantise("U16 needs non-zero entries above 1e-38"));
                }
                // Code 1 decodes to 2^floor(log2(min)): the base is one code step below.
                let min_floor = min.to_bits() & 0xFF80_0000;
                let base = min_floor - (1 << U16_SHIFT);
                let code_of = |v: f32| -> Result<u16, Error> {
                    if v == 0.0 {
                        return Ok(0);
                    }
                    let offset = v.to_bits() - base + (1 << (U16_SHIFT - 1));
                    u16::try_from(offset >> U16_SHIFT)
                        .map_err(|_| Error::Quantise("U16 needs non-zero entries within a 2^31 ratio"))
                };
                let codes = table.iter().map(|&v| code_of(v)).collect::<Result<_, _>>()?;
                Ok(QuantisedTable::U16 { base, codes })
            }
            Quantisation::U8 => {
                let mut codebook = alloc::vec![0.0f32; 256];
                if max == 0.0 {
                    return Ok(QuantisedTable::U8 {
                        codebook,
                        codes: alloc::vec![0; table.len()],
                    });
                }
                let (lo, hi) = (libm::log(min as f64), libm::log(max as f64));
                let step = (hi - lo) / 254.0;
                for (c, slot) in codebook.iter_mut().enumerate().skip(1) {
                    *slot = libm::exp(lo + (c - 1) as f64 * step) as f32;
                }
                let codes = table
                    .iter()
                    .map(|&v| {
                        if v == 0.0 {
                            0
                        } else if step == 0.0 {
                            1
                        } else {
                            let c = libm::round((libm::log(v as f64) - lo) / step);
                            (c.clamp(0.0, 254.0) as u8) + 1
                        }
                    })
                    .collect();
                Ok(QuantisedTable::U8 { codebook, codes })
            }
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    fn probe(kind: Quantisation, table: &[f32]) {
        let q = quantise(table, kind).unwrap();
        let nz = table.iter().copied().filter(|v| *v > 0.0);
        let min = nz.clone().fold(f32::INFINITY, f32::min);
        let max = nz.fold(0.0f32, f32::max);
        let r = kind.relative_bound(min, max);
        for (i, &a) in table.iter().enumerate() {
            let b = q.get(i);
            if a == 0.0 {
                assert_eq!(b, 0.0);
            } else {
                let rel = (b as f64 / a as f64 - 1.0).abs();
                assert!(rel <= r, "{kind:?} a={a} b={b} rel={rel} bound={r}");
            }
        }
    }

    #[test]
    fn relative_bound_holds_on_a_wide_log_grid() {
        let table: alloc::vec::Vec<f32> = (0..2000)
            .map(|i| {
                if i % 97 == 0 {
                    0.0
                } else {
                    libm::powf(10.0, -7.0 + i as f32 * 0.0035)
                }
            })
            .collect();
        for kind in [Quantisation::F32, Quantisation::U16, Quantisation::U8] {
            probe(kind, &table);
        }
        // Degenerate tables: all zero, one value.
        for kind in [Quantisation::U16, Quantisation::U8] {
            probe(kind, &[0.0; 5]);
            probe(kind, &[0.25; 4]);
        }
    }

    #[test]
    fn u16_rejects_an_impossible_range_and_negative_values() {
        assert!(quantise(&[1.0, 1e-20], Quantisation::U16).is_err());
        assert!(quantise(&[1.0, -0.1], Quantisation::U8).is_err());
        assert!(quantise(&[f32::NAN], Quantisation::F32).is_err());
    }
}
