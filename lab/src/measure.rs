//! Measuring: a [`Harness`] repeats a measurement (after a warm-up), keeps every repetition
//! and shows progress, with an estimate of the time left.
//!
//! **Interleaving.** The speed of a machine drifts (other processes, frequency, a virtual
//! machine's neighbours): repetitions made back to back cannot see that, so their interval
//! is too narrow and two runs disagree. When [`Harness::interleave`] is on (the default) and
//! an experiment runs through [`Harness::rounds`] (as [`crate::Run::experiment`] does), the
//! experiment's body runs once per repetition: round `i` measures repetition `i` of every
//! row in turn, so a slow phase hits every row alike; each row's interval then reflects the
//! drift, and a ratio between rows pairs repetition `i` with repetition `i` (see
//! [`crate::results::Ratio`]) so the drift common to both cancels. In the last round every
//! [`Harness::per_op`] and [`Harness::repeat`] returns the repetitions of all rounds, so the
//! experiment's rows, ratios and answers are built once, from everything.

use std::any::Any;
use std::cell::RefCell;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::stats::Sample;

/// One measurement's repetitions kept across rounds.
struct Slot {
    what: String,
    reps: Vec<Box<dyn Any>>,
}

/// The state of an experiment run in rounds.
struct Rounds {
    round: usize,
    total: usize,
    next: usize,
    slots: Vec<Slot>,
    bar: ProgressBar,
}

/// Runs measurements: repetitions, warm-up and progress.
pub struct Harness {
    /// Repetitions of each measurement.
    pub reps: usize,
    /// How much of each experiment's full size to run (1 = full, 0.02 = `--quick`).
    pub scale: f64,
    /// Whether [`Harness::rounds`] runs the repetitions round-robin across an experiment's
    /// measurements (one round per repetition; the default) or each measurement's
    /// repetitions back to back (one round).
    pub interleave: bool,
    bars: MultiProgress,
    overall: ProgressBar,
    rounds: RefCell<Option<Rounds>>,
}

impl Harness {
    /// A harness for `reps` repetitions at `scale`, drawing progress on stderr when it is a
    /// terminal (and nothing otherwise).
    pub fn new(reps: usize, scale: f64) -> Self {
        Self::with_target(reps, scale, ProgressDrawTarget::stderr())
    }

    /// A harness that draws no progress (for tests and embedding).
    pub fn quiet(reps: usize, scale: f64) -> Self {
        Self::with_target(reps, scale, ProgressDrawTarget::hidden())
    }

