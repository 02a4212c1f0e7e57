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

mod attrs;
mod blocks;
mod buffer;
mod cell;
mod class;
mod compare;
mod constructors;
mod dict;
mod forward;
mod frozen;
mod graph;
mod immortal;
mod moved;
mod owned;
mod pointer;
mod repr;
mod sequence;
mod state;

use std::borrow::Cow;
use std::mem;
use std::ptr::{self, NonNull};

pub(crate) use blocks::{boxed, copy_bytes, drop_boxed, unboxed, FreeBoxes};
pub use buffer::Buffer;
pub(crate) use buffer::{PinnedExport, ReceivedView};
pub(crate) use cell::OwnerCell;
pub(crate) use class::Attrs;
pub use class::{ClassDef, Method};
pub(crate) use dict::{Dict, HashKey};
pub(crate) use forward::{Forward, ProxyBody};
pub(crate) use frozen::SharedRef;
pub(crate) use moved::MovedGraph;
pub use owned::{OwnedObj, RawObj};
use pointer::{ObjBox, ObjHeader, Worklist};
pub(crate) use pointer::{ObjPtr, ToOwner};

use crate::counters::Event;
use crate::error::{fail, ErrorKind, Result};
use crate::interp::InterpState;
use crate::sync::{Arc, DataByte, Ordering, SetOnce, UnsafeCell};
use crate::thread_state::Token;

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
    /// A `memoryview` onto another interpreter's bytes, sent zero-copy: it holds the export
    /// pinned in the sender, shared by every view and slice made of it here.
    ReceivedView(ReceivedView),
    /// What a channel hands out for an item whose sender was destroyed, under the
    /// `Replace` policy (CPython's `UNBOUND`).
    Unbound,
    /// A RemoteProxy: one origin reference to an object of another interpreter.
    Proxy(Box<dyn ProxyBody>),
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
    /// A `memoryview` (also one onto another interpreter's bytes).
    View,
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
            Body::View(_) | Body::ReceivedView(_) => ObjKind::View,
            Body::Unbound => ObjKind::Unbound,
            Body::Proxy(_) => ObjKind::Proxy,
        }
    }

    /// Appends the strong references this body holds (with repeats) to `out`, and gives
    /// the live exports of a `bytes` or `bytearray` (0 for other objects).
    ///
    /// # Safety
    /// If `frozen`, the object is frozen or this thread is alone with it; otherwise the
    /// calling thread holds the owner (INV-OWN-LOCKED).
    unsafe fn references(&self, frozen: bool, out: &mut Vec<ObjPtr>) -> usize {
        /// Opens `cell` for reading the way the contract allows.
        ///
        /// # Safety
        /// As for `references`.
        unsafe fn read<T, R>(cell: &OwnerCell<T>, frozen: bool, f: impl FnOnce(&T) -> R) -> R {
            if frozen {
                // SAFETY: forwarded contract.
                unsafe { cell.with_frozen(f) }
            } else {
                // SAFETY: forwarded contract; the closures below only copy.
                unsafe { cell.with(f) }
            }
        }
        match self {
            Body::Tuple(items) => out.extend(items.iter().copied()),
            Body::List(items) => {
                // SAFETY: forwarded contract; the closure only copies pointers.
                unsafe { read(items, frozen, |v| out.extend(v.iter().copied())) }
            }
            Body::Dict(dict) => {
                let pairs =
                    |d: &Dict| out.extend(d.entries().into_iter().flat_map(|(k, v)| [k, v]));
                // SAFETY: forwarded contract; the closure only copies pointers.
                unsafe { read(dict, frozen, pairs) }
            }
            Body::Instance { class, attrs } => {
                out.push(*class);
                // SAFETY: forwarded contract; the closure only copies pointers.
                unsafe { read(attrs, frozen, |a| out.extend(a.values())) }
            }
            Body::BoundMethod { receiver, .. } => out.push(*receiver),
            Body::View(view) => out.push(view.exporter),
            Body::Bytes { exports, .. } | Body::ByteArray { exports, .. } => {
                // SAFETY: forwarded contract; the closure only copies the count.
                return unsafe { read(exports, frozen, |n| *n) };
            }
            Body::None
            | Body::Bool(_)
            | Body::Int(_)
            | Body::Float(_)
            | Body::Str(_)
            | Body::Class(_)
            | Body::ReceivedView(_)
            | Body::Unbound
            | Body::Proxy(_) => {}
        }
        0
    }

    /// Makes every cell of this body `owner`'s (what debug builds check accesses against),
    /// for a moved object being adopted.
    fn rehome_cells(&self, owner: &InterpState) {
        match self {
            Body::Bytes { exports, .. } => exports.rehome(owner),
            Body::ByteArray { data, exports } => {
                data.rehome(owner);
                exports.rehome(owner);
            }
            Body::List(items) => items.rehome(owner),
            Body::Dict(dict) => dict.rehome(owner),
            Body::Instance { attrs, .. } => attrs.rehome(owner),
            Body::View(view) => {
                view.released.rehome(owner);
                view.exports.rehome(owner);
            }
            Body::ReceivedView(view) => view.rehome(owner),
            Body::None
            | Body::Bool(_)
            | Body::Int(_)
            | Body::Float(_)
            | Body::Str(_)
            | Body::Tuple(_)
            | Body::Class(_)
            | Body::BoundMethod { .. }
            | Body::Unbound
            | Body::Proxy(_) => {}
        }
    }

    /// The strong references and live exports of an object this thread's interpreter owns.
    ///
    /// # Safety
    /// The calling thread holds the owner (INV-OWN-LOCKED).
    pub(super) unsafe fn children_and_exports(&self) -> (Vec<ObjPtr>, usize) {
        let mut children = Vec::new();
        // SAFETY: forwarded contract.
        let exports = unsafe { self.references(false, &mut children) };
        (children, exports)
    }

    /// Appends a frozen member's references to `out`, for its component's free.
    ///
    /// # Safety
    /// The object is frozen and this thread is alone with it (INV-FROZEN-COUNT).
    pub(super) unsafe fn frozen_children(&self, out: &mut Vec<ObjPtr>) {
        // SAFETY: forwarded contract.
        unsafe { self.references(true, out) };
    }

    /// Appends the strong references this body holds to `out` (for deallocation), gives
    /// back the export an unreleased view holds, and frees a proxy, the object at `addr` of
    /// `owner` (one match, so the body is moved once on the way from its box).
    ///
    /// # Safety
    /// The calling thread holds `owner`, the owner of the object this body belonged to.
    unsafe fn take_children(self, out: &mut Worklist, owner: &InterpState, addr: usize) {
        match self {
            // SAFETY: forwarded contract: this thread holds the proxy's interpreter. The
            // proxy gives back its origin references, which may let go of this interpreter
            // for a moment (INV-RELEASE-SUSPEND).
            Body::Proxy(proxy) => unsafe { proxy.free(owner, addr) },
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
                    unsafe { buffer::release_export_on_free(view.exporter) };
                    out.push(view.exporter);
                }
            }
            Body::Bytes { data, .. } => blocks::give_bytes(data),
            Body::None
            | Body::Bool(_)
            | Body::Int(_)
            | Body::Float(_)
            | Body::Str(_)
            | Body::ByteArray { .. }
            | Body::Class(_)
            | Body::ReceivedView(_)
            | Body::Unbound => {}
        }
    }
}

