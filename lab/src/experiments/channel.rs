//! `channel`: what one item costs to send, receive and release, by payload size, for
//! zero-copy buffer items and copied bytes items, beside crossbeam-channel (same thread and
//! two threads) and a plain memcpy of the payload, all measured in this run.

use std::hint::black_box;

use xinterp::{Config, InterpId, Outgoing, ReleaseStrategy, Runtime};

use crate::measure::Harness;
use crate::plot::{Axis, Chart, Point, Series, Ticks};
use crate::results::{params, Experiment, Metric, Row};
use crate::stats::Sample;

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

/// `64 B`, `4 KiB`, `16 MiB`.
pub fn label_size(size: usize) -> String {
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
    (s, r): (InterpId, InterpId),
    size: usize,
    zero_copy: bool,
    h: &Harness,
    what: &str,
    ops: u64,
) -> Sample {
    let ch = rt.create_channel();
    let payload = rt
        .enter(s, |tok| tok.bytes(&vec![7u8; size]).unbind())
        .expect("entering s");
    let batch = batch_for(size, zero_copy);
    let sample = h.per_op(what, ops, |n| {
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
                    ch.send(ts, item.expect("bytes export")).expect("sending");
                }
                // `obj` is bound to `ts`: it must go before the switch (the compiler checks).
                drop(obj);
                ts.switch(r, |tr| {
                    for _ in 0..now {
                        black_box(ch.recv(tr).expect("an item is queued").id());
                    }
                })
                .expect("switching to r");
            }
        })
        .expect("entering s")
    });
    drop(payload);
    ch.destroy().expect("destroying the channel");
    sample
}

/// Same interpreter: send and receive in `s` (the channel's own cost, no switch).
fn same_interpreter(
    rt: &Runtime,
    s: InterpId,
    size: usize,
    h: &Harness,
    what: &str,
    ops: u64,
) -> Sample {
    let ch = rt.create_channel();
    let sample = rt
        .enter(s, |ts| {
            let obj = ts.bytes(&vec![7u8; size]);
            h.per_op(what, ops, |n| {
                for _ in 0..n {
                    ch.send(ts, Outgoing::bytes(&obj).expect("bytes"))
                        .expect("sending");
                    black_box(ch.recv(ts).expect("queued").id());
                }
            })
        })
        .expect("entering s");
    ch.destroy().expect("destroying the channel");
    sample
}

/// Crossbeam's two channel kinds, one item in flight on one thread: the bounded one (a ring,
/// one compare-and-swap a side) and the unbounded one (a list of blocks, two
/// read-modify-writes a side), which like MemChannel never refuses a send for want of room.
#[derive(Clone, Copy)]
enum Crossbeam {
    Bounded,
    Unbounded,
}

fn crossbeam_same_thread(
    kind: Crossbeam,
    size: usize,
    h: &Harness,
    what: &str,
    ops: u64,
) -> Sample {
    let (tx, rx) = match kind {
        Crossbeam::Bounded => crossbeam_channel::bounded::<Box<[u8]>>(1),
        Crossbeam::Unbounded => crossbeam_channel::unbounded::<Box<[u8]>>(),
    };
    let payload = vec![7u8; size];
    h.per_op(what, ops, |n| {
        for _ in 0..n {
            tx.send(payload.as_slice().into()).expect("receiver alive");
            black_box(rx.recv().expect("sender alive"));
        }
    })
}

