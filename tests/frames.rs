#![cfg(feature = "frames")]
//! Frame files as users bring them: decoded by content, shown as a viewer
//! shows them, `.npy` stacks in every documented layout, and every file that
//! cannot be read right refused with its name.

use lsgm::frames::{
    decode_image, expand_inputs, read_image, read_npy_frames, sniff, Entry, FrameSource, Input, Kind,
    OnUnreadable, Pixels, Skipped,
};
use std::path::{Path, PathBuf};

fn write_npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], data: &[T]) {
    let mut out = Vec::new();
    {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
    }
    std::fs::write(path, out).unwrap();
}

fn u8s(f: &lsgm::frames::Frame) -> &[u8] {
    f.pixels.as_u8().unwrap()
}

#[test]
fn images_are_decoded_by_content_in_every_supported_format() {
    let dir = tempfile::tempdir().unwrap();
    let img = image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 80, 7]));
    for (name, format) in [
        ("a.png", image::ImageFormat::Png),
        ("b.bmp", image::ImageFormat::Bmp),
        ("c.tiff", image::ImageFormat::Tiff),
        ("d.webp", image::ImageFormat::WebP),
        ("e.gif", image::ImageFormat::Gif),
    ] {
        let p = dir.path().join(name);
        img.save_with_format(&p, format).unwrap();
        // The same bytes under a misleading name decode the same.
        let renamed = dir.path().join(format!("{name}.jpg"));
        std::fs::copy(&p, &renamed).unwrap();
        for path in [&p, &renamed] {
            assert_eq!(sniff(path).unwrap(), Kind::Image);
            let f = read_image(path).unwrap();
            assert_eq!((f.width, f.height, f.channels), (5, 3, 3), "{name}");
            if format != image::ImageFormat::Gif {
                // Lossless formats: exact pixels (GIF quantises to a palette).
                assert_eq!(u8s(&f), img.as_raw().as_slice(), "{name}");
            }
        }
    }
    // A grey PNG stays one channel.
    let grey = dir.path().join("g.png");
    image::GrayImage::from_pixel(4, 4, image::Luma([9]))
        .save(&grey)
        .unwrap();
    assert_eq!(read_image(&grey).unwrap().channels, 1);
}

/// A JPEG with an EXIF APP1 segment whose orientation tag is `orientation`.
fn jpeg_with_orientation(img: &image::RgbImage, orientation: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100)
        .encode_image(img)
        .unwrap();
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian TIFF, IFD at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // padding, next IFD = 0
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_applied_as_a_viewer_shows_the_photo() {
    let dir = tempfile::tempdir().unwrap();
    // 32×16, left half black, right half white.
    let img = image::RgbImage::from_fn(32, 16, |x, _| image::Rgb([if x < 16 { 0 } else { 255 }; 3]));
    let p = dir.path().join("phone.jpg");
    std::fs::write(&p, jpeg_with_orientation(&img, 6)).unwrap();
    let f = read_image(&p).unwrap();
    // Orientation 6: rotate 90° clockwise → 16 wide, 32 high, black on top.
    assert_eq!((f.width, f.height), (16, 32));
    let px = u8s(&f);
    let at = |x: usize, y: usize| px[(y * 16 + x) * 3];
    assert!(
        at(8, 2) < 30 && at(8, 29) > 225,
        "top {} bottom {}",
        at(8, 2),
        at(8, 29)
    );
}

#[test]
fn unreadable_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"hello, not a frame").unwrap();
    let e = format!("{:#}", sniff(&text).unwrap_err());
    assert!(e.contains("notes.png") && e.contains("not a frame file"), "{e}");
    // A format the image crate knows but this build does not read (QOI).
    let qoi = dir.path().join("x.qoi");
    std::fs::write(&qoi, b"qoif\0\0\0\x02\0\0\0\x02\x03\x00rest").unwrap();
    assert_eq!(sniff(&qoi).unwrap(), Kind::Image);
    let e = format!("{:#}", read_image(&qoi).unwrap_err());
    assert!(
        e.contains("Qoi images are not supported") && e.contains("convert it to PNG"),
        "{e}"
    );
    // Not an IDX file either (no "bad magic" from the IDX reader): one error
    // item naming the file, between the frames of the other inputs.
    let good = dir.path().join("good.png");
    image::GrayImage::new(2, 2).save(&good).unwrap();
    let missing = dir.path().join("missing.png");
    let inputs = expand_inputs(&[good.clone(), text, missing, good]);
    let items: Vec<_> = FrameSource::new(inputs, None).unwrap().collect();
    assert_eq!(items.len(), 4);
    assert!(items[0].1.is_ok() && items[3].1.is_ok());
    let e = format!("{:#}", items[1].1.as_ref().unwrap_err());
    assert!(
        e.contains("notes.png") && e.contains("not a frame file this tool reads"),
        "{e}"
    );
    let e = format!("{:#}", items[2].1.as_ref().unwrap_err());
    assert!(e.contains("missing.png: no such file"), "{e}");
}

