//! Shared by the loom models in `tests/` (one file per race). Compiled only with
//! `--cfg loom`.

#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};

use xinterp::{Config, DestroyReport, ErrorKind, InterpId, Obj, OwnedObj, Runtime, Token};

// The integration tests' setup helpers, shared rather than written again for the models.
#[path = "../../tests/common/mod.rs"]
mod common;
pub use common::{first_export_message, recv_owned, send, send_kept, setup, Item};

/// The setup many models race on: a runtime with `config`, a sender `s` and a receiver `r`;
/// `s` makes an object with `make` and sends it on a new channel (`how`) keeping no handle,
/// and `r` receives it as an owned handle (a proxy, or a view). Returns the runtime, `s`,
/// `r` and that handle.
pub fn sent_and_received(
    config: Config,
    how: Item,
    make: impl for<'a> FnOnce(&'a Token<'_>) -> Obj<'a>,
) -> (Runtime, InterpId, InterpId, OwnedObj) {
    let (rt, s, r, ch) = setup(config);
    send(&rt, s, &ch, how, make);
    let received = recv_owned(&rt, r, &ch);
    (rt, s, r, received)
}

/// Runs `body` under `loom::model` and prints how many interleavings loom explored, so a
/// model that explores only one (a sign that it exercises no race) shows in the log.
pub fn model(name: &str, body: impl Fn() + Sync + Send + 'static) {
    // A plain std atomic on purpose: it counts executions from outside the model.
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&runs);
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        // One execution's path: loom's default of 1,000 branches is too short for the
        // longest models, whose channel operations each load and claim ring positions.
        builder.max_branches = 10_000;
    }
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        body();
    });
    println!(
        "loom model {name}: {} interleavings explored",
        runs.load(Ordering::Relaxed)
    );
}

/// Destroys interpreter `id` once nothing keeps it busy, and returns the report.
///
/// A racing thread may be inside `id`, or hold a proxy of it: the destroy is refused with
/// `InterpreterBusy` until that thread has let go, and is retried. Any other error fails the
/// model. The loop yields between attempts, as loom requires of a spin loop (otherwise it
/// would explore this thread spinning forever while the racing thread never runs).
pub fn destroy_when_idle(rt: &Runtime, id: InterpId) -> DestroyReport {
    loop {
        match rt.destroy(id) {
            Ok(report) => return report,
            Err(e) => assert_eq!(e.kind(), ErrorKind::InterpreterBusy, "{e}"),
        }
        loom::thread::yield_now();
    }
}

/// The ledger at the end of a model (INV-LEDGER), checked from outside every interpreter
/// once the model's threads have been joined.
///
/// First drains every live interpreter until no pending call runs any more: a drain may
/// queue calls on another interpreter (a view's decref in one queues its release on the
/// exporter). Then, for each live interpreter: no object left, no buffer pinned for others
/// and no export outstanding; and runtime-wide: every object allocated was freed and every
/// buffer exported was released. Destroyed interpreters are not listed: what their reports
/// say is for each model to check.
pub fn assert_balanced(rt: &Runtime) {
    loop {
        let ran: usize = rt
            .list()
            .into_iter()
            .map(|id| {
                rt.drain(id)
                    .unwrap_or_else(|e| panic!("draining interpreter {id}: {e}"))
            })
            .sum();
        if ran == 0 {
            break;
        }
    }
    for id in rt.list() {
        let info = rt.info(id).unwrap();
        assert_eq!(info.live_objects, 0, "{info:?}");
        assert_eq!(info.pinned_exports, 0, "{info:?}");
        let exports = rt.exports(id).unwrap();
        assert!(
            exports.is_empty(),
            "interpreter {id} still has exports out: {exports:?}"
        );
    }
    let c = rt.counters();
    assert_eq!(c.objects_allocated, c.objects_freed, "{c:?}");
    assert_eq!(c.buffers_exported, c.buffers_released, "{c:?}");
}
