//! Writing your own experiment against the library API: how long does it take to hand a
//! 64-byte bytes item from one interpreter to another and back, as a round trip of two
//! channels, against the same ping-pong between two OS threads over crossbeam-channel?
//!
//! Run it with `cargo run --release -p xinterp-lab --example own_experiment`.

use std::hint::black_box;
use std::time::Instant;

use xinterp::{Outgoing, Runtime};

const ROUND_TRIPS: u32 = 50_000;

fn main() -> xinterp::Result<()> {
    let rt = Runtime::new();
    let (a, b) = (rt.create()?, rt.create()?);
    let (to_b, to_a) = (rt.channel_create(), rt.channel_create());

    // One thread plays both sides: send in A, switch to B, answer, come back.
    let started = Instant::now();
    rt.enter(a, |ta| -> xinterp::Result<()> {
        for _ in 0..ROUND_TRIPS {
            ta.send(to_b, Outgoing::bytes(&ta.bytes(&[1; 64]))?)?;
            ta.switch(b, |tb| -> xinterp::Result<()> {
                let ping = tb.recv(to_b)?;
                tb.send(to_a, Outgoing::bytes(&ping)?)
            })??;
            black_box(ta.recv(to_a)?);
        }
        Ok(())
    })??;
    let xinterp_ns = started.elapsed().as_nanos() as f64 / f64::from(ROUND_TRIPS);

    // The peer: two OS threads, one per side.
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<Box<[u8]>>(1);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<Box<[u8]>>(1);
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            for ping in ping_rx.iter() {
                pong_tx.send(ping).expect("the pinger waits for every pong");
            }
        });
        for _ in 0..ROUND_TRIPS {
            ping_tx
                .send(vec![1; 64].into())
                .expect("the ponger is alive");
            black_box(pong_rx.recv().expect("the ponger answers"));
        }
        drop(ping_tx);
    });
    let crossbeam_ns = started.elapsed().as_nanos() as f64 / f64::from(ROUND_TRIPS);

    println!("round trip, two interpreters on one thread: {xinterp_ns:>8.0} ns");
    println!("round trip, two OS threads over crossbeam:  {crossbeam_ns:>8.0} ns");
    println!("ratio: {:.2}x", xinterp_ns / crossbeam_ns);
    println!("switches counted: {}", rt.counters().switches);
    Ok(())
}
