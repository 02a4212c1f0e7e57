//! Channel items: what a sender makes ([`Outgoing`]), what travels in the queue
//! ([`Payload`]) and what a receiver takes off it ([`Incoming`]), bound to no interpreter.

use std::fmt;

use super::state::{self, Item};
use super::UnboundOp;
use crate::counters::Event;
use crate::error::{Error, ErrorKind, Result};
use crate::export::{OriginRef, Role};
use crate::interp::InterpId;
use crate::message::MESSAGE_LEN;
use crate::object::{boxed, unboxed, Body, FreeBoxes, MovedGraph, Obj, PinnedExport};
use crate::proxy::{origin_ref_of, receive_object, Value};
use crate::sync::const_thread_local;
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
        // A `bytes` (never a proxy) is copied straight from its storage.
        let data = match obj.body() {
            Body::Bytes { data, .. } => crate::object::copy_bytes(data),
            _ => obj.to_bytes()?.into_boxed_slice(),
        };
        obj.token()
            .counters()
            .add(Event::BytesCopied, data.len() as u64);
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
        obj.token()
            .counters()
            .add(Event::BytesZeroCopy, export.len() as u64);
        Ok(Outgoing {
            payload: Payload::Buffer(export),
            unbound: None,
            made_in: obj.token().id(),
            runtime: obj.token().runtime().id(),
        })
    }

    /// An object item, crossing the membrane by the one rule of forwarded calls
    /// (INV-MEMBRANE):
    /// - a frozen object travels by reference and arrives as itself (`is` holds across
    ///   interpreters; `None`, `True` and `False` are frozen);
    /// - a shareable immutable (int, float, str, bytes, tuples of these) arrives as a copy
    ///   made in the receiver;
    /// - anything else stays in this interpreter, pinned by one origin reference that the
    ///   message owns until it is received (and becomes the receiver's proxy, or the object
    ///   itself back home) or discarded (and goes back). What travels is the
    ///   [`MESSAGE_LEN`]-byte encoding, validated by the receiver against this interpreter's
    ///   export table before anything is used (INV-MSG-VALIDATE).
    ///
    /// The first two hold nothing of this interpreter: they do not pin it and do not stop
    /// its destroy.
    pub fn object(obj: &Obj<'_>) -> Outgoing {
        let tok = obj.token();
        let payload = match Value::by_value(obj) {
            Some(value) => Payload::Value(boxed(&FREE_VALUES, value)),
            None => {
                let reference = origin_ref_of(obj, Role::InFlight);
                let item = ObjectItem {
                    bytes: reference.key().encode(),
                    reference,
                };
                Payload::Object(boxed(&FREE_ITEMS, item))
            }
        };
        Outgoing {
            runtime: tok.runtime().id(),
            payload,
            unbound: None,
            made_in: tok.id(),
        }
    }

    /// A moved item: `obj` and everything it reaches leave this interpreter, and the
    /// receiver owns them as if it had made them; nothing comes back here (Swift's `sending`,
    /// a transferred `ArrayBuffer`). The handle is consumed. Fails with `NotShareable`, and
    /// changes nothing, when anything outside the graph refers into it, when the graph holds
    /// what cannot change hands (a proxy, a memoryview, bytes or a bytearray with live
    /// exports), or when `obj` is frozen (send it with `object`). An item never received goes
    /// back to this interpreter (INV-MOVE-EXCLUSIVE).
    ///
    /// A moved-from handle cannot be used: the move consumed it.
    ///
    /// ```compile_fail
    /// # use xinterp::{Outgoing, Runtime};
    /// # let rt = Runtime::new();
    /// # rt.enter(rt.main(), |tok| {
    /// let list = tok.list(&[tok.int(1)]);
    /// let item = Outgoing::moved(list).unwrap();
    /// list.len().unwrap(); // error[E0382]: borrow of moved value: `list`
    /// # drop(item);
    /// # }).unwrap();
    /// ```
    pub fn moved(obj: Obj<'_>) -> Result<Outgoing> {
        let (made_in, runtime) = (obj.token().id(), obj.token().runtime().id());
        Ok(Outgoing {
            payload: Payload::Moved(MovedGraph::take(obj)?),
            unbound: None,
            made_in,
            runtime,
        })
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
        self.payload.into_obj(tok)
    }
}

