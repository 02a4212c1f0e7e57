//! `switch`: what entering an interpreter, and switching to another and back, costs, with
//! and without a second thread contending for the same interpreter. Baseline: a plain
//! mutex lock and unlock, measured in the same run.

use std::hint::black_box;
use std::sync::Mutex;

use xinterp::Runtime;

use crate::measure::Harness;
use crate::results::{params, Experiment, Row};

/// Runs the experiment.
pub fn run(h: &Harness) -> Experiment {
    let ops = h.scaled(200_000, 100);
    let rt = Runtime::new();
    let main = rt.main();
    let other = rt.create().expect("creating an interpreter");
    let mut e = Experiment::new(
        "switch",
        "What does entering an interpreter, and switching to another and back, cost?",
        params([("ops_per_rep", ops.into())]),
    );

    let counted_ops = h.ops_counted(ops);
    let mutex = Mutex::new(0u64);
    let sample = h.per_op("std Mutex lock + unlock", ops, |n| {
        for _ in 0..n {
            *mutex.lock().expect("never poisoned") += 1;
        }
    });
    let mutex_row = e.push(Row::new("std Mutex lock + unlock (baseline)", sample));

    let before = rt.counters();
    let sample = h.per_op("enter + leave, uncontended", ops, |n| {
        for _ in 0..n {
            rt.enter(main, |tok| black_box(tok.id()))
                .expect("entering main");
        }
    });
    let enter_row = e.push(
        Row::new("enter + leave, uncontended", sample).counted_per_op(&rt, &before, counted_ops),
    );

    let before = rt.counters();
    let sample = h.per_op("switch A -> B -> A", ops, |n| {
        rt.enter(main, |tok| {
            for _ in 0..n {
                tok.switch(other, |t| black_box(t.id())).expect("switching");
            }
        })
        .expect("entering main");
    });
    let switch_row = e.push(
        Row::new("switch A -> B -> A, uncontended", sample).counted_per_op(
            &rt,
            &before,
            counted_ops,
        ),
    );

    let before = rt.counters();
    let sample = h.per_op("enter + leave, 2 threads", ops, |n| {
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..n / 2 {
                        rt.enter(main, |tok| black_box(tok.id()))
                            .expect("entering main");
                    }
                });
            }
        });
    });
    let contended_row = e.push(
        Row::new("enter + leave, 2 threads on one interpreter", sample).counted_per_op(
            &rt,
            &before,
            counted_ops,
        ),
    );

    e.ratio("enter + leave / mutex lock + unlock", enter_row, mutex_row);
    e.ratio("switch round trip / enter + leave", switch_row, enter_row);
    e.ratio(
        "contended / uncontended enter + leave",
        contended_row,
        enter_row,
    );
    e
}
