//! [`ModelSpec`]: the owned, host-side form of a model, and its encoder.
//!
//! Encoding has two steps. [`ModelSpec::pack`] lays every array out in the
//! wire format's bytes (the expensive part: `f16`/`i8` rounding, the
//! per-component log norms, see [`super::pack`]) and returns a
//! [`PackedModel`]; that one lends its buffers to the [`wire`] enums, gives
//! the validated [`Model`] without serialising ([`PackedModel::model`]),
//! takes the calibration ([`PackedModel::calibrate`]) and writes the file
//! ([`PackedModel::to_bytes`]). Every file it writes has passed the same
//! validation the board runs, so a file that `encode` returns is a file
//! every monitor accepts.

use super::header;
use super::pack::{self, GaussianBytes, SharedBytes};
use super::preprocess::Preprocess;
use super::view::Model;
use super::wire::{self, Body, Pooling};
use crate::error::invalid;
use crate::kind::{Covariance, Storage};
use crate::quant::{QuantisedTable, Table};
use crate::{Chain, Error};
use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;

/// A projection `z = W (x − mean)`, `W` row-major `dim × dim_in`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionSpec {
    /// Centring vector.
    pub mean: Vec<f32>,
    /// Row-major matrix with orthonormal rows.
    pub matrix: Vec<f32>,
    /// Variance `σ²` of each dropped direction (see
    /// [`crate::density::Projection`]).
    pub residual_variance: f32,
    /// Degrees of freedom `ν` of the residual term, `0 ≤ ν ≤ dim_in − dim`.
    pub residual_dof: f32,
}

/// One Gaussian component.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentSpec {
    /// `log φ_k`.
    pub log_weight: f32,
    /// Mean (`dim`).
    pub mean: Vec<f32>,
    /// Packed upper-triangular precision Cholesky factor (full, see
    /// [`crate::density`]) or `1/σ` per dimension (diag).
    pub precision_cholesky: Vec<f32>,
}

/// One tapped layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    /// Tap name.
    pub name: String,
    /// Pooling kind.
    pub pooling: Pooling,
    /// Feature length before projection.
    pub dim_in: usize,
    /// Optional projection.
    pub projection: Option<ProjectionSpec>,
    /// Covariance kind.
    pub covariance: Covariance,
    /// Precision of the stored means and factors. The components hold the
    /// full-precision values; the encoder rounds them.
    pub storage: Storage,
    /// Components.
    pub components: Vec<ComponentSpec>,
    /// Median contribution on held-out in-distribution data.
    pub median_contribution: f32,
}

impl LayerSpec {
    /// Dimension of the mixture.
    pub fn dim(&self) -> usize {
        self.components.first().map_or(self.dim_in, |c| c.mean.len())
    }
}

/// A whole model, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Free text naming the network (file name, hash).
    pub source: String,
    /// Chain mode.
    pub chain: Chain,
    /// Calibrated threshold.
    pub threshold: f32,
    /// TPR of the threshold on held-out in-distribution data.
    pub calibration_tpr: f32,
    /// `(q, score)` quantiles of held-out in-distribution scores.
    pub quantiles: Vec<(f32, f32)>,
    /// Input preprocessing; `None` when fitted from feature files.
    pub preprocess: Option<Preprocess>,
    /// Layers.
    pub layers: Vec<LayerSpec>,
    /// `layers.len() − 1` tables, row-major `K_i × K_{i+1}`.
    pub transitions: Vec<QuantisedTable>,
}

fn count(v: usize) -> Result<u32, Error> {
    u32::try_from(v).map_err(|_| Error::Encode)
}

/// The calibration fields of a packed model (see [`PackedModel::calibrate`]).
#[derive(Debug, Clone)]
struct CalibrationBytes {
    threshold: f32,
    calibration_tpr: f32,
    /// `(q, score)` pairs, `f32` LE.
    quantiles: Vec<u8>,
    /// One per layer.
    median_contributions: Vec<f32>,
}

/// A [`ModelSpec`] with every array packed for its storage
/// ([`ModelSpec::pack`]): the spec's model file short of its calibration
/// and serialisation. It lends its buffers to the [`wire`] enums of the
/// body it builds, gives the validated [`Model`] without serialising
/// ([`PackedModel::model`]) and writes the file ([`PackedModel::to_bytes`]).
/// It borrows the spec, so the spec cannot change under it; only the
/// calibration can, through [`PackedModel::calibrate`].
#[derive(Debug)]
pub struct PackedModel<'s> {
    spec: &'s ModelSpec,
    /// Shared with the models [`PackedModel::with_storage`] makes.
    shared: Cow<'s, SharedBytes>,
    gaussians: Vec<GaussianBytes>,
    calibration: CalibrationBytes,
    /// Whether the arrays have passed the reader's validation.
    checked: Cell<bool>,
}

