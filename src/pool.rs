//! Average pooling: a tapped feature map becomes one value per channel, or
//! one per channel and cell of a `side × side` grid.
//!
//! The same helper runs on the host when fitting and on the board when
//! monitoring (and behind the C API's `lsgm_pool`), so the features match
//! bit for bit; [`tensor`] picks the helper a layer's [`Pooling`] names. Sums are `f32` with eight
//! interleaved accumulators; for the map sizes of a CNN they agree with
//! numpy's `mean(axis=(2, 3))` to about 1e-6 relative.

use crate::model::wire::Pooling;
use crate::Error;
use core::ops::Range;

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

/// Start of cell `i` when `len` positions are split into `side` cells the
/// way numpy's `array_split` does (the first `len mod side` cells are one
/// longer).
fn cell_start(len: usize, side: usize, i: usize) -> usize {
    i * (len / side) + i.min(len % side)
}

/// Checks a grid pooling's shapes (`[N, H, W, C]` whatever the layout);
/// returns the length of one batch item.
fn grid_shape(
    data: &[f32],
    [batch, h, w, c]: [usize; 4],
    n: usize,
    side: usize,
    out: &[f32],
) -> Result<usize, Error> {
    let item = c
        .checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .ok_or(Error::Shape)?;
    let width = c.checked_mul(side * side).ok_or(Error::Shape)?;
    if side == 0
        || h < side
        || w < side
        || n >= batch
        || batch.checked_mul(item) != Some(data.len())
        || out.len() < width
    {
        return Err(Error::Shape);
    }
    Ok(item)
}

/// Each cell of a `side × side` grid over an `h × w` map, row-major: its
/// index, rows and columns.
fn cells(h: usize, w: usize, side: usize) -> impl Iterator<Item = (usize, Range<usize>, Range<usize>)> {
    (0..side * side).map(move |i| {
        let (r, q) = (i / side, i % side);
        let rows = cell_start(h, side, r)..cell_start(h, side, r + 1);
        (i, rows, cell_start(w, side, q)..cell_start(w, side, q + 1))
    })
}

/// Averages batch item `n` of an `N×C×H×W` tensor over each cell of a
/// `side × side` grid into `out[..side²·C]`, cell-major (see
/// [`Pooling::GridAverageNchw`]). H and W must be at least `side`.
pub fn grid_avg_nchw(
    data: &[f32],
    shape: [usize; 4],
    n: usize,
    side: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let [batch, c, h, w] = shape;
    let item = grid_shape(data, [batch, h, w, c], n, side, out)?;
    let map = &data[n * item..(n + 1) * item];
    for (i, ys, xs) in cells(h, w, side) {
        let inv = 1.0 / (ys.len() * xs.len()) as f32;
        for (ch, o) in out[i * c..(i + 1) * c].iter_mut().enumerate() {
            let plane = &map[ch * h * w..(ch + 1) * h * w];
            let total: f32 = ys
                .clone()
                .map(|y| sum(&plane[y * w + xs.start..y * w + xs.end]))
                .sum();
            *o = total * inv;
        }
    }
    Ok(())
}

/// Averages batch item `n` of an `N×H×W×C` tensor over each cell of a
/// `side × side` grid into `out[..side²·C]`, cell-major (see
/// [`Pooling::GridAverageNhwc`]). H and W must be at least `side`.
pub fn grid_avg_nhwc(
    data: &[f32],
    shape: [usize; 4],
    n: usize,
    side: usize,
    out: &mut [f32],
) -> Result<(), Error> {
    let [_, h, w, c] = shape;
    let item = grid_shape(data, shape, n, side, out)?;
    let map = &data[n * item..(n + 1) * item];
    for (i, ys, xs) in cells(h, w, side) {
        let inv = 1.0 / (ys.len() * xs.len()) as f32;
        let cell = &mut out[i * c..(i + 1) * c];
        cell.fill(0.0);
        for y in ys {
            for px in map[(y * w + xs.start) * c..(y * w + xs.end) * c].chunks_exact(c) {
                cell.iter_mut().zip(px).for_each(|(o, v)| *o += v);
            }
        }
        cell.iter_mut().for_each(|o| *o *= inv);
    }
    Ok(())
}

