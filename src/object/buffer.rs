//! The buffer protocol: `bytes`, `bytearray` and `memoryview` export their bytes and count
//! the exports; a `bytearray` refuses to resize while any export is live (INV-BUF-NO-RESIZE).
//!
//! How bytes are read and written is part of the protocol because later parts hand these
//! pointers to other interpreters: `bytes` storage is never written after creation, so plain
//! shared reads are fine; `bytearray` storage is an array of `AtomicU8` accessed only with
//! relaxed atomics, so a write racing a read elsewhere is defined (INV-BUF-ATOMIC-BYTES).

use std::mem;
use std::ptr::NonNull;

use super::{Body, Forward, Obj, ObjPtr, OwnerCell, ToOwner, ViewBody};
use crate::counters::Event;
use crate::error::{fail, ErrorKind, Result};
use crate::interp::{Anchored, InterpId, InterpState};
use crate::release::release_in_owner;
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
        let (start, shared) = match self.bytes {
            Bytes::Frozen(p) => (p, false),
            Bytes::Shared(p) => (p.cast::<u8>(), true),
        };
        let state = tok.interp();
        // No read-modify-write: every change of the count is made by a thread holding the
        // owner (here `tok`; the release runs in the owner, INV-RELEASE-IN-OWNER), so the
        // owner's lock orders them.
        let pins = &state.pinned_exports;
        let out = pins.load(Ordering::Relaxed);
        if out == 0 {
            // The anchor of every pin out: a count set aside, given back by the last release
            // (INV-OWNER-OUTLIVES).
            mem::forget(Arc::clone(state));
        }
        pins.store(out + 1, Ordering::Relaxed);
        let pinned = PinnedExport {
            source: self.source.ptr(),
            start,
            len: self.len,
            shared,
            readonly: self.readonly,
            // SAFETY: counted out just above, so anchored until its release.
            owner: unsafe { Anchored::new(state) },
        };
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
/// outlives it through the anchor of its pins (INV-OWNER-OUTLIVES).
pub(crate) struct PinnedExport {
    source: ObjPtr,
    /// The first byte: of a `bytearray`'s atomics if `shared`, else of a `bytes`'s storage
    /// (a [`Bytes`] taken apart, so that the two flags share a word).
    start: NonNull<u8>,
    len: usize,
    shared: bool,
    readonly: bool,
    /// Anchored while any pin of the owner is out (INV-OWNER-OUTLIVES).
    owner: Anchored,
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
        let bytes = if self.shared {
            Bytes::Shared(self.start.cast::<DataByte>())
        } else {
            Bytes::Frozen(self.start)
        };
        (bytes, self.len, self.readonly)
    }
}

impl Drop for PinnedExport {
    fn drop(&mut self) {
        // The release is handed the owner's state by the entry that runs it; it keeps only
        // a lent handle, to end the anchor if it is the last pin back.
        // SAFETY: only the release below dereferences it, in the owner.
        let source = unsafe { ToOwner::new(self.source) };
        // SAFETY: used only by the release, which runs before the last pin's ends the anchor.
        let anchor = unsafe { Anchored::new(&self.owner) };
        release_in_owner(&self.owner, move |owner| {
            let source = source.into_inner();
            // SAFETY: the pin holds a strong reference to `source` until just below; release
            // functions run only while the thread holds the owner (INV-RELEASE-IN-OWNER),
            // which owns `source` unless it is frozen; the pin held one export and one strong
            // reference, given up here exactly once.
            unsafe { count_export(source, false) };
            // SAFETY: as above.
            unsafe { source.decref() };
            owner.counters.bump(Event::BuffersReleased);
            // As in `pin`: the thread holds the owner, so no read-modify-write.
            let pins = &owner.pinned_exports;
            let out = pins.load(Ordering::Relaxed) - 1;
            pins.store(out, Ordering::Release);
            if out == 0 {
                // SAFETY: the last pin back ends the anchor `pin` set aside. Not the state's
                // last count: this thread holds the owner through an `Arc` of its own
                // (`release_in_owner`), INV-OWNER-OUTLIVES.
                unsafe { anchor.let_go() };
            }
        });
    }
}

