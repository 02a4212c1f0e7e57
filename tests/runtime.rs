//! The runtime: interpreter lifecycle, ids, entering, destroying, counters.

mod common;
use common::while_held;

use xinterp::{Config, ErrorKind, InterpId, Runtime};

#[test]
fn a_new_runtime_has_only_its_main_interpreter() {
    let rt = Runtime::new();
    assert_eq!(rt.list(), vec![rt.main()]);
    let info = rt.info(rt.main()).unwrap();
    assert_eq!(info.live_objects, 0);
    assert_eq!(info.threads_entered, 0);
}

#[test]
fn ids_are_never_reused() {
    // INV-ID-FRESH
    let rt = Runtime::new();
    let a = rt.create().unwrap();
    let b = rt.create().unwrap();
    assert!(a < b);
    rt.destroy(b).unwrap();
    let c = rt.create().unwrap();
    assert!(c > b, "{c} reuses or precedes destroyed {b}");
    assert_eq!(rt.list(), vec![rt.main(), a, c]);
    let err = rt.enter(b, |_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InterpreterNotFound);
    assert!(err.message().contains("destroyed"), "{err}");
    let err = rt.info(InterpId::new(99)).unwrap_err();
    assert_eq!(err.message(), "no interpreter 99 exists");
}

#[test]
fn the_main_interpreter_is_destroyed_last() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let err = rt.destroy(rt.main()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MainInterpreter);
    assert!(err.message().contains("1 other"), "{err}");
    rt.destroy(sub).unwrap();
    rt.destroy(rt.main()).unwrap();
    assert!(rt.list().is_empty());
    let err = rt.create().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InterpreterNotFound);
}

#[test]
fn destroying_twice_reports_not_found() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    rt.destroy(sub).unwrap();
    assert_eq!(
        rt.destroy(sub).unwrap_err().kind(),
        ErrorKind::InterpreterNotFound
    );
}

#[test]
fn an_interpreter_a_thread_runs_in_cannot_be_destroyed() {
    // INV-DESTROY-IDLE
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    while_held(&rt, sub, || {
        let err = rt.destroy(sub).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InterpreterBusy);
        assert!(err.message().contains("1 thread"), "{err}");
    });
    rt.destroy(sub).unwrap();
}

#[test]
fn an_interpreter_a_thread_is_switched_out_of_cannot_be_destroyed() {
    // INV-DESTROY-IDLE: the thread will come back to `sub`, so it must still be there.
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let main = rt.main();
    rt.enter(sub, |tok| {
        tok.switch(main, |in_main| {
            let err = in_main.destroy(sub).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InterpreterBusy);
        })
        .unwrap();
    })
    .unwrap();
    rt.destroy(sub).unwrap();
}

#[test]
fn destroy_from_inside_an_interpreter_goes_through_the_token() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    rt.enter(rt.main(), |tok| {
        let err = tok.runtime().destroy(sub).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyEntered);
        assert!(err.message().contains("Token::destroy"), "{err}");
        let report = tok.destroy(sub).unwrap();
        assert_eq!(report.id, sub);
        assert_eq!(report.leaked_objects, 0);
        // Still in main afterwards, and able to allocate.
        assert_eq!(tok.id(), tok.runtime().main());
        assert_eq!(tok.int(5).as_int().unwrap(), 5);
    })
    .unwrap();
    assert_eq!(rt.list(), vec![rt.main()]);
}

#[test]
fn entering_while_holding_an_interpreter_is_refused() {
    // INV-ONE-LOCK
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let inner = rt
        .enter(rt.main(), |tok| {
            let rt2 = tok.runtime();
            rt2.enter(sub, |_| ()).unwrap_err()
        })
        .unwrap();
    assert_eq!(inner.kind(), ErrorKind::AlreadyEntered);
    assert!(inner.message().contains("Token::switch"), "{inner}");
    // Other runtimes too: a thread holds one interpreter, whatever its runtime.
    let other = Runtime::new();
    let err = rt
        .enter(rt.main(), |_| {
            other.enter(other.main(), |_| ()).unwrap_err()
        })
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::AlreadyEntered);
}

