//! Releases that must run in another interpreter: the runtime's release strategy.
//!
//! A pinned export (a channel's buffer item, a received view's buffer) holds a reference and
//! an export on an object of its owner. Whoever drops it last may be any thread, holding any
//! interpreter or none; the release itself must run in the owner (INV-RELEASE-IN-OWNER).
//! How it gets there is the runtime's [`ReleaseStrategy`], and often this thread's batch:
//! when the owner is one this thread has switched out of, until it takes the owner back;
//! under `Switch`, when it holds another interpreter, until it lets go of that one
//! (INV-RELEASE-BATCH). See `design/view-release.md`.

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::{iter, ptr, vec};

use crate::counters::Event;
use crate::interp::{InterpState, Refused};
use crate::runtime::{ReleaseStrategy, Runtime};
use crate::sync::{const_thread_local, thread_local, Arc};
use crate::thread_state::{
    current, release_late, run_in, suspend_current, try_run_in, Drain, Token,
};

/// How many releases wait in one thread's batch for one owner before the thread enters the
/// owner to run them (INV-RELEASE-BATCH). Smaller in model builds, so a model reaches it.
const BATCH_LIMIT: usize = if cfg!(loom) { 2 } else { 64 };

/// Runs `release` in `owner`: at once if this thread holds it; in a late entry if the
/// owner was destroyed (its objects outlive it, INV-OWNER-OUTLIVES); otherwise by the
/// runtime's strategy. Never holds two interpreters: the current one is let go first
/// (INV-ONE-LOCK, INV-RELEASE-SUSPEND).
///
/// `release` touches only objects of `owner`, so it must run while the thread holds it; it
/// is handed `owner`'s state by whichever entry runs it, so it need not keep an `Arc` of its
/// own, and it is boxed only when it has to wait in the owner's inbox.
///
/// `owner` may be lent by what `release` gives back: a pin's or an origin reference's state,
/// whose anchor the last one back lets go of (INV-OWNER-OUTLIVES). So every path that uses
/// the state after `release` may have run holds an `Arc` of its own (the direct and batched
/// ones hold the owner, or have it suspended, already), and no argument borrows the state
/// itself: its runtime handle is reached through `owner`.
pub(crate) fn release_in_owner(
    owner: &Arc<InterpState>,
    release: impl FnOnce(&InterpState) + Send + 'static,
) {
    run_in_owner(owner, Alone(release));
}

/// Releases that run together: those of one kind waiting in a batch for one owner, next to
/// each other, run in one call (an export table's give-backs take its lock once).
pub(crate) trait Joined: Copy + Send + 'static {
    /// Runs `releases` in `owner`, which this thread holds. Pulls them one by one: those it
    /// has not pulled when it panics run after, one at a time (`run_all`).
    fn run_together(owner: &InterpState, releases: impl Iterator<Item = Self>);
}

/// [`release_in_owner`] for a release that runs together with the others of its kind
/// waiting beside it in this thread's batch.
pub(crate) fn release_joined_in_owner<J: Joined>(owner: &Arc<InterpState>, release: J) {
    run_in_owner(owner, Together(release));
}

/// What [`run_in_owner`] runs: a closure alone, or a [`Joined`] release.
trait Release: Send + 'static + Sized {
    fn run(self, owner: &InterpState);
    /// Stores the release in place for `owner`, or gives it back if it does not fit.
    fn keep(self, owner: *const InterpState) -> Result<Waiting, Self>;
}

struct Alone<F>(F);

impl<F: FnOnce(&InterpState) + Send + 'static> Release for Alone<F> {
    fn run(self, owner: &InterpState) {
        (self.0)(owner)
    }

    fn keep(self, owner: *const InterpState) -> Result<Waiting, Self> {
        Waiting::new(owner, self.0).map_err(Alone)
    }
}

struct Together<J>(J);

impl<J: Joined> Release for Together<J> {
    fn run(self, owner: &InterpState) {
        J::run_together(owner, iter::once(self.0))
    }

    fn keep(self, owner: *const InterpState) -> Result<Waiting, Self> {
        Waiting::joined(owner, self.0).map_err(Together)
    }
}

