//! RemoteProxy and the membrane. A proxy is an ordinary object of its receiving
//! interpreter (its own local refcount) that holds exactly one origin reference to an object
//! of another interpreter. Cloning and dropping it locally never enters the origin; its
//! creation and its deallocation change the one origin reference, and forwarded operations
//! enter the origin for their duration (INV-PROXY-ONE-REF). See `design/proxy.md`.
//!
//! The membrane: values crossing between interpreters are copied when they are shareable
//! immutables (None, bool, int, float, str, bytes, tuples of these) and travel as origin
//! references otherwise; a reference arriving in its own origin unwraps to the object
//! itself, and a proxy forwarded elsewhere sends its origin reference, never a proxy of a
//! proxy (INV-MEMBRANE).

use std::any::Any;
use std::collections::{hash_map, HashMap};

use crate::counters::Event;
use crate::error::{fail, Error, ErrorKind, Result};
use crate::export::{OriginRef, Role};
use crate::extensions::Extension;
use crate::interp::{InterpId, InterpState};
use crate::message::{ObjectRef, MESSAGE_LEN};
use crate::object::{
    boxed, drop_boxed, Body, Forward, FreeBoxes, Obj, ObjPtr, OwnerCell, PinnedExport, ProxyBody,
    SharedRef,
};
use crate::sync::{const_thread_local, Arc, IdBuildHasher};
use crate::thread_state::{run_in, suspend_current, Drain, Token};

/// A proxy's body: its one origin reference, plus the surplus references of identity-cache
/// hits it absorbed (given back with its own, in one release carrying the count).
pub(crate) struct Remote {
    pub(crate) origin_ref: OriginRef,
    /// The object, as the export table gave it when the proxy was made (never taken from
    /// bytes). Valid while `origin_ref` is held (INV-EXPORT-COUNTED); dereferenced only in
    /// the origin.
    target: ObjPtr,
    absorbed: OwnerCell<usize>,
}

/// What the identity cache is keyed by: the origin interpreter's state (its address, which
/// no other interpreter of any runtime has while a proxy of it lives, since the proxy's
/// origin reference keeps the state alive), and the export's serial and generation
/// (INV-IDENTITY-KEY).
type CacheKey = (usize, u64, u64);

/// The identity cache of one receiving interpreter: origin export to the proxy for it. It
/// holds no reference: a proxy removes its own entry when it is freed, and both happen while
/// the interpreter is held (INV-IDENTITY-ONE).
pub(crate) struct IdentityCache {
    map: OwnerCell<HashMap<CacheKey, ObjPtr, IdBuildHasher>>,
}

const_thread_local! {
    /// Boxes of proxy bodies freed on this thread, for the next proxies it makes: a receiver
    /// dropping a batch of 64 proxies would otherwise allocate 64 times.
    static FREE_REMOTES: FreeBoxes<Remote> = FreeBoxes::new(64);
}

// SAFETY: only the thread holding the interpreter that owns the cache touches it
// (INV-OWN-LOCKED); the pointers in it are that interpreter's own proxies.
unsafe impl Send for IdentityCache {}
// SAFETY: as above.
unsafe impl Sync for IdentityCache {}

impl std::fmt::Debug for IdentityCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityCache")
    }
}

impl Extension for IdentityCache {
    const SLOT: usize = 1;
}

impl IdentityCache {
    /// The identity cache of interpreter `state` (kept in its extensions).
    pub(crate) fn of(state: &InterpState) -> &IdentityCache {
        state.extensions.get()
    }

    pub(crate) fn new() -> Self {
        // Made with its interpreter's state, by whatever thread creates it (possibly one
        // inside another interpreter): unchecked, and reached only through the token of the
        // interpreter it belongs to.
        IdentityCache {
            map: OwnerCell::unchecked(HashMap::default()),
        }
    }
}

fn cache_key(r: &OriginRef) -> CacheKey {
    let key = r.key();
    (Arc::as_ptr(r.origin()).addr(), key.serial, key.generation)
}

