//! Reading an ONNX file: its protobuf, its external weight files, the
//! identity that ties a fitted model to exactly these bytes, and tract's
//! graph.

use anyhow::{bail, ensure, Context, Result};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// An ONNX file, parsed by tract.
pub(crate) struct Loaded {
    /// The protobuf, for what tract's graph does not keep (operator types,
    /// attributes, opsets, node order).
    pub proto: pb::ModelProto,
    /// tract's graph (before shape analysis).
    pub model: InferenceModel,
    /// `NAME bytes:N crc32:XXXXXXXX [data:FILE,…]`, see [`identity`].
    pub identity: String,
}

/// The files an ONNX model keeps its weights in (ONNX "external data",
/// which `torch.onnx.export` writes for every model since torch 2.9), in
/// the order the initializers first name them.
fn external_files(proto: &pb::ModelProto) -> Vec<String> {
    const EXTERNAL: i32 = 1;
    let mut files: Vec<String> = Vec::new();
    let graph = proto.graph.as_ref();
    let tensors = graph.into_iter().flat_map(|g| {
        g.initializer.iter().chain(
            g.node
                .iter()
                .flat_map(|n| n.attribute.iter().filter_map(|a| a.t.as_ref())),
        )
    });
    for t in tensors {
        if t.data_location != Some(EXTERNAL) {
            continue;
        }
        if let Some(loc) = t.external_data.iter().find(|e| e.key == "location") {
            if !files.contains(&loc.value) {
                files.push(loc.value.clone());
            }
        }
    }
    files
}

/// The identity a fitted model records: the file name, the total bytes and
/// one CRC-32 over the ONNX file followed by each external data file, so a
/// model fitted for one set of weights refuses another.
fn identity(path: &Path, bytes: &[u8], externals: &[(String, Vec<u8>)]) -> String {
    let mut crc = crc32fast::Hasher::new();
    crc.update(bytes);
    let mut total = bytes.len();
    for (_, data) in externals {
        crc.update(data);
        total += data.len();
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut id = format!("{name} bytes:{total} crc32:{:08x}", crc.finalize());
    if !externals.is_empty() {
        let names: Vec<&str> = externals.iter().map(|(n, _)| n.as_str()).collect();
        id.push_str(&format!(" data:{}", names.join(",")));
    }
    id
}

/// The folder of `path`, `.` for a bare file name.
fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// tract's ONNX parser as every load uses it: value_info and declared
/// output shapes ignored, `Gemm` built by [`super::gemm`].
fn parser() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true);
    onnx.op_register.insert("Gemm", super::gemm::gemm);
    onnx
}

/// An ONNX file as read: its protobuf, its external data files and its identity.
pub(crate) struct OnnxFile {
    /// The protobuf.
    pub proto: pb::ModelProto,
    /// `(location, bytes)` of each external data file, in [`external_files`]' order
    /// (the onnxruntime engine inlines them).
    #[cfg_attr(not(feature = "onnxruntime"), allow(dead_code))]
    pub externals: Vec<(String, Vec<u8>)>,
    /// What a fitted model records ([`identity`]).
    pub identity: String,
}

/// Reads `path`'s protobuf and its external data files (which must lie
/// inside the model's folder), and the identity a fitted model records for
/// them. The one reader of ONNX files: tract's load and the onnxruntime
/// engine's rewrite both start here.
pub(crate) fn read_with_external_data(path: &Path) -> Result<OnnxFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read ONNX model {}", path.display()))?;
    let proto = parser().proto_model_for_read(&mut &bytes[..]).with_context(|| {
        format!(
            "{}: not an ONNX model (the protobuf does not decode)",
            path.display()
        )
    })?;
    let dir = folder(path);
    let mut externals = Vec::new();
    for location in external_files(&proto) {
        ensure!(
            Path::new(&location)
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
            "{}: its external data location {location:?} is not a file inside the model's folder",
            path.display()
        );
        let file = dir.join(&location);
        let data = std::fs::read(&file).with_context(|| {
            format!(
                "{}: its weights are in the external data file {location:?}, which cannot be read at {}; \
                 keep that file beside the .onnx file",
                path.display(),
                file.display()
            )
        })?;
        externals.push((location, data));
    }
    let identity = identity(path, &bytes, &externals);
    Ok(OnnxFile {
        proto,
        externals,
        identity,
    })
}

/// Reads `path` and its external data files and parses it with tract
/// (value_info and declared output shapes ignored: with the input fixed to
/// one frame, tract infers every shape itself, and the symbolic dimensions
/// that exporters and `onnx.shape_inference` leave in them make its
/// analysis fail; `Gemm` is built by [`super::gemm`], which float16
/// networks need).
pub(crate) fn load(path: &Path) -> Result<Loaded> {
    let onnx = parser();
    let OnnxFile { proto, identity, .. } = read_with_external_data(path)?;
    let dir = folder(path);
    check_operators(path, &proto, &onnx)?;
    let dir = dir.to_string_lossy().into_owned();
    let parsed = onnx
        .parse(&proto, Some(&dir))
        .with_context(|| format!("{}: tract cannot load this ONNX model", path.display()))?;
    if !parsed.unresolved_inputs.is_empty() {
        bail!(
            "{}: these tensors are used but never produced: {:?}",
            path.display(),
            parsed.unresolved_inputs
        );
    }
    Ok(Loaded {
        identity,
        proto,
        model: parsed.model,
    })
}

/// Every node's operator must be one tract implements; otherwise tract
/// loads it as a placeholder and shape analysis stops there, which would
/// silently shorten the list of layers.
fn check_operators(path: &Path, proto: &pb::ModelProto, onnx: &tract_onnx::Onnx) -> Result<()> {
    let Some(graph) = &proto.graph else {
        bail!("{}: the ONNX file holds no graph", path.display());
    };
    let opsets: HashMap<&str, i64> = proto
        .opset_import
        .iter()
        .map(|o| {
            (
                if o.domain == "ai.onnx" {
                    ""
                } else {
                    o.domain.as_str()
                },
                o.version,
            )
        })
        .collect();
    let unsupported: Vec<String> = graph
        .node
        .iter()
        .filter(|n| !onnx.op_register.0.contains_key(&n.op_type))
        .map(|n| {
            let domain = if n.domain == "ai.onnx" {
                ""
            } else {
                n.domain.as_str()
            };
            let opset = opsets
                .get(domain)
                .map_or(String::new(), |v| format!(", opset {v}"));
            let op = if domain.is_empty() {
                n.op_type.clone()
            } else {
                format!("{domain}.{}", n.op_type)
            };
            format!("node {:?} ({op}{opset})", node_name(n))
        })
        .collect();
    if let Some(first) = unsupported.first() {
        let more = match unsupported.len() {
            1 => String::new(),
            n => format!(" (and {} more: {})", n - 1, unsupported[1..].join(", ")),
        };
        bail!(
            "{}: {first} is not supported by tract{more}; export the network without it \
             (e.g. a newer opset, or Resize instead of Upsample) or replace that operator",
            path.display()
        );
    }
    Ok(())
}

/// The name tract gives a node: its ONNX name, else its first output's.
pub(crate) fn node_name(n: &pb::NodeProto) -> &str {
    if !n.name.is_empty() {
        &n.name
    } else {
        n.output.first().map_or("", String::as_str)
    }
}
