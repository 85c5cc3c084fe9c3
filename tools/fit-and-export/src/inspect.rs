//! `inspect`: a readable summary of a model file, or a full JSON dump of every
//! parameter (dequantised exactly as the scorer uses them) so that anyone can
//! re-score in numpy.

use lsgm::density::packed_index;
use lsgm::model::wire::Pooling;
use lsgm::{Chain, Covariance, Model, Preprocess, Quantisation, Storage};
use serde_json::{json, Value};
use std::fmt::Write;

fn chain_name(c: Chain) -> &'static str {
    match c {
        Chain::Paper => "paper",
        Chain::Markov => "markov",
    }
}

fn quant_name(q: Quantisation) -> &'static str {
    match q {
        Quantisation::F32 => "f32",
        Quantisation::U16 => "u16",
        Quantisation::U8 => "u8",
    }
}

fn storage_name(s: Storage) -> &'static str {
    match s {
        Storage::F32 => "f32",
        Storage::F16 => "f16",
        Storage::I8 => "i8",
    }
}

fn cov_name(c: Covariance) -> &'static str {
    match c {
        Covariance::Full => "full",
        Covariance::Diag => "diag",
    }
}

/// The human summary.
pub fn summary(model: &Model<'_>, bytes: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "LSGM model, format v{}, {bytes} bytes",
        lsgm::model::FORMAT_VERSION
    );
    let _ = writeln!(s, "source:     {}", model.source());
    let _ = writeln!(s, "chain:      {}", chain_name(model.chain()));
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
            pooling_name(l.pooling()),
            l.components(),
            cov_name(l.gaussians().covariance()),
            storage_name(l.gaussians().storage()),
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
            quant_name(t.quantisation())
        );
    }
    let q: Vec<String> = model.quantiles().map(|(q, v)| format!("{q}:{v:.2}")).collect();
    let _ = writeln!(s, "quantiles:  {}", q.join(" "));
    s
}

fn pooling_name(p: Pooling) -> &'static str {
    match p {
        Pooling::GlobalAverageNchw => "mean over H, W of NCHW",
        Pooling::GlobalAverageNhwc => "mean over H, W of NHWC",
        Pooling::Vector => "vector",
        Pooling::Precomputed => "features given",
    }
}

/// The full JSON dump.
pub fn json(model: &Model<'_>, bytes: usize) -> Value {
    let preprocess = model.preprocess().map(Preprocess::from_wire).map(|p| {
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
    });
    let layers: Vec<Value> = model
        .layers()
        .iter()
        .map(|l| {
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
                    let factor = match g.covariance() {
                        Covariance::Diag => json!(f.iter().collect::<Vec<_>>()),
                        Covariance::Full => json!((0..d)
                            .map(|i| (0..d).map(|j| if i <= j { f.get(packed_index(i, j)) } else { 0.0 }).collect::<Vec<_>>())
                            .collect::<Vec<_>>()),
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
                "pooling": format!("{:?}", l.pooling()),
                "dim_in": l.dim_in(),
                "dim": d,
                "projection": projection,
                "covariance": cov_name(g.covariance()),
                "storage": storage_name(g.storage()),
                "median_contribution": l.median_contribution(),
                "components": components,
            })
        })
        .collect();
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
        "format_version": lsgm::model::FORMAT_VERSION,
        "bytes": bytes,
        "source": model.source(),
        "chain": chain_name(model.chain()),
        "threshold": model.threshold(),
        "calibration_tpr": model.calibration_tpr(),
        "quantiles": model.quantiles().map(|(q, s)| [q, s]).collect::<Vec<_>>(),
        "preprocess": preprocess,
        "quantisation": (0..model.num_layers().saturating_sub(1)).map(|i| quant_name(model.transition(i).quantisation())).collect::<Vec<_>>(),
        "layers": layers,
        "transitions": transitions,
    })
}
