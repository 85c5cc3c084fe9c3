//! The checks every entry point makes before it touches caller memory, and
//! the barrier that keeps a panic from unwinding into C.
//!
//! C hands over raw pointers and lengths. Each becomes a Rust reference only
//! here, after the checks that make that sound: not NULL, aligned for its
//! type, and a byte length the address space can hold. What remains the
//! caller's promise (stated in the header): the memory is valid for the
//! length given and nobody writes to it during the call.

use crate::status::LsgmStatus;
use core::mem::size_of;

/// Runs an entry point's body and turns its result into a status. With
/// `std`, under `catch_unwind`: a panic becomes `LSGM_INTERNAL_ERROR` (and
/// the panic message goes to stderr through the default hook) instead of
/// unwinding into C, which would be undefined behaviour. Outputs are written
/// last in every body, so a panic leaves them untouched.
pub fn run(body: impl FnOnce() -> Result<(), LsgmStatus>) -> LsgmStatus {
    #[cfg(feature = "std")]
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .unwrap_or(Err(LsgmStatus::LsgmInternalError));
    #[cfg(not(feature = "std"))]
    let result = body();
    match result {
        Ok(()) => LsgmStatus::LsgmOk,
        Err(status) => status,
    }
}

/// `ptr` is not NULL and is aligned for `T`.
pub fn check<T>(ptr: *const T) -> Result<(), LsgmStatus> {
    if ptr.is_null() {
        Err(LsgmStatus::LsgmNullPointer)
    } else if !ptr.is_aligned() {
        Err(LsgmStatus::LsgmMisaligned)
    } else {
        Ok(())
    }
}

/// `len` values of `T` at `ptr` fit the address space: `len * size_of::<T>()`
/// ≤ `isize::MAX` and the buffer does not run past its top (a slice may not
/// wrap around, and such a pointer can only be a caller's mistake).
fn check_len<T>(ptr: *const T, len: usize) -> Result<(), LsgmStatus> {
    match len.checked_mul(size_of::<T>()) {
        Some(bytes) if bytes <= isize::MAX as usize && (ptr as usize).checked_add(bytes).is_some() => Ok(()),
        _ => Err(LsgmStatus::LsgmLengthOverflow),
    }
}

/// The caller's `len` values at `ptr` as a slice, after [`check`] and the length check.
///
/// # Safety
/// `ptr` must be valid for reads of `len` values of `T` that nobody writes
/// while the slice lives.
pub unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], LsgmStatus> {
    check(ptr)?;
    check_len(ptr, len)?;
    // SAFETY: not null, aligned, length in range; validity is the caller's promise.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// The caller's `len` values at `ptr` as a mutable slice (see [`slice()`]).
///
/// # Safety
/// `ptr` must be valid for reads and writes of `len` initialised values of
/// `T` that nothing else reads or writes while the slice lives.
pub unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> Result<&'a mut [T], LsgmStatus> {
    check(ptr.cast_const())?;
    check_len(ptr.cast_const(), len)?;
    // SAFETY: as for `slice`, plus exclusive access (the caller's promise,
    // and `disjoint` for the buffers of one call).
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// Whether two slices share no byte.
pub fn disjoint<A, B>(a: &[A], b: &[B]) -> bool {
    let (a0, b0) = (a.as_ptr() as usize, b.as_ptr() as usize);
    let (a1, b1) = (a0 + core::mem::size_of_val(a), b0 + core::mem::size_of_val(b));
    a1 <= b0 || b1 <= a0 || a.is_empty() || b.is_empty()
}

/// Writes `value` to the checked output `ptr`.
///
/// # Safety
/// `ptr` must have passed [`check`] and be valid for a write of `T`.
pub unsafe fn write<T>(ptr: *mut T, value: T) {
    // SAFETY: checked non-null and aligned; validity is the caller's promise.
    unsafe { ptr.write(value) }
}
