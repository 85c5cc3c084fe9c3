//! Command-line flags shared by the fitting commands.

use crate::fit::FitOptions;
use crate::gmm::{GmmParams, MixtureKind};
use crate::transitions::Counting;
use clap::Args;
use lsgm::{Chain, Covariance, Quantisation, Storage};

/// Every flag that shapes a fit.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Fitting")]
pub struct FitArgs {
    /// EM with exactly N components per layer (instead of the DP default).
    #[arg(long, value_name = "N", conflicts_with = "dp")]
    #[arg(value_parser = component_count)]
    pub components: Option<usize>,
    /// Dirichlet-process mixture with truncation level KMAX (the default, KMAX = 40).
    #[arg(long, value_name = "KMAX", value_parser = component_count)]
    pub dp: Option<usize>,
    /// DP: prune components whose expected weight is below this, in [0, 1).
    #[arg(long, default_value_t = 1e-3, value_parser = prune_cut, allow_negative_numbers = true)]
    pub dp_prune: f64,
    /// Covariance structure of every component.
    #[arg(long, value_enum, default_value = "full")]
    pub covariance: Covariance,
    /// How mixture weights enter the chain.
    #[arg(long, value_enum, default_value = "paper")]
    pub chain: Chain,
    /// How transitions are counted from training traces.
    #[arg(long, value_enum, default_value = "hard")]
    pub transitions: Counting,
    /// Added to every transition count before normalising.
    #[arg(long, default_value_t = 1.0, value_parser = non_negative, allow_negative_numbers = true)]
    pub pseudo_count: f64,
    /// Fraction of rows held out (never fitted) to calibrate the threshold, in [0, 0.9).
    #[arg(long, default_value_t = 0.1, value_parser = holdout_fraction, allow_negative_numbers = true)]
    pub holdout: f64,
    /// Iteration cap [default: 100 for EM, 500 for DP].
    #[arg(long, value_parser = iterations)]
    pub max_iter: Option<usize>,
    /// Convergence threshold on the change of the per-row objective
    /// [default: 1e-3 for EM (scikit-learn's), 1e-5 for DP, whose bound
    /// keeps rising slowly while it empties surplus components].
    #[arg(long, value_parser = non_negative, allow_negative_numbers = true)]
    pub tol: Option<f64>,
    /// Added to covariance diagonals.
    #[arg(long, default_value_t = 1e-6, value_parser = non_negative, allow_negative_numbers = true)]
    pub reg_covar: f64,
    /// Mixture dimension per tap: `auto` projects (PCA) taps wider than 64 to the
    /// fewest axes keeping 99 % of the held-out variance, at most what the
    /// training rows support (K·p(d) ≤ 2n) and at most 64; taps of ≤ 64 that the rows
    /// support are fitted as they are, narrower taps the rows cannot support are projected
    /// the same way; `none` never projects; a number D projects taps wider than D to D.
    #[arg(long, value_name = "auto|none|D", default_value = "auto")]
    pub max_dim: crate::dimension::DimRule,
    /// Seed of every random choice (k-means++, the held-out split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Storage of the transition tables.
    #[arg(long, value_enum, default_value = "u16")]
    pub quantise: Quantisation,
    /// Storage of the means and precision factors (98 % of a full-covariance
    /// model); the threshold is calibrated on the stored model.
    #[arg(long, value_enum, default_value = "f32")]
    pub storage: Storage,
}

/// Default DP truncation level, chosen on the near-OOD validation split
/// (tools/eval/variants.sh): 40 beat 20 and 80.
pub const DEFAULT_DP_KMAX: usize = 40;

/// Defaults of `(tol, max_iter)` for EM and for DP. Measured on 3,000
/// synthetic 3-cluster traces: with DP at tol 1e-3 the fit stopped with 5–20
/// components; at 1e-5 it found 3–4.
pub const EM_DEFAULTS: (f64, usize) = (1e-3, 100);
/// See [`EM_DEFAULTS`].
pub const DP_DEFAULTS: (f64, usize) = (1e-5, 500);

impl FitArgs {
    /// The validated-later options these flags describe.
    pub fn options(&self) -> FitOptions {
        let kind = match (self.components, self.dp) {
            (Some(components), _) => MixtureKind::Em { components },
            (None, k) => MixtureKind::Dp {
                k_max: k.unwrap_or(DEFAULT_DP_KMAX),
                prune: self.dp_prune,
            },
        };
        let (tol, max_iter) = match kind {
            MixtureKind::Em { .. } => EM_DEFAULTS,
            MixtureKind::Dp { .. } => DP_DEFAULTS,
        };
        FitOptions {
            gmm: GmmParams {
                kind,
                covariance: self.covariance,
                reg_covar: self.reg_covar,
                tol: self.tol.unwrap_or(tol),
                max_iter: self.max_iter.unwrap_or(max_iter),
                seed: self.seed,
            },
            chain: self.chain,
            counting: self.transitions,
            pseudo_count: self.pseudo_count,
            holdout: self.holdout,
            max_dim: self.max_dim,
            quantisation: self.quantise,
            storage: self.storage,
        }
    }
}

