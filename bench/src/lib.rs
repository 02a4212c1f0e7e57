//! Fixtures for the instruction-count benchmarks in `benches/hot_paths.rs`: each builds
//! what a hot path needs and warms it (first-use allocations, lazy statics), so that the
//! measured part is the path alone, `OPS` times.

use xinterp::{Channel, ClassDef, Config, InterpId, Obj, Outgoing, OwnedObj, Result, Runtime};

/// Operations per measured run; the counts in `design/performance.md` are per operation
/// (the run's count divided by this).
pub const OPS: usize = 100;

/// A runtime with a sender `s`, a receiver `r` and a channel, and an object in `s`.
pub struct Fixture {
    pub rt: Runtime,
    pub s: InterpId,
    pub r: InterpId,
    pub ch: Channel,
    pub obj: Option<OwnedObj>,
}

fn fixture(
    config: Config,
    make: impl for<'a> FnOnce(&'a xinterp::Token<'_>) -> Obj<'a>,
) -> Fixture {
    let rt = Runtime::with_config(config);
    let (s, r) = (rt.create().unwrap(), rt.create().unwrap());
    let ch = rt.create_channel();
    let obj = Some(rt.enter(s, |tok| make(tok).unbind()).unwrap());
    Fixture { rt, s, r, ch, obj }
}

/// Sends `OPS` zero-copy buffer items of `obj` from `s` and receives and drops them in `r`
/// (each view's release enters `s`): the lab's "zero-copy item S -> R".
pub fn zero_copy_items(f: &Fixture, n: usize) {
    let payload = f.obj.as_ref().unwrap();
    f.rt.enter(f.s, |ts| {
        let obj = payload.bind(ts).unwrap();
        for _ in 0..n {
            f.ch.send(ts, Outgoing::buffer(&obj).unwrap()).unwrap();
        }
        drop(obj);
        ts.switch(f.r, |tr| {
            for _ in 0..n {
                std::hint::black_box(f.ch.recv(tr).unwrap().id());
            }
        })
        .unwrap();
    })
    .unwrap();
}

/// A fixture with a `size`-byte `bytes` in `s`, warmed by a round of items.
pub fn zero_copy_fixture(size: usize) -> Fixture {
    let f = fixture(Config::default(), |tok| tok.bytes(&vec![7u8; size]));
    zero_copy_items(&f, OPS);
    f
}

/// Sends and receives `n` 64-byte bytes items in `s` itself: the channel's own cost.
pub fn bytes_items_same_interpreter(f: &Fixture, n: usize) {
    let payload = f.obj.as_ref().unwrap();
    f.rt.enter(f.s, |ts| {
        let obj = payload.bind(ts).unwrap();
        for _ in 0..n {
            f.ch.send(ts, Outgoing::bytes(&obj).unwrap()).unwrap();
            std::hint::black_box(f.ch.recv(ts).unwrap().id());
        }
    })
    .unwrap();
}

pub fn bytes_item_fixture() -> Fixture {
    let f = fixture(Config::default(), |tok| tok.bytes(&[7u8; 64]));
    bytes_items_same_interpreter(&f, OPS);
    f
}

/// `n` enters and leaves of `s`, uncontended.
pub fn enters(f: &Fixture, n: usize) {
    for _ in 0..n {
        f.rt.enter(f.s, |tok| std::hint::black_box(tok.id()))
            .unwrap();
    }
}

pub fn enter_fixture() -> Fixture {
    let f = fixture(Config::default(), |tok| tok.none());
    enters(&f, OPS);
    f
}

fn bump<'t>(this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    let n = this.getattr("n").map_or(Ok(0), |n| n.as_int())? + 1;
    this.setattr("n", &this.token().int(n))?;
    Ok(this.token().none())
}

/// `n` direct calls of a user method doing `self.n += 1` on an object of `s`.
pub fn method_calls(f: &Fixture, n: usize) {
    let counter = f.obj.as_ref().unwrap();
    f.rt.enter(f.s, |tok| {
        let counter = counter.bind(tok).unwrap();
        for _ in 0..n {
            std::hint::black_box(counter.call_method("bump", &[]).unwrap());
        }
    })
    .unwrap();
}

pub fn method_fixture() -> Fixture {
    let f = fixture(Config::default(), |tok| {
        tok.class(ClassDef::new("Counter").method("bump", bump))
            .call(&[])
            .unwrap()
    });
    method_calls(&f, OPS);
    f
}