    fn with_target(reps: usize, scale: f64, target: ProgressDrawTarget) -> Self {
        assert!(reps >= 1, "at least one repetition");
        let bars = MultiProgress::with_draw_target(target);
        let overall = bars.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("experiment {pos}/{len}: {msg} ({elapsed})")
                .expect("a valid template"),
        );
        Harness {
            reps,
            scale,
            interleave: true,
            bars,
            overall,
            rounds: RefCell::new(None),
        }
    }

    /// `n` scaled by the harness's scale, at least `min`.
    pub fn scaled(&self, n: u64, min: u64) -> u64 {
        ((n as f64 * self.scale) as u64).max(min)
    }

    /// Announces the experiments to come (for the overall line).
    pub fn plan(&self, experiments: usize) {
        self.overall.set_length(experiments as u64);
    }

    /// Announces that experiment `name` starts.
    pub fn begin(&self, name: &str) {
        self.overall.set_message(name.to_string());
        self.overall.tick();
    }

    /// Announces that the current experiment is done.
    pub fn end(&self) {
        self.overall.inc(1);
    }

    /// Runs `f` with the bars cleared (to print a table between them).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bars.suspend(f)
    }

    /// Clears the bars for good.
    pub fn finish(&self) {
        self.overall.finish_and_clear();
        let _ = self.bars.clear();
    }

    /// A bar for one measurement of `steps` steps, labelled `what`.
    pub fn bar(&self, what: &str, steps: u64) -> ProgressBar {
        let bar = self.bars.add(ProgressBar::new(steps));
        bar.set_style(
            ProgressStyle::with_template(
                "  {msg:48!} {bar:24} {pos}/{len} {elapsed:>4} left ~{eta:<4}",
            )
            .expect("a valid template"),
        );
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    }

    /// How many times [`Harness::rounds`] runs an experiment's body: one per repetition
    /// when interleaving, else one.
    pub fn round_count(&self) -> usize {
        if self.interleave {
            self.reps
        } else {
            1
        }
    }

    /// Runs an experiment's `body` in rounds (see the module's documentation) and returns
    /// what its last round built, from the repetitions of every round. Without
    /// interleaving, runs it once.
    pub fn rounds<T>(&self, mut body: impl FnMut() -> T) -> T {
        let total = self.round_count();
        if total <= 1 {
            return body();
        }
        let bar = self.bar("round 1", 0);
        *self.rounds.borrow_mut() = Some(Rounds {
            round: 0,
            total,
            next: 0,
            slots: Vec::new(),
            bar,
        });
        let mut last = None;
        for round in 0..total {
            {
                let mut state = self.rounds.borrow_mut();
                let s = state.as_mut().expect("in rounds");
                s.round = round;
                if round > 0 {
                    assert_eq!(
                        s.next,
                        s.slots.len(),
                        "an experiment run in rounds must make the same measurements in \
                         every round"
                    );
                }
                s.next = 0;
                if round == 1 {
                    s.bar.set_length((s.slots.len() * total) as u64);
                }
            }
            last = Some(body());
        }
        if let Some(s) = self.rounds.borrow_mut().take() {
            s.bar.finish_and_clear();
            self.bars.remove(&s.bar);
        }
        last.expect("at least one round")
    }

    /// Repetitions each [`Harness::per_op`] or [`Harness::repeat`] call makes now: one per
    /// call inside [`Harness::rounds`] when interleaving, else [`Harness::reps`].
    pub fn reps_now(&self) -> usize {
        if self.rounds.borrow().is_some() {
            1
        } else {
            self.reps
        }
    }

    /// Operations that a `per_op(_, ops, _)` call runs now, warm-up included: what to
    /// divide counter deltas taken around it by.
    pub fn ops_counted(&self, ops: u64) -> u64 {
        ops.div_ceil(10) + ops * self.reps_now() as u64
    }

    /// Times a [`Harness::repeat`] call runs its body now, warm-up included (the warm-up
    /// runs in the first round only).
    pub fn runs_counted(&self) -> u64 {
        match &*self.rounds.borrow() {
            Some(s) => 1 + u64::from(s.round == 0),
            None => self.reps as u64 + 1,
        }
    }

    /// Inside rounds: this call's slot and round, the bar advanced.
    fn slot(&self, what: &str) -> Option<(usize, usize, usize)> {
        let mut state = self.rounds.borrow_mut();
        let s = state.as_mut()?;
        let i = s.next;
        s.next += 1;
        if s.round == 0 {
            s.slots.push(Slot {
                what: what.to_string(),
                reps: Vec::new(),
            });
        } else {
            assert_eq!(
                s.slots.get(i).map(|slot| slot.what.as_str()),
                Some(what),
                "an experiment run in rounds must make the same measurements in the same \
                 order in every round"
            );
        }
        s.bar
            .set_message(format!("round {}/{}: {what}", s.round + 1, s.total));
        Some((i, s.round, s.total))
    }

    fn advance(&self) {
        if let Some(s) = &*self.rounds.borrow() {
            s.bar.inc(1);
        }
    }

    /// Keeps `value` as this round's repetition of slot `i`; in the last round, returns
    /// every round's.
    fn keep<T: Clone + 'static>(&self, i: usize, value: T) -> Vec<T> {
        let mut state = self.rounds.borrow_mut();
        let s = state.as_mut().expect("in rounds");
        let last = s.round + 1 == s.total;
        let slot = &mut s.slots[i];
        slot.reps.push(Box::new(value.clone()));
        if !last {
            return vec![value];
        }
        std::mem::take(&mut slot.reps)
            .into_iter()
            .map(|b| {
                *b.downcast::<T>()
                    .expect("the same measurement in every round")
            })
            .collect()
    }

    /// Runs `body(rep)` once to warm up (`rep` = `None`), then [`Harness::reps`] times,
    /// collecting what each repetition returns, with a bar. Inside [`Harness::rounds`]
    /// (interleaving), one repetition per round, the warm-up in the first round only, and
    /// the last round returns the repetitions of every round.
    pub fn repeat<T: Clone + 'static>(
        &self,
        what: &str,
        mut body: impl FnMut(Option<usize>) -> T,
    ) -> Vec<T> {
        if let Some((i, round, _)) = self.slot(what) {
            if round == 0 {
                body(None);
            }
            let v = body(Some(round));
            self.advance();
            return self.keep(i, v);
        }
        self.in_a_row(what, self.reps, body)
    }

    /// As [`Harness::repeat`], but at most `reps` repetitions, for a measurement too long to
    /// repeat as often as the rest. Inside [`Harness::rounds`] it is measured in the first
    /// `reps` rounds only (so its repetitions still pair with those of other rows measured
    /// the same way) and skipped in the later ones, which return the repetitions made so
    /// far; the last round returns them all. Outside rounds, `reps` back to back (at most
    /// [`Harness::reps`]).
    pub fn repeat_at_most<T: Clone + 'static>(
        &self,
        what: &str,
        reps: usize,
        mut body: impl FnMut(Option<usize>) -> T,
    ) -> Vec<T> {
        let reps = reps.clamp(1, self.reps);
        if let Some((i, round, total)) = self.slot(what) {
            if round < reps {
                if round == 0 {
                    body(None);
                }
                let v = body(Some(round));
                self.advance();
                return self.keep(i, v);
            }
            self.advance();
            let mut state = self.rounds.borrow_mut();
            let slot = &mut state.as_mut().expect("in rounds").slots[i];
            let kept = if round + 1 == total {
                std::mem::take(&mut slot.reps)
            } else {
                slot.reps
                    .iter()
                    .map(|b| {
                        Box::new(
                            b.downcast_ref::<T>()
                                .expect("the same measurement in every round")
                                .clone(),
                        ) as Box<dyn Any>
                    })
                    .collect()
            };
            return kept
                .into_iter()
                .map(|b| {
                    *b.downcast::<T>()
                        .expect("the same measurement in every round")
                })
                .collect();
        }
        self.in_a_row(what, reps, body)
    }

    /// Outside interleaved rounds: a warm-up (`body(None)`), then `reps` repetitions in a
    /// row, with a progress bar.
    fn in_a_row<T>(
        &self,
        what: &str,
        reps: usize,
        mut body: impl FnMut(Option<usize>) -> T,
    ) -> Vec<T> {
        let bar = self.bar(what, reps as u64 + 1);
        body(None);
        bar.inc(1);
        let out = (0..reps)
            .map(|i| {
                let v = body(Some(i));
                bar.inc(1);
                v
            })
            .collect();
        bar.finish_and_clear();
        self.bars.remove(&bar);
        out
    }

    /// Nanoseconds per operation: `body(ops)` runs `ops` operations; it runs once with
    /// `ops / 10` to warm up, then [`Harness::reps`] times, each timed and divided by `ops`.
    /// Inside [`Harness::rounds`] (interleaving), it warms up and times one repetition per
    /// round (the other measurements ran in between), and the last round returns the
    /// repetitions of every round.
    pub fn per_op(&self, what: &str, ops: u64, mut body: impl FnMut(u64)) -> Sample {
        let mut timed = |rep: Option<usize>| match rep {
            None => {
                body(ops.div_ceil(10));
                0.0
            }
            Some(_) => {
                let start = Instant::now();
                body(ops);
                start.elapsed().as_nanos() as f64 / ops as f64
            }
        };
        if let Some((i, round, _)) = self.slot(what) {
            timed(None);
            let v = timed(Some(round));
            self.advance();
            return Sample::from_reps(self.keep(i, v));
        }
        let reps = self.repeat(what, timed);
        Sample::from_reps(reps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_interleave_the_repetitions_and_the_last_round_gets_them_all() {
        let h = Harness::quiet(4, 1.0);
        let mut order = Vec::new();
        let mut round = 0.0;
        let (a, b, counted) = h.rounds(|| {
            round += 1.0;
            let a = h.repeat("a", |rep| {
                if rep.is_some() {
                    order.push("a");
                }
                round
            });
            let b = h.repeat("b", |rep| {
                if rep.is_some() {
                    order.push("b");
                }
                round * 10.0
            });
            (a, b, h.runs_counted())
        });
        assert_eq!(order, ["a", "b", "a", "b", "a", "b", "a", "b"]);
        assert_eq!(a, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(b, [10.0, 20.0, 30.0, 40.0]);
        assert_eq!(counted, 1, "no warm-up after the first round");
        // Outside rounds, or without interleaving: back to back.
        assert_eq!(h.repeat("c", |_| 1).len(), 4);
        let mut seq = Harness::quiet(3, 1.0);
        seq.interleave = false;
        let mut bodies = 0;
        let s = seq.rounds(|| {
            bodies += 1;
            seq.per_op("x", 10, |_| {})
        });
        assert_eq!((bodies, s.reps.len()), (1, 3));
    }

    #[test]
    fn a_measurement_repeated_at_most_n_times_runs_in_the_first_n_rounds() {
        let h = Harness::quiet(4, 1.0);
        let mut calls = Vec::new();
        let mut seen = Vec::new();
        let mut round = 0;
        let (few, all) = h.rounds(|| {
            round += 1;
            let few = h.repeat_at_most("few", 2, |rep| {
                calls.push(rep);
                round
            });
            seen.push(few.clone());
            (few, h.repeat("all", |_| round))
        });
        // A warm-up, then rounds 1 and 2; rounds 3 and 4 skip it and return what was made.
        assert_eq!(calls, [None, Some(0), Some(1)]);
        assert_eq!(seen, [vec![1], vec![2], vec![1, 2], vec![1, 2]]);
        assert_eq!((few, all), (vec![1, 2], vec![1, 2, 3, 4]));
        // Outside rounds: back to back, at most `reps`.
        assert_eq!(h.repeat_at_most("x", 9, |_| 0).len(), 4);
        assert_eq!(h.repeat_at_most("y", 2, |_| 0).len(), 2);
    }
}
