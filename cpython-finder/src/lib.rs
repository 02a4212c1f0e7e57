//! Where the lab and the conformance runner look for a CPython to compare with, in one
//! place: versioned names on `PATH` (newest first), then pyenv's versions folder (newest
//! first, `$PYENV_ROOT` or `~/.pyenv`), then plain `python3`. Each caller checks the
//! candidates itself (its own script says whether one will do).

use std::cmp::Reverse;
use std::path::{Path, PathBuf};

/// Interpreters to try, best first.
pub fn candidates() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = ["python3.15", "python3.14", "python3.13"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")));
    if let Some(root) = root {
        found.extend(pyenv_versions(&root.join("versions")));
    }
    found.push(PathBuf::from("python3"));
    found
}

/// The `bin/python3` of every version folder under `versions`, newest first, comparing
/// version numbers, not strings (3.13.10 is newer than 3.13.9).
fn pyenv_versions(versions: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(versions) else {
        return Vec::new();
    };
    let mut found: Vec<(Vec<u64>, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let exe = e.path().join("bin/python3");
            exe.exists()
                .then(|| (version_key(&e.file_name().to_string_lossy()), exe))
        })
        .collect();
    found.sort_by_key(|(key, _)| Reverse(key.clone()));
    found.into_iter().map(|(_, exe)| exe).collect()
}

/// The numbers of a version folder name (`3.13.0` is `[3, 13, 0]`).
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(version_key("3.13.10") > version_key("3.13.9"));
        assert!(version_key("3.14.0") > version_key("3.13.12"));
    }

    #[test]
    fn pyenv_folders_come_newest_first_and_need_an_interpreter() {
        let dir = std::env::temp_dir().join(format!("finder-{}", std::process::id()));
        for (version, with_exe) in [("3.13.9", true), ("3.13.10", true), ("3.12.1", false)] {
            let bin = dir.join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            if with_exe {
                std::fs::write(bin.join("python3"), "").unwrap();
            }
        }
        let found = pyenv_versions(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|p| {
                p.components()
                    .rev()
                    .nth(2)
                    .unwrap()
                    .as_os_str()
                    .to_string_lossy()
                    .into()
            })
            .collect();
        assert_eq!(names, ["3.13.10", "3.13.9"]);
    }

    #[test]
    fn plain_python3_is_the_last_resort() {
        assert_eq!(candidates().last().unwrap(), Path::new("python3"));
    }
}
