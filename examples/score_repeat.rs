//! Scores one frame N times with the core: the workload that
//! `tools/bench/qemu_icount.py` counts instructions of under qemu-user.
//!
//!     cargo run --release --example score_repeat -- MODEL.lsgm N
//!
//! The frame is each layer's first component mean (a typical in-distribution
//! trace), so the result does not depend on any data file.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<usize>().ok())) else {
        eprintln!("usage: score_repeat MODEL.lsgm N");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("score_repeat: cannot read {path}: {e}");
            return ExitCode::from(1);
        }
    };
    let model = match lsgm::Model::from_bytes(&bytes) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("score_repeat: {path}: {e}");
            return ExitCode::from(1);
        }
    };
    let frame: Vec<Vec<f32>> = model
        .layers()
        .iter()
        .map(|l| {
            let mean: Vec<f32> = l.gaussians().mean(0).iter().collect();
            match l.projection() {
                // A projected layer takes dim_in inputs; any finite vector will do.
                Some(_) => vec![0.5; l.dim_in()],
                None => mean,
            }
        })
        .collect();
    let refs: Vec<&[f32]> = frame.iter().map(Vec::as_slice).collect();
    let mut scratch = vec![0.0; model.scratch_len()];
    let mut contributions = vec![0.0; model.num_layers()];
    let mut last = 0.0;
    for _ in 0..n {
        match model.score(std::hint::black_box(&refs), &mut scratch, &mut contributions) {
            Ok(s) => last = s,
            Err(e) => {
                eprintln!("score_repeat: {e}");
                return ExitCode::from(1);
            }
        }
    }
    println!("{last}");
    ExitCode::SUCCESS
}
