//! The shape of a run's results, as written to `results.json` and read back by `compare`.
//!
//! A [`Results`] holds the run's provenance ([`RunInfo`]), its settings and its
//! [`Experiment`]s. An experiment has typed parameters, [`Row`]s (one per measurement, each
//! with one or more [`Metric`]s over repetitions, a median and a 95% interval), [`Ratio`]s
//! between rows with their own interval and verdict, answers to the lab's questions, notes,
//! and the machine load while it ran ([`Load`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::env::{Load, RunInfo};
use crate::plot::Chart;
use crate::stats::{paired_ratio_interval, ratio_interval, with_interval, Sample};

/// Typed parameters, in the order they were given: name to number, string or bool.
pub type Params = serde_json::Map<String, Value>;

/// Builds [`Params`] from `(name, value)` pairs: `params([("reps", 7.into())])`.
pub fn params<const N: usize>(pairs: [(&str, Value); N]) -> Params {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The schema name and version written in every `results.json`.
pub const SCHEMA: &str = "xinterp-lab/results/2";

/// A whole run.
#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    /// [`SCHEMA`].
    pub schema: String,
    /// Where, when and how the run was made.
    pub run: RunInfo,
    /// Run-wide settings (repetitions, quick, ...), typed.
    pub settings: Params,
    /// The experiments, in the order they ran.
    pub experiments: Vec<Experiment>,
}

/// What an answer shows in place of a figure its run does not have: a ratio, metric or
/// counter it cites by a name nothing in the run carries (a label renamed on one side
/// only). The quick-suite test fails on it, so no answer cites nothing quietly.
pub const MISSING: &str = "(figure missing)";

/// One experiment's results.
#[derive(Debug, Serialize, Deserialize)]
pub struct Experiment {
    /// Short name (`switch`, `release`, ...): also the plot file names' stem.
    pub name: String,
    /// The question it answers.
    pub question: String,
    /// Its parameters, typed.
    pub params: Params,
    /// One row per measurement.
    pub rows: Vec<Row>,
    /// Ratios between rows, with intervals.
    pub ratios: Vec<Ratio>,
    /// Answers to the lab's numbered questions: `(question number, sentence)`.
    pub answers: Vec<Answer>,
    /// What the reader must know about this run (a peer that was not available, say).
    pub notes: Vec<String>,
    /// Machine load before and after, and whether the machine was busy.
    pub load: Option<Load>,
    /// Charts beyond the default one (a dot plot of every row's first metric).
    #[serde(skip)]
    pub charts: Vec<Chart>,
}

/// An answer to one of the lab's questions, naming its measurement and parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Answer {
    /// The question's number (1 to 7 for the built-in questions).
    pub question: u32,
    /// The sentence.
    pub text: String,
}

impl Experiment {
    /// An experiment with no rows yet.
    pub fn new(name: &str, question: &str, params: Params) -> Self {
        Experiment {
            name: name.into(),
            question: question.into(),
            params,
            rows: Vec::new(),
            ratios: Vec::new(),
            answers: Vec::new(),
            notes: Vec::new(),
            load: None,
            charts: Vec::new(),
        }
    }

    /// Adds `row` and returns its index.
    pub fn push(&mut self, row: Row) -> usize {
        self.rows.push(row);
        self.rows.len() - 1
    }

    /// The row labelled `label`.
    pub fn row(&self, label: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.label == label)
    }

    /// Adds the ratio of rows `num` over `den` (first metric, `target` 1) and returns it.
    pub fn ratio(&mut self, label: &str, num: usize, den: usize) -> &Ratio {
        let r = Ratio::of(&self.rows, &[num], &[den], label, 1.0);
        self.ratios.push(r);
        self.ratios.last().expect("just pushed")
    }

    /// The ratio labelled `label`.
    pub fn find_ratio(&self, label: &str) -> Option<&Ratio> {
        self.ratios.iter().find(|r| r.label == label)
    }

    /// The ratio labelled `label` as an answer cites it, or [`MISSING`].
    pub fn show_ratio(&self, label: &str) -> String {
        self.find_ratio(label)
            .map_or_else(|| MISSING.to_string(), Ratio::show)
    }

    /// Adds an answer to question `question`.
    pub fn answer(&mut self, question: u32, text: impl Into<String>) {
        self.answers.push(Answer {
            question,
            text: text.into(),
        });
    }
}

/// One measurement: a label, its own parameters (payload size, strategy, ...), one or more
/// metrics over the same repetitions, and event counts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// What was measured, as printed.
    pub label: String,
    /// Parameters of this row that are not the experiment's (typed).
    pub params: Params,
    /// The quantities measured; the first is the row's headline.
    pub metrics: Vec<Metric>,
    /// Event counts (counter deltas, per operation or per repetition as their names say).
    pub counters: Params,
}

impl Row {
    /// A row whose headline metric is time per operation in ns.
    pub fn new(label: &str, time_ns: Sample) -> Self {
        Row {
            label: label.into(),
            params: Params::new(),
            metrics: vec![Metric::new("time per operation", "ns", time_ns)],
            counters: Params::new(),
        }
    }

    /// With `metrics` instead (the first is the headline).
    pub fn with_metrics(label: &str, metrics: Vec<Metric>) -> Self {
        assert!(!metrics.is_empty(), "a row needs a metric");
        Row {
            label: label.into(),
            params: Params::new(),
            metrics,
            counters: Params::new(),
        }
    }

