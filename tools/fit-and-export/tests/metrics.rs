//! The eval metrics against scikit-learn's `roc_auc_score` and
//! `average_precision_score` (fixtures from tools/fixtures/sklearn_metrics.py).

use fit_and_export::eval::metrics::metrics;
use serde_json::Value;

#[test]
fn metrics_match_scikit_learn_including_ties() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/sklearn_metrics.json")).unwrap();
    for (i, c) in doc["cases"].as_array().unwrap().iter().enumerate() {
        let id: Vec<f64> = serde_json::from_value(c["id"].clone()).unwrap();
        let ood: Vec<f64> = serde_json::from_value(c["ood"].clone()).unwrap();
        let m = metrics(&id, &ood);
        for (got, key) in [
            (m.auroc, "auroc"),
            (m.aupr_in, "aupr_in"),
            (m.aupr_out, "aupr_out"),
        ] {
            let want = c[key].as_f64().unwrap();
            assert!(
                (got - want).abs() < 1e-12,
                "case {i} {key}: {got} vs scikit-learn {want}"
            );
        }
        assert!((0.0..=1.0).contains(&m.tnr_at_95tpr) && (0.5..=1.0).contains(&m.detection_accuracy));
    }
}
