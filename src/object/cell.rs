//! `OwnerCell`: object state that only the thread holding the object's owner touches.

use crate::sync::UnsafeCell;
#[cfg(debug_assertions)]
use crate::thread_state::current;

/// A cell of object state that only the thread holding the object's owner touches
/// (INV-OWN-LOCKED). The accessors the operations use are on [`Obj`](super::Obj)
/// (`state.rs`), which proves the holding.
///
/// In debug builds the cell remembers the interpreter the thread held when it was made (the
/// interpreter that allocates its object) and every access checks that the thread holds
/// that interpreter now, as refcount touches do: a wrong-interpreter read or write of object
/// state panics instead of racing.
pub(crate) struct OwnerCell<T> {
    value: UnsafeCell<T>,
    /// The address of the owner's state, or 0 for an unchecked cell (see
    /// [`OwnerCell::unchecked`]).
    #[cfg(debug_assertions)]
    owner: std::cell::Cell<usize>,
}

impl<T> OwnerCell<T> {
    /// A cell of the interpreter this thread holds (in debug builds, checked at each access).
    pub(crate) fn new(value: T) -> Self {
        Self {
            value: UnsafeCell::new(value),
            #[cfg(debug_assertions)]
            owner: std::cell::Cell::new(current().addr()),
        }
    }

    /// A cell whose accesses are not checked: for state that belongs to an interpreter but
    /// is made with it, not by a thread holding it (its identity cache), and is reached only
    /// through that interpreter's token.
    pub(crate) fn unchecked(value: T) -> Self {
        Self {
            value: UnsafeCell::new(value),
            #[cfg(debug_assertions)]
            owner: std::cell::Cell::new(0),
        }
    }

    /// Makes the cell its object's new owner's (in debug builds, what accesses are checked
    /// against), when a moved object is adopted. Touches only the debug check, so it is
    /// safe; it is called only by the thread alone with a moved graph (INV-MOVE-EXCLUSIVE).
    pub(crate) fn rehome(&self, owner: &crate::interp::InterpState) {
        #[cfg(debug_assertions)]
        if self.owner.get() != 0 {
            self.owner.set(std::ptr::from_ref(owner).addr());
        }
        #[cfg(not(debug_assertions))]
        let _ = owner;
    }

    /// The value, from a cell that is being dropped with its object.
    pub(crate) fn into_inner(self) -> T {
        self.value.into_inner()
    }

    /// Panics (debug builds) unless the calling thread holds the interpreter that made the
    /// cell (INV-OWN-LOCKED).
    fn check_owner(&self) {
        #[cfg(debug_assertions)]
        if self.owner.get() != 0 && current().addr() != self.owner.get() {
            let held = current();
            let held = if held.is_null() {
                "no interpreter".to_string()
            } else {
                // SAFETY: a non-null CURRENT points at the state this thread holds, kept
                // alive by its entry (INV-ONE-LOCK).
                format!("interpreter {}", unsafe { (*held).id })
            };
            panic!(
                "wrong interpreter: object state touched from a thread that holds {held}, not \
                 the object's owner (INV-OWN-LOCKED)"
            );
        }
    }

    /// # Safety
    /// The calling thread holds the owner of the object this cell belongs to, and `f` does
    /// not reach this cell again (it runs no user code and drops no object).
    pub(crate) unsafe fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.check_owner();
        // SAFETY: per the contract, this thread has exclusive access to the cell for the
        // duration of `f` (INV-OWN-LOCKED) and `f` creates no second reference to it.
        self.value.with_mut(|p| f(unsafe { &mut *p }))
    }

    /// A shared view of a frozen object's cell, from any thread (unchecked: the object has
    /// no owner to hold any more).
    ///
    /// # Safety
    /// The object this cell belongs to is frozen, so nothing writes the cell again
    /// (INV-FROZEN-IMMUTABLE), or the calling thread is alone with it.
    pub(crate) unsafe fn with_frozen<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        // SAFETY: per the contract, every access from now on is a read.
        self.value.with(|p| f(unsafe { &*p }))
    }

    /// # Safety
    /// As for [`OwnerCell::with_mut`].
    pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.check_owner();
        // SAFETY: as for `with_mut`; a shared view for the duration of `f` (INV-OWN-LOCKED).
        self.value.with(|p| f(unsafe { &*p }))
    }
}
