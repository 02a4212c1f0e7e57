//! The layering of `src/`, checked: every module sits in a layer, and a module may use
//! modules of its own layer or below. `UPWARD` lists edges allowed to point up (none today);
//! the check fails on any other upward edge, and on a listed edge that no longer exists, so
//! the list can only shrink. See `design/ARCHITECTURE.md`, "Layers".

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module is named by its first path segment under `src/`.
const LAYERS: &[&[&str]] = &[
    &["sync", "error", "counters", "message", "extensions"],
    &[
        "interp",
        "thread_state",
        "state_cache",
        "runtime",
        "release",
        "trace",
    ],
    &["object"],
    &["export"],
    &["proxy"],
    &["channel"],
    &["lifecycle"],
];

/// Edges that point up today, (from, to, the seam that would cut it). Empty: every need of a
/// lower layer for a higher one goes through a seam (the `Upper` vtable and `Extensions`
/// for the runtime and interpreters, the `ProxyBody` trait for the object layer).
const UPWARD: &[(&str, &str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The module a source file belongs to: its first path segment under `src/`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's text without its comment lines: a comment naming a module above is a pointer
/// for the reader, not a dependency.
fn code_of(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::name` a file mentions (in `use` lines and in paths alike).
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            refs.insert(name);
        }
    }
    // `use crate::{a, b::c}` groups: the leading name of each top-level entry.
    for (at, _) in text.match_indices("crate::{") {
        let group = &text[at + "crate::{".len()..];
        let (mut depth, mut entry) = (0usize, String::new());
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    insert_leading(&mut refs, &entry);
                    entry.clear();
                }
                _ if depth == 0 => entry.push(c),
                _ => {}
            }
        }
        insert_leading(&mut refs, &entry);
    }
    refs
}

/// Inserts the first identifier of `entry` (`b` of `b::c`), if any.
fn insert_leading(refs: &mut BTreeSet<String>, entry: &str) {
    let name: String = entry
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if !name.is_empty() {
        refs.insert(name);
    }
}

/// The edges between modules of `src/`, (from, to), from the files' text.
fn edges() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges = BTreeSet::new();
    for file in files {
        let Some(from) = module_of(&src, &file) else {
            continue;
        };
        if from == "lib" {
            continue; // the crate root re-exports everything
        }
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        for to in crate_refs(&code_of(&text)) {
            if to != from && layer_of(&to).is_some() {
                edges.insert((from.clone(), to));
            }
        }
    }
    edges
}

#[test]
#[cfg_attr(miri, ignore = "reads src/ from disk, which Miri's isolation forbids")]
fn every_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let unplaced: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(&src, f))
        .filter(|m| m != "lib" && layer_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules with no layer in tests/layering.rs: {unplaced:?}"
    );
}

#[test]
#[cfg_attr(miri, ignore = "reads src/ from disk, which Miri's isolation forbids")]
fn no_module_uses_one_above_it_but_the_listed_edges() {
    let found = edges();
    let upward: BTreeSet<(String, String)> = found
        .iter()
        .filter(|(from, to)| layer_of(from) < layer_of(to))
        .cloned()
        .collect();
    let listed: BTreeSet<(String, String)> = UPWARD
        .iter()
        .map(|(from, to, _)| (from.to_string(), to.to_string()))
        .collect();
    let new: Vec<_> = upward.difference(&listed).collect();
    assert!(
        new.is_empty(),
        "new upward edges (a module using one above its layer): {new:?}; cut them with a \
         seam, or put the module in the right layer"
    );
    let gone: Vec<_> = listed.difference(&upward).collect();
    assert!(
        gone.is_empty(),
        "upward edges listed in UPWARD that no longer exist (remove them from the list): \
         {gone:?}"
    );
}

#[test]
fn the_reader_finds_grouped_and_path_uses() {
    let text = "use crate::{error::Result, sync::{Arc, Mutex}};\nlet x = crate::proxy::f();";
    let refs = crate_refs(text);
    for name in ["error", "sync", "proxy"] {
        assert!(refs.contains(name), "{name} in {refs:?}");
    }
    assert!(
        !refs.contains("Arc") && !refs.contains("Result"),
        "{refs:?}"
    );
}
