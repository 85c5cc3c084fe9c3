//! The model file: header, postcard wire format, validated view and (with
//! `alloc`) the owned builder that encodes it.

mod header;
#[cfg(feature = "alloc")]
mod pack;
pub mod preprocess;
#[cfg(feature = "alloc")]
mod spec;
mod view;
pub mod wire;

pub use header::{field, header, resign, FORMAT_VERSION, HEADER_LEN, MAGIC, OLDEST_READ_VERSION};
#[cfg(feature = "alloc")]
pub use preprocess::{InputBuffer, Preprocess};
#[cfg(feature = "alloc")]
pub use spec::{ComponentSpec, LayerSpec, ModelSpec, PackedModel, ProjectionSpec};
pub use view::{LayerView, Model};
