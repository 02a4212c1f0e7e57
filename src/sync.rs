//! The one file that names `std::sync`, parking_lot, dashmap or loom.
//!
//! Every other module imports its synchronisation from here, so a `--cfg loom` build swaps
//! every primitive of the protocol for loom's checked one and a Miri build swaps the
//! concurrent map for a locked `HashMap` (dashmap's parking_lot_core fails Miri's strict
//! provenance under contention). The shapes follow parking_lot: `lock()` returns the guard
//! directly, and a condition variable takes the guard by value like std's.
//!
//! The bytes of a `bytearray` ([`DataByte`]) are `core` atomics in ordinary builds and loom's
//! in model builds (the design note on views, INV-BUF-ATOMIC-BYTES, explains why relaxed
//! atomics make concurrent reads and writes defined). What is deliberately *not* loom's: the
//! process-wide counter of [`process_unique`], which only makes numbers unique, and the
//! [`SetOnce`] word of an object header, which is written before the object is shared.

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::thread::yield_now;

    /// A retry loop's pause: loom must switch threads there, or it explores the loop
    /// spinning forever.
    pub(crate) use loom::thread::yield_now as spin_loop;
    pub(crate) use loom::thread::LocalKey;
    pub(crate) use loom::thread_local;

    pub(crate) type RawMutex<T> = loom::sync::Mutex<T>;
    pub(crate) type RawGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
    pub(crate) type RawCondvar = loom::sync::Condvar;

    pub(crate) fn lock<T>(m: &RawMutex<T>) -> RawGuard<'_, T> {
        m.lock()
            .expect("loom mutexes are never poisoned by the models")
    }

    pub(crate) fn wait<'a, T>(c: &RawCondvar, g: RawGuard<'a, T>) -> RawGuard<'a, T> {
        c.wait(g)
            .expect("loom mutexes are never poisoned by the models")
    }

    /// loom has no clock: a timed wait is an ordinary wait. Callers re-check their deadline
    /// against `Instant`, which loom leaves real; the models use untimed waits only.
    pub(crate) fn wait_for<'a, T>(
        c: &RawCondvar,
        g: RawGuard<'a, T>,
        _timeout: std::time::Duration,
    ) -> RawGuard<'a, T> {
        wait(c, g)
    }
}

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::Arc;
    pub(crate) use std::thread::yield_now;

    /// A retry loop's pause: the processor's spin hint (a thread switch in model builds).
    pub(crate) use core::hint::spin_loop;
    pub(crate) use std::thread::LocalKey;
    pub(crate) use std::thread_local;

    pub(crate) type RawMutex<T> = parking_lot::Mutex<T>;
    pub(crate) type RawGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
    pub(crate) type RawCondvar = parking_lot::Condvar;

    pub(crate) fn lock<T>(m: &RawMutex<T>) -> RawGuard<'_, T> {
        m.lock()
    }

    pub(crate) fn wait<'a, T>(c: &RawCondvar, mut g: RawGuard<'a, T>) -> RawGuard<'a, T> {
        c.wait(&mut g);
        g
    }

    pub(crate) fn wait_for<'a, T>(
        c: &RawCondvar,
        mut g: RawGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> RawGuard<'a, T> {
        c.wait_for(&mut g, timeout);
        g
    }

    /// std's `UnsafeCell` dressed in loom's closure API, so every access site is written
    /// once and checked by loom in model builds.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(core::cell::UnsafeCell::new(value))
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }

        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

/// `UnsafeCell` is loom's in model builds and std's (dressed in loom's `with` / `with_mut`)
/// otherwise. Callers guarantee exclusion themselves (for object state: by holding the owner
/// interpreter, INV-OWN-LOCKED); loom and Miri report a caller that does not.
pub(crate) use imp::{
    fence, spin_loop, thread_local, yield_now, Arc, AtomicBool, AtomicU64, AtomicUsize, LocalKey,
    Ordering, UnsafeCell,
};