/// A buffer item as its receiver gets it: a `memoryview` holding the pinned export itself,
/// one object. Its slices and the memoryviews made of it are ordinary views over it, each
/// counted in `views` and holding a reference, so the item stays one export in its sender
/// however many views the receiver makes. The export is released in its owner once this
/// view is released and no view over it is left, or when it is freed.
pub(crate) struct ReceivedView {
    /// The export: `None` once given back.
    pin: OwnerCell<Option<PinnedExport>>,
    /// Buffers taken from this view; it cannot be released while any is live.
    exports: OwnerCell<usize>,
    /// Views over this one, each holding a reference (32 bits keep the body within a dict's
    /// 72 bytes).
    views: OwnerCell<u32>,
    released: OwnerCell<bool>,
}

impl ReceivedView {
    pub(crate) fn new(export: PinnedExport) -> ReceivedView {
        ReceivedView {
            pin: OwnerCell::new(Some(export)),
            exports: OwnerCell::new(0),
            views: OwnerCell::new(0),
            released: OwnerCell::new(false),
        }
    }

    /// Makes every cell `owner`'s; see `Body::rehome_cells`.
    pub(crate) fn rehome(&self, owner: &InterpState) {
        self.pin.rehome(owner);
        self.exports.rehome(owner);
        self.views.rehome(owner);
        self.released.rehome(owner);
    }

    /// Counts one view over this one more (`up`) or less; gives back what
    /// [`ReceivedView::unused_pin`] gives.
    ///
    /// # Safety
    /// The calling thread holds the owner.
    unsafe fn count_view(&self, up: bool) -> Option<PinnedExport> {
        let count = |n: &mut u32| {
            *n = if up {
                n.checked_add(1).expect("fewer than 2^32 views over a view")
            } else {
                *n - 1
            }
        };
        // SAFETY: forwarded contract; the closure touches only the count.
        unsafe { self.views.with_mut(count) };
        // SAFETY: forwarded contract.
        unsafe { self.unused_pin() }
    }

    /// The export, taken out once this view is released and no view over it is left, for
    /// the caller to drop once no cell is open: its release may let go of this interpreter
    /// for a moment (INV-RELEASE-SUSPEND).
    ///
    /// # Safety
    /// The calling thread holds the owner.
    unsafe fn unused_pin(&self) -> Option<PinnedExport> {
        // SAFETY: forwarded contract; the closure only reads.
        let released = unsafe { self.released.with(|r| *r) };
        // SAFETY: as above.
        let views = unsafe { self.views.with(|n| *n) };
        if !released || views > 0 {
            return None;
        }
        // SAFETY: as above; the closure only takes the pin out.
        unsafe { self.pin.with_mut(Option::take) }
    }
}

/// A memoryview's `released` flag and its count of the buffers taken from it; `None` for
/// any other object.
fn view_cells(body: &Body) -> Option<(&OwnerCell<bool>, &OwnerCell<usize>)> {
    match body {
        Body::View(view) => Some((&view.released, &view.exports)),
        Body::ReceivedView(view) => Some((&view.released, &view.exports)),
        _ => None,
    }
}

/// The export count of an exporter body: the buffers taken from it (and for a bytes or a
/// bytearray, the views over it).
fn exports_cell(body: &Body) -> Option<&OwnerCell<usize>> {
    match body {
        Body::Bytes { exports, .. } | Body::ByteArray { exports, .. } => Some(exports),
        Body::View(view) => Some(&view.exports),
        Body::ReceivedView(view) => Some(&view.exports),
        _ => None,
    }
}

