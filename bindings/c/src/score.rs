//! Pooling a tapped tensor into a layer's row, scoring a frame's rows into a
//! score, contributions and verdict, and thresholds for a false-positive rate.
//! Each is one call of the core ([`lsgm::pool::tensor`], [`Model::judge`],
//! [`Model::threshold_for_fpr`]) between the checks of [`crate::guard`].

use crate::guard::{self, check, slice, slice_mut};
use crate::handle::{model, LsgmModel};
use crate::status::LsgmStatus;
use lsgm::model::wire::Pooling;
use lsgm::{Model, Verdict, MAX_LAYERS};

/// One layer's feature row: `len` floats at `data`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LsgmFeatureRow {
    /// The features (4-byte aligned), e.g. written by `lsgm_pool`.
    pub data: *const f32,
    /// Number of features: the layer's `LsgmLayerInfo.dim_in`.
    pub len: usize,
}

/// A frame's verdict.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LsgmVerdict {
    /// Log joint likelihood of the frame's trace (higher = more in-distribution);
    /// `-FLT_MAX` when the density overflowed (see `overflow`).
    pub score: f32,
    /// The threshold the score was compared with.
    pub threshold: f32,
    /// The frame is out of distribution: `score < threshold`, and always
    /// for a frame whose density overflowed (`overflow`; its score is
    /// `-FLT_MAX` whatever the threshold).
    pub ood: bool,
    /// The layer whose contribution fell furthest below its in-distribution
    /// median: where the frame stopped looking familiar.
    pub worst_layer: u8,
    /// The frame is farther from every component than `float` can express at
    /// layer `worst_layer`: the most out-of-distribution frame there is.
    pub overflow: bool,
}

impl From<Verdict> for LsgmVerdict {
    fn from(v: Verdict) -> Self {
        LsgmVerdict {
            score: v.score,
            threshold: v.threshold,
            ood: v.ood,
            worst_layer: v.worst_layer,
            overflow: v.overflow.is_some(),
        }
    }
}

/// Pools batch item `item` of layer `layer`'s tapped tensor (`tensor_len`
/// floats, row-major, of shape `shape[0..rank]`) into `row[0..dim_in]` by
/// the layer's pooling: N×C×H×W or N×H×W×C means over H and W (or over
/// each cell of a grid, `LSGM_POOLING_GRID_*`), or an N×C vector. Errors: `LSGM_NULL_POINTER`, `LSGM_MISALIGNED`, `LSGM_NOT_OPEN`,
/// `LSGM_LENGTH_OVERFLOW`, `LSGM_LAYER_INDEX`, `LSGM_POOLING_UNSUPPORTED` (a layer fitted from
/// given features), `LSGM_ROW_TOO_SMALL` (`row_len < dim_in`),
/// `LSGM_SHAPE` (length, rank, item or channel count, a map with fewer rows
/// or columns than the grid's side), `LSGM_BUFFERS_OVERLAP`.
/// On error `row` is not written. Values are not checked here: scoring
/// refuses NaN and infinite features.
///
/// # Safety
/// `model` must point to an `LsgmModel`, `tensor`, `shape` and `row` to
/// `tensor_len`, `rank` and `row_len` values (`row` writable, not shared
/// with another thread during the call).
#[no_mangle]
#[allow(clippy::too_many_arguments)] // a C signature: pointer and length pairs
pub unsafe extern "C" fn lsgm_pool(
    model: *const LsgmModel,
    layer: usize,
    tensor: *const f32,
    tensor_len: usize,
    shape: *const usize,
    rank: usize,
    item: usize,
    row: *mut f32,
    row_len: usize,
) -> LsgmStatus {
    guard::run(|| {
        // SAFETY: the caller's promises, checked as far as C allows by `guard`.
        let (m, tensor, shape, row) = unsafe {
            (
                self::model(model)?,
                slice(tensor, tensor_len)?,
                slice(shape, rank)?,
                slice_mut(row, row_len)?,
            )
        };
        let l = m.layers().get(layer).ok_or(LsgmStatus::LsgmLayerIndex)?;
        if l.pooling() == Pooling::Precomputed {
            return Err(LsgmStatus::LsgmPoolingUnsupported);
        }
        let row = row.get_mut(..l.dim_in()).ok_or(LsgmStatus::LsgmRowTooSmall)?;
        if !guard::disjoint(tensor, row) || !guard::disjoint(shape, row) {
            return Err(LsgmStatus::LsgmBuffersOverlap);
        }
        // The core checks every size before it writes the first value.
        lsgm::pool::tensor(l.pooling(), shape, tensor, item, row)?;
        Ok(())
    })
}

