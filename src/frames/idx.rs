//! IDX files (the MNIST format), raw or gzip-compressed.
//!
//! A gzip file is read whole, every member of it (`gzip -c a >> f.gz`
//! makes a valid file of two members, and `gzip -d` and Python's `gzip`
//! read both): [`Members`](super::gzip::Members). Bytes after the last
//! member that do not start another one are refused, counted, as Python's
//! `gzip` refuses them, zeros too (which `gzip -d` and Python ignore): a
//! file preallocated and still being written has them where its next
//! member will be.

use super::gzip::{AfterLastMember, GZIP};
use super::{read_up_to, Frame, Pixels};
use anyhow::{bail, ensure, Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;

/// A whole file, decompressed when gzipped (label files, and
/// [`read_idx_images`]), and whether it was. One `read`, so a FIFO works
/// too.
fn read_maybe_gz(path: &Path) -> Result<(Vec<u8>, bool)> {
    let name = path.display().to_string();
    let raw = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
    if raw.starts_with(&GZIP) {
        let mut out = Vec::new();
        super::gzip::Members::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| anyhow::anyhow!("{name}: {}", stream_error(&e)))?;
        Ok((out, true))
    } else {
        Ok((raw, false))
    }
}

/// Parses an IDX header of u8 data: returns the dimensions and the payload.
fn parse(path: &Path, (bytes, gz): (&[u8], bool)) -> Result<(Vec<usize>, usize)> {
    let name = path.display().to_string();
    let (dims, header) = parse_header(&name, bytes, gz)?;
    check_length(&name, &dims, (bytes.len() - header) as u64)?;
    Ok((dims, header))
}

/// The dimensions and header length of the IDX file starting with `bytes`
/// (at least its header, or the first [`HEAD`](super::recognise::HEAD)
/// bytes of what it is instead), before its data is looked at; `gz` when
/// they were decompressed.
fn parse_header(name: &str, bytes: &[u8], gz: bool) -> Result<(Vec<usize>, usize)> {
    if !bytes.is_empty() && bytes.len() < 4 && bytes.iter().zip([0, 0, 8]).all(|(a, b)| *a == b) {
        bail!("{name}: {} inside its IDX header", super::truncation::ENDS_EARLY);
    }
    if bytes.len() < 4 || bytes[..2] != [0, 0] {
        let what = super::recognise::describe(bytes);
        match gz {
            true => bail!(
                "{name}: a gzip-compressed file holding {what}, not an IDX file: only IDX files are read \
                 compressed; decompress it first (gunzip -k {name})"
            ),
            false => bail!("{name}: not an IDX file ({what})"),
        }
    }
    ensure!(
        bytes[2] == 0x08,
        "{name}: only unsigned-byte IDX data is supported (type 0x{:02x})",
        bytes[2]
    );
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    ensure!(
        bytes.len() >= header,
        "{name}: {} inside its IDX header",
        super::truncation::ENDS_EARLY
    );
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    Ok((dims, header))
}

/// Checks that `data` bytes follow the header, as its dimensions promise.
fn check_length(name: &str, dims: &[usize], data: u64) -> Result<()> {
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match count {
        Some(c) if data == c as u64 => Ok(()),
        Some(c) if data < c as u64 => bail!(
            "{name}: {}: the IDX header promises {c} bytes of data, the file holds {data} (truncated)",
            super::truncation::ENDS_EARLY
        ),
        Some(c) => bail!(
            "{name}: the IDX header promises {c} bytes of data but the file holds {data} (corrupt, or not one IDX file)"
        ),
        None => bail!("{name}: IDX dimensions overflow"),
    }
}

/// `(n, h, w, c)` of an image file's dimensions.
fn image_dims(name: &str, dims: &[usize]) -> Result<(usize, usize, usize, usize)> {
    let (n, h, w, c) = match dims[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c),
        _ => bail!("{name}: expected N×H×W or N×H×W×C image data, got dimensions {dims:?}"),
    };
    ensure!(h > 0 && w > 0, "{name}: empty images ({h}×{w})");
    Ok((n, h, w, c))
}

/// Reads an N×H×W (grey) or N×H×W×C IDX image file.
pub fn read_idx_images(path: &Path) -> Result<Vec<Frame>> {
    let (bytes, gz) = read_maybe_gz(path)?;
    let (dims, start) = parse(path, (&bytes, gz))?;
    let name = path.display().to_string();
    let (n, h, w, c) = image_dims(&name, &dims)?;
    let size = h * w * c;
    Ok((0..n)
        .map(|i| Frame {
            source: format!("{name}#{i}"),
            height: h,
            width: w,
            channels: c,
            pixels: Pixels::U8(bytes[start + i * size..start + (i + 1) * size].to_vec()),
        })
        .collect())
}

