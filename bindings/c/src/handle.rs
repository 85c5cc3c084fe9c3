//! Opening a model into caller storage, and what the caller may ask of it:
//! its size, the layer count, the scratch length, the threshold, and each
//! layer's tap name, input width and pooling.

use crate::guard::{self, check, slice};
use crate::status::LsgmStatus;
use core::ffi::c_char;
use core::mem::{align_of, size_of};
use lsgm::model::wire::Pooling;
use lsgm::Model;

/// Size of `LsgmModel` in 8-byte words: room for the validated model view
/// on every supported target (a compile-time assertion checks it on each).
pub const LSGM_MODEL_WORDS: usize = 1024;

/// Caller-owned storage for one open model (8 KiB, 8-byte aligned): declare
/// one (static, global or on the stack) and pass it to `lsgm_model_open`.
/// Its contents are private. It holds no resource: to drop a model, stop
/// using it (or call `lsgm_model_close`). It borrows the model bytes given
/// to `lsgm_model_open`; keep them unchanged while the model is used.
#[repr(C)]
pub struct LsgmModel {
    opaque: [u64; LSGM_MODEL_WORDS],
}

/// What `LsgmModel` storage holds once open: a tag that catches storage
/// never opened (or closed), then the core's validated view.
#[repr(C)]
struct Handle {
    tag: u64,
    model: Model<'static>,
    /// The model bytes the view borrows, so that a scratch buffer placed
    /// over them (or over this storage) is refused, not scored with.
    bytes: &'static [u8],
}

/// `"LSGMOPEN"`: the tag of open storage.
const OPEN: u64 = u64::from_le_bytes(*b"LSGMOPEN");

const _: () = assert!(size_of::<Handle>() <= size_of::<LsgmModel>());
const _: () = assert!(align_of::<Handle>() <= align_of::<LsgmModel>());

/// The open model in `storage`.
///
/// # Safety
/// `storage` must be NULL or point to an `LsgmModel` (open or not) valid for reads.
pub(crate) unsafe fn model<'a>(storage: *const LsgmModel) -> Result<&'a Model<'static>, LsgmStatus> {
    check(storage)?;
    let handle = storage.cast::<Handle>();
    // SAFETY: checked and aligned; the tag is the first field of both layouts.
    if unsafe { core::ptr::addr_of!((*handle).tag).read() } != OPEN {
        return Err(LsgmStatus::LsgmNotOpen);
    }
    // SAFETY: only `lsgm_model_open` writes the tag, together with a valid model.
    Ok(unsafe { &(*handle).model })
}

/// The memory an open model reads while scoring: its storage and the model
/// bytes, which no scratch buffer may overlap.
///
/// # Safety
/// `storage` must hold an open model (checked by [`model`] first).
pub(crate) unsafe fn read_while_scoring<'a>(storage: *const LsgmModel) -> (&'a [u8], &'a [u8]) {
    // SAFETY: the caller checked `storage` (non-null, aligned, open), so it
    // is valid for reads of its size and holds a `Handle`.
    unsafe {
        (
            core::slice::from_raw_parts(storage.cast::<u8>(), size_of::<LsgmModel>()),
            (*storage.cast::<Handle>()).bytes,
        )
    }
}

/// Bytes of storage a model needs: `sizeof(LsgmModel)`.
#[no_mangle]
pub extern "C" fn lsgm_model_size() -> usize {
    size_of::<LsgmModel>()
}

/// Alignment the storage needs: `_Alignof(LsgmModel)` (8).
#[no_mangle]
pub extern "C" fn lsgm_model_align() -> usize {
    align_of::<LsgmModel>()
}