/// Pools batch item `n` of a tapped tensor (`shape`, row-major `data`) into
/// `out` as `pooling` says; `out.len()` must be the tensor's channel count.
///
/// * [`Pooling::GlobalAverageNchw`]: `shape = [N, C, H, W]`, [`global_avg_nchw`];
/// * [`Pooling::GlobalAverageNhwc`]: `shape = [N, H, W, C]`, [`global_avg_nhwc`];
/// * [`Pooling::Vector`]: the first dimension is the batch (a rank-1 shape is
///   one item), the item (`[1, C]`, `[1, C, 1, 1]`, …) is copied as it is;
/// * [`Pooling::GridAverageNchw`], [`Pooling::GridAverageNhwc`]: as the
///   global means, [`grid_avg_nchw`], [`grid_avg_nhwc`] (`out.len()` is
///   `side²·C`);
/// * [`Pooling::Precomputed`]: nothing to pool (the caller computes the features).
///
/// Errors with [`Error::Shape`] when `data.len()` is not the product of
/// `shape`, `n` is not a batch item, the feature count is not `out.len()`,
/// a grid has more cells per side than the map has rows or columns,
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
        (Pooling::GridAverageNchw { side }, &[b, c, h, w]) if pooling.features(c) == Some(out.len()) => {
            grid_avg_nchw(data, [b, c, h, w], n, side as usize, out)
        }
        (Pooling::GridAverageNhwc { side }, &[b, h, w, c]) if pooling.features(c) == Some(out.len()) => {
            grid_avg_nhwc(data, [b, h, w, c], n, side as usize, out)
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

    /// Cell of each position as numpy's `array_split` sizes it: `len mod
    /// side` cells of `len / side + 1`, then cells of `len / side`.
    fn array_split_cells(len: usize, side: usize) -> Vec<usize> {
        let sizes = (0..side).map(|i| len / side + usize::from(i < len % side));
        sizes
            .enumerate()
            .flat_map(|(i, k)| std::iter::repeat_n(i, k))
            .collect()
    }

    #[test]
    fn grids_match_a_per_pixel_reference_in_both_layouts() {
        // 2 items, 3 channels, 7×5 maps; grids of 1, 2 and 3 cells per side.
        let (b, c, h, w) = (2, 3, 7, 5);
        let value =
            |n: usize, ch: usize, y: usize, x: usize| ((n * 31 + ch * 7 + y * 5 + x * 3) % 17) as f32 - 4.5;
        let mut nchw = vec![0.0f32; b * c * h * w];
        let mut nhwc = vec![0.0f32; b * c * h * w];
        for n in 0..b {
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        nchw[((n * c + ch) * h + y) * w + x] = value(n, ch, y, x);
                        nhwc[((n * h + y) * w + x) * c + ch] = value(n, ch, y, x);
                    }
                }
            }
        }
        for side in 1..=3u8 {
            let s = side as usize;
            let (rows, cols) = (array_split_cells(h, s), array_split_cells(w, s));
            let mut want = vec![(0.0f64, 0usize); s * s * c];
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let e = &mut want[(rows[y] * s + cols[x]) * c + ch];
                        e.0 += value(1, ch, y, x) as f64;
                        e.1 += 1;
                    }
                }
            }
            let nc = Pooling::GlobalAverageNchw.with_grid(side).unwrap();
            let nh = Pooling::GlobalAverageNhwc.with_grid(side).unwrap();
            let (mut a, mut bb) = (vec![0.0f32; s * s * c], vec![0.0f32; s * s * c]);
            tensor(nc, &[b, c, h, w], &nchw, 1, &mut a).unwrap();
            tensor(nh, &[b, h, w, c], &nhwc, 1, &mut bb).unwrap();
            for (i, &(sum, count)) in want.iter().enumerate() {
                let mean = (sum / count as f64) as f32;
                assert!(
                    (a[i] - mean).abs() < 1e-5 && (bb[i] - mean).abs() < 1e-5,
                    "side {side} feature {i}"
                );
            }
        }
        // A 3×3 map in 2×2 cells by hand: rows {0, 1} and {2}, same columns.
        let map: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let mut out = [0.0f32; 4];
        tensor(
            Pooling::GridAverageNchw { side: 2 },
            &[1, 1, 3, 3],
            &map,
            0,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [2.0, 3.5, 6.5, 8.0]);
    }

    #[test]
    fn grids_refuse_more_cells_than_pixels_and_wrong_widths() {
        let map = [0.0f32; 2 * 3 * 3];
        let mut out = [5.0f32; 2 * 16];
        for (pooling, shape, len) in [
            (Pooling::GridAverageNchw { side: 4 }, [1, 2, 3, 3], 32),
            (Pooling::GridAverageNhwc { side: 4 }, [1, 3, 3, 2], 32),
            (Pooling::GridAverageNchw { side: 2 }, [1, 2, 3, 3], 4),
            (Pooling::GridAverageNchw { side: 0 }, [1, 2, 3, 3], 0),
        ] {
            assert_eq!(
                tensor(pooling, &shape, &map, 0, &mut out[..len]),
                Err(Error::Shape)
            );
        }
        assert!(out.iter().all(|&v| v == 5.0));
        assert_eq!(Pooling::Vector.with_grid(2), None);
        assert_eq!(Pooling::GlobalAverageNchw.with_grid(17), None);
        assert_eq!(
            Pooling::GridAverageNhwc { side: 3 }.with_grid(1),
            Some(Pooling::GlobalAverageNhwc)
        );
        assert_eq!(Pooling::GridAverageNhwc { side: 3 }.features(5), Some(45));
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
