//! The object layout (a header, then a body) and [`ObjPtr`], the raw pointer every handle
//! and container holds: reference counting, and freeing exactly once.

use std::ptr::{self, NonNull};

use super::Body;
use crate::counters::LiveCounters;
use crate::interp::InterpState;
use crate::sync::UnsafeCell;
use crate::thread_state::current;

/// The header every object starts with. `repr(C)` so that the header sits at offset 0 and
/// an object's address is its header's address (asserted in `lib.rs`).
#[repr(C)]
pub(crate) struct ObjHeader {
    /// Strong references. Touched only by the thread holding `owner` (INV-OWN-LOCKED).
    pub(super) refcnt: UnsafeCell<usize>,
    /// The interpreter that allocated the object. Its state outlives every object of it
    /// (INV-OWNER-OUTLIVES).
    pub(super) owner: NonNull<InterpState>,
}

#[repr(C)]
pub(crate) struct ObjBox {
    pub(super) header: ObjHeader,
    pub(super) body: Body,
}

/// A raw pointer to an object. By itself it owns nothing; a field documented as holding a
/// strong reference releases it with [`ObjPtr::decref`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ObjPtr(pub(super) NonNull<ObjBox>);

impl ObjPtr {
    /// # Safety
    /// The object is alive: the caller holds (or knows of) a strong reference for the whole
    /// time it uses the result (INV-FREE-ONCE).
    unsafe fn header<'a>(self) -> &'a ObjHeader {
        // SAFETY: per the contract the allocation is live for `'a`; the header is never
        // mutated in place except through its cell.
        unsafe { &self.0.as_ref().header }
    }

    /// The object's body. Its immutable parts may be read from any thread; its mutable parts
    /// sit in `OwnerCell`s, which only the owner's holder touches.
    ///
    /// # Safety
    /// As for `header`: the object is alive for `'a`.
    pub(crate) unsafe fn body<'a>(self) -> &'a Body {
        // SAFETY: per the contract the allocation is live for `'a`.
        unsafe { &self.0.as_ref().body }
    }

    /// The owner's state.
    ///
    /// # Safety
    /// As for `header`: the object is alive for `'a`; its owner's state outlives it
    /// (INV-OWNER-OUTLIVES).
    pub(crate) unsafe fn owner<'a>(self) -> &'a InterpState {
        // SAFETY: per the contract the object is alive.
        let header = unsafe { self.header() };
        // SAFETY: the owner's state outlives its objects (INV-OWNER-OUTLIVES).
        unsafe { header.owner.as_ref() }
    }

    pub(crate) fn addr(&self) -> usize {
        self.0.as_ptr().addr()
    }

    /// Panics (debug builds) unless the calling thread holds the owner (INV-OWN-LOCKED).
    ///
    /// # Safety
    /// The object is alive.
    unsafe fn check_owner(self, what: &str) {
        if cfg!(debug_assertions) {
            let held = current();
            // SAFETY: forwarded contract: alive.
            let header = unsafe { self.header() };
            if !ptr::eq(held, header.owner.as_ptr()) {
                let held = if held.is_null() {
                    "no interpreter".to_string()
                } else {
                    // SAFETY: a non-null CURRENT points at the state this thread holds,
                    // kept alive by its entry (INV-ONE-LOCK).
                    format!("interpreter {}", unsafe { (*held).id })
                };
                // SAFETY: forwarded contract: alive.
                let kind = unsafe { self.body() }.kind();
                // SAFETY: as above.
                let owner = unsafe { self.owner() }.id;
                panic!(
                    "wrong interpreter: {what} of a {kind:?} object owned by interpreter {owner} \
                     from a thread that holds {held}",
                );
            }
        }
    }

    /// The reference count.
    ///
    /// # Safety
    /// The object is alive and the calling thread holds its owner (INV-OWN-LOCKED).
    pub(crate) unsafe fn refcount(self) -> usize {
        // SAFETY: forwarded contract: alive.
        unsafe { self.check_owner("read the refcount") };
        // SAFETY: forwarded contract: alive.
        let header = unsafe { self.header() };
        // SAFETY: the owner is held (checked in debug builds), so nobody writes the count.
        header.refcnt.with(|c| unsafe { *c })
    }

