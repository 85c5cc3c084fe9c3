//! The command-line interface end to end, on synthetic feature files.

mod common;

use common::{fails, scores, stderr, stdout, tool, traces, write_dir};
use std::path::Path;

const DIMS: [usize; 3] = [2, 3, 4];

fn fit(features: &Path, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    common::fit_features(features, out, extra).assert()
}

#[test]
fn fit_inspect_and_score_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("features");
    write_dir(&features, &traces(3000, &DIMS, 1), &DIMS);
    for (name, extra) in [
        ("dp.lsgm", vec![]),
        (
            "em.lsgm",
            vec![
                "--components",
                "3",
                "--covariance",
                "diag",
                "--chain",
                "markov",
                "--transitions",
                "soft",
            ],
        ),
        (
            "pca.lsgm",
            vec!["--components", "3", "--max-dim", "2", "--quantise", "u8"],
        ),
    ] {
        let out = dir.path().join(name);
        let a = fit(&features, &out, &extra).success();
        let printed = stdout(&a);
        let report: serde_json::Value = serde_json::from_str(printed.lines().last().unwrap()).unwrap();
        assert_eq!(report["layers"].as_array().unwrap().len(), 3, "{printed}");
        assert_eq!(report["rows"][1], 300);
        let tpr = report["holdout_tpr"].as_f64().unwrap();
        assert!((tpr - 0.95).abs() < 0.01, "{tpr}");
        // The three true clusters per layer are found; DP (truncated at 20)
        // prunes all but 3 or 4.
        for l in report["layers"].as_array().unwrap() {
            let k = l["components"].as_u64().unwrap();
            assert!(k == 3 || (name == "dp.lsgm" && k == 4), "{name}: {l}");
        }

        let a = tool().arg("inspect").arg(&out).assert().success();
        let summary = stdout(&a);
        assert!(
            summary.contains("K = 3") && summary.contains("threshold"),
            "{summary}"
        );
        let a = tool().args(["inspect", "--json"]).arg(&out).assert().success();
        let j: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
        assert_eq!(j["layers"].as_array().unwrap().len(), 3);
        assert_eq!(j["transitions"].as_array().unwrap().len(), 2);

        let scores = scores(&out, &features);
        assert_eq!(scores.len(), 3000);
        let threshold = j["threshold"].as_f64().unwrap();
        let pass = scores.iter().filter(|&&s| s >= threshold).count() as f64 / 3000.0;
        assert!(pass > 0.9 && pass < 0.99, "{name}: {pass}");
    }
}

#[test]
fn reduced_storage_fits_reports_its_effect_and_requantises() {
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("features");
    write_dir(&features, &traces(2000, &DIMS, 4), &DIMS);
    let (f32_model, i8_model) = (dir.path().join("f32.lsgm"), dir.path().join("i8.lsgm"));
    fit(&features, &f32_model, &["--components", "3"]).success();
    let a = fit(&features, &i8_model, &["--components", "3", "--storage", "i8"]).success();
    let printed = stdout(&a);
    let report: serde_json::Value = serde_json::from_str(printed.lines().last().unwrap()).unwrap();
    let effect = &report["storage_effect"];
    let (median, max) = (
        effect["median_abs"].as_f64().unwrap(),
        effect["max_abs"].as_f64().unwrap(),
    );
    assert!(median > 0.0 && median <= max && max < 1.0, "{effect}");

    let a = tool().arg("inspect").arg(&i8_model).assert().success();
    let summary = stdout(&a);
    assert_eq!(summary.matches("i8 storage").count(), 3, "{summary}");

    // The same mixtures, rounded: scores move by less than the report's max
    // on held-out rows (here: all rows, so allow a little more).
    let (exact, stored) = (scores(&f32_model, &features), scores(&i8_model, &features));
    let worst = exact
        .iter()
        .zip(&stored)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst > 0.0 && worst < 4.0 * max.max(0.01),
        "worst {worst}, report max {max}"
    );

    // requantise: f32 → f16 halves the factors; the scores stay close.
    let f16_model = dir.path().join("f16.lsgm");
    let a = tool()
        .arg("requantise")
        .arg(&f32_model)
        .args(["--storage", "f16", "--out"])
        .arg(&f16_model)
        .assert()
        .success();
    assert!(stderr(&a).contains("recalibrate"), "{}", stderr(&a));
    let (big, small) = (
        std::fs::metadata(&f32_model).unwrap().len(),
        std::fs::metadata(&f16_model).unwrap().len(),
    );
    assert!(small < big, "{small} vs {big}");
    let half = scores(&f16_model, &features);
    for (a, b) in exact.iter().zip(&half) {
        assert!((a - b).abs() < 1e-2 * (1.0 + a.abs()), "{a} vs {b}");
    }
    // Nothing to do is a usage error, not a silent copy.
    let out = dir.path().join("none.lsgm");
    fails(
        tool().arg("requantise").arg(&f32_model).arg("--out").arg(&out),
        2,
        &["--quantise", "--storage"],
    );
}

