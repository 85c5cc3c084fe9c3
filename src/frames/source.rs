//! Command-line inputs → a stream of frames.

use super::idx::{idx_image_count, IdxFrames};
use super::images::read_image_from;
use super::listing::{Entry, OnUnreadable};
use super::npy::NpyFrames;
use super::recognise::{not_found, read_head, recognise, sniff, Kind};
use super::{list_images, read_image, Frame, RawFormat, RawReader};
use anyhow::{bail, Context, Result};
use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One command-line input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An image file.
    Image(PathBuf),
    /// A directory tree's images, in path order ([`list_images`]): each
    /// file is recognised when its turn comes, as a named file is, and an
    /// entry that could not be listed is one error item in its place.
    Images(Vec<Entry>),
    /// An IDX file (raw or .gz).
    Idx(PathBuf),
    /// A `.npy` image stack.
    Npy(PathBuf),
    /// A file that is not a regular file: a named pipe, `<(…)`,
    /// `/dev/stdin`, a character device. Opened once, when its turn comes,
    /// recognised from the first bytes read from it and read on as a
    /// stream (its length cannot be known, nor can it be read twice).
    /// Opening it may block until a writer comes: read it on a thread a
    /// stop signal does not wait for.
    Stream(PathBuf),
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

impl Input {
    /// True for inputs whose reading can block for as long as their writer
    /// is quiet, or in `open` until one comes: [`Input::Stdin`] and
    /// [`Input::Stream`].
    pub fn is_stream(&self) -> bool {
        matches!(self, Input::Stdin | Input::Stream(_))
    }
}

/// Classifies paths: `-` is stdin, directories are image trees (files in
/// them that are not images are skipped, counted by kind in a note; a note
/// says how many images came from subfolders), regular files go by their
/// content ([`sniff`]), other files (pipes, devices) are
/// [`Input::Stream`]s, not opened here. A path that cannot be read becomes [`Input::Unreadable`]:
/// its error is one item of the frame stream.
pub fn expand_inputs(paths: &[PathBuf]) -> Vec<Input> {
    expand_inputs_for(paths, OnUnreadable::ErrorLine)
}

/// [`expand_inputs`] for a tool that does `on` with a folder or link of a
/// tree that cannot be listed, as the tree's note says.
pub fn expand_inputs_for(paths: &[PathBuf], on: OnUnreadable) -> Vec<Input> {
    paths
        .iter()
        .map(|p| {
            expand(p, on).unwrap_or_else(|e| Input::Unreadable {
                path: p.clone(),
                error: format!("{e:#}"),
            })
        })
        .collect()
}

fn expand(p: &Path, on: OnUnreadable) -> Result<Input> {
    if p.as_os_str() == "-" {
        return Ok(Input::Stdin);
    }
    let meta = metadata(p)?;
    if meta.is_dir() {
        let listing = list_images(p)?;
        for note in listing.notes(p, on) {
            super::stderr_line(format_args!("note: {note}"));
        }
        return Ok(Input::Images(listing.entries));
    }
    if !meta.is_file() {
        return Ok(Input::Stream(p.to_path_buf()));
    }
    file_input(p)
}

