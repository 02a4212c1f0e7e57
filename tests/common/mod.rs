//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses its own subset

use xinterp::{Channel, Config, InterpId, Obj, ObjectRef, Outgoing, OwnedObj, Runtime, Token};

/// Drains every interpreter until no pending call runs: draining one may queue releases on
/// another (a view freed in its receiver releases its export in the sender).
pub fn drain_all(rt: &Runtime) {
    while rt
        .list()
        .into_iter()
        .map(|id| rt.drain(id).unwrap())
        .sum::<usize>()
        > 0
    {}
}

/// The accounting at the end of a test: after draining, no object is left in any
/// interpreter (INV-FREE-ONCE), frozen or owned, no buffer is pinned and no export
/// outstanding (INV-LEDGER), and objects and buffer exports balance runtime-wide, destroyed
/// interpreters included.
pub fn assert_clean(rt: &Runtime) {
    drain_all(rt);
    for id in rt.list() {
        let info = rt.info(id).unwrap();
        assert_eq!(info.live_objects, 0, "{info:?}");
        assert_eq!(info.frozen_objects, 0, "{info:?}");
        assert_eq!(info.pinned_exports, 0, "{info:?}");
        assert!(rt.exports(id).unwrap().is_empty(), "{:?}", rt.exports(id));
    }
    let c = rt.counters();
    assert_eq!(c.objects_allocated, c.objects_freed, "{c:?}");
    assert_eq!(c.buffers_exported, c.buffers_released, "{c:?}");
}

/// Runs `f` in the main interpreter of a fresh runtime and checks that every object it made
/// was freed by the time it returned (INV-FREE-ONCE: the count would go negative, or stay
/// above zero, otherwise) and every buffer it exported was given back (INV-LEDGER).
pub fn in_main<R>(f: impl FnOnce(&mut Token<'_>) -> R) -> R {
    let rt = Runtime::new();
    let before = rt.counters();
    let out = rt.enter(rt.main(), f).unwrap();
    let info = rt.info(rt.main()).unwrap();
    assert_eq!(info.live_objects, 0, "objects leaked: {info:?}");
    let c = rt.counters();
    let delta = c.since(&before);
    assert_eq!(delta.objects_allocated, delta.objects_freed, "{delta:?}");
    assert_eq!(
        c.buffers_exported, c.buffers_released,
        "exports leaked: {c:?}"
    );
    out
}

/// Two interpreters besides main: a sender `s` and a receiver `r`.
pub fn interps(config: Config) -> (Runtime, InterpId, InterpId) {
    let rt = Runtime::with_config(config);
    let s = rt.create().unwrap();
    let r = rt.create().unwrap();
    (rt, s, r)
}

/// A runtime with sender `s` and receiver `r`, and a channel between them.
pub fn setup(config: Config) -> (Runtime, InterpId, InterpId, Channel) {
    let (rt, s, r) = interps(config);
    let ch = rt.create_channel();
    (rt, s, r, ch)
}

/// How an object goes on a channel.
#[derive(Clone, Copy, Debug)]
pub enum Item {
    /// As an object: the receiver gets a proxy (or a copy of an immutable).
    Object,
    /// As a buffer item: the receiver gets a view onto the sender's memory.
    Buffer,
    /// As a bytes item: the receiver gets a copy of the bytes.
    Bytes,
}

fn send_in<'t>(tok: &'t Token<'_>, ch: &Channel, how: Item, obj: &Obj<'t>) {
    let item = match how {
        Item::Object => Outgoing::object(obj),
        Item::Buffer => Outgoing::buffer(obj).unwrap(),
        Item::Bytes => Outgoing::bytes(obj).unwrap(),
    };
    ch.send(tok, item).unwrap();
}

/// Enters `from`, makes an object there with `make` and sends it on `ch` (`how`); the
/// sender keeps no handle.
pub fn send(
    rt: &Runtime,
    from: InterpId,
    ch: &Channel,
    how: Item,
    make: impl for<'a> FnOnce(&'a Token<'_>) -> Obj<'a>,
) {
    rt.enter(from, |tok| send_in(tok, ch, how, &make(tok)))
        .unwrap();
}

/// As [`send`], and returns the sender's owned handle to what it sent.
pub fn send_kept(
    rt: &Runtime,
    from: InterpId,
    ch: &Channel,
    how: Item,
    make: impl for<'a> FnOnce(&'a Token<'_>) -> Obj<'a>,
) -> OwnedObj {
    rt.enter(from, |tok| {
        let obj = make(tok);
        send_in(tok, ch, how, &obj);
        obj.unbind()
    })
    .unwrap()
}

/// Enters `into`, receives one item from `ch` (it must be there) and returns it as an owned
/// handle.
pub fn recv_owned(rt: &Runtime, into: InterpId, ch: &Channel) -> OwnedObj {
    rt.enter(into, |tok| ch.recv(tok).unwrap().unbind())
        .unwrap()
}

/// The message naming `origin`'s first export, an object at `addr`, as
/// `Token::resolve_object` reads it.
pub fn first_export_message(rt: &Runtime, origin: InterpId, addr: u64) -> ObjectRef {
    let serial = rt.exports(origin).unwrap()[0].serial;
    ObjectRef {
        runtime: rt.id(),
        origin: origin.get(),
        serial,
        generation: serial,
        addr,
    }
}

/// A small deterministic generator (xorshift64*), so a seed reproduces a run. The seed must
/// not be zero.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs `f` on its own thread and fails if it has not finished after `secs` (a deadlock).
pub fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let out = f();
        let _ = tx.send(out);
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(out) => out,
        Err(_) => panic!("DEADLOCK: {what} did not finish within {secs} s"),
    }
}

/// Runs `f` while another thread holds `interp`: that thread enters it before `f` starts
/// and leaves once `f` has returned (or panicked). For tests of what a busy interpreter
/// does to the others.
pub fn while_held<R>(rt: &Runtime, interp: InterpId, f: impl FnOnce() -> R) -> R {
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (leave_tx, leave_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            rt.enter(interp, |_| {
                held_tx.send(()).unwrap();
                // Returns once `f` is done: `leave_tx` is dropped, also by a panic.
                let _ = leave_rx.recv();
            })
            .unwrap()
        });
        held_rx.recv().unwrap();
        let out = f();
        drop(leave_tx);
        out
    })
}
