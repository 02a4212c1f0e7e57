//! The Python-level operations: constructors on [`Token`], and attribute access, calls,
//! repr/str, equality and hashing, length, items, iteration and mutation on [`Obj`].
//!
//! Every operation that reads a container's contents first takes its own references to the
//! items it needs ("snapshot"), and only then runs code that may re-enter the container
//! (user methods, equality of items, drops), so no `OwnerCell` borrow is ever open across
//! user code (the contract of `OwnerCell::with_mut`).

use std::hash::{DefaultHasher, Hash, Hasher};

use super::{Attrs, Body, ClassDef, Dict, HashKey, Obj, ObjKind, ObjPtr, OwnerCell};
use crate::error::{fail, Error, ErrorKind, Result};
use crate::proxy::Value;
use crate::sync::DataByte;
use crate::thread_state::Token;

/// Constructors: each returns a new object owned by this token's interpreter.
impl Token<'_> {
    /// `None`.
    pub fn none(&self) -> Obj<'_> {
        self.alloc(Body::None)
    }

    /// A `bool`.
    pub fn bool(&self, value: bool) -> Obj<'_> {
        self.alloc(Body::Bool(value))
    }

    /// An `int`.
    pub fn int(&self, value: i64) -> Obj<'_> {
        self.alloc(Body::Int(value))
    }

    /// A `float`.
    pub fn float(&self, value: f64) -> Obj<'_> {
        self.alloc(Body::Float(value))
    }

    /// A `str`.
    pub fn str(&self, value: &str) -> Obj<'_> {
        self.alloc(Body::Str(value.into()))
    }

    /// A `bytes` holding a copy of `value`.
    pub fn bytes(&self, value: &[u8]) -> Obj<'_> {
        self.alloc(Body::Bytes {
            data: value.into(),
            exports: OwnerCell::new(0),
        })
    }

    /// A `bytearray` holding a copy of `value`.
    pub fn bytearray(&self, value: &[u8]) -> Obj<'_> {
        self.alloc(Body::ByteArray {
            data: OwnerCell::new(value.iter().map(|&b| DataByte::new(b)).collect()),
            exports: OwnerCell::new(0),
        })
    }

    /// A `tuple` of `items` (each gains a reference).
    pub fn tuple(&self, items: &[Obj<'_>]) -> Obj<'_> {
        let items = items.iter().map(|item| self.adopt(item)).collect();
        self.alloc(Body::Tuple(items))
    }

    /// A `list` of `items` (each gains a reference).
    pub fn list(&self, items: &[Obj<'_>]) -> Obj<'_> {
        let items = items.iter().map(|item| self.adopt(item)).collect();
        self.alloc(Body::List(OwnerCell::new(items)))
    }

    /// An empty `dict`.
    pub fn dict(&self) -> Obj<'_> {
        self.alloc(Body::Dict(OwnerCell::new(Dict::default())))
    }

    /// A class object for `def`; calling it makes instances.
    pub fn class(&self, def: ClassDef) -> Obj<'_> {
        self.alloc(Body::Class(Box::new(def)))
    }

    /// A new strong reference to `item`, as a pointer for a container to hold. `item` must
    /// belong to this interpreter, which its token proves.
    fn adopt(&self, item: &Obj<'_>) -> ObjPtr {
        item.clone().into_ptr()
    }
}

fn type_error<T>(message: impl Into<String>) -> Result<T> {
    fail(ErrorKind::TypeError, message)
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

fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn repr_bytes(data: &[u8]) -> String {
    let quote = if data.contains(&b'\'') && !data.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::from("b");
    out.push(quote as char);
    for &b in data {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b if b == quote => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote as char);
    out
}

fn repr_float(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.into()
    } else if value == 0.0 || (1e-4..1e16).contains(&value.abs()) {
        format!("{value:?}")
    } else {
        // Python writes the exponent with a sign and at least two digits: 1e+16, 1e-05.
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').expect("`{:e}` has an exponent");
        let exponent: i32 = exponent.parse().expect("`{:e}` exponents are integers");
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

impl<'t> Obj<'t> {
    /// The type's name as Python shows it: `"int"`, `"list"`, or the class name.
    pub fn type_name(&self) -> String {
        match self.body() {
            Body::None => "NoneType".into(),
            Body::Bool(_) => "bool".into(),
            Body::Int(_) => "int".into(),
            Body::Float(_) => "float".into(),
            Body::Str(_) => "str".into(),
            Body::Bytes { .. } => "bytes".into(),
            Body::ByteArray { .. } => "bytearray".into(),
            Body::Tuple(_) => "tuple".into(),
            Body::List(_) => "list".into(),
            Body::Dict(_) => "dict".into(),
            Body::Class(_) => "type".into(),
            // SAFETY: the instance holds its class alive.
            Body::Instance { class, .. } => match unsafe { class.body() } {
                Body::Class(def) => def.name().into(),
                _ => unreachable!("an instance's class is a class object"),
            },
            Body::BoundMethod { .. } => "method".into(),
            Body::View(_) => "memoryview".into(),
            Body::ReceivedBuffer { .. } => "xinterp.ReceivedBuffer".into(),
            Body::Unbound => "xinterp.Unbound".into(),
            Body::Proxy(_) => "xinterp.RemoteProxy".into(),
        }
    }

    /// A handle to `ptr`, adding a strong reference.
    ///
    /// # Safety
    /// `ptr` is held by this object (an item, a key, a value, an attribute, a class) and so
    /// is alive and has this object's owner, which the token holds (INV-OBJ-BOUND).
    unsafe fn bound(&self, ptr: ObjPtr) -> Obj<'t> {
        // SAFETY: forwarded contract.
        unsafe { Obj::from_borrowed_ptr(self.tok, ptr) }
    }

    fn class_def(&self) -> Option<&ClassDef> {
        match self.body() {
            // SAFETY: the instance holds its class alive for as long as `self` is borrowed.
            Body::Instance { class, .. } => match unsafe { class.body() } {
                Body::Class(def) => Some(def),
                _ => unreachable!("an instance's class is a class object"),
            },
            _ => None,
        }
    }

    /// Calls special method `name` if this is an instance whose class defines it.
    fn call_special(&self, name: &str, args: &[Obj<'t>]) -> Option<Result<Obj<'t>>> {
        let method = self.class_def()?.find(name)?;
        Some(method(self, args))
    }

    // ----- extraction -----

    /// The value of a `bool`.
    pub fn as_bool(&self) -> Result<bool> {
        match self.body() {
            Body::Bool(b) => Ok(*b),
            _ => type_error(format!("expected bool, got {}", self.type_name())),
        }
    }

    /// The value of an `int` (or `bool`).
    pub fn as_int(&self) -> Result<i64> {
        match self.body() {
            Body::Int(i) => Ok(*i),
            Body::Bool(b) => Ok(i64::from(*b)),
            _ => type_error(format!("expected int, got {}", self.type_name())),
        }
    }

    /// The value of a `float`, `int` or `bool` as a float.
    pub fn as_float(&self) -> Result<f64> {
        match self.body() {
            Body::Float(f) => Ok(*f),
            Body::Int(i) => Ok(*i as f64),
            Body::Bool(b) => Ok(f64::from(u8::from(*b))),
            _ => type_error(format!("expected float, got {}", self.type_name())),
        }
    }

    /// The text of a `str`.
    pub fn as_str(&self) -> Result<String> {
        match self.body() {
            Body::Str(s) => Ok(s.to_string()),
            _ => type_error(format!("expected str, got {}", self.type_name())),
        }
    }

    /// A copy of the bytes of a `bytes`, `bytearray` or `memoryview`.
    pub fn as_bytes(&self) -> Result<Vec<u8>> {
        if let Some(p) = self.as_proxy() {
            let copy = self.forward(
                p,
                &[],
                Box::new(|t, _| Ok(Value::Bytes(t.as_bytes()?.into()))),
            )?;
            return copy.as_bytes();
        }
        match self.body() {
            Body::Bytes { data, .. } => Ok(data.to_vec()),
            Body::ByteArray { .. } | Body::View(_) => Ok(self.get_buffer()?.to_vec()),
            _ => type_error(format!(
                "a bytes-like object is required, not '{}'",
                self.type_name()
            )),
        }
    }

    /// Truthiness, as `bool(x)`.
    pub fn is_true(&self) -> Result<bool> {
        if let Some(p) = self.as_proxy() {
            return self
                .forward(p, &[], Box::new(|t, _| Ok(Value::Bool(t.is_true()?))))?
                .as_bool();
        }
        if let Some(result) = self.call_special("__bool__", &[]) {
            return result?.as_bool();
        }
        Ok(match self.body() {
            Body::None => false,
            Body::Bool(b) => *b,
            Body::Int(i) => *i != 0,
            Body::Float(f) => *f != 0.0,
            Body::Str(_)
            | Body::Bytes { .. }
            | Body::ByteArray { .. }
            | Body::Tuple(_)
            | Body::List(_)
            | Body::Dict(_)
            | Body::View(_) => self.len()? != 0,
            Body::Instance { .. } => match self.call_special("__len__", &[]) {
                Some(n) => n?.as_int()? != 0,
                None => true,
            },
            Body::Class(_)
            | Body::BoundMethod { .. }
            | Body::ReceivedBuffer { .. }
            | Body::Proxy(_) => true,
            Body::Unbound => false,
        })
    }

    // ----- repr, str -----

    /// `repr(x)`.
    pub fn repr(&self) -> Result<String> {
        if let Some(p) = self.as_proxy() {
            return self
                .forward(p, &[], Box::new(|t, _| Ok(Value::Str(t.repr()?.into()))))?
                .as_str();
        }
        if let Some(result) = self.call_special("__repr__", &[]) {
            return result?.as_str();
        }
        Ok(match self.body() {
            Body::None => "None".into(),
            Body::Bool(b) => if *b { "True" } else { "False" }.into(),
            Body::Int(i) => i.to_string(),
            Body::Float(f) => repr_float(*f),
            Body::Str(s) => repr_str(s),
            Body::Bytes { data, .. } => repr_bytes(data),
            Body::ByteArray { .. } => format!("bytearray({})", repr_bytes(&self.as_bytes()?)),
            Body::Tuple(_) => {
                let items = self.items_snapshot()?;
                let parts = items.iter().map(Obj::repr).collect::<Result<Vec<_>>>()?;
                if parts.len() == 1 {
                    format!("({},)", parts[0])
                } else {
                    format!("({})", parts.join(", "))
                }
            }
            Body::List(_) => {
                let items = self.items_snapshot()?;
                let parts = items.iter().map(Obj::repr).collect::<Result<Vec<_>>>()?;
                format!("[{}]", parts.join(", "))
            }
            Body::Dict(_) => {
                let parts = self
                    .dict_items()?
                    .iter()
                    .map(|(k, v)| Ok(format!("{}: {}", k.repr()?, v.repr()?)))
                    .collect::<Result<Vec<_>>>()?;
                format!("{{{}}}", parts.join(", "))
            }
            Body::Class(def) => format!("<class '{}'>", def.name()),
            Body::Instance { .. } => {
                format!("<{} object at {:#x}>", self.type_name(), self.id())
            }
            Body::BoundMethod { name, receiver, .. } => {
                format!(
                    "<bound method {} of {}>",
                    name,
                    // SAFETY: the bound method holds its receiver (INV-OBJ-BOUND).
                    unsafe { self.bound(*receiver) }.repr()?
                )
            }
            Body::View(_) => format!("<memory at {:#x}>", self.id()),
            Body::ReceivedBuffer { export, .. } => format!(
                "<received buffer of {} bytes from interpreter {}>",
                export.len(),
                export.owner_id()
            ),
            Body::Unbound => "<unbound item>".into(),
            Body::Proxy(_) => unreachable!("forwarded above"),
        })
    }

    /// `str(x)`.
    pub fn str(&self) -> Result<String> {
        if let Some(p) = self.as_proxy() {
            return self
                .forward(p, &[], Box::new(|t, _| Ok(Value::Str(t.str()?.into()))))?
                .as_str();
        }
        if let Some(result) = self.call_special("__str__", &[]) {
            return result?.as_str();
        }
        match self.body() {
            Body::Str(s) => Ok(s.to_string()),
            _ => self.repr(),
        }
    }

    // ----- equality and hashing -----

    /// `a == b`. Numbers compare by value across `bool`, `int` and `float`; bytes-like
    /// objects by content; containers item by item; instances through `__eq__` (this one's,
    /// else the other's), else by identity.
    pub fn eq(&self, other: &Obj<'t>) -> Result<bool> {
        // A proxy compares in its origin, where `other` arrives through the membrane (a proxy
        // of the same object unwraps there to the object itself). Hash is forwarded alike,
        // so the two stay consistent.
        if let Some(p) = self.as_proxy() {
            return self
                .forward(
                    p,
                    std::slice::from_ref(other),
                    Box::new(|t, a| Ok(Value::Bool(t.eq(&a[0])?))),
                )?
                .as_bool();
        }
        if other.as_proxy().is_some() {
            return other.eq(self);
        }
        if let Some(result) = self.call_special("__eq__", std::slice::from_ref(other)) {
            return result?.is_true();
        }
        if let Some(result) = other.call_special("__eq__", std::slice::from_ref(self)) {
            return result?.is_true();
        }
        use Body::*;
        Ok(match (self.body(), other.body()) {
            (None, None) => true,
            (Bool(_) | Int(_), Bool(_) | Int(_)) => self.as_int()? == other.as_int()?,
            (Float(_), Bool(_) | Int(_) | Float(_)) | (Bool(_) | Int(_), Float(_)) => {
                self.as_float()? == other.as_float()?
            }
            (Str(a), Str(b)) => a == b,
            (
                Bytes { .. } | ByteArray { .. } | View(_),
                Bytes { .. } | ByteArray { .. } | View(_),
            ) => self.as_bytes()? == other.as_bytes()?,
            (Tuple(_), Tuple(_)) | (List(_), List(_)) => {
                let (a, b) = (self.items_snapshot()?, other.items_snapshot()?);
                a.len() == b.len() && all_eq(&a, &b)?
            }
            (Dict(_), Dict(_)) => {
                if self.len()? != other.len()? {
                    false
                } else {
                    let mut same = true;
                    for (key, value) in self.dict_items()? {
                        match other.dict_get(&key)? {
                            Some(theirs) if value.eq(&theirs)? => {}
                            _ => {
                                same = false;
                                break;
                            }
                        }
                    }
                    same
                }
            }
            _ => self.is(other),
        })
    }

    /// `hash(x)`, consistent with [`Obj::eq`]: equal builtins hash equal; instances use
    /// `__hash__`, or identity when the class defines neither `__hash__` nor `__eq__`.
    pub fn hash(&self) -> Result<i64> {
        if let Some(p) = self.as_proxy() {
            return self
                .forward(p, &[], Box::new(|t, _| Ok(Value::Int(t.hash()?))))?
                .as_int();
        }
        if let Some(result) = self.call_special("__hash__", &[]) {
            return result?.as_int();
        }
        let key = self.hash_key()?;
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        Ok(hasher.finish() as i64)
    }

    /// The structural key for `dict` (see the `dict` module docs).
    pub(crate) fn hash_key(&self) -> Result<HashKey> {
        Ok(match self.body() {
            Body::None => HashKey::None,
            Body::Bool(b) => HashKey::Int(i64::from(*b)),
            Body::Int(i) => HashKey::Int(*i),
            Body::Float(f) => HashKey::from_float(*f),
            Body::Str(s) => HashKey::Str(s.clone()),
            Body::Bytes { data, .. } => HashKey::Bytes(data.clone()),
            Body::Tuple(items) => HashKey::Tuple(
                items
                    .iter()
                    // SAFETY: the tuple holds its items (INV-OBJ-BOUND).
                    .map(|p| unsafe { self.bound(*p) }.hash_key())
                    .collect::<Result<_>>()?,
            ),
            Body::Instance { .. } => {
                let def = self.class_def().expect("an instance has a class");
                if def.find("__eq__").is_some() && def.find("__hash__").is_none() {
                    return type_error(format!("unhashable type: '{}'", def.name()));
                }
                HashKey::Identity(self.id())
            }
            // A proxy keys a dict by identity, like an instance; with the identity cache on,
            // one origin object has one proxy here.
            Body::Class(_) | Body::BoundMethod { .. } | Body::Unbound | Body::Proxy(_) => {
                HashKey::Identity(self.ptr().addr())
            }
            Body::ByteArray { .. }
            | Body::List(_)
            | Body::Dict(_)
            | Body::View(_)
            | Body::ReceivedBuffer { .. } => {
                return type_error(format!("unhashable type: '{}'", self.type_name()))
            }
        })
    }

    // ----- length, items, iteration -----

    /// `len(x)`.
    pub fn len(&self) -> Result<usize> {
        if let Some(p) = self.as_proxy() {
            let n = self.forward(p, &[], Box::new(|t, _| Ok(Value::Int(t.len()? as i64))))?;
            return Ok(n.as_int()? as usize);
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
    fn items_snapshot(&self) -> Result<Vec<Obj<'t>>> {
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
    fn dict_items(&self) -> Result<Vec<(Obj<'t>, Obj<'t>)>> {
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

    fn dict_get(&self, key: &Obj<'t>) -> Result<Option<Obj<'t>>> {
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
        if let Some(p) = self.as_proxy() {
            let items = self.forward(
                p,
                &[],
                Box::new(|t, _| {
                    Ok(Value::Tuple(
                        t.iterate()?.iter().map(Value::from_obj).collect(),
                    ))
                }),
            )?;
            return items.iterate();
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
        if let Some(p) = self.as_proxy() {
            return self.forward(
                p,
                std::slice::from_ref(key),
                Box::new(|t, a| Ok(Value::from_obj(&t.getitem(&a[0])?))),
            );
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
        if let Some(p) = self.as_proxy() {
            let args = [key.clone(), value.clone()];
            return self
                .forward(
                    p,
                    &args,
                    Box::new(|t, a| t.setitem(&a[0], &a[1]).map(|()| Value::None)),
                )
                .map(drop);
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
        if let Some(p) = self.as_proxy() {
            return self
                .forward(
                    p,
                    std::slice::from_ref(key),
                    Box::new(|t, a| t.delitem(&a[0]).map(|()| Value::None)),
                )
                .map(drop);
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
        if let Some(p) = self.as_proxy() {
            return self.forward(
                p,
                &[],
                Box::new(move |t, _| Ok(Value::from_obj(&t.slice(start, end)?))),
            );
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

    // ----- attributes and calls -----

    /// `getattr(x, name)`: an instance's attribute, else its class's method bound to it;
    /// a class's `__name__`.
    pub fn getattr(&self, name: &str) -> Result<Obj<'t>> {
        if let Some(p) = self.as_proxy() {
            return self.forward(
                p,
                &[],
                Box::new(move |t, _| Ok(Value::from_obj(&t.getattr(name)?))),
            );
        }
        match self.body() {
            Body::Instance { attrs, class } => {
                // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
                if let Some(value) = unsafe { attrs.with(|a| a.get(name)) } {
                    // SAFETY: the instance holds its attributes (INV-OBJ-BOUND).
                    return Ok(unsafe { self.bound(value) });
                }
                // SAFETY: the instance holds its class.
                let Body::Class(def) = (unsafe { class.body() }) else {
                    unreachable!("an instance's class is a class object")
                };
                if let Some(method) = def.find(name) {
                    let receiver = self.clone().into_ptr();
                    return Ok(self.tok.alloc(Body::BoundMethod {
                        receiver,
                        name: name.into(),
                        method,
                    }));
                }
            }
            Body::Class(def) if name == "__name__" => return Ok(self.tok.str(def.name())),
            _ => {}
        }
        fail(
            ErrorKind::AttributeError,
            format!("'{}' object has no attribute '{name}'", self.type_name()),
        )
    }

    /// `setattr(x, name, value)`, for instances.
    pub fn setattr(&self, name: &str, value: &Obj<'t>) -> Result<()> {
        if let Some(p) = self.as_proxy() {
            return self
                .forward(
                    p,
                    std::slice::from_ref(value),
                    Box::new(move |t, a| t.setattr(name, &a[0]).map(|()| Value::None)),
                )
                .map(drop);
        }
        let Body::Instance { attrs, .. } = self.body() else {
            return fail(
                ErrorKind::AttributeError,
                format!("'{}' object has no attribute '{name}'", self.type_name()),
            );
        };
        let new = value.clone().into_ptr();
        // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND); the closure
        // only moves pointers.
        let old = unsafe { attrs.with_mut(|a| a.set(name, new)) };
        if let Some(old) = old {
            // SAFETY: the cell held this strong reference to an object of the same owner, which
            // the token holds; it is handed over here (INV-OBJ-BOUND).
            drop(unsafe { Obj::from_owned_ptr(self.tok, old) });
        }
        Ok(())
    }

    /// `delattr(x, name)`, for instances.
    pub fn delattr(&self, name: &str) -> Result<()> {
        if let Some(p) = self.as_proxy() {
            return self
                .forward(
                    p,
                    &[],
                    Box::new(move |t, _| t.delattr(name).map(|()| Value::None)),
                )
                .map(drop);
        }
        let removed = match self.body() {
            // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
            Body::Instance { attrs, .. } => unsafe { attrs.with_mut(|a| a.remove(name)) },
            _ => None,
        };
        match removed {
            Some(old) => {
                // SAFETY: the cell held this strong reference to an object of the same owner, which
                // the token holds; it is handed over here (INV-OBJ-BOUND).
                drop(unsafe { Obj::from_owned_ptr(self.tok, old) });
                Ok(())
            }
            None => fail(
                ErrorKind::AttributeError,
                format!("'{}' object has no attribute '{name}'", self.type_name()),
            ),
        }
    }

    /// The names of an instance's attributes, in the order they were first set.
    pub fn attr_names(&self) -> Vec<String> {
        match self.body() {
            // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
            Body::Instance { attrs, .. } => unsafe { attrs.with(Attrs::names) },
            _ => Vec::new(),
        }
    }

    /// `x(*args)`: a class makes an instance (running `__init__`), a bound method runs, an
    /// instance runs its `__call__`.
    pub fn call(&self, args: &[Obj<'t>]) -> Result<Obj<'t>> {
        if let Some(p) = self.as_proxy() {
            return self.forward(p, args, Box::new(|t, a| Ok(Value::from_obj(&t.call(a)?))));
        }
        match self.body() {
            Body::Class(def) => {
                let instance = self.tok.alloc(Body::Instance {
                    class: self.clone().into_ptr(),
                    attrs: OwnerCell::new(Attrs::default()),
                });
                match def.find("__init__") {
                    Some(init) => drop(init(&instance, args)?),
                    None if !args.is_empty() => {
                        return type_error(format!("{}() takes no arguments", def.name()))
                    }
                    None => {}
                }
                Ok(instance)
            }
            Body::BoundMethod {
                receiver, method, ..
            // SAFETY: the bound method holds its receiver (INV-OBJ-BOUND).
            } => method(&unsafe { self.bound(*receiver) }, args),
            Body::Instance { .. } => self.call_special("__call__", args).unwrap_or_else(|| {
                type_error(format!("'{}' object is not callable", self.type_name()))
            }),
            _ => type_error(format!("'{}' object is not callable", self.type_name())),
        }
    }

    /// `x.name(*args)`. Instances look the method up as [`Obj::getattr`] does; builtins
    /// offer `list.append`, `list.pop`, `dict.get`, `dict.keys` and `bytearray.extend`.
    pub fn call_method(&self, name: &str, args: &[Obj<'t>]) -> Result<Obj<'t>> {
        let tok = self.tok;
        let arity = |n: usize| -> Result<()> {
            if args.len() == n {
                Ok(())
            } else {
                type_error(format!(
                    "{}.{name}() takes exactly {n} argument(s) ({} given)",
                    self.type_name(),
                    args.len()
                ))
            }
        };
        if let Some(p) = self.as_proxy() {
            return self.forward(
                p,
                args,
                Box::new(move |t, a| Ok(Value::from_obj(&t.call_method(name, a)?))),
            );
        }
        match (self.body(), name) {
            (Body::Instance { .. }, _) => self.getattr(name)?.call(args),
            (Body::List(items), "append") => {
                arity(1)?;
                let new = args[0].clone().into_ptr();
                // SAFETY: the token proves the thread holds the owner (INV-OBJ-BOUND).
                unsafe { items.with_mut(|v| v.push(new)) };
                Ok(tok.none())
            }
            (Body::List(items), "pop") => {
                arity(0)?;
                // SAFETY: as above.
                let popped = unsafe { items.with_mut(Vec::pop) };
                popped
                    // SAFETY: the list held this strong reference to an object of its owner,
                    // which the token holds; it is handed over (INV-OBJ-BOUND).
                    .map(|p| unsafe { Obj::from_owned_ptr(tok, p) })
                    .ok_or_else(|| Error::new(ErrorKind::IndexError, "pop from empty list"))
            }
            (Body::Dict(_), "get") => {
                arity(1)?;
                Ok(self.dict_get(&args[0])?.unwrap_or_else(|| tok.none()))
            }
            (Body::Dict(_), "keys") => {
                arity(0)?;
                Ok(tok.list(&self.iterate()?))
            }
            (Body::ByteArray { .. }, "extend") => {
                arity(1)?;
                self.bytearray_extend(&args[0].as_bytes()?)?;
                Ok(tok.none())
            }
            _ => fail(
                ErrorKind::AttributeError,
                format!("'{}' object has no attribute '{name}'", self.type_name()),
            ),
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

fn all_eq<'t>(a: &[Obj<'t>], b: &[Obj<'t>]) -> Result<bool> {
    for (x, y) in a.iter().zip(b) {
        if !x.eq(y)? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::{clamp_range, normalize_index, repr_bytes, repr_float, repr_str};

    #[test]
    fn reprs_follow_python() {
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a\nb"), "'a\\nb'");
        assert_eq!(repr_bytes(b"a\x00'"), "b\"a\\x00'\"");
        assert_eq!(repr_float(1.0), "1.0");
        assert_eq!(repr_float(0.1), "0.1");
        assert_eq!(repr_float(1e16), "1e+16");
        assert_eq!(repr_float(1.5e-5), "1.5e-05");
        assert_eq!(repr_float(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn indices_and_ranges_follow_python() {
        assert_eq!(normalize_index(-1, 3, "list").unwrap(), 2);
        assert!(normalize_index(3, 3, "list").is_err());
        assert!(normalize_index(-4, 3, "list").is_err());
        assert_eq!(clamp_range(-2, 100, 5), (3, 5));
        assert_eq!(clamp_range(4, 1, 5), (4, 4));
    }
}
