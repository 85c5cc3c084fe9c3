//! Streaming extraction (issue #12): frames read in bounded chunks, run on
//! one tract state per worker thread, give exactly the rows — bit for bit
//! and in file order — that running `Network::run` on one frame at a time
//! gives, whatever the number of threads, the frame format, or the label
//! filter.

mod common;

use common::{fails, read_f32, root, tool};
use fit_and_export::cli::InputArgs;
use fit_and_export::extract::{self, Extracted, Extraction, Source};
use lsgm::frames::{self, Frame, Notes, Pixels};
use lsgm::onnx::{Engine, Network, Output};
use lsgm::Preprocess;
use std::path::{Path, PathBuf};

/// 500 Fashion-MNIST test frames, gzipped IDX, and their labels.
fn sample() -> (PathBuf, PathBuf) {
    (
        root("models/samples/fmnist-test-500-images-idx3-ubyte.gz"),
        root("models/samples/fmnist-test-500-labels-idx1-ubyte.gz"),
    )
}

fn input_args(layers: &str) -> InputArgs {
    InputArgs {
        layers: layers.into(),
        layer: vec![],
        grid: None,
        mean: None,
        std: None,
        input_range: None,
        channel_order: None,
        input_size: None,
        resize: None,
        logits: None,
    }
}

/// The demo network (grey 28×28, its own normalisation), automatic taps.
fn demo() -> (Network, Preprocess) {
    let p = extract::prepare(
        &root("models/fmnist-resnet.onnx"),
        &input_args("auto"),
        &Engine::default(),
        true,
        &Notes::default(),
    )
    .unwrap();
    (p.network, p.preprocess)
}

/// One row per frame, from `Network::run` one frame at a time: logits, then
/// every tap's features.
fn one_at_a_time(net: &Network, p: &Preprocess, frames: &[Frame]) -> Vec<Vec<f32>> {
    let mut input = p.buffer();
    let mut out = Output::default();
    frames
        .iter()
        .map(|f| {
            frames::to_input(f, p, &mut input).unwrap();
            net.run(&input, &mut out).unwrap();
            let mut row = out.logits.clone();
            out.features.iter().for_each(|t| row.extend_from_slice(t));
            row
        })
        .collect()
}

/// The rows of an extraction, laid out as [`one_at_a_time`]'s.
fn rows(ex: &Extracted) -> Vec<Vec<f64>> {
    let logits = ex.logits.as_ref().expect("logits kept");
    assert_eq!(logits.nrows(), ex.rows);
    (0..ex.rows)
        .map(|i| {
            let mut row: Vec<f64> = logits.row(i).iter().copied().collect();
            for m in &ex.layers {
                row.extend(m.row(i).iter().copied());
            }
            row
        })
        .collect()
}

/// Asserts that `got` holds exactly `want`'s rows (f32 values widened to
/// f64), in the same order, bit for bit.
fn assert_identical(got: &Extracted, want: &[Vec<f32>], what: &str) {
    let got = rows(got);
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: row {i} length");
        for (j, (&a, &b)) in g.iter().zip(w).enumerate() {
            assert!(
                a.to_bits() == (b as f64).to_bits(),
                "{what}: row {i}, value {j}: {a} streamed, {b} one at a time"
            );
        }
    }
}

fn extract_with(net: &Network, p: &Preprocess, source: &Source, threads: Option<usize>) -> Extracted {
    let opts = Extraction {
        threads,
        logits: true,
    };
    extract::extract_source(net, p, source, &opts, &Notes::default()).unwrap()
}

/// `frames` (all the same size, u8) as a raw IDX file.
fn write_idx(path: &Path, frames: &[Frame]) {
    let f = &frames[0];
    let mut bytes = vec![0u8, 0, 8, if f.channels == 1 { 3 } else { 4 }];
    let mut dims = vec![frames.len(), f.height, f.width];
    if f.channels != 1 {
        dims.push(f.channels);
    }
    for d in dims {
        bytes.extend((d as u32).to_be_bytes());
    }
    for f in frames {
        bytes.extend_from_slice(f.pixels.as_u8().unwrap());
    }
    std::fs::write(path, bytes).unwrap();
}

