//! The paper's synthetic OOD sets, generated with a seed at the model's input
//! size, in [0, 1] pixel space before normalisation (stored as u8 frames).

use lsgm::frames::{Frame, Pixels};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which synthetic set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synthetic {
    /// N(0.5, 0.25²) per pixel, clipped to [0, 1].
    Gaussian,
    /// Each pixel 0 or 1 with probability ½.
    Rademacher,
    /// Bernoulli(0.7) pixels, Gaussian blur σ = 1.5, values below 0.75 set to
    /// 0 (Hendrycks et al., Outlier Exposure).
    Blobs,
}

impl Synthetic {
    /// Parses a set name.
    pub fn parse(s: &str) -> Option<Synthetic> {
        match s {
            "gaussian" => Some(Synthetic::Gaussian),
            "rademacher" => Some(Synthetic::Rademacher),
            "blobs" => Some(Synthetic::Blobs),
            _ => None,
        }
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Synthetic::Gaussian => "gaussian",
            Synthetic::Rademacher => "rademacher",
            Synthetic::Blobs => "blobs",
        }
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(1e-12..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Separable Gaussian blur with scikit-image's defaults (truncate 4σ,
/// `mode="nearest"`) of one channel plane.
fn blur(plane: &[f64], h: usize, w: usize, sigma: f64) -> Vec<f64> {
    let r = (4.0 * sigma + 0.5) as isize;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm: f64 = k.iter().sum();
    let pass = |src: &[f64], horizontal: bool| -> Vec<f64> {
        let mut out = vec![0.0; h * w];
        for y in 0..h {
            for x in 0..w {
                out[y * w + x] = (-r..=r)
                    .map(|i| {
                        let (yy, xx) = if horizontal {
                            (y as isize, (x as isize + i).clamp(0, w as isize - 1))
                        } else {
                            ((y as isize + i).clamp(0, h as isize - 1), x as isize)
                        };
                        src[yy as usize * w + xx as usize] * k[(i + r) as usize]
                    })
                    .sum::<f64>()
                    / norm;
            }
        }
        out
    };
    pass(&pass(plane, true), false)
}

/// `n` frames of `kind` at `h × w × c`.
pub fn generate(kind: Synthetic, n: usize, h: usize, w: usize, c: usize, seed: u64) -> Vec<Frame> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ kind as u64);
    (0..n)
        .map(|i| {
            let values: Vec<f64> = match kind {
                Synthetic::Gaussian => (0..h * w * c)
                    .map(|_| (0.5 + 0.25 * normal(&mut rng)).clamp(0.0, 1.0))
                    .collect(),
                Synthetic::Rademacher => (0..h * w * c)
                    .map(|_| if rng.random_bool(0.5) { 1.0 } else { 0.0 })
                    .collect(),
                Synthetic::Blobs => {
                    let mut v = vec![0.0; h * w * c];
                    for ch in 0..c {
                        let plane: Vec<f64> = (0..h * w)
                            .map(|_| if rng.random_bool(0.7) { 1.0 } else { 0.0 })
                            .collect();
                        for (p, b) in blur(&plane, h, w, 1.5).into_iter().enumerate() {
                            v[p * c + ch] = if b < 0.75 { 0.0 } else { b };
                        }
                    }
                    v
                }
            };
            Frame {
                source: format!("{}#{i}", kind.name()),
                height: h,
                width: w,
                channels: c,
                pixels: Pixels::U8(values.iter().map(|v| (v * 255.0).round() as u8).collect()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_have_the_documented_statistics() {
        let g = generate(Synthetic::Gaussian, 50, 28, 28, 1, 1);
        let mean: f64 = g
            .iter()
            .flat_map(|f| f.pixels.as_u8().unwrap())
            .map(|&p| p as f64 / 255.0)
            .sum::<f64>()
            / (50.0 * 784.0);
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        let r = generate(Synthetic::Rademacher, 10, 28, 28, 1, 1);
        assert!(r
            .iter()
            .flat_map(|f| f.pixels.as_u8().unwrap())
            .all(|&p| p == 0 || p == 255));
        let b = generate(Synthetic::Blobs, 10, 28, 28, 1, 1);
        let px: Vec<u8> = b
            .iter()
            .flat_map(|f| f.pixels.as_u8().unwrap().to_vec())
            .collect();
        assert!(px.iter().all(|&p| p == 0 || p as f64 >= 0.75 * 255.0 - 0.5));
        let on = px.iter().filter(|&&p| p > 0).count() as f64 / px.len() as f64;
        assert!(on > 0.2 && on < 0.9, "{on}");
        assert_eq!(
            generate(Synthetic::Blobs, 3, 28, 28, 1, 7),
            generate(Synthetic::Blobs, 3, 28, 28, 1, 7)
        );
    }
}
