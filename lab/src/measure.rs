//! Measuring: a [`Harness`] repeats a measurement (after a warm-up), keeps every repetition
//! and shows a progress bar per measurement, with an estimate of the time left.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::stats::Sample;

/// Runs measurements: repetitions, warm-up and progress.
pub struct Harness {
    /// Repetitions of each measurement.
    pub reps: usize,
    /// How much of each experiment's full size to run (1 = full, 0.02 = `--quick`).
    pub scale: f64,
    bars: MultiProgress,
    overall: ProgressBar,
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
            bars,
            overall,
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

    /// Runs `body(rep)` once to warm up (`rep` = `None`), then [`Harness::reps`] times,
    /// collecting what each repetition returns, with a bar.
    pub fn repeat<T>(&self, what: &str, mut body: impl FnMut(Option<usize>) -> T) -> Vec<T> {
        let bar = self.bar(what, self.reps as u64 + 1);
        body(None);
        bar.inc(1);
        let out = (0..self.reps)
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
    pub fn per_op(&self, what: &str, ops: u64, mut body: impl FnMut(u64)) -> Sample {
        let reps = self.repeat(what, |rep| match rep {
            None => {
                body(ops.div_ceil(10));
                0.0
            }
            Some(_) => {
                let start = Instant::now();
                body(ops);
                start.elapsed().as_nanos() as f64 / ops as f64
            }
        });
        Sample::from_reps(reps)
    }
}
