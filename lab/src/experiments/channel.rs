//! `channel`: what one item costs to send, receive and release, by payload size, for
//! zero-copy buffer items and copied bytes items, beside crossbeam-channel (same thread and
//! two threads) and a plain memcpy of the payload, all measured in this run.

use std::hint::black_box;

use xinterp::{Config, InterpId, Outgoing, ReleaseStrategy, Runtime};

use crate::measure::{per_op, Sample};
use crate::report::{Experiment, Ratio, Row};

/// Payload sizes: 64 B, 4 KiB, 1 MiB, 16 MiB.
pub const SIZES: [usize; 4] = [64, 4 << 10, 1 << 20, 16 << 20];

/// Operations per repetition for a payload of `size` bytes: enough work to time, bounded
/// so that copying 16 MiB payloads stays within seconds.
fn ops_for(size: usize, scale: f64, copies: bool) -> u64 {
    let base = if copies {
        ((256usize << 20) / size).clamp(8, 20_000)
    } else {
        20_000
    };
    ((base as f64 * scale) as u64).max(4)
}

fn label_size(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

/// Items handed over per switch from `s` to `r`. Zero-copy items always go 64 at a time;
/// copied ones in batches of at most 1 MiB, so that the copies are not charged for the
/// allocator faulting in fresh pages for many live megabytes (the bounded crossbeam
/// channel it is compared with keeps one item in flight).
fn batch_for(size: usize, zero_copy: bool) -> u64 {
    if zero_copy {
        64
    } else {
        ((1usize << 20) / size).clamp(1, 64) as u64
    }
}

/// One thread, in batches: send items in `s`, switch to `r`, receive and drop them (each
/// view's release enters `s`, which the switch let go of).
fn cross_interpreter(
    rt: &Runtime,
    s: InterpId,
    r: InterpId,
    size: usize,
    zero_copy: bool,
    reps: usize,
    ops: u64,
) -> Sample {
    let cid = rt.channel_create();
    let payload = rt
        .enter(s, |tok| tok.bytes(&vec![7u8; size]).unbind())
        .expect("entering s");
    let batch = batch_for(size, zero_copy);
    let sample = per_op(reps, ops, |n| {
        rt.enter(s, |ts| {
            let mut left = n;
            while left > 0 {
                let now = left.min(batch);
                left -= now;
                let obj = payload.bind(ts).expect("owned by s");
                for _ in 0..now {
                    let item = if zero_copy {
                        Outgoing::buffer(&obj)
                    } else {
                        Outgoing::bytes(&obj)
                    };
                    ts.send(cid, item.expect("bytes export")).expect("sending");
                }
                // `obj` is bound to `ts`: it must go before the switch (the compiler checks).
                drop(obj);
                ts.switch(r, |tr| {
                    for _ in 0..now {
                        black_box(tr.recv(cid).expect("an item is queued").id());
                    }
                })
                .expect("switching to r");
            }
        })
        .expect("entering s")
    });
    drop(payload);
    rt.channel_destroy(cid).expect("destroying the channel");
    sample
}

/// Same interpreter: send and receive in `s` (the channel's own cost, no switch).
fn same_interpreter(rt: &Runtime, s: InterpId, size: usize, reps: usize, ops: u64) -> Sample {
    let cid = rt.channel_create();
    let sample = rt
        .enter(s, |ts| {
            let obj = ts.bytes(&vec![7u8; size]);
            per_op(reps, ops, |n| {
                for _ in 0..n {
                    ts.send(cid, Outgoing::bytes(&obj).expect("bytes"))
                        .expect("sending");
                    black_box(ts.recv(cid).expect("queued").id());
                }
            })
        })
        .expect("entering s");
    rt.channel_destroy(cid).expect("destroying the channel");
    sample
}

fn crossbeam_same_thread(size: usize, reps: usize, ops: u64) -> Sample {
    let (tx, rx) = crossbeam_channel::bounded::<Box<[u8]>>(1);
    let payload = vec![7u8; size];
    per_op(reps, ops, |n| {
        for _ in 0..n {
            tx.send(payload.as_slice().into()).expect("receiver alive");
            black_box(rx.recv().expect("sender alive"));
        }
    })
}

fn crossbeam_two_threads(size: usize, reps: usize, ops: u64) -> Sample {
    let payload = vec![7u8; size];
    per_op(reps, ops, |n| {
        let (tx, rx) = crossbeam_channel::bounded::<Box<[u8]>>(64);
        std::thread::scope(|scope| {
            let payload = &payload;
            scope.spawn(move || {
                for _ in 0..n {
                    tx.send(payload.as_slice().into()).expect("receiver alive");
                }
            });
            for _ in 0..n {
                black_box(rx.recv().expect("sender alive"));
            }
        });
    })
}

fn memcpy(size: usize, reps: usize, ops: u64) -> Sample {
    let src = vec![7u8; size];
    let mut dst = vec![0u8; size];
    per_op(reps, ops, |n| {
        for _ in 0..n {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        }
    })
}

pub fn run(reps: usize, scale: f64, out: &std::path::Path) -> Experiment {
    let rt = Runtime::with_config(Config::default().release(ReleaseStrategy::Switch));
    let s = rt.create().expect("creating s");
    let r = rt.create().expect("creating r");
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let index = |rows: &Vec<Row>| rows.len() - 1;

    let mut zero_copy_rows = Vec::new();
    for size in SIZES {
        let size_label = label_size(size);
        let ops = ops_for(size, scale, false);
        let copy_ops = ops_for(size, scale, true);

        let before = rt.counters();
        let sample = cross_interpreter(&rt, s, r, size, true, reps, ops);
        rows.push(
            Row::new(&format!("{size_label}: zero-copy buffer, S -> R"), sample)
                .counted(&rt, &before),
        );
        let zero = index(&rows);
        zero_copy_rows.push(zero);

        let before = rt.counters();
        let sample = cross_interpreter(&rt, s, r, size, false, reps, copy_ops);
        rows.push(
            Row::new(&format!("{size_label}: copied bytes, S -> R"), sample).counted(&rt, &before),
        );
        let copied = index(&rows);

        let sample = same_interpreter(&rt, s, size, reps, copy_ops);
        rows.push(Row::new(
            &format!("{size_label}: copied bytes, same interpreter"),
            sample,
        ));
        let same = index(&rows);

        rows.push(Row::new(
            &format!("{size_label}: crossbeam bounded, same thread"),
            crossbeam_same_thread(size, reps, copy_ops),
        ));
        let cb_same = index(&rows);
        rows.push(Row::new(
            &format!("{size_label}: crossbeam bounded, two threads"),
            crossbeam_two_threads(size, reps, copy_ops),
        ));

        rows.push(Row::new(
            &format!("{size_label}: memcpy of the payload"),
            memcpy(size, reps, copy_ops),
        ));
        let copy = index(&rows);

        ratios.push(Ratio::of(
            &rows,
            zero,
            copy,
            &format!("{size_label}: zero-copy / memcpy"),
        ));
        ratios.push(Ratio::of(
            &rows,
            copied,
            zero,
            &format!("{size_label}: copied / zero-copy"),
        ));
        ratios.push(Ratio::of(
            &rows,
            same,
            cb_same,
            &format!("{size_label}: MemChannel bytes (same interp) / crossbeam"),
        ));
    }
    let (first, last) = (zero_copy_rows[0], zero_copy_rows[SIZES.len() - 1]);
    ratios.insert(
        0,
        Ratio::of(&rows, last, first, "zero-copy 16 MiB / zero-copy 64 B"),
    );

    // CPython's own channels, from the same run.
    let mut notes = Vec::new();
    match crate::cpython::run(out, reps.min(5), &SIZES) {
        Ok(peer) => {
            notes.push(format!(
                "CPython peer: {} ({}): _interpchannels send_buffer or send, recv in a \
                 subinterpreter, 64 items per exec",
                peer.version,
                peer.python.display()
            ));
            for (i, size) in SIZES.into_iter().enumerate() {
                let size_label = label_size(size);
                let ours_zero = zero_copy_rows[i];
                let ours_copied = ours_zero + 1;
                for (kind, ours, what) in [
                    ("buffer", ours_zero, "send_buffer + recv"),
                    ("bytes", ours_copied, "send + recv (bytes)"),
                ] {
                    if let Some(sample) = peer.sample(size, kind) {
                        rows.push(Row::new(
                            &format!("{size_label}: CPython {} {what}", peer.version),
                            sample.clone(),
                        ));
                        let theirs = rows.len() - 1;
                        ratios.push(Ratio::of(
                            &rows,
                            theirs,
                            ours,
                            &format!("{size_label}: CPython {kind} / xinterp {kind}"),
                        ));
                    }
                }
            }
        }
        Err(why) => notes.push(format!("CPython peer: not available: {why}")),
    }

    Experiment {
        name: "channel".into(),
        question: "Is handing over a view (not its data) cheap, at every size?".into(),
        params: vec![
            (
                "sizes".into(),
                SIZES
                    .iter()
                    .map(|&s| label_size(s))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("release strategy".into(), "switch".into()),
            (
                "items per switch S -> R".into(),
                "zero-copy: 64; copied: up to 64, at most 1 MiB in flight".into(),
            ),
            (
                "zero-copy ops per repetition".into(),
                ops_for(64, scale, false).to_string(),
            ),
        ],
        rows,
        ratios,
        notes,
    }
}
