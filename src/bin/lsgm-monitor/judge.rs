//! Judging one frame: preprocessing, tract inference with the taps, pooling
//! and the LSGM score. [`Shared`] is built once and read by every worker;
//! each worker owns a [`Judge`] (its tract state and buffers), so the hot
//! path shares nothing mutable but the once-only notes.

use anyhow::{Context, Result};
use lsgm::frames::{self, Notes};
use lsgm::model::InputBuffer;
use lsgm::onnx::{Bound, Output, Runner};
use lsgm::{Model, Verdict};
use std::time::{Duration, Instant};

/// Everything the workers read: the model, the bound network, the threshold.
pub struct Shared<'m> {
    pub model: Model<'m>,
    pub bound: Bound,
    pub threshold: f32,
    pub notes: Notes,
}

impl<'m> Shared<'m> {
    /// Binds `model` to the network at `onnx`, run by `engine`, and picks the threshold:
    /// `threshold` if given, else the one flagging `fpr` of in-distribution
    /// frames, else the calibrated one.
    pub fn new(
        model: Model<'m>,
        onnx: &std::path::Path,
        engine: &lsgm::onnx::Engine,
        threshold: Option<f32>,
        fpr: Option<f32>,
    ) -> Result<Self> {
        let bound = lsgm::onnx::bind(&model, onnx, engine)?;
        let notes = Notes::default();
        for n in &bound.notes {
            notes.say(n);
        }
        let threshold = match (threshold, fpr) {
            (Some(t), _) => t,
            (None, Some(f)) => model.threshold_for_fpr(f).with_context(|| {
                let qs: Vec<f32> = model.quantiles().map(|q| q.0).collect();
                format!("--fpr {f} is outside the stored quantiles {qs:?}")
            })?,
            (None, None) => model.threshold(),
        };
        Ok(Shared {
            model,
            bound,
            threshold,
            notes,
        })
    }

    /// A worker's own state: one tract state and input tensor for the run.
    pub fn judge(&self) -> Result<Judge<'_, 'm>> {
        Ok(Judge {
            runner: self.bound.network.runner()?,
            input: self.bound.preprocess.buffer(),
            scratch: vec![0.0; self.model.scratch_len()],
            contributions: vec![0.0; self.model.num_layers()],
            out: Output::default(),
            shared: self,
        })
    }
}

/// One judged frame.
pub struct Judged {
    /// The network's top class (`None` when its ending cannot be read: the
    /// order of its output's values is not known either).
    pub class: Option<usize>,
    /// The network's own probability for `class` (`None` when the network's
    /// ending cannot be read: see [`lsgm::onnx::Probabilities`]).
    pub confidence: Option<f32>,
    pub verdict: Verdict,
    /// Per-layer contributions (`layers` in the output).
    pub contributions: Vec<f32>,
    pub inference: Duration,
    pub scoring: Duration,
}

/// A worker's state.
pub struct Judge<'s, 'm> {
    shared: &'s Shared<'m>,
    runner: Runner,
    input: InputBuffer,
    out: Output,
    scratch: Vec<f32>,
    contributions: Vec<f32>,
}

impl Judge<'_, '_> {
    /// Classifies and judges one frame.
    pub fn frame(&mut self, frame: &frames::Frame) -> Result<Judged> {
        let shared = self.shared;
        let adjusted = frames::to_input(frame, &shared.bound.preprocess, &mut self.input)?;
        for n in adjusted.notes(&shared.bound.preprocess) {
            shared.notes.say(&n);
        }
        self.runner.run(&self.input, &mut self.out)?;
        let t0 = Instant::now();
        let refs: [&[f32]; lsgm::MAX_LAYERS] =
            std::array::from_fn(|i| self.out.features.get(i).map_or(&[][..], Vec::as_slice));
        let verdict = shared
            .model
            .judge(
                &refs[..shared.model.num_layers()],
                &mut self.scratch,
                &mut self.contributions,
                Some(shared.threshold),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let scoring = t0.elapsed() + self.out.pooling;
        let top = shared.bound.network.probabilities.top_class(&self.out.logits);
        let (class, confidence) = (top.map(|(c, _)| c), top.map(|(_, p)| p));
        Ok(Judged {
            class,
            confidence,
            verdict,
            contributions: self.contributions.clone(),
            inference: self.out.inference,
            scoring,
        })
    }
}
