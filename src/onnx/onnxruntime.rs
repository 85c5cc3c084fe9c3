//! The onnxruntime engine (feature `onnxruntime`): the `ort` crate with
//! `load-dynamic`, so onnxruntime's shared library is opened only when
//! this engine is chosen, from `--onnxruntime-lib` or `ORT_DYLIB_PATH`.
//!
//! onnxruntime returns graph outputs only, so the model is rewritten in
//! memory before the session is built: its outputs become the logits
//! tensor and the tapped tensors (in that order), and weights kept in
//! external data files are inlined (a session built from memory has no
//! folder to find them in). The file is read again for this and must still
//! be the one tract analysed (same identity). Every call into `ort` that
//! can panic (it does when it finds no library) runs after the library is
//! checked and loaded here, and the session is built under
//! `catch_unwind`: a panic becomes an error naming the library.

use super::engine::{Engine, Execute, ExecutionProvider, Plan, Values, Visit};
use super::engine::{ORT_INSTALL as INSTALL, ORT_MIN_VERSION as MIN_VERSION};
use super::graph::Graph;
use super::load::read_with_external_data;
use crate::model::preprocess::{Datum, InputBuffer};
use anyhow::{anyhow, bail, ensure, Context, Result};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use prost::Message;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tract_onnx::pb;
use tract_onnx::prelude::Datum as _;
use tract_onnx::prelude::{f16, DatumType};

/// The library loaded in this process (onnxruntime can be loaded once)
/// and its environment, or why loading failed.
static LOADED: OnceLock<Mutex<Option<(PathBuf, ort::environment::Environment)>>> = OnceLock::new();

/// Loads the library at `path` once per process and returns the
/// environment sessions are built in.
fn environment(path: &Path) -> Result<ort::environment::Environment> {
    let mut loaded = LOADED
        .get_or_init(|| Mutex::new(None))
        .lock()
        .map_err(|_| anyhow!("onnxruntime loader poisoned"))?;
    if let Some((first, env)) = loaded.as_ref() {
        ensure!(
            first == path,
            "onnxruntime is already loaded from {} in this process; {} cannot be loaded beside it",
            first.display(),
            path.display()
        );
        return Ok(env.clone());
    }
    let builder = ort::init_from(path).map_err(|e| match e {
        ort::LoadDynamicError::BadVersion { version_str, path } => anyhow!(
            "{} is onnxruntime {version_str}; this build needs {MIN_VERSION} or newer: {INSTALL}",
            path.display()
        ),
        ort::LoadDynamicError::MissingApi { path } => anyhow!(
            "{} is not onnxruntime's library (it has no OrtGetApiBase): {INSTALL}",
            path.display()
        ),
        // The loader's own reason (dlerror: "invalid ELF header", a missing
        // dependency), which `libloading`'s message keeps as its source.
        ort::LoadDynamicError::Dlopen { error, path } => {
            let why = std::error::Error::source(&error).map_or_else(|| error.to_string(), |s| s.to_string());
            anyhow!(
                "cannot load onnxruntime from {}: {why} ({INSTALL})",
                path.display()
            )
        }
        other => anyhow!("cannot load onnxruntime: {other} ({INSTALL})"),
    })?;
    let env = builder
        .with_name("lsgm")
        .build()
        .map_err(|e| anyhow!("onnxruntime ({}) cannot start: {e}", path.display()))?;
    *loaded = Some((path.to_path_buf(), env.clone()));
    Ok(env)
}

/// The ONNX element type of a float tensor (`TensorProto.DataType`).
fn elem_type(dt: DatumType) -> Result<i32> {
    Ok(if dt == f32::datum_type() {
        1
    } else if dt == f16::datum_type() {
        10
    } else if dt == f64::datum_type() {
        11
    } else {
        bail!("a {dt:?} tensor cannot be read as floats")
    })
}

