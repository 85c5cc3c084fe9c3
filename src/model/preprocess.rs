//! How a frame becomes the network's input: the one description, stored in
//! the model file and applied identically by every command.
//!
//! A frame is `H×W×C` pixels (u8, or f32 in `[0, 1]`). To become the
//! network's input it goes through, in this order:
//!
//! 1. **colour** — grey frames are copied to three channels for an RGB/BGR
//!    network, colour frames become grey with ITU-R 601 weights (PIL's `L`)
//!    for a grey one; [`Colour::Bgr`] reverses the channel order;
//! 2. **size** — [`Resize`]: `exact` refuses frames of another size,
//!    `stretch` resizes to `H×W`, `crop` resizes the shorter side to S and
//!    takes the centre (torchvision's `Resize(S)` + `CenterCrop`; every
//!    frame, also one already at `H×W`), `letterbox` fits the frame inside
//!    and pads; all bilinear with antialiasing (`fast_image_resize`'s
//!    port of Pillow-SIMD, PIL's `BILINEAR`; `tests/resize.rs` compares
//!    each policy with PIL on frames below, at and above the input size);
//! 3. **values** — [`Datum::U8`] networks get the raw pixel values;
//!    [`Datum::F32`] networks get `(v − mean_c) / std_c` where `v` is the
//!    pixel in the [`PixelRange`] (`0-1`: `u8/255`, as torchvision's
//!    `ToTensor`; `0-255`: the raw value);
//! 4. **layout** — NCHW or NHWC ([`Layout`]).
//!
//! The enums here are the wire format's (postcard encodes variants by
//! index: only ever append). [`Preprocess`] (feature `alloc`) is the owned,
//! validated form every host command works with.

use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// Memory layout of the network's image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Layout {
    /// Batch, channel, height, width (ONNX's usual layout).
    Nchw,
    /// Batch, height, width, channel (TensorFlow/Keras exports).
    Nhwc,
}

impl Layout {
    /// The tensor shape of one frame of `c` channels, `h × w` pixels.
    pub fn shape(self, c: usize, h: usize, w: usize) -> [usize; 4] {
        match self {
            Layout::Nchw => [1, c, h, w],
            Layout::Nhwc => [1, h, w, c],
        }
    }
}

/// Channels of the network's input and their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Colour {
    /// One grey channel.
    Grey,
    /// Red, green, blue (PyTorch / PIL convention).
    Rgb,
    /// Blue, green, red (OpenCV / Caffe convention).
    Bgr,
}

impl Colour {
    /// Number of channels: 1 or 3.
    pub fn channels(self) -> usize {
        match self {
            Colour::Grey => 1,
            Colour::Rgb | Colour::Bgr => 3,
        }
    }
}

/// How a frame of another size than the network's input is brought to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Resize {
    /// Frames must already have the input's size; others are refused.
    Exact,
    /// Resize to the input's height and width (the aspect ratio changes).
    Stretch,
    /// Resize so the shorter side is `shorter` pixels (aspect kept), then
    /// take the centre `H×W` (torchvision's `Resize(shorter)` +
    /// `CenterCrop((H, W))`), for every frame: one already `H×W` is
    /// scaled to `shorter` too, as torchvision does. `shorter ≥ max(H, W)`.
    Crop {
        /// Length of the shorter side after resizing.
        shorter: u32,
    },
    /// Resize so the whole frame fits inside `H×W` (aspect kept) and pad the
    /// rest with `fill` (every channel), centred.
    Letterbox {
        /// Pixel value of the padding (0–255).
        fill: u8,
    },
}

/// Element type of the network's input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Datum {
    /// `f32`, normalised per channel.
    F32,
    /// `u8` raw pixel values (the network normalises inside its graph).
    U8,
}

/// What a pixel's value means to an `f32` network before mean/std.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PixelRange {
    /// `u8 / 255`: values in `[0, 1]` (torchvision's `ToTensor`).
    Unit,
    /// The raw `u8` value: `[0, 255]` (Caffe / OpenCV / mmcv pipelines).
    Byte,
}

impl PixelRange {
    /// What a u8 pixel is multiplied by.
    pub fn scale(self) -> f32 {
        match self {
            PixelRange::Unit => 1.0 / 255.0,
            PixelRange::Byte => 1.0,
        }
    }
    /// Largest value a pixel maps to (1 or 255).
    pub fn max(self) -> f32 {
        match self {
            PixelRange::Unit => 1.0,
            PixelRange::Byte => 255.0,
        }
    }
}

pub use crate::kind::ParseError;

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Nchw => "NCHW",
            Layout::Nhwc => "NHWC",
        })
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Colour::Grey => "grey",
            Colour::Rgb => "rgb",
            Colour::Bgr => "bgr",
        })
    }
}

impl FromStr for Colour {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let is = |name: &str| s.eq_ignore_ascii_case(name);
        if is("grey") || is("gray") {
            Ok(Colour::Grey)
        } else if is("rgb") {
            Ok(Colour::Rgb)
        } else if is("bgr") {
            Ok(Colour::Bgr)
        } else {
            Err(ParseError {
                what: "channel order",
                expected: "rgb or bgr",
            })
        }
    }
}

