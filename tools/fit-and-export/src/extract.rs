//! From an ONNX classifier and images to per-layer features: tap selection,
//! the preprocessing the flags describe, and streaming parallel extraction
//! with the runtime crate's `Network` (frames are read in bounded chunks
//! and dropped once run: memory holds the pooled features, not the frames).

use crate::cli::InputArgs;
use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lsgm::frames::{self, Frame, Notes, Pixels};
use lsgm::model::preprocess::{Colour, Datum, InputBuffer, PixelRange, Resize};
use lsgm::onnx::{Engine, Graph, Network, Output, Runner};
use lsgm::Preprocess;
use nalgebra::DMatrix;
use rayon::prelude::*;
use std::borrow::Borrow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Normalisation the demo models were trained with (Fashion-MNIST).
pub const DEMO_MEAN: f32 = 0.2860;
/// See [`DEMO_MEAN`].
pub const DEMO_STD: f32 = 0.3530;

pub use lsgm::frames::shipped;

/// The demo ONNX model.
pub fn demo_onnx() -> PathBuf {
    shipped("models/fmnist-resnet.onnx")
}

/// The tap names: `--layer` (repeatable), else `--layers` (`auto` or a
/// comma list), each checked against the graph; what the automatic choice
/// should tell the user goes to `notes`.
pub fn select_taps(graph: &Graph, a: &InputArgs, notes: &Notes) -> Result<Vec<String>> {
    let taps: Vec<String> = if !a.layer.is_empty() {
        a.layer.clone()
    } else if a.layers == "auto" {
        if let Some(n) = graph.auto_note() {
            notes.say(n);
        }
        graph.auto_taps()
    } else {
        a.layers
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    ensure!(
        !taps.is_empty(),
        "no layers to tap: the automatic rule found no 4-D feature map (with a known channel axis) after a \
         convolution; name the taps with --layers a,b,c (see `fit-and-export layers --onnx …`)"
    );
    let mut previous: Option<(usize, &String)> = None;
    for (i, t) in taps.iter().enumerate() {
        let at = graph.position(t)?;
        ensure!(
            !taps[..i].contains(t),
            "tap {t:?} is given twice; give each tap once"
        );
        if let Some((before, p)) = previous {
            ensure!(
                at > before,
                "tap {t:?} comes before {p:?} in the network, but is listed after it: LSGM chains the taps in \
                 network order (each transition runs from one tap to the next deeper one); list them \
                 shallowest first (`fit-and-export layers --onnx …` lists them in network order)"
            );
        }
        previous = Some((at, t));
    }
    Ok(taps)
}

/// The preprocessing the flags describe for `graph`. Nothing is guessed:
/// a 3-channel network needs `--channel-order`, a float network `--mean`
/// and `--std` (the demo network, when `--onnx` is not given, has its own),
/// a uint8 network takes raw pixels and refuses them; `--resize` defaults
/// to `exact` (frames of another size are refused).
pub fn preprocess(graph: &Graph, a: &InputArgs, demo: bool) -> Result<Preprocess> {
    let input = &graph.input;
    let path = graph.path.display();
    let c = input.channels;
    let colour = match (c, a.channel_order) {
        (1, None | Some(Colour::Grey)) => Colour::Grey,
        (1, Some(order)) => {
            bail!("--channel-order {order}: {path} takes 1-channel (grey) input; drop --channel-order")
        }
        (_, Some(Colour::Grey)) => bail!("--channel-order grey: {path} takes 3 channels; give rgb or bgr"),
        (_, Some(order)) => order,
        (_, None) => bail!(
            "{path} takes 3-channel input: say which order its channels are in with --channel-order rgb \
             (PyTorch, PIL, TensorFlow) or --channel-order bgr (OpenCV, Caffe)"
        ),
    };
    let (range, mean, std) = match input.datum {
        Datum::U8 => {
            ensure!(
                a.mean.is_none() && a.std.is_none() && a.input_range.is_none(),
                "{path} takes raw uint8 pixels and normalises them inside its graph; drop --mean, --std \
                 and --input-range"
            );
            crate::say!("note: {path} takes uint8 input: frames are fed as raw pixel values (0–255)");
            (PixelRange::Byte, vec![0.0; c], vec![1.0; c])
        }
        Datum::F32 => {
            let range = a.input_range.unwrap_or(PixelRange::Unit);
            let (mean, std) = match (&a.mean, &a.std) {
                (Some(m), Some(s)) => (m.for_channels(c, "--mean")?, s.for_channels(c, "--std")?),
                (None, None) if demo => (vec![DEMO_MEAN; c], vec![DEMO_STD; c]),
                _ => bail!(
                    "{path} takes float input: give the normalisation it was trained with as --mean and \
                     --std, in --input-range units (default 0-1, pixel / 255), e.g. --mean 0.485,0.456,0.406 \
                     --std 0.229,0.224,0.225 (ImageNet), or --mean 0 --std 1 for none"
                ),
            };
            ensure!(
                range == PixelRange::Byte || mean.iter().all(|m| m.abs() <= 1.0),
                "--mean {mean:?} lies outside [0, 1], but pixels are taken as 0-1 (pixel / 255); if the \
                 network was trained on 0–255 values, add --input-range 0-255"
            );
            (range, mean, std)
        }
    };
    let (height, width) = (input.height as u32, input.width as u32);
    let resize = match &a.resize {
        Some(s) => crop_fills(Resize::parse(s, height, width)?, height, width)?,
        None => Resize::Exact,
    };
    let p = Preprocess {
        input: input.name.clone(),
        logits: graph.logits.tensor.clone(),
        layout: input.layout,
        colour,
        height,
        width,
        resize,
        datum: input.datum,
        range,
        mean,
        std,
    };
    p.validate()
        .map_err(|e| anyhow::anyhow!("the preprocessing for {path} is not valid: {e}"))?;
    Ok(p)
}

/// `resize`, unless it is a `crop:S` whose centre crop cannot fill the
/// `height × width` input (S below its larger side): that error gives the
/// numbers and the policies that would do (the core's check, which this
/// one comes before, says it in words only).
fn crop_fills(resize: Resize, height: u32, width: u32) -> Result<Resize> {
    let side = height.max(width);
    if let Resize::Crop { shorter } = resize {
        ensure!(
            shorter >= side,
            "--resize crop:{shorter}: S = {shorter} < the input's larger side {side} (the network takes \
             {width}×{height}, W×H): a frame's shorter side scaled to {shorter} leaves no {width}×{height} \
             centre to crop. Give crop:{side} or more (crop alone is crop:{side}), or --resize letterbox to \
             fit the whole frame, padded, or stretch"
        );
    }
    Ok(resize)
}

/// A network loaded for fitting or `features` from the flags.
pub struct Prepared {
    /// The optimised network, tapping what `--layers`/`--layer` chose.
    pub network: Network,
    /// How frames become its input (what the model file will store).
    pub preprocess: Preprocess,
    /// The ONNX file's identity (what the model file will record).
    pub identity: String,
}

/// Loads `onnx` with the flags' options, chooses the taps and the
/// preprocessing (see [`select_taps`], [`preprocess`]) and builds it for
/// `engine`; what the user should know about the network goes to `notes`.
pub fn prepare(onnx: &Path, a: &InputArgs, engine: &Engine, demo: bool, notes: &Notes) -> Result<Prepared> {
    let graph = Graph::load(onnx, &a.load_options())?;
    for n in graph.logits.note.iter().cloned().chain(graph.float16_note()) {
        notes.say(&n);
    }
    let taps = select_taps(&graph, a, notes)?;
    let grids = a.grids(taps.len())?;
    let preprocess = preprocess(&graph, a, demo)?;
    let identity = graph.identity.clone();
    Ok(Prepared {
        network: Network::with_grids(graph, &taps, &grids, engine)?,
        preprocess,
        identity,
    })
}

/// Frames to extract: a path (IDX, `.npy`, an image or a directory of
/// images) and, optionally, the rows to keep by label.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The frames.
    pub path: &'a Path,
    /// An IDX label file aligned with them (read whole: labels are small).
    pub labels: Option<&'a Path>,
    /// Keep only frames whose label is one of these (needs `labels`).
    pub classes: Option<&'a [u8]>,
}