/// `proto` with its outputs replaced by `outputs` (`(tensor name, ONNX
/// element type)`, in order), its external weights inlined from
/// `externals` (`(location, bytes)`) and its node names made unique.
fn rewrite(
    mut proto: pb::ModelProto,
    outputs: &[(String, i32)],
    externals: &[(String, Vec<u8>)],
) -> Result<Vec<u8>> {
    const EXTERNAL: i32 = 1;
    let graph = proto.graph.as_mut().context("the ONNX file holds no graph")?;
    let inline = |t: &mut pb::TensorProto| -> Result<()> {
        if t.data_location != Some(EXTERNAL) {
            return Ok(());
        }
        let field = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == k)
                .map(|e| e.value.clone())
        };
        let location = field("location").context("external data without a location")?;
        let offset: usize = field("offset")
            .map_or(Ok(0), |v| v.parse())
            .context("external data offset")?;
        let data = &externals
            .iter()
            .find(|(l, _)| *l == location)
            .with_context(|| format!("external data file {location:?} was not read"))?
            .1;
        let end = match field("length") {
            Some(v) => offset.checked_add(v.parse().context("external data length")?),
            None => Some(data.len()),
        };
        let bytes = end.and_then(|end| data.get(offset..end)).with_context(|| {
            format!(
                "tensor {:?} lies outside its external data file {location:?}",
                t.name
            )
        })?;
        t.raw_data = bytes.to_vec();
        t.external_data.clear();
        t.data_location = None;
        Ok(())
    };
    for t in graph.initializer.iter_mut() {
        inline(t)?;
    }
    for n in graph.node.iter_mut() {
        for a in n.attribute.iter_mut() {
            if let Some(t) = a.t.as_mut() {
                inline(t)?;
            }
        }
    }
    // onnxruntime refuses two nodes of one name ("invalid model"), which
    // tract and exporters allow; node names do not take part in the
    // computation (tensors are named by their outputs), so later ones get a
    // suffix.
    let mut seen = std::collections::HashSet::new();
    for n in graph.node.iter_mut().filter(|n| !n.name.is_empty()) {
        let mut k = 1;
        let base = n.name.clone();
        while !seen.insert(n.name.clone()) {
            k += 1;
            n.name = format!("{base}__{k}");
        }
    }
    graph.output = outputs
        .iter()
        .map(|(name, elem_type)| pb::ValueInfoProto {
            name: name.clone(),
            r#type: Some(pb::TypeProto {
                denotation: String::new(),
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: *elem_type,
                    shape: None,
                })),
            }),
            doc_string: String::new(),
        })
        .collect();
    Ok(proto.encode_to_vec())
}

/// The session options every session of a plan gets.
fn build_session(env: &ort::environment::Environment, model: &[u8], engine: &Engine) -> Result<Session> {
    let provider = match engine.provider {
        ExecutionProvider::Cpu => ort::ep::CPU::default().build(),
        ExecutionProvider::Cuda => ort::ep::CUDA::default().build(),
        ExecutionProvider::TensorRt => ort::ep::TensorRT::default().build(),
    }
    .error_on_failure();
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let mut builder = Session::builder(env)
        .map_err(|e| anyhow!(text(&e)))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| anyhow!(text(&e)))?
        .with_intra_threads(engine.intra_threads.max(1))
        .map_err(|e| anyhow!(text(&e)))?
        .with_execution_providers([provider])
        .map_err(|e| {
            anyhow!(
                "onnxruntime cannot use the {} execution provider: {e} (its library must be built with it, \
                 e.g. onnxruntime-gpu, and find the provider's own libraries; --ep cpu runs on the CPU)",
                engine.provider
            )
        })?;
    builder.commit_from_memory(model).map_err(|e| anyhow!(text(&e)))
}

/// onnxruntime's network: the rewritten model and one session per worker.
pub(crate) struct OrtPlan {
    env: ort::environment::Environment,
    model: Vec<u8>,
    engine: Engine,
    input: String,
    shape: [i64; 4],
    datum: Datum,
    outputs: Vec<String>,
    /// The session built to check the model, handed to the first worker.
    first: Mutex<Option<Session>>,
}

impl OrtPlan {
    /// Loads the library, rewrites `graph`'s file with the logits and
    /// `taps` as outputs and builds one session (so every error shows
    /// before the first frame).
    pub(crate) fn new(graph: &Graph, taps: &[String], engine: &Engine) -> Result<OrtPlan> {
        let lib = engine.library()?;
        let env = environment(&lib)?;
        let file = read_with_external_data(&graph.path)?;
        ensure!(
            file.identity == graph.identity,
            "{} changed while it was being loaded; run again",
            graph.path.display()
        );
        let mut outputs = vec![(
            graph.logits.tensor.clone(),
            elem_type(graph.datum_type(graph.logits.outlet)?)?,
        )];
        for name in taps {
            let tap = graph.find(name)?;
            outputs.push((tap.tensor.clone(), elem_type(graph.datum_type(tap.outlet)?)?));
        }
        let model = rewrite(file.proto, &outputs, &file.externals)?;
        let session = std::panic::catch_unwind(AssertUnwindSafe(|| build_session(&env, &model, engine)))
            .map_err(|_| {
                anyhow!(
                    "onnxruntime ({}) failed while building the session",
                    lib.display()
                )
            })?
            .with_context(|| {
                format!(
                    "{}: onnxruntime ({}) cannot run it",
                    graph.path.display(),
                    lib.display()
                )
            })?;
        let s = graph.input.shape();
        Ok(OrtPlan {
            env,
            model,
            engine: engine.clone(),
            input: graph.input.name.clone(),
            shape: [s[0] as i64, s[1] as i64, s[2] as i64, s[3] as i64],
            datum: graph.input.datum,
            outputs: outputs.into_iter().map(|(name, _)| name).collect(),
            first: Mutex::new(Some(session)),
        })
    }
}

