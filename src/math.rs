//! `exp` and `ln` for the hot path: the platform's with `std`, `libm` without.
//! (`micromath`-style approximations were measured to be percent-level off; see
//! the project notes.)

#[cfg(feature = "std")]
#[inline]
pub(crate) fn exp(x: f32) -> f32 {
    x.exp()
}

#[cfg(not(feature = "std"))]
#[inline]
pub(crate) fn exp(x: f32) -> f32 {
    libm::expf(x)
}

#[cfg(feature = "std")]
#[inline]
pub(crate) fn ln(x: f32) -> f32 {
    x.ln()
}

#[cfg(not(feature = "std"))]
#[inline]
pub(crate) fn ln(x: f32) -> f32 {
    libm::logf(x)
}
