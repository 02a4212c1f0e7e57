//! The xinterp lab: runs named experiments, prints tables, and writes machine-readable
//! results into one output folder. Every comparison is a ratio of medians measured in the
//! same run.

mod channel;
mod cpython;
mod measure;
mod pool;
mod proxy;
mod release;
mod render;
mod report;
mod switch;
mod trace;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};

use report::{Experiment, Machine, Results};

/// Runs xinterp experiments and reports ratios against baselines measured in the same run.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Experiments to run; none means the default suite.
    #[arg(value_enum)]
    experiments: Vec<Name>,
    /// Shrink every experiment (a quick look, and what the tests run).
    #[arg(long)]
    quick: bool,
    /// Repetitions of each measurement; tables show the median and the spread.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=1000))]
    reps: u32,
    /// Output folder (default: lab-results/run-<unix seconds>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write a Chrome trace-event JSON timeline (open in Perfetto) of which thread held
    /// which interpreter, during a short run of the pool workload.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// release: receiving interpreters holding views of the owner's buffer.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    receivers: u32,
    /// release: threads dropping the views.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// release: share of the time the owner is held by another thread (0 to 0.95).
    #[arg(long, default_value_t = 0.5)]
    busy_share: f64,
    /// release: views each receiver holds (shrunk by --quick).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..))]
    views: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Name {
    /// Send + receive + release per item by payload size: zero-copy buffers, copied
    /// bytes, crossbeam-channel and memcpy.
    Channel,
    /// Proxy clone and drop, forwarded calls and identity-cache hits and misses, with the
    /// switches counted.
    Proxy,
    /// A thread pool entering any interpreter vs one dedicated thread per interpreter.
    Pool,
    /// Switch vs Deferred vs Adaptive releases to a busy owner from many receivers.
    Release,
    /// The cost of entering an interpreter and of switching to another and back,
    /// uncontended and contended, against a plain mutex.
    Switch,
}

fn main() {
    let cli = Cli::parse();
    let names = if cli.experiments.is_empty() {
        vec![
            Name::Switch,
            Name::Channel,
            Name::Proxy,
            Name::Release,
            Name::Pool,
        ]
    } else {
        cli.experiments.clone()
    };
    let out = cli.out.clone().unwrap_or_else(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from(format!("lab-results/run-{secs}"))
    });
    let scale = if cli.quick { 0.02 } else { 1.0 };
    if !(0.0..=0.95).contains(&cli.busy_share) {
        eprintln!(
            "error: --busy-share must be between 0 and 0.95, got {}",
            cli.busy_share
        );
        std::process::exit(2);
    }
    let release_params = release::Params {
        receivers: cli.receivers as usize,
        threads: cli.threads as usize,
        busy_share: cli.busy_share,
        views_per_receiver: cli.views as usize,
    };

    let mut experiments: Vec<Experiment> = Vec::new();
    let progress = indicatif::ProgressBar::new(names.len() as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} experiments: {msg} ({elapsed})",
        )
        .expect("a valid template"),
    );
    for name in names {
        progress.set_message(format!("{name:?}").to_lowercase());
        let experiment = match name {
            Name::Switch => switch::run(cli.reps as usize, scale),
            Name::Channel => channel::run(cli.reps as usize, scale, &out),
            Name::Proxy => proxy::run(cli.reps as usize, scale),
            Name::Release => release::run(cli.reps as usize, scale, release_params),
            Name::Pool => pool::run(cli.reps as usize, scale),
        };
        progress.suspend(|| report::print_table(&experiment));
        experiments.push(experiment);
        progress.inc(1);
    }
    progress.finish_and_clear();

    let results = Results {
        machine: Machine::describe(),
        reps: cli.reps,
        quick: cli.quick,
        experiments,
    };
    if let Some(path) = &cli.trace {
        match trace::write(path) {
            Ok(n) => println!("\ntrace: {n} events written to {}", path.display()),
            Err(e) => {
                eprintln!(
                    "error: could not write the trace to {}: {e}",
                    path.display()
                );
                std::process::exit(1);
            }
        }
    }
    match report::write(&out, &results) {
        Ok(files) => {
            println!("\nresults written to {}:", out.display());
            for file in files {
                println!("  {}", file.display());
            }
        }
        Err(e) => {
            eprintln!("error: could not write results to {}: {e}", out.display());
            std::process::exit(1);
        }
    }
}