#[test]
fn an_image_claiming_a_huge_size_is_refused_before_decoding() {
    // A 1×1 PNG whose header is rewritten to claim 20000×20000 pixels.
    let dir = tempfile::tempdir().unwrap();
    let mut png = Vec::new();
    image::GrayImage::new(1, 1)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png[16..20].copy_from_slice(&20000u32.to_be_bytes());
    png[20..24].copy_from_slice(&20000u32.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let p = dir.path().join("huge.png");
    std::fs::write(&p, &png).unwrap();
    let e = format!("{:#}", read_image(&p).unwrap_err());
    assert!(
        e.contains("huge.png") && e.contains("larger than this tool decodes"),
        "{e}"
    );
}

#[test]
fn directories_skip_files_that_are_not_images() {
    let dir = tempfile::tempdir().unwrap();
    image::GrayImage::new(2, 2)
        .save(dir.path().join("a.png"))
        .unwrap();
    // A PNG without an extension is an image; a README is not.
    std::fs::copy(dir.path().join("a.png"), dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("README.txt"), b"frames of the hall camera").unwrap();
    let inputs = expand_inputs(&[dir.path().to_path_buf()]);
    assert_eq!(
        inputs,
        [Input::Images(vec![
            Entry::File(dir.path().join("a.png")),
            Entry::File(dir.path().join("b"))
        ])]
    );
}

#[test]
fn npy_stacks_are_read_in_every_documented_layout() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.npy");
    // N×H×W, u8.
    write_npy(&p, &[2, 3, 5], &(0..30u8).collect::<Vec<_>>());
    let f = read_npy_frames(&p).unwrap();
    assert_eq!((f.len(), f[1].height, f[1].width, f[1].channels), (2, 3, 5, 1));
    assert_eq!(u8s(&f[1])[0], 15);
    // N×C×H×W becomes interleaved H×W×C.
    write_npy(&p, &[1, 3, 2, 2], &(0..12u8).collect::<Vec<_>>());
    let f = read_npy_frames(&p).unwrap();
    assert_eq!(u8s(&f[0]), &[0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    // N×H×W×C stays as it is.
    write_npy(&p, &[1, 2, 2, 3], &(0..12u8).collect::<Vec<_>>());
    assert_eq!(
        u8s(&read_npy_frames(&p).unwrap()[0]),
        (0..12u8).collect::<Vec<_>>().as_slice()
    );
    // Float frames keep their values, f32 and f64 alike.
    write_npy(&p, &[1, 2, 2, 1], &[0.0f32, 0.25, 0.5, 1.0]);
    assert_eq!(
        read_npy_frames(&p).unwrap()[0].pixels,
        Pixels::F32(vec![0.0, 0.25, 0.5, 1.0])
    );
    write_npy(&p, &[1, 2, 2, 1], &[0.0f64, 0.25, 0.5, 1.0]);
    assert_eq!(
        read_npy_frames(&p).unwrap()[0].pixels,
        Pixels::F32(vec![0.0, 0.25, 0.5, 1.0])
    );
}

#[test]
fn ambiguous_out_of_range_and_absurd_npy_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.npy");
    let name = p.display().to_string();
    // 3×28×28: three grey images, or one channels-first RGB image — refused
    // with both readings (28×28×3 is one RGB image, never 28 frames of 28×3).
    write_npy(&p, &[3, 28, 28], &vec![0u8; 28 * 28 * 3]);
    let e = format!("{:#}", read_npy_frames(&p).unwrap_err());
    assert!(
        e.contains(&name) && e.contains("ambiguous") && e.contains("(1, 3, 28, 28)"),
        "{e}"
    );
    write_npy(&p, &[28, 28, 3], &vec![0u8; 28 * 28 * 3]);
    let f = read_npy_frames(&p).unwrap();
    assert_eq!((f.len(), f[0].height, f[0].width, f[0].channels), (1, 28, 28, 3));
    // 28×28×4 (a camera's 480×640×4): one RGBA image, never 28 (480)
    // frames 4 pixels wide, each with a verdict; refused, saying to drop
    // the alpha. 28×28×2 likewise (grey and alpha).
    for (shape, says) in [
        (
            [28, 28, 4],
            "one 28×28 image with 4 channels (RGBA), not 28 frames of 28×4",
        ),
        ([480, 640, 4], "drop it and save arr[..., :3]"),
        (
            [28, 28, 2],
            "(grey and alpha), not 28 frames of 28×2: alpha is not read; drop it and save arr[..., :1]",
        ),
    ] {
        write_npy(&p, &shape, &vec![0u8; shape.iter().product::<u64>() as usize]);
        let e = format!("{:#}", read_npy_frames(&p).unwrap_err());
        assert!(e.contains(&name) && e.contains(says), "{e}");
        let items: Vec<_> = FrameSource::new(expand_inputs(std::slice::from_ref(&p)), None)
            .unwrap()
            .collect();
        assert!(
            items.len() == 1 && items[0].1.is_err(),
            "{shape:?}: one error, no verdict"
        );
    }
    // Floats outside [0, 1]: already normalised, or 0–255. Per frame, named.
    let mut v = vec![0.5f32; 3 * 4];
    v[4 + 3] = -1.2; // frame 1, row 1, column 1
    write_npy(&p, &[3, 2, 2, 1], &v);
    let items: Vec<_> = FrameSource::new(expand_inputs(std::slice::from_ref(&p)), None)
        .unwrap()
        .collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].1.is_ok() && items[2].1.is_ok());
    let e = format!("{:#}", items[1].1.as_ref().unwrap_err());
    assert!(
        e.contains(&format!("{name}#1")) && e.contains("-1.2") && e.contains("outside [0, 1]"),
        "{e}"
    );
    for bad in [f32::NAN, f32::INFINITY, 255.0] {
        write_npy(&p, &[1, 2, 2, 1], &[0.0f32, bad, 0.0, 0.0]);
        let e = format!("{:#}", read_npy_frames(&p).unwrap_err());
        assert!(e.contains("#0") && e.contains("outside [0, 1]"), "{bad}: {e}");
    }
    // Other dtypes name what to do.
    write_npy(&p, &[1, 2, 2], &[1i16, 2, 3, 4]);
    let e = format!("{:#}", read_npy_frames(&p).unwrap_err());
    assert!(e.contains("unsupported dtype") && e.contains("uint8"), "{e}");
    // Nested brackets in the header made the header parser take exponential
    // time (a 262-byte file hung it; found by fuzzing): refused at once.
    let mut header = "{".repeat(120);
    header.push_str("'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2), }\n");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0, 1, 2, 3]);
    std::fs::write(&p, &bytes).unwrap();
    let e = format!("{:#}", read_npy_frames(&p).unwrap_err());
    assert!(e.contains("not a plain .npy array header"), "{e}");
    // A header claiming terabytes is refused before any allocation.
    let mut header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (100000, 10000, 10000), }".to_vec();
    while !(header.len() + 11).is_multiple_of(64) {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&[0u8; 64]);
    std::fs::write(&p, &bytes).unwrap();
    let e = format!("{:#}", read_npy_frames(&p).unwrap_err());
    assert!(e.contains("more than the file's") && e.contains(&name), "{e}");
}

