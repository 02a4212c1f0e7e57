//! Frozen objects: deeply immutable, shared by reference with every interpreter of the
//! process, no proxy and no copy (PEP 795's direction). See `design/sharing-modes.md`.
//!
//! `Obj::freeze` makes an object and everything it reaches immutable, or changes nothing and
//! names the first object that cannot be frozen. The frozen graph is cut into strongly
//! connected components (Tarjan); each component gets one [`Component`], which holds the
//! component's count of references from outside it, atomically, and every member's header
//! points at it (INV-FROZEN-COUNT). A cycle is therefore one unit: when the last outside
//! reference goes, the whole component is freed, on whichever thread let go of it, and what
//! it refers to outside itself (other components, immortals) is let go of in turn.
//!
//! A component keeps its creator's state alive (an `Arc`), so the accounting it moved there
//! can be settled when it is freed, after the creator is destroyed too (INV-FROZEN-OUTLIVES).

use std::collections::HashMap;

use super::graph::owned_graph;
use super::{Body, Obj, ObjPtr};
use crate::counters::Event;
use crate::error::{fail, ErrorKind, Result};
use crate::interp::InterpState;
use crate::sync::{Arc, AtomicUsize, Ordering};

/// One strongly connected component of frozen objects: the unit of reference counting.
pub(crate) struct Component {
    /// References to its members from outside it (other objects, handles, anywhere).
    pub(super) count: AtomicUsize,
    /// Its members, each freed with the component.
    members: Box<[ObjPtr]>,
    /// The interpreter that froze it, whose accounting holds its members as frozen.
    creator: Arc<InterpState>,
}

// SAFETY: the members are frozen: their state is never written again and their counts live
// in `count`, an atomic; they are freed only by the thread that takes `count` to zero, which
// is then alone with them (INV-FROZEN-COUNT).
unsafe impl Send for Component {}
// SAFETY: as above.
unsafe impl Sync for Component {}

impl Component {
    /// Frees every member. Pushes onto `outside` the references members held to objects
    /// of other components (or immortals), for the caller to let go of.
    ///
    /// # Safety
    /// `count` reached zero: nothing refers to any member from outside, so this thread is
    /// alone with them; and `this` came from `Box::into_raw` in `freeze` (INV-FREE-ONCE).
    pub(super) unsafe fn free(this: *mut Component, outside: &mut Vec<ObjPtr>) {
        // SAFETY: forwarded contract.
        let component = unsafe { Box::from_raw(this) };
        let mut children = Vec::new();
        for &member in component.members.iter() {
            // SAFETY: forwarded contract: the members are alive until here, and freed once.
            unsafe { member.free_frozen(&mut children) };
        }
        // A child is a member exactly when its header points at this component; members are
        // freed only below, so every header read here is of a live object.
        outside.extend(
            children
                .into_iter()
                // SAFETY: a member's child is a member (alive until below) or is kept alive
                // by the reference the member held, which the caller now owns.
                .filter(|child| unsafe { child.component() } != this),
        );
        for &member in component.members.iter() {
            // SAFETY: forwarded contract: freed once, here.
            unsafe { member.dealloc_frozen() };
        }
        let n = component.members.len();
        component
            .creator
            .frozen_objects
            .fetch_sub(n, Ordering::Relaxed);
        component
            .creator
            .counters
            .add(Event::ObjectsFreed, n as u64);
    }
}

/// A strong reference to a shared (frozen or immortal) object, bound to no interpreter:
/// what a frozen object travels as, in a channel item or across the membrane. Any thread may
/// hold it and drop it; any interpreter may turn it into a handle.
pub(crate) struct SharedRef(ObjPtr);

// SAFETY: the object is frozen or immortal: its count is atomic (or absent) and its state is
// never written again (INV-FROZEN-COUNT, INV-FROZEN-IMMUTABLE, INV-IMMORTAL).
unsafe impl Send for SharedRef {}
// SAFETY: as above; `&SharedRef` gives nothing but the address.
unsafe impl Sync for SharedRef {}

impl SharedRef {
    /// A new reference to `obj`, if it is shared.
    pub(crate) fn of(obj: &Obj<'_>) -> Option<SharedRef> {
        obj.is_frozen().then(|| SharedRef(obj.clone().into_ptr()))
    }

    /// The object as a handle of `tok`'s interpreter (the same object, wherever it is read).
    pub(crate) fn into_obj<'t>(self, tok: &'t crate::thread_state::Token<'t>) -> Obj<'t> {
        let ptr = self.0;
        std::mem::forget(self);
        // SAFETY: shared objects may be held by any interpreter; the reference is handed
        // over (INV-FROZEN-COUNT).
        unsafe { Obj::from_owned_ptr(tok, ptr) }
    }
}

impl Drop for SharedRef {
    fn drop(&mut self) {
        // SAFETY: this holds one reference to a shared object, which any thread may give up
        // (INV-FROZEN-COUNT).
        unsafe { self.0.decref() };
    }
}

/// Why an object cannot be frozen, or `None` if it can (its children are checked apart).
fn refusal(body: &Body, exports: usize) -> Option<String> {
    let what = match body {
        Body::View(_) | Body::ReceivedView(_) => {
            "a memoryview (its exporter may be released or written)"
        }
        Body::Proxy(_) => "a RemoteProxy (its object lives in another interpreter)",
        Body::Unbound => "the UNBOUND marker",
        Body::ByteArray { .. } if exports > 0 => {
            return Some(format!(
                "cannot freeze a bytearray with {exports} live export(s): its bytes may be \
                 written through them"
            ))
        }
        _ => return None,
    };
    Some(format!("cannot freeze {what}"))
}