impl<'r> Token<'r> {
    /// Allocates an object owned by this interpreter; the returned handle holds its one
    /// reference.
    #[inline]
    pub(crate) fn alloc(&self, body: Body) -> Obj<'_> {
        // A block first, written in place (`Box::new` builds the object on the stack and
        // copies it): this thread's last freed one, if any.
        let mut slot = blocks::take();
        slot.write(ObjBox {
            header: ObjHeader {
                refcnt: UnsafeCell::new(1),
                owner: NonNull::from(&**self.interp()),
                sharing: SetOnce::new(ptr::null_mut()),
            },
            body,
        });
        // SAFETY: initialised by the `write` just above.
        let boxed = unsafe { slot.assume_init() };
        let interp = self.interp();
        interp.note_allocated();
        self.counters().bump(Event::ObjectsAllocated);
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
        debug_assert!(ptr.is_shared() || ptr::eq(unsafe { ptr.owner() }, &**tok.interp()));
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
            Body::Proxy(proxy) if self.tok.runtime().config().proxy_id_is_origin => {
                proxy.origin_addr().unwrap_or(self.ptr.addr())
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
            runtime: self.tok.runtime().for_object(),
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

fn type_error<T>(message: impl Into<String>) -> Result<T> {
    fail(ErrorKind::TypeError, message)
}

/// What every operation needs: the type's name, and an instance's special methods.
impl<'t> Obj<'t> {
    /// The type's name as Python shows it: `"int"`, `"list"`, `"memoryview"` (a received
    /// view too), or the class name of an instance. The model's own kinds have theirs: a
    /// proxy is `"xinterp.RemoteProxy"` (whatever its target's type; ask the target
    /// through the proxy), an unbound item's marker `"xinterp.Unbound"`.
    // Out of line: it is mostly called to word an error, and inlined it would keep small hot
    // functions (`as_int`, `refuse_if_frozen`) from being inlined themselves.
    #[inline(never)]
    pub fn type_name(&self) -> String {
        self.type_name_cow().into_owned()
    }

    /// [`Obj::type_name`], allocating only for an instance of a user class.
    pub(crate) fn type_name_cow(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self.body() {
            Body::None => "NoneType",
            Body::Bool(_) => "bool",
            Body::Int(_) => "int",
            Body::Float(_) => "float",
            Body::Str(_) => "str",
            Body::Bytes { .. } => "bytes",
            Body::ByteArray { .. } => "bytearray",
            Body::Tuple(_) => "tuple",
            Body::List(_) => "list",
            Body::Dict(_) => "dict",
            Body::Class(_) => "type",
            Body::Instance { .. } => {
                return Cow::Owned(self.class_def().expect("an instance").name().into())
            }
            Body::BoundMethod { .. } => "method",
            Body::View(_) | Body::ReceivedView(_) => "memoryview",
            Body::Unbound => "xinterp.Unbound",
            Body::Proxy(_) => "xinterp.RemoteProxy",
        })
    }

    /// Calls special method `name` if this is an instance whose class defines it.
    fn call_special(&self, name: &str, args: &[Obj<'t>]) -> Option<Result<Obj<'t>>> {
        let method = self.class_def()?.find(name)?;
        Some(method(self, args))
    }
}

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
