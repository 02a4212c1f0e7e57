//! Thread state and switching: nested switches, panics, thread pools, the owner check.

use std::panic::{catch_unwind, AssertUnwindSafe};

use xinterp::{ErrorKind, InterpId, Runtime};

#[test]
fn nested_switches_come_back_to_where_they_started() {
    let rt = Runtime::new();
    let a = rt.main();
    let b = rt.create().unwrap();
    let c = rt.create().unwrap();
    let path = rt
        .enter(a, |ta| {
            let mut path = vec![ta.id()];
            ta.switch(b, |tb| {
                path.push(tb.id());
                tb.switch(a, |ta2| {
                    // A -> B -> A: A is free again while the thread is in B, so it can be
                    // entered once more.
                    path.push(ta2.id());
                    ta2.switch(c, |tc| path.push(tc.id())).unwrap();
                })
                .unwrap();
                path.push(tb.id());
            })
            .unwrap();
            path.push(ta.id());
            path
        })
        .unwrap();
    assert_eq!(path, [a, b, a, c, b, a]);
    for id in [a, b, c] {
        assert_eq!(rt.info(id).unwrap().threads_entered, 0);
    }
}

#[test]
fn a_switched_out_interpreter_is_free_for_other_threads() {
    // INV-ONE-LOCK: while this thread is in B, A's lock is released, so another thread can
    // enter A (it would deadlock here otherwise).
    let rt = Runtime::new();
    let a = rt.main();
    let b = rt.create().unwrap();
    rt.enter(a, |ta| {
        ta.switch(b, |_tb| {
            std::thread::scope(|s| {
                s.spawn(|| rt.enter(a, |t| t.int(1).as_int().unwrap()).unwrap())
                    .join()
                    .unwrap()
            })
        })
        .unwrap()
    })
    .unwrap();
}

#[test]
fn owned_handles_refuse_the_wrong_interpreter() {
    // INV-OBJ-BOUND: a token-bound handle exists only for objects of the token's interpreter;
    // binding an owned handle checks it.
    let rt = Runtime::new();
    let b = rt.create().unwrap();
    rt.enter(rt.main(), |ta| {
        let x = ta.str("from main").unbind();
        assert_eq!(x.owner(), rt.main());
        let err = ta
            .switch(b, |tb| x.bind(tb).map(|o| o.repr()).unwrap_err())
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::WrongInterpreter);
        assert_eq!(
            err.message(),
            format!(
                "object owned by interpreter {} used from interpreter {b}",
                rt.main()
            )
        );
        assert_eq!(x.bind(ta).unwrap().to_rust_string().unwrap(), "from main");
    })
    .unwrap();
}

#[test]
fn a_panic_inside_a_switch_leaves_no_lock_held() {
    let rt = Runtime::new();
    let a = rt.main();
    let b = rt.create().unwrap();
    let caught = rt
        .enter(a, |ta| {
            let caught = catch_unwind(AssertUnwindSafe(|| {
                ta.switch(b, |tb| {
                    let _live = tb.str("dropped while unwinding");
                    panic!("user code failed in b");
                })
            }));
            // Back in A, holding it: allocation works and is accounted to A.
            assert_eq!(ta.id(), a);
            drop(ta.int(1));
            caught.is_err()
        })
        .unwrap();
    assert!(caught);
    // Neither lock is held and nothing leaked: other threads can enter both.
    std::thread::scope(|s| {
        s.spawn(|| {
            for id in [a, b] {
                rt.enter(id, |t| assert_eq!(t.info().live_objects, 0))
                    .unwrap();
            }
        });
    });
}

#[test]
fn a_panic_inside_enter_releases_the_interpreter() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        rt.enter(sub, |tok| {
            let _x = tok.list(&[tok.int(1)]);
            panic!("boom");
        })
    }));
    assert!(result.is_err());
    assert_eq!(rt.info(sub).unwrap().threads_entered, 0);
    assert_eq!(rt.info(sub).unwrap().live_objects, 0);
    rt.destroy(sub).unwrap();
}

