//! The held-out rate interval against scipy (fixture from
//! tools/fixtures/clopper_pearson.py): Clopper–Pearson bounds, the rows a
//! calibrated threshold passes, and the rows docs/fitting.md's guidance names.

use fit_and_export::binomial::{clopper_pearson, passed, rows_for, HALF_WIDTH};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/clopper_pearson.json")).unwrap()
}

#[test]
fn clopper_pearson_matches_scipy() {
    let doc = fixture();
    for c in doc["intervals"].as_array().unwrap() {
        let (x, n) = (
            c["passed"].as_u64().unwrap() as usize,
            c["rows"].as_u64().unwrap() as usize,
        );
        let confidence = c["confidence"].as_f64().unwrap();
        let (lo, hi) = clopper_pearson(x, n, confidence);
        for (got, key) in [(lo, "low"), (hi, "high")] {
            let want = c[key].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-9 * want.abs(),
                "{x} of {n} at {confidence}: {key} {got} vs scipy {want}"
            );
        }
    }
}

#[test]
fn passed_rows_and_rows_needed_match_numpy_and_scipy() {
    let doc = fixture();
    for c in doc["passed"].as_array().unwrap() {
        let n = c["rows"].as_u64().unwrap() as usize;
        assert_eq!(passed(n, 0.95) as u64, c["passed"].as_u64().unwrap(), "{n} rows");
    }
    for c in doc["rows_for"].as_array().unwrap() {
        let (rate, half) = (c["rate"].as_f64().unwrap(), c["half_width"].as_f64().unwrap());
        assert_eq!(
            rows_for(rate, half) as u64,
            c["rows"].as_u64().unwrap(),
            "{rate} ± {half}"
        );
    }
    // docs/fitting.md's guidance ("How many frames a fit needs") is the ±1 point figure.
    assert_eq!(rows_for(0.95, HALF_WIDTH), 2362);
}