#[test]
fn counters_count_enters_switches_and_allocations() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let before = rt.counters();
    rt.enter(rt.main(), |tok| {
        drop(tok.int(1));
        tok.switch(sub, |t| drop(t.str("x"))).unwrap();
        tok.switch(sub, |t| drop(t.float(0.5))).unwrap();
        // Switching to the interpreter already held is not a switch.
        let here = tok.id();
        tok.switch(here, |t| drop(t.float(1.5))).unwrap();
        // None, True and False are immortal: they allocate nothing.
        drop((tok.none(), tok.bool(true), tok.bool(false)));
    })
    .unwrap();
    let delta = rt.counters().since(&before);
    assert_eq!(delta.enters, 1);
    assert_eq!(delta.switches, 2);
    assert_eq!(delta.objects_allocated, 4);
    assert_eq!(delta.objects_freed, 4);
    assert_eq!(delta.lock_waits, 0);
    let names: Vec<_> = delta.fields().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"switches") && names.contains(&"pending_run"));
}

#[test]
fn lock_waits_are_counted_when_an_interpreter_is_busy() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let before = rt.counters();
    std::thread::scope(|s| {
        s.spawn(|| {
            rt.enter(sub, |tok| {
                entered_tx.send(()).unwrap();
                // Hold `sub` until the other thread is registered and waiting.
                while tok.info().threads_entered < 2 {
                    std::thread::yield_now();
                }
            })
            .unwrap()
        });
        entered_rx.recv().unwrap();
        rt.enter(sub, |_| ()).unwrap();
    });
    assert_eq!(rt.counters().since(&before).lock_waits, 1);
}

#[test]
fn counters_from_many_threads_are_exact_and_snapshots_never_go_back() {
    // Each thread counts in its own block inside its interpreter (INV-COUNTER-CACHE) and in
    // the shared block outside (`call_soon`); a reader sums them meanwhile.
    const THREADS: u64 = 4;
    const ROUNDS: u64 = if cfg!(miri) { 10 } else { 2_000 };
    let rt = Runtime::new();
    let before = rt.counters();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut last = rt.counters();
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let now = rt.counters();
                for ((name, was), (_, is)) in last.fields().into_iter().zip(now.fields()) {
                    assert!(is >= was, "{name} went back from {was} to {is}");
                }
                last = now;
            }
        });
        let writers: Vec<_> = (0..THREADS)
            .map(|_| {
                let id = rt.create().unwrap();
                let rt = &rt;
                s.spawn(move || {
                    for _ in 0..ROUNDS {
                        rt.enter(id, |tok| drop(tok.list(&[]))).unwrap();
                        rt.call_soon(id, |_| ()).unwrap();
                    }
                    rt.drain(id).unwrap();
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        reader.join().unwrap();
    });
    let delta = rt.counters().since(&before);
    assert_eq!(delta.enters, THREADS * (ROUNDS + 1));
    assert_eq!(delta.objects_allocated, THREADS * ROUNDS);
    assert_eq!(delta.objects_freed, THREADS * ROUNDS);
    assert_eq!(delta.pending_queued, THREADS * ROUNDS);
    assert_eq!(delta.pending_run, THREADS * ROUNDS);
}

#[test]
fn the_runtime_can_be_shared_and_dropped_from_any_clone() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let clone = rt.clone();
    drop(rt);
    let n = clone.enter(sub, |tok| tok.list(&[tok.int(1)]).len().unwrap());
    assert_eq!(n.unwrap(), 1);
    assert_eq!(
        format!("{clone:?}"),
        "Runtime { main: InterpId(0), interpreters: 2 }"
    );
}

