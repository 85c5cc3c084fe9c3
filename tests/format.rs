//! The model file format: golden bytes, round trips, and robustness of the
//! decoder against truncated, corrupted and arbitrary input.

mod common;

use lsgm::model::preprocess::{Colour, Datum, Layout, PixelRange, Resize};
use lsgm::model::wire::Pooling;
use lsgm::quant::quantise;
use lsgm::{
    Chain, ComponentSpec, Covariance, Error, LayerSpec, Model, ModelSpec, Preprocess, ProjectionSpec,
    Quantisation, Storage,
};
use proptest::prelude::*;

/// A two-layer model whose every number is exact in binary.
fn tiny(quant: Quantisation) -> ModelSpec {
    tiny_stored(quant, [Storage::F32, Storage::F32])
}

/// [`tiny`] with each layer's means and factors stored as given (its values
/// are exact in f16 too; in i8 they are rounded).
fn tiny_stored(quant: Quantisation, storage: [Storage; 2]) -> ModelSpec {
    ModelSpec {
        source: "tiny".into(),
        chain: Chain::Paper,
        threshold: -4.0,
        calibration_tpr: 0.95,
        quantiles: vec![(0.05, -4.0), (0.5, -2.0)],
        preprocess: Some(Preprocess {
            input: "x".into(),
            logits: "y".into(),
            layout: Layout::Nhwc,
            colour: Colour::Bgr,
            height: 2,
            width: 2,
            resize: Resize::Letterbox { fill: 114 },
            datum: Datum::F32,
            range: PixelRange::Unit,
            mean: vec![0.5, 0.25, 0.0],
            std: vec![0.25, 0.5, 1.0],
        }),
        layers: vec![
            LayerSpec {
                name: "a".into(),
                pooling: Pooling::GlobalAverageNhwc,
                dim_in: 2,
                // z = 0.6 (x₀ − 0.5) + 0.8 (x₁ + 0.5); the dropped direction
                // (−0.8, 0.6) has variance 0.25 and one degree of freedom.
                projection: Some(ProjectionSpec {
                    mean: vec![0.5, -0.5],
                    matrix: vec![0.6, 0.8],
                    residual_variance: 0.25,
                    residual_dof: 1.0,
                }),
                covariance: Covariance::Diag,
                storage: storage[0],
                components: vec![ComponentSpec {
                    log_weight: 0.0,
                    mean: vec![1.0],
                    precision_cholesky: vec![2.0],
                }],
                median_contribution: -1.0,
            },
            LayerSpec {
                name: "b".into(),
                pooling: Pooling::Vector,
                dim_in: 2,
                projection: None,
                covariance: Covariance::Full,
                storage: storage[1],
                components: vec![
                    ComponentSpec {
                        log_weight: (0.5f32).ln(),
                        mean: vec![0.0, 0.0],
                        // U = [[1, 0.5], [0, 2]] packed by columns: U00, U01, U11.
                        precision_cholesky: vec![1.0, 0.5, 2.0],
                    },
                    ComponentSpec {
                        log_weight: (0.5f32).ln(),
                        mean: vec![1.0, -1.0],
                        precision_cholesky: vec![1.0, 0.0, 1.0],
                    },
                ],
                median_contribution: -2.0,
            },
        ],
        transitions: vec![quantise(&[0.25, 0.75], quant).unwrap()],
    }
}

const GOLDEN: &str = include_str!("golden/tiny.hex");
/// Layer a stored as f16, layer b as i8, u8 transitions.
const GOLDEN_REDUCED: &str = include_str!("golden/tiny-reduced.hex");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares with a golden file; `LSGM_BLESS=1` rewrites it instead (after a
/// deliberate format change — then bump `FORMAT_VERSION`).
fn golden(bytes: &[u8], want: &str, file: &str) {
    if std::env::var_os("LSGM_BLESS").is_some() {
        let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(path, hex(bytes) + "\n").unwrap();
        return;
    }
    assert_eq!(hex(bytes), want.trim(), "{file}");
}

#[test]
fn reduced_storage_encodes_to_the_golden_bytes() {
    let bytes = tiny_stored(Quantisation::U8, [Storage::F16, Storage::I8])
        .encode()
        .unwrap();
    golden(&bytes, GOLDEN_REDUCED, "tiny-reduced.hex");
    // Layer b's first factor column is [1]: its scale is 1/127 rounded up to
    // the next f16, 0x2009 = 0.00788116 (0x2008 = 0.00787354 is below), code 127.
    let model = Model::from_bytes(&bytes).unwrap();
    let u00 = model.layer(1).gaussians().factor(0).get(0);
    assert_eq!(u00, 2f32.powi(-7) * (1.0 + 9.0 / 1024.0) * 127.0);
}

#[test]
fn tiny_model_encodes_to_the_golden_bytes() {
    let bytes = tiny(Quantisation::F32).encode().unwrap();
    golden(&bytes, GOLDEN, "tiny.hex");
    // The header, read by hand.
    assert_eq!(&bytes[..4], b"LSGM");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 4);
    let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    assert_eq!(len, bytes.len() - 16);
    let crc = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    assert_eq!(crc, crc32fast::hash(&bytes[16..]));
    // The body starts with the source string: varint length 4, then "tiny".
    assert_eq!(&bytes[16..21], b"\x04tiny");
}

