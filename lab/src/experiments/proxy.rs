//! `proxy`: what a RemoteProxy costs against the local object it stands for, with the
//! switches counted beside the times.
//!
//! - Question 3: clone + drop of a handle to a local object, to one of our proxies (which
//!   enters its origin only when its local count goes 0 <-> 1, so never here), and to a
//!   modelled proxy that enters its origin on every refcount change (the design the seed
//!   thread described): each clone + drop of it also switches into the origin twice, once
//!   to incref the origin object and once to decref it.
//! - Question 2: a forwarded method call against a direct call plus a bare switch round
//!   trip.
//! - Question 4: receives that hit or miss the identity cache, and with the cache off.

use std::hint::black_box;

use xinterp::{ClassDef, Config, Obj, Outgoing, Result, Runtime};

use crate::measure::Harness;
use crate::results::{params, Experiment, Ratio, Row};

fn bump<'t>(this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    let n = this.getattr("n").map_or(Ok(0), |n| n.as_int())? + 1;
    this.setattr("n", &this.token().int(n))?;
    Ok(this.token().none())
}

/// Runs the experiment.
pub fn run(h: &Harness) -> Experiment {
    let ops = h.scaled(200_000, 100);
    let call_ops = h.scaled(50_000, 100);
    // Operations over a whole measurement, warm-up included: counters are divided by them.
    let all = |ops: u64| h.ops_counted(ops);
    let rt = Runtime::with_config(Config::default().identity_cache(true));
    let s = rt.create().expect("creating s");
    let r = rt.create().expect("creating r");
    let ch = rt.create_channel();
    let mut e = Experiment::new(
        "proxy",
        "What does \"switch to the origin on refcount changes\" cost against a plain \
         refcount, can a proxy be built end to end, and what does identity preservation cost \
         and save?",
        params([
            ("clone_ops_per_rep", ops.into()),
            ("call_and_receive_ops_per_rep", call_ops.into()),
            ("items_per_batch", 64.into()),
            ("release_strategy", "switch".into()),
            ("identity_cache", true.into()),
        ]),
    );

    let counter = rt
        .enter(s, |tok| {
            let counter = tok
                .class(ClassDef::new("Counter").method("bump", bump))
                .call(&[]);
            let counter = counter.expect("instantiating");
            ch.send(tok, Outgoing::object(&counter)).expect("sending");
            counter.unbind()
        })
        .expect("entering s");
    let proxy = rt
        .enter(r, |tok| ch.recv(tok).expect("received").unbind())
        .expect("entering r");
    let local = rt
        .enter(r, |tok| tok.list(&[]).unbind())
        .expect("entering r");

    // Question 3. A handle's clone + drop, made as `bind` (a new strong reference) and its
    // drop, so that all three rows do the same local work.
    let before = rt.counters();
    let sample = rt
        .enter(r, |tok| {
            h.per_op("local object: clone + drop", ops, |n| {
                for _ in 0..n {
                    drop(black_box(local.bind(tok).expect("owned by r")));
                }
            })
        })
        .expect("entering r");
    let local_row = e.push(
        Row::new("local object: clone + drop", sample).counted_per_op(&rt, &before, all(ops)),
    );
    let before = rt.counters();
    let sample = rt
        .enter(r, |tok| {
            h.per_op("proxy, ours: clone + drop", ops, |n| {
                for _ in 0..n {
                    drop(black_box(proxy.bind(tok).expect("owned by r")));
                }
            })
        })
        .expect("entering r");
    let ours_row = e.push(
        Row::new(
            "proxy, ours (enters the origin only on 0 <-> 1): clone + drop",
            sample,
        )
        .counted_per_op(&rt, &before, all(ops)),
    );
    let before = rt.counters();
    let sample = rt
        .enter(r, |tok| {
            h.per_op("proxy entering the origin on every change", ops, |n| {
                for _ in 0..n {
                    // The local incref and decref of the proxy...
                    drop(black_box(proxy.bind(tok).expect("owned by r")));
                    // ...each mirrored in the origin: one switch to incref the origin
                    // object (and, bind + drop being one pair, its decref), one more switch
                    // for the decref's own entry.
                    tok.switch(s, |ts| {
                        drop(black_box(counter.bind(ts).expect("owned by s")))
                    })
                    .expect("switching to the origin");
                    tok.switch(s, |ts| black_box(ts.id()))
                        .expect("switching to the origin");
                }
            })
        })
        .expect("entering r");
    let eager_row = e.push(
        Row::new(
            "proxy entering the origin on every refcount change (model): clone + drop",
            sample,
        )
        .counted_per_op(&rt, &before, all(ops)),
    );

    // Question 2. A method call made directly in the origin, a bare switch round trip, and
    // the same call forwarded through the proxy.
    let sample = rt
        .enter(s, |tok| {
            let c = counter.bind(tok).expect("owned by s");
            h.per_op("direct method call in the origin", call_ops, |n| {
                for _ in 0..n {
                    black_box(c.call_method("bump", &[]).expect("bump"));
                }
            })
        })
        .expect("entering s");
    let direct_row = e.push(Row::new("direct method call in the origin", sample));
    let before = rt.counters();
    let sample = rt
        .enter(r, |tok| {
            h.per_op("bare switch R -> S -> R", call_ops, |n| {
                for _ in 0..n {
                    tok.switch(s, |t| black_box(t.id())).expect("switching");
                }
            })
        })
        .expect("entering r");
    let switch_row = e.push(Row::new("bare switch R -> S -> R", sample).counted_per_op(
        &rt,
        &before,
        all(call_ops),
    ));
    let before = rt.counters();
    let sample = rt
        .enter(r, |tok| {
            let p = proxy.bind(tok).expect("owned by r");
            h.per_op("forwarded method call", call_ops, |n| {
                for _ in 0..n {
                    black_box(p.call_method("bump", &[]).expect("bump"));
                }
            })
        })
        .expect("entering r");
    let forwarded_row = e.push(
        Row::new("forwarded method call through the proxy", sample).counted_per_op(
            &rt,
            &before,
            all(call_ops),
        ),
    );

    // Question 4. Receives of an object whose proxy is alive (hits), and of distinct
    // objects (misses); the sends are part of both.
    let batch = 64u64;
    let before = rt.counters();
    let sample = h.per_op("identity-cache hit", call_ops, |n| {
        let mut left = n;
        while left > 0 {
            let now = left.min(batch);
            left -= now;
            rt.enter(s, |tok| {
                let c = counter.bind(tok).expect("owned by s");
                for _ in 0..now {
                    ch.send(tok, Outgoing::object(&c)).expect("sending");
                }
            })
            .expect("entering s");
            rt.enter(r, |tok| {
                for _ in 0..now {
                    black_box(ch.recv(tok).expect("queued"));
                }
            })
            .expect("entering r");
        }
    });
    let hit_row = e.push(
        Row::new("send + receive, identity-cache hit", sample).counted_per_op(
            &rt,
            &before,
            all(call_ops),
        ),
    );
    let before = rt.counters();
    let sample = h.per_op("identity-cache miss", call_ops, |n| {
        let mut left = n;
        while left > 0 {
            let now = left.min(batch);
            left -= now;
            rt.enter(s, |tok| {
                for _ in 0..now {
                    ch.send(tok, Outgoing::object(&tok.list(&[])))
                        .expect("sending");
                }
            })
            .expect("entering s");
            rt.enter(r, |tok| {
                let received: Vec<_> = (0..now).map(|_| ch.recv(tok).expect("queued")).collect();
                black_box(&received);
                // Their drops release the origin references, kept in the thread's batch
                // until it leaves `r` (one entry into `s` for all): part of this row, and
                // counted.
            })
            .expect("entering r");
        }
    });
    let miss_row = e.push(
        Row::new("send + receive, identity-cache miss", sample).counted_per_op(
            &rt,
            &before,
            all(call_ops),
        ),
    );

    drop((proxy, counter, local));
    ch.destroy().expect("destroying the channel");

    // The same object received again and again with the identity cache off: a new proxy
    // each time (PEP 797's behaviour), kept alive like the hits above.
    let rt_off = Runtime::with_config(Config::default().identity_cache(false));
    let (s2, r2) = (rt_off.create().expect("s"), rt_off.create().expect("r"));
    let ch2 = rt_off.create_channel();
    let target = rt_off
        .enter(s2, |tok| tok.list(&[]).unbind())
        .expect("entering s");
    let before = rt_off.counters();
    let sample = h.per_op("identity cache off", call_ops, |n| {
        let mut left = n;
        while left > 0 {
            let now = left.min(batch);
            left -= now;
            rt_off
                .enter(s2, |tok| {
                    let t = target.bind(tok).expect("owned by s");
                    for _ in 0..now {
                        ch2.send(tok, Outgoing::object(&t)).expect("sending");
                    }
                })
                .expect("entering s");
            rt_off
                .enter(r2, |tok| {
                    let received: Vec<_> =
                        (0..now).map(|_| ch2.recv(tok).expect("queued")).collect();
                    black_box(&received);
                })
                .expect("entering r");
        }
    });
    let off_row = e.push(
        Row::new("send + receive, identity cache off (same object)", sample).counted_per_op(
            &rt_off,
            &before,
            all(call_ops),
        ),
    );
    drop(target);

    e.ratio("eager proxy / our proxy, clone + drop", eager_row, ours_row);
    e.ratio(
        "our proxy / local object, clone + drop",
        ours_row,
        local_row,
    );
    e.ratio(
        "eager proxy / local object, clone + drop",
        eager_row,
        local_row,
    );
    let fwd = Ratio::of(
        &e.rows,
        &[forwarded_row],
        &[direct_row, switch_row],
        "forwarded call / (direct call + switch round trip)",
        1.0,
    );
    e.ratios.push(fwd);
    e.ratio("identity hit / identity miss", hit_row, miss_row);
    e.ratio(
        "identity cache on (hit) / cache off, same object",
        hit_row,
        off_row,
    );
    answer(
        &mut e,
        [local_row, ours_row, eager_row],
        forwarded_row,
        [hit_row, miss_row, off_row],
        ops,
        call_ops,
        h.reps,
    );
    e
}