fn run_in_owner(owner: &Arc<InterpState>, release: impl Release) {
    let rt = &owner.rt;
    let counters = rt.counters_live();
    if ptr::eq(current(), Arc::as_ptr(owner)) {
        // The thread holds the owner, through an `Arc` of its entry.
        release.run(owner);
        counters.bump(Event::ReleasesDirect);
        return;
    }
    if owner.lock.is_destroyed() {
        // Any path but the batch's holds its own `Arc` of a lent owner.
        let owner = &Arc::clone(owner);
        release_late(
            &owner.rt,
            owner,
            Box::new(move |tok| release.run(tok.interp())),
        );
        return;
    }
    let config = rt.config();
    let release = match config.release {
        ReleaseStrategy::Switch | ReleaseStrategy::Adaptive if config.batch_releases => {
            let until_let_go = config.release == ReleaseStrategy::Switch;
            match batch(owner, release, until_let_go) {
                Ok(Kept::UntilTaken(waiting)) => {
                    counters.bump(Event::ReleasesBatched);
                    if waiting >= BATCH_LIMIT {
                        let owner = &Arc::clone(owner);
                        flush(&owner.rt, owner, config.release);
                    }
                    return;
                }
                Ok(Kept::UntilLetGo(waiting)) => {
                    counters.bump(Event::ReleasesBatched);
                    // Letting go runs every release kept until then (`let_go`); while it is
                    // running already, its loop will enter this owner anyway.
                    if waiting >= BATCH_LIMIT && !LETTING_GO.with(Cell::get) {
                        suspend_current(|| ());
                    }
                    return;
                }
                Err(release) => release,
            }
        }
        _ => release,
    };
    let owner = &Arc::clone(owner);
    let rt = &owner.rt;
    match config.release {
        ReleaseStrategy::Switch => switch_into(rt, owner, move |tok| release.run(tok.interp())),
        ReleaseStrategy::Deferred => defer(rt, owner, release, config.deferred_limit),
        ReleaseStrategy::Adaptive if owner.lock.is_held() => {
            defer(rt, owner, release, config.deferred_limit)
        }
        ReleaseStrategy::Adaptive => {
            let mut pending = Some(release);
            let done = suspend_current(|| {
                try_run_in(rt, owner, Event::ReleasesSwitched, |tok| {
                    pending.take().expect("runs once").run(tok.interp())
                })
            });
            if let Some(release) = pending {
                debug_assert!(done.is_none());
                defer(rt, owner, release, config.deferred_limit);
            }
        }
    }
}

/// Enters `owner` once to run the releases waiting for it in this thread's batch: waiting
/// for its lock under `Switch`; under `Adaptive` only if it is free now (else they go on
/// waiting until the thread takes it back). Entering is all it takes: every entry runs what
/// waits for the interpreter it takes (`Entry::taken` calls [`taken`]).
fn flush(rt: &Runtime, owner: &Arc<InterpState>, strategy: ReleaseStrategy) {
    if strategy == ReleaseStrategy::Adaptive {
        let events = Event::ReleasesSwitched;
        suspend_current(|| try_run_in(rt, owner, events, |_tok| ()));
    } else {
        switch_into(rt, owner, |_tok| ());
    }
}

/// Enters the owner just to run `call` (no drain, INV-RELEASE-BOUNDED), or runs it late if
/// the owner was destroyed meanwhile.
fn switch_into(
    rt: &Runtime,
    owner: &Arc<InterpState>,
    call: impl for<'t> FnOnce(&mut Token<'t>) + Send + 'static,
) {
    let mut pending = Some(call);
    let entered = suspend_current(|| {
        run_in(
            rt,
            owner,
            Event::ReleasesSwitched,
            Drain::No,
            |tok, _drained| (pending.take().expect("runs once"))(tok),
        )
    });
    if let Some(call) = pending {
        // Destroyed between the caller's check and the entry.
        debug_assert!(entered.is_err());
        release_late(rt, owner, Box::new(call));
    }
}

