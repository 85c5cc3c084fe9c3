//! `.npy` arrays: the one reader ([`NpyArray`]) behind the frame loader
//! here and `fit-and-export`'s feature files, and image stacks read through
//! it one frame at a time ([`NpyFrames`]).
//!
//! Frame stacks: accepted layouts (C = 1 or 3): `N×H×W`, `N×H×W×C`,
//! `N×C×H×W`, one `H×W×C` or `H×W` image. A 3-D array whose last axis is 1
//! or 3 is one `H×W×C` image (never frames 1 or 3 pixels wide: `28×28×3` is
//! one RGB image, not 28 frames of 28×3); one whose last axis is 2 or 4 is
//! one image with an alpha channel (`28×28×4` RGBA, `480×640×2` grey and
//! alpha), refused saying to drop the alpha, as 4-D stacks with alpha are.
//! A shape that fits two layouts (`3×28×28`: three grey images, or one
//! image stored channels-first as PyTorch does) is refused with both
//! readings.
//! Values: `uint8` (0–255), or `float32`/`float64` in `[0, 1]` — the one
//! range float frames have; a value outside it, NaN or infinite is an error
//! naming the file and the frame, never clamped or rescaled.

use super::{count, read_up_to, Frame, Pixels};
use anyhow::{bail, ensure, Context, Result};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// What a file must be, for the errors that refuse one.
const NOT_NPY: &str = "save the array with numpy.save (.npy format 1.0 to 3.0)";

type Reader<T> = npyz::NpyReader<T, BufReader<Box<dyn Read + Send>>>;

/// The element types [`NpyArray`] reads (either byte order): those image
/// stacks and feature files are saved in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    /// `uint8` (`|u1`).
    U8,
    /// `float32` (`<f4`, `>f4`).
    F32,
    /// `float64` (`<f8`, `>f8`).
    F64,
}

/// Values read from an [`NpyArray`], in the type the file stores.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyValues {
    /// From a `uint8` array.
    U8(Vec<u8>),
    /// From a `float32` array.
    F32(Vec<f32>),
    /// From a `float64` array.
    F64(Vec<f64>),
}

impl NpyValues {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            NpyValues::U8(v) => v.len(),
            NpyValues::F32(v) => v.len(),
            NpyValues::F64(v) => v.len(),
        }
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values widened to `f64` (exactly: every u8 and f32 is an f64).
    pub fn into_f64(self) -> Vec<f64> {
        match self {
            NpyValues::U8(v) => v.into_iter().map(f64::from).collect(),
            NpyValues::F32(v) => v.into_iter().map(f64::from).collect(),
            NpyValues::F64(v) => v,
        }
    }
}

enum Values {
    U8(Reader<u8>),
    F32(Reader<f32>),
    F64(Reader<f64>),
}

/// A `.npy` array opened for reading: its header checked, its values read
/// in C order, as many at a time as the caller asks (a frame, or all).
///
/// [`NpyArray::open`] reads only the header and refuses, with an error
/// naming the file and saying what to do:
/// - a file that is not `.npy`, or whose header is not a plain array
///   header (structured dtypes, nested brackets: `npyz`'s header parser
///   takes exponential time on those, so they are refused before it runs);
/// - Fortran order (save with `np.ascontiguousarray`);
/// - a dtype other than `uint8`, `float32` or `float64`;
/// - a header that claims more data than the file holds (a header may
///   claim any shape: nothing is allocated for it before this check).
///
/// So whatever the file, opening and reading it return errors, never
/// panic, and never allocate more than the file's size in values.
pub struct NpyArray {
    name: String,
    shape: Vec<usize>,
    dtype: NpyDtype,
    values: Values,
    taken: usize,
    /// Whether the file's length was checked against the shape (a file,
    /// not a stream).
    sized: bool,
}

impl NpyArray {
    /// Opens `path` and checks its header (see [`NpyArray`]); no value is
    /// read yet.
    pub fn open(path: &Path) -> Result<NpyArray> {
        let name = path.display().to_string();
        let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
        // A FIFO's length (0) says nothing: it is read as a stream.
        let file_len = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        NpyArray::from_stream(name, Box::new(file), file_len)
    }