/// How features are extracted from frames (not stored in the model).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Extraction")]
pub struct ExtractArgs {
    /// Worker threads running the network on frames [default: every core]. Frames are read in
    /// chunks of 64 per thread and dropped once run, so memory grows with N (one inference's
    /// activations per thread), not with the number of frames.
    /// At most 256; more threads than cores only add memory.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// The engine that runs the network: fit with the one the monitor will run on.
    #[command(flatten)]
    pub engine: lsgm::onnx::EngineArgs,
}

/// `--holdout`: a fraction in [0, 0.9), checked as a usage error (exit 2).
fn holdout_fraction(s: &str) -> Result<f64, String> {
    number_in(
        s,
        0.0..0.9,
        "[0, 0.9) (default 0.1: a tenth of the rows calibrate the threshold)",
    )
}

/// `--components`, `--dp`: 1 to 16384 components (the core's limit).
fn component_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(k) if (1..=16384).contains(&k) => Ok(k),
        _ => Err(format!("{s:?} is not a component count from 1 to 16384")),
    }
}

/// `--max-iter`: at least 1.
fn iterations(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not an iteration count of at least 1")),
    }
}

/// `--reg-covar`, `--tol`, `--pseudo-count`: a finite number ≥ 0 (usage error otherwise).
fn non_negative(s: &str) -> Result<f64, String> {
    number_in(
        s,
        0.0..f64::INFINITY,
        "[0, ∞): it must be a non-negative finite number",
    )
}

/// `--dp-prune`: a weight cut in [0, 1).
fn prune_cut(s: &str) -> Result<f64, String> {
    number_in(s, 0.0..1.0, "[0, 1) (default 1e-3)")
}

fn number_in(s: &str, range: std::ops::Range<f64>, what: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside {what}"))
    }
}

impl ExtractArgs {
    /// `--threads` as [`crate::extract::Extraction::threads`] takes it.
    pub fn threads(&self) -> Option<usize> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if let Some(n) = self.threads.filter(|&n| usize::from(n) > cores) {
            crate::say!(
                "warning: --threads {n} on {}: threads beyond the cores run no faster and each \
                 holds its own tract state and frame chunk",
                crate::count(cores, "core", "cores")
            );
        }
        self.threads.map(usize::from)
    }

    /// The engine `--engine`, `--onnxruntime-lib` and `--ep` choose; each
    /// worker runs one frame at a time on one thread (`--threads` workers).
    pub fn engine(&self) -> anyhow::Result<lsgm::onnx::Engine> {
        self.engine.engine(1)
    }
}

/// `--mean` / `--std` values: one for every channel or one per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelValues(pub Vec<f32>);

impl ChannelValues {
    /// The values for `channels` channels, or why they do not fit.
    pub fn for_channels(&self, channels: usize, flag: &str) -> anyhow::Result<Vec<f32>> {
        match self.0.len() {
            1 => Ok(vec![self.0[0]; channels]),
            n if n == channels => Ok(self.0.clone()),
            n => anyhow::bail!("{flag}: {n} values for a {channels}-channel input; give 1 or {channels}"),
        }
    }
}

fn channel_values(s: &str, ok: fn(f32) -> bool, what: &str) -> Result<ChannelValues, String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|x| x.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("expected comma-separated numbers, got {s:?}"))?;
    match v.iter().find(|&&x| !ok(x)) {
        Some(bad) => Err(format!("{bad} is not {what}")),
        None => Ok(ChannelValues(v)),
    }
}

fn means(s: &str) -> Result<ChannelValues, String> {
    channel_values(s, f32::is_finite, "a finite number")
}

fn stds(s: &str) -> Result<ChannelValues, String> {
    channel_values(s, |x| x.is_finite() && x > 0.0, "a positive finite number")
}

fn input_size(s: &str) -> Result<(u32, u32), String> {
    let err = || format!("expected HEIGHTxWIDTH, e.g. 224x224, got {s:?}");
    let (h, w) = s.split_once(['x', 'X']).ok_or_else(err)?;
    let side = |v: &str| v.trim().parse::<u32>().ok().filter(|&v| (1..=16384).contains(&v));
    Ok((side(h).ok_or_else(err)?, side(w).ok_or_else(err)?))
}