fn crossbeam_two_threads(size: usize, h: &Harness, what: &str, ops: u64) -> Sample {
    let payload = vec![7u8; size];
    h.per_op(what, ops, |n| {
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

fn memcpy(size: usize, h: &Harness, what: &str, ops: u64) -> Sample {
    let src = vec![7u8; size];
    let mut dst = vec![0u8; size];
    h.per_op(what, ops, |n| {
        for _ in 0..n {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        }
    })
}

/// The series measured at every size, in the order measured.
const SERIES: [&str; 7] = [
    "zero-copy buffer, S -> R",
    "copied bytes, S -> R",
    "copied bytes, same interpreter",
    "crossbeam bounded, same thread",
    "crossbeam unbounded, same thread",
    "crossbeam bounded, two threads",
    "memcpy of the payload",
];

fn row(series: &str, size: usize, sample: Sample) -> Row {
    let gbps = Sample::from_reps(sample.reps.iter().map(|ns| size as f64 / ns).collect());
    Row::with_metrics(
        &format!("{}: {series}", label_size(size)),
        vec![
            Metric::new("time per item", "ns", sample),
            Metric::new("throughput", "GB/s", gbps),
        ],
    )
    .param("size_bytes", size as u64)
    .param("series", series)
}

/// Runs the experiment; `python` names a CPython to use as the peer (else one is looked
/// for).
pub fn run(h: &Harness, python: Option<&std::path::Path>) -> Experiment {
    let rt = Runtime::with_config(Config::default().release(ReleaseStrategy::Switch));
    let s = rt.create().expect("creating s");
    let r = rt.create().expect("creating r");
    let mut e = Experiment::new(
        "channel",
        "Is handing over a view (not its data) cheap, at every size?",
        params([
            (
                "sizes_bytes",
                serde_json::Value::Array(SIZES.iter().map(|&s| (s as u64).into()).collect()),
            ),
            ("release_strategy", "switch".into()),
            ("zero_copy_items_per_switch", 64.into()),
            (
                "copied_items_per_switch",
                "up to 64, at most 1 MiB in flight".into(),
            ),
            ("zero_copy_ops_per_rep", ops_for(64, h.scale, false).into()),
        ]),
    );
    let mut zero_copy_rows = Vec::new();
    let mut copied_rows = Vec::new();
    for size in SIZES {
        let size_label = label_size(size);
        let ops = ops_for(size, h.scale, false);
        let copy_ops = ops_for(size, h.scale, true);
        let what = |series: &str| format!("{size_label}: {series}");
        let all = |ops: u64| h.ops_counted(ops);

        let before = rt.counters();
        let sample = cross_interpreter(&rt, (s, r), size, true, h, &what(SERIES[0]), ops);
        let zero = e.push(row(SERIES[0], size, sample).counted_per_op(&rt, &before, all(ops)));
        zero_copy_rows.push(zero);
        let before = rt.counters();
        let sample = cross_interpreter(&rt, (s, r), size, false, h, &what(SERIES[1]), copy_ops);
        let copied =
            e.push(row(SERIES[1], size, sample).counted_per_op(&rt, &before, all(copy_ops)));
        copied_rows.push(copied);
        let sample = same_interpreter(&rt, s, size, h, &what(SERIES[2]), copy_ops);
        let same = e.push(row(SERIES[2], size, sample));
        let sample = crossbeam_same_thread(Crossbeam::Bounded, size, h, &what(SERIES[3]), copy_ops);
        let cb_same = e.push(row(SERIES[3], size, sample));
        let sample =
            crossbeam_same_thread(Crossbeam::Unbounded, size, h, &what(SERIES[4]), copy_ops);
        let cb_unbounded = e.push(row(SERIES[4], size, sample));
        let sample = crossbeam_two_threads(size, h, &what(SERIES[5]), copy_ops);
        e.push(row(SERIES[5], size, sample));
        let sample = memcpy(size, h, &what(SERIES[6]), copy_ops);
        let copy = e.push(row(SERIES[6], size, sample));

        e.ratio(&format!("{size_label}: zero-copy / memcpy"), zero, copy);
        e.ratio(&format!("{size_label}: copied / zero-copy"), copied, zero);
        e.ratio(
            &format!("{size_label}: MemChannel bytes (same interp) / crossbeam"),
            same,
            cb_same,
        );
        e.ratio(
            &format!("{size_label}: MemChannel bytes (same interp) / crossbeam unbounded"),
            same,
            cb_unbounded,
        );
    }
    let (first, last) = (zero_copy_rows[0], zero_copy_rows[SIZES.len() - 1]);
    e.ratio("zero-copy 16 MiB / zero-copy 64 B", last, first);

    // CPython's own channels, from the same run.
    // One subprocess per repetition (each warms up first), so that in the lab's rounds the
    // peer's repetitions interleave with ours like every other row's.
    let runs = h.repeat("CPython peer (_interpchannels)", |rep| match rep {
        None => Err(String::new()),
        Some(_) => crate::experiments::cpython::run(python, 1, &SIZES),
    });
    let peer = match runs.iter().find_map(|r| r.as_ref().err()) {
        Some(why) => Err(why.clone()),
        None => crate::experiments::cpython::Peer::merge(runs.into_iter().flatten().collect())
            .ok_or_else(|| "no repetition ran".to_string()),
    };
    let mut cpython_1mib = None;
    match peer {
        Ok(peer) => {
            e.notes.push(format!(
                "CPython peer: {} ({}): _interpchannels send_buffer or send, recv in a \
                 subinterpreter, 64 items per exec, {} repetitions",
                peer.version,
                peer.python.display(),
                h.reps
            ));
            e.params
                .insert("cpython".into(), peer.version.clone().into());
            for (i, size) in SIZES.into_iter().enumerate() {
                let size_label = label_size(size);
                for (kind, ours, what) in [
                    ("buffer", zero_copy_rows[i], "send_buffer + recv"),
                    ("bytes", copied_rows[i], "send + recv (bytes)"),
                ] {
                    if let Some(sample) = peer.sample(size, kind) {
                        let series = format!("CPython {} {what}", peer.version);
                        let theirs = e.push(row(&series, size, sample.clone()));
                        let label = format!("{size_label}: CPython {kind} / xinterp {kind}");
                        e.ratio(&label, theirs, ours);
                        if size == 1 << 20 && kind == "buffer" {
                            cpython_1mib = Some(label);
                        }
                    }
                }
            }
        }
        Err(why) => e.notes.push(format!("CPython peer: not available: {why}")),
    }
    charts(&mut e);
    let mut text = format!(
        "Measured by channel (send + receive + release per item between two interpreters on \
         one thread, 64 items per switch, switch release strategy, {} repetitions): a \
         zero-copy item costs {} at 64 B and {} at 16 MiB (16 MiB / 64 B: {}); at 1 MiB it \
         costs {} of a memcpy of the payload (zero-copy / memcpy).",
        h.reps,
        e.rows[first].headline().show(),
        e.rows[last].headline().show(),
        e.show_ratio("zero-copy 16 MiB / zero-copy 64 B"),
        e.show_ratio("1 MiB: zero-copy / memcpy"),
    );
    match cpython_1mib {
        Some(label) => text.push_str(&format!(
            " CPython's send_buffer + recv / ours at 1 MiB: {}.",
            e.show_ratio(&label)
        )),
        None => text.push_str(" CPython peer: not available in this run (see the channel notes)."),
    }
    e.answer(1, text);
    e
}

fn charts(e: &mut Experiment) {
    let mut series: Vec<(String, Vec<Point>, Vec<Point>)> = Vec::new();
    for row in &e.rows {
        let (Some(size), Some(name)) = (
            row.params.get("size_bytes").and_then(|v| v.as_f64()),
            row.params.get("series").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let time = Point::of(size, &row.headline().sample);
        let gbps = row.metric("throughput").map(|m| Point::of(size, &m.sample));
        match series.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, t, g)) => {
                t.push(time);
                g.extend(gbps);
            }
            None => series.push((name.to_string(), vec![time], gbps.into_iter().collect())),
        }
    }
    let time = series
        .iter()
        .map(|(n, t, _)| Series {
            name: n.clone(),
            points: t.clone(),
        })
        .collect();
    let gbps = series
        .iter()
        .map(|(n, _, g)| Series {
            name: n.clone(),
            points: g.clone(),
        })
        .collect();
    e.charts.push(Chart::lines(
        "channel",
        "channel: time per item by payload size",
        Axis::log("payload size", Ticks::Bytes),
        Axis::log("time per item", Ticks::Nanos),
        time,
    ));
    e.charts.push(Chart::lines(
        "channel-throughput",
        "channel: throughput by payload size (payload bytes handed over per second)",
        Axis::log("payload size", Ticks::Bytes),
        Axis::log("throughput (GB/s, 10^9 bytes per second)", Ticks::Plain),
        gbps,
    ));
}
