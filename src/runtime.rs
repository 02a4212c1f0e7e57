//! The runtime: the registry of interpreters, the main interpreter, and the runtime-wide
//! counters. Cheap to clone; every clone is a handle to the same runtime.

use crate::counters::{Counters, Event, LiveCounters};
use crate::error::{fail, Error, ErrorKind, Result};
use crate::extensions::Extensions;
use crate::interp::{InterpId, InterpInfo, InterpState};
use crate::state_cache::{self, Cached};
use crate::sync::{
    process_unique, yield_now, Arc, AtomicBool, AtomicU64, AtomicUsize, ConcurrentMap, Mutex,
    Ordering,
};
use crate::thread_state::{current, run_in, suspend_current, Drain, Entry, Token};

struct Shared {
    /// Unique in the process: what every item, handle and export key of this runtime
    /// carries, so that using one in another runtime is refused (INV-RUNTIME-OWN).
    id: u64,
    config: Config,
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
    /// The layers above: what they keep per interpreter and for the runtime, and their part
    /// of finalizing it.
    upper: &'static dyn Upper,
    /// What the layers above keep for the runtime (its channel registry).
    extensions: Extensions,
    /// The timeline of who held which interpreter, when `Config::trace` is on.
    trace: Option<Arc<crate::trace::TraceSink>>,
    /// Set by the first finalization: a handle made and dropped by a pending call during it
    /// must not start another (it would find interpreters it is inside of), nor let go of
    /// the interpreter that pending call runs in.
    finalizing: AtomicBool,
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
    /// What this handle is, and whether it counts in `Shared::handles`.
    kind: Handle,
}

/// The kinds of runtime handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handle {
    /// A user's handle: counted; its drop also empties this thread's cache of the runtime's
    /// states, so a thread that is done with a runtime keeps none of them (INV-LOOKUP-CACHE).
    User,
    /// An `OwnedObj`'s: counted; its drop keeps the thread's cached states, since an object
    /// handle going is no sign that the thread is done with the runtime.
    Object,
    /// An interpreter state's or a `Channel`'s: not counted. The registry holds the states,
    /// so a counted one would keep the runtime alive forever.
    Uncounted,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("main", &self.shared.main)
            .field("interpreters", &self.shared.interps.len())
            .finish()
    }
}

impl Clone for Runtime {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: Arc::clone(&self.shared),
            kind: Handle::User,
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.kind == Handle::User {
            state_cache::forget_runtime(self.shared.id);
        }
        if self.kind != Handle::Uncounted
            && self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1
            && !self.shared.finalizing.swap(true, Ordering::AcqRel)
        {
            // The last handle may go on a thread inside an interpreter of another runtime:
            // let go of it first, so the final drains below (which may enter any
            // interpreter, that one included) never wait on a lock this thread holds, and
            // never hold two (INV-ONE-LOCK, INV-FINALIZE-SUSPENDS).
            suspend_current(|| self.shared.upper.finalize(self));
            // The runtime is finished: this thread keeps none of its states.
            state_cache::forget_runtime(self.shared.id);
        }
    }
}

/// Runtime-wide policies, fixed when the runtime is made. Built from [`Config::default`]
/// with the methods below; the fields are private, so every value goes through them (and
/// `deferred_limit` can never be 0).
///
/// | policy | default | method |
/// |---|---|---|
/// | how a release reaches an owner this thread does not hold | `ReleaseStrategy::Switch` | [`Config::release`] |
/// | the inbox depth past which a deferred release switches instead | 1024 | [`Config::deferred_limit`] |
/// | one proxy per origin object per receiving interpreter | on | [`Config::identity_cache`] |
/// | `id()` of a proxy is its origin object's address | off | [`Config::proxy_id_is_origin`] |
/// | destroying an interpreter whose objects are held elsewhere | `OwnerDeath::Refuse` | [`Config::owner_death`] |
/// | a timeline of which thread held which interpreter | off | [`Config::trace`] |
///
/// A runtime's configuration reads back through `Debug` (`rt.config()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// How a release reaches an owner the releasing thread does not hold.
    pub(crate) release: ReleaseStrategy,
    /// The inbox depth past which a deferred release switches instead of queueing (>= 1).
    pub(crate) deferred_limit: usize,
    /// Releases for an interpreter this thread switched out of, or (under `Switch`) made
    /// while it holds another, wait in the thread's batch (INV-RELEASE-BATCH).
    pub(crate) batch_releases: bool,
    /// One proxy per origin object per receiving interpreter (`is` holds across receives).
    /// Off: every receive makes a new proxy, as PEP 797 did.
    pub(crate) identity_cache: bool,
    /// `id()` of a proxy reports its origin object's address.
    pub(crate) proxy_id_is_origin: bool,
    /// What destroying an interpreter whose objects are held elsewhere does.
    pub(crate) owner_death: OwnerDeath,
    /// Record a timeline of which thread held which interpreter ([`Runtime::take_trace`]).
    pub(crate) trace: bool,
}

