//! An experiment of your own, with the lab's harness: how long does it take to hand a
//! 64-byte bytes item from one interpreter to another and back, as a round trip over two
//! channels, against the same ping-pong between two OS threads over crossbeam-channel?
//!
//! It writes what a built-in experiment writes: `results.json`, `results.csv`, a plot and
//! `report.html`, every number a median with its 95% interval, the ratio with its interval
//! and verdict, the machine load meanwhile.
//!
//! Run it with `cargo run --release -p xinterp-lab --example own_experiment [-- OUT_DIR]`.

use std::hint::black_box;
use std::path::PathBuf;

use xinterp::{Outgoing, Runtime};
use xinterp_lab::measure::Harness;
use xinterp_lab::results::{params, Experiment, Row};
use xinterp_lab::Run;

fn main() -> Result<(), String> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("lab-results/own-{}", std::process::id())));
    // The folder is checked (new or empty, writable) before anything runs.
    let mut run = Run::with_settings(&out, params([("reps", 7.into())]))?;
    let h = Harness::new(7, 1.0);
    let round_trips = 20_000;

    run.experiment(&h, || {
        let mut e = Experiment::new(
            "ping-pong",
            "What does a 64-byte round trip between two interpreters on one thread cost, \
             against two OS threads over crossbeam-channel?",
            params([
                ("payload_bytes", 64.into()),
                ("round_trips_per_rep", round_trips.into()),
            ]),
        );

        let rt = Runtime::new();
        let (a, b) = (rt.create().expect("a"), rt.create().expect("b"));
        let (to_b, to_a) = (rt.create_channel(), rt.create_channel());
        let before = rt.counters();
        // `per_op` warms up, repeats, and shows a bar; the body runs `n` round trips.
        let sample = h.per_op("interpreters, one thread", round_trips, |n| {
            rt.enter(a, |ta| {
                for _ in 0..n {
                    let item = Outgoing::bytes(&ta.bytes(&[1; 64])).expect("bytes");
                    to_b.send(ta, item).expect("send");
                    ta.switch(b, |tb| {
                        let ping = to_b.recv(tb).expect("ping");
                        to_a.send(tb, Outgoing::bytes(&ping).expect("bytes"))
                            .expect("send");
                    })
                    .expect("switch");
                    black_box(to_a.recv(ta).expect("pong"));
                }
            })
            .expect("enter a");
        });
        // Operations run by that `per_op` call, warm-up included (in rounds, the lab runs
        // one repetition of every measurement per round).
        let all = h.ops_counted(round_trips);
        let ours = e.push(
            Row::new("two interpreters on one thread", sample).counted_per_op(&rt, &before, all),
        );

        let sample = h.per_op("OS threads, crossbeam", round_trips, |n| {
            let (ping_tx, ping_rx) = crossbeam_channel::bounded::<Box<[u8]>>(1);
            let (pong_tx, pong_rx) = crossbeam_channel::bounded::<Box<[u8]>>(1);
            std::thread::scope(|s| {
                s.spawn(move || {
                    for ping in ping_rx.iter() {
                        pong_tx.send(ping).expect("the pinger waits");
                    }
                });
                for _ in 0..n {
                    ping_tx
                        .send(vec![1; 64].into())
                        .expect("the ponger is alive");
                    black_box(pong_rx.recv().expect("the ponger answers"));
                }
                drop(ping_tx);
            });
        });
        let peer = e.push(Row::new("two OS threads over crossbeam", sample));

        let ratio = e
            .ratio("interpreters / OS threads, per round trip", ours, peer)
            .show();
        e.notes.push(format!("interpreters / OS threads: {ratio}"));
        e
    });

    // A table was printed; now the files (the plot is each row's median with its interval).
    for file in run.finish()? {
        println!("{}", file.display());
    }
    Ok(())
}