/// `labels` as an IDX label file.
fn write_labels(path: &Path, labels: &[u8]) {
    let mut bytes = vec![0u8, 0, 8, 1];
    bytes.extend((labels.len() as u32).to_be_bytes());
    bytes.extend_from_slice(labels);
    std::fs::write(path, bytes).unwrap();
}

/// `frames` (grey u8 `H×W`) as an N×H×W float32 `.npy` in [0, 1].
fn write_npy_f32(path: &Path, frames: &[Frame]) {
    let f = &frames[0];
    let shape = [frames.len() as u64, f.height as u64, f.width as u64];
    let values = frames
        .iter()
        .flat_map(|f| f.pixels.as_u8().unwrap().iter().map(|&v| v as f32 / 255.0));
    common::write_npy(path, &shape, values);
}

#[test]
fn streamed_rows_equal_one_frame_at_a_time_bit_for_bit_and_in_order_for_any_thread_count() {
    let (images, _) = sample();
    let frames = frames::read_idx_images(&images).unwrap();
    let (net, p) = demo();
    let want = one_at_a_time(&net, &p, &frames);
    // 500 frames: chunks of 64 frames on one thread, 128 on two, 192 on three.
    for threads in [Some(1), Some(2), Some(3), None] {
        let ex = extract_with(&net, &p, &Source::all(&images), threads);
        assert_identical(&ex, &want, &format!("gzipped IDX, {threads:?} threads"));
        assert!(ex.labels.is_none());
    }
    // Without logits (as fitting asks), the same features.
    let opts = Extraction {
        threads: Some(2),
        logits: false,
    };
    let ex = extract::extract_source(&net, &p, &Source::all(&images), &opts, &Notes::default()).unwrap();
    assert!(ex.logits.is_none());
    let full = extract_with(&net, &p, &Source::all(&images), Some(1));
    assert_eq!((ex.rows, &ex.layers), (500, &full.layers));
    // In-memory frames take the same path.
    let opts = Extraction {
        threads: Some(2),
        logits: true,
    };
    let ex = extract::extract(&net, &p, &frames, &opts, &Notes::default()).unwrap();
    assert_identical(&ex, &want, "frames in memory");
}

#[test]
fn every_frame_format_streams_the_same_rows() {
    let (images, _) = sample();
    let frames = frames::read_idx_images(&images).unwrap();
    let (net, p) = demo();
    let want = one_at_a_time(&net, &p, &frames);
    let dir = tempfile::tempdir().unwrap();

    let raw = dir.path().join("raw-idx3-ubyte");
    write_idx(&raw, &frames);
    assert_eq!(frames::idx_image_count(&raw).unwrap(), 500);
    let streamed: Vec<Frame> = frames::IdxFrames::open(&raw)
        .unwrap()
        .collect::<anyhow::Result<_>>()
        .unwrap();
    assert_eq!(streamed, frames::read_idx_images(&raw).unwrap());
    assert_identical(
        &extract_with(&net, &p, &Source::all(&raw), Some(2)),
        &want,
        "raw IDX",
    );

    // Float .npy frames become u8-equal inputs only up to rounding: compare
    // them with their own one-at-a-time run.
    let npy = dir.path().join("frames.npy");
    write_npy_f32(&npy, &frames[..150]);
    let npy_frames = frames::read_npy_frames(&npy).unwrap();
    assert!(matches!(npy_frames[0].pixels, Pixels::F32(_)));
    let npy_want = one_at_a_time(&net, &p, &npy_frames);
    for threads in [Some(1), Some(2)] {
        let ex = extract_with(&net, &p, &Source::all(&npy), threads);
        assert_identical(&ex, &npy_want, &format!("float .npy, {threads:?} threads"));
    }

    // A directory of PNGs, read in name order; one image alone.
    let pngs = dir.path().join("pngs");
    std::fs::create_dir(&pngs).unwrap();
    for (i, f) in frames[..70].iter().enumerate() {
        image::GrayImage::from_raw(28, 28, f.pixels.as_u8().unwrap().to_vec())
            .unwrap()
            .save(pngs.join(format!("{i:03}.png")))
            .unwrap();
    }
    let ex = extract_with(&net, &p, &Source::all(&pngs), Some(2));
    assert_identical(&ex, &want[..70], "directory of PNGs");
    let one = pngs.join("007.png");
    assert_identical(
        &extract_with(&net, &p, &Source::all(&one), Some(2)),
        &want[7..8],
        "one PNG",
    );

    // Counting reads headers and listings only.
    let count = |p: &Path| frames::count_frames(&frames::expand_inputs(&[p.to_path_buf()]));
    assert_eq!(count(&images), Some(500));
    assert_eq!(count(&npy), Some(150));
    assert_eq!(count(&pngs), Some(70));
    assert_eq!(count(&one), Some(1));
    assert_eq!(count(&dir.path().join("missing")), None);
}

