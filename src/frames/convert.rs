//! Frame → network input, exactly as the model's [`Preprocess`] says:
//! colour, size, values, layout (see [`crate::model::preprocess`]).

use super::{Frame, Pixels};
use crate::model::preprocess::{Colour, Datum, InputBuffer, Layout, Preprocess, Resize};
use anyhow::{bail, ensure, Result};
use image::imageops;
use image::{ImageBuffer, Luma, Pixel, Rgb};

/// What had to be done to a frame besides normalising it, for a
/// once-per-run note ([`super::Notes`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Adjusted {
    /// `(from, to)` channel counts when the frame's colour was converted.
    pub colour: Option<(usize, usize)>,
    /// `(width, height)` of the frame when it was resized.
    pub resized: Option<(usize, usize)>,
}

impl Adjusted {
    /// Sentences for the notes, given the preprocessing.
    pub fn notes(&self, p: &Preprocess) -> Vec<String> {
        let mut notes = Vec::new();
        match self.colour {
            Some((3, 1)) => notes.push(
                "colour frames are converted to grey (ITU-R 601 luma, as PIL's convert(\"L\")) for this grey network"
                    .to_string(),
            ),
            Some((1, 3)) => notes.push(format!(
                "grey frames are copied to all three channels for this {} network",
                p.colour
            )),
            _ => {}
        }
        if let Some((w, h)) = self.resized {
            let how = match p.resize {
                Resize::Exact => "refused",
                Resize::Stretch => "stretched",
                Resize::Crop { .. } => "resized and centre-cropped",
                Resize::Letterbox { .. } => "letterboxed",
            };
            notes.push(format!(
                "frames of {w}×{h} (W×H) are {how} to the network's {}×{} ({}, bilinear)",
                p.width, p.height, p.resize
            ));
        }
        notes
    }
}

/// Writes the network input for `frame` into `out` (from
/// [`Preprocess::buffer`]) and says what was adjusted. Errors name the
/// frame: a wrong buffer, or another size under [`Resize::Exact`].
pub fn to_input(frame: &Frame, p: &Preprocess, out: &mut InputBuffer) -> Result<Adjusted> {
    let (w, h, c) = (frame.width, frame.height, frame.channels);
    ensure!(
        frame.pixels.len() == h * w * c && h > 0 && w > 0 && (c == 1 || c == 3),
        "{}: pixel buffer does not match its {h}×{w}×{c} shape",
        frame.source
    );
    let want_c = p.channels();
    let mut adjusted = Adjusted::default();
    if c != want_c {
        adjusted.colour = Some((c, want_c));
    }
    // 1. Colour, RGB → grey before resizing, as PIL's `convert("L")` then
    // `resize` (the luma's rounding does not commute with resampling).
    // Grey → RGB copies one value into three channels, which commutes with
    // resampling and letterbox filling exactly: it is done after resizing,
    // on a third of the pixels (a 28×28 grey frame into a 224×224 RGB
    // network spent 9 % of the frame's time resizing three equal channels).
    let early = (c > want_c).then(|| convert_colour(&frame.pixels, c));
    let pixels = early.as_ref().unwrap_or(&frame.pixels);
    let channels = c.min(want_c);
    // 2. Size: the policy's transform for every frame size. A frame already
    // at the input size is left alone by `stretch` and `letterbox`, but
    // `crop:S` still scales it to S first (torchvision's `Resize(S)` does).
    let (tw, th) = (p.width as usize, p.height as usize);
    let resized = match p.resize {
        Resize::Exact if (w, h) != (tw, th) => bail!(
            "{}: the frame is {w}×{h} (W×H) but the network takes {tw}×{th} and the model's resize \
             policy is `exact`; resize the frames to {tw}×{th}, or fit with --resize stretch, \
             crop[:SHORTER] or letterbox[:FILL]",
            frame.source
        ),
        Resize::Exact => None,
        policy => {
            let geometry = Geometry::new(policy, (w, h), (tw, th));
            (!geometry.is_identity((w, h))).then(|| {
                adjusted.resized = Some((w, h));
                geometry.resize(pixels, (w, h), channels)
            })
        }
    };
    let pixels = resized.as_ref().unwrap_or(pixels);
    let late = (c < want_c).then(|| convert_colour(pixels, c));
    let pixels = late.as_ref().unwrap_or(pixels);
    // 3 and 4. Values and layout.
    write_values(pixels, p, out)?;
    Ok(adjusted)
}

