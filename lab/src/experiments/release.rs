//! `release`: Switch against Deferred against Adaptive under contention. `receivers`
//! interpreters hold views of one owner's buffer; `threads` threads drop them, while the
//! owner is itself busy (held by another thread) for `busy_share` of the time. Per strategy:
//! time per release until every export is back in the owner (throughput), the latency of the
//! drop that triggers each release, the owner's peak inbox depth and age, switches and lock
//! waits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use xinterp::{Config, Outgoing, OwnedObj, ReleaseStrategy, Runtime};

use crate::measure::Sample;
use crate::report::{Experiment, Ratio, Row};

/// The experiment's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub receivers: usize,
    pub threads: usize,
    pub busy_share: f64,
    pub views_per_receiver: usize,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One repetition: returns (ns per release until all are back, drop latencies in ns,
/// peak inbox depth, peak oldest age in µs, counters).
fn once(strategy: ReleaseStrategy, p: Params) -> (f64, Vec<u64>, u64, u64, xinterp::Counters) {
    let rt = Runtime::with_config(Config::default().release(strategy));
    let owner = rt.create().expect("creating the owner");
    let receivers: Vec<_> = (0..p.receivers)
        .map(|_| rt.create().expect("creating a receiver"))
        .collect();
    let exporter = rt
        .enter(owner, |tok| tok.bytearray(&[1; 4096]).unbind())
        .expect("entering the owner");
    // Every receiver holds `views_per_receiver` views of the owner's buffer.
    let mut held: Vec<Vec<OwnedObj>> = Vec::new();
    for &r in &receivers {
        let cid = rt.channel_create();
        rt.enter(owner, |tok| {
            let buffer = exporter.bind(tok).expect("owned by the owner");
            for _ in 0..p.views_per_receiver {
                tok.send(cid, Outgoing::buffer(&buffer).expect("export"))
                    .expect("send");
            }
        })
        .expect("entering the owner");
        let views = rt
            .enter(r, |tok| {
                (0..p.views_per_receiver)
                    .map(|_| tok.recv(cid).expect("queued").unbind())
                    .collect()
            })
            .expect("entering a receiver");
        held.push(views);
        rt.channel_destroy(cid).expect("destroying");
    }
    let total = (p.receivers * p.views_per_receiver) as f64;
    let before = rt.counters();
    let stop = AtomicBool::new(false);
    let (peak_depth, peak_age_us) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut latencies = Vec::new();
    let started = Instant::now();
    std::thread::scope(|s| {
        // The owner is busy for `busy_share` of every millisecond (and drains its inbox on
        // each entry); it also samples its own backlog.
        s.spawn(|| {
            let period = Duration::from_micros(1000);
            while !stop.load(Ordering::Relaxed) {
                let busy = period.mul_f64(p.busy_share);
                rt.enter(owner, |_| {
                    let until = Instant::now() + busy;
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                })
                .expect("entering the owner");
                let info = rt.info(owner).expect("the owner exists");
                peak_depth.fetch_max(info.inbox_depth as u64, Ordering::Relaxed);
                let age = info.oldest_pending.map_or(0, |a| a.as_micros() as u64);
                peak_age_us.fetch_max(age, Ordering::Relaxed);
                std::thread::sleep(period.mul_f64(1.0 - p.busy_share));
            }
        });
        let mut shares: Vec<Vec<(xinterp::InterpId, Vec<OwnedObj>)>> =
            (0..p.threads).map(|_| Vec::new()).collect();
        for (i, views) in held.drain(..).enumerate() {
            shares[i % p.threads].push((receivers[i], views));
        }
        let workers: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let rt = &rt;
                s.spawn(move || {
                    let mut lat = Vec::new();
                    for (r, views) in share {
                        rt.enter(r, |_| {
                            for view in views {
                                let t = Instant::now();
                                drop(view);
                                lat.push(t.elapsed().as_nanos() as u64);
                            }
                        })
                        .expect("entering a receiver");
                    }
                    lat
                })
            })
            .collect();
        for w in workers {
            latencies.extend(w.join().expect("a releaser"));
        }
        // Done when every export is back in the owner (deferred ones run when it is next
        // entered: the busy thread enters every millisecond).
        while rt.info(owner).expect("the owner exists").pinned_exports > 0 {
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let ns_per_release = started.elapsed().as_nanos() as f64 / total;
    let counters = rt.counters().since(&before);
    drop(exporter);
    latencies.sort_unstable();
    (
        ns_per_release,
        latencies,
        peak_depth.load(Ordering::Relaxed),
        peak_age_us.load(Ordering::Relaxed),
        counters,
    )
}

pub fn run(reps: usize, scale: f64, p: Params) -> Experiment {
    let p = Params {
        views_per_receiver: ((p.views_per_receiver as f64 * scale) as usize).max(10),
        ..p
    };
    let mut rows = Vec::new();
    for strategy in ReleaseStrategy::ALL {
        let mut per_release = Vec::new();
        let mut all_latencies = Vec::new();
        let (mut depth, mut age) = (0, 0);
        let mut last = xinterp::Counters::default();
        for _ in 0..reps {
            let (ns, lat, d, a, c) = once(strategy, p);
            per_release.push(ns);
            all_latencies.extend(lat);
            depth = depth.max(d);
            age = age.max(a);
            last = c;
        }
        all_latencies.sort_unstable();
        let mut row = Row::new(
            &format!("{}: ns per release, until all are back", strategy.name()),
            Sample::from_reps(per_release),
        );
        row.counters = vec![
            (
                "drop_latency_p50_ns".into(),
                percentile(&all_latencies, 0.5),
            ),
            (
                "drop_latency_p99_ns".into(),
                percentile(&all_latencies, 0.99),
            ),
            (
                "drop_latency_max_ns".into(),
                percentile(&all_latencies, 1.0),
            ),
            ("peak_inbox_depth".into(), depth),
            ("peak_oldest_pending_us".into(), age),
            ("switches_last_rep".into(), last.switches),
            ("lock_waits_last_rep".into(), last.lock_waits),
            ("releases_switched_last_rep".into(), last.releases_switched),
            ("releases_deferred_last_rep".into(), last.releases_deferred),
        ];
        rows.push(row);
    }
    let ratios = vec![
        Ratio::of(&rows, 1, 0, "deferred / switch, time per release"),
        Ratio::of(&rows, 2, 0, "adaptive / switch, time per release"),
    ];
    Experiment {
        name: "release".into(),
        question: "Must release be propagated by switching, or can it be deferred, and what \
                   does each cost under contention?"
            .into(),
        params: vec![
            ("receiving interpreters".into(), p.receivers.to_string()),
            ("releasing threads".into(), p.threads.to_string()),
            ("owner busy share".into(), format!("{:.2}", p.busy_share)),
            (
                "views per receiver".into(),
                p.views_per_receiver.to_string(),
            ),
        ],
        rows,
        ratios,
        notes: vec![
            "Latencies are those of the drop that triggers a release, seen by the releasing \
             thread; a deferred release completes later, when the owner next runs (its peak \
             backlog is in the counters)."
                .into(),
        ],
    }
}
