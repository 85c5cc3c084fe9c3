//! The scoring hot path: the scaled forward recursion over the layers.
//!
//! With `e_i(k) = N(x_i | k) · [φ_i(k)]` the recursion is
//! `α_1(k) = e_1(k)`, `α_i(k) = e_i(k) Σ_j A_{i−1}(j, k) α_{i−1}(j)` and the
//! score is `log Σ_k α_m(k)`. Done naively that underflows at once (log
//! densities of −300 are ordinary), so each step works relative to its own
//! largest log-density `M_i` and keeps `α` normalised:
//!
//! 1. `ℓ_k = log N(x_i|k) [+ log φ_i(k)]`, `M_i = max_k ℓ_k` — K densities
//!    (a projected layer's `N(x_i|k)` includes its residual term, see
//!    [`crate::density::Projection`]);
//! 2. `b = αᵀ A_{i−1}` — the K×K product, in linear space (`b = 1` at layer 1);
//! 3. `u_k = exp(ℓ_k − M_i) · b_k`, `c_i = Σ_k u_k`, `α = u / c_i` — K `exp`s;
//! 4. the layer's contribution is `M_i + ln c_i`; the score is their sum.
//!
//! `α` entries below `f32`'s normal range (≈1.2e-38) are lost, which is
//! harmless while `c_i` stays large: the lost mass is at most `K²·1.2e-38`, so
//! for `c_i ≥ 1e-20` the relative error is below `K²·1.2e-18` (3·10⁻¹⁰ even
//! for K = 16384). When some `c_i` falls under that (a frame far outside the
//! data, whose likely components are unreachable from the previous layer's),
//! the whole frame is rescored in log space (`forward_log`, `K²` `exp`s per
//! layer), so the result is exact and finite whenever the inputs are finite,
//! or [`Error::Overflow`] when every component a layer can reach has a
//! density below `f32`'s range.
//! `paper` applies `φ_i` at every layer (the paper's evaluated Eq. 4);
//! `markov` only at the first (an HMM).

use crate::density::Mixture;
use crate::kind::Chain;
use crate::math::{exp, ln};
use crate::quant::Table;
use crate::scratch::ScratchSizes;
use crate::Error;

impl Chain {
    /// Whether layer `i`'s mixture weights multiply its densities.
    #[inline]
    pub fn uses_weights(self, i: usize) -> bool {
        matches!(self, Chain::Paper) || i == 0
    }
}

/// Below this `c_i`, lost subnormal `α` mass could matter: rescore in logs.
const UNDERFLOW: f32 = 1e-20;

/// The layers a frame's trace runs through, as the recursion reads them:
/// the chain mode, one mixture per layer and the `m − 1` tables between them,
/// with the scratch sizes the mixtures need. `L` is anything that holds a
/// mixture (the model's layer views), so this file knows nothing of the model
/// file around them.
#[derive(Debug)]
pub(crate) struct Layers<'m, L> {
    pub chain: Chain,
    pub mixtures: &'m [L],
    pub tables: &'m [Table<'m>],
    pub sizes: ScratchSizes,
}

/// Checks the caller's buffers, splits the scratch, runs the fast path and,
/// if it reports underflow, the log-space path.
pub(crate) fn forward<'a, L: AsRef<Mixture<'a>>>(
    net: Layers<'_, L>,
    features: &[&[f32]],
    scratch: &mut [f32],
    contributions: &mut [f32],
) -> Result<f32, Error> {
    let m = net.mixtures.len();
    if features.len() != m {
        return Err(Error::LayerCount {
            expected: m as u16,
            got: features.len().min(u16::MAX as usize) as u16,
        });
    }
    let needed = net.sizes.len();
    if scratch.len() < needed {
        return Err(Error::ScratchTooSmall {
            needed: needed as u32,
            got: scratch.len().min(u32::MAX as usize) as u32,
        });
    }
    if contributions.len() < m {
        return Err(Error::ContributionsTooSmall);
    }
    for (i, (layer, &x)) in net.mixtures.iter().zip(features).enumerate() {
        let dim_in = layer.as_ref().dim_in();
        if x.len() != dim_in {
            return Err(Error::FeatureDim {
                layer: i as u8,
                expected: dim_in as u32,
                got: x.len().min(u32::MAX as usize) as u32,
            });
        }
        if let Some(bad) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteFeature {
                layer: i as u8,
                index: bad as u32,
            });
        }
    }
    let sizes = net.sizes;
    let (centred, rest) = scratch.split_at_mut(sizes.max_dim_in_projected);
    let (z, rest) = rest.split_at_mut(sizes.max_dim);
    let (diff, rest) = rest.split_at_mut(sizes.max_dim);
    let (ld, rest) = rest.split_at_mut(sizes.max_k);
    let (b, rest) = rest.split_at_mut(sizes.max_k);
    let mut bufs = Buffers {
        centred,
        z,
        diff,
        ld,
        b,
        alpha: &mut rest[..sizes.max_k],
    };
    match forward_linear(&net, features, &mut bufs, contributions)? {
        Some(total) => Ok(total),
        None => forward_log(&net, features, &mut bufs, contributions),
    }
}