/// The whole images of `tools/fixtures/truncated_images.py` and Pillow's
/// verdict on every cut of them.
fn truncated_fixtures() -> (PathBuf, Vec<(String, serde_json::Value)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/truncated");
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pil.json")).unwrap()).unwrap();
    let files = table["files"].as_object().unwrap().clone().into_iter().collect();
    (dir, files)
}

/// A file's bytes as the loader takes them: recognised by its first 64
/// bytes, then decoded.
fn load(name: &str, bytes: &[u8]) -> anyhow::Result<lsgm::frames::Frame> {
    lsgm::frames::recognise(name, &bytes[..bytes.len().min(64)])?;
    decode_image(name, bytes)
}

#[test]
fn cut_images_are_refused_as_ending_early_wherever_pil_refuses_them() {
    // Every cut of every format Pillow writes, against Pillow's own
    // verdict (tools/fixtures/truncated_images.py): what PIL refuses is
    // refused as a file that ends early, never judged; the one exception
    // allowed is a GIF whose frame is whole (its LZW end code read) and
    // decodes to exactly the whole file's pixels. Whole files, and whole
    // files followed by garbage, are read as PIL reads them.
    let (dir, files) = truncated_fixtures();
    assert_eq!(files.len(), 14);
    for (name, entry) in files {
        let whole = std::fs::read(dir.join(&name)).unwrap();
        let cuts = entry["cuts"].as_str().unwrap();
        assert_eq!(cuts.len(), whole.len() + 1, "{name}: pil.json is for other bytes");
        let full = load(&name, &whole).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        for tail in ["trailing_zeros", "trailing_text"] {
            assert_eq!(entry[tail], "a", "{name}: PIL reads it with trailing garbage");
            let extra: &[u8] = if tail == "trailing_zeros" {
                &[0; 64]
            } else {
                b"\nwritten by camera 3\n"
            };
            let padded =
                load(&name, &[&whole[..], extra].concat()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(padded.pixels, full.pixels, "{name} + {tail}");
        }
        let mut refused = 0;
        for (n, pil) in cuts.chars().enumerate().take(whole.len()) {
            match (pil, load(&name, &whole[..n])) {
                (_, Err(e)) => {
                    let e = format!("{e:#}");
                    let why = if n == 0 {
                        "empty file (0 bytes)"
                    } else {
                        "ends early"
                    };
                    assert!(e.contains(&name) && e.contains(why), "{name} cut at {n}: {e}");
                    refused += 1;
                }
                ('a', Ok(f)) => assert_eq!(f.pixels, full.pixels, "{name} cut at {n}"),
                (_, Ok(f)) => assert!(
                    name.ends_with(".gif") && f.pixels == full.pixels,
                    "{name} cut at {n} of {}: PIL refuses it, it was read",
                    whole.len()
                ),
            }
        }
        // Cut at 60 % and 90 % (a camera still writing), as the issue found
        // (the two-frame GIF's first frame, the one read, is whole by then).
        for n in [whole.len() * 6 / 10, whole.len() * 9 / 10]
            .into_iter()
            .filter(|_| name != "two-frames.gif")
        {
            assert_eq!(&cuts[n..=n], "r", "{name}: PIL refuses the cut at {n}");
            assert!(load(&name, &whole[..n]).is_err(), "{name} cut at {n}");
        }
        assert!(refused >= whole.len() / 2, "{name}: {refused} cuts refused");
    }
}

#[test]
fn the_png_and_gif_cuts_still_read_are_the_ones_the_readme_names() {
    // The README said a PNG missing its IEND and a GIF missing its
    // terminator were refused; the trial found a PNG missing the last 4
    // bytes and a GIF missing up to 4 judged. What is read: a PNG missing
    // only IEND's CRC, a GIF missing its `;` trailer and block
    // terminators, each with the whole file's pixels; one byte more off
    // the PNG is refused.
    let (dir, _) = truncated_fixtures();
    for name in ["grey.png", "rgb.png"] {
        let whole = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(&whole[whole.len() - 8..whole.len() - 4], b"IEND", "{name}");
        let full = load(name, &whole).unwrap().pixels;
        assert_eq!(
            load(name, &whole[..whole.len() - 4]).unwrap().pixels,
            full,
            "{name}"
        );
        let e = format!("{:#}", load(name, &whole[..whole.len() - 5]).unwrap_err());
        assert!(e.contains("ends early"), "{name}: {e}");
    }
    for name in ["grey.gif", "two-frames.gif"] {
        let whole = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(whole.last(), Some(&b';'), "{name}");
        let full = load(name, &whole).unwrap().pixels;
        assert_eq!(
            load(name, &whole[..whole.len() - 1]).unwrap().pixels,
            full,
            "{name} without ;"
        );
    }
}

/// An IDX file of `n` 2×3 grey frames (pixel values 10 i + k).
fn idx_bytes(n: u8) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 2, 0, 0, 0, 3];
    b.extend((0..n).flat_map(|i| (0..6).map(move |k| 10 * i + k)));
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Each item of `inputs`: the frame's first pixel, or its error.
fn items(inputs: Vec<Input>) -> Vec<Result<u8, String>> {
    FrameSource::new(inputs, None)
        .unwrap()
        .map(|(_, f)| f.map(|f| u8s(&f)[0]).map_err(|e| format!("{e:#}")))
        .collect()
}

