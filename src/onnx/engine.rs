//! The inference engine that executes a network, chosen at run time.
//!
//! Graph analysis is one implementation whatever runs the network: tract
//! reads the ONNX file, infers shapes, finds the input, the logits and the
//! taps ([`super::Graph`]). An engine only *executes*: built once from the
//! analysed graph ([`Plan`]), it gives each worker thread an [`Execute`]
//! that runs one frame and hands back the logits tensor and every tapped
//! tensor, which [`super::Runner`] then pools the same way whichever engine
//! ran. tract is compiled in and is the default; onnxruntime (feature
//! `onnxruntime`) is a shared library loaded only when chosen, so neither a
//! build nor a test of the core needs it.

use crate::kind::{named, ParseError};
use crate::model::preprocess::InputBuffer;
use anyhow::{bail, Result};
use core::fmt;
use core::str::FromStr;
use std::path::PathBuf;

/// The oldest onnxruntime the engine runs with: `ort` 2.0.0-rc.15 with
/// default features off asks for C API version 17.
pub(crate) const ORT_MIN_VERSION: &str = "1.17";

/// How to get onnxruntime's library, said in every error about finding one.
pub(crate) const ORT_INSTALL: &str = "install one with `pip install onnxruntime` (its library is \
     <site-packages>/onnxruntime/capi/libonnxruntime.so.<version>; \
     python3 -c \"import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))\" prints the folder) \
     or use JetPack's onnxruntime-gpu, and name it by its full path with --onnxruntime-lib PATH or ORT_DYLIB_PATH";

named! {
    /// Which engine executes the network (`--engine`).
    pub enum EngineKind ("engine") {
        /// tract, compiled in: the default, CPU only.
        Tract = "tract",
        /// onnxruntime, loaded at run time from --onnxruntime-lib or ORT_DYLIB_PATH (CPU, CUDA, TensorRT).
        OnnxRuntime = "onnxruntime",
    }
}

named! {
    /// onnxruntime's execution provider (`--ep`): where it runs the graph.
    pub enum ExecutionProvider ("execution provider") {
        /// onnxruntime's own CPU kernels.
        Cpu = "cpu",
        /// NVIDIA CUDA (an onnxruntime-gpu library and the CUDA runtime).
        Cuda = "cuda",
        /// NVIDIA TensorRT (an onnxruntime-gpu library built with TensorRT, e.g. JetPack's).
        TensorRt = "tensorrt",
    }
}

/// How to run a network: the engine and, for onnxruntime, where its
/// library is, which execution provider and how many threads one
/// inference may use. Checked by [`Engine::check`] before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// The engine.
    pub kind: EngineKind,
    /// onnxruntime's shared library, by full path (else `ORT_DYLIB_PATH`).
    pub onnxruntime_lib: Option<PathBuf>,
    /// onnxruntime's execution provider.
    pub provider: ExecutionProvider,
    /// Threads within one inference for onnxruntime's CPU kernels
    /// (`--intra-threads`); tract's are the monitor's `--intra-threads` pool.
    pub intra_threads: usize,
}

impl Default for Engine {
    /// tract, one thread per inference.
    fn default() -> Self {
        Engine {
            kind: EngineKind::Tract,
            onnxruntime_lib: None,
            provider: ExecutionProvider::Cpu,
            intra_threads: 1,
        }
    }
}

impl Engine {
    /// Refuses a choice that names options of an engine it does not use
    /// (`--ep cuda` with tract would otherwise run on the CPU, silently),
    /// or an engine this build does not contain.
    pub fn check(&self) -> Result<()> {
        match self.kind {
            EngineKind::Tract => {
                if self.provider != ExecutionProvider::Cpu {
                    bail!(
                        "--ep {} is an onnxruntime execution provider; tract runs on the CPU only: \
                         add --engine onnxruntime",
                        self.provider
                    );
                }
                if let Some(lib) = &self.onnxruntime_lib {
                    bail!(
                        "--onnxruntime-lib {} is given but the engine is tract: add --engine onnxruntime \
                         (or drop --onnxruntime-lib)",
                        lib.display()
                    );
                }
            }
            EngineKind::OnnxRuntime => {
                if !cfg!(feature = "onnxruntime") {
                    bail!(
                        "this build has no onnxruntime engine (feature `onnxruntime` of the lsgm crate); \
                         use --engine tract, or build with it"
                    );
                }
                self.library()?;
            }
        }
        Ok(())
    }

    /// onnxruntime's library as an absolute path: `--onnxruntime-lib`, else
    /// `ORT_DYLIB_PATH`; an error saying how to get one when neither names
    /// a file.
    pub fn library(&self) -> Result<PathBuf> {
        let (path, from) = match (&self.onnxruntime_lib, std::env::var_os("ORT_DYLIB_PATH")) {
            (Some(p), _) => (p.clone(), "--onnxruntime-lib"),
            (None, Some(p)) if !p.is_empty() => (PathBuf::from(p), "ORT_DYLIB_PATH"),
            _ => bail!(
                "--engine onnxruntime needs onnxruntime's shared library (version {ORT_MIN_VERSION} or newer): \
                 {ORT_INSTALL}"
            ),
        };
        if !path.is_file() {
            bail!(
                "{from} names {}, which is not a file: {ORT_INSTALL}",
                path.display()
            );
        }
        std::path::absolute(&path).map_err(|e| anyhow::anyhow!("{from} {}: {e}", path.display()))
    }

