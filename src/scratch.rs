//! Caller-owned working memory for [`crate::Model::score`].
//!
//! The scorer never allocates: it carves its buffers out of one `&mut [f32]`
//! whose length the model reports ([`crate::Model::scratch_len`]). On a host
//! that is a `Vec` made once; on a microcontroller, a [`Scratch`] sized at
//! compile time with [`scratch_len_for`].

/// Scratch length for a model whose largest layer input is `max_dim_in`
/// (only counted when a layer has a projection), largest mixture dimension
/// `max_dim` and largest component count `max_k`.
pub const fn scratch_len_for(max_dim_in_projected: usize, max_dim: usize, max_k: usize) -> usize {
    max_dim_in_projected + 2 * max_dim + 3 * max_k
}

/// The largest sizes a model's layers need, from which the scratch is carved.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScratchSizes {
    /// Largest `dim_in` among projected layers (0 if none is projected).
    pub max_dim_in_projected: usize,
    /// Largest mixture dimension.
    pub max_dim: usize,
    /// Largest component count.
    pub max_k: usize,
}

impl ScratchSizes {
    /// Scratch length in `f32`s: [`scratch_len_for`] of these sizes.
    pub const fn len(&self) -> usize {
        scratch_len_for(self.max_dim_in_projected, self.max_dim, self.max_k)
    }
}

/// A fixed-capacity scratch buffer for `no_std` callers.
#[derive(Debug, Clone)]
pub struct Scratch<const N: usize> {
    buf: [f32; N],
}

impl<const N: usize> Scratch<N> {
    /// A zeroed buffer.
    pub const fn new() -> Self {
        Scratch { buf: [0.0; N] }
    }

    /// The buffer to pass to `score`.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buf
    }
}

impl<const N: usize> Default for Scratch<N> {
    fn default() -> Self {
        Self::new()
    }
}
