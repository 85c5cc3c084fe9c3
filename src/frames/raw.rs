//! A stream of raw u8 frames (what `ffmpeg -f rawvideo` or GStreamer emit).

use super::{Frame, Pixels};
use anyhow::{bail, ensure, Context, Result};
use std::io::Read;

/// Largest raw frame accepted (bytes): 8K RGB is 100 MB.
pub const MAX_RAW_FRAME: usize = 1 << 28;

/// Parses `WxHxC` (e.g. `28x28x1`).
pub fn parse_raw_shape(s: &str) -> Result<(usize, usize, usize)> {
    let parts: Vec<&str> = s.split(['x', 'X']).collect();
    let nums: Vec<usize> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    match nums[..] {
        [w, h, c] if nums.len() == parts.len() && w > 0 && h > 0 && (c == 1 || c == 3) => {
            let size = w.checked_mul(h).and_then(|v| v.checked_mul(c));
            ensure!(
                size.is_some_and(|v| v <= MAX_RAW_FRAME),
                "--raw {s}: frames larger than {MAX_RAW_FRAME} bytes are not supported"
            );
            Ok((w, h, c))
        }
        _ => bail!("--raw expects WIDTHxHEIGHTxCHANNELS with 1 or 3 channels, e.g. 28x28x1; got {s:?}"),
    }
}

/// Reads fixed-size frames from a byte stream.
pub struct RawReader<R> {
    reader: R,
    width: usize,
    height: usize,
    channels: usize,
    index: usize,
    name: String,
    done: bool,
}

impl<R: Read> RawReader<R> {
    /// Frames of `width × height × channels` bytes from `reader`.
    pub fn new(reader: R, (width, height, channels): (usize, usize, usize), name: &str) -> Self {
        RawReader {
            reader,
            width,
            height,
            channels,
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
        let size = self
            .width
            .saturating_mul(self.height)
            .saturating_mul(self.channels);
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
        let r = (|| {
            ensure!(
                filled == size,
                "{}: partial frame {index}: {filled} of {size} bytes ({}x{}x{}); the stream ended mid-frame",
                self.name,
                self.width,
                self.height,
                self.channels
            );
            Ok(Frame {
                source: format!("{}#{index}", self.name),
                height: self.height,
                width: self.width,
                channels: self.channels,
                pixels: Pixels::U8(buf),
            })
        })();
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_frames_then_a_partial_one() {
        let data: Vec<u8> = (0..10).collect();
        let mut r = RawReader::new(&data[..], (2, 2, 1), "stdin");
        assert_eq!(
            r.next_frame().unwrap().unwrap().pixels,
            Pixels::U8(vec![0, 1, 2, 3])
        );
        assert_eq!(r.next_frame().unwrap().unwrap().source, "stdin#1");
        let e = r.next_frame().unwrap().unwrap_err().to_string();
        assert!(e.contains("partial frame 2: 2 of 4 bytes"), "{e}");
        assert!(r.next_frame().is_none());
        let mut huge = RawReader::new(&data[..], (usize::MAX, 2, 1), "x");
        assert!(huge.next_frame().unwrap().is_err());
        assert!(huge.next_frame().is_none());
        assert!(parse_raw_shape("28x28x1").is_ok());
        assert!(parse_raw_shape("99999999999x99999999999x3").is_err());
        assert!(parse_raw_shape("100000x100000x1").is_err());
        assert!(
            parse_raw_shape("28x28").is_err()
                && parse_raw_shape("0x2x1").is_err()
                && parse_raw_shape("2x2x2").is_err()
        );
    }
}
