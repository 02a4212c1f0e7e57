//! `release`: Switch against Deferred against Adaptive under contention (question 5).
//!
//! `receivers` interpreters hold views of one owner's buffer; `threads` threads drop them
//! while the owner is itself busy (held by another thread) for `busy_share` of every
//! millisecond, and drains its inbox each time it is entered. The runtime's deferred bound
//! (`deferred_limit`: past that many queued calls a deferred release switches instead) is a
//! parameter, and each strategy is measured in two regimes: **below the bound** (fewer
//! releases per repetition than the bound, so a deferred release is always deferred) and
//! **at the bound** (many more, so the backlog reaches the bound and backpressure turns
//! deferred releases into switched ones). A sweep over the owner's busy share follows.
//! Releases are not batched here (`Config::batch_releases(false)`): each goes its
//! strategy's way at its drop.
//!
//! Per repetition: time per release until every export is back in the owner (throughput);
//! the drop latency (how long the dropping thread waited); the **release latency** (from
//! the drop until the owner has actually run the release: the drop itself for a release
//! that switched or ran at once; for a deferred one, until the owner's drain had run it);
//! the owner's peak inbox depth; and how many releases were switched and deferred.
//!
//! How the release latency of a deferred release is found: the owner's inbox runs queued
//! calls in order, and the runtime counts them as queued (`releases_deferred`) and as run
//! (`pending_run`). A deferred drop's sequence number is the queued count right after it;
//! it has run once `pending_run` reaches that number. The run count is observed after every
//! drop, after every owner entry and while waiting for the last release, so the completion
//! time is known to within the gap between observations (about a microsecond while drops
//! run). Each drop is bracketed by two counter snapshots, in every strategy alike.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use xinterp::{Config, Outgoing, OwnedObj, ReleaseStrategy, Runtime};

use crate::measure::Harness;
use crate::plot::{Axis, Chart, Point, Series, Ticks};
use crate::results::{params, Experiment, Metric, Row, MISSING};
use crate::stats::{percentile_sorted, Sample};

/// The experiment's parameters.
#[derive(Clone, Debug)]
pub struct Params {
    /// Receiving interpreters.
    pub receivers: usize,
    /// Threads dropping the views.
    pub threads: usize,
    /// Share of the time the owner is held by another thread (0 to 0.95).
    pub busy_share: f64,
    /// Views each receiver holds in the at-the-bound regime (before `--quick` shrinks it).
    pub views_per_receiver: usize,
    /// The runtime's deferred bound (`Config::deferred_limit`).
    pub deferred_limit: usize,
    /// Busy shares of the sweep.
    pub sweep: Vec<f64>,
}

/// Rough bytes of memory one held view takes (the view object, its handle and its pin),
/// measured (about 415 bytes with the channel items of the setup) with some margin; for
/// the up-front memory check.
pub const BYTES_PER_VIEW: u64 = 600;

impl Params {
    /// Views per receiver in the two regimes at `scale`: below the bound (all releases
    /// together at most half the bound) and at it (at least twice the bound).
    pub fn views(&self, scale: f64) -> (usize, usize) {
        let below = (self.deferred_limit / 2 / self.receivers).max(1);
        let at = ((self.views_per_receiver as f64 * scale) as usize)
            .max((2 * self.deferred_limit).div_ceil(self.receivers))
            .max(10);
        (below, at)
    }

    /// The most memory a repetition holds, in bytes (an estimate).
    pub fn memory_bytes(&self, scale: f64) -> u64 {
        let (below, at) = self.views(scale);
        (below.max(at) as u64)
            .saturating_mul(self.receivers as u64)
            .saturating_mul(BYTES_PER_VIEW)
    }
}

/// What one repetition measured.
#[derive(Clone)]
struct Once {
    ns_per_release: f64,
    drop_latency: Vec<f64>,
    release_latency: Vec<f64>,
    peak_depth: u64,
    switched: u64,
    deferred: u64,
    direct: u64,
}

