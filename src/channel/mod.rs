//! MemChannel: PEP 554 channel semantics over bytes items (copied once, at send) and buffer
//! items (zero-copy: the receiver gets a view onto the sender's memory, released back in
//! the sender). See `design/channel.md`.
//!
//! A channel's state sits under one small mutex that is never held while an item is
//! dropped or an interpreter is entered: items leave the critical section first
//! (INV-CHAN-DROP-OUTSIDE), because dropping a buffer item releases it in its owner, which
//! may switch interpreters.
//!
//! The parts: `state` (the state machine, which knows nothing of objects or tokens),
//! `item` (what travels), `registry` (the runtime's channels by id), and here the public
//! types and the two facades (`impl Runtime`, `impl Token`).

mod item;
mod registry;
mod state;

use std::fmt;
use std::time::Duration;

pub use item::{Incoming, Outgoing};
pub(crate) use registry::Channels;

use item::Payload;
use state::{Item, Sent, Wait};

use crate::counters::LiveCounters;
use crate::error::{fail, ErrorKind, Result};
use crate::interp::InterpId;
use crate::object::Obj;
use crate::runtime::Runtime;
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
        let sent = channel.send(
            self.id(),
            item.made_in,
            item.payload,
            item.unbound,
            Wait::No,
        );
        self.sent(sent)
    }

    /// Counts a send that queued its item (whatever happened while waiting), and drops what
    /// came back, now that the channel's lock is let go (INV-CHAN-DROP-OUTSIDE).
    fn sent(&self, sent: Sent<Payload>) -> Result<()> {
        if sent.queued {
            LiveCounters::bump(&self.counters().channel_sends);
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
        let wait = Wait::at_most(timeout);
        let sent =
            self.suspend(|| channel.send(user, item.made_in, item.payload, item.unbound, wait));
        self.sent(sent)
    }

    /// Receives the head item without waiting: `ChannelEmpty` if there is none.
    pub fn recv(&self, cid: ChannelId) -> Result<Obj<'_>> {
        let item = self
            .runtime()
            .channels_live()
            .get(cid)?
            .recv(self.id(), Wait::No)?;
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
        let item = self.suspend(|| channel.recv(receiver, Wait::at_most(timeout)))?;
        LiveCounters::bump(&self.counters().channel_recvs);
        Incoming::from_item(item, self.runtime().id())
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

    fn received(&self, item: Item<Payload>) -> Result<Obj<'_>> {
        LiveCounters::bump(&self.counters().channel_recvs);
        Incoming::from_item(item, self.runtime().id())?.into_obj(self)
    }
}