struct Buffers<'s> {
    centred: &'s mut [f32],
    z: &'s mut [f32],
    diff: &'s mut [f32],
    ld: &'s mut [f32],
    b: &'s mut [f32],
    alpha: &'s mut [f32],
}

/// Step 1 for layer `i`: `ℓ` into `bufs.ld[..K]`; returns `M = max ℓ`.
#[inline]
fn log_densities<'a, L: AsRef<Mixture<'a>>>(
    net: &Layers<'_, L>,
    i: usize,
    x: &[f32],
    bufs: &mut Buffers<'_>,
) -> Result<f32, Error> {
    let scratch = (&mut *bufs.centred, &mut *bufs.z, &mut *bufs.diff);
    let max = net.mixtures[i]
        .as_ref()
        .log_densities(x, net.chain.uses_weights(i), scratch, bufs.ld);
    if max.is_finite() {
        Ok(max)
    } else {
        Err(Error::Overflow { layer: i as u8 })
    }
}

/// The hot path. `Ok(None)` means some `c_i` underflowed: use [`forward_log`].
fn forward_linear<'a, L: AsRef<Mixture<'a>>>(
    net: &Layers<'_, L>,
    features: &[&[f32]],
    bufs: &mut Buffers<'_>,
    contributions: &mut [f32],
) -> Result<Option<f32>, Error> {
    let mut total = 0.0f32;
    for (i, &x) in features.iter().enumerate() {
        let max = log_densities(net, i, x, bufs)?; // 1.
        let k = net.mixtures[i].as_ref().components();
        let b = &mut bufs.b[..k];
        if i == 0 {
            b.fill(1.0);
        } else {
            let prev = net.mixtures[i - 1].as_ref().components();
            net.tables[i - 1].propagate(&bufs.alpha[..prev], b); // 2.
        }
        let alpha = &mut bufs.alpha[..k];
        let mut c = 0.0f32;
        for ((a, &l), &bk) in alpha.iter_mut().zip(bufs.ld.iter()).zip(b.iter()) {
            *a = exp(l - max) * bk; // 3.
            c += *a;
        }
        if c < UNDERFLOW {
            return Ok(None);
        }
        let inv = 1.0 / c;
        alpha.iter_mut().for_each(|a| *a *= inv);
        contributions[i] = max + ln(c); // 4.
        total += contributions[i];
    }
    Ok(Some(total))
}

/// `ln Σ exp(v)` of the finite entries, `-∞` if there are none.
fn log_sum_exp(v: impl Iterator<Item = f32> + Clone) -> f32 {
    let m = v.clone().fold(f32::NEG_INFINITY, f32::max);
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + ln(v.map(|x| exp(x - m)).sum::<f32>())
}

/// The same recursion with `α` kept as normalised logarithms: exact for any
/// finite input, `K²` `exp`s and `ln`s per layer. Only far-OOD frames get here.
#[cold]
fn forward_log<'a, L: AsRef<Mixture<'a>>>(
    net: &Layers<'_, L>,
    features: &[&[f32]],
    bufs: &mut Buffers<'_>,
    contributions: &mut [f32],
) -> Result<f32, Error> {
    let mut total = 0.0f32;
    for (i, &x) in features.iter().enumerate() {
        log_densities(net, i, x, bufs)?;
        let k = net.mixtures[i].as_ref().components();
        if i > 0 {
            // ln b_k = ln Σ_j α_j A(j, k), with α kept as logs in `alpha`.
            let prev = net.mixtures[i - 1].as_ref().components();
            let table = &net.tables[i - 1];
            let log_alpha = &bufs.alpha[..prev];
            for (col, lb) in bufs.b[..k].iter_mut().enumerate() {
                let terms = log_alpha.iter().enumerate().map(|(j, &la)| {
                    let a = table.get(j * k + col);
                    if a > 0.0 {
                        la + ln(a)
                    } else {
                        f32::NEG_INFINITY
                    }
                });
                *lb = log_sum_exp(terms);
            }
            for (l, &lb) in bufs.ld[..k].iter_mut().zip(bufs.b.iter()) {
                *l += lb;
            }
        }
        // Rows of A have positive mass, but the components they reach may all
        // have overflowed densities (found by fuzzing: a zero transition
        // entry leaves only a far component reachable): then the frame is
        // too far from every reachable component to score.
        let c = log_sum_exp(bufs.ld[..k].iter().copied());
        if !c.is_finite() {
            return Err(Error::Overflow { layer: i as u8 });
        }
        for (a, &l) in bufs.alpha[..k].iter_mut().zip(bufs.ld.iter()) {
            *a = l - c;
        }
        contributions[i] = c;
        total += c;
    }
    Ok(total)
}