#[test]
fn idx_and_npy_files_cut_short_never_yield_a_partial_frame() {
    let dir = tempfile::tempdir().unwrap();
    let whole_npy = dir.path().join("whole.npy");
    write_npy(
        &whole_npy,
        &[4, 2, 3, 1],
        &(0..24u8).map(|v| 10 * (v / 6) + v % 6).collect::<Vec<_>>(),
    );
    let npy = std::fs::read(&whole_npy).unwrap();
    let idx = idx_bytes(4);
    let gz = gzip(&idx);
    for (what, bytes) in [("idx", &idx), ("idx.gz", &gz), ("npy", &npy)] {
        let p = dir.path().join(format!("frames.{what}"));
        std::fs::write(&p, bytes).unwrap();
        let want: Vec<Result<u8, String>> = vec![Ok(0), Ok(10), Ok(20), Ok(30)];
        assert_eq!(items(expand_inputs(std::slice::from_ref(&p))), want, "{what}");
        // Read as a stream (as a FIFO is): the same frames.
        assert_eq!(items(vec![Input::Stream(p.clone())]), want, "{what} as a stream");
        for cut in [
            bytes.len() - 1,
            bytes.len() * 9 / 10,
            bytes.len() * 6 / 10,
            bytes.len() - 8,
        ] {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            // A file is checked whole first: one error, no frame.
            let got = items(expand_inputs(std::slice::from_ref(&p)));
            assert!(
                got.len() == 1 && got[0].as_ref().is_err_and(|e| e.contains("ends early")),
                "{what} cut at {cut}: {got:?}"
            );
            // A stream is read as it comes: whole frames, then one error
            // saying where it ends; never a partial frame.
            let got = items(vec![Input::Stream(p.clone())]);
            let (last, frames) = got.split_last().unwrap();
            assert!(
                last.as_ref().is_err_and(|e| e.contains("ends early")),
                "{what} stream cut at {cut}: {got:?}"
            );
            assert_eq!(frames, &want[..frames.len()], "{what} stream cut at {cut}");
        }
    }
    // A stream longer than its header says is an error after its frames.
    let p = dir.path().join("long.idx");
    std::fs::write(&p, [&idx[..], &[1, 2, 3]].concat()).unwrap();
    let got = items(vec![Input::Stream(p.clone())]);
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(
        got[4]
            .as_ref()
            .is_err_and(|e| e.contains("more data after the 4 frames")),
        "{got:?}"
    );
}

