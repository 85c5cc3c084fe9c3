//! Image files via the `image` crate, decoded by their content and shown as
//! an image viewer would show them.

use super::recognise::{recognise, Kind, HEAD};
use super::{truncation, Frame, Pixels};
use anyhow::{bail, ensure, Context, Result};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::io::Read;
use std::path::Path;

/// Largest image side decoded (pixels), and most memory a decoder may take:
/// a 400 KB PNG can claim 20000×20000 pixels, which a 1 GB board cannot hold.
pub const MAX_IMAGE_SIDE: u32 = 16384;
/// See [`MAX_IMAGE_SIDE`].
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// The image format of the first bytes of a file, if they are an image's.
pub(crate) fn image_format(head: &[u8]) -> Option<ImageFormat> {
    image::guess_format(head).ok()
}

/// The samples of a TIFF the `image` crate should not decode, in words
/// (`32-bit float samples (Gray(32))`), and why their values have no
/// fixed 0–255 range, or `None` for 8- and 16-bit unsigned ones. It clamps
/// RGB floats to [0, 1] silently and names other formats only by their
/// width ("color type Unknown(32)").
fn tiff_samples(bytes: &[u8]) -> Option<(String, &'static str)> {
    use tiff::ColorType as C;
    let mut tiff = tiff::decoder::Decoder::new(std::io::Cursor::new(bytes)).ok()?;
    let colour = tiff.colortype().ok()?;
    let kind = tiff
        .find_tag_unsigned_vec::<u16>(tiff::tags::Tag::SampleFormat)
        .ok()
        .flatten()
        .and_then(|v| v.first().copied());
    let bits = match colour {
        C::Gray(b) | C::GrayA(b) | C::RGB(b) | C::RGBA(b) | C::CMYK(b) | C::Palette(b) | C::YCbCr(b) => b,
        C::Multiband { bit_depth, .. } => bit_depth,
        _ => return None,
    };
    let (kind, why) = match kind {
        None | Some(1) if bits <= 16 => return None,
        None | Some(1) => (
            "unsigned integer",
            "such values may use any part of their range (a sensor's counts, a depth in mm), not a fixed 0–255",
        ),
        Some(2) => (
            "signed integer",
            "signed values (differences, offsets, a sensor's raw counts) have no fixed 0–255 range",
        ),
        Some(3) => (
            "float",
            "such values have no fixed 0–255 range (floats may be 0–1, 0–255 or physical units)",
        ),
        Some(_) => ("untyped", "such values have no fixed 0–255 range"),
    };
    Some((format!("{bits}-bit {kind} samples ({colour:?})"), why))
}

/// Decodes one image file by its content, applies its EXIF orientation,
/// and keeps grey images as one channel and makes everything else RGB
/// (alpha dropped, as PIL's `convert("RGB")`; 16-bit values scaled to 8
/// bits as `round(v / 257)`). A file that ends early is refused
/// (`truncation.rs`).
pub fn read_image(path: &Path) -> Result<Frame> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {name}"))?;
    read_image_from(&name, file)
}

/// [`read_image`] on an open file or stream (a FIFO, `/dev/stdin`): read
/// to its end, at most [`MAX_IMAGE_BYTES`], then decoded.
pub(crate) fn read_image_from(name: &str, reader: impl Read) -> Result<Frame> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_IMAGE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {name}"))?;
    ensure!(
        bytes.len() as u64 <= MAX_IMAGE_BYTES,
        "{name}: the file is larger than this tool decodes ({} MiB); scale the image down first",
        MAX_IMAGE_BYTES >> 20
    );
    decode_image(name, &bytes)
}

/// Decodes an image file's bytes (see [`read_image`]); `name` is the file,
/// as errors name it.
pub fn decode_image(name: &str, bytes: &[u8]) -> Result<Frame> {
    let format = match image_format(bytes) {
        // The one recognition says what it is (empty, cut short, HEIC, …).
        None => {
            let what = match recognise(name, &bytes[..bytes.len().min(HEAD)])? {
                Kind::Npy => "a .npy array, not an image (read as a frame stack when given as an input)",
                Kind::Idx => "an IDX file, not an image (read as a frame stack when given as an input)",
                Kind::Image => "not an image this tool reads",
            };
            bail!("{name}: {what}")
        }
        Some(f) if !f.reading_enabled() => bail!(
            "{name}: {f:?} images are not supported; convert it to PNG (PNG, JPEG, BMP, GIF, TIFF and WebP are read)"
        ),
        Some(f) => f,
    };
    if let Some(why) = truncation::missing_end(format, bytes) {
        bail!("{name}: {} ({format:?}: {why})", truncation::ENDS_EARLY);
    }
    if let Some((samples, why)) = (format == ImageFormat::Tiff)
        .then(|| tiff_samples(bytes))
        .flatten()
    {
        bail!(
            "{name}: a TIFF of {samples} is not read: {why}; save it with 8- or 16-bit unsigned samples scaled \
             to their full range, or the frames as a float32 .npy in [0, 1] (read, its range checked)"
        );
    }
    let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    reader.limits(limits);
    let decode = || -> image::ImageResult<DynamicImage> {
        let mut decoder = reader.into_decoder()?;
        let orientation = decoder.orientation()?;
        let mut img = DynamicImage::from_decoder(decoder)?;
        img.apply_orientation(orientation);
        Ok(img)
    };
    let img = decode().map_err(|e| match e {
        image::ImageError::Limits(_) => anyhow::anyhow!(
            "{name}: the image is larger than this tool decodes ({MAX_IMAGE_SIDE} pixels per side, {} MiB); \
             scale it down first",
            MAX_IMAGE_BYTES >> 20
        ),
        e if truncation::ends_early(&e) => {
            anyhow::anyhow!("{name}: {} ({format:?}: {e})", truncation::ENDS_EARLY)
        }
        e => match crc_mismatch(&e) {
            Some(chunk) => anyhow::anyhow!(
                "{name}: corrupt PNG: the checksum (CRC) of its {chunk} chunk does not match its data (the \
                 file was damaged, e.g. in a copy or on disk); copy or export it again"
            ),
            // The image crate's message already includes its cause.
            None => anyhow::anyhow!("cannot decode image {name}: {e}"),
        },
    })?;
    let (channels, pixels, w, h) = if img.color().has_color() {
        let c = img.to_rgb8();
        (3, c.as_raw().clone(), c.width(), c.height())
    } else {
        let g = img.to_luma8();
        (1, g.as_raw().clone(), g.width(), g.height())
    };
    Ok(Frame {
        source: name.to_string(),
        height: h as usize,
        width: w as usize,
        channels,
        pixels: Pixels::U8(pixels),
    })
}

/// The chunk (`IDAT`, `IHDR`, …) whose CRC does not match, when `e` is the
/// png decoder's checksum error. Its own words are Rust debug text
/// (`CRC error: … while decoding ChunkType { type: IDAT, critical: true, …
/// } chunk.`), and the error type behind it is private: its text is read.
fn crc_mismatch(e: &image::ImageError) -> Option<String> {
    let image::ImageError::Decoding(d) = e else {
        return None;
    };
    let text = d.to_string();
    let rest = &text[text.find("CRC error")?..];
    let chunk = rest.split("type: ").nth(1)?.split([',', ' ', '}']).next()?;
    Some(chunk.to_string())
}
