//! What a file is, from its first bytes: the one recognition of every
//! input file, whether it is named on the command line, listed in a
//! directory or opened as a pipe, so that a file gets the same message
//! whichever way it came (an empty `a.png` is "empty" both ways, a cut
//! one "ends early", a phone's photo "HEIC").

use super::images::image_format;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

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

/// What the first bytes of a file say it is, frame file or not: the
/// distinctions [`recognise`] names in its refusals and a directory
/// listing sorts by ([`Content::is_image`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// A frame file of this kind.
    Frames(Kind),
    /// No bytes at all.
    Empty,
    /// Fewer bytes than a format's magic number, and equal to its start:
    /// a file cut short (or still being written).
    Start {
        /// The format, in words (`a PNG`, `an IDX`).
        format: &'static str,
        /// Whether it is an image format.
        image: bool,
    },
    /// A HEIC/HEIF photo.
    Heif,
    /// A zip archive whose first member is a `.npy` (numpy.savez).
    Npz,
    /// Another zip archive.
    Zip,
    /// None of the above.
    Other,
}

impl Content {
    /// Whether the file is an image, or an image that cannot be read
    /// (cut short, HEIC): a directory lists it, so that reading it gives
    /// its error line instead of skipping it.
    pub(crate) fn is_image(self) -> bool {
        matches!(
            self,
            Content::Frames(Kind::Image) | Content::Start { image: true, .. } | Content::Heif
        )
    }
}

/// Bytes looked at to recognise a file (a zip's first member name needs
/// more than the magic numbers).
pub(crate) const HEAD: usize = 64;

/// The first [`HEAD`] bytes of a file (fewer if it is shorter).
pub(crate) fn head(p: &Path) -> std::io::Result<Vec<u8>> {
    read_head(&mut std::fs::File::open(p)?)
}

/// The first [`HEAD`] bytes of an open file or stream.
pub(crate) fn read_head(r: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; HEAD];
    let got = super::read_up_to(r, &mut buf)?;
    buf.truncate(got);
    Ok(buf)
}

/// IDX element types (u8, i8, i16, i32, f32, f64): all are recognised so
/// that the IDX reader can say which it does not read.
const IDX_TYPES: [u8; 6] = [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e];

/// The starts of the files read, by name (with its article), and whether each is an image: a
/// file shorter than one of them and equal to its beginning was cut
/// short. `?` stands for any byte (the RIFF length).
const MAGICS: [(&[u8], &str, bool); 11] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG", true),
    (&[0xFF, 0xD8, 0xFF], "a JPEG", true),
    (b"GIF87a", "a GIF", true),
    (b"GIF89a", "a GIF", true),
    (b"RIFF????WEBP", "a WebP", true),
    (b"II*\0", "a TIFF", true),
    (b"MM\0*", "a TIFF", true),
    (b"BM", "a BMP", true),
    (b"\x93NUMPY", "a .npy", false),
    (&[0x1f, 0x8b], "a gzip", false),
    (&[0, 0, 0x08], "an IDX", false),
];

/// Whether the bytes `h` and the magic number `m` are equal as far as both
/// go (`?` in `m` stands for any byte).
fn agree(h: &[u8], m: &[u8]) -> bool {
    h.iter().zip(m).all(|(a, b)| a == b || *b == b'?')
}

/// HEIF brands (the `ftyp` box of HEIC photos from phones); AVIF is known
/// to the `image` crate and refused by it by name.
const HEIF_BRANDS: [&[u8]; 10] = [
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
];

/// What a file is, from its first bytes `h` (up to [`HEAD`]; fewer only
/// when the file is shorter).
pub(crate) fn identify(h: &[u8]) -> Content {
    if h.starts_with(b"\x93NUMPY") {
        return Content::Frames(Kind::Npy);
    }
    if image_format(h).is_some() {
        return Content::Frames(Kind::Image);
    }
    if h.starts_with(&[0x1f, 0x8b]) || (h.len() >= 4 && h[..2] == [0, 0] && IDX_TYPES.contains(&h[2])) {
        return Content::Frames(Kind::Idx);
    }
    if h.is_empty() {
        return Content::Empty;
    }
    let starts = |m: &[u8]| h.len() < m.len() && agree(h, m);
    if let Some(&(_, format, image)) = MAGICS.iter().find(|(m, _, _)| starts(m)) {
        return Content::Start { format, image };
    }
    if h.get(4..8) == Some(b"ftyp") && h.get(8..12).is_some_and(|b| HEIF_BRANDS.contains(&b)) {
        return Content::Heif;
    }
    if h.starts_with(b"PK\x03\x04") {
        return match npz_key(h) {
            Some(_) => Content::Npz,
            None => Content::Zip,
        };
    }
    Content::Other
}

