//! `None`, `True` and `False`: immortal, one of each in the process, shared by every
//! interpreter of every runtime, as CPython's static singletons are since 3.12. So `is`
//! holds for them across interpreters: a `None` arriving by value is the receiver's `None`.
//! Never counted (no refcount is touched), never freed, never in any interpreter's
//! accounting; their header has no owner (INV-IMMORTAL).

use std::ptr::NonNull;

use super::pointer::{ObjBox, ObjHeader, IMMORTAL};
use super::{Body, Obj, ObjPtr};
use crate::sync::{OnceLock, SetOnce, UnsafeCell};
use crate::thread_state::Token;

/// An immortal's address, which any thread may hold.
struct Immortal(ObjPtr);

// SAFETY: an immortal's body never changes and its count is never touched (INV-IMMORTAL).
unsafe impl Send for Immortal {}
// SAFETY: as above.
unsafe impl Sync for Immortal {}

static NONE: OnceLock<Immortal> = OnceLock::new();
static TRUE: OnceLock<Immortal> = OnceLock::new();
static FALSE: OnceLock<Immortal> = OnceLock::new();

/// The immortal in `slot`, made with `body` the first time (and leaked: it lives as long as
/// the process).
fn immortal(slot: &OnceLock<Immortal>, body: fn() -> Body) -> ObjPtr {
    slot.get_or_init(|| {
        let boxed = Box::new(ObjBox {
            header: ObjHeader {
                refcnt: UnsafeCell::new(1),
                owner: NonNull::dangling(),
                sharing: SetOnce::new(IMMORTAL),
            },
            body: body(),
        });
        Immortal(ObjPtr(NonNull::from(Box::leak(boxed))))
    })
    .0
}

impl Token<'_> {
    /// `None`: the process's one `None`.
    pub fn none(&self) -> Obj<'_> {
        let ptr = immortal(&NONE, || Body::None);
        // SAFETY: an immortal is alive forever, needs no reference and no owner
        // (INV-IMMORTAL).
        unsafe { Obj::from_owned_ptr(self, ptr) }
    }

    /// `True` or `False`: the process's one of each.
    pub fn bool(&self, value: bool) -> Obj<'_> {
        let ptr = if value {
            immortal(&TRUE, || Body::Bool(true))
        } else {
            immortal(&FALSE, || Body::Bool(false))
        };
        // SAFETY: as above.
        unsafe { Obj::from_owned_ptr(self, ptr) }
    }
}
