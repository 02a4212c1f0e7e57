//! The four hand-over modes ([`Mode`]) and one repetition of each ([`once`]): the sender
//! hands its dict over to `k` receivers, each on a thread of its own, which then make their
//! lookups; the times, the memory added and the counters are read.

use std::sync::Barrier;
use std::time::Instant;

use xinterp::{Channel, Counters, InterpId, Obj, Outgoing, Runtime, Token};

use super::dict::{lookups_of, value_of, Setup};
use super::encoding::{decode_dict, encode_dict};
use super::memory::{memory_in_use, mib};

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

/// What one repetition measured.
#[derive(Clone, Debug)]
pub(super) struct Once {
    pub(super) handover_ns: f64,
    /// Lookups per second, all receivers together, in millions.
    pub(super) lookups_mps: f64,
    /// The memory the hand-over added, in MiB.
    pub(super) added_mib: f64,
    /// Counter deltas over the hand-over, and over the lookups.
    pub(super) handover: Counters,
    pub(super) lookups: Counters,
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
pub(super) fn once(mode: Mode, setup: &mut Setup, k: usize, m: usize) -> Once {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
