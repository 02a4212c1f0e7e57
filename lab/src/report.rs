//! Results: the shapes written as JSON, and the terminal tables.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use xinterp::{Counters, Runtime};

use crate::measure::Sample;

#[derive(Debug, Serialize)]
pub struct Results {
    pub machine: Machine,
    pub reps: u32,
    pub quick: bool,
    pub experiments: Vec<Experiment>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub os: &'static str,
    pub arch: &'static str,
    pub cpus: usize,
    pub debug_assertions: bool,
}

impl Machine {
    pub fn describe() -> Self {
        Machine {
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            debug_assertions: cfg!(debug_assertions),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Experiment {
    pub name: String,
    pub question: String,
    pub params: Vec<(String, String)>,
    pub rows: Vec<Row>,
    pub ratios: Vec<Ratio>,
    /// What the reader must know about this run (a peer that was not available, say).
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub label: String,
    pub time: Sample,
    /// Counter deltas over the whole measurement (warm-up included), where they apply.
    pub counters: Vec<(String, u64)>,
}

impl Row {
    pub fn new(label: &str, time: Sample) -> Self {
        Row {
            label: label.into(),
            time,
            counters: Vec::new(),
        }
    }

    /// Attaches the runtime's counter deltas since `before` (non-zero ones only).
    pub fn counted(mut self, rt: &Runtime, before: &Counters) -> Self {
        self.counters = rt
            .counters()
            .since(before)
            .fields()
            .into_iter()
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        self
    }
}

#[derive(Debug, Serialize)]
pub struct Ratio {
    pub label: String,
    pub value: f64,
}

impl Ratio {
    /// `rows[num]` median over `rows[den]` median.
    pub fn of(rows: &[Row], num: usize, den: usize, label: &str) -> Self {
        Ratio {
            label: label.into(),
            value: rows[num].time.median_ns / rows[den].time.median_ns,
        }
    }
}

pub fn print_table(e: &Experiment) {
    println!("\n== {}: {}", e.name, e.question);
    for (k, v) in &e.params {
        println!("   {k}: {v}");
    }
    let width = e.rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
    println!(
        "   {:<width$}  {:>10}  {:>10}  {:>10}  counters",
        "", "median ns", "min", "max"
    );
    for r in &e.rows {
        let counters: Vec<String> = r.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "   {:<width$}  {:>10.1}  {:>10.1}  {:>10.1}  {}",
            r.label,
            r.time.median_ns,
            r.time.min_ns,
            r.time.max_ns,
            counters.join(" ")
        );
    }
    for ratio in &e.ratios {
        println!("   ratio  {:<55} {:>10.4}x", ratio.label, ratio.value);
    }
    for note in &e.notes {
        println!("   note   {note}");
    }
}

/// Writes `results.json` into `dir`, creating it, and returns the files written.
pub fn write(dir: &Path, results: &Results) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let json = dir.join("results.json");
    let text = serde_json::to_string_pretty(results).map_err(io::Error::other)?;
    fs::write(&json, text + "\n")?;
    let mut written = vec![json];
    written.extend(crate::render::write_all(dir, results)?);
    Ok(written)
}
