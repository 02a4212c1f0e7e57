//! Each thread's cache of the interpreter states it entered last, so that entering one
//! again skips the registry: no shard read lock and no `Arc` clone and drop, 4 of the 6
//! atomic read-modify-writes of an uncontended enter and leave (INV-LOOKUP-CACHE).
//!
//! An entry takes its state *out* of the cache and puts it back when it ends, so the `Arc`
//! moves and is never cloned; an entry nested in it (a switch) finds that slot empty and
//! looks its own state up. A cached state is a counted reference, so it is never freed while
//! cached. It may have been destroyed since: the entry goes through the state's lock, which
//! refuses a destroyed interpreter as the registry would have (ids are never reused,
//! INV-ID-FRESH, and the key includes the runtime's process-unique id), and a destroyed
//! state is not put back, and a thread lets go of a destroyed state when it next enters
//! another interpreter or destroys one. A thread keeps at most [`SLOTS`] states, each until
//! it enters others, drops a `Runtime` handle of its runtime (an `OwnedObj` going does not
//! count), or exits.
//! (The handle's drop also keeps loom's models deterministic: a model thread drops its
//! handle before it exits, so no state is dropped by a thread-local destructor, which loom
//! runs in no fixed order.)

use std::cell::Cell;
use std::ops::Deref;

use crate::interp::{InterpId, InterpState};
use crate::sync::{const_thread_local, model_torn_down, Arc};

/// How many states a thread keeps: an entry and one switch target.
const SLOTS: usize = 2;

/// A cached state and the process-unique id of its runtime.
type Slot = Cell<Option<(u64, Arc<InterpState>)>>;

/// Most recent first.
struct Cache([Slot; SLOTS]);

impl Drop for Cache {
    fn drop(&mut self) {
        if model_torn_down() {
            // A failed model: the states are loom's and cannot be dropped any more.
            for slot in &self.0 {
                std::mem::forget(slot.take());
            }
        }
    }
}

const_thread_local! {
    static CACHE: Cache = Cache([Cell::new(None), Cell::new(None)]);
}

/// Interpreter `id` of runtime `runtime`, taken out of this thread's cache, if it is there.
/// Unless it is the most recent (the common case, taken at once), states destroyed since
/// they were cached are dropped on the way: a thread keeps a destroyed interpreter's state
/// (and, through it, its runtime's memory) only until it enters another interpreter.
fn take(runtime: u64, id: InterpId) -> Option<Arc<InterpState>> {
    // An error is the cache already destroyed at the thread's exit: a miss.
    let recent = CACHE.try_with(|cache| {
        let first = &cache.0[0];
        let cached = first.take()?;
        if (cached.0, cached.1.id) == (runtime, id) {
            return Some(cached.1);
        }
        first.set(Some(cached));
        None
    });
    match recent {
        Ok(Some(state)) => Some(state),
        _ => sweep_and_take(Some((runtime, id))),
    }
}

/// Drops the states of destroyed interpreters this thread keeps (after it destroyed one).
pub(crate) fn forget_destroyed() {
    sweep_and_take(None);
}

/// Drops the destroyed states this thread keeps, and takes out the state `key` names.
fn sweep_and_take(key: Option<(u64, InterpId)>) -> Option<Arc<InterpState>> {
    let mut found = None;
    let destroyed = CACHE.try_with(|cache| {
        cache.0.each_ref().map(|slot| {
            let cached = slot.take()?;
            if cached.1.lock.is_destroyed() {
                return Some(cached);
            }
            if found.is_none() && key == Some((cached.0, cached.1.id)) {
                found = Some(cached.1);
            } else {
                slot.set(Some(cached));
            }
            None
        })
    });
    // Dropped here, outside the cells (as in `put`).
    drop(destroyed);
    found
}

/// Puts `state` back as the most recent. The least recent is dropped if every slot is full.
fn put(runtime: u64, state: Arc<InterpState>) {
    let evicted = CACHE.try_with(|cache| {
        let [first, rest @ ..] = &cache.0;
        let mut carried = first.replace(Some((runtime, state)));
        for slot in rest {
            if carried.is_none() {
                break;
            }
            carried = slot.replace(carried);
        }
        carried
    });
    // Dropped here, outside the cell: a state's drop may reach this cache again.
    drop(evicted);
}

/// Drops every state of runtime `runtime` this thread keeps: the thread let go of a handle.
pub(crate) fn forget_runtime(runtime: u64) {
    let forgotten = CACHE.try_with(|cache| {
        cache.0.each_ref().map(|slot| match slot.take() {
            Some(cached) if cached.0 == runtime => Some(cached),
            other => {
                slot.set(other);
                None
            }
        })
    });
    // Dropped here, outside the cells (as in `put`).
    drop(forgotten);
}

/// An interpreter's state held for one entry: taken out of this thread's cache or looked up
/// in the registry, and put back into the cache when dropped, unless it is destroyed.
pub(crate) struct Cached {
    runtime: u64,
    state: Option<Arc<InterpState>>,
}

