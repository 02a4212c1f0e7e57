//! Releases that must run in another interpreter: the runtime's release strategy.
//!
//! A pinned export (a channel's buffer item, a received view's buffer) holds a reference and
//! an export on an object of its owner. Whoever drops it last may be any thread, holding any
//! interpreter or none; the release itself must run in the owner (INV-RELEASE-IN-OWNER).
//! How it gets there is the runtime's [`ReleaseStrategy`]. See `design/view-release.md`.

use std::ptr;

use crate::counters::Event;
use crate::interp::{InterpState, Refused};
use crate::runtime::{ReleaseStrategy, Runtime};
use crate::sync::Arc;
use crate::thread_state::{
    current, release_late, run_in, suspend_current, try_run_in, Drain, Token,
};

/// Runs `release` in `owner`: at once if this thread holds it; in a late entry if the
/// owner was destroyed (its objects outlive it, INV-OWNER-OUTLIVES); otherwise by the
/// runtime's strategy. Never holds two interpreters: the current one is let go first
/// (INV-ONE-LOCK, INV-RELEASE-SUSPEND).
///
/// `release` touches only objects of `owner`, so it must run while the thread holds it; it
/// is boxed only when it has to wait in the owner's inbox.
pub(crate) fn release_in_owner(
    rt: &Runtime,
    owner: &Arc<InterpState>,
    release: impl FnOnce() + Send + 'static,
) {
    let counters = rt.counters_live();
    if ptr::eq(current(), Arc::as_ptr(owner)) {
        release();
        counters.bump(Event::ReleasesDirect);
        return;
    }
    if owner.lock.is_destroyed() {
        release_late(rt, owner, Box::new(move |_tok| release()));
        return;
    }
    let config = rt.config();
    match config.release {
        ReleaseStrategy::Switch => switch_into(rt, owner, move |_tok| release()),
        ReleaseStrategy::Deferred => defer(rt, owner, release, config.deferred_limit),
        ReleaseStrategy::Adaptive if owner.lock.is_held() => {
            defer(rt, owner, release, config.deferred_limit)
        }
        ReleaseStrategy::Adaptive => {
            let mut pending = Some(release);
            let done = suspend_current(|| {
                try_run_in(rt, owner, Event::ReleasesSwitched, |_tok| {
                    (pending.take().expect("runs once"))()
                })
            });
            if let Some(release) = pending {
                debug_assert!(done.is_none());
                defer(rt, owner, release, config.deferred_limit);
            }
        }
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
fn defer(
    rt: &Runtime,
    owner: &Arc<InterpState>,
    release: impl FnOnce() + Send + 'static,
    limit: usize,
) {
    match owner
        .inbox
        .push_release_within(Box::new(move |_tok| release()), limit)
    {
        Ok(()) => {
            owner.counters.bump(Event::PendingQueued);
            owner.counters.bump(Event::ReleasesDeferred);
        }
        Err(Refused::Full(call)) => switch_into(rt, owner, call),
        Err(Refused::Sealed(call)) => release_late(rt, owner, call),
    }
}
