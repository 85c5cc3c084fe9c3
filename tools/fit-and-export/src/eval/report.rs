//! The eval pipeline's last phase: metrics per (OOD set, detector), written
//! as `report.json`, `report.md` and the plots.

use super::detector::Detector;
use super::detectors::Lsgm;
use super::metrics::{auroc, metrics, Metrics};
use super::plot;
use super::sets::Sets;
use crate::io::write_atomic;
use anyhow::{anyhow, Result};
use lsgm::onnx::{Logits, Probabilities};
use serde::Serialize;
use std::path::Path;

/// One detector's scores: on the in-distribution set and on every OOD set
/// (in [`Sets::oods`] order); higher = more in-distribution.
pub struct Scored {
    /// Its name.
    pub method: String,
    /// One score per in-distribution frame.
    pub id: Vec<f64>,
    /// Per OOD set, one score per frame.
    pub ood: Vec<Vec<f64>>,
    /// The logits tensor it was computed from, for a detector that reads them.
    pub logits: Option<String>,
}

#[derive(Serialize)]
struct ResultRow {
    ood: String,
    n: usize,
    method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    logits: Option<String>,
    #[serde(flatten)]
    metrics: Metrics,
    /// The operating point at the model's stored threshold: for `lsgm`
    /// only, `null` for every other method ([`AT_THRESHOLD`] says why).
    flagged_at_threshold: Option<Flagged>,
}

/// What the model's stored threshold does to one test set pair: the
/// shares of frames whose score is below it (OOD to `lsgm-monitor`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Flagged {
    /// The threshold (the model's, as `f32` widened).
    pub threshold: f64,
    /// Share of the in-distribution test frames flagged (false alarms).
    #[serde(rename = "in")]
    pub in_distribution: f64,
    /// Share of the OOD set's frames flagged (caught).
    pub ood: f64,
}

/// Share of `scores` below `threshold`: the frames `lsgm-monitor` calls
/// OOD (`score < threshold`).
fn flagged(scores: &[f64], threshold: f64) -> f64 {
    scores.iter().filter(|&&s| s < threshold).count() as f64 / scores.len().max(1) as f64
}

/// What the report says about the run besides the results.
pub struct Header<'a> {
    /// `--onnx`.
    pub onnx: &'a Path,
    /// `--lsgm`.
    pub lsgm: &'a Path,
    /// The model's recorded source.
    pub source: &'a str,
    /// `--in`.
    pub in_data: &'a Path,
    /// Where the final linear layer's `W` and `b` came from, when a
    /// detector used them.
    pub head: Option<&'a str>,
    /// The network's logits: their tensor and how it turns them into
    /// probabilities.
    pub logits: &'a Logits,
    /// The model's stored threshold.
    pub threshold: f64,
    /// The share of its held-out rows it was calibrated to pass.
    pub calibration_tpr: f64,
}

/// What the logit detectors (msp, energy, maxlogit, gen) were computed
/// from and what they mean for this network.
fn logits_meaning(l: &Logits) -> String {
    let t = &l.tensor;
    let read = l.note.as_deref().map_or(String::new(), |n| format!(" ({n})"));
    match l.probabilities {
        Probabilities::Softmax => format!(
            "msp, energy, maxlogit and gen are computed from the logits `{t}`{read}; msp is their top \
             softmax probability"
        ),
        Probabilities::Sigmoid => format!(
            "msp, energy, maxlogit and gen are computed from the logits `{t}`{read}; the network turns \
             them into independent per-class probabilities with a Sigmoid, so msp is max_k sigmoid(z_k), \
             its own top probability (the monitor's confidence), while energy (logsumexp), maxlogit and \
             gen (of their softmax) score the pre-sigmoid logits as they would any logits"
        ),
        Probabilities::Unknown => format!(
            "msp, energy, maxlogit and gen are skipped: the network's output `{t}` may not be its \
             logits and cannot be read back to them{read}"
        ),
    }
}

