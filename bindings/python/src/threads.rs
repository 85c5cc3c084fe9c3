//! `threads=`: the work of one call on a rayon pool of that many threads
//! (the fit's k-means and responsibilities, bulk scoring), or on rayon's
//! global pool (every core, or `RAYON_NUM_THREADS`) when not given.

use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

/// The most threads a call may ask for, as the tools' `--threads` (each
/// thread is an OS thread with its own stack: a typo such as `threads=10**6`
/// must be refused, not start a million threads).
pub const MAX_THREADS: usize = 256;

/// Runs `f` on `threads` threads (`None`: the global pool). Messages `f`
/// writes through the core's `stderr_line` on the thread it runs on are
/// returned, not printed (`lsgm::frames::capture_lines`).
pub fn run<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> PyResult<(R, Vec<String>)> {
    let captured = || lsgm::frames::capture_lines(f);
    match threads {
        None => Ok(captured()),
        Some(n) if n == 0 || n > MAX_THREADS => Err(PyValueError::new_err(format!(
            "threads={n}: give 1 to {MAX_THREADS} (more threads than cores only add memory), or None for every core"
        ))),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| PyValueError::new_err(format!("threads={n}: cannot start the threads: {e}")))?;
            Ok(pool.install(captured))
        }
    }
}
