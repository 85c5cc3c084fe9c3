//! Global average pooling: a tapped feature map becomes one value per channel.
//!
//! The same helper runs on the host when fitting and on the board when
//! monitoring (and behind the C API's `lsgm_pool`), so the features match
//! bit for bit; [`tensor`] picks the helper a layer's [`Pooling`] names. Sums are `f32` with eight
//! interleaved accumulators; for the map sizes of a CNN they agree with
//! numpy's `mean(axis=(2, 3))` to about 1e-6 relative.

use crate::model::wire::Pooling;
use crate::Error;

/// Sum with eight independent accumulators, which LLVM maps onto SIMD lanes
/// (a plain `.sum()` must keep the sequential order and runs ~5x slower).
#[inline]
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Averages an `N×C×H×W` tensor over `H×W` for batch item `n` into `out[..C]`.
pub fn global_avg_nchw(data: &[f32], shape: [usize; 4], n: usize, out: &mut [f32]) -> Result<(), Error> {
    let [batch, c, h, w] = shape;
    let hw = h.checked_mul(w).ok_or(Error::Shape)?;
    let item = c.checked_mul(hw).ok_or(Error::Shape)?;
    if n >= batch || batch.checked_mul(item) != Some(data.len()) || out.len() < c || hw == 0 {
        return Err(Error::Shape);
    }
    let inv = 1.0 / hw as f32;
    for (ch, o) in out[..c].iter_mut().enumerate() {
        let start = n * item + ch * hw;
        *o = sum(&data[start..start + hw]) * inv;
    }
    Ok(())
}

/// Averages an `N×H×W×C` tensor over `H×W` for batch item `n` into `out[..C]`.
pub fn global_avg_nhwc(data: &[f32], shape: [usize; 4], n: usize, out: &mut [f32]) -> Result<(), Error> {
    let [batch, h, w, c] = shape;
    let hw = h.checked_mul(w).ok_or(Error::Shape)?;
    let item = c.checked_mul(hw).ok_or(Error::Shape)?;
    if n >= batch || batch.checked_mul(item) != Some(data.len()) || out.len() < c || hw == 0 {
        return Err(Error::Shape);
    }
    let out = &mut out[..c];
    out.fill(0.0);
    for px in data[n * item..(n + 1) * item].chunks_exact(c) {
        for (o, v) in out.iter_mut().zip(px) {
            *o += v;
        }
    }
    let inv = 1.0 / hw as f32;
    out.iter_mut().for_each(|o| *o *= inv);
    Ok(())
}