impl fmt::Display for Resize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resize::Exact => f.write_str("exact"),
            Resize::Stretch => f.write_str("stretch"),
            Resize::Crop { shorter } => write!(f, "crop:{shorter}"),
            Resize::Letterbox { fill } => write!(f, "letterbox:{fill}"),
        }
    }
}

impl Resize {
    /// Parses `exact`, `stretch`, `crop[:SHORTER]` or `letterbox[:FILL]`
    /// for an input of `height × width`: `crop` alone resizes the shorter
    /// side to `max(height, width)`, `letterbox` alone pads with 0.
    pub fn parse(s: &str, height: u32, width: u32) -> Result<Resize, ParseError> {
        const WHAT: &str = "resize policy";
        let unknown = ParseError {
            what: WHAT,
            expected:
                "exact, stretch, crop[:SHORTER] (e.g. crop:256) or letterbox[:FILL] (e.g. letterbox:114)",
        };
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        match (name, arg) {
            ("exact", None) => Ok(Resize::Exact),
            ("stretch", None) => Ok(Resize::Stretch),
            ("crop", None) => Ok(Resize::Crop {
                shorter: height.max(width),
            }),
            ("crop", Some(a)) => match a.parse() {
                Ok(shorter) if (1..=MAX_SIDE).contains(&shorter) => Ok(Resize::Crop { shorter }),
                _ => Err(ParseError {
                    what: WHAT,
                    expected: "crop:SHORTER with SHORTER a side length in pixels, 1 to 16384 (e.g. crop:256)",
                }),
            },
            ("letterbox", None) => Ok(Resize::Letterbox { fill: 0 }),
            ("letterbox", Some(a)) => {
                a.parse()
                    .map(|fill| Resize::Letterbox { fill })
                    .map_err(|_| ParseError {
                        what: WHAT,
                        expected: "letterbox:FILL with FILL a pixel value, 0 to 255 (e.g. letterbox:114)",
                    })
            }
            _ => Err(unknown),
        }
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Datum::F32 => "f32",
            Datum::U8 => "u8",
        })
    }
}

impl fmt::Display for PixelRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PixelRange::Unit => "0-1",
            PixelRange::Byte => "0-255",
        })
    }
}

impl FromStr for PixelRange {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "0-1" | "unit" => Ok(PixelRange::Unit),
            "0-255" | "byte" => Ok(PixelRange::Byte),
            _ => Err(ParseError {
                what: "input range",
                expected: "0-1 (pixels / 255, torchvision's ToTensor) or 0-255 (raw pixel values)",
            }),
        }
    }
}

/// Largest input side accepted (pixels).
pub const MAX_SIDE: u32 = 1 << 14;

/// The checks a preprocessing must pass, shared by the owned form and the
/// file decoder: sizes, one finite mean and positive std per channel, the
/// `u8` convention, and a crop that covers the input.
pub(crate) fn check<I: Iterator<Item = f32> + Clone>(
    colour: Colour,
    (height, width): (u32, u32),
    resize: Resize,
    (datum, range): (Datum, PixelRange),
    mean: I,
    std: I,
) -> Result<(), &'static str> {
    let c = colour.channels();
    if height == 0 || width == 0 || height > MAX_SIDE || width > MAX_SIDE {
        return Err("input size out of range (1..=16384 per side)");
    }
    if mean.clone().count() != c || std.clone().count() != c {
        return Err("mean and std need one value per input channel");
    }
    if !mean.clone().chain(std.clone()).all(f32::is_finite) {
        return Err("mean and std must be finite");
    }
    if std.clone().any(|s| s <= 0.0) {
        return Err("std must be positive");
    }
    if datum == Datum::U8
        && (range != PixelRange::Byte || mean.clone().any(|m| m != 0.0) || std.clone().any(|s| s != 1.0))
    {
        return Err("a u8 input takes raw pixel values: range 0-255, mean 0, std 1");
    }
    if let Resize::Crop { shorter } = resize {
        if shorter < height.max(width) || shorter > MAX_SIDE {
            return Err("crop: the shorter side must be resized to at least the input's larger side");
        }
    }
    Ok(())
}

#[cfg(feature = "alloc")]
pub use owned::{InputBuffer, Preprocess};

#[cfg(feature = "alloc")]
mod owned {
    use super::*;
    use crate::bytes::LeF32;
    use crate::model::wire;
    use alloc::string::{String, ToString};
    use alloc::vec;
    use alloc::vec::Vec;

