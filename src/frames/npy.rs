//! `.npy` image stacks: u8 or f32 (values in [0, 1] or [0, 255]),
//! N×H×W or N×C×H×W.

use super::Frame;
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;

/// Reads an image stack from `.npy`.
pub fn read_npy_frames(path: &Path) -> Result<Vec<Frame>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let npy = npyz::NpyFile::new(std::io::BufReader::new(file))
        .with_context(|| format!("{} is not a valid .npy file", path.display()))?;
    ensure!(
        npy.order() == npyz::Order::C,
        "{}: Fortran-order arrays are not supported",
        path.display()
    );
    let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
    let (n, c, h, w) = match shape[..] {
        [n, h, w] => (n, 1, h, w),
        [n, c, h, w] if c == 1 || c == 3 => (n, c, h, w),
        _ => bail!(
            "{}: expected N×H×W or N×C×H×W (C = 1 or 3), got shape {shape:?}",
            path.display()
        ),
    };
    let descr = npy.dtype().descr();
    let values: Vec<u8> = if descr.contains("u1") {
        npy.into_vec::<u8>()
            .with_context(|| format!("cannot read {}", path.display()))?
    } else if descr.contains("f4") {
        let v = npy
            .into_vec::<f32>()
            .with_context(|| format!("cannot read {}", path.display()))?;
        // [0, 1] floats are scaled to bytes; [0, 255] floats are taken as is.
        let scale = if v.iter().all(|x| (0.0..=1.0).contains(x)) {
            255.0
        } else {
            1.0
        };
        v.iter()
            .map(|x| (x * scale).round().clamp(0.0, 255.0) as u8)
            .collect()
    } else {
        bail!(
            "{}: unsupported dtype {descr}; use uint8 or float32",
            path.display()
        );
    };
    let size = c * h * w;
    let name = path.display().to_string();
    Ok((0..n)
        .map(|i| {
            let chw = &values[i * size..(i + 1) * size];
            // C×H×W planes → interleaved H×W×C.
            let mut pixels = vec![0u8; size];
            for ch in 0..c {
                for p in 0..h * w {
                    pixels[p * c + ch] = chw[ch * h * w + p];
                }
            }
            Frame {
                source: format!("{name}#{i}"),
                height: h,
                width: w,
                channels: c,
                pixels,
            }
        })
        .collect())
}
