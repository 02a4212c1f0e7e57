//! Stress: many threads over several interpreters doing random operations (allocate, build
//! containers, switch, keep objects as owned handles and drop them anywhere, queue calls,
//! take and drop buffers, destroy and re-create interpreters). At the end every interpreter's
//! live-object count is back to zero, every queued call ran, and every export was given back.
//!
//! Size: `XINTERP_STRESS_OPS` operations per thread (default 2,000; Miri uses 30). The ordinary
//! suite runs the default size; CI runs it under cargo-careful at `XINTERP_STRESS_OPS=200000`.
//!
//! Seed: every run picks a new one (from the clock and the process id) unless `XINTERP_SEED`
//! is set; under Miri the default is fixed (Miri's isolation has no clock, and its own
//! `-Zmiri-many-seeds` varies the schedule). The seed is printed at the start of each
//! configuration and is part of every failure message; it fixes each thread's sequence of
//! operations, not the interleaving of the threads, so a failure may take a few runs with
//! the same `XINTERP_SEED` to come back.
//!
//! Failures: a failed assertion in a worker stops every worker at its next operation (they
//! do not die on the poisoned mutexes), the watchdog is told to stop, and the test fails with
//! `stress failed with XINTERP_SEED=<seed> (<config>): worker <n> (operation <i>: <what it
//! was doing>) panicked at <file:line>: <the original message>`; a failed final accounting
//! check reads the same way. A deadlock cannot be joined: a watchdog turns it into a failure
//! after `XINTERP_WATCHDOG_SECS` (default 60) without progress (at most 10 s once a worker has
//! failed and the others should have stopped). Its report (seed, configuration, the first
//! failure if any, what each thread was doing, every interpreter's state) is written straight
//! to the process's stderr, which `cargo test` does not capture, and the process aborts.
//!
//! Soak: `ci/soak.sh N` builds this test once and runs it N times (default 100), each run
//! with its own seed, under a timeout; it keeps the output of failing runs and ends with a
//! summary of the failing seeds (`ci/soak.sh --help`).

mod common;
use common::Rng;

use std::any::Any;
use std::cell::RefCell;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, TryLockError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use xinterp::{
    Channel, Close, Config, ErrorKind, InterpId, ObjKind, Outgoing, OwnedObj, OwnerDeath,
    ReleaseStrategy, Runtime,
};

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// A new seed for every run: the clock and the process id, mixed (splitmix64's finalizer)
/// so that runs started close together get unrelated seeds. Fixed under Miri, whose
/// isolation has no clock.
fn fresh_seed() -> u64 {
    if cfg!(miri) {
        return 0x5eed_1234_abcd;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let pid = u64::from(std::process::id());
    let mut z = (nanos ^ (pid << 40)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Locks `m` even if a failed worker poisoned it: after a failure the other workers only
/// have to get to their next look at the stop flag, and the data these mutexes guard (ids,
/// parked handles) stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// Where this thread last panicked, recorded by the hook [`install_panic_hook`] sets.
    static PANICKED_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records each panic's location for [`panic_message`], then lets the previous hook print
/// it as usual (into the test's captured output).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let at = info.location().map(ToString::to_string);
            PANICKED_AT.with(|cell| {
                if let Ok(mut slot) = cell.try_borrow_mut() {
                    *slot = at;
                }
            });
            previous(info);
        }));
    });
}

/// A caught panic as text: where it happened (on this thread) and its message.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic whose payload is not a string)".to_string()
    };
    match PANICKED_AT.with(|cell| cell.try_borrow_mut().ok().and_then(|mut slot| slot.take())) {
        Some(at) => format!("panicked at {at}: {msg}"),
        None => format!("panicked: {msg}"),
    }
}

/// The first failure of a run, and the flag that stops every worker once there is one.
#[derive(Default)]
struct Failure {
    stop: AtomicBool,
    first: Mutex<Option<String>>,
}