/// Pools batch item `n` of a tapped tensor (`shape`, row-major `data`) into
/// `out` as `pooling` says; `out.len()` must be the tensor's channel count.
///
/// * [`Pooling::GlobalAverageNchw`]: `shape = [N, C, H, W]`, [`global_avg_nchw`];
/// * [`Pooling::GlobalAverageNhwc`]: `shape = [N, H, W, C]`, [`global_avg_nhwc`];
/// * [`Pooling::Vector`]: the first dimension is the batch (a rank-1 shape is
///   one item), the item (`[1, C]`, `[1, C, 1, 1]`, …) is copied as it is;
/// * [`Pooling::Precomputed`]: nothing to pool (the caller computes the features).
///
/// Errors with [`Error::Shape`] when `data.len()` is not the product of
/// `shape`, `n` is not a batch item, the channel count is not `out.len()`,
/// or the pooling takes no tensor; `out` is then untouched. Values are not
/// checked: [`crate::Model::score`] refuses non-finite features.
pub fn tensor(
    pooling: Pooling,
    shape: &[usize],
    data: &[f32],
    n: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    match (pooling, shape) {
        (Pooling::GlobalAverageNchw, &[b, c, h, w]) if c == out.len() => {
            global_avg_nchw(data, [b, c, h, w], n, out)
        }
        (Pooling::GlobalAverageNhwc, &[b, h, w, c]) if c == out.len() => {
            global_avg_nhwc(data, [b, h, w, c], n, out)
        }
        (Pooling::Vector, &[b, ref item @ ..]) => {
            let len = item.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let (b, len) = if item.is_empty() { (1, Some(b)) } else { (b, len) };
            match len {
                Some(len) if n < b && len == out.len() && b.checked_mul(len) == Some(data.len()) => {
                    out.copy_from_slice(&data[n * len..(n + 1) * len]);
                    Ok(())
                }
                _ => Err(Error::Shape),
            }
        }
        _ => Err(Error::Shape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nchw_and_nhwc_agree_with_a_hand_computed_mean() {
        // 2 items, 3 channels, 2×2: value = 100 n + 10 c + position.
        let mut nchw = [0.0f32; 24];
        let mut nhwc = [0.0f32; 24];
        for n in 0..2 {
            for c in 0..3 {
                for p in 0..4 {
                    let v = (100 * n + 10 * c + p) as f32;
                    nchw[n * 12 + c * 4 + p] = v;
                    nhwc[n * 12 + p * 3 + c] = v;
                }
            }
        }
        let mut a = [0.0f32; 3];
        let mut b = [0.0f32; 3];
        global_avg_nchw(&nchw, [2, 3, 2, 2], 1, &mut a).unwrap();
        global_avg_nhwc(&nhwc, [2, 2, 2, 3], 1, &mut b).unwrap();
        assert_eq!(a, [101.5, 111.5, 121.5]);
        assert_eq!(a, b);
    }

    #[test]
    fn tensor_picks_the_layout_and_checks_the_channel_count() {
        let nchw: [f32; 8] = [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
        let mut out = [0.0f32; 2];
        tensor(Pooling::GlobalAverageNchw, &[1, 2, 2, 2], &nchw, 0, &mut out).unwrap();
        assert_eq!(out, [2.5, 25.0]);
        tensor(Pooling::GlobalAverageNhwc, &[1, 2, 2, 2], &nchw, 0, &mut out).unwrap();
        assert_eq!(out, [11.0, 16.5]);
        tensor(Pooling::Vector, &[4, 2], &nchw, 3, &mut out).unwrap();
        assert_eq!(out, [30.0, 40.0]);
        tensor(Pooling::Vector, &[2], &nchw[..2], 0, &mut out).unwrap();
        assert_eq!(out, [1.0, 2.0]);
        let mut three = [7.0f32; 3];
        for (pooling, shape) in [
            (Pooling::GlobalAverageNchw, &[1usize, 2, 2, 2][..]),
            (Pooling::GlobalAverageNhwc, &[1, 2, 2, 2]),
            (Pooling::Vector, &[1, 8]),
            (Pooling::Vector, &[4, 2]),
            (Pooling::Precomputed, &[1, 3]),
        ] {
            assert_eq!(tensor(pooling, shape, &nchw, 0, &mut three), Err(Error::Shape));
        }
        assert_eq!(three, [7.0; 3]);
        assert_eq!(
            tensor(Pooling::Vector, &[4, 2], &nchw, 4, &mut out),
            Err(Error::Shape)
        );
        assert_eq!(
            tensor(Pooling::Vector, &[usize::MAX, 2], &nchw, 0, &mut out),
            Err(Error::Shape)
        );
        assert_eq!(
            tensor(Pooling::GlobalAverageNchw, &[1, 2, 4], &nchw, 0, &mut out),
            Err(Error::Shape)
        );
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let mut out = [0.0f32; 3];
        assert_eq!(
            global_avg_nchw(&[0.0; 10], [1, 3, 2, 2], 0, &mut out),
            Err(Error::Shape)
        );
        assert_eq!(
            global_avg_nchw(&[0.0; 12], [1, 3, 2, 2], 1, &mut out),
            Err(Error::Shape)
        );
        assert_eq!(
            global_avg_nhwc(&[0.0; 12], [1, 2, 2, 3], 0, &mut out[..2]),
            Err(Error::Shape)
        );
        assert_eq!(global_avg_nchw(&[], [1, 3, 0, 2], 0, &mut out), Err(Error::Shape));
        assert_eq!(
            global_avg_nchw(&[], [usize::MAX, 3, usize::MAX, 2], 0, &mut out),
            Err(Error::Shape)
        );
    }
}
