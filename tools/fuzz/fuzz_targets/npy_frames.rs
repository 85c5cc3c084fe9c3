//! The `.npy` frame reader on arbitrary files: frames of the declared size,
//! or errors naming the file — never a panic, never an allocation the file
//! cannot back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lsgm::frames::{read_npy_frames, Pixels};

fuzz_target!(|data: &[u8]| {
    // The reader takes a path (it checks the header against the file's size).
    let path = std::env::temp_dir().join(format!("lsgm-npy-fuzz-{}.npy", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(frames) = read_npy_frames(&path) {
        for f in frames {
            let n = f.height * f.width * f.channels;
            assert!(f.channels == 1 || f.channels == 3);
            assert_eq!(f.pixels.len(), n);
            if let Pixels::F32(v) = &f.pixels {
                assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
            }
        }
    }
});
