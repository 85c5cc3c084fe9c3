//! Phases 2 and 3 of a fit, one layer at a time: the layer's mixture
//! ([`fit_mixture`]: dimension, projection, EM or the DP fit) and the
//! responsibilities and log-likelihoods of the rows under it
//! ([`responsibilities`]); then what the layer adds to the report
//! ([`report`]) and to the model ([`LayerFit::spec`]).

use super::report::{HeldOutCheck, LayerReport, ResidualReport};
use super::split::Split;
use super::FitOptions;
use crate::dimension::{self, Choice};
use crate::gmm::{self, GmmParams, Mixture};
use crate::pca::Pca;
use anyhow::{ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lsgm::model::wire::Pooling;
use lsgm::{Covariance, LayerSpec};
use nalgebra::{DMatrix, DVector};
use std::time::Instant;

/// One tap's features: what phase 2 reads.
#[derive(Debug, Clone, Copy)]
pub struct Tap<'a> {
    /// Tap name.
    pub name: &'a str,
    /// How its features were pooled.
    pub pooling: Pooling,
    /// Every row's features (`N × dim_in`).
    pub x: &'a DMatrix<f64>,
}

/// Phase 2's result: one layer's mixture and the rows it was fitted on.
#[derive(Debug)]
pub struct LayerFit {
    /// Tap name.
    pub name: String,
    /// How its features were pooled.
    pub pooling: Pooling,
    /// The dimension chosen, its projection and why.
    pub choice: Choice,
    /// The mixture the model stores (pruned for the DP fit).
    pub mixture: Mixture,
    /// Iterations run.
    pub iterations: usize,
    /// Converged within `max_iter`.
    pub converged: bool,
    /// The one component left was refitted in closed form on every
    /// training row ([`gmm::Fit::closed_form`]): `converged` does not bear
    /// on it.
    pub closed_form: bool,
    /// The training rows' features (`dim_in` wide).
    pub train: DMatrix<f64>,
    /// The same rows projected (`dim` wide): what the mixture was fitted on.
    pub projected: DMatrix<f64>,
    /// The held-out rows' features.
    pub held_out: DMatrix<f64>,
    /// Wall seconds of this phase (projection, k-means, EM/VI).
    pub seconds: f64,
}

/// Phase 3's result for one layer.
#[derive(Debug)]
pub struct Responsibilities {
    /// The training rows' responsibilities (`N_train × K`): what the
    /// transitions count.
    pub train: DMatrix<f64>,
    /// Each training row's log-likelihood.
    pub train_ll: DVector<f64>,
    /// Each held-out row's log-likelihood (none without held-out rows).
    pub held_out_ll: Option<DVector<f64>>,
    /// Wall seconds for the training rows (reported with the transitions).
    pub seconds: f64,
}