/// Validates the model file in `bytes[0..len]` (header, checksum, every
/// shape and number) and opens it into `storage` (`storage_size` bytes, at
/// least `lsgm_model_size()`, 8-byte aligned). Zero-copy: the model reads
/// `bytes` from then on, so keep them unchanged while it is used.
///
/// Errors: `LSGM_NULL_POINTER`, `LSGM_MISALIGNED`, `LSGM_STORAGE_TOO_SMALL`,
/// `LSGM_LENGTH_OVERFLOW`, `LSGM_BUFFERS_OVERLAP` (storage inside the
/// bytes), `LSGM_MODEL_*` for a damaged or foreign file (`len` must be the
/// file's exact length: bytes after its end are `LSGM_MODEL_INVALID`). On
/// error `storage` is not written.
///
/// # Safety
/// `storage` must be valid for writes of `storage_size` bytes, `bytes` for
/// reads of `len` bytes for as long as the model is used.
#[no_mangle]
pub unsafe extern "C" fn lsgm_model_open(
    storage: *mut LsgmModel,
    storage_size: usize,
    bytes: *const u8,
    len: usize,
) -> LsgmStatus {
    guard::run(|| {
        check(storage.cast_const())?;
        if storage_size < size_of::<LsgmModel>() {
            return Err(LsgmStatus::LsgmStorageTooSmall);
        }
        // SAFETY: the caller's promise on `bytes`; they must outlive the model.
        let bytes: &'static [u8] = unsafe { slice(bytes, len)? };
        // SAFETY: the storage's size was checked above.
        let room = unsafe { core::slice::from_raw_parts(storage.cast::<u8>().cast_const(), storage_size) };
        if !guard::disjoint(room, bytes) {
            return Err(LsgmStatus::LsgmBuffersOverlap);
        }
        let model = Model::from_bytes(bytes)?;
        // SAFETY: checked non-null, aligned for `LsgmModel` (so for
        // `Handle`), large enough.
        unsafe {
            guard::write(
                storage.cast::<Handle>(),
                Handle {
                    tag: OPEN,
                    model,
                    bytes,
                },
            )
        };
        Ok(())
    })
}

/// Marks `storage` as no longer holding a model: later calls with it return
/// `LSGM_NOT_OPEN` (until it is opened again). Optional: a model owns nothing.
///
/// Errors: `LSGM_NULL_POINTER`, `LSGM_MISALIGNED`, `LSGM_NOT_OPEN` (never
/// opened, or already closed).
///
/// # Safety
/// `storage` must point to an `LsgmModel` valid for writes (NULL is refused
/// with `LSGM_NULL_POINTER`), not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn lsgm_model_close(storage: *mut LsgmModel) -> LsgmStatus {
    guard::run(|| {
        // SAFETY: the caller's promise; `model` checks pointer and tag.
        unsafe { model(storage)? };
        // SAFETY: checked above; the tag is the storage's first word.
        unsafe { guard::write(storage.cast::<u64>(), 0) };
        Ok(())
    })
}

/// What a model asks of its caller.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LsgmModelInfo {
    /// Number of layers: feature rows per frame, contributions per score.
    pub layer_count: usize,
    /// Length in `float`s of the scratch buffer each scoring thread needs.
    pub scratch_len: usize,
    /// The calibrated threshold: a score below it is out of distribution.
    pub threshold: f32,
    /// Fraction of held-out in-distribution frames at or above the threshold.
    pub calibration_tpr: f32,
}

/// Writes the model's layer count, scratch length and calibrated threshold
/// to `*info`. Errors: `LSGM_NULL_POINTER`, `LSGM_MISALIGNED`, `LSGM_NOT_OPEN`.
///
/// # Safety
/// `model` must point to an `LsgmModel` valid for reads, `info` to an
/// `LsgmModelInfo` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lsgm_model_info(model: *const LsgmModel, info: *mut LsgmModelInfo) -> LsgmStatus {
    guard::run(|| {
        // SAFETY: the caller's promise; `model` checks pointer and tag.
        let m = unsafe { self::model(model)? };
        check(info.cast_const())?;
        let value = LsgmModelInfo {
            layer_count: m.num_layers(),
            scratch_len: m.scratch_len(),
            threshold: m.threshold(),
            calibration_tpr: m.calibration_tpr(),
        };
        // SAFETY: checked above.
        unsafe { guard::write(info, value) };
        Ok(())
    })
}

/// How a layer's tapped tensor becomes its feature row (`lsgm_pool`).
/// Later releases may add kinds: treat an unknown value as one this
/// program cannot pool.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LsgmPooling {
    /// Mean over H and W of an N×C×H×W tensor: C features.
    LsgmPoolingMeanNchw = 0,
    /// Mean over H and W of an N×H×W×C tensor (TensorFlow/Keras layout): C features.
    LsgmPoolingMeanNhwc = 1,
    /// A vector per batch item (N×C), taken as it is.
    LsgmPoolingVector = 2,
    /// Fitted from given features: the caller computes the row; nothing to pool.
    LsgmPoolingPrecomputed = 3,
    /// Means over a `grid × grid` grid of cells of an N×C×H×W tensor
    /// (`lsgm_layer_grid`): grid²·C features, cell-major (cell `(r, c)`'s
    /// C means start at `(r·grid + c)·C`); H and W are split as numpy's
    /// `array_split` does (the first `H mod grid` cell rows one pixel taller).
    LsgmPoolingGridNchw = 4,
    /// `LSGM_POOLING_GRID_NCHW` of an N×H×W×C tensor.
    LsgmPoolingGridNhwc = 5,
}

