//! Drift alarm: is the rate of OOD verdicts over the last `window` frames
//! significantly above the rate the threshold implies in distribution?
//!
//! # Method
//!
//! The threshold flags a known fraction `p0` of in-distribution frames
//! (e.g. `--fpr 0.05`). Over a window of the last `N` verdicts, the number
//! `X` of OOD frames is then `Binomial(N, p0)` under H0 ("the camera still
//! sees in-distribution frames"), treating verdicts as independent. At
//! every frame once the window is full we run the one-sided exact binomial
//! test of H0: `p <= p0` against `p > p0` (the uniformly most powerful
//! test for a binomial proportion; Lehmann & Romano, *Testing Statistical
//! Hypotheses*, 3rd ed., Springer 2005, ch. 3): with `x` OOD frames in the
//! window, the p-value is `P(X >= x | N, p0)` and the test rejects when it
//! is `<= alpha` (`--alarm-p`). As the tail is decreasing in `x`, this is
//! the same as `x >= k*`, the critical count, i.e. the smallest `k` with
//! `P(X >= k) <= alpha`; it is computed once in [`Drift::new`], so each
//! frame costs one ring-buffer update and one comparison. The same rule
//! is a moving-window `np` control chart with exact probability limits.
//!
//! The binomial tail is summed in log space ([`binomial_upper_tail`]) with
//! the recurrence `ln pmf(k+1) = ln pmf(k) + ln(N-k) - ln(k+1) + ln p -
//! ln(1-p)` from `ln pmf(0) = N ln(1-p)`, unrolled as `ln pmf(k) =
//! ln C(N, k) + k ln p + (N-k) ln(1-p)` with `ln C(N, k)` accumulated term
//! by term in a compensated (Neumaier) sum, so the rounding does not grow
//! with `N`; the terms are added by log-sum-exp. The relative error is
//! below `1e-10` for `N` up to `10^7`, for p-values down to about `1e-300`
//! (smaller ones underflow to 0).
//!
//! # False alarms
//!
//! Under H0 each evaluation rejects with probability at most `alpha`, and
//! every raised alarm needs a rejecting window, so by the union bound the
//! expected number of false alarms per hour is at most
//! `alpha * 3600 * fps` ([`false_alarms_per_hour_bound`]). Consecutive
//! windows share all but one frame, so in practice it is far lower. The
//! bound assumes independent verdicts: a camera that sees one odd scene
//! for many frames produces correlated OOD bursts, which the test counts
//! as drift (arguably rightly).
//!
//! # Why a sliding window, and why hysteresis
//!
//! A sliding window answers the question an operator asks ("x of the last
//! N frames were OOD, p = ...") with an exact level at every frame, and
//! forgets old data at a known rate: after a change from `p0` to `p1` the
//! count grows by `p1 - p0` a frame on average, so the detection delay is
//! about `(k* - N p0) / (p1 - p0)` frames, and `N` frames after the change
//! the window holds only new frames. (CUSUM, Page, Biometrika 41, 1954,
//! detects a known `p1` sooner on average, but its false-alarm rate is an
//! average run length rather than a per-window level, and its state is
//! harder to explain.) Without hysteresis a drifted camera would raise an
//! alarm at every frame, and with a single threshold a steady drift whose
//! count hovers around `k*` would raise and clear it every few frames
//! (seen: 38 cycles in 30,000 frames at a steady 10 % against 5 %), too
//! fast for a scrape interval and noisy in a log. So there are two
//! thresholds: an alarm is raised when the count reaches `k*`, stays up,
//! and is cleared only when the count is back at the in-distribution
//! expectation, `<= ceil(N p0)` (the clearing count; below `k*`). One drift
//! is then one alarm, and the events alternate raised / cleared.

use serde::Serialize;

/// Largest accepted `--window`: the ring buffer holds one byte a frame.
const MAX_WINDOW: usize = 10_000_000;

/// Ring-buffer code of an in-distribution frame; an OOD frame stores
/// `worst_layer + 1`.
const IN_DISTRIBUTION: u8 = 0;

