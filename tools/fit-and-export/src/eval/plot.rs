//! ROC curves and score histograms as PNG (plotters).

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// Registers a system TTF font for labels (Debian: `fonts-dejavu-core`).
pub fn init_font() -> Result<()> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        FONT_PATHS.iter().any(|p| {
            std::fs::read(p).ok().is_some_and(|bytes| {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
            })
        })
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "no TTF font found for plot labels (install fonts-dejavu-core); plots skipped"
        ))
    }
}

/// ROC points (FPR, TPR) with ID positive, sweeping thresholds high to low.
pub fn roc(id: &[f64], ood: &[f64]) -> Vec<(f64, f64)> {
    let mut all: Vec<(f64, bool)> = id
        .iter()
        .map(|&s| (s, true))
        .chain(ood.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut pts = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            j += 1;
        }
        pts.push((fp / ood.len() as f64, tp / id.len() as f64));
        i = j;
    }
    pts
}

/// A chart with `f64` axes on a PNG.
type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the legend at `position` and writes the PNG.
fn legend_and_save<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    root: &DrawingArea<BitMapBackend<'b>, Shift>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(position)
        .draw()?;
    root.present()?;
    Ok(())
}

/// One method's ROC curve in a figure.
pub struct Curve {
    /// Method name.
    pub name: String,
    /// (FPR, TPR) points.
    pub points: Vec<(f64, f64)>,
    /// Its AUROC, for the legend.
    pub auroc: f64,
}

/// One ROC figure: every method's curve for one OOD set.
pub fn roc_plot(path: &Path, title: &str, curves: &[Curve]) -> Result<()> {
    let root = BitMapBackend::new(path, (640, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("false positive rate (OOD accepted)")
        .y_desc("true positive rate (ID accepted)")
        .draw()?;
    for (i, c) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(c.points.iter().copied(), color.stroke_width(2)))?
            .label(format!("{} (AUROC {:.3})", c.name, c.auroc))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    legend_and_save(&mut chart, &root, SeriesLabelPosition::LowerRight)
}

/// Histogram of LSGM scores: ID against every OOD set.
pub fn histogram(path: &Path, id: &[f64], oods: &[(String, Vec<f64>)], threshold: f64) -> Result<()> {
    let all = id.iter().chain(oods.iter().flat_map(|o| o.1.iter()));
    let finite: Vec<f64> = all.copied().filter(|v| v.is_finite()).collect();
    // Clip the far tail so the ID bulk stays visible.
    let mut sorted = finite.clone();
    sorted.sort_by(f64::total_cmp);
    let lo = sorted[(sorted.len() as f64 * 0.01) as usize];
    let hi = sorted[sorted.len() - 1];
    let bins = 60;
    let width = (hi - lo) / bins as f64;
    let density = |v: &[f64]| -> Vec<f64> {
        let mut h = vec![0.0; bins];
        for &x in v {
            let b = (((x.max(lo) - lo) / width) as usize).min(bins - 1);
            h[b] += 1.0 / v.len() as f64;
        }
        h
    };
    let series: Vec<(String, Vec<f64>)> = std::iter::once(("in-distribution".to_string(), density(id)))
        .chain(oods.iter().map(|(n, v)| (n.clone(), density(v))))
        .collect();
    let top = series
        .iter()
        .flat_map(|s| s.1.iter())
        .copied()
        .fold(0.0, f64::max)
        * 1.1;
    let root = BitMapBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "LSGM score: in-distribution vs OOD (lowest 1 % clipped)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(lo..hi, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("score (log-likelihood)")
        .y_desc("fraction of frames")
        .draw()?;
    for (i, (name, h)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts: Vec<(f64, f64)> = h
            .iter()
            .enumerate()
            .flat_map(|(b, &v)| {
                let x0 = lo + b as f64 * width;
                [(x0, v), (x0 + width, v)]
            })
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .draw_series(LineSeries::new(
            [(threshold, 0.0), (threshold, top)],
            BLACK.stroke_width(1),
        ))?
        .label("threshold")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    legend_and_save(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}
