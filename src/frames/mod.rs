//! Frame loaders: where the pixels come from, and how they become the
//! network's input.
//!
//! Every loader yields [`Frame`]s (interleaved `H×W×C` pixels, u8 or f32
//! in `[0, 1]`) with a `source` string for reports, and every failure names
//! the file (and the frame inside it) and says what was expected. Files are
//! recognised by their content, not their extension ([`recognise`], the
//! one recognition, whether a file is named, listed in a directory or a
//! pipe); files close to a frame file but not one (empty, cut short, HEIC,
//! `.npz`, zip, a float TIFF, an object-dtype `.npy`) are refused saying
//! what they are:
//!
//! | input | accepted |
//! |---|---|
//! | images | PNG, JPEG, BMP, GIF (first frame), TIFF, WebP; EXIF orientation applied as a viewer shows it; grey stays 1 channel, everything else becomes RGB (alpha dropped, as PIL's `convert("RGB")`); 16-bit values scaled to 8 bits as `round(v / 257)`. A file that ends early is refused (`truncation.rs`) |
//! | directories | the images of the tree, in path order ([`list_images`]); a file named like an image or holding one is read as if named (its frame, or its error line), a subfolder that cannot be listed is an error item in its place, other files are skipped with a note by kind |
//! | IDX (raw or `.gz`, every member of a multi-member gzip) | u8 `N×H×W` or `N×H×W×C` (C = 1 or 3), read one frame at a time |
//! | `.npy` | `N×H×W`, `N×H×W×C`, `N×C×H×W` (C = 1 or 3), one `H×W×C` (a 3-D array whose last axis is 1 or 3) or `H×W` image; u8, or f32/f64 in `[0, 1]`; `H×W×2`, `H×W×4` (alpha) are refused, `3×H×W` as ambiguous |
//! | pipes | any of the above in a FIFO, `<(…)`, `/dev/stdin`: opened once, recognised from the bytes read, read as a stream ([`Input::Stream`]) |
//! | raw stream | fixed-size u8 frames, `rgb24`, `bgr24` (made RGB) or `gray` ([`RawFormat`], `--raw`) |
//!
//! [`NpyArray`] is the one `.npy` reader, of frame stacks here and of
//! `fit-and-export`'s feature files.
//!
//! [`to_input`] turns a frame into the network's input exactly as the
//! model's [`crate::Preprocess`] says.

mod convert;
mod gzip;
mod idx;
mod images;
mod listing;
mod notes;
mod npy;
mod raw;
mod recognise;
mod source;
mod truncation;

pub use convert::{to_input, Adjusted};
pub use idx::{idx_image_count, read_idx_images, read_idx_labels, IdxFrames};
pub use images::{decode_image, read_image};
pub use listing::{list_images, Entry, Listing, OnUnreadable, Skipped};
pub use notes::{capture_lines, count, stderr_line, Notes};
pub use npy::{read_npy_frames, NpyArray, NpyDtype, NpyFrames, NpyValues};
pub use raw::{parse_raw_format, PixelFormat, RawFormat, RawReader};
pub use recognise::{recognise, sniff, Kind};
pub use source::{count_frames, expand_inputs, expand_inputs_for, FrameSource, Input, Sourced};

/// Pixel values of a frame, interleaved `H×W×C`.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// 8-bit values 0–255.
    U8(Vec<u8>),
    /// Floats in `[0, 1]` (from `.npy` float stacks).
    F32(Vec<f32>),
}

impl Pixels {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Pixels::U8(v) => v.len(),
            Pixels::F32(v) => v.len(),
        }
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values, if they are 8-bit.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match self {
            Pixels::U8(v) => Some(v),
            Pixels::F32(_) => None,
        }
    }
}

/// One image: `height × width × channels` pixels, interleaved.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Where it came from (`file`, `file#index`).
    pub source: String,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// `height × width × channels` values.
    pub pixels: Pixels,
}

/// Reads until `buf` is full or the stream ends: the bytes read (fewer
/// only at the end of the stream).
pub(crate) fn read_up_to(r: &mut dyn std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A file shipped in the repository's `models/`, found from the current
/// directory or, failing that, from the source tree this binary was built
/// from (so `cargo run` works from anywhere inside the checkout).
pub fn shipped(rel: &str) -> std::path::PathBuf {
    let local = std::path::PathBuf::from(rel);
    if local.exists() {
        return local;
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
