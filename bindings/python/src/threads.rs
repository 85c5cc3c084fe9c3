//! `threads=`: the work of one call on a rayon pool of that many threads
//! (the fit's k-means and responsibilities, bulk scoring), or on rayon's
//! global pool (every core, or `RAYON_NUM_THREADS`) when not given.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

/// The most threads a call may ask for, as the tools' `--threads` (each
/// thread is an OS thread with its own stack: a typo such as `threads=10**6`
/// must be refused, not start a million threads).
pub const MAX_THREADS: usize = 256;

/// A `threads=` argument, checked where Python hands it over: an `int` in
/// `1..=MAX_THREADS`. A bool (Python's `True` is the int 1) and negative or
/// huge ints are refused with a message naming `threads=` (PyO3's own
/// conversion to `usize` says only "can't convert negative int to unsigned").
#[derive(Debug, Clone, Copy)]
pub struct Threads(usize);

impl<'a, 'py> FromPyObject<'a, 'py> for Threads {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let shown = || obj.repr().map_or_else(|_| "?".to_string(), |r| r.to_string());
        if obj.is_instance_of::<PyBool>() {
            return Err(PyTypeError::new_err(format!(
                "threads={}: expected a number of threads or None, not a bool",
                shown()
            )));
        }
        if !obj.is_instance_of::<PyInt>() {
            return Err(PyTypeError::new_err(format!(
                "threads={}: expected an int (1 to {MAX_THREADS}) or None",
                shown()
            )));
        }
        // An int beyond usize (negative or huge) fails to extract: out of range too.
        match obj.extract::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(Threads(n)),
            _ => Err(PyValueError::new_err(format!(
                "threads={}: give 1 to {MAX_THREADS} (more threads than cores only add memory), or None for every core",
                shown()
            ))),
        }
    }
}

/// Runs `f` on `threads` threads (`None`: the global pool). Messages `f`
/// writes through the core's `stderr_line` on the thread it runs on are
/// returned, not printed (`lsgm::frames::capture_lines`).
pub fn run<R: Send>(threads: Option<Threads>, f: impl FnOnce() -> R + Send) -> PyResult<(R, Vec<String>)> {
    let captured = || lsgm::frames::capture_lines(f);
    match threads {
        None => Ok(captured()),
        Some(Threads(n)) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| PyValueError::new_err(format!("threads={n}: cannot start the threads: {e}")))?;
            Ok(pool.install(captured))
        }
    }
}
