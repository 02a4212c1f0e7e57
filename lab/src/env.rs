//! Where and how a run was made: the machine, the build, the command line, and the load on
//! the machine while each experiment ran (so that a run on a busy machine says so).

use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The provenance of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunInfo {
    /// When the run started, UTC, ISO 8601.
    pub started_utc: String,
    /// When it finished, UTC, ISO 8601 (empty until then).
    pub finished_utc: String,
    /// The lab's version.
    pub lab_version: String,
    /// The project's git commit, when built from a git checkout.
    pub git_commit: Option<String>,
    /// Whether that checkout had uncommitted changes to tracked files.
    pub git_dirty: Option<bool>,
    /// The compiler that built the lab (`rustc --version`).
    pub rustc: String,
    /// Whether debug assertions were on (timings of such a build mean little).
    pub debug_assertions: bool,
    /// The command line, program name first.
    pub command_line: Vec<String>,
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub arch: String,
    /// CPU model, as the OS names it.
    pub cpu_model: Option<String>,
    /// CPUs available to this process.
    pub cpus: usize,
    /// Memory the OS reported available at the start, in bytes.
    pub memory_available_bytes: Option<u64>,
    /// Host name.
    pub hostname: Option<String>,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn git(args: &[&str]) -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl RunInfo {
    /// Describes this machine, build and process, now.
    pub fn describe() -> Self {
        let commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
        let dirty = commit
            .as_ref()
            .and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]))
            .map(|s| !s.is_empty());
        RunInfo {
            started_utc: utc_now(),
            finished_utc: String::new(),
            lab_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: commit,
            git_dirty: dirty,
            rustc: env!("XINTERP_LAB_RUSTC").into(),
            debug_assertions: cfg!(debug_assertions),
            command_line: std::env::args().collect(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cpu_model: read("/proc/cpuinfo").and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            }),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_available_bytes: memory_available(),
            hostname: read("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()),
        }
    }
}

/// Memory available to this process, in bytes: the OS's `MemAvailable`, or the address-space
/// limit if that is lower. `None` where neither can be read.
pub fn memory_available() -> Option<u64> {
    let avail = read("/proc/meminfo").and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let limit = read("/proc/self/limits").and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("Max address space"))
            .and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
    });
    match (avail, limit) {
        (Some(a), Some(l)) => Some(a.min(l)),
        (a, l) => a.or(l),
    }
}

/// The current time, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The load on the machine while one experiment ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Load {
    /// The 1-minute load average before the experiment.
    pub loadavg_before: Option<f64>,
    /// The 1-minute load average after it.
    pub loadavg_after: Option<f64>,
    /// Share of all CPUs' time that other processes used while it ran (0 to 1): the whole
    /// machine's busy time less this process's (and its waited-for children's).
    pub others_cpu_share: Option<f64>,
    /// Wall-clock seconds it took.
    pub seconds: f64,
    /// Whether other processes used more than [`BUSY_SHARE`] of the CPUs meanwhile.
    pub busy: bool,
}

/// The share of CPU time used by other processes above which an experiment's machine counts
/// as busy.
pub const BUSY_SHARE: f64 = 0.10;

/// What [`Load`] is measured from: taken before an experiment, finished after it.
pub struct LoadProbe {
    loadavg: Option<f64>,
    machine_busy_ticks: Option<u64>,
    own_ticks: Option<u64>,
    started: Instant,
}

fn loadavg() -> Option<f64> {
    read("/proc/loadavg")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Busy ticks of all CPUs together (everything but idle and iowait).
fn machine_busy_ticks() -> Option<u64> {
    let text = read("/proc/stat")?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: u64 = v.iter().take(8).sum();
    Some(total - v.get(3)? - v.get(4).copied().unwrap_or(0))
}

/// This process's CPU ticks, with its waited-for children's (user + system).
fn own_ticks() -> Option<u64> {
    let text = read("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime are fields 14 to 17, i.e. 11 to 14 here.
    Some(f.get(11)? + f.get(12)? + f.get(13)? + f.get(14)?)
}

/// Clock ticks per second of `/proc/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

impl LoadProbe {
    /// Starts measuring.
    pub fn start() -> Self {
        LoadProbe {
            loadavg: loadavg(),
            machine_busy_ticks: machine_busy_ticks(),
            own_ticks: own_ticks(),
            started: Instant::now(),
        }
    }

    /// The load since [`LoadProbe::start`].
    pub fn finish(self) -> Load {
        let seconds = self.started.elapsed().as_secs_f64();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let others = match (
            self.machine_busy_ticks,
            machine_busy_ticks(),
            self.own_ticks,
            own_ticks(),
        ) {
            (Some(m0), Some(m1), Some(o0), Some(o1)) if seconds > 0.05 => {
                let others = m1.saturating_sub(m0) as f64 - o1.saturating_sub(o0) as f64;
                Some((others.max(0.0) / TICKS_PER_SEC / seconds / cpus).min(1.0))
            }
            _ => None,
        };
        Load {
            loadavg_before: self.loadavg,
            loadavg_after: loadavg(),
            others_cpu_share: others,
            seconds,
            busy: others.is_some_and(|s| s > BUSY_SHARE),
        }
    }
}

impl Load {
    /// One line: `load 0.4 -> 1.2, others used 3% of the CPUs over 2.1 s`.
    pub fn describe(&self) -> String {
        let avg = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.2}"));
        let others = self
            .others_cpu_share
            .map_or("an unknown share (too short to tell)".into(), |s| {
                format!("{:.0}%", s * 100.0)
            });
        format!(
            "load average {} before, {} after; other processes used {others} of the CPUs \
             over {}{}",
            avg(self.loadavg_before),
            avg(self.loadavg_after),
            if self.seconds < 1.0 {
                format!("{:.0} ms", self.seconds * 1000.0)
            } else {
                format!("{:.1} s", self.seconds)
            },
            if self.busy {
                " - BUSY MACHINE: these timings may be disturbed"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates_have_their_shape() {
        let now = super::utc_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'));
    }
}