/// `ln` of the relative size below which a tail remainder is dropped
/// (`e^-40` is about `4e-18`, below `f64` rounding).
const NEGLIGIBLE: f64 = -40.0;

/// Parameters, validated by [`Drift::new`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftParams {
    /// Frames in the sliding window, `N` (`--window`).
    pub window: usize,
    /// Level of the test, the largest p-value that raises an alarm (`--alarm-p`).
    pub alpha: f64,
    /// OOD rate the threshold implies in distribution, `p0`.
    pub expected_rate: f64,
}

/// Sliding-window exact binomial test on the OOD verdicts, with hysteresis.
#[derive(Debug, Clone)]
pub struct Drift {
    /// The validated parameters.
    params: DriftParams,
    /// Critical count `k*`: an alarm when at least this many OOD frames.
    critical: usize,
    /// Clearing count: a raised alarm is cleared at or below this many.
    clear: usize,
    /// The last `window` verdicts: [`IN_DISTRIBUTION`] or `worst_layer + 1`.
    ring: Vec<u8>,
    /// Slot of the next verdict (the oldest one once the window is full).
    next: usize,
    /// OOD frames in the ring.
    count: usize,
    /// Verdicts seen so far.
    seen: u64,
    /// An alarm is up.
    raised: bool,
    /// Raised events so far.
    alarms: u64,
}

/// A drift event, one JSON object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alarm {
    /// `"raised"` or `"cleared"`.
    pub alarm: &'static str,
    /// Frames in the window, `N`.
    pub window: usize,
    /// OOD frames in the window, `x`.
    pub ood_frames: usize,
    /// `x / N`.
    pub ood_rate: f64,
    /// The in-distribution OOD rate `p0`.
    pub expected_rate: f64,
    /// `P(X >= x | N, p0)`.
    pub p_value: f64,
    /// Level of the test.
    pub alpha: f64,
    /// Verdicts seen so far, this one included.
    pub frames_seen: u64,
    /// Worst layers of the OOD frames in the window, most frequent first,
    /// ties by layer index; only layers with at least one frame.
    pub worst_layers: Vec<LayerCount>,
}

/// How many OOD frames of the window had this worst layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerCount {
    /// Index of the tap (the caller adds its name).
    pub layer: u8,
    /// OOD frames in the window whose worst layer it was.
    pub ood_frames: usize,
}

