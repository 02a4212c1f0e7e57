//! The runtime: the registry of interpreters, the main interpreter, and the runtime-wide
//! counters. Cheap to clone; every clone is a handle to the same runtime.

use crate::counters::{Counters, LiveCounters};
use crate::error::{fail, Error, ErrorKind, Result};
use crate::interp::{InterpId, InterpInfo, InterpState};
use crate::sync::{Arc, AtomicU64, AtomicUsize, ConcurrentMap, Mutex, Ordering};
use crate::thread_state::{current, run_in, set_current, Token};

struct Shared {
    interps: ConcurrentMap<InterpId, Arc<InterpState>>,
    /// Serialises the bookkeeping of create and destroy (not their user-visible work), so
    /// "main is destroyed last" holds under concurrent calls.
    registry: Mutex<()>,
    next_id: AtomicU64,
    main: InterpId,
    counters: Arc<LiveCounters>,
    /// `Runtime` handles alive. The one that drops the count to zero finalizes every
    /// interpreter while its `Arc` still keeps the runtime's memory alive.
    handles: AtomicUsize,
    /// Destroyed interpreters whose final drain let owned handles escape: kept alive, with
    /// an open inbox, until the runtime's own finalization (INV-OWNER-OUTLIVES).
    escaped: Mutex<Vec<Arc<InterpState>>>,
}

/// A runtime: a set of interpreters sharing one address space.
///
/// ```
/// use xinterp::Runtime;
/// let rt = Runtime::new();
/// let sub = rt.create().unwrap();
/// let answer = rt.enter(sub, |tok| tok.int(41).as_int().unwrap() + 1).unwrap();
/// assert_eq!(answer, 42);
/// rt.destroy(sub).unwrap();
/// ```
pub struct Runtime {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("main", &self.shared.main)
            .field("interpreters", &self.shared.interps.len())
            .finish()
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for Runtime {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finalize_all();
        }
    }
}

impl Runtime {
    /// A runtime with its main interpreter.
    pub fn new() -> Self {
        let main = InterpId(0);
        let shared = Shared {
            interps: ConcurrentMap::new(),
            registry: Mutex::new(()),
            next_id: AtomicU64::new(1),
            main,
            counters: Arc::new(LiveCounters::default()),
            handles: AtomicUsize::new(1),
            escaped: Mutex::new(Vec::new()),
        };
        let main_state = InterpState::new(main, Arc::clone(&shared.counters));
        shared.interps.insert(main, Arc::new(main_state));
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The main interpreter's id.
    pub fn main(&self) -> InterpId {
        self.shared.main
    }

    /// Creates an interpreter and returns its id, which is never reused (INV-ID-FRESH).
    pub fn create(&self) -> Result<InterpId> {
        let _registry = self.shared.registry.lock();
        let main = self.shared.interps.get_cloned(&self.shared.main);
        if main.is_none_or(|main| main.lock.is_destroyed()) {
            return fail(
                ErrorKind::InterpreterNotFound,
                "the main interpreter has been destroyed; this runtime is finished",
            );
        }
        let id = InterpId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let state = InterpState::new(id, Arc::clone(&self.shared.counters));
        self.shared.interps.insert(id, Arc::new(state));
        Ok(id)
    }

    /// The live interpreters, in creation order.
    pub fn list(&self) -> Vec<InterpId> {
        let mut ids: Vec<InterpId> = self
            .shared
            .interps
            .values_cloned()
            .iter()
            .map(|s| s.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Enters interpreter `id` from a thread that holds none, drains its pending-call inbox,
    /// runs `f` with a token for it and leaves. Waits while another thread holds it.
    ///
    /// Fails with `AlreadyEntered` on a thread that already holds an interpreter (use
    /// [`Token::switch`]), and with `InterpreterNotFound` for an unknown or destroyed id.
    pub fn enter<R>(&self, id: InterpId, f: impl FnOnce(&mut Token<'_>) -> R) -> Result<R> {
        self.refuse_if_entered("enter another interpreter", "use Token::switch")?;
        let state = self.lookup(id)?;
        run_in(
            self,
            &state,
            &self.shared.counters.enters,
            |tok, _drained| f(tok),
        )
    }

    /// Destroys interpreter `id`: its inbox is closed and drained, then it is gone for good.
    ///
    /// Refused (and nothing changes) when a thread is running in it or switched out of it,
    /// when `OwnedObj` handles to its objects are outstanding, or for the main interpreter
    /// while others live. Call it from a thread that holds no interpreter (inside a token,
    /// use [`Token::destroy`]).
    pub fn destroy(&self, id: InterpId) -> Result<DestroyReport> {
        self.refuse_if_entered("destroy an interpreter", "use Token::destroy")?;
        let state = {
            let _registry = self.shared.registry.lock();
            let state = self.lookup(id)?;
            if id == self.shared.main && self.shared.interps.len() > 1 {
                return fail(
                    ErrorKind::MainInterpreter,
                    format!(
                        "the main interpreter cannot be destroyed while {} other interpreter(s) live",
                        self.shared.interps.len() - 1
                    ),
                );
            }
            state.lock.begin_destroy(id, &state.owned_handles)?;
            state
        };
        // Removal and the end of the final drain happen even if a pending call panics.
        struct Finish<'a>(&'a Runtime, &'a Arc<InterpState>);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                self.0.shared.interps.remove(&self.1.id);
                self.1.lock.finish_destroy();
            }
        }
        let _finish = Finish(self, &state);
        Ok(self.finalize(&state))
    }

    /// Queues `call` on interpreter `id`'s inbox. It runs in that interpreter the next time
    /// a thread enters it or drains it, or when it is destroyed, exactly once; a call that
    /// cannot be queued (the interpreter is being destroyed) is refused with `InboxClosed`
    /// and dropped unrun.
    pub fn call_soon(
        &self,
        id: InterpId,
        call: impl for<'t> FnOnce(&mut Token<'t>) + Send + 'static,
    ) -> Result<()> {
        let state = self.lookup(id)?;
        match state.inbox.push(Box::new(call)) {
            Ok(()) => {
                LiveCounters::bump(&self.shared.counters.pending_queued);
                Ok(())
            }
            Err(_refused) => fail(
                ErrorKind::InboxClosed,
                format!("interpreter {id} is being destroyed; its inbox is closed"),
            ),
        }
    }

    /// Enters interpreter `id` only to run its pending calls: the explicit drain point.
    /// Returns how many calls ran.
    pub fn drain(&self, id: InterpId) -> Result<usize> {
        self.refuse_if_entered("drain an interpreter", "use Token::drain_inbox")?;
        let state = self.lookup(id)?;
        run_in(
            self,
            &state,
            &self.shared.counters.enters,
            |_tok, drained| drained,
        )
    }

    /// A snapshot of interpreter `id`'s accounting.
    pub fn info(&self, id: InterpId) -> Result<InterpInfo> {
        Ok(self.lookup(id)?.info())
    }

    /// A snapshot of the runtime-wide counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    pub(crate) fn lookup(&self, id: InterpId) -> Result<Arc<InterpState>> {
        self.shared.interps.get_cloned(&id).ok_or_else(|| {
            let kind = ErrorKind::InterpreterNotFound;
            if id.0 < self.shared.next_id.load(Ordering::Relaxed) {
                Error::new(kind, format!("interpreter {id} has been destroyed"))
            } else {
                Error::new(kind, format!("no interpreter {id} exists"))
            }
        })
    }

