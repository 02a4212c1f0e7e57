//! The CPython runner: `cpython_runner.py` (embedded, written into the output folder) run
//! by a CPython 3.13 or newer, found the way the lab finds one (versioned names on PATH,
//! then pyenv's versions folder, newest first, then `python3`), or named by
//! `XINTERP_CPYTHON` (`none` skips the comparison).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// The script, embedded so that the binary is self-contained.
const SCRIPT: &str = include_str!("../cpython_runner.py");

/// The environment variable that names the CPython to use, or `none`.
pub const ENV: &str = "XINTERP_CPYTHON";

/// A CPython that passed the script's own check.
#[derive(Clone, Debug)]
pub struct Python {
    /// The executable.
    pub exe: PathBuf,
    /// `sys.version`, first word.
    pub version: String,
}

/// Which CPython to compare with, if any.
pub enum Found {
    /// This one.
    Python(Python),
    /// None: the comparison is skipped, for this reason.
    Skip(String),
}

/// One scenario as CPython ran it.
#[derive(Clone, Debug, Deserialize)]
pub struct Ran {
    /// Its name.
    pub name: String,
    /// One outcome per step.
    pub outcomes: Vec<String>,
    /// CPython died (a signal): where.
    pub crash: Option<String>,
    /// The script failed.
    pub runner_error: Option<String>,
    /// The end of the child's stderr when it did not exit cleanly.
    #[serde(default)]
    pub stderr: String,
}

#[derive(Deserialize)]
struct Output {
    scenarios: Vec<Ran>,
}

/// Writes the script into `dir` and gives its path.
pub fn write_script(dir: &Path) -> Result<PathBuf, String> {
    let script = dir.join("cpython_runner.py");
    std::fs::write(&script, SCRIPT).map_err(|e| format!("{}: {e}", script.display()))?;
    Ok(script)
}

/// Runs the script's `--check` with `exe`: its version if it is a CPython 3.13 or newer
/// with `_interpchannels` and `_interpreters`, or why not.
fn check(exe: &Path, script: &Path) -> Result<String, String> {
    let out = Command::new(exe)
        .arg(script)
        .arg("--check")
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let why = String::from_utf8_lossy(&out.stderr);
    let why = why.trim().lines().last().unwrap_or("no message");
    Err(format!("{}: {why}", exe.display()))
}

/// Finds the CPython to compare with. An `XINTERP_CPYTHON` path that does not work is an
/// error, not a skip: whoever set it expects a comparison.
pub fn find(script: &Path) -> Result<Found, String> {
    if let Some(forced) = std::env::var_os(ENV) {
        let forced = PathBuf::from(forced);
        if forced.as_os_str() == "none" {
            return Ok(Found::Skip(format!("{ENV}=none")));
        }
        return match check(&forced, script) {
            Ok(version) => Ok(Found::Python(Python {
                exe: forced,
                version,
            })),
            Err(why) => Err(format!("{ENV} names no usable CPython 3.13+: {why}")),
        };
    }
    let mut tried = Vec::new();
    for exe in xinterp_cpython_finder::candidates() {
        match check(&exe, script) {
            Ok(version) => return Ok(Found::Python(Python { exe, version })),
            // Not installed at all (a name not on PATH): not worth listing.
            Err(why) if why.contains("No such file") => {}
            Err(why) => tried.push(why),
        }
    }
    Ok(Found::Skip(format!(
        "no CPython 3.13 or newer found on PATH or under the pyenv versions folder{}",
        if tried.is_empty() {
            String::new()
        } else {
            format!(" (tried: {})", tried.join("; "))
        }
    )))
}

/// Runs every scenario of `files` (or only `only`) with `python`: by (file, name).
pub fn run(
    python: &Python,
    script: &Path,
    files: &[PathBuf],
    only: Option<&str>,
) -> Result<BTreeMap<String, Ran>, String> {
    let mut cmd = Command::new(&python.exe);
    cmd.arg(script).args(files);
    if let Some(name) = only {
        cmd.arg("--only").arg(name);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("{}: {e}", python.exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed ({}): {}",
            python.exe.display(),
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let parsed: Output = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{}: unreadable output: {e}", python.exe.display()))?;
    Ok(parsed
        .scenarios
        .into_iter()
        .map(|ran| (ran.name.clone(), ran))
        .collect())
}
