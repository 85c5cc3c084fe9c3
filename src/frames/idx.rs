//! IDX files (the MNIST format), raw or gzip-compressed.

use super::{Frame, Pixels};
use anyhow::{bail, ensure, Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: corrupt gzip stream", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX header of u8 data: returns the dimensions and the payload.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, usize)> {
    let (dims, header) = parse_header(path, bytes)?;
    check_length(path, &dims, (bytes.len() - header) as u64)?;
    Ok((dims, header))
}

/// The dimensions and header length of the IDX file starting with `bytes`
/// (at least its header), before its data is looked at.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, usize)> {
    ensure!(
        bytes.len() >= 4 && bytes[0] == 0 && bytes[1] == 0,
        "{}: not an IDX file (bad magic)",
        path.display()
    );
    ensure!(
        bytes[2] == 0x08,
        "{}: only unsigned-byte IDX data is supported (type 0x{:02x})",
        path.display(),
        bytes[2]
    );
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    ensure!(bytes.len() >= header, "{}: truncated IDX header", path.display());
    let dims: Vec<usize> = (0..ndim)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    Ok((dims, header))
}

/// Checks that `data` bytes follow the header, as its dimensions promise.
fn check_length(path: &Path, dims: &[usize], data: u64) -> Result<()> {
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match count {
        Some(c) if data == c as u64 => Ok(()),
        Some(c) => bail!(
            "{}: IDX header promises {c} bytes of data but the file holds {data} (truncated or corrupt)",
            path.display()
        ),
        None => bail!("{}: IDX dimensions overflow", path.display()),
    }
}

/// `(n, h, w, c)` of an image file's dimensions.
fn image_dims(path: &Path, dims: &[usize]) -> Result<(usize, usize, usize, usize)> {
    let (n, h, w, c) = match dims[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c),
        _ => bail!(
            "{}: expected N×H×W or N×H×W×C image data, got dimensions {dims:?}",
            path.display()
        ),
    };
    ensure!(h > 0 && w > 0, "{}: empty images ({h}×{w})", path.display());
    Ok((n, h, w, c))
}

/// Reads an N×H×W (grey) or N×H×W×C IDX image file.
pub fn read_idx_images(path: &Path) -> Result<Vec<Frame>> {
    let bytes = read_maybe_gz(path)?;
    let (dims, start) = parse(path, &bytes)?;
    let (n, h, w, c) = image_dims(path, &dims)?;
    let size = h * w * c;
    let name = path.display().to_string();
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
    let bytes = read_maybe_gz(path)?;
    let (dims, start) = parse(path, &bytes)?;
    ensure!(
        dims.len() == 1,
        "{}: expected a 1-D label file, got dimensions {dims:?}",
        path.display()
    );
    Ok(bytes[start..].to_vec())
}

/// The file's bytes, decompressed as they are read when it is gzipped,
/// and whether it is.
fn open_stream(path: &Path) -> Result<(Box<dyn Read + Send>, bool)> {
    let cannot = || format!("cannot read {}", path.display());
    let mut file = BufReader::new(File::open(path).with_context(cannot)?);
    let gz = file.fill_buf().with_context(cannot)?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        (Box::new(flate2::read::GzDecoder::new(file)), true)
    } else {
        (Box::new(file), false)
    })
}

/// Reads the header of an open stream: its dimensions.
fn read_header(path: &Path, r: &mut dyn Read) -> Result<Vec<usize>> {
    let gzip = |e: std::io::Error| anyhow::anyhow!("{}: corrupt gzip stream: {e}", path.display());
    let mut head = vec![0u8; 4];
    let got = read_up_to(r, &mut head).map_err(gzip)?;
    head.truncate(got);
    if got == 4 && head[..2] == [0, 0] && head[2] == 0x08 {
        head.resize(4 + 4 * head[3] as usize, 0);
        let got = 4 + read_up_to(r, &mut head[4..]).map_err(gzip)?;
        head.truncate(got);
    }
    Ok(parse_header(path, &head)?.0)
}

/// Reads until `buf` is full or the stream ends: the bytes read.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
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

/// The number of images an IDX image file's header promises (its data is
/// not read), or why its header cannot be read.
pub fn idx_image_count(path: &Path) -> Result<usize> {
    let dims = read_header(path, &mut *open_stream(path)?.0)?;
    Ok(image_dims(path, &dims)?.0)
}

/// The frames of an IDX image file (raw or gzipped), read one at a time:
/// memory holds one frame, whatever the file's size. [`IdxFrames::open`]
/// checks the whole file first (the same checks as [`read_idx_images`]:
/// a gzipped file is decompressed once to count its bytes, without keeping
/// them).
pub struct IdxFrames {
    name: String,
    reader: Box<dyn Read + Send>,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    next: usize,
}

impl IdxFrames {
    /// Opens `path`, checks its header and that it holds exactly the data
    /// the header promises, and stands before its first frame.
    pub fn open(path: &Path) -> Result<IdxFrames> {
        let (mut reader, gz) = open_stream(path)?;
        let dims = read_header(path, &mut *reader)?;
        let header = 4 + 4 * dims.len() as u64;
        let data = match std::fs::metadata(path) {
            Ok(m) if !gz => m.len().saturating_sub(header),
            _ => std::io::copy(&mut reader, &mut std::io::sink())
                .with_context(|| format!("{}: corrupt gzip stream", path.display()))?,
        };
        check_length(path, &dims, data)?;
        let (n, h, w, c) = image_dims(path, &dims)?;
        if gz {
            reader = open_stream(path)?.0;
            read_header(path, &mut *reader)?;
        }
        Ok(IdxFrames {
            name: path.display().to_string(),
            reader,
            n,
            h,
            w,
            c,
            next: 0,
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
}

impl Iterator for IdxFrames {
    type Item = Result<Frame>;

    /// The next frame; a read error (the file changed since it was
    /// checked) ends the stream after its error.
    fn next(&mut self) -> Option<Result<Frame>> {
        if self.next >= self.n {
            return None;
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
                Some(Err(match broken {
                    Ok(_) => anyhow::anyhow!("{source}: the file ends inside this frame"),
                    Err(e) => anyhow::anyhow!("{source}: cannot read the frame: {e}"),
                }))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.n - self.next;
        (left, Some(left))
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
