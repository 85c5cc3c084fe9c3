//! ROC curves and score histograms as PNG (plotters), readable with 16 and
//! more methods on one figure: each method has its own colour from a
//! qualitative palette whose colours all stand out on white ([`PALETTE`]),
//! dash pattern and marker ([`Style::of`]); the legend sits beside the
//! plot, never over a curve; the ROC's false-positive axis is logarithmic,
//! so curves that are near perfect on a linear axis (all in the top-left
//! corner) come apart where they differ, at small rates.

use anyhow::{anyhow, Result};
use plotters::coord::{CoordTranslate, Shift};
use plotters::element::DashedPathElement;
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

/// Tableau 10 with its olive and cyan darkened (`#bcbd22` and `#17becf`
/// are pale on white) and its orange, pink and grey deepened: every colour
/// has a contrast of at least 3:1 against white.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4), // blue
    RGBColor(0xd9, 0x5f, 0x02), // orange
    RGBColor(0x2c, 0xa0, 0x2c), // green
    RGBColor(0xd6, 0x27, 0x28), // red
    RGBColor(0x94, 0x67, 0xbd), // purple
    RGBColor(0x8c, 0x56, 0x4b), // brown
    RGBColor(0xe7, 0x29, 0x8a), // magenta
    RGBColor(0x55, 0x55, 0x55), // grey
    RGBColor(0x80, 0x80, 0x00), // olive
    RGBColor(0x00, 0x83, 0x8f), // teal
];

/// A line's dash pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    /// Unbroken.
    Solid,
    /// 10 px on, 5 off.
    Dashed,
    /// 3 px on, 4 off.
    Dotted,
}

/// A marker's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled triangle.
    Triangle,
    /// Open square.
    Square,
    /// Cross.
    Cross,
}

/// How one series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Line and marker colour.
    pub color: RGBColor,
    /// Dash pattern.
    pub dash: Dash,
    /// Marker shape.
    pub marker: Marker,
    /// Line width in pixels (the first series, the LSGM, is drawn wider).
    pub width: u32,
}

impl Style {
    /// Series `i`'s style: colour `i mod 10`, dash `i mod 3`, marker
    /// `i mod 4`, so the first 30 series differ in colour or dash and
    /// neighbours in the legend differ in all three.
    pub fn of(i: usize) -> Style {
        Style {
            color: PALETTE[i % PALETTE.len()],
            dash: [Dash::Solid, Dash::Dashed, Dash::Dotted][i % 3],
            marker: [Marker::Circle, Marker::Triangle, Marker::Square, Marker::Cross][i % 4],
            width: if i == 0 { 3 } else { 2 },
        }
    }

    fn shape(&self) -> ShapeStyle {
        self.color.stroke_width(self.width)
    }

    /// Draws the line through `points` on `area` (a chart's plotting area
    /// or a pixel area).
    fn line<CT: CoordTranslate>(
        &self,
        area: &DrawingArea<BitMapBackend<'_>, CT>,
        points: Vec<CT::From>,
    ) -> Result<()>
    where
        CT::From: Clone,
    {
        let dashes = |on: i32, off: i32| DashedPathElement::new(points.clone(), on, off, self.shape());
        match self.dash {
            Dash::Solid => area.draw(&PathElement::new(points.clone(), self.shape()))?,
            Dash::Dashed => area.draw(&dashes(10, 5))?,
            Dash::Dotted => area.draw(&dashes(3, 4))?,
        }
        Ok(())
    }

    /// Draws the marker at `at` on `area`.
    fn mark<CT: CoordTranslate>(
        &self,
        area: &DrawingArea<BitMapBackend<'_>, CT>,
        at: CT::From,
    ) -> Result<()> {
        let (fill, open) = (self.color.filled(), self.color.stroke_width(2));
        let base = EmptyElement::at(at);
        match self.marker {
            Marker::Circle => area.draw(&(base + Circle::new((0, 0), 4, fill)))?,
            Marker::Triangle => area.draw(&(base + TriangleMarker::new((0, 0), 6, fill)))?,
            Marker::Square => area.draw(&(base + Rectangle::new([(-4, -4), (4, 4)], open)))?,
            Marker::Cross => area.draw(&(base + Cross::new((0, 0), 5, open)))?,
        }
        Ok(())
    }
}