    pub(crate) fn counters_live(&self) -> &LiveCounters {
        &self.shared.counters
    }

    fn refuse_if_entered(&self, what: &str, instead: &str) -> Result<()> {
        let held = current();
        if held.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null CURRENT points at the InterpState whose lock this thread holds;
        // the entry that set it keeps an `Arc` to it until it clears CURRENT (INV-ONE-LOCK).
        let held_id = unsafe { (*held).id };
        fail(
            ErrorKind::AlreadyEntered,
            format!("this thread holds interpreter {held_id}; to {what}, {instead}"),
        )
    }

    /// Runs the final drain of an interpreter whose lock this thread has taken for
    /// destruction, and reports what was left.
    fn finalize(&self, state: &Arc<InterpState>) -> DestroyReport {
        struct Restore(*const InterpState);
        impl Drop for Restore {
            fn drop(&mut self) {
                set_current(self.0);
            }
        }
        let _restore = Restore(set_current(Arc::as_ptr(state)));
        state.inbox.close();
        let mut pending_run = 0;
        let escaped_handles = loop {
            pending_run += Token::new(self, state).drain_inbox();
            let handles = state.owned_handles.load(Ordering::Acquire);
            if handles > 0 {
                // A call of the final drain made owned handles that now live outside the
                // interpreter. Keep its state (and so every object header's owner pointer)
                // alive until the runtime ends; their decrefs still reach its inbox, and
                // the runtime's finalization drains it (INV-OWNER-OUTLIVES).
                self.shared.escaped.lock().push(Arc::clone(state));
                break handles;
            }
            // No handle is left, and each queued its decref before it let go of the count
            // (Release, read above with Acquire): one more pass runs any that arrived
            // during the drain (INV-INBOX-BEFORE-HANDLE).
            if state.inbox.depth() == 0 {
                break 0;
            }
        };
        DestroyReport {
            id: state.id,
            pending_run,
            leaked_objects: state.live_objects.load(Ordering::Relaxed),
            escaped_handles,
        }
    }

    /// Called by the last handle: nobody can be inside any interpreter (entering borrows a
    /// handle) and no `OwnedObj` exists (each holds a handle). A final drain that lets a
    /// handle escape again brings a handle back; this runs again when that one goes.
    fn finalize_all(&self) {
        for state in self.shared.interps.drain() {
            match state.lock.begin_destroy(state.id, &state.owned_handles) {
                Ok(()) => {
                    self.finalize(&state);
                    state.lock.finish_destroy();
                }
                Err(e) => debug_assert!(false, "finalizing a runtime: {e}"),
            }
        }
        let escaped = std::mem::take(&mut *self.shared.escaped.lock());
        for state in escaped {
            state.lock.begin_late_drain();
            self.finalize(&state);
            state.lock.finish_destroy();
        }
    }
}

impl Token<'_> {
    /// Destroys another interpreter from inside this one: lets go of this interpreter for
    /// the duration (see [`Runtime::destroy`]).
    pub fn destroy(&mut self, id: InterpId) -> Result<DestroyReport> {
        let rt = self.runtime();
        self.suspend(|| rt.destroy(id))
    }
}

/// What destroying an interpreter found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DestroyReport {
    /// The destroyed interpreter.
    pub id: InterpId,
    /// Pending calls run by the final drain.
    pub pending_run: usize,
    /// Objects still allocated at the end: reference cycles, which this model, like
    /// CPython without its cycle collector, cannot free, and objects that escaped handles
    /// still hold.
    pub leaked_objects: usize,
    /// Owned handles made by pending calls during the final drain and kept beyond it. The
    /// interpreter's state outlives them; their decrefs run when the runtime ends.
    pub escaped_handles: usize,
}