    /// Adds a strong reference.
    ///
    /// # Safety
    /// The object is alive and the calling thread holds its owner (INV-OWN-LOCKED).
    pub(crate) unsafe fn incref(self) {
        // SAFETY: per the contract the object is alive.
        unsafe { self.check_owner("incref") };
        // SAFETY: as above.
        let header = unsafe { self.header() };
        // SAFETY: per the contract this thread has the refcount to itself (checked in debug
        // builds).
        header.refcnt.with_mut(|c| unsafe { *c += 1 });
    }

    /// Gives up a strong reference, freeing the object (and, iteratively, whatever only it
    /// held) when the count reaches zero.
    ///
    /// # Safety
    /// The caller owns one strong reference and gives it up, and holds the owner.
    pub(crate) unsafe fn decref(self) {
        // SAFETY: forwarded contract.
        if !unsafe { self.release_one() } {
            return;
        }
        let mut children = Vec::new();
        // SAFETY: the count reached zero, so nobody else refers to the object; it is freed
        // exactly once, here (INV-FREE-ONCE).
        unsafe { self.free(&mut children) };
        // Containers free what only they held iteratively, so that a long chain cannot
        // overflow the stack. (Objects without children allocate no worklist.)
        while let Some(child) = children.pop() {
            // SAFETY: the freed body held one strong reference to `child`; objects only
            // hold objects of their own owner, which this thread holds.
            if unsafe { child.release_one() } {
                // SAFETY: as above, `child`'s count reached zero: freed once, here.
                unsafe { child.free(&mut children) };
            }
        }
    }

    /// Decrements; true when the count reached zero.
    ///
    /// # Safety
    /// As for [`ObjPtr::decref`].
    unsafe fn release_one(self) -> bool {
        // SAFETY: per the contract the object is alive.
        unsafe { self.check_owner("decref") };
        // SAFETY: as above.
        let header = unsafe { self.header() };
        header.refcnt.with_mut(|c| {
            // SAFETY: per the contract, this thread has the refcount to itself.
            let count = unsafe { &mut *c };
            debug_assert!(
                *count > 0,
                "decref of an object whose refcount is already zero"
            );
            *count -= 1;
            *count == 0
        })
    }

    /// # Safety
    /// The count is zero and the caller holds the owner.
    unsafe fn free(self, children: &mut Vec<ObjPtr>) {
        let addr = self.addr();
        // SAFETY: alive until the `Box::from_raw` below; the owner's state outlives its
        // objects, so the reference stays valid after it (INV-OWNER-OUTLIVES).
        let owner = unsafe { self.owner() };
        // SAFETY: allocated by `Box::into_raw` in `Token::alloc`, unreachable now
        // (INV-FREE-ONCE).
        let boxed = unsafe { Box::from_raw(self.0.as_ptr()) };
        let ObjBox { header: _, body } = *boxed;
        match body {
            // SAFETY: forwarded contract: this thread holds the proxy's interpreter. The
            // proxy gives back its origin references, which may let go of this interpreter
            // for a moment (INV-RELEASE-SUSPEND).
            Body::Proxy(proxy) => unsafe { proxy.free(owner, addr) },
            // SAFETY: forwarded contract: this thread holds the owner. Dropping the body
            // gives back what it holds elsewhere (a received buffer's export), which may let
            // go of this interpreter for a moment (INV-RELEASE-SUSPEND).
            body => unsafe { body.take_children(children) },
        }
        owner.note_freed();
        LiveCounters::bump(&owner.counters.objects_freed);
    }
}

// The layout a byte encoding of object pointers will rely on: the header is at offset 0 (an
// object's address is its header's), the refcount is its first word, and objects are at
// least 8-byte aligned, so a valid address has its three low bits clear.
static_assertions::const_assert_eq!(std::mem::offset_of!(ObjBox, header), 0);
static_assertions::const_assert_eq!(std::mem::offset_of!(ObjHeader, refcnt), 0);
static_assertions::const_assert!(std::mem::align_of::<ObjBox>() >= 8);