    /// What runs the network, for notes and reports (`tract`,
    /// `onnxruntime (cpu)`).
    pub fn describe(&self) -> String {
        match self.kind {
            EngineKind::Tract => "tract".to_string(),
            EngineKind::OnnxRuntime => format!("onnxruntime ({})", self.provider),
        }
    }
}

/// The command-line flags that choose the engine, shared by `lsgm-monitor`
/// and `fit-and-export` (`#[command(flatten)]`), so both spell them alike.
#[cfg(feature = "clap")]
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct EngineArgs {
    /// Inference engine: tract (built in) or onnxruntime (loaded at run time).
    #[arg(long, value_enum, default_value_t = EngineKind::Tract)]
    pub engine: EngineKind,
    /// onnxruntime's shared library by full path, e.g. the PyPI wheel's
    /// …/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0 (default: ORT_DYLIB_PATH).
    #[arg(long, value_name = "PATH")]
    pub onnxruntime_lib: Option<PathBuf>,
    /// onnxruntime execution provider; one it cannot register is an error, never a fall-back to the CPU.
    #[arg(long = "ep", value_enum, default_value_t = ExecutionProvider::Cpu)]
    pub provider: ExecutionProvider,
}

#[cfg(feature = "clap")]
impl EngineArgs {
    /// The engine these flags choose, with `intra_threads` threads per
    /// inference, checked ([`Engine::check`]).
    pub fn engine(&self, intra_threads: usize) -> Result<Engine> {
        let engine = Engine {
            kind: self.engine,
            onnxruntime_lib: self.onnxruntime_lib.clone(),
            provider: self.provider,
            intra_threads: intra_threads.max(1),
        };
        engine.check()?;
        Ok(engine)
    }
}

/// One output tensor's values as the engine computed them, borrowed.
/// float16 (networks converted to float16 inside) and float64 are
/// converted to `f32` before pooling, so sums run in `f32` whatever the
/// network computes in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Values<'a> {
    F32(&'a [f32]),
    F16(&'a [half::f16]),
    F64(&'a [f64]),
}

/// One engine's optimised network, built once and shared by the workers.
pub(crate) trait Plan: Send + Sync {
    /// An executor for one worker thread (its own state and buffers).
    fn executor(&self) -> Result<Box<dyn Execute>>;
}

/// Receives each output of one inference: its index (0 the logits, `i + 1`
/// tap `i`), its shape and its values.
pub(crate) type Visit<'v> = dyn FnMut(usize, &[usize], Values<'_>) -> Result<()> + 'v;

/// Runs frames one after another on one thread.
pub(crate) trait Execute: Send {
    /// Runs one frame (`input` already checked against the network's input
    /// shape and element type) and passes every output to `visit`, in order.
    fn execute(&mut self, input: &InputBuffer, visit: &mut Visit<'_>) -> Result<()>;

    /// Per-node times (`(node, operator, median µs)`, slowest first), for
    /// engines that can give them.
    fn profile(&mut self, _input: &InputBuffer, _runs: usize) -> Result<Vec<(String, String, f64)>> {
        bail!("per-node profiles come from the tract engine only")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_alike() {
        for k in EngineKind::ALL {
            assert_eq!(k.name().parse::<EngineKind>().unwrap(), *k);
        }
        assert_eq!(
            "TensorRT".parse::<ExecutionProvider>().unwrap(),
            ExecutionProvider::TensorRt
        );
        let e = "gpu".parse::<ExecutionProvider>().unwrap_err().to_string();
        assert_eq!(e, "unknown execution provider; expected cpu, cuda, tensorrt");
    }

    #[test]
    fn options_of_an_engine_not_chosen_are_refused() {
        let cuda = Engine {
            provider: ExecutionProvider::Cuda,
            ..Engine::default()
        };
        let e = cuda.check().unwrap_err().to_string();
        assert!(
            e.contains("--ep cuda") && e.contains("--engine onnxruntime"),
            "{e}"
        );
        let lib = Engine {
            onnxruntime_lib: Some("/x/libonnxruntime.so.1.32.0".into()),
            ..Engine::default()
        };
        let e = lib.check().unwrap_err().to_string();
        assert!(
            e.contains("/x/libonnxruntime.so.1.32.0") && e.contains("--engine onnxruntime"),
            "{e}"
        );
        assert!(Engine::default().check().is_ok());
        let missing = Engine {
            kind: EngineKind::OnnxRuntime,
            onnxruntime_lib: Some("/nonexistent/libonnxruntime.so.1.32.0".into()),
            ..Engine::default()
        };
        let e = missing.check().unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/libonnxruntime.so.1.32.0") && e.contains("pip install onnxruntime"),
            "{e}"
        );
    }
}
