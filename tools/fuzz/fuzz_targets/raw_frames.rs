//! The raw frame reader on arbitrary streams and shapes: whole frames, then at
//! most one partial-frame error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lsgm::frames::{parse_raw_format, RawReader};

fuzz_target!(|data: &[u8]| {
    let (spec, stream) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => return,
    };
    let Ok(spec) = std::str::from_utf8(spec) else {
        return;
    };
    let Ok(format) = parse_raw_format(spec) else { return };
    // parse_raw_format bounds the frame size; keep the fuzzer's frames small.
    let size = format.frame_bytes();
    if size > 1 << 16 {
        return;
    }
    let mut reader = RawReader::new(stream, format, "fuzz");
    let mut whole = 0;
    let mut errors = 0;
    while let Some(frame) = reader.next_frame() {
        match frame {
            Ok(f) => {
                assert_eq!(f.pixels.len(), size);
                whole += 1;
            }
            Err(_) => errors += 1,
        }
    }
    assert_eq!(whole, stream.len() / size);
    assert_eq!(errors, usize::from(stream.len() % size != 0));
});
