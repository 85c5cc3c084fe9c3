//! A stream of raw u8 frames (what `ffmpeg -f rawvideo` or GStreamer emit).

use super::{Frame, Pixels};
use anyhow::{bail, ensure, Context, Result};
use std::io::Read;

/// Largest raw frame accepted (bytes): 8K RGB is 100 MB. Also the largest
/// IDX or `.npy` frame read from a stream, whose length cannot be checked
/// against its header before its frames are allocated.
pub const MAX_RAW_FRAME: usize = 1 << 28;

/// The byte order of a raw frame's pixels, by ffmpeg's `-pix_fmt` names
/// (GStreamer's `format=` names are taken too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// One byte per pixel (`gray`, GStreamer `GRAY8`).
    Gray,
    /// Red, green, blue (`rgb24`, GStreamer `RGB`).
    Rgb24,
    /// Blue, green, red (`bgr24`, GStreamer `BGR`): OpenCV's frames.
    /// Read into RGB frames, so the model's own channel order applies once.
    Bgr24,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Gray => 1,
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => 3,
        }
    }
}

/// What `--raw` says about the frames of a raw stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFormat {
    /// Frame width in pixels.
    pub width: usize,
    /// Frame height in pixels.
    pub height: usize,
    /// Pixel byte order.
    pub pixels: PixelFormat,
}

impl std::fmt::Display for PixelFormat {
    /// ffmpeg's `-pix_fmt` name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PixelFormat::Gray => "gray",
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Bgr24 => "bgr24",
        })
    }
}

impl std::fmt::Display for RawFormat {
    /// `640x480:bgr24`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}:{}", self.width, self.height, self.pixels)
    }
}

impl RawFormat {
    /// Bytes per frame.
    pub fn frame_bytes(&self) -> usize {
        self.width
            .saturating_mul(self.height)
            .saturating_mul(self.pixels.channels())
    }
}

/// What `--raw` accepts, for its errors.
const RAW_SPELLINGS: &str = "WIDTHxHEIGHT:PIX_FMT with PIX_FMT rgb24, bgr24 or gray (ffmpeg's -pix_fmt; \
     GStreamer's RGB, BGR, GRAY8), e.g. 640x480:bgr24, or WIDTHxHEIGHTxCHANNELS (1 = gray, 3 = rgb24), e.g. \
     28x28x1";

/// Parses `--raw`: `WxH:PIX_FMT` (`640x480:bgr24`; `rgb24`, `bgr24`,
/// `gray`, or GStreamer's `RGB`, `BGR`, `GRAY8`) or `WxHxC` (C = 1: gray,
/// 3: rgb24), and bounds the frame size.
pub fn parse_raw_format(s: &str) -> Result<RawFormat> {
    let (size, pixels) = match s.split_once(':') {
        Some((size, fmt)) => {
            let pixels = match fmt.to_ascii_lowercase().as_str() {
                "rgb24" | "rgb" => PixelFormat::Rgb24,
                "bgr24" | "bgr" => PixelFormat::Bgr24,
                "gray" | "grey" | "gray8" => PixelFormat::Gray,
                _ => bail!(
                    "--raw {s}: pixel format {fmt:?} is not read; give {RAW_SPELLINGS} (convert others with \
                     ffmpeg -pix_fmt rgb24, or GStreamer videoconvert ! video/x-raw,format=RGB)"
                ),
            };
            (size, Some(pixels))
        }
        None => (s, None),
    };
    let parts: Vec<&str> = size.split(['x', 'X']).collect();
    let nums: Vec<usize> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    let whole = nums.len() == parts.len();
    let (width, height, pixels) = match (&nums[..], pixels) {
        (&[w, h], Some(p)) if whole => (w, h, p),
        (&[w, h, 1], None) if whole => (w, h, PixelFormat::Gray),
        (&[w, h, 3], None) if whole => (w, h, PixelFormat::Rgb24),
        _ => bail!("--raw expects {RAW_SPELLINGS}; got {s:?}"),
    };
    ensure!(width > 0 && height > 0, "--raw {s}: frames must have pixels");
    let format = RawFormat {
        width,
        height,
        pixels,
    };
    ensure!(
        format.frame_bytes() <= MAX_RAW_FRAME,
        "--raw {s}: frames larger than {MAX_RAW_FRAME} bytes are not supported"
    );
    Ok(format)
}

