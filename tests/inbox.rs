//! The pending-call inbox: per interpreter, drained on entry or explicitly, observable, and
//! the path an `OwnedObj` dropped elsewhere takes back to its owner.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use xinterp::{ErrorKind, Runtime};

#[test]
fn a_queued_call_runs_in_its_interpreter_on_the_next_entry() {
    // INV-INBOX-OWNER
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let ran_in = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&ran_in);
    rt.call_soon(sub, move |tok| log.lock().unwrap().push(tok.id()))
        .unwrap();
    let info = rt.info(sub).unwrap();
    assert_eq!(info.inbox_depth, 1);
    assert!(info.oldest_pending.is_some());
    // Entering another interpreter does not run it.
    rt.enter(rt.main(), |_| ()).unwrap();
    assert!(ran_in.lock().unwrap().is_empty());
    rt.enter(sub, |tok| assert_eq!(tok.info().inbox_depth, 0))
        .unwrap();
    assert_eq!(*ran_in.lock().unwrap(), [sub]);
    let delta = rt.counters();
    assert_eq!((delta.pending_queued, delta.pending_run), (1, 1));
}

#[test]
fn explicit_drain_runs_everything_including_calls_queued_by_calls() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let count = Arc::clone(&count);
        rt.call_soon(sub, move |tok| {
            count.fetch_add(1, Ordering::Relaxed);
            let count = Arc::clone(&count);
            let id = tok.id();
            tok.runtime()
                .call_soon(id, move |_| {
                    count.fetch_add(10, Ordering::Relaxed);
                })
                .unwrap();
        })
        .unwrap();
    }
    assert_eq!(rt.drain(sub).unwrap(), 6);
    assert_eq!(count.load(Ordering::Relaxed), 33);
    assert_eq!(rt.drain(sub).unwrap(), 0);
    assert_eq!(rt.info(sub).unwrap().oldest_pending, None);
}

#[test]
fn an_owned_handle_dropped_outside_its_owner_queues_the_decref() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let handle = rt
        .enter(sub, |tok| tok.str("owned by sub").unbind())
        .unwrap();
    assert_eq!(rt.info(sub).unwrap().owned_handles, 1);
    // Dropped on another thread, in another interpreter.
    std::thread::scope(|s| {
        s.spawn(|| rt.enter(rt.main(), move |_| drop(handle)).unwrap());
    });
    let info = rt.info(sub).unwrap();
    assert_eq!(
        (info.owned_handles, info.inbox_depth, info.live_objects),
        (0, 1, 1)
    );
    assert_eq!(rt.drain(sub).unwrap(), 1);
    assert_eq!(rt.info(sub).unwrap().live_objects, 0);
}

#[test]
fn an_owned_handle_dropped_in_its_owner_decrefs_at_once() {
    let rt = Runtime::new();
    let handle = rt.enter(rt.main(), |tok| tok.int(7).unbind()).unwrap();
    rt.enter(rt.main(), move |tok| {
        drop(handle);
        assert_eq!(tok.info().inbox_depth, 0);
        assert_eq!(tok.info().live_objects, 0);
    })
    .unwrap();
}

#[test]
fn destroy_is_refused_while_owned_handles_are_out_and_drains_after() {
    // INV-INBOX-BEFORE-HANDLE
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let handle = rt
        .enter(sub, |tok| tok.list(&[tok.int(1)]).unbind())
        .unwrap();
    let err = rt.destroy(sub).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InterpreterBusy);
    assert!(err.message().contains("1 owned handle"), "{err}");
    // The refusal changed nothing: the interpreter still works.
    assert_eq!(
        rt.enter(sub, |tok| handle.bind(tok).unwrap().len().unwrap())
            .unwrap(),
        1
    );
    drop(handle);
    let report = rt.destroy(sub).unwrap();
    assert_eq!((report.pending_run, report.leaked_objects), (1, 0));
}

#[test]
fn a_destroyed_interpreter_refuses_calls() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    rt.destroy(sub).unwrap();
    let err = rt.call_soon(sub, |_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InterpreterNotFound);
}

