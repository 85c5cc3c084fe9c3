//! A frame's verdict: its score against the threshold, and the layer to blame.

/// The outcome of scoring one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Verdict {
    /// Log joint likelihood of the frame's trace (higher = more in-distribution).
    pub score: f32,
    /// Threshold used.
    pub threshold: f32,
    /// `score < threshold`.
    pub ood: bool,
    /// The layer whose contribution fell furthest below its in-distribution
    /// median: where the frame stopped looking familiar.
    pub worst_layer: u8,
    /// `Some(layer)` when the frame's density overflowed `f32` at that layer
    /// ([`crate::Error::Overflow`]): it is farther from every component than
    /// `f32` can express, so it gets the lowest score, [`OVERFLOW_SCORE`].
    pub overflow: Option<u8>,
}

/// The score of a frame whose density overflowed: the lowest finite `f32`,
/// below every threshold, so the most out-of-distribution frame is OOD.
pub const OVERFLOW_SCORE: f32 = f32::MIN;

impl Verdict {
    /// Builds a verdict from a score, the per-layer contributions and each
    /// layer's in-distribution median contribution.
    pub fn new(
        score: f32,
        threshold: f32,
        contributions: &[f32],
        medians: impl Iterator<Item = f32>,
    ) -> Self {
        let mut worst = (0u8, f32::INFINITY);
        for (i, (c, m)) in contributions.iter().zip(medians).enumerate() {
            let drop = c - m;
            if drop < worst.1 {
                worst = (i as u8, drop);
            }
        }
        Verdict {
            score,
            threshold,
            // Written so that a NaN score (which no valid model and finite
            // features produce, but damaged model memory can) is OOD, never
            // in-distribution.
            ood: score.is_nan() || score < threshold,
            worst_layer: worst.0,
            overflow: None,
        }
    }

    /// The verdict of a frame whose density overflowed at `layer`: OOD, with
    /// the lowest score and that layer to blame.
    pub fn overflow(layer: u8, threshold: f32) -> Self {
        Verdict {
            score: OVERFLOW_SCORE,
            threshold,
            ood: true,
            worst_layer: layer,
            overflow: Some(layer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict;

    #[test]
    fn a_nan_score_is_ood_never_in_distribution() {
        let v = Verdict::new(f32::NAN, 170.0, &[1.0, 2.0], [0.5, 0.5].into_iter());
        assert!(v.ood);
        assert!(!Verdict::new(170.0, 170.0, &[1.0], [0.5].into_iter()).ood);
        assert!(Verdict::new(169.9, 170.0, &[1.0], [0.5].into_iter()).ood);
    }
}
