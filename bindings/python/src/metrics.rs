//! `lsgm.metrics`: `fit-and-export eval`'s OOD metrics of two score arrays.

use numpy::PyReadonlyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

fn scores(a: &PyReadonlyArray1<'_, f64>, what: &str) -> PyResult<Vec<f64>> {
    let v: Vec<f64> = a.as_array().iter().copied().collect();
    if v.is_empty() {
        return Err(PyValueError::new_err(format!("{what}: no scores")));
    }
    if let Some(i) = v.iter().position(|x| x.is_nan()) {
        return Err(PyValueError::new_err(format!("{what}[{i}] is NaN")));
    }
    Ok(v)
}

/// AUROC, TNR and FPR at 95 % TPR, AUPR-In, AUPR-Out and detection
/// accuracy of in-distribution scores against out-of-distribution ones
/// (higher = more in-distribution), as a dict named as `eval`'s JSON.
#[pyfunction]
pub fn metrics<'py>(
    py: Python<'py>,
    scores_in: PyReadonlyArray1<'py, f64>,
    scores_out: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let id = scores(&scores_in, "scores_in")?;
    let ood = scores(&scores_out, "scores_out")?;
    let m = py.detach(|| fit_and_export::eval::metrics::metrics(&id, &ood));
    let v = serde_json::to_value(m).map_err(|e| PyValueError::new_err(e.to_string()))?;
    crate::model::json_to_py(py, &v)
}