#[test]
fn dropping_the_runtime_runs_what_is_left_in_every_inbox() {
    let ran = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    for id in [rt.main(), sub] {
        let ran = Arc::clone(&ran);
        rt.call_soon(id, move |_| {
            ran.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    }
    // Entering `sub` ran its call.
    let handle = rt.enter(sub, |tok| tok.bytes(b"last").unbind()).unwrap();
    assert_eq!(ran.load(Ordering::Relaxed), 1);
    // The owned handle keeps the runtime alive: main's call still waits.
    drop(rt);
    assert_eq!(ran.load(Ordering::Relaxed), 1);
    // Dropping the last handle queues its decref and then finalizes: both queued calls
    // run (Miri would report the bytes object as leaked otherwise).
    drop(handle);
    assert_eq!(ran.load(Ordering::Relaxed), 2);
}

#[test]
fn many_threads_queue_while_others_drain() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let per_thread = if cfg!(miri) { 5 } else { 500 };
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (rt, ran) = (&rt, &ran);
            s.spawn(move || {
                for _ in 0..per_thread {
                    let ran = Arc::clone(ran);
                    rt.call_soon(sub, move |_| {
                        ran.fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
                }
            });
        }
        let rt = &rt;
        s.spawn(move || {
            for _ in 0..per_thread {
                rt.drain(sub).unwrap();
            }
        });
    });
    rt.drain(sub).unwrap();
    assert_eq!(ran.load(Ordering::Relaxed), 2 * per_thread);
    let counters = rt.counters();
    assert_eq!(counters.pending_queued, counters.pending_run);
}

#[test]
fn a_handle_escaping_the_final_drain_keeps_its_interpreter_state_alive() {
    // INV-OWNER-OUTLIVES: a pending call run by destroy's final drain makes an owned handle
    // and sends it out. The interpreter is gone, but its state outlives the handle, and the
    // handle's decref still runs (under Miri, a decref that never ran is a reported leak,
    // and a freed state read by the drop is a reported use-after-free).
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    rt.call_soon(sub, move |tok| {
        tx.send(tok.str("escapes").unbind()).unwrap()
    })
    .unwrap();
    let report = rt.destroy(sub).unwrap();
    assert_eq!(
        (
            report.pending_run,
            report.escaped_handles,
            report.leaked_objects
        ),
        (1, 1, 1)
    );
    let handle = rx.recv().unwrap();
    assert_eq!(handle.owner(), sub);
    assert_eq!(
        rt.enter(sub, |_| ()).unwrap_err().kind(),
        ErrorKind::InterpreterNotFound
    );
    // Its decref cannot be queued any more (the final drain is over): it runs in a late
    // entry of the destroyed interpreter, on this thread (INV-INBOX-SEALED).
    let before = rt.counters();
    drop(handle);
    let delta = rt.counters().since(&before);
    assert_eq!(
        (
            delta.pending_queued,
            delta.releases_late,
            delta.objects_freed
        ),
        (0, 1, 1)
    );
    drop(rt);
}

#[test]
fn a_pending_call_may_switch_during_the_final_drain() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let main = rt.main();
    rt.call_soon(sub, move |tok| {
        let n = tok.switch(main, |t| t.int(5).as_int().unwrap()).unwrap();
        assert_eq!(n, 5);
    })
    .unwrap();
    let report = rt.destroy(sub).unwrap();
    assert_eq!(report.pending_run, 1);
    assert_eq!(rt.counters().switches, 1);
}

#[test]
fn a_panic_in_the_final_drain_still_removes_the_interpreter() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    rt.call_soon(sub, |_| panic!("a pending call failed"))
        .unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.destroy(sub)));
    assert!(result.is_err());
    assert_eq!(rt.list(), vec![rt.main()]);
    // The thread holds no interpreter afterwards.
    rt.enter(rt.main(), |tok| assert_eq!(tok.id(), rt.main()))
        .unwrap();
}
