//! Scoring many rows of features with the core's own scorer (so the host and
//! the device agree bit for bit), in parallel.

use crate::count;
use anyhow::{ensure, Context, Result};
use lsgm::Model;
use nalgebra::DMatrix;
use rayon::prelude::*;

/// Per-layer features as row-major `f32`, the layout the core reads.
pub struct RowMajor {
    /// Per layer: (dim, values).
    pub layers: Vec<(usize, Vec<f32>)>,
    /// Number of rows.
    pub rows: usize,
}

impl RowMajor {
    /// Converts (and rounds to f32) feature matrices.
    pub fn from_matrices(layers: &[DMatrix<f64>]) -> RowMajor {
        let rows = layers.first().map_or(0, |m| m.nrows());
        let layers = layers
            .iter()
            .map(|m| {
                let d = m.ncols();
                let mut v = Vec::with_capacity(rows * d);
                for r in m.row_iter() {
                    v.extend(r.iter().map(|&x| x as f32));
                }
                (d, v)
            })
            .collect();
        RowMajor { layers, rows }
    }

    /// Row `i` of layer `l`.
    pub fn row(&self, l: usize, i: usize) -> &[f32] {
        let (d, v) = &self.layers[l];
        &v[i * d..(i + 1) * d]
    }
}

/// Checks features against the model's taps before scoring: one matrix per
/// tap, in network order, each as wide as the tap's input (`widths`: their
/// columns). `what` names the features in the errors (a folder, `features`).
/// The one check of `fit-and-export score` and the Python package.
pub fn check_taps(model: &Model<'_>, widths: &[usize], what: &str) -> Result<()> {
    let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    ensure!(
        widths.len() == names.len(),
        "{what} has {} but the model has {} ({}): one per tap, in network order",
        count(widths.len(), "tap", "taps"),
        count(names.len(), "tap", "taps"),
        names.join(", ")
    );
    for (i, (&w, l)) in widths.iter().zip(model.layers()).enumerate() {
        ensure!(
            w == l.dim_in(),
            "{what}: tap {i} ({:?}) has {w} columns, the model expects {}",
            l.name(),
            l.dim_in()
        );
    }
    Ok(())
}

/// One scored row.
#[derive(Debug, Clone)]
pub struct Scored {
    /// Total score ([`lsgm::OVERFLOW_SCORE`] when a density overflowed).
    pub score: f32,
    /// Per-layer contributions.
    pub contributions: Vec<f32>,
    /// The verdict at the threshold the rows were judged against.
    pub verdict: lsgm::Verdict,
}

/// Scores and judges every row with [`Model::judge`] at the model's
/// calibrated threshold: a row whose density overflows gets the lowest
/// score and the others go on; any other error names the first failing row.
pub fn score_all(model: &Model<'_>, x: &RowMajor) -> Result<Vec<Scored>> {
    score_all_at(model, x, None)
}

/// [`score_all`] judging against `threshold` (`None`: the calibrated one),
/// as `lsgm-monitor --threshold` does (the Python package's `predict`).
pub fn score_all_at(model: &Model<'_>, x: &RowMajor, threshold: Option<f32>) -> Result<Vec<Scored>> {
    let m = model.num_layers();
    const CHUNK: usize = 256;
    let chunks: Vec<Result<Vec<Scored>>> = (0..x.rows.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut scratch = vec![0.0f32; model.scratch_len()];
            let mut refs: Vec<&[f32]> = Vec::with_capacity(m);
            let mut out = Vec::with_capacity(CHUNK);
            for i in c * CHUNK..((c + 1) * CHUNK).min(x.rows) {
                refs.clear();
                refs.extend((0..m).map(|l| x.row(l, i)));
                let mut contributions = vec![0.0f32; m];
                let verdict = model
                    .judge(&refs, &mut scratch, &mut contributions, threshold)
                    .with_context(|| format!("row {i}"))?;
                out.push(Scored {
                    score: verdict.score,
                    contributions,
                    verdict,
                });
            }
            Ok(out)
        })
        .collect();
    let mut all = Vec::with_capacity(x.rows);
    for c in chunks {
        all.extend(c?);
    }
    Ok(all)
}