/// A value crossing the membrane, bound to no interpreter.
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Box<str>),
    Bytes(Box<[u8]>),
    Tuple(Vec<Value>),
    /// A frozen object, which any interpreter reads in place: the same object arrives.
    Shared(SharedRef),
    /// An object that stays where it is: one origin reference to it.
    Ref(OriginRef),
    /// A buffer exported for a view elsewhere.
    Buffer(PinnedExport),
}

impl Value {
    /// The immutable copy of `obj`, if it is a shareable immutable.
    fn copy_of(obj: &Obj<'_>) -> Option<Value> {
        Some(match obj.body() {
            Body::None => Value::None,
            Body::Bool(b) => Value::Bool(*b),
            Body::Int(i) => Value::Int(*i),
            Body::Float(f) => Value::Float(*f),
            Body::Str(s) => Value::Str(s.clone()),
            Body::Bytes { data, .. } => Value::Bytes(data.clone()),
            Body::Tuple(_) => Value::Tuple(
                obj.iterate()
                    .ok()?
                    .iter()
                    .map(Value::copy_of)
                    .collect::<Option<Vec<_>>>()?,
            ),
            _ => return None,
        })
    }

    /// `obj` for the other side: the object itself if it is frozen; a copy if it is a
    /// shareable immutable; else an origin reference (a proxy's own origin's, so no chain
    /// forms). The one rule for call results and channel items (INV-MEMBRANE).
    pub(crate) fn from_obj(obj: &Obj<'_>) -> Value {
        Value::by_value(obj).unwrap_or_else(|| Value::Ref(origin_ref_of(obj, Role::InFlight)))
    }

    /// `obj` for the other side if it crosses without staying here: itself if it is frozen,
    /// a copy if it is a shareable immutable; `None` for everything else (which crosses as
    /// an origin reference).
    pub(crate) fn by_value(obj: &Obj<'_>) -> Option<Value> {
        SharedRef::of(obj)
            .map(Value::Shared)
            .or_else(|| Value::copy_of(obj))
    }

    /// The value as an object of `tok`'s interpreter: a copy, the object itself back home,
    /// a view onto a remote buffer, or a proxy.
    pub(crate) fn into_obj<'t>(self, tok: &'t Token<'t>) -> Result<Obj<'t>> {
        Ok(match self {
            Value::None => tok.none(),
            Value::Bool(b) => tok.bool(b),
            Value::Int(i) => tok.int(i),
            Value::Float(f) => tok.float(f),
            Value::Str(s) => tok.str(&s),
            Value::Bytes(b) => tok.bytes_from_box(b),
            Value::Tuple(items) => {
                let items = items
                    .into_iter()
                    .map(|v| v.into_obj(tok))
                    .collect::<Result<Vec<_>>>()?;
                tok.tuple(&items)
            }
            Value::Shared(shared) => shared.into_obj(tok),
            Value::Ref(r) => materialize(tok, r)?,
            Value::Buffer(export) => tok.received_view(export),
        })
    }
}

/// A new origin reference to `obj` (in `obj`'s interpreter): a duplicate of a proxy's own,
/// or an export of the object.
pub(crate) fn origin_ref_of(obj: &Obj<'_>, role: Role) -> OriginRef {
    if let Some(proxy) = obj.as_remote() {
        return proxy.origin_ref.duplicate(role);
    }
    OriginRef::export(obj, role)
}

/// An origin reference arriving in `tok`'s interpreter: the object itself if this is its
/// origin (unwrap at home), else the proxy for it. Either way the reference is checked
/// against the origin's table first, and only the pointer the table gives is used
/// (INV-MSG-VALIDATE).
pub(crate) fn materialize<'t>(tok: &'t Token<'t>, r: OriginRef) -> Result<Obj<'t>> {
    if std::ptr::eq(&**r.origin(), &**tok.interp()) {
        let ptr = checked(r.target(), &r)?;
        // SAFETY: the pointer comes from this interpreter's own export table, whose entry
        // (kept by `r`) holds the object alive; this thread holds its owner
        // (INV-MSG-VALIDATE, INV-EXPORT-COUNTED).
        let obj = unsafe { Obj::from_borrowed_ptr(tok, ptr) };
        // This thread holds the origin: the reference goes back at once.
        drop(r);
        return Ok(obj);
    }
    proxy_for(tok, r)
}

