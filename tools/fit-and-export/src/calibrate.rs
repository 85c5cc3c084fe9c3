//! Calibration on held-out in-distribution rows: the threshold at 95 % TPR,
//! a few quantiles, and each layer's median contribution.

/// Quantile levels stored in every model.
pub const LEVELS: [f64; 11] = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99];

/// The TPR the stored threshold is set for.
pub const TPR: f64 = 0.95;

/// Linear-interpolation quantile of sorted values (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Calibration summary of held-out scores.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// Scores below this are OOD.
    pub threshold: f64,
    /// Fraction of held-out scores at or above the threshold
    /// (`passed / rows`).
    pub tpr: f64,
    /// Scores at or above the threshold.
    pub passed: usize,
    /// Scores calibrated on.
    pub rows: usize,
    /// `(q, score)` pairs.
    pub quantiles: Vec<(f64, f64)>,
}

/// Calibrates from unsorted held-out scores (at least one).
pub fn calibrate(scores: &[f64]) -> Calibration {
    let mut s = scores.to_vec();
    s.sort_by(f64::total_cmp);
    let threshold = quantile(&s, 1.0 - TPR);
    let passed = s.iter().filter(|&&v| v >= threshold).count();
    Calibration {
        threshold,
        tpr: passed as f64 / s.len() as f64,
        passed,
        rows: s.len(),
        quantiles: LEVELS.iter().map(|&q| (q, quantile(&s, q))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_passes_95_percent() {
        let scores: Vec<f64> = (0..1000).map(|i| -(i as f64)).collect();
        let c = calibrate(&scores);
        // 5 % of 999 below: numpy.quantile(scores, 0.05) = -949.05.
        assert!((c.threshold + 949.05).abs() < 1e-9);
        assert!((c.tpr - 0.95).abs() < 1e-3);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert_eq!(quantile(&[5.0], 0.3), 5.0);
    }
}
