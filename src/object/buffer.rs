//! The buffer protocol: `bytes`, `bytearray` and `memoryview` export their bytes and count
//! the exports; a `bytearray` refuses to resize while any export is live (INV-BUF-NO-RESIZE).
//!
//! How bytes are read and written is part of the protocol because later parts hand these
//! pointers to other interpreters: `bytes` storage is never written after creation, so plain
//! shared reads are fine; `bytearray` storage is an array of `AtomicU8` accessed only with
//! relaxed atomics, so a write racing a read elsewhere is defined (INV-BUF-ATOMIC-BYTES).

use std::mem;
use std::ptr::NonNull;

use super::{Body, Forward, Obj, ObjPtr, OwnerCell, ViewBody};
use crate::counters::Event;
use crate::error::{fail, ErrorKind, Result};
use crate::interp::{InterpId, InterpState};
use crate::release::release_in_owner;
use crate::runtime::Runtime;
use crate::sync::{Arc, DataByte, Ordering};

/// Where an exporter's bytes are.
#[derive(Clone, Copy, Debug)]
enum Bytes {
    /// `bytes`: never written.
    Frozen(NonNull<u8>),
    /// `bytearray`: relaxed atomics.
    Shared(NonNull<DataByte>),
}

impl Bytes {
    fn offset(self, by: usize) -> Bytes {
        // SAFETY (both arms): callers only offset within the exporter's storage, whose length
        // they checked; the storage is not reallocated while exported (INV-BUF-NO-RESIZE).
        match self {
            // SAFETY: see above.
            Bytes::Frozen(p) => Bytes::Frozen(unsafe { p.add(by) }),
            // SAFETY: see above.
            Bytes::Shared(p) => Bytes::Shared(unsafe { p.add(by) }),
        }
    }
}

/// An exported buffer: a window onto an exporter's bytes that keeps the export (and a
/// strong reference to the object it came from) until dropped.
pub struct Buffer<'t> {
    source: Obj<'t>,
    bytes: Bytes,
    len: usize,
    readonly: bool,
}

impl std::fmt::Debug for Buffer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("ptr", &self.as_ptr())
            .field("len", &self.len)
            .field("readonly", &self.readonly)
            .finish()
    }
}

impl Buffer<'_> {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether writes are refused.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// The address of the first byte (for identity checks: zero-copy means equal addresses).
    pub fn as_ptr(&self) -> *const u8 {
        match self.bytes {
            Bytes::Frozen(p) => p.as_ptr(),
            Bytes::Shared(p) => p.as_ptr().cast::<u8>(),
        }
    }

    /// The bytes as a slice, for immutable (`bytes`) exporters only.
    pub fn frozen(&self) -> Option<&[u8]> {
        match self.bytes {
            // SAFETY: `bytes` storage is never written and lives while this export holds a
            // reference to its exporter (INV-BUF-NO-RESIZE).
            Bytes::Frozen(p) => Some(unsafe { std::slice::from_raw_parts(p.as_ptr(), self.len) }),
            Bytes::Shared(_) => None,
        }
    }

    /// Byte `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<u8> {
        if index >= self.len {
            return None;
        }
        Some(match self.bytes.offset(index) {
            // SAFETY: in bounds (checked) of storage kept alive by this export.
            Bytes::Frozen(p) => unsafe { p.read() },
            // SAFETY: in bounds of live storage; read atomically (INV-BUF-ATOMIC-BYTES).
            Bytes::Shared(p) => unsafe { p.as_ref() }.load(Ordering::Relaxed),
        })
    }

    /// Writes byte `index`; `TypeError` for a read-only buffer (as CPython's memoryview),
    /// `IndexError` past the end.
    pub fn set(&self, index: usize, value: u8) -> Result<()> {
        if self.readonly {
            return fail(ErrorKind::TypeError, "cannot modify read-only memory");
        }
        if index >= self.len {
            return fail(ErrorKind::IndexError, "buffer index out of range");
        }
        match self.bytes.offset(index) {
            Bytes::Frozen(_) => unreachable!("frozen exports are read-only"),
            // SAFETY: in bounds of live storage; written atomically (INV-BUF-ATOMIC-BYTES).
            Bytes::Shared(p) => unsafe { p.as_ref() }.store(value, Ordering::Relaxed),
        }
        Ok(())
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        match self.frozen() {
            Some(slice) => slice.to_vec(),
            None => (0..self.len)
                .map(|i| self.get(i).expect("index in range"))
                .collect(),
        }
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        // SAFETY: `source` is alive and bound to a token, so this thread holds its owner
        // unless it is frozen (INV-OBJ-BOUND).
        unsafe { count_export(self.source.ptr(), false) };
        self.source.token().counters().bump(Event::BuffersReleased);
    }
}

