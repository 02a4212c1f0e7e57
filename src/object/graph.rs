//! The owned graph an object reaches, walked once for freezing and for moving: every object
//! of this interpreter that the root reaches, stopping at shared (frozen, immortal) objects,
//! each with the references it holds; or the refusal of the first object that cannot be
//! frozen or moved.

use std::collections::HashSet;

use super::{Body, Obj, ObjPtr};
use crate::error::{fail, ErrorKind, Result};

/// An owned object of the graph and the references it holds (with repeats, shared ones
/// included).
pub(super) struct Node {
    pub(super) ptr: ObjPtr,
    pub(super) children: Vec<ObjPtr>,
}

/// The owned objects `root` reaches, `root` first, iteratively (a long chain must not
/// overflow the stack). `refuse` says why an object (its body and its live exports) cannot
/// take part, if it cannot; the walk then fails with `NotShareable` naming it, and nothing
/// was `done` ("frozen", "moved").
pub(super) fn owned_graph(
    root: &Obj<'_>,
    refuse: impl Fn(&Body, usize) -> Option<String>,
    done: &str,
) -> Result<Vec<Node>> {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let mut stack = vec![root.ptr()];
    while let Some(ptr) = stack.pop() {
        if ptr.is_shared() || !seen.insert(ptr) {
            continue;
        }
        // SAFETY: reached from `root` through references held by owned objects of this
        // interpreter, which this thread holds (`root` is bound to its token); nothing has
        // run since (INV-OBJ-BOUND).
        let (children, exports) = unsafe { ptr.children_and_exports() };
        // SAFETY: as above.
        let body = unsafe { ptr.body() };
        if let Some(why) = refuse(body, exports) {
            return fail(
                ErrorKind::NotShareable,
                format!(
                    "{why} (a {:?} at {:#x}); nothing was {done}",
                    body.kind(),
                    ptr.addr()
                ),
            );
        }
        stack.extend(children.iter().copied());
        order.push(Node { ptr, children });
    }
    Ok(order)
}
