//! The eval pipeline's extraction phases: the in-distribution set, the OOD
//! sets and (when a chosen detector needs it) the training set, as features
//! and logits with the labels their label files give.

use super::detector::{Detector, Needs, SetFeatures};
use super::run::EvalArgs;
use super::synthetic::{self, Synthetic};
use crate::extract::{self, Extraction, Source};
use anyhow::{bail, ensure, Result};
use lsgm::frames::{Frame, Notes};
use lsgm::onnx::Network;
use lsgm::Preprocess;
use nalgebra::DMatrix;
use std::path::Path;

/// How frames become features in this run: the bound network, its
/// preprocessing, the extraction options (always with logits) and the notes.
pub struct Extractor<'a> {
    /// The classifier with the model's taps.
    pub net: &'a Network,
    /// The model's preprocessing.
    pub spec: &'a Preprocess,
    /// Threads; `logits` must be on.
    pub opts: Extraction,
    /// What was done to frames, said once.
    pub notes: &'a Notes,
    /// `net` has one tap more than the model, the classifier's penultimate
    /// features ([`super::head::Penultimate::Extra`]).
    pub penultimate: bool,
}

/// A set's features with the labels of its label file, if one was given.
pub struct Labelled {
    /// `N` frames' features and logits.
    pub features: SetFeatures,
    /// `N` labels.
    pub labels: Option<Vec<u8>>,
}

impl Extractor<'_> {
    /// The frames of a file or directory, with their labels when `source` has a label file.
    pub fn source(&self, source: &Source) -> Result<Labelled> {
        let mut ex = extract::extract_source(self.net, self.spec, source, &self.opts, self.notes)?;
        let labels = ex.labels.take();
        Ok(Labelled {
            features: self.features(ex),
            labels,
        })
    }

    /// Frames already in memory (generated sets).
    pub fn frames(&self, frames: &[Frame]) -> Result<SetFeatures> {
        let ex = extract::extract(self.net, self.spec, frames, &self.opts, self.notes)?;
        Ok(self.features(ex))
    }

    fn features(&self, mut ex: extract::Extracted) -> SetFeatures {
        let penultimate = match self.penultimate {
            true => ex.layers.pop(),
            false => None,
        };
        SetFeatures {
            layers: ex.layers,
            logits: ex.logits.expect("extracted with logits"),
            penultimate,
        }
    }
}

/// The sets every detector scores.
pub struct Sets {
    /// The `--in` frames.
    pub id: SetFeatures,
    /// The classifier's accuracy on them, with `--in-labels`.
    pub accuracy: Option<f64>,
    /// Every `--ood` set with its name, in the order given.
    pub oods: Vec<(String, SetFeatures)>,
}

/// One `--ood` value.
enum OodSpec<'a> {
    Files { name: &'a str, path: &'a Path },
    Generated(Synthetic),
}

fn parse_ood(o: &str) -> Result<OodSpec<'_>> {
    Ok(match (o.split_once('='), Synthetic::parse(o)) {
        (Some((name, path)), _) => OodSpec::Files {
            name,
            path: Path::new(path),
        },
        (None, Some(kind)) => OodSpec::Generated(kind),
        (None, None) => bail!("--ood {o:?}: expected NAME=PATH or one of gaussian, rademacher, blobs"),
    })
}

/// Extracts `--in` (with the classifier's accuracy on `--in-labels`) and every `--ood` set.
pub fn extract_sets(a: &EvalArgs, ex: &Extractor) -> Result<Sets> {
    ensure!(
        !a.ood.is_empty(),
        "give at least one --ood NAME=PATH or --ood gaussian|rademacher|blobs"
    );
    let specs: Vec<OodSpec> = a.ood.iter().map(|o| parse_ood(o)).collect::<Result<_>>()?;
    crate::say!("extracting in-distribution set {}", a.in_data.display());
    let id = ex.source(&Source {
        path: &a.in_data,
        labels: a.in_labels.as_deref(),
        classes: None,
    })?;
    let accuracy = id.labels.as_deref().map(|l| accuracy(&id.features.logits, l));
    let oods = specs
        .iter()
        .map(|s| extract_ood(a, ex, s))
        .collect::<Result<_>>()?;
    Ok(Sets {
        id: id.features,
        accuracy,
        oods,
    })
}

