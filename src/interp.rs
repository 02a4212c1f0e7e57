//! One interpreter's shared state: its lock, its pending-call inbox and its accounting.
//!
//! The interpreter lock is not a `Mutex` guard held across user code: it is one atomic word
//! (held, destroyed, waiters, entered threads) with a mutex and condition variable for
//! parking, so that entering, suspending (the thread keeps its place but lets go of the
//! lock), resuming and leaving are each one atomic step when uncontended, and so that
//! destroy can tell "a thread is running here" from "nobody is here". See
//! `design/ownership-and-switching.md`.

use std::collections::VecDeque;
use std::fmt;
use std::mem::ManuallyDrop;
use std::time::{Duration, Instant};

use crate::counters::LiveCounters;
use crate::error::{fail, ErrorKind, Result};
use crate::extensions::Extensions;
use crate::runtime::Runtime;
use crate::sync::{Arc, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering};
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

/// A thread holds the interpreter (runs in it) right now.
const HELD: u64 = 1;
/// Destroyed (or being destroyed): no new entry succeeds. Set once, never cleared.
const DESTROYED: u64 = 1 << 1;
/// One thread parked, or about to park, on the condvar: bits 2..32 count them.
const WAITER: u64 = 1 << 2;
/// One frame registered in the interpreter: running in it, waiting to enter it, or switched
/// out of it and due back (INV-DESTROY-IDLE). Bits 32..64 count them.
const ENTERED: u64 = 1 << 32;
/// The bits counting waiters.
const WAITERS: u64 = ENTERED - WAITER;

/// The interpreter lock ("its GIL"): one atomic word, so that an uncontended enter, suspend,
/// resume and exit are each one atomic read-modify-write, and destroy can tell "a thread is
/// running here" from "nobody is here". A thread that finds the lock held parks on a
/// condition variable under a mutex used for nothing else.
///
/// No wake-up is lost: a waiter counts itself in the word (`WAITER`) by a compare-and-swap
/// that sees `HELD`, holding the parking mutex from before that swap until it waits; a
/// releaser that clears `HELD` and sees a waiter takes the parking mutex (which it gets only
/// once the waiter waits) and notifies. A woken waiter re-reads the word under the mutex;
/// one that leaves without the lock (an entry finding the interpreter destroyed) passes the
/// wake-up on. Taking the lock is `Acquire` and letting go `Release`, so each holder sees
/// what the previous one wrote (INV-OWN-LOCKED).
#[derive(Debug, Default)]
pub(crate) struct InterpLock {
    /// `HELD | DESTROYED | waiters * WAITER | entered * ENTERED`.
    word: AtomicU64,
    parking: Mutex<()>,
    released: Condvar,
}

/// Whether taking the lock had to wait: the caller counts lock waits.
pub(crate) struct Waited(pub(crate) bool);

/// Who takes the lock: what it registers, and what a destroyed interpreter means to it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Taker {
    /// An ordinary entry: registers, and fails on a destroyed interpreter.
    Entry,
    /// A late entry into a destroyed interpreter: registers.
    Late,
    /// A suspended thread taking its lock back: already registered.
    Resume,
}

impl Taker {
    /// What taking the lock adds to the word besides `HELD`.
    fn registers(self) -> u64 {
        match self {
            Self::Entry | Self::Late => ENTERED,
            Self::Resume => 0,
        }
    }
}

impl InterpLock {
    /// Registers this thread as entered and takes the lock, waiting while another thread
    /// holds it. Fails if the interpreter is destroyed, also when the destroy is decided
    /// while this thread waits: it then unregisters, as if the destroy had come first.
    #[inline]
    pub(crate) fn enter(&self, id: InterpId) -> Result<Waited> {
        match self.take(Taker::Entry) {
            Some(waited) => Ok(waited),
            None => fail(
                ErrorKind::InterpreterNotFound,
                format!("interpreter {id} has been destroyed"),
            ),
        }
    }

    /// Takes the lock only if nobody holds it (registering the entry), without waiting.
    /// `None` when it is held or destroyed.
    pub(crate) fn try_enter(&self) -> Option<()> {
        let mut word = 0;
        loop {
            if word & (HELD | DESTROYED) != 0 {
                return None;
            }
            match self.word.compare_exchange(
                word,
                word + HELD + ENTERED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(()),
                Err(now) => word = now,
            }
        }
    }

