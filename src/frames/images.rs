//! PNG / JPEG files and directories of them, via the `image` crate.

use super::Frame;
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};

/// Image files of a directory, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    ensure!(
        !files.is_empty(),
        "{}: no .png/.jpg/.jpeg images in this directory",
        dir.display()
    );
    Ok(files)
}

/// Decodes one image: grey images stay one channel, everything else is RGB.
pub fn read_image(path: &Path) -> Result<Frame> {
    let img = image::open(path).with_context(|| format!("cannot decode image {}", path.display()))?;
    let (channels, pixels, w, h) = match img.color().channel_count() {
        1 | 2 => {
            let g = img.to_luma8();
            (1, g.as_raw().clone(), g.width(), g.height())
        }
        _ => {
            let c = img.to_rgb8();
            (3, c.as_raw().clone(), c.width(), c.height())
        }
    };
    Ok(Frame {
        source: path.display().to_string(),
        height: h as usize,
        width: w as usize,
        channels,
        pixels,
    })
}
