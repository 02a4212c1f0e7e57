//! Plain sends and receives use a channel's ring without its mutex while every other
//! operation seals the ring under the mutex, taking its items into the locked queue, and
//! reopens it when the channel is in its common state (INV-CHAN-RING). These models race
//! the two paths: a receiver about to wait seals the ring, so the send it waits for goes
//! through the mutex and wakes it; sends of two interpreters flip the send end's remembered
//! interpreter under the mutex while the other's claim and a receiver race them; and a send
//! that finds the ring full (4 slots in model builds) seals it while a receiver takes items
//! off it. Nothing is lost, repeated or reordered, and no interleaving deadlocks.
#![cfg(loom)]

use loom::thread;
use xinterp::{Channel, Config, ErrorKind, InterpId, Outgoing, Runtime};
use xinterp_loom_tests::setup;

/// Sends one bytes item holding `data` from `from`.
fn send_bytes(rt: &Runtime, from: InterpId, ch: &Channel, data: &[u8]) {
    rt.enter(from, |tok| {
        ch.send(tok, Outgoing::bytes(&tok.bytes(data)).unwrap())
            .unwrap()
    })
    .unwrap();
}

/// Receives `n` items in `into`, yielding while the channel is empty, and gives their bytes.
fn receive_spinning(rt: &Runtime, into: InterpId, ch: &Channel, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < n {
        let item = rt
            .enter(into, |tok| ch.recv(tok).map(|obj| obj.to_bytes().unwrap()))
            .unwrap();
        match item {
            Ok(bytes) => got.push(bytes),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::ChannelEmpty, "{e}");
                thread::yield_now();
            }
        }
    }
    got
}

/// `s` sends and `r` receives one item first, so that both are the remembered
/// interpreters of their ends and the ring is open.
fn warmed() -> (Runtime, InterpId, InterpId, Channel) {
    let (rt, s, r, ch) = setup(Config::default());
    send_bytes(&rt, s, &ch, b"warm");
    assert_eq!(receive_spinning(&rt, r, &ch, 1), [b"warm"]);
    (rt, s, r, ch)
}

#[test]
fn a_receiver_waiting_on_an_open_ring_is_woken_by_a_plain_send() {
    xinterp_loom_tests::model("a_receiver_waiting_is_woken_by_a_plain_send", || {
        let (rt, s, r, ch) = warmed();
        let (receiver_rt, receiver_ch) = (rt.clone(), ch.clone());
        let receiver = thread::spawn(move || {
            receiver_rt
                .enter(r, |tok| {
                    let item = receiver_ch.recv_wait(tok, None).unwrap();
                    item.into_obj(tok).unwrap().to_bytes().unwrap()
                })
                .unwrap()
        });
        send_bytes(&rt, s, &ch, b"x");
        assert_eq!(receiver.join().unwrap(), b"x");
        xinterp_loom_tests::assert_balanced(&rt);
    });
}

#[test]
fn sends_of_two_interpreters_and_a_receive_lose_nothing() {
    xinterp_loom_tests::model("sends_of_two_interpreters_and_a_receive", || {
        let (rt, s, r, ch) = warmed();
        let other = rt.create().unwrap();
        send_bytes(&rt, other, &ch, b"warm");
        assert_eq!(receive_spinning(&rt, r, &ch, 1), [b"warm"]);
        // `other` sent last: `s`'s send is admitted under the mutex, becoming the remembered
        // sender while `other` claims a slot, and both race the receiver.
        let senders: Vec<_> = [(s, b"s"), (other, b"o")]
            .into_iter()
            .map(|(from, item)| {
                let (rt, ch) = (rt.clone(), ch.clone());
                thread::spawn(move || send_bytes(&rt, from, &ch, item))
            })
            .collect();
        let mut got = receive_spinning(&rt, r, &ch, 2);
        for sender in senders {
            sender.join().unwrap();
        }
        got.sort();
        assert_eq!(got, [b"o", b"s"], "each received once");
        assert_eq!(ch.info().unwrap().count, 0, "nothing left over");
        xinterp_loom_tests::assert_balanced(&rt);
    });
}

#[test]
fn a_send_that_finds_the_ring_full_keeps_the_order() {
    xinterp_loom_tests::model("a_send_that_finds_the_ring_full", || {
        let (rt, s, r, ch) = warmed();
        let items: [&[u8]; 5] = [b"0", b"1", b"2", b"3", b"4"];
        let (sender_rt, sender_ch) = (rt.clone(), ch.clone());
        let sender = thread::spawn(move || {
            for item in items {
                send_bytes(&sender_rt, s, &sender_ch, item);
            }
        });
        let got = receive_spinning(&rt, r, &ch, items.len());
        sender.join().unwrap();
        assert_eq!(got, items, "in order, each once");
        xinterp_loom_tests::assert_balanced(&rt);
    });
}
