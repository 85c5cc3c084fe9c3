//! `--save-ood DIR`: keep the frames the monitor flags, to retrain on.
//!
//! An out-of-distribution frame is the most useful frame a deployed model
//! sees: it is what the training set lacked. So each flagged frame is
//! written to `DIR` as its *original* pixels (what the camera or file gave,
//! not the normalised network input, so it can be relabelled and fed to any
//! future preprocessing) next to a JSON sidecar holding its verdict.
//!
//! The monitor runs on edge boards, which sets the rules:
//!
//! * **Off the hot path.** The scoring thread only moves the frame into a
//!   bounded queue ([`Capture::offer`], `try_send`); a writer thread encodes
//!   and writes. When the queue is full the frame is dropped and counted,
//!   never waited for: a slow SD card must not slow the verdicts. The queue
//!   holds at most `queue` frames, so that is the memory it can take.
//! * **Bounded disk.** `DIR` never holds more than `max_files` captures or
//!   `max_bytes` bytes (image + sidecar sizes) of them: before each write
//!   the oldest captures are deleted to make room, so the budget holds at
//!   every moment, not just after the write. Captures left by earlier runs
//!   count too (found by name at [`Capture::start`]); other files in `DIR`
//!   are never touched.
//! * **No half-written files.** Each file is written under a temporary name
//!   (`.{stem}.png.tmp`), synced, then renamed; the image goes first and the
//!   sidecar second, and rotation deletes the sidecar first, so a sidecar
//!   never points at a missing image, even after a power cut. Temporaries
//!   left by a crash are deleted at the next start.
//! * **Never fatal.** A write error (disk full, permissions, a frame whose
//!   pixel count does not match its shape) counts the frame as `failed`,
//!   keeps the first message ([`Capture::first_error`]) and goes on.
//! * **A full disk is made room on, not a reason to stop.** When a write
//!   fails for space (`ENOSPC`, or `EDQUOT` over a quota), this monitor's own
//!   oldest captures — never other files — are removed (at least the size
//!   of the file, at least one capture) and the write is tried again, up to
//!   [`SPACE_RETRIES`] times; they count as removed, and a frame that still
//!   does not fit as failed. None is removed when `statvfs` shows that even
//!   all of them could not make room for the file (a frame larger than the
//!   disk: [`Ledger::beyond_reach`]), and an `ENOSPC` that means no inodes
//!   left is named so ([`space_cause`]). At start a full disk is only a
//!   warning (the first captures will make room; a directory that could not
//!   be created for want of room is created by the first capture that
//!   can), so a restarted monitor keeps monitoring instead of looping on a
//!   setup error; a directory that cannot be created or written for any
//!   other reason (permissions, a read-only file system, a file in the
//!   way) is still refused at start, with the cause and what to do.
//!
//! Names are `{unix_millis:013}-{seq:08}` plus `.png` or `.npy`, and `.json`
//! for the sidecar, so sorting by name sorts by time, across runs. The
//! millisecond is taken when the frame is offered; names are kept strictly
//! increasing past every capture already in `DIR` (if the clock steps back,
//! as on a board without a real-time clock before NTP syncs, the new name
//! takes the newest existing millisecond and the next sequence number), so
//! rotation always removes the truly oldest capture and never overwrites one.
//!
//! 8-bit frames become PNG (grey for 1 channel, RGB for 3). Float frames
//! (from `.npy` stacks) become `.npy` (f32, shape `[H, W, C]`, C order): a
//! PNG would round them to 256 levels, and the captured frame must be the
//! exact input the model judged.

use anyhow::{anyhow, bail, Result};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use lsgm::frames::{Frame, Pixels};
use npyz::WriterBuilder;
use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{SystemTime, UNIX_EPOCH};

/// Sequence numbers have 8 digits, so they wrap below this.
const SEQ_LIMIT: u32 = 100_000_000;
/// Milliseconds have 13 digits (good until the year 2286); clamped below this.
const MILLIS_LIMIT: u64 = 10_000_000_000_000;
/// Times a write that failed for space is tried again after making room.
const SPACE_RETRIES: usize = 3;

/// Limits, validated by [`Capture::start`].
#[derive(Debug, Clone)]
pub struct CaptureParams {
    /// Directory the captures go to; created if missing.
    pub dir: PathBuf,
    /// Most bytes (images + sidecars) the captures may take; at least 1. File lengths: on disk
    /// each file also rounds up to a filesystem block (often 4 KiB).
    pub max_bytes: u64,
    /// Most captures (image + sidecar pairs) kept; at least 1.
    pub max_files: usize,
    /// Frames waiting for the writer; at least 1. Offers beyond it are dropped.
    pub queue: usize,
    /// Bytes (pixels + sidecar) waiting for the writer; at least 1. Offers that would pass it
    /// are dropped, unless the queue is empty (a single frame larger than this is still taken).
    /// This, not `queue`, bounds the memory for large frames: 64 frames of 1080p RGB are 400 MB.
    pub queue_bytes: u64,
}

/// Counters shared with the metrics endpoint (atomics, read any time).
#[derive(Debug, Default)]
pub struct CaptureCounters {
    /// Frames written (image and sidecar).
    pub saved: AtomicU64,
    /// Frames not queued because the queue was full or the writer had stopped.
    pub dropped: AtomicU64,
    /// Frames queued but not written (write error, bad frame, larger than the whole budget).
    pub failed: AtomicU64,
    /// Captures deleted to stay within the budget, including earlier runs' deleted at start, or
    /// to make room on a full disk.
    pub removed: AtomicU64,
}

/// The counters' final values, from [`Capture::finish`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureTotals {
    /// Frames written.
    pub saved: u64,
    /// Frames dropped because the queue was full.
    pub dropped: u64,
    /// Frames that could not be written.
    pub failed: u64,
    /// Captures deleted to stay within the budget.
    pub removed: u64,
    /// The first error met (a failed frame or a capture that could not be deleted), if any.
    pub first_error: Option<String>,
}

/// What the writer thread reports back: the counters and the first error.
#[derive(Debug, Clone, Default)]
struct Report {
    /// Shared with [`Capture::counters`].
    counters: Arc<CaptureCounters>,
    /// Bytes offered and not yet written or failed.
    queued_bytes: Arc<AtomicU64>,
    /// Set once, by the first error.
    first_error: Arc<OnceLock<String>>,
}

impl Report {
    /// Keeps `message` if it is the first error.
    fn note(&self, message: String) {
        let _ = self.first_error.set(message);
    }

    /// Counts a frame that was not written, and keeps `message` if it is the first error.
    fn fail(&self, message: String) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        self.note(message);
    }

    /// The counters' current values and the first error.
    fn totals(&self) -> CaptureTotals {
        let c = &self.counters;
        CaptureTotals {
            saved: c.saved.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            removed: c.removed.load(Ordering::Relaxed),
            first_error: self.first_error.get().cloned(),
        }
    }
}

/// One flagged frame on its way to the writer.
struct Job {
    /// The original pixels.
    frame: Frame,
    /// One line of JSON, written as the sidecar.
    sidecar: String,
    /// Unix time in milliseconds when it was offered.
    millis: u64,
    /// Its share of [`CaptureParams::queue_bytes`].
    bytes: u64,
}

