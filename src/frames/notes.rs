//! Once-per-run notes: what was done to frames (resized, converted), said
//! once on stderr instead of once per frame or never.

use std::collections::HashSet;
use std::sync::Mutex;

/// Prints each distinct note once, to stderr, prefixed `note: `. Shared by
/// the threads of one run.
#[derive(Debug, Default)]
pub struct Notes {
    seen: Mutex<HashSet<String>>,
}

impl Notes {
    /// Prints `note` unless it was printed before.
    pub fn say(&self, note: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(note.to_string()) {
            eprintln!("note: {note}");
        }
    }
}
