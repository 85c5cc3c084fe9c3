//! Directories of images: the image files of a tree, in a deterministic
//! order, what could not be listed (in its place), and what was skipped,
//! by kind.
//!
//! A directory is read whole or it says what it left out: a file named
//! like an image or holding one (even empty, cut short, HEIC or
//! unreadable) is listed, and reading it gives its frame or an error line
//! naming what it is — the same as naming the file itself; a subfolder or
//! link that cannot be listed (a loop, no permission) is an error item
//! where it sorts, and the rest of the tree is read; only files known not
//! to be images (a README, a `.npy` stack, an empty file with no image
//! name, a pipe) are skipped, counted by kind in a note.

use super::notes::count;
use super::recognise::{head, identify, not_found, Content, Kind};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// File extensions of images: a file named so is listed whatever its
/// content (empty, cut short, unreadable, another format), so that it gets
/// an error line naming what it is. Other files are images by content.
const EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp", "heic", "heif", "avif",
];

/// What a tool does with a folder or link of a tree that cannot be
/// listed, as its notes say: `lsgm-monitor` gives it an error line and
/// reads on; `fit-and-export` stops there (a fit on part of a tree is not
/// the fit asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnreadable {
    /// An error line in its place, and the rest is read.
    ErrorLine,
    /// The first one (in path order) is the tool's error.
    Stop,
}

/// One item of a directory tree, in path order.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A file to read as a frame file (an image by name or content, or a
    /// file whose content could not be read to tell).
    File(PathBuf),
    /// A folder or link that could not be listed or followed: one error
    /// item, where it sorts.
    Error {
        /// The folder or link.
        path: PathBuf,
        /// Why, naming it.
        error: String,
    },
}

/// Why a file of a directory was skipped: it is known not to be an image.
/// The order is the note's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skipped {
    /// A `.npy` or IDX (`.gz`) file: read when given by path.
    FrameStack,
    /// A zip or `.npz` archive.
    Archive,
    /// An empty file not named like an image.
    Empty,
    /// The start of a `.npy`, gzip or IDX file, cut short.
    Short,
    /// A symbolic link to nothing, not named like an image.
    BrokenLink,
    /// A FIFO, socket or device: never opened (opening a FIFO waits for
    /// its writer).
    Special,
    /// Anything else (a README, a PDF, a video).
    Other,
    /// Removed between the folder's listing and its look at the file.
    Gone,
}

impl Skipped {
    /// The kind in the note, plural.
    fn label(self) -> &'static str {
        match self {
            Skipped::FrameStack => "frame stacks (.npy, IDX; read when given by path)",
            Skipped::Archive => "zip/.npz archives",
            Skipped::Empty => "empty files",
            Skipped::Short => "files too short to recognise",
            Skipped::BrokenLink => "broken symbolic links",
            Skipped::Special => "pipes, sockets or devices (never opened)",
            Skipped::Other => "other files",
            Skipped::Gone => "files removed while the folder was read",
        }
    }
}

/// The images of a directory tree ([`list_images`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The files to read and the folders that could not be listed, in path
    /// order: each folder's entries sorted by name (bytes), a subfolder's
    /// where its name sorts.
    pub entries: Vec<Entry>,
    /// Files skipped, and why.
    pub skipped: Vec<(PathBuf, Skipped)>,
    /// Files listed directly in the directory.
    pub top: usize,
    /// Subfolders, at any depth, holding listed files themselves.
    pub subfolders: usize,
}