impl Failure {
    /// Keeps `what` if it is the first failure, and stops the workers.
    fn record(&self, what: String) {
        lock(&self.first).get_or_insert(what);
        self.stop.store(true, Ordering::Release);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn first(&self) -> Option<String> {
        lock(&self.first).clone()
    }
}

/// What each worker is doing, for the watchdog's report and the failure message.
struct Activity {
    doing: Vec<Mutex<String>>,
    progress: AtomicUsize,
}

impl Activity {
    fn set(&self, worker: usize, what: String) {
        *lock(&self.doing[worker]) = what;
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    /// Never waits: the watchdog must get its report out whatever the workers hold.
    fn get(&self, worker: usize) -> String {
        match self.doing[worker].try_lock() {
            Ok(doing) => doing.clone(),
            Err(TryLockError::Poisoned(doing)) => doing.into_inner().clone(),
            Err(TryLockError::WouldBlock) => "(being updated)".to_string(),
        }
    }
}

/// How long the workers get to stop once one of them has failed, before the watchdog
/// reports them (if `XINTERP_WATCHDOG_SECS` is not shorter).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Turns a deadlock into a failure: if no worker makes progress for `limit` (or, once a
/// worker has failed, for [`STOP_GRACE`]), writes what every worker was doing and every
/// interpreter's state to the process's stderr and aborts the test process (the deadlocked
/// threads could never be joined). The report goes to stderr itself, not through
/// `eprintln!`, so that `cargo test` shows it although it captures the test's output.
fn watchdog(run: &Run, world: &World, activity: &Activity, failure: &Failure, done: &AtomicBool) {
    const TICK: Duration = Duration::from_millis(100);
    let mut last = usize::MAX;
    let mut since = Instant::now();
    while !done.load(Ordering::Acquire) {
        // Unparked when the run is done, so that a run does not wait out a tick.
        std::thread::park_timeout(TICK);
        let now = activity.progress.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
            continue;
        }
        let still = since.elapsed();
        let limit = if failure.stopped() {
            run.watchdog_limit.min(STOP_GRACE)
        } else {
            run.watchdog_limit
        };
        if still >= limit {
            watchdog_report(run, world, activity, failure, still);
            std::process::abort();
        }
    }
}

fn watchdog_report(
    run: &Run,
    world: &World,
    activity: &Activity,
    failure: &Failure,
    still: Duration,
) {
    // Line by line, unbuffered: if looking at an interpreter blocks in a real deadlock,
    // what came before is out already. Write errors are ignored: the abort follows anyway.
    let mut err = std::io::stderr();
    let (seed, config) = (run.seed, run.config);
    let _ = writeln!(
        err,
        "\nstress watchdog: no progress for {} s with XINTERP_SEED={seed} ({config:?}); \
         aborting",
        still.as_secs()
    );
    if let Some(first) = failure.first() {
        let _ = writeln!(
            err,
            "  a worker failed and the others did not stop: {first}"
        );
    }
    let _ = writeln!(err, "  the workers were:");
    for worker in 0..activity.doing.len() {
        let _ = writeln!(err, "    thread {worker}: {}", activity.get(worker));
    }
    let _ = writeln!(err, "  the interpreters:");
    for id in world.rt.list() {
        let _ = writeln!(err, "    {:?}", world.rt.info(id));
    }
    let _ = writeln!(err, "  repeat with XINTERP_SEED={seed}");
    let _ = err.flush();
}

/// One configuration's run, as the failure messages and the watchdog name it.
struct Run {
    seed: u64,
    config: Config,
    ops: usize,
    threads: usize,
    watchdog_limit: Duration,
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
    channel: Mutex<Channel>,
}

impl World {
    fn new(config: Config) -> Self {
        let rt = Runtime::with_config(config);
        let fixed = vec![rt.main(), rt.create().unwrap(), rt.create().unwrap()];
        let churn = Mutex::new(rt.create().unwrap());
        let channel = Mutex::new(rt.create_channel());
        World {
            rt,
            fixed,
            churn,
            parked: Mutex::new(Vec::new()),
            calls_queued: AtomicUsize::new(0),
            calls_run: Arc::new(AtomicUsize::new(0)),
            channel,
        }
    }

    fn pick(&self, rng: &mut Rng) -> InterpId {
        if rng.below(4) == 0 {
            *lock(&self.churn)
        } else {
            self.fixed[rng.below(self.fixed.len())]
        }
    }
}

/// What operation `op` of [`step`] does, for the reports.
fn op_name(op: usize) -> &'static str {
    match op {
        0..=2 => "build objects and switch",
        3 => "drop a parked handle",
        4 => "queue a call",
        6 => "send (buffer, bytes, object, frozen or moved)",
        7 => "receive",
        8 => "maybe force-close the channel",
        _ => "destroy and re-create the churn interpreter",
    }
}

