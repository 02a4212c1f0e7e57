//! User-defined classes: a name and methods written in Rust. Instances carry attributes.

use super::{Obj, ObjPtr};
use crate::error::Result;

/// A method written in Rust: it receives the receiver and the positional arguments, all
/// bound to the token of the interpreter that owns the receiver.
pub type Method = for<'t> fn(this: &Obj<'t>, args: &[Obj<'t>]) -> Result<Obj<'t>>;

/// The definition of a user class, turned into a class object by
/// [`Token::class`](crate::Token::class).
///
/// Special method names give instances behaviour: `__init__`, `__repr__`, `__str__`,
/// `__eq__`, `__hash__`, `__len__`, `__getitem__`, `__setitem__`, `__iter__`, `__call__`,
/// `__bool__`.
#[derive(Clone, Debug)]
pub struct ClassDef {
    name: Box<str>,
    methods: Vec<(Box<str>, Method)>,
}

impl ClassDef {
    /// A class with no methods.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            methods: Vec::new(),
        }
    }

    /// Adds (or replaces) method `name`.
    pub fn method(mut self, name: &str, method: Method) -> Self {
        self.methods.retain(|(n, _)| &**n != name);
        self.methods.push((name.into(), method));
        self
    }

    /// The class name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn find(&self, name: &str) -> Option<Method> {
        self.methods
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, m)| *m)
    }
}

/// An instance's attributes, in the order they were first set. Holds one strong reference
/// to each value.
#[derive(Default)]
pub(crate) struct Attrs(Vec<(Box<str>, ObjPtr)>);

impl Attrs {
    pub(crate) fn get(&self, name: &str) -> Option<ObjPtr> {
        self.0.iter().find(|(n, _)| &**n == name).map(|(_, v)| *v)
    }

    /// Sets `name`, taking over `value`'s reference; returns the replaced reference.
    pub(crate) fn set(&mut self, name: &str, value: ObjPtr) -> Option<ObjPtr> {
        match self.0.iter_mut().find(|(n, _)| &**n == name) {
            Some((_, slot)) => Some(std::mem::replace(slot, value)),
            None => {
                self.0.push((name.into(), value));
                None
            }
        }
    }

    /// Removes `name`, handing its reference to the caller.
    pub(crate) fn remove(&mut self, name: &str) -> Option<ObjPtr> {
        let at = self.0.iter().position(|(n, _)| &**n == name)?;
        Some(self.0.remove(at).1)
    }

    /// The values, in order (references still held).
    pub(crate) fn values(&self) -> impl Iterator<Item = ObjPtr> + '_ {
        self.0.iter().map(|(_, value)| *value)
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.to_string()).collect()
    }

    pub(crate) fn into_refs(self) -> impl Iterator<Item = ObjPtr> {
        self.0.into_iter().map(|(_, v)| v)
    }
}
