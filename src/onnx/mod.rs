//! ONNX inference with tapped hidden layers, on tract or onnxruntime.
//!
//! [`Graph`] loads an ONNX classifier once (by path, so external weight
//! files are found), fixes its input to one frame, infers every tensor's
//! shape, finds the class logits and how the network turns them into
//! probabilities (reading through a final Softmax or Sigmoid), lists
//! the candidate taps with their channel layout and picks the paper's
//! default ([`Graph::auto_taps`]) — with tract, whatever engine runs the
//! network. [`Network`] is the network built for an [`Engine`] (tract, or
//! onnxruntime loaded at run time: `engine.rs`, `tract.rs`,
//! `onnxruntime.rs`) that returns the logits and every tapped tensor from one inference,
//! pooled into feature vectors by [`crate::pool`] — the same code on the
//! host and on the board. [`bind`] loads a network for a fitted model and
//! checks that they belong together.

mod bind;
mod ending;
mod engine;
mod gemm;
mod graph;
mod head;
mod layout;
mod load;
mod logits;
mod network;
#[cfg(feature = "onnxruntime")]
mod onnxruntime;
mod stages;
mod tract;

pub use bind::{bind, check, Bound, Checked};
#[cfg(feature = "clap")]
pub use engine::EngineArgs;
pub use engine::{Engine, EngineKind, ExecutionProvider};
pub use graph::{Graph, Input, LoadOptions, Logits, Tap};
pub use head::LinearHead;
pub use logits::Probabilities;
pub use network::{Network, Output, Runner};