impl Drift {
    /// Validates the parameters and computes the critical count.
    ///
    /// # Errors
    ///
    /// A message naming the flag and saying what to do: `window` not in
    /// `1..=10_000_000`, `alpha` or `expected_rate` not strictly between 0
    /// and 1, or a window so short that even `N` OOD frames out of `N`
    /// (p-value `p0^N`) would not reach `alpha`.
    pub fn new(params: DriftParams) -> Result<Drift, String> {
        let DriftParams {
            window,
            alpha,
            expected_rate: p0,
        } = params;
        if !(1..=MAX_WINDOW).contains(&window) {
            return Err(format!(
                "--window {window} is out of range: give 1 to {MAX_WINDOW} frames"
            ));
        }
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(format!(
                "--alarm-p {alpha:?} is not a probability strictly between 0 and 1: give e.g. 1e-6"
            ));
        }
        if !(p0 > 0.0 && p0 < 1.0) {
            return Err(format!(
                "the expected OOD rate {p0:?} is not strictly between 0 and 1: pick a threshold \
                 (--fpr or --threshold) that flags some but not all in-distribution frames"
            ));
        }
        if window as f64 * p0.ln() > alpha.ln() {
            return Err(too_short(params));
        }
        let critical = critical_count(window, p0, alpha);
        let expected = (window as f64 * p0).ceil() as usize;
        Ok(Drift {
            params,
            critical,
            clear: expected.min(critical.saturating_sub(1)),
            ring: vec![IN_DISTRIBUTION; window],
            next: 0,
            count: 0,
            seen: 0,
            raised: false,
            alarms: 0,
        })
    }

    /// The critical count `k*`: the smallest `k` with `P(X >= k) <= alpha`.
    pub fn critical(&self) -> usize {
        self.critical
    }

    /// The clearing count: a raised alarm is cleared once the window holds
    /// at most this many OOD frames, `min(ceil(N p0), k* - 1)`.
    pub fn clearing(&self) -> usize {
        self.clear
    }

    /// Adds one verdict; returns the event it causes, if any. O(1) and no
    /// allocation except when an event is emitted (then O(`window`)).
    /// `worst_layer` is only read for OOD frames; 255 is reported as 254.
    pub fn push(&mut self, ood: bool, worst_layer: u8) -> Option<Alarm> {
        let code = if ood {
            worst_layer.saturating_add(1)
        } else {
            IN_DISTRIBUTION
        };
        let old = std::mem::replace(&mut self.ring[self.next], code);
        self.count -= usize::from(old != IN_DISTRIBUTION);
        self.count += usize::from(ood);
        self.next = if self.next + 1 == self.ring.len() {
            0
        } else {
            self.next + 1
        };
        self.seen += 1;
        if self.seen < self.ring.len() as u64 {
            return None;
        }
        let event = match self.raised {
            false if self.count >= self.critical => "raised",
            true if self.count <= self.clear => "cleared",
            _ => return None,
        };
        self.raised = !self.raised;
        self.alarms += u64::from(self.raised);
        Some(self.event(event))
    }

    /// An alarm is currently active.
    pub fn raised(&self) -> bool {
        self.raised
    }

    /// Raised events so far.
    pub fn alarms(&self) -> u64 {
        self.alarms
    }

    /// OOD rate of the verdicts in the window so far (of those seen, before
    /// the window is full; 0 before the first).
    pub fn window_rate(&self) -> f64 {
        let n = self.seen.min(self.ring.len() as u64);
        if n == 0 {
            0.0
        } else {
            self.count as f64 / n as f64
        }
    }

    /// The event for the current window.
    fn event(&self, alarm: &'static str) -> Alarm {
        let DriftParams {
            window,
            alpha,
            expected_rate,
        } = self.params;
        Alarm {
            alarm,
            window,
            ood_frames: self.count,
            ood_rate: self.count as f64 / window as f64,
            expected_rate,
            p_value: binomial_upper_tail(window, self.count, expected_rate),
            alpha,
            frames_seen: self.seen,
            worst_layers: self.worst_layers(),
        }
    }

    /// Worst-layer counts over the OOD frames in the window.
    fn worst_layers(&self) -> Vec<LayerCount> {
        let mut counts = [0usize; 256];
        for &code in &self.ring {
            counts[usize::from(code)] += 1;
        }
        let mut layers: Vec<LayerCount> = (1..=u8::MAX)
            .filter(|&code| counts[usize::from(code)] > 0)
            .map(|code| LayerCount {
                layer: code - 1,
                ood_frames: counts[usize::from(code)],
            })
            .collect();
        layers.sort_by(|a, b| b.ood_frames.cmp(&a.ood_frames).then(a.layer.cmp(&b.layer)));
        layers
    }
}

/// The error of a window too short to ever reach `alpha` (`p0^N > alpha`).
fn too_short(params: DriftParams) -> String {
    let DriftParams {
        window,
        alpha,
        expected_rate: p0,
    } = params;
    let ratio = alpha.ln() / p0.ln();
    // Smallest M with p0^M <= alpha; the loop only fixes the rounding of `ceil`.
    let mut m = ratio.ceil().max(1.0) as u64;
    while m as f64 * p0.ln() > alpha.ln() {
        m += 1;
    }
    let advice = if m > MAX_WINDOW as u64 {
        ", above the limit: raise --alarm-p"
    } else {
        ""
    };
    format!(
        "window too short for --alarm-p: use at least {m} frames{advice} (--window {window}: even \
         {window} OOD frames out of {window} have p-value {:.3e} > --alarm-p {alpha:?} at the expected \
         OOD rate {p0:?})",
        p0.powf(window as f64)
    )
}

/// Upper bound on the expected false alarms per hour under H0 at `fps`
/// frames a second (union bound over the evaluations): `alpha * 3600 * fps`.
pub fn false_alarms_per_hour_bound(alpha: f64, fps: f64) -> f64 {
    alpha * 3600.0 * fps
}