    /// Takes the lock of a destroyed interpreter, waiting while another thread holds it,
    /// to release what its objects still owe (INV-RELEASE-IN-OWNER) or to run one more
    /// final drain. Nobody else can enter it, so only other late entries and the final
    /// drain of its destroy contend. Left with [`InterpLock::exit`].
    pub(crate) fn enter_late(&self) -> Waited {
        debug_assert!(self.is_destroyed(), "late entry into a live interpreter");
        self.take(Taker::Late)
            .expect("a late entry does not fail on a destroyed interpreter")
    }

    /// Whether a thread holds the lock right now (a hint: it may change at once).
    pub(crate) fn is_held(&self) -> bool {
        self.word.load(Ordering::Relaxed) & HELD != 0
    }

    /// Lets go of the lock; the thread stays registered as entered.
    #[inline]
    pub(crate) fn suspend(&self) {
        self.release(HELD);
    }

    /// Takes the lock back after [`InterpLock::suspend`]. Cannot fail: a destroy never
    /// succeeds while this thread is registered (INV-DESTROY-IDLE), and a final drain
    /// registers its own thread.
    #[inline]
    pub(crate) fn resume(&self) -> Waited {
        debug_assert!(self.entered() > 0, "resuming an interpreter nobody entered");
        self.take(Taker::Resume)
            .expect("a resumption does not fail on a destroyed interpreter")
    }

    /// Lets go of the lock and unregisters the entry (also the end of a destroy's final
    /// drain, whose thread `begin_destroy` registered; a late entry may be waiting then).
    #[inline]
    pub(crate) fn exit(&self) {
        self.release(HELD + ENTERED);
    }

    /// Marks the interpreter destroyed and takes its lock for the final drain (registering
    /// the destroying thread as its one entered thread), or reports why it cannot be
    /// destroyed now and changes nothing.
    ///
    /// Everything is decided while the lock is reserved: one compare-and-swap from the idle
    /// word (not held, not destroyed, nobody entered) to held with this thread entered, so
    /// no entry can succeed until the decision; an entry arriving meanwhile waits, and fails
    /// if the destroy goes on. With no thread entered, nobody can make a new owned handle,
    /// so `owned_handles` can only fall while it is read here; 0 means every handle's decref
    /// is already queued (INV-INBOX-BEFORE-HANDLE). A refusal lets the reservation go.
    pub(crate) fn begin_destroy(
        &self,
        id: InterpId,
        owned_handles: &AtomicUsize,
        policy_allows: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if let Err(word) =
            self.word
                .compare_exchange(0, HELD + ENTERED, Ordering::Acquire, Ordering::Relaxed)
        {
            if word & DESTROYED != 0 {
                return fail(
                    ErrorKind::InterpreterNotFound,
                    format!("interpreter {id} has already been destroyed"),
                );
            }
            debug_assert!(word >= ENTERED, "a busy lock word with nobody entered");
            return fail(
                ErrorKind::InterpreterBusy,
                format!(
                    "interpreter {id} cannot be destroyed: {} thread(s) are running in it or \
                     switched out of it",
                    word / ENTERED
                ),
            );
        }
        /// Lets the reservation go unless the destroy goes on, also if the policy panics.
        struct Reserved<'a>(&'a InterpLock);
        impl Drop for Reserved<'_> {
            fn drop(&mut self) {
                self.0.exit();
            }
        }
        let reserved = Reserved(self);
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
        // table decides under its own mutex, while the lock is reserved
        // (INV-EXPORTS-CLOSED).
        policy_allows()?;
        std::mem::forget(reserved);
        let before = self.word.fetch_or(DESTROYED, Ordering::Release);
        if before & WAITERS != 0 {
            // Entries that came while the lock was reserved: each fails now.
            let _parking = self.parking.lock();
            self.released.notify_all();
        }
        Ok(())
    }

    /// Whether destruction has begun.
    pub(crate) fn is_destroyed(&self) -> bool {
        self.word.load(Ordering::Acquire) & DESTROYED != 0
    }

    fn entered(&self) -> usize {
        (self.word.load(Ordering::Relaxed) / ENTERED) as usize
    }

    /// Takes the lock for `taker`: one compare-and-swap when it is free, else parks.
    /// `None` only for an entry into a destroyed interpreter (with its registration undone).
    #[inline]
    fn take(&self, taker: Taker) -> Option<Waited> {
        let registers = taker.registers();
        // A first guess at the word: nobody else entered (a resumption: only this thread).
        let mut word = ENTERED - registers;
        loop {
            if taker == Taker::Entry && word & DESTROYED != 0 {
                return None;
            }
            if word & HELD != 0 {
                return self.park_then_take(taker);
            }
            match self.word.compare_exchange(
                word,
                word + HELD + registers,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Waited(false)),
                Err(now) => word = now,
            }
        }
    }

    /// The slow path of [`InterpLock::take`]: under the parking mutex, registers and counts
    /// itself a waiter by a compare-and-swap that sees the lock held (or takes it, if it came
    /// free), then waits until a releaser notifies, and takes it with a compare-and-swap
    /// that uncounts the waiter.
    #[cold]
    #[inline(never)]
    fn park_then_take(&self, taker: Taker) -> Option<Waited> {
        let registers = taker.registers();
        let mut parking = self.parking.lock();
        let mut word = self.word.load(Ordering::Relaxed);
        loop {
            if taker == Taker::Entry && word & DESTROYED != 0 {
                return None;
            }
            let (next, takes) = if word & HELD == 0 {
                (word + HELD + registers, true)
            } else {
                (word + registers + WAITER, false)
            };
            match self
                .word
                .compare_exchange(word, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if takes => return Some(Waited(false)),
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        loop {
            parking = self.released.wait(parking);
            let mut word = self.word.load(Ordering::Relaxed);
            loop {
                if taker == Taker::Entry && word & DESTROYED != 0 {
                    // Destroyed while this entry waited, which never got in: it leaves as if
                    // the destroy had come first, passing the wake-up on if the lock is free.
                    let before = self.word.fetch_sub(WAITER + registers, Ordering::Relaxed);
                    if before & HELD == 0 && before & WAITERS > WAITER {
                        self.released.notify_one();
                    }
                    return None;
                }
                if word & HELD != 0 {
                    break;
                }
                match self.word.compare_exchange(
                    word,
                    word - WAITER + HELD,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(Waited(true)),
                    Err(now) => word = now,
                }
            }
        }
    }

    /// Lets go of the lock, subtracting `HELD` and whatever else `clear` holds in one atomic
    /// step, and wakes a waiter if the word counted one.
    #[inline]
    fn release(&self, clear: u64) {
        let before = self.word.fetch_sub(clear, Ordering::Release);
        debug_assert!(
            before & HELD != 0 && before / ENTERED >= clear / ENTERED,
            "letting go of an interpreter lock that is not held, or of an entry not registered"
        );
        if before & WAITERS != 0 {
            self.wake_one();
        }
    }

    /// Notifies one waiter, under the parking mutex: a waiter that counted itself holds it
    /// until it waits, so the notification cannot come between its check and its wait.
    #[cold]
    #[inline(never)]
    fn wake_one(&self) {
        let _parking = self.parking.lock();
        self.released.notify_one();
    }
}

/// A call queued for an interpreter; it runs with a token for that interpreter.
pub(crate) type PendingCall = Box<dyn for<'r> FnOnce(&mut Token<'r>) + Send>;

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