impl ModelSpec {
    /// Packs every array in the wire format, each layer's means and factors
    /// at its [`LayerSpec::storage`] (see [`PackedModel`]). Fails on values
    /// that storage cannot hold ([`Error::Storage`]) or factors of the wrong
    /// length; everything else is checked when the packed model is first
    /// validated.
    pub fn pack(&self) -> Result<PackedModel<'_>, Error> {
        let gaussians = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| GaussianBytes::pack(i, l, l.storage))
            .collect::<Result<_, _>>()?;
        Ok(PackedModel {
            spec: self,
            shared: Cow::Owned(SharedBytes::pack(self)),
            gaussians,
            calibration: CalibrationBytes {
                threshold: self.threshold,
                calibration_tpr: self.calibration_tpr,
                quantiles: pack::le32(self.quantiles.iter().flat_map(|&(q, s)| [q, s])),
                median_contributions: self.layers.iter().map(|l| l.median_contribution).collect(),
            },
            checked: Cell::new(false),
        })
    }

    /// Encodes the model file (header + postcard body), validated as the
    /// board reads it: [`ModelSpec::pack`] then [`PackedModel::to_bytes`].
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.pack()?.to_bytes()
    }

    /// The owned form of a decoded model (what `inspect --json` dumps).
    pub fn from_model(model: &Model<'_>) -> ModelSpec {
        let layers = model
            .layers()
            .iter()
            .map(|l| {
                let g = l.gaussians();
                LayerSpec {
                    name: l.name().to_string(),
                    pooling: l.pooling(),
                    dim_in: l.dim_in(),
                    projection: l.projection().map(|p| ProjectionSpec {
                        mean: p.mean().iter().collect(),
                        matrix: p.matrix().iter().collect(),
                        residual_variance: p.residual_variance(),
                        residual_dof: p.residual_dof(),
                    }),
                    covariance: g.covariance(),
                    storage: g.storage(),
                    components: (0..g.components())
                        .map(|k| ComponentSpec {
                            log_weight: l.log_weight(k),
                            mean: g.mean(k).iter().collect(),
                            precision_cholesky: g.factor(k).iter().collect(),
                        })
                        .collect(),
                    median_contribution: l.median_contribution(),
                }
            })
            .collect();
        let transitions = (0..model.num_layers() - 1)
            .map(|i| match *model.transition(i) {
                Table::F32(v) => QuantisedTable::F32(v.iter().collect()),
                Table::U16 { base, codes } => QuantisedTable::U16 {
                    base,
                    codes: codes
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect(),
                },
                Table::U8 { codebook, codes } => QuantisedTable::U8 {
                    codebook: codebook.iter().collect(),
                    codes: codes.to_vec(),
                },
            })
            .collect();
        ModelSpec {
            source: model.source().to_string(),
            chain: model.chain(),
            threshold: model.threshold(),
            calibration_tpr: model.calibration_tpr(),
            quantiles: model.quantiles().collect(),
            preprocess: model.preprocess().map(Preprocess::from_wire),
            layers,
            transitions,
        }
    }
}

