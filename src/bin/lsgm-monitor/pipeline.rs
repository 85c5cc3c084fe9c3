//! An ordered, bounded parallel map over a stream: one reader thread, `N`
//! worker threads, and the caller's thread writing results in input order.
//!
//! ```text
//! reader ──(≤ N queued)──▶ N workers ──▶ caller: reorder, emit in order
//!    ▲                                            │
//!    └──────── at most `window` items in flight ◀─┘
//! ```
//!
//! Why a window: a slow item (a large image, a frame whose density needs the
//! log-space path) would otherwise let the other workers run ahead without
//! bound while the writer waits for it, and memory would grow on an endless
//! stream. The reader takes item `s` only once item `s − window` has been
//! emitted, so at most `window` items are read, queued, being worked on or
//! waiting to be reordered at any time.
//!
//! Each worker builds its own state on its own thread (`init`, e.g. a tract
//! state and scratch buffers), so that state need not be `Send`. The reader
//! runs `source` on its own thread too (a frame source over stdin is not
//! `Send`). A worker that panics stops the pipeline (the reader stops reading,
//! the others drain) and the panic is re-raised when the scope ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::{Condvar, Mutex};

/// What the reader waits on: how many items the caller has emitted.
struct Window {
    emitted: Mutex<u64>,
    changed: Condvar,
    stop: AtomicBool,
    size: u64,
}

impl Window {
    /// Blocks until item `seq` may be read; `false` when the run stopped.
    fn admit(&self, seq: u64) -> bool {
        let mut emitted = self.emitted.lock().unwrap_or_else(|e| e.into_inner());
        while seq >= *emitted + self.size && !self.stop.load(Ordering::Acquire) {
            emitted = self.changed.wait(emitted).unwrap_or_else(|e| e.into_inner());
        }
        !self.stop.load(Ordering::Acquire)
    }

    fn emitted(&self, count: u64) {
        *self.emitted.lock().unwrap_or_else(|e| e.into_inner()) = count;
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _guard = self.emitted.lock().unwrap_or_else(|e| e.into_inner());
        self.changed.notify_all();
    }
}

/// Stops the pipeline if its thread unwinds, so no other thread waits for
/// an item that will never come.
struct StopOnPanic<'a>(&'a Window);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// How the pipeline ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended<E> {
    /// The source ran dry and every item was emitted.
    Done,
    /// `emit` asked to stop (e.g. stdout was closed); items after it were dropped.
    Stopped,
    /// The source or a worker's `init` failed.
    Failed(E),
}

