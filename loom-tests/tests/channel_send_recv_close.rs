//! A blocking send, a receive and a forced close race on one channel. In every
//! interleaving the sender is told the truth: `Ok` exactly when the receiver got the item,
//! `ChannelClosed` when the close discarded it (or came first), and whatever was discarded
//! is released (INV-CHAN-DROP-OUTSIDE, INV-RELEASE-IN-OWNER).
#![cfg(loom)]

use loom::thread;
use xinterp::{Close, ErrorKind, Outgoing, Runtime};

#[test]
fn a_blocking_send_a_receive_and_a_forced_close() {
    xinterp_loom_tests::model("a_blocking_send_a_receive_and_a_forced_close", || {
        let rt = Runtime::new();
        let s = rt.create().unwrap();
        let r = rt.main();
        let ch = rt.create_channel();

        let (sender_rt, sender_ch) = (rt.clone(), ch.clone());
        let sender = thread::spawn(move || {
            sender_rt
                .enter(s, |tok| {
                    let item = Outgoing::buffer(&tok.bytes(b"payload")).unwrap();
                    sender_ch.send_wait(tok, item, None)
                })
                .unwrap()
        });
        let received = rt
            .enter(r, |tok| match ch.recv(tok) {
                Ok(view) => {
                    assert_eq!(view.to_bytes().unwrap(), b"payload");
                    true
                }
                Err(e) => {
                    assert!(matches!(e.kind(), ErrorKind::ChannelEmpty), "{e}");
                    false
                }
            })
            .unwrap();
        ch.close(Close::Force).unwrap();
        let sent = sender.join().unwrap();

        match sent {
            Ok(()) => assert!(received, "the sender returned Ok, so the item was received"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::ChannelClosed, "{e}");
                assert!(!received);
            }
        }
        // The ledger of this part: every export given back, every object freed.
        xinterp_loom_tests::assert_balanced(&rt);
    });
}
