//! `fit-and-export`: fits an LSGM and writes the model file; scores and
//! inspects model files. Run with `--help` for the commands.
//!
//! Exit codes: 0 success, 1 error, 2 usage error.

use anyhow::{ensure, Context, Result};
use clap::{Args, Parser, Subcommand};
use fit_and_export::cli::{ExtractArgs, FitArgs, InputArgs};
use fit_and_export::extract;
use fit_and_export::io::{check_output, npy_bytes, read_features, to_stdout, write_atomic, FeatureSet};
use fit_and_export::scoring::{check_taps, score_all, RowMajor};
use fit_and_export::{count, fit, inspect, say};
use lsgm::frames::Notes;
use lsgm::onnx::{bind, Graph, LoadOptions};
use lsgm::Model;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(
    version,
    about = "Fit, export, score and inspect LSGM out-of-distribution models",
    long_about = "Fit, export, score and inspect LSGM out-of-distribution models.\n\n\
        Without a subcommand: fit from an ONNX classifier and images. With no arguments at all it fits \
        the shipped demo model on the shipped demo data and writes lsgm-demo.lsgm here.",
    after_help = "Exit codes: 0 success, 1 error, 2 usage error.",
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true
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
    /// In-distribution training images, one path: an image, a directory of images (subfolders
    /// included, in path order: for several folders give the folder holding them), IDX (.gz) or
    /// .npy, or a pipe holding one [default: the shipped demo sample].
    #[arg(long, value_name = "PATH")]
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
    input: InputArgs,
    #[command(flatten)]
    extract: ExtractArgs,
    #[command(flatten)]
    fit: FitArgs,
}