/// `result` of checking `r` against its origin's table, a failure reported as
/// `InterpreterGone` if the origin has been destroyed meanwhile.
fn checked<T>(result: Result<T>, r: &OriginRef) -> Result<T> {
    result.map_err(|e| {
        if r.origin().lock.is_destroyed() {
            gone(r.origin().id)
        } else {
            e
        }
    })
}

/// The proxy for `r` in `tok`'s interpreter: the cached one if the identity cache has it
/// (the proxy absorbs the surplus reference), else a new one that adopts `r`. Either way `r`
/// is first checked and counted as a proxy's in one critical section of the origin's table
/// (INV-MSG-VALIDATE); a failure leaves the cache alone.
fn proxy_for<'t>(tok: &'t Token<'t>, mut r: OriginRef) -> Result<Obj<'t>> {
    let target = checked(r.give_to_proxy(tok.id()), &r)?;
    let counters = tok.counters();
    let cache = IdentityCache::of(tok.interp());
    if !tok.runtime().config().identity_cache {
        return Ok(new_proxy(tok, r, target));
    }
    let key = cache_key(&r);
    // SAFETY: the cache belongs to the interpreter `tok` holds (INV-OWN-LOCKED). The closure
    // finds the key or its slot with one lookup and, on a miss, makes the proxy and fills the
    // slot: an allocation, which runs no user code and releases nothing, so nothing else
    // reaches the map meanwhile.
    let found = unsafe {
        cache.map.with_mut(|map| match map.entry(key) {
            hash_map::Entry::Occupied(slot) => Err((*slot.get(), r)),
            hash_map::Entry::Vacant(slot) => {
                let proxy = new_proxy(tok, r, target);
                slot.insert(proxy.ptr());
                Ok(proxy)
            }
        })
    };
    let (ptr, r) = match found {
        Ok(proxy) => {
            counters.bump(Event::IdentityMisses);
            return Ok(proxy);
        }
        Err(hit) => hit,
    };
    counters.bump(Event::IdentityHits);
    // SAFETY: the cache maps only to live proxies of this interpreter: a proxy removes its
    // entry when it is freed, both while the interpreter is held (INV-IDENTITY-ONE).
    let proxy = unsafe { Obj::from_borrowed_ptr(tok, ptr) };
    // One proxy per origin object here: this reference is surplus. The proxy keeps it and
    // gives it back with its own when it goes, so a hit never enters the origin
    // (INV-IDENTITY-ONE).
    let body = proxy
        .as_remote()
        .expect("the identity cache maps to proxies");
    let surplus = r.hand_over();
    // SAFETY: the proxy belongs to the interpreter `tok` holds (INV-OWN-LOCKED); the closure
    // only adds.
    unsafe { body.absorbed.with_mut(|n| *n += surplus) };
    Ok(proxy)
}

/// A new proxy holding `r`, already counted as a proxy's reference to `target` by
/// `OriginRef::give_to_proxy`; its body in a box this thread freed, if it kept one.
fn new_proxy<'t>(tok: &'t Token<'t>, r: OriginRef, target: ObjPtr) -> Obj<'t> {
    tok.counters().bump(Event::ProxiesCreated);
    let body = Remote {
        origin_ref: r,
        target,
        absorbed: OwnerCell::new(0),
    };
    let body: Box<Remote> = boxed(&FREE_REMOTES, body);
    tok.alloc(Body::Proxy(body))
}

/// Called when a proxy is freed (its interpreter held): forget it in the identity cache if
/// the cache maps its key to it. Its origin reference goes back when its body is dropped.
///
/// # Safety
/// The calling thread holds the interpreter that owned the proxy.
unsafe fn forget_proxy(cache: &IdentityCache, proxy: &Remote, addr: usize) {
    let key = cache_key(&proxy.origin_ref);
    // SAFETY: forwarded contract (INV-OWN-LOCKED); the closure only edits the map.
    unsafe {
        cache.map.with_mut(|map| {
            // One lookup when the key maps to this proxy, the usual case; a key mapping to
            // another proxy is put back.
            if let Some(other) = map.remove(&key).filter(|p| p.addr() != addr) {
                map.insert(key, other);
            }
        })
    };
}

