//! An identity-cache hit on a proxy that sits on a dealloc worklist. In the receiver `r`, a
//! list `[p1, p0]` holds the only references to two proxies (of two objects of `s`). One
//! thread drops the list: the worklist pops the last child first, so `p0` is freed first,
//! and its release (`Switch`) lets go of `r` for a moment while it enters `s`
//! (INV-RELEASE-SUSPEND). Meanwhile another thread enters `r` and receives `p1`'s object
//! again: the cache still maps it to `p1`, which has not reached zero (the worklist owns a
//! reference to it), so this is a hit that takes an ordinary reference, and the worklist's
//! decref later leaves `p1` alive or frees it whole (INV-IDENTITY-ONE). Every reference,
//! absorbed ones included, goes back: the export table ends empty and every object is
//! freed (INV-LEDGER).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, ObjKind, Outgoing};
use xinterp_loom_tests::setup;

#[test]
fn an_identity_hit_on_a_proxy_waiting_on_a_dealloc_worklist() {
    xinterp_loom_tests::model(
        "an_identity_hit_on_a_proxy_waiting_on_a_dealloc_worklist",
        || {
            // Switch, identity cache on
            let (rt, s, r, ch) = setup(Config::default());
            // `s` keeps no handles: each export entry holds its object's only reference.
            rt.enter(s, |tok| {
                let (one, zero) = (tok.list(&[]), tok.dict());
                ch.send(tok, Outgoing::object(&one)).unwrap();
                ch.send(tok, Outgoing::object(&zero)).unwrap();
                ch.send(tok, Outgoing::object(&one)).unwrap();
            })
            .unwrap();
            let holder = rt
                .enter(r, |tok| {
                    let p1 = ch.recv(tok).unwrap();
                    let p0 = ch.recv(tok).unwrap();
                    tok.list(&[p1, p0]).unbind()
                })
                .unwrap();

            let dropper_rt = rt.clone();
            let dropper =
                thread::spawn(move || dropper_rt.enter(r, move |_| drop(holder)).unwrap());
            rt.enter(r, |tok| {
                let again = ch.recv(tok).unwrap();
                assert_eq!(again.kind(), ObjKind::Proxy);
                assert_eq!(again.len().unwrap(), 0, "the proxy stands for the list");
            })
            .unwrap();
            dropper.join().unwrap();

            let c = rt.counters();
            assert_eq!(c.identity_misses + c.identity_hits, 3);
            assert_eq!(c.proxies_created, c.identity_misses);
            // The ledger: every reference given back, every object freed.
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