/// How to read the numbers, in both reports.
const CONVENTION: &str = "in-distribution is the positive class; higher score = more in-distribution; \
     TNR@95 = fraction of OOD frames below the threshold that keeps 95 % of ID frames; \
     FPR@95 = fraction of OOD frames at or above that threshold (1 − TNR@95: the FPR of OOD at 95 % TPR of ID, \
     as in the ReAct, KNN, ASH and ViM papers and OpenOOD v1.0's fpr_recall; OpenOOD v1.5 instead takes OOD \
     as positive, the FPR of ID at 95 % recall of OOD); AUPR-In/Out = average precision with ID/OOD as positive; \
     Det. acc. = best ½(TPR + TNR)";

/// What `flagged_at_threshold` is, in both reports.
const AT_THRESHOLD: &str = "flagged_at_threshold = the shares of in-distribution (`in`) and OOD (`ood`) \
     frames whose score is below the model's stored threshold, the verdict lsgm-monitor gives without \
     --threshold or --fpr; it is given for lsgm only and null for every other method, which stores no \
     threshold (TNR@95 re-chooses every method's threshold on the test set itself)";

/// Writes `report.json` and `report.md` into `out`; returns the Markdown.
pub fn write(out: &Path, header: &Header, sets: &Sets, scores: &[Scored]) -> Result<String> {
    let lsgm = scores.iter().find(|s| s.method == Lsgm.name());
    let in_flagged = lsgm.map(|s| flagged(&s.id, header.threshold));
    let mut rows = Vec::new();
    for (oi, (name, set)) in sets.oods.iter().enumerate() {
        for s in scores {
            rows.push(ResultRow {
                ood: name.clone(),
                n: set.rows(),
                method: s.method.clone(),
                logits: s.logits.clone(),
                metrics: metrics(&s.id, &s.ood[oi]),
                flagged_at_threshold: (s.method == Lsgm.name()).then(|| Flagged {
                    threshold: header.threshold,
                    in_distribution: flagged(&s.id, header.threshold),
                    ood: flagged(&s.ood[oi], header.threshold),
                }),
            });
        }
    }
    let report = serde_json::json!({
        "model": {"onnx": header.onnx.display().to_string(), "lsgm": header.lsgm.display().to_string(), "source": header.source},
        "convention": CONVENTION,
        "in": {"name": header.in_data.display().to_string(), "n": sets.id.rows(), "accuracy": sets.accuracy},
        "stored_threshold": {
            "method": Lsgm.name(),
            "value": header.threshold,
            "calibration_tpr": header.calibration_tpr,
            "in_flagged": in_flagged,
            "meaning": AT_THRESHOLD,
        },
        "final_linear_layer": header.head,
        "logits": {
            "tensor": header.logits.tensor,
            "probabilities": header.logits.probabilities.name(),
            "note": header.logits.note,
            "meaning": logits_meaning(header.logits),
        },
        "results": rows,
    });
    write_atomic(
        &out.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let text = markdown(&report, &rows);
    write_atomic(&out.join("report.md"), text.as_bytes())?;
    Ok(text)
}

fn markdown(report: &serde_json::Value, rows: &[ResultRow]) -> String {
    let mut s = String::new();
    s.push_str("# OOD evaluation\n\n");
    s.push_str(&format!(
        "Model `{}` with `{}`; in-distribution set `{}` ({}{}).\n\n",
        report["model"]["onnx"].as_str().unwrap_or(""),
        report["model"]["lsgm"].as_str().unwrap_or(""),
        report["in"]["name"].as_str().unwrap_or(""),
        crate::count(
            report["in"]["n"].as_u64().unwrap_or(0) as usize,
            "frame",
            "frames"
        ),
        report["in"]["accuracy"]
            .as_f64()
            .map(|a| format!(", classifier accuracy {:.2} %", 100.0 * a))
            .unwrap_or_default()
    ));
    s.push_str(&format!("Convention: {CONVENTION}.\n\n"));
    s.push_str(&operating_point(
        &report["stored_threshold"],
        report["in"]["n"].as_u64(),
    ));
    if let Some(head) = report["final_linear_layer"].as_str() {
        s.push_str(&format!("Final linear layer (W, b): {head}.\n\n"));
    }
    if let Some(meaning) = report["logits"]["meaning"].as_str() {
        s.push_str(&format!("Logits: {meaning}.\n\n"));
    }
    s.push_str(
        "| OOD set | n | method | AUROC | TNR@95 | caught at stored threshold | FPR@95 | AUPR-In | AUPR-Out | Det. acc. |\n",
    );
    s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let m = r.metrics;
        s.push_str(&format!(
            "| {} | {} | {} | {:.4} | {:.4} | {} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
            r.ood,
            r.n,
            r.method,
            m.auroc,
            m.tnr_at_95tpr,
            r.flagged_at_threshold
                .map_or("—".to_string(), |f| format!("{:.4}", f.ood)),
            m.fpr_at_95tpr,
            m.aupr_in,
            m.aupr_out,
            m.detection_accuracy
        ));
    }
    s
}