/// Reads a 1-D IDX label file.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let (bytes, gz) = read_maybe_gz(path)?;
    let (dims, start) = parse(path, (&bytes, gz))?;
    ensure!(
        dims.len() == 1,
        "{}: expected a 1-D label file, got dimensions {dims:?}",
        path.display()
    );
    Ok(bytes[start..].to_vec())
}

/// An open file or stream, decompressed as it is read (every member)
/// when it starts with gzip's magic, and whether it does.
fn decompressed(name: &str, r: Box<dyn Read + Send>) -> Result<(Box<dyn Read + Send>, bool)> {
    let mut r = BufReader::new(r);
    let gz = r
        .fill_buf()
        .with_context(|| format!("cannot read {name}"))?
        .starts_with(&GZIP);
    Ok(if gz {
        (Box::new(super::gzip::Members::new(r)), true)
    } else {
        (Box::new(r), false)
    })
}

/// A read error of an IDX stream, in words: a gzip stream that stops
/// before its end is a file that ends early; bytes after a member that
/// are not another member are counted ([`AfterLastMember`]).
fn stream_error(e: &std::io::Error) -> String {
    if let Some(after) = e.get_ref().and_then(|e| e.downcast_ref::<AfterLastMember>()) {
        return after.to_string();
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => format!("{} ({e})", super::truncation::ENDS_EARLY),
        std::io::ErrorKind::InvalidInput if e.to_string().contains("header") => format!(
            "corrupt gzip data ({e}): bytes that do not start a gzip member, e.g. after the last one \
             (`gzip -t` says \"trailing garbage\"); recompress the frames (gunzip, then gzip)"
        ),
        _ => format!("corrupt gzip data: {e}"),
    }
}

/// Reads the header of an open stream (`gz`: decompressed): its
/// dimensions. A stream that is not IDX is read up to
/// [`HEAD`](super::recognise::HEAD) bytes, to say what it is.
fn read_header(name: &str, r: &mut dyn Read, gz: bool) -> Result<Vec<usize>> {
    let gzip = |e: std::io::Error| anyhow::anyhow!("{name}: {}", stream_error(&e));
    let mut head = vec![0u8; 4];
    let got = read_up_to(r, &mut head).map_err(gzip)?;
    head.truncate(got);
    if got == 4 && head[..2] == [0, 0] && head[2] == 0x08 {
        head.resize(4 + 4 * head[3] as usize, 0);
        let got = 4 + read_up_to(r, &mut head[4..]).map_err(gzip)?;
        head.truncate(got);
    } else if got == 4 && head[..2] != [0, 0] {
        head.resize(super::recognise::HEAD, 0);
        let got = 4 + read_up_to(r, &mut head[4..]).map_err(gzip)?;
        head.truncate(got);
    }
    Ok(parse_header(name, &head, gz)?.0)
}

/// The number of images an IDX image file's header promises (its data is
/// not read), or why its header cannot be read. For regular files: a
/// stream (a FIFO) is opened only once, to be read.
pub fn idx_image_count(path: &Path) -> Result<usize> {
    let name = path.display().to_string();
    let file = File::open(path).with_context(|| format!("cannot read {name}"))?;
    let (mut reader, gz) = decompressed(&name, Box::new(file))?;
    let dims = read_header(&name, &mut *reader, gz)?;
    Ok(image_dims(&name, &dims)?.0)
}

/// The frames of an IDX image file (raw or gzipped), read one at a time:
/// memory holds one frame, whatever the file's size.
///
/// A file ([`IdxFrames::open`]) is checked whole first, with the same
/// checks as [`read_idx_images`] (a gzipped file is decompressed once to
/// count its bytes, without keeping them), so a file cut short is one
/// error and no frame. A stream (a FIFO, `/dev/stdin`) cannot be read
/// twice: its frames are read as they come, a frame the stream ends inside
/// is an error (never a partial frame), and after the last frame the
/// stream must end there (for gzip, with its checksum checked).
pub struct IdxFrames {
    name: String,
    reader: Box<dyn Read + Send>,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    next: usize,
    /// True once the data's length is known to match the header.
    checked: bool,
}