/// What a legend entry shows before its label.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// A series: its line and marker.
    Series(Style),
    /// A series drawn without markers: its line.
    Line(Style),
    /// The black line of a threshold.
    Threshold,
    /// The black ring of an operating point.
    Ring,
    /// The grey dotted line of chance.
    Chance,
}

/// One legend entry.
struct Entry {
    key: Key,
    label: String,
}

/// Draws `entries` top down in `area` (beside the chart, so no entry
/// covers a curve): a sample of the line with its marker, then the label.
fn legend(area: &DrawingArea<BitMapBackend<'_>, Shift>, entries: &[Entry]) -> Result<()> {
    let font = ("sans-serif", 15).into_font();
    for (i, e) in entries.iter().enumerate() {
        let y = 60 + 24 * i as i32;
        match e.key {
            Key::Series(s) => {
                s.line(area, vec![(8, y), (48, y)])?;
                s.mark(area, (28, y))?;
            }
            Key::Line(s) => s.line(area, vec![(8, y), (48, y)])?,
            Key::Threshold => area.draw(&PathElement::new(vec![(8, y), (48, y)], BLACK.stroke_width(2)))?,
            Key::Ring => area.draw(&Circle::new((28, y), 7, BLACK.stroke_width(2)))?,
            Key::Chance => area.draw(&DashedPathElement::new(
                vec![(8, y), (48, y)],
                2,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))?,
        }
        area.draw(&Text::new(e.label.clone(), (56, y - 8), font.clone()))?;
    }
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

/// The left end of the logarithmic FPR axis for `n_ood` OOD frames: the
/// decade below half the smallest non-zero rate, `1/n_ood`, so a curve's
/// FPR-0 part (drawn at this edge) stands apart from its first OOD frame.
pub fn fpr_floor(n_ood: usize) -> f64 {
    10f64.powf((0.5 / n_ood.max(1) as f64).log10().floor())
}

/// The TPR of the ROC `points` at false-positive rate `fpr`: the highest
/// reached without exceeding it (the curve is a staircase).
fn tpr_at(points: &[(f64, f64)], fpr: f64) -> f64 {
    points
        .iter()
        .filter(|p| p.0 <= fpr)
        .map(|p| p.1)
        .fold(0.0, f64::max)
}

/// A ROC chart in `area` over TPR `tpr_from`..1 and a logarithmic FPR
/// axis from `floor`: the chance line, every curve with its markers
/// (staggered per method so they do not sit on each other) and the
/// `operating` point in a black ring.
fn roc_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    caption: &str,
    curves: &[Curve],
    (floor, tpr_from): (f64, f64),
    operating: Option<(f64, f64)>,
) -> Result<()> {
    let at_floor = |(x, y): (f64, f64)| (x.max(floor), y);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((floor..1.0).log_scale(), tpr_from..1.0)?;
    chart
        .configure_mesh()
        .x_desc("false positive rate: OOD accepted (log scale; 0 at the left edge)")
        .y_desc("true positive rate: ID accepted")
        .x_label_formatter(&|v| format!("{v}"))
        .draw()?;
    let area = chart.plotting_area();
    let chance: Vec<(f64, f64)> = (0..=60)
        .map(|i| floor * (1.0 / floor).powf(i as f64 / 60.0))
        .filter(|&x| x >= tpr_from)
        .map(|x| (x, x))
        .collect();
    area.draw(&DashedPathElement::new(
        chance,
        2,
        4,
        BLACK.mix(0.5).stroke_width(1),
    ))?;
    // Last to first, so the first method (the LSGM) is drawn on top.
    for (i, c) in curves.iter().enumerate().rev() {
        let s = Style::of(i);
        s.line(
            area,
            above(&c.points, tpr_from).into_iter().map(at_floor).collect(),
        )?;
        for k in 0..4 {
            let t = (k as f64 + 0.2 + 0.6 * (i as f64 * 0.618).fract()) / 4.0;
            let x = floor * (1.0 / floor).powf(t);
            let y = tpr_at(&c.points, x);
            if y >= tpr_from {
                s.mark(area, (x, y))?;
            }
        }
    }
    if let Some(p) = operating.map(at_floor).filter(|p| p.1 >= tpr_from) {
        area.draw(&(EmptyElement::at(p) + Circle::new((0, 0), 7, BLACK.stroke_width(2))))?;
    }
    Ok(())
}