/// The Markdown paragraph on the stored threshold: its value, what it was
/// calibrated for and the share of the `n` in-distribution test frames it
/// flags (when lsgm was scored).
fn operating_point(t: &serde_json::Value, n: Option<u64>) -> String {
    let value = t["value"].as_f64().unwrap_or(f64::NAN);
    let tpr = t["calibration_tpr"].as_f64().unwrap_or(f64::NAN);
    let flagged = match (t["in_flagged"].as_f64(), n) {
        (Some(f), Some(n)) => format!(
            " It flags {:.2} % of the in-distribution test frames ({} of {n}), against {:.2} % \
             on its held-out rows.",
            100.0 * f,
            (f * n as f64).round(),
            100.0 * (1.0 - tpr)
        ),
        _ => " lsgm was not scored (--methods), so no frame was judged at it.".to_string(),
    };
    format!(
        "At the model's stored threshold {} (score < threshold is OOD, as lsgm-monitor judges without \
         --threshold or --fpr; calibrated to pass {:.2} % of its held-out rows).{flagged} The share of \
         each OOD set it catches is the \"caught at stored threshold\" column, for lsgm only: the other \
         methods store no threshold (TNR@95 re-chooses each method's threshold on the test set).\n\n",
        value as f32,
        100.0 * tpr
    )
}

/// One ROC figure per OOD set (`roc-NAME.png`) and, when LSGM was scored,
/// the histogram of its scores with the model's `threshold`
/// (`histogram-lsgm.png`). With no font for the labels, a warning and no plots.
pub fn plots(out: &Path, sets: &Sets, scores: &[Scored], threshold: f64) -> Result<()> {
    if let Err(e) = plot::init_font() {
        crate::say!("warning: {e}");
        return Ok(());
    }
    let lsgm = scores.iter().find(|s| s.method == Lsgm.name());
    for (oi, (name, set)) in sets.oods.iter().enumerate() {
        let curves: Vec<plot::Curve> = scores
            .iter()
            .map(|s| plot::Curve {
                name: s.method.clone(),
                points: plot::roc(&s.id, &s.ood[oi]),
                auroc: auroc(&s.id, &s.ood[oi]),
            })
            .collect();
        let safe: String = name
            .chars()
            .map(|c| if c.is_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        // The LSGM's operating point: OOD accepted, ID accepted.
        let operating = lsgm.map(|s| {
            (
                1.0 - flagged(&s.ood[oi], threshold),
                1.0 - flagged(&s.id, threshold),
            )
        });
        plot::roc_plot(
            &out.join(format!("roc-{safe}.png")),
            &format!("ROC: in-distribution vs {name}"),
            &curves,
            set.rows(),
            operating,
        )
        .map_err(|e| anyhow!("plotting: {e}"))?;
    }
    if let Some(s) = lsgm {
        let named: Vec<(String, Vec<f64>)> = sets
            .oods
            .iter()
            .map(|o| o.0.clone())
            .zip(s.ood.iter().cloned())
            .collect();
        plot::histogram(&out.join("histogram-lsgm.png"), &s.id, &named, threshold)
            .map_err(|e| anyhow!("plotting: {e}"))?;
    }
    Ok(())
}
