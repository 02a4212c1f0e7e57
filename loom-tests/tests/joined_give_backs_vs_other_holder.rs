//! A thread switches from `s` to `r` and drops two proxies of `s`'s lists there: their
//! give-backs wait in its batch (INV-RELEASE-BATCH), which under loom holds two, so the second
//! drop enters `s` and runs both in one critical section of the export table. Meanwhile another
//! thread receives a third reference to one of the lists in `r2`, as a proxy (its origin
//! reference moves to a proxy's in the same table), and drops it. Every count balances at
//! every step (INV-LEDGER, checked in each section), each list is freed once, in `s`, when its
//! last reference comes back (INV-EXPORT-COUNTED, INV-RELEASE-IN-OWNER), and the table ends
//! empty.
#![cfg(loom)]

use loom::thread;
use xinterp::{Outgoing, Runtime};

#[test]
fn joined_give_backs_race_another_holder_of_the_same_export() {
    xinterp_loom_tests::model(
        "joined_give_backs_race_another_holder_of_the_same_export",
        || {
            let rt = Runtime::new();
            let (s, r, r2) = (
                rt.create().unwrap(),
                rt.create().unwrap(),
                rt.create().unwrap(),
            );
            let (ch, ch2) = (rt.create_channel(), rt.create_channel());
            rt.enter(s, |ts| {
                let (first, second) = (ts.list(&[]), ts.list(&[]));
                ch.send(ts, Outgoing::object(&first)).unwrap();
                ch.send(ts, Outgoing::object(&second)).unwrap();
                ch2.send(ts, Outgoing::object(&first)).unwrap();
            })
            .unwrap();

            let other = rt.clone();
            let ch2_there = ch2.clone();
            let t = thread::spawn(move || {
                other
                    .enter(r2, |tok| drop(ch2_there.recv(tok).unwrap()))
                    .unwrap()
            });
            rt.enter(s, |ts| {
                ts.switch(r, |tr| {
                    let proxies = [ch.recv(tr).unwrap(), ch.recv(tr).unwrap()];
                    drop(proxies);
                })
                .unwrap();
            })
            .unwrap();
            t.join().unwrap();

            assert!(
                rt.exports(s).unwrap().is_empty(),
                "every reference came back"
            );
            let c = rt.counters();
            assert_eq!(c.origin_refs_taken, 3);
            assert_eq!(c.origin_refs_released, 3);
            // All three waited in a batch: the two in `r` ran together.
            assert_eq!(c.releases_batched, 3);
            ch.destroy().unwrap();
            ch2.destroy().unwrap();
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
