//! `lsgm.Model`: a model file's bytes, validated once by the core, scored
//! by the core (`fit-and-export`'s bulk scorer, as `fit-and-export score`).

use crate::errors::{model_error, must_exist, value_error};
use crate::{arrays, threads};
use fit_and_export::inspect;
use fit_and_export::scoring::{check_taps, score_all_at, RowMajor, Scored};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::PathBuf;

/// A fitted LSGM model (immutable): the bytes of a model file.
#[pyclass(module = "lsgm", frozen)]
pub struct Model {
    bytes: Vec<u8>,
    /// `fit-and-export`'s JSON fit report, for a model fitted in this process.
    report: Option<String>,
}

impl Model {
    /// A model from file bytes, validated by the core (`what` names them in errors).
    pub fn new(bytes: Vec<u8>, report: Option<String>, what: &str) -> PyResult<Model> {
        lsgm::Model::from_bytes(&bytes).map_err(|e| model_error(what, e))?;
        Ok(Model { bytes, report })
    }

    /// The core's view (validated when the model was made: cannot fail).
    pub fn view(&self) -> PyResult<lsgm::Model<'_>> {
        lsgm::Model::from_bytes(&self.bytes).map_err(|e| model_error("model", e))
    }

    /// The file bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Scores every row as `fit-and-export score` does, after checking the
    /// taps against the model (count and widths, expected vs got).
    fn scored(
        &self,
        py: Python<'_>,
        features: Vec<Bound<'_, PyAny>>,
        threshold: Option<f32>,
        n_threads: Option<threads::Threads>,
    ) -> PyResult<Vec<Scored>> {
        let m = self.view()?;
        let names: Vec<String> = m.layers().iter().map(|l| l.name().to_string()).collect();
        let layers = arrays::features(&features, Some(&names))?;
        let widths: Vec<usize> = layers.iter().map(|x| x.ncols()).collect();
        check_taps(&m, &widths, "features").map_err(|e| value_error(&e))?;
        let rows = RowMajor::from_matrices(&layers);
        drop(layers);
        let (scored, _) = py.detach(|| threads::run(n_threads, || score_all_at(&m, &rows, threshold)))?;
        scored.map_err(|e| value_error(&e))
    }
}