/// Queues `release` on the owner's own inbox while it holds fewer than `limit` calls; at the
/// bound the release switches instead, and after the owner's final drain it runs late
/// (INV-INBOX-SEALED). The bound is checked and the call queued under one lock, so racing
/// releasers cannot overshoot it.
fn defer(rt: &Runtime, owner: &Arc<InterpState>, release: impl Release, limit: usize) {
    match owner
        .inbox
        .push_release_within(Box::new(move |tok| release.run(tok.interp())), limit)
    {
        Ok(()) => {
            owner.counters.bump(Event::PendingQueued);
            owner.counters.bump(Event::ReleasesDeferred);
        }
        Err(Refused::Full(call)) => switch_into(rt, owner, call),
        Err(Refused::Sealed(call)) => release_late(rt, owner, call),
    }
}

/// Room for a batched release's closure, in words: a pinned export's release takes two, a
/// moved graph's return four, an origin reference's give-back six.
const WORDS: usize = 6;

/// A release waiting in a thread's batch, its closure (or [`Joined`] release) stored in
/// place: a batch of 64 would otherwise allocate 64 times, past what the allocator's
/// per-thread cache holds.
struct Waiting {
    /// The interpreter it must run in.
    owner: *const InterpState,
    closure: MaybeUninit<[usize; WORDS]>,
    /// Calls the closure with the owner's state, moving it out; a joined release's also
    /// runs the ones of its kind next in line (`rest`).
    run: unsafe fn(*mut [usize; WORDS], &InterpState, &mut vec::Drain<'_, Waiting>),
    /// Drops the closure without calling it.
    discard: unsafe fn(*mut [usize; WORDS]),
    /// A [`Joined`] release's type (asked only of a joined release's neighbours): those of
    /// the same type run with it.
    joins: Option<fn() -> TypeId>,
}

impl Waiting {
    /// Stores `release` for `owner`, or gives it back if it does not fit.
    fn new<F: FnOnce(&InterpState) + Send + 'static>(
        owner: *const InterpState,
        release: F,
    ) -> Result<Self, F> {
        Self::store(owner, release, None, |closure, owner, _rest| {
            // SAFETY: `closure` holds an `F` written by `store`, moved out only here; the
            // caller forgets the `Waiting` so `discard` does not see it again.
            let release = unsafe { closure.cast::<F>().read() };
            release(owner);
        })
    }

    /// Stores a [`Joined`] release for `owner`, or gives it back if it does not fit.
    fn joined<J: Joined>(owner: *const InterpState, release: J) -> Result<Self, J> {
        Self::store(
            owner,
            release,
            Some(TypeId::of::<J>),
            |first, owner, rest| {
                // SAFETY: as for `new`'s closure: the `J` written by `store`, moved out once.
                let first = unsafe { first.cast::<J>().read() };
                let next = Next::<J> {
                    rest,
                    kind: PhantomData,
                };
                J::run_together(owner, iter::once(first).chain(next));
            },
        )
    }

    fn store<T: Send + 'static>(
        owner: *const InterpState,
        value: T,
        joins: Option<fn() -> TypeId>,
        run: unsafe fn(*mut [usize; WORDS], &InterpState, &mut vec::Drain<'_, Waiting>),
    ) -> Result<Self, T> {
        if size_of::<T>() > size_of::<[usize; WORDS]>() || align_of::<T>() > align_of::<usize>() {
            return Err(value);
        }
        let mut closure = MaybeUninit::<[usize; WORDS]>::uninit();
        // SAFETY: `T` fits in `closure` in size and alignment (checked above). It is moved
        // out exactly once, by `run` or `discard`, each monomorphised for this `T`.
        unsafe { closure.as_mut_ptr().cast::<T>().write(value) };
        Ok(Waiting {
            owner,
            closure,
            run,
            discard: |closure| {
                // SAFETY: as for `run`: the `T` written by `store`, dropped only here.
                unsafe { closure.cast::<T>().drop_in_place() }
            },
            joins,
        })
    }

    /// Runs the release in `owner`, which the calling thread holds (INV-RELEASE-IN-OWNER),
    /// and, if it is a joined one, those of its kind at the front of `rest`.
    fn run(self, owner: &InterpState, rest: &mut vec::Drain<'_, Waiting>) {
        debug_assert!(ptr::eq(self.owner, owner));
        let mut this = ManuallyDrop::new(self);
        // SAFETY: the closure is still in place (it leaves only here or in `drop`), and
        // `this` is never dropped, so it is moved out once.
        unsafe { (this.run)(this.closure.as_mut_ptr(), owner, rest) }
    }
}