impl PackedModel<'_> {
    /// The model as [`Model::from_bytes`] reads its file, validated the same
    /// way but without serialising: what a fit scores its rows with before
    /// it knows the calibration. Validates once; a later
    /// [`PackedModel::to_bytes`] does not validate again.
    pub fn model(&self) -> Result<Model<'_>, Error> {
        let model = Model::from_body(self.body()?)?;
        self.checked.set(true);
        Ok(model)
    }

    /// The same model with every layer's means and factors packed at
    /// `storage` instead; everything else is shared, not packed again (a
    /// fit scores this f32 twin to report what reduced storage costs).
    pub fn with_storage(&self, storage: Storage) -> Result<PackedModel<'_>, Error> {
        let gaussians = (self.spec.layers.iter().zip(&self.gaussians))
            .enumerate()
            .map(|(i, (l, g))| {
                if g.storage() == storage {
                    Ok(g.clone())
                } else {
                    GaussianBytes::pack(i, l, storage)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(PackedModel {
            spec: self.spec,
            shared: Cow::Borrowed(&*self.shared),
            gaussians,
            calibration: self.calibration.clone(),
            checked: Cell::new(false),
        })
    }

    /// Sets the calibration: the threshold, its TPR, the `(q, score)`
    /// quantiles and one median contribution per layer (nothing else of the
    /// model depends on them, so nothing is packed again). Checked as the
    /// reader checks them: [`Error::Invalid`] for a non-finite value, a TPR
    /// outside `[0, 1]` or a median count that is not the layer count.
    pub fn calibrate(
        &mut self,
        threshold: f32,
        calibration_tpr: f32,
        quantiles: &[(f32, f32)],
        median_contributions: &[f32],
    ) -> Result<(), Error> {
        if !threshold.is_finite() {
            return Err(invalid(None, "threshold is not finite"));
        }
        if !(0.0..=1.0).contains(&calibration_tpr) {
            return Err(invalid(None, "calibration TPR must be in [0, 1]"));
        }
        if !quantiles.iter().all(|(q, s)| q.is_finite() && s.is_finite()) {
            return Err(invalid(None, "quantiles must be finite (q, score) pairs"));
        }
        if median_contributions.len() != self.gaussians.len() {
            return Err(invalid(None, "need one median contribution per layer"));
        }
        if let Some(i) = median_contributions.iter().position(|m| !m.is_finite()) {
            return Err(invalid(Some(i as u8), "median contribution is not finite"));
        }
        self.calibration = CalibrationBytes {
            threshold,
            calibration_tpr,
            quantiles: pack::le32(quantiles.iter().flat_map(|&(q, s)| [q, s])),
            median_contributions: median_contributions.to_vec(),
        };
        Ok(())
    }

    /// The model file: header and postcard body. Validated first unless
    /// [`PackedModel::model`] already did.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let body = self.body()?;
        let serialised = postcard::to_allocvec(&body).map_err(|_| Error::Encode)?;
        let mut out = Vec::with_capacity(header::HEADER_LEN + serialised.len());
        // The oldest version that can hold the body, so that readers of
        // version 4 keep reading every model without a grid pooling.
        let grid = body.layers.iter().any(|l| l.pooling.is_grid());
        let version = if grid { header::FORMAT_VERSION } else { 4 };
        out.extend_from_slice(&header::header(version, &serialised)?);
        out.extend_from_slice(&serialised);
        if !self.checked.get() {
            Model::from_body(body)?;
            self.checked.set(true);
        }
        Ok(out)
    }

    /// The wire body over the packed buffers.
    fn body(&self) -> Result<Body<'_>, Error> {
        let spec = self.spec;
        let mut layers = heapless::Vec::new();
        for i in 0..spec.layers.len() {
            layers.push(self.layer(i)?).map_err(|_| Error::TooManyLayers)?;
        }
        let mut transitions = heapless::Vec::new();
        for (t, bytes) in spec.transitions.iter().zip(&self.shared.tables) {
            transitions
                .push(pack::transition(t, bytes))
                .map_err(|_| Error::TooManyLayers)?;
        }
        let preprocess = spec.preprocess.as_ref().zip(self.shared.preprocess.as_ref());
        Ok(Body {
            source: &spec.source,
            chain: spec.chain,
            threshold: self.calibration.threshold,
            calibration_tpr: self.calibration.calibration_tpr,
            quantiles: &self.calibration.quantiles,
            preprocess: preprocess.map(|(p, (mean, std))| p.to_wire(mean, std)),
            layers,
            transitions,
        })
    }

    /// Layer `i` of the wire body.
    fn layer(&self, i: usize) -> Result<wire::Layer<'_>, Error> {
        let (l, shared, g) = (&self.spec.layers[i], &self.shared.layers[i], &self.gaussians[i]);
        let projection = l.projection.as_ref().zip(shared.projection.as_ref());
        Ok(wire::Layer {
            name: &l.name,
            pooling: l.pooling,
            dim_in: count(l.dim_in)?,
            projection: projection.map(|(p, (mean, matrix))| wire::Projection {
                mean,
                matrix,
                residual_variance: p.residual_variance,
                residual_dof: p.residual_dof,
            }),
            dim: count(l.dim())?,
            covariance: l.covariance,
            components: count(l.components.len())?,
            log_weights: &shared.log_weights,
            log_norms: g.log_norms(),
            means: g.means(),
            factors: g.factors(),
            median_contribution: self.calibration.median_contributions[i],
        })
    }
}
