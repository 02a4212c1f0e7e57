//! [`OriginRef`]: one origin reference to an entry of an export table, owned, bound to no
//! interpreter, and given back in the origin when dropped.

use super::{Exports, GiveBack, Role, Started};
use crate::error::Result;
use crate::interp::{Anchored, InterpId, InterpState};
use crate::message::ObjectRef;
use crate::object::{Obj, ObjPtr};
use crate::release::release_joined_in_owner;
use crate::runtime::Runtime;
use crate::sync::Arc;

/// One origin reference, owned: it keeps an exported object alive in its origin until
/// dropped, and then gives the reference back in the origin by the runtime's release
/// strategy. Bound to no interpreter.
pub(crate) struct OriginRef {
    key: ObjectRef,
    role: Role,
    /// For a proxy's references: the interpreter holding the proxy.
    holder: Option<InterpId>,
    /// How many origin references this value holds: one, or more once a proxy has absorbed
    /// the surplus references of identity-cache hits. They go back in one release that
    /// carries the count (INV-IDENTITY-ONE).
    count: usize,
    origin: Anchored,
}

impl OriginRef {
    /// A new origin reference to `obj`, in `obj`'s interpreter (its token proves it held).
    pub(crate) fn export(obj: &Obj<'_>, role: Role) -> OriginRef {
        let state = obj.token().interp();
        let key = Exports::of(state).export(obj, role);
        // SAFETY: `export` counted the reference out, in every case (INV-OWNER-OUTLIVES).
        unsafe { OriginRef::adopt(key, role, state) }
    }

    /// A new origin reference to what `key` names in `origin`, if its table has it exactly
    /// and is not closed (for object-pointer bytes, which carry none of their own).
    pub(crate) fn resolve(origin: &Arc<InterpState>, key: ObjectRef, role: Role) -> Result<Self> {
        Exports::of(origin).validate_and_duplicate(&key, role)?;
        // SAFETY: counted out just now (INV-OWNER-OUTLIVES).
        Ok(unsafe { OriginRef::adopt(key, role, origin) })
    }

    /// # Safety
    /// The reference was just counted out in `origin`'s table.
    unsafe fn adopt(key: ObjectRef, role: Role, origin: &Arc<InterpState>) -> Self {
        OriginRef {
            key,
            role,
            holder: None,
            count: 1,
            // SAFETY: the reference this value holds is counted out until it ends, in this
            // value's drop (the caller's contract).
            origin: unsafe { Anchored::new(origin) },
        }
    }

    pub(crate) fn key(&self) -> &ObjectRef {
        &self.key
    }

    /// The origin's state, alive while this reference is (INV-OWNER-OUTLIVES).
    pub(crate) fn origin(&self) -> &Arc<InterpState> {
        &self.origin
    }

    /// The origin's runtime (the origin state's uncounted handle).
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.origin.rt
    }

    /// A second reference to the same object, in `role`.
    pub(crate) fn duplicate(&self, role: Role) -> OriginRef {
        Exports::of(&self.origin).duplicate(&self.key, role);
        // SAFETY: `duplicate` counted it out, beside this one.
        unsafe { OriginRef::adopt(self.key, role, &self.origin) }
    }

    /// Gives up this value's references without releasing them, for a holder that takes
    /// them over (a proxy absorbing an identity-cache hit), and says how many there were.
    pub(crate) fn hand_over(mut self) -> usize {
        std::mem::replace(&mut self.count, 0)
    }

    /// Adds `count` references previously handed over to a holder of this value.
    pub(crate) fn take_back(&mut self, count: usize) {
        self.count += count;
    }

    /// Hands these references to a proxy in interpreter `holder`, and gives the object,
    /// checked against the table in the same critical section (INV-MSG-VALIDATE). On an
    /// error they stay in flight.
    pub(crate) fn give_to_proxy(&mut self, holder: InterpId) -> Result<ObjPtr> {
        debug_assert_eq!(self.role, Role::InFlight);
        let target = Exports::of(&self.origin).to_proxy(&self.key, self.count, holder)?;
        self.role = Role::Proxy;
        self.holder = Some(holder);
        Ok(target)
    }

    /// The object, if the origin still has the entry: checked against the table, never
    /// taken on trust (INV-MSG-VALIDATE).
    pub(crate) fn target(&self) -> Result<ObjPtr> {
        Exports::of(&self.origin).validate(&self.key)
    }
}

impl Drop for OriginRef {
    fn drop(&mut self) {
        let count = self.count;
        if count == 0 {
            return;
        }
        match Exports::of(&self.origin).start_release(&self.key, self.role, count, self.holder) {
            // Still out, as pending, until the give-back has run in the origin: the state
            // stays anchored meanwhile.
            Started::GiveBack => {
                let release = GiveBack {
                    key: self.key,
                    count,
                };
                release_joined_in_owner(&self.origin, release);
            }
            // The state is not used after this: it may go with the anchor.
            Started::Ended(anchor) => drop(anchor),
        }
    }
}
