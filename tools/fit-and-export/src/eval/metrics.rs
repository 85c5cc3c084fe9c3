//! OOD detection metrics. Convention (as in the LSGM paper): in-distribution
//! is the positive class and a higher score means more in-distribution.

/// All metrics of one (ID, OOD, method) triple, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Area under the ROC curve (rank-based, ties count one half).
    pub auroc: f64,
    /// True-negative rate (OOD below the threshold) at the threshold that
    /// keeps 95 % of ID scores at or above it.
    pub tnr_at_95tpr: f64,
    /// False-positive rate at the same threshold: the fraction of OOD
    /// scores at or above it (`1 − TNR@95`), the FPR@95 of the OOD papers
    /// (ReAct, KNN, ASH, ViM tables: the FPR of OOD when 95 % of ID is kept).
    pub fpr_at_95tpr: f64,
    /// Average precision with ID as positive.
    pub aupr_in: f64,
    /// Average precision with OOD as positive (scores negated).
    pub aupr_out: f64,
    /// Best `½ (TPR + TNR)` over all thresholds.
    pub detection_accuracy: f64,
}

/// AUROC by the Mann–Whitney statistic with average ranks for ties:
/// `P(s_id > s_ood) + ½ P(s_id = s_ood)`.
pub fn auroc(id: &[f64], ood: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = id
        .iter()
        .map(|&s| (s, true))
        .chain(ood.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0; // ranks i+1 ..= j
        rank_sum += avg_rank * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (p, n) = (id.len() as f64, ood.len() as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// Average precision of `pos` against `neg` (higher score = positive), as
/// scikit-learn's `average_precision_score`: `Σ (R_k − R_{k−1}) P_k` over
/// distinct thresholds, tied scores entering together.
pub fn average_precision(pos: &[f64], neg: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = pos
        .iter()
        .map(|&s| (s, true))
        .chain(neg.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total = pos.len() as f64;
    let (mut tp, mut fp, mut ap, mut prev_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        let recall = tp / total;
        ap += (recall - prev_recall) * tp / (tp + fp);
        prev_recall = recall;
        i = j;
    }
    ap
}

/// The threshold that keeps a fraction `tpr` of `id` scores at or above it:
/// the `⌈tpr · n⌉`-th largest ID score.
pub fn threshold_at_tpr(id: &[f64], tpr: f64) -> f64 {
    let mut s = id.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let k = ((tpr * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[k - 1]
}

/// Every metric at once.
pub fn metrics(id: &[f64], ood: &[f64]) -> Metrics {
    let t = threshold_at_tpr(id, 0.95);
    let tnr = ood.iter().filter(|&&s| s < t).count() as f64 / ood.len() as f64;
    let fpr = ood.iter().filter(|&&s| s >= t).count() as f64 / ood.len() as f64;
    let neg = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<_>>();
    // Detection accuracy: sweep every distinct score as threshold (s ≥ t is ID).
    let mut cuts: Vec<f64> = id.iter().chain(ood).copied().collect();
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    cuts.push(f64::INFINITY);
    let mut sorted_id = id.to_vec();
    sorted_id.sort_by(f64::total_cmp);
    let mut sorted_ood = ood.to_vec();
    sorted_ood.sort_by(f64::total_cmp);
    let below = |v: &[f64], t: f64| v.partition_point(|&x| x < t) as f64 / v.len() as f64;
    let detection_accuracy = cuts
        .iter()
        .map(|&c| 0.5 * (1.0 - below(&sorted_id, c)) + 0.5 * below(&sorted_ood, c))
        .fold(0.0, f64::max);
    Metrics {
        auroc: auroc(id, ood),
        tnr_at_95tpr: tnr,
        fpr_at_95tpr: fpr,
        aupr_in: average_precision(id, ood),
        aupr_out: average_precision(&neg(ood), &neg(id)),
        detection_accuracy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_cases() {
        // Perfect separation.
        let m = metrics(&[3.0, 4.0], &[1.0, 2.0]);
        assert_eq!(
            (
                m.auroc,
                m.aupr_in,
                m.aupr_out,
                m.detection_accuracy,
                m.tnr_at_95tpr
            ),
            (1.0, 1.0, 1.0, 1.0, 1.0)
        );
        // One swapped pair out of four: AUROC 3/4.
        assert_eq!(auroc(&[1.0, 4.0], &[2.0, 3.0]), 0.5);
        assert_eq!(auroc(&[2.5, 4.0], &[1.0, 3.0]), 0.75);
        // Ties count one half.
        assert_eq!(auroc(&[1.0], &[1.0]), 0.5);
        assert_eq!(auroc(&[2.0, 1.0], &[1.0, 0.0]), 0.875);
        // AP: ranking pos, neg, pos → (1/2)·1 + (1/2)·(2/3).
        assert!((average_precision(&[3.0, 1.0], &[2.0]) - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
        // A tie between a positive and a negative enters at once: P = 1/2.
        assert!((average_precision(&[1.0], &[1.0]) - 0.5).abs() < 1e-12);
        // Threshold at 95 % TPR of 20 scores is the 19th largest.
        let id: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(threshold_at_tpr(&id, 0.95), 2.0);
        let m = metrics(&id, &[1.5, 2.0, 25.0]);
        assert!((m.tnr_at_95tpr - 1.0 / 3.0).abs() < 1e-12);
        // FPR@95: OOD at or above that threshold (2.0 ties count as accepted).
        assert!((m.fpr_at_95tpr - 2.0 / 3.0).abs() < 1e-12);
    }
}
