//! The runtime's channels: a registry with ids that are never reused (INV-CHAN-ID-FRESH).
//! It only clones channels out: nothing runs, and nothing is dropped, under its guards
//! (INV-NO-GUARD-SWITCH).

use super::item::Payload;
use super::state::Channel;
use super::{ChannelId, UnboundOp};
use crate::error::{Error, ErrorKind, Result};
use crate::extensions::Extension;
use crate::interp::InterpId;
use crate::runtime::Runtime;
use crate::sync::{Arc, AtomicU64, ConcurrentMap, Ordering};

/// The runtime's channels: a registry with ids that are never reused.
pub(crate) struct Channels {
    map: ConcurrentMap<ChannelId, Arc<Channel<Payload>>>,
    next_id: AtomicU64,
}

impl Channels {
    pub(crate) fn new() -> Self {
        Channels {
            map: ConcurrentMap::new(),
            next_id: AtomicU64::new(1),
        }
    }

    pub(super) fn create(&self, default_unbound: UnboundOp) -> ChannelId {
        let id = ChannelId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.map
            .insert(id, Arc::new(Channel::new(id, default_unbound)));
        id
    }

    pub(super) fn list(&self) -> Vec<ChannelId> {
        let mut ids: Vec<ChannelId> = self.map.values_cloned().iter().map(|c| c.id()).collect();
        ids.sort_unstable();
        ids
    }

    pub(super) fn get(&self, cid: ChannelId) -> Result<Arc<Channel<Payload>>> {
        self.map.get_cloned(&cid).ok_or_else(|| not_found(cid))
    }

    pub(super) fn remove(&self, cid: ChannelId) -> Result<Arc<Channel<Payload>>> {
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

impl Extension for Channels {
    const SLOT: usize = 0;
}

impl Runtime {
    /// The runtime's channel registry (kept in its extensions).
    pub(crate) fn channels_live(&self) -> &Channels {
        self.extensions().get()
    }
}

fn not_found(cid: ChannelId) -> Error {
    Error::new(
        ErrorKind::ChannelNotFound,
        format!("channel {cid} not found"),
    )
}
