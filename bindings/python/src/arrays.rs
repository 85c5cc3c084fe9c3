//! numpy arrays in and out. Features are one `(N, d_i)` float32 or float64
//! array per tap (any memory order); they become the `f64` matrices
//! `fit-and-export`'s fit reads from `.npy` files, checked as it checks
//! them: 2-D, not empty, finite, rows aligned across taps.

use nalgebra::DMatrix;
use numpy::{PyArrayDyn, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// The label of tap `i` in messages: `tap 1 ('stage2')`, or `tap 1`.
pub fn tap_label(i: usize, names: Option<&[String]>) -> String {
    match names.and_then(|n| n.get(i)) {
        Some(name) => format!("tap {i} ({name:?})"),
        None => format!("tap {i}"),
    }
}

/// `obj` as a native-order float32 or float64 numpy array: those as they
/// are, other array-likes through `numpy.asarray`, other byte orders
/// converted, integer, bool and float16 arrays widened to float64 (exactly);
/// anything else is a TypeError.
fn float_array<'py>(obj: &Bound<'py, PyAny>, label: &str) -> PyResult<Bound<'py, PyAny>> {
    if obj.cast::<PyArrayDyn<f32>>().is_ok() || obj.cast::<PyArrayDyn<f64>>().is_ok() {
        return Ok(obj.clone());
    }
    let a = obj.py().import("numpy")?.call_method1("asarray", (obj,))?;
    let dtype = a.getattr("dtype")?;
    let kind: String = dtype.getattr("kind")?.extract()?;
    let size: usize = dtype.getattr("itemsize")?.extract()?;
    match (kind.as_str(), size) {
        // Here only for other byte orders (big-endian) and array-likes: to native.
        ("f", 4) => a.call_method1("astype", ("float32",)),
        ("f", 8) => a.call_method1("astype", ("float64",)),
        ("i" | "u" | "b", _) | ("f", 2) => a.call_method1("astype", ("float64",)),
        _ => Err(PyTypeError::new_err(format!(
            "{label}: expected a float32 or float64 numpy array, got dtype {dtype}"
        ))),
    }
}

/// One tap's array as an `N × d` matrix (float32 values widen exactly).
fn matrix(obj: &Bound<'_, PyAny>, label: &str) -> PyResult<DMatrix<f64>> {
    let shape_err = |shape: &[usize]| {
        PyValueError::new_err(format!(
            "{label}: expected a 2-D array (rows × features), got shape {shape:?}"
        ))
    };
    let obj = float_array(obj, label)?;
    // `iter()` walks the logical (row-major) order whatever the strides.
    let (n, d, values): (usize, usize, Vec<f64>) = if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
        let r = a.readonly();
        let v = r.as_array();
        let [n, d] = *v.shape() else {
            return Err(shape_err(v.shape()));
        };
        (n, d, v.iter().map(|&x| f64::from(x)).collect())
    } else {
        let r = obj.cast::<PyArrayDyn<f64>>()?.readonly();
        let v = r.as_array();
        let [n, d] = *v.shape() else {
            return Err(shape_err(v.shape()));
        };
        (n, d, v.iter().copied().collect())
    };
    if n == 0 || d == 0 {
        return Err(PyValueError::new_err(format!(
            "{label}: the array is empty (shape ({n}, {d}))"
        )));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "{label}: row {}, column {} is {} — remove or impute non-finite rows",
            i / d,
            i % d,
            values[i]
        )));
    }
    // The core scores in float32: a finite float64 beyond its range would
    // become infinite there, and be refused as if it were.
    if let Some(i) = values.iter().position(|v| v.abs() > f64::from(f32::MAX)) {
        return Err(PyValueError::new_err(format!(
            "{label}: row {}, column {} is {:e}, beyond float32's range (±3.4e38) that the model scores in",
            i / d,
            i % d,
            values[i]
        )));
    }
    Ok(DMatrix::from_row_slice(n, d, &values))
}

/// Every tap's matrix, rows aligned across taps; at least one tap.
pub fn features(taps: &[Bound<'_, PyAny>], names: Option<&[String]>) -> PyResult<Vec<DMatrix<f64>>> {
    if taps.is_empty() {
        return Err(PyValueError::new_err(
            "features: expected a list of (N, d) arrays, one per tap in network order; got an empty list",
        ));
    }
    let mut layers: Vec<DMatrix<f64>> = Vec::with_capacity(taps.len());
    for (i, t) in taps.iter().enumerate() {
        let label = tap_label(i, names);
        let m = matrix(t, &label)?;
        if let Some(first) = layers.first() {
            if m.nrows() != first.nrows() {
                return Err(PyValueError::new_err(format!(
                    "{label} has {} rows but tap 0 has {}: rows must be aligned across taps (one row per frame)",
                    m.nrows(),
                    first.nrows()
                )));
            }
        }
        layers.push(m);
    }
    Ok(layers)
}