/// The `--save-ood` writer: a bounded queue and the thread that empties it.
pub struct Capture {
    /// The queue's sending end; dropping it lets the writer finish.
    tx: SyncSender<Job>,
    /// The writer thread.
    writer: JoinHandle<()>,
    /// Counters and first error, shared with the writer.
    report: Report,
    /// [`CaptureParams::queue_bytes`].
    queue_bytes: u64,
}

impl Capture {
    /// Creates `dir` if missing, takes the captures already in it (files this
    /// module wrote earlier, recognised by name) into the budget oldest first,
    /// removes the oldest at once if over budget, and starts the writer thread.
    ///
    /// Errors on a limit below 1 and on a `dir` that is not a directory or
    /// cannot be created or written (checked with a probe file), naming the
    /// path, the cause and what to do. A full disk (no space or no inodes
    /// left) when creating or probing `dir` is a warning on stderr: the
    /// monitor starts, the writes make room, and a `dir` that could not be
    /// created yet is created by the first write that finds room.
    pub fn start(p: CaptureParams) -> Result<Capture> {
        validate(&p)?;
        if let Some(warning) = prepare_dir(&p.dir)? {
            lsgm::frames::stderr_line(format_args!("lsgm-monitor: warning: {warning}"));
        }
        let report = Report::default();
        let mut ledger = Ledger::open(&p, &report)?;
        ledger.shrink_to(p.max_files, p.max_bytes, &report);
        let (tx, rx) = mpsc::sync_channel(p.queue);
        let thread_report = report.clone();
        let writer = thread::Builder::new()
            .name("lsgm-capture".into())
            .spawn(move || run(&rx, ledger, &thread_report))
            .map_err(|e| anyhow!("--save-ood: cannot start the writer thread ({e})"))?;
        Ok(Capture {
            tx,
            writer,
            report,
            queue_bytes: p.queue_bytes,
        })
    }

    /// Hands a flagged frame and its sidecar JSON text (one line, already
    /// serialised by the caller) to the writer; never blocks. `false` (and
    /// `dropped` += 1) when the queue is full or the writer has stopped.
    pub fn offer(&self, frame: Frame, sidecar: String) -> bool {
        let values = match &frame.pixels {
            Pixels::U8(v) => v.len() as u64,
            Pixels::F32(v) => 4 * v.len() as u64,
        };
        let bytes = values + sidecar.len() as u64;
        let queued = &self.report.queued_bytes;
        let before = queued.fetch_add(bytes, Ordering::AcqRel);
        let fits = before == 0 || before.saturating_add(bytes) <= self.queue_bytes;
        let job = Job {
            frame,
            sidecar,
            millis: unix_millis(),
            bytes,
        };
        let sent = fits && self.tx.try_send(job).is_ok();
        if !sent {
            queued.fetch_sub(bytes, Ordering::AcqRel);
            self.report.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// The live counters, for the metrics endpoint.
    pub fn counters(&self) -> Arc<CaptureCounters> {
        Arc::clone(&self.report.counters)
    }

    /// The first error so far (a frame not written, a capture not deleted), if any.
    pub fn first_error(&self) -> Option<String> {
        self.report.first_error.get().cloned()
    }

    /// Closes the queue, waits for the writer to finish what is queued,
    /// returns the counters' final values and the first error.
    pub fn finish(self) -> CaptureTotals {
        let Capture {
            tx, writer, report, ..
        } = self;
        drop(tx);
        if writer.join().is_err() {
            report.note(
                "--save-ood: the writer thread stopped unexpectedly; frames still queued were lost".into(),
            );
        }
        report.totals()
    }
}

/// Refuses limits below 1.
fn validate(p: &CaptureParams) -> Result<()> {
    let limits = [
        ("max_files (most captures kept)", p.max_files as u64),
        ("max_bytes (most bytes kept)", p.max_bytes),
        ("queue (frames waiting for the writer)", p.queue as u64),
        ("queue_bytes (bytes waiting for the writer)", p.queue_bytes),
    ];
    for (name, value) in limits {
        if value == 0 {
            bail!(
                "--save-ood {}: the limit {name} must be at least 1, got 0",
                p.dir.display()
            );
        }
    }
    Ok(())
}

/// Creates `dir` if missing and checks that files can be written in it.
/// `Ok(Some(warning))` when the only problem is a full disk (no space or
/// no inodes left, or a quota): creating the directory then waits for the
/// first capture ([`Ledger::save`]).
fn prepare_dir(dir: &Path) -> Result<Option<String>> {
    let shown = dir.display();
    if dir.exists() && !dir.is_dir() {
        bail!(
            "--save-ood {shown}: exists but is not a directory; give a directory (it is created if missing)"
        );
    }
    match make_dir(dir) {
        Ok(()) => {}
        Err(e) if is_out_of_space(&e) => {
            return Ok(Some(format!(
                "--save-ood {shown}: cannot create the directory yet ({}); monitoring starts, and each \
                 capture tries to create it again (until then captures are counted as failed, with the cause)",
                space_cause(&e, dir)
            )))
        }
        Err(e) => bail!(
            "--save-ood {shown}: cannot create the directory ({e}); {}",
            what_to_do(&e, "create it")
        ),
    }
    let probe = dir.join(format!(".lsgm-probe-{}.tmp", std::process::id()));
    let written = write_file(&probe, b"probe");
    let removed = remove(&probe);
    match written.and(removed) {
        Ok(()) => Ok(None),
        Err(e) if is_out_of_space(&e) => Ok(Some(format!(
            "--save-ood {shown}: no room to write there ({}); monitoring starts, and each capture first \
             removes this monitor's oldest captures to make room (other files are never touched); captures \
             that still do not fit are counted as failed",
            space_cause(&e, dir)
        ))),
        Err(e) => bail!(
            "--save-ood {shown}: cannot write files there ({e}); {}",
            what_to_do(&e, "fix its permissions")
        ),
    }
}

/// What to do about an error writing in the capture directory, by its
/// cause; `fix` is the advice for a permission error.
fn what_to_do(e: &io::Error, fix: &str) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => format!("{fix} or choose another directory"),
        io::ErrorKind::ReadOnlyFilesystem => {
            "it is on a read-only file system; remount it read-write or choose another directory".into()
        }
        _ if is_out_of_space(e) => "make room on that disk or choose another directory".into(),
        _ => "choose another directory".into(),
    }
}

/// True for "no space left on device" (`ENOSPC`) and "disk quota exceeded" (`EDQUOT`).
fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// An out-of-space error's text, naming inode exhaustion: `ENOSPC` means
/// either no free blocks or no free inodes, and only the file system's
/// counts ([`disk_room`]) tell which; "no space" on a disk with space
/// left would send the reader looking for the wrong thing.
fn space_cause(e: &io::Error, dir: &Path) -> String {
    let inodes_gone =
        e.raw_os_error() == Some(ENOSPC) && disk_room(dir).is_ok_and(|room| room.inodes == Some(0));
    if inodes_gone {
        format!("{e}: no inodes left on that file system, so no new file or directory fits whatever space is free")
    } else {
        e.to_string()
    }
}