/// `n` receives that miss the identity cache: each object is sent once from `s`, received
/// in `r` as a new proxy, and dropped (its release enters `s`).
pub fn identity_misses(f: &Fixture, n: usize) {
    f.rt.enter(f.s, |ts| {
        for _ in 0..n {
            f.ch.send(ts, Outgoing::object(&ts.list(&[]))).unwrap();
        }
        ts.switch(f.r, |tr| {
            for _ in 0..n {
                std::hint::black_box(f.ch.recv(tr).unwrap().id());
            }
        })
        .unwrap();
    })
    .unwrap();
}

/// `n` identity-cache misses in bursts of [`BURST`]: `s` sends a burst, and `r` receives it
/// all before dropping it, as the lab's miss row holds 64. The proxies' bodies and releases
/// wait together: the bodies' boxes in the thread's cache, the releases in its batch.
pub fn identity_miss_bursts(f: &Fixture, n: usize) {
    f.rt.enter(f.s, |ts| {
        for left in (0..n).step_by(BURST) {
            let burst = BURST.min(n - left);
            for _ in 0..burst {
                f.ch.send(ts, Outgoing::object(&ts.list(&[]))).unwrap();
            }
            ts.switch(f.r, |tr| {
                let held: Vec<_> = (0..burst).map(|_| f.ch.recv(tr).unwrap()).collect();
                std::hint::black_box(&held);
            })
            .unwrap();
        }
    })
    .unwrap();
}

/// Proxies held at once by [`identity_miss_bursts`].
pub const BURST: usize = 50;

pub fn identity_burst_fixture() -> Fixture {
    let f = fixture(Config::default().identity_cache(true), |tok| tok.none());
    identity_miss_bursts(&f, OPS);
    f
}

pub fn identity_fixture() -> Fixture {
    let f = fixture(Config::default().identity_cache(true), |tok| tok.none());
    identity_misses(&f, OPS);
    f
}

/// `n` forwarded calls through a proxy in `r` of a counter in `s`.
pub fn forwarded_calls(f: &Fixture, proxy: &OwnedObj, n: usize) {
    f.rt.enter(f.r, |tr| {
        let proxy = proxy.bind(tr).unwrap();
        for _ in 0..n {
            std::hint::black_box(proxy.call_method("bump", &[]).unwrap());
        }
    })
    .unwrap();
}

pub fn forwarded_fixture() -> (Fixture, OwnedObj) {
    let f = method_fixture();
    let counter = f.obj.as_ref().unwrap();
    f.rt.enter(f.s, |ts| {
        f.ch.send(ts, Outgoing::object(&counter.bind(ts).unwrap()))
            .unwrap()
    })
    .unwrap();
    let proxy =
        f.rt.enter(f.r, |tr| f.ch.recv(tr).unwrap().unbind())
            .unwrap();
    forwarded_calls(&f, &proxy, OPS);
    (f, proxy)
}

/// Sends and receives `n` 64-byte boxed items through a crossbeam channel on one thread:
/// the baseline of `bytes_items_same_interpreter`.
pub fn crossbeam_items(
    ch: &(crossbeam_like::Sender, crossbeam_like::Receiver),
    payload: &[u8],
    n: usize,
) {
    for _ in 0..n {
        ch.0.send(payload.into()).unwrap();
        std::hint::black_box(ch.1.recv().unwrap());
    }
}

/// The crossbeam types, named once.
pub mod crossbeam_like {
    pub type Sender = crossbeam_channel::Sender<Box<[u8]>>;
    pub type Receiver = crossbeam_channel::Receiver<Box<[u8]>>;
}

/// A bounded crossbeam channel (a ring) for one item, warmed.
pub fn crossbeam_fixture() -> (crossbeam_like::Sender, crossbeam_like::Receiver) {
    let ch = crossbeam_channel::bounded(1);
    crossbeam_items(&ch, &[7u8; 64], OPS);
    ch
}

/// An unbounded crossbeam channel (a list of blocks), warmed: like MemChannel, it never
/// refuses a send for want of room.
pub fn crossbeam_unbounded_fixture() -> (crossbeam_like::Sender, crossbeam_like::Receiver) {
    let ch = crossbeam_channel::unbounded();
    crossbeam_items(&ch, &[7u8; 64], OPS);
    ch
}

/// `n` lock + unlock of an uncontended std mutex: the baseline of `enters`.
pub fn mutex_round_trips(m: &std::sync::Mutex<u64>, n: usize) {
    for _ in 0..n {
        *m.lock().unwrap() += 1;
    }
}

pub fn mutex_fixture() -> std::sync::Mutex<u64> {
    let m = std::sync::Mutex::new(0);
    mutex_round_trips(&m, OPS);
    m
}
