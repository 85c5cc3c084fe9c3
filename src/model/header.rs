//! The 16-byte header in front of the postcard body.
//!
//! | bytes | content |
//! |---|---|
//! | 0..4 | magic `LSGM` |
//! | 4..6 | format version, u16 LE |
//! | 6..8 | flags, u16 LE, must be 0 |
//! | 8..12 | body length in bytes, u32 LE |
//! | 12..16 | CRC-32 (ISO-HDLC, as zlib) of the body, u32 LE |
//!
//! The magic and version come first so any future reader can tell what it is
//! looking at before it trusts a single other byte.

use crate::Error;

/// First four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"LSGM";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u16 = 4;
/// Length of the header.
pub const HEADER_LEN: usize = 16;

/// The oldest version still read: version 3 bodies are version 4 bodies
/// as long as no layer has a projection (version 4 added the projection's
/// residual term), and the reader refuses any version-3 file that has one.
pub const OLDEST_READ_VERSION: u16 = 3;

/// Checks the header and checksum and returns the format version and the body.
pub(crate) fn body(bytes: &[u8]) -> Result<(u16, &[u8]), Error> {
    if bytes.len() < 4 {
        return Err(Error::Truncated);
    }
    if bytes[..4] != MAGIC {
        return Err(Error::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let version = u16_at(4);
    if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion(version));
    }
    if u16_at(6) != 0 {
        return Err(crate::error::invalid(None, "unknown header flags"));
    }
    let len = u32_at(8) as usize;
    let rest = &bytes[HEADER_LEN..];
    if rest.len() < len {
        return Err(Error::Truncated);
    }
    if rest.len() > len {
        return Err(crate::error::invalid(None, "trailing bytes after the body"));
    }
    if crc32fast::hash(rest) != u32_at(12) {
        return Err(Error::Checksum);
    }
    Ok((version, rest))
}

/// The header for `body`.
#[cfg(feature = "alloc")]
pub(crate) fn header(body: &[u8]) -> Result<[u8; HEADER_LEN], Error> {
    let len = u32::try_from(body.len()).map_err(|_| Error::Encode)?;
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[8..12].copy_from_slice(&len.to_le_bytes());
    h[12..16].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    Ok(h)
}