/// How a release reaches an owner that the releasing thread does not hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReleaseStrategy {
    /// Leave the current interpreter, enter the owner (waiting for its lock), release, come
    /// back. The release is done when the call returns, unless it is batched
    /// ([`Config::batch_releases`]).
    #[default]
    Switch,
    /// Queue the release on the owner's own inbox; it runs when a thread next enters the
    /// owner or drains it. Bounded: past `Config::deferred_limit` queued calls, a release
    /// switches instead. Observable: the inbox's depth and the age of its oldest call.
    Deferred,
    /// Enter the owner if its lock is free right now, else defer.
    Adaptive,
}

impl ReleaseStrategy {
    /// Every strategy, for experiments that compare them.
    pub const ALL: [ReleaseStrategy; 3] = [Self::Switch, Self::Deferred, Self::Adaptive];

    /// A short name: `switch`, `deferred`, `adaptive`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Switch => "switch",
            Self::Deferred => "deferred",
            Self::Adaptive => "adaptive",
        }
    }
}

/// What destroying an interpreter does while other interpreters hold its objects (through
/// proxies, or messages in flight).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OwnerDeath {
    /// Refuse, with an error that lists each export held and by what.
    #[default]
    Refuse,
    /// Destroy anyway: every export is released now, and proxies of its objects turn dead
    /// (every operation gives `InterpreterGone`; dropping them is safe).
    Invalidate,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            release: ReleaseStrategy::Switch,
            deferred_limit: 1024,
            batch_releases: true,
            identity_cache: true,
            proxy_id_is_origin: false,
            owner_death: OwnerDeath::Refuse,
            trace: false,
        }
    }
}

impl Config {
    /// With release strategy `release`.
    pub fn release(mut self, release: ReleaseStrategy) -> Self {
        self.release = release;
        self
    }

    /// With the identity cache on or off.
    pub fn identity_cache(mut self, on: bool) -> Self {
        self.identity_cache = on;
        self
    }

    /// With `id()` of a proxy reporting its origin object's address, or not.
    pub fn proxy_id_is_origin(mut self, on: bool) -> Self {
        self.proxy_id_is_origin = on;
        self
    }

    /// With the timeline of interpreter holding recorded, or not.
    pub fn trace(mut self, on: bool) -> Self {
        self.trace = on;
        self
    }

    /// With owner-death policy `policy`.
    pub fn owner_death(mut self, policy: OwnerDeath) -> Self {
        self.owner_death = policy;
        self
    }

    /// With releases batched per owner, or not. Under `Switch` and `Adaptive`, a release
    /// whose owner this thread has let go of (switched out of, or waiting in) waits until the
    /// thread takes the owner back or enters it; under `Switch`, one made while the thread
    /// holds another interpreter waits until the thread lets go of that one, which then
    /// enters each such owner once. At 64 waiting for one owner, the thread enters it once
    /// for all of them (under `Adaptive` only if it is free). On by default.
    pub fn batch_releases(mut self, on: bool) -> Self {
        self.batch_releases = on;
        self
    }

    /// With inbox bound `limit` for deferred releases (at least 1).
    pub fn deferred_limit(mut self, limit: usize) -> Self {
        self.deferred_limit = limit.max(1);
        self
    }
}

/// The seam between the runtime and the layers above it (exports, proxies, channels): what
/// they keep per interpreter and for the runtime, and their part of finalizing it. Written
/// once, in `crate::lifecycle`, and installed by `Runtime::with_config` as a static vtable,
/// so that this layer never names a type above it.
pub(crate) trait Upper: Sync {
    /// What the layers above keep for a new interpreter.
    fn interp_extensions(&self, counters: &Arc<LiveCounters>) -> Extensions;
    /// What the layers above keep for a new runtime.
    fn runtime_extensions(&self) -> Extensions;
    /// Finalizes the runtime: called once, by its last handle, with whatever interpreter
    /// the thread held let go of (INV-FINALIZE-SUSPENDS).
    fn finalize(&self, rt: &Runtime);
}