    /// [`NpyArray::open`] on an open file or stream `reader` (`name` for
    /// errors); `file_len` is its length when known (a file), `None` for a
    /// stream, whose data is checked as it is read.
    pub(crate) fn from_stream(
        name: String,
        mut reader: Box<dyn Read + Send>,
        file_len: Option<u64>,
    ) -> Result<NpyArray> {
        let header = read_header(&name, &mut reader)?;
        let data_start = header.bytes.len() as u64;
        let npy = npyz::NpyFile::new(BufReader::new(
            Box::new(std::io::Cursor::new(header.bytes).chain(reader)) as Box<dyn Read + Send>,
        ))
        .with_context(|| format!("{name}: the .npy header does not parse; {NOT_NPY}"))?;
        ensure!(
            npy.order() == npyz::Order::C,
            "{name}: Fortran-order arrays are not supported; save with np.ascontiguousarray"
        );
        let dims = npy.shape().to_vec();
        let bytes = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .zip(npy.dtype().num_bytes())
            .and_then(|(n, item)| n.checked_mul(item as u64));
        let descr = header.descr;
        if let Some(file_len) = file_len {
            let held = file_len.saturating_sub(data_start);
            ensure!(
                bytes.is_some_and(|b| b <= held),
                "{name}: the header claims shape {dims:?} of {descr}, {} bytes of data, more than the file's {held} \
                 hold: {}, or its header is corrupt",
                bytes.map_or("over 2^64".to_string(), |b| b.to_string()),
                super::truncation::ENDS_EARLY,
            );
        }
        // Each dimension is at most the file's length (checked above), but
        // a usize may be narrower than the file's u64 length.
        let shape = dims
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<usize>, _>>()
            .ok()
            .filter(|s| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_some())
            .with_context(|| format!("{name}: shape {dims:?} is too large for this machine"))?;
        let bad_type = |e: npyz::DTypeError| anyhow::anyhow!("{name}: {e}");
        let values = match header.dtype {
            NpyDtype::U8 => Values::U8(npy.data::<u8>().map_err(bad_type)?),
            NpyDtype::F32 => Values::F32(npy.data::<f32>().map_err(bad_type)?),
            NpyDtype::F64 => Values::F64(npy.data::<f64>().map_err(bad_type)?),
        };
        Ok(NpyArray {
            name,
            shape,
            dtype: header.dtype,
            values,
            taken: 0,
            sized: file_len.is_some(),
        })
    }

    /// The file, as errors name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shape the header gives (C order; `[]` for a scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> NpyDtype {
        self.dtype
    }

    /// The number of values: the product of the shape.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the array holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next `count` values in C order, fewer at the end of the array.
    /// An error means the file could not be read (it changed since it was
    /// opened, or the disk failed); nothing more should be read after one.
    pub fn read(&mut self, count: usize) -> std::io::Result<NpyValues> {
        let values = match &mut self.values {
            Values::U8(r) => NpyValues::U8(r.take(count).collect::<Result<_, _>>()?),
            Values::F32(r) => NpyValues::F32(r.take(count).collect::<Result<_, _>>()?),
            Values::F64(r) => NpyValues::F64(r.take(count).collect::<Result<_, _>>()?),
        };
        self.taken += values.len();
        Ok(values)
    }

    /// Every value not read yet (all of them on a fresh array), widened to
    /// `f64`: exactly `len()` minus those already read, or an error naming
    /// the file.
    pub fn read_to_end_f64(mut self) -> Result<Vec<f64>> {
        let want = self.len() - self.taken;
        let values = self
            .read(want)
            .with_context(|| format!("cannot read the data of {}", self.name))?;
        ensure!(
            values.len() == want,
            "{}: {} before its last value",
            self.name,
            super::truncation::ENDS_EARLY
        );
        Ok(values.into_f64())
    }
}

/// Frames of a `.npy` stack, read lazily (one frame in memory at a time).
pub struct NpyFrames {
    array: NpyArray,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    planar: bool,
    next: usize,
}

