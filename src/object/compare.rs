//! Truthiness, equality and hashing.

use std::hash::{DefaultHasher, Hash, Hasher};

use super::{type_error, Body, Forward, HashKey, Obj};
use crate::error::Result;

impl<'t> Obj<'t> {
    /// Truthiness, as `bool(x)`.
    pub fn is_true(&self) -> Result<bool> {
        if let Some(r) = self.forwarded(Forward::IsTrue, &[]) {
            return r?.as_bool();
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
            | Body::View(_)
            | Body::ReceivedView(_) => self.len()? != 0,
            Body::Instance { .. } => match self.call_special("__len__", &[]) {
                Some(n) => n?.as_int()? != 0,
                None => true,
            },
            Body::Class(_) | Body::BoundMethod { .. } | Body::Proxy(_) => true,
            Body::Unbound => false,
        })
    }

    /// `a == b`. Numbers compare by value across `bool`, `int` and `float`; bytes-like
    /// objects by content; containers item by item; instances through `__eq__` (this one's,
    /// else the other's), else by identity.
    pub fn eq(&self, other: &Obj<'t>) -> Result<bool> {
        // A proxy compares in its origin, where `other` arrives through the membrane (a proxy
        // of the same object unwraps there to the object itself). Hash is forwarded alike,
        // so the two stay consistent.
        if let Some(r) = self.forwarded(Forward::Eq, std::slice::from_ref(other)) {
            return r?.as_bool();
        }
        if other.proxy_body().is_some() {
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
            ) => self.to_bytes()? == other.to_bytes()?,
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
        if let Some(r) = self.forwarded(Forward::Hash, &[]) {
            return r?.as_int();
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
            Body::Tuple(_) => HashKey::Tuple(
                self.items_snapshot()?
                    .iter()
                    .map(Obj::hash_key)
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
            | Body::ReceivedView(_) => {
                return type_error(format!("unhashable type: '{}'", self.type_name()))
            }
        })
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
