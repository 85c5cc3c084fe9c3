//! What the integration tests share: the tool and its failure check
//! ([`fails`]), synthetic traces from a known layered mixture written as
//! feature files, and `.npy` files written and read back.
#![allow(dead_code)]

use assert_cmd::assert::Assert;
use assert_cmd::Command;
use fit_and_export::io::{npy_bytes, write_atomic};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// The `fit-and-export` binary.
pub fn tool() -> Command {
    Command::cargo_bin("fit-and-export").unwrap()
}

/// A file of the repository, from its root.
pub fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

/// What a finished run printed on stdout.
pub fn stdout(a: &Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

/// What a finished run printed on stderr.
pub fn stderr(a: &Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// Runs `cmd`, which must fail the way a user is told about it: exit
/// status `code` (1 error, 2 usage error), every one of `expected` on
/// stderr, no panic, nothing on stdout, and no output written — the path
/// after `--out`, if any, is as it was before the run (still absent, or the
/// same file, link or folder with the same bytes). Returns stderr.
pub fn fails(cmd: &mut Command, code: i32, expected: &[&str]) -> String {
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("--out=").map(String::from))
        })
        .map(|p| match cmd.get_current_dir() {
            Some(dir) => dir.join(p),
            None => PathBuf::from(p),
        });
    let before = out.as_deref().map(Snapshot::of);
    let a = cmd.assert().code(code);
    let err = stderr(&a);
    for needle in expected {
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in: {err}");
    }
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(
        a.get_output().stdout.is_empty(),
        "{args:?}: a failed run printed {}",
        stdout(&a)
    );
    if let (Some(out), Some(before)) = (out, before) {
        assert!(
            Snapshot::of(&out) == before,
            "{args:?}: a failed run wrote {}",
            out.display()
        );
    }
    err
}

/// What is at a path: nothing, or whether it is a link and the bytes of
/// the file (or of each file directly in the folder) it leads to.
#[derive(PartialEq)]
enum Snapshot {
    Absent,
    Present {
        link: bool,
        files: Vec<(PathBuf, Option<Vec<u8>>)>,
    },
}

impl Snapshot {
    fn of(path: &Path) -> Snapshot {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return Snapshot::Absent;
        };
        let read = |p: &Path| std::fs::read(p).ok();
        let files = match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut v: Vec<_> = entries
                    .map(|e| e.unwrap().path())
                    .map(|p| (p.clone(), read(&p)))
                    .collect();
                v.sort();
                v
            }
            Err(_) => vec![(path.to_path_buf(), read(path))],
        };
        Snapshot::Present {
            link: meta.file_type().is_symlink(),
            files,
        }
    }
}

/// `fit-and-export fit-features --features FEATURES --out OUT EXTRA…`, to run.
pub fn fit_features(features: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = tool();
    cmd.args(["fit-features", "--features"])
        .arg(features)
        .arg("--out")
        .arg(out)
        .args(extra);
    cmd
}

/// The scores `score MODEL --features FEATURES` prints, one per row.
pub fn scores(model: &Path, features: &Path) -> Vec<f64> {
    let a = tool()
        .arg("score")
        .arg(model)
        .arg("--features")
        .arg(features)
        .assert()
        .success();
    stdout(&a).lines().map(|l| l.parse().unwrap()).collect()
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(1e-12..1.0);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` rows of a chain of `dims.len()` layers, 3 clusters per layer; the
/// cluster of layer i+1 follows that of layer i with probability 0.8.
pub fn traces(n: usize, dims: &[usize], seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<Vec<Vec<f64>>> = dims
        .iter()
        .map(|&d| {
            (0..3)
                .map(|_| (0..d).map(|_| normal(&mut rng) * 4.0).collect())
                .collect()
        })
        .collect();
    let mut layers: Vec<Vec<f32>> = dims.iter().map(|&d| Vec::with_capacity(n * d)).collect();
    for _ in 0..n {
        let mut z = rng.random_range(0..3);
        for (l, &d) in dims.iter().enumerate() {
            if l > 0 && rng.random::<f64>() > 0.8 {
                z = rng.random_range(0..3);
            }
            for c in &centres[l][z][..d] {
                layers[l].push((c + normal(&mut rng)) as f32);
            }
        }
    }
    layers
}

/// Writes `layers` as `dir/0.npy, 1.npy, …`.
pub fn write_dir(dir: &Path, layers: &[Vec<f32>], dims: &[usize]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, (v, &d)) in layers.iter().zip(dims).enumerate() {
        write_atomic(
            &dir.join(format!("{i}.npy")),
            &npy_bytes(v.len() / d, d, v).unwrap(),
        )
        .unwrap();
    }
}

/// Writes `data` (row-major, `shape` a frame stack such as N×H×W or
/// N×H×W×C) as a `.npy` file of `T`.
pub fn write_npy<T: npyz::AutoSerialize>(path: &Path, shape: &[u64], data: impl IntoIterator<Item = T>) {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut out)
        .begin_nd()
        .unwrap();
    writer.extend(data).unwrap();
    writer.finish().unwrap();
    std::fs::write(path, out).unwrap();
}

/// The values of a float32 `.npy` file the tool wrote, in C order.
pub fn read_f32(p: &Path) -> Vec<f32> {
    let bytes = std::fs::read(p).unwrap();
    npyz::NpyFile::new(&bytes[..]).unwrap().into_vec::<f32>().unwrap()
}