impl Cached {
    /// Interpreter `id` of runtime `runtime`: from this thread's cache, or from `lookup`.
    pub(crate) fn get<E>(
        runtime: u64,
        id: InterpId,
        lookup: impl FnOnce() -> Result<Arc<InterpState>, E>,
    ) -> Result<Self, E> {
        let state = match take(runtime, id) {
            Some(state) => state,
            None => lookup()?,
        };
        Ok(Self {
            runtime,
            state: Some(state),
        })
    }
}

impl Deref for Cached {
    type Target = Arc<InterpState>;

    fn deref(&self) -> &Arc<InterpState> {
        self.state.as_ref().expect("taken only by drop")
    }
}

impl Drop for Cached {
    fn drop(&mut self) {
        let state = self.state.take().expect("taken only by drop");
        if !state.lock.is_destroyed() {
            put(self.runtime, state);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::counters::LiveCounters;
    use crate::extensions::Extensions;

    /// A state of its own (not registered in any runtime) numbered `id`.
    fn state(id: u64) -> Arc<InterpState> {
        Arc::new(InterpState::new(
            InterpId::new(id),
            Arc::new(LiveCounters::default()),
            None,
            Extensions::new(Vec::new()),
            crate::Runtime::new().uncounted(),
        ))
    }

    fn cached_ids() -> Vec<(u64, u64)> {
        CACHE.with(|cache| {
            cache
                .0
                .iter()
                .filter_map(|slot| {
                    let cached = slot.take()?;
                    let ids = (cached.0, cached.1.id.0);
                    slot.set(Some(cached));
                    Some(ids)
                })
                .collect()
        })
    }

    #[test]
    fn a_hit_moves_the_state_out_and_back_without_a_clone() {
        let a = state(1);
        put(7, Arc::clone(&a));
        assert_eq!(Arc::strong_count(&a), 2);
        {
            let held = Cached::get(7, InterpId::new(1), || -> Result<_, ()> {
                panic!("a hit does not look up")
            })
            .unwrap();
            assert!(Arc::ptr_eq(&held, &a));
            assert_eq!(Arc::strong_count(&a), 2, "moved, not cloned");
            assert_eq!(cached_ids(), [], "the slot is empty while held");
        }
        assert_eq!(cached_ids(), [(7, 1)]);
        forget_runtime(7);
        assert_eq!(Arc::strong_count(&a), 1);
    }

    #[test]
    fn the_key_is_the_runtime_and_the_id() {
        put(7, state(1));
        let miss = |runtime, id| Cached::get(runtime, InterpId::new(id), || Err(()));
        assert!(miss(8, 1).is_err(), "another runtime's interpreter 1");
        assert!(miss(7, 2).is_err());
        assert_eq!(cached_ids(), [(7, 1)], "misses leave the cache as it was");
        forget_runtime(7);
        assert_eq!(cached_ids(), []);
    }

    #[test]
    fn nested_entries_keep_both_and_the_least_recent_goes() {
        let (a, b, c) = (state(1), state(2), state(3));
        let outer = Cached::get(7, InterpId::new(1), || Ok::<_, ()>(Arc::clone(&a))).unwrap();
        let inner = Cached::get(7, InterpId::new(2), || Ok::<_, ()>(Arc::clone(&b))).unwrap();
        drop(inner);
        drop(outer);
        assert_eq!(cached_ids(), [(7, 1), (7, 2)]);
        drop(Cached::get(7, InterpId::new(3), || Ok::<_, ()>(Arc::clone(&c))).unwrap());
        assert_eq!(cached_ids(), [(7, 3), (7, 1)]);
        assert_eq!(Arc::strong_count(&b), 1, "evicted and dropped");
        forget_runtime(7);
        assert_eq!(Arc::strong_count(&a) + Arc::strong_count(&c), 2);
    }

    #[test]
    fn a_state_destroyed_elsewhere_is_dropped_and_the_entry_fails_as_the_registry_would() {
        let rt = crate::Runtime::new();
        let x = rt.create().unwrap();
        rt.enter(x, |_| ()).unwrap();
        assert_eq!(cached_ids(), [(rt.id(), x.0)]);
        let other = rt.clone();
        std::thread::spawn(move || other.destroy(x).unwrap())
            .join()
            .unwrap();
        assert_eq!(
            cached_ids(),
            [(rt.id(), x.0)],
            "another thread destroyed it"
        );
        let err = rt.enter(x, |_| ()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InterpreterNotFound);
        assert_eq!(err.message(), format!("interpreter {x} has been destroyed"));
        assert_eq!(cached_ids(), []);

        let y = rt.create().unwrap();
        rt.enter(y, |_| ()).unwrap();
        rt.destroy(y).unwrap();
        assert_eq!(cached_ids(), [], "the destroying thread lets go at once");

        rt.enter(rt.main(), |_| ()).unwrap();
        let owned = rt.enter(rt.main(), |tok| tok.int(1).unbind()).unwrap();
        drop(owned);
        assert_eq!(
            cached_ids(),
            [(rt.id(), rt.main().0)],
            "an object handle's drop keeps the thread's states"
        );
        let other = rt.clone();
        drop(other);
        assert_eq!(
            cached_ids(),
            [],
            "dropping a handle forgets the runtime's states"
        );
        rt.enter(rt.main(), |_| ()).unwrap();
        drop(rt);
        assert_eq!(
            cached_ids(),
            [],
            "a runtime dropped here leaves nothing cached"
        );
    }
}