/// Runs `work` on `threads` workers over the items `source` pushes, and
/// calls `emit` with the results in the order the items were pushed.
///
/// - `source(push)` runs on a reader thread and calls `push(item)` for each
///   item; `push` returns `false` once the run has stopped (then `source`
///   should return). An `Err` from `source` ends the run after the items
///   already pushed.
/// - `init()` runs once on each worker thread and builds its state.
/// - `work(&mut state, item)` turns an item into a result.
/// - `emit(result)` runs on the calling thread, in push order; `false` stops
///   the run.
///
/// At most `window` (≥ `threads`) items are in flight at once.
pub fn ordered<I, O, S, E>(
    threads: usize,
    window: usize,
    source: impl FnOnce(&mut dyn FnMut(I) -> bool) -> Result<(), E> + Send,
    init: impl Fn() -> Result<S, E> + Sync,
    work: impl Fn(&mut S, I) -> O + Sync,
    mut emit: impl FnMut(O) -> bool,
) -> Ended<E>
where
    I: Send,
    O: Send,
    E: Send,
{
    let threads = threads.max(1);
    let window = Window {
        emitted: Mutex::new(0),
        changed: Condvar::new(),
        stop: AtomicBool::new(false),
        size: window.max(threads) as u64,
    };
    let (job_tx, job_rx) = sync_channel::<(u64, I)>(threads);
    // In an Option so the caller can drop it once the workers are gone,
    // which fails a reader blocked in `send` (e.g. every `init` failed).
    let job_rx = Mutex::new(Some(job_rx));
    let (done_tx, done_rx) = channel::<(u64, O)>();
    let failure: Mutex<Option<E>> = Mutex::new(None);
    let fail = |e: E| {
        let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
    };
    let mut stopped = false;
    std::thread::scope(|scope| {
        let (window, job_rx, fail) = (&window, &job_rx, &fail);
        scope.spawn(move || {
            let _guard = StopOnPanic(window);
            let mut seq = 0u64;
            let mut push = |item: I| {
                if !window.admit(seq) || job_tx.send((seq, item)).is_err() {
                    return false;
                }
                seq += 1;
                true
            };
            if let Err(e) = source(&mut push) {
                fail(e);
            }
            // Dropping `job_tx` here lets the workers finish.
        });
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let (init, work) = (&init, &work);
            scope.spawn(move || {
                let _guard = StopOnPanic(window);
                let mut state = match init() {
                    Ok(s) => s,
                    Err(e) => {
                        fail(e);
                        window.stop();
                        return;
                    }
                };
                while let Some((seq, item)) = next_job(job_rx) {
                    if done_tx.send((seq, work(&mut state, item))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        stopped = write_in_order(&done_rx, window, &mut emit);
        if stopped {
            window.stop();
            // Let the workers finish what is queued.
            while done_rx.recv().is_ok() {}
        }
        // Every worker has ended (all `done` senders are gone).
        drop(job_rx.lock().unwrap_or_else(|e| e.into_inner()).take());
    });
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Ended::Failed(e),
        None if stopped => Ended::Stopped,
        None => Ended::Done,
    }
}

fn next_job<I>(jobs: &Mutex<Option<Receiver<(u64, I)>>>) -> Option<(u64, I)> {
    jobs.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()?
        .recv()
        .ok()
}

/// Emits results in sequence order as they arrive; `true` if `emit` stopped
/// the run.
fn write_in_order<O>(done: &Receiver<(u64, O)>, window: &Window, emit: &mut impl FnMut(O) -> bool) -> bool {
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    while let Ok((seq, out)) = done.recv() {
        pending.insert(seq, out);
        while let Some(out) = pending.remove(&next) {
            next += 1;
            if !emit(out) {
                return true;
            }
            window.emitted(next);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Items of uneven cost come out in order, whatever the thread count.
    #[test]
    fn results_come_out_in_input_order() {
        for threads in [1, 2, 3, 8] {
            let mut seen = Vec::new();
            let ended: Ended<()> = ordered(
                threads,
                2 * threads,
                |push| {
                    for i in 0..200u64 {
                        if !push(i) {
                            break;
                        }
                    }
                    Ok(())
                },
                || Ok(()),
                |_, i| {
                    // Every 7th item is slow, so later items finish first.
                    if i % 7 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    i * 10
                },
                |o| {
                    seen.push(o);
                    true
                },
            );
            assert_eq!(ended, Ended::Done);
            assert_eq!(
                seen,
                (0..200).map(|i| i * 10).collect::<Vec<_>>(),
                "{threads} threads"
            );
        }
    }

    /// The reader never runs more than `window` items ahead of the writer,
    /// even when one item blocks a worker for a long time.
    #[test]
    fn items_in_flight_are_bounded_by_the_window() {
        let read = AtomicUsize::new(0);
        let mut most = 0usize;
        let mut emitted = 0usize;
        let ended: Ended<()> = ordered(
            4,
            6,
            |push| {
                for i in 0..100usize {
                    read.store(i + 1, Ordering::SeqCst);
                    if !push(i) {
                        break;
                    }
                }
                Ok(())
            },
            || Ok(()),
            |_, i| {
                if i == 3 {
                    std::thread::sleep(Duration::from_millis(50));
                }
                i
            },
            |_| {
                emitted += 1;
                // Items read but not yet emitted (this one included).
                most = most.max(read.load(Ordering::SeqCst) - (emitted - 1));
                true
            },
        );
        assert_eq!(ended, Ended::Done);
        assert_eq!(emitted, 100);
        assert!(most <= 6 + 1, "{most} items in flight with a window of 6");
    }

    /// `emit` returning false stops the reader and the workers.
    #[test]
    fn a_stopped_writer_ends_the_run() {
        let read = AtomicUsize::new(0);
        let mut emitted = 0;
        let ended: Ended<()> = ordered(
            2,
            4,
            |push| {
                // An endless stream.
                let mut i = 0u64;
                while push(i) {
                    read.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                }
                Ok(())
            },
            || Ok(()),
            |_, i| i,
            |_| {
                emitted += 1;
                emitted < 10
            },
        );
        assert_eq!(ended, Ended::Stopped);
        assert_eq!(emitted, 10);
        assert!(
            read.load(Ordering::SeqCst) <= 10 + 4,
            "{}",
            read.load(Ordering::SeqCst)
        );
    }

    /// A worker whose state cannot be built fails the run with its error;
    /// a source error too, after the items it pushed.
    #[test]
    fn init_and_source_errors_end_the_run() {
        let ended = ordered(
            2,
            4,
            |push| {
                for i in 0..1000u64 {
                    if !push(i) {
                        break;
                    }
                }
                Ok(())
            },
            || Err::<(), _>("no state"),
            |_, i| i,
            |_| true,
        );
        assert_eq!(ended, Ended::Failed("no state"));
        let mut seen = 0;
        let ended = ordered(
            2,
            4,
            |push| {
                for i in 0..5u64 {
                    push(i);
                }
                Err("bad input")
            },
            || Ok(()),
            |_, i| i,
            |_| {
                seen += 1;
                true
            },
        );
        assert_eq!((ended, seen), (Ended::Failed("bad input"), 5));
    }
}