/// One repetition.
fn once(strategy: ReleaseStrategy, p: &Params, busy_share: f64, views: usize) -> Once {
    // Unbatched: each drop takes its strategy's way at once, so that the strategies are
    // compared release by release (a batch would hold `Switch` releases until the thread
    // leaves the receiver; batching is measured in `channel` and `proxy`).
    let rt = Runtime::with_config(
        Config::default()
            .release(strategy)
            .deferred_limit(p.deferred_limit)
            .batch_releases(false),
    );
    let owner = rt.create().expect("creating the owner");
    let receivers: Vec<_> = (0..p.receivers)
        .map(|_| rt.create().expect("creating a receiver"))
        .collect();
    let exporter = rt
        .enter(owner, |tok| tok.bytearray(&[1; 4096]).unbind())
        .expect("entering the owner");
    let mut held: Vec<Vec<OwnedObj>> = Vec::new();
    for &r in &receivers {
        let ch = rt.create_channel();
        rt.enter(owner, |tok| {
            let buffer = exporter.bind(tok).expect("owned by the owner");
            for _ in 0..views {
                ch.send(tok, Outgoing::buffer(&buffer).expect("export"))
                    .expect("send");
            }
        })
        .expect("entering the owner");
        let got = rt
            .enter(r, |tok| {
                (0..views)
                    .map(|_| ch.recv(tok).expect("queued").unbind())
                    .collect()
            })
            .expect("entering a receiver");
        held.push(got);
        ch.destroy().expect("destroying");
    }
    rt.drain(owner).expect("draining the owner");
    let total = (p.receivers * views) as f64;
    let before = rt.counters();
    let stop = AtomicBool::new(false);
    let peak_depth = AtomicU64::new(0);
    let started = Instant::now();
    let since = |t: Instant| t.duration_since(started).as_nanos() as u64;
    // (time, releases run so far) observations, and deferred drops as (drop start, seq).
    let mut observed: Vec<(u64, u64)> = Vec::new();
    let mut deferred_drops: Vec<(u64, u64)> = Vec::new();
    let mut drop_latency = Vec::new();
    let mut immediate_latency = Vec::new();
    std::thread::scope(|s| {
        let owner_thread = s.spawn(|| {
            let period = Duration::from_micros(1000);
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let busy = period.mul_f64(busy_share);
                rt.enter(owner, |_| {
                    // Entering drained the inbox.
                    let run = rt.counters().pending_run - before.pending_run;
                    seen.push((since(Instant::now()), run));
                    let until = Instant::now() + busy;
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                })
                .expect("entering the owner");
                let info = rt.info(owner).expect("the owner exists");
                peak_depth.fetch_max(info.inbox_depth as u64, Ordering::Relaxed);
                std::thread::sleep(period.mul_f64(1.0 - busy_share));
            }
            seen
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
                let before = &before;
                s.spawn(move || {
                    let (mut lat, mut imm, mut def, mut obs) =
                        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                    for (r, views) in share {
                        rt.enter(r, |_| {
                            for view in views {
                                let c0 = rt.counters();
                                let t = Instant::now();
                                drop(view);
                                let done = Instant::now();
                                let c1 = rt.counters();
                                let ns = done.duration_since(t).as_nanos() as f64;
                                lat.push(ns);
                                if c1.releases_deferred > c0.releases_deferred {
                                    def.push((
                                        since(t),
                                        c1.releases_deferred - before.releases_deferred,
                                    ));
                                } else {
                                    imm.push(ns);
                                }
                                obs.push((since(done), c1.pending_run - before.pending_run));
                            }
                        })
                        .expect("entering a receiver");
                    }
                    (lat, imm, def, obs)
                })
            })
            .collect();
        for w in workers {
            let (lat, imm, def, obs) = w.join().expect("a releaser");
            drop_latency.extend(lat);
            immediate_latency.extend(imm);
            deferred_drops.extend(def);
            observed.extend(obs);
        }
        // Done when every export is back in the owner (deferred ones run when it is next
        // entered: the busy thread enters every millisecond).
        while rt.info(owner).expect("the owner exists").pinned_exports > 0 {
            let run = rt.counters().pending_run - before.pending_run;
            observed.push((since(Instant::now()), run));
            std::thread::yield_now();
        }
        observed.push((
            since(Instant::now()),
            rt.counters().pending_run - before.pending_run,
        ));
        stop.store(true, Ordering::Relaxed);
        observed.extend(owner_thread.join().expect("the owner thread"));
    });
    let ns_per_release = started.elapsed().as_nanos() as f64 / total;
    let counters = rt.counters().since(&before);
    drop(exporter);

    // Completion time of the k-th deferred release: the first observation with at least k
    // releases run (observations sorted by time, their counts made monotone).
    observed.sort_unstable();
    let mut most = 0;
    for o in &mut observed {
        most = most.max(o.1);
        o.1 = most;
    }
    let mut release_latency = immediate_latency;
    for (start, seq) in deferred_drops {
        let i = observed.partition_point(|o| o.1 < seq);
        let done = observed.get(i).map_or(start, |o| o.0);
        release_latency.push(done.saturating_sub(start) as f64);
    }
    Once {
        ns_per_release,
        drop_latency,
        release_latency,
        peak_depth: peak_depth.load(Ordering::Relaxed),
        switched: counters.releases_switched,
        deferred: counters.releases_deferred,
        direct: counters.releases_direct,
    }
}

