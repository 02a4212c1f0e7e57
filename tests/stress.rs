//! Stress: many threads over several interpreters doing random operations (allocate, build
//! containers, switch, keep objects as owned handles and drop them anywhere, queue calls,
//! take and drop buffers, destroy and re-create interpreters). At the end every interpreter's
//! live-object count is back to zero, every queued call ran, and every export was given back.
//!
//! Size: `XINTERP_STRESS_OPS` operations per thread (default 2,000; Miri uses 30), seed:
//! `XINTERP_SEED` (printed, so a failing run can be repeated). A watchdog turns a deadlock
//! into a failure after `XINTERP_WATCHDOG_SECS` (default 60) without progress, naming what
//! each thread was doing and the state of every interpreter. The ordinary suite runs the
//! default size; CI runs it under cargo-careful at `XINTERP_STRESS_OPS=200000`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use xinterp::{
    ChannelId, Close, Config, ErrorKind, InterpId, ObjKind, Outgoing, OwnedObj, OwnerDeath,
    ReleaseStrategy, Runtime,
};

/// A small deterministic generator (xorshift64*), so a seed reproduces a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// What each worker is doing, for the watchdog's report.
struct Activity {
    doing: Vec<Mutex<String>>,
    progress: AtomicUsize,
}

impl Activity {
    fn set(&self, worker: usize, what: String) {
        *self.doing[worker].lock().unwrap() = what;
        self.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Turns a deadlock into a failure: if no worker makes progress for `limit`, prints what
/// every worker was doing and every interpreter's state, and aborts the test process (the
/// deadlocked threads could never be joined).
fn watchdog(rt: &Runtime, activity: &Activity, done: &std::sync::atomic::AtomicBool, limit: u64) {
    let mut last = usize::MAX;
    let mut still = 0;
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = activity.progress.load(Ordering::Relaxed);
        if now != last {
            (last, still) = (now, 0);
            continue;
        }
        still += 100;
        if still >= limit * 1000 {
            eprintln!("stress watchdog: no progress for {limit} s; the workers were:");
            for (i, doing) in activity.doing.iter().enumerate() {
                eprintln!("  thread {i}: {}", doing.lock().unwrap());
            }
            for id in rt.list() {
                eprintln!("  {:?}", rt.info(id));
            }
            std::process::abort();
        }
    }
}

/// The interpreters in play: a fixed set that is never destroyed, and a "churn" slot that
/// threads destroy and re-create.
struct World {
    rt: Runtime,
    fixed: Vec<InterpId>,
    churn: Mutex<InterpId>,
    /// Owned handles parked for any thread to pick up and drop anywhere.
    parked: Mutex<Vec<OwnedObj>>,
    calls_queued: AtomicUsize,
    calls_run: Arc<AtomicUsize>,
    /// The channel in play; force-closed and replaced now and then.
    channel: Mutex<ChannelId>,
}

impl World {
    fn pick(&self, rng: &mut Rng) -> InterpId {
        if rng.below(4) == 0 {
            *self.churn.lock().unwrap()
        } else {
            self.fixed[rng.below(self.fixed.len())]
        }
    }
}

fn step(world: &World, rng: &mut Rng, activity: &Activity, worker: usize) {
    let rt = &world.rt;
    let id = world.pick(rng);
    let op = rng.below(9);
    activity.set(worker, format!("op {op} using interpreter {id}"));
    match op {
        // Build and drop objects, possibly switching elsewhere in between, possibly parking
        // an owned handle for another thread.
        0..=2 => {
            let other = world.pick(rng);
            let park = rng.below(3) == 0;
            let kind = rng.below(4);
            let result = rt.enter(id, |tok| {
                let kept = {
                    let item = tok.str("item");
                    let obj = match kind {
                        0 => tok.list(&[item.clone(), tok.int(1)]),
                        1 => {
                            let d = tok.dict();
                            d.setitem(&item, &tok.bytes(b"v")).unwrap();
                            d
                        }
                        2 => tok.bytearray(b"buffer").memoryview().unwrap(),
                        _ => tok.tuple(&[item, tok.none()]),
                    };
                    if kind == 2 {
                        let buffer = obj.get_buffer().unwrap();
                        assert_eq!(buffer.len(), 6);
                    }
                    obj.unbind()
                };
                // Switching may fail if `other` is the churn interpreter being destroyed.
                let _ = tok.switch(other, |t| drop(t.list(&[t.int(2)])));
                if park {
                    world.parked.lock().unwrap().push(kept);
                }
            });
            if let Err(e) = result {
                assert_eq!(e.kind(), ErrorKind::InterpreterNotFound, "{e}");
            }
        }
        // Drop a parked handle here, wherever "here" is (maybe inside an interpreter).
        3 => {
            let handle = world.parked.lock().unwrap().pop();
            if let Some(handle) = handle {
                if rng.below(2) == 0 {
                    drop(handle);
                } else {
                    let _ = rt.enter(id, move |_| drop(handle));
                }
            }
        }
        // Queue a call.
        4 => {
            let ran = Arc::clone(&world.calls_run);
            if rt
                .call_soon(id, move |_| {
                    ran.fetch_add(1, Ordering::Relaxed);
                })
                .is_ok()
            {
                world.calls_queued.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Send a zero-copy buffer, a copied bytes item or an object pointer.
        6 => {
            let cid = *world.channel.lock().unwrap();
            let kind = rng.below(3);
            let result = rt.enter(id, |tok| {
                let data = tok.bytearray(b"payload");
                let item = match kind {
                    0 => Outgoing::buffer(&data).unwrap(),
                    1 => Outgoing::bytes(&data).unwrap(),
                    _ => Outgoing::object(&data),
                };
                tok.send(cid, item)
            });
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::ChannelClosed | ErrorKind::ChannelNotFound
                    ),
                    "{e}"
                ),
                Err(e) => assert_eq!(e.kind(), ErrorKind::InterpreterNotFound, "{e}"),
            }
        }
        // Receive: drop the item, or park it (a received view pins its sender's buffer).
        7 => {
            let cid = *world.channel.lock().unwrap();
            let park = rng.below(2) == 0;
            let result = rt.enter(id, |tok| match tok.recv(cid) {
                Ok(obj) => {
                    // An item of a destroyed sender arrives as the unbound marker; a proxy
                    // forwards to its origin (or is dead, under `Invalidate`).
                    if obj.kind() == ObjKind::Proxy {
                        // Local clones of a proxy never enter its origin.
                        let clones: Vec<_> = (0..3).map(|_| obj.clone()).collect();
                        drop(clones);
                    }
                    match obj.as_bytes() {
                        Ok(bytes) => assert_eq!(bytes, b"payload"),
                        Err(e) if obj.kind() == ObjKind::Unbound => {
                            assert_eq!(e.kind(), ErrorKind::TypeError)
                        }
                        Err(e) => assert_eq!(e.kind(), ErrorKind::InterpreterGone, "{e}"),
                    }
                    if park {
                        world.parked.lock().unwrap().push(obj.unbind());
                    }
                }
                Err(e) => assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::ChannelEmpty
                            | ErrorKind::ChannelClosed
                            | ErrorKind::ChannelNotFound
                            | ErrorKind::ItemInterpreterDestroyed
                            | ErrorKind::InterpreterGone
                    ),
                    "{e}"
                ),
            });
            if let Err(e) = result {
                assert_eq!(e.kind(), ErrorKind::InterpreterNotFound, "{e}");
            }
        }
        // Force-close the channel (releasing what it holds) and open another.
        8 if rng.below(8) == 0 => {
            let mut cid = world.channel.lock().unwrap();
            // Already closed if its last association went with a destroyed interpreter.
            if let Err(e) = rt.channel_close(*cid, Close::Force) {
                assert_eq!(e.kind(), ErrorKind::ChannelClosed, "{e}");
            }
            rt.channel_destroy(*cid).unwrap();
            *cid = rt.channel_create();
        }
        8 => {}
        // Destroy and re-create the churn interpreter (refused while it is busy).
        _ => {
            let mut churn = world.churn.lock().unwrap();
            match rt.destroy(*churn) {
                Ok(report) => {
                    // Only the exporters that received views still pin are left (and freed
                    // when those views go); proxies' exports were refused or invalidated.
                    assert_eq!(report.leaked_objects, report.pinned_exports, "{report:?}");
                    *churn = rt.create().unwrap();
                }
                Err(e) => assert_eq!(e.kind(), ErrorKind::InterpreterBusy, "{e}"),
            }
        }
    }
}

