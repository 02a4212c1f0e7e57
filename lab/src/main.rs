//! The xinterp lab: runs named experiments, prints tables, and writes machine-readable
//! results, plots and a report into one output folder; `compare A B` sets two runs side by
//! side. Every number is a median over repetitions with its 95% interval.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use xinterp_lab::experiments::{channel, pool, proxy, release, sharing, switch, trace};
use xinterp_lab::measure::Harness;
use xinterp_lab::results::params;
use xinterp_lab::{compare, env, output, stats, Run};

/// Runs xinterp experiments: each number a median with its 95% confidence interval, each
/// ratio measured in the same run.
///
/// Examples: `xinterp-lab` (the default suite), `xinterp-lab --quick release`,
/// `xinterp-lab compare lab-results/run-A lab-results/run-B`.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compare two runs: the ratio B / A of every measured quantity with its 95% interval,
    /// flagging changes beyond noise; writes compare.{json,csv,html}.
    Compare {
        /// Run A's folder (or its results.json).
        a: PathBuf,
        /// Run B's folder (or its results.json).
        b: PathBuf,
        /// Output folder for the comparison (default: lab-results/compare-<UTC time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Changes smaller than this share are not flagged even when their interval
        /// excludes 1 (0 to 1).
        #[arg(long, default_value_t = 0.05)]
        noise: f64,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Experiments to run, in this order; none means the default suite (all seven).
    #[arg(value_enum)]
    experiments: Vec<Name>,
    /// Shrink every experiment to 2% of its operations (a quick look, and what the tests
    /// run).
    #[arg(long)]
    quick: bool,
    /// Repetitions of each measurement (1 to 1000); intervals need at least 2.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=1000))]
    reps: u32,
    /// Output folder; must be new or empty (default: lab-results/run-<UTC time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write a Chrome trace-event JSON timeline (open in Perfetto) of which thread held
    /// which interpreter, during a short run of the pool workload; the file must not exist.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// release: receiving interpreters holding views of the owner's buffer (1 to 64).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    receivers: u32,
    /// release: threads dropping the views (1 to 64).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// release: share of the time the owner is held by another thread (0 to 0.95).
    #[arg(long, default_value_t = 0.5)]
    busy_share: f64,
    /// release: views each receiver holds at the bound (1 to 10,000,000; --quick shrinks
    /// it, but never below twice the bound in all).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    views: u32,
    /// release: the runtime's deferred bound: past this many queued calls a deferred
    /// release switches instead (1 to 1,000,000).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    deferred_limit: u32,
    /// release: the owner busy shares swept (comma-separated, each 0 to 0.95).
    #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,0.75,0.9")]
    sweep: Vec<f64>,
    /// channel: the CPython (3.13 or newer) to run as a peer (default: looked for on PATH
    /// and under the pyenv versions folder).
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Name {
    /// The cost of entering an interpreter and of switching to another and back,
    /// uncontended and contended, against a plain mutex.
    Switch,
    /// Send + receive + release per item by payload size: zero-copy buffers, copied
    /// bytes, crossbeam-channel, memcpy and CPython's own channels (questions 1).
    Channel,
    /// Proxy clone and drop (ours, one that enters the origin on every refcount change,
    /// a local object), forwarded calls and identity-cache hits and misses (questions 2-4).
    Proxy,
    /// Switch vs Deferred vs Adaptive releases to a busy owner, below and at the deferred
    /// bound, with a busy-share sweep and release latency (question 5).
    Release,
    /// A thread pool entering any interpreter vs one dedicated thread per interpreter
    /// (question 6).
    Pool,
    /// A dict handed to other interpreters by deep copy, proxy, freezing or moving: the
    /// hand-over, lookups in the receivers, switches, copies and memory (question 7).
    Sharing,
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

fn default_folder(kind: &str) -> PathBuf {
    let stamp: String = env::utc_now()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    PathBuf::from(format!("lab-results/{kind}-{stamp}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Compare { a, b, out, noise }) => run_compare(&a, &b, out, noise),
        None => run_experiments(cli.run),
    }
}

fn run_compare(a: &Path, b: &Path, out: Option<PathBuf>, noise: f64) -> ExitCode {
    if !(0.0..1.0).contains(&noise) {
        return fail(&format!("--noise must be between 0 and 1, got {noise}"));
    }
    let (ra, rb) = match (compare::load(a), compare::load(b)) {
        (Ok(ra), Ok(rb)) => (ra, rb),
        (Err(e), _) | (_, Err(e)) => return fail(&e),
    };
    let out = out.unwrap_or_else(|| default_folder("compare"));
    if let Err(e) = output::prepare_dir(&out, "--out") {
        return fail(&e);
    }
    let comparison = compare::compare(a, &ra, b, &rb, noise);
    comparison.print();
    match comparison.write(&out) {
        Ok(files) => {
            println!("\ncomparison written to {}:", out.display());
            for f in files {
                println!("  {}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: could not write to {}: {e}", out.display());
            ExitCode::from(1)
        }
    }
}

fn run_experiments(args: RunArgs) -> ExitCode {
    let mut names: Vec<Name> = Vec::new();
    for n in if args.experiments.is_empty() {
        vec![
            Name::Switch,
            Name::Channel,
            Name::Proxy,
            Name::Release,
            Name::Pool,
            Name::Sharing,
        ]
    } else {
        args.experiments.clone()
    } {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if !(0.0..=0.95).contains(&args.busy_share) {
        return fail(&format!(
            "--busy-share must be between 0 and 0.95, got {}",
            args.busy_share
        ));
    }
    if let Some(bad) = args.sweep.iter().find(|s| !(0.0..=0.95).contains(*s)) {
        return fail(&format!(
            "--sweep values must be between 0 and 0.95, got {bad}"
        ));
    }
    let scale = if args.quick { 0.02 } else { 1.0 };
    let release_params = release::Params {
        receivers: args.receivers as usize,
        threads: args.threads as usize,
        busy_share: args.busy_share,
        views_per_receiver: args.views as usize,
        deferred_limit: args.deferred_limit as usize,
        sweep: args.sweep.clone(),
    };
    let sharing_params = sharing::Params::default();
    // Everything that can be checked is checked before any experiment runs.
    if names.contains(&Name::Release) {
        if let Err(e) = output::check_memory(
            release_params.memory_bytes(scale),
            env::memory_available(),
            "release with these --receivers, --views and --deferred-limit",
        ) {
            return fail(&e);
        }
    }
    if let Some(python) = &args.python {
        if python.components().count() > 1 && !python.exists() {
            return fail(&format!("--python {} does not exist", python.display()));
        }
    }
    let out = args.out.clone().unwrap_or_else(|| default_folder("run"));
    if let Some(trace) = &args.trace {
        if let Err(e) = output::check_file(trace, "--trace") {
            return fail(&e);
        }
    }
    let settings = params([
        ("reps", args.reps.into()),
        ("quick", args.quick.into()),
        ("scale", scale.into()),
        (
            "experiments",
            serde_json::Value::Array(
                names
                    .iter()
                    .map(|n| format!("{n:?}").to_lowercase().into())
                    .collect(),
            ),
        ),
        ("confidence", stats::CONFIDENCE.into()),
        ("bootstrap_resamples", (stats::RESAMPLES as u64).into()),
        ("busy_machine_threshold", env::BUSY_SHARE.into()),
    ]);
    let mut run = match Run::with_settings(&out, settings) {
        Ok(run) => run,
        Err(e) => return fail(&e),
    };

    let h = Harness::new(args.reps as usize, scale);
    h.plan(names.len());
    for name in &names {
        h.begin(&format!("{name:?}").to_lowercase());
        run.experiment(&h, || match name {
            Name::Switch => switch::run(&h),
            Name::Channel => channel::run(&h, args.python.as_deref()),
            Name::Proxy => proxy::run(&h),
            Name::Release => release::run(&h, &release_params),
            Name::Pool => pool::run(&h),
            Name::Sharing => sharing::run(&h, &sharing_params),
        });
        h.end();
    }
    h.finish();
    let busy: Vec<String> = run
        .results()
        .experiments
        .iter()
        .filter(|e| e.load.as_ref().is_some_and(|l| l.busy))
        .map(|e| e.name.clone())
        .collect();

    let mut code = ExitCode::SUCCESS;
    match run.finish() {
        Ok(files) => {
            println!("\nresults written to {}:", out.display());
            for file in &files {
                println!("  {}", file.display());
            }
            if let Some(report) = files.iter().find(|f| f.ends_with("report.html")) {
                let shown = std::fs::canonicalize(report).unwrap_or(report.clone());
                println!("open {} to read the report", shown.display());
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            code = ExitCode::from(1);
        }
    }
    if !busy.is_empty() {
        println!(
            "warning: the machine was busy (other processes used more than {:.0}% of the \
             CPUs) while {} ran: those timings may be disturbed",
            env::BUSY_SHARE * 100.0,
            busy.join(", ")
        );
    }
    if let Some(path) = &args.trace {
        match trace::write(path) {
            Ok(n) => println!("trace: {n} events written to {}", path.display()),
            Err(e) => {
                eprintln!(
                    "error: could not write the trace to {}: {e}",
                    path.display()
                );
                code = ExitCode::from(1);
            }
        }
    }
    code
}
