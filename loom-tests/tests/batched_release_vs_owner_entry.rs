//! A thread switches from `s` to `r` and drops views of `s` there: the releases wait in the
//! thread's batch (INV-RELEASE-BATCH). Under loom the batch holds two, so the second drop
//! enters `s` for both and a third waits until the thread takes `s` back. Meanwhile another
//! thread enters `s`, or tries to destroy it: the batch's entry and the taking back wait for
//! the lock like any entry, the destroy is refused while the thread is switched out of `s`
//! (INV-DESTROY-IDLE), and every export comes back in `s`.
#![cfg(loom)]

use loom::thread;
use xinterp::{Channel, ErrorKind, InterpId, Outgoing, Runtime};

/// In `s`: sends `n` zero-copy items, switches to `r`, receives and drops them there.
/// Fails only if `s` is gone.
fn send_and_drop_in_r(
    rt: &Runtime,
    ch: &Channel,
    (s, r): (InterpId, InterpId),
    n: usize,
) -> xinterp::Result<()> {
    rt.enter(s, |ts| {
        let data = ts.bytes(b"pinned");
        for _ in 0..n {
            ch.send(ts, Outgoing::buffer(&data).unwrap()).unwrap();
        }
        drop(data);
        ts.switch(r, |tr| {
            for _ in 0..n {
                drop(ch.recv(tr).unwrap());
            }
        })
        .unwrap();
        assert_eq!(ts.info().pinned_exports, 0, "the batch ran on the way back");
    })
}

#[test]
fn a_full_batch_and_the_way_back_wait_for_the_owner_like_any_entry() {
    xinterp_loom_tests::model(
        "a_full_batch_and_the_way_back_wait_for_the_owner_like_any_entry",
        || {
            let rt = Runtime::new();
            let (s, r) = (rt.create().unwrap(), rt.create().unwrap());
            let ch = rt.create_channel();
            let other = rt.clone();
            let t = thread::spawn(move || other.enter(s, |tok| drop(tok.int(1))).unwrap());
            send_and_drop_in_r(&rt, &ch, (s, r), 3).unwrap();
            t.join().unwrap();
            assert_eq!(rt.info(s).unwrap().pinned_exports, 0);
            let c = rt.counters();
            assert_eq!((c.releases_batched, c.releases_switched), (3, 1));
            ch.destroy().unwrap();
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}

#[test]
fn an_owner_with_a_waiting_batch_is_not_destroyed() {
    xinterp_loom_tests::model("an_owner_with_a_waiting_batch_is_not_destroyed", || {
        let rt = Runtime::new();
        let (s, r) = (rt.create().unwrap(), rt.create().unwrap());
        let ch = rt.create_channel();
        let other = rt.clone();
        let t = thread::spawn(move || other.destroy(s));
        let entered = send_and_drop_in_r(&rt, &ch, (s, r), 1);
        match (t.join().unwrap(), entered) {
            // The destroy came first: the entry found no interpreter.
            (Ok(report), Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::InterpreterNotFound);
                assert_eq!(report.leaked_objects, 0);
            }
            // The round came first and was whole.
            (Ok(report), Ok(())) => assert_eq!(report.leaked_objects, 0),
            // The thread was in `s` or switched out of it, its batch waiting: refused.
            (Err(e), Ok(())) => {
                assert_eq!(e.kind(), ErrorKind::InterpreterBusy);
                assert_eq!(rt.destroy(s).unwrap().leaked_objects, 0);
            }
            (Err(e1), Err(e2)) => panic!("both failed: {e1}; {e2}"),
        }
        ch.destroy().unwrap();
        xinterp_loom_tests::assert_balanced(&rt);
    });
}
