//! A channel's state machine: associations, the queue, the three close modes, release and
//! senders going away, under one mutex with one condition variable, and in front of it a
//! ring (`ring.rs`) that plain sends and receives use without the mutex while the channel
//! is in its common state. It knows nothing of objects, tokens or runtimes: payloads are
//! opaque (`P`), and every payload that leaves the queue without being received is handed
//! back to the caller, to be dropped after the mutex is let go (INV-CHAN-DROP-OUTSIDE). See
//! `design/channel.md`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use super::ring::{Pop, Ring, Sealed};
use super::{ChannelId, ChannelInfo, ChannelStatus, Close, End, UnboundOp};
use crate::error::{fail, Error, ErrorKind, Result};
use crate::interp::InterpId;
use crate::sync::{AtomicU64, Condvar, Mutex, MutexGuard, Ordering};

/// Slots in a channel's ring: a power of two. The lab hands 64 items over per switch, so
/// 128 keeps its batches on the fast path; the loom models use 4, so that a full ring is
/// within their reach.
const RING_CAPACITY: usize = if cfg!(loom) { 4 } else { 128 };

/// A sealed ring reopens when at most this many items are queued: half the ring, so that a
/// queue hovering at the ring's size does not seal and unseal on every operation.
const REOPEN_AT_MOST: usize = RING_CAPACITY / 2;

/// `open_send` / `open_recv` when no interpreter is remembered.
const NOBODY: u64 = u64::MAX;

/// What a queued payload must offer the state machine: the marker that takes its place
/// when its sender is destroyed under `Replace` or `Error`.
pub(crate) trait Payload {
    /// The payload of an item whose sender is gone (its data is released).
    fn unbound() -> Self;
}

/// Whether an operation waits, and how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Never: an empty channel is `ChannelEmpty`, a send returns once queued.
    No,
    /// Until it can complete (or the channel closes).
    Forever,
    /// At most this long, then `Timeout` (a send's item is withdrawn).
    For(Duration),
}

impl Wait {
    /// `None` waits forever.
    pub(crate) fn at_most(timeout: Option<Duration>) -> Wait {
        timeout.map_or(Wait::Forever, Wait::For)
    }
}

/// What a send did.
pub(crate) struct Sent<P> {
    /// Its outcome.
    pub(crate) result: Result<()>,
    /// Whether the item went on the queue (counted as sent, whatever happened next).
    pub(crate) queued: bool,
    /// A payload that must be dropped, outside the lock: refused, or withdrawn on timeout.
    pub(crate) discarded: Option<P>,
}

impl<P> Sent<P> {
    fn refused(e: Error, payload: P) -> Self {
        Sent {
            result: Err(e),
            queued: false,
            discarded: Some(payload),
        }
    }

    fn queued(result: Result<()>, discarded: Option<P>) -> Self {
        Sent {
            result,
            queued: true,
            discarded,
        }
    }
}

/// A queued item: its payload and what the state machine needs to know about it.
pub(crate) struct Item<P> {
    /// For a waited item, its number (from 1, unique in its channel); 0 for any other.
    id: u64,
    /// The interpreter that made it (for the unbound-item policy).
    pub(crate) sender: InterpId,
    pub(crate) payload: P,
    unbound: UnboundOp,
    /// A blocked sender waits for this item to be received.
    waited: bool,
    /// The op to apply on receive, for an item whose sender was destroyed.
    pub(crate) orphaned: Option<UnboundOp>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Association {
    /// `Some(true)` open, `Some(false)` released, `None` never used.
    send: Option<bool>,
    recv: Option<bool>,
}

impl Association {
    fn end(self, end: End) -> Option<bool> {
        match end {
            End::Send => self.send,
            End::Recv | End::Both => self.recv,
        }
    }

