//! Detection delay and false alarms of `lsgm-monitor --window`'s drift test
//! on synthetic verdict streams with a known change point (a measurement,
//! not a test; numbers in docs/fleet.md):
//!
//!     cargo bench --bench drift
//!
//! Verdicts are independent Bernoulli draws: OOD with probability `p0` =
//! 0.05 (what the calibrated threshold flags in distribution) before the
//! change point and `p1` after it. For each window and `p1`, 400 streams
//! whose change point falls at a random phase after a full window give the
//! median and 95th-percentile delay (frames from the change point to the
//! raised alarm); 10^7 frames at `p0` give the false alarms, against the
//! union bound `alpha × frames`.

// The monitor's own drift test, compiled in (a binary's modules cannot be
// imported). Its unit tests come along under `cargo clippy --all-targets`
// without a harness to run them, hence the allows.
#[path = "../src/bin/lsgm-monitor/drift.rs"]
#[allow(dead_code, unused_imports)]
mod drift;

use drift::{Drift, DriftParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const P0: f64 = 0.05;
const ALPHA: f64 = 1e-6;
const TRIALS: usize = 400;
const QUIET_FRAMES: u64 = 10_000_000;

fn drift(window: usize) -> Drift {
    Drift::new(DriftParams {
        window,
        alpha: ALPHA,
        expected_rate: P0,
    })
    .expect("valid parameters")
}

/// Frames from the change point to the alarm, or `None` within 50 windows.
fn delay(window: usize, p1: f64, rng: &mut StdRng) -> Option<usize> {
    let mut d = drift(window);
    let before = window + rng.random_range(0..window);
    for _ in 0..before {
        if d.push(rng.random_bool(P0), 0).is_some() {
            // A false alarm before the change: counted as no detection.
            return None;
        }
    }
    (1..=50 * window).find(|_| {
        d.push(rng.random_bool(p1), 0)
            .is_some_and(|a| a.alarm == "raised")
    })
}

fn main() {
    let mut rng = StdRng::seed_from_u64(16);
    println!("| window | alarm at ≥ (k*) | p1 | median delay | 95th pct delay | missed | false alarms in 10^7 frames at p0 (bound) |");
    println!("|---|---|---|---|---|---|---|");
    for window in [100, 500, 1000] {
        let mut quiet = drift(window);
        let false_alarms = (0..QUIET_FRAMES)
            .filter(|_| {
                quiet
                    .push(rng.random_bool(P0), 0)
                    .is_some_and(|a| a.alarm == "raised")
            })
            .count();
        for p1 in [0.10, 0.20, 0.30, 0.50] {
            let mut delays: Vec<usize> = Vec::new();
            let mut missed = 0;
            for _ in 0..TRIALS {
                match delay(window, p1, &mut rng) {
                    Some(d) => delays.push(d),
                    None => missed += 1,
                }
            }
            delays.sort_unstable();
            let at = |q: f64| {
                delays
                    .get(((delays.len() as f64 - 1.0) * q) as usize)
                    .copied()
                    .unwrap_or(0)
            };
            println!(
                "| {window} | {} | {p1:.2} | {} | {} | {missed}/{TRIALS} | {false_alarms} ({:.0}) |",
                quiet.critical(),
                at(0.5),
                at(0.95),
                ALPHA * QUIET_FRAMES as f64
            );
        }
    }
}