    /// With parameter `name` = `value`.
    pub fn param(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// With counter `name` = `value`.
    pub fn count(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.counters.insert(name.into(), value.into());
        self
    }

    /// The headline metric.
    pub fn headline(&self) -> &Metric {
        &self.metrics[0]
    }

    /// The metric named `name`.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The metric `name` as an answer cites it, or [`MISSING`].
    pub fn show_metric(&self, name: &str) -> String {
        self.metric(name)
            .map_or_else(|| MISSING.to_string(), Metric::show)
    }

    /// Attaches the runtime's counter deltas since `before`, divided by `ops` (operations
    /// over the whole measurement, warm-up included): events per operation, non-zero only.
    pub fn counted_per_op(
        mut self,
        rt: &xinterp::Runtime,
        before: &xinterp::Counters,
        ops: u64,
    ) -> Self {
        for (k, v) in rt.counters().since(before).fields() {
            if v > 0 {
                let per_op = v as f64 / ops.max(1) as f64;
                let rounded = (per_op * 1000.0).round() / 1000.0;
                if rounded > 0.0 {
                    self.counters
                        .insert(format!("{k}_per_op"), Value::from(rounded));
                }
            }
        }
        self
    }
}

/// One quantity over repetitions, with its unit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Metric {
    /// What it is (`time per operation`, `release latency p99`, ...).
    pub name: String,
    /// Its unit (`ns`, `GB/s`, ...).
    pub unit: String,
    /// The repetitions and their statistics.
    #[serde(flatten)]
    pub sample: Sample,
}

impl Metric {
    /// A metric.
    pub fn new(name: &str, unit: &str, sample: Sample) -> Self {
        Metric {
            name: name.into(),
            unit: unit.into(),
            sample,
        }
    }

    /// Its median and interval to the precision the interval supports, with its unit.
    pub fn show(&self) -> String {
        let s = &self.sample;
        let suffix = if self.unit == "%" {
            "%".to_string()
        } else {
            format!(" {}", self.unit)
        };
        if self.unit == "ns" {
            crate::stats::ns_with_interval(s)
        } else if !s.has_interval() {
            format!(
                "{}{suffix} (one repetition)",
                crate::stats::fixed(s.median, 3)
            )
        } else {
            with_interval(s.median, s.ci_low, s.ci_high, &suffix)
        }
    }
}

/// How a ratio's interval lies against its target.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The whole interval lies above the target.
    Above,
    /// The whole interval lies below the target.
    Below,
    /// The interval holds the target: this run cannot tell.
    Inconclusive,
}

impl Verdict {
    /// Where the interval `[low, high]` lies against `target`.
    pub fn of(low: f64, high: f64, target: f64) -> Self {
        if low > target {
            Verdict::Above
        } else if high < target {
            Verdict::Below
        } else {
            Verdict::Inconclusive
        }
    }
}

/// A ratio between rows of one experiment (the sum of the numerator rows' first metric over
/// the sum of the denominator rows'), with its 95% interval and its verdict
/// against `target`. When every row has the same number of repetitions (the harness ran
/// them round-robin, repetition `i` of each in round `i`), the ratio is paired: the median
/// of the per-repetition ratios, with the order-statistic interval of that median, so that drift
/// of the machine common to both rows cancels; otherwise it is the ratio of the medians,
/// each row resampled on its own.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ratio {
    /// What it compares.
    pub label: String,
    /// Labels of the numerator rows (summed).
    pub num: Vec<String>,
    /// Labels of the denominator rows (summed).
    pub den: Vec<String>,
    /// The ratio: the median of the per-repetition ratios when paired, else the ratio of
    /// the medians.
    pub value: f64,
    /// Lower end of its 95% interval.
    pub ci_low: f64,
    /// Upper end of its 95% interval.
    pub ci_high: f64,
    /// What the ratio is compared with (1 unless said otherwise).
    pub target: f64,
    /// Whether the interval lies above, below or across the target.
    pub verdict: Verdict,
}

impl Ratio {
    /// The ratio of `rows[num...]` over `rows[den...]` (first metrics, summed), compared
    /// with `target`.
    pub fn of(rows: &[Row], num: &[usize], den: &[usize], label: &str, target: f64) -> Self {
        let reps = |ix: &[usize]| -> Vec<Vec<f64>> {
            ix.iter()
                .map(|&i| rows[i].headline().sample.reps.clone())
                .collect()
        };
        let (n, d) = (reps(num), reps(den));
        let n_refs: Vec<&[f64]> = n.iter().map(Vec::as_slice).collect();
        let d_refs: Vec<&[f64]> = d.iter().map(Vec::as_slice).collect();
        // Rows measured in the same rounds (the harness interleaves them) pair up by
        // repetition; otherwise each row's repetitions are resampled on their own.
        let (value, ci_low, ci_high) = paired_ratio_interval(&n_refs, &d_refs)
            .unwrap_or_else(|| ratio_interval(&n_refs, &d_refs));
        let few = n.iter().chain(&d).any(|r| r.len() < 2);
        let labels = |ix: &[usize]| ix.iter().map(|&i| rows[i].label.clone()).collect();
        Ratio {
            label: label.into(),
            num: labels(num),
            den: labels(den),
            value,
            ci_low,
            ci_high,
            target,
            verdict: if few {
                Verdict::Inconclusive
            } else {
                Verdict::of(ci_low, ci_high, target)
            },
        }
    }

    /// `1.3x (95% CI 1.1 to 1.6x)`, plus `, inconclusive` when the interval holds the
    /// target.
    pub fn show(&self) -> String {
        if self.verdict == Verdict::Inconclusive && self.ci_low == self.ci_high {
            return format!(
                "{}x (no interval: too few repetitions), inconclusive",
                crate::stats::fixed(self.value, 3)
            );
        }
        let mut text = with_interval(self.value, self.ci_low, self.ci_high, "x");
        if self.verdict == Verdict::Inconclusive {
            text.push_str(&format!(
                ", inconclusive (the interval holds {})",
                self.target
            ));
        }
        text
    }
}
