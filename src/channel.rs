//! MemChannel: PEP 554 channel semantics over bytes items (copied once, at send) and buffer
//! items (zero-copy: the receiver gets a view onto the sender's memory, released back in
//! the sender). See `design/channel.md`.
//!
//! A channel's state sits under one small mutex that is never held while an item is
//! dropped or an interpreter is entered: items leave the critical section first
//! (INV-CHAN-DROP-OUTSIDE), because dropping a buffer item releases it in its owner, which
//! may switch interpreters.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::buffer::PinnedExport;
use crate::counters::LiveCounters;
use crate::error::{fail, Error, ErrorKind, Result};
use crate::export::OriginRef;
use crate::interp::InterpId;
use crate::message::MESSAGE_LEN;
use crate::object::{Body, Obj};
use crate::runtime::Runtime;
use crate::sync::{Condvar, Mutex, MutexGuard, Ordering};
use crate::thread_state::Token;

/// A channel's id: process-wide (per runtime) and never reused (INV-CHAN-ID-FRESH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub(crate) u64);

impl ChannelId {
    /// The id numbered `id` (whether a channel has it is checked where it is used).
    pub fn new(id: u64) -> Self {
        Self(id)
    }

    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One end of a channel, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    /// The send end.
    Send,
    /// The receive end.
    Recv,
    /// Both ends.
    Both,
}

/// What becomes of an item whose sending interpreter is destroyed before it is received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UnboundOp {
    /// The item stays, as a marker: receiving it gives an object of kind `Unbound`.
    #[default]
    Replace,
    /// The item stays; receiving it fails with `ItemInterpreterDestroyed`.
    Error,
    /// The item is removed when its sender is destroyed.
    Remove,
}

/// How `close` closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Close {
    /// Both ends, now; refused with `ChannelNotEmpty` while items are queued.
    Now,
    /// Stop sends now and close once the queue has drained.
    AfterDrain,
    /// Both ends, now, discarding (and releasing) queued items.
    Force,
}

/// A channel's state as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelStatus {
    /// Sends and receives work.
    Open,
    /// `close(AfterDrain)` was called: sends fail, receives drain the queue.
    Closing,
    /// Every operation fails with `ChannelClosed`.
    Closed,
}

/// A snapshot of one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// Which channel.
    pub id: ChannelId,
    /// Open, closing or closed.
    pub status: ChannelStatus,
    /// Items queued (unbound markers included).
    pub count: usize,
    /// Interpreters whose association with the send end is open.
    pub send_interps: Vec<InterpId>,
    /// Interpreters whose association with the receive end is open.
    pub recv_interps: Vec<InterpId>,
}

/// An item made ready for a channel in the sending interpreter: bound to no interpreter,
/// so it can wait in the channel while its sender and receiver do other things.
pub struct Outgoing {
    payload: Payload,
    unbound: Option<UnboundOp>,
    /// The interpreter the item was made in: its sender for the unbound-item policy, whatever
    /// thread or token finally sends it.
    made_in: InterpId,
    /// The runtime it was made in: only that runtime's channels take it (INV-RUNTIME-OWN).
    runtime: u64,
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("payload", &self.payload)
            .field("unbound", &self.unbound)
            .finish()
    }
}

impl Outgoing {
    /// A bytes item: a copy of the bytes of a `bytes`, `bytearray` or `memoryview`, made
    /// now. The receiver gets a new `bytes` object holding that copy.
    pub fn bytes(obj: &Obj<'_>) -> Result<Outgoing> {
        let data = obj.as_bytes()?.into_boxed_slice();
        LiveCounters::bump_by(&obj.token().counters().bytes_copied, data.len() as u64);
        Ok(Outgoing {
            payload: Payload::Bytes(data),
            unbound: None,
            made_in: obj.token().id(),
            runtime: obj.token().runtime().id(),
        })
    }

    /// A buffer item: an export of `obj`'s bytes (`bytes`, `bytearray`, `memoryview`),
    /// taken now and held until the receiver's last view of it is gone (or the item is
    /// discarded). The receiver gets a `memoryview` onto the same memory.
    pub fn buffer(obj: &Obj<'_>) -> Result<Outgoing> {
        let export = obj.get_buffer()?.pin();
        LiveCounters::bump_by(&obj.token().counters().bytes_zero_copy, export.len() as u64);
        Ok(Outgoing {
            payload: Payload::Buffer(export),
            unbound: None,
            made_in: obj.token().id(),
            runtime: obj.token().runtime().id(),
        })
    }

