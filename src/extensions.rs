//! State that a layer keeps inside a structure of a layer below it, without the lower layer
//! naming its type. Each interpreter holds its export table and its identity cache this
//! way, and the runtime its channel registry: `crate::lifecycle` makes them when the
//! interpreter (or runtime) is made, and each is read back by the layer that defines it
//! (`Exports::of`, `IdentityCache::of`, `Runtime::channels_live`). See
//! `design/ARCHITECTURE.md`, "Layers".

use std::any::{type_name, Any};
use std::fmt;

/// A type kept in an [`Extensions`], at a fixed slot, so that finding it is one index and
/// one type check (it is looked up on every channel operation and export).
pub(crate) trait Extension: Any + Send + Sync {
    /// Its index in the set it is installed in.
    const SLOT: usize;
}

/// A fixed set of values of distinct types, each at its type's slot.
pub(crate) struct Extensions(Box<[Box<dyn Any + Send + Sync>]>);

impl Extensions {
    /// The set holding `parts`, each at the slot its type names (checked when read).
    pub(crate) fn new(parts: Vec<Box<dyn Any + Send + Sync>>) -> Self {
        Self(parts.into_boxed_slice())
    }

    /// The part of type `T`. Every part is installed when its holder is made, so a missing
    /// one (or one at the wrong slot) is a bug in `crate::lifecycle`, not a condition to
    /// handle.
    pub(crate) fn get<T: Extension>(&self) -> &T {
        self.0
            .get(T::SLOT)
            .and_then(|part| part.downcast_ref::<T>())
            .unwrap_or_else(|| panic!("no {} was installed at slot {}", type_name::<T>(), T::SLOT))
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extensions({} parts)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::{Extension, Extensions};

    struct Table(u32);
    struct Cache(&'static str);
    impl Extension for Table {
        const SLOT: usize = 0;
    }
    impl Extension for Cache {
        const SLOT: usize = 1;
    }

    #[test]
    fn each_part_is_found_at_its_slot() {
        let ext = Extensions::new(vec![Box::new(Table(7)), Box::new(Cache("table"))]);
        assert_eq!(ext.get::<Table>().0, 7);
        assert_eq!(ext.get::<Cache>().0, "table");
    }

    #[test]
    #[should_panic(expected = "was installed at slot 1")]
    fn a_missing_part_is_a_bug() {
        let ext = Extensions::new(vec![Box::new(Table(7))]);
        let _ = ext.get::<Cache>();
    }

    #[test]
    #[should_panic(expected = "was installed at slot 0")]
    fn a_part_at_the_wrong_slot_is_a_bug() {
        let ext = Extensions::new(vec![Box::new(Cache("x")), Box::new(Table(7))]);
        let _ = ext.get::<Table>();
    }
}
