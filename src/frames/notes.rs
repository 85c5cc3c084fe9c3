//! Once-per-run notes: what was done to frames (resized, converted), said
//! once on stderr instead of once per frame or never; and the words of
//! messages ([`count`]).

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;

thread_local! {
    /// The lines [`capture_lines`] is collecting on this thread, if any.
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Writes one line to stderr. Unlike `eprintln!`, a closed or full stderr
/// (`2>&1 | head`, `2>/dev/full`) loses the line instead of panicking.
/// Inside [`capture_lines`] the line is collected instead.
pub fn stderr_line(line: std::fmt::Arguments<'_>) {
    let kept = CAPTURED.with(|c| match c.borrow_mut().as_mut() {
        Some(lines) => {
            lines.push(line.to_string());
            true
        }
        None => false,
    });
    if !kept {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// Runs `f` and returns what it would have written to stderr through
/// [`stderr_line`] on this thread (notes and warnings, one string a line,
/// without the newline), instead of writing it: the Python package turns
/// them into Python warnings. Lines written on other threads still go to
/// stderr. Captures nest: the inner one gets its own lines.
pub fn capture_lines<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    /// Puts the outer capture back, also when `f` panics.
    struct Restore(Option<Vec<String>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            CAPTURED.with(|c| *c.borrow_mut() = outer);
        }
    }
    let guard = Restore(CAPTURED.with(|c| c.borrow_mut().replace(Vec::new())));
    let r = f();
    let lines = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    drop(guard);
    (r, lines)
}

/// `1 component`, `3 components`: a count with its noun in the right
/// number (`count(1, "axis", "axes")`), for messages whose numbers can be
/// 1 (the one helper of both tools' messages).
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Prints each distinct note once, to stderr, prefixed `note: `. Shared by
/// the threads of one run. [`Notes::collecting`] keeps them instead, from
/// whichever thread says them (the Python package turns them into warnings:
/// extraction says its notes on its worker threads, which
/// [`capture_lines`] does not see).
#[derive(Debug, Default)]
pub struct Notes {
    seen: Mutex<HashSet<String>>,
    kept: Option<Mutex<Vec<String>>>,
}

impl Notes {
    /// Notes that are kept for [`Notes::into_lines`], not printed.
    pub fn collecting() -> Notes {
        Notes {
            kept: Some(Mutex::new(Vec::new())),
            ..Notes::default()
        }
    }

    /// Prints `note` unless it was said before (or keeps it, when collecting).
    pub fn say(&self, note: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(note.to_string()) {
            match &self.kept {
                Some(kept) => kept
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("note: {note}")),
                None => stderr_line(format_args!("note: {note}")),
            }
        }
    }

    /// The kept lines (`note: …`), in the order first said; empty unless
    /// [`Notes::collecting`].
    pub fn into_lines(self) -> Vec<String> {
        self.kept
            .map(|k| k.into_inner().unwrap_or_else(|e| e.into_inner()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_lines_are_collected_per_capture_and_not_printed() {
        let ((), outer) = capture_lines(|| {
            stderr_line(format_args!("outer {}", 1));
            let ((), inner) = capture_lines(|| stderr_line(format_args!("inner")));
            assert_eq!(inner, ["inner"]);
            stderr_line(format_args!("outer 2"));
        });
        assert_eq!(outer, ["outer 1", "outer 2"]);
        // A panic inside a capture ends it: later lines are not collected by it.
        let r = std::panic::catch_unwind(|| capture_lines(|| panic!("boom")));
        assert!(r.is_err());
        assert!(CAPTURED.with(|c| c.borrow().is_none()));
    }
}
