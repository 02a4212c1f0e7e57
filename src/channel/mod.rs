//! MemChannel: PEP 554 channel semantics over bytes items (copied once, at send) and buffer
//! items (zero-copy: the receiver gets a view onto the sender's memory, released back in
//! the sender). See `design/channel.md`.
//!
//! A channel's state sits under one small mutex that is never held while an item is
//! dropped or an interpreter is entered: items leave the critical section first
//! (INV-CHAN-DROP-OUTSIDE), because dropping a buffer item releases it in its owner, which
//! may switch interpreters. Plain sends and receives skip the mutex while the channel is in
//! its common state, through a ring the mutex seals for everything else (INV-CHAN-RING).
//!
//! The parts: `state` (the state machine, which knows nothing of objects or tokens), `ring`
//! (its fast path), `item` (what travels), `registry` (the runtime's channels by id), and
//! here the public types: the ids, the enums, and [`Channel`], the handle every operation
//! goes through.

mod item;
mod registry;
mod ring;
mod state;

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

pub use item::{Incoming, Outgoing};
pub(crate) use registry::Channels;

use item::Payload;
use state::{Item, Sent, Wait};

use crate::counters::Event;
use crate::error::{fail, ErrorKind, Result};
use crate::interp::InterpId;
use crate::object::Obj;
use crate::runtime::Runtime;
use crate::sync::Arc;
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

/// A handle to one channel of a runtime: its id, a handle to its runtime and the channel
/// itself, found once when the handle is made (a handle made for an id no channel has yet
/// looks it up at each operation). Cloning it makes another handle to the same channel. An
/// operation on a channel that is gone (destroyed through any handle, or never made) fails
/// with `ChannelNotFound`: the channel's own state says it was destroyed; an operation given
/// a token of another runtime fails with `WrongRuntime` (INV-RUNTIME-OWN).
///
/// Like a channel id, and unlike an [`OwnedObj`](crate::OwnedObj), it does not keep its
/// runtime alive: the last [`Runtime`] handle finalizes the runtime, destroying its channels,
/// and every operation of a handle that outlives it gives `ChannelNotFound`.
///
/// The operations that need no interpreter (`info`, `interpreters`, `close`, `destroy`) work
/// from anywhere. Those of an interpreter (`send`, `send_wait`, `recv`, `recv_or`,
/// `recv_wait`, `release`) take its token, and associate that interpreter with the end they
/// use.
pub struct Channel {
    /// Uncounted (`Runtime::uncounted`): the runtime's memory, not its liveness.
    rt: Runtime,
    id: ChannelId,
    /// The channel, if it existed when the handle was made: no registry look-up per
    /// operation (its state refuses every operation once it is destroyed).
    state: Option<Arc<state::Channel<Payload>>>,
}

impl Clone for Channel {
    fn clone(&self) -> Self {
        Channel {
            rt: self.rt.uncounted(),
            id: self.id,
            state: self.state.clone(),
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Channel").field(&self.id.0).finish()
    }
}

/// Making channels and naming them.
impl Runtime {
    /// Creates a channel whose items, by default, become unbound markers if their sender is
    /// destroyed (`UnboundOp::Replace`).
    pub fn create_channel(&self) -> Channel {
        self.create_channel_with(UnboundOp::default())
    }

    /// Creates a channel with `default_unbound` as its items' default policy.
    pub fn create_channel_with(&self, default_unbound: UnboundOp) -> Channel {
        let id = self.channels_live().create(default_unbound);
        self.channel(id)
    }

    /// A handle to channel `cid` of this runtime. Making it checks nothing: its operations
    /// fail with `ChannelNotFound` if there is no such channel.
    pub fn channel(&self, cid: ChannelId) -> Channel {
        Channel {
            rt: self.uncounted(),
            id: cid,
            state: self.channels_live().get(cid).ok(),
        }
    }

    /// The ids of the channels that exist, in creation order ([`Runtime::channel`] makes a
    /// handle of one).
    pub fn channels(&self) -> Vec<ChannelId> {
        self.channels_live().list()
    }
}

/// Operations that need no interpreter.
impl Channel {
    /// This channel's id.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// The channel's state: the one the handle holds, or (for a handle made before its
    /// channel) from the runtime's registry.
    fn state(&self) -> Result<Cow<'_, Arc<state::Channel<Payload>>>> {
        match &self.state {
            Some(state) => Ok(Cow::Borrowed(state)),
            None => self.rt.channels_live().get(self.id).map(Cow::Owned),
        }
    }

    /// A snapshot: status, queued count, open associations per end.
    pub fn info(&self) -> Result<ChannelInfo> {
        self.state()?.info()
    }