/// `thread_local!` for a value made by a `const` expression: std's with a `const`
/// initialiser, so that accessing a value without a destructor is a plain thread-local load
/// (no lazy-initialisation check, and usable throughout the thread's exit), and loom's in
/// model builds, which takes no `const`.
#[cfg(not(loom))]
macro_rules! const_thread_local {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        std::thread_local! { $(#[$attr])* static $name: $t = const { $init }; }
    };
}
/// `thread_local!` for a value made by a `const` expression (see the ordinary build's).
#[cfg(loom)]
macro_rules! const_thread_local {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        loom::thread_local! { $(#[$attr])* static $name: $t = $init; }
    };
}
pub(crate) use const_thread_local;

/// Whether a thread-local's destructor must not touch model objects: in a model build while a
/// panic unwinds, loom drops its threads' thread-locals outside the execution, where touching
/// a loom object panics again and aborts the process. Never in ordinary builds.
pub(crate) fn model_torn_down() -> bool {
    cfg!(loom) && std::thread::panicking()
}

/// The byte of a `bytearray`: relaxed atomics make a write racing a remote view's read
/// defined (INV-BUF-ATOMIC-BYTES). loom's in model builds, so that the models check it too.
#[cfg(not(loom))]
pub(crate) type DataByte = core::sync::atomic::AtomicU8;
/// The byte of a `bytearray` (see above): loom's atomic in model builds.
#[cfg(loom)]
pub(crate) type DataByte = loom::sync::atomic::AtomicU8;

/// A pointer set once, while its object is reachable from one interpreter only, and read by
/// any thread afterwards: how an object is shared (owned, immortal, or frozen and counted by
/// its component). A `core` atomic in every build, written with `Release` and read with
/// `Acquire`, so that a reader that sees the pointer sees what it points to. Not loom's: its
/// readers reach the object through a synchronising operation loom does model (an interpreter
/// lock, a channel's mutex), and a reader that races the one write (an `OwnedObj` dropped on
/// another thread while its owner freezes the object) is correct with either value.
#[derive(Debug)]
pub(crate) struct SetOnce<T>(core::sync::atomic::AtomicPtr<T>);

impl<T> SetOnce<T> {
    pub(crate) const fn new(value: *mut T) -> Self {
        Self(core::sync::atomic::AtomicPtr::new(value))
    }

    pub(crate) fn get(&self) -> *mut T {
        self.0.load(core::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn set(&self, value: *mut T) {
        self.0.store(value, core::sync::atomic::Ordering::Release);
    }
}

/// A value made once for the whole process: the immortal `None`, `True` and `False`
/// (INV-IMMORTAL). std's in every build: they outlive every loom execution, and no model
/// touches their counts (immortals have none).
pub(crate) use std::sync::OnceLock;

/// A number never handed out before in this process (runtime ids, export serials), so that a
/// key made of it names one thing across every runtime in the process. Unique, not ordered:
/// each thread takes a range of [`UNIQUE_RANGE`] at a time and hands it out in order, so
/// an export costs no atomic read-modify-write.
///
/// A plain `core` atomic and a plain `std` thread-local in every build, deliberately: a
/// counter for uniqueness, not part of any protocol. Loom resets its own state every
/// execution and must not hand out the same number twice across executions of a model.
/// Model threads that share an OS thread share its range, and loom switches threads only at
/// its own operations, never inside this function.
pub(crate) fn process_unique() -> u64 {
    static NEXT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
    std::thread_local! {
        /// The next number of this thread's range, and the range's end.
        static RANGE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
    }
    RANGE.with(|range| {
        let (mut next, mut end) = range.get();
        if next == end {
            next = NEXT.fetch_add(UNIQUE_RANGE, core::sync::atomic::Ordering::Relaxed);
            end = next + UNIQUE_RANGE;
        }
        range.set((next + 1, end));
        next
    })
}

/// How many unique numbers a thread takes at a time (fewer under Miri, so that its test
/// crosses ranges quickly).
const UNIQUE_RANGE: u64 = if cfg!(miri) { 16 } else { 1024 };

/// A mutex with parking_lot's shape: `lock()` gives the guard, never a poison error.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(imp::RawMutex<T>);

/// The guard of [`Mutex`]; not `Send` in any build.
pub(crate) type MutexGuard<'a, T> = imp::RawGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(imp::RawMutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        imp::lock(&self.0)
    }
}

/// A condition variable that takes and returns the guard, like std's.
#[derive(Debug, Default)]
pub(crate) struct Condvar(imp::RawCondvar);

impl Condvar {
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        imp::wait(&self.0, guard)
    }

    /// Waits at most `timeout`; may return early (the caller re-checks its condition).
    pub(crate) fn wait_for<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        imp::wait_for(&self.0, guard, timeout)
    }

    pub(crate) fn notify_one(&self) {
        self.0.notify_one();
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all();
    }
}

pub(crate) use map::ConcurrentMap;

/// The hasher of [`ConcurrentMap`], the export table and the identity cache: their keys are
/// ids the runtime hands out in sequence and object addresses, none chosen by user data, so a
/// Fibonacci multiply spreads them at a fraction of SipHash's cost. (Dicts, keyed by user
/// data, keep SipHash.)
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    /// The product's high bits are its well-mixed ones, and hashbrown takes a bucket from
    /// the low bits: rotated down, so that addresses (multiples of 16 and more) do not all
    /// land on every sixteenth bucket.
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

