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
    results: Vec<Result>,
}

#[derive(Deserialize)]
struct Result {
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

/// Interpreters to try, best first: versioned names on PATH, then the pyenv versions folder
/// (newest first), then plain `python3`.
fn candidates() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = ["python3.15", "python3.14", "python3.13"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")));
    if let Some(root) = root {
        if let Ok(entries) = std::fs::read_dir(root.join("versions")) {
            let mut versions: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path().join("bin/python3"))
                .filter(|p| p.exists())
                .collect();
            // Newest first, comparing version numbers, not strings (3.13.10 > 3.13.9).
            let key = |p: &PathBuf| -> Vec<u64> {
                p.parent()
                    .and_then(|b| b.parent())
                    .and_then(|v| v.file_name())
                    .map(|v| {
                        v.to_string_lossy()
                            .split(|c: char| !c.is_ascii_digit())
                            .filter_map(|n| n.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            versions.sort_by_key(|p| std::cmp::Reverse(key(p)));
            found.extend(versions);
        }
    }
    found.push(PathBuf::from("python3"));
    found
}

/// Runs the peer with `reps` repetitions at `sizes` (with `python`, else the first CPython
/// 3.13+ found), or says why it could not. The script is written to a temporary folder.
pub fn run(
    python: Option<&Path>,
    reps: usize,
    sizes: &[usize],
) -> std::result::Result<Peer, String> {
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
) -> std::result::Result<Peer, String> {
    let mut tried = Vec::new();
    let candidates = match python {
        Some(p) => vec![p.to_path_buf()],
        None => candidates(),
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