/// An interpreter's state through an `Arc` that holds no count of its own: an anchor keeps
/// the state alive while the handle is used (an export table's for origin references, a
/// count set aside by the first pin out for pins), so a handle made or ended takes no
/// read-modify-write on the state's count (INV-OWNER-OUTLIVES).
pub(crate) struct Anchored(ManuallyDrop<Arc<InterpState>>);

impl Anchored {
    /// # Safety
    /// An anchor keeps `state` alive for as long as this handle is used.
    pub(crate) unsafe fn new(state: &Arc<InterpState>) -> Self {
        // SAFETY: a bitwise copy of the `Arc`, never dropped as one (so the count it does not
        // hold is never given back, except by `let_go`); the anchor keeps the state alive
        // (the caller's contract).
        Anchored(ManuallyDrop::new(unsafe { std::ptr::read(state) }))
    }

    /// Gives back the count set aside as the anchor: the state may go once nothing else
    /// holds it.
    ///
    /// # Safety
    /// The caller ends the anchor this handle was made under, which holds that count; the
    /// state is not used through a lent handle after this unless an `Arc` of the user's own
    /// holds it.
    pub(crate) unsafe fn let_go(self) {
        drop(ManuallyDrop::into_inner(self.0));
    }
}

impl std::ops::Deref for Anchored {
    type Target = Arc<InterpState>;