#[test]
fn tiny_model_scores_what_the_hand_computation_says() {
    // Every value of the tiny model is exact in f16, so both storages agree.
    for storage in [Storage::F32, Storage::F16] {
        tiny_hand_computation(storage);
    }
}

fn tiny_hand_computation(storage: Storage) {
    let bytes = tiny_stored(Quantisation::F32, [storage; 2]).encode().unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let mut scratch = vec![0.0; model.scratch_len()];
    let mut c = [0.0f32; 2];
    // Layer a: x = m + 1·(0.6, 0.8) + 1·(−0.8, 0.6), so z = 1 and ‖r‖² = 1.
    let s = model
        .score(&[&[0.3, 0.9], &[0.0, 0.0]], &mut scratch, &mut c)
        .unwrap() as f64;
    // Layer a: N(z = 1 | 1, σ=1/2) = log 2 − ½ log 2π, times the residual's
    // N(r | 0, 0.25) in one dimension: −½ log(2π · 0.25) − 1 / (2 · 0.25).
    let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let residual = -0.5 * (2.0 * std::f64::consts::PI * 0.25).ln() - 2.0;
    let a = 2f64.ln() - half_ln_2pi + residual;
    // Layer b at x = 0: comp 0 has |U| = 2 and y = 0; comp 1 has y = (−1, 1).
    let b0 = 0.5f64.ln() + 2f64.ln() - 2.0 * half_ln_2pi;
    let b1 = 0.5f64.ln() - 2.0 * half_ln_2pi - 1.0;
    let want = a + (0.25 * b0.exp() + 0.75 * b1.exp()).ln();
    assert!((s - want).abs() < 1e-5, "{s} vs {want}");
    assert!((c[0] as f64 - a).abs() < 1e-6);
}

