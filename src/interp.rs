//! One interpreter's shared state: its lock, its pending-call inbox and its accounting.
//!
//! The interpreter lock is not a `Mutex` guard held across user code: it is a flag under a
//! small mutex plus a condition variable, so that entering, suspending (the thread keeps its
//! place but lets go of the lock), resuming and destroying are each one short critical
//! section, and so that destroy can tell "a thread is running here" from "nobody is here".
//! See `design/ownership-and-switching.md`.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::counters::LiveCounters;
use crate::error::{fail, ErrorKind, Result};
use crate::extensions::Extensions;
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering};
use crate::thread_state::Token;

/// An interpreter's id. Ids are handed out in increasing order by a runtime and never reused
/// (INV-ID-FRESH), so an id names one interpreter forever, even after it is destroyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterpId(pub(crate) u64);

impl InterpId {
    /// The id numbered `id`. Any number names an id; whether an interpreter has it is
    /// checked wherever the id is used.
    pub fn new(id: u64) -> Self {
        Self(id)
    }

    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for InterpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Default)]
struct LockState {
    /// A thread holds the interpreter (runs in it) right now.
    held: bool,
    /// Threads with a frame in this interpreter: running in it, waiting to enter it, or
    /// switched out of it and due back (INV-DESTROY-IDLE).
    entered: usize,
    /// Destroyed (or being destroyed): no new entry succeeds.
    destroyed: bool,
}

/// The interpreter lock ("its GIL").
#[derive(Debug, Default)]
pub(crate) struct InterpLock {
    state: Mutex<LockState>,
    released: Condvar,
    /// Mirrors `LockState::destroyed` (set once, under the mutex) so the release path can
    /// read it without the mutex. A reader that misses a concurrent destroy finds out when
    /// it tries to enter, and goes the late way.
    destroyed: AtomicBool,
}

/// Whether taking the lock had to wait: the caller counts lock waits.
pub(crate) struct Waited(pub(crate) bool);

impl InterpLock {
    /// Registers this thread as entered and takes the lock, waiting while another thread
    /// holds it. Fails if the interpreter is destroyed.
    pub(crate) fn enter(&self, id: InterpId) -> Result<Waited> {
        let mut state = self.state.lock();
        if state.destroyed {
            return fail(
                ErrorKind::InterpreterNotFound,
                format!("interpreter {id} has been destroyed"),
            );
        }
        state.entered += 1;
        let waited = state.held;
        while state.held {
            state = self.released.wait(state);
        }
        state.held = true;
        Ok(Waited(waited))
    }

    /// Takes the lock only if nobody holds it (registering the entry), without waiting.
    /// `None` when it is held or destroyed.
    pub(crate) fn try_enter(&self) -> Option<()> {
        let mut state = self.state.lock();
        if state.destroyed || state.held {
            return None;
        }
        state.entered += 1;
        state.held = true;
        Some(())
    }

    /// Takes the lock of a destroyed interpreter, waiting while another thread holds it,
    /// to release what its objects still owe (INV-RELEASE-IN-OWNER) or to run one more
    /// final drain. Nobody else can enter it, so only other late entries and the final
    /// drain of its destroy contend. Left with [`InterpLock::exit`].
    pub(crate) fn enter_late(&self) -> Waited {
        let mut state = self.state.lock();
        debug_assert!(state.destroyed, "late entry into a live interpreter");
        state.entered += 1;
        let waited = state.held;
        while state.held {
            state = self.released.wait(state);
        }
        state.held = true;
        Waited(waited)
    }

    /// Whether a thread holds the lock right now (a hint: it may change at once).
    pub(crate) fn is_held(&self) -> bool {
        self.state.lock().held
    }

    /// Lets go of the lock; the thread stays registered as entered.
    pub(crate) fn suspend(&self) {
        let mut state = self.state.lock();
        debug_assert!(
            state.held,
            "suspending an interpreter lock that is not held"
        );
        state.held = false;
        drop(state);
        self.released.notify_one();
    }

