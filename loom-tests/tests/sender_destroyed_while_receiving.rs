//! A sender is destroyed while a receiver takes its buffer item. The destroy settles every
//! item the sender still has queued before its final drain: the payload is released in the
//! sender, by the destroying thread, and the item follows its unbound op: a marker that
//! holds nothing (`Replace`) or nothing at all (`Remove`) (INV-CHAN-SENDER-GONE). So the
//! receiver gets the view with its bytes intact (taken first; its release then enters the
//! sender, or runs late), or the `Unbound` marker, or `ChannelEmpty`: never a view onto
//! released memory. Every export is released exactly once and every object freed
//! (INV-RELEASE-IN-OWNER, INV-LEDGER).
#![cfg(loom)]

use loom::thread;
use xinterp::{ErrorKind, ObjKind, Runtime, UnboundOp};
use xinterp_loom_tests::{send, Item};

/// What the receiver got.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    View,
    Unbound,
    Empty,
}

fn sender_destroyed_while_receiving(op: UnboundOp) -> Got {
    let rt = Runtime::new();
    let s = rt.create().unwrap();
    let r = rt.create().unwrap();
    let ch = rt.create_channel_with(op);
    // `r` uses the receive end first, so the channel stays open when `s`'s association
    // ends with its destroy (a channel with no open association closes).
    rt.enter(r, |tok| {
        assert_eq!(ch.recv(tok).unwrap_err().kind(), ErrorKind::ChannelEmpty)
    })
    .unwrap();
    send(&rt, s, &ch, Item::Buffer, |tok| tok.bytes(b"payload"));

    let (receiver_rt, receiver_ch) = (rt.clone(), ch.clone());
    let receiver = thread::spawn(move || {
        receiver_rt
            .enter(r, |tok| match receiver_ch.recv(tok) {
                Ok(obj) if obj.kind() == ObjKind::View => {
                    assert_eq!(obj.to_bytes().unwrap(), b"payload", "bytes intact");
                    Got::View
                }
                Ok(obj) => {
                    assert_eq!(obj.kind(), ObjKind::Unbound);
                    Got::Unbound
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::ChannelEmpty, "{e}");
                    Got::Empty
                }
            })
            .unwrap()
    });
    // The view's release may be inside `s` right now.
    let report = xinterp_loom_tests::destroy_when_idle(&rt, s);
    let got = receiver.join().unwrap();

    assert!(report.pinned_exports <= 1, "{report:?}");
    // Every export released exactly once.
    xinterp_loom_tests::assert_balanced(&rt);
    assert_eq!(ch.info().unwrap().count, 0);
    got
}

#[test]
fn a_sender_destroyed_while_its_item_is_received_leaves_a_marker() {
    xinterp_loom_tests::model(
        "a_sender_destroyed_while_its_item_is_received_leaves_a_marker",
        || {
            let got = sender_destroyed_while_receiving(UnboundOp::Replace);
            assert_ne!(got, Got::Empty, "a Replace item stays as a marker");
        },
    );
}

#[test]
fn a_sender_destroyed_while_its_item_is_received_removes_it() {
    xinterp_loom_tests::model(
        "a_sender_destroyed_while_its_item_is_received_removes_it",
        || {
            let got = sender_destroyed_while_receiving(UnboundOp::Remove);
            assert_ne!(got, Got::Unbound, "a Remove item leaves the queue");
        },
    );
}
