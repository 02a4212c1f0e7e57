//! An owned handle escapes a final drain and is dropped while the destroy finishes. A
//! pending call run by `s`'s final drain makes an `OwnedObj` and leaves it in a shared slot;
//! another thread spins until it can take it, and drops it outside any interpreter. Its
//! decref is queued before the seal (the final drain runs it) or refused after it and run in
//! a late entry, which waits for the destroyer to let go (INV-INBOX-SEALED for owned
//! handles, INV-INBOX-BEFORE-HANDLE); the state outlives the handle (INV-OWNER-OUTLIVES).
//! The object is freed exactly once, in its owner (INV-FREE-ONCE), and the report counts it
//! as leaked only while the handle was still out.
#![cfg(loom)]

use loom::sync::{Arc, Mutex};
use loom::thread;
use xinterp::{OwnedObj, Runtime};

#[test]
fn an_escaped_handle_dropped_while_the_destroy_finishes() {
    xinterp_loom_tests::model(
        "an_escaped_handle_dropped_while_the_destroy_finishes",
        || {
            let rt = Runtime::new();
            let s = rt.create().unwrap();
            let slot: Arc<Mutex<Option<OwnedObj>>> = Arc::new(Mutex::new(None));
            let filler = slot.clone();
            rt.call_soon(s, move |tok| {
                *filler.lock().unwrap() = Some(tok.list(&[]).unbind());
            })
            .unwrap();

            let taker = thread::spawn(move || loop {
                // Taken out of the slot before it is dropped: no guard is held meanwhile.
                let taken = slot.lock().unwrap().take();
                if let Some(handle) = taken {
                    drop(handle);
                    break;
                }
                thread::yield_now();
            });
            let report = rt.destroy(s).unwrap();
            taker.join().unwrap();

            assert!(report.escaped_handles <= 1, "{report:?}");
            assert!(
                report.leaked_objects <= report.escaped_handles,
                "only a handle still out holds an object: {report:?}"
            );
            assert!(
                (1..=2).contains(&report.pending_run),
                "the call, and maybe the decref: {report:?}"
            );
            let c = rt.counters();
            assert_eq!(c.pending_queued, c.pending_run, "everything queued ran");
            assert_eq!(
                c.pending_run + c.releases_late,
                2,
                "the call, and the decref once: queued and drained, or late"
            );
            // Freed exactly once.
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
