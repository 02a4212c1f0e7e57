//! Objects on raw pointers: a header (a plain, non-atomic refcount and the owning
//! interpreter) followed by a body, reached through `NonNull` pointers and freed exactly once
//! when the count reaches zero.
//!
//! Handles:
//! - [`Obj<'t>`] is a strong reference bound to a token: it can only be used, cloned and
//!   dropped while the thread holds the object's owner, which its borrow of the token proves.
//! - [`OwnedObj`] is a strong reference bound to nothing: it may cross threads and outlive an
//!   entry; using it requires a token for the owner (checked), and dropping it anywhere else
//!   queues the decref on the owner's inbox.
//! - [`RawObj`] is an address, for code that moves pointers itself; turning it back into a
//!   handle is `unsafe`.
//!
//! Every refcount touch checks, in debug builds, that the calling thread holds the owner
//! (INV-OWN-LOCKED); the refcount lives in a loom-tracked cell, so a touch from the wrong
//! interpreter is also a data race that loom and Miri report.

mod class;
mod dict;
mod ops;

use std::mem;
use std::ptr::{self, NonNull};

pub(crate) use class::Attrs;
pub use class::{ClassDef, Method};
pub(crate) use dict::{Dict, HashKey};

use crate::counters::LiveCounters;
use crate::error::{fail, ErrorKind, Result};
use crate::interp::{InterpId, InterpState};
use crate::runtime::Runtime;
use crate::sync::{Arc, DataByte, Ordering, UnsafeCell};
use crate::thread_state::{current, Token};

/// The header every object starts with. `repr(C)` so that the header sits at offset 0 and
/// an object's address is its header's address (asserted in `lib.rs`).
#[repr(C)]
pub(crate) struct ObjHeader {
    /// Strong references. Touched only by the thread holding `owner` (INV-OWN-LOCKED).
    refcnt: UnsafeCell<usize>,
    /// The interpreter that allocated the object. Its state outlives every object of it
    /// (INV-OWNER-OUTLIVES).
    owner: NonNull<InterpState>,
}

#[repr(C)]
pub(crate) struct ObjBox {
    header: ObjHeader,
    body: Body,
}

/// A cell of object state that only the thread holding the object's owner touches
/// (INV-OWN-LOCKED). Accessors are on [`Obj`], which proves the holding.
///
/// In debug builds the cell remembers the interpreter the thread held when it was made (the
/// interpreter that allocates its object) and every access checks that the thread holds
/// that interpreter now, as refcount touches do: a wrong-interpreter read or write of object
/// state panics instead of racing.
pub(crate) struct OwnerCell<T> {
    value: UnsafeCell<T>,
    /// The address of the owner's state, or 0 for an unchecked cell (see
    /// [`OwnerCell::unchecked`]).
    #[cfg(debug_assertions)]
    owner: usize,
}

impl<T> OwnerCell<T> {
    /// A cell of the interpreter this thread holds (in debug builds, checked at each access).
    pub(crate) fn new(value: T) -> Self {
        Self {
            value: UnsafeCell::new(value),
            #[cfg(debug_assertions)]
            owner: current().addr(),
        }
    }

    /// A cell whose accesses are not checked: for state that belongs to an interpreter but
    /// is made with it, not by a thread holding it (its identity cache), and is reached only
    /// through that interpreter's token.
    pub(crate) fn unchecked(value: T) -> Self {
        Self {
            value: UnsafeCell::new(value),
            #[cfg(debug_assertions)]
            owner: 0,
        }
    }

    /// The value, from a cell that is being dropped with its object.
    pub(crate) fn into_inner(self) -> T {
        self.value.into_inner()
    }

    /// Panics (debug builds) unless the calling thread holds the interpreter that made the
    /// cell (INV-OWN-LOCKED).
    fn check_owner(&self) {
        #[cfg(debug_assertions)]
        if self.owner != 0 && current().addr() != self.owner {
            let held = current();
            let held = if held.is_null() {
                "no interpreter".to_string()
            } else {
                // SAFETY: a non-null CURRENT points at the state this thread holds, kept
                // alive by its entry (INV-ONE-LOCK).
                format!("interpreter {}", unsafe { (*held).id })
            };
            panic!(
                "wrong interpreter: object state touched from a thread that holds {held}, not \
                 the object's owner (INV-OWN-LOCKED)"
            );
        }
    }

