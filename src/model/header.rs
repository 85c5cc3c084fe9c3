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
/// The newest format version this build reads and writes (it writes
/// version 4 for a model without a grid pooling, which version 4 can hold).
pub const FORMAT_VERSION: u16 = 5;
/// Length of the header.
pub const HEADER_LEN: usize = 16;

/// The oldest version still read: version 3 bodies are version 4 bodies
/// as long as no layer has a projection (version 4 added the projection's
/// residual term), and the reader refuses any version-3 file that has one;
/// version 4 bodies are version 5 bodies (version 5 appended the grid
/// poolings), and the reader refuses an older file that names one.
pub const OLDEST_READ_VERSION: u16 = 3;

/// Where each header field lies (smoltcp's `mod field` pattern): byte
/// ranges into the file, all little-endian.
pub mod field {
    use core::ops::Range;
    /// `LSGM`.
    pub const MAGIC: Range<usize> = 0..4;
    /// Format version, u16.
    pub const VERSION: Range<usize> = 4..6;
    /// Flags, u16, must be 0.
    pub const FLAGS: Range<usize> = 6..8;
    /// Body length in bytes, u32.
    pub const BODY_LEN: Range<usize> = 8..12;
    /// CRC-32 (ISO-HDLC, as zlib) of the body, u32.
    pub const CRC: Range<usize> = 12..16;
}

fn u16_at(bytes: &[u8], at: core::ops::Range<usize>) -> u16 {
    u16::from_le_bytes([bytes[at.start], bytes[at.start + 1]])
}

fn u32_at(bytes: &[u8], at: core::ops::Range<usize>) -> u32 {
    let b = &bytes[at];
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Checks the header and checksum and returns the format version and the body.
pub(crate) fn body(bytes: &[u8]) -> Result<(u16, &[u8]), Error> {
    if bytes.len() < field::MAGIC.end {
        return Err(Error::Truncated);
    }
    if bytes[field::MAGIC] != MAGIC {
        return Err(Error::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let version = u16_at(bytes, field::VERSION);
    if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion(version));
    }
    if u16_at(bytes, field::FLAGS) != 0 {
        return Err(crate::error::invalid(None, "unknown header flags"));
    }
    let len = u32_at(bytes, field::BODY_LEN) as usize;
    let rest = &bytes[HEADER_LEN..];
    if rest.len() < len {
        return Err(Error::Truncated);
    }
    if rest.len() > len {
        return Err(crate::error::invalid(None, "trailing bytes after the body"));
    }
    if crc32fast::hash(rest) != u32_at(bytes, field::CRC) {
        return Err(Error::Checksum);
    }
    Ok((version, rest))
}

/// The header that signs `body` as a file of format `version`: magic,
/// version, zero flags, length and CRC-32. The encoder uses it with
/// [`FORMAT_VERSION`]; tests and the fuzz target use it to put a valid
/// header on bodies of their own, so that the decoder and validator, not the
/// checksum, must judge them. [`Error::Encode`] if the body is 4 GiB or more.
pub fn header(version: u16, body: &[u8]) -> Result<[u8; HEADER_LEN], Error> {
    let len = u32::try_from(body.len()).map_err(|_| Error::Encode)?;
    let mut h = [0u8; HEADER_LEN];
    h[field::MAGIC].copy_from_slice(&MAGIC);
    h[field::VERSION].copy_from_slice(&version.to_le_bytes());
    h[field::BODY_LEN].copy_from_slice(&len.to_le_bytes());
    h[field::CRC].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    Ok(h)
}

/// Re-signs a whole file in place after its body was changed: the length
/// and CRC fields are recomputed from the bytes after the header, the magic,
/// version and flags are kept. [`Error::Truncated`] if `file` is shorter than
/// a header, [`Error::Encode`] if the body is 4 GiB or more.
pub fn resign(file: &mut [u8]) -> Result<(), Error> {
    if file.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let (head, body) = file.split_at_mut(HEADER_LEN);
    let signed = header(u16_at(head, field::VERSION), body)?;
    head[field::BODY_LEN].copy_from_slice(&signed[field::BODY_LEN]);
    head[field::CRC].copy_from_slice(&signed[field::CRC]);
    Ok(())
}
