//! `fit-and-export`: fits an LSGM and writes the model file; scores and
//! inspects model files. Run with `--help` for the commands.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use fit_and_export::cli::FitArgs;
use fit_and_export::io::{read_features, write_atomic};
use fit_and_export::scoring::{score_all, RowMajor};
use fit_and_export::{fit, inspect};
use lsgm::{Model, PreprocessSpec};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(
    version,
    about = "Fit, export, score and inspect LSGM out-of-distribution models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit from per-layer feature files (DIR/0.npy, 1.npy, … each N×d).
    FitFeatures {
        /// Directory of per-layer .npy features, rows aligned across layers.
        #[arg(long)]
        features: PathBuf,
        /// Model file to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        fit: FitArgs,
    },
    /// Score every row of a feature directory: one score per line.
    Score {
        /// Model file.
        model: PathBuf,
        /// Directory of per-layer .npy features.
        #[arg(long)]
        features: PathBuf,
        /// One JSON object per row (score, ood, per-layer contributions).
        #[arg(long)]
        json: bool,
    },
    /// Summarise a model file, or dump all its parameters as JSON.
    Inspect {
        /// Model file.
        model: PathBuf,
        /// Full JSON dump of every parameter.
        #[arg(long)]
        json: bool,
    },
}

fn read_model(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read model file {}", path.display()))?;
    Model::from_bytes(&bytes).with_context(|| {
        format!(
            "{} is not a usable LSGM model file; write one with `fit-and-export fit-features`",
            path.display()
        )
    })?;
    Ok(bytes)
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::FitFeatures { features, out, fit } => {
            let opts = fit.options();
            opts.validate()?;
            let set = read_features(&features)?;
            let source = format!("features:{}", features.display());
            let (bytes, mut report) = fit::fit(&set, &opts, PreprocessSpec::features_only(), source)?;
            let t0 = Instant::now();
            write_atomic(&out, &bytes)?;
            report.seconds.export += t0.elapsed().as_secs_f64();
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Score {
            model,
            features,
            json,
        } => {
            let bytes = read_model(&model)?;
            let m = Model::from_bytes(&bytes)?;
            let set = read_features(&features)?;
            anyhow::ensure!(
                set.layers.len() == m.num_layers(),
                "{} has {} layers but the model has {}",
                features.display(),
                set.layers.len(),
                m.num_layers()
            );
            for (i, (x, l)) in set.layers.iter().zip(m.layers()).enumerate() {
                anyhow::ensure!(
                    x.ncols() == l.dim_in(),
                    "layer {i} ({}): features have {} columns, the model expects {}",
                    l.name(),
                    x.ncols(),
                    l.dim_in()
                );
            }
            let scored = score_all(&m, &RowMajor::from_matrices(&set.layers))?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for s in &scored {
                if json {
                    let v = m.verdict(s.score, &s.contributions, None);
                    let line = serde_json::json!({
                        "score": s.score, "ood": v.ood, "worst_layer": v.worst_layer, "layers": s.contributions,
                    });
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(out, "{}", s.score)?;
                }
            }
        }
        Command::Inspect { model, json } => {
            let bytes = read_model(&model)?;
            let m = Model::from_bytes(&bytes)?;
            if json {
                println!("{}", serde_json::to_string(&inspect::json(&m, bytes.len()))?);
            } else {
                print!("{}", inspect::summary(&m, bytes.len()));
            }
        }
    }
    Ok(())
}
