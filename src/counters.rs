//! Runtime-wide instrumentation: monotonic event counters that experiments read before and
//! after a run ([`Counters::since`]). Updated with relaxed atomics: they count events, they
//! order nothing.

use crate::sync::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// The live counters of one runtime.
        #[derive(Debug, Default)]
        pub(crate) struct LiveCounters {
            $( pub(crate) $name: AtomicU64, )*
        }

        /// A snapshot of a runtime's counters.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Counters {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl LiveCounters {
            pub(crate) fn snapshot(&self) -> Counters {
                Counters { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }

        impl Counters {
            /// The events counted between `earlier` and `self`.
            pub fn since(&self, earlier: &Counters) -> Counters {
                Counters { $( $name: self.$name - earlier.$name, )* }
            }

            /// Every counter with its name, for tables and machine-readable output.
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![ $( (stringify!($name), self.$name), )* ]
            }
        }
    };
}

counters! {
    /// Entries into an interpreter from outside any interpreter (`Runtime::enter`).
    enters,
    /// Round trips into another interpreter and back: `Token::switch`, and forwarded proxy
    /// operations.
    switches,
    /// Times a thread found an interpreter's lock held and had to wait for it.
    lock_waits,
    /// Calls queued on some interpreter's pending-call inbox.
    pending_queued,
    /// Queued calls that have run in their interpreter.
    pending_run,
    /// Objects allocated, all interpreters together.
    objects_allocated,
    /// Objects freed, all interpreters together (frozen ones included).
    objects_freed,
    /// Objects frozen (each counted once, when its graph is frozen).
    objects_frozen,
    /// Objects moved out of an interpreter (each object of each moved graph).
    objects_moved,
    /// Moved objects adopted by their receiver (the rest went back to their sender).
    objects_adopted,
    /// Buffers exported (bytes, bytearray and view exports taken).
    buffers_exported,
    /// Buffer exports released.
    buffers_released,
    /// Releases run at once because the releasing thread held the owner.
    releases_direct,
    /// Entries into an owner to release (switch strategy, adaptive with a free owner, a
    /// deferred release past the inbox limit, or a full batch: one entry for all of them).
    releases_switched,
    /// Releases kept in the releasing thread's batch until it took the owner back
    /// (INV-RELEASE-BATCH).
    releases_batched,
    /// Releases queued on the owner's inbox (deferred, or adaptive with a busy owner).
    releases_deferred,
    /// Releases run in an owner that had been destroyed (its memory outlived it).
    releases_late,
    /// Items put on a channel.
    channel_sends,
    /// Items taken off a channel by a receiver.
    channel_recvs,
    /// Bytes handed over zero-copy (buffer items sent).
    bytes_zero_copy,
    /// Bytes copied (bytes items: once at send).
    bytes_copied,
    /// Proxies made.
    proxies_created,
    /// Operations forwarded by proxies to their origin.
    forwarded_calls,
    /// Receives that found the proxy in the identity cache.
    identity_hits,
    /// Receives that made a new proxy with the identity cache on.
    identity_misses,
    /// Origin references taken on exported objects (the model's remote increfs).
    origin_refs_taken,
    /// Origin references given back, in the origin (the model's remote decrefs).
    origin_refs_released,
}

impl LiveCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bump_by(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
