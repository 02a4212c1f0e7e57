//! `dict`: insertion-ordered, keyed by a structural [`HashKey`] computed from the key object.
//!
//! Keys hash by value for the immutable builtins (so `1`, `1.0` and `True` are one key, as in
//! Python) and by identity for instances; user `__hash__` / `__eq__` methods are not
//! consulted by `dict`, which keeps dict operations free of user code.

use std::collections::HashMap;

use super::ObjPtr;

/// The value a key hashes and compares by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum HashKey {
    None,
    /// `bool`, `int` and integral `float`s.
    Int(i64),
    /// Non-integral floats, by bit pattern.
    Float(u64),
    Str(Box<str>),
    Bytes(Box<[u8]>),
    Tuple(Box<[HashKey]>),
    /// Instances, classes and methods: by address (the key holds a strong reference, so the
    /// address cannot be reused while the entry lives).
    Identity(usize),
}

impl HashKey {
    pub(crate) fn from_float(value: f64) -> HashKey {
        let integral = value.fract() == 0.0 && value >= i64::MIN as f64 && value < i64::MAX as f64;
        if integral {
            HashKey::Int(value as i64)
        } else {
            HashKey::Float(value.to_bits())
        }
    }
}

/// The entries hold one strong reference to each key and each value.
#[derive(Default)]
pub(crate) struct Dict {
    entries: Vec<Option<(ObjPtr, ObjPtr)>>,
    index: HashMap<HashKey, usize>,
}

impl Dict {
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn get(&self, key: &HashKey) -> Option<ObjPtr> {
        let slot = *self.index.get(key)?;
        self.entries[slot].map(|(_, value)| value)
    }

    /// Inserts a (key, value) pair whose references the dict takes over. Returns the
    /// references the caller must now release: on overwrite, the old value and the new key
    /// (the dict keeps the original key, as Python does).
    pub(crate) fn insert(&mut self, hash: HashKey, key: ObjPtr, value: ObjPtr) -> Vec<ObjPtr> {
        if let Some(&slot) = self.index.get(&hash) {
            let entry = self.entries[slot]
                .as_mut()
                .expect("indexed slots are occupied");
            let old = std::mem::replace(&mut entry.1, value);
            return vec![old, key];
        }
        self.index.insert(hash, self.entries.len());
        self.entries.push(Some((key, value)));
        Vec::new()
    }

    /// Removes `key`, handing its (key, value) references to the caller.
    pub(crate) fn remove(&mut self, key: &HashKey) -> Option<(ObjPtr, ObjPtr)> {
        let slot = self.index.remove(key)?;
        let removed = self.entries[slot].take();
        if self.entries.len() > 2 * self.index.len() + 8 {
            self.compact();
        }
        removed
    }

    /// The live entries in insertion order (pointers only; no references taken).
    pub(crate) fn entries(&self) -> Vec<(ObjPtr, ObjPtr)> {
        self.entries.iter().flatten().copied().collect()
    }

    /// Every reference the dict holds, for deallocation.
    pub(crate) fn into_refs(self, out: &mut impl Extend<ObjPtr>) {
        out.extend(
            self.entries
                .into_iter()
                .flatten()
                .flat_map(|(key, value)| [key, value]),
        );
    }

    fn compact(&mut self) {
        let live: Vec<(HashKey, (ObjPtr, ObjPtr))> = {
            let mut by_slot: Vec<(usize, HashKey)> =
                self.index.drain().map(|(k, slot)| (slot, k)).collect();
            by_slot.sort_unstable_by_key(|(slot, _)| *slot);
            by_slot
                .into_iter()
                .map(|(slot, k)| (k, self.entries[slot].expect("indexed slots are occupied")))
                .collect()
        };
        self.entries.clear();
        for (hash, entry) in live {
            self.index.insert(hash, self.entries.len());
            self.entries.push(Some(entry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HashKey;

    #[test]
    fn integral_floats_share_a_key_with_ints() {
        assert_eq!(HashKey::from_float(1.0), HashKey::Int(1));
        assert_eq!(HashKey::from_float(-0.0), HashKey::Int(0));
        assert_ne!(HashKey::from_float(0.5), HashKey::Int(0));
        assert_eq!(
            HashKey::from_float(f64::INFINITY),
            HashKey::Float(f64::INFINITY.to_bits())
        );
    }
}
