//! tract ONNX inference with tapped hidden layers.
//!
//! [`Graph`] loads an ONNX classifier once (by path, so external weight
//! files are found), fixes its input to one frame, infers every tensor's
//! shape, finds the class logits and how the network turns them into
//! probabilities (reading through a final Softmax or Sigmoid), lists
//! the candidate taps with their channel layout and picks the paper's
//! default ([`Graph::auto_taps`]). [`Network`] is the optimised runnable
//! that returns the logits and every tapped tensor from one inference,
//! pooled into feature vectors by [`crate::pool`] — the same code on the
//! host and on the board. [`bind`] loads a network for a fitted model and
//! checks that they belong together.

mod bind;
mod ending;
mod gemm;
mod graph;
mod head;
mod layout;
mod load;
mod logits;
mod network;
mod stages;

pub use bind::{bind, check, Bound, Checked};
pub use graph::{Graph, Input, LoadOptions, Logits, Tap};
pub use head::LinearHead;
pub use logits::Probabilities;
pub use network::{Network, Output, Runner};
