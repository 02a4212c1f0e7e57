//! Runtime finalization racing a release that is inside an interpreter. An `Outgoing` or an
//! `Incoming` holds no counted runtime handle, so the last `Runtime` handle can go while a
//! thread drops one: its buffer's release enters the owner (`Switch`) while the main thread
//! drops the last handle and finalizes every interpreter. Finalization's `begin_destroy`
//! retries (yielding) while the release is inside, and a release that comes after the owner
//! is destroyed runs late (INV-DESTROY-IDLE, INV-INBOX-SEALED, INV-RELEASE-IN-OWNER). The
//! property is that every interleaving completes: no deadlock, no assertion in the library.
//! What can be observed afterwards, with the runtime gone: a call queued on the owner ran
//! exactly once, in its final drain.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use xinterp::{Outgoing, Runtime};
use xinterp_loom_tests::{send, Item};

/// Queues a call on `id` that counts its runs.
fn count_runs(rt: &Runtime, id: xinterp::InterpId) -> Arc<AtomicUsize> {
    let ran = Arc::new(AtomicUsize::new(0));
    let ran2 = ran.clone();
    rt.call_soon(id, move |_| {
        ran2.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    ran
}

#[test]
fn finalization_racing_the_release_of_a_dropped_outgoing() {
    xinterp_loom_tests::model(
        "finalization_racing_the_release_of_a_dropped_outgoing",
        || {
            let rt = Runtime::new(); // Switch
            let s = rt.create().unwrap();
            let item = rt
                .enter(s, |tok| Outgoing::buffer(&tok.bytes(b"pinned")).unwrap())
                .unwrap();
            let ran = count_runs(&rt, s);

            // This thread holds no interpreter and no counted handle.
            let dropper = thread::spawn(move || drop(item));
            drop(rt); // the last handle: finalizes `s`, then main
            dropper.join().unwrap();

            assert_eq!(
                ran.load(Ordering::Relaxed),
                1,
                "the final drain ran it once"
            );
        },
    );
}

#[test]
fn finalization_racing_the_release_of_a_dropped_incoming() {
    xinterp_loom_tests::model(
        "finalization_racing_the_release_of_a_dropped_incoming",
        || {
            let rt = Runtime::new(); // Switch
            let s = rt.create().unwrap();
            let ch = rt.create_channel();
            send(&rt, s, &ch, Item::Buffer, |tok| tok.bytes(b"pinned"));
            let incoming = rt
                .try_enter(rt.main(), |tok| ch.recv_wait(tok, None))
                .unwrap();
            let ran = count_runs(&rt, s);

            let dropper = thread::spawn(move || drop(incoming));
            drop(rt);
            dropper.join().unwrap();

            assert_eq!(
                ran.load(Ordering::Relaxed),
                1,
                "the final drain ran it once"
            );
        },
    );
}
