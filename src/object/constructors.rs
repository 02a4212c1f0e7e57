//! Rust values in and out: the constructors on [`Token`] (each returns a new object owned by
//! the token's interpreter) and the extractions on [`Obj`].

use super::{
    type_error, Body, ClassDef, Dict, Forward, Obj, ObjPtr, OwnerCell, PinnedExport, ReceivedView,
};
use crate::error::Result;
use crate::sync::DataByte;
use crate::thread_state::Token;

/// Constructors: each returns a new object owned by this token's interpreter.
impl Token<'_> {
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
            data: super::copy_bytes(value),
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

/// The objects a received channel item becomes.
impl Token<'_> {
    /// A `bytes` taking over `data` (a bytes item's copy).
    pub(crate) fn bytes_from_box(&self, data: Box<[u8]>) -> Obj<'_> {
        self.alloc(Body::Bytes {
            data,
            exports: OwnerCell::new(0),
        })
    }

    /// The `memoryview` a buffer item becomes: onto the sender's bytes, holding `export`.
    pub(crate) fn received_view(&self, export: PinnedExport) -> Obj<'_> {
        self.alloc(Body::ReceivedView(ReceivedView::new(export)))
    }

    /// The marker for an item whose sender was destroyed (CPython's `UNBOUND`).
    pub(crate) fn unbound(&self) -> Obj<'_> {
        self.alloc(Body::Unbound)
    }
}

/// Extractions: the Rust value of an object.
impl<'t> Obj<'t> {
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

    /// A copy of the text of a `str`, as a Rust `String`.
    pub fn to_rust_string(&self) -> Result<String> {
        match self.body() {
            Body::Str(s) => Ok(s.to_string()),
            _ => type_error(format!("expected str, got {}", self.type_name())),
        }
    }

    /// A copy of the bytes of a `bytes`, `bytearray` or `memoryview`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if let Some(r) = self.forwarded(Forward::ToBytes, &[]) {
            return r?.to_bytes();
        }
        match self.body() {
            Body::Bytes { data, .. } => Ok(data.to_vec()),
            Body::ByteArray { .. } | Body::View(_) | Body::ReceivedView(_) => {
                Ok(self.get_buffer()?.to_vec())
            }
            _ => type_error(format!(
                "a bytes-like object is required, not '{}'",
                self.type_name()
            )),
        }
    }
}
