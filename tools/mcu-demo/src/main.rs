//! Scores fixed feature vectors with the LSGM core on a Cortex-M4F, without a
//! heap, and logs each score with defmt over semihosting. `run.sh` builds it
//! with a model and features (env `MCU_DATA`), runs it in QEMU and compares
//! the scores with the host's.
//!
//! Each score is timed with SysTick on the core clock. QEMU's cycles are not a
//! Cortex-M4's, but with `-icount shift=0` its virtual clock advances exactly
//! 1 ns per executed instruction, so on mps2-an386 (25 MHz core clock) one
//! tick is 40 instructions: the log gives instruction counts, not time. A
//! `cortex_m::asm::delay` of known length is timed first to check that scale.
#![no_std]
#![no_main]

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
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

/// SysTick ticks elapsed since `start` (the 24-bit counter counts down).
fn ticks_since(start: u32) -> u32 {
    start.wrapping_sub(SYST::get_current()) & 0x00FF_FFFF
}

#[entry]
fn main() -> ! {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        exit(1)
    };
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(0x00FF_FFFF);
    core.SYST.clear_current();
    core.SYST.enable_counter();
    // `subs; bne` for 1,000,001 iterations (cortex-m 0.7's `asm::delay`):
    // 2,000,002 instructions, so 50,000 ticks at 40 instructions per tick.
    let t = SYST::get_current();
    cortex_m::asm::delay(1_000_000);
    defmt::println!("calibration {=u32} ticks for delay(1000000)", ticks_since(t));

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
        let t = SYST::get_current();
        let scored = model.score(&refs[..m], scratch.as_mut_slice(), &mut contributions);
        let ticks = ticks_since(t);
        match scored {
            Ok(s) => {
                let v = model.verdict(s, &contributions[..m], None);
                defmt::println!(
                    "score {=usize} {=f32} ood={=bool} ticks={=u32}",
                    f,
                    s,
                    v.ood,
                    ticks
                );
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
