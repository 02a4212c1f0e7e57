//! Channel items: what a sender makes ([`Outgoing`]), what travels in the queue
//! ([`Payload`]) and what a receiver takes off it ([`Incoming`]), bound to no interpreter.

use std::fmt;

use super::state::{self, Item};
use super::UnboundOp;
use crate::counters::LiveCounters;
use crate::error::{fail, ErrorKind, Result};
use crate::export::{OriginRef, Role};
use crate::interp::InterpId;
use crate::message::MESSAGE_LEN;
use crate::object::{Obj, PinnedExport};
use crate::proxy::{origin_ref_of, receive_object};
use crate::thread_state::Token;

/// An item made ready for a channel in the sending interpreter: bound to no interpreter,
/// so it can wait in the channel while its sender and receiver do other things.
pub struct Outgoing {
    pub(crate) payload: Payload,
    pub(crate) unbound: Option<UnboundOp>,
    /// The interpreter the item was made in: its sender for the unbound-item policy, whatever
    /// thread or token finally sends it.
    pub(crate) made_in: InterpId,
    /// The runtime it was made in: only that runtime's channels take it (INV-RUNTIME-OWN).
    pub(crate) runtime: u64,
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
        let data = obj.to_bytes()?.into_boxed_slice();
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

    /// An object-pointer item: the object stays in this interpreter, pinned by one origin
    /// reference that the message owns until it is received (and becomes the receiver's
    /// proxy, or the object itself back home) or discarded (and goes back). What travels is
    /// the [`MESSAGE_LEN`]-byte encoding, validated by the receiver against this
    /// interpreter's export table before anything is used (INV-MSG-VALIDATE).
    pub fn object(obj: &Obj<'_>) -> Outgoing {
        let reference = origin_ref_of(obj, Role::InFlight);
        Outgoing {
            runtime: reference.runtime().id(),
            payload: Payload::Object {
                bytes: reference.key().encode(),
                reference,
            },
            unbound: None,
            made_in: obj.token().id(),
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
            Payload::Object { bytes, reference } => receive_object(tok, &bytes, reference)?,
            Payload::Unbound => tok.unbound(),
        })
    }
}

/// What a channel item carries. Dropping one releases what it holds (a buffer's export in
/// its owner, an object pointer's origin reference), so it is dropped only outside the
/// channel's lock (INV-CHAN-DROP-OUTSIDE).
pub(crate) enum Payload {
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

impl state::Payload for Payload {
    fn unbound() -> Self {
        Payload::Unbound
    }
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

impl Incoming {
    /// An item taken off a channel of runtime `runtime`; an item whose sender was destroyed
    /// under `UnboundOp::Error` fails here.
    pub(crate) fn from_item(item: Item<Payload>, runtime: u64) -> Result<Incoming> {
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
                runtime,
            }),
        }
    }
}
