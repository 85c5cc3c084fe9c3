#![cfg(all(feature = "frames", feature = "monitor"))]
//! The `--resize` policies against PIL (torchvision's `Resize` + `CenterCrop`
//! on a PIL image, a plain bilinear resize, and a letterbox), on frames
//! below, at and above the network's input size and the crop's shorter
//! side: each policy is the stated transform for every frame size.
//!
//! Reference values: `tools/fixtures/resize_reference.py` (PIL), which also
//! says why one grey level of difference is allowed.

use lsgm::frames::{to_input, Frame, Pixels};
use lsgm::model::preprocess::{Colour, Datum, InputBuffer, Layout, PixelRange, Resize};
use lsgm::Preprocess;
use serde_json::Value;

/// The fixture script's frames: `(7x + 13y + 31ch + 57i + (x·y·(i+1)) mod 17) mod 256`.
fn formula(i: usize, h: usize, w: usize, c: usize) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(h * w * c);
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                pixels.push(((7 * x + 13 * y + 31 * ch + 57 * i + (x * y * (i + 1)) % 17) % 256) as u8);
            }
        }
    }
    pixels
}

/// An identity normalisation, so the network input is the resized pixels
/// (`H×W×C`, as the frame).
fn preprocess(c: usize, resize: Resize, float: bool, (w, h): (u32, u32)) -> Preprocess {
    Preprocess {
        input: "x".into(),
        logits: "y".into(),
        layout: Layout::Nhwc,
        colour: if c == 1 { Colour::Grey } else { Colour::Rgb },
        height: h,
        width: w,
        resize,
        datum: Datum::F32,
        range: if float { PixelRange::Unit } else { PixelRange::Byte },
        mean: vec![0.0; c],
        std: vec![1.0; c],
    }
}

#[test]
fn every_policy_is_the_stated_transform_at_every_frame_size() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/resize.json")).unwrap();
    let target = (
        doc["target"]["width"].as_u64().unwrap() as u32,
        doc["target"]["height"].as_u64().unwrap() as u32,
    );
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 40, "the fixture lost its cases");
    for case in cases {
        let f = &case["frame"];
        let n = |k: &str| f[k].as_u64().unwrap() as usize;
        let (w, h, c, float) = (
            n("width"),
            n("height"),
            n("channels"),
            f["float"].as_bool().unwrap(),
        );
        let policy = case["policy"].as_str().unwrap();
        let resize = Resize::parse(policy, target.1, target.0).unwrap();
        let bytes = formula(n("index"), h, w, c);
        let pixels = if float {
            Pixels::F32(bytes.iter().map(|&v| v as f32 / 255.0).collect())
        } else {
            Pixels::U8(bytes)
        };
        let frame = Frame {
            source: format!("{policy} {w}×{h}×{c}"),
            height: h,
            width: w,
            channels: c,
            pixels,
        };
        let p = preprocess(c, resize, float, target);
        let mut out = p.buffer();
        let adjusted = to_input(&frame, &p, &mut out).unwrap();
        let InputBuffer::F32(got) = out else {
            panic!("f32 input expected")
        };
        let want: Vec<f64> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), want.len(), "{}", frame.source);
        let tolerance = if float { 1e-5 } else { 1.0 };
        let worst = got
            .iter()
            .zip(&want)
            .map(|(&g, &r)| (g as f64 - r).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= tolerance,
            "{}: differs from PIL by up to {worst} (allowed {tolerance})",
            frame.source
        );
        // The once-per-run note says a frame was changed exactly when it was:
        // only stretch and letterbox leave a frame at the input size alone.
        let untouched = (w as u32, h as u32) == target && !policy.starts_with("crop");
        assert_eq!(adjusted.resized.is_none(), untouched, "{}", frame.source);
    }
}

#[test]
fn a_frame_at_the_input_size_is_still_scaled_to_the_crops_shorter_side() {
    // 24×24 under crop:32 must be Resize(32) then CenterCrop(24): its centre
    // 18×18 pixels, magnified — not the frame itself.
    let frame = Frame {
        source: "f".into(),
        height: 24,
        width: 24,
        channels: 1,
        pixels: Pixels::U8(formula(0, 24, 24, 1)),
    };
    let p = preprocess(1, Resize::Crop { shorter: 32 }, false, (24, 24));
    let mut out = p.buffer();
    let adjusted = to_input(&frame, &p, &mut out).unwrap();
    assert_eq!(adjusted.resized, Some((24, 24)));
    let note = adjusted.notes(&p).join("; ");
    assert!(note.contains("24×24") && note.contains("crop:32"), "{note}");
    let InputBuffer::F32(got) = out else {
        panic!("f32 input expected")
    };
    let same = got
        .iter()
        .zip(frame.pixels.as_u8().unwrap())
        .filter(|(&g, &v)| g == v as f32)
        .count();
    assert!(same < got.len() / 4, "{same} of {} values unchanged", got.len());
}