/// Counts one export more (`up`) or less on `exporter`. A frozen exporter counts none: its
/// bytes never change or move again, and any interpreter may read it, so there is nothing
/// to guard (INV-FROZEN-IMMUTABLE).
///
/// # Safety
/// `exporter` is alive and exports buffers; unless it is frozen, the calling thread holds its
/// owner.
unsafe fn count_export(exporter: ObjPtr, up: bool) {
    if exporter.is_shared() {
        return;
    }
    // SAFETY: forwarded contract: alive.
    let exports = exports_cell(unsafe { exporter.body() }).expect("exporters count exports");
    // SAFETY: forwarded contract: the owner is held; the closure touches only the count.
    unsafe { exports.with_mut(|n| if up { *n += 1 } else { *n -= 1 }) };
}

impl<'t> Buffer<'t> {
    /// Turns this export into one that is bound to nothing: it keeps the exporter and the
    /// export until dropped, wherever that happens, and then releases them in the owner.
    pub(crate) fn pin(self) -> PinnedExport {
        let tok = self.source.token();
        let pinned = PinnedExport {
            source: self.source.ptr(),
            bytes: self.bytes,
            len: self.len,
            readonly: self.readonly,
            owner: Arc::clone(tok.interp()),
            rt: tok.runtime().uncounted(),
        };
        pinned.owner.pinned_exports.fetch_add(1, Ordering::Relaxed);
        // The buffer's reference and export now belong to `pinned`.
        mem::forget(self);
        pinned
    }
}

/// One export pinned in its owner for another interpreter: a strong reference to the
/// exporting object (bytes, bytearray or memoryview) and one export on it, with the address
/// and length of the bytes. Dropping it releases both in the owner, by the runtime's release
/// strategy (INV-RELEASE-IN-OWNER). The bytes stay valid until then: the exporter cannot be
/// freed or resized while the export is held (INV-BUF-NO-RESIZE), and the owner's state
/// outlives it through the `Arc` (INV-OWNER-OUTLIVES).
pub(crate) struct PinnedExport {
    source: ObjPtr,
    bytes: Bytes,
    len: usize,
    readonly: bool,
    owner: Arc<InterpState>,
    rt: Runtime,
}

// SAFETY: the bytes are read-only (`bytes`) or atomics (`bytearray`), so any thread may
// read them (INV-BUF-ATOMIC-BYTES); the source object is touched only by the release, which
// runs in the owner (INV-RELEASE-IN-OWNER).
unsafe impl Send for PinnedExport {}
// SAFETY: as above; `&PinnedExport` gives only the address, length and flags.
unsafe impl Sync for PinnedExport {}

impl PinnedExport {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn owner_id(&self) -> InterpId {
        self.owner.id
    }

    fn view_of(&self) -> (Bytes, usize, bool) {
        (self.bytes, self.len, self.readonly)
    }
}

impl Drop for PinnedExport {
    fn drop(&mut self) {
        let source = SendObjPtr(self.source);
        let owner = Arc::clone(&self.owner);
        release_in_owner(&self.rt, &self.owner, move || {
            let source = source.into_inner();
            // SAFETY: the pin holds a strong reference to `source` until just below; release
            // functions run only while the thread holds the owner (INV-RELEASE-IN-OWNER),
            // which owns `source` unless it is frozen; the pin held one export and one strong
            // reference, given up here exactly once.
            unsafe { count_export(source, false) };
            // SAFETY: as above.
            unsafe { source.decref() };
            owner.counters.bump(Event::BuffersReleased);
            owner.pinned_exports.fetch_sub(1, Ordering::Release);
        });
    }
}

/// Moves an object pointer into a release function; see [`PinnedExport`]'s `Drop`.
struct SendObjPtr(ObjPtr);

// SAFETY: only dereferenced by a release function, which runs in the owner
// (INV-RELEASE-IN-OWNER).
unsafe impl Send for SendObjPtr {}

impl SendObjPtr {
    /// Taken by value so a closure captures the whole wrapper, not its field.
    fn into_inner(self) -> ObjPtr {
        self.0
    }
}

/// The export count of an exporter body.
fn exports_cell(body: &Body) -> Option<&OwnerCell<usize>> {
    match body {
        Body::Bytes { exports, .. } | Body::ByteArray { exports, .. } => Some(exports),
        Body::View(view) => Some(&view.exports),
        Body::ReceivedBuffer { views, .. } => Some(views),
        _ => None,
    }
}

