//! The top layer: the runtime assembled from its layers, and the steps of destroying an
//! interpreter and finalizing the runtime that cross them. The runtime layer below holds
//! interpreters, locks and the registry; it reaches the layers above only through the
//! [`Upper`] vtable installed here, and keeps their state in [`Extensions`] it cannot name
//! (see `design/ARCHITECTURE.md`, "Layers").

use crate::channel::Channels;
use crate::counters::LiveCounters;
use crate::error::Result;
use crate::export::Exports;
use crate::extensions::Extensions;
use crate::interp::{InterpId, InterpState};
use crate::proxy::IdentityCache;
use crate::runtime::{Config, OwnerDeath, Runtime, Upper};
use crate::sync::{Arc, Ordering};
use crate::thread_state::{Entry, Token};

/// The layers above the runtime, as its [`Upper`] vtable.
struct Layers;

static LAYERS: Layers = Layers;

impl Upper for Layers {
    fn interp_extensions(&self, counters: &Arc<LiveCounters>) -> Extensions {
        // At their slots: `Exports::SLOT`, `IdentityCache::SLOT`.
        Extensions::new(vec![
            Box::new(Exports::new(Arc::clone(counters))),
            Box::new(IdentityCache::new()),
        ])
    }

    fn runtime_extensions(&self) -> Extensions {
        // At its slot: `Channels::SLOT`.
        Extensions::new(vec![Box::new(Channels::new())])
    }

    /// Items still queued can never be received now: they are released (by the strategy,
    /// to owners that are still alive), then every interpreter is finalized, main last.
    fn finalize(&self, rt: &Runtime) {
        rt.channels_live().destroy_all();
        rt.finalize_interpreters(
            |state| Exports::of(state).close(state.id, false),
            |entry, state| {
                finalize(rt, entry, state);
            },
        );
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A runtime with its main interpreter and the default [`Config`].
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A runtime with its main interpreter and `config`.
    pub fn with_config(config: Config) -> Self {
        Runtime::assemble(config, &LAYERS)
    }

    /// Destroys interpreter `id`: its inbox is closed and drained, then it is gone for good.
    ///
    /// Refused (and nothing changes) when a thread is running in it or switched out of it,
    /// when `OwnedObj` handles to its objects are outstanding, or for the main interpreter
    /// while others live. Call it from a thread that holds no interpreter (inside a token,
    /// use [`Token::destroy`]).
    pub fn destroy(&self, id: InterpId) -> Result<DestroyReport> {
        // The owner-death policy is decided, and the export table closed to new
        // references, in the same critical section that marks the interpreter destroyed
        // (INV-EXPORTS-CLOSED).
        let refuse_if_held = self.config().owner_death == OwnerDeath::Refuse;
        self.destroy_with(
            id,
            |state| Exports::of(state).close(id, refuse_if_held),
            |entry, state| finalize(self, entry, state),
        )
    }
}

/// Runs the final drain of an interpreter this thread holds for destruction (`entry`),
/// and reports what was left.
fn finalize(rt: &Runtime, entry: &mut Entry<'_>, state: &InterpState) -> DestroyReport {
    state.inbox.close();
    // Items it sent that wait in channels follow their unbound op; their exports are
    // released here, in their owner (INV-CHAN-SENDER-GONE).
    rt.channels_live().forget_interpreter(state.id);
    // Under `Invalidate`, every export goes now and proxies elsewhere turn dead
    // (INV-OWNER-DEATH). Under `Refuse`, only releases on their way back can be left; they
    // run in the drain below, or late.
    let exports = Exports::of(state);
    let invalidated_exports = match rt.config().owner_death {
        OwnerDeath::Invalidate => exports.invalidate(),
        OwnerDeath::Refuse => 0,
    };
    // Drain until nothing is left, then seal: a release arriving later is refused and runs
    // in a late entry of its own (INV-INBOX-SEALED). Handles made by the drain itself may
    // escape; each holds the state alive (INV-OWNER-OUTLIVES).
    let mut pending_run = 0;
    loop {
        pending_run += entry.token().drain_inbox();
        if state.inbox.seal_if_empty() {
            break;
        }
    }
    // This thread holds the interpreter, so nothing below changes until it lets go: the
    // entries left are exports whose last references are on their way back (a release that
    // started before the destroy and runs late), and each holds its object.
    let pending_releases = exports.entries();
    let live = state.live_objects.load(Ordering::Relaxed);
    DestroyReport {
        id: state.id,
        pending_run,
        leaked_objects: live
            .checked_sub(pending_releases)
            .expect("every export entry holds a live object of its interpreter"),
        escaped_handles: state.owned_handles.load(Ordering::Acquire),
        pinned_exports: state.pinned_exports.load(Ordering::Acquire),
        pending_releases,
        invalidated_exports,
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
    /// CPython without its cycle collector, cannot free; objects that escaped handles still
    /// hold; and exporters pinned by views elsewhere (freed when those views go). Not
    /// counted: the exported objects of [`DestroyReport::pending_releases`], which are
    /// freed when their releases arrive (what such an object contains is counted until
    /// then).
    pub leaked_objects: usize,
    /// Owned handles made by pending calls during the final drain and kept beyond it. The
    /// interpreter's state outlives them; each one's decref runs in a late entry when it is
    /// dropped.
    pub escaped_handles: usize,
    /// Buffers of its objects still pinned by views in other interpreters. Their memory
    /// outlives the interpreter; each is released (in a late entry) when its last view goes.
    pub pinned_exports: usize,
    /// Exported objects whose last origin references were on their way back when the final
    /// drain ended: a proxy or message let go of them before the destroy began, and its
    /// release runs in a late entry, which frees the object. (Under `Refuse` only; under
    /// `Invalidate` every export is released by the destroy.)
    pub pending_releases: usize,
    /// Exports released by the `Invalidate` owner-death policy (their proxies are dead).
    pub invalidated_exports: usize,
}
