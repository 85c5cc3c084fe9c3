//! Rust errors as Python exceptions: a damaged or foreign model file is
//! [`ModelError`] (a `ValueError`), a missing file `FileNotFoundError`,
//! other bad input `ValueError`; the message is the tools' own, with its
//! chain of causes (`{:#}`).

use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyUserWarning, PyValueError};
use pyo3::PyErr;

create_exception!(
    lsgm,
    ModelError,
    PyValueError,
    "A damaged, truncated or foreign model file (not one `fit-and-export` or `lsgm.fit` wrote)."
);
create_exception!(
    lsgm,
    ConvergenceWarning,
    PyUserWarning,
    "A fit that did not converge, or whose held-out rows it fits badly (the tools' `warning:` lines)."
);
create_exception!(
    lsgm,
    Note,
    PyUserWarning,
    "What the tools say once about a fit or a network (their `note:` lines): projections, conversions."
);

/// The exception for a model file the core refuses, with the hint the
/// command-line tools give for a file that is not a model at all.
pub fn model_error(what: &str, e: lsgm::Error) -> PyErr {
    let hint = match e {
        lsgm::Error::BadMagic | lsgm::Error::Decode => {
            " (is it an .lsgm file written by fit-and-export or lsgm.fit?)"
        }
        _ => "",
    };
    ModelError::new_err(format!("{what}: {e}{hint}"))
}

/// `FileNotFoundError` when the chain of causes holds a missing file,
/// else `ValueError`.
pub fn value_error(e: &anyhow::Error) -> PyErr {
    let missing = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    });
    if missing {
        PyFileNotFoundError::new_err(format!("{e:#}"))
    } else {
        PyValueError::new_err(format!("{e:#}"))
    }
}

/// `FileNotFoundError` naming `path` (what it should be) unless it exists.
pub fn must_exist(path: &std::path::Path, what: &str) -> Result<(), PyErr> {
    if path.exists() {
        Ok(())
    } else {
        Err(PyFileNotFoundError::new_err(format!(
            "{what} {} does not exist",
            path.display()
        )))
    }
}
