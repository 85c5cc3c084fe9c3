//! Scores fixed feature vectors with the LSGM core on a Cortex-M4F, without a
//! heap, and logs each score with defmt over semihosting. `run.sh` builds it
//! with a model and features (env `MCU_DATA`), runs it in QEMU and compares
//! the scores with the host's.
#![no_std]
#![no_main]

use cortex_m as _;
use cortex_m_rt::entry;
use defmt_semihosting as _;
use lsgm::{Model, Scratch, MAX_LAYERS};

static MODEL: &[u8] = include_bytes!(concat!(env!("MCU_DATA"), "/model.lsgm"));
/// Frame after frame, layer after layer, little-endian f32.
static FEATURES: &[u8] = include_bytes!(concat!(env!("MCU_DATA"), "/features.bin"));

/// Largest feature vector of one frame (all layers) this firmware accepts.
const MAX_FRAME: usize = 1024;

fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

#[entry]
fn main() -> ! {
    let model = match Model::from_bytes(MODEL) {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("model: {}", e);
            exit(1)
        }
    };
    let m = model.num_layers();
    let dims: [usize; MAX_LAYERS] = core::array::from_fn(|i| if i < m { model.layer(i).dim_in() } else { 0 });
    let frame_len: usize = dims.iter().sum();
    let mut scratch = Scratch::<2048>::new();
    if model.scratch_len() > 2048 || frame_len > MAX_FRAME || frame_len == 0 {
        defmt::error!("model too large for this firmware's buffers");
        exit(1)
    }
    let frames = FEATURES.len() / 4 / frame_len;
    defmt::println!(
        "model {=usize} bytes, {=usize} layers, {=usize} frames",
        MODEL.len(),
        m,
        frames
    );
    let mut buf = [0.0f32; MAX_FRAME];
    let mut contributions = [0.0f32; MAX_LAYERS];
    for f in 0..frames {
        let bytes = &FEATURES[f * frame_len * 4..(f + 1) * frame_len * 4];
        for (v, b) in buf.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        let mut refs: [&[f32]; MAX_LAYERS] = [&[]; MAX_LAYERS];
        let mut rest: &[f32] = &buf[..frame_len];
        for (r, &d) in refs.iter_mut().zip(&dims[..m]) {
            let (head, tail) = rest.split_at(d);
            *r = head;
            rest = tail;
        }
        match model.score(&refs[..m], scratch.as_mut_slice(), &mut contributions) {
            Ok(s) => {
                let v = model.verdict(s, &contributions[..m], None);
                defmt::println!("score {=usize} {=f32} ood={=bool}", f, s, v.ood);
            }
            Err(e) => defmt::println!("error {=usize} {}", f, e),
        }
    }
    exit(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(101)
}
