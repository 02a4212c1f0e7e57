//! Each thread's caches of free memory, as CPython keeps free lists: an object freed on a
//! thread leaves its block here, and the next object made on that thread takes it; a freed
//! `bytes`'s storage of up to [`BYTES_MAX`] bytes waits for the next copy of that length.
//! Blocks are kept in a [`FreeBoxes`], as the layers above keep boxes of their own types (a
//! channel's object items).
//!
//! Channels move objects in batches: a receiver frees 64 views in a row, then the sender
//! makes 64 more. The allocator's own per-thread cache holds 7 blocks of a size, so most of
//! those frees and allocations went through its slower paths (about 130 instructions a
//! pair). A bytes item is a copy made by the sender and freed by the receiver, often the
//! same length every time. Memory is only memory: which interpreter owned the object that
//! held it does not matter, so the caches are per thread, touched only by their thread, with
//! no lock. They keep at most [`KEPT`] blocks (about 14 KiB) and [`BYTES_KEPT`] buffers
//! (at most 16 KiB), the channel's item boxes at most 64 of each kind (16 KiB), and proxy
//! bodies at most 64 (8 KiB), given back to the allocator when the thread exits.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::ObjBox;
use crate::sync::{const_thread_local, LocalKey};

/// The most blocks a thread keeps.
const KEPT: usize = 128;

/// A free block: the allocation of a `Box<MaybeUninit<ObjBox>>`.
type Block = Box<MaybeUninit<ObjBox>>;

const_thread_local! {
    static FREE: FreeBoxes<ObjBox> = FreeBoxes::new(KEPT);
}

/// The longest `bytes` storage kept.
const BYTES_MAX: usize = 256;

/// The most `bytes` storages a thread keeps.
const BYTES_KEPT: usize = 64;

/// How many of the most recently kept storages a copy looks through for its length.
const BYTES_LOOKED_AT: usize = 8;

const_thread_local! {
    static FREE_BYTES: RefCell<Vec<Box<[u8]>>> = RefCell::new(Vec::new());
}

/// A copy of `src` (a new `bytes`'s storage): in a storage of its length freed lately on this
/// thread, if there is one, or in a new allocation.
#[inline]
pub(crate) fn copy_bytes(src: &[u8]) -> Box<[u8]> {
    if src.is_empty() || src.len() > BYTES_MAX {
        return src.into();
    }
    // An error is the cache already destroyed at the thread's exit: allocate.
    let kept = FREE_BYTES.try_with(|free| {
        let mut free = free.borrow_mut();
        let newest = free.len().checked_sub(1)?;
        let back = free
            .iter()
            .rev()
            .take(BYTES_LOOKED_AT)
            .position(|kept| kept.len() == src.len())?;
        Some(free.swap_remove(newest - back))
    });
    match kept {
        Ok(Some(mut storage)) => {
            storage.copy_from_slice(src);
            storage
        }
        _ => src.into(),
    }
}

/// Keeps `storage`, a freed `bytes`'s, for the next copy of its length on this thread; frees
/// it if it is too long or the cache is full (or already destroyed at the thread's exit).
#[inline]
pub(super) fn give_bytes(storage: Box<[u8]>) {
    if storage.is_empty() || storage.len() > BYTES_MAX {
        return;
    }
    if let Ok(Some(storage)) = FREE_BYTES.try_with(|free| keep(free, storage, BYTES_KEPT)) {
        // Freed outside the borrow.
        drop(storage);
    }
}

/// A block for a new object: this thread's last freed one, or a new allocation.
#[inline]
pub(super) fn take() -> Block {
    spare(&FREE).unwrap_or_else(Box::new_uninit)
}

/// Keeps `block`, whose object is gone, for the next object made on this thread; frees it
/// if the cache is full (or already destroyed at the thread's exit).
#[inline]
pub(super) fn give(block: Block) {
    give_box(&FREE, block);
}

/// A thread's freed boxes of one type, at most `most` of them, for the next values of that
/// type it boxes: the value of a `const_thread_local!`, used through [`boxed`] and
/// [`unboxed`] (and, for object blocks, [`take`] and [`give`]).
pub(crate) struct FreeBoxes<T> {
    boxes: RefCell<Vec<Box<MaybeUninit<T>>>>,
    most: usize,
}

impl<T> FreeBoxes<T> {
    pub(crate) const fn new(most: usize) -> Self {
        Self {
            boxes: RefCell::new(Vec::new()),
            most,
        }
    }
}

/// `value` in the box this thread freed last into `free`, or in a new one.
#[inline]
pub(crate) fn boxed<T: 'static>(free: &'static LocalKey<FreeBoxes<T>>, value: T) -> Box<T> {
    match spare(free) {
        Some(mut spare) => {
            spare.write(value);
            // SAFETY: initialised just above.
            unsafe { spare.assume_init() }
        }
        None => Box::new(value),
    }
}

/// The value out of `boxed`, whose box `free` keeps for the next [`boxed`] on this thread
/// (or frees, if it is full or already destroyed at the thread's exit).
#[inline]
pub(crate) fn unboxed<T: 'static>(free: &'static LocalKey<FreeBoxes<T>>, boxed: Box<T>) -> T {
    let raw = Box::into_raw(boxed);
    // SAFETY: `raw` holds the live `T` its box just gave up, reachable from nowhere else; it
    // is moved out once, here.
    let value = unsafe { raw.read() };
    // SAFETY: the same allocation, made for a `T`, whose layout `MaybeUninit<T>` shares;
    // nothing reads it as a `T` again.
    give_box(free, unsafe { Box::from_raw(raw.cast::<MaybeUninit<T>>()) });
    value
}