    /// The interpreters whose association with `end` is open. `ChannelClosed` for a closed
    /// channel, and (as in CPython) for the send end or both ends of a closing one, whose
    /// send end is closed already.
    pub fn interpreters(&self, end: End) -> Result<Vec<InterpId>> {
        let info = self.info()?;
        let closed = match info.status {
            ChannelStatus::Open => false,
            ChannelStatus::Closing => end != End::Recv,
            ChannelStatus::Closed => true,
        };
        if closed {
            return fail(
                ErrorKind::ChannelClosed,
                format!("channel {} is closed", self.id),
            );
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

    /// Closes the channel, from anywhere (CPython allows any interpreter, associated or
    /// not). Discarded items are released in their owners, after the channel's lock is let
    /// go (INV-CHAN-DROP-OUTSIDE).
    pub fn close(&self, how: Close) -> Result<()> {
        let discarded = self.state()?.close(how)?;
        drop(discarded);
        Ok(())
    }

    /// Destroys the channel: queued items are released, blocked senders and receivers are
    /// woken with an error, and later use (through any handle) gives `ChannelNotFound`.
    pub fn destroy(&self) -> Result<()> {
        let channel = self.rt.channels_live().remove(self.id)?;
        drop(channel.destroy());
        Ok(())
    }
}

/// Operations of an interpreter: each takes its token, and associates that interpreter with
/// the end it uses.
impl Channel {
    /// Refuses a token of another runtime than this channel's (INV-RUNTIME-OWN).
    #[inline]
    fn refuse_foreign(&self, tok: &Token<'_>) -> Result<()> {
        if tok.runtime().id() == self.rt.id() {
            return Ok(());
        }
        refuse_foreign(tok, self.rt.id(), "this channel")
    }

    /// Sends `item` from `tok`'s interpreter without waiting. An item made in another
    /// runtime is refused with `WrongRuntime` (and released in its own runtime).
    pub fn send(&self, tok: &Token<'_>, item: Outgoing) -> Result<()> {
        self.refuse_foreign(tok)?;
        tok.refuse_if_destroyed()?;
        if item.runtime != tok.runtime().id() {
            refuse_foreign(tok, item.runtime, "this item")?;
        }
        let channel = self.state()?;
        match channel.send_now(tok.id(), item.made_in, item.payload, item.unbound) {
            Ok(()) => {
                tok.counters().bump(Event::ChannelSends);
                Ok(())
            }
            Err((e, refused)) => {
                // Dropped now that the channel's lock is let go (INV-CHAN-DROP-OUTSIDE).
                drop(refused);
                Err(e)
            }
        }
    }

    /// Sends `item` and waits, with `tok`'s interpreter let go, until a receiver takes it.
    /// With a timeout the item is withdrawn when it passes (`Timeout`); a channel closed
    /// meanwhile gives `ChannelClosed`.
    pub fn send_wait(
        &self,
        tok: &mut Token<'_>,
        item: Outgoing,
        timeout: Option<Duration>,
    ) -> Result<()> {
        self.refuse_foreign(tok)?;
        tok.refuse_if_destroyed()?;
        tok.runtime().refuse_foreign(item.runtime, "this item")?;
        let channel = self.state()?;
        let user = tok.id();
        let wait = Wait::at_most(timeout);
        let sent =
            tok.suspend(|| channel.send(user, item.made_in, item.payload, item.unbound, wait));
        tok.sent(sent)
    }

    /// Receives the head item into `tok`'s interpreter without waiting: `ChannelEmpty` if
    /// there is none.
    pub fn recv<'t>(&self, tok: &'t Token<'t>) -> Result<Obj<'t>> {
        self.refuse_foreign(tok)?;
        let item = match &self.state {
            Some(channel) => channel.recv(tok.id(), Wait::No)?,
            None => self.state()?.recv(tok.id(), Wait::No)?,
        };
        tok.received(item)
    }

    /// Receives the head item, or gives `default` if the channel is empty.
    pub fn recv_or<'t>(&self, tok: &'t Token<'t>, default: Obj<'t>) -> Result<Obj<'t>> {
        match self.recv(tok) {
            Err(e) if e.kind() == ErrorKind::ChannelEmpty => Ok(default),
            other => other,
        }
    }

    /// Waits, with `tok`'s interpreter let go, for an item (at most `timeout`), and takes
    /// it; [`Incoming::into_obj`] makes it an object. (Unlike [`Channel::recv`] it cannot give
    /// an `Obj` at once: letting the interpreter go takes the token mutably, so nothing it
    /// returns may borrow the token.)
    pub fn recv_wait(&self, tok: &mut Token<'_>, timeout: Option<Duration>) -> Result<Incoming> {
        self.refuse_foreign(tok)?;
        let channel = self.state()?;
        let receiver = tok.id();
        let item = tok.suspend(|| channel.recv(receiver, Wait::at_most(timeout)))?;
        tok.counters().bump(Event::ChannelRecvs);
        Incoming::from_item(item, tok.runtime().id())
    }

    /// Releases `tok`'s interpreter's association with `end`. Idempotent; other
    /// interpreters' associations are untouched. The channel closes when no open
    /// association is left.
    pub fn release(&self, tok: &Token<'_>, end: End) -> Result<()> {
        self.refuse_foreign(tok)?;
        let discarded = self.state()?.release(tok.id(), end)?;
        drop(discarded);
        Ok(())
    }
}

/// `WrongRuntime` for a thing of runtime `of` used with `tok` (INV-RUNTIME-OWN), out of the
/// hot paths, which compare the ids first.
#[cold]
#[inline(never)]
fn refuse_foreign(tok: &Token<'_>, of: u64, what: &str) -> Result<()> {
    tok.runtime().refuse_foreign(of, what)
}

/// What the interpreter-side operations share.
impl Token<'_> {
    /// Counts a send that queued its item (whatever happened while waiting), and drops what
    /// came back, now that the channel's lock is let go (INV-CHAN-DROP-OUTSIDE).
    fn sent(&self, sent: Sent<Payload>) -> Result<()> {
        if sent.queued {
            self.counters().bump(Event::ChannelSends);
        }
        drop(sent.discarded);
        sent.result
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

    /// The object for an item taken off a channel of this token's runtime (checked by the
    /// caller), without the runtime-free [`Incoming`] between.
    fn received(&self, item: Item<Payload>) -> Result<Obj<'_>> {
        self.counters().bump(Event::ChannelRecvs);
        if item.orphaned == Some(UnboundOp::Error) {
            return Err(Payload::orphaned_error(item.sender));
        }
        item.payload.into_obj(self)
    }
}