#[test]
fn labels_and_classes_keep_the_right_rows_while_streaming() {
    let (images, labels) = sample();
    let frames = frames::read_idx_images(&images).unwrap();
    let all_labels = frames::read_idx_labels(&labels).unwrap();
    let (net, p) = demo();
    let want = one_at_a_time(&net, &p, &frames);

    // Labels alone keep every row and return every label.
    let source = Source {
        path: &images,
        labels: Some(&labels),
        classes: None,
    };
    let ex = extract_with(&net, &p, &source, Some(2));
    assert_identical(&ex, &want, "labels, no classes");
    assert_eq!(ex.labels.as_deref(), Some(&all_labels[..]));

    for classes in [&[0u8, 3, 7][..], &[9], &[5, 1]] {
        let keep: Vec<usize> = (0..500).filter(|&i| classes.contains(&all_labels[i])).collect();
        assert!(!keep.is_empty() && keep.len() < 500);
        let want_rows: Vec<Vec<f32>> = keep.iter().map(|&i| want[i].clone()).collect();
        let want_labels: Vec<u8> = keep.iter().map(|&i| all_labels[i]).collect();
        for threads in [Some(1), Some(2)] {
            let source = Source {
                path: &images,
                labels: Some(&labels),
                classes: Some(classes),
            };
            let ex = extract_with(&net, &p, &source, threads);
            assert_identical(
                &ex,
                &want_rows,
                &format!("classes {classes:?}, {threads:?} threads"),
            );
            assert_eq!(ex.labels.as_deref(), Some(&want_labels[..]));
        }
    }

    let err = |source: &Source| {
        let opts = Extraction {
            threads: Some(2),
            logits: true,
        };
        let e = extract::extract_source(&net, &p, source, &opts, &Notes::default())
            .err()
            .expect("an error");
        format!("{e:#}")
    };
    // A label file of another length: the error names both files.
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short-labels");
    write_labels(&short, &all_labels[..499]);
    let e = err(&Source {
        path: &images,
        labels: Some(&short),
        classes: Some(&[1]),
    });
    assert!(
        e.contains(&format!(
            "{} has 499 labels but {} has 500 images",
            short.display(),
            images.display()
        )),
        "{e}"
    );
    let e = err(&Source {
        path: &images,
        labels: Some(&short),
        classes: None,
    });
    assert!(e.contains("has 499 labels but"), "{e}");
    let e = err(&Source {
        path: &images,
        labels: Some(&labels),
        classes: Some(&[42]),
    });
    assert!(e.contains("no images of classes [42]"), "{e}");
    let e = err(&Source {
        path: &images,
        labels: None,
        classes: Some(&[1]),
    });
    assert!(e.contains("--classes needs --labels"), "{e}");
}

#[test]
fn a_uint8_network_streams_what_it_runs_one_frame_at_a_time() {
    let net_path = root("tests/fixtures/onnx/uint8_input.onnx");
    let p = extract::prepare(
        &net_path,
        &input_args("relu1,relu3"),
        &Engine::default(),
        false,
        &Notes::default(),
    )
    .unwrap();
    let (net, pre) = (p.network, p.preprocess);
    let (images, _) = sample();
    let frames: Vec<Frame> = frames::read_idx_images(&images).unwrap();
    let want = one_at_a_time(&net, &pre, &frames[..500]);
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("u8-idx3-ubyte");
    write_idx(&raw, &frames[..500]);
    for threads in [Some(1), Some(2)] {
        let ex = extract_with(&net, &pre, &Source::all(&raw), threads);
        assert_identical(&ex, &want, &format!("uint8 network, {threads:?} threads"));
    }
    // A runner kept across frames gives what a fresh state gives.
    let mut runner = net.runner().unwrap();
    let (mut input, mut out) = (pre.buffer(), Output::default());
    for (f, w) in frames[..20].iter().zip(&want) {
        frames::to_input(f, &pre, &mut input).unwrap();
        runner.run(&input, &mut out).unwrap();
        assert_eq!(out.logits, w[..out.logits.len()]);
    }
}