#[pymethods]
impl Model {
    /// Reads a model file. FileNotFoundError if it does not exist, ModelError
    /// if it is not a valid model file.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Model> {
        must_exist(&path, "model file")?;
        let bytes = std::fs::read(&path).map_err(|e| {
            value_error(&anyhow::Error::new(e).context(format!("model file {}", path.display())))
        })?;
        Model::new(bytes, None, &path.display().to_string())
    }

    /// A model from the bytes of a model file (ModelError if they are not one).
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Model> {
        Model::new(data.to_vec(), None, "model bytes")
    }

    /// Writes the model file atomically (a temporary file renamed), as the CLI does.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        must_exist(&dir, "folder")?;
        fit_and_export::io::write_atomic(&path, &self.bytes).map_err(|e| value_error(&e))
    }

    /// The model file's bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.bytes)
    }

    /// Pickling: the file bytes.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let from_bytes = slf.get_type().getattr("from_bytes")?;
        Ok((from_bytes, (slf.get().to_bytes(slf.py()),)))
    }

    /// Score of every row, (N,) float64: the log joint likelihood, higher =
    /// more in-distribution; -3.4028235e38 for a row whose density overflows.
    #[pyo3(signature = (features, *, threads = None))]
    fn score_samples<'py>(
        &self,
        py: Python<'py>,
        features: Vec<Bound<'py, PyAny>>,
        threads: Option<threads::Threads>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let scored = self.scored(py, features, None, threads)?;
        Ok(scored
            .iter()
            .map(|s| f64::from(s.score))
            .collect::<Vec<_>>()
            .into_pyarray(py))
    }

    /// Each tap's share of every row's score, (N, L) float64 (rows sum to the score).
    #[pyo3(signature = (features, *, threads = None))]
    fn contributions<'py>(
        &self,
        py: Python<'py>,
        features: Vec<Bound<'py, PyAny>>,
        threads: Option<threads::Threads>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let scored = self.scored(py, features, None, threads)?;
        let l = self.view()?.num_layers();
        let v: Vec<f64> = scored
            .iter()
            .flat_map(|s| s.contributions.iter().map(|&c| f64::from(c)))
            .collect();
        let a =
            Array2::from_shape_vec((scored.len(), l), v).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py))
    }

    /// The monitor's verdict of every row, (N,) bool, True = out of
    /// distribution: score below `threshold`, or below the threshold whose
    /// expected false-positive rate is `fpr`; the calibrated threshold if
    /// neither is given.
    #[pyo3(signature = (features, *, threshold = None, fpr = None, threads = None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        features: Vec<Bound<'py, PyAny>>,
        threshold: Option<f64>,
        fpr: Option<f64>,
        threads: Option<threads::Threads>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let t = match (threshold, fpr) {
            (Some(_), Some(_)) => return Err(PyValueError::new_err("give threshold or fpr, not both")),
            (Some(t), None) if (t as f32).is_finite() => Some(t as f32),
            (Some(t), None) => {
                return Err(PyValueError::new_err(format!(
                    "threshold={t:e} is not a finite float32 (scores are float32: ±3.4e38 at most)"
                )))
            }
            (None, Some(f)) => Some(self.threshold_for_fpr(f)? as f32),
            (None, None) => None,
        };
        let scored = self.scored(py, features, t, threads)?;
        Ok(scored
            .iter()
            .map(|s| s.verdict.ood)
            .collect::<Vec<_>>()
            .into_pyarray(py))
    }

    /// The threshold whose expected false-positive rate on in-distribution
    /// rows is `fpr`, interpolated from the model's held-out quantiles.
    fn threshold_for_fpr(&self, fpr: f64) -> PyResult<f64> {
        let m = self.view()?;
        let range = |m: &lsgm::Model<'_>| {
            let q: Vec<f32> = m.quantiles().map(|(q, _)| q).collect();
            match (q.first(), q.last()) {
                (Some(a), Some(b)) => format!("[{a}, {b}]"),
                _ => "none: the model stores no quantiles".into(),
            }
        };
        m.threshold_for_fpr(fpr as f32).map(f64::from).ok_or_else(|| {
            PyValueError::new_err(format!(
                "fpr={fpr} is outside the false-positive rates the model's quantiles cover ({})",
                range(&m)
            ))
        })
    }

    /// The calibrated threshold: a score below it is out of distribution.
    #[getter]
    fn threshold(&self) -> PyResult<f64> {
        Ok(f64::from(self.view()?.threshold()))
    }

    /// Each tap: Layer(name, input_width, width, components, pooling, grid).
    #[getter]
    fn layers<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let layer = py.import("lsgm._lsgm")?.getattr("Layer")?;
        let m = self.view()?;
        // Pooling as `info()["layers"][i]["pooling"]` names it.
        m.layers()
            .iter()
            .map(|l| {
                layer.call1((
                    l.name(),
                    l.dim_in(),
                    l.dim(),
                    l.components(),
                    l.pooling().name(),
                    l.pooling().side(),
                ))
            })
            .collect()
    }

    /// How frames become the network's input (a dict), or None for a model
    /// fitted from features.
    #[getter]
    fn preprocess<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.info_value()?["preprocess"])
    }

    /// Everything `fit-and-export inspect --json` prints, as a dict.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.info_value()?)
    }

    /// `fit-and-export fit-features`' JSON report of the fit (a dict) for a
    /// model fitted in this process, else None.
    #[getter]
    fn fit_report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.report {
            Some(r) => py.import("json")?.call_method1("loads", (r,)),
            None => Ok(py.None().into_bound(py)),
        }
    }

    fn __repr__(&self) -> PyResult<String> {
        let m = self.view()?;
        let taps: Vec<&str> = m.layers().iter().map(|l| l.name()).collect();
        Ok(format!(
            "lsgm.Model({} taps [{}], threshold {}, {} bytes)",
            m.num_layers(),
            taps.join(", "),
            m.threshold(),
            self.bytes.len()
        ))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Model>().is_ok_and(|o| o.get().bytes == self.bytes)
    }
}

impl Model {
    fn info_value(&self) -> PyResult<serde_json::Value> {
        Ok(inspect::json(&self.view()?, &self.bytes))
    }
}

/// A JSON value as Python objects (through the `json` module: one parser).
pub fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (v.to_string(),))
}
