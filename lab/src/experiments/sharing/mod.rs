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
//!
//! The code: [`run`] here (the parameters, the build rows, the ratios and the notes);
//! `rows` measures one configuration and pushes its two rows, `handover` makes one
//! repetition of a mode, `dict` builds the dict and its lookups, `encoding` is the deep
//! copy's, `memory` reads the memory in use, `charts` and `answer` the charts and the
//! seventh question's answer.
//!
//! [`Obj::freeze`]: xinterp::Obj::freeze
//! [`Outgoing::bytes`]: xinterp::Outgoing::bytes
//! [`Outgoing::moved`]: xinterp::Outgoing::moved
//! [`Outgoing::object`]: xinterp::Outgoing::object
//! [`Runtime::counters`]: xinterp::Runtime::counters

mod answer;
mod charts;
mod dict;
mod encoding;
mod handover;
mod memory;
mod rows;

pub use encoding::{decode, decode_dict, encode_dict, Encoder};
pub use handover::Mode;
pub use memory::{heap_in_use, memory_in_use, MEMORY_MEASURE};

use answer::answer;
use charts::charts;
use dict::Setup;
use rows::measure;

use crate::measure::Harness;
use crate::results::{params, Experiment, Metric, Row};
use crate::stats::Sample;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
