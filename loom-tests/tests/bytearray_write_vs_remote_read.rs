//! The owner of a `bytearray` writes one of its bytes (through a buffer of its own) while a
//! receiver reads the same byte through the view it received: the two threads hold
//! different interpreters, so nothing orders them. Every access to a `bytearray`'s bytes is
//! a relaxed atomic (INV-BUF-ATOMIC-BYTES; loom's atomics in model builds), so the race is
//! defined: the read gives the old byte or the new one, never anything else, and after the
//! join it gives the new one. At the end the export is released once and every object freed
//! (INV-RELEASE-IN-OWNER, INV-LEDGER).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, ObjKind, Runtime};
use xinterp_loom_tests::{send_kept, setup, Item};

#[test]
fn a_bytearray_write_racing_a_read_through_a_remote_view() {
    xinterp_loom_tests::model(
        "a_bytearray_write_racing_a_read_through_a_remote_view",
        || {
            let (rt, s, r, ch) = setup(Config::default());
            let array = send_kept(&rt, s, &ch, Item::Buffer, |tok| tok.bytearray(b"a"));
            let view = rt
                .enter(r, |tok| {
                    let view = ch.recv(tok).unwrap();
                    assert_eq!(view.kind(), ObjKind::View);
                    view.unbind()
                })
                .unwrap();

            let writer_rt = rt.clone();
            let writer = thread::spawn(move || {
                writer_rt
                    .enter(s, move |tok| {
                        let buffer = array.bind(tok).unwrap().get_buffer().unwrap();
                        buffer.set(0, b'b').unwrap();
                        drop(buffer);
                        drop(array);
                    })
                    .unwrap();
            });
            let read = |rt: &Runtime| {
                rt.enter(r, |tok| {
                    let buffer = view.bind(tok).unwrap().get_buffer().unwrap();
                    assert!(!buffer.readonly(), "a bytearray's view is writable");
                    buffer.get(0).unwrap()
                })
                .unwrap()
            };
            let during = read(&rt);
            writer.join().unwrap();
            let after = read(&rt);

            assert!(
                during == b'a' || during == b'b',
                "a racing read gives the old byte or the new one, got {during:#x}"
            );
            assert_eq!(after, b'b', "the join orders the write before this read");
            drop(view); // queued on r's inbox; its release then enters s
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
