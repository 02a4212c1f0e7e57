//! `pool`: the same small jobs, each bound to one of `interps` interpreters, run by a pool
//! of `pool_threads` threads that enter whichever interpreter a job needs, against one
//! dedicated thread per interpreter that stays in it and is fed through a channel.
//! Throughput (time per job) and latency (enqueue to completion) for both.

use std::hint::black_box;
use std::time::Instant;

use xinterp::{InterpId, Runtime, Token};

use crate::measure::Harness;
use crate::plot::{Axis, Chart, Point, Series, Ticks};
use crate::results::{params, Experiment, Metric, Row};
use crate::stats::{percentile_sorted, Sample};

/// One job: build a small list in the interpreter and read it back.
fn work(tok: &Token<'_>, seed: i64) {
    let list = tok.list(&[]);
    for i in 0..8 {
        list.call_method("append", &[tok.int(seed + i)])
            .expect("append");
    }
    black_box(list.len().expect("len"));
}

type Job = (usize, Instant);

/// Pool: any thread runs any job, entering its interpreter for it.
pub fn pool(rt: &Runtime, interps: &[InterpId], threads: usize, jobs: usize) -> (f64, Vec<u64>) {
    let (tx, rx) = crossbeam_channel::unbounded::<Job>();
    let started = Instant::now();
    let mut latencies = Vec::new();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                s.spawn(move || {
                    let mut lat = Vec::new();
                    for (j, queued) in rx.iter() {
                        rt.enter(interps[j % interps.len()], |tok| work(tok, j as i64))
                            .expect("entering");
                        lat.push(queued.elapsed().as_nanos() as u64);
                    }
                    lat
                })
            })
            .collect();
        for j in 0..jobs {
            tx.send((j, Instant::now())).expect("workers alive");
        }
        drop(tx);
        for w in workers {
            latencies.extend(w.join().expect("a pool thread"));
        }
    });
    (started.elapsed().as_nanos() as f64 / jobs as f64, latencies)
}

/// Dedicated: one thread per interpreter, inside it for good, fed by its own channel.
pub fn dedicated(rt: &Runtime, interps: &[InterpId], jobs: usize) -> (f64, Vec<u64>) {
    let started = Instant::now();
    let mut latencies = Vec::new();
    std::thread::scope(|s| {
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for &id in interps {
            let (tx, rx) = crossbeam_channel::unbounded::<Job>();
            senders.push(tx);
            workers.push(s.spawn(move || {
                rt.enter(id, |tok| {
                    rx.iter()
                        .map(|(j, queued)| {
                            work(tok, j as i64);
                            queued.elapsed().as_nanos() as u64
                        })
                        .collect::<Vec<_>>()
                })
                .expect("entering")
            }));
        }
        for j in 0..jobs {
            senders[j % interps.len()]
                .send((j, Instant::now()))
                .expect("worker alive");
        }
        drop(senders);
        for w in workers {
            latencies.extend(w.join().expect("a dedicated thread"));
        }
    });
    (started.elapsed().as_nanos() as f64 / jobs as f64, latencies)
}

/// Runs the experiment.
pub fn run(h: &Harness) -> Experiment {
    let jobs = h.scaled(50_000, 200) as usize;
    let (n_interps, threads) = (4, 2);
    let rt = Runtime::new();
    let interps: Vec<InterpId> = (0..n_interps)
        .map(|_| rt.create().expect("creating"))
        .collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut e = Experiment::new(
        "pool",
        "A thread pool whose threads enter any interpreter, against one dedicated background \
         thread per interpreter fed through a channel?",
        params([
            ("interpreters", (n_interps as u64).into()),
            ("pool_threads", (threads as u64).into()),
            ("jobs_per_rep", (jobs as u64).into()),
            ("job", "build an 8-item list and read its length".into()),
        ]),
    );
    const PCTS: [(&str, f64); 3] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)];
    let mut rows = Vec::new();
    for (label, is_pool) in [
        (
            format!("pool of {threads} threads entering any interpreter"),
            true,
        ),
        (
            format!("one dedicated thread per interpreter ({n_interps})"),
            false,
        ),
    ] {
        let before = rt.counters();
        let runs = h.repeat(&label, |_| {
            let (ns, mut lat) = if is_pool {
                pool(&rt, &interps, threads, jobs)
            } else {
                dedicated(&rt, &interps, jobs)
            };
            lat.sort_unstable();
            let lat: Vec<f64> = lat.into_iter().map(|v| v as f64).collect();
            (ns, lat)
        });
        let mut metrics = vec![Metric::new(
            "time per job",
            "ns",
            Sample::from_reps(runs.iter().map(|r| r.0).collect()),
        )];
        for (name, p) in PCTS {
            metrics.push(Metric::new(
                &format!("latency {name}"),
                "ns",
                Sample::from_reps(runs.iter().map(|r| percentile_sorted(&r.1, p)).collect()),
            ));
        }
        let all_jobs = jobs as u64 * h.runs_counted();
        rows.push(
            e.push(
                Row::with_metrics(&format!("{label}: per job"), metrics)
                    .param("mode", if is_pool { "pool" } else { "dedicated" })
                    .counted_per_op(&rt, &before, all_jobs),
            ),
        );
    }
    e.ratio("pool / dedicated, time per job", rows[0], rows[1]);
    let p99 = |e: &Experiment, i: usize| e.rows[i].show_metric("latency p99");
    let text = format!(
        "Measured by pool ({jobs} jobs per repetition over {n_interps} interpreters, a pool \
         of {threads} threads against {n_interps} dedicated threads, {cpus} CPU(s), {} \
         repetitions): the pool takes {} per job, the dedicated threads {} (pool / \
         dedicated: {}); latency p99 (queued to done, all jobs queued at once) {} against {}.",
        h.reps,
        e.rows[rows[0]].headline().show(),
        e.rows[rows[1]].headline().show(),
        e.show_ratio("pool / dedicated, time per job"),
        p99(&e, rows[0]),
        p99(&e, rows[1]),
    );
    e.answer(6, text);
    const NAMES: &[&str] = &["p50", "p90", "p99"];
    let series = rows
        .iter()
        .map(|&i| Series {
            name: e.rows[i].label.clone(),
            points: NAMES
                .iter()
                .enumerate()
                .filter_map(|(x, n)| {
                    e.rows[i]
                        .metric(&format!("latency {n}"))
                        .map(|m| Point::of(x as f64, &m.sample))
                })
                .collect(),
        })
        .collect();
    e.charts.push(Chart::lines(
        "pool-latency",
        "pool: job latency (queued to done) by percentile",
        Axis::linear("percentile", Ticks::Labels(NAMES)),
        Axis::log("latency", Ticks::Nanos),
        series,
    ));
    e.notes.push(format!(
        "{cpus} CPU(s): the dedicated threads outnumber them, the pool does not. All jobs are \
         queued at once, so latency includes the wait in the queue."
    ));
    e
}
