//! Where frames come from, and how a run ends early.
//!
//! Files are read on the pipeline's reader thread, which checks the stop
//! flag between frames. When an input is a stream — raw frames on stdin, a
//! named pipe, `<(…)`, `/dev/stdin` — the inputs are read on a thread of
//! their own that is never joined, and handed through a small bounded
//! channel to the pipeline's reader, which polls the stop flag while it
//! waits: a read blocked on a quiet camera pipe, or an `open` blocked on a
//! FIFO no writer has opened yet, must not keep the monitor from ending on
//! SIGINT / SIGTERM. (Opening FIFOs with `O_NONBLOCK` would not do: a read
//! then sees end-of-file until a writer comes, and the blocking read after
//! it could not be interrupted either.) When the flag is set (or the source
//! runs dry) the pipeline finishes the frames in flight, the verdicts are
//! flushed, and the summary is printed. A second signal ends the process at
//! once (exit 130 / 143), for an operator whose first one seems ignored.
//! A part of the monitor that must not die while frames are still judged
//! (the `--metrics` endpoint) ends the run the same way through
//! [`Stop::fail`], and the run then exits 1 ([`Stop::failure`]).

use crate::Item;
use anyhow::{Context, Result};
use lsgm::frames::{FrameSource, Input, RawFormat};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How often the pipeline's reader looks at the stop flag while it waits
/// for a frame.
const POLL: Duration = Duration::from_millis(50);

/// Frames read ahead of the pipeline (which bounds its own window too).
const READ_AHEAD: usize = 2;

/// Set by SIGINT / SIGTERM, or by [`Stop::fail`]. Clones share the flag.
#[derive(Clone, Default)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
    /// Why a part of the monitor ended the run, if one did.
    failure: Arc<OnceLock<String>>,
}

impl Stop {
    /// Installs the handlers: the first SIGINT or SIGTERM sets the flag and
    /// records which signal it was; a second one exits at once with 128 +
    /// its number (signal-hook's conditional shutdown).
    pub fn install() -> Result<Stop> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let stop = Stop::default();
        let (flag, signal) = (&stop.flag, &stop.signal);
        for sig in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as the earlier signal left it.
            signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(flag))
                .and_then(|_| signal_hook::flag::register(sig, Arc::clone(flag)))
                .and_then(|_| signal_hook::flag::register_usize(sig, Arc::clone(signal), sig as usize))
                .context("cannot install the SIGINT / SIGTERM handlers")?;
        }
        Ok(stop)
    }

    /// Ends the run because a part of the monitor failed for good: the
    /// frames in flight are finished, the summary printed, and the run exits
    /// 1 with `reason`, so that a service manager restarts the monitor
    /// rather than leave it judging frames with that part dead. The first
    /// reason is kept.
    pub fn fail(&self, reason: String) {
        let _ = self.failure.set(reason);
        self.flag.store(true, Ordering::Relaxed);
    }

    /// Why the run was ended by [`Stop::fail`], if it was.
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// True once a stop was asked for.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// The signal that stopped the run, by name.
    pub fn signal(&self) -> Option<&'static str> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        match self.signal.load(Ordering::Relaxed) {
            0 => None,
            s if s == SIGINT as usize => Some("SIGINT"),
            s if s == SIGTERM as usize => Some("SIGTERM"),
            _ => Some("a signal"),
        }
    }
}

/// What the source thread hands over.
enum Read {
    Frame(Item),
    Failed(anyhow::Error),
}

/// The pipeline's source over `inputs` (repeated until `at_least` frames
/// were read, for `--bench`): a function that pushes frames until the
/// inputs run dry, the pipeline stops, or `stop` is requested. Files are
/// read on the pipeline's reader thread, checking `stop` between frames;
/// inputs with a stream among them (stdin, a FIFO: their open or read can
/// block for as long as the writer is quiet) are read on a thread of their
/// own that is never joined.
pub fn start(
    inputs: Vec<Input>,
    raw: Option<RawFormat>,
    at_least: usize,
    stop: &Stop,
) -> Result<Box<Source<'_>>> {
    if let (1.., Some(Input::Stream(p))) = (at_least, inputs.iter().find(|i| i.is_stream())) {
        anyhow::bail!(
            "--bench repeats its inputs, and {} is a pipe or device, which can be read only once; \
             save its frames to a file first",
            p.display()
        );
    }
    if !inputs.iter().any(Input::is_stream) {
        return Ok(Box::new(move |push: &mut dyn FnMut(Item) -> bool| {
            read_all(inputs, raw, at_least, &mut |item| !stop.requested() && push(item))
        }));
    }
    let (tx, rx) = sync_channel::<Read>(READ_AHEAD);
    std::thread::Builder::new()
        .name("stream reader".into())
        .spawn(move || {
            if let Err(e) = read_all(inputs, raw, at_least, &mut |item| {
                tx.send(Read::Frame(item)).is_ok()
            }) {
                let _ = tx.send(Read::Failed(e));
            }
        })
        .context("cannot start the stream reader thread")?;
    Ok(Box::new(move |push: &mut dyn FnMut(Item) -> bool| {
        forward(&rx, stop, push)
    }))
}

/// What the pipeline's reader runs: it pushes frames until `push` says stop.
pub type Source<'a> = dyn FnOnce(&mut dyn FnMut(Item) -> bool) -> Result<()> + Send + 'a;

/// Reads every frame of `inputs`, whole passes until `at_least` frames;
/// stops early when `send` returns `false`.
fn read_all(
    inputs: Vec<Input>,
    raw: Option<RawFormat>,
    at_least: usize,
    send: &mut dyn FnMut(Item) -> bool,
) -> Result<()> {
    let mut read = 0usize;
    loop {
        let before = read;
        for (index, (source, frame)) in FrameSource::new(inputs.clone(), raw)?.enumerate() {
            read += 1;
            let read_at = Instant::now();
            if !send(Item {
                source,
                index,
                frame,
                read_at,
            }) {
                return Ok(());
            }
        }
        if read >= at_least || read == before {
            return Ok(());
        }
    }
}

fn forward(rx: &Receiver<Read>, stop: &Stop, push: &mut dyn FnMut(Item) -> bool) -> Result<()> {
    while !stop.requested() {
        match rx.recv_timeout(POLL) {
            Ok(Read::Frame(item)) => {
                if !push(item) {
                    return Ok(());
                }
            }
            Ok(Read::Failed(e)) => return Err(e),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
    Ok(())
}