/// Counts one view more (`up`) or less over `root`: one export on a bytes or a bytearray,
/// one in a received view's `views`. Gives back the export of a received view released
/// meanwhile when its last view goes, for the caller to drop once no cell is open.
///
/// # Safety
/// As for [`count_export`]; `root` is a bytes, a bytearray or a received view.
unsafe fn count_view(root: ObjPtr, up: bool) -> Option<PinnedExport> {
    // SAFETY: forwarded contract: alive.
    match unsafe { root.body() } {
        // SAFETY: forwarded contract: the owner is held (a received view is never frozen).
        Body::ReceivedView(view) => unsafe { view.count_view(up) },
        _ => {
            // SAFETY: forwarded contract.
            unsafe { count_export(root, up) };
            None
        }
    }
}

/// Where a root exporter's (bytes, bytearray, received view) storage starts, and its length.
///
/// # Safety
/// `root` is alive and the calling thread holds its owner, unless it is frozen; a received
/// view still holds its export (it is live, or views over it are).
unsafe fn root_bytes(root: ObjPtr) -> (Bytes, usize, bool) {
    // SAFETY: forwarded contract: alive.
    match unsafe { root.body() } {
        // SAFETY: forwarded contract; the closure only reads the pin.
        Body::ReceivedView(view) => unsafe {
            view.pin
                .with(|pin| pin.as_ref().map(PinnedExport::view_of))
                .expect("a received view keeps its export while it or a view over it is live")
        },
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
        _ => unreachable!("views are only ever made over bytes, bytearray and received views"),
    }
}

/// What a memoryview reads: its root exporter (a bytes, a bytearray, or a received view for
/// the received view itself and the views over it), and the window onto the root's bytes.
struct Window {
    root: ObjPtr,
    start: usize,
    len: usize,
    readonly: bool,
}

impl<'t> Obj<'t> {
    /// The window of a memoryview, `None` for any other object; `ValueError` once it is
    /// released (as CPython).
    fn window(&self) -> Result<Option<Window>> {
        let Some((released, _)) = view_cells(self.body()) else {
            return Ok(None);
        };
        // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
        if unsafe { released.with(|r| *r) } {
            return fail(
                ErrorKind::ValueError,
                "operation forbidden on released memoryview object",
            );
        }
        Ok(Some(match self.body() {
            Body::View(view) => Window {
                root: view.exporter,
                start: view.start,
                len: view.len,
                readonly: view.readonly,
            },
            _ => {
                // A received view reads the whole of its own export, which it holds while
                // live.
                // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
                let (_, len, readonly) = unsafe { root_bytes(self.ptr()) };
                Window {
                    root: self.ptr(),
                    start: 0,
                    len,
                    readonly,
                }
            }
        }))
    }

    /// `len()` of a memoryview (an ordinary or a received one).
    pub(crate) fn view_len(&self) -> Result<usize> {
        Ok(self
            .window()?
            .expect("view_len is called on memoryviews")
            .len)
    }

