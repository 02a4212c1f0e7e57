//! The pending-call inbox under races: an owned handle dropped outside its owner queues its
//! decref on the owner's own inbox (INV-INBOX-OWNER) while another thread enters (and so
//! drains) the owner, or destroys it. In every interleaving the object is freed exactly once
//! (INV-FREE-ONCE), in its owner, and a destroy never loses a queued decref
//! (INV-INBOX-BEFORE-HANDLE, INV-DESTROY-IDLE).
#![cfg(loom)]

use loom::thread;
use xinterp::{ErrorKind, Runtime};

#[test]
fn a_queued_decref_racing_an_entry_runs_exactly_once() {
    xinterp_loom_tests::model("a_queued_decref_racing_an_entry_runs_exactly_once", || {
        let rt = Runtime::new();
        let x = rt.create().unwrap();
        let handle = rt.enter(x, |tok| tok.str("payload").unbind()).unwrap();

        let t = thread::spawn(move || drop(handle));
        rt.enter(x, |tok| drop(tok.int(0))).unwrap();
        t.join().unwrap();
        xinterp_loom_tests::assert_balanced(&rt);

        let info = rt.info(x).unwrap();
        assert_eq!((info.owned_handles, info.inbox_depth), (0, 0));
        let counters = rt.counters();
        assert_eq!(counters.pending_queued, counters.pending_run);
    });
}

#[test]
fn a_queued_decref_racing_a_destroy_is_never_lost() {
    xinterp_loom_tests::model("a_queued_decref_racing_a_destroy_is_never_lost", || {
        let rt = Runtime::new();
        let x = rt.create().unwrap();
        let handle = rt.enter(x, |tok| tok.bytes(b"payload").unbind()).unwrap();

        let t = thread::spawn(move || drop(handle));
        let first = rt.destroy(x);
        t.join().unwrap();
        let report = match first {
            Ok(report) => report,
            Err(e) => {
                // Refused while the handle was out; nothing changed, so it succeeds now.
                assert_eq!(e.kind(), ErrorKind::InterpreterBusy);
                rt.destroy(x).unwrap()
            }
        };
        // The decref was queued before the handle count fell, so the final drain ran it.
        assert_eq!(report.pending_run, 1);
        assert_eq!(report.leaked_objects, 0);
        let counters = rt.counters();
        assert_eq!(counters.pending_queued, counters.pending_run);
        xinterp_loom_tests::assert_balanced(&rt);
    });
}

#[test]
fn a_call_queued_racing_a_destroy_runs_once_or_is_refused() {
    xinterp_loom_tests::model(
        "a_call_queued_racing_a_destroy_runs_once_or_is_refused",
        || {
            let rt = Runtime::new();
            let x = rt.create().unwrap();
            let ran = loom::sync::Arc::new(loom::sync::atomic::AtomicUsize::new(0));

            let (other, ran2) = (rt.clone(), ran.clone());
            let t = thread::spawn(move || {
                other.call_soon(x, move |_| {
                    ran2.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
                })
            });
            rt.destroy(x).unwrap();
            let queued = t.join().unwrap();

            let ran = ran.load(loom::sync::atomic::Ordering::Relaxed);
            match queued {
                Ok(()) => assert_eq!(ran, 1, "a queued call runs in the final drain"),
                Err(e) => {
                    assert!(matches!(
                        e.kind(),
                        ErrorKind::InterpreterNotFound | ErrorKind::InboxClosed
                    ));
                    assert_eq!(ran, 0);
                }
            }
        },
    );
}