#[test]
fn a_png_whose_checksum_does_not_match_says_so_in_words() {
    // A PNG with one bit of a chunk's CRC flipped (IHDR's, then IDAT's):
    // a plain message naming the chunk, not the decoder's debug text.
    let dir = tempfile::tempdir().unwrap();
    let mut png = Vec::new();
    image::GrayImage::new(4, 4)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
    let idat_len = u32::from_be_bytes(png[idat - 4..idat].try_into().unwrap()) as usize;
    for (chunk, crc_at) in [("IHDR", 29), ("IDAT", idat + 4 + idat_len)] {
        let mut bad = png.clone();
        bad[crc_at] ^= 1;
        let p = dir.path().join(format!("{chunk}.png"));
        std::fs::write(&p, &bad).unwrap();
        let e = format!("{:#}", read_image(&p).unwrap_err());
        assert!(
            e.contains(&format!(
                "{chunk}.png: corrupt PNG: the checksum (CRC) of its {chunk} chunk does not match"
            )) && !e.contains("ChunkType"),
            "{e}"
        );
    }
}

/// Writes a 2×2 grey PNG at `p`, creating its folder.
fn png_at(p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    image::GrayImage::new(2, 2).save(p).unwrap();
}

#[test]
fn directory_trees_are_read_in_path_order_with_counts() {
    // torchvision's ImageFolder layout, with stray images at the top level.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("train");
    for f in [
        "b.png",
        "cat/2.png",
        "cat/10.png",
        "dog/1.png",
        "dog/puppies/3.png",
        "z.png",
        ".thumbs/x.png",
    ] {
        png_at(&root.join(f));
    }
    std::fs::write(root.join("dog/README.txt"), b"dogs").unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let listing = lsgm::frames::list_images(&root).unwrap();
    let rel = |entries: &[Entry]| -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Entry::File(p) => p.strip_prefix(&root).unwrap().display().to_string(),
                Entry::Error { path, error } => {
                    format!("error {}: {error}", path.strip_prefix(&root).unwrap().display())
                }
            })
            .collect()
    };
    // Names sort by their bytes at every level ("10.png" < "2.png");
    // hidden folders are not looked at.
    assert_eq!(
        rel(&listing.entries),
        [
            "b.png",
            "cat/10.png",
            "cat/2.png",
            "dog/1.png",
            "dog/puppies/3.png",
            "z.png"
        ]
    );
    assert_eq!((listing.top, listing.subfolders), (2, 3));
    assert_eq!(listing.skipped, [(root.join("dog/README.txt"), Skipped::Other)]);
    assert_eq!(
        expand_inputs(std::slice::from_ref(&root)),
        [Input::Images(listing.entries.clone())]
    );
    // Only class folders, no strays: read too (it was refused).
    assert_eq!(lsgm::frames::list_images(&root.join("dog")).unwrap().files(), 2);
    #[cfg(unix)]
    {
        // A link to another folder is followed; a link to a folder that
        // contains it (a loop) is an error entry where it sorts, and the
        // rest of the tree is listed (the whole tree was one error).
        let other = tmp.path().join("other");
        png_at(&other.join("o.png"));
        std::os::unix::fs::symlink(&other, root.join("cat/linked")).unwrap();
        assert_eq!(lsgm::frames::list_images(&root).unwrap().files(), 7);
        std::os::unix::fs::symlink(&root, root.join("dog/puppies/up")).unwrap();
        let listing = lsgm::frames::list_images(&root).unwrap();
        let got = rel(&listing.entries);
        assert_eq!(got.len(), 8, "{got:?}");
        assert_eq!(
            got[..6],
            [
                "b.png",
                "cat/10.png",
                "cat/2.png",
                "cat/linked/o.png",
                "dog/1.png",
                "dog/puppies/3.png"
            ]
        );
        assert!(
            got[6].starts_with("error dog/puppies/up: ") && got[6].contains("(a loop); remove the link"),
            "{}",
            got[6]
        );
        assert_eq!(got[7], "z.png");
        assert_eq!(listing.files(), 7);
        let notes = listing.notes(&root, OnUnreadable::ErrorLine).join("\n");
        assert!(
            notes.contains("1 folder or link could not be read: an error line each, where it sorts"),
            "{notes}"
        );
        let notes = listing.notes(&root, OnUnreadable::Stop).join("\n");
        assert!(
            notes.contains("1 folder or link could not be read (dog/puppies/up): reading stops at the first"),
            "{notes}"
        );
    }
    let empty = tmp.path().join("nothing");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    std::fs::write(empty.join("sub/a.txt"), b"x").unwrap();
    let e = format!("{:#}", lsgm::frames::list_images(&empty).unwrap_err());
    assert!(
        e.contains("no images in this directory or its subfolders") && e.contains("sub/a.txt"),
        "{e}"
    );
}