impl<'t> Obj<'t> {
    /// Whether this object is frozen: deeply immutable and shared by reference with every
    /// interpreter (`None`, `True` and `False` always are).
    pub fn is_frozen(&self) -> bool {
        self.ptr().is_shared()
    }

    /// Freezes this object and everything it reaches: afterwards none of them can change
    /// (a mutation is an `ErrorKind::Frozen` error), and each can be sent to any interpreter
    /// of the process and read there in place (`Outgoing::object` sends it by reference).
    /// Fails with `NotShareable`, naming the first object that cannot be frozen (a proxy, a
    /// memoryview, a bytearray with live exports), and then changes nothing. Freezing a
    /// frozen object does nothing.
    pub fn freeze(&self) -> Result<()> {
        let graph = owned_graph(self, refusal, "frozen")?;
        if graph.is_empty() {
            return Ok(());
        }
        let index: HashMap<ObjPtr, usize> =
            graph.iter().enumerate().map(|(i, n)| (n.ptr, i)).collect();
        let edges: Vec<Vec<usize>> = graph
            .iter()
            .map(|node| {
                node.children
                    .iter()
                    .filter_map(|c| index.get(c).copied())
                    .collect()
            })
            .collect();
        let found = components(&edges);
        let mut component_of = vec![0; graph.len()];
        for (c, members) in found.iter().enumerate() {
            for &m in members {
                component_of[m] = c;
            }
        }
        let creator = Arc::clone(self.token().interp());
        for (c, members) in found.iter().enumerate() {
            let inside: usize = members
                .iter()
                .map(|&m| edges[m].iter().filter(|&&w| component_of[w] == c).count())
                .sum();
            // SAFETY: every member is alive (reached from `self`) and of this token's
            // interpreter, which this thread holds (INV-OBJ-BOUND).
            let total: usize = members
                .iter()
                .map(|&m| unsafe { graph[m].ptr.refcount() })
                .sum();
            let outside = total
                .checked_sub(inside)
                .expect("a component's members are referenced at least by its own edges");
            let component = Box::into_raw(Box::new(Component {
                count: AtomicUsize::new(outside),
                members: members.iter().map(|&m| graph[m].ptr).collect(),
                creator: Arc::clone(&creator),
            }));
            for &m in members {
                // SAFETY: as above; nothing outside this interpreter can reach the object
                // before the header says it is frozen (INV-FROZEN-COUNT).
                unsafe { graph[m].ptr.share(component) };
            }
        }
        let n = graph.len();
        creator.note_frozen(n);
        self.token().counters().add(Event::ObjectsFrozen, n as u64);
        Ok(())
    }

    /// Refuses to `what` this object if it is frozen (INV-FROZEN-IMMUTABLE).
    pub(super) fn refuse_if_frozen(&self, what: &str) -> Result<()> {
        if self.is_frozen() {
            return fail(
                ErrorKind::Frozen,
                format!("cannot {what} a frozen '{}' object", self.type_name()),
            );
        }
        Ok(())
    }
}

/// The strongly connected components of the graph `edges` (node `i` refers to each of
/// `edges[i]`, with repeats), by Tarjan's algorithm, iteratively (a long chain must not
/// overflow the stack).
fn components(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = edges.len();
    let (mut index, mut low) = (vec![UNSEEN; n], vec![0; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut found, mut next) = (Vec::new(), Vec::new(), 0);
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        // (node, how many of its edges are done)
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut done)) = work.last_mut() {
            if *done == 0 && index[v] == UNSEEN {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*done) {
                *done += 1;
                if index[w] == UNSEEN {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut members = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w] = false;
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                found.push(members);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::components;

    fn sorted(mut found: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
        for c in &mut found {
            c.sort_unstable();
        }
        found.sort();
        found
    }

    #[test]
    fn a_cycle_is_one_component_and_a_chain_is_many() {
        // 0 -> 1 -> 2 -> 0 (a cycle), 2 -> 3, 3 -> 4 (a chain out of it), 4 -> 4 (a self loop)
        let edges = vec![vec![1], vec![2], vec![0, 3], vec![4], vec![4]];
        assert_eq!(
            sorted(components(&edges)),
            vec![vec![0, 1, 2], vec![3], vec![4]]
        );
    }

    #[test]
    fn repeated_edges_and_diamonds_do_not_merge_components() {
        // 0 -> 1 twice, 0 -> 2, 1 -> 3, 2 -> 3
        let edges = vec![vec![1, 1, 2], vec![3], vec![3], vec![]];
        assert_eq!(
            sorted(components(&edges)),
            vec![vec![0], vec![1], vec![2], vec![3]]
        );
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        // Deep enough to overflow a recursive walk's stack; Miri runs a smaller one.
        let n = if cfg!(miri) { 2_000 } else { 200_000 };
        let edges: Vec<Vec<usize>> = (0..n)
            .map(|i| if i + 1 < n { vec![i + 1] } else { vec![] })
            .collect();
        assert_eq!(components(&edges).len(), n);
    }
}