/// A call's inputs as Rust slices, checked: one row per layer, each apart
/// from the scratch.
struct Frame<'a> {
    rows: [&'a [f32]; MAX_LAYERS],
    layers: usize,
    scratch: &'a mut [f32],
}

impl<'a> Frame<'a> {
    /// # Safety
    /// As for `lsgm_judge`'s `rows`, `row_count`, `scratch`, `scratch_len`.
    unsafe fn new(
        m: &Model<'_>,
        rows: *const LsgmFeatureRow,
        row_count: usize,
        scratch: *mut f32,
        scratch_len: usize,
    ) -> Result<Self, LsgmStatus> {
        // The count first: a wrong one must not become a slice of memory the caller does not have.
        if row_count != m.num_layers() {
            return Err(LsgmStatus::LsgmLayerCount);
        }
        // SAFETY: the caller's promises.
        let (given, scratch) = unsafe { (slice(rows, row_count)?, slice_mut(scratch, scratch_len)?) };
        let mut out: [&[f32]; MAX_LAYERS] = [&[]; MAX_LAYERS];
        for (o, r) in out.iter_mut().zip(given) {
            // SAFETY: the caller's promise on each row.
            *o = unsafe { slice(r.data, r.len)? };
            if !guard::disjoint(o, scratch) {
                return Err(LsgmStatus::LsgmBuffersOverlap);
            }
        }
        Ok(Frame {
            rows: out,
            layers: given.len(),
            scratch,
        })
    }
}

/// The optional contributions output, checked (`None` for NULL) but not yet
/// a slice: it is written once the frame's slices are gone, so that it may
/// alias them without harm.
fn contributions_out(m: &Model<'_>, ptr: *mut f32, len: usize) -> Result<Option<*mut f32>, LsgmStatus> {
    if ptr.is_null() {
        return Ok(None);
    }
    check(ptr.cast_const())?;
    if len < m.num_layers() {
        return Err(LsgmStatus::LsgmContributionsTooSmall);
    }
    Ok(Some(ptr))
}

/// What `lsgm_score` and `lsgm_judge` share: the checks, [`Model::judge`],
/// and the contributions written to their optional output. The caller has
/// checked its own output pointer first, so on error nothing of the
/// caller's is written but the scratch.
///
/// # Safety
/// As for `lsgm_judge`.
#[allow(clippy::too_many_arguments)] // the C signatures' pointer and length pairs
unsafe fn judge(
    model: *const LsgmModel,
    rows: *const LsgmFeatureRow,
    row_count: usize,
    scratch: *mut f32,
    scratch_len: usize,
    threshold: Option<f32>,
    contributions: *mut f32,
    contributions_len: usize,
) -> Result<Verdict, LsgmStatus> {
    // SAFETY: the caller's promises.
    let m = unsafe { self::model(model)? };
    let out = contributions_out(m, contributions, contributions_len)?;
    if threshold.is_some_and(|t| !t.is_finite()) {
        return Err(LsgmStatus::LsgmNonFiniteArgument);
    }
    // SAFETY: the caller's promises.
    let frame = unsafe { Frame::new(m, rows, row_count, scratch, scratch_len)? };
    // SAFETY: `model` was checked open by `self::model` above.
    let (storage, bytes) = unsafe { crate::handle::read_while_scoring(model) };
    if !guard::disjoint(frame.scratch, storage) || !guard::disjoint(frame.scratch, bytes) {
        return Err(LsgmStatus::LsgmBuffersOverlap);
    }
    let layers = frame.layers;
    let mut c = [0.0f32; MAX_LAYERS];
    let v = m.judge(&frame.rows[..layers], frame.scratch, &mut c[..layers], threshold)?;
    // A valid model and finite rows give a finite score (or the overflow
    // verdict's finite −FLT_MAX): anything else means the model's memory
    // changed after `lsgm_model_open`. Refused, never a verdict.
    if !v.score.is_finite() || c[..layers].iter().any(|x| !x.is_finite()) {
        return Err(LsgmStatus::LsgmModelInvalid);
    }
    if let Some(ptr) = out {
        // SAFETY: checked by `contributions_out` (non-null, aligned, at
        // least `layers` long); the frame's slices are no longer used.
        unsafe { core::ptr::copy_nonoverlapping(c.as_ptr(), ptr, layers) };
    }
    Ok(v)
}