    /// Takes the lock back after [`InterpLock::suspend`]. Cannot fail: a destroy never
    /// succeeds while this thread is registered (INV-DESTROY-IDLE), and a final drain
    /// registers its own thread.
    pub(crate) fn resume(&self) -> Waited {
        let mut state = self.state.lock();
        debug_assert!(state.entered > 0, "resuming an interpreter nobody entered");
        let waited = state.held;
        while state.held {
            state = self.released.wait(state);
        }
        state.held = true;
        Waited(waited)
    }

    /// Lets go of the lock and unregisters the entry (also the end of a destroy's final
    /// drain, whose thread `begin_destroy` registered; a late entry may be waiting then).
    pub(crate) fn exit(&self) {
        let mut state = self.state.lock();
        debug_assert!(state.held && state.entered > 0);
        state.held = false;
        state.entered -= 1;
        drop(state);
        self.released.notify_one();
    }

    /// Marks the interpreter destroyed and takes its lock for the final drain (registering
    /// the destroying thread as its one entered thread), or reports why it cannot be
    /// destroyed now and changes nothing.
    ///
    /// Everything is decided in one critical section of the state mutex: with no thread
    /// entered, nobody can make a new owned handle, so `owned_handles` can only fall while
    /// it is read here; 0 means every handle's decref is already queued
    /// (INV-INBOX-BEFORE-HANDLE).
    pub(crate) fn begin_destroy(
        &self,
        id: InterpId,
        owned_handles: &AtomicUsize,
        policy_allows: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let mut state = self.state.lock();
        if state.destroyed {
            return fail(
                ErrorKind::InterpreterNotFound,
                format!("interpreter {id} has already been destroyed"),
            );
        }
        if state.entered > 0 {
            return fail(
                ErrorKind::InterpreterBusy,
                format!(
                    "interpreter {id} cannot be destroyed: {} thread(s) are running in it or \
                     switched out of it",
                    state.entered
                ),
            );
        }
        let handles = owned_handles.load(Ordering::Acquire);
        if handles > 0 {
            return fail(
                ErrorKind::InterpreterBusy,
                format!(
                    "interpreter {id} cannot be destroyed: {handles} owned handle(s) to its \
                     objects are outstanding"
                ),
            );
        }
        // The owner-death policy, which also closes the export table: no thread is entered,
        // but references can be counted without entering (bytes resolved elsewhere), so the
        // table decides under its own mutex, inside this critical section
        // (INV-EXPORTS-CLOSED).
        policy_allows()?;
        debug_assert!(!state.held, "held without an entered thread");
        state.destroyed = true;
        self.destroyed.store(true, Ordering::Release);
        state.held = true;
        state.entered = 1;
        Ok(())
    }

    /// Whether destruction has begun.
    pub(crate) fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    fn entered(&self) -> usize {
        self.state.lock().entered
    }
}

/// A call queued for an interpreter; it runs with a token for that interpreter.
pub type PendingCall = Box<dyn for<'r> FnOnce(&mut Token<'r>) + Send>;

/// Why an inbox refused a release.
pub(crate) enum Refused {
    /// The interpreter's final drain is over: run it in a late entry.
    Sealed(PendingCall),
    /// The inbox holds as many calls as the bound allows: switch instead.
    Full(PendingCall),
}

struct Queued {
    since: Instant,
    call: PendingCall,
}

#[derive(Default)]
struct InboxState {
    calls: VecDeque<Queued>,
    /// Destruction has begun: `call_soon` is refused; releases are still accepted.
    closed: bool,
    /// The final drain is over: everything is refused, and a release must run late, by
    /// its own thread (INV-INBOX-SEALED).
    sealed: bool,
}

/// An interpreter's own pending-call inbox (never a process-wide pool: a call queued here
/// runs in this interpreter and nowhere else, INV-INBOX-OWNER).
#[derive(Default)]
pub(crate) struct Inbox {
    state: Mutex<InboxState>,
    /// Mirrors `calls.len()` so observers read it without the mutex.
    depth: AtomicUsize,
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("depth", &self.depth.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Inbox {
    /// Queues `call`, or hands it back if the inbox is closed.
    pub(crate) fn push(&self, call: PendingCall) -> std::result::Result<(), PendingCall> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(call);
        }
        self.enqueue(&mut state, call);
        Ok(())
    }