/// `p`'s metadata, symbolic links followed (`/dev/stdin`, `/dev/fd/63`);
/// opens nothing.
fn metadata(p: &Path) -> Result<std::fs::Metadata> {
    match std::fs::metadata(p) {
        Ok(m) => Ok(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(not_found(p)),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
    }
}

/// A regular file, by its content.
fn file_input(p: &Path) -> Result<Input> {
    Ok(match sniff(p)? {
        Kind::Image => Input::Image(p.to_path_buf()),
        Kind::Npy => Input::Npy(p.to_path_buf()),
        Kind::Idx => Input::Idx(p.to_path_buf()),
    })
}

/// A file of a directory listing, when its turn comes: recognised as the
/// same file named on the command line is ([`file_input`]), so it gets the
/// same frames or the same error. One that is no longer a regular file (a
/// folder or a pipe now) is an error, never followed or opened.
fn listed(p: &Path) -> Input {
    let input = metadata(p).and_then(|m| match m.is_file() {
        true => file_input(p),
        false => bail!(
            "{}: no longer a regular file (it changed after its folder was listed); not read",
            p.display()
        ),
    });
    input.unwrap_or_else(|e| Input::Unreadable {
        path: p.to_path_buf(),
        error: format!("{e:#}"),
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
    images: VecDeque<Entry>,
    npy: Option<NpyFrames>,
    raw: Option<RawReader<Box<dyn Read>>>,
    raw_format: Option<RawFormat>,
}

impl FrameSource {
    /// A source over `inputs`; `raw_format` is needed for stdin.
    pub fn new(inputs: Vec<Input>, raw_format: Option<RawFormat>) -> Result<Self> {
        if inputs.contains(&Input::Stdin) && raw_format.is_none() {
            bail!("reading frames from stdin (-) needs --raw WIDTHxHEIGHTxCHANNELS or WIDTHxHEIGHT:PIX_FMT");
        }
        Ok(FrameSource {
            inputs: inputs.into(),
            idx: None,
            images: VecDeque::new(),
            npy: None,
            raw: None,
            raw_format,
        })
    }

    /// Opens a stream input, once: recognises it from the first bytes read
    /// and reads on from the same reader. An image is read whole and
    /// returned; IDX and `.npy` streams become the current frame stream.
    fn open_stream(&mut self, p: &Path) -> Option<Sourced> {
        let name = p.display().to_string();
        let opened = (|| -> Result<(Kind, Box<dyn Read + Send>)> {
            let mut file = std::fs::File::open(p).with_context(|| format!("cannot open {name}"))?;
            let head = read_head(&mut file).with_context(|| format!("cannot read {name}"))?;
            let kind = recognise(&name, &head)?;
            Ok((kind, Box::new(std::io::Cursor::new(head).chain(file))))
        })();
        let failed = match opened {
            Ok((Kind::Image, r)) => return Some((name.clone(), read_image_from(&name, r))),
            Ok((Kind::Idx, r)) => IdxFrames::from_stream(name.clone(), r).map(|f| self.idx = Some(f)),
            Ok((Kind::Npy, r)) => NpyFrames::from_stream(name.clone(), r).map(|f| self.npy = Some(f)),
            Err(e) => Err(e),
        };
        failed.err().map(|e| (name, Err(e)))
    }

    /// Starts reading `input`: returns its item when it is one (an image,
    /// an error), else makes it the current frame stream.
    fn start(&mut self, input: Input) -> Option<Sourced> {
        let failed = |p: &Path, e| Some((p.display().to_string(), Err(e)));
        match input {
            Input::Image(p) => return Some(from_file(&p, read_image)),
            Input::Images(ps) => self.images = ps.into(),
            Input::Idx(p) => match IdxFrames::open(&p) {
                Ok(frames) => self.idx = Some(frames),
                Err(e) => return failed(&p, e),
            },
            Input::Npy(p) => match NpyFrames::open(&p) {
                Ok(frames) => self.npy = Some(frames),
                Err(e) => return failed(&p, e),
            },
            Input::Stream(p) => return self.open_stream(&p),
            Input::Stdin => {
                let format = self.raw_format.expect("checked in new");
                self.raw = Some(RawReader::new(Box::new(std::io::stdin()), format, "stdin"));
            }
            Input::Unreadable { path, error } => return failed(&path, anyhow::anyhow!(error)),
        }
        None
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
            // A directory's next entry, once the frames of the one before
            // (a .npy named like an image) are all out.
            let input = match self.images.pop_front() {
                Some(Entry::File(p)) => listed(&p),
                Some(Entry::Error { path, error }) => Input::Unreadable { path, error },
                None => self.inputs.pop_front()?,
            };
            if let Some(item) = self.start(input) {
                return Some(item);
            }
        }
    }
}

/// How many frames `inputs` hold, from their headers and listings (no
/// pixel data is read): `None` when that cannot be known before reading
/// them (stdin, a stream, or an input whose header cannot be read: reading
/// it will say why). Streams are not opened. A directory counts one per
/// entry: a listed file that turns out not to be one image (a `.npy`
/// named like one) or an entry that could not be listed is caught when
/// read.
pub fn count_frames(inputs: &[Input]) -> Option<usize> {
    inputs.iter().try_fold(0usize, |total, input| {
        let n = match input {
            Input::Image(_) => 1,
            Input::Images(ps) => ps.len(),
            Input::Idx(p) => idx_image_count(p).ok()?,
            Input::Npy(p) => NpyFrames::open(p).ok()?.len(),
            Input::Stream(_) | Input::Stdin | Input::Unreadable { .. } => return None,
        };
        total.checked_add(n)
    })
}
