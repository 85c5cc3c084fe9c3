//! The eval pipeline: load, extract, score every method, report.

use super::methods::{self, Knn, Mahalanobis, MahalanobisMulti, SetFeatures};
use super::metrics::{metrics, Metrics};
use super::plot;
use super::synthetic::{self, Synthetic};
use crate::extract;
use crate::io::write_atomic;
use anyhow::{bail, ensure, Context, Result};
use lsgm::frames::{Frame, Notes};
use lsgm::onnx::{bind, Network};
use lsgm::{Model, Preprocess};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What to evaluate (the `eval` command's flags).
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// ONNX classifier.
    #[arg(long)]
    pub onnx: PathBuf,
    /// LSGM model file.
    #[arg(long)]
    pub lsgm: PathBuf,
    /// In-distribution test images.
    #[arg(long = "in")]
    pub in_data: PathBuf,
    /// IDX labels of --in (reports the classifier's accuracy).
    #[arg(long)]
    pub in_labels: Option<PathBuf>,
    /// OOD set: NAME=PATH (any loader format), or gaussian, rademacher, blobs. Repeatable.
    #[arg(long, required = true)]
    pub ood: Vec<String>,
    /// Methods: all, or a comma list of lsgm, msp, energy, mahalanobis, mahalanobis-multi, knn, gmm-layer-I.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub methods: Vec<String>,
    /// In-distribution training images (mahalanobis, knn).
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// IDX labels of --train (mahalanobis).
    #[arg(long)]
    pub train_labels: Option<PathBuf>,
    /// Keep only these training classes (needs --train-labels).
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<u8>>,
    /// Frames per synthetic OOD set.
    #[arg(long, default_value_t = 2000)]
    pub synthetic: usize,
    /// Seed of the synthetic sets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory for report.json, report.md and the plots.
    #[arg(long)]
    pub out: PathBuf,
    /// `--threads`.
    #[command(flatten)]
    pub extract: crate::cli::ExtractArgs,
}

#[derive(Serialize)]
struct ResultRow {
    ood: String,
    n: usize,
    method: String,
    #[serde(flatten)]
    metrics: Metrics,
}

const ALL: [&str; 6] = ["lsgm", "msp", "energy", "mahalanobis", "mahalanobis-multi", "knn"];

fn extract_set(
    net: &Network,
    p: &Preprocess,
    frames: &[Frame],
    opts: &extract::Extraction,
    notes: &Notes,
) -> Result<SetFeatures> {
    let ex = extract::extract(net, p, frames, opts, notes)?;
    Ok(set_features(ex))
}

fn set_features(ex: extract::Extracted) -> SetFeatures {
    SetFeatures {
        layers: ex.layers,
        logits: ex.logits.expect("extracted with logits"),
    }
}