fn panicked(origin: InterpId, panic: &(dyn std::any::Any + Send)) -> Error {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string());
    Error::new(
        ErrorKind::Panic,
        format!("panicked in interpreter {origin}: {what}"),
    )
}

fn gone(origin: InterpId) -> Error {
    Error::new(
        ErrorKind::InterpreterGone,
        format!("the proxy's interpreter {origin} has been destroyed"),
    )
}

impl Forward<'_> {
    /// Runs the operation in the origin on `target`, with `args` already across the
    /// membrane, and gives what crosses it back.
    fn run<'o>(self, target: &Obj<'o>, args: &[Obj<'o>]) -> Result<Value> {
        Ok(match self {
            Forward::ToBytes => Value::Bytes(target.to_bytes()?.into()),
            Forward::IsTrue => Value::Bool(target.is_true()?),
            Forward::Repr => Value::Str(target.repr()?.into()),
            Forward::Str => Value::Str(target.str()?.into()),
            Forward::Eq => Value::Bool(target.eq(&args[0])?),
            Forward::Hash => Value::Int(target.hash()?),
            Forward::Len => Value::Int(target.len()? as i64),
            Forward::Iterate => {
                Value::Tuple(target.iterate()?.iter().map(Value::from_obj).collect())
            }
            Forward::GetItem => Value::from_obj(&target.getitem(&args[0])?),
            Forward::SetItem => target.setitem(&args[0], &args[1]).map(|()| Value::None)?,
            Forward::DelItem => target.delitem(&args[0]).map(|()| Value::None)?,
            Forward::Slice { start, end } => Value::from_obj(&target.slice(start, end)?),
            Forward::GetAttr(name) => Value::from_obj(&target.getattr(name)?),
            Forward::SetAttr(name) => target.setattr(name, &args[0]).map(|()| Value::None)?,
            Forward::DelAttr(name) => target.delattr(name).map(|()| Value::None)?,
            Forward::Call => Value::from_obj(&target.call(args)?),
            Forward::CallMethod(name) => Value::from_obj(&target.call_method(name, args)?),
            // The buffer protocol crosses the membrane: the origin pins an export of its
            // object's bytes, and this interpreter gets a view onto them (zero copy).
            Forward::Memoryview => Value::Buffer(target.get_buffer()?.pin()),
        })
    }
}

impl Obj<'_> {
    /// This object's proxy body, if it is a proxy.
    pub(crate) fn as_remote(&self) -> Option<&Remote> {
        let body: &dyn Any = self.proxy_body()?;
        body.downcast_ref::<Remote>()
    }
}

impl ProxyBody for Remote {
    fn origin_id(&self) -> InterpId {
        self.origin_ref.origin().id
    }

    fn origin_addr(&self) -> Option<usize> {
        let alive = !self.origin_ref.origin().lock.is_destroyed();
        alive.then_some(self.origin_ref.key().addr as usize)
    }

    unsafe fn free(mut self: Box<Self>, owner: &InterpState, addr: usize) {
        let cache = IdentityCache::of(owner);
        // SAFETY: forwarded contract: this thread holds the proxy's interpreter.
        unsafe { forget_proxy(cache, &self, addr) };
        // The absorbed references go back with the proxy's own, in one release.
        let absorbed = std::mem::replace(&mut self.absorbed, OwnerCell::new(0)).into_inner();
        self.origin_ref.take_back(absorbed);
        // The body is dropped in place, giving its references back (which may let go of
        // `owner` for a moment, INV-RELEASE-SUSPEND); its box is kept for this thread's next.
        drop_boxed(&FREE_REMOTES, self);
    }