/// Reads fixed-size frames from a byte stream.
pub struct RawReader<R> {
    reader: R,
    format: RawFormat,
    index: usize,
    name: String,
    done: bool,
}

impl<R: Read> RawReader<R> {
    /// Frames of `format` from `reader`.
    pub fn new(reader: R, format: RawFormat, name: &str) -> Self {
        RawReader {
            reader,
            format,
            index: 0,
            name: name.to_string(),
            done: false,
        }
    }

    /// Index of the next frame.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The next frame; `None` at a clean end of stream, an error for a
    /// partial last frame or a read failure.
    pub fn next_frame(&mut self) -> Option<Result<Frame>> {
        if self.done {
            return None;
        }
        let size = self.format.frame_bytes();
        if size == 0 || size > MAX_RAW_FRAME {
            self.done = true;
            return Some(Err(anyhow::anyhow!("{}: unsupported raw frame size", self.name)));
        }
        let mut buf = vec![0u8; size];
        let mut filled = 0;
        while filled < size {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e).with_context(|| format!("reading {}", self.name)));
                }
            }
        }
        if filled == 0 {
            self.done = true;
            return None;
        }
        if filled < size {
            self.done = true;
        }
        let index = self.index;
        self.index += 1;
        let f = self.format;
        if filled < size {
            return Some(Err(anyhow::anyhow!(
                "{}: partial frame {index}: {filled} of {size} bytes ({f}); the stream ended mid-frame",
                self.name
            )));
        }
        if f.pixels == PixelFormat::Bgr24 {
            for px in buf.chunks_exact_mut(3) {
                px.swap(0, 2);
            }
        }
        Some(Ok(Frame {
            source: format!("{}#{index}", self.name),
            height: f.height,
            width: f.width,
            channels: f.pixels.channels(),
            pixels: Pixels::U8(buf),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> RawFormat {
        parse_raw_format(s).unwrap()
    }

    #[test]
    fn whole_frames_then_a_partial_one() {
        let data: Vec<u8> = (0..10).collect();
        let mut r = RawReader::new(&data[..], raw("2x2x1"), "stdin");
        assert_eq!(
            r.next_frame().unwrap().unwrap().pixels,
            Pixels::U8(vec![0, 1, 2, 3])
        );
        assert_eq!(r.next_frame().unwrap().unwrap().source, "stdin#1");
        let e = r.next_frame().unwrap().unwrap_err().to_string();
        assert!(e.contains("partial frame 2: 2 of 4 bytes (2x2:gray)"), "{e}");
        assert!(r.next_frame().is_none());
        let huge = RawFormat {
            width: usize::MAX,
            height: 2,
            pixels: PixelFormat::Gray,
        };
        let mut huge = RawReader::new(&data[..], huge, "x");
        assert!(huge.next_frame().unwrap().is_err());
        assert!(huge.next_frame().is_none());
    }

    #[test]
    fn raw_formats_in_both_spellings_and_bgr_becomes_rgb() {
        assert_eq!(raw("28x28x1"), raw("28x28:gray"));
        assert_eq!(raw("4x2x3"), raw("4x2:rgb24"));
        assert_eq!(raw("4x2:BGR"), raw("4x2:bgr24"));
        assert_eq!(raw("640x480:bgr24").to_string(), "640x480:bgr24");
        for bad in [
            "99999999999x99999999999x3",
            "100000x100000x1",
            "28x28",
            "0x2x1",
            "2x2x2",
            "2x2:yuyv422",
            "2x2x3:bgr24",
            "2x0:gray",
        ] {
            assert!(parse_raw_format(bad).is_err(), "{bad}");
        }
        // Two BGR pixels: (B, G, R) = (1, 2, 3), (4, 5, 6) are RGB (3, 2, 1), (6, 5, 4).
        let data = [1u8, 2, 3, 4, 5, 6];
        let f = RawReader::new(&data[..], raw("2x1:bgr24"), "s")
            .next_frame()
            .unwrap()
            .unwrap();
        assert_eq!((f.channels, f.pixels), (3, Pixels::U8(vec![3, 2, 1, 6, 5, 4])));
        let f = RawReader::new(&data[..], raw("2x1:rgb24"), "s")
            .next_frame()
            .unwrap()
            .unwrap();
        assert_eq!(f.pixels, Pixels::U8(data.to_vec()));
    }
}
