//! Transition matrices between consecutive layers' components, counted from
//! the training traces.

use nalgebra::DMatrix;

/// How traces are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Counting {
    /// Argmax component per layer, counted (the paper's rule).
    Hard,
    /// `Σ_n r_i(n)ᵀ r_{i+1}(n)` from responsibilities.
    Soft,
}

/// Row-normalised `K_i × K_{i+1}` table (row-major) from the responsibilities
/// of two consecutive layers, with `pseudo` added to every count.
pub fn table(resp_a: &DMatrix<f64>, resp_b: &DMatrix<f64>, counting: Counting, pseudo: f64) -> Vec<f32> {
    let (ka, kb) = (resp_a.ncols(), resp_b.ncols());
    let mut counts = DMatrix::from_element(ka, kb, pseudo);
    match counting {
        Counting::Hard => {
            let argmax = |r: &DMatrix<f64>, i: usize| {
                r.row(i)
                    .iter()
                    .enumerate()
                    .fold((0, f64::MIN), |b, (k, &v)| if v > b.1 { (k, v) } else { b })
                    .0
            };
            for i in 0..resp_a.nrows() {
                counts[(argmax(resp_a, i), argmax(resp_b, i))] += 1.0;
            }
        }
        Counting::Soft => counts += resp_a.transpose() * resp_b,
    }
    let mut out = Vec::with_capacity(ka * kb);
    for j in 0..ka {
        let row = counts.row(j);
        let s = row.sum();
        if s > 0.0 {
            out.extend(row.iter().map(|&v| (v / s) as f32));
        } else {
            // A component no training row reached (possible with pseudo = 0):
            // uniform, so that the row still has mass.
            out.extend(std::iter::repeat_n(1.0 / kb as f32, kb));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_and_soft_counts_match_hand_computation() {
        // Three rows; layer a: comps (0, 0, 1); layer b soft responsibilities.
        let a = DMatrix::from_row_slice(3, 2, &[1.0, 0.0, 0.9, 0.1, 0.0, 1.0]);
        let b = DMatrix::from_row_slice(3, 2, &[0.8, 0.2, 0.3, 0.7, 0.5, 0.5]);
        let hard = table(&a, &b, Counting::Hard, 0.0);
        // Row 0: a=0 → b argmax 0 and 1; row 1 of a: b=0 (tie 0.5/0.5 → first).
        assert_eq!(hard, vec![0.5, 0.5, 1.0, 0.0]);
        let soft = table(&a, &b, Counting::Soft, 1.0);
        // Counts row 0: 1 + (0.8 + 0.27), 1 + (0.2 + 0.63); row 1: 1 + (0.03 + 0.5), 1 + (0.07 + 0.5).
        let r0 = [2.07f64, 1.83];
        let r1 = [1.53f64, 1.57];
        let want: Vec<f32> = [r0[0] / 3.9, r0[1] / 3.9, r1[0] / 3.1, r1[1] / 3.1]
            .iter()
            .map(|&v| v as f32)
            .collect();
        for (g, w) in soft.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{soft:?} vs {want:?}");
        }
    }
}