/// Where a root exporter's (bytes, bytearray, received buffer) storage starts, and its
/// length.
///
/// # Safety
/// `root` is alive and the calling thread holds its owner, unless it is frozen.
unsafe fn root_bytes(root: ObjPtr) -> (Bytes, usize, bool) {
    // SAFETY: forwarded contract: alive.
    match unsafe { root.body() } {
        Body::ReceivedBuffer { export, .. } => export.view_of(),
        Body::Bytes { data, .. } => (
            Bytes::Frozen(NonNull::from(&data[..]).cast::<u8>()),
            data.len(),
            true,
        ),
        // A frozen bytearray is read-only, and any interpreter may read it.
        // SAFETY: frozen: nothing writes the cell again (INV-FROZEN-IMMUTABLE); the closure
        // only reads the pointer.
        Body::ByteArray { data, .. } if root.is_shared() => unsafe {
            data.with_frozen(|v| {
                (
                    Bytes::Shared(NonNull::from(&v[..]).cast::<DataByte>()),
                    v.len(),
                    true,
                )
            })
        },
        // SAFETY: forwarded contract (INV-OWN-LOCKED); the closure only reads the pointer.
        Body::ByteArray { data, .. } => unsafe {
            data.with(|v| {
                (
                    Bytes::Shared(NonNull::from(&v[..]).cast::<DataByte>()),
                    v.len(),
                    false,
                )
            })
        },
        _ => unreachable!("views are only ever made over bytes, bytearray and received buffers"),
    }
}

impl<'t> Obj<'t> {
    fn view(&self) -> Option<&ViewBody> {
        match self.body() {
            Body::View(view) => Some(view),
            _ => None,
        }
    }

    pub(crate) fn check_view_live(&self) -> Result<()> {
        let Some(view) = self.view() else {
            return Ok(());
        };
        // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
        if unsafe { view.released.with(|r| *r) } {
            return fail(
                ErrorKind::ValueError,
                "operation forbidden on released memoryview object",
            );
        }
        Ok(())
    }