/// The first member of a zip archive without its `.npy`, from its local
/// file header: `x` for numpy.savez's `x.npy`.
fn npz_key(h: &[u8]) -> Option<String> {
    let len = h
        .get(26..28)
        .map(|n| usize::from(u16::from_le_bytes([n[0], n[1]])))?;
    let member = String::from_utf8_lossy(h.get(30..30 + len)?);
    member.strip_suffix(".npy").map(str::to_string)
}

/// What a file holds, from its first bytes `h` (up to 64; fewer
/// only when the file is shorter); `name` is the file, as errors name it.
/// Files that are close to a frame file but not one are refused saying
/// what they are and what to do.
pub fn recognise(name: &str, h: &[u8]) -> Result<Kind> {
    match identify(h) {
        Content::Frames(kind) => Ok(kind),
        Content::Empty => bail!("{name}: empty file (0 bytes)"),
        Content::Start { format, .. } => bail!(
            "{name}: {} ({} byte{}: the start of {format} file)",
            super::truncation::ENDS_EARLY,
            h.len(),
            if h.len() == 1 { "" } else { "s" }
        ),
        Content::Heif => bail!(
            "{name}: HEIC/HEIF image: not supported, convert to PNG/JPEG (e.g. heif-convert, or save as JPEG on the phone)"
        ),
        Content::Npz => bail!(
            "{name}: a .npz archive (numpy.savez): save one array with numpy.save, e.g. \
             np.save(\"frames.npy\", np.load(\"{name}\")[\"{}\"])",
            npz_key(h).unwrap_or_default()
        ),
        Content::Zip => bail!("{name}: a zip archive: unpack it and give the frames inside (or their folder)"),
        Content::Other => bail!(
            "{name}: not a frame file this tool reads: expected an image (PNG, JPEG, BMP, GIF, TIFF, WebP), \
             a .npy stack or an IDX file (raw or .gz)"
        ),
    }
}

/// What the first bytes `h` of some data are, in words (`a PNG image`,
/// `a .npy array`, `no data`), for a refusal that names what it got
/// instead (the IDX reader, of what a gzip file holds).
pub(crate) fn describe(h: &[u8]) -> String {
    match identify(h) {
        Content::Frames(Kind::Image) => {
            let magic = |m: &[u8]| h.len() >= m.len() && agree(h, m);
            match (MAGICS.iter().find(|(m, _, _)| magic(m)), image_format(h)) {
                (Some((_, name, _)), _) => format!("{name} image"),
                (None, Some(f)) => format!("a {f:?} image"),
                (None, None) => "an image".to_string(),
            }
        }
        Content::Frames(Kind::Npy) => "a .npy array".to_string(),
        Content::Frames(Kind::Idx) if h.starts_with(&[0x1f, 0x8b]) => {
            "gzip data (compressed twice)".to_string()
        }
        Content::Frames(Kind::Idx) => "an IDX file".to_string(),
        Content::Empty => "no data".to_string(),
        Content::Start { format, .. } => format!("{} bytes, the start of {format} file", h.len()),
        Content::Heif => "a HEIC/HEIF image".to_string(),
        Content::Npz => "a .npz archive".to_string(),
        Content::Zip => "a zip archive".to_string(),
        Content::Other => "data of no format this tool reads".to_string(),
    }
}

/// What `p` holds, by its content (never by its extension): [`recognise`]
/// on its first bytes. Opens `p`: for regular files only (a FIFO is
/// opened once, to be read: [`super::Input::Stream`]).
pub fn sniff(p: &Path) -> Result<Kind> {
    let h = head(p).with_context(|| format!("cannot read {}", p.display()))?;
    recognise(&p.display().to_string(), &h)
}

/// Why `p` is not found, in words: a symbolic link to nothing says where
/// it leads (`a symbolic link to /mnt/cam/3.png, which does not exist`).
pub(crate) fn not_found(p: &Path) -> String {
    match std::fs::read_link(p) {
        Ok(t) => format!(
            "{}: a symbolic link to {}, which does not exist",
            p.display(),
            t.display()
        ),
        Err(_) => format!("{}: no such file or directory", p.display()),
    }
}
