//! Runtime-wide instrumentation: monotonic event counters that experiments read before and
//! after a run ([`Counters::since`]).
//!
//! Counting inside an interpreter costs no atomic read-modify-write and writes no cache line
//! another thread writes. Every entry into one of a runtime's interpreters makes the thread's
//! own [`Block`] of counters for that runtime its current one ([`LiveCounters::make_current`]):
//! a thread-local cache holds the runtime's id and the block, registered in the runtime's
//! [`LiveCounters`] on the thread's first entry. A bump compares the cached id with its
//! runtime's and, if they match, adds with a relaxed load and store, the block's one writer
//! being its thread. Otherwise (a thread outside the runtime's interpreters) it adds to the
//! runtime's shared block with a relaxed read-modify-write. A snapshot sums every block with
//! relaxed loads.
//!
//! Snapshots are monotone: a later snapshot's load of each block reads no older value than an
//! earlier one's (read-read coherence), and a block leaves the registry (its thread has
//! exited) only once its counts are added to the shared block, under the registry's lock,
//! which snapshots take. So [`Counters::since`] never underflows. The counters order nothing.

use std::cell::{Cell, RefCell};
use std::ptr;

use crate::sync::{
    const_thread_local, model_torn_down, process_unique, thread_local, Arc, AtomicU64, Mutex,
    Ordering,
};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident: $event:ident ),* $(,)?) => {
        /// An event counted by the runtime: one counter of [`Counters`] each.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Event {
            $( $(#[$doc])* $event, )*
        }

        /// How many events there are: the length of a [`Block`].
        const EVENTS: usize = [$( Event::$event ),*].len();

        /// A snapshot of a runtime's counters.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Counters {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl Counters {
            /// The counters from their sums, indexed by [`Event`].
            fn from_sums(sums: [u64; EVENTS]) -> Self {
                let [$( $name ),*] = sums;
                Counters { $( $name, )* }
            }

            /// The events counted between `earlier` and `self`.
            ///
            /// # Panics
            /// If `earlier` was taken after `self` (some count in it is higher: counts only
            /// grow), naming the first such counter.
            pub fn since(&self, earlier: &Counters) -> Counters {
                Counters { $( $name: between(stringify!($name), earlier.$name, self.$name), )* }
            }

            /// Every counter with its name, for tables and machine-readable output.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![ $( (stringify!($name), self.$name), )* ]
            }
        }
    };
}

/// `now - then` for the counter `name`, refusing a `then` taken later.
fn between(name: &str, then: u64, now: u64) -> u64 {
    now.checked_sub(then).unwrap_or_else(|| {
        panic!("Counters::since: `earlier` counts {then} {name}, more than the {now} of `self`: it was taken later")
    })
}

counters! {
    /// Entries into an interpreter from outside any interpreter (`Runtime::enter`).
    enters: Enters,
    /// Round trips into another interpreter and back: `Token::switch`, and forwarded proxy
    /// operations.
    switches: Switches,
    /// Times a thread found an interpreter's lock held and had to wait for it.
    lock_waits: LockWaits,
    /// Calls queued on some interpreter's pending-call inbox.
    pending_queued: PendingQueued,
    /// Queued calls that have run in their interpreter.
    pending_run: PendingRun,
    /// Objects allocated, all interpreters together.
    objects_allocated: ObjectsAllocated,
    /// Objects freed, all interpreters together (frozen ones included).
    objects_freed: ObjectsFreed,
    /// Objects frozen (each counted once, when its graph is frozen).
    objects_frozen: ObjectsFrozen,
    /// Objects moved out of an interpreter (each object of each moved graph).
    objects_moved: ObjectsMoved,
    /// Moved objects adopted by their receiver (the rest went back to their sender).
    objects_adopted: ObjectsAdopted,
    /// Buffers exported (bytes, bytearray and view exports taken).
    buffers_exported: BuffersExported,
    /// Buffer exports released.
    buffers_released: BuffersReleased,
    /// Releases run at once because the releasing thread held the owner.
    releases_direct: ReleasesDirect,
    /// Entries into an owner to release (switch strategy, adaptive with a free owner, a
    /// deferred release past the inbox limit, or a full batch: one entry for all of them).
    releases_switched: ReleasesSwitched,
    /// Releases kept in the releasing thread's batch until it took the owner back or let go
    /// of the interpreter it held (INV-RELEASE-BATCH).
    releases_batched: ReleasesBatched,
    /// Releases queued on the owner's inbox (deferred, or adaptive with a busy owner).
    releases_deferred: ReleasesDeferred,
    /// Releases run in an owner that had been destroyed (its memory outlived it).
    releases_late: ReleasesLate,
    /// Items put on a channel.
    channel_sends: ChannelSends,
    /// Items taken off a channel by a receiver.
    channel_recvs: ChannelRecvs,
    /// Bytes handed over zero-copy (buffer items sent).
    bytes_zero_copy: BytesZeroCopy,
    /// Bytes copied (bytes items: once at send).
    bytes_copied: BytesCopied,
    /// Proxies made.
    proxies_created: ProxiesCreated,
    /// Operations forwarded by proxies to their origin.
    forwarded_calls: ForwardedCalls,
    /// Receives that found the proxy in the identity cache.
    identity_hits: IdentityHits,
    /// Receives that made a new proxy with the identity cache on.
    identity_misses: IdentityMisses,
    /// Origin references taken on exported objects (the model's remote increfs).
    origin_refs_taken: OriginRefsTaken,
    /// Origin references given back, in the origin (the model's remote decrefs).
    origin_refs_released: OriginRefsReleased,
}

