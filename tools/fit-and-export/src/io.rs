//! File input and output: `.npy` arrays, feature directories, atomic writes.
//!
//! Every reader names the file in its errors and says what shape or type was
//! expected; every writer goes through a temporary file in the destination's
//! directory and a rename, so a failed run never leaves half a file behind.

use anyhow::{bail, ensure, Context, Result};
use lsgm::frames::NpyArray;
use lsgm::model::wire::Pooling;
use nalgebra::DMatrix;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Reads an `N × d` feature matrix from a `.npy` file ([`NpyArray`]: `uint8`,
/// `float32` or `float64`, C order); the shape is checked before the values
/// are read, and every value must be finite.
pub fn read_matrix(path: &Path) -> Result<DMatrix<f64>> {
    let npy = NpyArray::open(path)?;
    let (n, d) = match *npy.shape() {
        [n, d] => (n, d),
        ref shape => bail!(
            "{}: expected a 2-D array (rows × features), got shape {shape:?}",
            path.display()
        ),
    };
    ensure!(
        n > 0 && d > 0,
        "{}: the array is empty (shape {n} × {d})",
        path.display()
    );
    let data = npy.read_to_end_f64()?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        bail!(
            "{}: row {}, column {} is {} — remove or impute non-finite rows before fitting",
            path.display(),
            i / d,
            i % d,
            data[i]
        );
    }
    Ok(DMatrix::from_row_slice(n, d, &data))
}

/// Per-layer feature matrices with rows aligned across layers.
pub struct FeatureSet {
    /// Layer names (from `layers.txt`, else `0`, `1`, …).
    pub names: Vec<String>,
    /// How each layer's features were made from its tapped tensor
    /// ([`Pooling::Precomputed`] when read from feature files).
    pub poolings: Vec<Pooling>,
    /// One `N × d_i` matrix per layer.
    pub layers: Vec<DMatrix<f64>>,
}

impl FeatureSet {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.layers[0].nrows()
    }
}

/// The file name a layer's features may be stored under inside a feature
/// directory: the tap name with every character that is not a letter, a
/// digit, `-`, `_` or `.` replaced by `_` (ONNX names such as
/// `/stage1/Relu` would otherwise point outside the directory).
pub fn feature_file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.npy", safe.trim_start_matches('.'))
}

/// The files of a feature directory: `layers.txt` (one layer name per line,
/// data in `i.npy` or [`feature_file_name`]) or else `0.npy, 1.npy, …`.
pub fn feature_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    ensure!(
        dir.is_dir(),
        "{} is not a directory of per-layer .npy files",
        dir.display()
    );
    let list = dir.join("layers.txt");
    let files: Vec<(String, PathBuf)> = if list.exists() {
        let text =
            std::fs::read_to_string(&list).with_context(|| format!("cannot read {}", list.display()))?;
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, name)| {
                let numbered = dir.join(format!("{i}.npy"));
                let named = dir.join(feature_file_name(name));
                let path = if numbered.exists() { numbered } else { named };
                (name.to_string(), path)
            })
            .collect()
    } else {
        (0..)
            .map(|i| (i.to_string(), dir.join(format!("{i}.npy"))))
            .take_while(|(_, p)| p.exists())
            .collect()
    };
    ensure!(
        !files.is_empty(),
        "{}: no features found; expected 0.npy, 1.npy, … (one N×d array per layer) or a layers.txt",
        dir.display()
    );
    for (_, p) in &files {
        ensure!(p.exists(), "{}: listed in layers.txt but missing", p.display());
    }
    Ok(files)
}

/// Loads a feature directory and checks that rows align across layers.
pub fn read_features(dir: &Path) -> Result<FeatureSet> {
    let files = feature_files(dir)?;
    let mut names = Vec::new();
    let mut layers: Vec<DMatrix<f64>> = Vec::new();
    for (name, path) in files {
        let m = read_matrix(&path)?;
        if let Some(first) = layers.first() {
            ensure!(
                m.nrows() == first.nrows(),
                "{} has {} but layer 0 has {}: rows must be aligned across layers (one row per frame)",
                path.display(),
                crate::count(m.nrows(), "row", "rows"),
                first.nrows()
            );
        }
        names.push(name);
        layers.push(m);
    }
    let poolings = vec![Pooling::Precomputed; layers.len()];
    ensure!(
        layers.len() <= lsgm::MAX_LAYERS,
        "{}: {} layers, at most {} are supported; select fewer taps",
        dir.display(),
        layers.len(),
        lsgm::MAX_LAYERS
    );
    Ok(FeatureSet {
        names,
        poolings,
        layers,
    })
}

fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn refuse_non_regular(path: &Path) -> Result<()> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        ensure!(
            m.file_type().is_file(),
            "{} exists and is not a regular file (a symlink, directory or device); give another output path",
            path.display()
        );
    }
    Ok(())
}

/// Checks, before any long work, that `path` can be written: its folder
/// exists and takes a new file, and it is not an existing symlink,
/// directory or device.
pub fn check_output(path: &Path) -> Result<()> {
    refuse_non_regular(path)?;
    let dir = folder(path);
    tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot write {}: its folder {} does not exist or is not writable ({})",
            path.display(),
            dir.display(),
            e.kind()
        )
    })?;
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder and
/// a rename, so a failed run never leaves half a file; an existing target
/// that is not a regular file is refused.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    refuse_non_regular(path)?;
    let dir = folder(path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| {
        format!(
            "cannot write into {} (does it exist and is it writable?)",
            dir.display()
        )
    })?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // Temporary files are created 0600; the result is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(())
}

/// Runs `write` on a buffered stdout and flushes it. A closed stdout (the
/// reader went away, e.g. `| head`) ends the output quietly: `Ok(false)`.
pub fn to_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<bool> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

/// Encodes a row-major `rows × cols` f32 matrix as `.npy` bytes.
pub fn npy_bytes(rows: usize, cols: usize, data: &[f32]) -> Result<Vec<u8>> {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[rows as u64, cols as u64])
            .writer(&mut out)
            .begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.npy");
        write_atomic(&p, &npy_bytes(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap()).unwrap();
        let m = read_matrix(&p).unwrap();
        assert_eq!((m.nrows(), m.ncols(), m[(1, 0)]), (2, 3, 4.0));
        write_atomic(
            &dir.path().join("1.npy"),
            &npy_bytes(3, 1, &[1.0, f32::NAN, 0.0]).unwrap(),
        )
        .unwrap();
        let err = format!("{:#}", read_features(dir.path()).err().unwrap());
        assert!(err.contains("1.npy") && err.contains("row 1"), "{err}");
        std::fs::write(dir.path().join("1.npy"), b"junk").unwrap();
        let err = format!("{:#}", read_features(dir.path()).err().unwrap());
        assert!(err.contains("1.npy"), "{err}");
        write_atomic(
            &dir.path().join("1.npy"),
            &npy_bytes(3, 1, &[1.0, 2.0, 0.0]).unwrap(),
        )
        .unwrap();
        let err = format!("{:#}", read_features(dir.path()).err().unwrap());
        assert!(err.contains("rows must be aligned"), "{err}");
    }
}
