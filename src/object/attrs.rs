//! Attributes and calls: `getattr`, `setattr`, `delattr`, calling an object, and the
//! builtin methods (`list.append`, `list.pop`, `dict.get`, `dict.keys`, `bytearray.extend`).

use super::{type_error, Attrs, Body, Forward, Obj, OwnerCell};
use crate::error::{fail, Error, ErrorKind, Result};

impl<'t> Obj<'t> {
    /// `getattr(x, name)`: an instance's attribute, else its class's method bound to it;
    /// a class's `__name__`.
    pub fn getattr(&self, name: &str) -> Result<Obj<'t>> {
        if let Some(r) = self.forwarded(Forward::GetAttr(name), &[]) {
            return r;
        }
        match self.body() {
            Body::Instance { .. } => {
                if let Some(value) = self.attr(name) {
                    return Ok(value);
                }
                let def = self.class_def().expect("an instance");
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
        self.no_attribute(name)
    }

    /// `setattr(x, name, value)`, for instances.
    pub fn setattr(&self, name: &str, value: &Obj<'t>) -> Result<()> {
        if let Some(r) = self.forwarded(Forward::SetAttr(name), std::slice::from_ref(value)) {
            return r.map(drop);
        }
        self.refuse_if_frozen("set an attribute of")?;
        if self.set_attr(name, value) {
            Ok(())
        } else {
            self.no_attribute(name)
        }
    }

    /// `delattr(x, name)`, for instances.
    pub fn delattr(&self, name: &str) -> Result<()> {
        if let Some(r) = self.forwarded(Forward::DelAttr(name), &[]) {
            return r.map(drop);
        }
        self.refuse_if_frozen("delete an attribute of")?;
        if self.remove_attr(name) {
            Ok(())
        } else {
            self.no_attribute(name)
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
            Body::BoundMethod { method, .. } => {
                method(&self.receiver().expect("a bound method"), args)
            }
            Body::Instance { .. } => self.call_special("__call__", args).unwrap_or_else(|| {
                type_error(format!("'{}' object is not callable", self.type_name()))
            }),
            _ => type_error(format!("'{}' object is not callable", self.type_name())),
        }
    }

    /// `x.name(*args)`. Instances look the method up as [`Obj::getattr`] does; builtins
    /// offer `list.append`, `list.pop`, `dict.get`, `dict.keys` and `bytearray.extend`. On
    /// a proxy the call runs in the target's interpreter, and the arguments and the result
    /// cross the membrane by the rule of [`Outgoing::object`](crate::Outgoing::object).
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
            // As `getattr(name)(*args)`, without making the bound method: an instance's own
            // attribute first, else its class's method called on it directly.
            (Body::Instance { .. }, _) => match self.attr(name) {
                Some(value) => value.call(args),
                None => match self.class_def().expect("an instance").find(name) {
                    Some(method) => method(self, args),
                    None => self.no_attribute(name),
                },
            },
            (Body::List(_), "append") => {
                arity(1)?;
                self.refuse_if_frozen("append to")?;
                self.list_push(&args[0]);
                Ok(tok.none())
            }
            (Body::List(_), "pop") => {
                arity(0)?;
                self.refuse_if_frozen("pop from")?;
                self.list_pop()
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
                self.bytearray_extend(&args[0].to_bytes()?)?;
                Ok(tok.none())
            }
            _ => self.no_attribute(name),
        }
    }

    fn no_attribute<T>(&self, name: &str) -> Result<T> {
        fail(
            ErrorKind::AttributeError,
            format!("'{}' object has no attribute '{name}'", self.type_name()),
        )
    }
}
