//! A refcount touched by a thread that does not hold the owner is reported (INV-OWN-LOCKED).
//! With debug assertions the owner check panics first; without them the touch is a race on
//! the refcount cell, which loom reports as a causality violation. Both are expected
//! failures, kept as `should_panic`.
#![cfg(loom)]

use loom::thread;
use xinterp::Runtime;

fn touch_from_the_wrong_interpreter() {
    xinterp_loom_tests::model("touch_from_the_wrong_interpreter", || {
        let rt = Runtime::new();
        let a = rt.main();
        let b = rt.create().unwrap();
        let owned = rt.enter(a, |tok| tok.str("owned by a").unbind()).unwrap();
        let raw = owned.as_raw();

        let other = rt.clone();
        let t = thread::spawn(move || {
            other
                .enter(b, |tok| {
                    // SAFETY: deliberately broken: `raw` belongs to `a`, and this thread
                    // holds `b`. The model exists to show that this is reported.
                    drop(unsafe { tok.borrow_raw(raw) });
                })
                .unwrap();
        });
        rt.enter(a, |tok| drop(owned.bind(tok).unwrap())).unwrap();
        t.join().unwrap();
        drop(owned);
    });
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "wrong interpreter: incref of a Str object owned by interpreter 0")]
fn the_owner_check_reports_a_wrong_interpreter_touch() {
    touch_from_the_wrong_interpreter();
}

#[test]
#[cfg(not(debug_assertions))]
#[should_panic(expected = "Causality violation")]
fn loom_reports_a_wrong_interpreter_touch_as_a_race() {
    touch_from_the_wrong_interpreter();
}
