//! `fit-and-export eval`: how well LSGM and the usual detectors separate
//! in-distribution frames from OOD ones, with the numbers and pictures that
//! papers in this field show.
//!
//! [`run`] goes in phases: [`select::select`] turns `--methods` into
//! detectors of the [`detectors::REGISTRY`]; [`sets`] extracts the
//! in-distribution, OOD and (when needed) training sets; every detector is
//! fitted on [`detector::TrainingData`] (with the classifier's final linear
//! layer from [`head`] when a detector needs it) and scores every set;
//! [`report`] writes the metrics and plots.

pub mod detector;
pub mod detectors;
pub mod head;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod run;
pub mod select;
pub mod sets;
pub mod synthetic;