fn pct(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile_sorted(values, p)
}

/// Measures one strategy in one regime at one busy share: a row.
fn measure(
    h: &Harness,
    strategy: ReleaseStrategy,
    p: &Params,
    regime: &str,
    busy_share: f64,
    views: usize,
) -> Row {
    let label = format!(
        "{}, {regime} bound, owner busy {:.0}%",
        strategy.name(),
        busy_share * 100.0
    );
    let mut runs = h.repeat(&label, |_| once(strategy, p, busy_share, views));
    let mut metric = |name: &str, unit: &str, f: &mut dyn FnMut(&mut Once) -> f64| {
        Metric::new(
            name,
            unit,
            Sample::from_reps(runs.iter_mut().map(&mut *f).collect()),
        )
    };
    let metrics = vec![
        metric("time per release, until all are back", "ns", &mut |o| {
            o.ns_per_release
        }),
        metric("release latency p50", "ns", &mut |o| {
            pct(&mut o.release_latency, 0.5)
        }),
        metric("release latency p90", "ns", &mut |o| {
            pct(&mut o.release_latency, 0.9)
        }),
        metric("release latency p99", "ns", &mut |o| {
            pct(&mut o.release_latency, 0.99)
        }),
        metric("drop latency p50", "ns", &mut |o| {
            pct(&mut o.drop_latency, 0.5)
        }),
        metric("drop latency p99", "ns", &mut |o| {
            pct(&mut o.drop_latency, 0.99)
        }),
        metric("share of releases deferred", "%", &mut |o| {
            100.0 * o.deferred as f64 / (o.deferred + o.switched + o.direct).max(1) as f64
        }),
    ];
    let releases = (p.receivers * views) as u64;
    let peak = runs.iter().map(|o| o.peak_depth).max().unwrap_or(0);
    let last = runs.last().expect("at least one repetition");
    Row::with_metrics(&label, metrics)
        .param("strategy", strategy.name())
        .param("regime", format!("{regime} bound"))
        .param("busy_share", busy_share)
        .param("views_per_receiver", views as u64)
        .param("releases_per_rep", releases)
        .count("peak_inbox_depth", peak)
        .count("releases_switched_last_rep", last.switched)
        .count("releases_deferred_last_rep", last.deferred)
        .count("releases_direct_last_rep", last.direct)
}

/// Runs the experiment.
pub fn run(h: &Harness, p: &Params) -> Experiment {
    let (below, at) = p.views(h.scale);
    let mut sweep: Vec<f64> = p.sweep.clone();
    if !sweep.iter().any(|s| (s - p.busy_share).abs() < 1e-9) {
        sweep.push(p.busy_share);
    }
    sweep.sort_by(f64::total_cmp);
    let mut e = Experiment::new(
        "release",
        "Must release be propagated by switching, or can it be deferred, and what does each \
         cost under contention?",
        params([
            ("receivers", (p.receivers as u64).into()),
            ("releasing_threads", (p.threads as u64).into()),
            ("busy_share", p.busy_share.into()),
            ("deferred_limit", (p.deferred_limit as u64).into()),
            ("views_per_receiver_below_bound", (below as u64).into()),
            ("views_per_receiver_at_bound", (at as u64).into()),
            ("owner_period_us", 1000.into()),
            (
                "busy_share_sweep",
                Value::Array(sweep.iter().map(|&s| s.into()).collect()),
            ),
        ]),
    );
    // The main rows: each strategy below its bound and at it, at the chosen busy share.
    let mut main = Vec::new();
    for (regime, views) in [("below", below), ("at", at)] {
        for strategy in ReleaseStrategy::ALL {
            main.push(e.push(measure(h, strategy, p, regime, p.busy_share, views)));
        }
    }
    // The sweep, at the bound (the default workload).
    let mut swept: Vec<(ReleaseStrategy, f64, usize)> = Vec::new();
    for &share in &sweep {
        for strategy in ReleaseStrategy::ALL {
            let i = if (share - p.busy_share).abs() < 1e-9 {
                main[3 + ReleaseStrategy::ALL
                    .iter()
                    .position(|s| *s == strategy)
                    .expect("listed")]
            } else {
                e.push(measure(h, strategy, p, "at", share, at))
            };
            swept.push((strategy, share, i));
        }
    }
    for (regime, base) in [("below", 0), ("at", 3)] {
        e.ratio(
            &format!("deferred / switch, time per release, {regime} bound"),
            main[base + 1],
            main[base],
        );
        e.ratio(
            &format!("adaptive / switch, time per release, {regime} bound"),
            main[base + 2],
            main[base],
        );
    }
    charts(&mut e, &main, &swept);
    answer(&mut e, p, &main, below, at, h.reps);
    e.notes.push(
        "Release latency runs from the drop to the moment the owner has run the release: the \
         drop itself when the release switched or ran at once, until the owner's next drain \
         when it was deferred (see the experiment's doc for how it is observed). Drop latency \
         is only how long the dropping thread waited."
            .into(),
    );
    e
}

