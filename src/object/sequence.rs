//! Sequences and mappings: length, snapshots of items, iteration, item access and
//! assignment, slices, and resizing a `bytearray`.
//!
//! Every operation that reads a container's contents first takes its own references to the
//! items it needs ("snapshot"), and only then runs code that may re-enter the container
//! (user methods, equality of items, drops), so no `OwnerCell` borrow is ever open across
//! user code (the contract of `OwnerCell::with_mut`).

use super::{type_error, Body, Dict, Obj, ObjKind, ObjPtr};
use crate::error::{fail, Error, ErrorKind, Result};
use crate::proxy::Forward;
use crate::sync::DataByte;

impl<'t> Obj<'t> {
    /// `len(x)`.
    pub fn len(&self) -> Result<usize> {
        if let Some(r) = self.forwarded(Forward::Len, &[]) {
            return Ok(r?.as_int()? as usize);
        }
        if let Some(result) = self.call_special("__len__", &[]) {
            let n = result?.as_int()?;
            return usize::try_from(n)
                .map_err(|_| Error::new(ErrorKind::ValueError, "__len__() should return >= 0"));
        }
        Ok(match self.body() {
            Body::Str(s) => s.chars().count(),
            Body::Bytes { data, .. } => data.len(),
            // SAFETY: this handle's token proves the thread holds the owner (INV-OBJ-BOUND).
            Body::ByteArray { data, .. } => unsafe { data.with(Vec::len) },
            Body::Tuple(items) => items.len(),
            // SAFETY: as above.
            Body::List(items) => unsafe { items.with(Vec::len) },
            // SAFETY: as above.
            Body::Dict(dict) => unsafe { dict.with(Dict::len) },
            Body::View(view) => {
                self.check_view_live()?;
                view.len
            }
            _ => {
                return type_error(format!(
                    "object of type '{}' has no len()",
                    self.type_name()
                ))
            }
        })
    }

