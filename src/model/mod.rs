//! The model file: header, postcard wire format, validated view and (with
//! `alloc`) the owned builder that encodes it.

mod header;
#[cfg(feature = "alloc")]
mod pack;
#[cfg(feature = "alloc")]
mod spec;
mod view;
pub mod wire;

pub use header::{FORMAT_VERSION, HEADER_LEN, MAGIC};
#[cfg(feature = "alloc")]
pub use spec::{ComponentSpec, LayerSpec, ModelSpec, PreprocessSpec, ProjectionSpec};
pub use view::{LayerView, Model};