fn step(world: &World, rng: &mut Rng, activity: &Activity, worker: usize, at: usize) {
    let rt = &world.rt;
    let id = world.pick(rng);
    let op = rng.below(9);
    activity.set(
        worker,
        format!(
            "operation {at}: {} (op {op}, interpreter {id})",
            op_name(op)
        ),
    );
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
                    lock(&world.parked).push(kept);
                }
            });
            if let Err(e) = result {
                assert_eq!(e.kind(), ErrorKind::InterpreterNotFound, "{e}");
            }
        }
        // Drop a parked handle here, wherever "here" is (maybe inside an interpreter).
        3 => {
            let handle = lock(&world.parked).pop();
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
        // Send a zero-copy buffer, a copied bytes item, an object pointer, a frozen object
        // (shared by reference, outliving a destroyed sender) or a moved one.
        6 => {
            let ch = lock(&world.channel).clone();
            let kind = rng.below(5);
            let result = rt.enter(id, |tok| {
                let data = tok.bytearray(b"payload");
                let item = match kind {
                    0 => Outgoing::buffer(&data).unwrap(),
                    1 => Outgoing::bytes(&data).unwrap(),
                    2 => Outgoing::object(&data),
                    3 => {
                        data.freeze().unwrap();
                        Outgoing::object(&data)
                    }
                    _ => Outgoing::moved(data).unwrap(),
                };
                ch.send(tok, item)
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
            let ch = lock(&world.channel).clone();
            let park = rng.below(2) == 0;
            let result = rt.enter(id, |tok| match ch.recv(tok) {
                Ok(obj) => {
                    // An item of a destroyed sender arrives as the unbound marker; a proxy
                    // forwards to its origin (or is dead, under `Invalidate`).
                    if obj.kind() == ObjKind::Proxy {
                        // Local clones of a proxy never enter its origin.
                        let clones: Vec<_> = (0..3).map(|_| obj.clone()).collect();
                        drop(clones);
                    }
                    match obj.to_bytes() {
                        Ok(bytes) => assert_eq!(bytes, b"payload"),
                        Err(e) if obj.kind() == ObjKind::Unbound => {
                            assert_eq!(e.kind(), ErrorKind::TypeError)
                        }
                        Err(e) => assert_eq!(e.kind(), ErrorKind::InterpreterGone, "{e}"),
                    }
                    if park {
                        lock(&world.parked).push(obj.unbind());
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
            let mut ch = lock(&world.channel);
            // Already closed if its last association went with a destroyed interpreter.
            if let Err(e) = ch.close(Close::Force) {
                assert_eq!(e.kind(), ErrorKind::ChannelClosed, "{e}");
            }
            ch.destroy().unwrap();
            *ch = rt.create_channel();
        }
        8 => {}
        // Destroy and re-create the churn interpreter (refused while it is busy).
        _ => {
            let mut churn = lock(&world.churn);
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
    install_panic_hook();
    let ops = env_or("XINTERP_STRESS_OPS", if cfg!(miri) { 30 } else { 2_000 }) as usize;
    let seed = env_or("XINTERP_SEED", fresh_seed());
    let watchdog_limit = Duration::from_secs(env_or("XINTERP_WATCHDOG_SECS", 60));
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
            run_world(&Run {
                seed,
                config,
                ops,
                threads: if cfg!(miri) { 3 } else { 4 },
                watchdog_limit,
            });
        }
    }
}

/// Runs one configuration: the workers, then the final accounting. Any failure, in a worker
/// or in the accounting, ends the test with its original message, the seed and the
/// configuration.
fn run_world(run: &Run) {
    let Run {
        seed,
        config,
        ops,
        threads,
        ..
    } = *run;
    println!("stress: {threads} threads x {ops} ops, XINTERP_SEED={seed}, {config:?}");
    let world = World::new(config);
    let activity = Activity {
        doing: (0..threads)
            .map(|_| Mutex::new("starting".into()))
            .collect(),
        progress: AtomicUsize::new(0),
    };
    let failure = Failure::default();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (world, activity, failure, done) = (&world, &activity, &failure, &done);
        let dog = s.spawn(move || watchdog(run, world, activity, failure, done));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                std::thread::Builder::new()
                    .name(format!("stress worker {t}"))
                    .spawn_scoped(s, move || work(run, world, activity, failure, t))
                    .expect("a worker thread starts")
            })
            .collect();
        for worker in workers {
            // A worker catches its own panics; this only sees one that got past that.
            if let Err(payload) = worker.join() {
                failure.record(format!("a worker {}", panic_message(&*payload)));
            }
        }
        done.store(true, Ordering::Release);
        dog.thread().unpark();
        dog.join().expect("the watchdog returns");
    });

    let failed = failure.first().or_else(|| {
        panic::catch_unwind(AssertUnwindSafe(|| check_final(&world)))
            .err()
            .map(|payload| format!("final accounting {}", panic_message(&*payload)))
    });
    if let Some(msg) = failed {
        // The runtime may have been left in the middle of an operation: leak it rather than
        // finalize it while this panic unwinds (a second panic there would abort and hide
        // the first).
        std::mem::forget(world);
        panic!("stress failed with XINTERP_SEED={seed} ({config:?}): {msg}");
    }
}

/// One worker: `run.ops` random steps, or fewer if a worker fails (this one: it records its
/// panic and stops them all).
fn work(run: &Run, world: &World, activity: &Activity, failure: &Failure, worker: usize) {
    let mut rng = Rng(run.seed ^ (worker as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut at = 0;
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        while at < run.ops && !failure.stopped() {
            step(world, &mut rng, activity, worker, at);
            at += 1;
        }
    }));
    match outcome {
        Ok(()) if at == run.ops => activity.set(worker, "finished".into()),
        Ok(()) => activity.set(
            worker,
            format!("stopped before operation {at}: another worker failed"),
        ),
        Err(payload) => {
            let msg = panic_message(&*payload);
            failure.record(format!("worker {worker} ({}) {msg}", activity.get(worker)));
            activity.set(worker, format!("failed at operation {at}"));
        }
    }
}

/// The accounting once every worker is done: every interpreter back at its baseline, every
/// queued call run, objects and exports balanced runtime-wide.
fn check_final(world: &World) {
    lock(&world.parked).clear();
    let rt = &world.rt;
    let ch = lock(&world.channel).clone();
    if let Err(e) = ch.close(Close::Force) {
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