fn charts(e: &mut Experiment, main: &[usize], swept: &[(ReleaseStrategy, f64, usize)]) {
    let dots = main
        .iter()
        .map(|&i| crate::plot::Dot {
            label: e.rows[i].label.clone(),
            sample: e.rows[i].headline().sample.clone(),
        })
        .collect();
    e.charts.push(Chart::dots(
        "release",
        "release: time per release until all are back, median and 95% interval",
        "time per release (ns)",
        Ticks::Nanos,
        dots,
    ));
    const PCTS: &[&str] = &["p50", "p90", "p99"];
    let series = main
        .iter()
        .map(|&i| {
            let row = &e.rows[i];
            Series {
                name: row.label.clone(),
                points: PCTS
                    .iter()
                    .enumerate()
                    .filter_map(|(x, p)| {
                        row.metric(&format!("release latency {p}"))
                            .map(|m| Point::of(x as f64, &m.sample))
                    })
                    .collect(),
            }
        })
        .collect();
    e.charts.push(Chart::lines(
        "release-latency",
        "release: release latency (drop until the owner ran it) by percentile",
        Axis::linear("percentile", Ticks::Labels(PCTS)),
        Axis::log("release latency", Ticks::Nanos),
        series,
    ));
    let mut by_strategy = Vec::new();
    let mut latency = Vec::new();
    for strategy in ReleaseStrategy::ALL {
        let rows = || swept.iter().filter(move |(s, _, _)| *s == strategy);
        by_strategy.push(Series {
            name: strategy.name().into(),
            points: rows()
                .map(|&(_, share, i)| Point::of(share, &e.rows[i].headline().sample))
                .collect(),
        });
        latency.push(Series {
            name: format!("{}, p99", strategy.name()),
            points: rows()
                .filter_map(|&(_, share, i)| {
                    e.rows[i]
                        .metric("release latency p99")
                        .map(|m| Point::of(share, &m.sample))
                })
                .collect(),
        });
    }
    e.charts.push(Chart::lines(
        "release-sweep",
        "release: time per release by the owner's busy share (at the bound)",
        Axis::linear("owner busy share", Ticks::Percent),
        Axis::log("time per release", Ticks::Nanos),
        by_strategy,
    ));
    e.charts.push(Chart::lines(
        "release-sweep-latency",
        "release: release latency p99 by the owner's busy share (at the bound)",
        Axis::linear("owner busy share", Ticks::Percent),
        Axis::log("release latency p99", Ticks::Nanos),
        latency,
    ));
}

fn answer(e: &mut Experiment, p: &Params, main: &[usize], below: usize, at: usize, reps: usize) {
    let row = |i: usize| &e.rows[main[i]];
    let show = |i: usize, m: &str| row(i).show_metric(m);
    let deferred_share = |i: usize| {
        row(i)
            .metric("share of releases deferred")
            .map_or(MISSING.into(), |m| format!("{:.0}%", m.sample.median))
    };
    let ratio = |label: &str| e.show_ratio(label);
    let text = format!(
        "Measured by release ({} receivers, {} releasing threads, owner busy {:.0}% of each \
         millisecond, deferred bound {}, {reps} repetitions). Below the bound ({} releases \
         per repetition): switch {} per release with release latency p50 {} / p99 {}; \
         deferred {} ({} of releases deferred), release latency p50 {} / p99 {}; adaptive {}. \
         Deferred / switch: {}. At the bound ({} releases, backpressure): deferred had {} of \
         its releases deferred; deferred / switch: {}; adaptive / switch: {}; release latency \
         p99 switch {}, deferred {}, adaptive {}.",
        p.receivers,
        p.threads,
        p.busy_share * 100.0,
        p.deferred_limit,
        below * p.receivers,
        show(0, "time per release, until all are back"),
        show(0, "release latency p50"),
        show(0, "release latency p99"),
        show(1, "time per release, until all are back"),
        deferred_share(1),
        show(1, "release latency p50"),
        show(1, "release latency p99"),
        show(2, "time per release, until all are back"),
        ratio("deferred / switch, time per release, below bound"),
        at * p.receivers,
        deferred_share(4),
        ratio("deferred / switch, time per release, at bound"),
        ratio("adaptive / switch, time per release, at bound"),
        show(3, "release latency p99"),
        show(4, "release latency p99"),
        show(5, "release latency p99"),
    );
    e.answer(5, text);
}
