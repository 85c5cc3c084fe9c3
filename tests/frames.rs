#![cfg(feature = "frames")]
//! Frame files as users bring them: decoded by content, shown as a viewer
//! shows them, `.npy` stacks in every documented layout, and every file that
//! cannot be read right refused with its name.

use lsgm::frames::{expand_inputs, read_image, read_npy_frames, sniff, FrameSource, Input, Kind, Pixels};
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
    let names: Vec<PathBuf> = match &inputs[0] {
        Input::Images(v) => v.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(names, [dir.path().join("a.png"), dir.path().join("b")]);
}

#[test]
fn npy_stacks_are_read_in_every_documented_layout() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.npy");
    // N×H×W, u8.
    write_npy(&p, &[2, 3, 4], &(0..24u8).collect::<Vec<_>>());
    let f = read_npy_frames(&p).unwrap();
    assert_eq!((f.len(), f[1].height, f[1].width, f[1].channels), (2, 3, 4, 1));
    assert_eq!(u8s(&f[1])[0], 12);
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
    write_npy(&p, &[1, 2, 2], &[0.0f32, 0.25, 0.5, 1.0]);
    assert_eq!(
        read_npy_frames(&p).unwrap()[0].pixels,
        Pixels::F32(vec![0.0, 0.25, 0.5, 1.0])
    );
    write_npy(&p, &[1, 2, 2], &[0.0f64, 0.25, 0.5, 1.0]);
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
        write_npy(&p, &[1, 2, 2], &[0.0f32, bad, 0.0, 0.0]);
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
    assert!(e.contains("more data than the file") && e.contains(&name), "{e}");
}
