//! Two runtimes in one process (audit F1, F2).
//!
//! A thread inside runtime 1's interpreter `x` drops runtime 2's last handle. Runtime 2's
//! finalization runs there, and the final drain of its main runs a pending call that drops a
//! buffer item owned by `x`: its release (`Switch`) must enter `x`. Finalization lets go of
//! the interpreter the thread holds first (INV-FINALIZE-SUSPENDS, INV-ONE-LOCK), so the
//! release can enter `x`, while another thread enters `x` too. No interleaving deadlocks,
//! and runtime 1 balances at the end.
//! (That runtimes refuse each other's items, INV-RUNTIME-OWN, has no race to model: it is
//! checked by `tests/findings.rs`.)
#![cfg(loom)]

use loom::thread;
use xinterp::{Outgoing, Runtime};

#[test]
fn dropping_a_runtime_inside_another_runtimes_interpreter() {
    xinterp_loom_tests::model(
        "dropping_a_runtime_inside_another_runtimes_interpreter",
        || {
            let rt1 = Runtime::new();
            let rt2 = Runtime::new();
            let x = rt1.create().unwrap();
            let item = rt1
                .enter(x, |tok| Outgoing::buffer(&tok.bytes(b"pinned")).unwrap())
                .unwrap();
            rt2.call_soon(rt2.main(), move |_tok| drop(item)).unwrap();

            let other = rt1.clone();
            let t = thread::spawn(move || other.enter(x, |tok| drop(tok.int(1))).unwrap());
            // `rt2` is moved in: this is its last handle.
            rt1.enter(x, move |_tok| drop(rt2)).unwrap();
            t.join().unwrap();

            xinterp_loom_tests::assert_balanced(&rt1);
        },
    );
}
