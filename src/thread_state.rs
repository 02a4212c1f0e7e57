//! Thread state: which interpreter this thread holds, the [`Token`] that proves it, and the
//! three moves a thread can make: enter, switch (A -> B -> A), suspend.
//!
//! The type system carries the main rule (INV-TOKEN-EXCLUSIVE): switching and suspending take
//! `&mut Token`, and every token-bound handle ([`Obj`](crate::Obj), [`Buffer`](crate::Buffer))
//! borrows the token, so nothing bound to A can be used while the thread is out of A. The
//! thread-local record of the held interpreter is the runtime backstop: every refcount touch
//! checks it in debug builds (INV-OWN-LOCKED).

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;

use crate::counters::{Event, LiveCounters};
use crate::error::Result;
use crate::interp::{InterpId, InterpInfo, InterpState, PendingCall, Waited};
use crate::release::{self, Suspended};
use crate::runtime::Runtime;
use crate::sync::{const_thread_local, Arc};

const_thread_local! {
    /// The interpreter this thread holds right now, or null. A thread holds at most one
    /// (INV-ONE-LOCK): entering requires null, switching and suspending clear it first.
    static CURRENT: Cell<*const InterpState> = Cell::new(ptr::null());
}

/// The interpreter the calling thread holds, or null.
pub(crate) fn current() -> *const InterpState {
    CURRENT.with(Cell::get)
}

/// Records that this thread now holds `interp` (or nothing), returning what it held before.
/// Only the entry guard ([`Entry`]) and the resumption of a suspension write it.
fn set_current(interp: *const InterpState) -> *const InterpState {
    CURRENT.with(|c| c.replace(interp))
}

/// Proof that the calling thread holds one interpreter right now.
///
/// A token exists only inside [`Runtime::enter`], [`Token::switch`] or a pending call, is
/// neither `Send` nor `Sync`, and is lent out as `&mut Token`: it cannot outlive the entry
/// and cannot move to another thread. Object operations go through it.
///
/// Handles bound to a token cannot be used while the thread is switched out of its
/// interpreter, because switching borrows the token exclusively:
///
/// ```compile_fail,E0502
/// # use xinterp::Runtime;
/// let rt = Runtime::new();
/// let other = rt.create().unwrap();
/// rt.enter(rt.main(), |tok| {
///     let x = tok.int(1);
///     tok.switch(other, |_in_other| {
///         let _ = x.repr(); // error: `tok` is borrowed mutably by the switch
///     })
///     .unwrap();
///     drop(x);
/// })
/// .unwrap();
/// ```
pub struct Token<'r> {
    rt: &'r Runtime,
    interp: &'r Arc<InterpState>,
    _not_send: PhantomData<*mut ()>,
}

impl std::fmt::Debug for Token<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("interp", &self.interp.id)
            .finish()
    }
}

impl<'r> Token<'r> {
    /// Made only by [`Entry::token`], for the interpreter the entry holds.
    fn new(rt: &'r Runtime, interp: &'r Arc<InterpState>) -> Self {
        debug_assert!(ptr::eq(current(), Arc::as_ptr(interp)));
        Self {
            rt,
            interp,
            _not_send: PhantomData,
        }
    }

    /// The interpreter this token holds.
    pub fn id(&self) -> InterpId {
        self.interp.id
    }

