//! Checks made before any experiment runs, so that a run never fails at its end: the output
//! folder can be written and holds no earlier run, the trace file can be written, and the
//! parameters fit in memory.

use std::fs;
use std::io::Write as _;
use std::path::Path;

/// Makes `dir` ready for a run's results: creates it if needed, refuses a path that is not a
/// folder, a folder that already holds files (a new run is never mixed with an old one), and
/// a folder that cannot be written (a probe file is written and removed).
pub fn prepare_dir(dir: &Path, what: &str) -> Result<(), String> {
    let shown = dir.display();
    if dir.as_os_str().is_empty() {
        return Err(format!("{what}: the path is empty"));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(format!(
            "{what} {shown} exists and is not a folder; choose a folder"
        ));
    }
    if dir.is_dir() {
        let mut entries =
            fs::read_dir(dir).map_err(|e| format!("{what} {shown} cannot be read: {e}"))?;
        if entries.next().is_some() {
            return Err(format!(
                "{what} {shown} already holds files (an earlier run?); a new run is not \
                 written over it: choose another folder or empty this one"
            ));
        }
    }
    fs::create_dir_all(dir).map_err(|e| format!("{what} {shown} cannot be created: {e}"))?;
    let probe = dir.join(".xinterp-lab-write-probe");
    fs::File::create(&probe)
        .and_then(|mut f| f.write_all(b"probe"))
        .map_err(|e| format!("{what} {shown} cannot be written: {e}"))?;
    fs::remove_file(&probe).map_err(|e| format!("{what} {shown}: {e}"))?;
    Ok(())
}

/// Checks that `file` can be written (creating its folder if needed) without leaving it
/// behind: refuses a folder, an unwritable place, and an existing file (not overwritten).
pub fn check_file(file: &Path, what: &str) -> Result<(), String> {
    let shown = file.display();
    if file.as_os_str().is_empty() {
        return Err(format!("{what}: the path is empty"));
    }
    if file.is_dir() {
        return Err(format!("{what} {shown} is a folder; give a file name"));
    }
    if file.exists() {
        return Err(format!(
            "{what} {shown} already exists; it is not overwritten: choose another name"
        ));
    }
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .map_err(|e| format!("{what} {shown}: its folder cannot be created: {e}"))?;
    }
    fs::File::create(file).map_err(|e| format!("{what} {shown} cannot be written: {e}"))?;
    fs::remove_file(file).map_err(|e| format!("{what} {shown}: {e}"))?;
    Ok(())
}

/// Refuses a run whose largest working set (`bytes`, an estimate) would not fit in the
/// memory the machine has available (`available`), keeping a quarter of it free.
pub fn check_memory(bytes: u64, available: Option<u64>, what: &str) -> Result<(), String> {
    let Some(available) = available else {
        return Ok(());
    };
    let budget = available / 4 * 3;
    if bytes > budget {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        return Err(format!(
            "{what} would need about {:.1} GiB of memory; {:.1} GiB is available (at most \
             {:.1} GiB may be used): use smaller values",
            gib(bytes),
            gib(available),
            gib(budget)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_places_before_anything_runs() {
        let base = std::env::temp_dir().join(format!("xinterp-lab-output-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let dir = base.join("run");
        prepare_dir(&dir, "--out").unwrap();
        assert!(dir.is_dir() && fs::read_dir(&dir).unwrap().next().is_none());
        fs::write(dir.join("results.json"), "{}").unwrap();
        assert!(prepare_dir(&dir, "--out")
            .unwrap_err()
            .contains("already holds files"));
        assert!(prepare_dir(&dir.join("results.json"), "--out")
            .unwrap_err()
            .contains("not a folder"));
        assert!(prepare_dir(Path::new("/proc/xinterp-lab"), "--out").is_err());
        assert!(check_file(&dir, "--trace").unwrap_err().contains("folder"));
        assert!(check_file(&dir.join("results.json"), "--trace").is_err());
        check_file(&base.join("t/trace.json"), "--trace").unwrap();
        assert!(!base.join("t/trace.json").exists());
        assert!(check_memory(10 << 30, Some(8 << 30), "--views").is_err());
        check_memory(1 << 30, Some(8 << 30), "--views").unwrap();
        let _ = fs::remove_dir_all(&base);
    }
}
