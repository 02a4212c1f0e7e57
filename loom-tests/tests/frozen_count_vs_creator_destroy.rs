//! A frozen list (a cycle, so one component counts it) is held by two interpreters, each of
//! which drops its reference on its own thread while the interpreter that froze it is
//! destroyed on a third. The component's count is atomic: it reaches zero exactly once, on
//! whichever thread drops last, which frees the cycle there; the creator's destroy neither
//! waits for it nor frees it (INV-FROZEN-COUNT, INV-FROZEN-OUTLIVES).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, Outgoing};
use xinterp_loom_tests::{recv_owned, setup};

#[test]
fn frozen_count_changed_from_two_interpreters_while_its_creator_is_destroyed() {
    xinterp_loom_tests::model("frozen_count_vs_creator_destroy", || {
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
