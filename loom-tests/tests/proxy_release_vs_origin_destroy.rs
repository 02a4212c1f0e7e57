//! A proxy is dropped on one thread while its origin is destroyed (under `Invalidate`) on
//! another, under each release strategy. Either the release runs first and the destroy
//! finds nothing held, or the destroy invalidates the export and the release finds nothing
//! to do; no freed memory is touched and nothing is released twice (INV-OWNER-DEATH,
//! INV-RELEASE-IN-OWNER, INV-LEDGER).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, OwnerDeath, ReleaseStrategy};
use xinterp_loom_tests::{sent_and_received, Item};

fn proxy_release_racing_origin_destroy(strategy: ReleaseStrategy) {
    let config = Config::default()
        .release(strategy)
        .owner_death(OwnerDeath::Invalidate);
    let (rt, s, r, proxy) = sent_and_received(config, Item::Object, |tok| tok.list(&[]));

    let releaser_rt = rt.clone();
    let releaser = thread::spawn(move || releaser_rt.enter(r, move |_| drop(proxy)).unwrap());
    // A release may be inside `s` right now.
    let report = xinterp_loom_tests::destroy_when_idle(&rt, s);
    releaser.join().unwrap();

    assert!(report.invalidated_exports <= 1);
    assert_eq!(report.leaked_objects, 0);
    // Freed exactly once.
    xinterp_loom_tests::assert_balanced(&rt);
}

#[test]
fn switch_proxy_release_racing_origin_destroy() {
    xinterp_loom_tests::model("switch_proxy_release_racing_origin_destroy", || {
        proxy_release_racing_origin_destroy(ReleaseStrategy::Switch)
    });
}

#[test]
fn deferred_proxy_release_racing_origin_destroy() {
    xinterp_loom_tests::model("deferred_proxy_release_racing_origin_destroy", || {
        proxy_release_racing_origin_destroy(ReleaseStrategy::Deferred)
    });
}

#[test]
fn adaptive_proxy_release_racing_origin_destroy() {
    xinterp_loom_tests::model("adaptive_proxy_release_racing_origin_destroy", || {
        proxy_release_racing_origin_destroy(ReleaseStrategy::Adaptive)
    });
}
