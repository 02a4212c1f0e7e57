//! The xinterp lab as a library: measure, summarise with intervals, and write the same
//! JSON, CSV, plots and HTML report as the lab's built-in experiments.
//!
//! - [`measure::Harness`]: repetitions after a warm-up, with a progress bar per measurement
//!   ([`measure::Harness::per_op`] for ns per operation, [`measure::Harness::repeat`] for
//!   anything else).
//! - [`stats`]: medians, 95% intervals of a median (order statistics) and of a ratio of medians, and
//!   printing to the precision an interval supports.
//! - [`results`]: the shapes written to `results.json` ([`results::Results`],
//!   [`results::Experiment`], [`results::Row`], [`results::Metric`], [`results::Ratio`] with
//!   its [`results::Verdict`]).
//! - [`env`](mod@env): provenance ([`env::RunInfo`]) and the machine load during an experiment
//!   ([`env::LoadProbe`]).
//! - [`plot`]: charts drawn with plotters; [`render`]: CSV, tables and the HTML report;
//!   [`output`]: checks made before anything runs; [`compare`]: two runs side by side.
//! - [`experiments`]: the built-in experiments, written with the same API.
//!
//! An experiment of one's own, end to end (see `lab/examples/own_experiment.rs`):
//!
//! ```no_run
//! use xinterp_lab::{measure::Harness, results::{params, Experiment, Row}, Run};
//!
//! let h = Harness::new(7, 1.0);
//! let mut run = Run::start(std::path::Path::new("my-results"))?;
//! run.experiment(&h, || {
//!     let mut e = Experiment::new("mine", "What does a Vec push cost?", params([]));
//!     let sample = h.per_op("Vec push", 100_000, |n| {
//!         let mut v = Vec::new();
//!         for i in 0..n {
//!             v.push(std::hint::black_box(i));
//!         }
//!     });
//!     e.push(Row::new("Vec push", sample));
//!     e
//! });
//! let files = run.finish()?;
//! # Ok::<(), String>(())
//! ```

pub mod compare;
pub mod env;
pub mod experiments;
pub mod measure;
pub mod output;
pub mod plot;
pub mod render;
pub mod results;
pub mod stats;

use std::path::{Path, PathBuf};

use results::{Experiment, Params, Results};

/// A run in progress: its output folder (checked before anything runs), its provenance,
/// and the experiments done so far, each with the machine load while it ran.
pub struct Run {
    dir: PathBuf,
    results: Results,
}

impl Run {
    /// Checks `dir` (see [`output::prepare_dir`]) and starts a run with no settings.
    pub fn start(dir: &Path) -> Result<Self, String> {
        Self::with_settings(dir, Params::new())
    }

    /// Checks `dir` and starts a run with run-wide `settings`.
    pub fn with_settings(dir: &Path, settings: Params) -> Result<Self, String> {
        output::prepare_dir(dir, "output folder")?;
        Ok(Run {
            dir: dir.to_path_buf(),
            results: Results {
                schema: results::SCHEMA.into(),
                run: env::RunInfo::describe(),
                settings,
                experiments: Vec::new(),
            },
        })
    }

    /// Runs one experiment (`body` builds it) in rounds, one per repetition, so that the
    /// repetitions of its measurements interleave (see [`measure`]; the body must make the
    /// same measurements in every round), records the machine load meanwhile, prints its
    /// table and keeps it.
    pub fn experiment(&mut self, h: &measure::Harness, body: impl FnMut() -> Experiment) {
        let probe = env::LoadProbe::start();
        let mut e = h.rounds(body);
        e.load = Some(probe.finish());
        h.suspend(|| render::print_table(&e));
        self.results.experiments.push(e);
    }

    /// The results so far.
    pub fn results(&self) -> &Results {
        &self.results
    }

    /// The output folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes every output file and returns their paths.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, String> {
        self.results.run.finished_utc = env::utc_now();
        render::write_all(&self.dir, &self.results)
            .map_err(|e| format!("could not write results to {}: {e}", self.dir.display()))
    }
}
