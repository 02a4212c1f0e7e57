//! A proxy is dropped on one thread while its origin is destroyed under
//! `OwnerDeath::Refuse` on another (audit F6, the stress test's CI failure). `Refuse`
//! ignores releases on their way back, so the destroy may begin after the proxy's release
//! has started and before it has entered the origin; that release then runs in the final
//! drain or late (INV-INBOX-SEALED, INV-RELEASE-IN-OWNER). The report must not count the
//! object it frees as leaked: it is a pending release (`pending_releases`, at most one
//! here), and `leaked_objects` equals `pinned_exports` (0). After the join every object is
//! freed (INV-LEDGER).
#![cfg(loom)]

use loom::thread;
use xinterp::Config;
use xinterp_loom_tests::{sent_and_received, Item};

#[test]
fn a_proxy_release_racing_a_refuse_destroy_of_its_origin() {
    xinterp_loom_tests::model(
        "a_proxy_release_racing_a_refuse_destroy_of_its_origin",
        || {
            // Switch, Refuse
            let (rt, s, r, proxy) =
                sent_and_received(Config::default(), Item::Object, |tok| tok.list(&[]));

            let rt2 = rt.clone();
            let t = thread::spawn(move || rt2.enter(r, move |_| drop(proxy)).unwrap());
            // The proxy is still held, or its release is inside `s`.
            let report = xinterp_loom_tests::destroy_when_idle(&rt, s);
            t.join().unwrap();

            assert_eq!(report.leaked_objects, report.pinned_exports, "{report:?}");
            assert_eq!(report.leaked_objects, 0, "{report:?}");
            assert!(report.pending_releases <= 1, "{report:?}");
            // Nothing actually leaks.
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