impl<'a> Source<'a> {
    /// Every frame of `path`, no labels.
    pub fn all(path: &'a Path) -> Source<'a> {
        Source {
            path,
            labels: None,
            classes: None,
        }
    }
}

/// How an extraction runs and what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Extraction {
    /// Worker threads (`None`: every core, or `RAYON_NUM_THREADS`).
    pub threads: Option<usize>,
    /// Keep the logits (`N × classes`: 8 kB a frame in f64 for 1,000
    /// classes, which fitting does not use).
    pub logits: bool,
}

/// Extracted features of many frames.
pub struct Extracted {
    /// Rows (frames kept).
    pub rows: usize,
    /// One `N × d` matrix per tap.
    pub layers: Vec<DMatrix<f64>>,
    /// `N × classes` logits, when [`Extraction::logits`] asked for them.
    pub logits: Option<DMatrix<f64>>,
    /// The labels of the rows kept, when a label file was given.
    pub labels: Option<Vec<u8>>,
}

/// Frames per chunk and worker thread: a chunk of `2 × threads × 32`
/// frames is read while the previous one runs, so at most two chunks of
/// frames are in memory, whatever the number of frames.
pub const FRAMES_PER_THREAD: usize = 32;

/// A chunk also ends once its frames hold this many bytes (large images).
pub const CHUNK_BYTES: usize = 64 << 20;