fn resize_policy(s: &str) -> Result<String, String> {
    lsgm::model::preprocess::Resize::parse(s, 1, 1)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

fn layer_list(s: &str) -> Result<String, String> {
    if s.split(',').all(|t| t.trim().is_empty()) {
        Err("expected `auto` or a comma list of tap names (see `fit-and-export layers --onnx …`)".into())
    } else {
        Ok(s.to_string())
    }
}

/// `--grid`'s value: one grid side, or one per tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridSides(pub Vec<u8>);

fn grid_sides(s: &str) -> Result<GridSides, String> {
    let max = lsgm::model::wire::Pooling::MAX_GRID;
    s.split(',')
        .map(|t| t.trim().parse::<u8>().ok().filter(|v| (1..=max).contains(v)))
        .collect::<Option<Vec<u8>>>()
        .map(GridSides)
        .ok_or_else(|| format!("expected a grid side in 1..={max}, or one per tap (e.g. 2,2,1), got {s:?}"))
}

/// Which taps to read and how frames become the network's input: the flags
/// of fitting from images and of `features`. Everything here is stored in
/// the model file; what a network needs and these flags do not say is an
/// error naming the flag, never a guess.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Network input (stored in the model)")]
pub struct InputArgs {
    /// `auto` (the last map of each resolution stage) or a comma list of tap names.
    #[arg(long, default_value = "auto", value_parser = layer_list)]
    pub layers: String,
    /// One tap name, repeatable (for names that contain commas); replaces --layers.
    #[arg(long = "layer", value_name = "NAME")]
    pub layer: Vec<String>,
    /// Pool each tapped map over a SIDE×SIDE grid of cells instead of its global mean (SIDE²·C
    /// features, cell-major, cells split as numpy's array_split): one side for every tap, or one per
    /// tap, e.g. 2,2,1. A model with a grid is written as format 5, which older readers refuse
    /// [default: 1, the global mean].
    #[arg(long, value_name = "SIDE[,SIDE…]", value_parser = grid_sides)]
    pub grid: Option<GridSides>,
    /// Per-channel mean subtracted from each pixel, in --input-range units (one value, or one per
    /// channel in the network's channel order), e.g. 0.485,0.456,0.406.
    #[arg(long, value_parser = means, allow_negative_numbers = true)]
    pub mean: Option<ChannelValues>,
    /// Per-channel standard deviation divided by, e.g. 0.229,0.224,0.225.
    #[arg(long, value_parser = stds)]
    pub std: Option<ChannelValues>,
    /// What a pixel is before --mean/--std: 0-1 (pixel / 255, torchvision's ToTensor) or 0-255 (raw).
    #[arg(long, value_name = "0-1|0-255")]
    pub input_range: Option<lsgm::model::preprocess::PixelRange>,
    /// Channel order of a 3-channel network: rgb (PyTorch, PIL) or bgr (OpenCV, Caffe). Required for 3-channel inputs.
    #[arg(long, value_name = "rgb|bgr")]
    pub channel_order: Option<lsgm::model::preprocess::Colour>,
    /// Input size frames are fed at, for a network with a dynamic input size (?×3×?×?).
    #[arg(long, value_name = "HxW", value_parser = input_size)]
    pub input_size: Option<(u32, u32)>,
    /// How frames of another size reach the input: `exact` (refuse them), `stretch`, `crop` or
    /// `crop:SHORTER` (shorter side to SHORTER, then the centre, as torchvision's Resize +
    /// CenterCrop; SHORTER is at least, and by default, the input's larger side: a smaller one would
    /// need padding), `letterbox` or `letterbox:FILL` (fit inside, pad with FILL, default 0)
    /// [default: exact].
    #[arg(long, value_name = "POLICY", value_parser = resize_policy)]
    pub resize: Option<String>,
    /// The output (or tensor) holding the class logits, when the network has several outputs.
    #[arg(long, value_name = "NAME")]
    pub logits: Option<String>,
}

impl InputArgs {
    /// The flags given (other than their defaults), by name: `features
    /// --lsgm` takes all of this from the model file and refuses them.
    pub fn given(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut flag = |set: bool, name| {
            if set {
                v.push(name)
            }
        };
        flag(self.layers != "auto", "--layers");
        flag(!self.layer.is_empty(), "--layer");
        flag(self.grid.is_some(), "--grid");
        flag(self.mean.is_some(), "--mean");
        flag(self.std.is_some(), "--std");
        flag(self.input_range.is_some(), "--input-range");
        flag(self.channel_order.is_some(), "--channel-order");
        flag(self.input_size.is_some(), "--input-size");
        flag(self.resize.is_some(), "--resize");
        flag(self.logits.is_some(), "--logits");
        v
    }

    /// The grid side of each of `taps` taps (1 without `--grid`); a list
    /// of another length is an error naming both counts.
    pub fn grids(&self, taps: usize) -> anyhow::Result<Vec<u8>> {
        match self.grid.as_ref().map(|g| g.0.as_slice()) {
            None => Ok(vec![1; taps]),
            Some(&[side]) => Ok(vec![side; taps]),
            Some(sides) => {
                anyhow::ensure!(
                    sides.len() == taps,
                    "--grid gives {} sides for {taps} taps: give one side (used for every tap) or exactly one per tap",
                    sides.len()
                );
                Ok(sides.to_vec())
            }
        }
    }

    /// What loading the network needs from these flags.
    pub fn load_options(&self) -> lsgm::onnx::LoadOptions {
        lsgm::onnx::LoadOptions {
            input_size: self.input_size,
            logits: self.logits.clone(),
            fitted_for: None,
        }
    }
}

/// Parses `--input-size HxW`.
pub fn parse_input_size(s: &str) -> Result<(u32, u32), String> {
    input_size(s)
}
