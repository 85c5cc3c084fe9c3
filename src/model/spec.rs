//! [`ModelSpec`]: the owned, host-side form of a model, and its encoder.
//!
//! The fitter fills a `ModelSpec`; `encode` lays it out in the wire format,
//! computes the per-component constants, and decodes the result once more with
//! the same validating reader the board uses — so a file that `encode`
//! returns is a file every monitor accepts.

use super::header;
use super::pack::{self, FactorBytes, MeansBytes};
use super::preprocess::Preprocess;
use super::view::Model;
use super::wire::{self, Body, Pooling};
use crate::density::{packed_index, Covariance, Storage, LN_2PI};
use crate::quant::{QuantisedTable, Table};
use crate::{Chain, Error};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

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

/// `log|U| − d/2 · log 2π` of a packed factor, computed in `f64`; NaN when
/// the factor is too short or a diagonal is not positive (the encoder then
/// rejects it). The encoder applies it to the factor as rounded for storage.
fn log_norm(factor: &[f32], d: usize, covariance: Covariance) -> f32 {
    let mut log_det = 0.0f64;
    for j in 0..d {
        let i = match covariance {
            Covariance::Full => packed_index(j, j),
            Covariance::Diag => j,
        };
        match factor.get(i) {
            Some(&v) if v > 0.0 => log_det += libm::log(v as f64),
            _ => return f32::NAN,
        }
    }
    (log_det - 0.5 * d as f64 * LN_2PI) as f32
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

fn le(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

struct LayerBytes {
    proj: Option<(Vec<u8>, Vec<u8>, f32, f32)>,
    log_weights: Vec<u8>,
    log_norms: Vec<u8>,
    means: MeansBytes,
    factors: FactorBytes,
}

impl LayerBytes {
    /// Packs layer `i`; `log|U|` comes from the factors as a reader decodes them.
    fn new(i: usize, l: &LayerSpec) -> Result<Self, Error> {
        let d = l.dim();
        let means: Vec<f32> = l.components.iter().flat_map(|c| c.mean.iter().copied()).collect();
        let factors: Vec<&[f32]> = l
            .components
            .iter()
            .map(|c| c.precision_cholesky.as_slice())
            .collect();
        if factors.iter().any(|f| f.len() != l.covariance.factor_len(d)) {
            return Err(Error::Invalid {
                layer: Some(i.min(u8::MAX as usize) as u8),
                reason: "precision factor has the wrong length",
            });
        }
        let (factor_bytes, decoded) = pack::factors(i, &factors, l.covariance, d, l.storage)?;
        Ok(LayerBytes {
            proj: l.projection.as_ref().map(|p| {
                (
                    le(p.mean.iter().copied()),
                    le(p.matrix.iter().copied()),
                    p.residual_variance,
                    p.residual_dof,
                )
            }),
            log_weights: le(l.components.iter().map(|c| c.log_weight)),
            log_norms: le(decoded.iter().map(|f| log_norm(f, d, l.covariance))),
            means: pack::means(i, &means, l.storage)?,
            factors: factor_bytes,
        })
    }
}

enum TableBytes {
    F32(Vec<u8>),
    U16(u32, Vec<u8>),
    U8(Vec<u8>, Vec<u8>),
}

fn count(v: usize) -> Result<u32, Error> {
    u32::try_from(v).map_err(|_| Error::Encode)
}

impl ModelSpec {
    /// Encodes the model file (header + postcard body) and checks it decodes.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let layer_bytes: Vec<LayerBytes> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerBytes::new(i, l))
            .collect::<Result<_, _>>()?;
        let table_bytes: Vec<TableBytes> = self
            .transitions
            .iter()
            .map(|t| match t {
                QuantisedTable::F32(v) => TableBytes::F32(le(v.iter().copied())),
                QuantisedTable::U16 { base, codes } => {
                    TableBytes::U16(*base, codes.iter().flat_map(|c| c.to_le_bytes()).collect())
                }
                QuantisedTable::U8 { codebook, codes } => {
                    TableBytes::U8(le(codebook.iter().copied()), codes.clone())
                }
            })
            .collect();
        let quantiles = le(self.quantiles.iter().flat_map(|&(q, s)| [q, s]));
        let pre = self
            .preprocess
            .as_ref()
            .map(|p| (p, le(p.mean.iter().copied()), le(p.std.iter().copied())));

        let mut layers = heapless::Vec::new();
        for (l, b) in self.layers.iter().zip(&layer_bytes) {
            let layer = wire::Layer {
                name: &l.name,
                pooling: l.pooling,
                dim_in: count(l.dim_in)?,
                projection: b
                    .proj
                    .as_ref()
                    .map(
                        |(mean, matrix, residual_variance, residual_dof)| wire::Projection {
                            mean,
                            matrix,
                            residual_variance: *residual_variance,
                            residual_dof: *residual_dof,
                        },
                    ),
                dim: count(l.dim())?,
                covariance: l.covariance,
                components: count(l.components.len())?,
                log_weights: &b.log_weights,
                log_norms: &b.log_norms,
                means: match &b.means {
                    MeansBytes::F32(values) => wire::Means::F32 { values },
                    MeansBytes::F16(values) => wire::Means::F16 { values },
                },
                factors: match &b.factors {
                    FactorBytes::F32(values) => wire::Factors::F32 { values },
                    FactorBytes::F16(values) => wire::Factors::F16 { values },
                    FactorBytes::I8 { scales, codes } => wire::Factors::I8 { scales, codes },
                },
                median_contribution: l.median_contribution,
            };
            layers.push(layer).map_err(|_| Error::TooManyLayers)?;
        }
        let mut transitions = heapless::Vec::new();
        for t in &table_bytes {
            let t = match t {
                TableBytes::F32(values) => wire::Transition::F32 { values },
                TableBytes::U16(base, codes) => wire::Transition::U16 { base: *base, codes },
                TableBytes::U8(codebook, codes) => wire::Transition::U8 { codebook, codes },
            };
            transitions.push(t).map_err(|_| Error::TooManyLayers)?;
        }
        let body = Body {
            source: &self.source,
            chain: self.chain,
            threshold: self.threshold,
            calibration_tpr: self.calibration_tpr,
            quantiles: &quantiles,
            preprocess: pre.as_ref().map(|(p, mean, std)| wire::Preprocess {
                input: &p.input,
                logits: &p.logits,
                layout: p.layout,
                colour: p.colour,
                height: p.height,
                width: p.width,
                resize: p.resize,
                datum: p.datum,
                range: p.range,
                mean,
                std,
            }),
            layers,
            transitions,
        };
        let body = postcard::to_allocvec(&body).map_err(|_| Error::Encode)?;
        let mut out = Vec::with_capacity(header::HEADER_LEN + body.len());
        out.extend_from_slice(&header::header(&body)?);
        out.extend_from_slice(&body);
        Model::from_bytes(&out)?;
        Ok(out)
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
