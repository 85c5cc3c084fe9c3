//! Frame loaders: where the pixels come from.
//!
//! Every loader yields [`Frame`]s (u8 pixels, interleaved `H×W×C`) with a
//! `source` string for reports, and every failure names the file and says
//! what was expected. `convert` turns a frame into the network's input
//! tensor exactly as the model file's preprocessing says.

mod convert;
mod idx;
mod images;
mod npy;
mod raw;
mod source;

pub use convert::{to_input, InputSpec};
pub use idx::{read_idx_images, read_idx_labels};
pub use images::{list_images, read_image};
pub use npy::read_npy_frames;
pub use raw::{parse_raw_shape, RawReader};
pub use source::{expand_inputs, FrameSource, Input, Sourced};

/// One image: `height × width × channels` u8 pixels, interleaved.
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
    pub pixels: Vec<u8>,
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
