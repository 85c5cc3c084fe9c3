//! [`LsgmStatus`]: what every function returns, and its message.

use core::ffi::c_char;
use lsgm::Error;

/// The result of every call. `LSGM_OK` is 0; every other value says what is
/// wrong, and `lsgm_status_message` gives a sentence for it. New codes may
/// be added in later releases: treat an unknown one as a failure.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LsgmStatus {
    /// Success: the outputs are written.
    LsgmOk = 0,
    /// A pointer argument is NULL.
    LsgmNullPointer = 1,
    /// A pointer is not aligned for its type (4 bytes for `float`, 8 for `LsgmModel`).
    LsgmMisaligned = 2,
    /// A length is too large for the address space (`len * sizeof(T)` overflows, or the buffer would run past the top of memory).
    LsgmLengthOverflow = 3,
    /// Two buffers overlap (scratch with the features or the outputs).
    LsgmBuffersOverlap = 4,
    /// The storage is smaller than `lsgm_model_size()`.
    LsgmStorageTooSmall = 5,
    /// The storage does not hold a model opened by `lsgm_model_open`.
    LsgmNotOpen = 6,
    /// The model bytes are shorter than the file's header says.
    LsgmModelTruncated = 7,
    /// The bytes are not an LSGM model file (bad magic).
    LsgmModelBadMagic = 8,
    /// The model file's format version is not one this library reads.
    LsgmModelVersion = 9,
    /// The model file's checksum does not match: it is corrupt.
    LsgmModelChecksum = 10,
    /// The model body does not decode.
    LsgmModelDecode = 11,
    /// The model decoded but is inconsistent (shapes, non-finite numbers, ...).
    LsgmModelInvalid = 12,
    /// The model has more layers than this library supports (16).
    LsgmModelTooManyLayers = 13,
    /// The number of feature rows is not the model's layer count.
    LsgmLayerCount = 14,
    /// A feature row's length is not its layer's input width.
    LsgmFeatureLength = 15,
    /// A feature is NaN or infinite.
    LsgmNonFiniteFeature = 16,
    /// The scratch buffer is shorter than the model's scratch length.
    LsgmScratchTooSmall = 17,
    /// The contributions buffer is shorter than the layer count.
    LsgmContributionsTooSmall = 18,
    /// A tensor's length, shape, batch item or channel count does not fit the layer.
    LsgmShape = 19,
    /// The output row is shorter than the layer's input width.
    LsgmRowTooSmall = 20,
    /// A layer index is not below the layer count.
    LsgmLayerIndex = 21,
    /// The layer's features are computed by the caller: there is no tensor to pool.
    LsgmPoolingUnsupported = 22,
    /// The false-positive rate is outside the model's calibrated quantiles.
    LsgmFprOutOfRange = 23,
    /// A threshold or rate argument is NaN or infinite.
    LsgmNonFiniteArgument = 24,
    /// A bug in this library (a caught panic or an unknown core error).
    LsgmInternalError = 99,
}

impl From<Error> for LsgmStatus {
    fn from(e: Error) -> Self {
        use LsgmStatus::*;
        match e {
            Error::Truncated => LsgmModelTruncated,
            Error::BadMagic => LsgmModelBadMagic,
            Error::UnsupportedVersion(_) => LsgmModelVersion,
            Error::Checksum => LsgmModelChecksum,
            Error::Decode => LsgmModelDecode,
            Error::Invalid { .. } => LsgmModelInvalid,
            Error::TooManyLayers => LsgmModelTooManyLayers,
            Error::LayerCount { .. } => LsgmLayerCount,
            Error::FeatureDim { .. } => LsgmFeatureLength,
            Error::NonFiniteFeature { .. } => LsgmNonFiniteFeature,
            Error::ScratchTooSmall { .. } => LsgmScratchTooSmall,
            Error::ContributionsTooSmall => LsgmContributionsTooSmall,
            Error::Shape => LsgmShape,
            // `Model::judge` turns an overflow into a verdict; encoding errors
            // and variants added later cannot come out of the calls made here.
            _ => LsgmInternalError,
        }
    }
}