/// What a channel item carries. Dropping one releases what it holds (a buffer's export in
/// its owner, an object pointer's origin reference), so it is dropped only outside the
/// channel's lock (INV-CHAN-DROP-OUTSIDE).
///
/// The bytes and buffer items are held inline; the object items, larger (152 and 96 bytes),
/// are boxed, so a queue slot is 72 bytes, not 176, and each move of an item (about ten from
/// send to receive) copies less. Their boxes are kept by the receiving thread for its next
/// sends (`FREE_ITEMS`, `FREE_VALUES`).
pub(crate) enum Payload {
    Bytes(Box<[u8]>),
    Buffer(PinnedExport),
    /// An object pointer.
    Object(Box<ObjectItem>),
    /// A frozen object (by reference) or a shareable immutable (a copy): nothing of the
    /// sender.
    Value(Box<Value>),
    /// An object graph changing hands, owned by no interpreter on the way.
    Moved(MovedGraph),
    /// The sender was destroyed; its data is released.
    Unbound,
}

const_thread_local! {
    /// Boxes of object items received on this thread, for the next ones it sends: a batch of
    /// 64 would otherwise allocate 64 times, past what the allocator's per-thread cache holds.
    static FREE_ITEMS: FreeBoxes<ObjectItem> = FreeBoxes::new(64);
}

const_thread_local! {
    /// Boxes of by-value items received on this thread, likewise.
    static FREE_VALUES: FreeBoxes<Value> = FreeBoxes::new(64);
}

/// An object pointer in flight: the encoded bytes, and the origin reference they stand for,
/// owned by the message until it is received or discarded.
pub(crate) struct ObjectItem {
    bytes: [u8; MESSAGE_LEN],
    reference: OriginRef,
}

impl Payload {
    /// The payload of `item`, taken off a channel; an item whose sender was destroyed under
    /// `UnboundOp::Error` fails here.
    pub(crate) fn received(item: Item<Payload>) -> Result<Payload> {
        match item.orphaned {
            Some(UnboundOp::Error) => Err(Payload::orphaned_error(item.sender)),
            _ => Ok(item.payload),
        }
    }

    /// What receiving an item of `sender`, destroyed under `UnboundOp::Error`, gives.
    #[cold]
    #[inline(never)]
    pub(crate) fn orphaned_error(sender: InterpId) -> Error {
        Error::new(
            ErrorKind::ItemInterpreterDestroyed,
            format!("the interpreter that sent this item ({sender}) was destroyed"),
        )
    }

    /// The object for this payload in `tok`'s interpreter, which is of the runtime it was
    /// sent in; see [`Incoming::into_obj`].
    pub(crate) fn into_obj<'t>(self, tok: &'t Token<'t>) -> Result<Obj<'t>> {
        Ok(match self {
            Payload::Bytes(data) => tok.bytes_from_box(data),
            Payload::Buffer(export) => tok.received_view(export),
            Payload::Object(item) => {
                let ObjectItem { bytes, reference } = unboxed(&FREE_ITEMS, item);
                receive_object(tok, &bytes, reference)?
            }
            Payload::Value(value) => unboxed(&FREE_VALUES, value).into_obj(tok)?,
            Payload::Moved(graph) => graph.adopt(tok),
            Payload::Unbound => tok.unbound(),
        })
    }
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
            Payload::Object(item) => {
                let key = item.reference.key();
                write!(
                    f,
                    "Object(export {} of interpreter {})",
                    key.serial, key.origin
                )
            }
            Payload::Value(_) => f.write_str("Value"),
            Payload::Moved(graph) => write!(f, "Moved({} objects)", graph.len()),
            Payload::Unbound => f.write_str("Unbound"),
        }
    }
}

impl Incoming {
    /// An item taken off a channel of runtime `runtime`; see [`Payload::received`].
    pub(crate) fn from_item(item: Item<Payload>, runtime: u64) -> Result<Incoming> {
        Ok(Incoming {
            payload: Payload::received(item)?,
            runtime,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Item, Payload};
    use std::mem::size_of;

    /// A queue slot's size, stated so that a regression shows: every item is moved about ten
    /// times from send to receive. The largest inline variants are a buffer item's export and
    /// a moved graph (40 bytes each, so the tag takes a word); the object items are boxed.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_queue_slot_is_72_bytes() {
        assert_eq!(size_of::<crate::object::PinnedExport>(), 40);
        assert_eq!(size_of::<Payload>(), 48);
        assert_eq!(size_of::<Item<Payload>>(), 72);
    }
}