/// `ENOSPC`, "no space left on device" (no free blocks, or no free inodes).
const ENOSPC: i32 = 28;

/// What a file system can still take, from `statvfs`.
#[derive(Debug, Clone, Copy)]
struct DiskRoom {
    /// Bytes an unprivileged process can still write.
    bytes: u64,
    /// Files (inodes) it can still create; `None` where the file system
    /// does not count them (its total is 0).
    inodes: Option<u64>,
    /// The allocation unit: every file's length rounds up to it.
    block: u64,
}

/// The room on the file system holding `dir`, or its nearest existing
/// ancestor when `dir` is not there yet.
fn disk_room(dir: &Path) -> io::Result<DiskRoom> {
    let existing = dir.ancestors().find(|a| a.exists()).unwrap_or(dir);
    #[cfg(test)]
    if let Some(room) = tests::small_disk::room(existing) {
        return Ok(room);
    }
    let v = rustix::fs::statvfs(existing)?;
    Ok(DiskRoom {
        bytes: v.f_bavail.saturating_mul(v.f_frsize),
        inodes: (v.f_files > 0).then_some(v.f_favail),
        block: v.f_frsize.max(1),
    })
}

/// Unix time in milliseconds (0 if the clock is before 1970).
fn unix_millis() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// A capture's name: when it was offered, and its place among the captures of that millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Stamp {
    /// Unix milliseconds, 13 digits.
    millis: u64,
    /// Sequence number, 8 digits.
    seq: u32,
}

impl Stamp {
    /// The file stem, `{millis:013}-{seq:08}`.
    fn stem(self) -> String {
        format!("{:013}-{:08}", self.millis, self.seq)
    }

    /// Parses a stem of exactly that pattern.
    fn parse(stem: &str) -> Option<Stamp> {
        let (millis, seq) = stem.split_once('-')?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(millis, 13) || !digits(seq, 8) {
            return None;
        }
        Some(Stamp {
            millis: millis.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The next stamp after this one.
    fn next(self) -> Stamp {
        if self.seq + 1 < SEQ_LIMIT {
            Stamp {
                millis: self.millis,
                seq: self.seq + 1,
            }
        } else {
            Stamp {
                millis: self.millis + 1,
                seq: 0,
            }
        }
    }
}

/// The kinds of file a capture has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// 8-bit image.
    Png,
    /// Float image.
    Npy,
    /// Sidecar.
    Json,
}

impl Ext {
    /// The file extension.
    fn as_str(self) -> &'static str {
        match self {
            Ext::Png => "png",
            Ext::Npy => "npy",
            Ext::Json => "json",
        }
    }

    /// The capture file a name belongs to, if it is one: `{stem}.{ext}`.
    fn parse_name(name: &str) -> Option<(Stamp, Ext)> {
        let (stem, ext) = name.rsplit_once('.')?;
        let ext = [Ext::Png, Ext::Npy, Ext::Json]
            .into_iter()
            .find(|e| e.as_str() == ext)?;
        Some((Stamp::parse(stem)?, ext))
    }

    /// True for a temporary left by an interrupted write: `.{stem}.{ext}.tmp`.
    fn is_leftover(name: &str) -> bool {
        let inner = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp"));
        inner.and_then(Ext::parse_name).is_some()
    }
}

/// One capture on disk: its files and their sizes.
#[derive(Debug)]
struct Stored {
    /// Its name.
    stamp: Stamp,
    /// Its files (any of image, sidecar) and their sizes in bytes.
    files: Vec<(Ext, u64)>,
}

impl Stored {
    /// Bytes on disk (file lengths).
    fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, n)| n).sum()
    }
}

/// The captures in the directory, oldest first, and the budget they must fit.
#[derive(Debug)]
struct Ledger {
    /// The directory.
    dir: PathBuf,
    /// Most bytes.
    max_bytes: u64,
    /// Most captures.
    max_files: usize,
    /// The captures, oldest first.
    kept: VecDeque<Stored>,
    /// Their total size.
    bytes: u64,
    /// The newest name used or seen; new names come after it.
    last: Option<Stamp>,
    /// The directory could not be created at start (a full disk): the next
    /// capture creates it first.
    missing: bool,
}

impl Ledger {
    /// Reads the captures already in `p.dir` and deletes leftover
    /// temporaries; a `p.dir` not there (not created at start, for want of
    /// room) holds none.
    fn open(p: &CaptureParams, report: &Report) -> Result<Ledger> {
        let shown = p.dir.display();
        let mut found: BTreeMap<Stamp, Vec<(Ext, u64)>> = BTreeMap::new();
        let entries = match fs::read_dir(&p.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            listed => Some(listed.map_err(|e| anyhow!("--save-ood {shown}: cannot list it ({e})"))?),
        };
        for entry in entries.into_iter().flatten() {
            let entry = entry.map_err(|e| anyhow!("--save-ood {shown}: cannot list it ({e})"))?;
            // Only regular files (not symlinks, not directories) with UTF-8 names can be ours.
            let (Ok(kind), Some(name)) = (entry.file_type(), entry.file_name().to_str().map(String::from))
            else {
                continue;
            };
            if !kind.is_file() {
                continue;
            }
            if Ext::is_leftover(&name) {
                if let Err(e) = remove(&entry.path()) {
                    report.note(format!(
                        "--save-ood: cannot delete the leftover {} ({e})",
                        entry.path().display()
                    ));
                }
            } else if let Some((stamp, ext)) = Ext::parse_name(&name) {
                let len = entry.metadata().map_or(0, |m| m.len());
                found.entry(stamp).or_default().push((ext, len));
            }
        }
        let kept: VecDeque<Stored> = found
            .into_iter()
            .map(|(stamp, files)| Stored { stamp, files })
            .collect();
        Ok(Ledger {
            dir: p.dir.clone(),
            max_bytes: p.max_bytes,
            max_files: p.max_files,
            bytes: kept.iter().map(Stored::bytes).sum(),
            last: kept.back().map(|s| s.stamp),
            kept,
            missing: !p.dir.is_dir(),
        })
    }

    /// Deletes the oldest captures until at most `files` captures of at most `bytes` bytes remain.
    fn shrink_to(&mut self, files: usize, bytes: u64, report: &Report) {
        while self.kept.len() > files || self.bytes > bytes {
            if self.remove_oldest(report).is_none() {
                break;
            }
        }
    }

    /// Deletes the oldest capture; its size, or `None` if there is none.
    fn remove_oldest(&mut self, report: &Report) -> Option<u64> {
        let oldest = self.kept.pop_front()?;
        self.bytes = self.bytes.saturating_sub(oldest.bytes());
        self.delete(&oldest, report);
        Some(oldest.bytes())
    }

