//! A forwarded call races a destroy of its origin under `OwnerDeath::Invalidate`. The call
//! finds the origin destroyed (before it enters, or when `run_in` refuses it), or enters
//! first and keeps the destroy out (`InterpreterBusy`, retried) until it has left: the
//! target is never touched after the destroy released its export (INV-PROXY-CALL-PINS,
//! INV-OWNER-DEATH, INV-DESTROY-IDLE). The caller gets the right value or `InterpreterGone`,
//! nothing else, and at the end every object is freed (INV-LEDGER).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, ErrorKind, OwnerDeath};
use xinterp_loom_tests::{sent_and_received, Item};

#[test]
fn a_forwarded_call_racing_an_invalidate_destroy_of_its_origin() {
    xinterp_loom_tests::model(
        "a_forwarded_call_racing_an_invalidate_destroy_of_its_origin",
        || {
            let config = Config::default().owner_death(OwnerDeath::Invalidate);
            let (rt, s, r, proxy) = sent_and_received(config, Item::Object, |tok| {
                tok.list(&[tok.int(1), tok.int(2)])
            });

            let caller_rt = rt.clone();
            let caller = thread::spawn(move || {
                caller_rt
                    .enter(r, move |tok| {
                        let len = proxy.bind(tok).unwrap().len();
                        // Dropped in `r`: live or dead, the proxy goes with its entry.
                        drop(proxy);
                        len
                    })
                    .unwrap()
            });
            // The forwarded call may be inside `s` right now.
            let report = xinterp_loom_tests::destroy_when_idle(&rt, s);
            let len = caller.join().unwrap();

            match len {
                Ok(n) => assert_eq!(n, 2),
                Err(e) => assert_eq!(e.kind(), ErrorKind::InterpreterGone, "{e}"),
            }
            assert!(report.invalidated_exports <= 1);
            assert_eq!(report.leaked_objects, 0);
            // Freed exactly once.
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
