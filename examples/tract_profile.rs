//! Where tract spends the time on a network, and what tapping costs.
//!
//!     cargo run --release --example tract_profile -- NET.onnx MODEL.lsgm FRAMES [RUNS]
//!
//! Runs the first frame of FRAMES (any input `lsgm-monitor` takes),
//! preprocessed as MODEL.lsgm says, through two optimised plans of NET,
//! alternating: one returning the logits and every tap of MODEL.lsgm (what
//! the monitor runs), one returning the logits only. Prints the median
//! inference time of each, then tract's per-node profile of the tapped plan
//! (median µs per node over RUNS inferences, default 300), summed per
//! operator and the 12 slowest nodes.

use anyhow::{bail, Context, Result};
use lsgm::frames::{self, FrameSource};
use lsgm::onnx::{bind, Engine, Graph, LoadOptions, Network, Output};
use std::collections::BTreeMap;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, net, model, frames_path, rest @ ..] = &args[..] else {
        bail!("usage: tract_profile NET.onnx MODEL.lsgm FRAMES [RUNS]");
    };
    let runs: usize = rest.first().map_or(Ok(300), |r| r.parse()).context("RUNS")?;
    if runs == 0 {
        bail!("RUNS must be at least 1");
    }
    let bytes = std::fs::read(model).with_context(|| format!("cannot read {model}"))?;
    let model = lsgm::Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{model}: {e}"))?;
    let bound = bind(&model, net.as_ref(), &Engine::default())?;
    let inputs = frames::expand_inputs(&[frames_path.into()]);
    let (_, frame) = FrameSource::new(inputs, None)?
        .next()
        .context("no frame in FRAMES")?;
    let mut input = bound.preprocess.buffer();
    frames::to_input(&frame?, &bound.preprocess, &mut input)?;

    let p = &bound.preprocess;
    let opts = LoadOptions {
        input_size: Some((p.height, p.width)),
        logits: Some(p.logits.clone()),
        fitted_for: None,
    };
    let untapped = Network::new(Graph::load(net.as_ref(), &opts)?, &[], &Engine::default())?;
    let (mut tapped_run, mut plain_run) = (bound.network.runner()?, untapped.runner()?);
    let mut out = Output::default();
    let (mut tapped, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t0 = Instant::now();
        tapped_run.run(&input, &mut out)?;
        tapped.push(t0.elapsed().as_secs_f64() * 1e6);
        let t0 = Instant::now();
        plain_run.run(&input, &mut out)?;
        plain.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let (t, u) = (median(tapped), median(plain));
    println!(
        "{net}: median inference {t:.0} µs with {} taps, {u:.0} µs logits only ({:+.1} %), {runs} runs each, alternating",
        model.num_layers(),
        100.0 * (t / u - 1.0)
    );

    let rows = tapped_run.profile(&input, runs)?;
    let total: f64 = rows.iter().map(|r| r.2).sum();
    let mut by_op: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for (_, op, us) in &rows {
        let e = by_op.entry(op.as_str()).or_default();
        e.0 += us;
        e.1 += 1;
    }
    let mut by_op: Vec<_> = by_op.into_iter().collect();
    by_op.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    println!(
        "per operator (sum of per-node medians {total:.0} µs over {} nodes):",
        rows.len()
    );
    for (op, (us, n)) in by_op {
        println!(
            "  {op:<24} {n:>4} nodes {us:>9.1} µs {:>5.1} %",
            100.0 * us / total
        );
    }
    println!("slowest nodes:");
    for (name, op, us) in rows.iter().take(12) {
        println!("  {us:>8.1} µs  {op:<20} {name}");
    }
    Ok(())
}
