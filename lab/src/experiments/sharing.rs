//! `sharing` (question 7): the four ways to hand a large read-mostly structure to other
//! interpreters, measured on the same work.
//!
//! A dict of `N` entries (str keys `"k0"`, `"k1"`, ..., small int values `i % 1000`) is
//! made in one interpreter (the sender) and handed to `K` others (the receivers), each
//! then making `M` lookups of keys spread over the whole dict (key `i * 7919 mod N` for
//! the `i`-th lookup, receiver `j` making lookups `j * M` to `(j + 1) * M - 1`, so that
//! receivers of one shared dict do not warm each other's caches). Four modes:
//!
//! - **deep copy**: the sender encodes the dict into bytes ([`Encoder`]: a length-prefixed
//!   encoding of the str keys and int values, standing for CPython's pickle), sends one
//!   copied `bytes` item ([`Outgoing::bytes`]) to each receiver, and each receiver decodes
//!   it ([`decode_dict`]) into a dict of its own;
//! - **proxy**: [`Outgoing::object`] of the (mutable) dict: each receiver gets a proxy and
//!   every lookup is forwarded into the sender (a switch each);
//! - **frozen**: [`Obj::freeze`] (its time counted in the hand-over), then
//!   [`Outgoing::object`]: every receiver gets the very dict and reads it in place;
//! - **moved** (`K` = 1 only): [`Outgoing::moved`]: the receiver owns the dict.
//!
//! Each receiver runs on a thread of its own (as `K` interpreters would), entered for the
//! whole repetition and waiting in [`xinterp::Channel::recv_wait`]. The sender's dict is
//! built before the clock starts: for the copies, the proxies and the move, one dict per
//! size and round (built anew each round in a new runtime, with its own row: build time
//! and memory) serves all their rows, the move last, since it uses the dict up; each
//! frozen repetition builds its own in a new runtime. Then the clock starts: freeze /
//! encode / send; the hand-over ends when the last receiver holds its object (the copy
//! decoded and its bytes item dropped). With every thread at a barrier the memory is read;
//! each receiver makes its `M` key objects (not timed), and from a common start all
//! receivers make their lookups at once: lookups per second is `K * M` over the time from
//! the first receiver's start to the last one's end. The values looked up are summed and
//! checked against the expected sum.
//!
//! **Repetitions.** A repetition at N = 1,000,000 takes seconds (the build alone about
//! one), so a [`Size`] may be measured in the first rounds only ([`Size::max_reps`]: by
//! default at most 5 at N = 100,000 and 3, with K = 1 and 4 only, at N = 1,000,000); a
//! warm-up runs the same code at N, M <= 1,000.
//!
//! **Memory** is glibc's count of heap bytes in use ([`heap_in_use`]: `mallinfo2`, the
//! arenas' allocated bytes plus the mmapped blocks), read just before the hand-over and
//! when every receiver holds its object: what the mode added beside the sender's dict (the
//! receivers' copies, the frozen dict's components, the proxies); the dict's own size is
//! read across its build. It counts what the objects hold, to the byte, and not the pages
//! the allocator keeps or the temporaries freed meanwhile (a freeze's or a move's walk).
//! The process's resident set size was tried first: it needs the freed memory given back
//! (`malloc_trim`) before each reading, or memory freed by an earlier repetition is reused
//! unseen; and then every repetition faults its pages in again, which made the deep copy's
//! hand-over to 4 receivers three times slower. Off glibc, the resident set size is read
//! instead (and [`MEMORY_MEASURE`] says so).
//!
//! **Counts** (exact, from [`Runtime::counters`], the same in every repetition): switches
//! and objects allocated during the hand-over, bytes copied by the channel (the encoding's
//! size per receiver), objects frozen or moved; switches and forwarded calls per lookup.

use std::fmt::Write as _;
use std::sync::Barrier;
use std::time::Instant;

use xinterp::{Channel, Counters, InterpId, Obj, Outgoing, OwnedObj, Runtime, Token};

use crate::measure::Harness;
use crate::plot::{Axis, Chart, Point, Series, Ticks};
use crate::results::{params, Experiment, Metric, Row};
use crate::stats::Sample;

/// How the dict is handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Encoded into bytes, copied to each receiver, decoded into a dict of its own.
    Copy,
    /// A proxy per receiver; every lookup is forwarded into the sender.
    Proxy,
    /// Frozen, then the very dict, read in place by every receiver.
    Frozen,
    /// Moved: the one receiver owns it.
    Moved,
}

impl Mode {
    /// Every mode, in the order the rows are made.
    pub const ALL: [Mode; 4] = [Mode::Copy, Mode::Proxy, Mode::Frozen, Mode::Moved];

    /// The mode's name in labels and the `mode` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Copy => "deep copy",
            Mode::Proxy => "proxy",
            Mode::Frozen => "frozen",
            Mode::Moved => "moved",
        }
    }

    /// Whether the mode hands one object to `k` receivers (moving goes to one).
    pub fn takes(self, k: usize) -> bool {
        self != Mode::Moved || k == 1
    }
}

/// One size of dict to measure.
#[derive(Clone, Debug)]
pub struct Size {
    /// Entries of the dict (`N`), before scaling.
    pub entries: usize,
    /// Receiving interpreters (`K`), one row per count and mode (moving takes `K` = 1 only).
    pub receivers: Vec<usize>,
    /// At most this many repetitions (measured in the first rounds only; see
    /// [`Harness::repeat_at_most`]), for a size whose repetition takes long; `None`: as
    /// many as the harness makes.
    pub max_reps: Option<usize>,
}

