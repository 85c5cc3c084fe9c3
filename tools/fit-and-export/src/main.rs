//! `fit-and-export`: fits an LSGM and writes the model file; scores and
//! inspects model files. Run with `--help` for the commands.

use anyhow::{ensure, Context, Result};
use clap::{Args, Parser, Subcommand};
use fit_and_export::cli::FitArgs;
use fit_and_export::extract::{self, DEMO_MEAN, DEMO_STD};
use fit_and_export::io::{npy_bytes, read_features, write_atomic, FeatureSet};
use fit_and_export::scoring::{score_all, RowMajor};
use fit_and_export::{fit, inspect};
use lsgm::frames::InputSpec;
use lsgm::onnx::{Graph, Network};
use lsgm::{Model, PreprocessSpec};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(
    version,
    about = "Fit, export, score and inspect LSGM out-of-distribution models",
    long_about = "Fit, export, score and inspect LSGM out-of-distribution models.\n\n\
        Without a subcommand: fit from an ONNX classifier and images. With no arguments at all it fits \
        the shipped demo model on the shipped demo data and writes lsgm-demo.lsgm here.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    onnx: OnnxFitArgs,
}

/// Fitting from an ONNX model and images (the default command).
#[derive(Args)]
struct OnnxFitArgs {
    /// ONNX classifier [default: the shipped demo model].
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// In-distribution training images: IDX (.gz), .npy, an image or a directory
    /// [default: the shipped demo sample].
    #[arg(long)]
    train: Option<PathBuf>,
    /// IDX label file aligned with --train (for --classes).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Keep only these classes of --train (comma list), e.g. 0,1,2,3,4,5.
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<u8>>,
    /// Model file to write.
    #[arg(long, default_value = "lsgm-demo.lsgm")]
    out: PathBuf,
    #[command(flatten)]
    taps: TapArgs,
    #[command(flatten)]
    fit: FitArgs,
}

