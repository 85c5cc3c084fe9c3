//! Command-line inputs → a stream of frames.

use super::idx::{idx_image_count, IdxFrames};
use super::images::{image_format, read_image_from};
use super::npy::NpyFrames;
use super::{list_images, read_image, Frame, Listing, RawFormat, RawReader};
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

/// Bytes looked at to recognise a file (a zip's first member name needs
/// more than the magic numbers).
const HEAD: usize = 64;

/// The first [`HEAD`] bytes of a file (fewer if it is shorter).
pub(crate) fn head(p: &Path) -> std::io::Result<Vec<u8>> {
    read_head(&mut std::fs::File::open(p)?)
}

/// The first [`HEAD`] bytes of an open file or stream.
fn read_head(r: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; HEAD];
    let got = super::read_up_to(r, &mut buf)?;
    buf.truncate(got);
    Ok(buf)
}

/// IDX element types (u8, i8, i16, i32, f32, f64): all are recognised so
/// that the IDX reader can say which it does not read.
const IDX_TYPES: [u8; 6] = [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e];

/// The starts of the files read, by name: a file shorter than one of them
/// and equal to its beginning was cut short. `?` stands for any byte (the
/// RIFF length).
const MAGICS: [(&[u8], &str); 11] = [
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (&[0xFF, 0xD8, 0xFF], "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"RIFF????WEBP", "WebP"),
    (b"II*\0", "TIFF"),
    (b"MM\0*", "TIFF"),
    (b"BM", "BMP"),
    (b"\x93NUMPY", ".npy"),
    (&[0x1f, 0x8b], "gzip"),
    (&[0, 0, 0x08], "IDX"),
];

/// HEIF brands (the `ftyp` box of HEIC photos from phones); AVIF is known
/// to the `image` crate and refused by it by name.
const HEIF_BRANDS: [&[u8]; 10] = [
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
];

/// What a file holds, from its first bytes `h` (up to 64; fewer only
/// when the file is shorter); `name` is the file, as errors name it. Files
/// that are close to a frame file but not one are refused saying what they
/// are and what to do.
pub fn recognise(name: &str, h: &[u8]) -> Result<Kind> {
    if h.starts_with(b"\x93NUMPY") {
        return Ok(Kind::Npy);
    }
    if image_format(h).is_some() {
        return Ok(Kind::Image);
    }
    if h.starts_with(&[0x1f, 0x8b]) || (h.len() >= 4 && h[..2] == [0, 0] && IDX_TYPES.contains(&h[2])) {
        return Ok(Kind::Idx);
    }
    if h.is_empty() {
        bail!("{name}: empty file (0 bytes)");
    }
    let starts = |m: &[u8]| h.len() < m.len() && h.iter().zip(m).all(|(a, b)| a == b || *b == b'?');
    if let Some((_, what)) = MAGICS.iter().find(|(m, _)| starts(m)) {
        bail!(
            "{name}: {} ({} bytes: the start of a {what} file)",
            super::truncation::ENDS_EARLY,
            h.len()
        );
    }
    if h.get(4..8) == Some(b"ftyp") && h.get(8..12).is_some_and(|b| HEIF_BRANDS.contains(&b)) {
        bail!("{name}: HEIC/HEIF image: not supported, convert to PNG/JPEG (e.g. heif-convert, or save as JPEG on the phone)");
    }
    if h.starts_with(b"PK\x03\x04") {
        // The first member's name, from its local file header.
        let len = h
            .get(26..28)
            .map(|n| usize::from(u16::from_le_bytes([n[0], n[1]])));
        let member = len.and_then(|n| h.get(30..30 + n)).map(String::from_utf8_lossy);
        if let Some(key) = member.as_deref().and_then(|m| m.strip_suffix(".npy")) {
            bail!(
                "{name}: a .npz archive (numpy.savez): save one array with numpy.save, e.g. \
                 np.save(\"frames.npy\", np.load(\"{name}\")[\"{key}\"])"
            );
        }
        bail!("{name}: a zip archive: unpack it and give the frames inside (or their folder)");
    }
    bail!(
        "{name}: not a frame file this tool reads: expected an image (PNG, JPEG, BMP, GIF, TIFF, WebP), \
         a .npy stack or an IDX file (raw or .gz)"
    )
}

/// What `p` holds, by its content (never by its extension): [`recognise`]
/// on its first bytes. Opens `p`: for regular files only (a FIFO is
/// opened once, to be read: [`Input::Stream`]).
pub fn sniff(p: &Path) -> Result<Kind> {
    let h = head(p).with_context(|| format!("cannot read {}", p.display()))?;
    recognise(&p.display().to_string(), &h)
}

/// One command-line input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An image file.
    Image(PathBuf),
    /// A directory tree's images, in path order ([`list_images`]).
    Images(Vec<PathBuf>),
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
/// them that are not images are skipped, with a note; a note says how many
/// images came from subfolders), regular files go by their content
/// ([`sniff`]), other files (pipes, devices) are [`Input::Stream`]s, not
/// opened here. A path that cannot be read becomes [`Input::Unreadable`]:
/// its error is one item of the frame stream.
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
    // Follows symbolic links (`/dev/stdin`, `/dev/fd/63`); opens nothing.
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{}: no such file or directory", p.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
    };
    if meta.is_dir() {
        let listing = list_images(p)?;
        say_listing(p, &listing);
        return Ok(Input::Images(listing.images));
    }
    if !meta.is_file() {
        return Ok(Input::Stream(p.to_path_buf()));
    }
    Ok(match sniff(p)? {
        Kind::Image => Input::Image(p.to_path_buf()),
        Kind::Npy => Input::Npy(p.to_path_buf()),
        Kind::Idx => Input::Idx(p.to_path_buf()),
    })
}

/// The notes about a directory: images from subfolders, files skipped.
fn say_listing(dir: &Path, listing: &Listing) {
    let relative = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
    if listing.subfolders > 0 {
        super::stderr_line(format_args!(
            "note: {}: {} images from {} subfolder{} (+{} at the top level), in path order",
            dir.display(),
            listing.images.len() - listing.top,
            listing.subfolders,
            if listing.subfolders == 1 { "" } else { "s" },
            listing.top
        ));
    }
    if let Some(first) = listing.skipped.first() {
        super::stderr_line(format_args!(
            "note: {}: skipped {} file(s) that are not images (e.g. {})",
            dir.display(),
            listing.skipped.len(),
            relative(first)
        ));
    }
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
            let input = self.inputs.pop_front()?;
            if let Some(item) = self.start(input) {
                return Some(item);
            }
        }
    }
}

/// How many frames `inputs` hold, from their headers and listings (no
/// pixel data is read): `None` when that cannot be known before reading
/// them (stdin, a stream, or an input whose header cannot be read: reading
/// it will say why). Streams are not opened.
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