/// `(n, h, w, c, planar)` of a stack's shape, or why it cannot be read.
///
/// A shape is read as many frames only where that is the likelier
/// reading: a last axis of 1 or 3 is an image's channels, a last axis of
/// 2 or 4 an image's alpha channel (refused: the network takes no alpha;
/// frames 2 or 4 pixels wide are no camera's), and `3×H×W` may be one RGB
/// image stored channels-first, as PyTorch's `ToTensor` makes it (refused
/// with both readings). `2×H×W` and `4×H×W` stay 2 and 4 frames: a batch
/// of them is common (the tests' own fixtures), and one grey-and-alpha or
/// RGBA tensor saved as a frame stack no likelier.
fn layout(name: &str, shape: &[usize]) -> Result<(usize, usize, usize, usize, bool)> {
    let colour = |c: usize| c == 1 || c == 3;
    let alpha = |c: usize| c == 2 || c == 4;
    let accepted = "N×H×W, N×H×W×C, N×C×H×W (C = 1 or 3), one H×W×C or H×W image";
    let l = match *shape {
        [h, w] => (1, h, w, 1, false),
        [h, w, c] if colour(c) => (1, h, w, c, false),
        [h, w, c] if alpha(c) => bail!(
            "{name}: shape {shape:?} is one {h}×{w} image with {} ({}), not {h} frames of {w}×{c}: \
             alpha is not read; drop it and save arr[..., {}] (or, for {h} grey frames {c} pixels wide, \
             save them as ({h}, {w}, {c}, 1))",
            count(c, "channel", "channels"),
            if c == 4 { "RGBA" } else { "grey and alpha" },
            if c == 4 { ":3" } else { ":1" },
        ),
        [3, h, w] => bail!(
            "{name}: shape {shape:?} is ambiguous: 3 grey images of {h}×{w} (N×H×W), or one {h}×{w} \
             image with 3 channels stored channels-first (C×H×W, as a PyTorch tensor); save it as \
             (3, {h}, {w}, 1) for three images or (1, 3, {h}, {w}) for one"
        ),
        [n, h, w] => (n, h, w, 1, false),
        [n, a, b, c] => match (colour(a), colour(c)) {
            (true, false) => (n, b, c, a, true),
            (false, true) => (n, a, b, c, false),
            (true, true) => bail!(
                "{name}: shape {shape:?} is ambiguous: {} of {b}×{c} with {} (N×C×H×W), \
                 or {} of {a}×{b} with {} (N×H×W×C); store one layout with more than \
                 3 pixels on each side",
                count(n, "image", "images"),
                count(a, "channel", "channels"),
                count(n, "image", "images"),
                count(c, "channel", "channels"),
            ),
            (false, false) if alpha(c) || alpha(a) => bail!(
                "{name}: shape {shape:?} holds images with an alpha channel ({} channels); alpha is not \
                 read: drop it and save {}",
                if alpha(c) { c } else { a },
                match (alpha(c), c == 4 || a == 4) {
                    (true, true) => "arr[..., :3]",
                    (true, false) => "arr[..., :1]",
                    (false, true) => "arr[:, :3]",
                    (false, false) => "arr[:, :1]",
                }
            ),
            (false, false) => {
                bail!("{name}: shape {shape:?} has no axis of 1 or 3 channels; accepted layouts: {accepted}")
            }
        },
        _ => bail!("{name}: shape {shape:?} is not an image stack; accepted layouts: {accepted}"),
    };
    ensure!(
        l.0 > 0 && l.1 > 0 && l.2 > 0,
        "{name}: shape {shape:?} holds no pixels"
    );
    Ok(l)
}

/// The start of a `.npy` file up to its data: the bytes read (handed back
/// to `npyz`, so a stream is read once) and the element type.
struct Header {
    bytes: Vec<u8>,
    descr: String,
    dtype: NpyDtype,
}

