//! Each thread's cache of free object blocks, as CPython keeps free lists: an object freed on
//! a thread leaves its block here, and the next object made on that thread takes it.
//!
//! Channels move objects in batches: a receiver frees 64 views in a row, then the sender
//! makes 64 more. The allocator's own per-thread cache holds 7 blocks of a size, so most of
//! those frees and allocations went through its slower paths (about 130 instructions a
//! pair). A block is only memory: which interpreter owned the object it held does not
//! matter, so the cache is per thread, touched only by its thread, with no lock. It keeps
//! at most [`KEPT`] blocks (about 14 KiB), given back to the allocator when the thread exits.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::ObjBox;
use crate::sync::const_thread_local;

/// The most blocks a thread keeps.
const KEPT: usize = 128;

/// A free block: the allocation of a `Box<MaybeUninit<ObjBox>>`.
type Block = Box<MaybeUninit<ObjBox>>;

const_thread_local! {
    static FREE: RefCell<Vec<Block>> = RefCell::new(Vec::new());
}

/// A block for a new object: this thread's last freed one, or a new allocation.
#[inline]
pub(super) fn take() -> Block {
    // An error is the cache already destroyed at the thread's exit: allocate.
    FREE.try_with(|free| free.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(Box::new_uninit)
}

/// Keeps `block`, whose object is gone, for the next object made on this thread; frees it
/// if the cache is full (or already destroyed at the thread's exit).
#[inline]
pub(super) fn give(block: Block) {
    let full = FREE.try_with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < KEPT {
            free.push(block);
            None
        } else {
            Some(block)
        }
    });
    if let Ok(Some(block)) = full {
        drop(block);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn kept() -> usize {
        FREE.with(|free| free.borrow().len())
    }

    #[test]
    fn a_freed_block_is_the_next_one_taken_and_the_cache_is_bounded() {
        let first = take();
        let addr = std::ptr::from_ref(&*first);
        give(first);
        assert_eq!(kept(), 1);
        let again = take();
        assert_eq!(std::ptr::from_ref(&*again), addr, "the block came back");
        assert_eq!(kept(), 0);
        give(again);

        let many: Vec<Block> = (0..KEPT + 5).map(|_| Box::new_uninit()).collect();
        many.into_iter().for_each(give);
        assert_eq!(kept(), KEPT, "the rest went back to the allocator");
        let all: Vec<Block> = (0..KEPT + 1).map(|_| take()).collect();
        assert_eq!(kept(), 0);
        drop(all);
    }
}
