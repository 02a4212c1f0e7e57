//! Two threads switch between two interpreters in opposite orders (A -> B and B -> A).
//! Because a switch lets go of the current interpreter before taking the next one
//! (INV-ONE-LOCK, INV-TOKEN-EXCLUSIVE), no interleaving deadlocks; loom explores them all
//! and reports a deadlock as a failure.
#![cfg(loom)]

use loom::thread;
use xinterp::Runtime;

#[test]
fn two_threads_switching_in_opposite_orders_never_deadlock() {
    xinterp_loom_tests::model(
        "two_threads_switching_in_opposite_orders_never_deadlock",
        || {
            let rt = Runtime::new();
            let a = rt.main();
            let b = rt.create().unwrap();

            let other = rt.clone();
            let t = thread::spawn(move || {
                other
                    .enter(b, |tok| tok.switch(a, |in_a| drop(in_a.int(1))).unwrap())
                    .unwrap();
            });
            rt.enter(a, |tok| tok.switch(b, |in_b| drop(in_b.str("x"))).unwrap())
                .unwrap();
            t.join().unwrap();

            // The ledger of this part: every object freed, nobody left inside, two switches.
            let counters = rt.counters();
            assert_eq!(counters.switches, 2);
            assert_eq!(counters.objects_allocated, 2);
            assert_eq!(counters.objects_freed, 2);
            for id in [a, b] {
                let info = rt.info(id).unwrap();
                assert_eq!((info.live_objects, info.threads_entered), (0, 0));
            }
        },
    );
}

#[test]
fn a_switch_and_a_plain_entry_never_hold_the_target_at_once() {
    // One thread goes A -> B -> A while the other enters B directly: the switcher's return
    // to A never waits on B, and B is held by one thread at a time.
    xinterp_loom_tests::model(
        "a_switch_and_a_plain_entry_never_hold_the_target_at_once",
        || {
            let rt = Runtime::new();
            let a = rt.main();
            let b = rt.create().unwrap();
            let kept = rt.enter(b, |tok| tok.list(&[]).unbind()).unwrap();
            let kept = std::sync::Arc::new(kept);

            let (other, kept2) = (rt.clone(), kept.clone());
            let t = thread::spawn(move || {
                other
                    .enter(b, |tok| {
                        let list = kept2.bind(tok).unwrap();
                        list.call_method("append", &[tok.int(2)]).unwrap();
                    })
                    .unwrap();
            });
            rt.enter(a, |tok| {
                tok.switch(b, |in_b| {
                    let list = kept.bind(in_b).unwrap();
                    list.call_method("append", &[in_b.int(1)]).unwrap();
                })
                .unwrap()
            })
            .unwrap();
            t.join().unwrap();

            let len = rt
                .enter(b, |tok| kept.bind(tok).unwrap().len().unwrap())
                .unwrap();
            assert_eq!(len, 2);
            drop(std::sync::Arc::try_unwrap(kept).unwrap());
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