    fn deref(&self) -> &Arc<InterpState> {
        &self.0
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
    /// Its runtime, uncounted: what a pin, an origin reference or a moved graph of this
    /// interpreter releases with, reached through the state they hold (or are lent) anyway.
    /// The registry holds the state and the state the runtime's memory: the cycle ends when
    /// the registry lets go of the state (destroy, or the runtime's finalization). Whatever
    /// else holds the state keeps that memory too: threads' state caches (until they enter
    /// again), frozen components, pins, origin references and moved graphs (a leaked one,
    /// in a cycle, for ever).
    pub(crate) rt: Runtime,
}

impl InterpState {
    pub(crate) fn new(
        id: InterpId,
        counters: Arc<LiveCounters>,
        trace: Option<Arc<crate::trace::TraceSink>>,
        extensions: Extensions,
        rt: Runtime,
    ) -> Self {
        Self {
            id,
            trace,
            rt,
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
    #[inline]
    pub(crate) fn trace(&self, begin: bool) {
        if self.trace.is_some() {
            self.record(begin);
        }
    }

    #[cold]
    #[inline(never)]
    fn record(&self, begin: bool) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn word(lock: &InterpLock) -> u64 {
        lock.word.load(Ordering::Relaxed)
    }

    fn spin_until(done: impl Fn() -> bool) {
        while !done() {
            std::thread::yield_now();
        }
    }

    #[test]
    fn each_move_changes_the_lock_word_as_its_contract_says() {
        // INV-DESTROY-IDLE: a suspended thread stays entered, so the destroy is refused.
        let (lock, id, handles) = (InterpLock::default(), InterpId(1), AtomicUsize::new(0));
        assert!(!lock.enter(id).unwrap().0);
        assert!(lock.try_enter().is_none());
        lock.suspend();
        assert_eq!((lock.is_held(), lock.entered()), (false, 1));
        let busy = lock.begin_destroy(id, &handles, || Ok(())).unwrap_err();
        assert_eq!(busy.kind(), ErrorKind::InterpreterBusy);
        lock.try_enter().unwrap();
        assert_eq!(word(&lock), HELD + 2 * ENTERED);
        lock.exit();
        assert!(!lock.resume().0);
        lock.exit();
        assert_eq!(word(&lock), 0);

        handles.store(1, Ordering::Relaxed);
        let busy = lock.begin_destroy(id, &handles, || Ok(())).unwrap_err();
        assert_eq!(busy.kind(), ErrorKind::InterpreterBusy);
        assert_eq!(word(&lock), 0, "a refusal lets the reservation go");
        handles.store(0, Ordering::Relaxed);

        lock.begin_destroy(id, &handles, || Ok(())).unwrap();
        assert_eq!(word(&lock), DESTROYED + HELD + ENTERED);
        let gone = lock.enter(id).map(|_| ()).unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::InterpreterNotFound);
        assert!(lock.try_enter().is_none());
        lock.exit();
        assert!(!lock.enter_late().0);
        lock.exit();
        assert_eq!(word(&lock), DESTROYED);
        let again = lock.begin_destroy(id, &handles, || Ok(())).unwrap_err();
        assert_eq!(again.kind(), ErrorKind::InterpreterNotFound);
    }

    #[test]
    fn an_entry_that_waits_out_a_destroy_fails_as_if_it_came_after() {
        // INV-EXPORTS-CLOSED, INV-DESTROY-IDLE: while the destroy decides (here: inside the
        // policy closure), the lock is reserved; an entry arriving then registers and waits,
        // and when the destroy goes on it is woken, unregisters and fails at once.
        let (lock, id, handles) = (InterpLock::default(), InterpId(1), AtomicUsize::new(0));
        std::thread::scope(|s| {
            let mut waiter = None;
            lock.begin_destroy(id, &handles, || {
                waiter = Some(s.spawn(|| lock.enter(id).map(|_| ())));
                spin_until(|| lock.entered() == 2);
                Ok(())
            })
            .unwrap();
            let gone = waiter.unwrap().join().unwrap().unwrap_err();
            assert_eq!(gone.kind(), ErrorKind::InterpreterNotFound);
            assert_eq!(word(&lock), DESTROYED + HELD + ENTERED);
            lock.exit();
        });
    }

    #[test]
    fn an_entry_that_waits_out_a_refused_destroy_gets_in() {
        let (lock, id, handles) = (InterpLock::default(), InterpId(1), AtomicUsize::new(0));
        std::thread::scope(|s| {
            let mut waiter = None;
            let refused = lock
                .begin_destroy(id, &handles, || {
                    waiter = Some(s.spawn(|| {
                        let Waited(waited) = lock.enter(id).unwrap();
                        lock.exit();
                        waited
                    }));
                    spin_until(|| lock.entered() == 2);
                    fail(ErrorKind::InterpreterBusy, "refused by the test")
                })
                .unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::InterpreterBusy);
            assert!(waiter.unwrap().join().unwrap(), "the entry waited");
        });
        assert_eq!(word(&lock), 0);
    }
}
