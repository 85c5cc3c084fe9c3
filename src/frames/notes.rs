//! Once-per-run notes: what was done to frames (resized, converted), said
//! once on stderr instead of once per frame or never; and the words of
//! messages ([`count`]).

use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;

/// Writes one line to stderr. Unlike `eprintln!`, a closed or full stderr
/// (`2>&1 | head`, `2>/dev/full`) loses the line instead of panicking.
pub fn stderr_line(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `1 component`, `3 components`: a count with its noun in the right
/// number (`count(1, "axis", "axes")`), for messages whose numbers can be
/// 1 (the one helper of both tools' messages).
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

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
            stderr_line(format_args!("note: {note}"));
        }
    }
}
