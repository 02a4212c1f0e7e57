//! Moved objects: ownership changes hands. Sending an object by move takes the object and
//! everything it reaches out of its interpreter when nothing outside that graph refers into
//! it (checked); the receiver adopts the objects as if it had made them, and nothing goes
//! back to the sender. Swift's `sending`, Pony's `iso`, a transferred `ArrayBuffer`. See
//! `design/sharing-modes.md`.
//!
//! Between the two the graph belongs to no interpreter (INV-MOVE-EXCLUSIVE): the sender no
//! longer counts it and holds no reference into it, the receiver does not have it yet, and
//! only the [`MovedGraph`] reaches it. A graph that is never received goes back to its
//! sender, to be freed there like any of its objects.

use std::collections::HashMap;

use super::graph::owned_graph;
use super::{Body, Obj, ObjPtr};
use crate::counters::Event;
use crate::error::{fail, ErrorKind, Result};
use crate::interp::InterpState;
use crate::release::release_in_owner;
use crate::sync::Arc;
use crate::thread_state::Token;

/// An object graph on its way to another interpreter, owned by no interpreter.
pub(crate) struct MovedGraph {
    /// The root, with the one reference that the sender's consumed handle held.
    root: ObjPtr,
    /// Every object of the graph (the shared objects it refers to are not part of it).
    members: Vec<ObjPtr>,
    /// The interpreter it came from, which takes it back if it is never received.
    from: Arc<InterpState>,
}

// SAFETY: nothing but this value reaches the graph's objects (INV-MOVE-EXCLUSIVE): the
// sender holds no reference into it and the receiver has not adopted it, so whichever thread
// holds the value is alone with them. It is dereferenced only by `adopt` (in the receiver)
// and by the give-back (in the sender).
unsafe impl Send for MovedGraph {}
// SAFETY: `&MovedGraph` gives nothing that reaches the objects.
unsafe impl Sync for MovedGraph {}

impl MovedGraph {
    /// Takes `obj` and everything it reaches out of its interpreter, consuming the handle;
    /// fails with `NotShareable` (and changes nothing, the handle dropped as usual) when an
    /// object of the graph is referred to from outside it, or cannot change hands (a proxy,
    /// a memoryview, bytes or a bytearray with live exports), or when `obj` is frozen
    /// (shared already: send it with `Outgoing::object`).
    pub(crate) fn take(obj: Obj<'_>) -> Result<MovedGraph> {
        if obj.is_frozen() {
            return fail(
                ErrorKind::NotShareable,
                "a frozen object is shared by every interpreter already; it is sent by \
                 reference (Outgoing::object), not moved",
            );
        }
        let graph = owned_graph(&obj, refusal, "moved")?;
        let tok = obj.token();
        // Every reference to a member must come from a member, but the one the handle
        // holds: what the sender keeps elsewhere would outlive the move (INV-MOVE-EXCLUSIVE).
        let mut inside: HashMap<ObjPtr, usize> = HashMap::new();
        inside.insert(obj.ptr(), 1);
        for node in &graph {
            for &child in node.children.iter().filter(|c| !c.is_shared()) {
                *inside.entry(child).or_default() += 1;
            }
        }
        let members: Vec<ObjPtr> = graph.into_iter().map(|node| node.ptr).collect();
        for &member in &members {
            // SAFETY: reached from `obj` through owned objects of this interpreter, which
            // this thread holds (INV-OBJ-BOUND).
            let count = unsafe { member.refcount() };
            let from_inside = inside.get(&member).copied().unwrap_or(0);
            if count != from_inside {
                // SAFETY: as above.
                let kind = unsafe { member.body() }.kind();
                return fail(
                    ErrorKind::NotShareable,
                    format!(
                        "cannot move: a {kind:?} at {:#x} of the graph is referred to from \
                         outside it ({} reference(s), {from_inside} from inside the graph and \
                         the handle); nothing was moved",
                        member.addr(),
                        count,
                    ),
                );
            }
        }
        let interp = Arc::clone(tok.interp());
        interp.note_moved_out(members.len());
        tok.counters()
            .add(Event::ObjectsMoved, members.len() as u64);
        Ok(MovedGraph {
            root: obj.into_ptr(),
            members,
            from: interp,
        })
    }

    /// How many objects the graph holds.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Adopts the graph into `tok`'s interpreter: from now on it owns every object as if it
    /// had made them, and the root comes back as a handle.
    pub(crate) fn adopt<'t>(mut self, tok: &'t Token<'t>) -> Obj<'t> {
        // Taken: the drop below gives nothing back.
        let members = std::mem::take(&mut self.members);
        for &member in &members {
            // SAFETY: only this value reaches the graph (INV-MOVE-EXCLUSIVE), and this
            // thread holds the interpreter that takes it.
            unsafe { member.rehome(tok.interp()) };
        }
        tok.interp().note_moved_in(members.len());
        tok.counters()
            .add(Event::ObjectsAdopted, members.len() as u64);
        // SAFETY: the root is now an object of `tok`'s interpreter, and this value held its
        // one reference from outside the graph (INV-OBJ-BOUND).
        unsafe { Obj::from_owned_ptr(tok, self.root) }
    }
}

impl Drop for MovedGraph {
    /// Never received: the graph goes back to its sender, where it is counted again and its
    /// root's reference given up, in the sender (or in a late entry if it was destroyed).
    fn drop(&mut self) {
        if self.members.is_empty() {
            return; // adopted
        }
        let graph = GraphBack {
            root: self.root,
            members: std::mem::take(&mut self.members),
        };
        release_in_owner(&self.from, move |from| {
            let graph = graph;
            for &member in &graph.members {
                // SAFETY: only this release reaches the graph, and it runs in the sender
                // (INV-RELEASE-IN-OWNER), whose objects they were and are again.
                unsafe { member.rehome(from) };
            }
            from.note_moved_in(graph.members.len());
            // SAFETY: as above; the value held the root's one outside reference.
            unsafe { graph.root.decref() };
        });
    }
}

/// A graph on its way back to its sender (see `Drop for MovedGraph`).
struct GraphBack {
    root: ObjPtr,
    members: Vec<ObjPtr>,
}

// SAFETY: as for `MovedGraph`: only this value reaches the graph until it runs in the sender.
unsafe impl Send for GraphBack {}

/// Why an object cannot change hands, or `None` if it can (its children are checked apart).
fn refusal(body: &Body, exports: usize) -> Option<String> {
    let what = match body {
        Body::Proxy(_) => "a RemoteProxy (its identity-cache entry stays here)".into(),
        Body::View(_) => "a memoryview (its exporter counts it here)".into(),
        Body::ReceivedView(_) => "a received memoryview (its export is released here)".into(),
        Body::Unbound => "the UNBOUND marker".into(),
        Body::Bytes { .. } | Body::ByteArray { .. } if exports > 0 => {
            format!(
                "a {:?} with {exports} live export(s) (they are released here)",
                body.kind()
            )
        }
        _ => return None,
    };
    Some(format!("cannot move {what}"))
}
