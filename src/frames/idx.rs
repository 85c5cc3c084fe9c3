//! IDX files (the MNIST format), raw or gzip-compressed.

use super::{Frame, Pixels};
use anyhow::{bail, ensure, Context, Result};
use std::io::Read;
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
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match count {
        Some(c) if bytes.len() - header == c => Ok((dims, header)),
        Some(c) => bail!(
            "{}: IDX header promises {c} bytes of data but the file holds {} (truncated or corrupt)",
            path.display(),
            bytes.len() - header
        ),
        None => bail!("{}: IDX dimensions overflow", path.display()),
    }
}

/// Reads an N×H×W (grey) or N×H×W×C IDX image file.
pub fn read_idx_images(path: &Path) -> Result<Vec<Frame>> {
    let bytes = read_maybe_gz(path)?;
    let (dims, start) = parse(path, &bytes)?;
    let (n, h, w, c) = match dims[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c),
        _ => bail!(
            "{}: expected N×H×W or N×H×W×C image data, got dimensions {dims:?}",
            path.display()
        ),
    };
    ensure!(h > 0 && w > 0, "{}: empty images ({h}×{w})", path.display());
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