/// One thread's counters for one runtime. Aligned to its own cache lines, so that a thread
/// counting never writes a line another thread writes.
#[derive(Debug)]
#[repr(align(128))]
struct Block {
    /// The [`LiveCounters::id`] of the runtime it counts for.
    registry: u64,
    counts: [AtomicU64; EVENTS],
}

impl Block {
    fn new(registry: u64) -> Self {
        Self {
            registry,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Counts `n` events in a block only the calling thread writes: no read-modify-write.
    fn add_own(&self, event: Event, n: u64) {
        let count = &self.counts[event as usize];
        count.store(count.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// Counts `n` events in a block any thread may write.
    fn add_shared(&self, event: Event, n: u64) {
        self.counts[event as usize].fetch_add(n, Ordering::Relaxed);
    }
}

/// The live counters of one runtime: the registry of its threads' blocks.
#[derive(Debug)]
pub(crate) struct LiveCounters {
    /// Unique in the process, never reused: the key of this runtime's block in a thread's
    /// table (an address could be reused by a later runtime).
    id: u64,
    /// Every block a thread has registered for this runtime and not retired.
    blocks: Mutex<Vec<Arc<Block>>>,
    /// The counts of retired blocks (their thread has exited), and the events counted by
    /// threads whose current block is not this runtime's (outside its interpreters, or
    /// exiting): written by any thread, with read-modify-writes.
    shared: Block,
}

impl Default for LiveCounters {
    fn default() -> Self {
        let id = process_unique();
        Self {
            id,
            blocks: Mutex::new(Vec::new()),
            shared: Block::new(id),
        }
    }
}

const_thread_local! {
    /// The one-entry cache: the [`LiveCounters::id`] of the runtime this thread counts for in
    /// its own block, and that block, or `(0, null)` (no id is 0). The block is one `TABLE`
    /// holds (INV-COUNTER-CACHE).
    static LAST: Cell<(u64, *const Block)> = Cell::new((0, ptr::null()));
}

thread_local! {
    // loom's `thread_local!` takes no `const` initialiser.
    #[allow(clippy::missing_const_for_thread_local)]
    /// This thread's blocks, one per runtime it has entered.
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

/// A thread's blocks. Each is shared with its runtime's registry, so a block whose `Arc` the
/// table alone holds belongs to a runtime that is gone: such blocks are pruned whenever one is
/// added, so a thread that uses many runtimes in turn keeps only the live ones' blocks.
#[derive(Debug, Default)]
struct Table {
    blocks: Vec<Arc<Block>>,
}

impl Drop for Table {
    fn drop(&mut self) {
        if model_torn_down() {
            // A failed model: its blocks are loom's and cannot be dropped any more.
            std::mem::forget(std::mem::take(&mut self.blocks));
            return;
        }
        // The cache must not outlive the blocks (INV-COUNTER-CACHE); from here on, this
        // thread counts in the shared blocks.
        forget_last();
    }
}

/// Empties the one-entry cache.
fn forget_last() {
    // An error is loom's cache already destroyed at the thread's exit: nothing to empty.
    let _ = LAST.try_with(|last| last.set((0, ptr::null())));
}

impl Table {
    /// This thread's block for `counters`, registered on its first use.
    fn block_for(&mut self, counters: &LiveCounters) -> &Block {
        let i = match self.blocks.iter().position(|b| b.registry == counters.id) {
            Some(i) => i,
            None => {
                self.blocks.retain(|b| Arc::strong_count(b) > 1);
                self.blocks.push(counters.register());
                self.blocks.len() - 1
            }
        };
        &self.blocks[i]
    }
}

impl LiveCounters {
    /// Counts one `event`.
    #[inline]
    pub(crate) fn bump(&self, event: Event) {
        self.add(event, 1);
    }

    /// Counts `n` events: in this thread's block if the cache holds this runtime's (a
    /// thread-local load, a compare, a thread-local load and an add), else in the shared block
    /// (one read-modify-write). No call: inlined, it keeps its callers small.
    #[inline]
    pub(crate) fn add(&self, event: Event, n: u64) {
        let (id, block) = LAST.try_with(Cell::get).unwrap_or((0, ptr::null()));
        if id == self.id {
            // SAFETY: a non-zero id comes with a block this thread's table holds, and the
            // table drops none while the cache points at it (INV-COUNTER-CACHE).
            unsafe { &*block }.add_own(event, n);
        } else {
            self.shared.add_shared(event, n);
        }
    }

    /// Makes this thread count for this runtime in its own block from now on, until it enters
    /// another runtime's interpreter: every entry into an interpreter (and every return from
    /// a suspension) calls it, so what runs inside counts without read-modify-writes.
    #[inline]
    pub(crate) fn make_current(&self) {
        if LAST.try_with(|last| last.get().0).ok() != Some(self.id) {
            self.cache_block();
        }
    }

    /// Finds (or registers) this thread's block for this runtime and caches it.
    #[cold]
    #[inline(never)]
    fn cache_block(&self) {
        // Emptied first: finding the block may prune the one cached (INV-COUNTER-CACHE).
        forget_last();
        // An error is the table already destroyed: the thread is exiting, in another
        // thread-local's destructor, and counts in the shared block.
        let _ = TABLE.try_with(|table| {
            // No bump happens while the table is borrowed: registering only allocates.
            let mut table = table.borrow_mut();
            let cached = (self.id, ptr::from_ref(table.block_for(self)));
            let _ = LAST.try_with(|last| last.set(cached));
        });
    }

    /// A new block for the calling thread, in the registry. Blocks their thread no longer
    /// holds (it has exited) are retired first, so the registry keeps a block per live
    /// thread, not per thread ever.
    fn register(&self) -> Arc<Block> {
        let block = Arc::new(Block::new(self.id));
        let mut blocks = self.blocks.lock();
        blocks.retain_mut(|b| match Arc::get_mut(b) {
            // Unique: its thread dropped its `Arc` (a release) after its last write, and
            // `get_mut` acquires, so these are its final counts.
            Some(exited) => {
                for (sum, count) in self.shared.counts.iter().zip(&exited.counts) {
                    sum.fetch_add(count.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                false
            }
            None => true,
        });
        blocks.push(Arc::clone(&block));
        block
    }

    /// The sums of every block. Under the registry's lock, so that no block is retired
    /// half-way through: a block's counts are either in it or in the shared block.
    pub(crate) fn snapshot(&self) -> Counters {
        let blocks = self.blocks.lock();
        let mut sums = [0u64; EVENTS];
        for block in blocks.iter().map(|b| &**b).chain([&self.shared]) {
            for (sum, count) in sums.iter_mut().zip(&block.counts) {
                *sum += count.load(Ordering::Relaxed);
            }
        }
        Counters::from_sums(sums)
    }

    /// How many blocks the registry holds.
    #[cfg(all(test, not(loom)))]
    fn registered(&self) -> usize {
        self.blocks.lock().len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::AtomicBool;

    /// How many blocks the calling thread's table holds.
    fn table_len() -> usize {
        TABLE.with(|t| t.borrow().blocks.len())
    }

    fn shared_count(counters: &LiveCounters, event: Event) -> u64 {
        counters.shared.counts[event as usize].load(Ordering::Relaxed)
    }

    #[test]
    fn counts_from_many_threads_sum_exactly_and_snapshots_never_go_back() {
        const THREADS: u64 = 4;
        const BUMPS: u64 = if cfg!(miri) { 50 } else { 20_000 };
        let counters = Arc::new(LiveCounters::default());
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (counters, done) = (Arc::clone(&counters), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut last = counters.snapshot();
                let mut reads = 0u32;
                while !done.load(Ordering::Acquire) || reads < 2 {
                    let now = counters.snapshot();
                    for ((name, was), (_, is)) in last.fields().into_iter().zip(now.fields()) {
                        assert!(is >= was, "{name} went back from {was} to {is}");
                    }
                    let _ = now.since(&last);
                    last = now;
                    reads += 1;
                }
            })
        };
        // Half the writers count in their own blocks (as inside an interpreter), half in the
        // shared one (as outside).
        let writers: Vec<_> = (0..THREADS)
            .map(|i| {
                let counters = Arc::clone(&counters);
                std::thread::spawn(move || {
                    if i % 2 == 0 {
                        counters.make_current();
                    }
                    for _ in 0..BUMPS {
                        counters.bump(Event::ChannelSends);
                        counters.add(Event::BytesCopied, 3);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap();
        let total = counters.snapshot();
        assert_eq!(total.channel_sends, THREADS * BUMPS);
        assert_eq!(total.bytes_copied, 3 * THREADS * BUMPS);
        assert_eq!(total.channel_recvs, 0);
        // At least the bumps made outside own blocks (and the blocks of writers that exited
        // before another registered, retired into it).
        assert!(shared_count(&counters, Event::ChannelSends) >= THREADS / 2 * BUMPS);
    }

    #[test]
    fn exited_threads_stay_counted_and_their_blocks_are_retired() {
        let counters = Arc::new(LiveCounters::default());
        for _ in 0..10 {
            let c = Arc::clone(&counters);
            std::thread::spawn(move || {
                c.make_current();
                c.bump(Event::Enters);
            })
            .join()
            .unwrap();
        }
        assert_eq!(counters.snapshot().enters, 10);
        // Each thread's registration retired the block of the one before.
        assert_eq!(counters.registered(), 1);
        counters.make_current();
        counters.bump(Event::Enters);
        assert_eq!(counters.registered(), 1);
        assert_eq!(counters.snapshot().enters, 11);
        assert_eq!(shared_count(&counters, Event::Enters), 10);
    }

    #[test]
    fn many_runtimes_in_turn_do_not_grow_the_threads_table() {
        const RUNTIMES: u64 = if cfg!(miri) { 20 } else { 5_000 };
        std::thread::spawn(|| {
            let kept = LiveCounters::default();
            for _ in 0..RUNTIMES {
                let passing = LiveCounters::default();
                passing.make_current();
                passing.bump(Event::Enters);
                kept.make_current();
                kept.bump(Event::Enters);
                assert!(table_len() <= 2, "{} blocks", table_len());
            }
            assert_eq!(kept.snapshot().enters, RUNTIMES);
            assert_eq!(shared_count(&kept, Event::Enters), 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_keeps_one_block_per_live_runtime() {
        std::thread::spawn(|| {
            let runtimes: Vec<_> = (0..3).map(|_| LiveCounters::default()).collect();
            for _ in 0..3 {
                for (i, rt) in runtimes.iter().enumerate() {
                    rt.make_current();
                    rt.add(Event::ObjectsMoved, i as u64 + 1);
                }
            }
            assert_eq!(table_len(), 3);
            for (i, rt) in runtimes.iter().enumerate() {
                assert_eq!(rt.snapshot().objects_moved, 3 * (i as u64 + 1));
                assert_eq!(shared_count(rt, Event::ObjectsMoved), 0);
                assert_eq!(rt.registered(), 1);
            }
        })
        .join()
        .unwrap();
    }

    /// INV-COUNTER-CACHE: the table empties the cache before its blocks go, so a thread still
    /// counting in a later thread-local destructor uses the shared block, not one it no longer
    /// holds (which the next registration may retire and free).
    #[test]
    fn counting_after_the_threads_table_is_destroyed_goes_to_the_shared_block() {
        struct CountOnExit(Arc<LiveCounters>);
        impl Drop for CountOnExit {
            fn drop(&mut self) {
                self.0.make_current();
                self.0.bump(Event::PendingRun);
            }
        }
        thread_local! {
            static ON_EXIT: RefCell<Option<CountOnExit>> = const { RefCell::new(None) };
        }
        let counters = Arc::new(LiveCounters::default());
        let c = Arc::clone(&counters);
        std::thread::spawn(move || {
            // `ON_EXIT` is registered before the table, so (destructors running in reverse
            // order on this platform) its destructor runs after the table's.
            ON_EXIT.with(|slot| *slot.borrow_mut() = Some(CountOnExit(Arc::clone(&c))));
            c.make_current();
            c.bump(Event::PendingRun);
        })
        .join()
        .unwrap();
        assert_eq!(counters.snapshot().pending_run, 2);
        assert_eq!(shared_count(&counters, Event::PendingRun), 1);
    }

    #[test]
    fn since_gives_the_events_in_between_and_refuses_a_later_snapshot() {
        let rt = crate::Runtime::new();
        let before = rt.counters();
        rt.enter(rt.main(), |_| ()).unwrap();
        let after = rt.counters();
        assert_eq!(after.since(&before).enters, 1);
        let reversed = std::panic::catch_unwind(|| before.since(&after)).unwrap_err();
        let message = reversed.downcast_ref::<String>().unwrap();
        let expected = format!(
            "{} enters, more than the {} of `self`",
            after.enters, before.enters
        );
        assert!(message.contains(&expected), "{message}");
    }
}