/// RGB → grey with ITU-R 601 weights (PIL's "L"), grey → RGB by copying.
fn convert_colour(pixels: &Pixels, from: usize) -> Pixels {
    let luma = |r: f32, g: f32, b: f32| 0.299 * r + 0.587 * g + 0.114 * b;
    match (pixels, from) {
        (Pixels::U8(v), 3) => Pixels::U8(
            v.chunks_exact(3)
                .map(|p| luma(p[0] as f32, p[1] as f32, p[2] as f32).round() as u8)
                .collect(),
        ),
        (Pixels::F32(v), 3) => Pixels::F32(v.chunks_exact(3).map(|p| luma(p[0], p[1], p[2])).collect()),
        (Pixels::U8(v), _) => Pixels::U8(v.iter().flat_map(|&x| [x, x, x]).collect()),
        (Pixels::F32(v), _) => Pixels::F32(v.iter().flat_map(|&x| [x, x, x]).collect()),
    }
}

fn write_values(pixels: &Pixels, p: &Preprocess, out: &mut InputBuffer) -> Result<()> {
    let c = p.channels();
    let hw = p.height as usize * p.width as usize;
    // Channel `ch` of the input reads channel `src(ch)` of the frame.
    let src = |ch: usize| if p.colour == Colour::Bgr { 2 - ch } else { ch };
    let at = |px: usize, ch: usize| match p.layout {
        Layout::Nchw => ch * hw + px,
        Layout::Nhwc => px * c + ch,
    };
    match (out, p.datum, pixels) {
        (InputBuffer::F32(out), Datum::F32, Pixels::U8(v)) if out.len() == hw * c => {
            // 8-bit frames: the normalised value of each level of each input
            // channel, computed once (the same expression, so the same bits).
            let mut table = [[0f32; 256]; 3];
            for (ch, row) in table.iter_mut().enumerate().take(c) {
                for (level, slot) in row.iter_mut().enumerate() {
                    *slot = (level as f32 * p.range.scale() - p.mean[ch]) / p.std[ch];
                }
            }
            for px in 0..hw {
                for (ch, row) in table.iter().enumerate().take(c) {
                    out[at(px, ch)] = row[v[px * c + src(ch)] as usize];
                }
            }
        }
        (InputBuffer::F32(out), Datum::F32, Pixels::F32(v)) if out.len() == hw * c => {
            for px in 0..hw {
                for ch in 0..c {
                    out[at(px, ch)] = (v[px * c + src(ch)] * p.range.max() - p.mean[ch]) / p.std[ch];
                }
            }
        }
        (InputBuffer::U8(out), Datum::U8, _) if out.len() == hw * c => {
            let value = |i: usize| match pixels {
                Pixels::U8(v) => v[i],
                Pixels::F32(v) => (v[i] * 255.0).round().clamp(0.0, 255.0) as u8,
            };
            for px in 0..hw {
                for ch in 0..c {
                    out[at(px, ch)] = value(px * c + src(ch));
                }
            }
        }
        _ => bail!("input buffer does not match the preprocessing (use Preprocess::buffer)"),
    }
    Ok(())
}

/// Where a frame lands in the input: the size it is resized to, and the
/// offset of the input inside it (crop, ≥ 0) or of it inside the input
/// (letterbox).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    scaled: (u32, u32),
    target: (u32, u32),
    crop: Option<(u32, u32)>,
    pad: Option<(u32, u32)>,
    fill: u8,
}

