//! The channel state machine alone: plain payloads, no objects, tokens or runtimes.

use super::*;

#[derive(Debug, PartialEq)]
enum P {
    Data(u32),
    Unbound,
}

impl Payload for P {
    fn unbound() -> Self {
        P::Unbound
    }
}

const A: InterpId = InterpId(1);
const B: InterpId = InterpId(2);

fn channel(default: UnboundOp) -> Channel<P> {
    Channel::new(ChannelId(1), default)
}

fn send(c: &Channel<P>, by: InterpId, n: u32) -> Result<()> {
    c.send(by, by, P::Data(n), None, Wait::No).result
}

fn recv(c: &Channel<P>, by: InterpId) -> Result<P> {
    c.recv(by, Wait::No).map(|item| item.payload)
}

fn kind<T>(r: Result<T>) -> Option<ErrorKind> {
    r.err().map(|e| e.kind())
}

#[test]
fn items_come_out_in_order_then_the_channel_is_empty() {
    let c = channel(UnboundOp::Replace);
    for n in 1..=3 {
        send(&c, A, n).unwrap();
    }
    for n in 1..=3 {
        assert_eq!(recv(&c, B).unwrap(), P::Data(n));
    }
    assert_eq!(kind(recv(&c, B)), Some(ErrorKind::ChannelEmpty));
    let info = c.info().unwrap();
    assert_eq!((info.send_interps, info.recv_interps), (vec![A], vec![B]));
}

#[test]
fn close_now_after_drain_and_force() {
    let c = channel(UnboundOp::Replace);
    send(&c, A, 1).unwrap();
    assert_eq!(kind(c.close(Close::Now)), Some(ErrorKind::ChannelNotEmpty));
    assert_eq!(
        c.info().unwrap().count,
        1,
        "a refused close changes nothing"
    );
    assert!(c.close(Close::AfterDrain).unwrap().is_empty());
    assert_eq!(c.info().unwrap().status, ChannelStatus::Closing);
    // As CPython: closing now is refused while items remain, closing again is closed.
    assert_eq!(kind(c.close(Close::Now)), Some(ErrorKind::ChannelNotEmpty));
    assert_eq!(
        kind(c.close(Close::AfterDrain)),
        Some(ErrorKind::ChannelClosed)
    );
    assert_eq!(kind(send(&c, A, 2)), Some(ErrorKind::ChannelClosed));
    assert_eq!(recv(&c, B).unwrap(), P::Data(1));
    assert_eq!(c.info().unwrap().status, ChannelStatus::Closed, "drained");

    let c = channel(UnboundOp::Replace);
    send(&c, A, 1).unwrap();
    send(&c, A, 2).unwrap();
    assert_eq!(c.close(Close::Force).unwrap(), vec![P::Data(1), P::Data(2)]);
    assert_eq!(kind(recv(&c, B)), Some(ErrorKind::ChannelClosed));
}

#[test]
fn a_failed_operation_associates_nothing() {
    // INV-CHAN-ASSOC-SUCCESS
    let c = channel(UnboundOp::Replace);
    send(&c, A, 1).unwrap();
    c.close(Close::AfterDrain).unwrap();
    let refused = c.send(B, B, P::Data(2), None, Wait::No);
    assert_eq!(kind(refused.result), Some(ErrorKind::ChannelClosed));
    assert_eq!(
        refused.discarded,
        Some(P::Data(2)),
        "handed back to be dropped"
    );
    assert!(!refused.queued);
    let (e, payload) = c.send_now(B, B, P::Data(3), None).unwrap_err();
    assert_eq!(
        (e.kind(), payload),
        (ErrorKind::ChannelClosed, P::Data(3)),
        "handed back to be dropped"
    );
    assert_eq!(c.info().unwrap().send_interps, vec![A]);
}