/// `P(X >= k)` for `X ~ Binomial(n, p)`, `0 < p < 1`: 1 for `k = 0`, 0 for
/// `k > n`. Relative error below `1e-10` for `n` up to `10^7` (about
/// `5e-11` measured against 40-digit references); values below about
/// `1e-300` may underflow to 0. O(`k` + tail length): 4 ms at `n = 10^7`.
pub fn binomial_upper_tail(n: usize, k: usize, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let mut walk = Walk::new(n, p);
    while walk.k < k {
        walk.up();
    }
    let mut tail = LogSum::default();
    loop {
        tail.add(walk.ln_pmf());
        let r = walk.ratio();
        // The ratios decrease with k, so what is left is at most term * r / (1 - r).
        let rest = walk.ln_pmf() + (r / (1.0 - r)).ln() - tail.ln();
        if walk.k == n || (r < 1.0 && rest < NEGLIGIBLE) {
            return tail.ln().exp();
        }
        walk.up();
    }
}

/// The smallest `k` with `P(X >= k) <= alpha`, `X ~ Binomial(n, p)`, given
/// that `p^n <= alpha` (so it is at most `n`). O(`n`) at most.
fn critical_count(n: usize, p: f64, alpha: f64) -> usize {
    let ln_alpha = alpha.ln();
    // Up to a k past the mode whose tail is negligible next to alpha (the
    // ratio <= 1/2 bounds the rest of the tail by the term itself).
    let mut walk = Walk::new(n, p);
    while walk.k < n && !(walk.ratio() <= 0.5 && walk.ln_pmf() < ln_alpha + NEGLIGIBLE) {
        walk.up();
    }
    // Then down, adding the terms, until the tail exceeds alpha.
    let mut tail = LogSum::default();
    tail.add(walk.ln_pmf());
    while tail.ln() <= ln_alpha && walk.k > 0 {
        walk.down();
        tail.add(walk.ln_pmf());
    }
    // P(X >= walk.k) > alpha (or walk.k = 0); rounding at p^n = alpha cannot push it past n.
    (walk.k + 1).min(n)
}

/// `ln pmf(k)` of `Binomial(n, p)`, moved one `k` at a time.
struct Walk {
    /// `n` as a float.
    n: f64,
    /// Current `k`.
    k: usize,
    /// `ln C(n, k)`, summed with compensation.
    ln_choose: Compensated,
    /// `ln p`.
    ln_p: f64,
    /// `ln (1 - p)`.
    ln_q: f64,
    /// `p / (1 - p)`.
    odds: f64,
}

impl Walk {
    /// At `k = 0`.
    fn new(n: usize, p: f64) -> Walk {
        let (ln_p, ln_q) = (p.ln(), (-p).ln_1p());
        let odds = p / (1.0 - p);
        Walk {
            n: n as f64,
            k: 0,
            ln_choose: Compensated::default(),
            ln_p,
            ln_q,
            odds,
        }
    }

    /// `ln pmf(k) = ln C(n, k) + k ln p + (n - k) ln (1 - p)`.
    fn ln_pmf(&self) -> f64 {
        let k = self.k as f64;
        self.ln_choose.value() + k * self.ln_p + (self.n - k) * self.ln_q
    }

    /// `pmf(k + 1) / pmf(k) = (n - k) / (k + 1) * p / (1 - p)`.
    fn ratio(&self) -> f64 {
        let k = self.k as f64;
        (self.n - k) / (k + 1.0) * self.odds
    }

    /// `k` to `k + 1`.
    fn up(&mut self) {
        let k = self.k as f64;
        self.ln_choose.add(((self.n - k) / (k + 1.0)).ln());
        self.k += 1;
    }

    /// `k` to `k - 1`.
    fn down(&mut self) {
        let k = self.k as f64;
        self.ln_choose.add(-((self.n - k + 1.0) / k).ln());
        self.k -= 1;
    }
}