/// Tap selection and input normalisation.
#[derive(Args, Clone)]
struct TapArgs {
    /// `auto` (the last layer of each resolution stage) or a comma list of ONNX node names.
    #[arg(long, default_value = "auto")]
    layers: String,
    /// Per-channel mean subtracted after scaling pixels to [0, 1] (one value or one per channel)
    /// [default for the demo model: 0.2860].
    #[arg(long)]
    mean: Option<String>,
    /// Per-channel std divided by [default for the demo model: 0.3530].
    #[arg(long)]
    std: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// List the candidate taps of an ONNX model, with shapes; `*` marks the auto selection.
    Layers {
        /// ONNX classifier.
        #[arg(long)]
        onnx: PathBuf,
    },
    /// Extract pooled features without fitting: DIR/0.npy …, logits.npy, layers.txt.
    Features {
        /// ONNX classifier.
        #[arg(long)]
        onnx: PathBuf,
        /// Take taps and preprocessing from this model file (instead of --layers/--mean/--std).
        #[arg(long)]
        lsgm: Option<PathBuf>,
        /// Images: IDX (.gz), .npy, an image or a directory.
        #[arg(long)]
        data: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        taps: TapArgs,
    },
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
    /// Evaluate OOD detection: LSGM and baselines, metrics, report and plots.
    Eval(fit_and_export::eval::run::EvalArgs),
    /// Re-store a model's transition tables (f32, u16, u8) and/or its means and
    /// precision factors (f32, f16, i8); everything else is unchanged.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["quantise", "storage"])))]
    Requantise {
        /// Model file.
        model: PathBuf,
        /// New storage of the transition tables.
        #[arg(long, value_enum)]
        quantise: Option<fit_and_export::cli::QuantArg>,
        /// New storage of every layer's means and precision factors. Rounds
        /// the stored values: going back to f32 does not restore precision.
        #[arg(long, value_enum)]
        storage: Option<fit_and_export::cli::StorageArg>,
        /// Output model file.
        #[arg(long)]
        out: PathBuf,
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

/// Mean/std for a graph: given, or the demo's for the demo model.
fn normalisation(graph: &Graph, onnx: &Path, taps: &TapArgs) -> Result<(Vec<f32>, Vec<f32>)> {
    let c = graph.input_chw.0;
    let is_demo = onnx
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("fmnist-resnet"));
    let pick = |given: &Option<String>, demo: f32, what: &str| -> Result<Vec<f32>> {
        match given {
            Some(s) => extract::channel_list(s, c, what),
            None if is_demo => Ok(vec![demo; c]),
            None => anyhow::bail!(
                "{what} is required for {}: give the normalisation the network was trained with \
                 (e.g. --mean 0.5 --std 0.5; --mean 0 --std 1 for none)",
                onnx.display()
            ),
        }
    };
    Ok((
        pick(&taps.mean, DEMO_MEAN, "--mean")?,
        pick(&taps.std, DEMO_STD, "--std")?,
    ))
}

fn fit_onnx(a: OnnxFitArgs) -> Result<()> {
    let opts = a.fit.options();
    opts.validate()?;
    let onnx = a.onnx.unwrap_or_else(extract::demo_onnx);
    let (train, labels) = match a.train {
        Some(t) => (t, a.labels),
        None => (
            extract::shipped("models/samples/fmnist-train-3000-images-idx3-ubyte.gz"),
            a.labels.or_else(|| {
                Some(extract::shipped(
                    "models/samples/fmnist-train-3000-labels-idx1-ubyte.gz",
                ))
            }),
        ),
    };
    let t0 = Instant::now();
    let graph = Graph::load(&onnx)?;
    let taps = extract::select_taps(&graph, &a.taps.layers)?;
    let (mean, std) = normalisation(&graph, &onnx, &a.taps)?;
    let spec = extract::input_spec(&graph, &mean, &std)?;
    let preprocess = extract::preprocess_spec(&graph, &spec);
    let frames = extract::load_frames(&train, labels.as_deref(), a.classes.as_deref())?;
    let source = graph.identity.clone();
    let net = Network::new(graph, &taps)?;
    let ex = extract::extract(&net, &spec, &frames)?;
    if ex.resized > 0 {
        eprintln!(
            "note: {} of {} frames were resized to the network's input",
            ex.resized,
            frames.len()
        );
    }
    let extract_secs = t0.elapsed().as_secs_f64();
    let set = FeatureSet {
        names: taps,
        layers: ex.layers,
    };
    let (bytes, mut report) = fit::fit(&set, &opts, preprocess, source)?;
    report.seconds.extract = Some(extract_secs);
    write_atomic(&a.out, &bytes)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        return fit_onnx(cli.onnx);
    };
    match command {
        Command::Layers { onnx } => {
            let graph = Graph::load(&onnx)?;
            let auto = graph.auto_taps();
            let (c, h, w) = graph.input_chw;
            println!(
                "input {} {}×{}×{} ({}), logits {}",
                graph.input_name,
                c,
                h,
                w,
                extract::layout_name(graph.layout),
                graph.logits_name
            );
            for t in graph.candidates() {
                let mark = if auto.contains(&t.name) { "*" } else { " " };
                println!("{mark} {:<48} {:<12} {:?}", t.name, t.op, t.shape);
            }
        }
        Command::Features {
            onnx,
            lsgm,
            data,
            out,
            taps,
        } => {
            let graph = Graph::load(&onnx)?;
            let (names, spec) = match &lsgm {
                Some(p) => {
                    let bytes = read_model(p)?;
                    let m = Model::from_bytes(&bytes)?;
                    let spec = InputSpec::from_model(&m)?;
                    (
                        m.layers()
                            .iter()
                            .map(|l| l.name().to_string())
                            .collect::<Vec<_>>(),
                        spec,
                    )
                }
                None => {
                    let names = extract::select_taps(&graph, &taps.layers)?;
                    let (mean, std) = normalisation(&graph, &onnx, &taps)?;
                    (names, extract::input_spec(&graph, &mean, &std)?)
                }
            };
            let frames = extract::load_frames(&data, None, None)?;
            let net = Network::new(graph, &names)?;
            let ex = extract::extract(&net, &spec, &frames)?;
            std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let f32s = |m: &nalgebra::DMatrix<f64>| -> Vec<f32> {
                m.row_iter()
                    .flat_map(|r| r.iter().map(|&v| v as f32).collect::<Vec<_>>())
                    .collect()
            };
            for (i, m) in ex.layers.iter().enumerate() {
                write_atomic(
                    &out.join(format!("{i}.npy")),
                    &npy_bytes(m.nrows(), m.ncols(), &f32s(m))?,
                )?;
            }
            let l = &ex.logits;
            write_atomic(
                &out.join("logits.npy"),
                &npy_bytes(l.nrows(), l.ncols(), &f32s(l))?,
            )?;
            write_atomic(&out.join("layers.txt"), (names.join("\n") + "\n").as_bytes())?;
            eprintln!(
                "wrote {} frames × {} layers to {}",
                frames.len(),
                names.len(),
                out.display()
            );
        }
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
            ensure!(
                set.layers.len() == m.num_layers(),
                "{} has {} layers but the model has {}",
                features.display(),
                set.layers.len(),
                m.num_layers()
            );
            for (i, (x, l)) in set.layers.iter().zip(m.layers()).enumerate() {
                ensure!(
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
        Command::Eval(args) => fit_and_export::eval::run::run(&args)?,
        Command::Requantise {
            model,
            quantise,
            storage,
            out,
        } => {
            let bytes = read_model(&model)?;
            let m = Model::from_bytes(&bytes)?;
            let mut spec = lsgm::ModelSpec::from_model(&m);
            if let Some(q) = quantise {
                let kind = fit_and_export::cli::quantisation(q);
                for t in &mut spec.transitions {
                    let values: Vec<f32> = (0..t.len()).map(|i| t.get(i)).collect();
                    *t = lsgm::quant::quantise(&values, kind)?;
                }
            }
            if let Some(s) = storage {
                let s = fit_and_export::cli::storage(s);
                if spec.layers.iter().any(|l| l.storage != s) {
                    eprintln!(
                        "warning: the threshold and quantiles were calibrated with the old storage; \
                         to recalibrate, fit again with --storage"
                    );
                }
                spec.layers.iter_mut().for_each(|l| l.storage = s);
            }
            let new = spec
                .encode()
                .with_context(|| format!("re-encoding {}", model.display()))?;
            write_atomic(&out, &new)?;
            eprintln!("{} bytes → {} bytes", bytes.len(), new.len());
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
