//! Handles bound to no token: [`OwnedObj`] (a strong reference that may cross threads) and
//! [`RawObj`] (an address).

use std::ptr;

use super::{Obj, ObjPtr, ToOwner};
use crate::counters::Event;
use crate::error::{fail, ErrorKind, Result};
use crate::interp::{InterpId, InterpState};
use crate::runtime::Runtime;
use crate::sync::{Arc, Ordering};
use crate::thread_state::{current, Token};

/// A strong reference bound to no token: it may move between threads and outlive the entry
/// it was made in. It keeps its runtime alive.
pub struct OwnedObj {
    pub(super) ptr: ObjPtr,
    /// Keeps the owner's state (which every object header points to) alive
    /// (INV-OWNER-OUTLIVES).
    pub(super) owner: Arc<InterpState>,
    /// Keeps the runtime alive: its finalization waits for every owned handle.
    pub(super) runtime: Runtime,
}

// SAFETY: an `OwnedObj` only reaches its object through `bind` (which checks that the token
// holds the owner) or through `drop` (which decrefs only while holding the owner, and
// otherwise queues the decref on the owner's own inbox), so no thread touches the object
// without holding its owner (INV-OWN-LOCKED).
unsafe impl Send for OwnedObj {}
// SAFETY: `&OwnedObj` allows only `bind` (which checks ownership before touching the
// object), `owner` (the immutable owner state it holds), `as_raw` (the address) and `Debug`
// (the owner's id and the address).
unsafe impl Sync for OwnedObj {}

impl OwnedObj {
    /// The interpreter that owns the object.
    pub fn owner(&self) -> InterpId {
        self.owner.id
    }

    /// A token-bound handle, with a new strong reference. Fails with `WrongRuntime` if `tok`
    /// belongs to another runtime, and with `WrongInterpreter` unless `tok` holds the owner.
    pub fn bind<'t>(&self, tok: &'t Token<'t>) -> Result<Obj<'t>> {
        tok.runtime()
            .refuse_foreign(self.runtime.id(), "this object handle")?;
        if !ptr::eq(&*self.owner, &**tok.interp()) {
            return fail(
                ErrorKind::WrongInterpreter,
                format!(
                    "object owned by interpreter {} used from interpreter {}",
                    self.owner(),
                    tok.id()
                ),
            );
        }
        // SAFETY: this handle keeps the object alive, and `tok` holds its owner (checked
        // above; INV-OBJ-BOUND).
        Ok(unsafe { Obj::from_borrowed_ptr(tok, self.ptr) })
    }

    /// The object's address (not a reference).
    pub fn as_raw(&self) -> RawObj {
        RawObj(self.ptr)
    }
}

impl Drop for OwnedObj {
    fn drop(&mut self) {
        let ptr = self.ptr;
        let owner = &*self.owner;
        if ptr::eq(current(), owner) {
            // SAFETY: this thread holds the owner right now, and this handle owns one strong
            // reference (INV-OWN-LOCKED).
            unsafe { ptr.decref() };
        } else {
            // SAFETY: only the pending call below dereferences it, in the owner.
            let decref = unsafe { ToOwner::new(ptr) };
            let call: crate::interp::PendingCall = Box::new(move |_tok| {
                let ptr = decref.into_inner();
                // SAFETY: pending calls run in the interpreter whose inbox holds them, which
                // owns this object (INV-INBOX-OWNER); the reference travels with the call.
                unsafe { ptr.decref() }
            });
            match owner.inbox.push_release(call) {
                Ok(()) => owner.counters.bump(Event::PendingQueued),
                // The owner was destroyed (this handle escaped its final drain): run the
                // decref in a late entry (INV-INBOX-SEALED).
                Err(call) => crate::thread_state::release_late(&self.runtime, &self.owner, call),
            }
        }
        // Only after the decref is done or queued (INV-INBOX-BEFORE-HANDLE).
        owner.owned_handles.fetch_sub(1, Ordering::Release);
    }
}

impl std::fmt::Debug for OwnedObj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedObj")
            .field("owner", &self.owner())
            .field("addr", &format_args!("{:#x}", self.ptr.addr()))
            .finish()
    }
}

/// An object's address, and nothing more: no reference, no lifetime. It can be sent
/// anywhere; making a handle of it again is `unsafe` ([`Token::borrow_raw`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawObj(pub(super) ObjPtr);

// SAFETY: a `RawObj` is an address; every way back to the object is an `unsafe fn` whose
// contract requires holding the owner.
unsafe impl Send for RawObj {}
// SAFETY: as above.
unsafe impl Sync for RawObj {}

impl RawObj {
    /// The address.
    pub fn addr(self) -> usize {
        self.0.addr()
    }
}
