//! What happens to each frame's outcome, in input order, on the emitting
//! thread: its JSON line, the run's tally, the drift test, the metrics and
//! the capture of flagged frames. Nothing here runs on the workers, so the
//! per-frame score path is the same with or without these options.

use crate::capture::Capture;
use crate::drift::{Alarm, Drift};
use crate::judge::{Judged, Shared};
use crate::metrics::Metrics;
use crate::report::{emit, ErrorLine, Latency, Line, Tally};
use crate::Outcome;
use anyhow::Result;
use lsgm::frames;
use std::io::{BufWriter, StdoutLock, Write};
use std::time::Duration;

/// The consumer of outcomes.
pub struct Watch<'s, 'm> {
    pub shared: &'s Shared<'m>,
    pub out: BufWriter<StdoutLock<'static>>,
    /// Per-frame lines on stdout (alarm lines are written regardless).
    pub print: bool,
    pub tally: Tally,
    pub drift: Option<Drift>,
    pub metrics: Option<Metrics>,
    pub capture: Option<Capture>,
    /// The first `--save-ood` failure has been said on stderr.
    pub capture_warned: bool,
    /// The first error writing stdout, which ends the run.
    pub write_error: Option<anyhow::Error>,
}

impl Watch<'_, '_> {
    /// Handles one outcome; `false` stops the run (stdout closed or failing).
    pub fn outcome(&mut self, o: Outcome) -> bool {
        self.tally.frames += 1;
        let total = o.read_at.elapsed();
        let emitted = match o.judged {
            Ok((j, frame)) => self.judged(&o.source, o.index, &j, frame, total),
            Err(e) => {
                self.tally.errors += 1;
                if let Some(m) = &self.metrics {
                    m.failed();
                }
                let (source, index, error) = (&o.source, o.index, format!("{e:#}"));
                self.print
                    .then(|| emit(&mut self.out, &ErrorLine { source, index, error }))
            }
        };
        self.settle(emitted)
    }

    fn judged(
        &mut self,
        source: &str,
        index: usize,
        j: &Judged,
        frame: Option<frames::Frame>,
        total: Duration,
    ) -> Option<Result<bool>> {
        let v = &j.verdict;
        self.tally.ood += v.ood as usize;
        self.tally.inference.record(j.inference);
        self.tally.score.record(j.scoring);
        self.tally.total.record(total);
        let line = line(self.shared, source, index, j, total);
        if let (Some(capture), Some(frame)) = (&self.capture, frame) {
            if let Ok(text) = serde_json::to_string(&line) {
                capture.offer(frame, text);
            }
            if !self.capture_warned {
                if let Some(e) = capture.first_error() {
                    frames::stderr_line(format_args!("lsgm-monitor: warning: {e}; scoring goes on"));
                    self.capture_warned = true;
                }
            }
        }
        if let Some(m) = &self.metrics {
            m.judged(v, &j.contributions, [j.inference, j.scoring, total]);
        }
        let emitted = self.print.then(|| emit(&mut self.out, &line));
        let alarm = self.drift.as_mut().and_then(|d| d.push(v.ood, v.worst_layer));
        if let (Some(d), Some(m)) = (&self.drift, &self.metrics) {
            m.drift(
                d.window_rate(),
                alarm.as_ref().is_some_and(|a| a.alarm == "raised"),
                d.raised(),
            );
        }
        match alarm {
            Some(a) if !matches!(emitted, Some(Ok(false)) | Some(Err(_))) => Some(self.alarm(&a)),
            _ => emitted,
        }
    }

    /// Writes an alarm line (with tap names) and says it on stderr.
    fn alarm(&mut self, a: &Alarm) -> Result<bool> {
        let model = &self.shared.model;
        let mut value = serde_json::to_value(a)?;
        if let Some(layers) = value.get_mut("worst_layers").and_then(|l| l.as_array_mut()) {
            for (entry, count) in layers.iter_mut().zip(&a.worst_layers) {
                if let (Some(obj), Some(layer)) =
                    (entry.as_object_mut(), model.layers().get(count.layer as usize))
                {
                    obj.insert("tap".into(), layer.name().into());
                }
            }
        }
        frames::stderr_line(format_args!(
            "lsgm-monitor: drift alarm {}: {} of the last {} frames OOD ({:.1} %, expected {:.1} %, p = {:.3e}) \
             at frame {}",
            a.alarm,
            a.ood_frames,
            a.window,
            100.0 * a.ood_rate,
            100.0 * a.expected_rate,
            a.p_value,
            a.frames_seen
        ));
        emit(&mut self.out, &value)
    }

    fn settle(&mut self, emitted: Option<Result<bool>>) -> bool {
        match emitted {
            None | Some(Ok(true)) => true,
            Some(Ok(false)) => false, // stdout was closed
            Some(Err(e)) => {
                self.write_error = Some(e);
                false
            }
        }
    }

    /// Flushes stdout (lines are flushed as written; this catches the rest).
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

/// The JSON line of a judged frame (see the crate docs for the fields).
pub fn line<'a>(
    shared: &'a Shared<'_>,
    source: &'a str,
    index: usize,
    j: &'a Judged,
    total: Duration,
) -> Line<'a> {
    let tap = |l: u8| shared.model.layer(l as usize).name();
    Line {
        source,
        index,
        class: j.class,
        confidence: j.confidence,
        score: j.verdict.score,
        threshold: j.verdict.threshold,
        ood: j.verdict.ood,
        worst_layer: j.verdict.worst_layer,
        worst_tap: tap(j.verdict.worst_layer),
        layers: &j.contributions,
        latency_us: Latency {
            inference: j.inference.as_micros() as u64,
            score: j.scoring.as_micros() as u64,
            total: total.as_micros() as u64,
        },
        reason: j.verdict.overflow.map(|l| {
            format!(
                "the density of layer {l} ({}) overflowed: the frame is farther from every \
                 in-distribution component than f32 can express",
                tap(l)
            )
        }),
    }
}