#[test]
fn idx_files_stream_with_the_same_checks_as_before() {
    let dir = tempfile::tempdir().unwrap();
    // Header promises 9 frames of 28×28; 3 bytes follow.
    let corrupt = dir.path().join("corrupt-idx3-ubyte");
    std::fs::write(
        &corrupt,
        [0u8, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3],
    )
    .unwrap();
    let e = format!("{:#}", frames::IdxFrames::open(&corrupt).err().unwrap());
    assert!(
        e.contains("ends early") && e.contains("promises 7056 bytes"),
        "{e}"
    );
    // A gzip stream cut short is refused before any frame.
    let (images, _) = sample();
    let gz = std::fs::read(&images).unwrap();
    let cut = dir.path().join("cut-idx3-ubyte.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let e = format!("{:#}", frames::IdxFrames::open(&cut).err().unwrap());
    assert!(e.contains("ends early"), "{e}");
    let items: Vec<_> = frames::FrameSource::new(frames::expand_inputs(std::slice::from_ref(&cut)), None)
        .unwrap()
        .collect();
    assert_eq!(items.len(), 1, "one error item, no frame");
    assert!(items[0].1.is_err());
    // Not image data.
    let labels = dir.path().join("labels-idx1-ubyte");
    write_labels(&labels, &[1, 2, 3]);
    let e = format!("{:#}", frames::IdxFrames::open(&labels).err().unwrap());
    assert!(e.contains("expected N×H×W or N×H×W×C"), "{e}");
}

#[test]
fn features_and_fits_are_the_same_on_one_thread_or_two() {
    let (images, labels) = sample();
    let frames = frames::read_idx_images(&images).unwrap();
    let (net, p) = demo();
    let want = one_at_a_time(&net, &p, &frames);
    let dir = tempfile::tempdir().unwrap();
    let demo_onnx = root("models/fmnist-resnet.onnx");
    let features = |threads: &str| {
        let out = dir.path().join(format!("features-{threads}"));
        tool()
            .args(["features", "--onnx"])
            .arg(&demo_onnx)
            .args(["--mean", "0.2860", "--std", "0.3530", "--data"])
            .arg(&images)
            .arg("--out")
            .arg(&out)
            .args(["--threads", threads])
            .assert()
            .success();
        out
    };
    let (one, two) = (features("1"), features("2"));
    for i in 0..net.taps.len() {
        let name = format!("{i}.npy");
        assert_eq!(
            std::fs::read(one.join(&name)).unwrap(),
            std::fs::read(two.join(&name)).unwrap(),
            "{name}"
        );
    }
    // Tap 0's features, bit for bit, in order.
    let classes = net.classes;
    let d0 = net.tap_dims[0];
    let got = read_f32(&two.join("0.npy"));
    for (i, w) in want.iter().enumerate() {
        assert_eq!(got[i * d0..(i + 1) * d0], w[classes..classes + d0], "row {i}");
    }
    let logits = read_f32(&two.join("logits.npy"));
    assert_eq!(logits[..classes], want[0][..classes]);

    // A fit on --classes gives the same model on one thread or two.
    let fit = |threads: &str| {
        let out = dir.path().join(format!("m{threads}.lsgm"));
        tool()
            .arg("--train")
            .arg(&images)
            .arg("--labels")
            .arg(&labels)
            .args(["--classes", "0,1,2,3,4", "--components", "2", "--max-iter", "5"])
            .args(["--covariance", "diag", "--holdout", "0.2", "--threads", threads])
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        std::fs::read(out).unwrap()
    };
    assert_eq!(fit("1"), fit("2"));
    fails(tool().args(["--threads", "0"]), 2, &["--threads"]);
}