impl Runtime {
    /// A runtime with its main interpreter, made of `config` and the layers above.
    pub(crate) fn assemble(config: Config, upper: &'static dyn Upper) -> Self {
        let main = InterpId(0);
        let counters = Arc::new(LiveCounters::default());
        let shared = Shared {
            id: process_unique(),
            config,
            interps: ConcurrentMap::new(),
            registry: Mutex::new(()),
            next_id: AtomicU64::new(1),
            main,
            handles: AtomicUsize::new(1),
            upper,
            extensions: upper.runtime_extensions(),
            trace: config
                .trace
                .then(|| Arc::new(crate::trace::TraceSink::new())),
            finalizing: AtomicBool::new(false),
            counters,
        };
        let rt = Self {
            shared: Arc::new(shared),
            kind: Handle::User,
        };
        let main_state = InterpState::new(
            main,
            Arc::clone(&rt.shared.counters),
            rt.shared.trace.clone(),
            upper.interp_extensions(&rt.shared.counters),
            rt.uncounted(),
        );
        rt.shared.interps.insert(main, Arc::new(main_state));
        rt
    }

    /// A handle that does not keep the runtime from finalizing: for interpreter states (which
    /// pinned exports, origin references and moved graphs waiting in the runtime's own
    /// channels reach through their owner's state) and for `Channel` handles, none of which
    /// should keep it alive forever.
    pub(crate) fn uncounted(&self) -> Runtime {
        Runtime {
            shared: Arc::clone(&self.shared),
            kind: Handle::Uncounted,
        }
    }

    /// A counted handle for an `OwnedObj`, whose drop keeps this thread's cached states.
    pub(crate) fn for_object(&self) -> Runtime {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Runtime {
            shared: Arc::clone(&self.shared),
            kind: Handle::Object,
        }
    }

    /// This runtime's identity, unique in the process: what its channel items, handles
    /// and object-pointer messages carry, so that another runtime refuses them with
    /// `WrongRuntime` (INV-RUNTIME-OWN).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Refuses a thing of runtime `of` used in this one (INV-RUNTIME-OWN).
    pub(crate) fn refuse_foreign(&self, of: u64, what: &str) -> Result<()> {
        if of == self.shared.id {
            return Ok(());
        }
        fail(
            ErrorKind::WrongRuntime,
            format!("{what} belongs to another runtime; runtimes share nothing"),
        )
    }

    /// What the layers above keep for this runtime.
    pub(crate) fn extensions(&self) -> &Extensions {
        &self.shared.extensions
    }

