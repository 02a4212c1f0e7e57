//! The object layer's side of the proxy seam. A proxy is an object of this layer whose
//! body the proxy layer (`crate::proxy`) defines: the object layer stores it as a
//! [`ProxyBody`] trait object and knows only what that trait says. Every operation of
//! `Obj` that a proxy supports starts with [`Obj::forwarded`], naming its [`Forward`]
//! variant; what each runs in the origin is written once, in the proxy layer.

use std::any::Any;

use super::{Body, Obj};
use crate::error::Result;
use crate::interp::{InterpId, InterpState};

/// An operation a proxy forwards to its origin.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Forward<'a> {
    /// `to_bytes()`: a copy of the bytes comes back.
    ToBytes,
    /// `bool(x)`.
    IsTrue,
    /// `repr(x)`.
    Repr,
    /// `str(x)`.
    Str,
    /// `x == args[0]`.
    Eq,
    /// `hash(x)`.
    Hash,
    /// `len(x)`.
    Len,
    /// `for item in x`: the items come back as a tuple, each across the membrane.
    Iterate,
    /// `x[args[0]]`.
    GetItem,
    /// `x[args[0]] = args[1]`.
    SetItem,
    /// `del x[args[0]]`.
    DelItem,
    /// `x[start:end]`.
    Slice { start: i64, end: i64 },
    /// `x.name`.
    GetAttr(&'a str),
    /// `x.name = args[0]`.
    SetAttr(&'a str),
    /// `del x.name`.
    DelAttr(&'a str),
    /// `x(*args)`.
    Call,
    /// `x.name(*args)`.
    CallMethod(&'a str),
    /// `memoryview(x)`.
    Memoryview,
}

/// A proxy's body as the object layer sees it: the proxy layer implements it (once, for
/// `crate::proxy::Remote`), as a vtable installed from above.
pub(crate) trait ProxyBody: Any {
    /// Runs `op` on the object the proxy stands for, in its origin, and brings the result
    /// back into `proxy`'s interpreter (`proxy` is the object whose body this is).
    fn forward<'t>(&self, proxy: &Obj<'t>, op: Forward<'_>, args: &[Obj<'t>]) -> Result<Obj<'t>>;

    /// The interpreter that owns the object the proxy stands for.
    fn origin_id(&self) -> InterpId;

    /// The object's address in its origin while the origin lives, for `id()` under
    /// `Config::proxy_id_is_origin`; `None` once the origin is destroyed (INV-PROXY-ID).
    fn origin_addr(&self) -> Option<usize>;

    /// The proxy at `addr` is being freed: it forgets itself in `owner`'s identity cache and
    /// gives back its origin references (which may let go of `owner` for a moment,
    /// INV-RELEASE-SUSPEND).
    ///
    /// # Safety
    /// The calling thread holds `owner`, the interpreter the proxy belonged to.
    unsafe fn free(self: Box<Self>, owner: &InterpState, addr: usize);
}

impl<'t> Obj<'t> {
    /// For a proxy, runs `op` in its origin and gives back the result, here; `None` for any
    /// other object, which runs the operation itself.
    pub(crate) fn forwarded(&self, op: Forward<'_>, args: &[Obj<'t>]) -> Option<Result<Obj<'t>>> {
        match self.body() {
            Body::Proxy(proxy) => Some(proxy.forward(self, op, args)),
            _ => None,
        }
    }

    /// The proxy layer's body of this object, if it is a proxy.
    pub(crate) fn proxy_body(&self) -> Option<&dyn ProxyBody> {
        match self.body() {
            Body::Proxy(proxy) => Some(&**proxy),
            _ => None,
        }
    }

    /// For a proxy, the interpreter that owns the object it stands for.
    pub fn proxy_origin(&self) -> Option<InterpId> {
        self.proxy_body().map(|p| p.origin_id())
    }
}
