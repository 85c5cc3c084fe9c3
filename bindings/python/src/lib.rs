//! `lsgm._lsgm`: the native half of the Python package `lsgm`.
//!
//! A thin layer over the `lsgm` core and `fit-and-export`'s library: every
//! fit, score, metric and extraction is theirs, so a model fitted or scored
//! here is byte for byte the one the command-line tools and the board use.
//! This crate only converts numpy arrays and Python arguments, releases the
//! GIL around the work, and turns errors into Python exceptions
//! (`errors.rs`). The Python half (`python/lsgm/__init__.py`) gives the
//! functions their keyword signatures and turns captured messages into
//! Python warnings.

use pyo3::prelude::*;

mod arrays;
mod errors;
mod fit;
mod metrics;
mod model;
mod network;
mod threads;

#[pymodule]
fn _lsgm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ModelError", py.get_type::<errors::ModelError>())?;
    m.add("ConvergenceWarning", py.get_type::<errors::ConvergenceWarning>())?;
    m.add("Note", py.get_type::<errors::Note>())?;
    let fields = ["name", "input_width", "width", "components", "pooling", "grid"];
    let layer = py
        .import("collections")?
        .getattr("namedtuple")?
        .call1(("Layer", fields))?;
    layer.setattr("__module__", "lsgm")?;
    m.add("Layer", layer)?;
    m.add_class::<model::Model>()?;
    m.add_class::<network::Network>()?;
    m.add_function(wrap_pyfunction!(fit::fit, m)?)?;
    m.add_function(wrap_pyfunction!(fit::fit_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::metrics, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