#[test]
fn round_trip_is_lossless_for_every_quantisation() {
    for quant in [Quantisation::F32, Quantisation::U16, Quantisation::U8] {
        for storage in [Storage::F32, Storage::F16] {
            let spec = tiny_stored(quant, [storage; 2]);
            let bytes = spec.encode().unwrap();
            let model = Model::from_bytes(&bytes).unwrap();
            let back = ModelSpec::from_model(&model);
            assert_eq!(back, spec);
            assert_eq!(back.encode().unwrap(), bytes);
        }
        // i8 rounds the factors once; the rounded model then round-trips.
        let bytes = tiny_stored(quant, [Storage::I8; 2]).encode().unwrap();
        let back = ModelSpec::from_model(&Model::from_bytes(&bytes).unwrap());
        assert_eq!(back.layers[1].storage, Storage::I8);
        assert_eq!(back.encode().unwrap(), bytes);
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = tiny(Quantisation::U8).encode().unwrap();
    for n in 0..bytes.len() {
        let err = Model::from_bytes(&bytes[..n]).unwrap_err();
        assert!(
            matches!(err, Error::Truncated | Error::BadMagic),
            "len {n}: {err:?}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Model::from_bytes(&longer).is_err());
}

#[test]
fn header_errors_are_specific() {
    let bytes = tiny(Quantisation::F32).encode().unwrap();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert_eq!(Model::from_bytes(&b).unwrap_err(), Error::BadMagic);
    let mut b = bytes.clone();
    b[4] = 9;
    assert_eq!(Model::from_bytes(&b).unwrap_err(), Error::UnsupportedVersion(9));
    // A file of the previous format (no colour order, resize policy or
    // datum type) is refused with what to do, never read with guesses.
    b[4] = 2;
    let e = Model::from_bytes(&b).unwrap_err();
    assert_eq!(e, Error::UnsupportedVersion(2));
    assert!(e.to_string().contains("fit the model again"), "{e}");
    // Version 3 projections had no residual term: refused, not read as if
    // the dropped directions did not matter.
    b[4] = 3;
    let e = Model::from_bytes(&b).unwrap_err();
    assert_eq!(e, Error::UnsupportedVersion(3));
    assert!(e.to_string().contains("residual term"), "{e}");
    // A version-3 file without projections has the version-4 body: read.
    let mut unprojected = tiny(Quantisation::F32);
    unprojected.layers[0].projection = None;
    unprojected.layers[0].dim_in = 1;
    let v4 = unprojected.encode().unwrap();
    let mut v3 = v4.clone();
    v3[4] = 3;
    let (a, b3) = (Model::from_bytes(&v4).unwrap(), Model::from_bytes(&v3).unwrap());
    let (mut s1, mut s2) = (vec![0.0; a.scratch_len()], vec![0.0; b3.scratch_len()]);
    let (mut c1, mut c2) = ([0.0f32; 2], [0.0f32; 2]);
    let x: [&[f32]; 2] = [&[1.0], &[0.5, -0.5]];
    assert_eq!(a.score(&x, &mut s1, &mut c1), b3.score(&x, &mut s2, &mut c2));
    let mut b = bytes.clone();
    let last = b.len() - 1;
    b[last] ^= 1;
    assert_eq!(Model::from_bytes(&b).unwrap_err(), Error::Checksum);
}

/// [`tiny`] with layer a's 4 features pooled from a 2×2 grid (the
/// projection keeps its one dimension: z = 0.6 (x₀ − 0.5) + 0.8 (x₁ + 0.5)).
fn tiny_grid() -> ModelSpec {
    let mut s = tiny(Quantisation::F32);
    let a = &mut s.layers[0];
    a.pooling = Pooling::GridAverageNhwc { side: 2 };
    a.dim_in = 4;
    let p = a.projection.as_mut().unwrap();
    p.mean = vec![0.5, -0.5, 0.0, 0.0];
    p.matrix = vec![0.6, 0.8, 0.0, 0.0];
    s
}

#[test]
fn grid_poolings_are_appended_variants_of_version_5() {
    // Postcard writes an enum as its variant index (varint) then its fields:
    // the four older poolings keep indices 0–3, so version-4 bodies still decode.
    let mut buf = [0u8; 4];
    for (p, want) in [
        (Pooling::GlobalAverageNchw, &[0u8][..]),
        (Pooling::GlobalAverageNhwc, &[1]),
        (Pooling::Vector, &[2]),
        (Pooling::Precomputed, &[3]),
        (Pooling::GridAverageNchw { side: 3 }, &[4, 3]),
        (Pooling::GridAverageNhwc { side: 2 }, &[5, 2]),
    ] {
        assert_eq!(postcard::to_slice(&p, &mut buf).unwrap(), want, "{p:?}");
    }
    let v5 = tiny_grid().encode().unwrap();
    assert_eq!(v5[4..6], [5, 0], "a grid model is written as version 5");
    let m = Model::from_bytes(&v5).unwrap();
    assert_eq!(m.layer(0).pooling(), Pooling::GridAverageNhwc { side: 2 });
    assert_eq!(m.layer(0).dim_in(), 4);
    // An older file cannot name a grid: refused by its version, not read.
    let mut v4 = v5.clone();
    v4[4] = 4;
    assert_eq!(Model::from_bytes(&v4).unwrap_err(), Error::UnsupportedVersion(4));
    let e = Model::from_bytes(&v4).unwrap_err().to_string();
    assert!(e.contains("version-4 model file names a grid pooling"), "{e}");
    // A model without a grid is written as version 4, which older readers read.
    let plain = tiny(Quantisation::F32).encode().unwrap();
    assert_eq!(plain[4..6], [4, 0]);
    assert!(Model::from_bytes(&plain).is_ok());
    // A grid's side is 2..=16 and its cells divide dim_in.
    for (side, layer, what) in [
        (1u8, 0usize, "side 1"),
        (17, 0, "side 17"),
        (0, 0, "side 0"),
        (2, 1, "dim_in 2"),
    ] {
        let mut s = tiny_grid();
        s.layers[layer].pooling = Pooling::GridAverageNchw { side };
        let e = s.encode().unwrap_err();
        assert!(
            matches!(e, Error::Invalid { layer: Some(l), .. } if l as usize == layer),
            "{what}: {e}"
        );
    }
}

/// Re-signs a corrupted body so that the CRC passes and the decoder and
/// validator, not the checksum, must catch the damage.
fn resign(mut bytes: Vec<u8>) -> Vec<u8> {
    lsgm::model::resign(&mut bytes).unwrap();
    bytes
}

#[test]
fn validation_rejects_inconsistent_models() {
    let bad = |f: &dyn Fn(&mut ModelSpec)| {
        let mut s = tiny(Quantisation::F32);
        f(&mut s);
        s.encode().unwrap_err()
    };
    assert!(matches!(
        bad(&|s| s.layers[1].components[0].precision_cholesky[2] = -1.0),
        Error::Invalid { layer: Some(1), .. }
    ));
    // The residual term needs orthonormal projection rows, a positive
    // variance and 0 ≤ ν ≤ dim_in − dim.
    type Edit = fn(&mut lsgm::ProjectionSpec);
    let edits: [(&str, Edit); 5] = [
        ("not orthonormal", |p| p.matrix = vec![0.6, 0.6]),
        ("variance 0", |p| p.residual_variance = 0.0),
        ("variance NaN", |p| p.residual_variance = f32::NAN),
        ("dof 2 > 1", |p| p.residual_dof = 2.0),
        ("dof < 0", |p| p.residual_dof = -0.5),
    ];
    for (what, edit) in edits {
        let e = bad(&|s| edit(s.layers[0].projection.as_mut().unwrap()));
        assert!(matches!(e, Error::Invalid { layer: Some(0), .. }), "{what}: {e}");
    }
    assert!(matches!(
        bad(&|s| s.layers[0].components[0].mean[0] = f32::NAN),
        Error::Invalid { layer: Some(0), .. }
    ));
    assert!(matches!(
        bad(&|s| s.layers[1].components[0].log_weight = 0.0),
        Error::Invalid { layer: Some(1), .. }
    ));
    assert!(matches!(
        bad(&|s| s.layers[1].components.pop().map(|_| ()).unwrap()),
        Error::Invalid { .. }
    ));
    assert!(matches!(
        bad(&|s| s.transitions.clear()),
        Error::Invalid { layer: None, .. }
    ));
    assert!(matches!(
        bad(&|s| s.layers[1].components[1].mean.push(0.0)),
        Error::Invalid { layer: Some(1), .. }
    ));
    assert!(matches!(
        bad(&|s| s.transitions[0] = quantise(&[0.0, 0.0], Quantisation::F32).unwrap()),
        Error::Invalid { layer: Some(0), .. }
    ));
    assert!(matches!(
        bad(&|s| s.threshold = f32::INFINITY),
        Error::Invalid { layer: None, .. }
    ));
    for broken in [
        |p: &mut Preprocess| p.std[0] = 0.0,
        |p: &mut Preprocess| p.mean.truncate(1),
        |p: &mut Preprocess| p.mean[2] = f32::NAN,
        |p: &mut Preprocess| p.height = 0,
        |p: &mut Preprocess| p.resize = Resize::Crop { shorter: 1 },
        |p: &mut Preprocess| p.datum = Datum::U8,
    ] {
        assert!(matches!(
            bad(&|s| broken(s.preprocess.as_mut().unwrap())),
            Error::Invalid { layer: None, .. }
        ));
    }
    assert!(matches!(
        bad(&|s| s.layers = vec![s.layers[0].clone(); 17]),
        Error::TooManyLayers
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes_never_panic(pos in 0usize..10_000, mask in 1u8..=255, resigned in any::<bool>(), reduced in any::<bool>()) {
        let storage = if reduced { [Storage::F16, Storage::I8] } else { [Storage::F32; 2] };
        let bytes = tiny_stored(Quantisation::U8, storage).encode().unwrap();
        let mut b = bytes.clone();
        let pos = pos % b.len();
        b[pos] ^= mask;
        if resigned && pos >= 16 {
            b = resign(b);
        }
        let decoded = Model::from_bytes(&b);
        match decoded {
            // CRC-32 catches every single-byte change; so does the header check.
            _ if !resigned || pos < 16 => prop_assert!(decoded.is_err()),
            // Ok only if the flip produced another valid model; then it must score.
            Ok(model) => {
                let mut scratch = vec![0.0; model.scratch_len()];
                let mut c = vec![0.0; model.num_layers()];
                let x: Vec<Vec<f32>> = model.layers().iter().map(|l| vec![0.5; l.dim_in()]).collect();
                let refs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
                if let Ok(s) = model.score(&refs, &mut scratch, &mut c) {
                    prop_assert!(s.is_finite());
                }
            }
            Err(_) => {}
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut b = lsgm::model::header(lsgm::model::FORMAT_VERSION, &body).unwrap().to_vec();
        b.extend_from_slice(&body);
        let _ = Model::from_bytes(&b);
        let _ = Model::from_bytes(&body);
    }
}
