//! Little-endian `f32` arrays read straight out of the model bytes.
//!
//! postcard places a borrowed byte slice at whatever offset its varint prefixes
//! leave, so the bytes are not 4-byte aligned and must never be cast to `&[f32]`.
//! Reading each value with `f32::from_le_bytes` costs nothing measurable on the
//! targets we care about (x86-64, AArch64, ARMv7, Cortex-M4 all do unaligned or
//! byte-wise loads cheaply) and keeps the model zero-copy.

/// A borrowed, unaligned little-endian `f32` array.
#[derive(Debug, Clone, Copy)]
pub struct LeF32<'a>(&'a [u8]);

impl<'a> LeF32<'a> {
    /// Wraps `bytes`; `None` unless its length is a multiple of 4.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        bytes.len().is_multiple_of(4).then_some(LeF32(bytes))
    }

    /// Number of `f32` values.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// True when there are no values.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Value `i`; panics if out of range (only used behind validated shapes).
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        let b = &self.0[4 * i..4 * i + 4];
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The sub-array `[start, start + len)`.
    #[inline]
    pub fn slice(&self, start: usize, len: usize) -> LeF32<'a> {
        LeF32(&self.0[4 * start..4 * (start + len)])
    }

    /// All values in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Lanes of the dot product: independent accumulators that LLVM maps onto
/// SIMD registers (floating-point adds cannot be reordered otherwise).
const LANES: usize = 8;

/// Dot product of an `f32` slice with a little-endian array of the same length.
#[inline]
pub fn dot(a: &[f32], b: LeF32<'_>) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut ac = a.chunks_exact(LANES);
    let mut bc = b.0.chunks_exact(4 * LANES);
    for (x, y) in (&mut ac).zip(&mut bc) {
        for l in 0..LANES {
            let v = f32::from_le_bytes([y[4 * l], y[4 * l + 1], y[4 * l + 2], y[4 * l + 3]]);
            acc[l] += x[l] * v;
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ac.remainder().iter().zip(bc.remainder().chunks_exact(4)) {
        s += x * f32::from_le_bytes([y[0], y[1], y[2], y[3]]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_plain_sum_for_every_length() {
        for n in 0..23 {
            let a: [f32; 23] = core::array::from_fn(|i| i as f32 * 0.5 - 3.0);
            let b: [f32; 23] = core::array::from_fn(|i| 1.0 / (i as f32 + 1.0));
            let mut bytes = [0u8; 92];
            for (i, v) in b.iter().enumerate() {
                bytes[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
            }
            let le = LeF32::new(&bytes[..4 * n]).unwrap();
            let want: f32 = a[..n].iter().zip(&b[..n]).map(|(x, y)| x * y).sum();
            assert!(
                (dot(&a[..n], le) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "n={n}"
            );
            assert_eq!(le.len(), n);
        }
        assert!(LeF32::new(&[0u8; 3]).is_none());
    }
}
