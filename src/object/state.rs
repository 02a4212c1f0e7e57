//! Typed accessors over an object's state: the one place the operations' cell accesses and
//! contained pointers are turned into safe calls.
//!
//! Two proofs are discharged here, once each:
//! - [`Obj::with_state`] opens a cell of this object's body. An `Obj` is bound to the token
//!   of the thread holding its owner (INV-OBJ-BOUND), so the access is the owner's
//!   (INV-OWN-LOCKED).
//! - [`Obj::held`] and [`Obj::taken`] turn pointers this object holds (items, keys, values,
//!   attributes, a class, a receiver) into handles: they are of the same owner, which the
//!   token holds (INV-OBJ-BOUND).
//!
//! The closures given to `with_state` take the cell's contents and give back plain data or
//! the pointers they took out; they run no user code, use no `Obj` and drop no object, so
//! nothing reaches the cell while it is open (the contract of `OwnerCell::with_mut`).
//! Handles to what they give back are made, and dropped, only after the cell is closed.
//! Every such closure is in this file, but for the plain resize of a `bytearray`'s bytes
//! that [`Obj::resize_bytearray`] is given.

use super::{type_error, Attrs, Body, ClassDef, Dict, HashKey, Obj, ObjPtr, OwnerCell};
use crate::error::{fail, ErrorKind, Result};
use crate::sync::DataByte;

impl<'t> Obj<'t> {
    /// Runs `f` on the cell `cell` picks out of this object's body; `None` if there is none.
    /// `cell` is a plain `fn`, so the cell can only come from this body; `f` keeps the
    /// contract in the module docs.
    fn with_state<T, R>(
        &self,
        cell: fn(&Body) -> Option<&OwnerCell<T>>,
        f: impl FnOnce(&mut T) -> R,
    ) -> Option<R> {
        debug_assert!(
            !self.is_frozen(),
            "a mutation of a frozen object reached its state (INV-FROZEN-IMMUTABLE)"
        );
        let cell = cell(self.body())?;
        // SAFETY: the cell is part of this object's body, and this handle's token proves
        // the thread holds the object's owner (INV-OBJ-BOUND, INV-OWN-LOCKED); the closures
        // of this file run no user code and drop no object (see the module docs).
        Some(unsafe { cell.with_mut(f) })
    }

    /// Runs `f` on a shared view of the cell `cell` picks out; `None` if there is none. For
    /// an owned object, as `with_state`; a frozen one's cells are never written again, so
    /// any interpreter may read them (INV-FROZEN-IMMUTABLE).
    fn read_state<T, R>(
        &self,
        cell: fn(&Body) -> Option<&OwnerCell<T>>,
        f: impl FnOnce(&T) -> R,
    ) -> Option<R> {
        let cell = cell(self.body())?;
        if self.is_frozen() {
            // SAFETY: the object is frozen: nothing writes its cells again.
            return Some(unsafe { cell.with_frozen(f) });
        }
        // SAFETY: as in `with_state`.
        Some(unsafe { cell.with(f) })
    }

    fn read_list<R>(&self, f: impl FnOnce(&Vec<ObjPtr>) -> R) -> Option<R> {
        self.read_state(list_cell, f)
    }

    fn read_dict<R>(&self, f: impl FnOnce(&Dict) -> R) -> Option<R> {
        self.read_state(dict_cell, f)
    }

    fn read_attrs<R>(&self, f: impl FnOnce(&Attrs) -> R) -> Option<R> {
        self.read_state(attrs_cell, f)
    }

    fn with_list<R>(&self, f: impl FnOnce(&mut Vec<ObjPtr>) -> R) -> Option<R> {
        self.with_state(list_cell, f)
    }

    fn with_dict<R>(&self, f: impl FnOnce(&mut Dict) -> R) -> Option<R> {
        self.with_state(dict_cell, f)
    }

    fn with_attrs<R>(&self, f: impl FnOnce(&mut Attrs) -> R) -> Option<R> {
        self.with_state(attrs_cell, f)
    }

    fn with_bytearray<R>(&self, f: impl FnOnce(&mut Vec<DataByte>) -> R) -> Option<R> {
        self.with_state(
            |body| match body {
                Body::ByteArray { data, .. } => Some(data),
                _ => None,
            },
            f,
        )
    }