/// Reads the magic, version and header text, and refuses what is not a
/// plain array header of a dtype [`NpyArray`] reads before `npyz` parses
/// it: its Python-literal parser takes exponential time on nested brackets
/// (fuzzing found a 262-byte file that hangs it), and an image stack's
/// header is one dict with one shape tuple.
fn read_header(name: &str, r: &mut dyn Read) -> Result<Header> {
    let cannot = || format!("cannot read {name}");
    let mut bytes = vec![0u8; 10];
    let got = read_up_to(r, &mut bytes).with_context(cannot)?;
    let magic = b"\x93NUMPY";
    ensure!(got > 0, "{name}: empty file (0 bytes); {NOT_NPY}");
    ensure!(
        bytes[..got.min(6)] == magic[..got.min(6)],
        "{name} is not a .npy file (it does not start with the \\x93NUMPY magic); {NOT_NPY}"
    );
    ensure!(
        got == 10,
        "{name}: {} inside its .npy header",
        super::truncation::ENDS_EARLY
    );
    let len = match bytes[6] {
        1 => usize::from(u16::from_le_bytes([bytes[8], bytes[9]])),
        2 | 3 => {
            bytes.resize(12, 0);
            let more = read_up_to(r, &mut bytes[10..]).with_context(cannot)?;
            ensure!(
                more == 2,
                "{name}: {} inside its .npy header",
                super::truncation::ENDS_EARLY
            );
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
        }
        v => bail!("{name}: unknown .npy format version {v}; {NOT_NPY}"),
    };
    ensure!(
        len <= 1 << 16,
        "{name}: its .npy header is {len} bytes long; not an image stack"
    );
    let at = bytes.len();
    bytes.resize(at + len, 0);
    let got = read_up_to(r, &mut bytes[at..]).with_context(cannot)?;
    ensure!(
        got == len,
        "{name}: {} inside its .npy header",
        super::truncation::ENDS_EARLY
    );
    let text = String::from_utf8_lossy(&bytes[at..]);
    let count = |c: char| text.chars().filter(|&b| b == c).count();
    ensure!(
        count('{') == 1 && count('(') <= 1 && count('[') == 0,
        "{name}: not a plain .npy array header (structured or malformed dtype); save a plain \
         uint8 or float array"
    );
    let descr = descr(&text).with_context(|| format!("{name}: the .npy header names no dtype; {NOT_NPY}"))?;
    let dtype = match descr.as_str() {
        "|u1" | "<u1" | ">u1" | "u1" => NpyDtype::U8,
        "<f4" | ">f4" => NpyDtype::F32,
        "<f8" | ">f8" => NpyDtype::F64,
        other if other.trim_start_matches(['<', '>', '|', '=']).starts_with('O') => bail!(
            "{name}: unsupported dtype {}: the array holds Python objects (e.g. frames of different shapes), \
             not numbers; the dtypes read are uint8, float32 and float64: np.stack the frames into one array \
             and save it with .astype(np.uint8) (0–255) or .astype(np.float32) (in [0, 1])",
            dtype_name(other)
        ),
        other => bail!(
            "{name}: unsupported dtype {}; the dtypes read are uint8, float32 and float64: save with \
             arr.astype(np.float32) (image frames: uint8 0–255, or floats in [0, 1])",
            dtype_name(other)
        ),
    };
    Ok(Header { bytes, descr, dtype })
}

/// The `'descr'` value of a `.npy` header's dict, e.g. `<f4` or `|O`.
fn descr(header: &str) -> Option<String> {
    let rest = &header[header.find("'descr'")? + "'descr'".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let quote = rest.chars().next().filter(|&q| q == '\'' || q == '"')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].to_string())
}

/// A dtype string in numpy's words: `int64 ('<i8')`, `object ('|O')`.
fn dtype_name(descr: &str) -> String {
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    // The kind is the first character (a header may hold any UTF-8: split at its boundary).
    let (kind, size) = code.split_at(code.chars().next().map_or(0, char::len_utf8));
    let bits = size.parse::<usize>().ok().map(|b| b * 8);
    let name = match (kind, bits) {
        ("O", _) => "object".to_string(),
        ("b", _) => "bool".to_string(),
        ("i", Some(b)) => format!("int{b}"),
        ("u", Some(b)) => format!("uint{b}"),
        ("f", Some(b)) => format!("float{b}"),
        ("c", Some(b)) => format!("complex{b}"),
        ("U", _) => "str".to_string(),
        ("S", _) => "bytes".to_string(),
        ("M", _) => "datetime64".to_string(),
        ("m", _) => "timedelta64".to_string(),
        _ => return format!("'{descr}'"),
    };
    format!("{name} ('{descr}')")
}

impl NpyFrames {
    /// Opens `path` as an [`NpyArray`] (header, order, element type, and
    /// that the file is as long as the shape says) and checks its layout,
    /// before reading any pixel.
    pub fn open(path: &Path) -> Result<NpyFrames> {
        NpyFrames::of(NpyArray::open(path)?)
    }

    /// The frames of an open stream `reader` (`name` for errors): read as
    /// they come, a frame the stream ends inside an error, never a partial
    /// frame; frames larger than [`super::raw::MAX_RAW_FRAME`] bytes are
    /// refused (a stream's length cannot be checked against its header).
    pub(crate) fn from_stream(name: String, reader: Box<dyn Read + Send>) -> Result<NpyFrames> {
        NpyFrames::of(NpyArray::from_stream(name, reader, None)?)
    }

