//! Attributes and calls: `getattr`, `setattr`, `delattr`, calling an object, and the
//! builtin methods (`list.append`, `list.pop`, `dict.get`, `dict.keys`, `bytearray.extend`).

use super::{type_error, Attrs, Body, Obj, OwnerCell};
use crate::error::{fail, Error, ErrorKind, Result};
use crate::proxy::Forward;

impl<'t> Obj<'t> {
    /// `getattr(x, name)`: an instance's attribute, else its class's method bound to it;
    /// a class's `__name__`.
    pub fn getattr(&self, name: &str) -> Result<Obj<'t>> {
        if let Some(r) = self.forwarded(Forward::GetAttr(name), &[]) {
            return r;
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
        if let Some(r) = self.forwarded(Forward::SetAttr(name), std::slice::from_ref(value)) {
            return r.map(drop);
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
        if let Some(r) = self.forwarded(Forward::DelAttr(name), &[]) {
            return r.map(drop);
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
        if let Some(r) = self.forwarded(Forward::Call, args) {
            return r;
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
        if let Some(r) = self.forwarded(Forward::CallMethod(name), args) {
            return r;
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
}
