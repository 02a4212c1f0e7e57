//! The object layout (a header, then a body) and [`ObjPtr`], the raw pointer every handle
//! and container holds: reference counting, and freeing exactly once.

use std::mem::MaybeUninit;
use std::ptr::{self, NonNull};

use super::blocks;
use super::frozen::Component;
use super::Body;
use crate::counters::Event;
use crate::interp::InterpState;
use crate::sync::{fence, Ordering, SetOnce, UnsafeCell};
use crate::thread_state::current;

/// The header every object starts with. `repr(C)` so that the header sits at offset 0 and
/// an object's address is its header's address (asserted at the end of this file).
#[repr(C)]
pub(crate) struct ObjHeader {
    /// Strong references of an owned object. Touched only by the thread holding `owner`
    /// (INV-OWN-LOCKED); unused once the object is shared.
    pub(super) refcnt: UnsafeCell<usize>,
    /// The interpreter that allocated the object. Its state outlives every object of it
    /// (INV-OWNER-OUTLIVES). Dangling for an immortal, which has no owner.
    pub(super) owner: NonNull<InterpState>,
    /// How the object is shared: null while it is owned; [`IMMORTAL`]; or its frozen
    /// component, which holds its count (INV-FROZEN-COUNT). Set once, before any other
    /// interpreter can reach the object.
    pub(super) sharing: SetOnce<Component>,
}

/// The `sharing` of an immortal object (`None`, `True`, `False`): never counted, never
/// freed, readable by every interpreter. Compared, never dereferenced.
pub(super) const IMMORTAL: *mut Component = std::ptr::dangling_mut();

/// How an object is shared.
enum Sharing<'a> {
    /// Owned by one interpreter: its plain refcount, touched only by the thread holding it.
    Owned,
    /// Immortal: no count at all.
    Immortal,
    /// Frozen: counted atomically by its component.
    Frozen(&'a Component),
}

#[repr(C)]
pub(crate) struct ObjBox {
    pub(super) header: ObjHeader,
    pub(super) body: Body,
}

/// A raw pointer to an object. By itself it owns nothing; a field documented as holding a
/// strong reference releases it with [`ObjPtr::decref`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct ObjPtr(pub(super) NonNull<ObjBox>);

/// An object pointer on its way to code that runs in the object's owner, the only place it
/// is dereferenced: a pending call in the owner's inbox (INV-INBOX-OWNER) or a release run
/// in the owner (INV-RELEASE-IN-OWNER), whichever thread that turns out to be.
pub(crate) struct ToOwner(ObjPtr);

// SAFETY: `ToOwner::new`'s contract: nothing dereferences the pointer on the way, and at
// the other end only a thread holding the owner does (INV-OWN-LOCKED).
unsafe impl Send for ToOwner {}

impl ToOwner {
    /// Wraps `ptr` to be moved into a call that runs in its owner.
    ///
    /// # Safety
    /// The pointer is dereferenced only by that call, with the owner held.
    pub(crate) unsafe fn new(ptr: ObjPtr) -> Self {
        ToOwner(ptr)
    }

    /// The pointer, once in the owner. Taken by value so that a closure captures the whole
    /// wrapper, not its field.
    pub(crate) fn into_inner(self) -> ObjPtr {
        self.0
    }
}

