//! A received view is dropped on one thread while its owner is destroyed on another, under
//! each release strategy. The release runs exactly once, in the owner, before or after its
//! destruction (a late entry), and no freed memory is touched (INV-RELEASE-IN-OWNER,
//! INV-OWNER-OUTLIVES).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, ReleaseStrategy};
use xinterp_loom_tests::{sent_and_received, Item};

fn view_release_racing_owner_destroy(strategy: ReleaseStrategy) {
    let config = Config::default().release(strategy);
    let (rt, s, r, view) = sent_and_received(config, Item::Buffer, |tok| tok.bytes(b"view"));

    let releaser_rt = rt.clone();
    let releaser = thread::spawn(move || {
        releaser_rt.enter(r, move |_| drop(view)).unwrap();
    });
    // A deferred or switching release may be inside `s` right now.
    let destroyed = xinterp_loom_tests::destroy_when_idle(&rt, s);
    releaser.join().unwrap();

    assert!(destroyed.pinned_exports <= 1);
    let c = rt.counters();
    assert_eq!(
        c.releases_switched + c.releases_deferred + c.releases_late,
        1,
        "one release, one way"
    );
    // Released exactly once.
    xinterp_loom_tests::assert_balanced(&rt);
}

#[test]
fn switch_release_racing_owner_destroy() {
    xinterp_loom_tests::model("switch_release_racing_owner_destroy", || {
        view_release_racing_owner_destroy(ReleaseStrategy::Switch)
    });
}

#[test]
fn deferred_release_racing_owner_destroy() {
    xinterp_loom_tests::model("deferred_release_racing_owner_destroy", || {
        view_release_racing_owner_destroy(ReleaseStrategy::Deferred)
    });
}

#[test]
fn adaptive_release_racing_owner_destroy() {
    xinterp_loom_tests::model("adaptive_release_racing_owner_destroy", || {
        view_release_racing_owner_destroy(ReleaseStrategy::Adaptive)
    });
}