    fn of(array: NpyArray) -> Result<NpyFrames> {
        let (n, h, w, c, planar) = layout(array.name(), array.shape())?;
        let item = match array.dtype() {
            NpyDtype::U8 => 1,
            NpyDtype::F32 => 4,
            NpyDtype::F64 => 8,
        };
        ensure!(
            array.sized || h * w * c * item <= super::raw::MAX_RAW_FRAME,
            "{}: frames of {h}×{w}×{c} are larger than this tool reads from a stream ({} MiB)",
            array.name(),
            super::raw::MAX_RAW_FRAME >> 20
        );
        Ok(NpyFrames {
            array,
            n,
            h,
            w,
            c,
            planar,
            next: 0,
        })
    }

    /// The file, as frames name it.
    pub fn name(&self) -> &str {
        self.array.name()
    }

    /// The number of frames the file holds.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the file holds no frame.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Index of the next frame.
    pub fn next_index(&self) -> usize {
        self.next
    }

    /// Frame `i`: the outer error means the stream is broken (no more
    /// frames can be read), the inner one that this frame is bad.
    fn read(&mut self, i: usize) -> Result<Result<Frame>> {
        let size = self.h * self.w * self.c;
        let source = format!("{}#{i}", self.array.name());
        let stored = match self.array.read(size) {
            Ok(NpyValues::U8(v)) => Pixels::U8(v),
            Ok(NpyValues::F32(v)) => Pixels::F32(v),
            Ok(NpyValues::F64(v)) => Pixels::F32(v.into_iter().map(|v| v as f32).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                bail!(
                    "{source}: {}: the data stops inside this frame",
                    super::truncation::ENDS_EARLY
                )
            }
            Err(e) => bail!("{source}: cannot read the frame: {e}"),
        };
        ensure!(
            stored.len() == size,
            "{source}: {}: the data stops inside this frame",
            super::truncation::ENDS_EARLY
        );
        if let Pixels::F32(v) = &stored {
            if let Some(j) = v.iter().position(|x| !(0.0..=1.0).contains(x)) {
                return Ok(Err(self.out_of_range(&source, j, v[j])));
            }
        }
        let pixels = if self.planar && self.c > 1 {
            let hw = self.h * self.w;
            let interleave = |i: usize| (i % self.c) * hw + i / self.c;
            match stored {
                Pixels::U8(v) => Pixels::U8((0..size).map(|i| v[interleave(i)]).collect()),
                Pixels::F32(v) => Pixels::F32((0..size).map(|i| v[interleave(i)]).collect()),
            }
        } else {
            stored
        };
        Ok(Ok(Frame {
            source,
            height: self.h,
            width: self.w,
            channels: self.c,
            pixels,
        }))
    }

    fn out_of_range(&self, source: &str, j: usize, v: f32) -> anyhow::Error {
        let (y, x, ch) = if self.planar {
            ((j / self.w) % self.h, j % self.w, j / (self.h * self.w))
        } else {
            (j / (self.w * self.c), (j / self.c) % self.w, j % self.c)
        };
        anyhow::anyhow!(
            "{source}: value {v} at row {y}, column {x}, channel {ch} is outside [0, 1]; float frames \
             must hold pixel values in [0, 1] (divide 0–255 values by 255, undo any mean/std \
             normalisation, or save uint8)"
        )
    }
}

impl Iterator for NpyFrames {
    type Item = Result<Frame>;

    /// The next frame; a read error ends the stream after its error.
    fn next(&mut self) -> Option<Result<Frame>> {
        if self.next >= self.n {
            return None;
        }
        let i = self.next;
        self.next += 1;
        match self.read(i) {
            Ok(frame) => Some(frame),
            Err(broken) => {
                self.next = self.n;
                Some(Err(broken))
            }
        }
    }
}