/// The objects a decref has yet to let go of: inline up to four, so freeing an object with
/// few children (a view, a bound method, a pair) allocates nothing.
pub(super) type Worklist = smallvec::SmallVec<[ObjPtr; 4]>;

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

    /// The object's `sharing` word.
    ///
    /// # Safety
    /// The object is alive.
    pub(super) unsafe fn component(self) -> *mut Component {
        // SAFETY: forwarded contract.
        unsafe { self.header() }.sharing.get()
    }

    /// How the object is shared.
    ///
    /// # Safety
    /// The object is alive for `'a`; a frozen object's component lives as long as it does.
    unsafe fn sharing<'a>(self) -> Sharing<'a> {
        // SAFETY: forwarded contract.
        match unsafe { self.component() } {
            p if p.is_null() => Sharing::Owned,
            p if p == IMMORTAL => Sharing::Immortal,
            // SAFETY: a component outlives its members (it frees them), and the `Acquire`
            // read of the pointer makes its contents visible.
            p => Sharing::Frozen(unsafe { &*p }),
        }
    }

    /// Whether the object is frozen or immortal: readable by any interpreter, and never
    /// changed again.
    pub(crate) fn is_shared(self) -> bool {
        // SAFETY: every `ObjPtr` a caller holds names a live object (INV-FREE-ONCE).
        !unsafe { self.component() }.is_null()
    }

    /// Makes an owned object a member of frozen `component`.
    ///
    /// # Safety
    /// The object is alive and owned by the interpreter this thread holds, and no other
    /// interpreter can reach it before this returns (INV-FROZEN-COUNT).
    pub(super) unsafe fn share(self, component: *mut Component) {
        // SAFETY: forwarded contract.
        unsafe { self.check_owner("freeze") };
        // SAFETY: as above.
        unsafe { self.header() }.sharing.set(component);
    }

    /// Makes the object `owner`'s: its header, and (in debug builds) its cells' owner check.
    ///
    /// # Safety
    /// The object is alive and owned, and the calling thread is alone with it: a moved
    /// graph's member, reached only through its `MovedGraph` (INV-MOVE-EXCLUSIVE).
    pub(super) unsafe fn rehome(self, owner: &InterpState) {
        // SAFETY: forwarded contract: nobody else reads or writes the header now; the
        // pointer came from `Box::leak`, so it may write.
        unsafe { (*self.0.as_ptr()).header.owner = NonNull::from(owner) };
        // SAFETY: as above: alive.
        unsafe { self.body() }.rehome_cells(owner);
    }

    /// The references the object holds, and (for `bytes` and `bytearray`) its live exports.
    ///
    /// # Safety
    /// The object is alive and owned by the interpreter this thread holds (INV-OWN-LOCKED).
    pub(super) unsafe fn children_and_exports(self) -> (Vec<ObjPtr>, usize) {
        // SAFETY: forwarded contract.
        let body = unsafe { self.body() };
        // SAFETY: forwarded contract: the owner is held, and the closures only copy.
        unsafe { body.children_and_exports() }
    }

    /// Panics (debug builds) unless the calling thread holds the owner (INV-OWN-LOCKED).
    ///
    /// # Safety
    /// The object is alive.
    unsafe fn check_owner(self, what: &str) {
        if cfg!(debug_assertions) && !self.is_shared() {
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

    /// The reference count: an owned object's own; a frozen object's component's count of
    /// outside references; `usize::MAX` for an immortal.
    ///
    /// # Safety
    /// The object is alive and the calling thread holds its owner (INV-OWN-LOCKED), unless it
    /// is shared.
    pub(crate) unsafe fn refcount(self) -> usize {
        // SAFETY: forwarded contract: alive.
        match unsafe { self.sharing() } {
            Sharing::Owned => {}
            Sharing::Immortal => return usize::MAX,
            Sharing::Frozen(component) => return component.count.load(Ordering::Relaxed),
        }
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
    /// The object is alive and the calling thread holds its owner (INV-OWN-LOCKED), unless it
    /// is shared.
    pub(crate) unsafe fn incref(self) {
        // SAFETY: forwarded contract: alive.
        match unsafe { self.sharing() } {
            Sharing::Owned => {}
            Sharing::Immortal => return,
            Sharing::Frozen(component) => {
                // As `Arc::clone`: the caller's reference keeps the count above zero.
                component.count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
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
    /// The caller owns one strong reference and gives it up, and holds the owner unless the
    /// object is shared.
    pub(crate) unsafe fn decref(self) {
        // SAFETY: forwarded contract: alive.
        if let Sharing::Frozen(_) | Sharing::Immortal = unsafe { self.sharing() } {
            // SAFETY: forwarded contract.
            return unsafe { release_shared(self) };
        }
        // SAFETY: forwarded contract.
        if !unsafe { self.release_one() } {
            return;
        }
        let mut children = Worklist::new();
        // SAFETY: the count reached zero, so nobody else refers to the object; it is freed
        // exactly once, here (INV-FREE-ONCE).
        unsafe { self.free(&mut children) };
        // Containers free what only they held iteratively, so that a long chain cannot
        // overflow the stack. (The worklist allocates only past a few objects.)
        while let Some(child) = children.pop() {
            if child.is_shared() {
                // SAFETY: the freed body held one strong reference to it.
                unsafe { release_shared(child) };
                continue;
            }
            // SAFETY: the freed body held one strong reference to `child`; owned objects
            // only hold owned objects of their own owner, which this thread holds.
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
    unsafe fn free(self, children: &mut Worklist) {
        let addr = self.addr();
        // SAFETY: alive until its body is moved out below; the owner's state outlives its
        // objects, so the reference stays valid after it (INV-OWNER-OUTLIVES).
        let owner = unsafe { self.owner() };
        let raw = self.0.as_ptr();
        // SAFETY: a live object, unreachable now (INV-FREE-ONCE), moved out of its block
        // once; the block is only memory from here on.
        let ObjBox { header: _, body } = unsafe { raw.read() };
        // SAFETY: the block was a `Box<ObjBox>`'s allocation (`Token::alloc`), whose layout
        // `MaybeUninit<ObjBox>` shares; nothing reads it as an object again.
        blocks::give(unsafe { Box::from_raw(raw.cast::<MaybeUninit<ObjBox>>()) });
        // SAFETY: forwarded contract: this thread holds the owner. Dropping the body gives
        // back what it holds elsewhere (a received view's export, a proxy's origin
        // references), which may let go of this interpreter for a moment
        // (INV-RELEASE-SUSPEND).
        unsafe { body.take_children(children, owner, addr) };
        owner.note_freed();
        owner.counters.bump(Event::ObjectsFreed);
    }

    /// Takes a frozen member's references out of its body, for its component's free.
    ///
    /// # Safety
    /// The object is a member of a component being freed by this thread (INV-FROZEN-COUNT).
    pub(super) unsafe fn free_frozen(self, children: &mut Vec<ObjPtr>) {
        // SAFETY: forwarded contract: alive, and this thread is alone with it.
        let body = unsafe { self.body() };
        // SAFETY: as above; frozen bodies hold no view, buffer or proxy, so nothing is
        // released elsewhere.
        unsafe { body.frozen_children(children) };
    }

    /// Frees a frozen member's memory.
    ///
    /// # Safety
    /// As for [`ObjPtr::free_frozen`], which ran first; the object is not used again.
    pub(super) unsafe fn dealloc_frozen(self) {
        let raw = self.0.as_ptr();
        // SAFETY: unreachable now (INV-FREE-ONCE), and its children were taken out by
        // `free_frozen`: the object is dropped in place once.
        unsafe { ptr::drop_in_place(raw) };
        // SAFETY: as in `free`: a `Box<ObjBox>`'s allocation, only memory from here on.
        blocks::give(unsafe { Box::from_raw(raw.cast::<MaybeUninit<ObjBox>>()) });
    }
}

/// Gives up a reference to a shared object: nothing for an immortal; for a frozen object, the
/// component's count, and when it reaches zero the component is freed, then what it held
/// outside itself, iteratively.
///
/// # Safety
/// The caller owns one strong reference to `ptr`, a shared object, and gives it up.
unsafe fn release_shared(ptr: ObjPtr) {
    // The common cases allocate nothing: an immortal, and a count that stays above zero.
    // SAFETY: forwarded contract.
    let Some(first) = (unsafe { drop_shared_ref(ptr) }) else {
        return;
    };
    let mut pending = Vec::new();
    // SAFETY: the count reached zero: nothing outside refers to a member, so this thread is
    // alone with the component (INV-FROZEN-COUNT, INV-FREE-ONCE).
    unsafe { Component::free(first, &mut pending) };
    while let Some(ptr) = pending.pop() {
        // SAFETY: `pending` holds one reference to each, given up here.
        if let Some(component) = unsafe { drop_shared_ref(ptr) } {
            // SAFETY: as for `first`.
            unsafe { Component::free(component, &mut pending) };
        }
    }
}

/// Gives up one reference to shared `ptr`: its component, to free, if that was the last
/// outside reference to it.
///
/// # Safety
/// The caller owns one strong reference to `ptr`, a shared object, and gives it up.
unsafe fn drop_shared_ref(ptr: ObjPtr) -> Option<*mut Component> {
    // SAFETY: forwarded contract: alive until the decrement below.
    let Sharing::Frozen(component) = (unsafe { ptr.sharing() }) else {
        return None;
    };
    // As `Arc::drop`: the last decrement acquires every earlier one's writes.
    if component.count.fetch_sub(1, Ordering::Release) != 1 {
        return None;
    }
    fence(Ordering::Acquire);
    // SAFETY: the component, and so its member `ptr`, lives until it is freed.
    Some(unsafe { ptr.component() })
}

// The layout a byte encoding of object pointers will rely on: the header is at offset 0 (an
// object's address is its header's), the refcount is its first word, and objects are at
// least 8-byte aligned, so a valid address has its three low bits clear.
static_assertions::const_assert_eq!(std::mem::offset_of!(ObjBox, header), 0);
static_assertions::const_assert_eq!(std::mem::offset_of!(ObjHeader, refcnt), 0);
static_assertions::const_assert!(std::mem::align_of::<ObjBox>() >= 8);

// An object's size, where cells carry no owner word (release builds, not loom): a 24-byte
// header and an 80-byte body, whose largest are a dict's and a received view's (its pinned
// export inline, so a received view is one object).
#[cfg(all(target_pointer_width = "64", not(debug_assertions), not(loom)))]
static_assertions::const_assert_eq!(std::mem::size_of::<ObjBox>(), 104);