/// The joined releases of type `J` at the front of a batch being run, taken one by one.
struct Next<'a, 'd, J> {
    rest: &'a mut vec::Drain<'d, Waiting>,
    kind: PhantomData<J>,
}

impl<J: Joined> Iterator for Next<'_, '_, J> {
    type Item = J;

    fn next(&mut self) -> Option<J> {
        let next = self.rest.as_slice().first()?;
        if next.joins.is_none_or(|kind| kind() != TypeId::of::<J>()) {
            return None;
        }
        let mut taken = ManuallyDrop::new(self.rest.next()?);
        // SAFETY: a `Waiting` joined as `J` holds a `J` written by `store`; `taken` is never
        // dropped, so it is moved out once.
        Some(unsafe { taken.closure.as_mut_ptr().cast::<J>().read() })
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        // SAFETY: a `Waiting` that is dropped was never run (`run` forgets it): its closure
        // is in place, and is dropped once.
        unsafe { (self.discard)(self.closure.as_mut_ptr()) }
    }
}

/// An interpreter this thread has let go of with `suspend_current` and will take back: a
/// frame on this thread's stack, linked from `SUSPENDED` from `link` until `resumed`
/// (INV-RELEASE-BATCH).
pub(crate) struct Suspended {
    state: *const InterpState,
    /// Releases batched for it since this thread last took it.
    waiting: Cell<usize>,
    /// The frame linked before this one: an interpreter let go of further out.
    outer: *const Suspended,
}

const_thread_local! {
    /// This thread's innermost suspended frame, or null.
    static SUSPENDED: Cell<*const Suspended> = Cell::new(ptr::null());
}

const_thread_local! {
    /// How many releases wait in this thread's batch: 0 lets every entry and resumption skip
    /// the batch with one thread-local load.
    static WAITING: Cell<usize> = Cell::new(0);
}

const_thread_local! {
    /// Whether this thread is running the releases it kept until it let go (`let_go`).
    static LETTING_GO: Cell<bool> = Cell::new(false);
}

/// A thread's batch.
struct Batch {
    /// Releases waiting, oldest first: for interpreters of the thread's suspended frames, and
    /// for owners it neither holds nor has suspended, kept until it lets go.
    waiting: Vec<Waiting>,
    /// Empty, keeping the capacity of the last batch run.
    spare: Vec<Waiting>,
    /// The owners of the releases kept until the thread lets go, each once, with how many
    /// wait for it: what it enters when it lets go.
    until_let_go: Vec<(Arc<InterpState>, usize)>,
}

thread_local! {
    // loom's `thread_local!` takes no `const` initialiser.
    #[allow(clippy::missing_const_for_thread_local)]
    /// This thread's batch.
    static BATCH: RefCell<Batch> = RefCell::new(Batch {
        waiting: Vec::new(),
        spare: Vec::new(),
        until_let_go: Vec::new(),
    });
}

impl Suspended {
    /// A frame for `state`, which this thread has let go of.
    pub(crate) fn new(state: *const InterpState) -> Self {
        Suspended {
            state,
            waiting: Cell::new(0),
            outer: SUSPENDED.with(Cell::get),
        }
    }

    pub(crate) fn state(&self) -> *const InterpState {
        self.state
    }

    /// Makes this the thread's innermost suspended frame.
    ///
    /// # Safety
    /// The frame stays where it is until [`Suspended::unlink`], which the caller calls before
    /// the frame goes, also when unwinding (INV-RELEASE-BATCH).
    pub(crate) unsafe fn link(&self) {
        debug_assert_eq!(SUSPENDED.with(Cell::get), self.outer);
        SUSPENDED.with(|s| s.set(self));
    }

    /// Unlinks this frame, the innermost: first thing when the thread takes `state` back, so
    /// that no failure on the way leaves a link to a frame that is gone. What waits for
    /// `state` runs once the thread holds it ([`taken`]).
    pub(crate) fn unlink(&self) {
        debug_assert!(ptr::eq(SUSPENDED.with(Cell::get), self));
        SUSPENDED.with(|s| s.set(self.outer));
    }
}