/// Scores one frame: `rows[i]` is layer `i`'s feature row (`row_count` =
/// the layer count), `scratch` this thread's working memory
/// (`LsgmModelInfo.scratch_len` floats). Writes the log joint likelihood to
/// `*score` (the CLI's `score`: `-FLT_MAX` for a frame whose density
/// overflows, the most out-of-distribution there is) and, unless
/// `contributions` is NULL, each layer's share of it to
/// `contributions[0..layer_count]`.
///
/// Errors: `LSGM_NULL_POINTER`, `LSGM_MISALIGNED`, `LSGM_NOT_OPEN`,
/// `LSGM_LENGTH_OVERFLOW`, `LSGM_LAYER_COUNT`, `LSGM_FEATURE_LENGTH`,
/// `LSGM_NON_FINITE_FEATURE`, `LSGM_SCRATCH_TOO_SMALL`,
/// `LSGM_CONTRIBUTIONS_TOO_SMALL`, `LSGM_BUFFERS_OVERLAP` (scratch shared
/// with a row, the model's storage or its bytes), `LSGM_MODEL_INVALID` (a
/// non-finite score: the model's memory changed after opening). On error neither
/// `*score` nor `contributions` is written. Several threads may score with
/// one model at once, each with its own scratch. The outputs may lie in the
/// scratch: they are written after scoring, when the scratch is no longer read.
///
/// # Safety
/// `model` must point to an `LsgmModel`; `rows` to `row_count` rows whose
/// data are valid for their lengths; `scratch` to `scratch_len` writable
/// floats used by no one else during the call; `contributions` (if not
/// NULL) to `contributions_len` writable floats; `score` to a writable float.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // a C signature: pointer and length pairs
pub unsafe extern "C" fn lsgm_score(
    model: *const LsgmModel,
    rows: *const LsgmFeatureRow,
    row_count: usize,
    scratch: *mut f32,
    scratch_len: usize,
    contributions: *mut f32,
    contributions_len: usize,
    score: *mut f32,
) -> LsgmStatus {
    guard::run(|| {
        check(score.cast_const())?;
        // SAFETY: the caller's promises.
        let v = unsafe {
            judge(
                model,
                rows,
                row_count,
                scratch,
                scratch_len,
                None,
                contributions,
                contributions_len,
            )?
        };
        // SAFETY: checked above.
        unsafe { guard::write(score, v.score) };
        Ok(())
    })
}

/// Scores one frame as `lsgm_score` does and judges it against
/// `*threshold` (NULL: the model's calibrated threshold) into `*verdict`.
/// Errors: those of `lsgm_score`, and `LSGM_NON_FINITE_ARGUMENT` for a NaN
/// or infinite threshold. On error nothing is written but the scratch.
///
/// # Safety
/// As for `lsgm_score`; `threshold` NULL or a readable float, `verdict` a
/// writable `LsgmVerdict`.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // a C signature: pointer and length pairs
pub unsafe extern "C" fn lsgm_judge(
    model: *const LsgmModel,
    rows: *const LsgmFeatureRow,
    row_count: usize,
    scratch: *mut f32,
    scratch_len: usize,
    threshold: *const f32,
    contributions: *mut f32,
    contributions_len: usize,
    verdict: *mut LsgmVerdict,
) -> LsgmStatus {
    guard::run(|| {
        check(verdict.cast_const())?;
        let threshold = match threshold.is_null() {
            true => None,
            // SAFETY: checked, then the caller's promise.
            false => Some(unsafe { check(threshold).map(|()| threshold.read())? }),
        };
        // SAFETY: the caller's promises.
        let v = unsafe {
            judge(
                model,
                rows,
                row_count,
                scratch,
                scratch_len,
                threshold,
                contributions,
                contributions_len,
            )?
        };
        // SAFETY: checked above.
        unsafe { guard::write(verdict, v.into()) };
        Ok(())
    })
}

/// Writes to `*threshold` the threshold whose expected false-positive rate
/// on in-distribution frames is `fpr` (0.05 = 5 %), interpolated between
/// the model's calibrated quantiles. Errors: `LSGM_NULL_POINTER`,
/// `LSGM_MISALIGNED`, `LSGM_NOT_OPEN`, `LSGM_NON_FINITE_ARGUMENT`,
/// `LSGM_FPR_OUT_OF_RANGE` (outside the quantiles, or a model without them).
///
/// # Safety
/// `model` must point to an `LsgmModel`, `threshold` to a writable float.
#[no_mangle]
pub unsafe extern "C" fn lsgm_threshold_for_fpr(
    model: *const LsgmModel,
    fpr: f32,
    threshold: *mut f32,
) -> LsgmStatus {
    guard::run(|| {
        // SAFETY: the caller's promise.
        let m = unsafe { self::model(model)? };
        check(threshold.cast_const())?;
        if !fpr.is_finite() {
            return Err(LsgmStatus::LsgmNonFiniteArgument);
        }
        let t = m.threshold_for_fpr(fpr).ok_or(LsgmStatus::LsgmFprOutOfRange)?;
        // SAFETY: checked above.
        unsafe { guard::write(threshold, t) };
        Ok(())
    })
}
