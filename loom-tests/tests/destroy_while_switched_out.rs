//! A thread enters X and switches out of it to main while another thread destroys X. X's
//! lock is free while the thread is out, but the thread is still registered in X, so the
//! destroy is refused until it has come back and left (INV-DESTROY-IDLE): it never returns
//! to a destroyed interpreter.
#![cfg(loom)]

use loom::thread;
use xinterp::{ErrorKind, Runtime};

#[test]
fn an_interpreter_is_never_destroyed_under_a_switched_out_thread() {
    xinterp_loom_tests::model(
        "an_interpreter_is_never_destroyed_under_a_switched_out_thread",
        || {
            let rt = Runtime::new();
            let main = rt.main();
            let x = rt.create().unwrap();

            let other = rt.clone();
            let t = thread::spawn(move || {
                other.enter(x, |tok| {
                    let kept = tok.str("in x").unbind();
                    tok.switch(main, |in_main| drop(in_main.none())).unwrap();
                    // Back in x: it still exists, and so does its object.
                    assert_eq!(kept.bind(tok).unwrap().to_rust_string().unwrap(), "in x");
                })
            });
            let destroyed = rt.destroy(x);
            let entered = t.join().unwrap();
            match (destroyed, entered) {
                // The destroy came first: the entry found no interpreter.
                (Ok(report), Err(e)) => {
                    assert_eq!(e.kind(), ErrorKind::InterpreterNotFound);
                    assert_eq!(report.leaked_objects, 0);
                }
                // The entry came first and was whole; then the destroy found nobody inside.
                (Ok(report), Ok(())) => assert_eq!(report.leaked_objects, 0),
                // The thread was inside (or switched out): refused; it succeeds now.
                (Err(e), Ok(())) => {
                    assert_eq!(e.kind(), ErrorKind::InterpreterBusy);
                    assert_eq!(rt.destroy(x).unwrap().leaked_objects, 0);
                }
                (Err(e1), Err(e2)) => panic!("both failed: {e1}; {e2}"),
            }
            xinterp_loom_tests::assert_balanced(&rt);
        },
    );
}
