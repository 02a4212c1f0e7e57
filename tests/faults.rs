//! Fault injection: an interpreter destroyed while other threads send to it, receive from it
//! and hold proxies of its objects; each case ends with the accounting and ledger checks.

mod common;
use common::assert_clean;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use xinterp::{Close, Config, ErrorKind, ObjKind, Outgoing, OwnerDeath, Runtime};

#[test]
fn an_interpreter_destroyed_while_others_use_it() {
    // INV-OWNER-DEATH, INV-DESTROY-IDLE, INV-CHAN-SENDER-GONE
    let rounds = if cfg!(miri) { 2 } else { 40 };
    for round in 0..rounds {
        let rt = Runtime::with_config(Config::default().owner_death(OwnerDeath::Invalidate));
        let victim = rt.create().unwrap();
        let other = rt.create().unwrap();
        let to_other = rt.create_channel();
        let to_victim = rt.create_channel();
        // Proxies of the victim's objects, held by `other`.
        rt.enter(victim, |tok| {
            for _ in 0..3 {
                to_other
                    .send(tok, Outgoing::object(&tok.list(&[tok.int(1)])))
                    .unwrap();
            }
        })
        .unwrap();
        let held: Vec<_> = rt
            .enter(other, |tok| {
                (0..3)
                    .map(|_| to_other.recv(tok).unwrap().unbind())
                    .collect()
            })
            .unwrap();
        let stop = AtomicBool::new(false);
        let traffic = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let (rt, stop, held, traffic) = (&rt, &stop, &held, &traffic);
            let (to_other, to_victim) = (&to_other, &to_victim);
            // Sends to the victim, and from it (its buffers and objects), until it is gone.
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let sent = rt.enter(other, |tok| {
                        to_victim.send(tok, Outgoing::buffer(&tok.bytes(b"to victim")).unwrap())
                    });
                    if let Ok(Err(e)) = sent {
                        assert_eq!(e.kind(), ErrorKind::ChannelClosed, "{e}");
                    }
                    let from = rt.enter(victim, |tok| {
                        to_other.send(tok, Outgoing::buffer(&tok.bytearray(b"from")).unwrap())
                    });
                    match from {
                        Ok(r) => r.unwrap(),
                        Err(e) => assert_eq!(e.kind(), ErrorKind::InterpreterNotFound, "{e}"),
                    }
                    traffic.fetch_add(1, Ordering::Relaxed);
                    std::thread::yield_now();
                }
            });
            // Receives in the victim, and uses the proxies, until it is gone.
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let got = rt.enter(victim, |tok| to_victim.recv(tok).map(drop));
                    if let Ok(Err(e)) = got {
                        assert!(
                            matches!(e.kind(), ErrorKind::ChannelEmpty | ErrorKind::ChannelClosed),
                            "{e}"
                        );
                    }
                    rt.enter(other, |tok| {
                        for proxy in held {
                            match proxy.bind(tok).unwrap().len() {
                                Ok(n) => assert_eq!(n, 1),
                                Err(e) => assert_eq!(e.kind(), ErrorKind::InterpreterGone),
                            }
                        }
                    })
                    .unwrap();
                    traffic.fetch_add(1, Ordering::Relaxed);
                    std::thread::yield_now();
                }
            });
            // Destroy it mid-traffic (retrying while a thread is inside it).
            while traffic.load(Ordering::Relaxed) < 4 + round % 7 {
                std::thread::yield_now();
            }
            loop {
                match rt.destroy(victim) {
                    Ok(_) => break,
                    Err(e) => assert_eq!(e.kind(), ErrorKind::InterpreterBusy, "{e}"),
                }
                std::thread::yield_now();
            }
            stop.store(true, Ordering::Relaxed);
        });
        // Whatever was in flight: receive it in `other` (views outlive their owner; items
        // of the destroyed sender arrive unbound), then close everything.
        rt.enter(other, |tok| {
            while let Ok(obj) = to_other.recv(tok) {
                assert!(matches!(obj.kind(), ObjKind::View | ObjKind::Unbound));
            }
        })
        .unwrap();
        for ch in [to_other, to_victim] {
            let _ = ch.close(Close::Force);
        }
        rt.enter(other, move |_| drop(held)).unwrap();
        assert_clean(&rt);
    }
}
