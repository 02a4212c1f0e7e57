//! The deferred bound overflowing while the owner is destroyed. With `Deferred` releases and
//! `deferred_limit(1)`, the owner's inbox already holds one call, so a received view dropped
//! in the receiver finds the inbox full and switches into the owner instead
//! (`Refused::Full`), while the main thread destroys the owner. The release runs exactly
//! once, in the owner: by the switch (the destroy waits, `InterpreterBusy`), queued before
//! the seal (the final drain runs it), or late after it (INV-RELEASE-IN-OWNER,
//! INV-INBOX-SEALED, INV-RELEASE-BOUNDED: the switched release does not run the queued
//! call). The queued call runs exactly once, in the final drain, and every object is freed
//! (INV-LEDGER).
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use xinterp::{Config, ReleaseStrategy};
use xinterp_loom_tests::{sent_and_received, Item};

#[test]
fn a_deferred_release_past_the_bound_racing_the_owners_destroy() {
    xinterp_loom_tests::model(
        "a_deferred_release_past_the_bound_racing_the_owners_destroy",
        || {
            let config = Config::default()
                .release(ReleaseStrategy::Deferred)
                .deferred_limit(1);
            let (rt, s, r, view) =
                sent_and_received(config, Item::Buffer, |tok| tok.bytes(b"view"));
            // The inbox is at its bound: the view's release cannot be queued behind this.
            let ran = Arc::new(AtomicUsize::new(0));
            let ran2 = ran.clone();
            rt.call_soon(s, move |_| {
                ran2.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
            assert_eq!(rt.info(s).unwrap().inbox_depth, 1);

            let releaser_rt = rt.clone();
            let releaser = thread::spawn(move || {
                releaser_rt.enter(r, move |_| drop(view)).unwrap();
            });
            // The switched release may be inside `s` right now.
            let report = xinterp_loom_tests::destroy_when_idle(&rt, s);
            releaser.join().unwrap();

            assert_eq!(
                ran.load(Ordering::Relaxed),
                1,
                "the queued call ran exactly once"
            );
            assert!(report.pending_run >= 1, "{report:?}");
            assert!(report.pinned_exports <= 1, "{report:?}");
            let c = rt.counters();
            assert_eq!(
                c.releases_switched + c.releases_deferred + c.releases_late,
                1,
                "one release, one way"
            );
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