/// The part of the ROC `points` at TPR `from` or above (a curve rises, so
/// it is a tail), entered where its segment crosses `from`: a zoomed panel
/// draws no curve along its lower edge.
fn above(points: &[(f64, f64)], from: f64) -> Vec<(f64, f64)> {
    let i = points.iter().position(|p| p.1 >= from).unwrap_or(points.len());
    let mut tail = Vec::with_capacity(points.len() - i + 1);
    if i > 0 && i < points.len() {
        let ((x0, y0), (x1, y1)) = (points[i - 1], points[i]);
        tail.push((x0 + (x1 - x0) * (from - y0) / (y1 - y0), from));
    }
    tail.extend_from_slice(&points[i..]);
    tail
}

/// The zoom panel's TPR range starts here: the region where a deployed
/// threshold sits (it keeps 90 % or more of the in-distribution frames).
const ZOOM_TPR: f64 = 0.9;

/// One ROC figure: every method's curve for one OOD set (`n_ood` frames),
/// on a logarithmic FPR axis, whole and zoomed to TPR ≥ `ZOOM_TPR`, with
/// `operating` — `(FPR, TPR)` of the LSGM at the model's stored threshold,
/// when scored — in a black ring; the legend beside them.
pub fn roc_plot(
    path: &Path,
    title: &str,
    curves: &[Curve],
    n_ood: usize,
    operating: Option<(f64, f64)>,
) -> Result<()> {
    let root = BitMapBackend::new(path, (1160, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (left, right) = root.split_horizontally(680);
    let (top, bottom) = left.split_vertically(440);
    let floor = fpr_floor(n_ood);
    roc_panel(&top, "whole curve", curves, (floor, 0.0), operating)?;
    roc_panel(
        &bottom,
        &format!("zoom: TPR ≥ {ZOOM_TPR} (a deployed threshold keeps 90 % of ID frames or more)"),
        curves,
        (floor, ZOOM_TPR),
        operating,
    )?;
    let mut entries: Vec<Entry> = curves
        .iter()
        .enumerate()
        .map(|(i, c)| Entry {
            key: Key::Series(Style::of(i)),
            label: format!("{} (AUROC {:.4})", c.name, c.auroc),
        })
        .collect();
    if let Some((fpr, tpr)) = operating {
        entries.push(Entry {
            key: Key::Ring,
            label: format!(
                "lsgm at its stored threshold: {:.1} % ID, {:.1} % OOD accepted",
                100.0 * tpr,
                100.0 * fpr
            ),
        });
    }
    entries.push(Entry {
        key: Key::Chance,
        label: "chance (TPR = FPR)".into(),
    });
    legend(&right, &entries)?;
    root.present()?;
    Ok(())
}

/// The histogram's score axis: the in-distribution scores' bulk (1st
/// percentile to maximum) widened by its own span on each side and by the
/// threshold, within the scores' range. Scores beyond it pile into the end
/// bins, so a few extreme OOD scores (an overflowing density scores
/// −3.4e38) cannot squeeze the in-distribution scores into one bin.
fn histogram_axis(id: &[f64], oods: &[(String, Vec<f64>)], threshold: f64) -> (f64, f64) {
    let finite = |v: &mut Vec<f64>| {
        v.retain(|x| x.is_finite());
        v.sort_by(f64::total_cmp);
    };
    let mut ids = id.to_vec();
    finite(&mut ids);
    let mut all: Vec<f64> = id
        .iter()
        .chain(oods.iter().flat_map(|o| o.1.iter()))
        .copied()
        .collect();
    finite(&mut all);
    let (Some(&min), Some(&max)) = (all.first(), all.last()) else {
        return (threshold - 1.0, threshold + 1.0);
    };
    let (id_lo, id_hi) = match (ids.get((ids.len() as f64 * 0.01) as usize), ids.last()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => (min, max),
    };
    let span = (id_hi - id_lo).max(1e-9);
    let (lo, hi) = ((id_lo - span).max(min), (id_hi + span).min(max));
    let pad = 0.03 * (hi - lo).max(1e-9);
    (lo.min(threshold - pad), hi.max(threshold + pad))
}

/// Histogram of LSGM scores: ID against every OOD set, with the model's
/// stored `threshold` drawn and labelled with its value (the x range is
/// widened to show it).
pub fn histogram(path: &Path, id: &[f64], oods: &[(String, Vec<f64>)], threshold: f64) -> Result<()> {
    let (lo, hi) = histogram_axis(id, oods, threshold);
    let bins = 60;
    let width = (hi - lo) / bins as f64;
    let density = |v: &[f64]| -> Vec<f64> {
        let mut h = vec![0.0; bins];
        for &x in v {
            let b = (((x.clamp(lo, hi) - lo) / width) as usize).min(bins - 1);
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
        * 1.15;
    let root = BitMapBackend::new(path, (1000, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "LSGM score: in-distribution vs OOD (scores beyond the axis piled into its end bins)",
        ("sans-serif", 20),
    )?;
    let (left, right) = root.split_horizontally(740);
    let mut chart = ChartBuilder::on(&left)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("score (log-likelihood); below the threshold: OOD")
        .y_desc("fraction of frames")
        .draw()?;
    let mut entries = Vec::new();
    for (i, (name, h)) in series.iter().enumerate() {
        let s = Style::of(i);
        let pts: Vec<(f64, f64)> = h
            .iter()
            .enumerate()
            .flat_map(|(b, &v)| {
                let x0 = lo + b as f64 * width;
                [(x0, v), (x0 + width, v)]
            })
            .collect();
        s.line(chart.plotting_area(), pts)?;
        entries.push(Entry {
            key: Key::Line(s),
            label: name.clone(),
        });
    }
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(threshold, 0.0), (threshold, top)],
        BLACK.stroke_width(2),
    )))?;
    chart.draw_series(std::iter::once(Text::new(
        format!(" threshold {}", threshold as f32),
        (threshold, top * 0.98),
        ("sans-serif", 15).into_font(),
    )))?;
    entries.push(Entry {
        key: Key::Threshold,
        label: format!("stored threshold {}", threshold as f32),
    });
    legend(&right, &entries)?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_ood_scores_do_not_squeeze_the_histogram_axis() {
        // In-distribution scores 100..200; an OOD set half at the overflow
        // score, half near the threshold.
        let id: Vec<f64> = (0..200).map(|i| 100.0 + i as f64 / 2.0).collect();
        let far = [f32::MIN as f64; 100]
            .into_iter()
            .chain((0..100).map(|i| 60.0 + i as f64 / 4.0));
        let oods = vec![("far".to_string(), far.collect::<Vec<f64>>())];
        let (lo, hi) = histogram_axis(&id, &oods, 110.0);
        assert!(lo > -200.0 && lo < 60.0, "axis from {lo}");
        assert!((199.5..=300.0).contains(&hi), "axis to {hi}");
        // Without extreme scores the axis is the scores' own range (plus padding).
        let (lo, hi) = histogram_axis(&id, &[], 110.0);
        assert!(
            lo <= 100.0 && lo > 95.0 && (199.5..205.0).contains(&hi),
            "{lo} {hi}"
        );
    }

    #[test]
    fn styles_differ_and_the_axis_floor_sits_below_the_first_rate() {
        let styles: Vec<Style> = (0..30).map(Style::of).collect();
        for (i, a) in styles.iter().enumerate() {
            for b in &styles[i + 1..] {
                assert!((a.color, a.dash) != (b.color, b.dash), "{a:?} {b:?}");
            }
        }
        for w in styles.windows(2) {
            assert!(w[0].color != w[1].color && w[0].dash != w[1].dash && w[0].marker != w[1].marker);
        }
        // No pale colour: WCAG contrast against white of at least 3.
        let lum = |c: RGBColor| {
            let f = |v: u8| {
                let v = v as f64 / 255.0;
                if v <= 0.03928 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * f(c.0) + 0.7152 * f(c.1) + 0.0722 * f(c.2)
        };
        for c in PALETTE {
            assert!(1.05 / (lum(c) + 0.05) >= 3.0, "{c:?}");
        }
        assert_eq!(fpr_floor(100), 1e-3);
        assert_eq!(fpr_floor(2000), 1e-4);
        let curve = [(0.0, 0.0), (0.0, 0.5), (0.1, 0.9), (1.0, 1.0)];
        assert_eq!(tpr_at(&curve, 0.05), 0.5);
        // Entering TPR 0.7 halfway along the segment from 0.5 to 0.9.
        let tail = above(&curve, 0.7);
        assert!((tail[0].0 - 0.05).abs() < 1e-12 && tail[0].1 == 0.7, "{tail:?}");
        assert_eq!(tail[1..], [(0.1, 0.9), (1.0, 1.0)]);
        assert_eq!(above(&curve, 0.0), curve);
        assert!(above(&curve, 1.5).is_empty());
    }
}