impl Plan for OrtPlan {
    fn executor(&self) -> Result<Box<dyn Execute>> {
        let first = self
            .first
            .lock()
            .map_err(|_| anyhow!("onnxruntime plan poisoned"))?
            .take();
        let session = match first {
            Some(s) => s,
            None => std::panic::catch_unwind(AssertUnwindSafe(|| {
                build_session(&self.env, &self.model, &self.engine)
            }))
            .map_err(|_| anyhow!("onnxruntime failed while building a session"))??,
        };
        Ok(Box::new(OrtExecutor {
            session,
            input: self.input.clone(),
            shape: self.shape,
            datum: self.datum,
            outputs: self.outputs.clone(),
            dims: Vec::new(),
        }))
    }
}

/// One worker's onnxruntime session.
struct OrtExecutor {
    session: Session,
    input: String,
    shape: [i64; 4],
    datum: Datum,
    outputs: Vec<String>,
    /// An output's shape, reused.
    dims: Vec<usize>,
}

impl Execute for OrtExecutor {
    fn execute(&mut self, input: &InputBuffer, visit: &mut Visit<'_>) -> Result<()> {
        let text = |e: &dyn std::fmt::Display| anyhow!("onnxruntime: {e}");
        let results = match (input, self.datum) {
            (InputBuffer::F32(v), Datum::F32) => {
                let t = TensorRef::from_array_view((self.shape, v.as_slice())).map_err(|e| text(&e))?;
                self.session.run(ort::inputs![self.input.as_str() => t])
            }
            (InputBuffer::U8(v), Datum::U8) => {
                let t = TensorRef::from_array_view((self.shape, v.as_slice())).map_err(|e| text(&e))?;
                self.session.run(ort::inputs![self.input.as_str() => t])
            }
            _ => bail!(
                "input buffer of the wrong element type for a {} network",
                self.datum
            ),
        }
        .map_err(|e| anyhow!("inference failed (onnxruntime): {e}"))?;
        for (i, name) in self.outputs.iter().enumerate() {
            let value = results
                .get(name.as_str())
                .with_context(|| format!("onnxruntime returned no output {name:?}"))?;
            let (shape, values) = if let Ok((s, d)) = value.try_extract_tensor::<f32>() {
                (s, Values::F32(d))
            } else if let Ok((s, d)) = value.try_extract_tensor::<half::f16>() {
                (s, Values::F16(d))
            } else {
                let (s, d) = value
                    .try_extract_tensor::<f64>()
                    .map_err(|_| anyhow!("onnxruntime's output {name:?} is not a float tensor"))?;
                (s, Values::F64(d))
            };
            self.dims.clear();
            for &d in shape.iter() {
                self.dims
                    .push(usize::try_from(d).map_err(|_| anyhow!("output {name:?} has shape {shape:?}"))?);
            }
            visit(i, &self.dims, values)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_that_is_not_onnxruntime_is_refused_without_a_panic() {
        // Any shared library without OrtGetApiBase: the C library itself.
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
            "/lib/arm-linux-gnueabihf/libc.so.6",
        ]
        .into_iter()
        .find(|p| Path::new(p).is_file());
        let Some(libc) = libc else { return };
        let e = environment(Path::new(libc)).unwrap_err().to_string();
        assert!(e.contains("not onnxruntime's library") && e.contains(libc), "{e}");
    }

    #[test]
    fn outputs_are_replaced_and_external_weights_inlined() {
        let mut proto = pb::ModelProto::default();
        let mut graph = pb::GraphProto::default();
        graph.output.push(pb::ValueInfoProto {
            name: "probabilities".into(),
            ..Default::default()
        });
        let entry = |k: &str, v: &str| pb::StringStringEntryProto {
            key: k.into(),
            value: v.into(),
        };
        graph.initializer.push(pb::TensorProto {
            name: "w".into(),
            data_location: Some(1),
            external_data: vec![
                entry("location", "m.onnx.data"),
                entry("offset", "2"),
                entry("length", "3"),
            ],
            ..Default::default()
        });
        proto.graph = Some(graph);
        let externals = vec![("m.onnx.data".to_string(), vec![9u8, 9, 1, 2, 3, 9])];
        let bytes = rewrite(
            proto.clone(),
            &[("logits".into(), 1), ("relu1".into(), 10)],
            &externals,
        )
        .unwrap();
        let back = pb::ModelProto::decode(bytes.as_slice()).unwrap();
        let g = back.graph.unwrap();
        let names: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["logits", "relu1"]);
        assert_eq!(g.initializer[0].raw_data, [1, 2, 3]);
        assert!(g.initializer[0].external_data.is_empty() && g.initializer[0].data_location.is_none());
        let short = vec![("m.onnx.data".to_string(), vec![9u8, 9, 1])];
        let e = rewrite(proto, &[], &short).unwrap_err().to_string();
        assert!(e.contains("outside its external data file"), "{e}");
    }
}