    /// Queues a release (a decref, an export given back). Accepted until the final drain is
    /// over; after that it is handed back, and the caller runs it in a late entry
    /// (INV-INBOX-SEALED).
    pub(crate) fn push_release(&self, call: PendingCall) -> std::result::Result<(), PendingCall> {
        self.push_release_within(call, usize::MAX)
            .map_err(|refused| match refused {
                Refused::Sealed(call) | Refused::Full(call) => call,
            })
    }

    /// As [`Inbox::push_release`], but also refused when `limit` calls already wait: the
    /// bound of deferred releases, checked under the same lock as the push.
    pub(crate) fn push_release_within(
        &self,
        call: PendingCall,
        limit: usize,
    ) -> std::result::Result<(), Refused> {
        let mut state = self.state.lock();
        if state.sealed {
            return Err(Refused::Sealed(call));
        }
        if state.calls.len() >= limit {
            return Err(Refused::Full(call));
        }
        self.enqueue(&mut state, call);
        Ok(())
    }

    fn enqueue(&self, state: &mut InboxState, call: PendingCall) {
        state.calls.push_back(Queued {
            since: Instant::now(),
            call,
        });
        self.depth.store(state.calls.len(), Ordering::Release);
    }

    /// Takes the oldest call. The mutex is released before the call runs, so a running call
    /// may queue more.
    pub(crate) fn pop(&self) -> Option<PendingCall> {
        // Fast path for the common empty inbox. A push that happened before this call
        // (program order, or through any synchronisation) is seen: the depth is stored with
        // Release under the mutex and loaded here with Acquire.
        if self.depth.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut state = self.state.lock();
        let queued = state.calls.pop_front()?;
        self.depth.store(state.calls.len(), Ordering::Release);
        Some(queued.call)
    }

    /// Refuses every later push. Calls already queued stay, for the final drain.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
    }

    /// Ends the final drain if nothing is left to run: from now on every push is refused.
    /// Checked and set under one lock, so a release is either queued before (and the drain
    /// goes on) or refused after (and runs late): never lost (INV-INBOX-SEALED).
    pub(crate) fn seal_if_empty(&self) -> bool {
        let mut state = self.state.lock();
        if state.calls.is_empty() {
            state.sealed = true;
        }
        state.sealed
    }

    pub(crate) fn depth(&self) -> usize {
        self.depth.load(Ordering::Acquire)
    }

    pub(crate) fn oldest_age(&self) -> Option<Duration> {
        let state = self.state.lock();
        state.calls.front().map(|q| q.since.elapsed())
    }
}

/// The state of one interpreter shared by every thread that can reach it.
#[derive(Debug)]
pub(crate) struct InterpState {
    pub(crate) id: InterpId,
    pub(crate) lock: InterpLock,
    pub(crate) inbox: Inbox,
    /// Objects of this interpreter currently allocated. Written only by the thread holding
    /// the interpreter; atomic so that anyone may read it.
    pub(crate) live_objects: AtomicUsize,
    /// Objects ever allocated here.
    pub(crate) allocated: AtomicU64,
    /// Objects it froze that are still allocated: shared by every interpreter now, and freed
    /// by whichever thread lets go of the last reference, so counted atomically.
    pub(crate) frozen_objects: AtomicUsize,
    /// `OwnedObj` handles to objects of this interpreter that exist right now.
    pub(crate) owned_handles: AtomicUsize,
    /// Buffers of this interpreter's objects pinned for other interpreters (channel items
    /// and received views) and not yet released.
    pub(crate) pinned_exports: AtomicUsize,
    /// The runtime's counters, reachable from any object through its owner.
    pub(crate) counters: Arc<LiveCounters>,
    /// What the layers above keep per interpreter: its export table (the objects other
    /// interpreters hold origin references to) and its identity cache (the proxies it
    /// holds, by origin object).
    pub(crate) extensions: Extensions,
    /// Where to record who holds it, when the runtime traces.
    pub(crate) trace: Option<Arc<crate::trace::TraceSink>>,
}

