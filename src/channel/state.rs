//! A channel's state machine: associations, the queue, the three close modes, release and
//! senders going away, under one mutex with one condition variable. It knows nothing of
//! objects, tokens or runtimes: payloads are opaque (`P`), and every payload that leaves the
//! queue without being received is handed back to the caller, to be dropped after the
//! mutex is let go (INV-CHAN-DROP-OUTSIDE). See `design/channel.md`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::{ChannelId, ChannelInfo, ChannelStatus, Close, End, UnboundOp};
use crate::error::{fail, Error, ErrorKind, Result};
use crate::interp::InterpId;
use crate::sync::{Condvar, Mutex, MutexGuard};

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
    items: VecDeque<Item<P>>,
    status: ChannelStatus,
    ends: BTreeMap<InterpId, Association>,
    /// Per end, the interpreter `associate` last found or made open there, so that its next
    /// operation skips the look-up in `ends`; cleared whenever any association ends
    /// (`release`, `forget_interpreter`), so it is open in `ends` whenever set.
    open_send: Option<InterpId>,
    open_recv: Option<InterpId>,
    default_unbound: UnboundOp,
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
    state: Mutex<State<P>>,
    /// Notified whenever items are added or taken, or the channel closes.
    changed: Condvar,
}

impl<P: Payload> Channel<P> {
    pub(crate) fn new(id: ChannelId, default_unbound: UnboundOp) -> Self {
        Channel {
            id,
            state: Mutex::new(State {
                items: VecDeque::new(),
                status: ChannelStatus::Open,
                ends: BTreeMap::new(),
                open_send: None,
                open_recv: None,
                default_unbound,
                next_item: 0,
                received: HashSet::new(),
                destroyed: false,
            }),
            changed: Condvar::default(),
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
        let known = match end {
            End::Send => state.open_send,
            End::Recv | End::Both => state.open_recv,
        };
        if known == Some(interp) {
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
                match end {
                    End::Send => state.open_send = Some(interp),
                    End::Recv | End::Both => state.open_recv = Some(interp),
                }
                Ok(())
            }
        }
    }

    /// Forgets the interpreters `associate` remembers: called wherever an association ends.
    fn forget_known(state: &mut State<P>) {
        state.open_send = None;
        state.open_recv = None;
    }

    /// Queues `payload` and gives its id, or refuses it (handing it back) when the channel's
    /// state refuses the send. As CPython: the channel must be open before the interpreter
    /// is associated with the send end, so a send that fails associates nothing
    /// (INV-CHAN-ASSOC-SUCCESS).
    fn enqueue(
        &self,
        state: &mut State<P>,
        user: InterpId,
        sender: InterpId,
        payload: P,
        unbound: Option<UnboundOp>,
        waited: bool,
    ) -> std::result::Result<u64, (Error, P)> {
        let checked = self
            .usable(state)
            .and_then(|()| match state.status {
                ChannelStatus::Open => Ok(()),
                ChannelStatus::Closing | ChannelStatus::Closed => Err(self.closed_error()),
            })
            .and_then(|()| self.associate(state, user, End::Send));
        if let Err(e) = checked {
            return Err((e, payload));
        }
        let id = state.next_item;
        state.next_item += 1;
        let unbound = unbound.unwrap_or(state.default_unbound);
        state.items.push_back(Item {
            id,
            sender,
            payload,
            unbound,
            waited,
            orphaned: None,
        });
        Ok(id)
    }

    /// Puts `payload`, made in interpreter `sender`, on the queue for `user` (the
    /// interpreter using the send end), without waiting. A refused payload comes back with
    /// the error, to be dropped outside the lock (INV-CHAN-DROP-OUTSIDE).
    pub(crate) fn send_now(
        &self,
        user: InterpId,
        sender: InterpId,
        payload: P,
        unbound: Option<UnboundOp>,
    ) -> std::result::Result<(), (Error, P)> {
        let mut state = self.state.lock();
        self.enqueue(&mut state, user, sender, payload, unbound, false)?;
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
        let mut state = self.state.lock();
        let id = match self.enqueue(&mut state, user, sender, payload, unbound, wait != Wait::No) {
            Ok(id) => id,
            Err((e, payload)) => return Sent::refused(e, payload),
        };
        self.changed.notify_all();
        let deadline = match wait {
            Wait::No => return Sent::queued(Ok(()), None),
            Wait::Forever => None,
            Wait::For(timeout) => Some(Instant::now() + timeout),
        };
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
            let Some(deadline) = deadline else {
                state = self.changed.wait(state);
                continue;
            };
            let now = Instant::now();
            if now >= deadline {
                let withdrawn = state.items.remove(at).map(|i| i.payload);
                let e = Error::new(
                    ErrorKind::Timeout,
                    format!("channel {}: the item was not received in time", self.id),
                );
                return Sent::queued(Err(e), withdrawn);
            }
            state = self.changed.wait_for(state, deadline - now);
        }
    }

    /// Takes the head item for `receiver`. With `wait`, blocks (the caller has let go of
    /// its interpreter) until an item comes, the timeout passes, or the channel closes.
    pub(crate) fn recv(&self, receiver: InterpId, wait: Wait) -> Result<Item<P>> {
        let mut state = self.state.lock();
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
            match (wait, deadline) {
                (Wait::No, _) => return Err(self.empty_error()),
                (_, None) => state = self.changed.wait(state),
                (_, Some(deadline)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            format!("channel {}: nothing received in time", self.id),
                        ));
                    }
                    state = self.changed.wait_for(state, deadline - now);
                }
            }
        }
    }

    /// Closes as `how` says; returns the payloads to drop outside the lock.
    pub(crate) fn close(&self, how: Close) -> Result<Vec<P>> {
        let mut state = self.state.lock();
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
        let mut state = self.state.lock();
        if state.destroyed {
            return Err(self.not_found_error());
        }
        if state.status == ChannelStatus::Closed {
            return Err(self.closed_error());
        }
        Self::forget_known(&mut state);
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
    fn close_if_unassociated(&self, state: &mut MutexGuard<'_, State<P>>) -> Vec<P> {
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
        let mut state = self.state.lock();
        state.destroyed = true;
        state.status = ChannelStatus::Closed;
        self.changed.notify_all();
        state.items.drain(..).map(|i| i.payload).collect()
    }

    /// Applies each queued item's unbound op for a destroyed sender, and ends the sender's
    /// associations. Returns the payloads to drop outside the lock: they are the sender's
    /// exports, released while the destroying thread holds it.
    pub(crate) fn forget_interpreter(&self, gone: InterpId) -> Vec<P> {
        let mut state = self.state.lock();
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
        Self::forget_known(&mut state);
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
        let state = self.state.lock();
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
