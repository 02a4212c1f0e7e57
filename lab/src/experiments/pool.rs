//! `pool`: the same small jobs, each bound to one of `interps` interpreters, run by a pool
//! of `pool_threads` threads that enter whichever interpreter a job needs, against one
//! dedicated thread per interpreter that stays in it and is fed through a channel.
//! Throughput (time per job) and latency (enqueue to completion) for both.

use std::hint::black_box;
use std::time::Instant;

use xinterp::{InterpId, Runtime, Token};

use crate::measure::Sample;
use crate::report::{Experiment, Ratio, Row};

/// One job: build a small list in the interpreter and read it back.
fn work(tok: &Token<'_>, seed: i64) {
    let list = tok.list(&[]);
    for i in 0..8 {
        list.call_method("append", &[tok.int(seed + i)])
            .expect("append");
    }
    black_box(list.len().expect("len"));
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
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

pub fn run(reps: usize, scale: f64) -> Experiment {
    let jobs = ((50_000.0 * scale) as usize).max(200);
    let (n_interps, threads) = (4, 2);
    let rt = Runtime::new();
    let interps: Vec<InterpId> = (0..n_interps)
        .map(|_| rt.create().expect("creating"))
        .collect();
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
        let mut per_job = Vec::new();
        let mut all = Vec::new();
        for _ in 0..reps {
            let (ns, lat) = if is_pool {
                pool(&rt, &interps, threads, jobs)
            } else {
                dedicated(&rt, &interps, jobs)
            };
            per_job.push(ns);
            all.extend(lat);
        }
        all.sort_unstable();
        let mut row = Row::new(&format!("{label}: ns per job"), Sample::from_reps(per_job))
            .counted(&rt, &before);
        row.counters
            .push(("latency_p50_ns".into(), percentile(&all, 0.5)));
        row.counters
            .push(("latency_p99_ns".into(), percentile(&all, 0.99)));
        rows.push(row);
    }
    let ratios = vec![Ratio::of(&rows, 0, 1, "pool / dedicated, time per job")];
    Experiment {
        name: "pool".into(),
        question: "A thread pool whose threads enter any interpreter, against one dedicated \
                   background thread per interpreter fed through a channel?"
            .into(),
        params: vec![
            ("interpreters".into(), n_interps.to_string()),
            ("pool threads".into(), threads.to_string()),
            ("jobs per repetition".into(), jobs.to_string()),
            (
                "job".into(),
                "build an 8-item list and read its length".into(),
            ),
        ],
        rows,
        ratios,
        notes: vec![
            format!(
                "{} CPU(s): the dedicated threads outnumber them, the pool does not.",
                std::thread::available_parallelism().map_or(1, |n| n.get())
            ),
            "All jobs are queued at once, so latency includes the wait in the queue.".into(),
        ],
    }
}
