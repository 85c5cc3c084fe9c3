//! Directories of images: the image files of a tree, in a deterministic
//! order, and what was skipped.

use super::images::image_format;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// File extensions taken as images in a directory even when their content
/// is not (they then get an error line naming the file).
const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"];

/// A regular file taken as an image: by its extension, else by its first
/// bytes.
fn is_image_file(p: &Path) -> bool {
    let by_extension = p
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    by_extension || super::source::head(p).is_ok_and(|h| image_format(&h).is_some())
}

/// The images of a directory tree ([`list_images`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The images, in path order: each folder's entries sorted by name
    /// (bytes), a subfolder's images where its name sorts.
    pub images: Vec<PathBuf>,
    /// Other files, skipped: not images by content or extension, or not
    /// regular files (FIFOs, sockets, devices are never opened).
    pub skipped: Vec<PathBuf>,
    /// Images directly in the directory.
    pub top: usize,
    /// Subfolders, at any depth, holding images themselves.
    pub subfolders: usize,
}

/// The images of a directory and of its subfolders, at any depth (the
/// class folders of torchvision's `ImageFolder`, and images beside them),
/// in a deterministic order (see [`Listing::images`]). A file counts as an
/// image by its content or its extension. Hidden files and folders (names
/// starting with `.`) are not looked at; symbolic links are followed, and a
/// link to a folder that contains it (a loop) is refused.
pub fn list_images(dir: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
    let mut ancestors = Vec::new();
    walk(dir, &mut ancestors, &mut listing)?;
    if listing.images.is_empty() {
        let others = match listing.skipped.first() {
            Some(first) => format!(
                "; {} other file(s), e.g. {}",
                listing.skipped.len(),
                first.strip_prefix(dir).unwrap_or(first).display()
            ),
            None => String::new(),
        };
        bail!(
            "{}: no images in this directory or its subfolders (PNG, JPEG, BMP, GIF, TIFF or WebP{others})",
            dir.display()
        );
    }
    Ok(listing)
}

/// Lists `dir` into `out`, depth first in name order; `ancestors` are the
/// canonical paths of the folders above it, to refuse loops.
fn walk(dir: &Path, ancestors: &mut Vec<PathBuf>, out: &mut Listing) -> Result<()> {
    let canonical = std::fs::canonicalize(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    if let Some(above) = ancestors.iter().find(|a| **a == canonical) {
        bail!(
            "{}: a symbolic link to {}, a folder that contains it (a loop); remove the link",
            dir.display(),
            above.display()
        );
    }
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    ancestors.push(canonical);
    let mut own = 0;
    for entry in entries
        .iter()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
    {
        let path = entry.path();
        // Follows symbolic links; a broken one is a skipped file.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, ancestors, out)?,
            Ok(m) if m.is_file() && is_image_file(&path) => {
                out.images.push(path);
                own += 1;
            }
            _ => out.skipped.push(path),
        }
    }
    ancestors.pop();
    if ancestors.is_empty() {
        out.top = own;
    } else if own > 0 {
        out.subfolders += 1;
    }
    Ok(())
}
