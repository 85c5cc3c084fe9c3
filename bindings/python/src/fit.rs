//! `lsgm.fit`: `fit-and-export fit-features` on numpy arrays. The options
//! arrive as that command's flags (the Python wrapper turns keywords into
//! `--name value`) and are parsed by the command's own clap definitions,
//! so names, defaults and checks are the command's.

use crate::errors::value_error;
use crate::model::Model;
use crate::network::Network;
use crate::{arrays, threads};
use clap::{CommandFactory, Parser};
use fit_and_export::cli::{FitArgs, DEFAULT_DP_KMAX};
use fit_and_export::fit::FitOptions;
use fit_and_export::io::FeatureSet;
use lsgm::model::wire::Pooling;
use lsgm::model::Preprocess;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::collections::BTreeMap;

/// `fit-features`' fitting flags alone.
#[derive(Parser)]
#[command(name = "lsgm.fit", no_binary_name = true, disable_help_flag = true)]
struct FitFlags {
    #[command(flatten)]
    fit: FitArgs,
}

/// A clap error as one line: its message without clap's usage hints, each
/// quoted flag (`'--max-dim <MAX_DIM>'`) named as the keyword the caller
/// wrote (`max_dim=`).
pub fn flag_error(e: &clap::Error) -> PyErr {
    let text = e.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_start_matches("error: ").trim())
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect();
    PyValueError::new_err(as_keywords(&lines.join("; ")))
}

/// `'--flag-name <VALUE>'` → `flag_name=` everywhere in `text`.
fn as_keywords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("'--") {
        out.push_str(&rest[..at]);
        let quoted = &rest[at + 3..];
        let Some(end) = quoted.find('\'') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let name = quoted[..end].split([' ', '=']).next().unwrap_or_default();
        out.push_str(&name.replace('-', "_"));
        out.push('=');
        rest = &quoted[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::as_keywords;

    #[test]
    fn quoted_flags_become_keywords() {
        assert_eq!(
            as_keywords("invalid value '0' for '--grid <SIDE[,SIDE…]>': expected a side"),
            "invalid value '0' for grid=: expected a side"
        );
        assert_eq!(
            as_keywords("unexpected argument '--max-dim' found"),
            "unexpected argument max_dim= found"
        );
        assert_eq!(as_keywords("no flags '--here"), "no flags '--here");
    }
}

/// Fits a model from one `(N, d_i)` array per tap; returns it and what the
/// fit said (`note: …`, `warning: …` lines) for the wrapper to warn with.
#[pyfunction]
#[pyo3(signature = (features, flags, names = None, source = None, threads = None, network = None))]
pub fn fit(
    py: Python<'_>,
    features: Vec<Bound<'_, PyAny>>,
    flags: Vec<String>,
    names: Option<Vec<String>>,
    source: Option<String>,
    threads: Option<threads::Threads>,
    network: Option<&Bound<'_, Network>>,
) -> PyResult<(Model, Vec<String>)> {
    let opts = FitFlags::try_parse_from(&flags)
        .map_err(|e| flag_error(&e))?
        .fit
        .options();
    opts.validate().map_err(|e| value_error(&e))?;
    if let Some(net) = network {
        if names.is_some() || source.is_some() {
            return Err(PyValueError::new_err(
                "network= gives the tap names and the source; drop names= and source=",
            ));
        }
        let layers = arrays::features(&features, None)?;
        let widths: Vec<usize> = layers.iter().map(|m| m.ncols()).collect();
        let (names, poolings, preprocess, identity) = net.get().for_fit(&widths)?;
        let set = FeatureSet {
            names,
            poolings,
            layers,
        };
        return fitted(py, &set, &opts, Some(preprocess), identity, threads);
    }
    let names = match names {
        Some(n) if n.len() != features.len() => {
            return Err(PyValueError::new_err(format!(
                "names: {} names for {} taps",
                n.len(),
                features.len()
            )))
        }
        Some(n) => n,
        None => (0..features.len()).map(|i| i.to_string()).collect(),
    };
    if features.len() > lsgm::MAX_LAYERS {
        return Err(PyValueError::new_err(format!(
            "features: {} taps, at most {} are supported; select fewer taps",
            features.len(),
            lsgm::MAX_LAYERS
        )));
    }
    let layers = arrays::features(&features, Some(&names))?;
    let set = FeatureSet {
        poolings: vec![Pooling::Precomputed; layers.len()],
        names,
        layers,
    };
    let source = source.unwrap_or_else(|| "features:numpy".into());
    fitted(py, &set, &opts, None, source, threads)
}

/// `fit-and-export`'s fit of `set`, the GIL released; the model and what the fit said.
fn fitted(
    py: Python<'_>,
    set: &FeatureSet,
    opts: &FitOptions,
    preprocess: Option<Preprocess>,
    source: String,
    n_threads: Option<threads::Threads>,
) -> PyResult<(Model, Vec<String>)> {
    let (result, lines) = py.detach(|| {
        threads::run(n_threads, || {
            fit_and_export::fit::fit(set, opts, preprocess, source)
        })
    })?;
    let (bytes, report) = result.map_err(|e| value_error(&e))?;
    let report = serde_json::to_string(&report).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((Model::new(bytes, Some(report), "fitted model")?, lines))
}

/// Every fitting option's default as `fit-features --help` gives it (the
/// flag name with `_` for `-`, the value as text; `dp`'s is the DP
/// truncation level used when `components` is not given): the Python
/// signature's defaults are tested against these.
#[pyfunction]
pub fn fit_defaults() -> BTreeMap<String, Option<String>> {
    let mut d: BTreeMap<String, Option<String>> = FitFlags::command()
        .get_arguments()
        .map(|a| {
            let v = a
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned());
            (a.get_id().as_str().to_string(), v)
        })
        .collect();
    d.insert("dp".into(), Some(DEFAULT_DP_KMAX.to_string()));
    d
}
