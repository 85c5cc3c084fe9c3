//! `lsgm.Network`: an ONNX classifier's pooled taps of uint8 frames, through
//! the engine code the monitor runs (`lsgm::onnx::Network`) and
//! `fit-and-export features`' extraction, so features made here fit the
//! model the monitor will run.

use crate::errors::{must_exist, value_error};
use crate::fit::flag_error;
use crate::model::{json_to_py, Model};
use crate::threads;
use clap::Parser;
use fit_and_export::cli::{ExtractArgs, InputArgs};
use fit_and_export::extract::{self, Extraction};
use lsgm::frames::{Frame, Notes, Pixels};
use lsgm::model::wire::Pooling;
use lsgm::model::Preprocess;
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::path::PathBuf;

/// `features`' input and engine flags.
#[derive(Parser)]
#[command(name = "lsgm.Network", no_binary_name = true, disable_help_flag = true)]
struct NetworkFlags {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    extract: ExtractArgs,
}

/// A network loaded for extraction, its taps and preprocessing fixed.
#[pyclass(module = "lsgm", name = "_Network", frozen)]
pub struct Network {
    net: lsgm::onnx::Network,
    preprocess: Preprocess,
    /// The ONNX file's identity, as a model fitted for it records it.
    identity: String,
    threads: Option<usize>,
}

impl Network {
    /// What `lsgm.fit(…, network=)` stores so the monitor can run the model
    /// on this network: tap names, poolings, preprocessing and identity,
    /// after checking the features' widths against the taps.
    pub fn for_fit(&self, widths: &[usize]) -> PyResult<(Vec<String>, Vec<Pooling>, Preprocess, String)> {
        let taps = &self.net.taps;
        if widths.len() != taps.len() {
            return Err(PyValueError::new_err(format!(
                "features: got {} arrays but the network has {} taps ({}), one per tap in that order",
                widths.len(),
                taps.len(),
                taps.join(", ")
            )));
        }
        for (i, (&got, &want)) in widths.iter().zip(&self.net.tap_dims).enumerate() {
            if got != want {
                return Err(PyValueError::new_err(format!(
                    "tap {i} ({:?}): features have {got} columns, the network's tap gives {want}",
                    taps[i]
                )));
            }
        }
        let poolings = self.net.poolings().to_vec();
        Ok((
            taps.clone(),
            poolings,
            self.preprocess.clone(),
            self.identity.clone(),
        ))
    }
}

/// One frame from an `(H, W)` or `(H, W, C)` uint8 array (C = 1 or 3).
fn frame(obj: &Bound<'_, PyAny>, i: usize) -> PyResult<Frame> {
    let Ok(a) = obj.cast::<PyArrayDyn<u8>>() else {
        let dtype = obj
            .cast::<numpy::PyUntypedArray>()
            .map(|a| a.dtype().to_string())
            .unwrap_or_else(|_| "not a numpy array".into());
        return Err(PyTypeError::new_err(format!(
            "frame {i}: expected a uint8 numpy array (pixels 0–255), got {dtype}"
        )));
    };
    let r = a.readonly();
    let v = r.as_array();
    let (height, width, channels) = match *v.shape() {
        [h, w] => (h, w, 1),
        [h, w, c @ (1 | 3)] => (h, w, c),
        ref s => {
            return Err(PyValueError::new_err(format!(
                "frame {i}: expected (H, W) or (H, W, C) with C = 1 or 3, got shape {s:?}"
            )))
        }
    };
    if height == 0 || width == 0 {
        return Err(PyValueError::new_err(format!(
            "frame {i}: empty ({height} × {width})"
        )));
    }
    Ok(Frame {
        source: format!("frame {i}"),
        height,
        width,
        channels,
        pixels: Pixels::U8(v.iter().copied().collect()),
    })
}