/// Which frames of a stream are kept, by label.
struct Labels<'a> {
    file: &'a Path,
    all: Vec<u8>,
    classes: Option<&'a [u8]>,
    kept: Vec<u8>,
}

/// Frames in file order from a [`frames::FrameSource`], a chunk at a time,
/// with the label filter applied as they stream.
struct Reader<'a> {
    frames: frames::FrameSource,
    labels: Option<Labels<'a>>,
    /// Frames read so far (kept or not).
    read: usize,
}

impl Reader<'_> {
    /// Up to `max` kept frames (fewer at the end of the stream, or once
    /// they hold [`CHUNK_BYTES`]) and how many frames were read for them.
    /// The first frame that cannot be read is the error.
    fn chunk(&mut self, max: usize) -> Result<(Vec<Frame>, usize)> {
        let (mut chunk, mut bytes, start) = (Vec::new(), 0, self.read);
        while chunk.len() < max && bytes < CHUNK_BYTES {
            let Some((_, frame)) = self.frames.next() else {
                break;
            };
            let frame = frame?; // every frame error names its file (and frame)
            let i = self.read;
            self.read += 1;
            if let Some(l) = &mut self.labels {
                match l.all.get(i) {
                    // More frames than labels: counted, never kept (the
                    // mismatch is the error once the count is known).
                    None => continue,
                    Some(label) if l.classes.is_some_and(|c| !c.contains(label)) => continue,
                    Some(&label) => l.kept.push(label),
                }
            }
            bytes += match &frame.pixels {
                Pixels::U8(v) => v.len(),
                Pixels::F32(v) => 4 * v.len(),
            };
            chunk.push(frame);
        }
        Ok((chunk, self.read - start))
    }
}

/// The error for a label file whose length is not the frame count.
fn mismatch(labels: &Path, count: usize, images: &Path, frames: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "{} has {} but {} has {}",
        labels.display(),
        crate::count(count, "label", "labels"),
        images.display(),
        crate::count(frames, "image", "images")
    )
}

/// Extracts the features of every frame of `source`, streaming: frames are
/// read in bounded chunks (see [`FRAMES_PER_THREAD`]), run on the worker
/// threads `opts` asks for, and dropped; only the pooled features (and the
/// logits, if asked for) are kept. Rows are in file order, those of frames
/// whose label is not in `source.classes` left out. What was done to frames
/// is said once in `notes`; the first frame that cannot be read or run is
/// the error.
pub fn extract_source(
    net: &Network,
    p: &Preprocess,
    source: &Source,
    opts: &Extraction,
    notes: &Notes,
) -> Result<Extracted> {
    let path = source.path;
    ensure!(
        source.classes.is_none() || source.labels.is_some(),
        "--classes needs --labels FILE (an IDX label file aligned with the images)"
    );
    let inputs = frames::expand_inputs_for(&[path.to_path_buf()], frames::OnUnreadable::Stop);
    let total = frames::count_frames(&inputs);
    let mut reader = Reader {
        frames: frames::FrameSource::new(inputs, None)?,
        labels: None,
        read: 0,
    };
    let mut rows = total;
    if let Some(lp) = source.labels {
        let all = frames::read_idx_labels(lp)?;
        reader.labels = Some(Labels {
            file: lp,
            all,
            classes: source.classes,
            kept: Vec::new(),
        });
        let all = &reader.labels.as_ref().expect("just set").all;
        if let Some(n) = total.filter(|&n| n != all.len()) {
            return Err(mismatch(lp, all.len(), path, n));
        }
        if let Some(keep) = source.classes {
            for class in keep.iter().filter(|c| !all.contains(c)) {
                crate::say!(
                    "warning: --classes {class}: no image of {} has this label",
                    lp.display()
                );
            }
            let kept = all.iter().filter(|l| keep.contains(l)).count();
            ensure!(kept > 0, "no images of classes {keep:?} in {}", path.display());
            rows = Some(kept);
        }
    }
    let columns = run_chunks(
        net,
        p,
        |max| reader.chunk(max),
        total,
        opts,
        rows.unwrap_or(0),
        notes,
    )?;
    ensure!(reader.read > 0, "{}: no frames", path.display());
    let labels = match reader.labels.take() {
        Some(l) if l.all.len() != reader.read => {
            return Err(mismatch(l.file, l.all.len(), path, reader.read))
        }
        Some(l) => Some(l.kept),
        None => None,
    };
    if let (Some(keep), 0) = (source.classes, columns.rows) {
        bail!("no images of classes {keep:?} in {}", path.display());
    }
    Ok(columns.finish(labels))
}