#[test]
fn random_operations_leave_every_interpreter_at_its_baseline() {
    let ops = env_or("XINTERP_STRESS_OPS", if cfg!(miri) { 30 } else { 2_000 }) as usize;
    let seed = env_or("XINTERP_SEED", 0x5eed_1234_abcd);
    // Every release strategy, with the identity cache on and off, under both owner-death
    // policies in turn.
    for (i, strategy) in ReleaseStrategy::ALL.into_iter().enumerate() {
        for identity_cache in [true, false] {
            let owner_death = if (i + usize::from(identity_cache)) % 2 == 0 {
                OwnerDeath::Refuse
            } else {
                OwnerDeath::Invalidate
            };
            let config = Config::default()
                .release(strategy)
                .owner_death(owner_death)
                .identity_cache(identity_cache);
            run_world(config, ops, seed);
        }
    }
}

fn run_world(config: Config, ops: usize, seed: u64) {
    let threads = if cfg!(miri) { 3 } else { 4 };
    println!("stress: {threads} threads x {ops} ops, XINTERP_SEED={seed}, {config:?}");
    let rt = Runtime::with_config(config);
    let fixed = vec![rt.main(), rt.create().unwrap(), rt.create().unwrap()];
    let churn = Mutex::new(rt.create().unwrap());
    let channel = Mutex::new(rt.channel_create());
    let world = World {
        rt,
        fixed,
        churn,
        parked: Mutex::new(Vec::new()),
        calls_queued: AtomicUsize::new(0),
        calls_run: Arc::new(AtomicUsize::new(0)),
        channel,
    };
    let activity = Activity {
        doing: (0..threads)
            .map(|_| Mutex::new("starting".into()))
            .collect(),
        progress: AtomicUsize::new(0),
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let limit = env_or("XINTERP_WATCHDOG_SECS", 60);
    std::thread::scope(|s| {
        let (world_ref, activity_ref, done_ref) = (&world, &activity, &done);
        let dog = s.spawn(move || watchdog(&world_ref.rt, activity_ref, done_ref, limit));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut rng = Rng(seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                    for _ in 0..ops {
                        step(world_ref, &mut rng, activity_ref, t);
                    }
                    activity_ref.set(t, "finished".into());
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        dog.join().unwrap();
    });

    world.parked.lock().unwrap().clear();
    let rt = &world.rt;
    let cid = *world.channel.lock().unwrap();
    if let Err(e) = rt.channel_close(cid, Close::Force) {
        assert_eq!(e.kind(), ErrorKind::ChannelClosed, "{e}");
    }
    // Draining one interpreter may queue releases on another (a view freed in its
    // receiver releases its export in the sender): drain until nothing runs.
    common::drain_all(rt);
    for id in rt.list() {
        let info = rt.info(id).unwrap();
        assert_eq!(info.live_objects, 0, "{info:?}");
        assert_eq!((info.owned_handles, info.inbox_depth), (0, 0), "{info:?}");
        assert_eq!(info.pinned_exports, 0, "{info:?}");
        assert!(
            rt.exports(id).unwrap().is_empty(),
            "ledger: {:?}",
            rt.exports(id)
        );
    }
    // Calls queued on a churn interpreter that was later destroyed ran in its final drain.
    assert_eq!(
        world.calls_queued.load(Ordering::Relaxed),
        world.calls_run.load(Ordering::Relaxed)
    );
    let c = rt.counters();
    assert_eq!(c.objects_allocated, c.objects_freed);
    assert_eq!(c.buffers_exported, c.buffers_released);
    assert_eq!(c.pending_queued, c.pending_run);
    println!("stress counters: {c:?}");
}
