//! Little-endian `f32`, `f16` and `i8` arrays read straight out of the model bytes.
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
    pub fn iter(&self) -> impl Iterator<Item = f32> + Clone + 'a {
        self.0
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// A borrowed, unaligned little-endian IEEE binary16 (`f16`) array, read as `f32`.
///
/// Half precision halves the size of means and precision factors (see
/// [`crate::Storage`]). The conversion is exact and branch-free (see
/// [`f16_bits_to_f32`]); infinities and NaNs are rejected by the validator.
#[derive(Debug, Clone, Copy)]
pub struct LeF16<'a>(&'a [u8]);

/// The `f32` value of finite `f16` bits.
///
/// A normal half's 15 magnitude bits, shifted into an `f32`'s exponent and
/// mantissa, need only the exponent rebiased (+112). A subnormal half
/// (exponent 0) is `m · 2⁻²⁴`: rebiasing by 113 instead gives
/// `2⁻¹⁴ · (1 + m/1024)`, and subtracting `2⁻¹⁴` leaves it exactly. Both are
/// computed and one is selected, so the loop vectorises, and no step touches
/// an `f32` subnormal (whose arithmetic costs x86 a ~100-cycle assist; the
/// shorter "multiply by 2¹¹²" conversion measured 7x slower on real factors,
/// whose small off-diagonal entries hit that case).
#[inline]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    const TWO_POW_M14: f32 = 1.0 / 16384.0;
    let h = h as u32;
    let magnitude = (h & 0x7fff) << 13;
    let normal = f32::from_bits(magnitude + (112 << 23));
    let subnormal = f32::from_bits(magnitude + (113 << 23)) - TWO_POW_M14;
    let v = if h & 0x7c00 == 0 { subnormal } else { normal };
    f32::from_bits(v.to_bits() | ((h & 0x8000) << 16))
}

/// True for the bits of a finite `f16` (exponent field not all ones).
#[inline]
pub const fn f16_bits_finite(h: u16) -> bool {
    h & 0x7c00 != 0x7c00
}

impl<'a> LeF16<'a> {
    /// Wraps `bytes`; `None` unless its length is even.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        bytes.len().is_multiple_of(2).then_some(LeF16(bytes))
    }

    /// Number of values.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len() / 2
    }

    /// True when there are no values.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Raw bits of value `i`; panics if out of range.
    #[inline]
    pub fn bits(&self, i: usize) -> u16 {
        u16::from_le_bytes([self.0[2 * i], self.0[2 * i + 1]])
    }

    /// Value `i` as `f32`; panics if out of range.
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        f16_bits_to_f32(self.bits(i))
    }

    /// The sub-array `[start, start + len)`.
    #[inline]
    pub fn slice(&self, start: usize, len: usize) -> LeF16<'a> {
        LeF16(&self.0[2 * start..2 * (start + len)])
    }

    /// All values in order, as `f32`.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.0
            .chunks_exact(2)
            .map(|b| f16_bits_to_f32(u16::from_le_bytes([b[0], b[1]])))
    }

    /// True when every value is finite.
    pub fn all_finite(&self) -> bool {
        self.0
            .chunks_exact(2)
            .all(|b| f16_bits_finite(u16::from_le_bytes([b[0], b[1]])))
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// A float array stored either as `f32` or as `f16`; reads give `f32`.
#[derive(Debug, Clone, Copy)]
pub enum Floats<'a> {
    /// Single precision.
    F32(LeF32<'a>),
    /// Half precision.
    F16(LeF16<'a>),
}

impl<'a> Floats<'a> {
    /// Number of values.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Floats::F32(v) => v.len(),
            Floats::F16(v) => v.len(),
        }
    }

    /// True when there are no values.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i`; panics if out of range.
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            Floats::F32(v) => v.get(i),
            Floats::F16(v) => v.get(i),
        }
    }

    /// The sub-array `[start, start + len)`.
    #[inline]
    pub fn slice(&self, start: usize, len: usize) -> Floats<'a> {
        match self {
            Floats::F32(v) => Floats::F32(v.slice(start, len)),
            Floats::F16(v) => Floats::F16(v.slice(start, len)),
        }
    }

    /// All values in order.
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        let this = *self;
        (0..this.len()).map(move |i| this.get(i))
    }

    /// `out[i] = a[i] − self[i]` (the hot path's centring step).
    #[inline]
    pub fn sub_from(&self, a: &[f32], out: &mut [f32]) {
        match self {
            Floats::F32(m) => {
                for ((o, &x), b) in out.iter_mut().zip(a).zip(m.0.chunks_exact(4)) {
                    *o = x - f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            Floats::F16(m) => {
                for ((o, &x), b) in out.iter_mut().zip(a).zip(m.0.chunks_exact(2)) {
                    *o = x - f16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]));
                }
            }
        }
    }
}

/// Lanes of the dot product: independent accumulators that LLVM maps onto
/// SIMD registers (floating-point adds cannot be reordered otherwise).
const LANES: usize = 8;