    /// # Safety
    /// The calling thread holds the owner of the object this cell belongs to, and `f` does
    /// not reach this cell again (it runs no user code and drops no object).
    pub(crate) unsafe fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.check_owner();
        // SAFETY: per the contract, this thread has exclusive access to the cell for the
        // duration of `f` (INV-OWN-LOCKED) and `f` creates no second reference to it.
        self.value.with_mut(|p| f(unsafe { &mut *p }))
    }

    /// # Safety
    /// As for [`OwnerCell::with_mut`].
    pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.check_owner();
        // SAFETY: as for `with_mut`; a shared view for the duration of `f` (INV-OWN-LOCKED).
        self.value.with(|p| f(unsafe { &*p }))
    }
}

/// What an object is.
pub(crate) enum Body {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Box<str>),
    /// Immutable bytes: readers may share them freely.
    Bytes {
        data: Box<[u8]>,
        exports: OwnerCell<usize>,
    },
    /// Mutable bytes. The storage is never reallocated while `exports > 0`
    /// (INV-BUF-NO-RESIZE), and every access is a relaxed atomic (INV-BUF-ATOMIC-BYTES).
    ByteArray {
        data: OwnerCell<Vec<DataByte>>,
        exports: OwnerCell<usize>,
    },
    Tuple(Box<[ObjPtr]>),
    List(OwnerCell<Vec<ObjPtr>>),
    Dict(OwnerCell<Dict>),
    Class(Box<ClassDef>),
    Instance {
        class: ObjPtr,
        attrs: OwnerCell<Attrs>,
    },
    BoundMethod {
        receiver: ObjPtr,
        name: Box<str>,
        method: Method,
    },
    View(ViewBody),
    /// The receiving side of a buffer sent zero-copy: one export pinned in the sender,
    /// shared by every view and slice made of it in this interpreter. Never handed out
    /// itself; views reach it. When the last view goes, the export is released in its owner.
    ReceivedBuffer {
        export: crate::buffer::PinnedExport,
        /// Views over this buffer (each holds one, and a reference).
        views: OwnerCell<usize>,
    },
    /// What a channel hands out for an item whose sender was destroyed, under the
    /// `Replace` policy (CPython's `UNBOUND`).
    Unbound,
    /// A RemoteProxy: one origin reference to an object of another interpreter.
    Proxy(crate::proxy::ProxyBody),
}

/// A `memoryview`-like window onto an exporter's bytes. While not released it holds one
/// strong reference to the exporter and one export on it.
pub(crate) struct ViewBody {
    pub(crate) exporter: ObjPtr,
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) readonly: bool,
    pub(crate) released: OwnerCell<bool>,
    /// Buffers taken from this view; it cannot be released while any is live.
    pub(crate) exports: OwnerCell<usize>,
}

/// The kind of an object, for matching without looking at its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjKind {
    /// `None`.
    None,
    /// `bool`.
    Bool,
    /// `int` (64-bit here; arithmetic beyond it raises `OverflowError`).
    Int,
    /// `float`.
    Float,
    /// `str`.
    Str,
    /// `bytes`.
    Bytes,
    /// `bytearray`.
    ByteArray,
    /// `tuple`.
    Tuple,
    /// `list`.
    List,
    /// `dict`.
    Dict,
    /// A user-defined class.
    Class,
    /// An instance of a user-defined class.
    Instance,
    /// A method bound to its receiver.
    BoundMethod,
    /// A `memoryview`.
    View,
    /// The shared buffer behind received views (internal; views reach it).
    ReceivedBuffer,
    /// The marker a channel returns for an item whose sending interpreter was destroyed.
    Unbound,
    /// A RemoteProxy for an object of another interpreter.
    Proxy,
}