    /// Runs `op` in the proxy's origin on its target: the arguments cross the membrane in,
    /// the result crosses it out. The call holds its own strong reference to the target in
    /// the origin for its whole duration, and its caller holds the proxy, whose origin
    /// references keep the export alive until then (INV-PROXY-CALL-PINS). This interpreter
    /// is let go meanwhile (INV-ONE-LOCK).
    fn forward<'t>(&self, obj: &Obj<'t>, op: Forward<'_>, args: &[Obj<'t>]) -> Result<Obj<'t>> {
        let tok = obj.token();
        let origin = self.origin_ref.origin();
        if origin.lock.is_destroyed() {
            return Err(gone(origin.id));
        }
        let sent: Vec<Value> = args.iter().map(Value::from_obj).collect();
        // Dereferenced only in the origin, below.
        let target = self.target;
        let rt = self.origin_ref.runtime();
        tok.counters().bump(Event::ForwardedCalls);
        let outcome = suspend_current(|| {
            run_in(
                rt,
                origin,
                Event::Switches,
                // Only the operation runs there: the origin's pending calls wait for its
                // next ordinary entry, so none of them can panic into this caller
                // (INV-PROXY-PANIC).
                Drain::No,
                move |otok, _drained| {
                    // The call's own reference to its target, taken in the origin: the origin is
                    // not destroyed (run_in checked), so the export the caller's proxy holds is
                    // still there.
                    // SAFETY: the target came from the origin's export table when the
                    // proxy was made, and the caller's proxy holds that export's reference,
                    // so it lives; this thread holds the origin (INV-PROXY-CALL-PINS).
                    let target = unsafe { Obj::from_borrowed_ptr(otok, target) };
                    let args = sent
                        .into_iter()
                        .map(|v| v.into_obj(otok))
                        .collect::<Result<Vec<_>>>()?;
                    // A panic in the origin's code stays there: everything it held unwinds in the
                    // origin, and the caller gets a typed error (INV-PROXY-PANIC).
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        op.run(&target, &args)
                    }))
                    .unwrap_or_else(|panic| Err(panicked(origin.id, &*panic)))
                },
            )
        });
        match outcome {
            Ok(result) => result?.into_obj(tok),
            Err(_) => Err(gone(origin.id)),
        }
    }
}

/// Checks message bytes and takes over the reference that travelled with them.
pub(crate) fn receive_object<'t>(
    tok: &'t Token<'t>,
    bytes: &[u8; MESSAGE_LEN],
    reference: OriginRef,
) -> Result<Obj<'t>> {
    let key = ObjectRef::decode(bytes)?;
    if key != *reference.key() {
        return fail(
            ErrorKind::InvalidMessage,
            "object pointer bytes do not match the reference they travel with",
        );
    }
    // The export must still be in the table, exactly: `materialize` checks it (INV-MSG-VALIDATE).
    materialize(tok, reference)
}

impl Token<'_> {
    /// Resolves object-pointer bytes from anywhere (a message copied out of a channel, a
    /// file, a fuzzer): the bytes are decoded and checked against the origin's export table,
    /// and only an exact, live export gives an object: a new proxy reference (or the object
    /// itself in its origin). Forged, stale, truncated or corrupted bytes give an
    /// `InvalidMessage` error and nothing is dereferenced (INV-MSG-VALIDATE); a message of
    /// another runtime gives `WrongRuntime` (INV-RUNTIME-OWN).
    pub fn resolve_object(&self, bytes: &[u8]) -> Result<Obj<'_>> {
        let key = ObjectRef::decode(bytes)?;
        self.runtime()
            .refuse_foreign(key.runtime, "this object-pointer message")?;
        let origin = self
            .runtime()
            .lookup(InterpId::new(key.origin))
            .map_err(|e| Error::new(ErrorKind::InvalidMessage, e.message()))?;
        // An interpreter whose destroy has begun hands out no new references, whatever its
        // policy: decided under the export table's mutex (INV-EXPORTS-CLOSED).
        let reference = OriginRef::resolve(&origin, key, Role::InFlight)?;
        materialize(self, reference)
    }
}