/// Reads every frame of a `.npy` stack; the first bad frame is the error.
pub fn read_npy_frames(path: &Path) -> Result<Vec<Frame>> {
    NpyFrames::open(path)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dtype_of_any_characters_is_named_not_a_panic() {
        // Found by the npy_frames fuzz target: a descr whose kind is not ASCII.
        assert!(!dtype_name("<\u{87}8").is_empty());
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/fuzz/corpus/npy_frames/crash-b0199fbdd04f22f77d91398a3c65ac65dca03587"
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.npy");
        std::fs::write(&p, bytes).unwrap();
        let Err(e) = read_npy_frames(&p) else {
            panic!("an unsupported dtype is an error")
        };
        let e = e.to_string();
        assert!(e.contains("unsupported dtype"), "{e}");
    }

    #[test]
    fn arrays_are_read_in_pieces_or_whole_in_their_stored_type() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        npyz::to_file_1d(&p, [1.5f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let mut a = NpyArray::open(&p).unwrap();
        assert_eq!((a.shape(), a.dtype(), a.len()), (&[6][..], NpyDtype::F32, 6));
        assert_eq!(a.read(4).unwrap(), NpyValues::F32(vec![1.5, 2.0, 3.0, 4.0]));
        assert_eq!(a.read_to_end_f64().unwrap(), [5.0, 6.0]);
        npyz::to_file_1d(&p, [0u8, 7, 255]).unwrap();
        let a = NpyArray::open(&p).unwrap();
        assert_eq!(a.dtype(), NpyDtype::U8);
        assert_eq!(a.read_to_end_f64().unwrap(), [0.0, 7.0, 255.0]);
        npyz::to_file_1d(&p, [0.25f64]).unwrap();
        let mut a = NpyArray::open(&p).unwrap();
        assert_eq!(a.read(9).unwrap(), NpyValues::F64(vec![0.25]));
        assert!(a.read(9).unwrap().is_empty());
        // Other element types are refused, naming the file and what to save.
        npyz::to_file_1d(&p, [1i32, 2]).unwrap();
        let e = NpyArray::open(&p).err().unwrap().to_string();
        assert!(
            e.contains("a.npy: unsupported dtype int32 ('<i4')") && e.contains("float32"),
            "{e}"
        );
    }

    #[test]
    fn layouts_are_read_or_refused_with_both_readings() {
        assert_eq!(layout("f", &[5, 28, 28]).unwrap(), (5, 28, 28, 1, false));
        assert_eq!(layout("f", &[5, 28, 28, 3]).unwrap(), (5, 28, 28, 3, false));
        assert_eq!(layout("f", &[5, 3, 28, 28]).unwrap(), (5, 28, 28, 3, true));
        assert_eq!(layout("f", &[28, 30]).unwrap(), (1, 28, 30, 1, false));
        // One H×W×C image, never 28 frames 3 pixels wide.
        assert_eq!(layout("f", &[28, 20, 3]).unwrap(), (1, 28, 20, 3, false));
        assert_eq!(layout("f", &[28, 28, 1]).unwrap(), (1, 28, 28, 1, false));
        let e = layout("f", &[3, 28, 28]).unwrap_err().to_string();
        assert!(e.contains("ambiguous") && e.contains("(1, 3, 28, 28)"), "{e}");
        // One image with alpha, never 28 (480) frames 4 (2) pixels wide.
        let e = layout("f", &[28, 28, 4]).unwrap_err().to_string();
        assert!(
            e.contains("one 28×28 image with 4 channels (RGBA), not 28 frames of 28×4")
                && e.contains("arr[..., :3]"),
            "{e}"
        );
        let e = layout("f", &[480, 640, 2]).unwrap_err().to_string();
        assert!(
            e.contains("(grey and alpha)") && e.contains("arr[..., :1]"),
            "{e}"
        );
        assert_eq!(layout("f", &[4, 28, 28]).unwrap(), (4, 28, 28, 1, false));
        assert_eq!(layout("f", &[2, 28, 28]).unwrap(), (2, 28, 28, 1, false));
        assert_eq!(layout("f", &[2, 28, 28, 1]).unwrap(), (2, 28, 28, 1, false));
        assert_eq!(layout("f", &[1, 28, 28]).unwrap(), (1, 28, 28, 1, false));
        for (shape, drop) in [([2, 28, 28, 4], "arr[..., :3]"), ([2, 2, 28, 28], "arr[:, :1]")] {
            let e = layout("f", &shape).unwrap_err().to_string();
            assert!(e.contains("alpha channel") && e.contains(drop), "{e}");
        }
        // Counts of 1 in the singular.
        let e = layout("f", &[1, 1, 28, 1]).unwrap_err().to_string();
        assert!(e.contains("1 image of 28×1 with 1 channel (N×C×H×W)"), "{e}");
        assert!(layout("f", &[2, 3, 5, 3])
            .unwrap_err()
            .to_string()
            .contains("ambiguous"));
        assert!(layout("f", &[2, 5, 5, 5]).is_err() && layout("f", &[9]).is_err());
        assert!(layout("f", &[0, 5, 5])
            .unwrap_err()
            .to_string()
            .contains("no pixels"));
    }
}