/// Drops the value in `boxed` where it is, then keeps its box in `free` for the next
/// [`boxed`] on this thread (or frees it, as [`unboxed`] does). The value's drop may use this
/// thread's caches, `free` included: the box is given only after.
#[inline]
pub(crate) fn drop_boxed<T: 'static>(free: &'static LocalKey<FreeBoxes<T>>, boxed: Box<T>) {
    let raw = Box::into_raw(boxed);
    // SAFETY: `raw` holds the live `T` its box just gave up, reachable from nowhere else; it
    // is dropped once, here, and read as a `T` never again.
    unsafe { raw.drop_in_place() };
    // SAFETY: the same allocation, made for a `T`, whose layout `MaybeUninit<T>` shares.
    give_box(free, unsafe { Box::from_raw(raw.cast::<MaybeUninit<T>>()) });
}

/// The box this thread freed last into `free`, if any (none once the cache is destroyed at
/// the thread's exit).
#[inline]
fn spare<T: 'static>(free: &'static LocalKey<FreeBoxes<T>>) -> Option<Box<MaybeUninit<T>>> {
    free.try_with(|free| free.boxes.borrow_mut().pop())
        .ok()
        .flatten()
}

/// Keeps `spare` in `free` for the next box on this thread; frees it if `free` is full (or
/// already destroyed at the thread's exit).
#[inline]
fn give_box<T: 'static>(free: &'static LocalKey<FreeBoxes<T>>, spare: Box<MaybeUninit<T>>) {
    if let Ok(Some(spare)) = free.try_with(|free| keep(&free.boxes, spare, free.most)) {
        // Freed outside the borrow.
        drop(spare);
    }
}

/// Pushes `item` onto `free` if it holds fewer than `most`; gives it back otherwise.
fn keep<T>(free: &RefCell<Vec<T>>, item: T, most: usize) -> Option<T> {
    let mut free = free.borrow_mut();
    if free.len() < most {
        free.push(item);
        None
    } else {
        Some(item)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn kept() -> usize {
        FREE.with(|free| free.boxes.borrow().len())
    }

    fn bytes_kept() -> Vec<usize> {
        FREE_BYTES.with(|free| free.borrow().iter().map(|b| b.len()).collect())
    }

    #[test]
    fn a_freed_bytes_storage_is_reused_for_a_copy_of_its_length_and_the_cache_is_bounded() {
        let first = copy_bytes(b"abcd");
        let addr = first.as_ptr();
        give_bytes(first);
        give_bytes(copy_bytes(b"xy"));
        assert_eq!(bytes_kept(), [4, 2]);
        let again = copy_bytes(b"wxyz");
        assert_eq!(
            (again.as_ptr(), &*again),
            (addr, &b"wxyz"[..]),
            "same storage, new bytes"
        );
        assert_eq!(bytes_kept(), [2]);
        // Empty and long storages are not kept; only the newest few are looked through.
        give_bytes(Box::new([]));
        give_bytes(vec![0; BYTES_MAX + 1].into_boxed_slice());
        assert_eq!(bytes_kept(), [2]);
        (0..BYTES_LOOKED_AT).for_each(|_| give_bytes(vec![3; 3].into_boxed_slice()));
        assert_eq!(copy_bytes(b"pq").len(), 2);
        assert_eq!(
            bytes_kept().len(),
            1 + BYTES_LOOKED_AT,
            "the 2-byte one was too deep"
        );
        (0..BYTES_KEPT).for_each(|_| give_bytes(vec![1; 3].into_boxed_slice()));
        assert_eq!(
            bytes_kept().len(),
            BYTES_KEPT,
            "the rest went back to the allocator"
        );
        FREE_BYTES.with(|free| free.borrow_mut().clear());
    }

    const_thread_local! {
        static STRINGS: FreeBoxes<String> = FreeBoxes::new(2);
    }

    #[test]
    fn an_unboxed_value_leaves_its_box_for_the_next_one_and_the_cache_is_bounded() {
        let first = boxed(&STRINGS, String::from("first"));
        let addr = std::ptr::from_ref(&*first).cast::<u8>();
        assert_eq!(unboxed(&STRINGS, first), "first", "moved out whole");
        let second = boxed(&STRINGS, String::from("second"));
        assert_eq!(
            std::ptr::from_ref(&*second).cast::<u8>(),
            addr,
            "the same box"
        );
        assert_eq!(*second, "second");
        let kept = || STRINGS.with(|free| free.boxes.borrow().len());
        assert_eq!(kept(), 0);
        (0..3).for_each(|_| drop(unboxed(&STRINGS, Box::new(String::new()))));
        assert_eq!(kept(), 2, "two kept, the third given back");
        drop(second);
    }

    const_thread_local! {
        static COUNTED: FreeBoxes<std::rc::Rc<()>> = FreeBoxes::new(1);
    }

    #[test]
    fn a_value_dropped_in_its_box_leaves_the_box_for_the_next_one() {
        let token = std::rc::Rc::new(());
        let first = boxed(&COUNTED, std::rc::Rc::clone(&token));
        let addr = std::ptr::from_ref(&*first).cast::<u8>();
        drop_boxed(&COUNTED, first);
        assert_eq!(std::rc::Rc::strong_count(&token), 1, "dropped, once");
        let second = boxed(&COUNTED, std::rc::Rc::clone(&token));
        assert_eq!(
            std::ptr::from_ref(&*second).cast::<u8>(),
            addr,
            "the same box"
        );
        drop_boxed(&COUNTED, second);
        drop_boxed(&COUNTED, Box::new(std::rc::Rc::clone(&token)));
        assert_eq!(
            std::rc::Rc::strong_count(&token),
            1,
            "the one past the bound, freed"
        );
        assert_eq!(COUNTED.with(|free| free.boxes.borrow().len()), 1);
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
