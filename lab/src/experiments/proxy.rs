//! `proxy`: what a RemoteProxy costs against the local object it stands for, with the
//! switches counted beside the times: local clone + drop, forwarded calls against a direct
//! call plus a bare switch round trip, and receives that hit or miss the identity cache.

use std::hint::black_box;

use xinterp::{ClassDef, Config, Obj, Outgoing, Result, Runtime};

use crate::measure::per_op;
use crate::report::{Experiment, Ratio, Row};

fn bump<'t>(this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    let n = this.getattr("n").map_or(Ok(0), |n| n.as_int())? + 1;
    this.setattr("n", &this.token().int(n))?;
    Ok(this.token().none())
}

pub fn run(reps: usize, scale: f64) -> Experiment {
    let ops = ((200_000.0 * scale) as u64).max(100);
    let call_ops = ((50_000.0 * scale) as u64).max(100);
    let rt = Runtime::with_config(Config::default().identity_cache(true));
    let s = rt.create().expect("creating s");
    let r = rt.create().expect("creating r");
    let cid = rt.channel_create();
    let mut rows = Vec::new();

    let counter = rt
        .enter(s, |tok| {
            let counter = tok
                .class(ClassDef::new("Counter").method("bump", bump))
                .call(&[]);
            let counter = counter.expect("instantiating");
            tok.send(cid, Outgoing::object(&counter)).expect("sending");
            counter.unbind()
        })
        .expect("entering s");
    let proxy = rt
        .enter(r, |tok| tok.recv(cid).expect("received").unbind())
        .expect("entering r");

    // Local clone + drop of an ordinary object, then of the proxy, in the same interpreter.
    let before = rt.counters();
    let local = rt
        .enter(r, |tok| {
            let obj = tok.list(&[]);
            per_op(reps, ops, |n| {
                for _ in 0..n {
                    drop(black_box(obj.clone()));
                }
            })
        })
        .expect("entering r");
    rows.push(Row::new("local object: clone + drop", local).counted(&rt, &before));
    let before = rt.counters();
    let remote = rt
        .enter(r, |tok| {
            let p = proxy.bind(tok).expect("owned by r");
            per_op(reps, ops, |n| {
                for _ in 0..n {
                    drop(black_box(p.clone()));
                }
            })
        })
        .expect("entering r");
    rows.push(Row::new("proxy: clone + drop", remote).counted(&rt, &before));

    // A method call made directly in the origin, a bare switch round trip, and the same
    // call forwarded through the proxy.
    let direct = rt
        .enter(s, |tok| {
            let c = counter.bind(tok).expect("owned by s");
            per_op(reps, call_ops, |n| {
                for _ in 0..n {
                    black_box(c.call_method("bump", &[]).expect("bump"));
                }
            })
        })
        .expect("entering s");
    rows.push(Row::new("direct method call in the origin", direct));
    let before = rt.counters();
    let switch = rt
        .enter(r, |tok| {
            per_op(reps, call_ops, |n| {
                for _ in 0..n {
                    tok.switch(s, |t| black_box(t.id())).expect("switching");
                }
            })
        })
        .expect("entering r");
    rows.push(Row::new("bare switch R -> S -> R", switch).counted(&rt, &before));
    let before = rt.counters();
    let forwarded = rt
        .enter(r, |tok| {
            let p = proxy.bind(tok).expect("owned by r");
            per_op(reps, call_ops, |n| {
                for _ in 0..n {
                    black_box(p.call_method("bump", &[]).expect("bump"));
                }
            })
        })
        .expect("entering r");
    rows.push(Row::new("forwarded method call", forwarded).counted(&rt, &before));

    // Receives of an object whose proxy is alive (hits), and of distinct objects (misses);
    // the sends are part of both.
    let batch = 64u64;
    let before = rt.counters();
    let hits = per_op(reps, call_ops, |n| {
        let mut left = n;
        while left > 0 {
            let now = left.min(batch);
            left -= now;
            rt.enter(s, |tok| {
                let c = counter.bind(tok).expect("owned by s");
                for _ in 0..now {
                    tok.send(cid, Outgoing::object(&c)).expect("sending");
                }
            })
            .expect("entering s");
            rt.enter(r, |tok| {
                for _ in 0..now {
                    black_box(tok.recv(cid).expect("queued"));
                }
            })
            .expect("entering r");
        }
    });
    rows.push(Row::new("send + receive, identity-cache hit", hits).counted(&rt, &before));
    let before = rt.counters();
    let misses = per_op(reps, call_ops, |n| {
        let mut left = n;
        while left > 0 {
            let now = left.min(batch);
            left -= now;
            rt.enter(s, |tok| {
                for _ in 0..now {
                    tok.send(cid, Outgoing::object(&tok.list(&[])))
                        .expect("sending");
                }
            })
            .expect("entering s");
            rt.enter(r, |tok| {
                let received: Vec<_> = (0..now).map(|_| tok.recv(cid).expect("queued")).collect();
                black_box(&received);
                // Dropped after timing their receive would be fairer still; their releases
                // (one switch each) are part of this row, and counted.
            })
            .expect("entering r");
        }
    });
    rows.push(Row::new("send + receive, identity-cache miss", misses).counted(&rt, &before));

    drop((proxy, counter));
    rt.channel_destroy(cid).expect("destroying the channel");

    // The same object received again and again with the identity cache off: a new proxy
    // each time (PEP 797's behaviour), kept alive like the hits above.
    let rt_off = Runtime::with_config(Config::default().identity_cache(false));
    let (s2, r2) = (rt_off.create().expect("s"), rt_off.create().expect("r"));
    let cid2 = rt_off.channel_create();
    let target = rt_off
        .enter(s2, |tok| tok.list(&[]).unbind())
        .expect("entering s");
    let before = rt_off.counters();
    let off = per_op(reps, call_ops, |n| {
        let mut left = n;
        while left > 0 {
            let now = left.min(batch);
            left -= now;
            rt_off
                .enter(s2, |tok| {
                    let t = target.bind(tok).expect("owned by s");
                    for _ in 0..now {
                        tok.send(cid2, Outgoing::object(&t)).expect("sending");
                    }
                })
                .expect("entering s");
            rt_off
                .enter(r2, |tok| {
                    let received: Vec<_> =
                        (0..now).map(|_| tok.recv(cid2).expect("queued")).collect();
                    black_box(&received);
                })
                .expect("entering r");
        }
    });
    rows.push(
        Row::new("send + receive, identity cache off (same object)", off).counted(&rt_off, &before),
    );
    drop(target);

    let direct_plus_switch = rows[2].time.median_ns + rows[3].time.median_ns;
    let ratios = vec![
        Ratio::of(&rows, 1, 0, "proxy clone+drop / local clone+drop"),
        Ratio {
            label: "forwarded call / (direct call + switch round trip)".into(),
            value: rows[4].time.median_ns / direct_plus_switch,
        },
        Ratio::of(&rows, 5, 6, "identity hit / identity miss"),
        Ratio::of(
            &rows,
            5,
            7,
            "identity cache on (hit) / cache off, same object",
        ),
    ];
    Experiment {
        name: "proxy".into(),
        question: "What does \"switch to the origin on refcount changes\" cost against a plain \
                   refcount, and what does identity preservation cost and save?"
            .into(),
        params: vec![
            ("clone ops per repetition".into(), ops.to_string()),
            (
                "call and receive ops per repetition".into(),
                call_ops.to_string(),
            ),
            ("release strategy".into(), "switch".into()),
        ],
        rows,
        ratios,
        notes: Vec::new(),
    }
}
