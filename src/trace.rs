//! An optional timeline of which thread held which interpreter, for experiments
//! (`Config::trace`). Off by default; when off, the only cost is a branch on an `Option`.

use std::collections::HashMap;
use std::time::Instant;

use crate::interp::InterpId;
use crate::sync::Mutex;

/// One moment of the timeline: a thread began or ended holding an interpreter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceEvent {
    /// Microseconds since the runtime was made.
    pub at_us: f64,
    /// The thread, numbered in order of its first event.
    pub thread: u64,
    /// The interpreter.
    pub interp: InterpId,
    /// True when the thread took the interpreter, false when it let go.
    pub begin: bool,
}

#[derive(Debug)]
struct Recording {
    events: Vec<TraceEvent>,
    threads: HashMap<std::thread::ThreadId, u64>,
}

/// Where a traced runtime's interpreters record their events.
#[derive(Debug)]
pub(crate) struct TraceSink {
    started: Instant,
    recording: Mutex<Recording>,
}

impl TraceSink {
    pub(crate) fn new() -> Self {
        TraceSink {
            started: Instant::now(),
            recording: Mutex::new(Recording {
                events: Vec::new(),
                threads: HashMap::new(),
            }),
        }
    }

    pub(crate) fn record(&self, interp: InterpId, begin: bool) {
        let at_us = self.started.elapsed().as_secs_f64() * 1e6;
        let mut rec = self.recording.lock();
        let next = rec.threads.len() as u64;
        let thread = *rec
            .threads
            .entry(std::thread::current().id())
            .or_insert(next);
        rec.events.push(TraceEvent {
            at_us,
            thread,
            interp,
            begin,
        });
    }

    pub(crate) fn take(&self) -> Vec<TraceEvent> {
        std::mem::take(&mut self.recording.lock().events)
    }
}
