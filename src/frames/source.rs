//! Command-line inputs → a stream of frames.

use super::{list_images, read_idx_images, read_image, read_npy_frames, Frame, RawReader};
use anyhow::{bail, Result};
use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One command-line input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A PNG/JPEG file.
    Image(PathBuf),
    /// A directory's images, sorted.
    Images(Vec<PathBuf>),
    /// An IDX file (raw or .gz).
    Idx(PathBuf),
    /// A `.npy` image stack.
    Npy(PathBuf),
    /// Raw frames on stdin.
    Stdin,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Classifies paths: `-` is stdin, directories are image folders, files go
/// by extension (`.png/.jpg`, `.npy`, anything else is tried as IDX).
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<Input>> {
    paths
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                Ok(Input::Stdin)
            } else if p.is_dir() {
                Ok(Input::Images(list_images(p)?))
            } else if !p.exists() {
                bail!("{}: no such file or directory", p.display())
            } else if is_image(p) {
                Ok(Input::Image(p.clone()))
            } else if p.extension().is_some_and(|e| e == "npy") {
                Ok(Input::Npy(p.clone()))
            } else {
                Ok(Input::Idx(p.clone()))
            }
        })
        .collect()
}

/// Frames of a list of inputs, lazily: one image file is decoded at a time,
/// stdin is read frame by frame. Each item is `(source, frame)`; a frame that
/// cannot be read is an `Err` and the stream goes on.
pub struct FrameSource {
    inputs: VecDeque<Input>,
    pending: VecDeque<Frame>,
    images: VecDeque<PathBuf>,
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
            pending: VecDeque::new(),
            images: VecDeque::new(),
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
            if let Some(f) = self.pending.pop_front() {
                return Some((f.source.clone(), Ok(f)));
            }
            if let Some(p) = self.images.pop_front() {
                return Some(from_file(&p, read_image));
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
                Input::Idx(p) => match read_idx_images(&p) {
                    Ok(fs) => self.pending = fs.into(),
                    Err(e) => return Some((p.display().to_string(), Err(e))),
                },
                Input::Npy(p) => match read_npy_frames(&p) {
                    Ok(fs) => self.pending = fs.into(),
                    Err(e) => return Some((p.display().to_string(), Err(e))),
                },
                Input::Stdin => {
                    let shape = self.raw_shape.expect("checked in new");
                    self.raw = Some(RawReader::new(Box::new(std::io::stdin()), shape, "stdin"));
                }
            }
        }
    }
}