    /// Writes a capture file. When it fails for space (a full disk or
    /// quota), deletes this monitor's oldest captures — at least the file's
    /// size, at least one — and tries again, up to [`SPACE_RETRIES`] times.
    fn write_making_room(&mut self, path: &Path, bytes: &[u8], report: &Report) -> Result<(), String> {
        let (mut rounds, mut removed) = (0, 0);
        loop {
            let e = match write_atomic(path, bytes) {
                Ok(()) => return Ok(()),
                Err(e) if is_out_of_space(&e) => e,
                Err(e) => return Err(format!("cannot write {} ({e})", path.display())),
            };
            let cause = space_cause(&e, &self.dir);
            let no_space = e.raw_os_error() == Some(ENOSPC);
            if let Some(beyond) = self.beyond_reach(bytes.len() as u64).filter(|_| no_space) {
                return Err(format!("cannot write {} ({cause}); {beyond}", path.display()));
            }
            let mut freed = (0u64, 0usize);
            while rounds < SPACE_RETRIES && freed.0 < bytes.len() as u64 {
                let Some(size) = self.remove_oldest(report) else {
                    break;
                };
                freed = (freed.0 + size.max(1), freed.1 + 1);
            }
            if freed.1 == 0 {
                let why = match removed {
                    0 => "no capture of this monitor is left to remove: other files fill the disk".into(),
                    n => format!("still no room after removing this monitor's {n} oldest captures"),
                };
                return Err(format!("cannot write {} ({cause}); {why}", path.display()));
            }
            (rounds, removed) = (rounds + 1, removed + freed.1);
        }
    }

    /// Why removing every capture of this monitor could not make room for
    /// a file of `len` bytes, if it could not: the bytes free plus the
    /// blocks its captures take are fewer (a frame larger than the disk).
    /// Then none is removed for nothing. `None` when removal may help, or
    /// the file system cannot say (a quota is not in its counts).
    fn beyond_reach(&self, len: u64) -> Option<String> {
        let room = disk_room(&self.dir).ok()?;
        let ours: u64 = (self.kept.iter())
            .flat_map(|c| c.files.iter())
            .map(|(_, n)| n.div_ceil(room.block) * room.block)
            .sum();
        if self.kept.is_empty() || room.bytes.saturating_add(ours) >= len {
            return None;
        }
        Some(format!(
            "the frame's file ({len} bytes) is larger than the room the disk can give: {} bytes free plus {ours} bytes \
             taken by this monitor's {} captures; none removed (a larger disk, or fewer other files, would take it)",
            room.bytes,
            self.kept.len()
        ))
    }

    /// Deletes a capture's files, sidecar first (so no sidecar ever lacks its image).
    fn delete(&self, capture: &Stored, report: &Report) {
        let mut files: Vec<Ext> = capture.files.iter().map(|(ext, _)| *ext).collect();
        files.sort_by_key(|ext| *ext != Ext::Json);
        let mut all_gone = true;
        for ext in files {
            let path = self.path(capture.stamp, ext);
            if let Err(e) = remove(&path) {
                all_gone = false;
                report.note(format!(
                    "--save-ood: cannot delete {} ({e}); it no longer counts towards the budget",
                    path.display()
                ));
            }
        }
        if all_gone {
            report.counters.removed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A capture file's path.
    fn path(&self, stamp: Stamp, ext: Ext) -> PathBuf {
        self.dir.join(format!("{}.{}", stamp.stem(), ext.as_str()))
    }

    /// The name for a frame offered at `millis`, this run's `seq`-th: strictly after every name so far.
    fn next_stamp(&mut self, millis: u64, seq: u32) -> Stamp {
        let wanted = Stamp {
            millis: millis.min(MILLIS_LIMIT - 1),
            seq,
        };
        let stamp = match self.last {
            Some(last) if wanted <= last => last.next(),
            _ => wanted,
        };
        self.last = Some(stamp);
        stamp
    }

    /// Encodes and writes one frame and its sidecar, making room first.
    fn save(&mut self, job: Job, seq: u32, report: &Report) -> Result<(), String> {
        let source = &job.frame.source;
        let (ext, image) = encode(&job.frame).map_err(|e| format!("--save-ood: frame {source}: {e}"))?;
        let mut sidecar = job.sidecar.into_bytes();
        if sidecar.last() != Some(&b'\n') {
            sidecar.push(b'\n');
        }
        let size = (image.len() + sidecar.len()) as u64;
        if size > self.max_bytes {
            return Err(format!(
                "--save-ood: frame {source}: its capture takes {size} bytes, more than the whole budget of {} \
                 bytes; not saved (raise the byte limit)",
                self.max_bytes
            ));
        }
        if self.missing {
            make_dir(&self.dir).map_err(|e| {
                format!(
                    "--save-ood: frame {source}: cannot create the directory {} ({}); not saved",
                    self.dir.display(),
                    space_cause(&e, &self.dir)
                )
            })?;
            self.missing = false;
        }
        let stamp = self.next_stamp(job.millis, seq);
        self.shrink_to(self.max_files - 1, self.max_bytes - size, report);
        let image_path = self.path(stamp, ext);
        self.write_making_room(&image_path, &image, report)
            .map_err(|e| format!("--save-ood: frame {source}: {e}"))?;
        let image_len = image.len() as u64;
        let sidecar_path = self.path(stamp, Ext::Json);
        if let Err(e) = self.write_making_room(&sidecar_path, &sidecar, report) {
            // An image without its verdict is of little use: take it back.
            if remove(&image_path).is_err() {
                self.bytes += image_len;
                self.kept.push_back(Stored {
                    stamp,
                    files: vec![(ext, image_len)],
                });
            }
            return Err(format!("--save-ood: frame {source}: {e}"));
        }
        self.bytes += size;
        self.kept.push_back(Stored {
            stamp,
            files: vec![(ext, image_len), (Ext::Json, sidecar.len() as u64)],
        });
        Ok(())
    }
}

/// The writer thread: saves each queued frame until the queue is closed and empty.
fn run(rx: &Receiver<Job>, mut ledger: Ledger, report: &Report) {
    let mut seq = 0;
    for job in rx {
        let source = job.frame.source.clone();
        let bytes = job.bytes;
        let saved = panic::catch_unwind(AssertUnwindSafe(|| ledger.save(job, seq, report)));
        seq = (seq + 1) % SEQ_LIMIT;
        report.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        match saved {
            Ok(Ok(())) => {
                report.counters.saved.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(message)) => report.fail(message),
            Err(_) => report.fail(format!(
                "--save-ood: frame {source}: the encoder failed unexpectedly"
            )),
        }
    }
}

/// A frame's file: PNG for 8-bit pixels, `.npy` for floats. Checks the shape first.
fn encode(frame: &Frame) -> Result<(Ext, Vec<u8>), String> {
    let (h, w, c) = (frame.height, frame.width, frame.channels);
    if h == 0 || w == 0 || c == 0 {
        return Err(format!("empty shape {h}×{w}×{c}; not saved"));
    }
    let expected = h.checked_mul(w).and_then(|n| n.checked_mul(c));
    if expected != Some(frame.pixels.len()) {
        return Err(format!(
            "{} values for a {h}×{w}×{c} frame; not saved",
            frame.pixels.len()
        ));
    }
    match &frame.pixels {
        Pixels::U8(values) => encode_png(values, h, w, c).map(|bytes| (Ext::Png, bytes)),
        Pixels::F32(values) => encode_npy(values, h, w, c).map(|bytes| (Ext::Npy, bytes)),
    }
}

/// PNG of checked 8-bit pixels: grey for 1 channel, RGB for 3.
fn encode_png(values: &[u8], h: usize, w: usize, c: usize) -> Result<Vec<u8>, String> {
    let color = match c {
        1 => ExtendedColorType::L8,
        3 => ExtendedColorType::Rgb8,
        _ => {
            return Err(format!(
                "{c} channels; a PNG capture needs 1 (grey) or 3 (RGB); not saved"
            ))
        }
    };
    let too_big = || format!("{h}×{w} is too large for a PNG; not saved");
    let (width, height) = (
        u32::try_from(w).map_err(|_| too_big())?,
        u32::try_from(h).map_err(|_| too_big())?,
    );
    let mut bytes = Vec::with_capacity(values.len() / 2 + 1024);
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, FilterType::Adaptive)
        .write_image(values, width, height, color)
        .map_err(|e| format!("cannot encode the PNG ({e})"))?;
    Ok(bytes)
}

/// `.npy` (little-endian f32, shape `[H, W, C]`, C order) of checked float pixels.
fn encode_npy(values: &[f32], h: usize, w: usize, c: usize) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(values.len() * 4 + 128);
    let write = |out: &mut Vec<u8>| -> io::Result<()> {
        let mut writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[h as u64, w as u64, c as u64])
            .writer(out)
            .begin_nd()?;
        writer.extend(values.iter().copied())?;
        writer.finish()
    };
    write(&mut bytes).map_err(|e| format!("cannot encode the .npy ({e})"))?;
    Ok(bytes)
}