/// Neumaier's compensated sum.
#[derive(Default)]
struct Compensated {
    /// Running sum.
    sum: f64,
    /// Lost low-order parts.
    carry: f64,
}

impl Compensated {
    /// Adds `x`.
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        self.carry += if self.sum.abs() >= x.abs() {
            (self.sum - t) + x
        } else {
            (x - t) + self.sum
        };
        self.sum = t;
    }

    /// The sum.
    fn value(&self) -> f64 {
        self.sum + self.carry
    }
}

/// `ln` of a sum of `exp` terms without overflow: `max + ln(scaled)`.
struct LogSum {
    /// Largest term so far (ln).
    max: f64,
    /// Sum of `exp(term - max)`.
    scaled: f64,
}

impl Default for LogSum {
    fn default() -> Self {
        LogSum {
            max: f64::NEG_INFINITY,
            scaled: 0.0,
        }
    }
}

impl LogSum {
    /// Adds the term `exp(ln_term)`.
    fn add(&mut self, ln_term: f64) {
        if ln_term > self.max {
            self.scaled = self.scaled * (self.max - ln_term).exp() + 1.0;
            self.max = ln_term;
        } else {
            self.scaled += (ln_term - self.max).exp();
        }
    }

    /// `ln` of the sum (`-inf` when empty).
    fn ln(&self) -> f64 {
        self.max + self.scaled.ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn drift(window: usize, alpha: f64, expected_rate: f64) -> Result<Drift, String> {
        Drift::new(DriftParams {
            window,
            alpha,
            expected_rate,
        })
    }

    /// `P(X >= k)` by exact binomial coefficients (u128) and direct products.
    fn brute_tail(n: usize, k: usize, p: f64) -> f64 {
        let mut choose = vec![1u128; n + 1]; // C(n, j), row n of Pascal's triangle
        for j in 1..=n {
            choose[j] = choose[j - 1] * (n - j + 1) as u128 / j as u128;
        }
        (k..=n)
            .map(|j| choose[j] as f64 * p.powi(j as i32) * (1.0 - p).powi((n - j) as i32))
            .sum()
    }

    fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
        assert!(
            (got - want).abs() <= rel * want.abs(),
            "{what}: got {got:e}, want {want:e}"
        );
    }

    #[test]
    fn tail_matches_brute_force_and_known_values() {
        for n in [1, 2, 7, 20, 50] {
            for p in [1e-3, 0.05, 0.1, 0.3, 0.5, 0.77, 0.999] {
                for k in 0..=n + 1 {
                    let want = if k > n { 0.0 } else { brute_tail(n, k, p) };
                    assert_close(
                        binomial_upper_tail(n, k, p),
                        want,
                        1e-9,
                        &format!("n {n} k {k} p {p}"),
                    );
                }
            }
        }
        assert_close(
            binomial_upper_tail(10, 3, 0.1),
            0.0701908264,
            1e-9,
            "P(X>=3|10,0.1)",
        );
        assert_close(
            binomial_upper_tail(10, 1, 0.1),
            1.0 - 0.9f64.powi(10),
            1e-12,
            "P(X>=1|10,0.1)",
        );
        // P(X >= n) = p^n, deep in the tail and for a large n.
        assert_close(
            binomial_upper_tail(1000, 1000, 0.5),
            0.5f64.powi(1000),
            1e-11,
            "0.5^1000",
        );
        let p = 1.0 - 7e-4;
        let want = (1e6 * (-7e-4f64).ln_1p()).exp(); // ~1e-304
        assert_close(binomial_upper_tail(1_000_000, 1_000_000, p), want, 1e-9, "p^1e6");
        // P(X >= k | n, p) + P(X >= n - k + 1 | n, 1 - p) = 1, for n = 10^6.
        let n = 1_000_000;
        for (k, p) in [(300_500, 0.3), (50_400, 0.05), (500_000, 0.5)] {
            let sum = binomial_upper_tail(n, k, p) + binomial_upper_tail(n, n - k + 1, 1.0 - p);
            assert_close(sum, 1.0, 1e-10, &format!("complement n {n} k {k} p {p}"));
        }
    }

