//! A buffer item is queued; one thread receives it (and drops the view) while another
//! force-closes the channel. The export is released exactly once, in its owner, whichever
//! wins (INV-RELEASE-IN-OWNER, INV-CHAN-DROP-OUTSIDE).
#![cfg(loom)]

use loom::thread;
use xinterp::{Close, Config, ErrorKind};
use xinterp_loom_tests::{send_kept, setup, Item};

#[test]
fn a_buffer_item_in_flight_when_its_channel_is_force_closed() {
    xinterp_loom_tests::model(
        "a_buffer_item_in_flight_when_its_channel_is_force_closed",
        || {
            let (rt, s, r, ch) = setup(Config::default());
            let array = send_kept(&rt, s, &ch, Item::Buffer, |tok| tok.bytearray(b"in flight"));

            let (receiver_rt, receiver_ch) = (rt.clone(), ch.clone());
            let receiver = thread::spawn(move || {
                receiver_rt
                    .enter(r, |tok| match receiver_ch.recv(tok) {
                        Ok(view) => view.to_bytes().map(|_| true).unwrap(),
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::ChannelClosed, "{e}");
                            false
                        }
                    })
                    .unwrap()
            });
            ch.close(Close::Force).unwrap();
            let _received = receiver.join().unwrap();

            // Released exactly once, whichever way it went: the exporter can resize again, and
            // exports balance.
            let exports = rt
                .enter(s, |tok| array.bind(tok).unwrap().export_count().unwrap())
                .unwrap();
            assert_eq!(exports, 0);
            drop(array);
            let c = rt.counters();
            assert_eq!(c.releases_direct + c.releases_switched, 1);
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