impl Listing {
    /// Files listed ([`Entry::File`]).
    pub fn files(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::File(_)))
            .count()
    }

    /// What the notes say about the listing of `dir`: files from
    /// subfolders, entries that could not be listed and what the tool does
    /// with them (`on`), files skipped by kind with examples.
    pub fn notes(&self, dir: &Path, on: OnUnreadable) -> Vec<String> {
        let mut notes = Vec::new();
        if self.subfolders > 0 {
            notes.push(format!(
                "{}: {} images from {} subfolder{} (+{} at the top level), in path order",
                dir.display(),
                self.files() - self.top,
                self.subfolders,
                if self.subfolders == 1 { "" } else { "s" },
                self.top
            ));
        }
        let errors = self.entries.len() - self.files();
        if errors > 0 {
            let unreadable = count(errors, "folder or link", "folders or links");
            notes.push(match on {
                OnUnreadable::ErrorLine => format!(
                    "{}: {unreadable} could not be read: an error line each, where it sorts",
                    dir.display()
                ),
                OnUnreadable::Stop => {
                    let relative = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
                    let mut names: Vec<String> = self
                        .entries
                        .iter()
                        .filter_map(|e| match e {
                            Entry::Error { path, .. } => Some(relative(path)),
                            Entry::File(_) => None,
                        })
                        .take(3)
                        .collect();
                    if errors > 3 {
                        names.push("…".to_string());
                    }
                    format!(
                        "{}: {unreadable} could not be read ({}): reading stops at the first in path order, \
                         with an error naming it; remove or fix them, or give a folder without them",
                        dir.display(),
                        names.join(", ")
                    )
                }
            });
        }
        if !self.skipped.is_empty() {
            notes.push(format!(
                "{}: skipped {}: {}",
                dir.display(),
                count(
                    self.skipped.len(),
                    "file that is not an image",
                    "files that are not images"
                ),
                self.skipped_by_kind(dir)
            ));
        }
        notes
    }

    /// The skipped files by kind, with up to two examples each, relative
    /// to `dir`: `other files: 3 (README.txt, notes.md, …)`.
    fn skipped_by_kind(&self, dir: &Path) -> String {
        let mut kinds: Vec<Skipped> = self.skipped.iter().map(|s| s.1).collect();
        kinds.sort();
        kinds.dedup();
        let relative = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
        let by_kind = kinds.into_iter().map(|kind| {
            let of: Vec<&PathBuf> = self
                .skipped
                .iter()
                .filter(|s| s.1 == kind)
                .map(|s| &s.0)
                .collect();
            let mut examples: Vec<String> = of.iter().take(2).map(|p| relative(p)).collect();
            if of.len() > 2 {
                examples.push("…".to_string());
            }
            format!("{}: {} ({})", kind.label(), of.len(), examples.join(", "))
        });
        by_kind.collect::<Vec<_>>().join("; ")
    }
}

/// The images of a directory and of its subfolders, at any depth (the
/// class folders of torchvision's `ImageFolder`, and images beside them),
/// in a deterministic order (see [`Listing::entries`]). A file counts as
/// an image by its extension or its content (module docs). Hidden files
/// and folders (names starting with `.`) are not looked at; symbolic
/// links are followed. A subfolder that cannot be listed, and a link to a
/// folder that contains it (a loop), are error entries in their place;
/// `dir` itself unreadable, or a tree with no entry, is the error.
pub fn list_images(dir: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
    let mut ancestors = Vec::new();
    walk(dir, &mut ancestors, &mut listing)?;
    if listing.entries.is_empty() {
        let others = match listing.skipped.is_empty() {
            true => String::new(),
            false => format!("; skipped {}", listing.skipped_by_kind(dir)),
        };
        bail!(
            "{}: no images in this directory or its subfolders (PNG, JPEG, BMP, GIF, TIFF or WebP{others})",
            dir.display()
        );
    }
    Ok(listing)
}

/// Lists `dir` into `out`, depth first in name order; `ancestors` are the
/// canonical paths of the folders above it, to refuse loops. An error
/// comes before anything of `dir` is listed.
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
        match classify(&path) {
            Class::Folder => {
                if let Err(e) = walk(&path, ancestors, out) {
                    let error = format!("{e:#}");
                    out.entries.push(Entry::Error { path, error });
                }
            }
            Class::File => {
                out.entries.push(Entry::File(path));
                own += 1;
            }
            Class::Error(error) => out.entries.push(Entry::Error { path, error }),
            Class::Skipped(why) => out.skipped.push((path, why)),
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

/// What a directory entry is to a listing.
enum Class {
    Folder,
    File,
    Error(String),
    Skipped(Skipped),
}

/// Sorts a directory entry (symbolic links followed): a folder, a file to
/// list (an image by name or content, or a file whose content cannot be
/// read to tell), an error (a link named like an image that leads
/// nowhere, an entry that cannot be looked at), or a skipped file.
fn classify(path: &Path) -> Class {
    let named_image = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            return match (link, named_image) {
                (true, true) => Class::Error(not_found(path)),
                (true, false) => Class::Skipped(Skipped::BrokenLink),
                (false, _) => Class::Skipped(Skipped::Gone),
            };
        }
        Err(e) => return Class::Error(format!("cannot read {}: {e}", path.display())),
    };
    if meta.is_dir() {
        return Class::Folder;
    }
    if !meta.is_file() {
        return Class::Skipped(Skipped::Special);
    }
    if named_image {
        return Class::File;
    }
    let Ok(h) = head(path) else {
        // Unreadable (no permission): it may be an image; reading it says why.
        return Class::File;
    };
    match identify(&h) {
        c if c.is_image() => Class::File,
        Content::Frames(Kind::Npy | Kind::Idx) => Class::Skipped(Skipped::FrameStack),
        Content::Npz | Content::Zip => Class::Skipped(Skipped::Archive),
        Content::Empty => Class::Skipped(Skipped::Empty),
        Content::Start { .. } => Class::Skipped(Skipped::Short),
        _ => Class::Skipped(Skipped::Other),
    }
}