    #[test]
    fn critical_count_is_the_smallest_rejecting_count() {
        let cases = [
            (500, 1e-6, 0.05),
            (500, 1e-4, 0.05),
            (10, 0.01, 0.05),
            (1, 0.1, 0.05),
        ];
        let more = [
            (20, 0.05, 0.5),
            (100_000, 1e-300, 0.01),
            (1_000_000, 1e-9, 0.3),
            (3, 0.2, 0.5),
        ];
        for (n, alpha, p) in cases.into_iter().chain(more) {
            let k = drift(n, alpha, p).unwrap().critical();
            let what = format!("n {n} alpha {alpha:?} p {p}: k* {k}");
            assert!((1..=n).contains(&k), "{what}");
            assert!(binomial_upper_tail(n, k, p) <= alpha, "{what}");
            assert!(binomial_upper_tail(n, k - 1, p) > alpha, "{what}");
        }
        assert_eq!(drift(10, 0.01, 0.05).unwrap().critical(), 4); // P(X>=3) = 0.0115, P(X>=4) = 0.00103
    }

    #[test]
    fn bad_parameters_are_refused_with_the_flag_named() {
        let err = |w, a, p| drift(w, a, p).unwrap_err();
        assert!(err(0, 1e-6, 0.05).contains("--window"));
        assert!(err(MAX_WINDOW + 1, 1e-6, 0.05).contains("--window"));
        for alpha in [0.0, 1.0, -1.0, f64::NAN] {
            assert!(err(500, alpha, 0.05).contains("--alarm-p"), "alpha {alpha:?}");
        }
        for p in [0.0, 1.0, 2.0, f64::NAN] {
            assert!(err(500, 1e-6, p).contains("the expected OOD rate"), "p {p}");
        }
        // 0.05^4 = 6.25e-6 > 1e-6 >= 0.05^5 = 3.1e-7.
        let e = err(4, 1e-6, 0.05);
        assert!(
            e.contains("window too short for --alarm-p: use at least 5 frames"),
            "{e}"
        );
        assert!(drift(5, 1e-6, 0.05).is_ok());
        assert!(drift(1, 0.5, 0.5).is_ok()); // p0^N = alpha: a full window just reaches it
    }