impl Body {
    fn kind(&self) -> ObjKind {
        match self {
            Body::None => ObjKind::None,
            Body::Bool(_) => ObjKind::Bool,
            Body::Int(_) => ObjKind::Int,
            Body::Float(_) => ObjKind::Float,
            Body::Str(_) => ObjKind::Str,
            Body::Bytes { .. } => ObjKind::Bytes,
            Body::ByteArray { .. } => ObjKind::ByteArray,
            Body::Tuple(_) => ObjKind::Tuple,
            Body::List(_) => ObjKind::List,
            Body::Dict(_) => ObjKind::Dict,
            Body::Class(_) => ObjKind::Class,
            Body::Instance { .. } => ObjKind::Instance,
            Body::BoundMethod { .. } => ObjKind::BoundMethod,
            Body::View(_) => ObjKind::View,
            Body::ReceivedBuffer { .. } => ObjKind::ReceivedBuffer,
            Body::Unbound => ObjKind::Unbound,
            Body::Proxy(_) => ObjKind::Proxy,
        }
    }

    /// Appends the strong references this body holds to `out` (for deallocation), and gives
    /// back the export an unreleased view holds.
    ///
    /// # Safety
    /// The calling thread holds the owner of the object this body belonged to.
    unsafe fn take_children(self, out: &mut Vec<ObjPtr>) {
        match self {
            Body::Tuple(items) => out.extend(items.iter().copied()),
            Body::List(items) => out.extend(items.into_inner()),
            Body::Dict(dict) => dict.into_inner().into_refs(out),
            Body::Instance { class, attrs } => {
                out.push(class);
                out.extend(attrs.into_inner().into_refs());
            }
            Body::BoundMethod { receiver, .. } => out.push(receiver),
            Body::View(view) => {
                if !view.released.into_inner() {
                    // SAFETY: forwarded contract; the exporter has the view's owner.
                    unsafe { crate::buffer::release_export_on_free(view.exporter) };
                    out.push(view.exporter);
                }
            }
            Body::None
            | Body::Bool(_)
            | Body::Int(_)
            | Body::Float(_)
            | Body::Str(_)
            | Body::Bytes { .. }
            | Body::ByteArray { .. }
            | Body::Class(_)
            | Body::ReceivedBuffer { .. }
            | Body::Unbound
            | Body::Proxy(_) => {}
        }
    }
}

/// A raw pointer to an object. By itself it owns nothing; a field documented as holding a
/// strong reference releases it with [`ObjPtr::decref`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ObjPtr(NonNull<ObjBox>);

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
        let ObjBox {
            header: _,
            mut body,
        } = *boxed;
        if let Body::Proxy(proxy) = &mut body {
            // SAFETY: forwarded contract: this thread holds the proxy's interpreter.
            unsafe { crate::proxy::forget_proxy(owner, proxy, addr) };
            proxy.settle();
        }
        // SAFETY: forwarded contract: this thread holds the owner. Dropping the body gives
        // back what it holds elsewhere (a proxy's origin reference, a received buffer's
        // export), which may let go of this interpreter for a moment (INV-RELEASE-SUSPEND).
        unsafe { body.take_children(children) };
        owner.note_freed();
        LiveCounters::bump(&owner.counters.objects_freed);
    }
}

impl<'r> Token<'r> {
    /// Allocates an object owned by this interpreter; the returned handle holds its one
    /// reference.
    pub(crate) fn alloc(&self, body: Body) -> Obj<'_> {
        let boxed = Box::new(ObjBox {
            header: ObjHeader {
                refcnt: UnsafeCell::new(1),
                owner: NonNull::from(&**self.interp()),
            },
            body,
        });
        let interp = self.interp();
        interp.note_allocated();
        LiveCounters::bump(&self.counters().objects_allocated);
        Obj {
            ptr: ObjPtr(NonNull::from(Box::leak(boxed))),
            tok: self.reborrow(),
        }
    }

    /// Turns an address back into a handle, adding a strong reference.
    ///
    /// # Safety
    /// `raw` is the address of a live object owned by this token's interpreter. (In debug
    /// builds a wrong owner panics; without the check it is a data race on the refcount.)
    pub unsafe fn borrow_raw(&self, raw: RawObj) -> Obj<'_> {
        let ptr = raw.0;
        // SAFETY: forwarded contract: alive, and owned by the interpreter this thread holds.
        unsafe { ptr.incref() };
        Obj {
            ptr,
            tok: self.reborrow(),
        }
    }

    /// The token with the lifetime of this borrow (tokens are covariant in `'r`).
    fn reborrow(&self) -> &Token<'_> {
        self
    }
}