    /// The policies this runtime was made with.
    pub fn config(&self) -> Config {
        self.shared.config
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
        let state = InterpState::new(
            id,
            Arc::clone(&self.shared.counters),
            self.shared.trace.clone(),
            self.shared.upper.interp_extensions(&self.shared.counters),
            self.uncounted(),
        );
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
    /// runs `f` with a token for it and leaves. Waits while another thread holds it. Having
    /// left, it runs the releases kept while inside (views and proxies of other interpreters
    /// dropped there), entering each of their owners once (INV-RELEASE-BATCH).
    ///
    /// Fails with `AlreadyEntered` on a thread that already holds an interpreter (use
    /// [`Token::switch`]), and with `InterpreterNotFound` for an unknown or destroyed id.
    pub fn enter<R>(&self, id: InterpId, f: impl FnOnce(&mut Token<'_>) -> R) -> Result<R> {
        self.refuse_if_entered("enter another interpreter", "use Token::switch")?;
        let state = self.lookup_cached(id)?;
        run_in(
            self,
            &state,
            Event::Enters,
            Drain::Inbox,
            |tok, _drained| f(tok),
        )
    }

    /// [`Runtime::enter`] for a closure that can fail, as `Iterator::try_for_each` is for
    /// one: the closure's error and the entry's come back as one [`Result`], so a caller
    /// writes one `?`. (For a closure with an error type of its own, use `enter` and convert
    /// its outcome.)
    ///
    /// ```
    /// use xinterp::{ErrorKind, Runtime};
    ///
    /// fn main() -> xinterp::Result<()> {
    ///     let rt = Runtime::new();
    ///     let text = rt.try_enter(rt.main(), |tok| tok.list(&[tok.int(1)]).repr())?;
    ///     assert_eq!(text, "[1]");
    ///     let err = rt.try_enter(rt.main(), |tok| tok.int(1).len()).unwrap_err();
    ///     assert_eq!(err.kind(), ErrorKind::TypeError);
    ///     Ok(())
    /// }
    /// ```
    pub fn try_enter<T>(
        &self,
        id: InterpId,
        f: impl FnOnce(&mut Token<'_>) -> Result<T>,
    ) -> Result<T> {
        self.enter(id, f)?
    }

    /// The checks and the bookkeeping of destroying interpreter `id` (see
    /// `Runtime::destroy`, which supplies the layers' steps): `close` runs in the critical
    /// section that marks the interpreter destroyed (INV-EXPORTS-CLOSED), and `finalize`
    /// runs with the interpreter held for its final drain. It leaves the registry before the
    /// interpreter is let go, also if a pending call of the final drain panics.
    pub(crate) fn destroy_with<R>(
        &self,
        id: InterpId,
        close: impl FnOnce(&InterpState) -> Result<()>,
        finalize: impl FnOnce(&mut Entry<'_>, &InterpState) -> R,
    ) -> Result<R> {
        self.refuse_if_entered("destroy an interpreter", "use Token::destroy")?;
        let registry = self.shared.registry.lock();
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
        let mut entry = Entry::begin_destroy(self, &state, || close(&state))?;
        drop(registry);
        struct Unregister<'a>(&'a Runtime, InterpId);
        impl Drop for Unregister<'_> {
            fn drop(&mut self) {
                self.0.shared.interps.remove(&self.1);
                state_cache::forget_destroyed();
            }
        }
        let _unregister = Unregister(self, id);
        Ok(finalize(&mut entry, &state))
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
                self.shared.counters.bump(Event::PendingQueued);
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
        let state = self.lookup_cached(id)?;
        run_in(
            self,
            &state,
            Event::Enters,
            Drain::Inbox,
            |_tok, drained| drained,
        )
    }

    /// A snapshot of interpreter `id`'s accounting.
    pub fn info(&self, id: InterpId) -> Result<InterpInfo> {
        Ok(self.lookup(id)?.info())
    }

    /// The timeline recorded so far (taken: the next call returns only later events). Empty
    /// unless the runtime was made with `Config::trace`.
    pub fn take_trace(&self) -> Vec<crate::trace::TraceEvent> {
        self.shared
            .trace
            .as_ref()
            .map_or_else(Vec::new, |sink| sink.take())
    }

    /// A snapshot of the runtime-wide counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Interpreter `id`'s state for an entry into it, from this thread's cache when it is
    /// there (INV-LOOKUP-CACHE): only for a caller that goes through the state's lock, which
    /// refuses a destroyed interpreter as the registry would.
    pub(crate) fn lookup_cached(&self, id: InterpId) -> Result<Cached> {
        Cached::get(self.shared.id, id, || self.lookup(id))
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

    /// Finalizes every interpreter, main last: each is marked destroyed (with `close` in
    /// that critical section) and held for `finalize`. Called by the layers' finalization,
    /// when no handle is left: nobody can be inside any interpreter of this runtime
    /// (entering borrows a handle) and no `OwnedObj` exists (each holds a handle), except a
    /// thread running a release for an item it dropped (an `Incoming` or `Outgoing` holds
    /// no handle), which is waited for: releases run library code only, and end. A release
    /// kept in a thread's batch (INV-RELEASE-BATCH) is not waited for: it runs late when
    /// that thread lets go, its `Arc` keeping the state and the runtime's memory.
    pub(crate) fn finalize_interpreters(
        &self,
        close: impl Fn(&InterpState) -> Result<()>,
        mut finalize: impl FnMut(&mut Entry<'_>, &InterpState),
    ) {
        let mut states = self.shared.interps.drain();
        states.sort_by_key(|state| (state.id == self.shared.main, state.id));
        for state in states {
            let mut entry = loop {
                match Entry::begin_destroy(self, &state, || close(&state)) {
                    Ok(entry) => break Some(entry),
                    Err(e) if e.kind() == ErrorKind::InterpreterBusy => yield_now(),
                    Err(e) => {
                        debug_assert!(false, "finalizing a runtime: {e}");
                        break None;
                    }
                }
            };
            if let Some(entry) = &mut entry {
                finalize(entry, &state);
            }
        }
    }
}