    /// A steady drift whose count hovers around k* is one alarm, not a
    /// raise and clear every few frames; the return to p0 clears it once.
    #[test]
    fn a_steady_drift_is_one_alarm_until_the_rate_returns() {
        let mut d = drift(1000, 1e-6, 0.05).unwrap();
        assert_eq!((d.critical(), d.clearing()), (87, 50));
        let mut rng = StdRng::seed_from_u64(10);
        let mut events = Vec::new();
        for frame in 0..40_000u64 {
            let p = if frame < 30_000 { 0.10 } else { 0.05 };
            if let Some(a) = d.push(rng.random_bool(p), 0) {
                events.push((a.alarm, a.frames_seen));
            }
        }
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].0, "raised");
        assert!(events[1].0 == "cleared" && events[1].1 > 30_000, "{events:?}");
    }

    #[test]
    fn a_rate_change_is_detected_within_the_window() {
        let (window, alpha, p0, p1, change) = (500, 1e-6, 0.05, 0.30, 20_000u64);
        let mut d = drift(window, alpha, p0).unwrap();
        let mut rng = StdRng::seed_from_u64(20_000);
        let mut raised_at = None;
        for frame in 1..=change + window as u64 {
            let p = if frame <= change { p0 } else { p1 };
            if let Some(a) = d.push(rng.random_bool(p), rng.random_range(0..16)) {
                assert!(frame > change, "false alarm at frame {frame}: {a:?}");
                assert_eq!((a.alarm, a.frames_seen), ("raised", frame));
                raised_at = Some(frame);
                break;
            }
        }
        let delay = raised_at.expect("no alarm after the change") - change;
        // Expected delay: the count grows by p1 - p0 a frame on average from N p0.
        let expected = (d.critical() as f64 - window as f64 * p0) / (p1 - p0);
        eprintln!(
            "k* {} detection delay {delay} frames (expected about {expected:.0})",
            d.critical()
        );
        // After N frames the window holds only p1 frames: X ~ Bin(500, 0.3), mean 150, sd 10,
        // so missing k* (about 50) has probability below 1e-20.
        assert!(delay < window as u64, "delay {delay}");
    }

    #[test]
    fn false_alarms_stay_under_the_union_bound() {
        let (window, alpha, p0, frames) = (500, 1e-4, 0.05, 2_000_000u64);
        let mut d = drift(window, alpha, p0).unwrap();
        let mut rng = StdRng::seed_from_u64(2_000_000);
        let mut last = "cleared";
        let mut rejecting = 0u64;
        for _ in 0..frames {
            if let Some(a) = d.push(rng.random_bool(p0), rng.random_range(0..16)) {
                assert_ne!(a.alarm, last, "events must alternate");
                assert_eq!(a.alarm == "raised", a.p_value <= alpha, "{a:?}");
                last = a.alarm;
            }
            rejecting += u64::from(d.count >= d.critical);
        }
        let evaluations = frames - window as u64 + 1;
        let bound = alpha * evaluations as f64;
        eprintln!(
            "k* {}: {} alarms raised, {rejecting} rejecting windows, in {frames} frames ({evaluations} \
             evaluations); union bound alpha * evaluations {bound}, alpha * frames {}",
            d.critical(),
            d.alarms(),
            alpha * frames as f64
        );
        assert!(d.alarms() as f64 <= bound, "{} alarms > {bound}", d.alarms());
        assert!(
            d.alarms() > 0,
            "alpha 1e-4 should give a few alarms in {frames} frames"
        );
        assert_eq!(false_alarms_per_hour_bound(1e-6, 30.0), 1e-6 * 3600.0 * 30.0);
    }

    #[test]
    fn worst_layers_count_the_ood_frames_in_the_window() {
        let mut d = drift(10, 0.01, 0.05).unwrap(); // k* = 4
        let ood = |layer| (true, layer);
        let ok = (false, 9);
        let stream = [ok, ok, ok, ood(3), ok, ok, ood(1), ood(3), ok, ood(1)];
        let mut events: Vec<Alarm> = stream.iter().filter_map(|&(o, l)| d.push(o, l)).collect();
        let lc = |layer, ood_frames| LayerCount { layer, ood_frames };
        assert_eq!(events.len(), 1);
        let a = events.pop().unwrap();
        assert_eq!(
            (a.alarm, a.ood_frames, a.frames_seen, a.window),
            ("raised", 4, 10, 10)
        );
        assert_eq!(a.worst_layers, [lc(1, 2), lc(3, 2)]); // tie: lower layer first
        assert_close(a.p_value, binomial_upper_tail(10, 4, 0.05), 1e-15, "p-value");
        assert_close(a.ood_rate, 0.4, 1e-15, "rate");
        // Pushes the first three in-distribution frames and the OOD(3) out.
        for (o, l) in [ood(15), ood(15), ood(15)] {
            assert_eq!(d.push(o, l), None);
        }
        assert_eq!(d.push(false, 0), None); // drops OOD(3): 15 15 15 1 3 1 still 6
        let tail = [ok, ok, ok, ok, ok];
        let events: Vec<Alarm> = tail.iter().filter_map(|&(o, l)| d.push(o, l)).collect();
        // Window after each push: drops ok, ok, ood(1), ood(3), ok -> counts 6, 6, 5, 4, 4.
        assert!(events.is_empty(), "{events:?}");
        // Below k* but above the clearing count ceil(10 * 0.05) = 1: still raised.
        assert_eq!(d.push(false, 0), None); // drops ood(1): count 3
        assert_eq!(d.push(false, 0), None); // drops a 15: count 2
        assert!(d.raised());
        let a = d.push(false, 0).expect("count 1: cleared");
        assert_eq!((a.alarm, a.ood_frames, a.frames_seen), ("cleared", 1, 22));
        assert_eq!(a.worst_layers, [lc(15, 1)]);
        assert_eq!((d.raised(), d.alarms()), (false, 1));
    }
}