impl Geometry {
    fn new(policy: Resize, (w, h): (usize, usize), (tw, th): (usize, usize)) -> Geometry {
        let target = (tw as u32, th as u32);
        let mut g = Geometry {
            scaled: target,
            target,
            crop: None,
            pad: None,
            fill: 0,
        };
        match policy {
            Resize::Exact | Resize::Stretch => {}
            Resize::Crop { shorter } => {
                // torchvision's Resize(int): the long side is int(S · long / short).
                let s = shorter as usize;
                g.scaled = if w <= h {
                    (s as u32, (s * h / w) as u32)
                } else {
                    ((s * w / h) as u32, s as u32)
                };
                // torchvision's CenterCrop: round((size − crop) / 2), ties to even.
                let offset = |size: u32, crop: u32| ((size - crop) as f64 / 2.0).round_ties_even() as u32;
                g.crop = Some((offset(g.scaled.0, target.0), offset(g.scaled.1, target.1)));
            }
            Resize::Letterbox { fill } => {
                let scale = (tw as f64 / w as f64).min(th as f64 / h as f64);
                let side = |v: usize, max: usize| ((v as f64 * scale).round() as usize).clamp(1, max) as u32;
                g.scaled = (side(w, tw), side(h, th));
                g.pad = Some(((target.0 - g.scaled.0) / 2, (target.1 - g.scaled.1) / 2));
                g.fill = fill;
            }
        }
        g
    }

    /// Whether the frame of size `(w, h)` comes out unchanged.
    fn is_identity(&self, (w, h): (usize, usize)) -> bool {
        self.scaled == (w as u32, h as u32)
            && self.scaled == self.target
            && self.crop.is_none_or(|o| o == (0, 0))
            && self.pad.is_none_or(|o| o == (0, 0))
    }

    /// Resizes interleaved `h × w × c` pixels into the target.
    fn resize(&self, pixels: &Pixels, (w, h): (usize, usize), c: usize) -> Pixels {
        let (w, h) = (w as u32, h as u32);
        match pixels {
            Pixels::U8(v) if c == 1 => Pixels::U8(self.apply::<Luma<u8>>(w, h, v, Luma([self.fill]))),
            Pixels::U8(v) => Pixels::U8(self.apply::<Rgb<u8>>(w, h, v, Rgb([self.fill; 3]))),
            Pixels::F32(v) => {
                let fill = self.fill as f32 / 255.0;
                if c == 1 {
                    Pixels::F32(self.apply::<Luma<f32>>(w, h, v, Luma([fill])))
                } else {
                    Pixels::F32(self.apply::<Rgb<f32>>(w, h, v, Rgb([fill; 3])))
                }
            }
        }
    }

    fn apply<P>(&self, w: u32, h: u32, data: &[P::Subpixel], fill: P) -> Vec<P::Subpixel>
    where
        P: Resampled,
        P::Subpixel: bytemuck::Pod,
    {
        // At its own size a frame is not resampled (PIL returns a copy too).
        let scaled = if (w, h) == self.scaled {
            data.to_vec()
        } else {
            resample::<P>(data, (w, h), self.scaled)
        };
        let scaled: ImageBuffer<P, Vec<P::Subpixel>> =
            ImageBuffer::from_raw(self.scaled.0, self.scaled.1, scaled).expect("sized by `resample`");
        if let Some((x, y)) = self.crop {
            return imageops::crop_imm(&scaled, x, y, self.target.0, self.target.1)
                .to_image()
                .into_raw();
        }
        if let Some((x, y)) = self.pad {
            let mut canvas = ImageBuffer::from_pixel(self.target.0, self.target.1, fill);
            imageops::replace(&mut canvas, &scaled, x as i64, y as i64);
            return canvas.into_raw();
        }
        scaled.into_raw()
    }
}

