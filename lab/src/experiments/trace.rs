//! `--trace FILE`: a short run of the pool workload (both ways) on a runtime that records
//! which thread held which interpreter, written as Chrome trace-event JSON (open it in
//! Perfetto or chrome://tracing: one track per thread, one slice per holding).

use std::path::Path;

use serde_json::json;
use xinterp::{Config, InterpId, Runtime};

/// Runs the short pool workload with tracing on and writes the timeline to `path`; returns
/// the number of holding events (begins and ends). Metadata events name the process and each
/// thread by the phase it worked in, so a viewer's tracks read "pool worker" or "dedicated".
pub fn write(path: &Path) -> std::io::Result<usize> {
    let rt = Runtime::with_config(Config::default().trace(true));
    let interps: Vec<InterpId> = (0..4).map(|_| rt.create().expect("creating")).collect();
    crate::experiments::pool::pool(&rt, &interps, 2, 2_000);
    let pooled = rt.take_trace();
    crate::experiments::pool::dedicated(&rt, &interps, 2_000);
    let dedicated = rt.take_trace();
    let mut events = vec![json!({
        "name": "process_name",
        "ph": "M",
        "pid": 1,
        "args": { "name": "xinterp-lab --trace: 2 pool workers, then 4 dedicated threads" },
    })];
    let mut named = std::collections::BTreeSet::new();
    for (phase, trace) in [("pool worker", &pooled), ("dedicated", &dedicated)] {
        for e in trace.iter() {
            if named.insert(e.thread) {
                events.push(json!({
                    "name": "thread_name",
                    "ph": "M",
                    "pid": 1,
                    "tid": e.thread,
                    "args": { "name": format!("{phase} (thread {})", e.thread) },
                }));
            }
        }
    }
    let metadata = events.len();
    events.extend(pooled.iter().chain(&dedicated).map(|e| {
        json!({
            "name": format!("interpreter {}", e.interp),
            "cat": "interpreter",
            "ph": if e.begin { "B" } else { "E" },
            "ts": (e.at_us * 1000.0).round() / 1000.0,
            "pid": 1,
            "tid": e.thread,
        })
    }));
    let count = events.len() - metadata;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let doc = json!({ "traceEvents": events, "displayTimeUnit": "ns" });
    std::fs::write(
        path,
        serde_json::to_string(&doc).map_err(std::io::Error::other)?,
    )?;
    Ok(count)
}