pub(crate) type IdBuildHasher = std::hash::BuildHasherDefault<IdHasher>;

/// A concurrent map that never lends out a guard and takes no closure: reads clone the value
/// out, so nobody can hold a shard lock while entering an interpreter or dropping an item, in
/// any build (INV-NO-GUARD-SWITCH).
#[cfg(not(any(loom, miri)))]
mod map {
    use std::hash::Hash;

    #[derive(Debug)]
    pub(crate) struct ConcurrentMap<K: Eq + Hash, V>(dashmap::DashMap<K, V, super::IdBuildHasher>);

    impl<K: Eq + Hash, V> ConcurrentMap<K, V> {
        pub(crate) fn new() -> Self {
            Self(dashmap::DashMap::with_hasher(
                super::IdBuildHasher::default(),
            ))
        }

        pub(crate) fn insert(&self, key: K, value: V) -> Option<V> {
            self.0.insert(key, value)
        }

        pub(crate) fn remove(&self, key: &K) -> Option<V> {
            self.0.remove(key).map(|(_, v)| v)
        }

        pub(crate) fn get_cloned(&self, key: &K) -> Option<V>
        where
            V: Clone,
        {
            self.0.get(key).map(|entry| entry.value().clone())
        }

        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }

        /// A snapshot of every value; the shard locks are released before it returns.
        pub(crate) fn values_cloned(&self) -> Vec<V>
        where
            V: Clone,
        {
            self.0.iter().map(|entry| entry.value().clone()).collect()
        }

        pub(crate) fn drain(&self) -> Vec<V>
        where
            K: Clone,
        {
            let keys: Vec<K> = self.0.iter().map(|entry| entry.key().clone()).collect();
            keys.iter().filter_map(|k| self.remove(k)).collect()
        }
    }
}

#[cfg(any(loom, miri))]
mod map {
    use super::Mutex;
    use std::collections::HashMap;
    use std::hash::Hash;

    #[derive(Debug)]
    pub(crate) struct ConcurrentMap<K: Eq + Hash, V>(Mutex<HashMap<K, V, super::IdBuildHasher>>);

    impl<K: Eq + Hash, V> ConcurrentMap<K, V> {
        pub(crate) fn new() -> Self {
            Self(Mutex::new(HashMap::default()))
        }

        pub(crate) fn insert(&self, key: K, value: V) -> Option<V> {
            self.0.lock().insert(key, value)
        }

        pub(crate) fn remove(&self, key: &K) -> Option<V> {
            self.0.lock().remove(key)
        }

        pub(crate) fn get_cloned(&self, key: &K) -> Option<V>
        where
            V: Clone,
        {
            self.0.lock().get(key).cloned()
        }

        pub(crate) fn len(&self) -> usize {
            self.0.lock().len()
        }

        pub(crate) fn values_cloned(&self) -> Vec<V>
        where
            V: Clone,
        {
            self.0.lock().values().cloned().collect()
        }

        pub(crate) fn drain(&self) -> Vec<V>
        where
            K: Clone,
        {
            self.0.lock().drain().map(|(_, v)| v).collect()
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn process_unique_numbers_are_unique_across_threads_and_ranges() {
        let per_thread = 3 * super::UNIQUE_RANGE as usize + 7;
        let taken: Vec<Vec<u64>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(move || (0..per_thread).map(|_| super::process_unique()).collect())
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut seen = HashSet::new();
        for numbers in &taken {
            assert!(
                numbers.windows(2).all(|w| w[0] < w[1]),
                "in order within a thread"
            );
            for &n in numbers {
                assert!(n != 0 && n != u64::MAX);
                assert!(seen.insert(n), "{n} handed out twice");
            }
        }
        assert_eq!(seen.len(), 4 * per_thread);
    }

    #[test]
    fn object_addresses_spread_over_the_buckets_hashbrown_picks_from_low_bits() {
        use std::hash::{BuildHasher, Hasher};
        // 128 object blocks 112 bytes apart, as the allocator lays them out, into a table of
        // 128 buckets: before the rotation every hash was a multiple of 16 there.
        let buckets: HashSet<u64> = (0..128u64)
            .map(|i| {
                let mut h = super::IdBuildHasher::default().build_hasher();
                h.write_usize((0x7f00_0000_1000 + 112 * i) as usize);
                h.finish() & 127
            })
            .collect();
        assert!(buckets.len() >= 64, "{} buckets of 128", buckets.len());
    }
}
