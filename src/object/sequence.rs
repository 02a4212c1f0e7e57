//! Sequences and mappings: length, snapshots of items, iteration, item access and
//! assignment, slices, and resizing a `bytearray`.
//!
//! Every operation that reads a container's contents first takes its own references to the
//! items it needs ("snapshot"), and only then runs code that may re-enter the container
//! (user methods, equality of items, drops), so no `OwnerCell` borrow is ever open across
//! user code (the contract of `OwnerCell::with_mut`).

use super::{type_error, Body, Forward, Obj, ObjKind};
use crate::error::{fail, Error, ErrorKind, Result};
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
        if let Some(n) = self.state_len() {
            return Ok(n);
        }
        Ok(match self.body() {
            Body::Str(s) => s.chars().count(),
            Body::Bytes { data, .. } => data.len(),
            Body::Tuple(items) => items.len(),
            Body::View(_) | Body::ReceivedView(_) => self.view_len()?,
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
            Body::Bytes { .. } | Body::ByteArray { .. } | Body::View(_) | Body::ReceivedView(_) => {
                Ok(self
                    .to_bytes()?
                    .into_iter()
                    .map(|b| tok.int(i64::from(b)))
                    .collect())
            }
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
            Body::Tuple(_) | Body::List(_) => {
                let what = if self.kind() == ObjKind::Tuple {
                    "tuple"
                } else {
                    "list"
                };
                let len = self.items_len().expect("a tuple or list");
                let at = index(len, what)?;
                // One reference, to the one item (the index may have run code that shrank a
                // list: checked again).
                self.item_at(at).ok_or_else(|| {
                    Error::new(ErrorKind::IndexError, format!("{what} index out of range"))
                })
            }
            Body::Str(s) => {
                let at = index(s.chars().count(), "string")?;
                let c = s.chars().nth(at).expect("index checked");
                Ok(tok.str(c.encode_utf8(&mut [0; 4])))
            }
            Body::Bytes { .. } | Body::ByteArray { .. } | Body::View(_) | Body::ReceivedView(_) => {
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

    /// `x[key] = value`: a list's item, a dict's key, or one byte of a `bytearray` or a
    /// writable `memoryview` (a received view included: the byte is written in the sender's
    /// memory, which it shares), `value` being an int in `range(0, 256)`. A frozen object
    /// refuses; a proxy forwards the assignment to its target.
    pub fn setitem(&self, key: &Obj<'t>, value: &Obj<'t>) -> Result<()> {
        if let Some(r) = self.forwarded(Forward::SetItem, &[key.clone(), value.clone()]) {
            return r.map(drop);
        }
        if let Some(result) = self.call_special("__setitem__", &[key.clone(), value.clone()]) {
            return result.map(drop);
        }
        self.refuse_if_frozen("assign an item of")?;
        match self.body() {
            Body::List(_) => {
                let len = self.state_len().expect("a list");
                let at = normalize_index(key.as_int()?, len, "list assignment")?;
                self.list_replace(at, value);
                Ok(())
            }
            Body::Dict(_) => {
                self.dict_insert(key.hash_key()?, key, value);
                Ok(())
            }
            Body::ByteArray { .. } | Body::View(_) | Body::ReceivedView(_) => {
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
        self.refuse_if_frozen("delete an item of")?;
        match self.body() {
            Body::List(_) => {
                let len = self.state_len().expect("a list");
                let at = normalize_index(key.as_int()?, len, "list assignment")?;
                self.list_remove(at);
                Ok(())
            }
            Body::Dict(_) => {
                if self.dict_remove(&key.hash_key()?) {
                    Ok(())
                } else {
                    fail(ErrorKind::KeyError, key.repr().unwrap_or_default())
                }
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
                let data = self.to_bytes()?;
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
            Body::View(_) | Body::ReceivedView(_) => self.view_slice(start, end),
            _ => type_error(format!("'{}' object is not sliceable", self.type_name())),
        }
    }

    /// `bytearray.extend(data)`: fails with `BufferError` while buffers are exported.
    pub fn bytearray_extend(&self, extra: &[u8]) -> Result<()> {
        self.resize_bytearray(|v| v.extend(extra.iter().map(|&b| DataByte::new(b))))
    }

    /// Resizes a `bytearray` to `len` bytes (new bytes are zero); fails with `BufferError`
    /// while buffers are exported.
    pub fn bytearray_resize(&self, len: usize) -> Result<()> {
        self.resize_bytearray(|v| v.resize_with(len, || DataByte::new(0)))
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