/// A strong reference to an object, bound to the token of the thread holding its owner.
pub struct Obj<'t> {
    ptr: ObjPtr,
    tok: &'t Token<'t>,
}

impl<'t> Obj<'t> {
    /// Wraps a pointer whose strong reference the caller hands over.
    ///
    /// # Safety
    /// `ptr` is a live object owned by `tok`'s interpreter, and the caller owns one strong
    /// reference to it, which the handle now owns (INV-OBJ-BOUND).
    pub(crate) unsafe fn from_owned_ptr(tok: &'t Token<'t>, ptr: ObjPtr) -> Self {
        // SAFETY: forwarded contract: alive.
        debug_assert!(ptr::eq(unsafe { ptr.owner() }, &**tok.interp()));
        Obj { ptr, tok }
    }

    /// Wraps a pointer held elsewhere, adding a strong reference.
    ///
    /// # Safety
    /// `ptr` is a live object owned by `tok`'s interpreter, kept alive by the caller for the
    /// duration of this call (INV-OBJ-BOUND).
    pub(crate) unsafe fn from_borrowed_ptr(tok: &'t Token<'t>, ptr: ObjPtr) -> Self {
        // SAFETY: forwarded contract; `tok` proves that this thread holds the owner.
        unsafe { ptr.incref() };
        Obj { ptr, tok }
    }

    /// Gives up the handle, keeping its strong reference in the returned pointer.
    pub(crate) fn into_ptr(self) -> ObjPtr {
        let ptr = self.ptr;
        mem::forget(self);
        ptr
    }

    pub(crate) fn ptr(&self) -> ObjPtr {
        self.ptr
    }

    pub(crate) fn body(&self) -> &Body {
        // SAFETY: this handle holds a strong reference for as long as the borrow lasts
        // (INV-OBJ-BOUND).
        unsafe { self.ptr.body() }
    }

    /// The token this handle is bound to.
    pub fn token(&self) -> &'t Token<'t> {
        self.tok
    }

    /// What kind of object this is.
    pub fn kind(&self) -> ObjKind {
        self.body().kind()
    }

    /// `a is b`.
    pub fn is(&self, other: &Obj<'_>) -> bool {
        self.ptr == other.ptr
    }

    /// CPython's `id()`: the object's address; for a proxy, its origin object's address
    /// when the runtime's `proxy_id_is_origin` option is on and the origin interpreter lives
    /// (consistent with `is` only with the identity cache on). That address is unique while
    /// the proxy pins the origin object; once the origin is destroyed (`Invalidate`) the
    /// object may be freed and its address reused, so a dead proxy reports its own address
    /// instead: unique, though no longer the id it reported while alive (INV-PROXY-ID).
    pub fn id(&self) -> usize {
        match self.body() {
            Body::Proxy(p)
                if self.tok.runtime().config().proxy_id_is_origin
                    && !p.origin_ref.origin().lock.is_destroyed() =>
            {
                p.origin_ref.key().addr as usize
            }
            _ => self.ptr.addr(),
        }
    }

    /// The current reference count (for tests and experiments).
    pub fn refcount(&self) -> usize {
        // SAFETY: this handle keeps the object alive, and its token proves the owner is held
        // (INV-OBJ-BOUND).
        unsafe { self.ptr.refcount() }
    }

    /// The object's address as a [`RawObj`], without giving up this handle.
    pub fn as_raw(&self) -> RawObj {
        RawObj(self.ptr)
    }

    /// Detaches the reference from the token, so that it can outlive this entry or move to
    /// another thread.
    pub fn unbind(self) -> OwnedObj {
        let interp = self.tok.interp();
        interp.owned_handles.fetch_add(1, Ordering::Relaxed);
        OwnedObj {
            owner: Arc::clone(interp),
            runtime: self.tok.runtime().clone(),
            ptr: self.into_ptr(),
        }
    }
}