/// Runs the network on frames already in memory (generated frames), as
/// [`extract_source`] does on a file's. The first failing frame is the error.
pub fn extract(
    net: &Network,
    p: &Preprocess,
    frames: &[Frame],
    opts: &Extraction,
    notes: &Notes,
) -> Result<Extracted> {
    let mut rest = frames;
    let columns = run_chunks(
        net,
        p,
        |max| {
            let (chunk, tail) = rest.split_at(max.min(rest.len()));
            rest = tail;
            Ok((chunk.iter().collect(), chunk.len()))
        },
        Some(frames.len()),
        opts,
        frames.len(),
        notes,
    )?;
    Ok(columns.finish(None))
}

/// The features and logits of the frames run so far, row-major f32 (half
/// the memory of the f64 matrices the fit takes, made at the end).
struct Columns {
    layers: Vec<Vec<f32>>,
    logits: Option<Vec<f32>>,
    dims: Vec<usize>,
    classes: usize,
    rows: usize,
}

impl Columns {
    fn new(net: &Network, rows: usize, logits: bool) -> Columns {
        Columns {
            layers: net
                .tap_dims
                .iter()
                .map(|&d| Vec::with_capacity(rows * d))
                .collect(),
            logits: logits.then(|| Vec::with_capacity(rows * net.classes)),
            dims: net.tap_dims.clone(),
            classes: net.classes,
            rows: 0,
        }
    }

    /// Values in one row of a [`Slab`]: the logits, then every tap's features.
    fn width(&self) -> usize {
        self.classes + self.dims.iter().sum::<usize>()
    }

    /// Appends the rows of a chunk's slab.
    fn push(&mut self, slab: &[f32]) {
        for row in slab.chunks_exact(self.width()) {
            let (logits, mut features) = row.split_at(self.classes);
            if let Some(l) = &mut self.logits {
                l.extend_from_slice(logits);
            }
            for (dst, &d) in self.layers.iter_mut().zip(&self.dims) {
                let (f, rest) = features.split_at(d);
                dst.extend_from_slice(f);
                features = rest;
            }
            self.rows += 1;
        }
    }

    /// The f64 matrices, each layer's f32 copy freed once converted.
    fn finish(self, labels: Option<Vec<u8>>) -> Extracted {
        let n = self.rows;
        let matrix = |v: Vec<f32>, d: usize| DMatrix::from_fn(n, d, |i, j| v[i * d + j] as f64);
        Extracted {
            rows: n,
            layers: self
                .layers
                .into_iter()
                .zip(&self.dims)
                .map(|(v, &d)| matrix(v, d))
                .collect(),
            logits: self.logits.map(|l| matrix(l, self.classes)),
            labels,
        }
    }
}

/// One worker's network state and buffers, reused from frame to frame.
struct Worker {
    runner: Runner,
    input: InputBuffer,
    out: Output,
}

/// Idle workers: a rayon task takes one for its frames and gives it back,
/// so there are as many tract states as tasks running at once (the pool's
/// threads), each kept for the whole extraction.
struct Workers<'a> {
    net: &'a Network,
    p: &'a Preprocess,
    idle: Mutex<Vec<Worker>>,
}

