//! The identity cache under a race: one thread drops the receiver's proxy for an object
//! while another receives the same object again. Both run in the receiving interpreter, so
//! its lock orders them (a release may let go of it for a moment, INV-RELEASE-SUSPEND):
//! the receive either finds the live proxy (a hit: the proxy absorbs the surplus reference) or
//! makes a new one after the old one is gone (a miss). Never a freed
//! proxy resurrected, never two live proxies for one object (INV-IDENTITY-ONE), and the
//! ledger balances at the end (INV-LEDGER).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, ObjKind, Outgoing};
use xinterp_loom_tests::{recv_owned, setup};

#[test]
fn identity_cache_lookup_racing_proxy_dealloc() {
    xinterp_loom_tests::model("identity_cache_lookup_racing_proxy_dealloc", || {
        let (rt, s, r, ch) = setup(Config::default());
        let target = rt
            .enter(s, |tok| {
                let target = tok.list(&[]);
                ch.send(tok, Outgoing::object(&target)).unwrap();
                ch.send(tok, Outgoing::object(&target)).unwrap();
                target.unbind()
            })
            .unwrap();
        let first = recv_owned(&rt, r, &ch);

        let dropper_rt = rt.clone();
        let dropper = thread::spawn(move || dropper_rt.enter(r, move |_| drop(first)).unwrap());
        rt.enter(r, |tok| {
            let again = ch.recv(tok).unwrap();
            assert_eq!(again.kind(), ObjKind::Proxy);
        })
        .unwrap();
        dropper.join().unwrap();

        // Whether the second receive hit or missed, each proxy made was a miss, and no
        // reference was lost or doubled.
        let c = rt.counters();
        assert_eq!(c.identity_misses + c.identity_hits, 2);
        assert_eq!(c.proxies_created, c.identity_misses);
        drop(target);
        // The ledger: every reference given back.
        xinterp_loom_tests::assert_balanced(&rt);
    });
}
