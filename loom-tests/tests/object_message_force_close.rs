//! An object-pointer message is in flight when its channel is force-closed while another
//! thread receives. The message owns its origin reference: it becomes the receiver's proxy,
//! or the close gives it back; exactly one of the two, exactly once (INV-LEDGER,
//! INV-EXPORT-COUNTED, INV-CHAN-DROP-OUTSIDE).
#![cfg(loom)]

use loom::thread;
use xinterp::{Close, Config, ErrorKind};
use xinterp_loom_tests::{send_kept, setup, Item};

#[test]
fn a_message_in_flight_when_its_channel_is_force_closed() {
    xinterp_loom_tests::model(
        "a_message_in_flight_when_its_channel_is_force_closed",
        || {
            let (rt, s, r, ch) = setup(Config::default());
            let target = send_kept(&rt, s, &ch, Item::Object, |tok| tok.list(&[]));

            let (receiver_rt, receiver_ch) = (rt.clone(), ch.clone());
            let receiver = thread::spawn(move || {
                receiver_rt
                    .enter(r, |tok| match receiver_ch.recv(tok) {
                        Ok(proxy) => proxy.len().map(|n| n == 0).unwrap(),
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::ChannelClosed, "{e}");
                            false
                        }
                    })
                    .unwrap()
            });
            ch.close(Close::Force).unwrap();
            let _received = receiver.join().unwrap();

            drop(target);
            // The reference went back exactly once.
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
