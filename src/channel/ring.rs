//! The channel's fast path: a bounded ring of queued items that senders and receivers use
//! without the channel's mutex, one compare-and-swap a side, while the channel is in its
//! common state. Any other operation seals the ring first, taking its items into the
//! locked queue, and unseals it (handing them back) when the state is common again. See
//! `design/channel.md`, section 3 (INV-CHAN-RING).
//!
//! Positions count up from 0 and never wrap (2^63 operations). Slot `p % capacity` holds
//! position `p`'s item; its stamp says where the slot is in its cycle: `p` free for a push
//! at `p`, `p + 1` written, `p + capacity` taken (free for the push one lap later). `head`
//! is the next position to pop, `tail` the next to push; `SEALED` on both turns every
//! fast operation to the locked path. A push claims `tail` by compare-and-swap and then
//! writes; a pop claims `head` once its slot is written, and then reads: the stamp is what
//! hands the slot's contents from one thread to the other (INV-CHAN-RING).

use std::collections::VecDeque;
use std::mem::MaybeUninit;

use crate::sync::{fence, spin_loop, yield_now, AtomicU64, Ordering, UnsafeCell};

/// Set in `head` and `tail` while the ring is sealed.
const SEALED: u64 = 1 << 63;

/// One slot: its stamp and, between a push's write and a pop's read, an item.
struct Slot<T> {
    stamp: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A position counter on a cache line of its own, so that senders moving `tail` do not
/// slow receivers moving `head`.
#[repr(align(64))]
struct Position(AtomicU64);

impl Position {
    /// Moves the position from `at` to the next one, if no other thread has moved it since
    /// it was read: the one compare-and-swap that makes this thread the position's one
    /// writer (at the tail) or reader (at the head).
    #[inline]
    fn claim(&self, at: u64) -> bool {
        self.0
            .compare_exchange(at, at + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

/// What a fast pop found.
pub(crate) enum Pop<T> {
    /// The head item, taken.
    Item(T),
    /// Nothing queued, and the ring was open: the channel is empty.
    Empty,
    /// The ring is sealed, the caller was not admitted, or a push is still writing the
    /// head slot: the locked path decides.
    Locked,
}

#[cfg(test)]
impl<T> Pop<T> {
    /// The item, if one was taken.
    pub(crate) fn into_item(self) -> Option<T> {
        match self {
            Pop::Item(item) => Some(item),
            Pop::Empty | Pop::Locked => None,
        }
    }
}

/// Where a sealed ring left off: the position its next unseal starts from. Held under the
/// channel's mutex while the ring is sealed; only [`Ring::unseal`] consumes it.
#[derive(Debug)]
pub(crate) struct Sealed {
    next: u64,
}

/// A bounded multi-producer, multi-consumer ring that can be sealed. Sealing and unsealing
/// are for the holder of the channel's mutex only (`&self` methods that the channel calls
/// under it); pushes and pops are for anyone.
pub(crate) struct Ring<T> {
    head: Position,
    tail: Position,
    slots: Box<[Slot<T>]>,
    /// `capacity - 1` (the capacity is a power of two).
    mask: u64,
}

// SAFETY: a slot's item moves between threads only through the stamp protocol (one writer
// claims a position by CAS on `tail`, one reader claims it by CAS on `head` after the
// writer's release store of the stamp; a sealer owns what it drains, INV-CHAN-RING), so
// sharing the ring sends `T`s between threads and never shares one.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above: no `&T` is ever handed out, so `T: Send` is enough.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// An empty, open ring of `capacity` slots (a power of two, at least 2).
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(
            capacity.is_power_of_two() && capacity >= 2,
            "a ring's capacity is a power of two, at least 2 (got {capacity})"
        );
        let slots = (0..capacity as u64)
            .map(|p| Slot {
                stamp: AtomicU64::new(p),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Ring {
            head: Position(AtomicU64::new(0)),
            tail: Position(AtomicU64::new(0)),
            slots,
            mask: capacity as u64 - 1,
        }
    }

    /// The next position to pop (with `SEALED` while sealed): tests see from it whether a
    /// seal came between two of their operations.
    #[cfg(test)]
    pub(crate) fn head(&self) -> u64 {
        self.head.0.load(Ordering::Relaxed)
    }

    /// How many items the ring holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, position: u64) -> &Slot<T> {
        &self.slots[(position & self.mask) as usize]
    }

    /// Pushes `value` at the tail if the ring is open, has room, and `admit` (read after the
    /// tail, so that a seal and unseal in between fail the claim) says yes; otherwise gives
    /// it back for the locked path.
    #[inline]
    pub(crate) fn try_push(&self, value: T, admit: impl Fn() -> bool) -> Result<(), T> {
        loop {
            let tail = self.tail.0.load(Ordering::Acquire);
            if tail & SEALED != 0 {
                return Err(value);
            }
            let slot = self.slot(tail);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp > tail {
                // Another sender claimed this position since `tail` was read.
                spin_loop();
                continue;
            }
            if stamp < tail || !admit() {
                // Full (the slot's item of the previous lap is still there), or refused.
                return Err(value);
            }
            if !self.tail.claim(tail) {
                spin_loop();
                continue;
            }
            // SAFETY: the CAS made this thread the one writer of position `tail`; the stamp
            // (== tail) says its slot's previous item was taken, and no reader claims the
            // position before the release store below (INV-CHAN-RING).
            slot.value
                .with_mut(|v| unsafe { v.cast::<T>().write(value) });
            slot.stamp.store(tail + 1, Ordering::Release);
            return Ok(());
        }
    }

    /// Pops the head item if the ring is open, its head slot is written, and `admit` (read
    /// after the head) says yes.
    #[inline]
    pub(crate) fn try_pop(&self, admit: impl Fn() -> bool) -> Pop<T> {
        loop {
            let head = self.head.0.load(Ordering::Acquire);
            if head & SEALED != 0 {
                return Pop::Locked;
            }
            let slot = self.slot(head);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp > head + 1 {
                // Another receiver took this position since `head` was read.
                spin_loop();
                continue;
            }
            if stamp <= head {
                // Not written: empty if nobody has claimed the position either.
                fence(Ordering::SeqCst);
                let tail = self.tail.0.load(Ordering::Acquire);
                return if tail == head && admit() {
                    Pop::Empty
                } else {
                    Pop::Locked
                };
            }
            if !admit() {
                return Pop::Locked;
            }
            if !self.head.claim(head) {
                spin_loop();
                continue;
            }
            // SAFETY: the stamp (== head + 1, acquired) says the writer of position `head`
            // is done; the CAS made this thread its one reader; the slot is reused only
            // after the release store below (INV-CHAN-RING).
            let value = slot.value.with(|v| unsafe { v.cast::<T>().read() });
            slot.stamp.store(head + self.mask + 1, Ordering::Release);
            return Pop::Item(value);
        }
    }

    /// Seals the open ring and moves its items, in order, to the back of `into`. For the
    /// holder of the channel's mutex: it waits (briefly) for pushes that claimed a position
    /// before the seal to finish writing.
    pub(crate) fn seal(&self, into: &mut VecDeque<T>) -> Sealed {
        let tail = self.tail.0.fetch_or(SEALED, Ordering::AcqRel);
        let head = self.head.0.fetch_or(SEALED, Ordering::AcqRel);
        debug_assert!(
            tail & SEALED == 0 && head & SEALED == 0,
            "sealing an open ring"
        );
        for position in head..tail {
            let slot = self.slot(position);
            while slot.stamp.load(Ordering::Acquire) != position + 1 {
                yield_now();
            }
            // SAFETY: sealed, nobody else claims `position`; its writer is done (stamp
            // acquired above), so the sealer is its one reader (INV-CHAN-RING).
            into.push_back(slot.value.with(|v| unsafe { v.cast::<T>().read() }));
            slot.stamp
                .store(position + self.mask + 1, Ordering::Release);
        }
        Sealed { next: tail }
    }

    /// Hands `items` (at most the capacity less one) back to a sealed ring, in order, and
    /// opens it. For the holder of the channel's mutex. Its positions start one past where
    /// the seal left off: `head` and `tail` never again hold a value a fast operation may
    /// have read before the seal, so no such operation's claim succeeds (INV-CHAN-RING).
    pub(crate) fn unseal(&self, sealed: Sealed, items: impl ExactSizeIterator<Item = T>) {
        assert!(items.len() < self.capacity(), "unsealing more than fits");
        let skipped = sealed.next;
        self.wait_free(skipped);
        self.slot(skipped)
            .stamp
            .store(skipped + self.mask + 1, Ordering::Release);
        let head = skipped + 1;
        let mut tail = head;
        for value in items {
            self.wait_free(tail);
            let slot = self.slot(tail);
            // SAFETY: sealed, so no fast operation claims `tail`; its stamp says the slot's
            // previous item was taken (INV-CHAN-RING).
            slot.value
                .with_mut(|v| unsafe { v.cast::<T>().write(value) });
            slot.stamp.store(tail + 1, Ordering::Release);
            tail += 1;
        }
        self.head.0.store(head, Ordering::Release);
        self.tail.0.store(tail, Ordering::Release);
    }

    /// Waits until the slot of `position` is free for it: a pop of the lap before that
    /// claimed it before the seal may still be reading it.
    fn wait_free(&self, position: u64) {
        while self.slot(position).stamp.load(Ordering::Acquire) != position {
            yield_now();
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Relaxed);
        if head & SEALED != 0 {
            return; // a seal took every item
        }
        for position in head..tail {
            let slot = self.slot(position);
            // SAFETY: `&mut self`: every push and pop has finished, so positions between
            // head and tail hold written, untaken items.
            slot.value
                .with_mut(|v| unsafe { v.cast::<T>().drop_in_place() });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn pushes_and_pops_keep_order_and_refuse_when_full() {
        let ring = Ring::new(4);
        for n in 0..4 {
            assert!(ring.try_push(n, || true).is_ok());
        }
        assert_eq!(ring.try_push(9, || true), Err(9), "full");
        for n in 0..4 {
            assert!(matches!(ring.try_pop(|| true), Pop::Item(v) if v == n));
        }
        assert!(matches!(ring.try_pop(|| true), Pop::Empty));
    }

    #[test]
    fn a_refused_caller_gets_its_item_back_and_takes_nothing() {
        let ring = Ring::new(4);
        assert_eq!(ring.try_push(1, || false), Err(1));
        ring.try_push(2, || true).unwrap();
        assert!(matches!(ring.try_pop(|| false), Pop::Locked));
        assert!(matches!(ring.try_pop(|| true), Pop::Item(2)));
    }

    #[test]
    fn a_sealed_ring_refuses_both_sides_and_unsealing_keeps_the_order() {
        let ring = Ring::new(4);
        for n in 0..3 {
            ring.try_push(n, || true).unwrap();
        }
        let mut queue = VecDeque::new();
        let sealed = ring.seal(&mut queue);
        assert_eq!(queue, [0, 1, 2]);
        assert_eq!(ring.try_push(7, || true), Err(7));
        assert!(matches!(ring.try_pop(|| true), Pop::Locked));
        queue.push_back(3);
        ring.unseal(sealed, queue.drain(1..));
        ring.try_push(4, || true).unwrap();
        for n in 1..=4 {
            assert!(matches!(ring.try_pop(|| true), Pop::Item(v) if v == n));
        }
    }

    #[test]
    fn a_seal_and_unseal_never_bring_back_a_position_read_before() {
        let ring: Ring<u8> = Ring::new(2);
        let before = ring.tail.0.load(Ordering::Relaxed);
        let sealed = ring.seal(&mut VecDeque::new());
        ring.unseal(sealed, std::iter::empty());
        assert_ne!(ring.tail.0.load(Ordering::Relaxed), before);
        assert_ne!(ring.head.0.load(Ordering::Relaxed), before);
    }

    #[test]
    fn items_left_in_a_dropped_ring_are_dropped() {
        let item = Arc::new(());
        let ring = Ring::new(4);
        ring.try_push(Arc::clone(&item), || true).unwrap();
        ring.try_push(Arc::clone(&item), || true).unwrap();
        assert!(matches!(ring.try_pop(|| true), Pop::Item(_)));
        drop(ring);
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[test]
    fn concurrent_senders_and_receivers_lose_and_repeat_nothing() {
        let ring = Arc::new(Ring::new(8));
        let per = if cfg!(miri) { 50 } else { 20_000 };
        let senders: Vec<_> = (0..2u64)
            .map(|s| {
                let ring = Arc::clone(&ring);
                std::thread::spawn(move || {
                    for n in 0..per {
                        let mut v = s << 32 | n;
                        while let Err(back) = ring.try_push(v, || true) {
                            v = back;
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let ring = Arc::clone(&ring);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while got.len() < per as usize {
                        match ring.try_pop(|| true) {
                            Pop::Item(v) => got.push(v),
                            _ => std::thread::yield_now(),
                        }
                    }
                    got
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        let mut all: Vec<u64> = Vec::new();
        for r in receivers {
            let got = r.join().unwrap();
            for s in 0..2u64 {
                let mine: Vec<_> = got.iter().filter(|v| *v >> 32 == s).collect();
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "per-sender order");
            }
            all.extend(got);
        }
        all.sort_unstable();
        let want: Vec<u64> = (0..2u64)
            .flat_map(|s| (0..per).map(move |n| s << 32 | n))
            .collect();
        assert_eq!(all, want);
    }
}