/// Frames from an `(N, H, W[, C])` uint8 array or a sequence of `(H, W[, C])` ones.
fn frames(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Frame>> {
    let items: Vec<Bound<'_, PyAny>> = obj.try_iter()?.collect::<PyResult<_>>()?;
    if items.is_empty() {
        return Err(PyValueError::new_err("frames: no frames"));
    }
    items.iter().enumerate().map(|(i, f)| frame(f, i)).collect()
}

#[pymethods]
impl Network {
    /// Loads `onnx_path` with the taps and preprocessing of `model` (an
    /// lsgm.Model fitted for it, checked against it as the monitor does) or
    /// of the input flags (`flags`: `fit-and-export features`' flags).
    /// Returns the network and what loading it said (notes) for the wrapper.
    #[staticmethod]
    #[pyo3(signature = (onnx_path, model = None, flags = Vec::new()))]
    fn open(
        py: Python<'_>,
        onnx_path: PathBuf,
        model: Option<&Bound<'_, Model>>,
        flags: Vec<String>,
    ) -> PyResult<(Network, Vec<String>)> {
        must_exist(&onnx_path, "ONNX file")?;
        let f = NetworkFlags::try_parse_from(&flags).map_err(|e| flag_error(&e))?;
        let given = f.input.given();
        if model.is_some() && !given.is_empty() {
            return Err(PyValueError::new_err(format!(
                "model= gives the taps and the preprocessing; drop {}",
                given.join(", ").replace("--", "").replace('-', "_")
            )));
        }
        let bytes = model.map(|m| m.get().bytes().to_vec());
        let (built, lines) = py.detach(|| {
            threads::run(None, || -> anyhow::Result<_> {
                let threads = f.extract.threads();
                let engine = f.extract.engine()?;
                let notes = Notes::default(); // said on this thread: `threads::run` captures them
                let (net, preprocess, identity) = match &bytes {
                    Some(b) => {
                        // `bind` checked the model's recorded identity against the file.
                        let model = lsgm::Model::from_bytes(b)?;
                        let bound = lsgm::onnx::bind(&model, &onnx_path, &engine)?;
                        bound.notes.iter().for_each(|n| notes.say(n));
                        (bound.network, bound.preprocess, model.source().to_string())
                    }
                    None => {
                        let p = extract::prepare(&onnx_path, &f.input, &engine, false, &notes)?;
                        (p.network, p.preprocess, p.identity)
                    }
                };
                Ok(Network {
                    net,
                    preprocess,
                    identity,
                    threads,
                })
            })
        })?;
        Ok((built.map_err(|e| value_error(&e))?, lines))
    }

    /// Pooled taps of every frame: one (N, d_i) float32 array per tap, in
    /// network order, and what extraction said (notes) for the wrapper.
    fn features<'py>(
        &self,
        py: Python<'py>,
        frames_: &Bound<'py, PyAny>,
    ) -> PyResult<(Vec<Bound<'py, PyAny>>, Vec<String>)> {
        let frames = frames(frames_)?;
        let opts = Extraction {
            threads: self.threads,
            logits: false,
        };
        // Extraction says its notes on its worker threads: collected, not printed.
        let notes = Notes::collecting();
        let (ex, mut lines) = py.detach(|| {
            threads::run(None, || {
                extract::extract(&self.net, &self.preprocess, &frames, &opts, &notes)
            })
        })?;
        lines.extend(notes.into_lines());
        let ex = ex.map_err(|e| value_error(&e))?;
        let arrays = ex
            .layers
            .iter()
            .map(|m| {
                let v: Vec<f32> = m
                    .row_iter()
                    .flat_map(|r| r.iter().map(|&x| x as f32).collect::<Vec<_>>())
                    .collect();
                numpy::ndarray::Array2::from_shape_vec((m.nrows(), m.ncols()), v)
                    .map(|a| a.into_pyarray(py).into_any())
                    .map_err(|e| PyValueError::new_err(e.to_string()))
            })
            .collect::<PyResult<_>>()?;
        Ok((arrays, lines))
    }

    /// Tap names, in order.
    #[getter]
    fn taps(&self) -> Vec<String> {
        self.net.taps.clone()
    }

    /// The engine running the network (`tract`, `onnxruntime (cpu)`).
    #[getter]
    fn engine(&self) -> String {
        self.net.engine.clone()
    }

    /// How frames become the input (the dict `Model.preprocess` gives).
    #[getter]
    fn preprocess<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &fit_and_export::inspect::preprocess_json(&self.preprocess))
    }
}