    /// The runtime this interpreter belongs to.
    pub fn runtime(&self) -> &'r Runtime {
        self.rt
    }

    /// This interpreter's accounting.
    pub fn info(&self) -> InterpInfo {
        self.interp.info()
    }

    pub(crate) fn interp(&self) -> &'r Arc<InterpState> {
        self.interp
    }

    pub(crate) fn counters(&self) -> &'r LiveCounters {
        self.rt.counters_live()
    }

    /// Runs `f` in interpreter `target` and comes back: this thread lets go of the current
    /// interpreter, takes `target`, runs `f` with a token for it, lets go of `target` and
    /// takes the current interpreter back. Counted in `switches` once `target` is entered. It
    /// never holds both (INV-ONE-LOCK). Switching to the interpreter already held runs `f`
    /// directly. A fallible closure: [`Token::try_switch`].
    ///
    /// If `f` panics, `target` is let go and the current interpreter taken back before the
    /// panic continues, so no lock is left held.
    pub fn switch<R>(
        &mut self,
        target: InterpId,
        f: impl FnOnce(&mut Token<'_>) -> R,
    ) -> Result<R> {
        if target == self.id() {
            return Ok(f(self));
        }
        let rt = self.rt;
        let state = rt.lookup_cached(target)?;
        self.suspend(|| {
            run_in(
                rt,
                &state,
                Event::Switches,
                Drain::Inbox,
                |tok, _drained| f(tok),
            )
        })
    }

    /// [`Token::switch`] for a closure that can fail: its error and the switch's come back
    /// as one [`Result`] (see [`Runtime::try_enter`]).
    pub fn try_switch<T>(
        &mut self,
        target: InterpId,
        f: impl FnOnce(&mut Token<'_>) -> Result<T>,
    ) -> Result<T> {
        self.switch(target, f)?
    }

    /// Lets go of this interpreter while `f` runs (for blocking work), then takes it back:
    /// the analogue of `Py_BEGIN_ALLOW_THREADS`. The thread stays registered in this
    /// interpreter, so it cannot be destroyed meanwhile (INV-DESTROY-IDLE). Inside `f` the
    /// thread holds no interpreter and may enter any, this one included.
    ///
    /// Before `f`, the releases this thread kept while holding this interpreter run in their
    /// owners, each entered once (waiting for it if another thread holds it), as they do
    /// when the thread leaves an interpreter (INV-RELEASE-BATCH).
    pub fn suspend<R>(&mut self, f: impl FnOnce() -> R) -> R {
        debug_assert!(ptr::eq(current(), Arc::as_ptr(self.interp)));
        suspend_current(f)
    }

    /// Runs every call waiting in this interpreter's inbox, including calls queued by the
    /// calls it runs, and returns how many ran. Entering drains too.
    pub fn drain_inbox(&mut self) -> usize {
        let mut ran = 0;
        while let Some(call) = self.interp.inbox.pop() {
            call(self);
            self.counters().bump(Event::PendingRun);
            ran += 1;
        }
        ran
    }
}

/// Lets go of the interpreter this thread holds (if any) while `f` runs, then takes it back,
/// also when `f` panics. The thread stays registered in it (INV-DESTROY-IDLE). Before `f`,
/// the releases this thread kept until it let go run in their owners (INV-RELEASE-BATCH).
///
/// Besides [`Token::suspend`], the release path uses this from inside a decref, where no
/// token is at hand: it runs only library code while out, and no borrow of the suspended
/// interpreter's object state is open at any decref (INV-RELEASE-SUSPEND).
pub(crate) fn suspend_current<R>(f: impl FnOnce() -> R) -> R {
    struct Resume<'f>(&'f Suspended);
    impl Drop for Resume<'_> {
        fn drop(&mut self) {
            self.0.unlink();
            let held = self.0.state();
            // SAFETY: the state outlives this thread's registration in it, which the
            // suspension keeps (INV-DESTROY-IDLE, INV-OWNER-OUTLIVES).
            let state = unsafe { &*held };
            let Waited(waited) = state.lock.resume();
            // The suspension may have counted for another runtime.
            state.counters.make_current();
            if waited {
                state.counters.bump(Event::LockWaits);
            }
            state.trace(true);
            set_current(held);
            release::taken(state);
        }
    }

    let held = set_current(ptr::null());
    if held.is_null() {
        return f();
    }
    // SAFETY: a non-null CURRENT points at the state this thread held, kept alive by the
    // entry that set it (INV-ONE-LOCK).
    let state = unsafe { &*held };
    state.trace(false);
    state.lock.suspend();
    let frame = Suspended::new(held);
    // SAFETY: `_resume` unlinks the frame first thing when dropped, also when unwinding,
    // before `frame` (declared first) goes; `frame` does not move while `_resume` borrows it.
    unsafe { frame.link() };
    let _resume = Resume(&frame);
    release::let_go();
    f()
}

/// This thread's hold on one interpreter, from taking its lock to letting go of it: the one
/// place where entering is written. Each constructor takes the lock its own way, then counts
/// the entry, records it in the timeline and in `CURRENT`, and the guard undoes all of it
/// when dropped, also during a panic: afterwards the thread holds nothing, and the lock is
/// let go with the entry unregistered; then the releases this thread kept until it let go
/// run in their owners (INV-RELEASE-BATCH). Tokens are made only from an entry
/// ([`Entry::token`]), so a token always stands for a lock this thread holds.
pub(crate) struct Entry<'a> {
    rt: &'a Runtime,
    interp: &'a Arc<InterpState>,
}

impl<'a> Entry<'a> {
    /// Enters `interp` (waiting while another thread holds it), counted in `counter`.
    /// Fails if it is destroyed.
    pub(crate) fn enter(
        rt: &'a Runtime,
        interp: &'a Arc<InterpState>,
        counter: Event,
    ) -> Result<Self> {
        Self::refuse_if_holding();
        let Waited(waited) = interp.lock.enter(interp.id)?;
        let entry = Self::taken(rt, interp, waited);
        rt.counters_live().bump(counter);
        Ok(entry)
    }