/// Phase 2: fits one tap's mixture on the training rows of `split`. It
/// picks the dimension first (`--max-dim`, projecting with PCA fitted on
/// the training rows and judged on the held-out ones), because the mixture
/// lives in the projected space, then runs EM or the DP fit
/// ([`gmm::fit`]) behind a progress bar. Errors name the layer; warnings
/// (dead channels the mixture keeps, too few rows for the dimension, no
/// convergence) say which flag to change, and are worded after the choice
/// they depend on is made.
pub fn fit_mixture(tap: Tap<'_>, split: &Split, opts: &FitOptions) -> Result<LayerFit> {
    let t0 = Instant::now();
    let (name, p) = (tap.name, &opts.gmm);
    let train = tap.x.select_rows(split.train.iter());
    let constant = constant_features(name, &train)?;
    let held_out = tap.x.select_rows(split.held_out.iter());
    let choice = dimension::choose(opts.max_dim, &train, &held_out, p.k(), p.covariance);
    say_constant(name, &constant, train.ncols(), &choice, p.reg_covar);
    let projected = project(choice.projection.as_ref(), &train);
    warn_few_rows(name, &projected, p, opts.max_dim);
    let (fitted, closed_form, mixture) = fit_with_progress(&projected, name, p)?;
    Ok(LayerFit {
        name: name.to_string(),
        pooling: tap.pooling,
        choice,
        mixture,
        iterations: fitted.n_iter,
        converged: fitted.converged,
        closed_form,
        train,
        projected,
        held_out,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The features constant over the training rows (dead channels); an error
/// when every feature is.
fn constant_features(name: &str, train: &DMatrix<f64>) -> Result<Vec<usize>> {
    let constant: Vec<usize> = train
        .column_iter()
        .enumerate()
        .filter(|(_, c)| c.max() == c.min())
        .map(|(j, _)| j)
        .collect();
    ensure!(
        constant.len() < train.ncols(),
        "layer {name}: every feature is constant over the training rows; this layer carries no information, drop it"
    );
    Ok(constant)
}

/// Says what became of the `constant` features once the dimension is
/// chosen: left out by the projection (a note: nothing to do), or kept by
/// the mixture with `reg_covar` as their whole variance (a warning: a frame
/// in which one moves at all scores far lower), with the `--max-dim` that
/// leaves them out.
fn say_constant(name: &str, constant: &[usize], d_in: usize, choice: &Choice, reg_covar: f64) {
    if constant.is_empty() {
        return;
    }
    let (c, (is, them)) = (
        constant.len(),
        if constant.len() == 1 {
            ("is", "it")
        } else {
            ("are", "them")
        },
    );
    let what = format!("{c} of {d_in} features {is} constant over the training rows (dead channels?)");
    match &choice.projection {
        Some(pca) if leaves_out(pca, constant) => crate::say!(
            "note: layer {name}: {what}; the projection to {} leaves {them} out (the residual term \
             still sees a frame in which one moves)",
            crate::count(pca.matrix.nrows(), "dimension", "dimensions")
        ),
        kept => crate::say!(
            "warning: layer {name}: {what}; the mixture {} with --reg-covar {reg_covar:e} as {} variance, \
             so a frame in which one moves at all scores far lower. --max-dim {} or lower leaves {them} out",
            match kept {
                Some(pca) => format!(
                    "keeps {them} in its {}",
                    crate::count(pca.matrix.nrows(), "dimension", "dimensions")
                ),
                None => format!("fits {them} at full width"),
            },
            if c == 1 { "its" } else { "their" },
            d_in - c
        ),
    }
}

/// Whether the projection's axes carry no weight on the `constant`
/// features (PCA's axes of non-zero variance are orthogonal to them; an
/// axis of zero variance kept by `--max-dim` may not be).
fn leaves_out(pca: &Pca, constant: &[usize]) -> bool {
    constant.iter().all(|&j| pca.matrix.column(j).amax() < 1e-6)
}

/// Warns when the training rows are few for the mixture's dimension
/// (`K·p(d) ≤ 2n`, [`dimension::supported_dim`]; only `--max-dim none` or
/// a number can ask for more than that), naming the `--max-dim` they support.
fn warn_few_rows(name: &str, projected: &DMatrix<f64>, p: &GmmParams, rule: dimension::DimRule) {
    let (n, d, k) = (projected.nrows(), projected.ncols(), p.k());
    let supported = dimension::supported_dim(n, k, p.covariance);
    if d > supported {
        crate::say!(
            "warning: layer {name}: {n} training rows are few for {} of {d} dimensions \
             (they support about {}: K·p(d) ≤ 2n); held-out frames may score below training frames. \
             Fit on more frames{} use --max-dim {supported} (now {rule}){}",
            crate::count(
                k,
                &format!("{}-covariance component", p.covariance),
                &format!("{}-covariance components", p.covariance)
            ),
            crate::count(supported, "dimension", "dimensions"),
            if p.covariance == Covariance::Diag {
                ", or"
            } else {
                ","
            },
            or_diag(p.covariance, ", or"),
        );
    }
}

/// ` or --covariance diag` (after `sep`) as advice, unless the fit is
/// diagonal already.
fn or_diag(covariance: Covariance, sep: &str) -> String {
    match covariance {
        Covariance::Diag => String::new(),
        _ => format!("{sep} --covariance diag"),
    }
}

/// `x` projected, or `x` itself without a projection.
fn project(pca: Option<&Pca>, x: &DMatrix<f64>) -> DMatrix<f64> {
    pca.map_or_else(|| x.clone(), |p| p.apply(x))
}

/// [`gmm::fit`] behind a progress bar: the fit, whether its one component
/// was refitted in closed form, and the mixture it exports; said when it
/// did not converge ([`say_not_converged`]).
fn fit_with_progress(z: &DMatrix<f64>, name: &str, p: &GmmParams) -> Result<(gmm::Fitted, bool, Mixture)> {
    let bar = ProgressBar::new(p.max_iter as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} iter  {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("layer {name}"));
    let mut progress = |it: usize, ll: f64| {
        bar.set_position(it as u64);
        bar.set_message(format!("objective {ll:.4}"));
    };
    let fit = gmm::fit(z, p, &mut progress);
    bar.finish_and_clear();
    let fit = fit.map_err(|e| {
        anyhow::anyhow!(
            "layer {name}: the covariance of component {} stays singular even after re-seeding \
             (reg_covar = {}). Try a larger --reg-covar (e.g. 1e-4), fewer components, \
             --covariance diag, or a projection with --max-dim",
            e.component,
            p.reg_covar
        )
    })?;
    let mixture = fit.exported.with_context(|| format!("layer {name}"))?;
    if !fit.fitted.converged {
        say_not_converged(name, p, &mixture, fit.closed_form, z.nrows());
    }
    Ok((fit.fitted, fit.closed_form, mixture))
}

/// scikit-learn's ConvergenceWarning, with what to change — unless the fit
/// left one component, refitted in closed form ([`gmm::Fit::closed_form`]):
/// then the iterations it did not finish cannot change the model, and a
/// note says so instead of a warning asking for more of them.
fn say_not_converged(name: &str, p: &GmmParams, mixture: &Mixture, closed_form: bool, rows: usize) {
    let (what, fewer) = p.kind.not_converged();
    let stopped = format!(
        "{what} stopped after --max-iter {} without converging",
        crate::count(p.max_iter, "iteration", "iterations")
    );
    if closed_form {
        crate::say!(
            "note: layer {name}: {stopped}, but it left 1 component, and one Gaussian's fit is closed-form: \
             that component is fitted on all {rows} training rows, where the iterations lead, so stopping \
             early does not change the model"
        );
    } else {
        crate::say!(
            "warning: layer {name}: {stopped} (the objective still changed by more than --tol {:e}); \
             the model keeps its {} as they stood; raise --max-iter, loosen --tol, or try {fewer}{}",
            p.tol,
            crate::count(mixture.k(), "component", "components"),
            or_diag(p.covariance, " or")
        );
    }
}

impl LayerFit {
    /// A layer's log-likelihood `ll` of the rows `x` plus its projection's
    /// residual term, as the core scores it.
    fn with_residual(&self, mut ll: DVector<f64>, x: &DMatrix<f64>) -> DVector<f64> {
        if let Some(p) = &self.choice.projection {
            ll += DVector::from_vec(p.residual_log_density(x));
        }
        ll
    }

    /// The layer as the model stores it; calibration sets its median
    /// contribution later.
    pub fn spec(&self, opts: &FitOptions) -> LayerSpec {
        LayerSpec {
            name: self.name.clone(),
            pooling: self.pooling,
            dim_in: self.train.ncols(),
            projection: self.choice.projection.as_ref().map(Pca::to_spec),
            covariance: opts.gmm.covariance,
            storage: opts.storage,
            components: self.mixture.to_specs(),
            median_contribution: 0.0,
        }
    }
}

/// Phase 3: the training rows' responsibilities under the layer's mixture
/// (what the transitions count: phase 4 needs every layer's) and the
/// training and held-out rows' log-likelihoods with the projection's
/// residual term (what the report compares).
pub fn responsibilities(fit: &LayerFit) -> Responsibilities {
    let t0 = Instant::now();
    let (ll, log_resp) = fit.mixture.log_resp(&fit.projected);
    let train_ll = fit.with_residual(ll, &fit.train);
    let train = log_resp.map(f64::exp);
    let seconds = t0.elapsed().as_secs_f64();
    let held_out_ll = (fit.held_out.nrows() > 0).then(|| {
        let z = project(fit.choice.projection.as_ref(), &fit.held_out);
        fit.with_residual(fit.mixture.log_resp(&z).0, &fit.held_out)
    });
    Responsibilities {
        train,
        train_ll,
        held_out_ll,
        seconds,
    }
}

/// What besides more frames could bring a layer's held-out rows back among
/// its training rows: a lower dimension while it has more than one, fewer
/// components while it has more than one.
fn remedies(fit: &LayerFit) -> String {
    let (d, k) = (fit.projected.ncols(), fit.mixture.k());
    match (d > 1, k > 1) {
        (true, true) => format!(
            ", or lower the dimension (--max-dim below {d}) or the components (now {k}: --dp / --components)"
        ),
        (true, false) => format!(", or lower the dimension (--max-dim below {d})"),
        (false, true) => format!(", or lower the components (now {k}: --dp / --components)"),
        (false, false) => String::new(),
    }
}

/// The layer's entry of the fit report, also said on stderr (a mixture
/// left with one component of the `k_start` it started from says it was
/// refitted in closed form), with a warning when its held-out rows score
/// like the training rows' outliers.
pub fn report(fit: &LayerFit, r: &Responsibilities, k_start: usize) -> LayerReport {
    let (name, pca) = (&fit.name, fit.choice.projection.as_ref());
    let check = HeldOutCheck::of(
        r.train_ll.as_slice(),
        r.held_out_ll.as_ref().map(|h| h.as_slice()),
    );
    crate::say!(
        "layer {name}: {}{}; {}{}; median log-likelihood {:.1} training{}",
        fit.choice.reason,
        pca.map_or(String::new(), |p| format!(
            " (residual term for the {}: σ² {:.3e}, ν {:.1}, from {})",
            crate::count(
                p.matrix.ncols() - p.matrix.nrows(),
                "dropped axis",
                "dropped axes"
            ),
            p.residual.0,
            p.residual.1,
            match p.residual_rows {
                (h, 0) => format!("{h} held-out rows"),
                (0, t) => format!("{t} training rows"),
                (h, t) => format!("{h} held-out and {t} training rows"),
            }
        )),
        crate::count(fit.mixture.k(), "component", "components"),
        if fit.closed_form && k_start > 1 {
            " (fitted in closed form)"
        } else {
            ""
        },
        check.train_median,
        match (check.held_out_median, check.held_out_below_train_p5) {
            (Some(m), Some(b)) => format!(
                ", {m:.1} held-out ({:.1} % below the training 5th percentile)",
                b * 100.0
            ),
            _ => String::new(),
        }
    );
    if let Some(warning) = check.warning("log-likelihood", &remedies(fit)) {
        crate::say!("warning: layer {name}: {warning}");
    }
    LayerReport {
        name: name.clone(),
        dim_in: fit.train.ncols(),
        dim: fit.projected.ncols(),
        dim_reason: fit.choice.reason.clone(),
        components: fit.mixture.k(),
        iterations: fit.iterations,
        converged: fit.converged,
        closed_form: fit.closed_form,
        mean_log_likelihood: r.train_ll.mean(),
        held_out_log_likelihood: r.held_out_ll.as_ref().map(|h| h.mean()),
        held_out: check,
        explained_variance: pca.map_or(1.0, |p| p.explained),
        held_out_variance: fit.choice.held_out_share,
        residual: pca.map(|p| ResidualReport {
            variance: p.residual.0,
            dof: p.residual.1,
            dropped_axes: p.matrix.ncols() - p.matrix.nrows(),
            held_out_rows: p.residual_rows.0,
            training_rows: p.residual_rows.1,
        }),
        seconds: fit.seconds,
    }
}
