//! `switch`: what entering an interpreter, and switching to another and back, costs, with
//! and without a second thread contending for the same interpreter. Baseline: a plain
//! mutex lock and unlock, measured in the same run.

use std::hint::black_box;
use std::sync::Mutex;

use xinterp::Runtime;

use crate::measure::per_op;
use crate::report::{Experiment, Ratio, Row};

pub fn run(reps: usize, scale: f64) -> Experiment {
    let ops = ((200_000.0 * scale) as u64).max(100);
    let rt = Runtime::new();
    let main = rt.main();
    let other = rt.create().expect("creating an interpreter");
    let mut rows = Vec::new();

    let mutex = Mutex::new(0u64);
    let sample = per_op(reps, ops, |n| {
        for _ in 0..n {
            *mutex.lock().expect("never poisoned") += 1;
        }
    });
    rows.push(Row::new("std Mutex lock + unlock (baseline)", sample));

    let before = rt.counters();
    let sample = per_op(reps, ops, |n| {
        for _ in 0..n {
            rt.enter(main, |tok| black_box(tok.id()))
                .expect("entering main");
        }
    });
    rows.push(Row::new("enter + leave, uncontended", sample).counted(&rt, &before));

    let before = rt.counters();
    let sample = per_op(reps, ops, |n| {
        rt.enter(main, |tok| {
            for _ in 0..n {
                tok.switch(other, |t| black_box(t.id())).expect("switching");
            }
        })
        .expect("entering main");
    });
    rows.push(Row::new("switch A -> B -> A, uncontended", sample).counted(&rt, &before));

    let before = rt.counters();
    let sample = per_op(reps, ops, |n| {
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
    rows.push(
        Row::new("enter + leave, 2 threads on one interpreter", sample).counted(&rt, &before),
    );

    let ratios = vec![
        Ratio::of(&rows, 1, 0, "enter + leave / mutex lock + unlock"),
        Ratio::of(&rows, 2, 1, "switch round trip / enter + leave"),
        Ratio::of(&rows, 3, 1, "contended / uncontended enter + leave"),
    ];
    Experiment {
        name: "switch".into(),
        question: "What does entering an interpreter, and switching to another and back, cost?"
            .into(),
        params: vec![("ops per repetition".into(), ops.to_string())],
        rows,
        ratios,
        notes: Vec::new(),
    }
}
