//! A thread pins an export in `s` (a buffer item sent) while another thread's view of an
//! earlier item is dropped in `r`, its release running in `s`. The owner's count of pinned
//! exports is changed without a read-modify-write, by load and store: every change is made
//! while holding `s` (INV-RELEASE-IN-OWNER), so no change is lost, whichever comes first.
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, Outgoing, ReleaseStrategy};
use xinterp_loom_tests::{sent_and_received, Item};

fn pin_racing_release(strategy: ReleaseStrategy) {
    let config = Config::default().release(strategy);
    let (rt, s, r, view) = sent_and_received(config, Item::Buffer, |tok| tok.bytes(b"first"));
    let ch = rt.channel(rt.channels()[0]);
    assert_eq!(rt.info(s).unwrap().pinned_exports, 1);

    let releaser_rt = rt.clone();
    let releaser = thread::spawn(move || {
        releaser_rt.enter(r, move |_| drop(view)).unwrap();
    });
    rt.enter(s, |tok| {
        let second = tok.bytes(b"second");
        ch.send(tok, Outgoing::buffer(&second).unwrap()).unwrap();
    })
    .unwrap();
    releaser.join().unwrap();

    // A deferred release waits in `s`'s inbox until a drain runs it.
    rt.drain(s).unwrap();
    assert_eq!(
        rt.info(s).unwrap().pinned_exports,
        1,
        "the second item's pin, and nothing lost"
    );
    assert_eq!(rt.counters().buffers_released, 1);
    ch.destroy().unwrap();
    xinterp_loom_tests::assert_balanced(&rt);
}

#[test]
fn a_pin_racing_a_switched_release_in_its_owner() {
    xinterp_loom_tests::model("a_pin_racing_a_switched_release_in_its_owner", || {
        pin_racing_release(ReleaseStrategy::Switch)
    });
}

#[test]
fn a_pin_racing_a_deferred_release_in_its_owner() {
    xinterp_loom_tests::model("a_pin_racing_a_deferred_release_in_its_owner", || {
        pin_racing_release(ReleaseStrategy::Deferred)
    });
}