impl Workers<'_> {
    fn take(&self) -> Result<Lease<'_>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let worker = match idle {
            Some(w) => w,
            None => Worker {
                runner: self.net.runner()?,
                input: self.p.buffer(),
                out: Output::default(),
            },
        };
        Ok(Lease {
            idle: &self.idle,
            worker: Some(worker),
        })
    }
}

/// A worker taken from [`Workers`], given back when dropped.
struct Lease<'a> {
    idle: &'a Mutex<Vec<Worker>>,
    worker: Option<Worker>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(w);
        }
    }
}

/// Runs `frame` on a worker and writes its logits and pooled features into
/// `row` (see [`Columns::width`]). Nothing the worker allocates outlives
/// the frame: rows long-lived among tract's large per-frame buffers
/// fragmented the worker's heap (measured: 270 MB instead of 75 MB on one
/// thread for MobileNetV2 at 224×224).
fn run_one(w: &mut Worker, p: &Preprocess, frame: &Frame, notes: &Notes, row: &mut [f32]) -> Result<()> {
    let adjusted = frames::to_input(frame, p, &mut w.input)?;
    adjusted.notes(p).iter().for_each(|n| notes.say(n));
    w.runner
        .run(&w.input, &mut w.out)
        .with_context(|| frame.source.clone())?;
    let (logits, mut features) = row.split_at_mut(w.out.logits.len());
    logits.copy_from_slice(&w.out.logits);
    for f in &w.out.features {
        let (dst, rest) = features.split_at_mut(f.len());
        dst.copy_from_slice(f);
        features = rest;
    }
    Ok(())
}

/// The progress bar on stderr (hidden when stderr is not a terminal): a
/// bar with the rate and the time left when `total` is known, a spinner
/// with the rate otherwise.
fn progress(total: Option<usize>) -> ProgressBar {
    let (bar, template) = match total {
        Some(n) => (
            ProgressBar::new(n as u64),
            "extracting [{bar:30}] {human_pos}/{human_len} frames, {per_sec}, eta {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "extracting {spinner} {human_pos} frames, {per_sec}, {elapsed}",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}

/// The streaming loop: `next(max)` gives the next chunk of at most `max`
/// frames to run (and how many frames were read for it; none at the end).
/// While one chunk runs on the pool's threads (batch 1 per frame: tract
/// ran fastest per frame at batch 1 on these networks), the calling thread
/// reads the next. Each chunk's rows go to a slab allocated here, on the
/// calling thread, and are appended to the columns in order.
fn run_chunks<F>(
    net: &Network,
    p: &Preprocess,
    mut next: impl FnMut(usize) -> Result<(Vec<F>, usize)>,
    total: Option<usize>,
    opts: &Extraction,
    rows: usize,
    notes: &Notes,
) -> Result<Columns>
where
    F: Borrow<Frame> + Send + Sync,
{
    net.check_input(p)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .thread_name(|i| format!("extract-{i}"))
        .build()
        .context("cannot start the extraction threads")?;
    let max = 2 * pool.current_num_threads() * FRAMES_PER_THREAD;
    let workers = Workers {
        net,
        p,
        idle: Mutex::new(Vec::new()),
    };
    let mut columns = Columns::new(net, rows, opts.logits);
    let width = columns.width();
    let bar = progress(total);
    let mut slab = Vec::new();
    let mut chunk = next(max)?;
    while chunk.1 > 0 {
        let (frames, read) = chunk;
        slab.resize(frames.len() * width, 0.0);
        let slab_rows = &mut slab;
        let run = || -> Vec<Result<()>> {
            pool.install(|| {
                frames
                    .par_iter()
                    .zip(slab_rows.par_chunks_mut(width))
                    .map_init(
                        || workers.take(),
                        |w, (f, row)| {
                            let lease = w.as_mut().map_err(|e| anyhow::anyhow!("{e:#}"))?;
                            let w = lease.worker.as_mut().expect("held until dropped");
                            run_one(w, p, f.borrow(), notes, row)?;
                            bar.inc(1);
                            Ok(())
                        },
                    )
                    .collect()
            })
        };
        let (done, following) = std::thread::scope(|s| {
            let running = s.spawn(run);
            let following = next(max);
            let done = running
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (done, following)
        });
        done.into_iter().collect::<Result<()>>()?; // the first failing frame, in order
        columns.push(&slab);
        bar.inc((read - frames.len()) as u64); // frames left out by label
        chunk = following?;
    }
    bar.finish_and_clear();
    Ok(columns)
}