    /// A handle to `ptr`, adding a strong reference.
    ///
    /// # Safety
    /// This object holds `ptr` (an item, a key, a value, an attribute, a class, a
    /// receiver), so it is alive and of this object's owner (INV-OBJ-BOUND).
    unsafe fn held(&self, ptr: ObjPtr) -> Obj<'t> {
        // SAFETY: forwarded contract; the token holds the owner.
        unsafe { Obj::from_borrowed_ptr(self.tok, ptr) }
    }

    /// A handle owning the strong reference `ptr`, taken out of this object's state.
    ///
    /// # Safety
    /// This object's state held the reference and gave it up to the caller
    /// (INV-OBJ-BOUND).
    unsafe fn taken(&self, ptr: ObjPtr) -> Obj<'t> {
        // SAFETY: forwarded contract; the object is of the owner the token holds.
        unsafe { Obj::from_owned_ptr(self.tok, ptr) }
    }

    /// An instance's class.
    pub(super) fn class_def(&self) -> Option<&ClassDef> {
        let Body::Instance { class, .. } = self.body() else {
            return None;
        };
        // SAFETY: the instance holds its class alive for as long as `self` is borrowed.
        match unsafe { class.body() } {
            Body::Class(def) => Some(def),
            _ => unreachable!("an instance's class is a class object"),
        }
    }

    /// A bound method's receiver.
    pub(super) fn receiver(&self) -> Option<Obj<'t>> {
        match self.body() {
            // SAFETY: the bound method holds its receiver (INV-OBJ-BOUND).
            Body::BoundMethod { receiver, .. } => Some(unsafe { self.held(*receiver) }),
            _ => None,
        }
    }

    /// The number of items of a list, entries of a dict or bytes of a bytearray, as its
    /// state holds them now; `None` for other objects.
    pub(super) fn state_len(&self) -> Option<usize> {
        match self.body() {
            Body::List(_) => self.read_list(|v| v.len()),
            Body::Dict(_) => self.read_dict(|d| d.len()),
            Body::ByteArray { .. } => self.read_state(bytearray_cell, |v| v.len()),
            _ => None,
        }
    }

    /// How many items a tuple or list has now.
    pub(super) fn items_len(&self) -> Option<usize> {
        match self.body() {
            Body::Tuple(items) => Some(items.len()),
            Body::List(_) => self.read_list(|v| v.len()),
            _ => None,
        }
    }

    /// A new reference to item `at` of a tuple or list, if it has one (the length is
    /// checked again here: code run since the caller read it may have changed a list).
    pub(super) fn item_at(&self, at: usize) -> Option<Obj<'t>> {
        let ptr = match self.body() {
            Body::Tuple(items) => items.get(at).copied(),
            Body::List(_) => self.read_list(|v| v.get(at).copied()).flatten(),
            _ => None,
        }?;
        // SAFETY: the sequence holds the item, and nothing ran between reading the pointer
        // and this incref (INV-OBJ-BOUND).
        Some(unsafe { self.held(ptr) })
    }

    /// New references to the items of a tuple or list, as they are now.
    pub(super) fn items_snapshot(&self) -> Result<Vec<Obj<'t>>> {
        let ptrs: Vec<ObjPtr> = match self.body() {
            Body::Tuple(items) => items.to_vec(),
            Body::List(_) => self.read_list(|v| v.clone()).expect("a list"),
            _ => return type_error(format!("'{}' object is not a sequence", self.type_name())),
        };
        // SAFETY: the sequence holds each item, and nothing runs between the copy of the
        // pointers and these increfs that could let go of one (INV-OBJ-BOUND).
        Ok(ptrs.into_iter().map(|p| unsafe { self.held(p) }).collect())
    }

    /// New references to a dict's (key, value) pairs, in insertion order.
    pub(super) fn dict_items(&self) -> Result<Vec<(Obj<'t>, Obj<'t>)>> {
        let Some(entries) = self.read_dict(|d| d.entries()) else {
            return type_error(format!("expected dict, got {}", self.type_name()));
        };
        let pair = |(k, v)| {
            // SAFETY: the dict holds each key and value, and nothing runs between the copy of
            // the pointers and these increfs that could let go of one (INV-OBJ-BOUND).
            let key = unsafe { self.held(k) };
            // SAFETY: as above.
            (key, unsafe { self.held(v) })
        };
        Ok(entries.into_iter().map(pair).collect())
    }

    /// `dict[key]`, or `None` if the key is absent.
    pub(super) fn dict_get(&self, key: &Obj<'t>) -> Result<Option<Obj<'t>>> {
        if !matches!(self.body(), Body::Dict(_)) {
            return type_error(format!("expected dict, got {}", self.type_name()));
        }
        let hash = key.hash_key()?;
        let found = self.read_dict(|d| d.get(&hash)).flatten();
        // SAFETY: the dict holds the value it returned (INV-OBJ-BOUND).
        Ok(found.map(|p| unsafe { self.held(p) }))
    }

    /// `dict[key] = value`, for a dict whose key hashes to `hash`.
    pub(super) fn dict_insert(&self, hash: HashKey, key: &Obj<'t>, value: &Obj<'t>) {
        let (k, v) = (key.clone().into_ptr(), value.clone().into_ptr());
        let released = self.with_dict(|d| d.insert(hash, k, v)).expect("a dict");
        for p in released {
            // SAFETY: the dict gave up these references (INV-OBJ-BOUND).
            drop(unsafe { self.taken(p) });
        }
    }

    /// `del dict[key]`, for a dict and a key hashing to `hash`; false if it was absent.
    pub(super) fn dict_remove(&self, hash: &HashKey) -> bool {
        let Some((k, v)) = self.with_dict(|d| d.remove(hash)).expect("a dict") else {
            return false;
        };
        // SAFETY: the dict gave up its reference to the key (INV-OBJ-BOUND).
        drop(unsafe { self.taken(k) });
        // SAFETY: and to the value.
        drop(unsafe { self.taken(v) });
        true
    }

    /// `list[at] = value`, `at` in range.
    pub(super) fn list_replace(&self, at: usize, value: &Obj<'t>) {
        let new = value.clone().into_ptr();
        let old = self.with_list(|v| std::mem::replace(&mut v[at], new));
        // SAFETY: the list gave up its reference to the old item (INV-OBJ-BOUND).
        drop(unsafe { self.taken(old.expect("a list")) });
    }

    /// `del list[at]`, `at` in range.
    pub(super) fn list_remove(&self, at: usize) {
        let old = self.with_list(|v| v.remove(at)).expect("a list");
        // SAFETY: the list gave up its reference to the item (INV-OBJ-BOUND).
        drop(unsafe { self.taken(old) });
    }

    /// `list.append(value)`.
    pub(super) fn list_push(&self, value: &Obj<'t>) {
        let new = value.clone().into_ptr();
        self.with_list(|v| v.push(new)).expect("a list");
    }

    /// `list.pop()`: the last item, or `None` for an empty list.
    pub(super) fn list_pop(&self) -> Option<Obj<'t>> {
        let popped = self.with_list(Vec::pop).expect("a list");
        // SAFETY: the list gave up its reference to the item (INV-OBJ-BOUND).
        popped.map(|p| unsafe { self.taken(p) })
    }

    /// An instance's own attribute `name`.
    pub(super) fn attr(&self, name: &str) -> Option<Obj<'t>> {
        let value = self.read_attrs(|a| a.get(name)).flatten();
        // SAFETY: the instance holds its attributes (INV-OBJ-BOUND).
        value.map(|p| unsafe { self.held(p) })
    }

    /// Sets an instance's attribute; false if this is not an instance.
    pub(super) fn set_attr(&self, name: &str, value: &Obj<'t>) -> bool {
        if !matches!(self.body(), Body::Instance { .. }) {
            return false;
        }
        let new = value.clone().into_ptr();
        if let Some(old) = self.with_attrs(|a| a.set(name, new)).flatten() {
            // SAFETY: the instance gave up its reference to the old value (INV-OBJ-BOUND).
            drop(unsafe { self.taken(old) });
        }
        true
    }

    /// Removes an instance's attribute; false if there was none.
    pub(super) fn remove_attr(&self, name: &str) -> bool {
        let Some(old) = self.with_attrs(|a| a.remove(name)).flatten() else {
            return false;
        };
        // SAFETY: the instance gave up its reference to the value (INV-OBJ-BOUND).
        drop(unsafe { self.taken(old) });
        true
    }

    /// The names of an instance's attributes, in the order they were first set; empty for
    /// other objects.
    pub fn attr_names(&self) -> Vec<String> {
        self.read_attrs(|a| a.names()).unwrap_or_default()
    }

    /// Changes a `bytearray`'s storage with `change`, which only resizes it; fails with
    /// `BufferError` while buffers are exported.
    pub(super) fn resize_bytearray(&self, change: impl FnOnce(&mut Vec<DataByte>)) -> Result<()> {
        self.refuse_if_frozen("resize")?;
        let Some(exported) = self.with_state(
            |body| match body {
                Body::ByteArray { exports, .. } => Some(exports),
                _ => None,
            },
            |n| *n,
        ) else {
            return type_error(format!("expected bytearray, got {}", self.type_name()));
        };
        if exported > 0 {
            return fail(
                ErrorKind::BufferError,
                "Existing exports of data: object cannot be re-sized",
            );
        }
        // No export is live, so no buffer points into the storage that the change may
        // reallocate (INV-BUF-NO-RESIZE).
        self.with_bytearray(change);
        Ok(())
    }
}

fn list_cell(body: &Body) -> Option<&OwnerCell<Vec<ObjPtr>>> {
    match body {
        Body::List(items) => Some(items),
        _ => None,
    }
}

fn dict_cell(body: &Body) -> Option<&OwnerCell<Dict>> {
    match body {
        Body::Dict(dict) => Some(dict),
        _ => None,
    }
}

fn attrs_cell(body: &Body) -> Option<&OwnerCell<Attrs>> {
    match body {
        Body::Instance { attrs, .. } => Some(attrs),
        _ => None,
    }
}

fn bytearray_cell(body: &Body) -> Option<&OwnerCell<Vec<DataByte>>> {
    match body {
        Body::ByteArray { data, .. } => Some(data),
        _ => None,
    }
}