/// Writes `bytes` to a temporary next to `path`, syncs it and renames it to `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let written = write_file(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Creates `path` with `bytes` in it, synced. Every file this module writes
/// goes through here, where unit tests can give a directory a small disk
/// (`tests::small_disk`).
fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    #[cfg(test)]
    tests::small_disk::check(path, bytes.len() as u64)?;
    let mut file = fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates `dir` and its missing parents. Like [`write_file`], unit tests
/// can give its parent a small disk here.
fn make_dir(dir: &Path) -> io::Result<()> {
    #[cfg(test)]
    if !dir.exists() {
        tests::small_disk::check(dir, 0)?;
    }
    fs::create_dir_all(dir)
}

/// Deletes a file; one already gone counts as deleted.
fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Parameters with the given limits.
    fn params(dir: &Path, max_bytes: u64, max_files: usize, queue: usize) -> CaptureParams {
        CaptureParams {
            dir: dir.to_path_buf(),
            max_bytes,
            max_files,
            queue,
            queue_bytes: u64::MAX,
        }
    }

    /// The byte bound of the queue drops large frames even when the frame
    /// count would allow them; a frame larger than the bound still goes
    /// through an empty queue.
    #[test]
    fn the_queue_is_bounded_in_bytes_too() {
        let dir = tempfile::tempdir().unwrap();
        let frame_bytes = 384 * 384 * 3;
        let mut p = params(dir.path(), u64::MAX, 1000, 1000);
        p.queue_bytes = 2 * frame_bytes as u64 + 100;
        let capture = Capture::start(p.clone()).unwrap();
        let accepted = (0..30)
            .filter(|&i| capture.offer(u8_frame(384, 384, 3, i), "{}".into()))
            .count() as u64;
        let t = capture.finish();
        assert!(accepted < 30 && t.dropped == 30 - accepted, "{t:?}");
        assert_eq!(t.saved + t.failed, accepted, "{t:?}");
        p.queue_bytes = 1;
        let capture = Capture::start(p).unwrap();
        assert!(capture.offer(u8_frame(8, 8, 1, 0), "{}".into()));
        assert!(capture.finish().saved >= 1);
    }

    /// An 8-bit frame with varied pixels.
    fn u8_frame(h: usize, w: usize, c: usize, seed: u32) -> Frame {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        let pixels = (0..h * w * c)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        Frame {
            source: format!("test#{seed}"),
            height: h,
            width: w,
            channels: c,
            pixels: Pixels::U8(pixels),
        }
    }

    /// The capture files (regular files) in `dir` with extension `ext`, sorted.
    fn names(dir: &Path, ext: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| e.file_name().into_string().unwrap())
            .filter(|n| n.ends_with(&format!(".{ext}")) && Ext::parse_name(n).is_some())
            .collect();
        v.sort();
        v
    }

    /// The sidecars' texts, oldest first.
    fn sidecars(dir: &Path) -> Vec<String> {
        names(dir, "json")
            .iter()
            .map(|n| fs::read_to_string(dir.join(n)).unwrap().trim_end().to_string())
            .collect()
    }

    /// Total size of the captures in `dir`.
    fn capture_bytes(dir: &Path) -> u64 {
        ["png", "npy", "json"]
            .iter()
            .flat_map(|ext| names(dir, ext))
            .map(|n| fs::metadata(dir.join(n)).unwrap().len())
            .sum()
    }

    #[test]
    fn round_trip_of_grey_and_rgb_frames() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Capture::start(params(dir.path(), 1 << 20, 100, 8)).unwrap();
        let frames = [u8_frame(4, 5, 1, 1), u8_frame(3, 2, 3, 2), u8_frame(1, 1, 1, 3)];
        for (i, f) in frames.iter().enumerate() {
            assert!(cap.offer(f.clone(), format!("{{\"i\":{i}}}")));
        }
        let totals = cap.finish();
        assert_eq!(
            totals,
            CaptureTotals {
                saved: 3,
                dropped: 0,
                failed: 0,
                removed: 0,
                first_error: None
            }
        );
        let pngs = names(dir.path(), "png");
        assert_eq!(pngs.len(), 3);
        for ((name, frame), want) in
            pngs.iter()
                .zip(&frames)
                .zip([image::ColorType::L8, image::ColorType::Rgb8, image::ColorType::L8])
        {
            let img = image::open(dir.path().join(name)).unwrap();
            assert_eq!(img.color(), want);
            assert_eq!(
                (img.height() as usize, img.width() as usize),
                (frame.height, frame.width)
            );
            assert_eq!(img.as_bytes(), frame.pixels.as_u8().unwrap());
            let stem = name.strip_suffix(".png").unwrap();
            assert!(dir.path().join(format!("{stem}.json")).is_file());
        }
        assert_eq!(sidecars(dir.path()), ["{\"i\":0}", "{\"i\":1}", "{\"i\":2}"]);
        let no_tmp = fs::read_dir(dir.path())
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp"));
        assert!(no_tmp);
    }

    #[test]
    fn float_frame_is_saved_as_exact_npy() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<f32> = (0..2 * 3 * 3)
            .map(|i| (i as f32 / 17.0).powf(1.3) + 1e-7)
            .collect();
        let frame = Frame {
            source: "stack.npy#0".into(),
            height: 2,
            width: 3,
            channels: 3,
            pixels: Pixels::F32(values.clone()),
        };
        let cap = Capture::start(params(dir.path(), 1 << 20, 10, 4)).unwrap();
        assert!(cap.offer(frame, "{\"ood\":true}".into()));
        assert_eq!(cap.finish().saved, 1);
        let npys = names(dir.path(), "npy");
        assert_eq!(npys.len(), 1);
        let bytes = fs::read(dir.path().join(&npys[0])).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), &[2, 3, 3]);
        let back: Vec<f32> = npy.into_vec().unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values));
        assert_eq!(sidecars(dir.path()), ["{\"ood\":true}"]);
    }

    #[test]
    fn rotation_keeps_the_newest_by_count() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Capture::start(params(dir.path(), u64::MAX, 5, 64)).unwrap();
        for i in 0..12 {
            assert!(cap.offer(u8_frame(8, 8, 3, i), format!("{{\"i\":{i:02}}}")));
        }
        let totals = cap.finish();
        assert_eq!(
            (totals.saved, totals.removed, totals.failed, totals.dropped),
            (12, 7, 0, 0)
        );
        let want: Vec<String> = (7..12).map(|i| format!("{{\"i\":{i:02}}}")).collect();
        assert_eq!(sidecars(dir.path()), want);
        assert_eq!(names(dir.path(), "png").len(), 5);
    }

    #[test]
    fn rotation_keeps_the_newest_by_bytes() {
        // One capture's size, measured: every frame below encodes the same way.
        let probe = tempfile::tempdir().unwrap();
        let cap = Capture::start(params(probe.path(), u64::MAX, 10, 4)).unwrap();
        assert!(cap.offer(u8_frame(8, 8, 3, 0), "{\"i\":00}".into()));
        assert_eq!(cap.finish().saved, 1);
        let one = capture_bytes(probe.path());

        let dir = tempfile::tempdir().unwrap();
        let budget = 4 * one + one / 2;
        let cap = Capture::start(params(dir.path(), budget, 1000, 64)).unwrap();
        for i in 0..12 {
            assert!(cap.offer(u8_frame(8, 8, 3, 0), format!("{{\"i\":{i:02}}}")));
        }
        let totals = cap.finish();
        assert_eq!((totals.saved, totals.removed, totals.failed), (12, 8, 0));
        let want: Vec<String> = (8..12).map(|i| format!("{{\"i\":{i:02}}}")).collect();
        assert_eq!(sidecars(dir.path()), want);
        assert!(capture_bytes(dir.path()) <= budget);
    }

    #[test]
    fn startup_counts_earlier_captures_and_leaves_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cap = Capture::start(params(d, u64::MAX, 10, 8)).unwrap();
        for i in 0..3 {
            assert!(cap.offer(u8_frame(2, 2, 1, i), format!("{{\"i\":{i}}}")));
        }
        assert_eq!(cap.finish().saved, 3);
        let others = [
            "notes.txt",
            "keep.png",
            "0000000000001-00000001.txt",
            "x0000000000001-00000001.png",
            ".other.tmp",
        ];
        for name in others {
            fs::write(d.join(name), "not a capture").unwrap();
        }
        fs::create_dir(d.join("0000000000002-00000000.png")).unwrap();
        let leftovers = [
            ".9999999999990-00000000.png.tmp",
            ".9999999999990-00000000.json.tmp",
        ];
        for name in leftovers {
            fs::write(d.join(name), "half").unwrap();
        }

        // Second run: 3 earlier + 2 new over a limit of 4 → the oldest earlier one goes.
        let cap = Capture::start(params(d, u64::MAX, 4, 8)).unwrap();
        for name in leftovers {
            assert!(!d.join(name).exists(), "{name} should be removed at start");
        }
        for i in 3..5 {
            assert!(cap.offer(u8_frame(2, 2, 1, i), format!("{{\"i\":{i}}}")));
        }
        let totals = cap.finish();
        assert_eq!((totals.saved, totals.removed), (2, 1));
        assert_eq!(sidecars(d), ["{\"i\":1}", "{\"i\":2}", "{\"i\":3}", "{\"i\":4}"]);

        // Third run with a smaller limit: over budget at once, the oldest removed before any offer.
        let cap = Capture::start(params(d, u64::MAX, 2, 8)).unwrap();
        assert_eq!(cap.counters().removed.load(Ordering::Relaxed), 2);
        assert_eq!(cap.finish().removed, 2);
        assert_eq!(sidecars(d), ["{\"i\":3}", "{\"i\":4}"]);
        assert_eq!(names(d, "png").len(), 2);
        for name in others {
            assert_eq!(fs::read_to_string(d.join(name)).unwrap(), "not a capture");
        }
        assert!(d.join("0000000000002-00000000.png").is_dir());
    }

    #[test]
    fn full_queue_drops_and_counts_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Capture::start(params(dir.path(), u64::MAX, 1000, 1)).unwrap();
        let offered = 30;
        let frames: Vec<Frame> = (0..offered).map(|i| u8_frame(384, 384, 3, i)).collect();
        let mut refused = 0;
        let mut slowest = Duration::ZERO;
        for (i, frame) in frames.into_iter().enumerate() {
            let t = Instant::now();
            let queued = cap.offer(frame, format!("{{\"i\":{i}}}"));
            slowest = slowest.max(t.elapsed());
            refused += u64::from(!queued);
        }
        assert!(slowest < Duration::from_millis(50), "an offer took {slowest:?}");
        assert!(refused >= 1, "the queue of 1 never filled");
        let totals = cap.finish();
        assert_eq!(totals.dropped, refused);
        assert_eq!(totals.saved + totals.dropped + totals.failed, offered as u64);
        assert_eq!(names(dir.path(), "png").len() as u64, totals.saved);
    }

    #[test]
    fn bad_limits_and_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (p, word) in [
            (params(d, 1, 0, 1), "max_files"),
            (params(d, 0, 1, 1), "max_bytes"),
            (params(d, 1, 1, 0), "queue"),
        ] {
            let e = Capture::start(p).err().unwrap().to_string();
            assert!(e.contains(word) && e.contains("at least 1"), "{e}");
        }
        let file = d.join("plain-file");
        fs::write(&file, "x").unwrap();
        let e = Capture::start(params(&file, 1, 1, 1)).err().unwrap().to_string();
        assert!(e.contains("plain-file") && e.contains("not a directory"), "{e}");
        let below = file.join("sub");
        let e = Capture::start(params(&below, 1, 1, 1)).err().unwrap().to_string();
        assert!(e.contains("sub") && e.contains("cannot create"), "{e}");
        // A missing directory is created.
        let fresh = d.join("a/b");
        Capture::start(params(&fresh, 1, 1, 1)).unwrap().finish();
        assert!(fresh.is_dir());
        assert_eq!(
            fs::read_dir(&fresh).unwrap().count(),
            0,
            "the probe file is removed"
        );
    }

    #[test]
    fn bad_frames_fail_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Capture::start(params(dir.path(), 10_000, 10, 16)).unwrap();
        let mut short = u8_frame(4, 4, 3, 1);
        short.pixels = Pixels::U8(vec![0; 47]);
        let mut huge = u8_frame(1, 1, 1, 2);
        (huge.height, huge.width) = (usize::MAX, usize::MAX);
        let mut empty = u8_frame(1, 1, 1, 3);
        (empty.height, empty.pixels) = (0, Pixels::U8(Vec::new()));
        let two_channels = u8_frame(2, 2, 2, 4);
        let too_big = u8_frame(100, 100, 3, 5); // noise: far more than 10 000 bytes as PNG
        for f in [short, huge, empty, two_channels, too_big] {
            assert!(cap.offer(f, "{}".into()));
        }
        assert!(cap.offer(u8_frame(2, 2, 1, 6), "{\"ok\":true}".into()));
        let totals = cap.finish();
        assert_eq!((totals.saved, totals.failed), (1, 5));
        let first = totals.first_error.unwrap();
        assert!(first.contains("test#1") && first.contains("47 values"), "{first}");
        assert_eq!(sidecars(dir.path()), ["{\"ok\":true}"]);
    }

    /// A small disk for unit tests: [`write_file`] and [`make_dir`] fail
    /// with `ENOSPC` in a directory given a size here once its files (their
    /// lengths) would pass it, or its entries a limit of inodes, and
    /// [`disk_room`] reports what is left — as a full file system does,
    /// without mounting one.
    pub(super) mod small_disk {
        use super::super::DiskRoom;
        use std::io;
        use std::path::{Path, PathBuf};
        use std::sync::Mutex;

        /// Directories, their sizes in bytes, and their most entries.
        static SIZES: Mutex<Vec<(PathBuf, u64, u64)>> = Mutex::new(Vec::new());

        /// From now on `dir` holds at most `bytes` bytes of files.
        pub fn set(dir: &Path, bytes: u64) {
            set_both(dir, bytes, u64::MAX);
        }

        /// From now on `dir` holds at most `bytes` bytes of files and `inodes` entries.
        pub fn set_both(dir: &Path, bytes: u64, inodes: u64) {
            let mut sizes = SIZES.lock().unwrap();
            sizes.retain(|(d, _, _)| d != dir);
            sizes.push((dir.to_path_buf(), bytes, inodes));
        }

        /// Bytes of the files and number of entries in `dir`, and its limits, if it has any.
        fn usage(dir: &Path) -> Option<(u64, u64, u64, u64)> {
            let (size, inodes) = (SIZES.lock().unwrap().iter())
                .find(|(d, _, _)| d == dir)
                .map(|(_, b, i)| (*b, *i))?;
            let entries: Vec<std::fs::Metadata> = std::fs::read_dir(dir)
                .unwrap()
                .filter_map(|e| e.ok()?.metadata().ok())
                .collect();
            let used = entries.iter().filter(|m| m.is_file()).map(|m| m.len()).sum();
            Some((used, entries.len() as u64, size, inodes))
        }

        /// `ENOSPC` if writing `len` bytes at `path` (a new entry) would overfill its directory's disk.
        pub fn check(path: &Path, len: u64) -> io::Result<()> {
            let dir = path.parent().unwrap_or(Path::new("."));
            let Some((used, entries, size, inodes)) = usage(dir) else {
                return Ok(());
            };
            if used + len > size || entries + 1 > inodes {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            Ok(())
        }

        /// What `dir`'s small disk has left, if it has one (lengths: blocks of 1 byte).
        pub fn room(dir: &Path) -> Option<DiskRoom> {
            let (used, entries, size, inodes) = usage(dir)?;
            Some(DiskRoom {
                bytes: size.saturating_sub(used),
                inodes: (inodes != u64::MAX).then(|| inodes.saturating_sub(entries)),
                block: 1,
            })
        }
    }

    /// The captures' sidecars and the other files in `dir`, by name.
    fn other_files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| Ext::parse_name(n).is_none())
            .collect();
        v.sort();
        v
    }

    /// A full disk during the run: each write that fails for space removes
    /// this monitor's oldest capture and is tried again, so every frame is
    /// saved, the newest are kept, and the other file is never touched.
    #[test]
    fn a_full_disk_removes_our_oldest_captures_to_make_room() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("notes.txt"), [b'x'; 3000]).unwrap();
        let cap = Capture::start(params(d, u64::MAX, 1000, 64)).unwrap();
        for i in 0..5 {
            assert!(cap.offer(u8_frame(8, 8, 3, 0), format!("{{\"i\":{i:02}}}")));
        }
        assert_eq!(cap.finish().saved, 5);
        // The disk is now exactly full: the next capture needs one removed.
        small_disk::set(d, 3000 + capture_bytes(d));
        let cap = Capture::start(params(d, u64::MAX, 1000, 64)).unwrap();
        for i in 5..12 {
            assert!(cap.offer(u8_frame(8, 8, 3, 0), format!("{{\"i\":{i:02}}}")));
        }
        let t = cap.finish();
        assert_eq!((t.saved, t.failed, t.removed), (7, 0, 7), "{t:?}");
        let want: Vec<String> = (7..12).map(|i| format!("{{\"i\":{i:02}}}")).collect();
        assert_eq!(sidecars(d), want);
        assert_eq!(names(d, "png").len(), 5);
        assert_eq!(fs::read(d.join("notes.txt")).unwrap(), [b'x'; 3000]);
        assert_eq!(other_files(d), ["notes.txt"], "no temporary left behind");
    }

    /// A disk full at start is a warning, not an error: the monitor starts,
    /// and with no capture of its own to remove each frame fails, counted,
    /// with a message naming the cause; the other files are kept.
    #[test]
    fn a_disk_full_of_other_files_is_a_warning_at_start_and_counted_failures() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("other.bin"), [7u8; 500]).unwrap();
        small_disk::set(d, 500);
        let cap = Capture::start(params(d, u64::MAX, 1000, 64)).unwrap();
        for i in 0..3 {
            assert!(cap.offer(u8_frame(4, 4, 1, i), "{}".into()));
        }
        let t = cap.finish();
        assert_eq!((t.saved, t.failed, t.removed), (0, 3, 0), "{t:?}");
        let e = t.first_error.unwrap();
        assert!(
            e.contains("No space left on device") && e.contains("no capture of this monitor"),
            "{e}"
        );
        assert_eq!(other_files(d), ["other.bin"]);
        // Room comes back: the next run saves again.
        small_disk::set(d, u64::MAX);
        let cap = Capture::start(params(d, u64::MAX, 1000, 64)).unwrap();
        assert!(cap.offer(u8_frame(4, 4, 1, 9), "{}".into()));
        assert_eq!(cap.finish().saved, 1);
    }

    /// The retries are bounded: when other files took far more room than
    /// a capture, a frame fails after [`SPACE_RETRIES`] rounds of removal
    /// (one capture each here), not after emptying the directory, and the
    /// message says how many captures were removed.
    #[test]
    fn making_room_gives_up_after_a_bounded_number_of_removals() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cap = Capture::start(params(d, u64::MAX, 1000, 64)).unwrap();
        for _ in 0..10 {
            assert!(cap.offer(u8_frame(8, 8, 3, 0), "{}".into()));
        }
        assert_eq!(cap.finish().saved, 10);
        let one = capture_bytes(d) / 10;
        small_disk::set(d, 5 * one); // someone else's files took half of it
        let cap = Capture::start(params(d, u64::MAX, 1000, 64)).unwrap();
        assert!(cap.offer(u8_frame(8, 8, 3, 0), "{}".into()));
        let t = cap.finish();
        let retries = SPACE_RETRIES as u64;
        assert_eq!((t.saved, t.failed, t.removed), (0, 1, retries), "{t:?}");
        let e = t.first_error.unwrap();
        assert!(
            e.contains(&format!("after removing this monitor's {retries} oldest")),
            "{e}"
        );
        assert_eq!(names(d, "json").len(), 10 - SPACE_RETRIES);
    }

    /// Waits (at most 10 s) until `cap` has counted `n` failed frames.
    fn wait_failed(cap: &Capture, n: u64) {
        let t = Instant::now();
        while cap.counters().failed.load(Ordering::Relaxed) < n && t.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The trial's disk with no inodes left (issue #22): a directory that
    /// cannot be created for want of room is a warning naming inode
    /// exhaustion, not an error; frames fail, counted, with that cause
    /// until room comes back, and then the first capture creates it.
    #[test]
    fn a_directory_the_full_disk_cannot_hold_yet_is_created_by_a_later_capture() {
        let parent = tempfile::tempdir().unwrap();
        let d = parent.path().join("ood");
        small_disk::set_both(parent.path(), u64::MAX, 0);
        let warning = prepare_dir(&d).unwrap().unwrap();
        assert!(
            warning.contains("cannot create the directory yet")
                && warning.contains("No space left on device")
                && warning.contains("no inodes left")
                && warning.contains("monitoring starts"),
            "{warning}"
        );
        let cap = Capture::start(params(&d, u64::MAX, 10, 8)).unwrap();
        assert!(cap.offer(u8_frame(2, 2, 1, 1), "{}".into()));
        wait_failed(&cap, 1);
        let e = cap.first_error().unwrap();
        assert!(
            e.contains("cannot create the directory") && e.contains("no inodes left"),
            "{e}"
        );
        assert!(!d.exists());
        small_disk::set_both(parent.path(), u64::MAX, u64::MAX);
        assert!(cap.offer(u8_frame(2, 2, 1, 2), "{\"ok\":1}".into()));
        let t = cap.finish();
        assert_eq!((t.saved, t.failed, t.removed), (1, 1, 0), "{t:?}");
        assert_eq!(sidecars(&d), ["{\"ok\":1}"]);
    }

    /// An existing directory on a disk with bytes free but no inodes: the
    /// probe's warning says inodes, not just "no space".
    #[test]
    fn a_disk_out_of_inodes_is_named_so_at_start() {
        let dir = tempfile::tempdir().unwrap();
        small_disk::set_both(dir.path(), u64::MAX, 0);
        let warning = prepare_dir(dir.path()).unwrap().unwrap();
        assert!(
            warning.contains("no room to write there") && warning.contains("no inodes left"),
            "{warning}"
        );
        small_disk::set(dir.path(), 0);
        let warning = prepare_dir(dir.path()).unwrap().unwrap();
        assert!(
            warning.contains("No space left on device") && !warning.contains("inodes"),
            "{warning}"
        );
    }

    /// A capture larger than the free bytes plus all of this monitor's
    /// captures (trial finding 6): none is removed for nothing, and the
    /// frame fails with a message saying it is larger than the room the
    /// disk can give; a frame that fits after removal still makes room.
    #[test]
    fn a_frame_larger_than_the_disk_can_give_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cap = Capture::start(params(d, u64::MAX, 1000, 64)).unwrap();
        for i in 0..4 {
            assert!(cap.offer(u8_frame(8, 8, 3, 0), format!("{{\"i\":{i}}}")));
        }
        assert_eq!(cap.finish().saved, 4);
        let ours = capture_bytes(d);
        small_disk::set(d, ours); // exactly full
        let cap = Capture::start(params(d, u64::MAX, 1000, 64)).unwrap();
        let big = u8_frame(100, 100, 3, 7); // noise: far more than 4 small captures as PNG
        let png = encode(&big).unwrap().1.len();
        assert!(png as u64 > ours, "{png} bytes");
        assert!(cap.offer(big, "{}".into()));
        wait_failed(&cap, 1);
        let e = cap.first_error().unwrap();
        assert!(
            e.contains(&format!(
                "({png} bytes) is larger than the room the disk can give"
            )) && e.contains(&format!("0 bytes free plus {ours} bytes"))
                && e.contains("none removed"),
            "{e}"
        );
        assert_eq!(cap.counters().removed.load(Ordering::Relaxed), 0);
        assert!(cap.offer(u8_frame(8, 8, 3, 0), "{\"i\":4}".into()));
        let t = cap.finish();
        assert_eq!((t.saved, t.failed, t.removed), (1, 1, 1), "{t:?}");
        let want: Vec<String> = (1..5).map(|i| format!("{{\"i\":{i}}}")).collect();
        assert_eq!(sidecars(d), want);
    }

    /// Each refusal of the directory names its cause and what to do about that cause.
    #[test]
    fn directory_errors_say_what_to_do_about_their_cause() {
        for (errno, says) in [
            (13, "fix its permissions"),                          // EACCES
            (30, "read-only file system; remount it read-write"), // EROFS
            (28, "make room on that disk"),                       // ENOSPC
            (122, "make room on that disk"),                      // EDQUOT
            (5, "choose another directory"),                      // EIO
        ] {
            let e = io::Error::from_raw_os_error(errno);
            let hint = what_to_do(&e, "fix its permissions");
            assert!(hint.contains(says), "errno {errno}: {hint}");
            assert_eq!(is_out_of_space(&e), errno == 28 || errno == 122, "errno {errno}");
        }
    }

    #[test]
    fn write_errors_are_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("captures");
        let cap = Capture::start(params(&d, u64::MAX, 10, 4)).unwrap();
        fs::remove_dir(&d).unwrap();
        assert!(cap.offer(u8_frame(2, 2, 1, 1), "{}".into()));
        // Wait for the failure, then give the directory back: the next frame is saved.
        let t = Instant::now();
        while cap.counters().failed.load(Ordering::Relaxed) == 0 && t.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(cap.first_error().unwrap().contains("cannot write"));
        fs::create_dir(&d).unwrap();
        assert!(cap.offer(u8_frame(2, 2, 1, 2), "{\"ok\":1}".into()));
        let totals = cap.finish();
        assert_eq!((totals.saved, totals.failed), (1, 1));
        assert_eq!(sidecars(&d), ["{\"ok\":1}"]);
    }

    #[test]
    fn names_sort_in_time_order_even_when_the_clock_steps_back() {
        let dir = tempfile::tempdir().unwrap();
        let report = Report::default();
        let mut ledger = Ledger::open(&params(dir.path(), 1, 1, 1), &report).unwrap();
        let a = ledger.next_stamp(5_000, 0);
        let b = ledger.next_stamp(4_000, 1);
        let c = ledger.next_stamp(5_000, 0);
        let d = ledger.next_stamp(6_000, 3);
        assert!(a < b && b < c && c < d);
        assert!(a.stem() < b.stem() && b.stem() < c.stem() && c.stem() < d.stem());
        assert_eq!(Stamp::parse(&d.stem()), Some(d));
        assert_eq!(
            Stamp {
                millis: 1,
                seq: SEQ_LIMIT - 1
            }
            .next(),
            Stamp { millis: 2, seq: 0 }
        );
        for bad in [
            "000000000001-00000001",
            "0000000000001-0000001",
            "0000000000001_00000001",
            "+000000000001-00000001",
        ] {
            assert_eq!(Stamp::parse(bad), None, "{bad}");
        }
    }
}