impl InterpState {
    pub(crate) fn new(
        id: InterpId,
        counters: Arc<LiveCounters>,
        trace: Option<Arc<crate::trace::TraceSink>>,
        extensions: Extensions,
    ) -> Self {
        Self {
            id,
            trace,
            extensions,
            lock: InterpLock::default(),
            inbox: Inbox::default(),
            live_objects: AtomicUsize::new(0),
            allocated: AtomicU64::new(0),
            owned_handles: AtomicUsize::new(0),
            frozen_objects: AtomicUsize::new(0),
            pinned_exports: AtomicUsize::new(0),
            counters,
        }
    }

    /// Records, when tracing, that this thread took (`begin`) or let go of the interpreter.
    pub(crate) fn trace(&self, begin: bool) {
        if let Some(sink) = &self.trace {
            sink.record(self.id, begin);
        }
    }

    /// Accounts an allocation. Only the thread holding the interpreter writes these counts
    /// (INV-OWN-LOCKED), so a plain load and store suffices; others only read them.
    pub(crate) fn note_allocated(&self) {
        let live = self.live_objects.load(Ordering::Relaxed);
        self.live_objects.store(live + 1, Ordering::Relaxed);
        let total = self.allocated.load(Ordering::Relaxed);
        self.allocated.store(total + 1, Ordering::Relaxed);
    }

    /// Accounts `n` of its objects frozen: they leave its live objects for its frozen ones.
    pub(crate) fn note_frozen(&self, n: usize) {
        let live = self.live_objects.load(Ordering::Relaxed);
        debug_assert!(live >= n, "more objects frozen than live");
        self.live_objects.store(live - n, Ordering::Relaxed);
        self.frozen_objects.fetch_add(n, Ordering::Relaxed);
    }

    /// Accounts `n` of its objects moved out (they belong to no interpreter until adopted).
    pub(crate) fn note_moved_out(&self, n: usize) {
        let live = self.live_objects.load(Ordering::Relaxed);
        debug_assert!(live >= n, "more objects moved out than live");
        self.live_objects.store(live - n, Ordering::Relaxed);
    }

    /// Accounts `n` objects adopted (moved in, or a move given back).
    pub(crate) fn note_moved_in(&self, n: usize) {
        let live = self.live_objects.load(Ordering::Relaxed);
        self.live_objects.store(live + n, Ordering::Relaxed);
    }

    /// Accounts a free; see [`InterpState::note_allocated`].
    pub(crate) fn note_freed(&self) {
        let live = self.live_objects.load(Ordering::Relaxed);
        debug_assert!(live > 0, "more objects freed than allocated");
        self.live_objects.store(live - 1, Ordering::Relaxed);
    }

    pub(crate) fn info(&self) -> InterpInfo {
        InterpInfo {
            id: self.id,
            live_objects: self.live_objects.load(Ordering::Relaxed),
            allocated: self.allocated.load(Ordering::Relaxed),
            owned_handles: self.owned_handles.load(Ordering::Acquire),
            frozen_objects: self.frozen_objects.load(Ordering::Relaxed),
            pinned_exports: self.pinned_exports.load(Ordering::Acquire),
            inbox_depth: self.inbox.depth(),
            oldest_pending: self.inbox.oldest_age(),
            threads_entered: self.lock.entered(),
        }
    }
}

/// A snapshot of one interpreter's accounting.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterpInfo {
    /// Which interpreter.
    pub id: InterpId,
    /// Objects allocated and not yet freed.
    pub live_objects: usize,
    /// Objects ever allocated.
    pub allocated: u64,
    /// `OwnedObj` handles outstanding.
    pub owned_handles: usize,
    /// Objects it froze that are still allocated (anywhere: frozen objects are shared, and
    /// outlive it). Not counted in `live_objects`.
    pub frozen_objects: usize,
    /// Buffers pinned for other interpreters (channel items, received views) outstanding.
    pub pinned_exports: usize,
    /// Calls waiting in the pending-call inbox.
    pub inbox_depth: usize,
    /// How long the oldest waiting call has waited.
    pub oldest_pending: Option<Duration>,
    /// Threads running in it, waiting to enter it or switched out of it.
    pub threads_entered: usize,
}
