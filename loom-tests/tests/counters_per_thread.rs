//! Counters kept per thread and summed on read (INV-COUNTER-CACHE): two threads count in the
//! same counters of one runtime, each entering its own interpreter (so each counts in its own
//! block, written with a load and a store, no read-modify-write), while a third takes
//! snapshots. In every interleaving a later snapshot never shows less than an earlier one (so
//! `Counters::since` never underflows), also when a thread exits and its block is retired into
//! the runtime's shared block by the next registration, and after the joins the sums are
//! exact.
#![cfg(loom)]

use loom::thread;
use xinterp::{Counters, InterpId, Runtime};

/// Every counter of `later` is at least `earlier`'s.
fn assert_not_behind(earlier: &Counters, later: &Counters) {
    for ((name, was), (_, is)) in earlier.fields().into_iter().zip(later.fields()) {
        assert!(is >= was, "{name} went back from {was} to {is}");
    }
}

#[test]
fn snapshots_racing_per_thread_counts_are_monotone_and_exact() {
    xinterp_loom_tests::model(
        "snapshots_racing_per_thread_counts_are_monotone_and_exact",
        || {
            let rt = Runtime::new();
            let (a, b) = (rt.create().unwrap(), rt.create().unwrap());
            let start = rt.counters();
            let count_in = |id: InterpId| {
                let rt = rt.clone();
                // One entry (its `enters`), one object allocated and freed inside it.
                thread::spawn(move || rt.enter(id, |tok| drop(tok.list(&[]))).unwrap())
            };
            let (ta, tb) = (count_in(a), count_in(b));

            let first = rt.counters();
            let second = rt.counters();
            assert_not_behind(&start, &first);
            assert_not_behind(&first, &second);

            ta.join().unwrap();
            tb.join().unwrap();
            let end = rt.counters();
            assert_not_behind(&second, &end);
            let counted = end.since(&start);
            assert_eq!(counted.enters, 2);
            assert_eq!(counted.objects_allocated, 2);
            assert_eq!(counted.objects_freed, 2);
        },
    );
}