impl Clone for Obj<'_> {
    fn clone(&self) -> Self {
        // SAFETY: this handle keeps the object alive, and its token holds the owner
        // (INV-OBJ-BOUND).
        unsafe { Obj::from_borrowed_ptr(self.tok, self.ptr) }
    }
}

impl Drop for Obj<'_> {
    fn drop(&mut self) {
        // SAFETY: this handle owns one strong reference, and its token proves that the thread
        // holds the owner (INV-OBJ-BOUND, INV-TOKEN-EXCLUSIVE).
        unsafe { self.ptr.decref() }
    }
}

impl std::fmt::Debug for Obj<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.repr() {
            Ok(text) => f.write_str(&text),
            Err(e) => write!(f, "<{:?} object; repr failed: {e}>", self.kind()),
        }
    }
}

/// A strong reference bound to no token: it may move between threads and outlive the entry
/// it was made in. It keeps its runtime alive.
pub struct OwnedObj {
    ptr: ObjPtr,
    /// Keeps the owner's state (which every object header points to) alive
    /// (INV-OWNER-OUTLIVES).
    owner: Arc<InterpState>,
    /// Keeps the runtime alive: its finalization waits for every owned handle.
    runtime: Runtime,
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
            let decref = SendPtr(ptr);
            let call: crate::PendingCall = Box::new(move |_tok| {
                let ptr = decref.into_inner();
                // SAFETY: pending calls run in the interpreter whose inbox holds them, which
                // owns this object (INV-INBOX-OWNER); the reference travels with the call.
                unsafe { ptr.decref() }
            });
            match owner.inbox.push_release(call) {
                Ok(()) => LiveCounters::bump(&owner.counters.pending_queued),
                // The owner was destroyed (this handle escaped its final drain): run the
                // decref in a late entry (INV-INBOX-SEALED).
                Err(call) => crate::release::release_late(&self.runtime, &self.owner, call),
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
pub struct RawObj(ObjPtr);

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

/// Carries a strong reference inside a pending call to the owner's inbox.
struct SendPtr(ObjPtr);

// SAFETY: the pointer is only dereferenced by the pending call, which runs in the owner
// (INV-INBOX-OWNER).
unsafe impl Send for SendPtr {}

impl SendPtr {
    /// Taken by value so a closure captures the whole `SendPtr`, not its field.
    fn into_inner(self) -> ObjPtr {
        self.0
    }
}

// The layout a byte encoding of object pointers will rely on: the header is at offset 0 (an
// object's address is its header's), the refcount is its first word, and objects are at
// least 8-byte aligned, so a valid address has its three low bits clear.
static_assertions::const_assert_eq!(std::mem::offset_of!(ObjBox, header), 0);
static_assertions::const_assert_eq!(std::mem::offset_of!(ObjHeader, refcnt), 0);
static_assertions::const_assert!(std::mem::align_of::<ObjBox>() >= 8);

#[cfg(test)]
mod tests {
    use crate::Runtime;

    /// INV-OWN-LOCKED also covers object state, not only refcounts: reading a list's items
    /// from a thread that holds another interpreter panics in debug builds.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "wrong interpreter: object state touched")]
    fn object_state_touched_from_the_wrong_interpreter_panics() {
        let rt = Runtime::new();
        let (a, b) = (rt.create().unwrap(), rt.create().unwrap());
        let list = rt.enter(a, |tok| tok.list(&[tok.int(1)]).unbind()).unwrap();
        rt.enter(b, |_tok| {
            // SAFETY: the handle keeps the list alive; reading its items from `b` is the
            // wrong-interpreter touch this test expects the check to catch before it races.
            let super::Body::List(items) = (unsafe { list.ptr.body() }) else {
                unreachable!()
            };
            // SAFETY: deliberately broken (see above): the check panics before the read.
            let _ = unsafe { items.with(Vec::len) };
        })
        .unwrap();
    }
}
