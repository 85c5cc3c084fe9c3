//! `--methods`: names checked against the detectors' table when the command
//! line is parsed, then turned into detectors for the model's taps.

use super::detector::{Detector, Entry, Needs};
use super::detectors::REGISTRY;
use anyhow::{anyhow, Result};
use std::str::FromStr;

/// One `--methods` value, checked against [`REGISTRY`] when the command
/// line is parsed (an unknown name is a usage error listing the known ones).
#[derive(Debug, Clone, Copy)]
pub enum MethodArg {
    /// `all`: every detector of the table, every tap of per-tap ones.
    All,
    /// One detector of the table (with its tap for a per-tap family).
    Named {
        /// Its row.
        entry: &'static Entry,
        /// The tap of a per-tap family.
        tap: Option<usize>,
    },
}

/// The names `--methods` accepts, for help and errors:
/// `all, lsgm, msp, …, gmm-layer-I`.
pub fn known_names() -> String {
    let names: Vec<String> = REGISTRY
        .iter()
        .map(|e| match e.per_tap {
            true => format!("{}-I", e.name),
            false => e.name.to_string(),
        })
        .collect();
    format!("all, {} (I = a tap, 0-based)", names.join(", "))
}

/// The rows whose detectors need what `need` picks, e.g. `mahalanobis,
/// mahalanobis-multi, knn, react, vim` for `|n| n.train` (for help texts).
pub fn needing(need: fn(Needs) -> bool) -> String {
    let names: Vec<&str> = REGISTRY
        .iter()
        .filter(|e| need((e.make)(0).needs()))
        .map(|e| e.name)
        .collect();
    names.join(", ")
}

/// `I` of `NAME-I`: decimal digits as the report writes them (no sign, no
/// leading zero), so that no two names select the same detector.
fn tap_index(s: &str) -> Option<usize> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

impl FromStr for MethodArg {
    type Err = String;

    fn from_str(s: &str) -> Result<MethodArg, String> {
        if s == "all" {
            return Ok(MethodArg::All);
        }
        REGISTRY
            .iter()
            .find_map(|entry| match entry.per_tap {
                false => (s == entry.name).then_some(MethodArg::Named { entry, tap: None }),
                true => s
                    .strip_prefix(entry.name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .and_then(tap_index)
                    .map(|tap| MethodArg::Named {
                        entry,
                        tap: Some(tap),
                    }),
            })
            .ok_or_else(|| format!("unknown method {s:?}; choose from {}", known_names()))
    }
}

/// The detectors `methods` name for a model with `taps` taps, in the order
/// given (with `all`: the table's order), each once. A tap the model does
/// not have is an error.
pub fn select(methods: &[MethodArg], taps: usize) -> Result<Vec<Box<dyn Detector>>> {
    let wanted = match methods.iter().any(|m| matches!(m, MethodArg::All)) {
        true => &[MethodArg::All][..],
        false => methods,
    };
    let mut chosen: Vec<Box<dyn Detector>> = Vec::new();
    for m in wanted {
        for d in expand(m, taps)? {
            if !chosen.iter().any(|c| c.name() == d.name()) {
                chosen.push(d);
            }
        }
    }
    Ok(chosen)
}

/// The detectors one `--methods` value stands for.
fn expand(m: &MethodArg, taps: usize) -> Result<Vec<Box<dyn Detector>>> {
    match *m {
        MethodArg::All => Ok(REGISTRY.iter().flat_map(|e| e.detectors(taps)).collect()),
        MethodArg::Named { entry, tap: Some(t) } if t >= taps => {
            let name = entry.name;
            Err(anyhow!(
                "--methods {name}-{t}: the model's taps are 0 to {last} ({name}-0 to {name}-{last})",
                last = taps - 1
            ))
        }
        MethodArg::Named { entry, tap } => Ok(vec![(entry.make)(tap.unwrap_or(0))]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_its_detectors_as_the_table_does() {
        for e in REGISTRY {
            for (tap, d) in e.detectors(3).iter().enumerate() {
                let want = match e.per_tap {
                    true => format!("{}-{tap}", e.name),
                    false => e.name.to_string(),
                };
                assert_eq!(d.name(), want);
                let parsed: MethodArg = want.parse().unwrap();
                assert_eq!(expand(&parsed, 3).unwrap()[0].name(), want);
            }
        }
    }

    #[test]
    fn only_the_names_the_reports_use_are_accepted() {
        for bad in [
            "gmm-layer-00",
            "gmm-layer-+1",
            "gmm-layer-",
            "gmm-layer",
            "LSGM",
            "lsgm ",
            "nope",
        ] {
            let err = bad.parse::<MethodArg>().unwrap_err();
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains("mahalanobis-multi"),
                "{err}"
            );
        }
        // `all` is the table in its order, per-tap rows expanded; a name
        // given again is not run twice.
        let all = select(&[MethodArg::All, "msp".parse().unwrap()], 2).unwrap();
        let names: Vec<String> = all.iter().map(|d| d.name()).collect();
        let table: Vec<String> = REGISTRY
            .iter()
            .flat_map(|e| e.detectors(2))
            .map(|d| d.name())
            .collect();
        assert_eq!(names, table);
        assert!(names.len() >= 13 && names[0] == "lsgm" && names[names.len() - 1] == "gmm-layer-1");
        let twice = ["knn", "gmm-layer-1", "knn"].map(|s| s.parse().unwrap());
        let names: Vec<String> = select(&twice, 2).unwrap().iter().map(|d| d.name()).collect();
        assert_eq!(names, ["knn", "gmm-layer-1"]);
        let err = select(&["gmm-layer-2".parse().unwrap()], 2)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("gmm-layer-2") && err.contains("gmm-layer-0 to gmm-layer-1"),
            "{err}"
        );
    }
}
