//! `inspect`: a readable summary of a model file, or a full JSON dump of every
//! parameter (dequantised exactly as the scorer uses them) so that anyone can
//! re-score in numpy.

use lsgm::model::LayerView;
use lsgm::{Covariance, Model, Preprocess};
use serde_json::{json, Value};
use std::fmt::Write;

/// The format version in the header of `file` (a file `Model::from_bytes`
/// read, so the header is there).
fn version(file: &[u8]) -> u16 {
    let at = lsgm::model::field::VERSION;
    file.get(at).map_or(0, |v| u16::from_le_bytes([v[0], v[1]]))
}

/// The human summary (`file`: the model file's bytes).
pub fn summary(model: &Model<'_>, file: &[u8]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "LSGM model, format v{}, {} bytes", version(file), file.len());
    let _ = writeln!(s, "source:     {}", model.source());
    let _ = writeln!(s, "chain:      {}", model.chain().name());
    let _ = writeln!(
        s,
        "threshold:  {:.4} (held-out TPR {:.2} %)",
        model.threshold(),
        100.0 * model.calibration_tpr()
    );
    match model.preprocess().map(Preprocess::from_wire) {
        None => {
            let _ = writeln!(s, "input:      features only (no image preprocessing stored)");
        }
        Some(p) => {
            let _ = writeln!(s, "input:      {} {p}", p.input);
            let _ = writeln!(s, "logits:     {}", p.logits);
        }
    }
    let _ = writeln!(s, "layers:");
    for (i, l) in model.layers().iter().enumerate() {
        let proj = if let Some(p) = l.projection() {
            format!(
                "{} → {} (projection; residual σ² {:.4e}, ν {:.2})",
                l.dim_in(),
                l.dim(),
                p.residual_variance(),
                p.residual_dof()
            )
        } else {
            format!("{}", l.dim())
        };
        let _ = writeln!(
            s,
            "  {i}: {:<24} {}, dim {proj}, K = {}, {} covariance, {} storage, median contribution {:.3}",
            l.name(),
            l.pooling(),
            l.components(),
            l.gaussians().covariance().name(),
            l.gaussians().storage().name(),
            l.median_contribution()
        );
    }
    for i in 0..model.num_layers().saturating_sub(1) {
        let t = model.transition(i);
        let _ = writeln!(
            s,
            "  transition {i}→{}: {}×{} {}",
            i + 1,
            model.layer(i).components(),
            model.layer(i + 1).components(),
            t.quantisation().name()
        );
    }
    let q: Vec<String> = model.quantiles().map(|(q, v)| format!("{q}:{v:.2}")).collect();
    let _ = writeln!(s, "quantiles:  {}", q.join(" "));
    s
}

/// The full JSON dump: every parameter as the scorer reads it.
pub fn json(model: &Model<'_>, file: &[u8]) -> Value {
    let bytes = file.len();
    let transitions: Vec<Value> = (0..model.num_layers().saturating_sub(1))
        .map(|i| {
            let t = model.transition(i);
            let (r, c) = (model.layer(i).components(), model.layer(i + 1).components());
            json!((0..r)
                .map(|j| (0..c).map(|k| t.get(j * c + k)).collect::<Vec<_>>())
                .collect::<Vec<_>>())
        })
        .collect();
    json!({
        "format_version": version(file),
        "bytes": bytes,
        "source": model.source(),
        "chain": model.chain().name(),
        "threshold": model.threshold(),
        "calibration_tpr": model.calibration_tpr(),
        "quantiles": model.quantiles().map(|(q, s)| [q, s]).collect::<Vec<_>>(),
        "preprocess": model.preprocess().map(Preprocess::from_wire).map(|p| preprocess_json(&p)),
        "quantisation": (0..model.num_layers().saturating_sub(1)).map(|i| model.transition(i).quantisation().name()).collect::<Vec<_>>(),
        "layers": model.layers().iter().map(layer_json).collect::<Vec<_>>(),
        "transitions": transitions,
    })
}

/// A preprocessing as `inspect --json` prints it (also `lsgm.Network.preprocess`).
pub fn preprocess_json(p: &Preprocess) -> Value {
    json!({
        "input": p.input,
        "logits": p.logits,
        "layout": p.layout.to_string().to_lowercase(),
        "colour": p.colour.to_string(),
        "channels": p.channels(),
        "height": p.height,
        "width": p.width,
        "resize": p.resize.to_string(),
        "datum": p.datum.to_string(),
        "range": p.range.to_string(),
        "scale": p.range.scale(),
        "mean": p.mean,
        "std": p.std,
    })
}

/// One layer: its projection and every component, dequantised.
fn layer_json(l: &LayerView<'_>) -> Value {
    let g = l.gaussians();
    let d = g.dim();
    let projection = l.projection().map(|p| {
        let n = l.dim_in();
        json!({
            "mean": p.mean().iter().collect::<Vec<_>>(),
            "matrix": (0..d).map(|r| p.matrix().slice(r * n, n).iter().collect::<Vec<_>>()).collect::<Vec<_>>(),
            "residual_variance": p.residual_variance(),
            "residual_dof": p.residual_dof(),
        })
    });
    let components: Vec<Value> = (0..g.components())
        .map(|k| {
            let f = g.factor(k);
            // Diagonal factors as their `dim` values, others as dense matrices.
            let factor = if g.covariance() == Covariance::Diag {
                json!(f.iter().collect::<Vec<_>>())
            } else {
                json!((0..d)
                    .map(|i| (0..d).map(|j| f.entry(i, j)).collect::<Vec<_>>())
                    .collect::<Vec<_>>())
            };
            json!({
                "log_weight": l.log_weight(k),
                "mean": g.mean(k).iter().collect::<Vec<_>>(),
                "precision_cholesky": factor,
                "log_norm": g.log_norm(k),
            })
        })
        .collect();
    json!({
        "name": l.name(),
        "pooling": l.pooling().name(),
        "grid": l.pooling().side(),
        "dim_in": l.dim_in(),
        "dim": d,
        "projection": projection,
        "covariance": g.covariance().name(),
        "storage": g.storage().name(),
        "median_contribution": l.median_contribution(),
        "components": components,
    })
}