/// Runs the evaluation and writes `report.json`, `report.md` and plots.
pub fn run(a: &EvalArgs) -> Result<()> {
    let bytes = std::fs::read(&a.lsgm).with_context(|| format!("cannot read {}", a.lsgm.display()))?;
    let model = Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", a.lsgm.display()))?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    crate::io::check_output(&a.out.join("report.json"))?;
    let bound = bind(&model, &a.onnx)?;
    let notes = Notes::default();
    bound.notes.iter().for_each(|n| notes.say(n));
    let (net, spec) = (&bound.network, &bound.preprocess);

    let mut wanted: Vec<String> = if a.methods.iter().any(|m| m == "all") {
        ALL.iter()
            .map(|s| s.to_string())
            .chain((0..model.num_layers()).map(|i| format!("gmm-layer-{i}")))
            .collect()
    } else {
        a.methods.clone()
    };
    for m in &wanted {
        let known = ALL.contains(&m.as_str())
            || m.strip_prefix("gmm-layer-")
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i < model.num_layers());
        ensure!(
            known,
            "unknown method {m:?}; choose from {}, gmm-layer-0..{}, or all",
            ALL.join(", "),
            model.num_layers() - 1
        );
    }

    crate::say!("extracting in-distribution set {}", a.in_data.display());
    let opts = extract::Extraction {
        threads: a.extract.threads(),
        logits: true,
    };
    let in_source = extract::Source {
        path: &a.in_data,
        labels: a.in_labels.as_deref(),
        classes: None,
    };
    let mut in_set = extract::extract_source(net, spec, &in_source, &opts, &notes)?;
    let in_labels = in_set.labels.take();
    let id = set_features(in_set);
    let accuracy = match &in_labels {
        Some(labels) => {
            let argmax = |r: &mut dyn Iterator<Item = &f64>| {
                r.enumerate()
                    .fold((0, f64::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                    .0
            };
            let correct = id
                .logits
                .row_iter()
                .zip(labels)
                .filter(|(r, &y)| argmax(&mut r.iter()) == y as usize)
                .count();
            Some(correct as f64 / labels.len() as f64)
        }
        None => None,
    };

    let mut oods: Vec<(String, SetFeatures)> = Vec::new();
    ensure!(
        !a.ood.is_empty(),
        "give at least one --ood NAME=PATH or --ood gaussian|rademacher|blobs"
    );
    for o in &a.ood {
        let (name, set) = match (o.split_once('='), Synthetic::parse(o)) {
            (Some((name, path)), _) => {
                crate::say!("extracting OOD set {name} ({path})");
                let source = extract::Source::all(Path::new(path));
                let set = extract::extract_source(net, spec, &source, &opts, &notes)?;
                (name.to_string(), set_features(set))
            }
            (None, Some(kind)) => {
                let frames = synthetic::generate(
                    kind,
                    a.synthetic,
                    spec.height as usize,
                    spec.width as usize,
                    spec.channels(),
                    a.seed,
                );
                let name = kind.name().to_string();
                ensure!(!frames.is_empty(), "OOD set {name} is empty");
                crate::say!("extracting OOD set {name} ({} frames)", frames.len());
                let set = extract_set(net, spec, &frames, &opts, &notes)?;
                (name, set)
            }
            (None, None) => bail!("--ood {o:?}: expected NAME=PATH or one of gaussian, rademacher, blobs"),
        };
        oods.push((name, set));
    }

    // Baselines that need training features.
    let needs_train = wanted.iter().any(|m| m.starts_with("mahalanobis") || m == "knn");
    let mut train: Option<(SetFeatures, Option<Vec<u8>>)> = None;
    if needs_train {
        match &a.train {
            Some(p) => {
                crate::say!("extracting training set {}", p.display());
                let source = extract::Source {
                    path: p,
                    labels: a.train_labels.as_deref(),
                    classes: a.classes.as_deref(),
                };
                let mut set = extract::extract_source(net, spec, &source, &opts, &notes)?;
                let labels = set.labels.take();
                train = Some((set_features(set), labels));
            }
            None => {
                crate::say!("warning: mahalanobis, mahalanobis-multi and knn need --train; skipping them");
                wanted.retain(|m| !(m.starts_with("mahalanobis") || m == "knn"));
            }
        }
    }
    if train.as_ref().is_some_and(|t| t.1.is_none()) {
        crate::say!("warning: mahalanobis needs --train-labels; skipping mahalanobis and mahalanobis-multi");
        wanted.retain(|m| !m.starts_with("mahalanobis"));
    }

    let last = model.num_layers() - 1;
    let mut scores: Vec<(String, Vec<f64>, Vec<Vec<f64>>)> = Vec::new(); // method, id, per ood
    for m in &wanted {
        crate::say!("scoring {m}");
        let score = |x: &SetFeatures| -> Result<Vec<f64>> {
            Ok(match m.as_str() {
                "lsgm" => methods::lsgm(&model, x)?,
                "msp" => methods::msp(&x.logits),
                "energy" => methods::energy(&x.logits),
                other => {
                    let i: usize = other.trim_start_matches("gmm-layer-").parse().unwrap_or(0);
                    methods::gmm_layer(&model, i, x)
                }
            })
        };
        let (id_s, ood_s) = match m.as_str() {
            "mahalanobis" | "mahalanobis-multi" | "knn" => {
                let (tr, labels) = train.as_ref().expect("checked above");
                match m.as_str() {
                    "mahalanobis" => {
                        let maha = Mahalanobis::fit(&tr.layers[last], labels.as_ref().expect("checked"))?;
                        (
                            maha.score(&id.layers[last]),
                            oods.iter().map(|o| maha.score(&o.1.layers[last])).collect(),
                        )
                    }
                    "mahalanobis-multi" => {
                        let n = tr.layers[0].nrows();
                        let held: Vec<usize> = (0..n).filter(|i| i % 10 == 0).collect();
                        let fit: Vec<usize> = (0..n).filter(|i| i % 10 != 0).collect();
                        let mm = MahalanobisMulti::fit(
                            &tr.layers,
                            labels.as_ref().expect("checked"),
                            &fit,
                            &held,
                        )?;
                        (
                            mm.score(&id.layers),
                            oods.iter().map(|o| mm.score(&o.1.layers)).collect(),
                        )
                    }
                    _ => {
                        let knn = Knn::fit(&tr.layers[last], 50);
                        (
                            knn.score(&id.layers[last]),
                            oods.iter().map(|o| knn.score(&o.1.layers[last])).collect(),
                        )
                    }
                }
            }
            _ => (
                score(&id)?,
                oods.iter().map(|o| score(&o.1)).collect::<Result<Vec<_>>>()?,
            ),
        };
        scores.push((m.clone(), id_s, ood_s));
    }

    let mut rows = Vec::new();
    for (oi, (name, set)) in oods.iter().enumerate() {
        for (m, id_s, ood_s) in &scores {
            rows.push(ResultRow {
                ood: name.clone(),
                n: set.logits.nrows(),
                method: m.clone(),
                metrics: metrics(id_s, &ood_s[oi]),
            });
        }
    }
    let report = serde_json::json!({
        "model": {"onnx": a.onnx.display().to_string(), "lsgm": a.lsgm.display().to_string(), "source": model.source()},
        "convention": "in-distribution is the positive class; higher score = more in-distribution",
        "in": {"name": a.in_data.display().to_string(), "n": id.logits.nrows(), "accuracy": accuracy},
        "results": rows,
    });
    write_atomic(
        &a.out.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    write_atomic(&a.out.join("report.md"), markdown(&report, &rows).as_bytes())?;

    match plot::init_font() {
        Ok(()) => {
            for (oi, (name, _)) in oods.iter().enumerate() {
                let curves: Vec<plot::Curve> = scores
                    .iter()
                    .map(|(m, id_s, ood_s)| plot::Curve {
                        name: m.clone(),
                        points: plot::roc(id_s, &ood_s[oi]),
                        auroc: super::metrics::auroc(id_s, &ood_s[oi]),
                    })
                    .collect();
                let safe: String = name
                    .chars()
                    .map(|c| if c.is_alphanumeric() || c == '-' { c } else { '_' })
                    .collect();
                plot::roc_plot(
                    &a.out.join(format!("roc-{safe}.png")),
                    &format!("ROC: in-distribution vs {name}"),
                    &curves,
                )
                .map_err(|e| anyhow::anyhow!("plotting: {e}"))?;
            }
            if let Some((_, id_s, ood_s)) = scores.iter().find(|s| s.0 == "lsgm") {
                let named: Vec<(String, Vec<f64>)> = oods
                    .iter()
                    .map(|o| o.0.clone())
                    .zip(ood_s.iter().cloned())
                    .collect();
                plot::histogram(
                    &a.out.join("histogram-lsgm.png"),
                    id_s,
                    &named,
                    model.threshold() as f64,
                )
                .map_err(|e| anyhow::anyhow!("plotting: {e}"))?;
            }
        }
        Err(e) => crate::say!("warning: {e}"),
    }
    let text = markdown(&report, &rows);
    crate::io::to_stdout(|w| w.write_all(text.as_bytes()))?;
    Ok(())
}

fn markdown(report: &serde_json::Value, rows: &[ResultRow]) -> String {
    let mut s = String::new();
    s.push_str("# OOD evaluation\n\n");
    s.push_str(&format!(
        "Model `{}` with `{}`; in-distribution set `{}` ({} frames{}).\n\n",
        report["model"]["onnx"].as_str().unwrap_or(""),
        report["model"]["lsgm"].as_str().unwrap_or(""),
        report["in"]["name"].as_str().unwrap_or(""),
        report["in"]["n"],
        report["in"]["accuracy"]
            .as_f64()
            .map(|a| format!(", classifier accuracy {:.2} %", 100.0 * a))
            .unwrap_or_default()
    ));
    s.push_str(
        "Convention: in-distribution is the positive class and a higher score means more in-distribution. ",
    );
    s.push_str("TNR@95 = fraction of OOD frames below the threshold that keeps 95 % of ID frames; AUPR-In/Out = average precision with ID/OOD as positive; Det. acc. = best ½(TPR + TNR).\n\n");
    s.push_str("| OOD set | n | method | AUROC | TNR@95 | AUPR-In | AUPR-Out | Det. acc. |\n|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let m = r.metrics;
        s.push_str(&format!(
            "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
            r.ood, r.n, r.method, m.auroc, m.tnr_at_95tpr, m.aupr_in, m.aupr_out, m.detection_accuracy
        ));
    }
    s
}