/// The experiment's parameters.
#[derive(Clone, Debug)]
pub struct Params {
    /// The sizes, smallest first.
    pub sizes: Vec<Size>,
    /// Lookups each receiver makes (`M`), before scaling.
    pub lookups: usize,
}

impl Default for Params {
    /// N = 1,000 and 100,000 with K = 1, 2 and 4 (at most 5 repetitions at 100,000);
    /// N = 1,000,000 with K = 1 and 4 and at most 3 repetitions (one takes seconds: the
    /// default suite stays near a minute longer); 10,000 lookups per receiver.
    fn default() -> Self {
        Params {
            sizes: vec![
                Size {
                    entries: 1_000,
                    receivers: vec![1, 2, 4],
                    max_reps: None,
                },
                Size {
                    entries: 100_000,
                    receivers: vec![1, 2, 4],
                    max_reps: Some(5),
                },
                Size {
                    entries: 1_000_000,
                    receivers: vec![1, 4],
                    max_reps: Some(3),
                },
            ],
            lookups: 10_000,
        }
    }
}

/// Builds the length-prefixed encoding the deep-copy mode sends: the entry count (`u64`,
/// little-endian), then per entry the key's length in bytes (`u32`), its UTF-8 bytes and
/// the value (`i64`).
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
    count: u64,
}

impl Encoder {
    /// An encoder with room for about `entries` entries of short keys.
    pub fn with_capacity(entries: usize) -> Self {
        let mut buf = Vec::with_capacity(8 + entries * 20);
        buf.extend_from_slice(&0u64.to_le_bytes());
        Encoder { buf, count: 0 }
    }

    /// Appends one entry.
    pub fn push(&mut self, key: &str, value: i64) {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(&0u64.to_le_bytes());
        }
        let len = u32::try_from(key.len()).expect("a key shorter than 4 GiB");
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(&value.to_le_bytes());
        self.count += 1;
    }

    /// The encoding.
    pub fn finish(mut self) -> Vec<u8> {
        if self.buf.is_empty() {
            self.buf.extend_from_slice(&0u64.to_le_bytes());
        }
        self.buf[..8].copy_from_slice(&self.count.to_le_bytes());
        self.buf
    }
}

/// Reads an encoding made by [`Encoder`], calling `each(key, value)` per entry in order;
/// returns the number of entries. Fails, naming the offset, on a truncated encoding, a key
/// that is not UTF-8, or bytes after the last entry (`each` has then seen the entries
/// before the fault).
pub fn decode(bytes: &[u8], mut each: impl FnMut(&str, i64)) -> Result<u64, String> {
    fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], String> {
        let end = at
            .checked_add(n)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| format!("truncated encoding: {n} bytes wanted at offset {at}"))?;
        let part = &bytes[*at..end];
        *at = end;
        Ok(part)
    }
    let mut at = 0;
    let count = u64::from_le_bytes(take(bytes, &mut at, 8)?.try_into().expect("8 bytes"));
    for _ in 0..count {
        let len = u32::from_le_bytes(take(bytes, &mut at, 4)?.try_into().expect("4 bytes"));
        let key_at = at;
        let key = std::str::from_utf8(take(bytes, &mut at, len as usize)?)
            .map_err(|e| format!("the key at offset {key_at} is not UTF-8: {e}"))?;
        let value = i64::from_le_bytes(take(bytes, &mut at, 8)?.try_into().expect("8 bytes"));
        each(key, value);
    }
    if at != bytes.len() {
        return Err(format!(
            "{} bytes after the last of {count} entries",
            bytes.len() - at
        ));
    }
    Ok(count)
}

/// Encodes a dict of str keys and int values (the deep copy's "pickle"): its keys, then
/// each key's value, read through the library's public API.
pub fn encode_dict(dict: &Obj<'_>) -> xinterp::Result<Vec<u8>> {
    let keys = dict.iterate()?;
    let mut enc = Encoder::with_capacity(keys.len());
    for key in &keys {
        let value = dict.getitem(key)?.as_int()?;
        enc.push(&key.to_rust_string()?, value);
    }
    Ok(enc.finish())
}

