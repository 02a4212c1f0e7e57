//! A forced close races a send by the owner of the queued items, under `Switch`. A buffer
//! item of `s` is queued; a thread in `s` sends a second one while the main thread
//! force-closes the channel. The close takes the items out under the channel's mutex and
//! drops them after letting go of it, so each release can wait for `s` (held by the sender)
//! without the sender ever waiting for the channel's mutex behind it; a send refused by the
//! closed channel drops its item in `s`, directly (INV-CHAN-DROP-OUTSIDE,
//! INV-RELEASE-IN-OWNER). No interleaving deadlocks, the sender is told `Ok` or
//! `ChannelClosed`, and every export is released exactly once.
#![cfg(loom)]

use loom::thread;
use xinterp::{Close, ErrorKind, Outgoing, Runtime};
use xinterp_loom_tests::{send, Item};

#[test]
fn a_forced_close_racing_a_send_by_the_items_owner() {
    xinterp_loom_tests::model("a_forced_close_racing_a_send_by_the_items_owner", || {
        let rt = Runtime::new(); // Switch
        let s = rt.create().unwrap();
        let ch = rt.create_channel();
        send(&rt, s, &ch, Item::Buffer, |tok| tok.bytes(b"first"));

        let (sender_rt, sender_ch) = (rt.clone(), ch.clone());
        let sender = thread::spawn(move || {
            sender_rt
                .enter(s, |tok| {
                    sender_ch.send(tok, Outgoing::buffer(&tok.bytes(b"second")).unwrap())
                })
                .unwrap()
        });
        ch.close(Close::Force).unwrap();
        let sent = sender.join().unwrap();

        if let Err(e) = sent {
            assert_eq!(e.kind(), ErrorKind::ChannelClosed, "{e}");
        }
        assert_eq!(ch.info().unwrap().count, 0, "nothing left queued");
        // Every export released exactly once.
        xinterp_loom_tests::assert_balanced(&rt);
    });
}