#[test]
fn the_registry_is_never_locked_across_an_entry() {
    // INV-NO-GUARD-SWITCH: code running inside an entry (and pending calls run by the
    // entry's drain) changes the registry; a map guard held across the entry would deadlock.
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    rt.call_soon(sub, |tok| {
        let rt = tok.runtime();
        let made = rt.create().unwrap();
        assert!(rt.list().contains(&made));
        rt.call_soon(made, |_| ()).unwrap();
    })
    .unwrap();
    rt.enter(sub, |tok| {
        let made = tok.runtime().create().unwrap();
        assert_eq!(tok.runtime().info(made).unwrap().live_objects, 0);
        tok.destroy(made).unwrap();
    })
    .unwrap();
    assert_eq!(rt.list().len(), 3);
}

#[test]
fn no_interpreter_can_be_created_once_main_is_being_destroyed() {
    let rt = Runtime::new();
    let (tx, rx) = std::sync::mpsc::channel();
    rt.call_soon(rt.main(), move |tok| {
        tx.send(tok.runtime().create()).unwrap()
    })
    .unwrap();
    let report = rt.destroy(rt.main()).unwrap();
    assert_eq!(report.pending_run, 1);
    let created = rx.recv().unwrap();
    assert_eq!(created.unwrap_err().kind(), ErrorKind::InterpreterNotFound);
    assert!(rt.list().is_empty());
}

#[test]
fn a_refused_destroy_never_fails_a_concurrent_entry() {
    // The refusal is decided in one critical section: an entry racing it never sees the
    // interpreter as destroyed.
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let handle = rt.enter(sub, |tok| tok.none().unbind()).unwrap();
    let rounds = if cfg!(miri) { 10 } else { 2_000 };
    std::thread::scope(|s| {
        let rt = &rt;
        s.spawn(move || {
            for _ in 0..rounds {
                rt.enter(sub, |_| ())
                    .expect("entering never fails while the destroy is refused");
            }
        });
        for _ in 0..rounds {
            let err = rt.destroy(sub).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InterpreterBusy);
        }
    });
    drop(handle);
    rt.destroy(sub).unwrap();
}

#[test]
fn a_traced_runtime_records_who_held_which_interpreter() {
    let rt = Runtime::with_config(xinterp::Config::default().trace(true));
    let sub = rt.create().unwrap();
    let main = rt.main();
    rt.enter(main, |tok| tok.switch(sub, |_| ()).unwrap())
        .unwrap();
    let events: Vec<(InterpId, bool)> = rt
        .take_trace()
        .iter()
        .map(|e| (e.interp, e.begin))
        .collect();
    assert_eq!(
        events,
        [
            (main, true),
            (main, false),
            (sub, true),
            (sub, false),
            (main, true),
            (main, false)
        ]
    );
    let again = rt.take_trace();
    assert!(again.is_empty(), "taken");
    assert!(Runtime::new().take_trace().is_empty(), "off by default");
}

#[test]
fn the_deferred_bound_is_at_least_one_whatever_the_builder_is_given() {
    // Config's fields are private: the builder is the only way in, and it keeps the minimum.
    let config = Config::default().deferred_limit(0);
    assert!(
        format!("{config:?}").contains("deferred_limit: 1"),
        "{config:?}"
    );
    assert_eq!(Config::default(), Runtime::new().config());
}

#[test]
fn try_enter_and_try_switch_give_one_result_for_a_fallible_closure() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    // The closure's value, its error, and the entry's own error, each as one Result.
    assert_eq!(rt.try_enter(sub, |tok| tok.int(2).as_int()), Ok(2));
    let err = rt.try_enter(sub, |tok| tok.int(2).len()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TypeError);
    let err = rt.try_enter(InterpId::new(99), |_| Ok(())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InterpreterNotFound);
    let outcome = rt.try_enter(rt.main(), |tok| {
        let three = tok.try_switch(sub, |t| t.int(3).as_int())?;
        let missing = tok.try_switch(InterpId::new(99), |_| Ok(())).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::InterpreterNotFound);
        let failed = tok.try_switch(sub, |t| t.none().len()).unwrap_err();
        assert_eq!(failed.kind(), ErrorKind::TypeError);
        Ok(three)
    });
    assert_eq!(outcome, Ok(3));
}