    fn end_mut(&mut self, end: End) -> &mut Option<bool> {
        match end {
            End::Send => &mut self.send,
            End::Recv | End::Both => &mut self.recv,
        }
    }
}

struct State<P> {
    /// The queued items while the ring is sealed; empty while it is open (INV-CHAN-RING).
    items: VecDeque<Item<P>>,
    /// `Some` while the ring is sealed: where it left off.
    sealed: Option<Sealed>,
    /// Threads waiting on `changed` (a receiver for an item, a sender for its receipt):
    /// the ring stays sealed meanwhile, so that every change goes through the mutex and
    /// notifies them.
    waiters: usize,
    status: ChannelStatus,
    ends: BTreeMap<InterpId, Association>,
    next_item: u64,
    /// Ids of waited-for items that a receiver took.
    received: HashSet<u64>,
    /// Removed from the registry.
    destroyed: bool,
}

/// One channel: the state machine over payloads `P`. Shared by the registry and by whoever
/// is blocked on it.
pub(crate) struct Channel<P> {
    id: ChannelId,
    default_unbound: UnboundOp,
    /// Per end, the interpreter (its number, or `NOBODY`) `associate` last found or made
    /// open there: its next operation skips the look-up in `ends`, and only it uses the
    /// ring without the mutex. Set under the mutex, and cleared while the ring is sealed
    /// whenever any association ends (`release`, `forget_interpreter`), so it is open in
    /// `ends` whenever set.
    open_send: AtomicU64,
    open_recv: AtomicU64,
    /// The fast path: every queued item while open (INV-CHAN-RING).
    ring: Ring<Item<P>>,
    state: Mutex<State<P>>,
    /// Notified whenever items are added or taken, or the channel closes, while anyone
    /// waits (the ring is sealed then).
    changed: Condvar,
}

/// The channel's mutex held, and its ring sealed: every queued item is in `items`. Dropping
/// it reopens the ring when the state is common again ([`Channel::reopen`]), then unlocks.
struct Locked<'a, P: Payload> {
    channel: &'a Channel<P>,
    /// `None` only inside [`Locked::wait`].
    guard: Option<MutexGuard<'a, State<P>>>,
}

impl<P: Payload> Deref for Locked<'_, P> {
    type Target = State<P>;

    fn deref(&self) -> &State<P> {
        self.guard.as_ref().expect("held outside a wait")
    }
}

impl<P: Payload> DerefMut for Locked<'_, P> {
    fn deref_mut(&mut self) -> &mut State<P> {
        self.guard.as_mut().expect("held outside a wait")
    }
}

impl<P: Payload> Locked<'_, P> {
    /// Waits on `changed`, at most until `deadline`, counted among the waiters (so the ring
    /// stays sealed meanwhile and every change notifies).
    fn wait(&mut self, deadline: Option<Instant>) {
        self.waiters += 1;
        let guard = self.guard.take().expect("held outside a wait");
        let changed = &self.channel.changed;
        let guard = match deadline {
            None => changed.wait(guard),
            Some(deadline) => {
                changed.wait_for(guard, deadline.saturating_duration_since(Instant::now()))
            }
        };
        self.guard = Some(guard);
        self.waiters -= 1;
    }
}

impl<P: Payload> Drop for Locked<'_, P> {
    fn drop(&mut self) {
        if let Some(state) = &mut self.guard {
            self.channel.reopen(state);
        }
    }
}

impl<P: Payload> Channel<P> {
    pub(crate) fn new(id: ChannelId, default_unbound: UnboundOp) -> Self {
        Channel {
            id,
            default_unbound,
            open_send: AtomicU64::new(NOBODY),
            open_recv: AtomicU64::new(NOBODY),
            ring: Ring::new(RING_CAPACITY),
            state: Mutex::new(State {
                items: VecDeque::new(),
                sealed: None,
                waiters: 0,
                status: ChannelStatus::Open,
                ends: BTreeMap::new(),
                next_item: 1,
                received: HashSet::new(),
                destroyed: false,
            }),
            changed: Condvar::default(),
        }
    }