    pub(crate) fn from_object(
        made_in: InterpId,
        bytes: [u8; MESSAGE_LEN],
        reference: OriginRef,
    ) -> Outgoing {
        Outgoing {
            runtime: reference.runtime().id(),
            payload: Payload::Object { bytes, reference },
            unbound: None,
            made_in,
        }
    }

    /// Sets what becomes of this item if its sender is destroyed before it is received
    /// (default: the channel's).
    pub fn unbound(mut self, op: UnboundOp) -> Outgoing {
        self.unbound = Some(op);
        self
    }
}

/// An item taken off a channel, bound to no interpreter yet; [`Incoming::into_obj`] makes
/// it an object of the receiving interpreter.
pub struct Incoming {
    payload: Payload,
    /// The runtime whose channel it came from: only its interpreters take it
    /// (INV-RUNTIME-OWN).
    runtime: u64,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("payload", &self.payload)
            .finish()
    }
}

impl Incoming {
    /// The object for this item in `tok`'s interpreter: a `bytes` for a bytes item, a
    /// `memoryview` onto the sender's memory for a buffer item, an `Unbound` marker for an
    /// item whose sender was destroyed, and for an object pointer the object itself (back
    /// in its origin) or a proxy. An object pointer that fails validation, or whose origin
    /// is gone, gives an error (and its reference goes back). An item of another runtime's
    /// channel gives `WrongRuntime` (and is released in its own runtime).
    pub fn into_obj<'t>(self, tok: &'t Token<'t>) -> Result<Obj<'t>> {
        tok.runtime()
            .refuse_foreign(self.runtime, "this received item")?;
        Ok(match self.payload {
            Payload::Bytes(data) => tok.bytes_from_box(data),
            Payload::Buffer(export) => {
                let holder = tok.received_buffer(export);
                holder.memoryview()?
            }
            Payload::Object { bytes, reference } => {
                crate::proxy::receive_object(tok, &bytes, reference)?
            }
            Payload::Unbound => tok.unbound(),
        })
    }
}

/// Payloads taken out of a channel under its lock, to be dropped (and so released) after
/// the lock is let go (INV-CHAN-DROP-OUTSIDE).
type Discarded = Vec<Payload>;

enum Payload {
    Bytes(Box<[u8]>),
    Buffer(PinnedExport),
    /// An object pointer: the encoded bytes, and the origin reference they stand for,
    /// owned by the message until it is received or discarded.
    Object {
        bytes: [u8; MESSAGE_LEN],
        reference: OriginRef,
    },
    /// The sender was destroyed; its data is released.
    Unbound,
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Payload::Buffer(e) => write!(
                f,
                "Buffer({} bytes of interpreter {})",
                e.len(),
                e.owner_id()
            ),
            Payload::Object { reference, .. } => {
                write!(
                    f,
                    "Object(export {} of interpreter {})",
                    reference.key().serial,
                    reference.key().origin
                )
            }
            Payload::Unbound => f.write_str("Unbound"),
        }
    }
}

struct Item {
    id: u64,
    runtime: u64,
    sender: InterpId,
    payload: Payload,
    unbound: UnboundOp,
    /// A blocked sender waits for this item to be received.
    waited: bool,
    /// The op to apply on receive, for an item whose sender was destroyed.
    orphaned: Option<UnboundOp>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Association {
    /// `Some(true)` open, `Some(false)` released, `None` never used.
    send: Option<bool>,
    recv: Option<bool>,
}

impl Association {
    fn end_mut(&mut self, end: End) -> &mut Option<bool> {
        match end {
            End::Send => &mut self.send,
            End::Recv | End::Both => &mut self.recv,
        }
    }
}

struct State {
    items: VecDeque<Item>,
    status: ChannelStatus,
    ends: BTreeMap<InterpId, Association>,
    default_unbound: UnboundOp,
    next_item: u64,
    /// Ids of waited-for items that a receiver took.
    received: HashSet<u64>,
    /// Removed from the registry.
    destroyed: bool,
}

/// One channel. Shared by the registry and by whoever is blocked on it.
pub(crate) struct Channel {
    id: ChannelId,
    state: Mutex<State>,
    /// Notified whenever items are added or taken, or the channel closes.
    changed: Condvar,
}

impl Channel {
    pub(crate) fn new(id: ChannelId, default_unbound: UnboundOp) -> Self {
        Channel {
            id,
            state: Mutex::new(State {
                items: VecDeque::new(),
                status: ChannelStatus::Open,
                ends: BTreeMap::new(),
                default_unbound,
                next_item: 0,
                received: HashSet::new(),
                destroyed: false,
            }),
            changed: Condvar::default(),
        }
    }

