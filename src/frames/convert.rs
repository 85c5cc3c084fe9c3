//! Frame → network input, exactly as the model file's preprocessing says:
//! channel conversion, resize, `(u8 · scale − mean_c) / std_c`, layout.

use super::Frame;
use crate::model::wire::Layout;
use crate::Model;
use anyhow::{ensure, Result};

/// The network input a frame must become.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// Layout of the input tensor.
    pub layout: Layout,
    /// Channels (1 or 3).
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// Raw pixel multiplier.
    pub scale: f32,
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel std.
    pub std: Vec<f32>,
}

impl InputSpec {
    /// The preprocessing stored in a model file; an error if it has none
    /// (a model fitted from features alone cannot take frames).
    pub fn from_model(model: &Model<'_>) -> Result<InputSpec> {
        let p = model.preprocess();
        ensure!(
            p.channels > 0,
            "this model stores no input preprocessing (it was fitted from feature files); \
             fit it from images with `fit-and-export --onnx … --train …` to use it on frames"
        );
        let (mean, std) = model.preprocess_mean_std();
        Ok(InputSpec {
            layout: p.layout,
            channels: p.channels as usize,
            height: p.height as usize,
            width: p.width as usize,
            scale: p.scale,
            mean: mean.iter().collect(),
            std: std.iter().collect(),
        })
    }

    /// Number of `f32`s of one input.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True for a zero-sized input.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes the network input for `frame` into `out[..spec.len()]`. Returns
/// whether the frame had to be resized.
pub fn to_input(frame: &Frame, spec: &InputSpec, out: &mut [f32]) -> Result<bool> {
    ensure!(
        frame.pixels.len() == frame.height * frame.width * frame.channels
            && frame.height > 0
            && frame.width > 0,
        "{}: pixel buffer does not match its {}×{}×{} shape",
        frame.source,
        frame.height,
        frame.width,
        frame.channels
    );
    ensure!(out.len() >= spec.len(), "input buffer too small");
    // 1. Channels: RGB → grey with ITU-R 601 weights (PIL's "L"), grey → RGB by copying.
    let converted: Option<Vec<u8>> = match (frame.channels, spec.channels) {
        (a, b) if a == b => None,
        (3, 1) => Some(
            frame
                .pixels
                .chunks_exact(3)
                .map(|p| (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).round() as u8)
                .collect(),
        ),
        (1, 3) => Some(frame.pixels.iter().flat_map(|&v| [v, v, v]).collect()),
        (a, b) => anyhow::bail!(
            "{}: cannot convert {a}-channel pixels to {b} channels",
            frame.source
        ),
    };
    let pixels = converted.as_deref().unwrap_or(&frame.pixels);
    // 2. Size: bilinear (triangle) resize when it differs.
    let resized = frame.height != spec.height || frame.width != spec.width;
    let owned;
    let pixels: &[u8] = if resized {
        owned = resize(
            pixels,
            frame.width,
            frame.height,
            spec.channels,
            spec.width,
            spec.height,
        );
        &owned
    } else {
        pixels
    };
    // 3. Normalise and lay out.
    let (c, hw) = (spec.channels, spec.height * spec.width);
    for p in 0..hw {
        for ch in 0..c {
            let v = (pixels[p * c + ch] as f32 * spec.scale - spec.mean[ch]) / spec.std[ch];
            match spec.layout {
                Layout::Nchw => out[ch * hw + p] = v,
                Layout::Nhwc => out[p * c + ch] = v,
            }
        }
    }
    Ok(resized)
}

fn resize(pixels: &[u8], w: usize, h: usize, c: usize, nw: usize, nh: usize) -> Vec<u8> {
    use image::imageops::{resize, FilterType};
    if c == 1 {
        let img = image::GrayImage::from_raw(w as u32, h as u32, pixels.to_vec()).expect("length checked");
        resize(&img, nw as u32, nh as u32, FilterType::Triangle).into_raw()
    } else {
        let img = image::RgbImage::from_raw(w as u32, h as u32, pixels.to_vec()).expect("length checked");
        resize(&img, nw as u32, nh as u32, FilterType::Triangle).into_raw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(channels: usize, layout: Layout) -> InputSpec {
        InputSpec {
            layout,
            channels,
            height: 2,
            width: 2,
            scale: 1.0 / 255.0,
            mean: vec![0.5; channels],
            std: vec![0.25; channels],
        }
    }

    #[test]
    fn normalises_converts_and_lays_out() {
        let grey = Frame {
            source: "g".into(),
            height: 2,
            width: 2,
            channels: 1,
            pixels: vec![0, 255, 51, 204],
        };
        let mut out = [0.0f32; 12];
        assert!(!to_input(&grey, &spec(1, Layout::Nchw), &mut out).unwrap());
        let want = [-2.0, 2.0, -1.2, 1.2];
        for (a, b) in out[..4].iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{out:?}");
        }
        // Grey → RGB, NCHW: three copies of the plane.
        to_input(&grey, &spec(3, Layout::Nchw), &mut out).unwrap();
        assert!((out[4] + 2.0).abs() < 1e-5 && (out[9] - 2.0).abs() < 1e-5);
        // RGB → grey: pure red becomes 76 (0.299 · 255).
        let red = Frame {
            source: "r".into(),
            height: 2,
            width: 2,
            channels: 3,
            pixels: [255u8, 0, 0].repeat(4),
        };
        to_input(&red, &spec(1, Layout::Nhwc), &mut out).unwrap();
        assert!((out[0] - (76.0 / 255.0 - 0.5) / 0.25).abs() < 1e-5);
        // A larger frame is resized.
        let big = Frame {
            source: "b".into(),
            height: 4,
            width: 4,
            channels: 1,
            pixels: vec![100; 16],
        };
        assert!(to_input(&big, &spec(1, Layout::Nchw), &mut out).unwrap());
        assert!((out[0] - (100.0 / 255.0 - 0.5) / 0.25).abs() < 1e-5);
    }
}