/// Runs what waits in this thread's batch for `state`, which this thread has just taken
/// (entered, or taken back after a suspension).
#[inline]
pub(crate) fn taken(state: &InterpState) {
    if WAITING.with(Cell::get) > 0 {
        run_batch(state);
    }
}

/// This thread's innermost suspended frame for `owner`, if it has let go of `owner`.
fn suspended_frame<'a>(owner: *const InterpState) -> Option<&'a Suspended> {
    let mut frame = SUSPENDED.with(Cell::get);
    while !frame.is_null() {
        // SAFETY: a linked frame lives on this thread's stack until it is unlinked, before it
        // goes (`Suspended::link`'s contract), and only this thread reads it
        // (INV-RELEASE-BATCH); the reference is used before this function's caller returns,
        // inside the frame's suspension.
        let this = unsafe { &*frame };
        if this.state == owner {
            return Some(this);
        }
        frame = this.outer;
    }
    None
}

/// Where [`batch`] kept a release, with how many now wait for its owner there.
enum Kept {
    /// In the innermost suspended frame of the owner: runs when the thread takes it back.
    UntilTaken(usize),
    /// Until the thread lets go of the interpreter it holds, which is not the owner.
    UntilLetGo(usize),
}

/// Keeps `release` in this thread's batch if this thread has let go of `owner` and so will
/// take it back, or else, if `until_let_go`, if this thread holds another interpreter and so
/// will let go of it. Otherwise (or if the closure is too large to keep in place, or the
/// thread is exiting and its batch is gone) gives `release` back.
fn batch<R: Release>(owner: &Arc<InterpState>, release: R, until_let_go: bool) -> Result<Kept, R> {
    let state = Arc::as_ptr(owner);
    let frame = suspended_frame(state);
    let holds_another = !current().is_null();
    if frame.is_none() && !(until_let_go && holds_another) {
        return Err(release);
    }
    if BATCH.try_with(|_| ()).is_err() {
        return Err(release);
    }
    let waiting = release.keep(state)?;
    let kept = BATCH.with(|batch| {
        let batch = &mut *batch.borrow_mut();
        batch.waiting.push(waiting);
        if let Some(frame) = frame {
            frame.waiting.set(frame.waiting.get() + 1);
            return Kept::UntilTaken(frame.waiting.get());
        }
        let owners = &mut batch.until_let_go;
        match owners.iter_mut().find(|(kept, _)| Arc::ptr_eq(kept, owner)) {
            Some((_, n)) => {
                *n += 1;
                Kept::UntilLetGo(*n)
            }
            None => {
                owners.push((Arc::clone(owner), 1));
                Kept::UntilLetGo(1)
            }
        }
    });
    WAITING.with(|n| n.set(n.get() + 1));
    Ok(kept)
}

/// Runs the releases this thread kept until it let go of the interpreter it held, which it
/// just has (left it, or suspended it): enters each of their owners once, holding nothing
/// else (INV-ONE-LOCK), and runs them there; late if the owner was destroyed meanwhile.
/// Releases kept while doing so (a release in one owner dropping the last view of another's
/// buffer) are run by the same loop, never by a nested one (INV-RELEASE-BOUNDED).
#[inline]
pub(crate) fn let_go() {
    if WAITING.with(Cell::get) > 0 && !LETTING_GO.with(Cell::get) {
        run_until_let_go();
    }
}

fn run_until_let_go() {
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            LETTING_GO.with(|flag| flag.set(false));
        }
    }
    LETTING_GO.with(|flag| flag.set(true));
    let _done = Done;
    // An error is the batch already destroyed at the thread's exit: nothing is kept.
    let next = || {
        BATCH
            .try_with(|batch| batch.borrow_mut().until_let_go.pop())
            .ok()
            .flatten()
    };
    while let Some((owner, _)) = next() {
        // Entering runs what waits for the owner (`taken`); the `Arc` is dropped after, with
        // no borrow of the batch open.
        switch_into(&owner.rt, &owner, |_tok| ());
    }
}