    /// Exports this object's bytes (`bytes`, `bytearray`, a live `memoryview`). The export
    /// count rises until the buffer is dropped.
    pub fn get_buffer(&self) -> Result<Buffer<'t>> {
        if self.proxy_body().is_some() {
            // A remote view onto the origin's bytes; the buffer keeps the view alive.
            return self.memoryview()?.get_buffer();
        }
        self.check_view_live()?;
        if exports_cell(self.body()).is_none() {
            return fail(
                ErrorKind::TypeError,
                format!(
                    "a bytes-like object is required, not '{}'",
                    self.type_name()
                ),
            );
        };
        let (bytes, len, readonly) = match self.view() {
            Some(view) => {
                // SAFETY: a view's exporter is of this interpreter, which the token proves
                // this thread holds (INV-OBJ-BOUND).
                let (root, _, _) = unsafe { root_bytes(view.exporter) };
                (root.offset(view.start), view.len, view.readonly)
            }
            // SAFETY: as above, for this object itself.
            None => unsafe { root_bytes(self.ptr()) },
        };
        // SAFETY: alive; the token proves the thread holds the owner unless it is frozen
        // (INV-OBJ-BOUND).
        unsafe { count_export(self.ptr(), true) };
        self.token().counters().bump(Event::BuffersExported);
        Ok(Buffer {
            source: self.clone(),
            bytes,
            len,
            readonly,
        })
    }

    /// Live exports of this `bytes`, `bytearray` or `memoryview` (each view counts one on its
    /// exporter).
    /// A frozen exporter counts none (0).
    pub fn export_count(&self) -> Result<usize> {
        match exports_cell(self.body()) {
            Some(_) if self.is_frozen() => Ok(0),
            // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
            Some(exports) => Ok(unsafe { exports.with(|n| *n) }),
            None => fail(
                ErrorKind::TypeError,
                format!("'{}' object does not export buffers", self.type_name()),
            ),
        }
    }

    /// `memoryview(x)` over a `bytes`, `bytearray` or `memoryview`. The view holds one
    /// export on the underlying exporter until released.
    pub fn memoryview(&self) -> Result<Obj<'t>> {
        if let Some(r) = self.forwarded(Forward::Memoryview, &[]) {
            return r;
        }
        match self.view() {
            Some(view) => {
                self.check_view_live()?;
                // SAFETY: the view holds its exporter, of the same owner (INV-OBJ-BOUND).
                Ok(unsafe { self.new_view(view.exporter, view.start, view.len, view.readonly) })
            }
            None => match self.body() {
                Body::Bytes { .. } | Body::ByteArray { .. } | Body::ReceivedBuffer { .. } => {
                    // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
                    let (_, len, readonly) = unsafe { root_bytes(self.ptr()) };
                    // SAFETY: `self` is alive and bound to the token holding its owner.
                    Ok(unsafe { self.new_view(self.ptr(), 0, len, readonly) })
                }
                _ => fail(
                    ErrorKind::TypeError,
                    format!(
                        "memoryview: a bytes-like object is required, not '{}'",
                        self.type_name()
                    ),
                ),
            },
        }
    }

    pub(crate) fn view_slice(&self, start: i64, end: i64) -> Result<Obj<'t>> {
        self.check_view_live()?;
        let view = self.view().expect("view_slice is called on views");
        let len = i64::try_from(view.len).unwrap_or(i64::MAX);
        let fix = |i: i64| (if i < 0 { i + len } else { i }).clamp(0, len) as usize;
        let (a, b) = (fix(start), fix(end));
        let b = b.max(a);
        // SAFETY: the view holds its exporter, of the same owner (INV-OBJ-BOUND).
        Ok(unsafe { self.new_view(view.exporter, view.start + a, b - a, view.readonly) })
    }

    /// A view over `root[start..start + len]`, taking a reference and an export on `root`.
    ///
    /// # Safety
    /// `root` is a live exporter owned by the interpreter `self`'s token holds.
    unsafe fn new_view(&self, root: ObjPtr, start: usize, len: usize, readonly: bool) -> Obj<'t> {
        let tok = self.token();
        // SAFETY: forwarded contract (INV-OBJ-BOUND).
        let root = unsafe { Obj::from_borrowed_ptr(tok, root) };
        // SAFETY: alive; the token proves the thread holds the owner unless it is frozen.
        unsafe { count_export(root.ptr(), true) };
        tok.counters().bump(Event::BuffersExported);
        tok.alloc(Body::View(ViewBody {
            exporter: root.into_ptr(),
            start,
            len,
            readonly,
            released: OwnerCell::new(false),
            exports: OwnerCell::new(0),
        }))
    }

    /// Python's `memoryview.release()`: gives back the view's export and its reference to
    /// the exporter. Idempotent; `BufferError` while buffers taken from the view are live.
    /// (Named apart from the release protocol that gives a pinned export back in its owner.)
    pub fn release_view(&self) -> Result<()> {
        let Some(view) = self.view() else {
            return fail(
                ErrorKind::AttributeError,
                format!("'{}' object has no attribute 'release'", self.type_name()),
            );
        };
        // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
        let released = unsafe { view.released.with(|r| *r) };
        // SAFETY: as above.
        let exported = unsafe { view.exports.with(|n| *n) };
        if released {
            return Ok(());
        }
        if exported > 0 {
            return fail(
                ErrorKind::BufferError,
                format!("memoryview has {exported} exported buffer(s)"),
            );
        }
        // SAFETY: as above.
        unsafe { view.released.with_mut(|r| *r = true) };
        // SAFETY: the view held one reference and one export on its exporter, of the same
        // owner, and gives both up here, once (it is now marked released).
        unsafe { release_root_export(self, view.exporter) };
        Ok(())
    }
}

/// Gives back one export on `root` and the reference that came with it.
///
/// # Safety
/// The caller owns one export on `root` and one strong reference to it, and gives both up;
/// `root` is owned by the interpreter `holder`'s token holds.
unsafe fn release_root_export(holder: &Obj<'_>, root: ObjPtr) {
    let tok = holder.token();
    // SAFETY: forwarded contract: the reference is handed over (INV-OBJ-BOUND).
    let root = unsafe { Obj::from_owned_ptr(tok, root) };
    // SAFETY: alive; the token proves the thread holds the owner unless it is frozen.
    unsafe { count_export(root.ptr(), false) };
    tok.counters().bump(Event::BuffersReleased);
}

/// Called when an unreleased view is freed: gives back its export on the exporter. The
/// reference itself is released by the deallocator.
///
/// # Safety
/// `root` is alive (the freed view still holds its reference) and the calling thread holds
/// its owner.
pub(crate) unsafe fn release_export_on_free(root: ObjPtr) {
    // SAFETY: forwarded contract: alive (a frozen root's owner state is kept by its
    // component).
    let owner = unsafe { root.owner() };
    // SAFETY: forwarded contract (INV-OWN-LOCKED), unless the root is frozen.
    unsafe { count_export(root, false) };
    owner.counters.bump(Event::BuffersReleased);
}