impl IdxFrames {
    /// Opens `path`, checks its header and that it holds exactly the data
    /// the header promises, and stands before its first frame.
    pub fn open(path: &Path) -> Result<IdxFrames> {
        let name = path.display().to_string();
        let cannot = || format!("cannot read {name}");
        let mut file = File::open(path).with_context(cannot)?;
        {
            let (mut reader, gz) = decompressed(&name, Box::new(file.try_clone().with_context(cannot)?))?;
            let dims = read_header(&name, &mut *reader, gz)?;
            let header = 4 + 4 * dims.len() as u64;
            let data = match file.metadata() {
                Ok(m) if !gz => m.len().saturating_sub(header),
                _ => std::io::copy(&mut reader, &mut std::io::sink())
                    .map_err(|e| anyhow::anyhow!("{name}: {}", stream_error(&e)))?,
            };
            check_length(&name, &dims, data)?;
            image_dims(&name, &dims)?;
        }
        file.rewind().with_context(cannot)?;
        let mut frames = IdxFrames::from_stream(name, Box::new(file))?;
        frames.checked = true;
        Ok(frames)
    }

    /// The frames of an open stream `reader` (`name` for errors): its
    /// header is read and checked, its data read as frames are asked for.
    pub(crate) fn from_stream(name: String, reader: Box<dyn Read + Send>) -> Result<IdxFrames> {
        let (mut reader, gz) = decompressed(&name, reader)?;
        let dims = read_header(&name, &mut *reader, gz)?;
        let (n, h, w, c) = image_dims(&name, &dims)?;
        ensure!(
            h * w * c <= super::raw::MAX_RAW_FRAME,
            "{name}: frames of {h}×{w}×{c} are larger than this tool reads ({} MiB)",
            super::raw::MAX_RAW_FRAME >> 20
        );
        Ok(IdxFrames {
            name,
            reader,
            n,
            h,
            w,
            c,
            next: 0,
            checked: false,
        })
    }

    /// The number of frames the file holds.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the file holds no frame.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The file, as frames name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Index of the next frame.
    pub fn next_index(&self) -> usize {
        self.next
    }

    /// After the last frame of a stream: an error if more data follows or
    /// the stream is broken (a gzip checksum that does not match).
    fn check_end(&mut self) -> Result<()> {
        self.checked = true;
        let mut byte = [0u8; 1];
        match read_up_to(&mut *self.reader, &mut byte) {
            Ok(0) => Ok(()),
            Ok(_) => bail!(
                "{}: more data after the {} its header promises (corrupt, or not one IDX file)",
                self.name,
                super::count(self.n, "frame", "frames")
            ),
            Err(e) => bail!("{}: {}", self.name, stream_error(&e)),
        }
    }
}

impl Iterator for IdxFrames {
    type Item = Result<Frame>;

    /// The next frame; a read error ends the stream after its error.
    fn next(&mut self) -> Option<Result<Frame>> {
        if self.next >= self.n {
            return match self.checked {
                true => None,
                false => self.check_end().err().map(Err),
            };
        }
        let i = self.next;
        self.next += 1;
        let source = format!("{}#{i}", self.name);
        let mut pixels = vec![0u8; self.h * self.w * self.c];
        match read_up_to(&mut *self.reader, &mut pixels) {
            Ok(got) if got == pixels.len() => Some(Ok(Frame {
                source,
                height: self.h,
                width: self.w,
                channels: self.c,
                pixels: Pixels::U8(pixels),
            })),
            broken => {
                self.next = self.n;
                self.checked = true;
                let ends = super::truncation::ENDS_EARLY;
                Some(Err(match broken {
                    Ok(0) => anyhow::anyhow!(
                        "{source}: {ends}: the header promises {}, the data stops before this one",
                        super::count(self.n, "frame", "frames")
                    ),
                    Ok(_) => anyhow::anyhow!("{source}: {ends}: the data stops inside this frame"),
                    Err(e) => anyhow::anyhow!("{source}: {}", stream_error(&e)),
                }))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.n - self.next;
        (left, Some(left + usize::from(!self.checked)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_raw_and_gzipped_and_rejects_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        bytes.extend(0..12u8);
        let raw = dir.path().join("x.idx");
        std::fs::write(&raw, &bytes).unwrap();
        let gz = dir.path().join("x.idx.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&bytes).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        for p in [&raw, &gz] {
            let f = read_idx_images(p).unwrap();
            assert_eq!(f.len(), 2);
            assert_eq!(
                (f[1].height, f[1].width, f[1].pixels.as_u8().unwrap()[0]),
                (2, 3, 6)
            );
        }
        std::fs::write(&raw, &bytes[..20]).unwrap();
        let e = read_idx_images(&raw).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        std::fs::write(&raw, b"PNG...").unwrap();
        assert!(read_idx_images(&raw)
            .unwrap_err()
            .to_string()
            .contains("not an IDX"));
    }
}
