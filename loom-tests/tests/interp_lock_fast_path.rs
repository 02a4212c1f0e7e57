//! The interpreter lock is one atomic word, taken and let go by one compare-and-swap or
//! fetch operation when uncontended; a thread that finds it held parks on a condvar. A
//! destroy reserves the lock (from the idle word to held, with itself entered) while it
//! checks its handles and its policy, then marks it destroyed or lets the reservation go.
//!
//! Entries racing a destroy, one that goes on and one that is refused after reserving:
//! every outcome is one the old mutex-and-flag lock allowed, no wake-up is lost (loom
//! reports a thread parked forever as a deadlock), an entry that waited out a destroy
//! fails as if the destroy had come first and is not counted as a lock wait, and one
//! interpreter is held by one thread at a time (INV-OWN-LOCKED: the objects' state is
//! loom's `UnsafeCell`). Then a thread that suspends (the lock let go, the thread still
//! entered) while another enters and leaves: the destroy-free half of the word.
#![cfg(loom)]

use loom::thread;
use xinterp::{ErrorKind, InterpId, Runtime};

/// Enters `x` and makes and frees one object there: `Ok(true)` if it got in.
fn enter_once(rt: &Runtime, x: InterpId) -> bool {
    match rt.enter(x, |tok| drop(tok.int(1))) {
        Ok(()) => true,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InterpreterNotFound, "{e}");
            false
        }
    }
}

#[test]
fn two_entries_racing_a_destroy() {
    // INV-DESTROY-IDLE, INV-ONE-LOCK: the destroy succeeds only with nobody entered; an
    // entry either got in and out first, or fails (in the registry, at the lock word, or
    // after waiting out the reservation).
    xinterp_loom_tests::model("two_entries_racing_a_destroy", || {
        let rt = Runtime::new();
        let x = rt.create().unwrap();

        let entries: Vec<_> = (0..2)
            .map(|_| {
                let other = rt.clone();
                thread::spawn(move || enter_once(&other, x))
            })
            .collect();
        let destroyed = rt.destroy(x);
        let got_in = entries
            .into_iter()
            .map(|t| usize::from(t.join().unwrap()))
            .sum::<usize>();

        match destroyed {
            Ok(report) => assert_eq!(report.leaked_objects, 0),
            Err(e) => {
                // A thread was inside, or waiting: refused, nothing changed; it goes now.
                assert_eq!(e.kind(), ErrorKind::InterpreterBusy, "{e}");
                assert_eq!(got_in, 2, "a refused destroy fails no entry");
                assert_eq!(rt.destroy(x).unwrap().leaked_objects, 0);
            }
        }
        let c = rt.counters();
        assert_eq!(c.enters, got_in as u64);
        assert_eq!(c.objects_allocated, got_in as u64);
        // Only an entry that got in counts its wait, and the two can wait at most once
        // between them (the second behind the first).
        assert!(c.lock_waits <= 1 && c.lock_waits <= got_in as u64, "{c:?}");
        xinterp_loom_tests::assert_balanced(&rt);
    });
}

#[test]
fn two_entries_racing_a_destroy_refused_after_reserving() {
    // An owned handle is out, so the destroy reserves the lock, reads the handle count and
    // lets the reservation go: entries that arrived meanwhile waited, and both get in.
    xinterp_loom_tests::model(
        "two_entries_racing_a_destroy_refused_after_reserving",
        || {
            let rt = Runtime::new();
            let x = rt.create().unwrap();
            let kept = rt.enter(x, |tok| tok.list(&[]).unbind()).unwrap();
            let kept = std::sync::Arc::new(kept);

            let entries: Vec<_> = (1..=2)
                .map(|n| {
                    let (other, kept) = (rt.clone(), kept.clone());
                    thread::spawn(move || {
                        other
                            .enter(x, |tok| {
                                let list = kept.bind(tok).unwrap();
                                list.call_method("append", &[tok.int(n)]).unwrap();
                            })
                            .unwrap()
                    })
                })
                .collect();
            let e = rt.destroy(x).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InterpreterBusy, "{e}");
            for t in entries {
                t.join().unwrap();
            }

            let len = rt
                .enter(x, |tok| kept.bind(tok).unwrap().len().unwrap())
                .unwrap();
            assert_eq!(len, 2);
            let c = rt.counters();
            // Each entry waits at most once: behind the other, or behind the reservation.
            assert!(c.lock_waits <= 2, "{c:?}");
            assert_eq!(rt.info(x).unwrap().threads_entered, 0);
            drop(std::sync::Arc::try_unwrap(kept).unwrap());
            assert_eq!(rt.destroy(x).unwrap().leaked_objects, 0);
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}

#[test]
fn a_suspended_thread_and_an_entry_share_the_lock() {
    // One thread appends, suspends (lets go, stays entered) and appends again after taking
    // the lock back; the other enters and appends. The list's state is touched by one
    // holder at a time, and the suspended thread keeps the interpreter from being idle.
    xinterp_loom_tests::model("a_suspended_thread_and_an_entry_share_the_lock", || {
        let rt = Runtime::new();
        let x = rt.create().unwrap();
        let kept = rt.enter(x, |tok| tok.list(&[]).unbind()).unwrap();
        let kept = std::sync::Arc::new(kept);

        let (other, kept2) = (rt.clone(), kept.clone());
        let t = thread::spawn(move || {
            other
                .enter(x, |tok| {
                    let list = kept2.bind(tok).unwrap();
                    list.call_method("append", &[tok.int(2)]).unwrap();
                })
                .unwrap();
        });
        rt.enter(x, |tok| {
            let list = kept.bind(tok).unwrap();
            list.call_method("append", &[tok.int(1)]).unwrap();
            drop(list);
            let entered = tok.suspend(|| rt.info(x).unwrap().threads_entered);
            assert!((1..=2).contains(&entered), "{entered}");
            let list = kept.bind(tok).unwrap();
            list.call_method("append", &[tok.int(3)]).unwrap();
        })
        .unwrap();
        t.join().unwrap();

        let items = rt
            .enter(x, |tok| kept.bind(tok).unwrap().repr().unwrap())
            .unwrap();
        assert!(
            ["[1, 3, 2]", "[1, 2, 3]", "[2, 1, 3]"].contains(&items.as_str()),
            "{items}"
        );
        let c = rt.counters();
        // The entry may wait behind either hold, the resumption behind the entry.
        assert!(c.lock_waits <= 2, "{c:?}");
        assert_eq!(rt.info(x).unwrap().threads_entered, 0);
        drop(std::sync::Arc::try_unwrap(kept).unwrap());
        xinterp_loom_tests::assert_balanced(&rt);
    });
}