/// Bilinear (triangle-filter) resampling of interleaved pixels from `from`
/// to `to` (W, H), with the filter widened when downscaling: PIL's
/// `Image.resize(size, BILINEAR)`, which torchvision's `Resize` calls on PIL
/// images. `fast_image_resize` ports Pillow-SIMD's convolution (fixed point
/// for u8) with SIMD kernels; the `image` crate's resize it replaced was
/// 8.6 % of the monitor's time per frame on MobileNetV2-224, whose
/// throughput went from 0.97x to 1.11x Python's (docs/benchmarks.md).
///
/// `Resizer::resize_typed` with the one pixel type of `P`: the untyped
/// `Resizer::resize` dispatches on the pixel type at run time, which
/// instantiates every pixel type's SIMD kernels in this crate and tripled its
/// build time (31 → 102 s of a fresh `cargo run --release`).
fn resample<P>(data: &[P::Subpixel], from: (u32, u32), to: (u32, u32)) -> Vec<P::Subpixel>
where
    P: Resampled,
    P::Subpixel: bytemuck::Pod,
{
    use fast_image_resize::images::{TypedImage, TypedImageRef};
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
    let mut out = vec![
        <P::Subpixel as bytemuck::Zeroable>::zeroed();
        to.0 as usize * to.1 as usize * P::CHANNEL_COUNT as usize
    ];
    // Sizes and alignment are the caller's checked frame and `out` above, of
    // the pixel type's own element: neither constructor nor `resize` can fail.
    let src = TypedImageRef::<P::Fir>::from_buffer(from.0, from.1, bytemuck::cast_slice(data))
        .expect("checked frame buffer");
    let mut dst = TypedImage::<P::Fir>::from_buffer(to.0, to.1, bytemuck::cast_slice_mut(&mut out))
        .expect("sized above");
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new()
        .resize_typed(&src, &mut dst, &options)
        .expect("non-empty images of one pixel type");
    out
}

/// An `image` pixel type and the `fast_image_resize` pixel with the same
/// memory layout (interleaved channels of the same element).
trait Resampled: Pixel + 'static {
    type Fir: fast_image_resize::PixelTrait;
}

impl Resampled for Luma<u8> {
    type Fir = fast_image_resize::pixels::U8;
}

impl Resampled for Rgb<u8> {
    type Fir = fast_image_resize::pixels::U8x3;
}

impl Resampled for Luma<f32> {
    type Fir = fast_image_resize::pixels::F32;
}

impl Resampled for Rgb<f32> {
    type Fir = fast_image_resize::pixels::F32x3;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::preprocess::PixelRange;

    fn preprocess(colour: Colour, layout: Layout, resize: Resize) -> Preprocess {
        let c = colour.channels();
        Preprocess {
            input: "x".into(),
            logits: "y".into(),
            layout,
            colour,
            height: 2,
            width: 2,
            resize,
            datum: Datum::F32,
            range: PixelRange::Unit,
            mean: vec![0.5; c],
            std: vec![0.25; c],
        }
    }

    fn frame(w: usize, h: usize, c: usize, pixels: Vec<u8>) -> Frame {
        Frame {
            source: "f".into(),
            height: h,
            width: w,
            channels: c,
            pixels: Pixels::U8(pixels),
        }
    }

    fn floats(b: &InputBuffer) -> &[f32] {
        match b {
            InputBuffer::F32(v) => v,
            InputBuffer::U8(_) => panic!("f32 expected"),
        }
    }

