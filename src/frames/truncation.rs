//! Whether an image file holds all its data: a file cut short (a camera
//! or a copy still writing it) is refused as one that ends early, never
//! judged from what its decoder made of the part that is there.
//!
//! Most decoders already fail on a cut file (PNG, GIF, BMP, TIFF: an
//! end-of-file error, which [`ends_early`] recognises to say so). Two do
//! not, or not in words a user can act on:
//! - JPEG: the `image` crate runs zune-jpeg in its lenient mode, which fills
//!   the missing part of a cut baseline scan with grey and decodes the scans
//!   a cut progressive file has; a cut at 60 % gets a verdict of another
//!   class. A JPEG is whole when its segments reach the end-of-image marker
//!   (EOI): what Pillow requires too (`tests/fixtures/truncated/pil.json`:
//!   every cut, even of the EOI alone, raises "image file is truncated").
//! - WebP: the RIFF header says how long the file is; a cut one gets a
//!   "corrupt bitstream" from the decoder.

use image::{ImageError, ImageFormat};

/// What a refusal of a cut file says (after the file's name).
pub const ENDS_EARLY: &str = "the file ends early (cut short, or still being written)";

/// Why `bytes`, an image of `format`, is incomplete, or `None` when its
/// structure is whole (the decoder still checks the rest).
pub fn missing_end(format: ImageFormat, bytes: &[u8]) -> Option<&'static str> {
    match format {
        ImageFormat::Jpeg if !jpeg_reaches_eoi(bytes) => Some("no end-of-image marker"),
        ImageFormat::WebP if riff_len(bytes).is_some_and(|n| n > bytes.len() as u64) => {
            Some("shorter than its RIFF header says")
        }
        _ => None,
    }
}

/// Whether a JPEG's segments reach its end-of-image marker. Segments with a
/// length (APPn, COM, DQT, SOF, DHT, SOS, …) are skipped whole, so an EOI
/// inside them (an EXIF thumbnail, a comment) is never taken for the
/// file's. Entropy-coded data holds no marker but stuffed `FF 00` and
/// restarts `FF D0`–`FF D7`; bytes between segments that are not a marker
/// are skipped, as libjpeg does.
fn jpeg_reaches_eoi(b: &[u8]) -> bool {
    let mut i = 2; // after SOI (the format guess checked FF D8)
    loop {
        while b.get(i).is_some_and(|&x| x != 0xFF) {
            i += 1;
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            // Stuffed byte, TEM, RSTn, SOI: no length.
            0x00 | 0x01 | 0xD0..=0xD8 => {}
            _ => match b.get(i..i + 2) {
                Some(len) => i += usize::from(u16::from_be_bytes([len[0], len[1]])),
                None => return false,
            },
        }
    }
}

/// The file length a RIFF header (`RIFF`, size, form) gives.
fn riff_len(b: &[u8]) -> Option<u64> {
    let size = b.get(4..8)?;
    Some(8 + u64::from(u32::from_le_bytes([size[0], size[1], size[2], size[3]])))
}

/// Whether a decoder's error says the data ran out: an I/O end of file
/// anywhere in its chain, or the words the decoders use for it (GIF:
/// "Unexpected End of File", PNG: "unexpected end of file", BMP/TIFF:
/// "failed to fill whole buffer").
pub fn ends_early(e: &ImageError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        let text = c.to_string().to_ascii_lowercase();
        if ["end of file", "unexpected eof", "fill whole buffer", "truncated"]
            .iter()
            .any(|w| text.contains(w))
        {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_is_whole_when_its_segments_reach_eoi() {
        // SOI, COM holding FF D9, SOS with stuffed and restart bytes, EOI.
        let whole = [
            0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x04, 0xFF, 0xD9, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34,
            0xFF, 0xD0, 0x56, 0xFF, 0xD9,
        ];
        assert!(jpeg_reaches_eoi(&whole));
        let mut garbage = whole.to_vec();
        garbage.extend_from_slice(b"trailing");
        assert!(jpeg_reaches_eoi(&garbage));
        for cut in 0..whole.len() {
            assert!(!jpeg_reaches_eoi(&whole[..cut]), "cut at {cut}");
        }
        assert_eq!(missing_end(ImageFormat::Png, &whole[..4]), None);
        let webp = b"RIFF\x10\0\0\0WEBPVP8L";
        assert!(missing_end(ImageFormat::WebP, webp).is_some());
    }
}