#[test]
fn files_close_to_frame_files_are_named_with_what_to_do() {
    use lsgm::frames::recognise;
    let refusal = |name: &str, head: &[u8]| format!("{:#}", recognise(name, head).unwrap_err());
    assert_eq!(refusal("e.png", b""), "e.png: empty file (0 bytes)");
    let e = refusal("c.png", b"\x89PNG\r");
    assert!(e.contains("ends early") && e.contains("PNG"), "{e}");
    let e = refusal("IMG_0001.HEIC", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic");
    assert!(
        e.contains("HEIC/HEIF image: not supported, convert to PNG/JPEG"),
        "{e}"
    );
    // numpy.savez's archive: its first member is "x.npy".
    let mut npz = b"PK\x03\x04".to_vec();
    npz.extend_from_slice(&[0; 22]);
    npz.extend_from_slice(&5u16.to_le_bytes());
    npz.extend_from_slice(&[0, 0]);
    npz.extend_from_slice(b"x.npy");
    let e = refusal("a.npz", &npz);
    assert!(
        e.contains("a .npz archive") && e.contains("numpy.save") && e.contains("[\"x\"]"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("o.npy");
    // np.save("o.npy", np.array([np.zeros((2, 2)), np.zeros((3, 3))], dtype=object)).
    let header = b"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16 + 1).to_le_bytes());
    bytes.extend_from_slice(header);
    bytes.push(b'\n');
    bytes.extend_from_slice(&[0x80; 40]);
    std::fs::write(&p, &bytes).unwrap();
    let e = format!("{:#}", read_npy_frames(&p).unwrap_err());
    assert!(
        e.contains("unsupported dtype object ('|O')")
            && e.contains("Python objects")
            && e.contains("uint8, float32"),
        "{e}"
    );
    // Float TIFFs: a range-less value is refused, never clamped.
    let rgb = image::Rgb32FImage::from_pixel(3, 2, image::Rgb([0.5, 200.0, 1.0]));
    let t = dir.path().join("f.tiff");
    image::DynamicImage::ImageRgb32F(rgb)
        .save_with_format(&t, image::ImageFormat::Tiff)
        .unwrap();
    let e = format!("{:#}", read_image(&t).unwrap_err());
    assert!(
        e.contains("f.tiff: a TIFF of 32-bit float samples") && e.contains("16-bit unsigned"),
        "{e}"
    );
}

/// Each item of `inputs`: its source and its frame's first pixel, or its
/// error.
fn sourced(inputs: Vec<Input>) -> Vec<(String, Result<u8, String>)> {
    FrameSource::new(inputs, None)
        .unwrap()
        .map(|(s, f)| (s, f.map(|f| u8s(&f)[0]).map_err(|e| format!("{e:#}"))))
        .collect()
}

#[test]
fn a_file_gets_the_same_item_whether_named_or_found_in_a_directory() {
    // A camera's folder: files just created (empty), still being written
    // (every cut of up to 16 bytes of every format, named like an image or
    // with no extension), phone photos, a file named like an image that is
    // not one, links to nowhere and to a file that cannot be read. In a
    // folder each got "not an image this tool reads" or was skipped, while
    // named it said what it is; now the items are the same both ways.
    let (fixtures, files) = truncated_fixtures();
    let tmp = tempfile::tempdir().unwrap();
    let cam = tmp.path().join("cam");
    std::fs::create_dir(&cam).unwrap();
    for (name, _) in &files {
        let whole = std::fs::read(fixtures.join(name)).unwrap();
        let (stem, ext) = name.rsplit_once('.').unwrap();
        for n in 0..=16 {
            std::fs::write(cam.join(format!("{stem}_{n:02}.{ext}")), &whole[..n]).unwrap();
        }
        for n in 1..=3 {
            std::fs::write(cam.join(format!("{stem}-{ext}_{n:02}")), &whole[..n]).unwrap();
        }
    }
    std::fs::copy(fixtures.join("grey.png"), cam.join("whole")).unwrap();
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
    std::fs::write(cam.join("IMG_0001.HEIC"), heic).unwrap();
    std::fs::write(cam.join("IMG_0002"), heic).unwrap();
    std::fs::write(cam.join("x.avif"), b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf").unwrap();
    std::fs::write(cam.join("notes.png"), b"written by camera 3").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(cam.join("lost/9.png"), cam.join("gone.png")).unwrap();
    // A file even root cannot read (EIO at offset 0), reached by a link
    // with no extension: it may be an image, so it is an error, not a skip.
    #[cfg(target_os = "linux")]
    std::os::unix::fs::symlink("/proc/self/mem", cam.join("unreadable")).unwrap();

    let listing = lsgm::frames::list_images(&cam).unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    let paths: Vec<PathBuf> = listing
        .entries
        .iter()
        .map(|e| match e {
            Entry::File(p) | Entry::Error { path: p, .. } => p.clone(),
        })
        .collect();
    let in_folder = sourced(expand_inputs(std::slice::from_ref(&cam)));
    let named = sourced(expand_inputs(&paths));
    assert_eq!(
        in_folder.len(),
        14 * 17 + 14 * 3 + 5 + cfg!(unix) as usize + cfg!(target_os = "linux") as usize
    );
    assert_eq!(in_folder, named);
    let error = |file: &str| -> String {
        let p = cam.join(file).display().to_string();
        let item = in_folder
            .iter()
            .find(|(s, _)| *s == p)
            .unwrap_or_else(|| panic!("{file}"));
        item.1.clone().unwrap_err()
    };
    assert_eq!(
        error("rgb_00.png"),
        format!("{}: empty file (0 bytes)", cam.join("rgb_00.png").display())
    );
    for (file, says) in [
        (
            "rgb_01.png",
            "ends early (cut short, or still being written) (1 byte: the start of a PNG file)",
        ),
        (
            "rgb_07.png",
            "ends early (cut short, or still being written) (7 bytes: the start of a PNG file)",
        ),
        ("rgb-lossy_11.webp", "(11 bytes: the start of a WebP file)"),
        ("grey_04.gif", "(4 bytes: the start of a GIF file)"),
        ("grey-baseline_02.jpg", "(2 bytes: the start of a JPEG file)"),
        ("grey_02.tiff", "(2 bytes: the start of a TIFF file)"),
        ("grey_01.bmp", "(1 byte: the start of a BMP file)"),
        ("rgb-png_03", "(3 bytes: the start of a PNG file)"),
        ("rgb_16.png", "ends early"),
        ("IMG_0001.HEIC", "HEIC/HEIF image: not supported"),
        ("IMG_0002", "HEIC/HEIF image: not supported"),
        ("x.avif", "Avif images are not supported"),
        ("notes.png", "not a frame file this tool reads"),
        #[cfg(unix)]
        ("gone.png", "gone.png: a symbolic link to "),
        #[cfg(target_os = "linux")]
        ("unreadable", "cannot read"),
    ] {
        let e = error(file);
        assert!(e.contains(says), "{file}: {e}");
    }
    assert!(in_folder.iter().any(|(s, f)| s.ends_with("/whole") && f.is_ok()));
}

#[test]
fn files_that_are_not_images_are_skipped_with_a_note_by_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    png_at(&dir.join("a.png"));
    for (name, bytes) in [
        ("README.txt", &b"frames of the hall camera"[..]),
        ("notes.md", b"# notes"),
        ("todo", b"check camera 3"),
        ("zero", b""),
        ("labels-idx1-ubyte", &[0, 0, 8, 1, 0, 0, 0, 1, 7]),
        ("short.npy", b"\x93NUM"),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    write_npy(&dir.join("frames.npy"), &[1, 2, 2], &[0u8; 4]);
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.join("lost"), dir.join("gone")).unwrap();
        let fifo =
            std::ffi::CString::new(dir.join("cam.fifo").into_os_string().into_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    }
    let listing = lsgm::frames::list_images(&dir).unwrap();
    assert_eq!(listing.entries, [Entry::File(dir.join("a.png"))]);
    let notes = listing.notes(&dir, OnUnreadable::ErrorLine);
    let mut want = format!(
        "{}: skipped {} files that are not images: frame stacks (.npy, IDX; read when given by path): 2 \
         (frames.npy, labels-idx1-ubyte); empty files: 1 (zero); files too short to recognise: 1 (short.npy); ",
        dir.display(),
        if cfg!(unix) { 9 } else { 7 }
    );
    if cfg!(unix) {
        want.push_str(
            "broken symbolic links: 1 (gone); pipes, sockets or devices (never opened): 1 (cam.fifo); ",
        );
    }
    want.push_str("other files: 3 (README.txt, notes.md, …)");
    assert_eq!(notes, [want]);
    // Nothing but such files: the error says what was there.
    std::fs::remove_file(dir.join("a.png")).unwrap();
    let e = format!("{:#}", lsgm::frames::list_images(&dir).unwrap_err());
    assert!(
        e.contains("no images in this directory") && e.contains("empty files: 1 (zero)"),
        "{e}"
    );
}

/// `bytes` gzipped as two members, split at `at` (`gzip -c a > f.gz;
/// gzip -c b >> f.gz`).
fn two_members(bytes: &[u8], at: usize) -> Vec<u8> {
    [gzip(&bytes[..at]), gzip(&bytes[at..])].concat()
}

#[test]
fn a_gzip_file_is_read_to_its_end_every_member() {
    // A valid multi-member gzip (`gzip -t` passes, Python's gzip reads it)
    // was refused as ending early, and a pipe gave its first member's
    // frames and then that error.
    let dir = tempfile::tempdir().unwrap();
    let idx = idx_bytes(4);
    let want: Vec<Result<u8, String>> = vec![Ok(0), Ok(10), Ok(20), Ok(30)];
    // Split inside the header, inside a frame, and between frames.
    for at in [7, 20, 16 + 12] {
        let p = dir.path().join(format!("split{at}.idx.gz"));
        std::fs::write(&p, two_members(&idx, at)).unwrap();
        let frames = lsgm::frames::read_idx_images(&p).unwrap();
        assert_eq!(
            frames.iter().map(|f| u8s(f)[0]).collect::<Vec<_>>(),
            [0, 10, 20, 30]
        );
        assert_eq!(
            items(expand_inputs(std::slice::from_ref(&p))),
            want,
            "split at {at}"
        );
        assert_eq!(
            items(vec![Input::Stream(p.clone())]),
            want,
            "split at {at}, as a stream"
        );
    }
    let labels = dir.path().join("labels.gz");
    std::fs::write(&labels, two_members(&[0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9], 9)).unwrap();
    assert_eq!(lsgm::frames::read_idx_labels(&labels).unwrap(), [7, 8, 9]);
    // Bytes after the last member that do not start another are refused,
    // counted (they were ignored; 7 of them were called a file cut short):
    // before any frame in a file, after the frames in a stream; a second
    // member cut short ends early.
    let whole = gzip(&idx);
    for (what, tail, says) in [
        (
            "garbage",
            &b"garbage after the frames"[..],
            "24 bytes after the last gzip member (`gzip -t` says \"trailing garbage\")",
        ),
        ("junk", &b"GARBAGE"[..], "7 bytes after the last gzip member"),
        (
            "zeros",
            &[0; 16][..],
            "16 bytes after the last gzip member (all zeros",
        ),
        ("cut member", &gzip(&[1, 2, 3])[..6], "ends early"),
    ] {
        let p = dir.path().join("tail.idx.gz");
        std::fs::write(&p, [&whole[..], tail].concat()).unwrap();
        let got = items(expand_inputs(std::slice::from_ref(&p)));
        assert!(
            got.len() == 1 && got[0].as_ref().is_err_and(|e| e.contains(says)),
            "{what}: {got:?}"
        );
        let got = items(vec![Input::Stream(p.clone())]);
        assert_eq!(got[..4], want, "{what}, as a stream");
        assert!(
            got[4].as_ref().is_err_and(|e| e.contains(says)),
            "{what}: {got:?}"
        );
        assert!(lsgm::frames::read_idx_images(&p).is_err(), "{what}");
    }
}

#[test]
fn a_gzip_file_holding_something_else_says_what() {
    let dir = tempfile::tempdir().unwrap();
    let png = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/truncated/grey.png"))
        .unwrap();
    let p = dir.path().join("frame.png.gz");
    std::fs::write(&p, gzip(&png)).unwrap();
    let name = p.display().to_string();
    for input in [
        expand_inputs(std::slice::from_ref(&p)),
        vec![Input::Stream(p.clone())],
    ] {
        let got = items(input);
        assert_eq!(got.len(), 1, "{got:?}");
        let e = got[0].as_ref().unwrap_err();
        assert!(
            e.contains(&format!(
                "{name}: a gzip-compressed file holding a PNG image, not an IDX file"
            )) && e.contains("gunzip -k"),
            "{e}"
        );
        assert!(!e.contains("bad magic"), "{e}");
    }
    std::fs::write(&p, gzip(b"")).unwrap();
    let e = format!("{:#}", lsgm::frames::read_idx_images(&p).unwrap_err());
    assert!(e.contains("holding no data"), "{e}");
}

#[test]
fn integer_tiffs_are_refused_for_what_their_samples_are() {
    use tiff::encoder::{colortype, TiffEncoder};
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, f: &dyn Fn(&mut TiffEncoder<&mut std::fs::File>)| {
        let p = dir.path().join(name);
        let mut file = std::fs::File::create(&p).unwrap();
        f(&mut TiffEncoder::new(&mut file).unwrap());
        p
    };
    let signed = write("i32.tiff", &|t| {
        t.write_image::<colortype::GrayI32>(2, 2, &[-5, 0, 7, 100_000])
            .unwrap();
    });
    let unsigned = write("u32.tiff", &|t| {
        t.write_image::<colortype::Gray32>(2, 2, &[5, 0, 7, 100_000])
            .unwrap();
    });
    let e = format!("{:#}", read_image(&signed).unwrap_err());
    assert!(
        e.contains("a TIFF of 32-bit signed integer samples")
            && e.contains("signed values")
            && !e.contains("floats may be"),
        "{e}"
    );
    let e = format!("{:#}", read_image(&unsigned).unwrap_err());
    assert!(
        e.contains("32-bit unsigned integer samples")
            && e.contains("any part of their range")
            && !e.contains("floats may be"),
        "{e}"
    );
}