/// The one 8-lane dot product behind [`dot`], [`dot_f16`] and [`dot_i8`]:
/// `Σ a[i] · read(b[W·i .. W·i + W])`, for `b` holding `W` elements of `T` per
/// value. The lanes, the pairwise final sum and the remainder order are the
/// same for every storage, so all three round identically for equal values.
#[inline(always)]
fn dot_lanes<T, const W: usize>(a: &[f32], b: &[T], read: impl Fn(&[T]) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut ac = a.chunks_exact(LANES);
    let mut bc = b.chunks_exact(W * LANES);
    for (x, y) in (&mut ac).zip(&mut bc) {
        for l in 0..LANES {
            acc[l] += x[l] * read(&y[W * l..W * l + W]);
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ac.remainder().iter().zip(bc.remainder().chunks_exact(W)) {
        s += x * read(y);
    }
    s
}

/// Dot product of an `f32` slice with a little-endian array of the same length.
#[inline]
pub fn dot(a: &[f32], b: LeF32<'_>) -> f32 {
    dot_lanes::<u8, 4>(a, b.0, |y| f32::from_le_bytes([y[0], y[1], y[2], y[3]]))
}

/// Values converted per block by [`dot_f16`].
const BLOCK: usize = 64;

/// Converts `out.len()` little-endian halves, four at a time from one `u64`
/// so that the compiler emits vector loads (2-byte reads became byte gathers).
#[inline]
fn f16_block(bytes: &[u8], out: &mut [f32]) {
    let mut oc = out.chunks_exact_mut(4);
    let mut bc = bytes.chunks_exact(8);
    for (o, c) in (&mut oc).zip(&mut bc) {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        for (l, v) in o.iter_mut().enumerate() {
            *v = f16_bits_to_f32((w >> (16 * l)) as u16);
        }
    }
    for (o, c) in oc.into_remainder().iter_mut().zip(bc.remainder().chunks_exact(2)) {
        *o = f16_bits_to_f32(u16::from_le_bytes([c[0], c[1]]));
    }
}

/// Dot product of an `f32` slice with a little-endian `f16` array of the same length.
///
/// Converts a block at a time into a stack buffer, then runs the `f32` dot:
/// 25 % faster than converting inside the 8-lane loop (small benchmark model,
/// 461 vs 611 µs), yet still about 6x [`dot`] on x86-64 without F16C, where
/// each four values cost a dozen vector instructions to convert.
#[inline]
pub fn dot_f16(a: &[f32], b: LeF16<'_>) -> f32 {
    let mut buf = [0.0f32; BLOCK];
    let mut s = 0.0f32;
    for (x, y) in a.chunks(BLOCK).zip(b.0.chunks(2 * BLOCK)) {
        let n = x.len().min(y.len() / 2);
        f16_block(&y[..2 * n], &mut buf[..n]);
        s += dot_lanes::<f32, 1>(&x[..n], &buf[..n], |y| y[0]);
    }
    s
}

/// Dot product of an `f32` slice with `i8` codes (stored as bytes) of the same length.
#[inline]
pub fn dot_i8(a: &[f32], codes: &[u8]) -> f32 {
    dot_lanes::<u8, 1>(a, codes, |y| y[0] as i8 as f32)
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

    #[test]
    fn f16_and_i8_dots_match_plain_sums_for_every_length() {
        for n in 0..23 {
            let a: [f32; 23] = core::array::from_fn(|i| i as f32 * 0.5 - 3.0);
            // Halves of small dyadic values are exact: 1/8 steps.
            let h: [f32; 23] = core::array::from_fn(|i| (i as f32 - 11.0) * 0.125);
            let mut hb = [0u8; 46];
            for (i, v) in h.iter().enumerate() {
                let bits = half::f16::from_f32(*v).to_bits();
                hb[2 * i..2 * i + 2].copy_from_slice(&bits.to_le_bytes());
            }
            let codes: [u8; 23] = core::array::from_fn(|i| (i as i32 * 11 - 120) as i8 as u8);
            let want_h: f32 = a[..n].iter().zip(&h[..n]).map(|(x, y)| x * y).sum();
            let want_c: f32 = a[..n]
                .iter()
                .zip(&codes[..n])
                .map(|(x, &c)| x * (c as i8 as f32))
                .sum();
            let le = LeF16::new(&hb[..2 * n]).unwrap();
            assert!(
                (dot_f16(&a[..n], le) - want_h).abs() <= 1e-5 * (1.0 + want_h.abs()),
                "n={n}"
            );
            assert!(
                (dot_i8(&a[..n], &codes[..n]) - want_c).abs() <= 1e-5 * (1.0 + want_c.abs()),
                "n={n}"
            );
        }
    }

    #[test]
    fn f16_conversion_equals_the_half_crate_for_every_finite_bit_pattern() {
        let mut finite = 0;
        for bits in 0..=u16::MAX {
            let want = half::f16::from_bits(bits);
            assert_eq!(f16_bits_finite(bits), want.is_finite(), "{bits:#06x}");
            if want.is_finite() {
                finite += 1;
                assert_eq!(
                    f16_bits_to_f32(bits).to_bits(),
                    want.to_f32().to_bits(),
                    "{bits:#06x}"
                );
            }
        }
        assert_eq!(finite, 65536 - 2 * 1024);
    }
}
