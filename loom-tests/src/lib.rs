//! Shared by the loom models in `tests/` (one file per race). Compiled only with
//! `--cfg loom`.

#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `body` under `loom::model` and prints how many interleavings loom explored, so a
/// model that explores only one (a sign that it exercises no race) shows in the log.
pub fn model(name: &str, body: impl Fn() + Sync + Send + 'static) {
    // A plain std atomic on purpose: it counts executions from outside the model.
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&runs);
    loom::model(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        body();
    });
    println!(
        "loom model {name}: {} interleavings explored",
        runs.load(Ordering::Relaxed)
    );
}
