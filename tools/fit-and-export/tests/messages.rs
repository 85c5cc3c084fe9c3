//! What a fit says on stderr agrees with what it then did: the held-out
//! rows' interval and the frames to use (against scipy's values), constant
//! features and the projection that leaves them out (against the stored
//! projection), a non-convergence that cannot matter (against the sample
//! mean), the advice of each warning, and nouns in the right number.

mod common;

use common::{fit_features, stderr, stdout, tool, traces, write_dir};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::path::Path;

/// `n` rows of `d` independent N(0, 1) features, row-major.
fn gaussian(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d)
        .map(|_| {
            let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect()
}

/// `n` rows of a `d`-wide tap spanned by 4 latent factors (plus a little
/// noise), whose first `dead` features are 0 in every row.
fn wide_with_dead(n: usize, d: usize, dead: usize, seed: u64) -> Vec<f32> {
    let z = gaussian(n, 4, seed);
    let w = gaussian(4, d, seed + 1);
    let noise = gaussian(n, d, seed + 2);
    (0..n * d)
        .map(|i| {
            let (r, j) = (i / d, i % d);
            if j < dead {
                0.0
            } else {
                (0..4).map(|f| z[r * 4 + f] * w[f * d + j]).sum::<f32>() + 0.1 * noise[i]
            }
        })
        .collect()
}

/// Runs a fit that must succeed; returns its stderr and its JSON report.
fn fit_ok(features: &Path, out: &Path, extra: &[&str]) -> (String, Value) {
    let a = fit_features(features, out, extra).assert().success();
    let report = serde_json::from_str(stdout(&a).lines().last().unwrap()).unwrap();
    (stderr(&a), report)
}

/// `inspect --json` of a model.
fn inspect(model: &Path) -> Value {
    let a = tool().args(["inspect", "--json"]).arg(model).assert().success();
    serde_json::from_slice(&a.get_output().stdout).unwrap()
}

/// scipy's Clopper–Pearson bounds for `passed` of `rows` at 95 % (fixture
/// from tools/fixtures/clopper_pearson.py).
fn scipy_interval(passed: u64, rows: u64) -> (f64, f64) {
    let doc: Value = serde_json::from_str(include_str!("fixtures/clopper_pearson.json")).unwrap();
    let c = doc["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["passed"] == passed && c["rows"] == rows && c["confidence"] == 0.95)
        .expect("a case of the fixture");
    (c["low"].as_f64().unwrap(), c["high"].as_f64().unwrap())
}

#[test]
fn few_held_out_rows_are_said_with_their_interval_and_the_frames_to_use() {
    // The case: 300 frames, 30 held out, TPR 93.33 % without a word.
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("f");
    write_dir(&features, &traces(300, &[2, 3], 1), &[2, 3]);
    let out = dir.path().join("m.lsgm");
    let (err, report) = fit_ok(&features, &out, &["--components", "3"]);
    let (lo, hi) = scipy_interval(28, 30);
    assert!((report["holdout_tpr"].as_f64().unwrap() - 28.0 / 30.0).abs() < 1e-12);
    let got = &report["holdout_tpr_interval"];
    assert!(
        (got[0].as_f64().unwrap() - lo).abs() < 1e-9 && (got[1].as_f64().unwrap() - hi).abs() < 1e-9,
        "{got} vs scipy ({lo}, {hi})"
    );
    let pct = |v: f64| format!("{:.1}", 100.0 * v);
    for needle in [
        "passes 28 of 30 held-out rows (93.3 %)".to_string(),
        "warning: the threshold is calibrated on 30 held-out rows: it passes 28 of them (93.3 %, not 95 %"
            .to_string(),
        format!(
            "anywhere from {} % to {} % (95 % Clopper–Pearson interval)",
            pct(lo),
            pct(hi)
        ),
        format!(
            "flagging {}–{} % of them instead of 5 %",
            pct(1.0 - hi),
            pct(1.0 - lo)
        ),
        // rows_for(0.95, 0.01) is scipy's 2,362 (tests/binomial.rs); the
        // split holds out round(0.1 · 23,615) = 2,362 rows of 23,615 frames.
        "hold out at least 2362 rows: 23615 frames at --holdout 0.1".to_string(),
    ] {
        assert!(err.contains(&needle), "{needle:?} not in {err}");
    }
    // The frames to use follow --holdout (round(0.5 · 4,723) = 2,362).
    let (err, _) = fit_ok(&features, &out, &["--components", "3", "--holdout", "0.5"]);
    assert!(err.contains("2362 rows: 4723 frames at --holdout 0.5"), "{err}");

    // 2,400 held-out rows: 95 % ± 1 point, so no warning, only the line.
    let many = dir.path().join("many");
    write_dir(&many, &traces(4800, &[2, 3], 2), &[2, 3]);
    let (err, report) = fit_ok(&many, &out, &["--components", "3", "--holdout", "0.5"]);
    assert!(
        err.contains("passes 2280 of 2400 held-out rows (95.0 %)"),
        "{err}"
    );
    assert!(!err.contains("warning: the threshold"), "{err}");
    let got = &report["holdout_tpr_interval"];
    assert!(
        got[0].as_f64().unwrap() >= 0.94 && got[1].as_f64().unwrap() <= 0.96,
        "{got}"
    );
    // --holdout 0: the training rows calibrate; no interval is claimed.
    let (err, report) = fit_ok(&features, &out, &["--components", "3", "--holdout", "0"]);
    assert!(report["holdout_tpr_interval"].is_null(), "{report}");
    assert!(
        err.contains("--holdout 0: the threshold is calibrated on the training rows"),
        "{err}"
    );
}

#[test]
fn constant_features_are_said_after_the_projection_that_decides_their_fate() {
    // "7 of 1280 features are constant …; --max-dim would project them
    // away" was printed for a layer that `auto` then projected to 3.
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("f");
    let (d, dead) = (100, 7);
    write_dir(
        &features,
        &[traces(600, &[2], 3).remove(0), wide_with_dead(600, d, dead, 4)],
        &[2, d],
    );
    let out = dir.path().join("m.lsgm");
    let (err, report) = fit_ok(&features, &out, &["--components", "2"]);
    let dim = report["layers"][1]["dim"].as_u64().unwrap();
    assert!(dim < (d - dead) as u64, "{report}");
    assert!(
        err.contains(&format!(
            "note: layer 1: 7 of 100 features are constant over the training rows (dead channels?); \
             the projection to {dim} dimensions leaves them out"
        )),
        "{err}"
    );
    assert!(!err.contains("warning: layer 1: 7 of"), "{err}");
    // What the note says is what the model stores: no weight on them.
    let matrix = &inspect(&out)["layers"][1]["projection"]["matrix"];
    for row in matrix.as_array().unwrap() {
        for w in &row.as_array().unwrap()[..dead] {
            assert_eq!(w.as_f64().unwrap(), 0.0, "{row}");
        }
    }
    // Fitted at full width, they are kept with reg_covar as their variance:
    // a warning naming the --max-dim that leaves them out.
    let (err, _) = fit_ok(&features, &out, &["--components", "2", "--max-dim", "none"]);
    assert!(
        err.contains(
            "warning: layer 1: 7 of 100 features are constant over the training rows (dead channels?); \
             the mixture fits them at full width with --reg-covar 1e-6 as their variance"
        ) && err.contains("--max-dim 93 or lower leaves them out"),
        "{err}"
    );
    // One dead feature: singular nouns.
    let one = dir.path().join("one");
    write_dir(&one, &[wide_with_dead(600, 4, 1, 5)], &[4]);
    let (err, _) = fit_ok(&one, &out, &["--components", "2"]);
    assert!(
        err.contains("1 of 4 features is constant")
            && err.contains("fits it at full width")
            && err.contains("as its variance"),
        "{err}"
    );
    let (err, _) = fit_ok(&one, &out, &["--components", "2", "--max-dim", "3"]);
    assert!(
        err.contains("note: layer 0: 1 of 4 features is constant")
            && err.contains("the projection to 3 dimensions leaves it out")
            && err.contains("residual term for the 1 dropped axis:"),
        "{err}"
    );
}

#[test]
fn a_fit_left_with_one_component_says_its_non_convergence_does_not_matter() {
    // One Gaussian cluster, a 2-component DP stopped after 1 iteration and
    // pruned at weight 0.5: one component is left, fitted by then to the
    // half of the rows k-means gave it. It is refitted in closed form on
    // every row, so the non-convergence does not matter, and it is said so.
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("f");
    let (n, d) = (400, 3);
    let rows = gaussian(n, d, 6);
    write_dir(&features, std::slice::from_ref(&rows), &[d]);
    let out = dir.path().join("m.lsgm");
    let args = [
        "--dp",
        "2",
        "--dp-prune",
        "0.5",
        "--max-iter",
        "1",
        "--holdout",
        "0",
    ];
    let (err, report) = fit_ok(&features, &out, &args);
    let layer = &report["layers"][0];
    assert_eq!(
        (&layer["components"], &layer["converged"], &layer["closed_form"]),
        (&Value::from(1), &Value::Bool(false), &Value::Bool(true)),
        "{layer}"
    );
    assert!(
        err.contains(
            "note: layer 0: the Dirichlet-process fit stopped after --max-iter 1 iteration without \
             converging, but it left 1 component"
        ) && err.contains("1 component (fitted in closed form)"),
        "{err}"
    );
    assert!(!err.contains("warning: layer 0: the Dirichlet"), "{err}");
    // The stored mean is the mean of every row (the DP posterior mean with
    // the data mean as its prior), not that of the half it held.
    let mean = &inspect(&out)["layers"][0]["components"][0]["mean"];
    for j in 0..d {
        let want = (0..n).map(|r| rows[r * d + j] as f64).sum::<f64>() / n as f64;
        let got = mean[j].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-5,
            "feature {j}: {got} vs the rows' mean {want}"
        );
    }
    // Several components left unconverged: the warning, which says so.
    let (err, _) = fit_ok(
        &features,
        &out,
        &["--dp", "4", "--max-iter", "1", "--holdout", "0"],
    );
    assert!(
        err.contains("warning: layer 0: the Dirichlet-process fit stopped after --max-iter 1 iteration")
            && err.contains("the model keeps its 4 components as they stood"),
        "{err}"
    );
}

#[test]
fn warnings_advise_only_what_is_left_to_change() {
    // One component over 200 dimensions from 270 rows: held-out rows fall
    // far below the training ones. Fewer components is no remedy.
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("f");
    write_dir(&features, &[wide_with_dead(300, 200, 0, 7)], &[200]);
    let out = dir.path().join("m.lsgm");
    let (err, _) = fit_ok(&features, &out, &["--components", "1", "--max-dim", "none"]);
    assert!(
        err.contains(
            "warning: layer 0: 270 training rows are few for 1 full-covariance component of 200 dimensions"
        ) && err.contains("use --max-dim 31 (now none)"),
        "{err}"
    );
    let layer_warning = err
        .lines()
        .find(|l| l.starts_with("warning: layer 0: 30 of 30 held-out in-distribution rows (100 %)"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        layer_warning.ends_with("Fit on more frames, or lower the dimension (--max-dim below 200)"),
        "{layer_warning}"
    );
    // --max-iter 1 with K > 1: "1 iteration".
    let (err, _) = fit_ok(&features, &out, &["--components", "2", "--max-iter", "1"]);
    assert!(
        err.contains("EM stopped after --max-iter 1 iteration without converging"),
        "{err}"
    );
}