    /// Enters `interp` only if nobody holds it right now (never waits), counted in `counter`.
    pub(crate) fn try_enter(
        rt: &'a Runtime,
        interp: &'a Arc<InterpState>,
        counter: Event,
    ) -> Option<Self> {
        Self::refuse_if_holding();
        interp.lock.try_enter()?;
        let entry = Self::taken(rt, interp, false);
        rt.counters_live().bump(counter);
        Some(entry)
    }

    /// Enters a destroyed interpreter to release what its objects still owe, after its final
    /// drain (INV-INBOX-SEALED, INV-OWNER-OUTLIVES). Counted in `releases_late` by the caller.
    pub(crate) fn enter_late(rt: &'a Runtime, interp: &'a Arc<InterpState>) -> Self {
        Self::refuse_if_holding();
        let Waited(waited) = interp.lock.enter_late();
        Self::taken(rt, interp, waited)
    }

    /// Begins destroying `interp` and holds it for the final drain (see
    /// [`InterpLock::begin_destroy`](crate::interp::InterpLock::begin_destroy)).
    pub(crate) fn begin_destroy(
        rt: &'a Runtime,
        interp: &'a Arc<InterpState>,
        policy_allows: impl FnOnce() -> Result<()>,
    ) -> Result<Self> {
        Self::refuse_if_holding();
        interp
            .lock
            .begin_destroy(interp.id, &interp.owned_handles, policy_allows)?;
        Ok(Self::taken(rt, interp, false))
    }

    /// Every entry starts from a thread that holds nothing (INV-ONE-LOCK).
    fn refuse_if_holding() {
        debug_assert!(
            current().is_null(),
            "entering an interpreter from a thread that holds one"
        );
    }

    /// The lock is taken: count in this thread's block from now on, count a wait, record the
    /// hold.
    fn taken(rt: &'a Runtime, interp: &'a Arc<InterpState>, waited: bool) -> Self {
        rt.counters_live().make_current();
        if waited {
            rt.counters_live().bump(Event::LockWaits);
        }
        interp.trace(true);
        set_current(Arc::as_ptr(interp));
        release::taken(interp);
        Entry { rt, interp }
    }

    /// The token for the interpreter this entry holds. Borrows the entry exclusively, so
    /// there is one token per hold (INV-TOKEN-EXCLUSIVE).
    pub(crate) fn token(&mut self) -> Token<'_> {
        Token::new(self.rt, self.interp)
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        self.interp.trace(false);
        set_current(ptr::null());
        self.interp.lock.exit();
        release::let_go();
    }
}

/// Whether an entry runs the interpreter's pending calls first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drain {
    /// An ordinary entry: run them.
    Inbox,
    /// An entry that only runs a release or a forwarded operation (INV-RELEASE-BOUNDED,
    /// INV-PROXY-PANIC).
    No,
}

/// Enters `interp` from a thread that holds no interpreter, counts the entry in `counter`,
/// drains its inbox (an ordinary entry) or not (an entry that only runs a release or a
/// forwarded operation), runs `f` (with the number of calls drained) and leaves, also when
/// `f` panics.
///
/// A release never drains: draining runs other releases, which may enter other interpreters
/// and release there in turn, so a long backlog would nest one entry per queued release and
/// exhaust the stack (INV-RELEASE-BOUNDED).
pub(crate) fn run_in<R>(
    rt: &Runtime,
    interp: &Arc<InterpState>,
    counter: Event,
    drain: Drain,
    f: impl FnOnce(&mut Token<'_>, usize) -> R,
) -> Result<R> {
    let mut entry = Entry::enter(rt, interp, counter)?;
    let mut tok = entry.token();
    let drained = match drain {
        Drain::Inbox => tok.drain_inbox(),
        Drain::No => 0,
    };
    Ok(f(&mut tok, drained))
}

/// Like [`run_in`] for a release (no drain), but only if `interp`'s lock is free right now:
/// `None` (nothing run) otherwise. For the adaptive release strategy.
pub(crate) fn try_run_in<R>(
    rt: &Runtime,
    interp: &Arc<InterpState>,
    counter: Event,
    f: impl FnOnce(&mut Token<'_>) -> R,
) -> Option<R> {
    let mut entry = Entry::try_enter(rt, interp, counter)?;
    Some(f(&mut entry.token()))
}

/// Runs `call` in a destroyed owner whose final drain is over: takes its lock (nobody else
/// can enter it; only other late entries contend), runs the call and lets go. Never holds
/// two interpreters: the current one is let go first.
pub(crate) fn release_late(rt: &Runtime, owner: &Arc<InterpState>, call: PendingCall) {
    suspend_current(|| call(&mut Entry::enter_late(rt, owner).token()));
    rt.counters_live().bump(Event::ReleasesLate);
}