    /// How a frame becomes the network's input (see the [module
    /// docs](super)): set when fitting, stored in the model file, applied by
    /// the monitor, `features` and `eval` alike.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Preprocess {
        /// ONNX input name.
        pub input: String,
        /// The tensor used as class logits (an ONNX output, or the input of
        /// a final Softmax).
        pub logits: String,
        /// Tensor layout of the input.
        pub layout: Layout,
        /// Channels and their order.
        pub colour: Colour,
        /// Input height in pixels.
        pub height: u32,
        /// Input width in pixels.
        pub width: u32,
        /// How frames of another size are brought to `height × width`.
        pub resize: Resize,
        /// Element type of the input tensor.
        pub datum: Datum,
        /// What a pixel means before mean/std (`F32` only; `U8` inputs use `Byte`).
        pub range: PixelRange,
        /// Per-channel mean, in `range` units (`U8`: 0).
        pub mean: Vec<f32>,
        /// Per-channel standard deviation, in `range` units (`U8`: 1).
        pub std: Vec<f32>,
    }

    /// A network input tensor's values, laid out as the network expects.
    #[derive(Debug, Clone, PartialEq)]
    pub enum InputBuffer {
        /// For [`Datum::F32`] networks.
        F32(Vec<f32>),
        /// For [`Datum::U8`] networks.
        U8(Vec<u8>),
    }

    impl Preprocess {
        /// Channels of the input (1 or 3).
        pub fn channels(&self) -> usize {
            self.colour.channels()
        }

        /// The input tensor's shape for one frame, in its layout.
        pub fn input_shape(&self) -> [usize; 4] {
            self.layout
                .shape(self.channels(), self.height as usize, self.width as usize)
        }

        /// Values in one input tensor.
        pub fn input_len(&self) -> usize {
            self.channels() * self.height as usize * self.width as usize
        }

        /// A zeroed buffer of the input's element type and length.
        pub fn buffer(&self) -> InputBuffer {
            match self.datum {
                Datum::F32 => InputBuffer::F32(vec![0.0; self.input_len()]),
                Datum::U8 => InputBuffer::U8(vec![0; self.input_len()]),
            }
        }

        /// Checks every field; the reason says what is wrong.
        pub fn validate(&self) -> Result<(), &'static str> {
            check(
                self.colour,
                (self.height, self.width),
                self.resize,
                (self.datum, self.range),
                self.mean.iter().copied(),
                self.std.iter().copied(),
            )
        }

        /// The wire form of this preprocessing, over `mean` and `std`
        /// already packed as `f32` LE (the inverse of [`Preprocess::from_wire`]).
        pub fn to_wire<'a>(&'a self, mean: &'a [u8], std: &'a [u8]) -> wire::Preprocess<'a> {
            wire::Preprocess {
                input: &self.input,
                logits: &self.logits,
                layout: self.layout,
                colour: self.colour,
                height: self.height,
                width: self.width,
                resize: self.resize,
                datum: self.datum,
                range: self.range,
                mean,
                std,
            }
        }

        /// The owned form of a model file's preprocessing.
        pub fn from_wire(p: &wire::Preprocess<'_>) -> Preprocess {
            let floats = |b: &[u8]| LeF32::new(b).map_or_else(Vec::new, |v| v.iter().collect());
            Preprocess {
                input: p.input.to_string(),
                logits: p.logits.to_string(),
                layout: p.layout,
                colour: p.colour,
                height: p.height,
                width: p.width,
                resize: p.resize,
                datum: p.datum,
                range: p.range,
                mean: floats(p.mean),
                std: floats(p.std),
            }
        }
    }

    impl fmt::Display for Preprocess {
        /// One line, e.g. `1×3×224×224 NCHW f32 rgb, range 0-1, mean [..],
        /// std [..], resize crop:256`.
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let [n, a, b, c] = self.input_shape();
            write!(
                f,
                "{n}×{a}×{b}×{c} {} {} {}",
                self.layout, self.datum, self.colour
            )?;
            match self.datum {
                Datum::F32 => write!(
                    f,
                    ", range {}, mean {:?}, std {:?}",
                    self.range, self.mean, self.std
                )?,
                Datum::U8 => f.write_str(", raw pixel values")?,
            }
            write!(f, ", resize {}", self.resize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for c in [Colour::Grey, Colour::Rgb, Colour::Bgr] {
            assert_eq!(c.to_string().parse::<Colour>(), Ok(c));
        }
        for r in [PixelRange::Unit, PixelRange::Byte] {
            assert_eq!(r.to_string().parse::<PixelRange>(), Ok(r));
        }
        for r in [
            Resize::Exact,
            Resize::Stretch,
            Resize::Crop { shorter: 256 },
            Resize::Letterbox { fill: 114 },
        ] {
            assert_eq!(Resize::parse(&r.to_string(), 224, 224), Ok(r));
        }
        assert_eq!(Resize::parse("crop", 224, 320), Ok(Resize::Crop { shorter: 320 }));
        assert_eq!(
            Resize::parse("letterbox", 1, 1),
            Ok(Resize::Letterbox { fill: 0 })
        );
        assert!(Resize::parse("crop:x", 1, 1).is_err() && Resize::parse("fit", 1, 1).is_err());
        let e = Resize::parse("crop:0", 1, 1).unwrap_err().to_string();
        assert!(e.contains("1 to 16384"), "{e}");
        let e = Resize::parse("letterbox:300", 1, 1).unwrap_err().to_string();
        assert!(e.contains("0 to 255"), "{e}");
        assert!("rgba".parse::<Colour>().is_err() && "0-2".parse::<PixelRange>().is_err());
    }
}