/// Builds a new dict in `tok`'s interpreter from an encoding made by [`encode_dict`] (the
/// deep copy's "unpickle").
pub fn decode_dict<'t>(tok: &'t Token<'_>, bytes: &[u8]) -> Result<Obj<'t>, String> {
    let dict = tok.dict();
    let mut failed = None;
    decode(bytes, |key, value| {
        if failed.is_none() {
            if let Err(e) = dict.setitem(&tok.str(key), &tok.int(value)) {
                failed = Some(e.to_string());
            }
        }
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(dict),
    }
}

/// The value stored under key `k{i}`.
fn value_of(i: usize) -> i64 {
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
fn lookups_of(j: usize, m: usize, n: usize) -> impl Iterator<Item = usize> {
    (j * m..(j + 1) * m).map(move |i| lookup_index(i, n))
}

/// The dict of `n` entries, in `tok`'s interpreter.
fn build<'t>(tok: &'t Token<'_>, n: usize) -> Obj<'t> {
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

/// The heap bytes in use (allocated and not freed), by glibc's count (`mallinfo2`: the
/// arenas' allocated bytes plus the mmapped blocks); `None` off glibc.
pub fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[repr(C)]
        struct Mallinfo2 {
            arena: usize,
            ordblks: usize,
            smblks: usize,
            hblks: usize,
            hblkhd: usize,
            usmblks: usize,
            fsmblks: usize,
            uordblks: usize,
            fordblks: usize,
            keepcost: usize,
        }
        extern "C" {
            fn mallinfo2() -> Mallinfo2;
        }
        // SAFETY: glibc's mallinfo2 (2.33 and later) takes nothing and returns a struct of
        // ten size_t counts by value, declared here field for field.
        let info = unsafe { mallinfo2() };
        Some((info.uordblks + info.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// The process's resident set size in bytes (`VmRSS` of `/proc/self/status`).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What [`memory_in_use`] measures.
pub const MEMORY_MEASURE: &str = if cfg!(all(target_os = "linux", target_env = "gnu")) {
    "heap bytes in use, by glibc's count (mallinfo2: uordblks + hblkhd)"
} else {
    "resident set size (VmRSS)"
};

/// Memory in use now, in bytes: [`heap_in_use`] where glibc gives it, else the resident
/// set size; 0 where neither can be read.
pub fn memory_in_use() -> u64 {
    heap_in_use().or_else(rss_bytes).unwrap_or(0)
}

/// `after - before` bytes, in MiB.
fn mib(before: u64, after: u64) -> f64 {
    (after as f64 - before as f64) / (1u64 << 20) as f64
}

/// A runtime with a sender holding the dict, and receivers.
struct Setup {
    rt: Runtime,
    sender: InterpId,
    receivers: Vec<InterpId>,
    /// The sender's dict (taken by a move).
    dict: Option<OwnedObj>,
    n: usize,
    build_ns: f64,
    /// The memory the build added, in MiB.
    dict_mib: f64,
}

impl Setup {
    /// A new runtime with `receivers` receivers and a sender holding a dict of `n` entries.
    fn new(n: usize, receivers: usize) -> Self {
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

/// What one repetition measured.
#[derive(Clone, Debug)]
struct Once {
    handover_ns: f64,
    /// Lookups per second, all receivers together, in millions.
    lookups_mps: f64,
    /// The memory the hand-over added, in MiB.
    added_mib: f64,
    /// Counter deltas over the hand-over, and over the lookups.
    handover: Counters,
    lookups: Counters,
}

/// When a receiver held its object, and when its lookups started and ended.
struct Receipt {
    held: Instant,
    start: Instant,
    end: Instant,
    sum: i64,
}

/// One receiver's repetition, on its own thread: wait for the item, make it an object
/// (decoding a copy), then the lookups; every step between barriers shared with the
/// sender's thread (ready, held, measured, go, done).
fn receive(
    rt: &Runtime,
    id: InterpId,
    ch: &Channel,
    mode: Mode,
    (j, n, m): (usize, usize, usize),
    barrier: &Barrier,
) -> Receipt {
    rt.enter(id, |tok| {
        barrier.wait(); // ready
        let item = ch.recv_wait(tok, None).expect("the hand-over's item");
        let tok: &Token<'_> = tok;
        let got = item.into_obj(tok).expect("receiving the item");
        let dict = if mode == Mode::Copy {
            let buffer = got.get_buffer().expect("a bytes item");
            let bytes = buffer.frozen().expect("bytes are immutable");
            let dict = decode_dict(tok, bytes).expect("decoding the copy");
            drop(buffer);
            drop(got);
            dict
        } else {
            got
        };
        let held = Instant::now();
        barrier.wait(); // held: the sender's thread reads the memory
        barrier.wait(); // measured
        let keys: Vec<Obj<'_>> = lookups_of(j, m, n)
            .map(|i| tok.str(&format!("k{i}")))
            .collect();
        barrier.wait(); // go
        let start = Instant::now();
        let mut sum = 0;
        for key in &keys {
            sum += dict
                .getitem(key)
                .expect("every key is there")
                .as_int()
                .expect("an int value");
        }
        let end = Instant::now();
        barrier.wait(); // done
        Receipt {
            held,
            start,
            end,
            sum,
        }
    })
    .expect("entering a receiver")
}

/// One repetition: the setup's dict handed over to `k` of its receivers, each on a thread
/// of its own, then looked up `m` times by each.
fn once(mode: Mode, setup: &mut Setup, k: usize, m: usize) -> Once {
    let n = setup.n;
    let channels: Vec<Channel> = (0..k).map(|_| setup.rt.create_channel()).collect();
    let barrier = Barrier::new(k + 1);
    let rt = &setup.rt;
    let (sender, owned) = (setup.sender, &mut setup.dict);
    let once = std::thread::scope(|s| {
        let threads: Vec<_> = setup.receivers[..k]
            .iter()
            .zip(&channels)
            .enumerate()
            .map(|(j, (&id, ch))| {
                let barrier = &barrier;
                s.spawn(move || receive(rt, id, ch, mode, (j, n, m), barrier))
            })
            .collect();
        barrier.wait(); // ready: every receiver waits for its item
        let memory_before = memory_in_use();
        let (started, before) = rt
            .enter(sender, |tok| {
                let tok: &Token<'_> = tok;
                let dict = if mode == Mode::Moved {
                    // The only handle left: the move refuses a graph referred to from
                    // outside.
                    let handle = owned.take().expect("a dict not yet moved");
                    let dict = handle.bind(tok).expect("owned by the sender");
                    drop(handle);
                    dict
                } else {
                    owned
                        .as_ref()
                        .expect("the sender's dict")
                        .bind(tok)
                        .expect("owned by the sender")
                };
                let before = rt.counters();
                let started = Instant::now();
                match mode {
                    Mode::Copy => {
                        let encoded = encode_dict(&dict).expect("a dict of str and int");
                        let bytes = tok.bytes(&encoded);
                        drop(encoded);
                        for ch in &channels {
                            ch.send(tok, Outgoing::bytes(&bytes).expect("bytes"))
                                .expect("sending");
                        }
                    }
                    Mode::Proxy => {
                        for ch in &channels {
                            ch.send(tok, Outgoing::object(&dict)).expect("sending");
                        }
                    }
                    Mode::Frozen => {
                        dict.freeze().expect("a dict of str and int freezes");
                        for ch in &channels {
                            ch.send(tok, Outgoing::object(&dict)).expect("sending");
                        }
                    }
                    Mode::Moved => {
                        let item = Outgoing::moved(dict).expect("nothing else refers in");
                        channels[0].send(tok, item).expect("sending");
                    }
                }
                (started, before)
            })
            .expect("entering the sender");
        barrier.wait(); // held: every receiver holds its object
        let memory_after = memory_in_use();
        let held = rt.counters();
        barrier.wait(); // measured
        barrier.wait(); // go
        barrier.wait(); // done
        let looked_up = rt.counters();
        let receipts: Vec<Receipt> = threads
            .into_iter()
            .map(|t| t.join().expect("a receiver"))
            .collect();
        for (j, r) in receipts.iter().enumerate() {
            let expected: i64 = lookups_of(j, m, n).map(value_of).sum();
            assert_eq!(r.sum, expected, "{} lookups read wrong values", mode.name());
        }
        let last_held = receipts.iter().map(|r| r.held).max().expect("a receiver");
        let first_start = receipts.iter().map(|r| r.start).min().expect("a receiver");
        let last_end = receipts.iter().map(|r| r.end).max().expect("a receiver");
        let lookup_s = last_end.duration_since(first_start).as_secs_f64();
        Once {
            handover_ns: last_held.duration_since(started).as_nanos() as f64,
            lookups_mps: (k * m) as f64 / lookup_s.max(1e-9) / 1e6,
            added_mib: mib(memory_before, memory_after),
            handover: held.since(&before),
            lookups: looked_up.since(&held),
        }
    });
    for ch in channels {
        ch.destroy().expect("destroying a channel");
    }
    once
}

/// `1,000,000`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let head = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        r => r,
    };
    let mut out = digits[..head].to_string();
    for group in digits.as_bytes()[head..].chunks(3) {
        out.push(',');
        out.push_str(std::str::from_utf8(group).expect("ASCII digits"));
    }
    out
}

/// Entries and lookups of a warm-up: the same code on a small dict (at full size a warm-up
/// would cost a repetition's time and warm nothing more).
const WARM_UP: usize = 1_000;

/// The indices of one configuration's two rows.
#[derive(Clone, Copy, Debug)]
struct Rows {
    mode: Mode,
    n: usize,
    k: usize,
    handover: usize,
    lookups: usize,
}

/// Measures one configuration with the `shared` setup (rebuilt every round) or, without
/// one, a setup of its own per repetition; pushes its hand-over row and its lookups row.
fn measure(
    e: &mut Experiment,
    h: &Harness,
    mode: Mode,
    (n, k, m, reps): (usize, usize, usize, usize),
    mut shared: Option<&mut Option<Setup>>,
) -> Rows {
    let what = format!("{}, N={}, K={k}", mode.name(), grouped(n));
    let runs = h.repeat_at_most(&what, reps, |rep| match (rep, shared.as_deref_mut()) {
        (None, _) => once(mode, &mut Setup::new(n.min(WARM_UP), k), k, m.min(WARM_UP)),
        (Some(_), Some(setup)) => once(
            mode,
            setup
                .as_mut()
                .expect("the shared dict, built in this round"),
            k,
            m,
        ),
        (Some(_), None) => once(mode, &mut Setup::new(n, k), k, m),
    });
    let sample = |f: &dyn Fn(&Once) -> f64| Sample::from_reps(runs.iter().map(f).collect());
    let last = runs.last().expect("at least one repetition");
    let (ho, lk) = (&last.handover, &last.lookups);
    let per_lookup = |v: u64| (v as f64 / (k * m) as f64 * 1000.0).round() / 1000.0;
    let base = |row: Row| {
        row.param("mode", mode.name())
            .param("entries", n as u64)
            .param("receivers", k as u64)
            .param("lookups_per_receiver", m as u64)
            .param("repetitions", runs.len() as u64)
    };
    let handover = e.push(
        base(Row::with_metrics(
            &format!("{what}: hand-over"),
            vec![
                Metric::new("hand-over time", "ns", sample(&|o| o.handover_ns)),
                Metric::new(
                    "memory the hand-over added",
                    "MiB",
                    sample(&|o| o.added_mib),
                ),
            ],
        ))
        .param("phase", "hand-over")
        .count("switches", ho.switches)
        .count("bytes_copied", ho.bytes_copied)
        .count("objects_allocated", ho.objects_allocated)
        .count("objects_frozen", ho.objects_frozen)
        .count("objects_moved", ho.objects_moved)
        .count("proxies_created", ho.proxies_created),
    );
    let lookups = e.push(
        base(Row::with_metrics(
            &format!("{what}: lookups"),
            vec![Metric::new(
                "lookups per second, all receivers",
                "M/s",
                sample(&|o| o.lookups_mps),
            )],
        ))
        .param("phase", "lookups")
        .count("switches_per_lookup", per_lookup(lk.switches))
        .count("forwarded_calls_per_lookup", per_lookup(lk.forwarded_calls))
        .count(
            "objects_allocated_per_lookup",
            per_lookup(lk.objects_allocated),
        ),
    );
    Rows {
        mode,
        n,
        k,
        handover,
        lookups,
    }
}

/// One size of dict: its entries (scaled), receivers and repetitions.
struct Tier {
    n: usize,
    receivers: Vec<usize>,
    reps: usize,
}

/// Runs the experiment.
pub fn run(h: &Harness, p: &Params) -> Experiment {
    let m = h.scaled(p.lookups as u64, 10) as usize;
    let tiers: Vec<Tier> = p
        .sizes
        .iter()
        .map(|size| Tier {
            n: h.scaled(size.entries as u64, 10) as usize,
            receivers: size.receivers.clone(),
            reps: size.max_reps.map_or(h.reps, |r| r.clamp(1, h.reps)),
        })
        .collect();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let list = |v: &[usize]| -> serde_json::Value { v.iter().map(|&x| x as u64).collect() };
    let mut e = Experiment::new(
        "sharing",
        "Proxies or deep immutability: what does each cost, and for which access patterns \
         does each win?",
        params([
            (
                "entries",
                list(&tiers.iter().map(|t| t.n).collect::<Vec<_>>()),
            ),
            (
                "receivers",
                tiers
                    .iter()
                    .map(|t| list(&t.receivers))
                    .collect::<Vec<_>>()
                    .into(),
            ),
            (
                "repetitions",
                list(&tiers.iter().map(|t| t.reps).collect::<Vec<_>>()),
            ),
            ("lookups_per_receiver", (m as u64).into()),
            ("dict", "str keys k0 .. k{N-1}, int values i % 1000".into()),
            (
                "lookup_keys",
                "receiver j: k{i * 7919 mod N} for i from j*M to (j+1)*M - 1, made before the \
                 clock starts"
                    .into(),
            ),
            (
                "copy_encoding",
                "u64 count, then per entry u32 key length, UTF-8 key, i64 value".into(),
            ),
            ("memory", MEMORY_MEASURE.into()),
            ("threads", "one per receiver, plus the sender's".into()),
            ("warm_up", format!("the same at N, M <= {WARM_UP}").into()),
            ("cpus", (cpus as u64).into()),
        ]),
    );
    let mut all = Vec::new();
    let mut builds = Vec::new();
    for t in &tiers {
        let kmax = t.receivers.iter().copied().max().unwrap_or(1);
        // The copies and the proxies leave the sender's dict as it was: one dict, built
        // anew every round, serves all their rows, and then the move, which uses it up.
        // Freezing uses it up too: each frozen repetition builds its own.
        let mut shared: Option<Setup> = None;
        let built = h.repeat_at_most(&format!("dict, N={}: build", grouped(t.n)), t.reps, |rep| {
            let setup = Setup::new(if rep.is_some() { t.n } else { t.n.min(WARM_UP) }, kmax);
            let out = (setup.build_ns, setup.dict_mib);
            if rep.is_some() {
                shared = Some(setup);
            }
            out
        });
        builds.push((
            t.n,
            e.push(
                Row::with_metrics(
                    &format!("dict, N={}: build (no hand-over)", grouped(t.n)),
                    vec![
                        Metric::new(
                            "build time",
                            "ns",
                            Sample::from_reps(built.iter().map(|b| b.0).collect()),
                        ),
                        Metric::new(
                            "memory of the dict",
                            "MiB",
                            Sample::from_reps(built.iter().map(|b| b.1).collect()),
                        ),
                    ],
                )
                .param("phase", "build")
                .param("entries", t.n as u64)
                .param("repetitions", built.len() as u64),
            ),
        ));
        for mode in [Mode::Copy, Mode::Proxy, Mode::Moved] {
            for &k in t.receivers.iter().filter(|&&k| mode.takes(k)) {
                all.push(measure(
                    &mut e,
                    h,
                    mode,
                    (t.n, k, m, t.reps),
                    Some(&mut shared),
                ));
            }
        }
        drop(shared.take());
        for &k in &t.receivers {
            all.push(measure(&mut e, h, Mode::Frozen, (t.n, k, m, t.reps), None));
        }
    }
    let find = |mode: Mode, n: usize, k: usize| {
        all.iter()
            .copied()
            .find(|r| r.mode == mode && r.n == n && r.k == k)
    };
    for t in &tiers {
        let n = t.n;
        for &k in &t.receivers {
            let (Some(copy), Some(proxy), Some(frozen)) = (
                find(Mode::Copy, n, k),
                find(Mode::Proxy, n, k),
                find(Mode::Frozen, n, k),
            ) else {
                continue;
            };
            let at = format!("N={}, K={k}", grouped(n));
            e.ratio(
                &format!("frozen / proxy, lookups per second, {at}"),
                frozen.lookups,
                proxy.lookups,
            );
            e.ratio(
                &format!("frozen / copy, lookups per second, {at}"),
                frozen.lookups,
                copy.lookups,
            );
            e.ratio(
                &format!("copy / frozen, hand-over time, {at}"),
                copy.handover,
                frozen.handover,
            );
            if k == 1 {
                e.ratio(
                    &format!("frozen / proxy, hand-over time, {at}"),
                    frozen.handover,
                    proxy.handover,
                );
                if let Some(moved) = find(Mode::Moved, n, k) {
                    e.ratio(
                        &format!("moved / frozen, hand-over time, {at}"),
                        moved.handover,
                        frozen.handover,
                    );
                }
            }
        }
        let (k1, kmax) = (
            t.receivers.iter().copied().min().unwrap_or(1),
            t.receivers.iter().copied().max().unwrap_or(1),
        );
        if kmax > k1 {
            for mode in [Mode::Proxy, Mode::Frozen] {
                if let (Some(a), Some(b)) = (find(mode, n, kmax), find(mode, n, k1)) {
                    e.ratio(
                        &format!(
                            "{}, K={kmax} / K={k1}, lookups per second, N={}",
                            mode.name(),
                            grouped(n)
                        ),
                        a.lookups,
                        b.lookups,
                    );
                }
            }
        }
    }
    charts(&mut e, &all, &tiers);
    answer(&mut e, &all, &builds, &tiers, m);
    e.notes.push(format!(
        "Receivers run on threads of their own: {cpus} CPU(s) serve K receivers plus the \
         sender, so with K above {cpus} they share the CPUs (lookups per second counts all \
         receivers together). The hand-over includes waking the receiving threads. Memory \
         is {MEMORY_MEASURE}, from just before the hand-over to every receiver holding its \
         object (the dict's own: across its build)."
    ));
    for t in tiers.iter().filter(|t| t.reps < h.reps) {
        let mut note = format!(
            "N={} is measured in the first {} rounds only (its repetitions take long)",
            grouped(t.n),
            t.reps
        );
        if t.reps < 6 {
            note.push_str(&format!(
                ": its intervals are the range of {} repetitions, whose coverage is {:.1}%, \
                 not 95%",
                t.reps,
                100.0 * (1.0 - 2.0 * 0.5f64.powi(t.reps as i32)),
            ));
        }
        note.push('.');
        e.notes.push(note);
    }
    e
}

fn charts(e: &mut Experiment, all: &[Rows], tiers: &[Tier]) {
    // Receiver counts measured at every size.
    let mut ks: Vec<usize> = tiers.first().map_or(Vec::new(), |t| t.receivers.clone());
    ks.retain(|k| tiers.iter().all(|t| t.receivers.contains(k)));
    let series = |e: &Experiment, pick: &dyn Fn(&Rows) -> usize| -> Vec<Series> {
        let mut out = Vec::new();
        for &k in &ks {
            for mode in Mode::ALL.into_iter().filter(|md| md.takes(k)) {
                let points = all
                    .iter()
                    .filter(|r| r.mode == mode && r.k == k)
                    .map(|r| Point::of(r.n as f64, &e.rows[pick(r)].headline().sample))
                    .collect();
                out.push(Series {
                    name: format!("{}, K={k}", mode.name()),
                    points,
                });
            }
        }
        out
    };
    let handover = series(e, &|r| r.handover);
    let lookups = series(e, &|r| r.lookups);
    e.charts.push(Chart::lines(
        "sharing",
        "sharing: time to hand a dict of N entries to K receivers",
        Axis::log("entries N", Ticks::Plain),
        Axis::log("hand-over time", Ticks::Nanos),
        handover,
    ));
    e.charts.push(Chart::lines(
        "sharing-lookups",
        "sharing: lookups per second in the receivers, all together",
        Axis::log("entries N", Ticks::Plain),
        Axis::log("lookups per second (millions)", Ticks::Plain),
        lookups,
    ));
}

/// Which of modes `a` and `b` costs less in all (the hand-over plus `k` receivers' lookups,
/// all receivers at once), as the number of lookups per receiver grows: from the medians
/// of hand-over time (ns) and lookups per second (millions, all receivers together).
/// `same_rate`: the run could not tell the two lookup rates apart (their ratio's interval
/// holds 1), so only the hand-over decides.
fn crossover(
    (a, ha, ra): (&str, f64, f64),
    (b, hb, rb): (&str, f64, f64),
    k: usize,
    same_rate: bool,
) -> String {
    let d_hand = ha - hb;
    // ns more per lookup per receiver for `a` than for `b` (all receivers look up at once).
    let d_lookup = if same_rate {
        0.0
    } else {
        k as f64 * 1000.0 * (1.0 / ra - 1.0 / rb)
    };
    let about = |m: f64| {
        let digits = 10f64.powf((m.log10().floor() - 1.0).max(0.0));
        grouped(((m / digits).round() * digits) as usize)
    };
    if d_hand <= 0.0 && d_lookup <= 0.0 {
        format!("{a} costs less than {b} at any number of lookups")
    } else if d_hand >= 0.0 && d_lookup >= 0.0 {
        format!("{b} costs less than {a} at any number of lookups")
    } else if d_hand > 0.0 {
        format!(
            "{b} costs less than {a} up to about {} lookups per receiver, {a} beyond",
            about(d_hand / -d_lookup)
        )
    } else {
        format!(
            "{a} costs less than {b} up to about {} lookups per receiver, {b} beyond",
            about(-d_hand / d_lookup)
        )
    }
}

/// A size given in MiB, to three significant digits, in KiB below 1 MiB.
fn size_text(mib: f64) -> String {
    let three = |v: f64| {
        let decimals = (2 - v.abs().max(1e-9).log10().floor() as i64).clamp(0, 3) as usize;
        format!("{v:.decimals$}")
    };
    if mib.abs() >= 1.0 {
        format!("{} MiB", three(mib))
    } else {
        format!("{} KiB", three(mib * 1024.0))
    }
}

/// Question 7, from this run's figures.
fn answer(e: &mut Experiment, all: &[Rows], builds: &[(usize, usize)], tiers: &[Tier], m: usize) {
    let (Some(small), Some(large)) = (tiers.first(), tiers.last()) else {
        return;
    };
    let (l, s) = (large.n, small.n);
    let k4 = large.receivers.iter().copied().max().unwrap_or(1);
    let get = |mode: Mode, n: usize, k: usize| {
        all.iter()
            .copied()
            .find(|r| r.mode == mode && r.n == n && r.k == k)
    };
    let rows = |n: usize, k: usize| {
        Some((
            get(Mode::Copy, n, k)?,
            get(Mode::Proxy, n, k)?,
            get(Mode::Frozen, n, k)?,
        ))
    };
    let (Some((c1, p1, f1)), Some((c4, p4, f4)), Some((cs, ps, fs))) =
        (rows(l, 1), rows(l, k4), rows(s, 1))
    else {
        return;
    };
    let (mv, mvs) = (get(Mode::Moved, l, 1), get(Mode::Moved, s, 1));
    let text = {
        let e = &*e;
        let ho = |r: Rows| e.rows[r.handover].headline().show();
        let lk = |r: Rows| e.rows[r.lookups].headline().show();
        let mem = |r: Rows| {
            e.rows[r.handover]
                .metric("memory the hand-over added")
                .map_or("?".into(), |m| size_text(m.sample.median))
        };
        let med_ho = |r: Rows| e.rows[r.handover].headline().sample.median;
        let med_lk = |r: Rows| e.rows[r.lookups].headline().sample.median;
        let count = |i: usize, name: &str| {
            e.rows[i]
                .counters
                .get(name)
                .map_or("?".into(), |v| match v.as_u64() {
                    Some(n) => grouped(n as usize),
                    None => v.to_string(),
                })
        };
        let ratio_of = |label: String| e.find_ratio(&label);
        let ratio = |label: String| ratio_of(label).map_or("?".into(), |r| r.show());
        let same = |label: String| {
            ratio_of(label).is_some_and(|r| r.verdict == crate::results::Verdict::Inconclusive)
        };
        let at = |n: usize, k: usize| format!("N={}, K={k}", grouped(n));
        let versus = |a: (Mode, Rows), b: (Mode, Rows), n: usize, k: usize| {
            let label = match (a.0, b.0) {
                (Mode::Frozen, Mode::Proxy) => "frozen / proxy",
                _ => "frozen / copy",
            };
            crossover(
                (a.0.name(), med_ho(a.1), med_lk(a.1)),
                (b.0.name(), med_ho(b.1), med_lk(b.1)),
                k,
                same(format!("{label}, lookups per second, {}", at(n, k))),
            )
        };
        let dict_mem = builds
            .iter()
            .find(|b| b.0 == l)
            .and_then(|b| e.rows[b.1].metric("memory of the dict"))
            .map_or("?".into(), |m| size_text(m.sample.median));
        let moved_large = mv.map_or(String::new(), |mv| {
            format!(
                "; a move in {} (moved / frozen: {})",
                ho(mv),
                ratio(format!("moved / frozen, hand-over time, {}", at(l, 1)))
            )
        });
        let moved_lookups = mv.map_or(String::new(), |mv| {
            format!("; {} in the moved dict", lk(mv))
        });
        let mut fastest = vec![(Mode::Copy, cs), (Mode::Proxy, ps), (Mode::Frozen, fs)];
        fastest.extend(mvs.map(|r| (Mode::Moved, r)));
        fastest.sort_by(|a, b| med_ho(a.1).total_cmp(&med_ho(b.1)));
        let reps = tiers
            .iter()
            .map(|t| format!("{} at N={} (K in {:?})", t.reps, grouped(t.n), t.receivers))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "Measured by sharing (a dict of N str keys to small ints, built in one interpreter \
             and handed to K others, each receiver on a thread of its own making {m} lookups; \
             repetitions: {reps}; the hand-over runs from the start of freeze, encode or send \
             until the last receiver holds its object). A large read-mostly structure ({}): a \
             proxy is handed over in {}; the frozen dict in {}, a freeze pass over {} objects \
             (frozen / proxy: {}); the deep copy in {}, {} bytes copied (copy / frozen: \
             {}){moved_large}. Lookups per second: {} through the proxy, {} switch each; {} in \
             the frozen dict, read in place (frozen / proxy: {}); {} in the receiver's own copy \
             (frozen / copy: {}){moved_lookups}. Hand-over plus lookups: {}; {}. With K={k4}: \
             the deep copy takes {}, {} bytes copied (copy / frozen: {}), the frozen dict {}; \
             lookups per second, all receivers together: {} through the proxies, which all \
             enter the one sender (proxy K={k4} / K=1: {}), {} in the frozen dict (frozen \
             K={k4} / K=1: {}; frozen / proxy: {}); {}; {}. Memory: the dict itself takes {}; \
             the hand-over adds {} for one deep copy and {} for {k4}, {} for freezing (its \
             components), {} for a proxy{}. A one-shot small hand-off ({}): proxy {}, deep \
             copy {}, frozen {}{} (frozen / proxy: {}); fastest: {}; {} ({} against {} through \
             the proxy). The verdict turns on the lookups per hand-off, on K and on the size, \
             as these crossovers say; and on mutation: a frozen dict is read-only, a proxy \
             keeps it mutable in its sender, a move hands it mutable to one receiver, a copy \
             gives each its own.",
            at(l, 1),
            ho(p1),
            ho(f1),
            count(f1.handover, "objects_frozen"),
            ratio(format!("frozen / proxy, hand-over time, {}", at(l, 1))),
            ho(c1),
            count(c1.handover, "bytes_copied"),
            ratio(format!("copy / frozen, hand-over time, {}", at(l, 1))),
            lk(p1),
            e.rows[p1.lookups]
                .counters
                .get("switches_per_lookup")
                .and_then(|v| v.as_f64())
                .map_or("?".into(), |v| format!("{v}")),
            lk(f1),
            ratio(format!("frozen / proxy, lookups per second, {}", at(l, 1))),
            lk(c1),
            ratio(format!("frozen / copy, lookups per second, {}", at(l, 1))),
            versus((Mode::Frozen, f1), (Mode::Proxy, p1), l, 1),
            versus((Mode::Frozen, f1), (Mode::Copy, c1), l, 1),
            ho(c4),
            count(c4.handover, "bytes_copied"),
            ratio(format!("copy / frozen, hand-over time, {}", at(l, k4))),
            ho(f4),
            lk(p4),
            ratio(format!(
                "proxy, K={k4} / K=1, lookups per second, N={}",
                grouped(l)
            )),
            lk(f4),
            ratio(format!(
                "frozen, K={k4} / K=1, lookups per second, N={}",
                grouped(l)
            )),
            ratio(format!("frozen / proxy, lookups per second, {}", at(l, k4))),
            versus((Mode::Frozen, f4), (Mode::Proxy, p4), l, k4),
            versus((Mode::Frozen, f4), (Mode::Copy, c4), l, k4),
            dict_mem,
            mem(c1),
            mem(c4),
            mem(f1),
            mem(p1),
            mv.map_or(String::new(), |mv| format!(" and {} for a move", mem(mv))),
            at(s, 1),
            ho(ps),
            ho(cs),
            ho(fs),
            mvs.map_or(String::new(), |mv| format!(", moved {}", ho(mv))),
            ratio(format!("frozen / proxy, hand-over time, {}", at(s, 1))),
            fastest[0].0.name(),
            versus((Mode::Frozen, fs), (Mode::Proxy, ps), s, 1),
            lk(fs),
            lk(ps),
        )
    };
    e.answer(7, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(bytes: &[u8]) -> Result<Vec<(String, i64)>, String> {
        let mut out = Vec::new();
        let count = decode(bytes, |k, v| out.push((k.to_string(), v)))?;
        assert_eq!(count as usize, out.len());
        Ok(out)
    }

    #[test]
    fn the_deep_copy_encoding_round_trips() {
        let entries: Vec<(String, i64)> = vec![
            ("k0".into(), 0),
            (String::new(), -1),
            ("clé 🔑".into(), i64::MAX),
            ("k".repeat(300), i64::MIN),
        ];
        let mut enc = Encoder::with_capacity(entries.len());
        for (k, v) in &entries {
            enc.push(k, *v);
        }
        let bytes = enc.finish();
        assert_eq!(
            bytes.len(),
            8 + entries.iter().map(|(k, _)| 12 + k.len()).sum::<usize>()
        );
        assert_eq!(decoded(&bytes).unwrap(), entries);
        // Nothing encoded: the count alone.
        assert_eq!(Encoder::default().finish(), 0u64.to_le_bytes());
        assert_eq!(decoded(&Encoder::default().finish()).unwrap(), []);
    }

    #[test]
    fn a_bad_encoding_is_refused_with_its_offset() {
        let mut enc = Encoder::default();
        enc.push("key", 7);
        let bytes = enc.finish();
        for cut in 0..bytes.len() {
            let err = decoded(&bytes[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "{cut}: {err}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decoded(&long).unwrap_err().contains("1 bytes after"));
        let mut bad = bytes.clone();
        bad[12] = 0xff; // the key's first byte
        assert!(decoded(&bad).unwrap_err().contains("offset 12"));
        let mut huge = bytes;
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decoded(&huge).unwrap_err().contains("truncated"));
    }

    #[test]
    fn a_dict_survives_encoding_and_decoding_into_another_interpreter() {
        let rt = Runtime::new();
        let other = rt.create().unwrap();
        let bytes = rt
            .enter(rt.main(), |tok| {
                let d = build(tok, 500);
                assert_eq!(d.len().unwrap(), 500);
                encode_dict(&d).unwrap()
            })
            .unwrap();
        rt.enter(other, |tok| {
            let d = decode_dict(tok, &bytes).unwrap();
            assert_eq!(d.len().unwrap(), 500);
            for i in [0, 1, 499] {
                let v = d.getitem(&tok.str(&format!("k{i}"))).unwrap();
                assert_eq!(v.as_int().unwrap(), value_of(i));
            }
            // Encoding the copy again gives the same bytes (insertion order is kept).
            assert_eq!(encode_dict(&d).unwrap(), bytes);
        })
        .unwrap();
    }

    #[test]
    fn every_mode_hands_the_dict_over_and_reads_it() {
        for mode in Mode::ALL {
            let k = if mode == Mode::Moved { 1 } else { 2 };
            let mut setup = Setup::new(300, k);
            let once = once(mode, &mut setup, k, 50);
            let (ho, lk) = (once.handover, once.lookups);
            match mode {
                Mode::Copy => assert_eq!(ho.bytes_copied, 2 * encoded_len(300)),
                Mode::Proxy => assert_eq!((ho.proxies_created, lk.switches), (2, 2 * 50)),
                Mode::Frozen => assert_eq!(ho.objects_frozen, 2 * 300 + 1),
                Mode::Moved => assert_eq!(ho.objects_moved, 2 * 300 + 1),
            }
            if mode != Mode::Proxy {
                assert_eq!(lk.switches, 0, "{mode:?}");
            }
            assert!(once.handover_ns > 0.0 && once.lookups_mps > 0.0);
        }
    }

    fn encoded_len(n: usize) -> u64 {
        (8 + (0..n).map(|i| 12 + format!("k{i}").len()).sum::<usize>()) as u64
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (123_456, "123,456"),
        ];
        for (n, text) in cases {
            assert_eq!(grouped(n), text);
        }
        assert_eq!(grouped(1_000_000), "1,000,000");
    }

    #[test]
    fn crossovers_name_the_cheaper_mode_and_where_it_flips() {
        // a: 1 ms more to hand over, 1 µs less per lookup (1 vs 0.5 M/s): from 1,000 on.
        let a = ("a", 2e6, 1.0);
        let b = ("b", 1e6, 0.5);
        assert_eq!(
            crossover(a, b, 1, false),
            "b costs less than a up to about 1,000 lookups per receiver, a beyond"
        );
        assert_eq!(
            crossover(b, a, 1, false),
            "b costs less than a up to about 1,000 lookups per receiver, a beyond"
        );
        assert_eq!(
            crossover(a, b, 1, true),
            "b costs less than a at any number of lookups"
        );
        assert_eq!(
            crossover(("a", 1e6, 1.0), b, 4, false),
            "a costs less than b at any number of lookups"
        );
    }
}
