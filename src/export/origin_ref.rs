//! [`OriginRef`]: one origin reference to an entry of an export table, owned, bound to no
//! interpreter, and given back in the origin when dropped.

use super::{Exports, GiveBack, Role};
use crate::error::Result;
use crate::interp::{InterpId, InterpState};
use crate::message::ObjectRef;
use crate::object::ObjPtr;
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
    origin: Arc<InterpState>,
}

impl OriginRef {
    /// Wraps a reference just added to `origin`'s table (by `export` or `duplicate`).
    pub(crate) fn adopt(key: ObjectRef, role: Role, origin: Arc<InterpState>) -> Self {
        OriginRef {
            key,
            role,
            holder: None,
            count: 1,
            origin,
        }
    }

    pub(crate) fn key(&self) -> &ObjectRef {
        &self.key
    }

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
        OriginRef::adopt(self.key, role, Arc::clone(&self.origin))
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
        if count == 0
            || !Exports::of(&self.origin).start_release(&self.key, self.role, count, self.holder)
        {
            return;
        }
        let release = GiveBack {
            key: self.key,
            count,
        };
        release_joined_in_owner(&self.origin.rt, &self.origin, release);
    }
}
