//! tract ONNX inference with tapped hidden layers.
//!
//! [`Graph`] loads an ONNX classifier once, infers every tensor's shape for a
//! single frame, lists the candidate taps and picks the paper's default
//! ([`Graph::auto_taps`]). [`Network`] is the optimised runnable that returns
//! the logits and every tapped tensor from one inference, pooled into
//! feature vectors by [`crate::pool`] — the same code on the host and on the
//! board.

mod graph;
mod network;

pub use graph::{Graph, Tap};
pub use network::{Network, Output};