#[test]
fn suspend_lets_go_and_takes_back() {
    let rt = Runtime::new();
    let main = rt.main();
    rt.enter(main, |tok| {
        let kept = tok.str("kept").unbind();
        let seen = tok.suspend(|| {
            // No interpreter held here: entering any, the suspended one included, works.
            rt.enter(main, |again| {
                kept.bind(again).unwrap().to_rust_string().unwrap()
            })
            .unwrap()
        });
        assert_eq!(seen, "kept");
        assert_eq!(kept.bind(tok).unwrap().to_rust_string().unwrap(), "kept");
    })
    .unwrap();
}

#[test]
fn a_thread_pool_runs_work_in_any_interpreter() {
    // The model composes with ordinary pools: no thread belongs to an interpreter.
    let rt = Runtime::new();
    let interps: Vec<InterpId> = (0..3).map(|_| rt.create().unwrap()).collect();
    let threads = if cfg!(miri) { 2 } else { 4 };
    let jobs_per_thread = if cfg!(miri) { 6 } else { 300 };
    let before = rt.counters();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (rt, interps) = (&rt, &interps);
            s.spawn(move || {
                for j in 0..jobs_per_thread {
                    let id = interps[(t + j) % interps.len()];
                    let other = interps[(t + j + 1) % interps.len()];
                    rt.enter(id, |tok| {
                        let list = tok.list(&[tok.int(j as i64)]);
                        assert_eq!(list.len().unwrap(), 1);
                        drop(list);
                        tok.switch(other, |t2| drop(t2.str("elsewhere"))).unwrap();
                    })
                    .unwrap();
                }
            });
        }
    });
    let delta = rt.counters().since(&before);
    assert_eq!(delta.enters as usize, threads * jobs_per_thread);
    assert_eq!(delta.switches as usize, threads * jobs_per_thread);
    for id in interps {
        assert_eq!(rt.info(id).unwrap().live_objects, 0);
        rt.destroy(id).unwrap();
    }
}

#[test]
fn two_threads_switching_in_opposite_orders_do_not_deadlock() {
    let rt = Runtime::new();
    let a = rt.main();
    let b = rt.create().unwrap();
    let rounds = if cfg!(miri) { 5 } else { 2_000 };
    std::thread::scope(|s| {
        for (from, to) in [(a, b), (b, a)] {
            let rt = &rt;
            s.spawn(move || {
                for _ in 0..rounds {
                    rt.enter(from, |tok| tok.switch(to, |t| drop(t.none())).unwrap())
                        .unwrap();
                }
            });
        }
    });
}

#[test]
#[cfg_attr(
    debug_assertions,
    should_panic(expected = "wrong interpreter: incref of a Str object owned by interpreter 0")
)]
#[cfg_attr(not(debug_assertions), ignore = "the owner check is a debug assertion")]
fn touching_a_refcount_from_the_wrong_interpreter_is_caught() {
    // INV-OWN-LOCKED: the owner check fires before the refcount is touched.
    let rt = Runtime::new();
    let b = rt.create().unwrap();
    rt.enter(rt.main(), |ta| {
        let x = ta.str("owned by main").unbind();
        let raw = x.as_raw();
        ta.switch(b, |tb| {
            // SAFETY: deliberately broken: `raw` belongs to main, not to `b`. The debug
            // owner check panics before any refcount is touched.
            let _wrong = unsafe { tb.borrow_raw(raw) };
        })
        .unwrap();
        drop(x);
    })
    .unwrap();
}

#[test]
fn raw_addresses_round_trip_in_their_owner() {
    let rt = Runtime::new();
    rt.enter(rt.main(), |tok| {
        let x = tok.str("addressed");
        let raw = x.as_raw();
        assert_eq!(raw.addr(), x.id());
        // SAFETY: `raw` is the address of `x`, alive and owned by this interpreter.
        let again = unsafe { tok.borrow_raw(raw) };
        assert!(again.is(&x));
        assert_eq!(x.refcount(), 2);
    })
    .unwrap();
}
