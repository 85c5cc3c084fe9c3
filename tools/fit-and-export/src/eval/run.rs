//! The eval pipeline: choose the detectors, extract the sets, fit and score
//! every detector, report.

use super::detector::{Detector, TrainingData};
use super::head;
use super::report::{self, Header, Scored};
use super::select::{self, known_names, needing, MethodArg};
use super::sets::{self, Extractor, Sets};
use crate::extract::Extraction;
use anyhow::{Context, Result};
use lsgm::frames::Notes;
use lsgm::onnx::{check, Probabilities};
use lsgm::Model;
use std::path::PathBuf;

/// What to evaluate (the `eval` command's flags).
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// ONNX classifier.
    #[arg(long)]
    pub onnx: PathBuf,
    /// LSGM model file.
    #[arg(long)]
    pub lsgm: PathBuf,
    /// In-distribution test images, one path: an image, a directory of images (subfolders included,
    /// in path order), IDX (.gz) or .npy, or a pipe holding one.
    #[arg(long = "in", value_name = "PATH")]
    pub in_data: PathBuf,
    /// IDX labels of --in (reports the classifier's accuracy).
    #[arg(long)]
    pub in_labels: Option<PathBuf>,
    /// OOD set: NAME=PATH (any loader format), or gaussian, rademacher, blobs. Repeatable.
    #[arg(long, required = true)]
    pub ood: Vec<String>,
    /// Detectors, a comma list of [`known_names`] (an unknown name is a usage error).
    #[arg(long, value_delimiter = ',', default_value = "all", help = methods_help())]
    pub methods: Vec<MethodArg>,
    /// In-distribution training images, for the detectors fitted on them.
    #[arg(long, help = format!("In-distribution training images (for {})", needing(|n| n.train)))]
    pub train: Option<PathBuf>,
    /// IDX labels of --train, for the detectors that need classes.
    #[arg(long, help = format!("IDX labels of --train (for {})", needing(|n| n.train_labels)))]
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

fn methods_help() -> String {
    format!("Detectors: {}, comma-separated", known_names())
}

/// Runs the evaluation and writes `report.json`, `report.md` and plots
/// into `--out`. A folder this run created is removed again if the run fails
/// before writing into it (it is only removed while empty).
pub fn run(a: &EvalArgs) -> Result<()> {
    let created = !a.out.exists();
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let result = evaluate(a);
    if result.is_err() && created {
        let _ = std::fs::remove_dir(&a.out);
    }
    result
}

fn evaluate(a: &EvalArgs) -> Result<()> {
    crate::io::check_output(&a.out.join("report.json"))?;
    let bytes = std::fs::read(&a.lsgm).with_context(|| format!("cannot read {}", a.lsgm.display()))?;
    let model = Model::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", a.lsgm.display()))?;
    let mut checked = check(&model, &a.onnx)?;
    let notes = Notes::default();
    checked.notes.iter().for_each(|n| notes.say(n));
    let chosen = select::select(&a.methods, model.num_layers())?;
    // Reads the head from the checked graph and, when its input is not the
    // last tap, taps it too: the network is loaded and optimised once.
    let linear = head::load_for(&chosen, &mut checked, &model, &notes);
    let found = linear.as_ref().and_then(|l| l.as_ref().ok());
    let logits = checked.graph.logits.clone();
    let bound = checked.build(&a.extract.engine()?)?;

    let ex = Extractor {
        net: &bound.network,
        spec: &bound.preprocess,
        opts: Extraction {
            threads: a.extract.threads(),
            logits: true,
        },
        notes: &notes,
        penultimate: found.is_some_and(|h| h.features == head::Penultimate::Extra),
    };
    let sets = sets::extract_sets(a, &ex)?;
    let train = sets::training_set(a, &ex, &chosen)?;
    let no_head = linear.as_ref().and_then(|l| l.as_ref().err());
    let unknown = logits.probabilities == Probabilities::Unknown;
    let no_logits = logits.note.as_deref().filter(|_| unknown);
    let chosen = sets::fittable(chosen, train.as_ref(), no_head.map(String::as_str), no_logits);
    let data = TrainingData {
        model: &model,
        train: train.as_ref().map(|t| &t.features),
        labels: train.as_ref().and_then(|t| t.labels.as_deref()),
        head: found,
        probabilities: logits.probabilities,
    };
    let scores = score(&chosen, &data, &sets, &logits.tensor)?;

    let header = Header {
        onnx: &a.onnx,
        lsgm: &a.lsgm,
        source: model.source(),
        in_data: &a.in_data,
        head: found.map(|h| h.about.as_str()),
        logits: &logits,
        threshold: model.threshold() as f64,
        calibration_tpr: model.calibration_tpr() as f64,
    };
    let text = report::write(&a.out, &header, &sets, &scores)?;
    report::plots(&a.out, &sets, &scores, model.threshold() as f64)?;
    crate::io::to_stdout(|w| w.write_all(text.as_bytes()))?;
    Ok(())
}

/// Fits every detector on `data` and scores every set with it; those that
/// read the logits record their tensor, `logits`.
fn score(
    detectors: &[Box<dyn Detector>],
    data: &TrainingData,
    sets: &Sets,
    logits: &str,
) -> Result<Vec<Scored>> {
    detectors
        .iter()
        .map(|d| {
            let method = d.name();
            crate::say!("scoring {method}");
            let fitted = d.fit(data)?;
            let id = fitted.score(&sets.id)?;
            let ood = sets
                .oods
                .iter()
                .map(|o| fitted.score(&o.1))
                .collect::<Result<_>>()?;
            Ok(Scored {
                logits: d.needs().logits.then(|| logits.to_string()),
                method,
                id,
                ood,
            })
        })
        .collect()
}
