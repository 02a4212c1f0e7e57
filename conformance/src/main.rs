//! `xinterp-conformance`: the MemChannel's semantics checked against CPython's own
//! `_interpchannels`, scenario by scenario.
//!
//! Every scenario of `conformance/scenarios/*.toml` runs on xinterp, and each step's
//! outcome must be the one the scenario expects. When a CPython 3.13 or newer is found
//! (or named by `XINTERP_CPYTHON`), the same scenarios run on it through
//! `cpython_runner.py`, and every step where the two differ must be listed in
//! `conformance/deviations.toml`. The report goes to the terminal and, as `conformance.md`
//! and `conformance.json`, into `lab-results/conformance-<unix seconds>/` (or `--out`).
//! The exit status is 0 when nothing fails.

mod compare;
mod cpython;
mod deviations;
mod report;
mod scenario;
mod xinterp_side;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;

use crate::cpython::Found;
use crate::deviations::Deviations;
use crate::report::Report;

/// Checks the MemChannel against CPython's own channels, scenario by scenario.
///
/// The CPython comparison runs when a CPython 3.13 or newer is found on PATH or under the
/// pyenv versions folder; XINTERP_CPYTHON=/path/to/python3 names one, and
/// XINTERP_CPYTHON=none skips the comparison (the xinterp runner always runs).
#[derive(Parser)]
#[command(name = "xinterp-conformance")]
struct Args {
    /// Output folder (default: `lab-results/conformance-<unix seconds>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The scenario folder.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))]
    scenarios: PathBuf,
    /// The deviation file.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/deviations.toml"))]
    deviations: PathBuf,
    /// Run only this scenario.
    #[arg(long)]
    only: Option<String>,
    /// Open differences (listed as `[[open]]`) fail the run too.
    #[arg(long)]
    strict: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xinterp-conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs everything; `Ok(false)` when a scenario fails.
fn run(args: Args) -> Result<bool, String> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("lab-results/conformance-{secs}")));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    let mut scenarios = scenario::load_dir(&args.scenarios)?;
    let devs = Deviations::load(&args.deviations, &scenarios)?;
    if let Some(only) = &args.only {
        scenarios.retain(|s| &s.name == only);
        if scenarios.is_empty() {
            return Err(format!("no scenario named {only}"));
        }
    }

    // CPython first: it runs in subprocesses while nothing else does.
    let script = cpython::write_script(&out)?;
    let (python, skipped) = match cpython::find(&script)? {
        Found::Python(p) => (Some(p), None),
        Found::Skip(why) => (None, Some(why)),
    };
    let ran = match &python {
        Some(p) => {
            println!(
                "CPython {} ({}): running the scenarios...",
                p.version,
                p.exe.display()
            );
            let mut files: Vec<PathBuf> = scenarios
                .iter()
                .map(|s| args.scenarios.join(&s.file))
                .collect();
            files.dedup();
            Some(cpython::run(p, &script, &files, args.only.as_deref())?)
        }
        None => None,
    };

    println!("xinterp: running the scenarios...");
    let mut results = Vec::new();
    for s in &scenarios {
        let outcomes = xinterp_side::run(s);
        let theirs = match &ran {
            Some(by_name) => Some(
                by_name
                    .get(&s.name)
                    .ok_or_else(|| format!("CPython's runner did not report {}", s.name))?,
            ),
            None => None,
        };
        results.push(compare::scenario(s, &outcomes, theirs, &devs));
    }

    let report = Report {
        unix_seconds: secs,
        cpython: python
            .as_ref()
            .map(|p| (p.version.clone(), p.exe.display().to_string())),
        cpython_skipped: skipped,
        strict: args.strict,
        scenarios: results,
        deviations: &devs.all,
    };
    println!();
    print!("{}", report.terminal());
    report.write(&out)?;
    println!(
        "report: {} and conformance.json",
        out.join("conformance.md").display()
    );
    Ok(report.summary().failing.is_empty())
}
