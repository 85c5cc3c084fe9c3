//! `fit-and-export eval`: how well LSGM and the usual detectors separate
//! in-distribution frames from OOD ones, with the numbers and pictures that
//! papers in this field show.

pub mod methods;
pub mod metrics;
pub mod plot;
pub mod run;
pub mod synthetic;
