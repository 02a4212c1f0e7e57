//! A thread enters an interpreter through its own cache of states (INV-LOOKUP-CACHE): the
//! second entry finds the state it put back and skips the registry, while another thread
//! destroys that interpreter, or drops the runtime's last handle.
//!
//! The cached entry must behave as a registry lookup would: it gets in only while the
//! interpreter is live, and fails with `InterpreterNotFound` once the destroy is decided,
//! never entering a destroyed interpreter; the cached `Arc` keeps the state alive however
//! the two interleave (loom's `Arc` and `UnsafeCell` catch a use after free), and the state
//! is dropped when the cache lets go of it, at the thread's exit at the latest.
#![cfg(loom)]

use loom::thread;
use xinterp::{ErrorKind, InterpId, Runtime};

/// Enters `x` and makes and frees one object there: whether it got in.
fn enter_once(rt: &Runtime, x: InterpId) -> bool {
    match rt.enter(x, |tok| drop(tok.int(1))) {
        Ok(()) => true,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InterpreterNotFound, "{e}");
            assert_eq!(e.message(), format!("interpreter {x} has been destroyed"));
            false
        }
    }
}

#[test]
fn a_cached_entry_racing_a_destroy() {
    xinterp_loom_tests::model("a_cached_entry_racing_a_destroy", || {
        let rt = Runtime::new();
        let x = rt.create().unwrap();

        let other = rt.clone();
        let entries = thread::spawn(move || {
            // The first entry looks x up (or finds it destroyed) and caches it; the second
            // takes it from the cache.
            let first = enter_once(&other, x);
            let second = enter_once(&other, x);
            assert!(first || !second, "an entry got in after one was refused");
            usize::from(first) + usize::from(second)
        });
        let destroyed = xinterp_loom_tests::destroy_when_idle(&rt, x);
        assert_eq!(destroyed.leaked_objects, 0);
        let got_in = entries.join().unwrap();

        let c = rt.counters();
        assert_eq!(c.enters, got_in as u64);
        assert_eq!(c.objects_allocated, got_in as u64);
        assert!(!enter_once(&rt, x));
        xinterp_loom_tests::assert_balanced(&rt);
    });
}

#[test]
fn a_cached_state_outlives_its_runtime_on_another_thread() {
    // The entering thread keeps x cached while the main thread drops the runtime's last
    // handle, which finalizes every interpreter: the state stays alive in the cache until
    // the entering thread exits, and its entry either came first or found x gone.
    xinterp_loom_tests::model(
        "a_cached_state_outlives_its_runtime_on_another_thread",
        || {
            let rt = Runtime::new();
            let x = rt.create().unwrap();
            let other = rt.clone();
            let entry = thread::spawn(move || {
                let got_in = enter_once(&other, x);
                drop(other);
                got_in
            });
            drop(rt);
            entry.join().unwrap();
        },
    );
}