/// The status's message (a static NUL-terminated sentence that says what to
/// do), or a sentence saying the value is not a status. Never NULL.
#[no_mangle]
pub extern "C" fn lsgm_status_message(status: i32) -> *const c_char {
    use LsgmStatus::*;
    let all = [
        LsgmOk,
        LsgmNullPointer,
        LsgmMisaligned,
        LsgmLengthOverflow,
        LsgmBuffersOverlap,
        LsgmStorageTooSmall,
        LsgmNotOpen,
        LsgmModelTruncated,
        LsgmModelBadMagic,
        LsgmModelVersion,
        LsgmModelChecksum,
        LsgmModelDecode,
        LsgmModelInvalid,
        LsgmModelTooManyLayers,
        LsgmLayerCount,
        LsgmFeatureLength,
        LsgmNonFiniteFeature,
        LsgmScratchTooSmall,
        LsgmContributionsTooSmall,
        LsgmShape,
        LsgmRowTooSmall,
        LsgmLayerIndex,
        LsgmPoolingUnsupported,
        LsgmFprOutOfRange,
        LsgmNonFiniteArgument,
        LsgmInternalError,
    ];
    match all.iter().find(|s| **s as i32 == status) {
        Some(s) => s.message().as_ptr(),
        None => c"unknown status (not an LsgmStatus value)".as_ptr(),
    }
}

impl LsgmStatus {
    /// The sentence `lsgm_status_message` returns.
    pub fn message(self) -> &'static core::ffi::CStr {
        use LsgmStatus::*;
        match self {
            LsgmOk => c"success",
            LsgmNullPointer => c"a pointer argument is NULL",
            LsgmMisaligned => c"a pointer is misaligned: float buffers need 4-byte and LsgmModel storage 8-byte alignment",
            LsgmLengthOverflow => c"a length is larger than the address space allows",
            LsgmBuffersOverlap => {
                c"two buffers overlap (the scratch with a feature row, the model's storage or its bytes; the storage \
                with the model bytes; a pooled row with its tensor or shape): give each its own memory"
            }
            LsgmStorageTooSmall => c"the model storage is smaller than lsgm_model_size(): use an LsgmModel",
            LsgmNotOpen => c"the model storage holds no open model: call lsgm_model_open first and check its status",
            LsgmModelTruncated => c"the model file is truncated: copy it again from where it was written, or fit it again",
            LsgmModelBadMagic => c"not an LSGM model file (bad magic bytes)",
            LsgmModelVersion => c"the model's format version is not this library's: build the library and the model from one release",
            LsgmModelChecksum => c"the model file is corrupt (CRC-32 mismatch): copy it again",
            LsgmModelDecode => c"the model body does not decode: the file is damaged or not from this release",
            LsgmModelInvalid => {
                c"the model is inconsistent (shapes or non-finite numbers; trailing bytes after its end: pass the \
                file's exact length; or its bytes changed after lsgm_model_open): fit it again or open an intact copy"
            }
            LsgmModelTooManyLayers => c"the model has more than 16 layers; fit it with fewer taps",
            LsgmLayerCount => c"the number of feature rows is not the model's layer count (LsgmModelInfo.layer_count)",
            LsgmFeatureLength => c"a feature row's length is not its layer's input width (LsgmLayerInfo.dim_in)",
            LsgmNonFiniteFeature => c"a feature is NaN or infinite: check the network's output for this frame",
            LsgmScratchTooSmall => c"the scratch buffer is shorter than LsgmModelInfo.scratch_len",
            LsgmContributionsTooSmall => c"the contributions buffer is shorter than the layer count",
            LsgmShape => c"the tensor's length, shape, batch item or channel count does not match the layer's pooling and input width",
            LsgmRowTooSmall => c"the output row is shorter than the layer's input width (LsgmLayerInfo.dim_in)",
            LsgmLayerIndex => c"the layer index is not below the layer count",
            LsgmPoolingUnsupported => c"this layer was fitted from given features: compute them as the fit did, there is no tensor to pool",
            LsgmFprOutOfRange => c"the false-positive rate is outside the model's calibrated quantiles (or the model has none)",
            LsgmNonFiniteArgument => c"a threshold or rate argument is NaN or infinite",
            LsgmInternalError => c"internal error in the lsgm library (a bug): please report it with the model and inputs",
        }
    }
}
