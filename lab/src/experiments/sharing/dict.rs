//! The dict handed over and the lookups made in it: its entries, which keys each receiver
//! looks up, and [`Setup`], a runtime whose sender holds a newly built dict.

use std::fmt::Write as _;
use std::time::Instant;

use xinterp::{InterpId, Obj, OwnedObj, Runtime, Token};

use super::memory::{memory_in_use, mib};

/// The value stored under key `k{i}`.
pub(super) fn value_of(i: usize) -> i64 {
    (i % 1000) as i64
}

/// The entry the `i`-th lookup of a dict of `n` entries asks for: a stride prime to every
/// size, so the lookups spread over the whole dict. Receiver `j` of those making `m` lookups
/// each makes lookups `j * m` to `(j + 1) * m - 1`: receivers of a shared dict do not ask
/// for the same entries at the same time (which would let one's cache misses serve the
/// others) unless the dict has fewer entries than all their lookups.
fn lookup_index(i: usize, n: usize) -> usize {
    (i * 7919) % n
}

/// The keys receiver `j` looks up, `m` of them, as entry indices.
pub(super) fn lookups_of(j: usize, m: usize, n: usize) -> impl Iterator<Item = usize> {
    (j * m..(j + 1) * m).map(move |i| lookup_index(i, n))
}

/// The dict of `n` entries, in `tok`'s interpreter.
pub(super) fn build<'t>(tok: &'t Token<'_>, n: usize) -> Obj<'t> {
    let dict = tok.dict();
    let mut key = String::new();
    for i in 0..n {
        key.clear();
        write!(key, "k{i}").expect("writing to a String");
        dict.setitem(&tok.str(&key), &tok.int(value_of(i)))
            .expect("a str key");
    }
    dict
}

/// A runtime with a sender holding the dict, and receivers.
pub(super) struct Setup {
    pub(super) rt: Runtime,
    pub(super) sender: InterpId,
    pub(super) receivers: Vec<InterpId>,
    /// The sender's dict (taken by a move).
    pub(super) dict: Option<OwnedObj>,
    pub(super) n: usize,
    pub(super) build_ns: f64,
    /// The memory the build added, in MiB.
    pub(super) dict_mib: f64,
}

impl Setup {
    /// A new runtime with `receivers` receivers and a sender holding a dict of `n` entries.
    pub(super) fn new(n: usize, receivers: usize) -> Self {
        let rt = Runtime::new();
        let sender = rt.create().expect("creating the sender");
        let receivers = (0..receivers)
            .map(|_| rt.create().expect("creating a receiver"))
            .collect();
        let before = memory_in_use();
        let started = Instant::now();
        let dict = rt
            .enter(sender, |tok| build(tok, n).unbind())
            .expect("entering the sender");
        let build_ns = started.elapsed().as_nanos() as f64;
        let dict_mib = mib(before, memory_in_use());
        Setup {
            rt,
            sender,
            receivers,
            dict: Some(dict),
            n,
            build_ns,
            dict_mib,
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(dict) = self.dict.take() {
            let _ = self.rt.enter(self.sender, |_| drop(dict));
        }
    }
}