/// Fraction of rows of `N × classes` logits whose argmax is their label.
fn accuracy(logits: &DMatrix<f64>, labels: &[u8]) -> f64 {
    let argmax = |r: &mut dyn Iterator<Item = &f64>| {
        r.enumerate()
            .fold((0, f64::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
            .0
    };
    let correct = logits
        .row_iter()
        .zip(labels)
        .filter(|(r, &y)| argmax(&mut r.iter()) == y as usize)
        .count();
    correct as f64 / labels.len() as f64
}

fn extract_ood(a: &EvalArgs, ex: &Extractor, spec: &OodSpec) -> Result<(String, SetFeatures)> {
    match *spec {
        OodSpec::Files { name, path } => {
            crate::say!("extracting OOD set {name} ({})", path.display());
            Ok((name.to_string(), ex.source(&Source::all(path))?.features))
        }
        OodSpec::Generated(kind) => {
            let (h, w) = (ex.spec.height as usize, ex.spec.width as usize);
            let frames = synthetic::generate(kind, a.synthetic, h, w, ex.spec.channels(), a.seed);
            let name = kind.name().to_string();
            ensure!(!frames.is_empty(), "OOD set {name} is empty");
            crate::say!(
                "extracting OOD set {name} ({})",
                crate::count(frames.len(), "frame", "frames")
            );
            Ok((name, ex.frames(&frames)?))
        }
    }
}

/// The `--train` set (with `--train-labels`, restricted to `--classes`),
/// extracted only when one of `detectors` needs it and `--train` was given.
pub fn training_set(
    a: &EvalArgs,
    ex: &Extractor,
    detectors: &[Box<dyn Detector>],
) -> Result<Option<Labelled>> {
    let (true, Some(path)) = (detectors.iter().any(|d| d.needs().train), &a.train) else {
        return Ok(None);
    };
    crate::say!("extracting training set {}", path.display());
    let source = Source {
        path,
        labels: a.train_labels.as_deref(),
        classes: a.classes.as_deref(),
    };
    ex.source(&source).map(Some)
}

/// `detectors` without those whose training data was not given, that need
/// the final linear layer when `no_head` says why there is none, or that
/// read the logits when `no_logits` says why the network's output cannot be
/// read back to them; each such group said in a warning.
pub fn fittable(
    detectors: Vec<Box<dyn Detector>>,
    train: Option<&Labelled>,
    no_head: Option<&str>,
    no_logits: Option<&str>,
) -> Vec<Box<dyn Detector>> {
    let kept = skip(detectors, "--train", train.is_some(), |n| n.train);
    let labelled = train.is_some_and(|t| t.labels.is_some());
    let kept = skip(kept, "--train-labels", labelled, |n| n.train_labels);
    let why = format!(
        "the classifier's final linear layer ({})",
        no_head.unwrap_or_default()
    );
    let kept = skip(kept, &why, no_head.is_none(), |n| n.head);
    let why = format!("the classifier's logits ({})", no_logits.unwrap_or_default());
    skip(kept, &why, no_logits.is_none(), |n| n.logits)
}

fn skip(
    detectors: Vec<Box<dyn Detector>>,
    flag: &str,
    given: bool,
    needs: fn(Needs) -> bool,
) -> Vec<Box<dyn Detector>> {
    if given {
        return detectors;
    }
    let (skipped, kept): (Vec<_>, Vec<_>) = detectors.into_iter().partition(|d| needs(d.needs()));
    let names: Vec<String> = skipped.iter().map(|d| d.name()).collect();
    match names.as_slice() {
        [] => {}
        [one] => crate::say!("warning: {one} needs {flag}; skipping it"),
        [first @ .., last] => crate::say!(
            "warning: {} and {last} need {flag}; skipping them",
            first.join(", ")
        ),
    }
    kept
}