    /// Exports this object's bytes (`bytes`, `bytearray`, a live `memoryview`). The export
    /// count rises until the buffer is dropped.
    pub fn get_buffer(&self) -> Result<Buffer<'t>> {
        if self.proxy_body().is_some() {
            // A remote view onto the origin's bytes; the buffer keeps the view alive.
            return self.memoryview()?.get_buffer();
        }
        let window = self.window()?;
        if exports_cell(self.body()).is_none() {
            return fail(
                ErrorKind::TypeError,
                format!(
                    "a bytes-like object is required, not '{}'",
                    self.type_name()
                ),
            );
        };
        let (bytes, len, readonly) = match window {
            Some(w) => {
                // SAFETY: a view's root is of this interpreter, which the token proves this
                // thread holds (INV-OBJ-BOUND), and holds its bytes while the view is live.
                let (root, _, _) = unsafe { root_bytes(w.root) };
                (root.offset(w.start), w.len, w.readonly)
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
        if let Some(w) = self.window()? {
            // SAFETY: the view's root is of this interpreter, which the token proves this
            // thread holds (INV-OBJ-BOUND).
            return Ok(unsafe { self.new_view(w.root, w.start, w.len, w.readonly) });
        }
        match self.body() {
            Body::Bytes { .. } | Body::ByteArray { .. } => {
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
        }
    }

    pub(crate) fn view_slice(&self, start: i64, end: i64) -> Result<Obj<'t>> {
        let w = self.window()?.expect("view_slice is called on memoryviews");
        let len = i64::try_from(w.len).unwrap_or(i64::MAX);
        let fix = |i: i64| (if i < 0 { i + len } else { i }).clamp(0, len) as usize;
        let (a, b) = (fix(start), fix(end));
        let b = b.max(a);
        // SAFETY: the view's root is of this interpreter, which the token proves this thread
        // holds (INV-OBJ-BOUND).
        Ok(unsafe { self.new_view(w.root, w.start + a, b - a, w.readonly) })
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
        let none = unsafe { count_view(root.ptr(), true) };
        debug_assert!(none.is_none(), "counting a view up gives no export back");
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
    /// the exporter (a received view: its export in the sender, once no view over it is
    /// left). Idempotent; `BufferError` while buffers taken from the view are live. (Named
    /// apart from the release protocol that gives a pinned export back in its owner.)
    ///
    /// A received view's export goes back in the sender by the runtime's release strategy:
    /// under the default, when this thread next lets go of the interpreter it holds, or takes
    /// the sender back if it switched out of it (INV-RELEASE-BATCH); until then the sender's
    /// `bytearray` cannot resize. CPython, too, defers a foreign buffer's release to its
    /// owner.
    pub fn release_view(&self) -> Result<()> {
        let Some((released, exports)) = view_cells(self.body()) else {
            return fail(
                ErrorKind::AttributeError,
                format!("'{}' object has no attribute 'release'", self.type_name()),
            );
        };
        // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
        if unsafe { released.with(|r| *r) } {
            return Ok(());
        }
        // SAFETY: as above.
        let exported = unsafe { exports.with(|n| *n) };
        if exported > 0 {
            return fail(
                ErrorKind::BufferError,
                format!("memoryview has {exported} exported buffer(s)"),
            );
        }
        // SAFETY: as above.
        unsafe { released.with_mut(|r| *r = true) };
        match self.body() {
            // SAFETY: the view held one reference and one export on its exporter, of the same
            // owner, and gives both up here, once (it is now marked released).
            Body::View(view) => unsafe { release_root_export(self, view.exporter) },
            Body::ReceivedView(view) => {
                // SAFETY: as above.
                let pin = unsafe { view.unused_pin() };
                // Released in its owner now that no cell is open (INV-RELEASE-SUSPEND).
                drop(pin);
            }
            _ => unreachable!("a memoryview"),
        }
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
    let pin = unsafe { count_view(root.ptr(), false) };
    tok.counters().bump(Event::BuffersReleased);
    // Released in its owner now that no cell is open (INV-RELEASE-SUSPEND).
    drop(pin);
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
    let pin = unsafe { count_view(root, false) };
    owner.counters.bump(Event::BuffersReleased);
    // Released in its owner now that no cell is open (INV-RELEASE-SUSPEND).
    drop(pin);
}

#[cfg(test)]
mod tests {
    use crate::sync::Arc;
    use crate::Runtime;

    // INV-OWNER-OUTLIVES: pins out keep their owner's state alive through one count set
    // aside by the first, not one count each; the last one back gives it back.
    #[test]
    fn pins_out_anchor_their_owner_once() {
        let rt = Runtime::new();
        let s = rt.create().unwrap();
        let state = rt.lookup(s).unwrap();
        let counted = || Arc::strong_count(&state);
        rt.enter(s, |tok| {
            let data = tok.bytes(b"pinned");
            let before = counted();
            let first = data.get_buffer().unwrap().pin();
            assert_eq!(counted(), before + 1, "the first pin sets a count aside");
            let more: Vec<_> = (0..3).map(|_| data.get_buffer().unwrap().pin()).collect();
            assert_eq!(counted(), before + 1, "three more pins, no more counts");
            drop(more);
            assert_eq!(counted(), before + 1, "one pin is still out");
            drop(first);
            assert_eq!(counted(), before, "the last back gave it back");
            assert_eq!(state.pinned_exports.load(crate::sync::Ordering::Relaxed), 0);
        })
        .unwrap();
    }
}