#[test]
fn release_is_per_interpreter_and_end_and_closes_when_nobody_is_left() {
    let c = channel(UnboundOp::Replace);
    send(&c, A, 1).unwrap();
    assert_eq!(kind(recv(&c, B)), None);
    send(&c, A, 2).unwrap();
    assert!(c.release(A, End::Send).unwrap().is_empty());
    assert!(c.release(A, End::Send).unwrap().is_empty(), "idempotent");
    assert_eq!(
        c.info().unwrap().status,
        ChannelStatus::Open,
        "B still receives"
    );
    assert_eq!(kind(send(&c, A, 3)), Some(ErrorKind::ChannelClosed));
    // The last association goes: closed, and the item nobody can receive comes back.
    assert_eq!(c.release(B, End::Both).unwrap(), vec![P::Data(2)]);
    assert_eq!(c.info().unwrap().status, ChannelStatus::Closed);
    assert_eq!(
        kind(c.release(B, End::Recv)),
        Some(ErrorKind::ChannelClosed)
    );
}

#[test]
fn a_destroyed_senders_items_follow_their_unbound_op() {
    let c = channel(UnboundOp::Replace);
    send(&c, A, 1).unwrap();
    c.send(A, A, P::Data(2), Some(UnboundOp::Remove), Wait::No)
        .result
        .unwrap();
    c.send(A, A, P::Data(3), Some(UnboundOp::Error), Wait::No)
        .result
        .unwrap();
    send(&c, B, 4).unwrap();
    assert_eq!(
        c.forget_interpreter(A),
        vec![P::Data(1), P::Data(2), P::Data(3)],
        "the gone sender's data comes back, to be released in it"
    );
    let first = c.recv(B, Wait::No).unwrap();
    assert_eq!(
        (first.payload, first.orphaned),
        (P::Unbound, Some(UnboundOp::Replace))
    );
    let second = c.recv(B, Wait::No).unwrap();
    assert_eq!(
        (second.payload, second.orphaned),
        (P::Unbound, Some(UnboundOp::Error))
    );
    assert_eq!(recv(&c, B).unwrap(), P::Data(4));
}

#[test]
fn a_timed_send_nobody_receives_is_withdrawn() {
    let c = channel(UnboundOp::Replace);
    let sent = c.send(A, A, P::Data(1), None, Wait::For(Duration::from_millis(1)));
    assert_eq!(kind(sent.result), Some(ErrorKind::Timeout));
    assert!(sent.queued, "counted as sent");
    assert_eq!(sent.discarded, Some(P::Data(1)), "withdrawn, to be dropped");
    assert_eq!(c.info().unwrap().count, 0);
}

#[test]
fn an_ended_association_is_not_remembered_as_open() {
    // INV-CHAN-ASSOC-SUCCESS: the interpreter `associate` remembers per end is forgotten
    // when any association ends, so a released end refuses even right after it was used.
    const C: InterpId = InterpId(3);
    let c = channel(UnboundOp::Replace);
    send(&c, A, 1).unwrap();
    send(&c, C, 2).unwrap();
    assert_eq!(recv(&c, B).unwrap(), P::Data(1));
    assert_eq!(recv(&c, B).unwrap(), P::Data(2));
    assert!(c.release(B, End::Recv).unwrap().is_empty());
    assert_eq!(kind(recv(&c, B)), Some(ErrorKind::ChannelClosed));
    assert_eq!(kind(recv(&c, A)), Some(ErrorKind::ChannelEmpty), "A may");
    // C was remembered for the send end last; its sender's destroy ends its associations.
    send(&c, C, 3).unwrap();
    assert_eq!(c.forget_interpreter(C), vec![P::Data(3)]);
    assert_eq!(kind(send(&c, C, 4)), Some(ErrorKind::ChannelClosed));
    send(&c, A, 5).unwrap();
    assert_eq!(kind(send(&c, C, 6)), Some(ErrorKind::ChannelClosed));
    let info = c.info().unwrap();
    assert_eq!((info.send_interps, info.recv_interps), (vec![A], vec![A]));
}

/// Whether the ring is open (plain sends and receives skip the mutex).
fn ring_open(c: &Channel<P>) -> bool {
    c.state.lock().sealed.is_none()
}

