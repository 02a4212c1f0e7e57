//! A forwarded call races the drop of another handle to the same proxy. One thread in the
//! receiver calls `len()` on a proxy (bound from an `OwnedObj`); the call lets go of the
//! receiver while it runs in the origin, so a second thread can enter the receiver and drop
//! its own `OwnedObj` of the same proxy meanwhile. The call holds its own strong reference
//! to the target in the origin for its whole duration, and the caller's handle keeps the
//! proxy (INV-PROXY-CALL-PINS): it returns the right length, and at the end every object is
//! freed and the origin's export table is empty (INV-LEDGER).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, ObjKind};
use xinterp_loom_tests::{send, setup, Item};

#[test]
fn a_forwarded_call_racing_the_drop_of_another_handle_to_its_proxy() {
    xinterp_loom_tests::model(
        "a_forwarded_call_racing_the_drop_of_another_handle_to_its_proxy",
        || {
            let (rt, s, r, ch) = setup(Config::default());
            // `s` keeps no handle: the export entry holds the list's only reference.
            send(&rt, s, &ch, Item::Object, |tok| {
                tok.list(&[tok.int(1), tok.int(2), tok.int(3)])
            });
            let (calling, dropped) = rt
                .enter(r, |tok| {
                    let proxy = ch.recv(tok).unwrap();
                    assert_eq!(proxy.kind(), ObjKind::Proxy);
                    (proxy.clone().unbind(), proxy.unbind())
                })
                .unwrap();

            let dropper_rt = rt.clone();
            let dropper = thread::spawn(move || {
                dropper_rt.enter(r, move |_| drop(dropped)).unwrap();
            });
            let len = rt
                .enter(r, move |tok| {
                    let proxy = calling.bind(tok).unwrap();
                    // The bound handle is now the caller's reference to the proxy.
                    drop(calling);
                    proxy.len()
                })
                .unwrap();
            dropper.join().unwrap();

            assert_eq!(len.unwrap(), 3, "the forwarded call saw its target whole");
            // The ledger: every origin reference given back, every object freed.
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
