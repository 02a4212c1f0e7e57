//! A frozen list (a cycle, so one component counts it) is held by two interpreters, each of
//! which drops its reference on its own thread while the interpreter that froze it is
//! destroyed on a third. The component's count is atomic: it reaches zero exactly once, on
//! whichever thread drops last, which frees the cycle there; the creator's destroy neither
//! waits for it nor frees it (INV-FROZEN-COUNT, INV-FROZEN-OUTLIVES). In the second model,
//! one of the two holders is the interpreter being destroyed.
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, InterpId, Outgoing, OwnedObj, Runtime};
use xinterp_loom_tests::{recv_owned, setup};

/// `s` freezes a cycle (a list holding itself) and sends it to `r` and to a third
/// interpreter, which each hold it as an owned handle: (runtime, s, r, third, r's, third's).
fn frozen_cycle_held_twice() -> (Runtime, InterpId, InterpId, InterpId, OwnedObj, OwnedObj) {
    let (rt, s, r, ch) = setup(Config::default());
    let other = rt.create().unwrap();
    rt.enter(s, |tok| {
        let cycle = tok.list(&[tok.int(1)]);
        cycle
            .call_method("append", std::slice::from_ref(&cycle))
            .unwrap();
        cycle.freeze().unwrap();
        ch.send(tok, Outgoing::object(&cycle)).unwrap();
        ch.send(tok, Outgoing::object(&cycle)).unwrap();
    })
    .unwrap();
    let (in_r, in_other) = (recv_owned(&rt, r, &ch), recv_owned(&rt, other, &ch));
    (rt, s, r, other, in_r, in_other)
}

#[test]
fn frozen_count_changed_from_two_interpreters_while_its_creator_is_destroyed() {
    xinterp_loom_tests::model("frozen_count_vs_creator_destroy", || {
        let (rt, s, r, other, in_r, in_other) = frozen_cycle_held_twice();
        let threads: Vec<_> = [(r, in_r), (other, in_other)]
            .into_iter()
            .map(|(into, held)| {
                let rt = rt.clone();
                thread::spawn(move || {
                    rt.enter(into, move |tok| {
                        let list = held.bind(tok).unwrap();
                        drop(held);
                        assert_eq!(list.len().unwrap(), 2);
                        assert!(list.getitem(&tok.int(1)).unwrap().is(&list));
                    })
                    .unwrap();
                })
            })
            .collect();
        let report = rt.destroy(s).unwrap();
        assert_eq!(
            report.leaked_objects, 0,
            "frozen objects are not the creator's to free"
        );
        for t in threads {
            t.join().unwrap();
        }
        let c = rt.counters();
        assert_eq!(c.objects_frozen, 2);
        assert_eq!(
            c.objects_allocated, c.objects_freed,
            "the cycle was freed, once"
        );
        xinterp_loom_tests::assert_balanced(&rt);
    });
}

/// The same frozen cycle held by `r` and by `other`, whose reference waits in a channel item
/// it sent: `r` drops its reference on one thread while `other` is destroyed on another, its
/// queued item (and so its reference) dropped by the destroy. Two interpreters change the
/// count, one of them while it is destroyed; the cycle is freed once, by whichever goes last
/// (INV-FROZEN-COUNT).
#[test]
fn frozen_count_changed_while_one_of_its_holders_is_destroyed() {
    xinterp_loom_tests::model("frozen_count_vs_holder_destroy", || {
        let (rt, _s, r, other, in_r, in_other) = frozen_cycle_held_twice();
        let parked = rt.create_channel();
        // `other`'s reference now waits in an item it sent (by reference: it is frozen).
        rt.enter(other, move |tok| {
            let list = in_other.bind(tok).unwrap();
            drop(in_other);
            parked.send(tok, Outgoing::object(&list)).unwrap();
        })
        .unwrap();
        let dropper = {
            let rt = rt.clone();
            thread::spawn(move || {
                rt.enter(r, move |tok| {
                    let list = in_r.bind(tok).unwrap();
                    drop(in_r);
                    assert_eq!(list.len().unwrap(), 2);
                })
                .unwrap();
            })
        };
        xinterp_loom_tests::destroy_when_idle(&rt, other);
        dropper.join().unwrap();
        let c = rt.counters();
        assert_eq!(
            c.objects_allocated, c.objects_freed,
            "the cycle was freed, once"
        );
        xinterp_loom_tests::assert_balanced(&rt);
    });
}