fn switches_per_op(row: &Row) -> String {
    row.counters
        .get("switches_per_op")
        .map_or("0".into(), |v| v.to_string())
}

fn answer(
    e: &mut Experiment,
    [local, ours, eager]: [usize; 3],
    forwarded: usize,
    [hit, miss, off]: [usize; 3],
    ops: u64,
    call_ops: u64,
    reps: usize,
) {
    let show = |e: &Experiment, i: usize| e.rows[i].headline().show();
    let q3 = format!(
        "Measured by proxy ({ops} clone + drop per repetition, {reps} repetitions): a proxy \
         that enters its origin on every refcount change costs {} per clone + drop with {} \
         switches per operation counted; ours, which enters the origin only when its local \
         count goes 0 <-> 1, costs {} with {} switches; a local object costs {}. Eager / ours: \
         {}; ours / local: {}.",
        show(e, eager),
        switches_per_op(&e.rows[eager]),
        show(e, ours),
        switches_per_op(&e.rows[ours]),
        show(e, local),
        e.show_ratio("eager proxy / our proxy, clone + drop"),
        e.show_ratio("our proxy / local object, clone + drop"),
    );
    let q2 = format!(
        "Yes. Measured by proxy ({call_ops} calls per repetition, {reps} repetitions): a \
         method call forwarded through a proxy received over the channel runs in the origin \
         and costs {} ({} switches per call counted); forwarded / (direct call + bare switch \
         round trip): {}.",
        show(e, forwarded),
        switches_per_op(&e.rows[forwarded]),
        e.show_ratio("forwarded call / (direct call + switch round trip)"),
    );
    let q4 = format!(
        "Measured by proxy ({call_ops} send + receive per repetition, batches of 64, {reps} \
         repetitions): a receive that finds the proxy in the identity cache costs {}, one \
         that makes a new proxy {} (hit / miss: {}); with the cache off, receiving the same \
         object again costs {} (cache on / off: {}).",
        show(e, hit),
        show(e, miss),
        e.show_ratio("identity hit / identity miss"),
        show(e, off),
        e.show_ratio("identity cache on (hit) / cache off, same object"),
    );
    e.answer(2, q2);
    e.answer(3, q3);
    e.answer(4, q4);
}