#[derive(Subcommand)]
enum Command {
    /// List the candidate taps of an ONNX model, with shapes; `*` marks the auto selection.
    Layers {
        /// ONNX classifier.
        #[arg(long)]
        onnx: PathBuf,
        /// Input size, for a network with a dynamic input size.
        #[arg(long, value_name = "HxW", value_parser = input_size)]
        input_size: Option<(u32, u32)>,
        /// The output holding the class logits, when there are several.
        #[arg(long, value_name = "NAME")]
        logits: Option<String>,
    },
    /// Extract pooled features without fitting: DIR/0.npy …, logits.npy, layers.txt.
    Features {
        /// ONNX classifier.
        #[arg(long)]
        onnx: PathBuf,
        /// Take taps and preprocessing from this model file (instead of the input flags).
        #[arg(long)]
        lsgm: Option<PathBuf>,
        /// Frames, one path: an image, a directory of images (subfolders included, in path order: for
        /// several folders give the folder holding them), IDX (.gz) or .npy, or a pipe holding one.
        #[arg(long, value_name = "PATH")]
        data: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        extract: ExtractArgs,
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
    /// Score every row of a feature directory: one score per line (a row whose density overflows
    /// gets the lowest score, -3.4028235e38).
    Score {
        /// Model file.
        model: PathBuf,
        /// Directory of per-layer .npy features.
        #[arg(long)]
        features: PathBuf,
        /// One JSON object per row (score, ood, worst layer, per-layer contributions, reason).
        #[arg(long)]
        json: bool,
    },
    /// Evaluate OOD detection: LSGM and baselines, metrics, report and plots.
    Eval(fit_and_export::eval::run::EvalArgs),
    /// Re-store a model's transition tables and/or its means and precision
    /// factors at another precision; everything else is unchanged.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["quantise", "storage"])))]
    Requantise {
        /// Model file.
        model: PathBuf,
        /// New storage of the transition tables.
        #[arg(long, value_enum)]
        quantise: Option<lsgm::Quantisation>,
        /// New storage of every layer's means and precision factors. Rounds
        /// the stored values: going back to f32 does not restore precision.
        #[arg(long, value_enum)]
        storage: Option<lsgm::Storage>,
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

fn input_size(s: &str) -> Result<(u32, u32), String> {
    fit_and_export::cli::parse_input_size(s)
}

fn read_model(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read model file {}", path.display()))?;
    Model::from_bytes(&bytes).map_err(|e| {
        let hint = match e {
            lsgm::Error::BadMagic | lsgm::Error::Decode => {
                " (is it an .lsgm file written by fit-and-export?)"
            }
            _ => "",
        };
        anyhow::anyhow!("{}: {e}{hint}", path.display())
    })?;
    Ok(bytes)
}

fn fit_onnx(a: OnnxFitArgs) -> Result<()> {
    let opts = a.fit.options();
    opts.validate()?;
    check_output(&a.out)?;
    let demo = a.onnx.is_none();
    if a.labels.is_some() && a.classes.is_none() {
        say!("note: --labels is used only to select --classes; without --classes it is ignored");
    }
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
    let notes = Notes::default();
    let p = extract::prepare(&onnx, &a.input, &a.extract.engine()?, demo, &notes)?;
    let source = extract::Source {
        path: &train,
        labels: labels.as_deref(),
        classes: a.classes.as_deref(),
    };
    let extraction = extract::Extraction {
        threads: a.extract.threads(),
        logits: false,
    };
    let ex = extract::extract_source(&p.network, &p.preprocess, &source, &extraction, &notes)?;
    let extract_secs = t0.elapsed().as_secs_f64();
    let set = FeatureSet {
        names: p.network.taps.clone(),
        poolings: p.network.poolings().to_vec(),
        layers: ex.layers,
    };
    let (bytes, mut report) = fit::fit(&set, &opts, Some(p.preprocess), p.identity)?;
    report.seconds.extract = Some(extract_secs);
    write_atomic(&a.out, &bytes)?;
    to_stdout(|w| writeln!(w, "{}", serde_json::to_string(&report)?))?;
    Ok(())
}

fn layers(onnx: &Path, input_size: Option<(u32, u32)>, logits: Option<String>) -> Result<()> {
    let graph = Graph::load(
        onnx,
        &LoadOptions {
            input_size,
            logits,
            fitted_for: None,
        },
    )?;
    let auto = graph.auto_taps();
    let i = &graph.input;
    let dynamic = if i.dynamic_size {
        " (dynamic size, set by --input-size)"
    } else {
        ""
    };
    to_stdout(|w| {
        writeln!(
            w,
            "input {} {:?} {} {}{dynamic}; logits {} ({} classes)",
            i.name,
            i.shape(),
            i.layout,
            i.datum,
            graph.logits.tensor,
            graph.logits.classes
        )?;
        for n in graph
            .logits
            .note
            .iter()
            .map(String::as_str)
            .chain(graph.auto_note())
        {
            writeln!(w, "note: {n}")?;
        }
        for t in graph.candidates() {
            let mark = if auto.contains(&t.name) { "*" } else { " " };
            let pooling = match t.pooling {
                Some(p) => format!("{p:?}"),
                None => "channel axis unknown: not tappable".into(),
            };
            writeln!(
                w,
                "{mark} {:<48} {:<18} {:<18} {pooling}",
                t.name,
                t.op,
                format!("{:?}", t.shape)
            )?;
        }
        if !graph.unknown_shapes.is_empty() {
            writeln!(
                w,
                "note: tract could not infer the output shape of {} node(s), not listed: {}",
                graph.unknown_shapes.len(),
                graph.unknown_shapes.join(", ")
            )?;
        }
        if !graph.repeated_names.is_empty() {
            writeln!(
                w,
                "note: node names used more than once ({}): those nodes are listed by their output tensor names",
                graph.repeated_names.join(", ")
            )?;
        }
        Ok(())
    })?;
    Ok(())
}

fn features(
    onnx: &Path,
    lsgm: Option<&Path>,
    data: &Path,
    out: &Path,
    input: &InputArgs,
    run_as: &ExtractArgs,
) -> Result<()> {
    let (engine, threads) = (run_as.engine()?, run_as.threads());
    // Created before the slow part so an unwritable --out fails at once;
    // removed again (when still empty) if the run fails before writing.
    let created = !out.exists();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let written = features_into(onnx, lsgm, data, out, input, (engine, threads));
    if written.is_err() && created {
        let _ = std::fs::remove_dir(out);
    }
    written
}

/// [`features`] once `out` exists.
fn features_into(
    onnx: &Path,
    lsgm: Option<&Path>,
    data: &Path,
    out: &Path,
    input: &InputArgs,
    (engine, threads): (lsgm::onnx::Engine, Option<usize>),
) -> Result<()> {
    check_output(&out.join("layers.txt"))?;
    let notes = Notes::default();
    let (net, preprocess) = match lsgm {
        Some(p) => {
            let given = input.given();
            ensure!(
                given.is_empty(),
                "--lsgm takes the taps and the preprocessing from the model file; drop {}",
                given.join(", ")
            );
            let bytes = read_model(p)?;
            let bound = bind(&Model::from_bytes(&bytes)?, onnx, &engine)?;
            bound.notes.iter().for_each(|n| notes.say(n));
            (bound.network, bound.preprocess)
        }
        None => {
            let p = extract::prepare(onnx, input, &engine, false, &notes)?;
            (p.network, p.preprocess)
        }
    };
    let opts = extract::Extraction {
        threads,
        logits: true,
    };
    let ex = extract::extract_source(&net, &preprocess, &extract::Source::all(data), &opts, &notes)?;
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
    let l = ex.logits.as_ref().expect("asked for");
    write_atomic(
        &out.join("logits.npy"),
        &npy_bytes(l.nrows(), l.ncols(), &f32s(l))?,
    )?;
    write_atomic(&out.join("layers.txt"), (net.taps.join("\n") + "\n").as_bytes())?;
    say!(
        "wrote {} × {} to {}",
        count(ex.rows, "frame", "frames"),
        count(net.taps.len(), "layer", "layers"),
        out.display()
    );
    Ok(())
}

fn score(model: &Path, features: &Path, json: bool) -> Result<()> {
    let bytes = read_model(model)?;
    let m = Model::from_bytes(&bytes)?;
    let set = read_features(features)?;
    let widths: Vec<usize> = set.layers.iter().map(|x| x.ncols()).collect();
    check_taps(&m, &widths, &features.display().to_string())?;
    let scored = score_all(&m, &RowMajor::from_matrices(&set.layers))?;
    to_stdout(|w| {
        for s in &scored {
            if json {
                let v = &s.verdict;
                let mut line = serde_json::json!({
                    "score": s.score, "ood": v.ood, "worst_layer": v.worst_layer,
                    "worst_tap": m.layer(v.worst_layer as usize).name(), "layers": s.contributions,
                });
                if let Some(l) = v.overflow {
                    line["reason"] = format!(
                        "the density of layer {l} ({}) overflowed: the row is farther from every \
                         in-distribution component than f32 can express",
                        m.layer(l as usize).name()
                    )
                    .into();
                }
                writeln!(w, "{line}")?;
            } else if s.verdict.overflow.is_some() {
                writeln!(w, "{:e}", s.score)?;
            } else {
                writeln!(w, "{}", s.score)?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

fn requantise(
    model: &Path,
    quantise: Option<lsgm::Quantisation>,
    storage: Option<lsgm::Storage>,
    out: &Path,
) -> Result<()> {
    check_output(out)?;
    let bytes = read_model(model)?;
    let m = Model::from_bytes(&bytes)?;
    let mut spec = lsgm::ModelSpec::from_model(&m);
    if let Some(kind) = quantise {
        for t in &mut spec.transitions {
            let values: Vec<f32> = (0..t.len()).map(|i| t.get(i)).collect();
            *t = lsgm::quant::quantise(&values, kind)?;
        }
    }
    if let Some(s) = storage {
        if spec.layers.iter().any(|l| l.storage != s) {
            say!(
                "warning: the threshold and quantiles were calibrated with the old storage; \
                 to recalibrate, fit again with --storage"
            );
        }
        spec.layers.iter_mut().for_each(|l| l.storage = s);
    }
    let new = spec
        .encode()
        .with_context(|| format!("re-encoding {}", model.display()))?;
    write_atomic(out, &new)?;
    say!("{} bytes → {} bytes", bytes.len(), new.len());
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        return fit_onnx(cli.onnx);
    };
    match command {
        Command::Layers {
            onnx,
            input_size,
            logits,
        } => layers(&onnx, input_size, logits),
        Command::Features {
            onnx,
            lsgm,
            data,
            out,
            input,
            extract,
        } => features(&onnx, lsgm.as_deref(), &data, &out, &input, &extract),
        Command::FitFeatures { features, out, fit } => {
            let opts = fit.options();
            opts.validate()?;
            check_output(&out)?;
            let set = read_features(&features)?;
            let source = format!("features:{}", features.display());
            let (bytes, mut report) = fit::fit(&set, &opts, None, source)?;
            let t0 = Instant::now();
            write_atomic(&out, &bytes)?;
            report.seconds.export += t0.elapsed().as_secs_f64();
            to_stdout(|w| writeln!(w, "{}", serde_json::to_string(&report)?))?;
            Ok(())
        }
        Command::Score {
            model,
            features,
            json,
        } => score(&model, &features, json),
        Command::Eval(args) => fit_and_export::eval::run::run(&args),
        Command::Requantise {
            model,
            quantise,
            storage,
            out,
        } => requantise(&model, quantise, storage, &out),
        Command::Inspect { model, json } => {
            let bytes = read_model(&model)?;
            let m = Model::from_bytes(&bytes)?;
            let text = if json {
                serde_json::to_string(&inspect::json(&m, &bytes))? + "\n"
            } else {
                inspect::summary(&m, &bytes)
            };
            to_stdout(|w| w.write_all(text.as_bytes()))?;
            Ok(())
        }
    }
}

/// The engine flags' usage error (`--ep cuda` with tract, …), exit 2 like
/// clap's own, before any file is read.
fn check_engine(cli: &Cli) {
    let extract = match &cli.command {
        None => Some(&cli.onnx.extract),
        Some(Command::Features { extract, .. }) => Some(extract),
        Some(Command::Eval(a)) => Some(&a.extract),
        Some(_) => None,
    };
    if let Some(Err(e)) = extract.map(ExtractArgs::engine) {
        use clap::CommandFactory;
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, e)
            .exit();
    }
}

fn main() {
    let cli = Cli::parse();
    check_engine(&cli);
    if let Err(e) = run(cli) {
        say!("fit-and-export: error: {e:#}");
        std::process::exit(1);
    }
}