#[test]
fn same_inputs_and_seed_give_byte_identical_models() {
    let dir = tempfile::tempdir().unwrap();
    let features = dir.path().join("f");
    write_dir(&features, &traces(2000, &DIMS, 2), &DIMS);
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    fit(&features, &a, &["--seed", "7"]).success();
    fit(&features, &b, &["--seed", "7"]).success();
    fit(&features, &c, &["--seed", "8"]).success();
    let (a, b, c) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        std::fs::read(c).unwrap(),
    );
    assert_eq!(a, b);
    assert_ne!(a, c, "a different seed should change the held-out split");
}

#[test]
fn bad_input_fails_clearly_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.lsgm");
    let check = |features: &Path, extra: &[&str], needle: &str| {
        fails(&mut common::fit_features(features, &out, extra), 1, &[needle]);
    };
    // Missing and empty directories.
    check(&dir.path().join("nope"), &[], "not a directory");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    check(&empty, &[], "no features found");
    // Misaligned rows.
    let ragged = dir.path().join("ragged");
    let mut t = traces(500, &DIMS, 3);
    t[2].truncate(400 * 4);
    write_dir(&ragged, &t, &DIMS);
    check(&ragged, &[], "rows must be aligned");
    // NaN.
    let nan = dir.path().join("nan");
    let mut t = traces(500, &DIMS, 3);
    t[1][7] = f32::NAN;
    write_dir(&nan, &t, &DIMS);
    check(&nan, &[], "1.npy: row 2, column 1");
    // K > N.
    let small = dir.path().join("small");
    write_dir(&small, &traces(30, &DIMS, 3), &DIMS);
    check(
        &small,
        &["--components", "50", "--holdout", "0"],
        "too few rows for these flags: 50 components need 50 training rows, at least 50 rows in all; there \
         are 30 (30 training, 0 held out). Give at least 50 frames (after --classes), or ask for less: \
         --components 50: give fewer",
    );
    // Constant layer.
    let constant = dir.path().join("constant");
    let mut t = traces(500, &DIMS, 3);
    t[0].iter_mut().for_each(|v| *v = 1.0);
    write_dir(&constant, &t, &DIMS);
    check(&constant, &[], "every feature is constant");
    // Unsupported dtype: a hand-written int16 .npy.
    let ints = dir.path().join("ints");
    std::fs::create_dir(&ints).unwrap();
    let header = "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 1), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let pad = 64 - (10 + header.len() + 1) % 64;
    let full = format!("{header}{}\n", " ".repeat(pad));
    bytes.extend_from_slice(&(full.len() as u16).to_le_bytes());
    bytes.extend_from_slice(full.as_bytes());
    bytes.extend_from_slice(&[1, 0, 2, 0]);
    std::fs::write(ints.join("0.npy"), bytes).unwrap();
    check(&ints, &[], "unsupported dtype");
    // Invalid parameters are rejected before any work.
    let good = dir.path().join("good");
    write_dir(&good, &traces(500, &DIMS, 3), &DIMS);
    // Numbers out of range are usage errors, found as the flags are parsed.
    for bad in [
        ["--holdout", "1.5"],
        ["--reg-covar", "-1"],
        ["--tol", "NaN"],
        ["--pseudo-count", "inf"],
        ["--dp-prune", "1"],
    ] {
        fails(
            &mut common::fit_features(&good, &out, &bad),
            2,
            &[bad[0], "is outside"],
        );
    }
    // An output path that cannot be written.
    fails(
        &mut common::fit_features(&good, &dir.path().join("no/such/dir/m.lsgm"), &[]),
        1,
        &["does not exist or is not writable"],
    );
    // A file that is not a model.
    std::fs::write(&out, b"not a model").unwrap();
    fails(
        tool().arg("inspect").arg(&out),
        1,
        &["not an LSGM model file (bad magic bytes) (is it an .lsgm file written by fit-and-export?)"],
    );
}