#[test]
fn plain_sends_and_receives_reopen_the_ring_and_keep_the_order_past_its_capacity() {
    // INV-CHAN-RING: the first send and receive of an interpreter associate under the mutex
    // and reopen the ring; a send that finds it full seals it, so the queue goes on in
    // order under the mutex until it is short enough to hand back.
    let c = channel(UnboundOp::Replace);
    let n = 3 * RING_CAPACITY as u32;
    for i in 0..n {
        send(&c, A, i).unwrap();
    }
    assert!(!ring_open(&c), "more than the ring holds");
    assert_eq!(c.info().unwrap().count, n as usize);
    for i in 0..n {
        assert_eq!(recv(&c, B).unwrap(), P::Data(i));
    }
    assert!(ring_open(&c), "short enough again");
    send(&c, A, n).unwrap();
    assert_eq!(
        c.ring.try_pop(|| true).into_item().map(|i| i.payload),
        Some(P::Data(n)),
        "a plain send went on the ring"
    );
    assert_eq!(kind(recv(&c, B)), Some(ErrorKind::ChannelEmpty));
}

#[test]
fn info_close_and_forget_see_the_items_on_the_ring() {
    let c = channel(UnboundOp::Remove);
    for i in 0..3 {
        send(&c, A, i).unwrap();
    }
    assert!(ring_open(&c));
    assert_eq!(c.info().unwrap().count, 3, "counted through a seal");
    assert!(ring_open(&c), "and reopened after it");
    assert_eq!(
        c.forget_interpreter(A),
        vec![P::Data(0), P::Data(1), P::Data(2)],
        "a destroyed sender's items are settled from the ring too"
    );
    let c = channel(UnboundOp::Replace);
    send(&c, A, 1).unwrap();
    send(&c, A, 2).unwrap();
    assert_eq!(c.close(Close::Force).unwrap(), vec![P::Data(1), P::Data(2)]);
    assert!(!ring_open(&c), "a closed channel keeps its ring sealed");
    assert_eq!(kind(send(&c, A, 3)), Some(ErrorKind::ChannelClosed));
}

#[test]
fn a_waited_item_or_a_waiting_receiver_keeps_the_ring_sealed() {
    // A waiter is only woken by changes made under the mutex, so the ring stays sealed
    // while anyone waits or a waited-for item is queued.
    let c = std::sync::Arc::new(channel(UnboundOp::Replace));
    send(&c, A, 0).unwrap();
    assert_eq!(recv(&c, B).unwrap(), P::Data(0));
    assert!(ring_open(&c));
    let receiver = {
        let c = std::sync::Arc::clone(&c);
        std::thread::spawn(move || c.recv(B, Wait::Forever).map(|i| i.payload))
    };
    while c.state.lock().waiters == 0 {
        std::thread::yield_now();
    }
    assert!(!ring_open(&c), "sealed while the receiver waits");
    send(&c, A, 1).unwrap();
    assert_eq!(
        receiver.join().unwrap().unwrap(),
        P::Data(1),
        "woken by the send"
    );
    assert!(ring_open(&c), "reopened once nobody waits");

    let sender = {
        let c = std::sync::Arc::clone(&c);
        std::thread::spawn(move || c.send(A, A, P::Data(2), None, Wait::Forever).result)
    };
    while c.state.lock().items.is_empty() {
        std::thread::yield_now();
    }
    assert!(!ring_open(&c), "sealed while a waited-for item is queued");
    assert_eq!(recv(&c, B).unwrap(), P::Data(2));
    sender.join().unwrap().unwrap();
    assert!(ring_open(&c));
}

#[test]
fn senders_taking_turns_are_admitted_without_a_seal() {
    // A send by an interpreter other than the remembered one checks and remembers its
    // association under the mutex and uses the open ring: no seal, so the queued items are
    // not moved out and back for each change of sender.
    const C: InterpId = InterpId(3);
    let c = channel(UnboundOp::Replace);
    send(&c, A, 0).unwrap();
    send(&c, C, 1).unwrap();
    assert_eq!(recv(&c, B).unwrap(), P::Data(0));
    let head = c.ring.head();
    for n in 2..10 {
        send(&c, if n % 2 == 0 { A } else { C }, n).unwrap();
    }
    assert_eq!(c.ring.head(), head, "no seal moved the head");
    for n in 1..10 {
        assert_eq!(recv(&c, B).unwrap(), P::Data(n));
    }
    let info = c.info().unwrap();
    assert_eq!(info.send_interps, vec![A, C]);
}