    #[test]
    fn normalises_converts_orders_and_lays_out() {
        let grey = frame(2, 2, 1, vec![0, 255, 51, 204]);
        let p = preprocess(Colour::Grey, Layout::Nchw, Resize::Exact);
        let mut out = p.buffer();
        assert_eq!(to_input(&grey, &p, &mut out).unwrap(), Adjusted::default());
        let want = [-2.0, 2.0, -1.2, 1.2];
        for (a, b) in floats(&out).iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{out:?}");
        }
        // Grey → RGB, NCHW: three copies of the plane.
        let p = preprocess(Colour::Rgb, Layout::Nchw, Resize::Exact);
        let mut out = p.buffer();
        assert_eq!(to_input(&grey, &p, &mut out).unwrap().colour, Some((1, 3)));
        assert!((floats(&out)[4] + 2.0).abs() < 1e-5 && (floats(&out)[9] - 2.0).abs() < 1e-5);
        // RGB → grey: pure red becomes 76 (0.299 · 255).
        let red = frame(2, 2, 3, [255u8, 0, 0].repeat(4));
        let p = preprocess(Colour::Grey, Layout::Nhwc, Resize::Exact);
        let mut out = p.buffer();
        to_input(&red, &p, &mut out).unwrap();
        assert!((floats(&out)[0] - (76.0 / 255.0 - 0.5) / 0.25).abs() < 1e-5);
        // BGR: the network's channel 0 is the frame's blue.
        let rgb = frame(2, 2, 3, [10u8, 20, 30].repeat(4));
        for (colour, first) in [(Colour::Rgb, 10.0), (Colour::Bgr, 30.0)] {
            let p = preprocess(colour, Layout::Nhwc, Resize::Exact);
            let mut out = p.buffer();
            to_input(&rgb, &p, &mut out).unwrap();
            assert!(
                (floats(&out)[0] - (first / 255.0 - 0.5) / 0.25).abs() < 1e-5,
                "{colour}"
            );
        }
    }

    #[test]
    fn another_size_is_refused_or_resized_by_the_policy() {
        let big = frame(4, 4, 1, vec![100; 16]);
        let p = preprocess(Colour::Grey, Layout::Nchw, Resize::Exact);
        let e = to_input(&big, &p, &mut p.buffer()).unwrap_err().to_string();
        assert!(e.contains("4×4") && e.contains("--resize"), "{e}");
        for policy in [
            Resize::Stretch,
            Resize::Crop { shorter: 2 },
            Resize::Letterbox { fill: 0 },
        ] {
            let p = preprocess(Colour::Grey, Layout::Nchw, policy);
            let mut out = p.buffer();
            assert_eq!(to_input(&big, &p, &mut out).unwrap().resized, Some((4, 4)));
            assert!((floats(&out)[0] - (100.0 / 255.0 - 0.5) / 0.25).abs() < 1e-5);
        }
    }

    #[test]
    fn crop_and_letterbox_geometry_match_torchvision_and_yolo() {
        // Resize(256) + CenterCrop(224) of a 640×480 frame: 341×256, offset (58, 16).
        let g = Geometry::new(Resize::Crop { shorter: 256 }, (640, 480), (224, 224));
        assert_eq!((g.scaled, g.crop), ((341, 256), Some((58, 16))));
        // Portrait 300×500 → 256×426, offset (16, 101).
        let g = Geometry::new(Resize::Crop { shorter: 256 }, (300, 500), (224, 224));
        assert_eq!((g.scaled, g.crop), ((256, 426), Some((16, 101))));
        // Letterbox 640×480 into 320×320: 320×240, padded 40 above and below.
        let g = Geometry::new(Resize::Letterbox { fill: 114 }, (640, 480), (320, 320));
        assert_eq!((g.scaled, g.pad, g.fill), ((320, 240), Some((0, 40)), 114));
        // Letterbox pads with the fill value, which reaches the network normalised.
        let wide = frame(4, 2, 1, vec![255; 8]);
        let p = preprocess(Colour::Grey, Layout::Nchw, Resize::Letterbox { fill: 0 });
        let mut out = p.buffer();
        to_input(&wide, &p, &mut out).unwrap();
        let v = floats(&out);
        assert!((v[0] - 2.0).abs() < 1e-5 && (v[2] + 2.0).abs() < 1e-5, "{v:?}");
    }

    #[test]
    fn u8_networks_get_raw_pixels_and_float_frames_their_range() {
        let mut p = preprocess(Colour::Grey, Layout::Nchw, Resize::Exact);
        p.datum = Datum::U8;
        p.range = PixelRange::Byte;
        p.mean = vec![0.0];
        p.std = vec![1.0];
        let mut out = p.buffer();
        to_input(&frame(2, 2, 1, vec![0, 1, 254, 255]), &p, &mut out).unwrap();
        assert_eq!(out, InputBuffer::U8(vec![0, 1, 254, 255]));
        let float = Frame {
            pixels: Pixels::F32(vec![0.0, 1.0 / 255.0, 0.5, 1.0]),
            ..frame(2, 2, 1, vec![])
        };
        to_input(&float, &p, &mut out).unwrap();
        assert_eq!(out, InputBuffer::U8(vec![0, 1, 128, 255]));
        // A 0-255 float network reads a float frame's value × 255.
        let mut p = preprocess(Colour::Grey, Layout::Nchw, Resize::Exact);
        p.range = PixelRange::Byte;
        p.mean = vec![0.0];
        p.std = vec![1.0];
        let mut out = p.buffer();
        to_input(&float, &p, &mut out).unwrap();
        assert_eq!(floats(&out), &[0.0, 1.0, 127.5, 255.0]);
    }
}
