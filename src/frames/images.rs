//! Image files and directories of them, via the `image` crate, decoded by
//! their content and shown as an image viewer would show them.

use super::{Frame, Pixels};
use anyhow::{bail, Context, Result};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::path::{Path, PathBuf};

/// Largest image side decoded (pixels), and most memory a decoder may take:
/// a 400 KB PNG can claim 20000×20000 pixels, which a 1 GB board cannot hold.
pub const MAX_IMAGE_SIDE: u32 = 16384;
/// See [`MAX_IMAGE_SIDE`].
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// File extensions taken as images in a directory even when their content
/// is not (they then get an error line naming the file).
const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"];

/// The image format of the first bytes of a file, if they are an image's.
pub(crate) fn image_format(head: &[u8]) -> Option<ImageFormat> {
    image::guess_format(head).ok()
}

fn has_image_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The images of a directory, sorted by name, and the other files in it
/// (skipped). A file counts as an image by its content or its extension;
/// hidden files and subdirectories are not looked at.
pub fn list_images(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    let (images, skipped): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| {
        has_image_extension(p) || super::source::head(p).is_ok_and(|h| image_format(&h).is_some())
    });
    if images.is_empty() {
        let others = match skipped.first() {
            Some(first) => format!(
                "; {} other file(s), e.g. {}",
                skipped.len(),
                first.file_name().unwrap_or_default().to_string_lossy()
            ),
            None => String::new(),
        };
        bail!(
            "{}: no images in this directory (PNG, JPEG, BMP, GIF, TIFF or WebP; subdirectories are not \
             searched{others})",
            dir.display()
        );
    }
    Ok((images, skipped))
}

/// Decodes one image by its content, applies its EXIF orientation, and
/// keeps grey images as one channel and makes everything else RGB (alpha
/// dropped, as PIL's `convert("RGB")`; 16-bit values scaled to 8 bits as
/// `round(v / 257)`).
pub fn read_image(path: &Path) -> Result<Frame> {
    let mut reader = ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?;
    match reader.format() {
        None => bail!(
            "{}: not an image this tool reads (PNG, JPEG, BMP, GIF, TIFF or WebP)",
            path.display()
        ),
        Some(f) if !f.reading_enabled() => bail!(
            "{}: {f:?} images are not supported; convert it to PNG (PNG, JPEG, BMP, GIF, TIFF and WebP are read)",
            path.display()
        ),
        Some(_) => {}
    }
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
            "{}: the image is larger than this tool decodes ({MAX_IMAGE_SIDE} pixels per side, {} MiB); \
             scale it down first",
            path.display(),
            MAX_IMAGE_BYTES >> 20
        ),
        // The image crate's message already includes its cause.
        e => anyhow::anyhow!("cannot decode image {}: {e}", path.display()),
    })?;
    let (channels, pixels, w, h) = if img.color().has_color() {
        let c = img.to_rgb8();
        (3, c.as_raw().clone(), c.width(), c.height())
    } else {
        let g = img.to_luma8();
        (1, g.as_raw().clone(), g.width(), g.height())
    };
    Ok(Frame {
        source: path.display().to_string(),
        height: h as usize,
        width: w as usize,
        channels,
        pixels: Pixels::U8(pixels),
    })
}