impl From<Pooling> for LsgmPooling {
    fn from(p: Pooling) -> Self {
        match p {
            Pooling::GlobalAverageNchw => LsgmPooling::LsgmPoolingMeanNchw,
            Pooling::GlobalAverageNhwc => LsgmPooling::LsgmPoolingMeanNhwc,
            Pooling::Vector => LsgmPooling::LsgmPoolingVector,
            Pooling::Precomputed => LsgmPooling::LsgmPoolingPrecomputed,
            Pooling::GridAverageNchw { .. } => LsgmPooling::LsgmPoolingGridNchw,
            Pooling::GridAverageNhwc { .. } => LsgmPooling::LsgmPoolingGridNhwc,
        }
    }
}

/// One layer of a model.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LsgmLayerInfo {
    /// The tap's name (the network's tensor or node name), UTF-8, inside the
    /// model bytes and NOT NUL-terminated: print it with `"%.*s"`, `(int)name_len`.
    pub name: *const c_char,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// Length of the layer's feature row: the tapped tensor's channel count
    /// (times `grid²` for a grid pooling).
    pub dim_in: usize,
    /// Dimension of the layer's mixture (after its projection; = `dim_in` without one).
    pub dim: usize,
    /// Number of mixture components.
    pub components: usize,
    /// How the tapped tensor is pooled into the row.
    pub pooling: LsgmPooling,
    /// The layer's median contribution on held-out in-distribution frames.
    pub median_contribution: f32,
}

/// Writes layer `layer`'s tap name, input width, pooling and component
/// count to `*info`. Errors: `LSGM_NULL_POINTER`, `LSGM_MISALIGNED`,
/// `LSGM_NOT_OPEN`, `LSGM_LAYER_INDEX`.
///
/// # Safety
/// `model` must point to an `LsgmModel` valid for reads, `info` to an
/// `LsgmLayerInfo` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lsgm_layer_info(
    model: *const LsgmModel,
    layer: usize,
    info: *mut LsgmLayerInfo,
) -> LsgmStatus {
    guard::run(|| {
        // SAFETY: the caller's promise; `model` checks pointer and tag.
        let m = unsafe { self::model(model)? };
        check(info.cast_const())?;
        let l = m.layers().get(layer).ok_or(LsgmStatus::LsgmLayerIndex)?;
        let value = LsgmLayerInfo {
            name: l.name().as_ptr().cast(),
            name_len: l.name().len(),
            dim_in: l.dim_in(),
            dim: l.dim(),
            components: l.components(),
            pooling: l.pooling().into(),
            median_contribution: l.median_contribution(),
        };
        // SAFETY: checked above.
        unsafe { guard::write(info, value) };
        Ok(())
    })
}

/// Writes the cells per side of layer `layer`'s grid pooling
/// (`LSGM_POOLING_GRID_NCHW`, `LSGM_POOLING_GRID_NHWC`: 2 to 16, its row is
/// `grid² · C` long) to `*grid`, or 1 for every other pooling. A function of
/// its own, not a field of `LsgmLayerInfo`, so that programs built against
/// the header before grids existed keep their struct's size. Errors:
/// `LSGM_NULL_POINTER`, `LSGM_MISALIGNED`, `LSGM_NOT_OPEN`, `LSGM_LAYER_INDEX`.
///
/// # Safety
/// `model` must point to an `LsgmModel` valid for reads, `grid` to a
/// `size_t` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lsgm_layer_grid(
    model: *const LsgmModel,
    layer: usize,
    grid: *mut usize,
) -> LsgmStatus {
    guard::run(|| {
        // SAFETY: the caller's promise; `model` checks pointer and tag.
        let m = unsafe { self::model(model)? };
        check(grid.cast_const())?;
        let l = m.layers().get(layer).ok_or(LsgmStatus::LsgmLayerIndex)?;
        // SAFETY: checked above.
        unsafe { guard::write(grid, l.pooling().side()) };
        Ok(())
    })
}
