//! Command-line inputs → a stream of frames.

use super::idx::{idx_image_count, IdxFrames};
use super::images::image_format;
use super::npy::NpyFrames;
use super::{list_images, read_image, Frame, RawReader};
use anyhow::{bail, Context, Result};
use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a file holds, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image (any format the `image` crate knows; reading it may still
    /// be refused by name).
    Image,
    /// A NumPy `.npy` array.
    Npy,
    /// An IDX file (the MNIST format), raw or gzip-compressed.
    Idx,
}

/// The first 16 bytes of a file (fewer if it is shorter).
pub(crate) fn head(p: &Path) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(16);
    std::fs::File::open(p)?.take(16).read_to_end(&mut buf)?;
    Ok(buf)
}

/// IDX element types (u8, i8, i16, i32, f32, f64): all are recognised so
/// that the IDX reader can say which it does not read.
const IDX_TYPES: [u8; 6] = [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e];

/// What `p` holds, by its content (never by its extension).
pub fn sniff(p: &Path) -> Result<Kind> {
    let h = head(p).with_context(|| format!("cannot read {}", p.display()))?;
    if h.starts_with(b"\x93NUMPY") {
        Ok(Kind::Npy)
    } else if image_format(&h).is_some() {
        Ok(Kind::Image)
    } else if h.starts_with(&[0x1f, 0x8b]) || (h.len() >= 4 && h[..2] == [0, 0] && IDX_TYPES.contains(&h[2]))
    {
        Ok(Kind::Idx)
    } else {
        bail!(
            "{}: not a frame file this tool reads: expected an image (PNG, JPEG, BMP, GIF, TIFF, WebP), \
             a .npy stack or an IDX file (raw or .gz)",
            p.display()
        )
    }
}

/// One command-line input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An image file.
    Image(PathBuf),
    /// A directory's images, sorted.
    Images(Vec<PathBuf>),
    /// An IDX file (raw or .gz).
    Idx(PathBuf),
    /// A `.npy` image stack.
    Npy(PathBuf),
    /// Raw frames on stdin.
    Stdin,
    /// A path that cannot be read as frames (missing, unrecognised, an
    /// empty directory): one error item, and the stream goes on.
    Unreadable {
        /// The path as given.
        path: PathBuf,
        /// Why, naming the path.
        error: String,
    },
}

/// Classifies paths: `-` is stdin, directories are image folders (files
/// in them that are not images are skipped, with a note), files go by
/// their content ([`sniff`]). A path that cannot be read becomes
/// [`Input::Unreadable`]: its error is one item of the frame stream.
pub fn expand_inputs(paths: &[PathBuf]) -> Vec<Input> {
    paths
        .iter()
        .map(|p| {
            expand(p).unwrap_or_else(|e| Input::Unreadable {
                path: p.clone(),
                error: format!("{e:#}"),
            })
        })
        .collect()
}

fn expand(p: &Path) -> Result<Input> {
    if p.as_os_str() == "-" {
        return Ok(Input::Stdin);
    }
    if p.is_dir() {
        let (images, skipped) = list_images(p)?;
        if let Some(first) = skipped.first() {
            super::stderr_line(format_args!(
                "note: {}: skipped {} file(s) that are not images (e.g. {})",
                p.display(),
                skipped.len(),
                first.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
        return Ok(Input::Images(images));
    }
    if !p.exists() {
        bail!("{}: no such file or directory", p.display());
    }
    Ok(match sniff(p)? {
        Kind::Image => Input::Image(p.to_path_buf()),
        Kind::Npy => Input::Npy(p.to_path_buf()),
        Kind::Idx => Input::Idx(p.to_path_buf()),
    })
}

/// Frames of a list of inputs, lazily: one image file, IDX or `.npy` frame
/// is decoded at a time, stdin is read frame by frame (memory holds one
/// frame, whatever the inputs' size). Each item is
/// `(source, frame)`; a frame that cannot be read is an `Err` and the
/// stream goes on.
pub struct FrameSource {
    inputs: VecDeque<Input>,
    idx: Option<IdxFrames>,
    images: VecDeque<PathBuf>,
    npy: Option<NpyFrames>,
    raw: Option<RawReader<Box<dyn Read>>>,
    raw_shape: Option<(usize, usize, usize)>,
}

impl FrameSource {
    /// A source over `inputs`; `raw_shape` is needed for stdin.
    pub fn new(inputs: Vec<Input>, raw_shape: Option<(usize, usize, usize)>) -> Result<Self> {
        if inputs.contains(&Input::Stdin) && raw_shape.is_none() {
            bail!("reading frames from stdin (-) needs --raw WIDTHxHEIGHTxCHANNELS");
        }
        Ok(FrameSource {
            inputs: inputs.into(),
            idx: None,
            images: VecDeque::new(),
            npy: None,
            raw: None,
            raw_shape,
        })
    }
}

/// A frame with its source, or why it could not be read.
pub type Sourced = (String, Result<Frame>);

fn from_file(p: &Path, f: impl Fn(&Path) -> Result<Frame>) -> Sourced {
    (p.display().to_string(), f(p))
}

impl Iterator for FrameSource {
    type Item = Sourced;

    fn next(&mut self) -> Option<Sourced> {
        loop {
            if let Some(idx) = &mut self.idx {
                let source = format!("{}#{}", idx.name(), idx.next_index());
                match idx.next() {
                    Some(f) => return Some((source, f)),
                    None => self.idx = None,
                }
                continue;
            }
            if let Some(p) = self.images.pop_front() {
                return Some(from_file(&p, read_image));
            }
            if let Some(npy) = &mut self.npy {
                let source = format!("{}#{}", npy.name(), npy.next_index());
                match npy.next() {
                    Some(f) => return Some((source, f)),
                    None => self.npy = None,
                }
                continue;
            }
            if let Some(raw) = &mut self.raw {
                let index = raw.index();
                match raw.next_frame() {
                    Some(f) => return Some((format!("stdin#{index}"), f)),
                    None => self.raw = None,
                }
                continue;
            }
            match self.inputs.pop_front()? {
                Input::Image(p) => return Some(from_file(&p, read_image)),
                Input::Images(ps) => self.images = ps.into(),
                Input::Idx(p) => match IdxFrames::open(&p) {
                    Ok(frames) => self.idx = Some(frames),
                    Err(e) => return Some((p.display().to_string(), Err(e))),
                },
                Input::Npy(p) => match NpyFrames::open(&p) {
                    Ok(frames) => self.npy = Some(frames),
                    Err(e) => return Some((p.display().to_string(), Err(e))),
                },
                Input::Stdin => {
                    let shape = self.raw_shape.expect("checked in new");
                    self.raw = Some(RawReader::new(Box::new(std::io::stdin()), shape, "stdin"));
                }
                Input::Unreadable { path, error } => {
                    return Some((path.display().to_string(), Err(anyhow::anyhow!(error))))
                }
            }
        }
    }
}

/// How many frames `inputs` hold, from their headers and listings (no
/// pixel data is read): `None` when that cannot be known before reading
/// them (stdin, or an input whose header cannot be read: reading it will
/// say why).
pub fn count_frames(inputs: &[Input]) -> Option<usize> {
    inputs.iter().try_fold(0usize, |total, input| {
        let n = match input {
            Input::Image(_) => 1,
            Input::Images(ps) => ps.len(),
            Input::Idx(p) => idx_image_count(p).ok()?,
            Input::Npy(p) => NpyFrames::open(p).ok()?.len(),
            Input::Stdin | Input::Unreadable { .. } => return None,
        };
        total.checked_add(n)
    })
}