    /// Locks the channel and seals its ring, taking the ring's items (in order, after none:
    /// the queue is empty while the ring is open) into `items` (INV-CHAN-RING).
    fn lock(&self) -> Locked<'_, P> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if state.sealed.is_none() {
            debug_assert!(state.items.is_empty(), "an open ring holds every item");
            state.sealed = Some(self.ring.seal(&mut state.items));
        }
        Locked {
            channel: self,
            guard: Some(guard),
        }
    }

    /// Reopens the sealed ring, handing it the queued items, when the channel is in its
    /// common state: open, not destroyed, nobody waiting, no waited-for item queued, and at
    /// most `REOPEN_AT_MOST` items.
    fn reopen(&self, state: &mut State<P>) {
        let common = !state.destroyed
            && state.status == ChannelStatus::Open
            && state.waiters == 0
            && state.items.len() <= REOPEN_AT_MOST
            && !state.items.iter().any(|i| i.waited);
        if !common {
            return;
        }
        if let Some(sealed) = state.sealed.take() {
            self.ring.unseal(sealed, state.items.drain(..));
        }
    }

    /// The interpreter `associate` remembers for `end` (`NOBODY` if none).
    fn known(&self, end: End) -> &AtomicU64 {
        match end {
            End::Send => &self.open_send,
            End::Recv | End::Both => &self.open_recv,
        }
    }

    pub(crate) fn id(&self) -> ChannelId {
        self.id
    }

    #[cold]
    #[inline(never)]
    fn closed_error(&self) -> Error {
        Error::new(
            ErrorKind::ChannelClosed,
            format!("channel {} is closed", self.id),
        )
    }

    /// `ChannelNotFound` once the channel is destroyed.
    fn usable(&self, state: &State<P>) -> Result<()> {
        if state.destroyed {
            return Err(self.not_found_error());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn not_found_error(&self) -> Error {
        Error::new(
            ErrorKind::ChannelNotFound,
            format!("channel {} not found", self.id),
        )
    }

    #[cold]
    #[inline(never)]
    fn empty_error(&self) -> Error {
        Error::new(
            ErrorKind::ChannelEmpty,
            format!("channel {} is empty", self.id),
        )
    }

    /// Associates `interp` with `end`, unless it released that end. Called once the
    /// operation is known not to fail for the channel's own state (INV-CHAN-ASSOC-SUCCESS).
    /// The interpreter last associated with `end` is known open: no look-up.
    #[inline]
    fn associate(&self, state: &mut State<P>, interp: InterpId, end: End) -> Result<()> {
        if self.known(end).load(Ordering::Relaxed) == interp.0 {
            debug_assert_eq!(
                state.ends.get(&interp).map(|a| a.end(end)),
                Some(Some(true)),
                "the remembered association is open"
            );
            return Ok(());
        }
        self.associate_slow(state, interp, end)
    }

    /// [`Channel::associate`] through `ends`; remembers `interp` for `end` once it is open.
    #[inline(never)]
    fn associate_slow(&self, state: &mut State<P>, interp: InterpId, end: End) -> Result<()> {
        let slot = state.ends.entry(interp).or_default().end_mut(end);
        match *slot {
            Some(false) => fail(
                ErrorKind::ChannelClosed,
                format!(
                    "channel {} is already closed for interpreter {interp} (it released that end)",
                    self.id
                ),
            ),
            _ => {
                *slot = Some(true);
                self.known(end).store(interp.0, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Forgets the interpreters `associate` remembers: called wherever an association ends.
    fn forget_known(&self) {
        self.open_send.store(NOBODY, Ordering::Relaxed);
        self.open_recv.store(NOBODY, Ordering::Relaxed);
    }

    /// An item of `payload`, made in interpreter `sender`, not (yet) waited for.
    fn item(&self, sender: InterpId, payload: P, unbound: Option<UnboundOp>) -> Item<P> {
        Item {
            id: 0,
            sender,
            payload,
            unbound: unbound.unwrap_or(self.default_unbound),
            waited: false,
            orphaned: None,
        }
    }

    /// Queues `item` (numbering it if it is waited for), or refuses it (handing it back)
    /// when the channel's state refuses the send. As CPython: the channel must be open
    /// before the interpreter is associated with the send end, so a send that fails
    /// associates nothing (INV-CHAN-ASSOC-SUCCESS).
    fn enqueue(
        &self,
        state: &mut State<P>,
        user: InterpId,
        mut item: Item<P>,
    ) -> std::result::Result<u64, (Error, P)> {
        let checked = self
            .usable(state)
            .and_then(|()| match state.status {
                ChannelStatus::Open => Ok(()),
                ChannelStatus::Closing | ChannelStatus::Closed => Err(self.closed_error()),
            })
            .and_then(|()| self.associate(state, user, End::Send));
        if let Err(e) = checked {
            return Err((e, item.payload));
        }
        if item.waited {
            item.id = state.next_item;
            state.next_item += 1;
        }
        let id = item.id;
        state.items.push_back(item);
        Ok(id)
    }

    /// Puts `payload`, made in interpreter `sender`, on the queue for `user` (the
    /// interpreter using the send end), without waiting: on the ring when it is open, has
    /// room, and `user` is the send end's remembered interpreter (INV-CHAN-RING), else
    /// under the mutex. A refused payload comes back with the error, to be dropped outside
    /// the lock (INV-CHAN-DROP-OUTSIDE).
    pub(crate) fn send_now(
        &self,
        user: InterpId,
        sender: InterpId,
        payload: P,
        unbound: Option<UnboundOp>,
    ) -> std::result::Result<(), (Error, P)> {
        let item = self.item(sender, payload, unbound);
        let admitted = || self.open_send.load(Ordering::Relaxed) == user.0;
        let Err(mut item) = self.ring.try_push(item, admitted) else {
            return Ok(());
        };
        if !admitted() {
            // Another interpreter than the remembered one: its association is checked and
            // remembered under the mutex, and the ring tried again, while the ring is open.
            let mut state = self.state.lock();
            if state.sealed.is_none() {
                if let Err(e) = self.associate(&mut state, user, End::Send) {
                    return Err((e, item.payload));
                }
                match self.ring.try_push(item, || true) {
                    Ok(()) => return Ok(()),
                    Err(full) => item = full,
                }
            }
        }
        let mut state = self.lock();
        self.enqueue(&mut state, user, item)?;
        self.changed.notify_all();
        Ok(())
    }

    /// Puts `payload`, made in interpreter `sender`, on the queue for `user` (the
    /// interpreter using the send end). With a `wait`, blocks (the caller has let go of its
    /// interpreter) until a receiver takes it, the timeout passes (the item is withdrawn),
    /// or the channel closes. What must be dropped comes back in [`Sent::discarded`], to be
    /// dropped outside the lock (INV-CHAN-DROP-OUTSIDE).
    pub(crate) fn send(
        &self,
        user: InterpId,
        sender: InterpId,
        payload: P,
        unbound: Option<UnboundOp>,
        wait: Wait,
    ) -> Sent<P> {
        let deadline = match wait {
            Wait::No => {
                return match self.send_now(user, sender, payload, unbound) {
                    Ok(()) => Sent::queued(Ok(()), None),
                    Err((e, payload)) => Sent::refused(e, payload),
                };
            }
            Wait::Forever => None,
            Wait::For(timeout) => Some(Instant::now() + timeout),
        };
        let mut item = self.item(sender, payload, unbound);
        item.waited = true;
        let mut state = self.lock();
        let id = match self.enqueue(&mut state, user, item) {
            Ok(id) => id,
            Err((e, payload)) => return Sent::refused(e, payload),
        };
        self.changed.notify_all();
        loop {
            if state.received.remove(&id) {
                return Sent::queued(Ok(()), None);
            }
            let queued = state.items.iter().position(|i| i.id == id);
            let Some(at) = queued else {
                // Discarded by a forced close or a destroy.
                let e = Error::new(
                    ErrorKind::ChannelClosed,
                    format!("channel {} has closed", self.id),
                );
                return Sent::queued(Err(e), None);
            };
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                let withdrawn = state.items.remove(at).map(|i| i.payload);
                let e = Error::new(
                    ErrorKind::Timeout,
                    format!("channel {}: the item was not received in time", self.id),
                );
                return Sent::queued(Err(e), withdrawn);
            }
            state.wait(deadline);
        }
    }

    /// Takes the head item for `receiver`: off the ring when it is open and `receiver` is
    /// the receive end's remembered interpreter (INV-CHAN-RING), else under the mutex. With
    /// `wait`, blocks (the caller has let go of its interpreter) until an item comes, the
    /// timeout passes, or the channel closes.
    pub(crate) fn recv(&self, receiver: InterpId, wait: Wait) -> Result<Item<P>> {
        let admitted = || self.open_recv.load(Ordering::Relaxed) == receiver.0;
        match self.ring.try_pop(admitted) {
            Pop::Item(item) => return Ok(item),
            Pop::Empty if wait == Wait::No => return Err(self.empty_error()),
            Pop::Empty | Pop::Locked => {}
        }
        if !admitted() {
            // As for a send: associated and remembered under the mutex, and the ring tried
            // again, while the ring is open (the channel is then `Open`).
            let mut state = self.state.lock();
            if state.sealed.is_none() {
                self.associate(&mut state, receiver, End::Recv)?;
                match self.ring.try_pop(|| true) {
                    Pop::Item(item) => return Ok(item),
                    Pop::Empty if wait == Wait::No => return Err(self.empty_error()),
                    Pop::Empty | Pop::Locked => {}
                }
            }
        }
        let mut state = self.lock();
        // As CPython: a closed channel associates nothing; an open (or draining) one
        // associates the receiver, even if it turns out empty (INV-CHAN-ASSOC-SUCCESS).
        self.usable(&state)?;
        if state.status == ChannelStatus::Closed {
            return Err(self.closed_error());
        }
        self.associate(&mut state, receiver, End::Recv)?;
        let deadline = match wait {
            Wait::For(timeout) => Some(Instant::now() + timeout),
            Wait::No | Wait::Forever => None,
        };
        loop {
            if state.status == ChannelStatus::Closed {
                return Err(self.closed_error());
            }
            if let Some(item) = state.items.pop_front() {
                if item.waited {
                    state.received.insert(item.id);
                }
                if state.items.is_empty() && state.status == ChannelStatus::Closing {
                    state.status = ChannelStatus::Closed;
                }
                self.changed.notify_all();
                return Ok(item);
            }
            if state.status == ChannelStatus::Closing {
                state.status = ChannelStatus::Closed;
                self.changed.notify_all();
                return Err(self.closed_error());
            }
            if wait == Wait::No {
                return Err(self.empty_error());
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("channel {}: nothing received in time", self.id),
                ));
            }
            state.wait(deadline);
        }
    }

    /// Closes as `how` says; returns the payloads to drop outside the lock.
    pub(crate) fn close(&self, how: Close) -> Result<Vec<P>> {
        let mut state = self.lock();
        if state.destroyed {
            return Err(self.not_found_error());
        }
        // As CPython: a closing channel still has items, so closing it now is refused as for
        // any non-empty channel; closing it after the drain again is refused as closed.
        match (state.status, how) {
            (ChannelStatus::Closed, _) | (ChannelStatus::Closing, Close::AfterDrain) => {
                return Err(self.closed_error());
            }
            _ => {}
        }
        let discarded = match how {
            Close::Now if !state.items.is_empty() => {
                return fail(
                    ErrorKind::ChannelNotEmpty,
                    format!(
                        "channel {} may not be closed with {} item(s) queued",
                        self.id,
                        state.items.len()
                    ),
                );
            }
            Close::Now => {
                state.status = ChannelStatus::Closed;
                Vec::new()
            }
            Close::AfterDrain if !state.items.is_empty() => {
                state.status = ChannelStatus::Closing;
                Vec::new()
            }
            Close::AfterDrain => {
                state.status = ChannelStatus::Closed;
                Vec::new()
            }
            Close::Force => {
                state.status = ChannelStatus::Closed;
                state.items.drain(..).map(|i| i.payload).collect()
            }
        };
        self.changed.notify_all();
        Ok(discarded)
    }

    /// Releases `interp`'s association with `end` (idempotent while the channel is open or
    /// closing); closes the channel when no open association is left. A closed channel
    /// refuses, as in CPython. Returns the payloads to drop outside the lock.
    pub(crate) fn release(&self, interp: InterpId, end: End) -> Result<Vec<P>> {
        let mut state = self.lock();
        if state.destroyed {
            return Err(self.not_found_error());
        }
        if state.status == ChannelStatus::Closed {
            return Err(self.closed_error());
        }
        self.forget_known();
        let assoc = state.ends.entry(interp).or_default();
        match end {
            End::Send => assoc.send = Some(false),
            End::Recv => assoc.recv = Some(false),
            End::Both => {
                assoc.send = Some(false);
                assoc.recv = Some(false);
            }
        }
        Ok(self.close_if_unassociated(&mut state))
    }

    /// Closes when no open association is left (and at least one end was used). Queued
    /// items can then never be received, so they are released now (CPython keeps them until
    /// the channel is freed).
    fn close_if_unassociated(&self, state: &mut State<P>) -> Vec<P> {
        let any_open = state
            .ends
            .values()
            .any(|a| a.send == Some(true) || a.recv == Some(true));
        let any_used = state
            .ends
            .values()
            .any(|a| a.send.is_some() || a.recv.is_some());
        if any_open || !any_used || state.status == ChannelStatus::Closed {
            return Vec::new();
        }
        state.status = ChannelStatus::Closed;
        self.changed.notify_all();
        state.items.drain(..).map(|i| i.payload).collect()
    }

    /// Marks the channel destroyed and hands back every queued payload.
    pub(crate) fn destroy(&self) -> Vec<P> {
        let mut state = self.lock();
        state.destroyed = true;
        state.status = ChannelStatus::Closed;
        self.changed.notify_all();
        state.items.drain(..).map(|i| i.payload).collect()
    }

    /// Applies each queued item's unbound op for a destroyed sender, and ends the sender's
    /// associations. Returns the payloads to drop outside the lock: they are the sender's
    /// exports, released while the destroying thread holds it.
    pub(crate) fn forget_interpreter(&self, gone: InterpId) -> Vec<P> {
        let mut state = self.lock();
        let mut discarded = Vec::new();
        let items = std::mem::take(&mut state.items);
        for mut item in items {
            if item.sender != gone || item.orphaned.is_some() {
                state.items.push_back(item);
                continue;
            }
            let payload = std::mem::replace(&mut item.payload, P::unbound());
            discarded.push(payload);
            if item.unbound != UnboundOp::Remove {
                item.orphaned = Some(item.unbound);
                state.items.push_back(item);
            }
        }
        self.forget_known();
        if let Some(assoc) = state.ends.get_mut(&gone) {
            // Its associations end; that the ends were used is kept.
            assoc.send = assoc.send.map(|_| false);
            assoc.recv = assoc.recv.map(|_| false);
        }
        discarded.extend(self.close_if_unassociated(&mut state));
        self.changed.notify_all();
        discarded
    }

    pub(crate) fn info(&self) -> Result<ChannelInfo> {
        let state = self.lock();
        if state.destroyed {
            return Err(self.not_found_error());
        }
        let open = |pick: fn(&Association) -> Option<bool>| {
            state
                .ends
                .iter()
                .filter(|(_, a)| pick(a) == Some(true))
                .map(|(id, _)| *id)
                .collect()
        };
        Ok(ChannelInfo {
            id: self.id,
            status: state.status,
            count: state.items.len(),
            send_interps: open(|a| a.send),
            recv_interps: open(|a| a.recv),
        })
    }
}

#[cfg(test)]
mod tests;