    /// Whether `len(x) == 0`.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// New references to the items of a tuple or list, as they are now.
    pub(super) fn items_snapshot(&self) -> Result<Vec<Obj<'t>>> {
        let ptrs: Vec<ObjPtr> = match self.body() {
            Body::Tuple(items) => items.to_vec(),
            // SAFETY: this handle's token proves the thread holds the owner (INV-OBJ-BOUND);
            // the closure only copies pointers.
            Body::List(items) => unsafe { items.with(Vec::clone) },
            _ => return type_error(format!("'{}' object is not a sequence", self.type_name())),
        };
        // SAFETY: the sequence holds each item, and nothing runs between the copy of the
        // pointers and these increfs that could let go of one (INV-OBJ-BOUND).
        Ok(ptrs.into_iter().map(|p| unsafe { self.bound(p) }).collect())
    }

    /// New references to a dict's (key, value) pairs, in insertion order.
    pub(super) fn dict_items(&self) -> Result<Vec<(Obj<'t>, Obj<'t>)>> {
        let Body::Dict(dict) = self.body() else {
            return type_error(format!("expected dict, got {}", self.type_name()));
        };
        // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND); the closure
        // only copies pointers.
        let entries = unsafe { dict.with(Dict::entries) };
        Ok(entries
            .into_iter()
            .map(|(k, v)| {
                // SAFETY: the dict holds each key and value, and nothing runs between the
                // copy of the pointers and these increfs that could let go of one
                // (INV-OBJ-BOUND).
                let key = unsafe { self.bound(k) };
                // SAFETY: as above.
                (key, unsafe { self.bound(v) })
            })
            .collect())
    }

    pub(super) fn dict_get(&self, key: &Obj<'t>) -> Result<Option<Obj<'t>>> {
        let Body::Dict(dict) = self.body() else {
            return type_error(format!("expected dict, got {}", self.type_name()));
        };
        let hash = key.hash_key()?;
        // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
        let found = unsafe { dict.with(|d| d.get(&hash)) };
        // SAFETY: the dict holds the value it returned (INV-OBJ-BOUND).
        Ok(found.map(|p| unsafe { self.bound(p) }))
    }

    /// The items `for x in obj` would give, taken now: a list's or tuple's items, a dict's
    /// keys, a string's characters, a bytes-like object's byte values, or what an instance's
    /// `__iter__` returns (which must itself be iterable).
    pub fn iterate(&self) -> Result<Vec<Obj<'t>>> {
        if let Some(r) = self.forwarded(Forward::Iterate, &[]) {
            return r?.iterate();
        }
        if let Some(result) = self.call_special("__iter__", &[]) {
            return result?.iterate();
        }
        let tok = self.tok;
        match self.body() {
            Body::Tuple(_) | Body::List(_) => self.items_snapshot(),
            Body::Dict(_) => Ok(self.dict_items()?.into_iter().map(|(k, _)| k).collect()),
            Body::Str(s) => Ok(s
                .chars()
                .map(|c| tok.str(c.encode_utf8(&mut [0; 4])))
                .collect()),
            Body::Bytes { .. } | Body::ByteArray { .. } | Body::View(_) => Ok(self
                .as_bytes()?
                .into_iter()
                .map(|b| tok.int(i64::from(b)))
                .collect()),
            _ => type_error(format!("'{}' object is not iterable", self.type_name())),
        }
    }

    /// `x[key]`.
    pub fn getitem(&self, key: &Obj<'t>) -> Result<Obj<'t>> {
        if let Some(r) = self.forwarded(Forward::GetItem, std::slice::from_ref(key)) {
            return r;
        }
        if let Some(result) = self.call_special("__getitem__", std::slice::from_ref(key)) {
            return result;
        }
        let tok = self.tok;
        let index = |len: usize, what: &str| -> Result<usize> {
            let i = key.as_int().map_err(|_| {
                Error::new(
                    ErrorKind::TypeError,
                    format!("{what} indices must be integers, not {}", key.type_name()),
                )
            })?;
            normalize_index(i, len, what)
        };
        match self.body() {
            Body::Tuple(items) => {
                let item = items[index(items.len(), "tuple")?];
                // SAFETY: the tuple holds its items (INV-OBJ-BOUND).
                Ok(unsafe { self.bound(item) })
            }
            Body::List(_) => {
                let items = self.items_snapshot()?;
                let at = index(items.len(), "list")?;
                Ok(items[at].clone())
            }
            Body::Str(s) => {
                let at = index(s.chars().count(), "string")?;
                let c = s.chars().nth(at).expect("index checked");
                Ok(tok.str(c.encode_utf8(&mut [0; 4])))
            }
            Body::Bytes { .. } | Body::ByteArray { .. } | Body::View(_) => {
                let buffer = self.get_buffer()?;
                let at = index(buffer.len(), &self.type_name())?;
                Ok(tok.int(i64::from(buffer.get(at).expect("index checked"))))
            }
            Body::Dict(_) => self
                .dict_get(key)?
                .ok_or_else(|| Error::new(ErrorKind::KeyError, key.repr().unwrap_or_default())),
            _ => type_error(format!(
                "'{}' object is not subscriptable",
                self.type_name()
            )),
        }
    }

    /// `x[key] = value`.
    pub fn setitem(&self, key: &Obj<'t>, value: &Obj<'t>) -> Result<()> {
        if let Some(r) = self.forwarded(Forward::SetItem, &[key.clone(), value.clone()]) {
            return r.map(drop);
        }
        if let Some(result) = self.call_special("__setitem__", &[key.clone(), value.clone()]) {
            return result.map(drop);
        }
        match self.body() {
            Body::List(items) => {
                // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
                let len = unsafe { items.with(Vec::len) };
                let at = normalize_index(key.as_int()?, len, "list assignment")?;
                let new = value.clone().into_ptr();
                // SAFETY: as above; the closure only swaps a pointer.
                let old = unsafe { items.with_mut(|v| std::mem::replace(&mut v[at], new)) };
                // SAFETY: the cell held this strong reference to an object of the same owner, which
                // the token holds; it is handed over here (INV-OBJ-BOUND).
                drop(unsafe { Obj::from_owned_ptr(self.tok, old) });
                Ok(())
            }
            Body::Dict(dict) => {
                let hash = key.hash_key()?;
                let (k, v) = (key.clone().into_ptr(), value.clone().into_ptr());
                // SAFETY: as above; the closure only moves pointers.
                let released = unsafe { dict.with_mut(|d| d.insert(hash, k, v)) };
                for p in released {
                    // SAFETY: the cell held this strong reference to an object of the same owner, which
                    // the token holds; it is handed over here (INV-OBJ-BOUND).
                    drop(unsafe { Obj::from_owned_ptr(self.tok, p) });
                }
                Ok(())
            }
            Body::ByteArray { .. } | Body::View(_) => {
                let byte = u8::try_from(value.as_int()?).map_err(|_| {
                    Error::new(ErrorKind::ValueError, "byte must be in range(0, 256)")
                })?;
                let buffer = self.get_buffer()?;
                let at = normalize_index(key.as_int()?, buffer.len(), &self.type_name())?;
                buffer.set(at, byte)
            }
            _ => type_error(format!(
                "'{}' object does not support item assignment",
                self.type_name()
            )),
        }
    }

    /// `del x[key]` for lists and dicts.
    pub fn delitem(&self, key: &Obj<'t>) -> Result<()> {
        if let Some(r) = self.forwarded(Forward::DelItem, std::slice::from_ref(key)) {
            return r.map(drop);
        }
        match self.body() {
            Body::List(items) => {
                // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
                let len = unsafe { items.with(Vec::len) };
                let at = normalize_index(key.as_int()?, len, "list assignment")?;
                // SAFETY: as above; the closure only moves a pointer.
                let old = unsafe { items.with_mut(|v| v.remove(at)) };
                // SAFETY: the cell held this strong reference to an object of the same owner, which
                // the token holds; it is handed over here (INV-OBJ-BOUND).
                drop(unsafe { Obj::from_owned_ptr(self.tok, old) });
                Ok(())
            }
            Body::Dict(dict) => {
                let hash = key.hash_key()?;
                // SAFETY: as above.
                let removed = unsafe { dict.with_mut(|d| d.remove(&hash)) };
                let (k, v) = removed.ok_or_else(|| {
                    Error::new(ErrorKind::KeyError, key.repr().unwrap_or_default())
                })?;
                // SAFETY: the cell held this strong reference to an object of the same owner, which
                // the token holds; it is handed over here (INV-OBJ-BOUND).
                drop(unsafe { Obj::from_owned_ptr(self.tok, k) });
                // SAFETY: the cell held this strong reference to an object of the same owner, which
                // the token holds; it is handed over here (INV-OBJ-BOUND).
                drop(unsafe { Obj::from_owned_ptr(self.tok, v) });
                Ok(())
            }
            _ => type_error(format!(
                "'{}' object does not support item deletion",
                self.type_name()
            )),
        }
    }

    /// `x[start:end]` for str, bytes, bytearray, tuple, list (copies) and memoryview (a new
    /// view onto the same bytes).
    pub fn slice(&self, start: i64, end: i64) -> Result<Obj<'t>> {
        if let Some(r) = self.forwarded(Forward::Slice { start, end }, &[]) {
            return r;
        }
        let tok = self.tok;
        match self.body() {
            Body::Str(s) => {
                let chars: Vec<char> = s.chars().collect();
                let (a, b) = clamp_range(start, end, chars.len());
                Ok(tok.str(&chars[a..b].iter().collect::<String>()))
            }
            Body::Bytes { data, .. } => {
                let (a, b) = clamp_range(start, end, data.len());
                Ok(tok.bytes(&data[a..b]))
            }
            Body::ByteArray { .. } => {
                let data = self.as_bytes()?;
                let (a, b) = clamp_range(start, end, data.len());
                Ok(tok.bytearray(&data[a..b]))
            }
            Body::Tuple(_) | Body::List(_) => {
                let items = self.items_snapshot()?;
                let (a, b) = clamp_range(start, end, items.len());
                Ok(if self.kind() == ObjKind::Tuple {
                    tok.tuple(&items[a..b])
                } else {
                    tok.list(&items[a..b])
                })
            }
            Body::View(_) => self.view_slice(start, end),
            _ => type_error(format!("'{}' object is not sliceable", self.type_name())),
        }
    }

    /// `bytearray.extend(data)`: fails with `BufferError` while buffers are exported.
    pub fn bytearray_extend(&self, extra: &[u8]) -> Result<()> {
        self.bytearray_resize_with(|v| v.extend(extra.iter().map(|&b| DataByte::new(b))))
    }

    /// Resizes a `bytearray` to `len` bytes (new bytes are zero); fails with `BufferError`
    /// while buffers are exported.
    pub fn bytearray_resize(&self, len: usize) -> Result<()> {
        self.bytearray_resize_with(|v| v.resize_with(len, || DataByte::new(0)))
    }

    fn bytearray_resize_with(&self, change: impl FnOnce(&mut Vec<DataByte>)) -> Result<()> {
        let Body::ByteArray { data, exports } = self.body() else {
            return type_error(format!("expected bytearray, got {}", self.type_name()));
        };
        // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
        if unsafe { exports.with(|n| *n) } > 0 {
            return fail(
                ErrorKind::BufferError,
                "Existing exports of data: object cannot be re-sized",
            );
        }
        // SAFETY: as above; no export is live, so no buffer points into the storage that the
        // change may reallocate (INV-BUF-NO-RESIZE).
        unsafe { data.with_mut(change) };
        Ok(())
    }
}

/// Python's index normalisation: negative indices count from the end.
fn normalize_index(index: i64, len: usize, what: &str) -> Result<usize> {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let at = if index < 0 { index + len_i } else { index };
    if (0..len_i).contains(&at) {
        Ok(at as usize)
    } else {
        fail(ErrorKind::IndexError, format!("{what} index out of range"))
    }
}

/// Python's slice clamping for `[start:end]` with a step of one.
fn clamp_range(start: i64, end: i64, len: usize) -> (usize, usize) {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let fix = |i: i64| {
        let i = if i < 0 { i + len_i } else { i };
        i.clamp(0, len_i) as usize
    };
    let (s, e) = (fix(start), fix(end));
    (s, e.max(s))
}

#[cfg(test)]
mod tests {
    use super::{clamp_range, normalize_index};

    #[test]
    fn indices_and_ranges_follow_python() {
        assert_eq!(normalize_index(-1, 3, "list").unwrap(), 2);
        assert!(normalize_index(3, 3, "list").is_err());
        assert!(normalize_index(-4, 3, "list").is_err());
        assert_eq!(clamp_range(-2, 100, 5), (3, 5));
        assert_eq!(clamp_range(4, 1, 5), (4, 4));
    }
}