    fn closed_error(&self) -> Error {
        Error::new(
            ErrorKind::ChannelClosed,
            format!("channel {} is closed", self.id),
        )
    }

    /// `ChannelNotFound` once the channel is destroyed.
    fn usable(&self, state: &State) -> Result<()> {
        if state.destroyed {
            return fail(
                ErrorKind::ChannelNotFound,
                format!("channel {} not found", self.id),
            );
        }
        Ok(())
    }

    /// Associates `interp` with `end`, unless it released that end. Called once the
    /// operation is known not to fail for the channel's own state (INV-CHAN-ASSOC-SUCCESS).
    fn associate(&self, state: &mut State, interp: InterpId, end: End) -> Result<()> {
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
                Ok(())
            }
        }
    }

    /// Puts `item` on the queue for `user` (the interpreter using the send end) and counts
    /// it. With `wait`, blocks (the caller has let go of its interpreter) until a receiver
    /// takes it, the timeout passes (the item is withdrawn), or the channel closes. Returns
    /// what must be dropped outside the lock.
    fn send(
        &self,
        user: InterpId,
        item: Outgoing,
        wait: Option<Option<Duration>>,
        counters: &LiveCounters,
    ) -> (Result<()>, Discarded) {
        let mut state = self.state.lock();
        let sender = item.made_in;
        // As CPython: the channel must be open before the interpreter is associated with
        // the send end, so a send that fails associates nothing (INV-CHAN-ASSOC-SUCCESS).
        let checked = self
            .usable(&state)
            .and_then(|()| match state.status {
                ChannelStatus::Open => Ok(()),
                ChannelStatus::Closing | ChannelStatus::Closed => Err(self.closed_error()),
            })
            .and_then(|()| self.associate(&mut state, user, End::Send));
        let Outgoing {
            payload,
            unbound,
            runtime,
            ..
        } = item;
        if let Err(e) = checked {
            return (Err(e), vec![payload]);
        }
        LiveCounters::bump(&counters.channel_sends);
        let id = state.next_item;
        state.next_item += 1;
        let unbound = unbound.unwrap_or(state.default_unbound);
        state.items.push_back(Item {
            id,
            runtime,
            sender,
            payload,
            unbound,
            waited: wait.is_some(),
            orphaned: None,
        });
        self.changed.notify_all();
        let Some(timeout) = wait else {
            return (Ok(()), Vec::new());
        };

        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if state.received.remove(&id) {
                return (Ok(()), Vec::new());
            }
            let queued = state.items.iter().position(|i| i.id == id);
            let Some(at) = queued else {
                // Discarded by a forced close or a destroy.
                let e = Error::new(
                    ErrorKind::ChannelClosed,
                    format!("channel {} has closed", self.id),
                );
                return (Err(e), Vec::new());
            };
            if let Some(deadline) = deadline {
                let now = Instant::now();
                if now >= deadline {
                    let withdrawn = state.items.remove(at).map(|i| i.payload);
                    let e = Error::new(
                        ErrorKind::Timeout,
                        format!("channel {}: the item was not received in time", self.id),
                    );
                    return (Err(e), withdrawn.into_iter().collect());
                }
                state = self.changed.wait_for(state, deadline - now);
            } else {
                state = self.changed.wait(state);
            }
        }
    }

    /// Takes the head item for `receiver`. With `wait`, blocks (the caller has let go of
    /// its interpreter) until an item comes, the timeout passes, or the channel closes.
    fn recv(&self, receiver: InterpId, wait: Option<Option<Duration>>) -> Result<Item> {
        let mut state = self.state.lock();
        // As CPython: a closed channel associates nothing; an open (or draining) one
        // associates the receiver, even if it turns out empty (INV-CHAN-ASSOC-SUCCESS).
        self.usable(&state)?;
        if state.status == ChannelStatus::Closed {
            return Err(self.closed_error());
        }
        self.associate(&mut state, receiver, End::Recv)?;
        let deadline = wait.flatten().map(|t| Instant::now() + t);
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
            let empty = || {
                Error::new(
                    ErrorKind::ChannelEmpty,
                    format!("channel {} is empty", self.id),
                )
            };
            match (wait, deadline) {
                (None, _) => return Err(empty()),
                (Some(None), _) => state = self.changed.wait(state),
                (Some(Some(_)), Some(deadline)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            format!("channel {}: nothing received in time", self.id),
                        ));
                    }
                    state = self.changed.wait_for(state, deadline - now);
                }
                (Some(Some(_)), None) => unreachable!("a timeout always has a deadline"),
            }
        }
    }

    /// Closes as `how` says; returns the payloads to drop outside the lock.
    fn close(&self, how: Close) -> Result<Discarded> {
        let mut state = self.state.lock();
        if state.destroyed {
            return fail(
                ErrorKind::ChannelNotFound,
                format!("channel {} not found", self.id),
            );
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
    fn release(&self, interp: InterpId, end: End) -> Result<Discarded> {
        let mut state = self.state.lock();
        if state.destroyed {
            return fail(
                ErrorKind::ChannelNotFound,
                format!("channel {} not found", self.id),
            );
        }
        if state.status == ChannelStatus::Closed {
            return Err(self.closed_error());
        }
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
    fn close_if_unassociated(&self, state: &mut MutexGuard<'_, State>) -> Discarded {
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
    fn destroy(&self) -> Discarded {
        let mut state = self.state.lock();
        state.destroyed = true;
        state.status = ChannelStatus::Closed;
        self.changed.notify_all();
        state.items.drain(..).map(|i| i.payload).collect()
    }

    /// Applies each queued item's unbound op for a destroyed sender, and ends the sender's
    /// associations. Returns the payloads to drop outside the lock: they are the sender's
    /// exports, released while the destroying thread holds it.
    fn forget_interpreter(&self, gone: InterpId) -> Discarded {
        let mut state = self.state.lock();
        let mut discarded = Vec::new();
        let items = std::mem::take(&mut state.items);
        for mut item in items {
            if item.sender != gone || item.orphaned.is_some() {
                state.items.push_back(item);
                continue;
            }
            let payload = std::mem::replace(&mut item.payload, Payload::Unbound);
            discarded.push(payload);
            if item.unbound != UnboundOp::Remove {
                item.orphaned = Some(item.unbound);
                state.items.push_back(item);
            }
        }
        if let Some(assoc) = state.ends.get_mut(&gone) {
            // Its associations end; that the ends were used is kept.
            assoc.send = assoc.send.map(|_| false);
            assoc.recv = assoc.recv.map(|_| false);
        }
        discarded.extend(self.close_if_unassociated(&mut state));
        self.changed.notify_all();
        discarded
    }

    fn info(&self) -> Result<ChannelInfo> {
        let state = self.state.lock();
        if state.destroyed {
            return fail(
                ErrorKind::ChannelNotFound,
                format!("channel {} not found", self.id),
            );
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

/// Channel operations that need no interpreter.
impl Runtime {
    /// Creates a channel whose items, by default, become unbound markers if their sender is
    /// destroyed (`UnboundOp::Replace`).
    pub fn channel_create(&self) -> ChannelId {
        self.channel_create_with(UnboundOp::default())
    }

    /// Creates a channel with `default_unbound` as its items' default policy.
    pub fn channel_create_with(&self, default_unbound: UnboundOp) -> ChannelId {
        self.channels_live().create(default_unbound)
    }

    /// The channels that exist, in creation order.
    pub fn channel_list(&self) -> Vec<ChannelId> {
        self.channels_live().list()
    }

    /// A snapshot of channel `cid`: status, queued count, open associations per end.
    pub fn channel_info(&self, cid: ChannelId) -> Result<ChannelInfo> {
        self.channels_live().get(cid)?.info()
    }

    /// The interpreters whose association with `end` of channel `cid` is open.
    /// `ChannelClosed` for a closed channel, and (as in CPython) for the send end or both
    /// ends of a closing one, whose send end is closed already.
    pub fn channel_list_interpreters(&self, cid: ChannelId, end: End) -> Result<Vec<InterpId>> {
        let info = self.channel_info(cid)?;
        let closed = match info.status {
            ChannelStatus::Open => false,
            ChannelStatus::Closing => end != End::Recv,
            ChannelStatus::Closed => true,
        };
        if closed {
            return fail(ErrorKind::ChannelClosed, format!("channel {cid} is closed"));
        }
        Ok(match end {
            End::Send => info.send_interps,
            End::Recv => info.recv_interps,
            End::Both => {
                let mut all = info.send_interps;
                all.extend(info.recv_interps);
                all.sort_unstable();
                all.dedup();
                all
            }
        })
    }

    /// Closes channel `cid` from anywhere (CPython allows any interpreter, associated or
    /// not). Discarded items are released in their owners, after the channel's lock is let
    /// go (INV-CHAN-DROP-OUTSIDE).
    pub fn channel_close(&self, cid: ChannelId, how: Close) -> Result<()> {
        let discarded = self.channels_live().get(cid)?.close(how)?;
        drop(discarded);
        Ok(())
    }

    /// Destroys channel `cid`: queued items are released, blocked senders and receivers are
    /// woken with an error, and later use gives `ChannelNotFound`.
    pub fn channel_destroy(&self, cid: ChannelId) -> Result<()> {
        let channel = self.channels_live().remove(cid)?;
        drop(channel.destroy());
        Ok(())
    }
}

/// Channel operations of an interpreter: each associates the token's interpreter with the
/// end it uses.
impl<'r> Token<'r> {
    /// Sends `item` without waiting. An item made in another runtime is refused with
    /// `WrongRuntime` (and released in its own runtime).
    pub fn send(&self, cid: ChannelId, item: Outgoing) -> Result<()> {
        self.refuse_if_destroyed()?;
        self.runtime().refuse_foreign(item.runtime, "this item")?;
        let channel = self.runtime().channels_live().get(cid)?;
        // The item is dropped (and released) only after the channel's lock is let go
        // (INV-CHAN-DROP-OUTSIDE).
        let (result, rejected) = channel.send(self.id(), item, None, self.counters());
        drop(rejected);
        result
    }

    /// A pending call of an interpreter's final drain may still hold its token: items it
    /// would send now could never be settled by the unbound policy, so they are refused.
    fn refuse_if_destroyed(&self) -> Result<()> {
        if self.interp().lock.is_destroyed() {
            return fail(
                ErrorKind::InterpreterNotFound,
                format!(
                    "interpreter {} is being destroyed; it can send nothing",
                    self.id()
                ),
            );
        }
        Ok(())
    }

    /// Sends `item` and waits, with this interpreter let go, until a receiver takes it.
    /// With a timeout the item is withdrawn when it passes (`Timeout`); a channel closed
    /// meanwhile gives `ChannelClosed`.
    pub fn send_wait(
        &mut self,
        cid: ChannelId,
        item: Outgoing,
        timeout: Option<Duration>,
    ) -> Result<()> {
        self.refuse_if_destroyed()?;
        self.runtime().refuse_foreign(item.runtime, "this item")?;
        let channel = self.runtime().channels_live().get(cid)?;
        let user = self.id();
        let counters = self.counters();
        // Counted as sent once queued, whatever happens while waiting.
        let (result, withdrawn) =
            self.suspend(|| channel.send(user, item, Some(timeout), counters));
        drop(withdrawn);
        result
    }

    /// Receives the head item without waiting: `ChannelEmpty` if there is none.
    pub fn recv(&self, cid: ChannelId) -> Result<Obj<'_>> {
        let item = self
            .runtime()
            .channels_live()
            .get(cid)?
            .recv(self.id(), None)?;
        self.received(item)
    }

    /// Receives the head item, or gives `default` if the channel is empty.
    pub fn recv_or<'t>(&'t self, cid: ChannelId, default: Obj<'t>) -> Result<Obj<'t>> {
        match self.recv(cid) {
            Err(e) if e.kind() == ErrorKind::ChannelEmpty => Ok(default),
            other => other,
        }
    }

    /// Waits, with this interpreter let go, for an item (at most `timeout`), and takes it.
    pub fn recv_wait(&mut self, cid: ChannelId, timeout: Option<Duration>) -> Result<Incoming> {
        let channel = self.runtime().channels_live().get(cid)?;
        let receiver = self.id();
        let item = self.suspend(|| channel.recv(receiver, Some(timeout)))?;
        LiveCounters::bump(&self.counters().channel_recvs);
        Incoming::from_item(item)
    }

    /// Closes channel `cid` (see [`Runtime::channel_close`]).
    pub fn channel_close(&self, cid: ChannelId, how: Close) -> Result<()> {
        self.runtime().channel_close(cid, how)
    }

    /// Releases this interpreter's association with `end` of channel `cid`. Idempotent;
    /// other interpreters' associations are untouched. The channel closes when no open
    /// association is left.
    pub fn channel_release(&self, cid: ChannelId, end: End) -> Result<()> {
        let channel = self.runtime().channels_live().get(cid)?;
        let discarded = channel.release(self.id(), end)?;
        drop(discarded);
        Ok(())
    }

    fn received(&self, item: Item) -> Result<Obj<'_>> {
        LiveCounters::bump(&self.counters().channel_recvs);
        Incoming::from_item(item)?.into_obj(self)
    }

    pub(crate) fn bytes_from_box(&self, data: Box<[u8]>) -> Obj<'_> {
        self.alloc(Body::Bytes {
            data,
            exports: crate::object::OwnerCell::new(0),
        })
    }

    pub(crate) fn received_buffer(&self, export: PinnedExport) -> Obj<'_> {
        self.alloc(Body::ReceivedBuffer {
            export,
            views: crate::object::OwnerCell::new(0),
        })
    }

    pub(crate) fn unbound(&self) -> Obj<'_> {
        self.alloc(Body::Unbound)
    }
}

impl Incoming {
    fn from_item(item: Item) -> Result<Incoming> {
        match item.orphaned {
            Some(UnboundOp::Error) => fail(
                ErrorKind::ItemInterpreterDestroyed,
                format!(
                    "the interpreter that sent this item ({}) was destroyed",
                    item.sender
                ),
            ),
            _ => Ok(Incoming {
                payload: item.payload,
                runtime: item.runtime,
            }),
        }
    }
}

fn not_found(cid: ChannelId) -> Error {
    Error::new(
        ErrorKind::ChannelNotFound,
        format!("channel {cid} not found"),
    )
}

/// The runtime's channels: a registry with ids that are never reused.
pub(crate) struct Channels {
    map: crate::sync::ConcurrentMap<ChannelId, crate::sync::Arc<Channel>>,
    next_id: crate::sync::AtomicU64,
}

impl Channels {
    pub(crate) fn new() -> Self {
        Channels {
            map: crate::sync::ConcurrentMap::new(),
            next_id: crate::sync::AtomicU64::new(1),
        }
    }

    fn create(&self, default_unbound: UnboundOp) -> ChannelId {
        let id = ChannelId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.map
            .insert(id, crate::sync::Arc::new(Channel::new(id, default_unbound)));
        id
    }

    fn list(&self) -> Vec<ChannelId> {
        let mut ids: Vec<ChannelId> = self.map.values_cloned().iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids
    }

    fn get(&self, cid: ChannelId) -> Result<crate::sync::Arc<Channel>> {
        self.map.get_cloned(&cid).ok_or_else(|| not_found(cid))
    }

    fn remove(&self, cid: ChannelId) -> Result<crate::sync::Arc<Channel>> {
        self.map.remove(&cid).ok_or_else(|| not_found(cid))
    }

    /// Interpreter `gone` is being destroyed (and held by this thread): every item it sent
    /// follows its unbound op, its exports are released, and its associations end.
    pub(crate) fn forget_interpreter(&self, gone: InterpId) {
        for channel in self.map.values_cloned() {
            drop(channel.forget_interpreter(gone));
        }
    }

    /// Removes every channel and releases what they hold (runtime finalization).
    pub(crate) fn destroy_all(&self) {
        for channel in self.map.drain() {
            drop(channel.destroy());
        }
    }
}