/// A projected layer scores what it drops: frames displaced only along the
/// axes `--max-dim` removes must be flagged (before format version 4 the
/// projection had no residual term and such frames passed), while held-in
/// frames still pass at about the calibrated rate.
#[test]
fn departures_along_dropped_axes_are_flagged() {
    use rand::{Rng, SeedableRng};
    let (n, d, kept) = (2000, 24, 3);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut normal = move || {
        // Box–Muller: the test does not depend on a distribution crate.
        let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    // Axis j has standard deviation 3 for the first `kept` axes, 0.1 after.
    let sd = |j: usize| if j < kept { 3.0 } else { 0.1 };
    let mut rows = |count: usize, shift: Option<(usize, f64)>| -> Vec<f32> {
        (0..count)
            .flat_map(|_| (0..d).map(|j| (normal() * sd(j)) as f32).collect::<Vec<_>>())
            .enumerate()
            .map(|(i, v)| match shift {
                Some((axis, by)) if i % d == axis => v + by as f32,
                _ => v,
            })
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train");
    write_dir(&train, &[rows(n, None)], &[d]);
    let model = dir.path().join("m.lsgm");
    let a = fit(
        &train,
        &model,
        &["--components", "2", "--max-dim", &kept.to_string()],
    )
    .success();
    assert!(stderr(&a).contains("residual"), "{}", stderr(&a));
    let j: serde_json::Value = serde_json::from_slice(
        &tool()
            .args(["inspect", "--json"])
            .arg(&model)
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    let threshold = j["threshold"].as_f64().unwrap();
    let p = &j["layers"][0]["projection"];
    // The residual is isotropic here, so Box's moment match recovers
    // probabilistic PCA's ν = 21 dropped axes of variance 0.01, to the
    // sampling error of 200 held-out rows.
    let (dof, var) = (
        p["residual_dof"].as_f64().unwrap(),
        p["residual_variance"].as_f64().unwrap(),
    );
    assert!(
        dof > 0.75 * (d - kept) as f64 && dof <= (d - kept) as f64,
        "{dof}"
    );
    assert!((0.008..0.0125).contains(&var), "{var}");

    let pass = |features: &Path| {
        let s = scores(&model, features);
        s.iter().filter(|&&v| v >= threshold).count() as f64 / s.len() as f64
    };
    let held_in = dir.path().join("held-in");
    write_dir(&held_in, &[rows(500, None)], &[d]);
    let p_in = pass(&held_in);
    assert!((0.9..=0.99).contains(&p_in), "held-in pass rate {p_in}");
    // 1 unit along dropped axis 10 is 10 of its standard deviations but only
    // a third of one along the kept axes: the mixture alone cannot see it.
    let shifted = dir.path().join("shifted");
    write_dir(&shifted, &[rows(500, Some((10, 1.0)))], &[d]);
    assert_eq!(pass(&shifted), 0.0, "frames 10σ out along a dropped axis passed");
}