/// Runs the releases waiting in this thread's batch for `owner`, which this thread holds. They
/// run with no borrow of the batch open: a release may batch another, for a frame further out.
fn run_batch(owner: &InterpState) {
    let state: *const InterpState = owner;
    let mut frame = SUSPENDED.with(Cell::get);
    while !frame.is_null() {
        // SAFETY: as in `suspended_frame`.
        let this = unsafe { &*frame };
        if this.state == state {
            this.waiting.set(0);
        }
        frame = this.outer;
    }
    // An error is the batch already destroyed at the thread's exit: nothing waits in it.
    let Ok((mut mine, owner_kept)) = BATCH.try_with(|batch| {
        let Batch {
            waiting,
            spare,
            until_let_go,
        } = &mut *batch.borrow_mut();
        let mut all = std::mem::replace(waiting, std::mem::take(spare));
        if all.iter().any(|w| w.owner != state) {
            let (mine, others): (Vec<_>, Vec<_>) = all.into_iter().partition(|w| w.owner == state);
            waiting.extend(others);
            all = mine;
        }
        let owner_kept = until_let_go
            .iter()
            .position(|(kept, _)| Arc::as_ptr(kept) == state)
            .map(|at| until_let_go.swap_remove(at));
        (all, owner_kept)
    }) else {
        return;
    };
    WAITING.with(|n| n.set(n.get() - mine.len()));
    run_all(mine.drain(..), owner);
    BATCH.with(|batch| {
        let spare = &mut batch.borrow_mut().spare;
        if spare.capacity() < mine.capacity() {
            *spare = mine;
        }
    });
    // Its `Arc`, if it was kept until the thread let go, is dropped with no borrow open.
    drop(owner_kept);
}

