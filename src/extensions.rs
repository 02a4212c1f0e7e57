//! State that a layer keeps inside a structure of a layer below it, without the lower layer
//! naming its type. Each interpreter holds its export table and its identity cache this
//! way, and the runtime its channel registry: `crate::lifecycle` makes them when the
//! interpreter (or runtime) is made, and each is read back by the layer that defines it
//! (`Exports::of`, `IdentityCache::of`, `Runtime::channels_live`). See
//! `design/ARCHITECTURE.md`, "Layers".

use std::any::{type_name, Any};
use std::fmt;

/// A fixed set of values of distinct types, each found by its type.
pub(crate) struct Extensions(Box<[Box<dyn Any + Send + Sync>]>);

impl Extensions {
    /// The set holding `parts`, each of a type of its own.
    pub(crate) fn new(parts: Vec<Box<dyn Any + Send + Sync>>) -> Self {
        for (i, part) in parts.iter().enumerate() {
            let id = (**part).type_id();
            debug_assert!(
                parts[..i].iter().all(|p| (**p).type_id() != id),
                "two extensions of one type"
            );
        }
        Self(parts.into_boxed_slice())
    }

    /// The part of type `T`. Every part is installed when its holder is made, so a missing
    /// one is a bug in `crate::lifecycle`, not a condition to handle.
    pub(crate) fn get<T: Any>(&self) -> &T {
        self.0
            .iter()
            .find_map(|part| part.downcast_ref::<T>())
            .unwrap_or_else(|| panic!("no {} was installed", type_name::<T>()))
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extensions({} parts)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::Extensions;

    #[test]
    fn each_part_is_found_by_its_type() {
        let ext = Extensions::new(vec![Box::new(7u32), Box::new(String::from("table"))]);
        assert_eq!(*ext.get::<u32>(), 7);
        assert_eq!(ext.get::<String>(), "table");
    }

    #[test]
    #[should_panic(expected = "no u8 was installed")]
    fn a_missing_part_is_a_bug() {
        let ext = Extensions::new(vec![Box::new(7u32)]);
        let _ = ext.get::<u8>();
    }
}
