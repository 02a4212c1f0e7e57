//! The CPython peer: CPython 3.13+'s own `_interpchannels`, run as a subprocess from the
//! same lab run. Found on PATH or under the pyenv versions folder; when none is found (or it
//! fails), the lab says so and reports no number for it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::stats::Sample;

/// The measuring script, embedded so the lab is self-contained.
const SCRIPT: &str = include_str!("../../peers/cpython_channels.py");

#[derive(Deserialize)]
struct Output {
    python: String,
    results: Vec<PeerRow>,
}

/// One measurement of the peer script: a size, a kind, ns per item for each repetition.
#[derive(Deserialize)]
struct PeerRow {
    size: usize,
    kind: String,
    ns: Vec<f64>,
}

/// What the peer measured: per (size, "buffer" | "bytes"), ns per item.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The CPython version that ran.
    pub version: String,
    /// The interpreter's path.
    pub python: PathBuf,
    samples: Vec<(usize, String, Sample)>,
}

impl Peer {
    /// The sample at `size` for `kind` (`buffer` or `bytes`).
    pub fn sample(&self, size: usize, kind: &str) -> Option<&Sample> {
        self.samples
            .iter()
            .find(|(s, k, _)| *s == size && k == kind)
            .map(|(_, _, sample)| sample)
    }
}

impl Peer {
    /// One peer from several runs (one repetition each, made in the lab's rounds): every
    /// (size, kind)'s repetitions in the order of the runs.
    pub fn merge(runs: Vec<Peer>) -> Option<Peer> {
        let mut runs = runs.into_iter();
        let mut peer = runs.next()?;
        for run in runs {
            for (size, kind, sample) in run.samples {
                match peer
                    .samples
                    .iter_mut()
                    .find(|(s, k, _)| *s == size && *k == kind)
                {
                    Some((_, _, mine)) => {
                        let mut reps = std::mem::take(&mut mine.reps);
                        reps.extend(sample.reps);
                        *mine = Sample::from_reps(reps);
                    }
                    None => peer.samples.push((size, kind, sample)),
                }
            }
        }
        Some(peer)
    }
}

/// Runs the peer with `reps` repetitions at `sizes` (with `python`, else the first CPython
/// 3.13+ found), or says why it could not. The script is written to a temporary folder.
pub fn run(python: Option<&Path>, reps: usize, sizes: &[usize]) -> Result<Peer, String> {
    let dir = std::env::temp_dir().join(format!("xinterp-lab-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let script = dir.join("cpython_channels.py");
    std::fs::write(&script, SCRIPT)
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    let found = run_script(&script, python, reps, sizes);
    let _ = std::fs::remove_dir_all(&dir);
    found
}

fn run_script(
    script: &Path,
    python: Option<&Path>,
    reps: usize,
    sizes: &[usize],
) -> Result<Peer, String> {
    let mut tried = Vec::new();
    let candidates = match python {
        Some(p) => vec![p.to_path_buf()],
        None => xinterp_cpython_finder::candidates(),
    };
    for python in candidates {
        let mut cmd = Command::new(&python);
        cmd.arg(script).arg(reps.to_string());
        cmd.args(sizes.iter().map(|s| s.to_string()));
        let Ok(output) = cmd.output() else {
            tried.push(format!("{} (not found)", python.display()));
            continue; // not installed
        };
        if !output.status.success() {
            tried.push(python.display().to_string());
            continue; // older than 3.13: no _interpchannels
        }
        let parsed: Output = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("{}: unreadable output: {e}", python.display()))?;
        let samples = parsed
            .results
            .into_iter()
            .filter(|r| !r.ns.is_empty())
            .map(|r| (r.size, r.kind, Sample::from_reps(r.ns)))
            .collect();
        return Ok(Peer {
            version: parsed.python,
            python,
            samples,
        });
    }
    Err(format!(
        "no CPython 3.13 or newer found on PATH or under the pyenv versions folder (tried: {})",
        if tried.is_empty() {
            "none ran".to_string()
        } else {
            tried.join(", ")
        }
    ))
}