/// Runs `releases` in `owner`, which this thread holds. If one panics (a library bug:
/// releases run no user code), the rest (of a joined run, those it had not pulled) still run
/// while the panic unwinds, so none is dropped unrun with its export pinned for good; a
/// second panic aborts, as one does while a vector's elements are dropped.
fn run_all(releases: vec::Drain<'_, Waiting>, owner: &InterpState) {
    struct RunRest<'a, 'b> {
        releases: vec::Drain<'a, Waiting>,
        owner: &'b InterpState,
    }
    impl Drop for RunRest<'_, '_> {
        fn drop(&mut self) {
            // Empty unless a release panicked.
            while let Some(release) = self.releases.next() {
                release.run(self.owner, &mut self.releases);
            }
        }
    }
    let mut rest = RunRest { releases, owner };
    while let Some(release) = rest.releases.next() {
        release.run(owner, &mut rest.releases);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // INV-RELEASE-BATCH: a release kept in place runs once, or is dropped once if never run,
    // and one too large to keep is given back.
    #[test]
    fn a_waiting_release_runs_or_drops_its_closure_once() {
        let token = std::sync::Arc::new(());
        let (ran, kept) = (std::sync::Arc::new(()), std::sync::Arc::clone(&token));
        let seen = std::sync::Arc::clone(&ran);
        let rt = crate::Runtime::new();
        let owner = rt.lookup(rt.main()).unwrap();
        let waiting = Waiting::new(Arc::as_ptr(&owner), move |_: &InterpState| {
            drop((kept, seen))
        })
        .ok()
        .unwrap();
        assert_eq!(std::sync::Arc::strong_count(&token), 2);
        waiting.run(&owner, &mut Vec::new().drain(..));
        assert_eq!(std::sync::Arc::strong_count(&token), 1);
        assert_eq!(std::sync::Arc::strong_count(&ran), 1);

        let kept = std::sync::Arc::clone(&token);
        let never_run = Waiting::new(ptr::null(), move |_: &InterpState| panic!("{kept:?}"))
            .ok()
            .unwrap();
        drop(never_run);
        assert_eq!(std::sync::Arc::strong_count(&token), 1);

        let large = vec![0u64; 1];
        let padding = [0u64; WORDS];
        let given_back = Waiting::new(ptr::null(), move |_: &InterpState| drop((large, padding)));
        assert!(given_back.is_err());
    }

    // INV-RELEASE-BATCH: a release that panics (a library bug: releases run no user code)
    // does not leave the ones batched behind it unrun, their exports pinned for good.
    #[test]
    fn a_panicking_batched_release_still_runs_the_ones_behind_it() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let rt = crate::Runtime::new();
        let owner = rt.lookup(rt.main()).unwrap();
        let state = Arc::as_ptr(&owner);
        let ran = std::sync::Arc::new(AtomicUsize::new(0));
        let fails = |_: &InterpState| std::panic::resume_unwind(Box::new("a library bug"));
        BATCH.with(|batch| {
            let waiting = &mut batch.borrow_mut().waiting;
            waiting.push(Waiting::new(state, fails).ok().unwrap());
            for _ in 0..2 {
                let ran = std::sync::Arc::clone(&ran);
                let counts = move |_: &InterpState| {
                    ran.fetch_add(1, Ordering::Relaxed);
                };
                waiting.push(Waiting::new(state, counts).ok().unwrap());
            }
        });
        WAITING.with(|n| n.set(n.get() + 3));
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_batch(&owner)));
        assert!(unwound.is_err(), "the first release's panic goes on");
        assert_eq!(ran.load(Ordering::Relaxed), 2, "the two behind it ran");
        assert_eq!(std::sync::Arc::strong_count(&ran), 1, "and were dropped");
        assert_eq!(WAITING.with(Cell::get), 0);
        assert!(BATCH.with(|batch| batch.borrow().waiting.is_empty()));
    }

    std::thread_local! {
        static RUNS: RefCell<Vec<Vec<u32>>> = const { RefCell::new(Vec::new()) };
    }

    /// A joined release that records which of its kind ran in one call; 0 panics once pulled.
    #[derive(Clone, Copy)]
    struct Mark(u32);

    impl Joined for Mark {
        fn run_together(_owner: &InterpState, releases: impl Iterator<Item = Mark>) {
            RUNS.with(|runs| runs.borrow_mut().push(Vec::new()));
            for Mark(n) in releases {
                RUNS.with(|runs| runs.borrow_mut().last_mut().unwrap().push(n));
                if n == 0 {
                    std::panic::resume_unwind(Box::new("a library bug"));
                }
            }
        }
    }

    fn batch_of(owner: &Arc<InterpState>, marks: &[u32], closure_at: usize) {
        let state = Arc::as_ptr(owner);
        BATCH.with(|batch| {
            let waiting = &mut batch.borrow_mut().waiting;
            for (at, &n) in marks.iter().enumerate() {
                if at == closure_at {
                    let closure =
                        |_: &InterpState| RUNS.with(|runs| runs.borrow_mut().push(vec![]));
                    waiting.push(Waiting::new(state, closure).ok().unwrap());
                }
                waiting.push(Waiting::joined(state, Mark(n)).ok().unwrap());
            }
        });
        WAITING.with(|n| n.set(n.get() + marks.len() + usize::from(closure_at < marks.len())));
    }

    // INV-RELEASE-BATCH: joined releases next to each other in a batch run in one call, in
    // order; a closure between them splits the run.
    #[test]
    fn joined_releases_side_by_side_run_in_one_call() {
        let rt = crate::Runtime::new();
        let owner = rt.lookup(rt.main()).unwrap();
        RUNS.with(|runs| runs.borrow_mut().clear());
        batch_of(&owner, &[1, 2, 3, 4, 5], 3);
        run_batch(&owner);
        let runs = RUNS.with(|runs| runs.take());
        assert_eq!(runs, [vec![1, 2, 3], vec![], vec![4, 5]]);
        assert_eq!(WAITING.with(Cell::get), 0);
    }

    // INV-RELEASE-BATCH: a joined run that panics leaves the releases it had not pulled to run
    // after it, none dropped unrun.
    #[test]
    fn a_panicking_joined_run_leaves_the_rest_to_run() {
        let rt = crate::Runtime::new();
        let owner = rt.lookup(rt.main()).unwrap();
        RUNS.with(|runs| runs.borrow_mut().clear());
        batch_of(&owner, &[1, 0, 2, 3], usize::MAX);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_batch(&owner)));
        assert!(unwound.is_err(), "the panic goes on");
        let runs = RUNS.with(|runs| runs.take());
        assert_eq!(runs, [vec![1, 0], vec![2, 3]]);
        assert_eq!(WAITING.with(Cell::get), 0);
        assert!(BATCH.with(|batch| batch.borrow().waiting.is_empty()));
    }
}
