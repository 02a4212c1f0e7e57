//! MemChannel semantics: ids, associations, FIFO, bytes and zero-copy buffer items, waits
//! and timeouts, close / release, senders destroyed, and the accounting: every export given
//! back, exactly once, in its owner.

mod common;
use common::{assert_clean, interps, recv_owned, send, send_kept, setup, while_held, Item};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use xinterp::{
    ChannelStatus, Close, Config, Counters, End, ErrorKind, ObjKind, Outgoing, OwnedObj,
    ReleaseStrategy, Runtime, UnboundOp,
};

fn export_count(rt: &Runtime, obj: &OwnedObj) -> usize {
    rt.enter(obj.owner(), |tok| {
        obj.bind(tok).unwrap().export_count().unwrap()
    })
    .unwrap()
}

#[test]
fn channel_ids_are_never_reused_and_destroyed_channels_are_gone() {
    // INV-CHAN-ID-FRESH
    let rt = Runtime::new();
    let a = rt.create_channel();
    let b = rt.create_channel();
    assert!(a.id() < b.id());
    a.destroy().unwrap();
    let c = rt.create_channel();
    assert!(c.id() > b.id());
    assert_eq!(rt.channels(), vec![b.id(), c.id()]);
    let err = a.info().unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (ErrorKind::ChannelNotFound, "channel 1 not found")
    );
    let err = rt
        .enter(rt.main(), |tok| a.recv(tok).map(drop))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ChannelNotFound);
    assert_eq!(a.destroy().unwrap_err().kind(), ErrorKind::ChannelNotFound);
}

/// A handle names its channel by id; `rt.channel(id)` makes another handle to the same one,
/// and a handle to an id no channel has fails like a destroyed one.
#[test]
fn a_handle_made_from_an_id_is_the_same_channel() {
    let rt = Runtime::new();
    let ch = rt.create_channel();
    assert_eq!(format!("{ch:?}"), "Channel(1)");
    let again = rt.channel(ch.id());
    assert_eq!(again.id(), ch.id());
    rt.enter(rt.main(), |tok| {
        ch.send(tok, Outgoing::bytes(&tok.bytes(b"x")).unwrap())
            .unwrap();
        assert_eq!(again.recv(tok).unwrap().to_bytes().unwrap(), b"x");
    })
    .unwrap();
    assert_eq!(ch.info().unwrap().send_interps, vec![rt.main()]);
    let ghost = rt.channel(xinterp::ChannelId::new(99));
    let err = ghost.info().unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (ErrorKind::ChannelNotFound, "channel 99 not found")
    );
    assert_eq!(rt.channels(), vec![ch.id()]);
    assert_clean(&rt);
}

/// A handle holds its channel, so its operations look nothing up; a channel destroyed through
/// one handle is gone for every handle, each operation refused by the channel's own state.
/// A handle made for an id before its channel exists finds it once it does.
#[test]
fn a_channel_destroyed_through_one_handle_is_gone_for_every_handle() {
    let rt = Runtime::new();
    let early = rt.channel(xinterp::ChannelId::new(1));
    let ch = rt.create_channel();
    let other = ch.clone();
    rt.enter(rt.main(), |tok| {
        early
            .send(tok, Outgoing::bytes(&tok.bytes(b"x")).unwrap())
            .unwrap();
        assert_eq!(other.recv(tok).unwrap().to_bytes().unwrap(), b"x");
    })
    .unwrap();
    ch.destroy().unwrap();
    for handle in [&early, &other, &ch] {
        rt.enter(rt.main(), |tok| {
            let refused = [
                handle.send(tok, Outgoing::bytes(&tok.bytes(b"y")).unwrap()),
                handle.recv(tok).map(drop),
                handle.release(tok, End::Both),
                handle.close(Close::Now),
                handle.info().map(drop),
                handle.destroy(),
            ];
            for result in refused {
                assert_eq!(result.unwrap_err().kind(), ErrorKind::ChannelNotFound);
            }
        })
        .unwrap();
    }
    assert_clean(&rt);
}

/// A channel handle of one runtime used with a token of another is refused with
/// `WrongRuntime` by every operation that takes a token, before it touches either runtime's
/// channels: runtime 2 has a channel with the same id, which stays untouched, and a refused
/// item is released in its own runtime (INV-RUNTIME-OWN).
#[test]
fn a_channel_handle_of_another_runtime_is_refused() {
    let rt1 = Runtime::new();
    let rt2 = Runtime::new();
    let c1 = rt1.create_channel();
    let c2 = rt2.create_channel();
    assert_eq!(c1.id(), c2.id(), "channel ids restart in every runtime");
    let x = rt2.create().unwrap();
    rt2.enter(x, |tok| {
        let refused = |r: xinterp::Result<()>| {
            let err = r.unwrap_err();
            assert_eq!(
                (err.kind(), err.message()),
                (
                    ErrorKind::WrongRuntime,
                    "this channel belongs to another runtime; runtimes share nothing"
                )
            );
        };
        refused(c1.send(tok, Outgoing::bytes(&tok.bytes(b"a")).unwrap()));
        refused(c1.send(tok, Outgoing::buffer(&tok.bytes(b"b")).unwrap()));
        refused(c1.send(tok, Outgoing::object(&tok.list(&[]))));
        let item = Outgoing::buffer(&tok.bytearray(b"c")).unwrap();
        refused(c1.send_wait(tok, item, Some(Duration::from_millis(1))));
        refused(c1.recv(tok).map(drop));
        refused(c1.recv_or(tok, tok.none()).map(drop));
        refused(c1.recv_wait(tok, Some(Duration::from_millis(1))).map(drop));
        refused(c1.release(tok, End::Both));
    })
    .unwrap();
    for (rt, ch) in [(&rt1, &c1), (&rt2, &c2)] {
        let info = ch.info().unwrap();
        assert_eq!(info.status, ChannelStatus::Open);
        assert_eq!(info.count, 0);
        assert!(info.send_interps.is_empty() && info.recv_interps.is_empty());
        assert_eq!(rt.counters().channel_sends, 0);
        assert_eq!(rt.counters().channel_recvs, 0);
    }
    // The refused items' exports and origin references went back in runtime 2.
    assert_clean(&rt1);
    assert_clean(&rt2);
}

#[test]
fn bytes_items_arrive_in_order_as_copies() {
    let (rt, s, r, ch) = setup(Config::default());
    let sent_at = rt
        .enter(s, |tok| {
            let first = tok.bytes(b"first");
            ch.send(tok, Outgoing::bytes(&first).unwrap()).unwrap();
            ch.send(tok, Outgoing::bytes(&tok.bytearray(b"second")).unwrap())
                .unwrap();
            first.get_buffer().unwrap().as_ptr() as usize
        })
        .unwrap();
    assert_eq!(ch.info().unwrap().count, 2);
    rt.enter(r, |tok| {
        let first = ch.recv(tok).unwrap();
        assert_eq!(first.kind(), ObjKind::Bytes);
        assert_eq!(first.to_bytes().unwrap(), b"first");
        assert_ne!(
            first.get_buffer().unwrap().as_ptr() as usize,
            sent_at,
            "a copy"
        );
        assert_eq!(ch.recv(tok).unwrap().to_bytes().unwrap(), b"second");
        let err = ch.recv(tok).unwrap_err();
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::ChannelEmpty, "channel 1 is empty")
        );
        let default = ch.recv_or(tok, tok.none()).unwrap();
        assert_eq!(default.kind(), ObjKind::None);
    })
    .unwrap();
    let c = rt.counters();
    assert_eq!(
        (
            c.channel_sends,
            c.channel_recvs,
            c.bytes_copied,
            c.bytes_zero_copy
        ),
        (2, 2, 11, 0)
    );
    let err = rt
        .enter(s, |tok| Outgoing::bytes(&tok.int(1)).map(drop))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TypeError);
    assert_clean(&rt);
}

#[test]
fn a_buffer_item_is_a_view_onto_the_senders_memory() {
    let (rt, s, r, ch) = setup(Config::default());
    let (array, sent_at) = rt
        .enter(s, |tok| {
            let array = tok.bytearray(b"shared bytes");
            let at = array.get_buffer().unwrap().as_ptr() as usize;
            ch.send(tok, Outgoing::buffer(&array).unwrap()).unwrap();
            // The item holds an export: the exporter cannot resize.
            let err = array.bytearray_extend(b"!").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BufferError);
            (array.unbind(), at)
        })
        .unwrap();
    let view = rt
        .enter(r, |tok| {
            let view = ch.recv(tok).unwrap();
            assert_eq!(view.kind(), ObjKind::View);
            let buffer = view.get_buffer().unwrap();
            assert_eq!(
                buffer.as_ptr() as usize,
                sent_at,
                "zero copy: the same address"
            );
            assert!(!buffer.readonly(), "writable like its exporter");
            drop(buffer);
            view.setitem(&tok.int(0), &tok.int(i64::from(b'S')))
                .unwrap();
            view.unbind()
        })
        .unwrap();
    // The write through the receiver's view shows in the sender.
    let seen = rt
        .enter(s, |tok| array.bind(tok).unwrap().to_bytes().unwrap())
        .unwrap();
    assert_eq!(seen, b"Shared bytes");
    assert_eq!(export_count(&rt, &array), 1);
    // Dropping the view in `r` releases the export in `s`: the release lets go of `r` for
    // the moment it spends in `s` (INV-RELEASE-SUSPEND), and comes back to `r`.
    rt.enter(r, move |tok| {
        drop(view);
        assert_eq!(tok.id(), r);
        assert_eq!(tok.info().live_objects, 0);
    })
    .unwrap();
    assert_eq!(
        export_count(&rt, &array),
        0,
        "released in the owner when the view went"
    );
    let c = rt.counters();
    assert_eq!(
        (c.bytes_zero_copy, c.bytes_copied, c.releases_switched),
        (12, 0, 1)
    );
    drop(array);
    assert_clean(&rt);
}

#[test]
fn read_only_exporters_give_read_only_views() {
    let (rt, s, r, ch) = setup(Config::default());
    send(&rt, s, &ch, Item::Buffer, |tok| tok.bytes(b"const"));
    rt.enter(r, |tok| {
        let view = ch.recv(tok).unwrap();
        assert!(view.get_buffer().unwrap().readonly());
        let err = view.setitem(&tok.int(0), &tok.int(1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeError);
        assert_eq!(view.to_bytes().unwrap(), b"const");
    })
    .unwrap();
    assert_clean(&rt);
}

#[test]
fn slices_of_a_received_view_share_one_export() {
    let (rt, s, r, ch) = setup(Config::default());
    let array = send_kept(&rt, s, &ch, Item::Buffer, |tok| {
        tok.bytearray(b"0123456789")
    });
    let (view, slice) = rt
        .enter(r, |tok| {
            let view = ch.recv(tok).unwrap();
            let slice = view.slice(2, 5).unwrap();
            let inner = slice.slice(1, 2).unwrap();
            assert_eq!(inner.to_bytes().unwrap(), b"3");
            assert_eq!(
                inner.get_buffer().unwrap().as_ptr(),
                view.get_buffer().unwrap().as_ptr().wrapping_add(3)
            );
            (view.unbind(), slice.unbind())
        })
        .unwrap();
    assert_eq!(
        export_count(&rt, &array),
        1,
        "one export for the view and its slices"
    );
    rt.enter(r, |tok| {
        let view = view.bind(tok).unwrap();
        view.release_view().unwrap();
        view.release_view().unwrap();
        assert_eq!(view.len().unwrap_err().kind(), ErrorKind::ValueError);
    })
    .unwrap();
    assert_eq!(export_count(&rt, &array), 1, "the slice still holds it");
    let before = rt.counters();
    rt.enter(r, move |_| drop((view, slice))).unwrap();
    assert_eq!(export_count(&rt, &array), 0);
    assert_eq!(
        rt.counters().since(&before).releases_switched,
        1,
        "the last release only"
    );
    drop(array);
    assert_clean(&rt);
}

#[test]
fn a_received_view_gives_its_export_back_once_it_and_the_views_over_it_are_released() {
    // INV-RELEASE-IN-OWNER: a received view is one memoryview object holding the pinned
    // export; the views made of it share that export, whose release starts as soon as the
    // received view and every view over it are released, their handles still held. It
    // waits in the thread's batch until the thread lets go of `r` (INV-RELEASE-BATCH).
    let (rt, s, r, ch) = setup(Config::default());
    let array = send_kept(&rt, s, &ch, Item::Buffer, |tok| {
        tok.bytearray(b"0123456789")
    });
    rt.enter(r, |tok| {
        let view = ch.recv(tok).unwrap();
        assert_eq!(
            (view.kind(), view.type_name()),
            (ObjKind::View, "memoryview".into())
        );
        let again = view.memoryview().unwrap();
        let slice = view.slice(2, 5).unwrap();
        let buffer = view.get_buffer().unwrap();
        assert_eq!(view.export_count().unwrap(), 1, "the buffer, not the views");
        let err = view.release_view().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BufferError);
        drop(buffer);
        view.release_view().unwrap();
        assert_eq!(view.len().unwrap_err().kind(), ErrorKind::ValueError);
        assert_eq!(again.to_bytes().unwrap(), b"0123456789");
        again.release_view().unwrap();
        assert_eq!(slice.to_bytes().unwrap(), b"234");
        let started = || rt.counters().releases_batched;
        assert_eq!(started(), 0, "the slice holds it");
        slice.release_view().unwrap();
        assert_eq!(started(), 1, "handles still held");
        assert_eq!(rt.info(s).unwrap().pinned_exports, 1, "until r is let go");
        drop((view, again, slice));
        assert_eq!(started(), 1, "given back once");
    })
    .unwrap();
    assert_eq!(rt.info(s).unwrap().pinned_exports, 0);
    assert_eq!(export_count(&rt, &array), 0);
    drop(array);
    assert_clean(&rt);
}

#[test]
fn each_strategy_releases_in_the_owner() {
    // INV-RELEASE-IN-OWNER
    for strategy in ReleaseStrategy::ALL {
        let (rt, s, r, ch) = setup(Config::default().release(strategy));
        let array = send_kept(&rt, s, &ch, Item::Buffer, |tok| tok.bytearray(b"abc"));
        rt.enter(r, |tok| drop(ch.recv(tok).unwrap())).unwrap();
        let c = rt.counters();
        match strategy {
            ReleaseStrategy::Switch | ReleaseStrategy::Adaptive => {
                assert_eq!(
                    (c.releases_switched, c.releases_deferred),
                    (1, 0),
                    "{strategy:?}"
                );
                assert_eq!(rt.info(s).unwrap().inbox_depth, 0);
            }
            ReleaseStrategy::Deferred => {
                assert_eq!((c.releases_switched, c.releases_deferred), (0, 1));
                let info = rt.info(s).unwrap();
                assert_eq!(info.inbox_depth, 1, "queued on the owner's own inbox");
                assert!(info.oldest_pending.is_some());
                assert_eq!(info.pinned_exports, 1, "not released until the owner runs");
                assert_eq!(rt.drain(s).unwrap(), 1);
            }
        }
        assert_eq!(export_count(&rt, &array), 0, "{strategy:?}");
        drop(array);
        assert_clean(&rt);
    }
}

#[test]
fn adaptive_defers_when_the_owner_is_busy() {
    let (rt, s, r, ch) = setup(Config::default().release(ReleaseStrategy::Adaptive));
    send(&rt, s, &ch, Item::Buffer, |tok| tok.bytes(b"x"));
    let view = recv_owned(&rt, r, &ch);
    while_held(&rt, s, || {
        rt.enter(r, move |_| drop(view)).unwrap();
        assert_eq!(rt.counters().releases_deferred, 1);
    });
    rt.drain(s).unwrap();
    assert_clean(&rt);
}

#[test]
fn deferred_releases_are_bounded() {
    let (rt, s, r, ch) = setup(
        Config::default()
            .release(ReleaseStrategy::Deferred)
            .deferred_limit(1),
    );
    rt.enter(s, |tok| {
        for _ in 0..3 {
            ch.send(tok, Outgoing::buffer(&tok.bytes(b"x")).unwrap())
                .unwrap();
        }
    })
    .unwrap();
    rt.enter(r, |tok| {
        for _ in 0..3 {
            drop(ch.recv(tok).unwrap());
        }
    })
    .unwrap();
    // Deferred, then (inbox full) switched twice: a release's entry does not drain the
    // inbox (INV-RELEASE-BOUNDED), so the backlog stays at the limit until the owner runs.
    let c = rt.counters();
    assert_eq!((c.releases_deferred, c.releases_switched), (1, 2));
    assert_eq!(rt.info(s).unwrap().inbox_depth, 1, "never past the limit");
    assert_clean(&rt);
}

#[test]
fn blocking_receive_waits_for_a_sender_and_times_out() {
    let (rt, s, r, ch) = setup(Config::default());
    let err = rt
        .enter(r, |tok| {
            ch.recv_wait(tok, Some(Duration::from_millis(20))).map(drop)
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    std::thread::scope(|scope| {
        let (rt, ch) = (&rt, &ch);
        scope.spawn(move || {
            rt.enter(r, |tok| {
                let item = ch.recv_wait(tok, None).unwrap();
                assert_eq!(item.into_obj(tok).unwrap().to_bytes().unwrap(), b"late");
            })
            .unwrap()
        });
        std::thread::sleep(Duration::from_millis(10));
        send(rt, s, ch, Item::Bytes, |tok| tok.bytes(b"late"));
    });
    assert_clean(&rt);
}

#[test]
fn a_blocking_send_returns_once_received_or_withdraws_on_timeout() {
    let (rt, s, r, ch) = setup(Config::default());
    // Timeout: the item is withdrawn and its export released.
    let array = rt.enter(s, |tok| tok.bytearray(b"abc").unbind()).unwrap();
    let err = rt
        .enter(s, |tok| {
            let item = Outgoing::buffer(&array.bind(tok).unwrap()).unwrap();
            ch.send_wait(tok, item, Some(Duration::from_millis(20)))
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(ch.info().unwrap().count, 0);
    assert_eq!(export_count(&rt, &array), 0);
    // Received: the sender returns.
    std::thread::scope(|scope| {
        let (rt, ch) = (&rt, &ch);
        scope.spawn(move || loop {
            let got = rt
                .enter(r, |tok| ch.recv(tok).map(|o| o.to_bytes().unwrap()))
                .unwrap();
            match got {
                Ok(bytes) => break assert_eq!(bytes, b"abc"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::ChannelEmpty),
            }
            std::thread::yield_now();
        });
        rt.enter(s, |tok| {
            let item = Outgoing::bytes(&array.bind(tok).unwrap()).unwrap();
            ch.send_wait(tok, item, None).unwrap();
        })
        .unwrap();
    });
    drop(array);
    assert_clean(&rt);
}

#[test]
fn a_sender_blocked_on_a_force_closed_channel_gets_closed() {
    let (rt, s, _r, ch) = setup(Config::default());
    std::thread::scope(|scope| {
        let (rt, ch) = (&rt, &ch);
        let sender = scope.spawn(move || {
            rt.enter(s, |tok| {
                let item = Outgoing::buffer(&tok.bytes(b"pending")).unwrap();
                ch.send_wait(tok, item, None)
            })
            .unwrap()
        });
        while ch.info().unwrap().count == 0 {
            std::thread::yield_now();
        }
        ch.close(Close::Force).unwrap();
        let err = sender.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ChannelClosed);
        assert_eq!(err.message(), "channel 1 has closed");
    });
    assert_clean(&rt);
}

#[test]
fn close_refuses_a_non_empty_channel_and_changes_nothing() {
    let (rt, s, r, ch) = setup(Config::default());
    send(&rt, s, &ch, Item::Bytes, |tok| tok.bytes(b"x"));
    let err = ch.close(Close::Now).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ChannelNotEmpty);
    assert_eq!(
        err.message(),
        "channel 1 may not be closed with 1 item(s) queued"
    );
    let info = ch.info().unwrap();
    assert_eq!((info.status, info.count), (ChannelStatus::Open, 1));
    rt.enter(r, |tok| drop(ch.recv(tok).unwrap())).unwrap();
    ch.close(Close::Now).unwrap();
    assert_eq!(ch.info().unwrap().status, ChannelStatus::Closed);
    let err = rt.enter(s, |tok| {
        ch.send(tok, Outgoing::bytes(&tok.bytes(b"y")).unwrap())
    });
    assert_eq!(err.unwrap().unwrap_err().kind(), ErrorKind::ChannelClosed);
    assert_eq!(
        ch.close(Close::Force).unwrap_err().kind(),
        ErrorKind::ChannelClosed
    );
    assert_clean(&rt);
}

#[test]
fn close_after_drain_stops_sends_and_closes_when_empty() {
    let (rt, s, r, ch) = setup(Config::default());
    rt.enter(s, |tok| {
        ch.send(tok, Outgoing::bytes(&tok.bytes(b"1")).unwrap())
            .unwrap();
        ch.send(tok, Outgoing::buffer(&tok.bytes(b"2")).unwrap())
            .unwrap();
    })
    .unwrap();
    ch.close(Close::AfterDrain).unwrap();
    assert_eq!(ch.info().unwrap().status, ChannelStatus::Closing);
    let err = rt.enter(s, |tok| {
        ch.send(tok, Outgoing::bytes(&tok.bytes(b"3")).unwrap())
    });
    assert_eq!(err.unwrap().unwrap_err().kind(), ErrorKind::ChannelClosed);
    assert_eq!(
        ch.close(Close::AfterDrain).unwrap_err().kind(),
        ErrorKind::ChannelClosed
    );
    rt.enter(r, |tok| {
        assert_eq!(ch.recv(tok).unwrap().to_bytes().unwrap(), b"1");
        assert_eq!(ch.recv(tok).unwrap().to_bytes().unwrap(), b"2");
        assert_eq!(ch.recv(tok).unwrap_err().kind(), ErrorKind::ChannelClosed);
    })
    .unwrap();
    assert_eq!(ch.info().unwrap().status, ChannelStatus::Closed);
    assert_clean(&rt);
}

#[test]
fn force_close_releases_queued_buffers_in_their_owners() {
    // Nothing left behind: a buffer item never received is released exactly once.
    let (rt, s, _r, ch) = setup(Config::default());
    let array = rt
        .enter(s, |tok| {
            let array = tok.bytearray(b"locked");
            ch.send(tok, Outgoing::buffer(&array).unwrap()).unwrap();
            ch.send(tok, Outgoing::buffer(&array).unwrap()).unwrap();
            array.unbind()
        })
        .unwrap();
    assert_eq!(export_count(&rt, &array), 2);
    ch.close(Close::Force).unwrap();
    assert_eq!(export_count(&rt, &array), 0);
    rt.enter(s, |tok| {
        array.bind(tok).unwrap().bytearray_extend(b"!").unwrap()
    })
    .unwrap();
    drop(array);
    assert_clean(&rt);
}

#[test]
fn destroying_a_channel_releases_what_it_holds() {
    let (rt, s, _r, ch) = setup(Config::default());
    send(&rt, s, &ch, Item::Buffer, |tok| tok.bytes(b"x"));
    ch.destroy().unwrap();
    assert!(rt.channels().is_empty());
    assert_clean(&rt);
}

#[test]
fn release_is_per_interpreter_idempotent_and_closes_when_nobody_is_left() {
    let (rt, s, r) = interps(Config::default());
    let main = rt.main();
    let ch = rt.create_channel();
    send(&rt, s, &ch, Item::Bytes, |tok| tok.bytes(b"x"));
    rt.enter(r, |tok| drop(ch.recv(tok).unwrap())).unwrap();
    rt.enter(main, |tok| drop(ch.recv_or(tok, tok.none()).unwrap()))
        .unwrap();
    assert_eq!(ch.interpreters(End::Send).unwrap(), [s]);
    assert_eq!(ch.interpreters(End::Recv).unwrap(), [main, r]);
    // A double release by `r` does not close the channel for `main` (CPython's does).
    rt.enter(r, |tok| {
        ch.release(tok, End::Recv).unwrap();
        ch.release(tok, End::Recv).unwrap();
        assert_eq!(ch.recv(tok).unwrap_err().kind(), ErrorKind::ChannelClosed);
    })
    .unwrap();
    assert_eq!(ch.interpreters(End::Recv).unwrap(), [main]);
    assert_eq!(ch.info().unwrap().status, ChannelStatus::Open);
    // A buffer item queued when the last association goes is released at once.
    send(&rt, s, &ch, Item::Buffer, |tok| tok.bytes(b"y"));
    rt.try_enter(main, |tok| ch.release(tok, End::Both))
        .unwrap();
    rt.try_enter(s, |tok| ch.release(tok, End::Both)).unwrap();
    let info = ch.info().unwrap();
    assert_eq!((info.status, info.count), (ChannelStatus::Closed, 0));
    let err = ch.interpreters(End::Send).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ChannelClosed);
    assert_clean(&rt);
}

#[test]
fn items_of_a_destroyed_sender_follow_their_unbound_op() {
    // INV-CHAN-SENDER-GONE
    let (rt, s, r) = interps(Config::default());
    let ch = rt.create_channel_with(UnboundOp::Error);
    // `r` uses the receive end, so the channel outlives the sender's association.
    rt.enter(r, |tok| {
        assert_eq!(ch.recv(tok).unwrap_err().kind(), ErrorKind::ChannelEmpty)
    })
    .unwrap();
    rt.enter(s, |tok| {
        let data = tok.bytes(b"data");
        ch.send(tok, Outgoing::buffer(&data).unwrap()).unwrap(); // channel default: Error
        let replace = Outgoing::buffer(&data).unwrap().unbound(UnboundOp::Replace);
        ch.send(tok, replace).unwrap();
        let remove = Outgoing::bytes(&data).unwrap().unbound(UnboundOp::Remove);
        ch.send(tok, remove).unwrap();
    })
    .unwrap();
    let report = rt.destroy(s).unwrap();
    assert_eq!(
        (report.leaked_objects, report.pinned_exports),
        (0, 0),
        "exports released"
    );
    assert_eq!(ch.info().unwrap().count, 2, "the Remove item is gone");
    rt.enter(r, |tok| {
        let err = ch.recv(tok).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ItemInterpreterDestroyed);
        assert!(err.message().contains(&format!("({s})")), "{err}");
        let marker = ch.recv(tok).unwrap();
        assert_eq!(marker.kind(), ObjKind::Unbound);
        assert_eq!(marker.repr().unwrap(), "<unbound item>");
        assert_eq!(ch.recv(tok).unwrap_err().kind(), ErrorKind::ChannelEmpty);
    })
    .unwrap();
    assert_clean(&rt);
}

#[test]
fn a_view_outlives_the_interpreter_that_owns_its_memory() {
    // INV-OWNER-OUTLIVES for pinned exports: the owner is destroyed while a view is held;
    // the view stays readable and its release runs late, in the destroyed owner.
    let (rt, s, r, ch) = setup(Config::default());
    send(&rt, s, &ch, Item::Buffer, |tok| tok.bytes(b"survives"));
    let view = recv_owned(&rt, r, &ch);
    let report = rt.destroy(s).unwrap();
    assert_eq!((report.pinned_exports, report.leaked_objects), (1, 1));
    rt.enter(r, |tok| {
        assert_eq!(view.bind(tok).unwrap().to_bytes().unwrap(), b"survives");
    })
    .unwrap();
    let before = rt.counters();
    rt.enter(r, move |_| drop(view)).unwrap();
    let delta = rt.counters().since(&before);
    assert_eq!(
        (delta.releases_late, delta.objects_freed),
        (1, 2),
        "the received view (one object) and the exporter"
    );
    assert_clean(&rt);
}

#[test]
fn a_never_received_buffer_is_released_when_its_receiver_goes() {
    let (rt, s, r, ch) = setup(Config::default());
    rt.enter(r, |tok| {
        assert_eq!(ch.recv(tok).unwrap_err().kind(), ErrorKind::ChannelEmpty)
    })
    .unwrap();
    rt.enter(s, |tok| {
        ch.send(tok, Outgoing::buffer(&tok.bytes(b"x")).unwrap())
            .unwrap();
        ch.release(tok, End::Send).unwrap();
    })
    .unwrap();
    assert_eq!(rt.info(s).unwrap().pinned_exports, 1);
    rt.destroy(r).unwrap();
    assert_eq!(ch.info().unwrap().status, ChannelStatus::Closed);
    assert_eq!(rt.info(s).unwrap().pinned_exports, 0);
    assert_clean(&rt);
}

#[test]
fn dropping_the_runtime_releases_queued_buffers() {
    // Runs under Miri too: an export never released would leak its exporter.
    let (rt, s, _r, ch) = setup(Config::default().release(ReleaseStrategy::Deferred));
    send(&rt, s, &ch, Item::Buffer, |tok| tok.bytearray(b"x"));
    drop(rt);
}

/// A channel handle does not keep its runtime alive, no more than a channel id did: the last
/// `Runtime` handle finalizes the runtime (its pending calls run, its channels go), and a
/// handle that outlives it finds no channel.
#[test]
fn a_channel_handle_does_not_keep_its_runtime_alive() {
    let (rt, s, _r, ch) = setup(Config::default());
    send(&rt, s, &ch, Item::Buffer, |tok| tok.bytearray(b"x"));
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    rt.call_soon(s, move |_| flag.store(true, Ordering::Relaxed))
        .unwrap();
    let again = ch.clone();
    drop(rt);
    assert!(
        ran.load(Ordering::Relaxed),
        "the last runtime handle finalized it"
    );
    for handle in [&ch, &again] {
        let err = handle.info().unwrap_err();
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::ChannelNotFound, "channel 1 not found")
        );
        assert_eq!(
            handle.close(Close::Force).unwrap_err().kind(),
            ErrorKind::ChannelNotFound
        );
    }
}

#[test]
fn a_long_backlog_of_cross_releases_runs_without_nesting() {
    // INV-RELEASE-BOUNDED: views of each other's buffers, queued for release in both
    // interpreters at once. Draining one releases into the other, which must not drain its
    // own backlog in turn (that nested one entry per queued release and overflowed the stack).
    let (rt, a, b, ch) = setup(Config::default());
    let n = if cfg!(miri) { 10 } else { 5_000 };
    let mut parked = Vec::new();
    for (from, to) in [(a, b), (b, a)] {
        rt.enter(from, |tok| {
            let data = tok.bytearray(b"x");
            for _ in 0..n {
                ch.send(tok, Outgoing::buffer(&data).unwrap()).unwrap();
            }
        })
        .unwrap();
        rt.enter(to, |tok| {
            for _ in 0..n {
                parked.push(ch.recv(tok).unwrap().unbind());
            }
        })
        .unwrap();
    }
    // Dropped outside any interpreter: every decref is queued on the views' owners.
    drop(parked);
    assert_eq!(rt.info(a).unwrap().inbox_depth, n);
    assert_eq!(rt.info(b).unwrap().inbox_depth, n);
    rt.drain(a).unwrap();
    assert_clean(&rt);
}

/// Sends `n` zero-copy items from `s`, switches to `r` and drops them there; returns the
/// owner's pinned exports seen in `r` after the last drop and once back in `s`, and the
/// counters of the round.
fn drop_views_switched_out_of_owner(config: Config, n: usize) -> (usize, usize, Counters) {
    let (rt, s, r, ch) = setup(config);
    let before = rt.counters();
    let seen_in_r = rt
        .enter(s, |ts| {
            let data = ts.bytes(b"batched");
            for _ in 0..n {
                ch.send(ts, Outgoing::buffer(&data).unwrap()).unwrap();
            }
            drop(data);
            ts.switch(r, |tr| {
                for _ in 0..n {
                    drop(ch.recv(tr).unwrap());
                }
                tr.runtime().info(s).unwrap().pinned_exports
            })
            .unwrap()
        })
        .unwrap();
    let seen_back = rt.info(s).unwrap().pinned_exports;
    let counters = rt.counters().since(&before);
    ch.destroy().unwrap();
    rt.drain(s).unwrap();
    assert_clean(&rt);
    (seen_in_r, seen_back, counters)
}

#[test]
fn releases_for_an_owner_switched_out_of_wait_for_its_return() {
    // INV-RELEASE-BATCH: 100 views of `s` dropped in `r`, which `s` switched to: the 64th
    // enters `s` once for the first 64; the other 36 run when the thread takes `s` back.
    for strategy in [ReleaseStrategy::Switch, ReleaseStrategy::Adaptive] {
        let config = Config::default().release(strategy);
        let (waiting, back, c) = drop_views_switched_out_of_owner(config, 100);
        assert_eq!((waiting, back), (36, 0), "{strategy:?}");
        assert_eq!(
            (c.releases_batched, c.releases_switched, c.releases_deferred),
            (100, 1, 0),
            "{strategy:?}"
        );
    }
    // Off, or deferred: each release goes its strategy's way.
    let off = Config::default().batch_releases(false);
    let (waiting, back, c) = drop_views_switched_out_of_owner(off, 100);
    assert_eq!((waiting, back), (0, 0));
    assert_eq!((c.releases_batched, c.releases_switched), (0, 100));
    let deferred = Config::default().release(ReleaseStrategy::Deferred);
    let (waiting, back, c) = drop_views_switched_out_of_owner(deferred, 10);
    assert_eq!((waiting, back), (10, 10), "queued until the owner drains");
    assert_eq!((c.releases_batched, c.releases_deferred), (0, 10));
}

/// Sends `n` zero-copy items from `s`, enters `r` from outside and drops them there;
/// returns the owner's pinned exports seen in `r` after the last drop, and the counters of
/// the round (the entry included).
fn drop_views_in_another_interpreter(config: Config, n: usize) -> (usize, Counters) {
    let (rt, s, r, ch) = setup(config);
    rt.enter(s, |ts| {
        let data = ts.bytes(b"kept");
        for _ in 0..n {
            ch.send(ts, Outgoing::buffer(&data).unwrap()).unwrap();
        }
    })
    .unwrap();
    let before = rt.counters();
    let seen_in_r = rt
        .enter(r, |tr| {
            for _ in 0..n {
                drop(ch.recv(tr).unwrap());
            }
            tr.runtime().info(s).unwrap().pinned_exports
        })
        .unwrap();
    let counters = rt.counters().since(&before);
    assert_eq!(
        rt.info(s).unwrap().pinned_exports,
        0,
        "all released on leaving r"
    );
    ch.destroy().unwrap();
    assert_clean(&rt);
    (seen_in_r, counters)
}

#[test]
fn releases_for_an_owner_this_thread_does_not_hold_wait_until_it_lets_go() {
    // INV-RELEASE-BATCH: under `Switch`, views of `s` dropped in `r` entered from outside
    // wait until the thread lets go of `r`, which then enters `s` once for all of them; the
    // 64th enters `s` at once for the first 64.
    let (waiting, c) = drop_views_in_another_interpreter(Config::default(), 1);
    assert_eq!(waiting, 1, "kept while the thread holds r");
    assert_eq!((c.releases_batched, c.releases_switched), (1, 1));
    let (waiting, c) = drop_views_in_another_interpreter(Config::default(), 100);
    assert_eq!(waiting, 36);
    assert_eq!((c.releases_batched, c.releases_switched), (100, 2));
    // Under `Adaptive` (which may defer instead of entering), or with batching off, each
    // release goes its strategy's way at once.
    let adaptive = Config::default().release(ReleaseStrategy::Adaptive);
    let (waiting, c) = drop_views_in_another_interpreter(adaptive, 3);
    assert_eq!(waiting, 0);
    assert_eq!((c.releases_batched, c.releases_switched), (0, 3));
    let off = Config::default().batch_releases(false);
    let (waiting, c) = drop_views_in_another_interpreter(off, 3);
    assert_eq!(waiting, 0);
    assert_eq!((c.releases_batched, c.releases_switched), (0, 3));
}

#[test]
fn a_suspension_runs_the_releases_kept_until_the_thread_lets_go() {
    // INV-RELEASE-BATCH: letting go of `r` for a moment (`Token::suspend`, also under a
    // switch or a destroy) runs them before the closure.
    let (rt, s, r, ch) = setup(Config::default());
    send(&rt, s, &ch, Item::Buffer, |tok| tok.bytes(b"x"));
    send(&rt, s, &ch, Item::Object, |tok| tok.list(&[]));
    rt.enter(r, |tr| {
        drop(ch.recv(tr).unwrap());
        drop(ch.recv(tr).unwrap());
        assert_eq!(tr.runtime().info(s).unwrap().pinned_exports, 1);
        assert_eq!(tr.runtime().exports(s).unwrap().len(), 1);
        tr.suspend(|| {
            assert_eq!(rt.info(s).unwrap().pinned_exports, 0);
            assert!(rt.exports(s).unwrap().is_empty());
        });
        // Destroying the origin from `r` right after dropping its last proxy: the release
        // has run, so `Refuse` finds nothing held and nothing pending.
        send_from_switch(tr, s, &ch);
        drop(ch.recv(tr).unwrap());
        let report = tr.destroy(s).unwrap();
        assert_eq!((report.pending_releases, report.leaked_objects), (0, 0));
    })
    .unwrap();
    let c = rt.counters();
    assert_eq!(
        (c.releases_batched, c.releases_switched, c.releases_late),
        (3, 2, 0)
    );
    ch.destroy().unwrap();
    assert_clean(&rt);
}

/// Switches from the current interpreter to `s` and sends a new list on `ch` there.
fn send_from_switch(tok: &mut xinterp::Token<'_>, s: xinterp::InterpId, ch: &xinterp::Channel) {
    tok.switch(s, |ts| {
        ch.send(ts, Outgoing::object(&ts.list(&[]))).unwrap()
    })
    .unwrap();
}

#[test]
fn a_kept_release_whose_owner_is_destroyed_meanwhile_runs_late() {
    // INV-RELEASE-BATCH, INV-OWNER-DEATH: a proxy's release waits in the batch while another
    // thread destroys its origin under `Refuse` (a release on its way back does not block
    // it); the thread lets go of `r` and runs the release late. Nothing leaks.
    let (rt, s, r, ch) = setup(Config::default());
    send(&rt, s, &ch, Item::Object, |tok| tok.list(&[]));
    rt.enter(r, |tr| {
        drop(ch.recv(tr).unwrap());
        let other = tr.runtime().clone();
        let report = std::thread::spawn(move || other.destroy(s).unwrap())
            .join()
            .unwrap();
        assert_eq!((report.pending_releases, report.leaked_objects), (1, 0));
    })
    .unwrap();
    let c = rt.counters();
    assert_eq!((c.releases_batched, c.releases_late), (1, 1));
    ch.destroy().unwrap();
    assert_clean(&rt);
}

#[test]
fn a_batch_runs_when_the_thread_enters_its_owner_again() {
    // INV-RELEASE-BATCH: a view of `s` dropped in `r` waits for `s`; entering `s` again from
    // `r` (a second frame of `s` on this thread) runs it there.
    let (rt, s, r, ch) = setup(Config::default());
    rt.enter(s, |ts| {
        ch.send(ts, Outgoing::buffer(&ts.bytes(b"again")).unwrap())
            .unwrap();
        ts.switch(r, |tr| {
            drop(ch.recv(tr).unwrap());
            assert_eq!(tr.runtime().info(s).unwrap().pinned_exports, 1);
            tr.switch(s, |ts2| assert_eq!(ts2.info().pinned_exports, 0))
                .unwrap();
        })
        .unwrap();
    })
    .unwrap();
    let c = rt.counters();
    assert_eq!((c.releases_batched, c.releases_switched), (1, 0));
    ch.destroy().unwrap();
    assert_clean(&rt);
}

#[test]
fn an_adaptive_full_batch_does_not_wait_for_a_busy_owner() {
    // INV-RELEASE-BATCH: under `Adaptive`, the 64th release enters the owner only if it is
    // free; another thread holds `s` here, so all 64 wait until this thread takes `s` back.
    let (rt, s, r, ch) = setup(Config::default().release(ReleaseStrategy::Adaptive));
    rt.enter(s, |ts| {
        let data = ts.bytes(b"busy");
        for _ in 0..64 {
            ch.send(ts, Outgoing::buffer(&data).unwrap()).unwrap();
        }
        drop(data);
        ts.switch(r, |tr| {
            while_held(tr.runtime(), s, || {
                for _ in 0..64 {
                    drop(ch.recv(tr).unwrap());
                }
                let c = tr.runtime().counters();
                assert_eq!((c.releases_batched, c.releases_switched), (64, 0));
                assert_eq!(tr.runtime().info(s).unwrap().pinned_exports, 64);
            });
        })
        .unwrap();
        assert_eq!(ts.info().pinned_exports, 0, "run on the way back");
    })
    .unwrap();
    ch.destroy().unwrap();
    rt.drain(s).unwrap();
    assert_clean(&rt);
}

#[test]
fn an_origin_reference_given_back_from_a_switch_waits_in_the_batch() {
    // INV-RELEASE-BATCH: a proxy of an object of `s` dropped in `r`, which `s` switched to:
    // its origin reference goes back when the thread takes `s` back, not through an entry.
    let (rt, s, r, ch) = setup(Config::default());
    rt.enter(s, |ts| {
        ch.send(ts, Outgoing::object(&ts.list(&[]))).unwrap();
        ts.switch(r, |tr| {
            drop(ch.recv(tr).unwrap());
            let exports = tr.runtime().exports(s).unwrap();
            assert_eq!(exports.len(), 1, "the reference waits in the batch");
        })
        .unwrap();
        assert!(ts.runtime().exports(s).unwrap().is_empty());
    })
    .unwrap();
    let c = rt.counters();
    assert_eq!((c.releases_batched, c.releases_switched), (1, 0));
    ch.destroy().unwrap();
    assert_clean(&rt);
}

#[test]
fn an_unreceived_moved_graph_dropped_from_a_switch_goes_back_with_the_batch() {
    // INV-RELEASE-BATCH, INV-MOVE-EXCLUSIVE: a moved graph nobody received, dropped in `r`
    // (its channel destroyed there) while `s` is switched out of, is counted in `s` again
    // once the thread takes `s` back.
    let (rt, s, r, ch) = setup(Config::default());
    rt.enter(s, |ts| {
        let before = ts.info().live_objects;
        let graph = ts.list(&[ts.str("a"), ts.str("b")]);
        ch.send(ts, Outgoing::moved(graph).unwrap()).unwrap();
        assert_eq!(ts.info().live_objects, before, "moved out");
        let freed = ts.runtime().counters().objects_freed;
        ts.switch(r, |tr| {
            ch.destroy().unwrap();
            let now = tr.runtime().counters().objects_freed;
            assert_eq!(now, freed, "its return waits in the batch");
        })
        .unwrap();
        assert_eq!(
            ts.runtime().counters().objects_freed,
            freed + 3,
            "back, and freed"
        );
        assert_eq!(ts.info().live_objects, before);
    })
    .unwrap();
    let c = rt.counters();
    assert_eq!((c.releases_batched, c.releases_switched), (1, 0));
    assert_clean(&rt);
}

#[test]
fn releases_kept_while_letting_go_wait_for_the_same_loop() {
    // INV-RELEASE-BATCH, INV-RELEASE-BOUNDED: leaving `r` enters `s` for a proxy's release,
    // which frees a list holding 100 views of `t`'s bytes. Their releases are kept for `t`
    // past the 64th (the loop enters `t` next), not one suspension of `s` each.
    let rt = Runtime::with_config(Config::default().trace(true));
    let (s, r, t) = (
        rt.create().unwrap(),
        rt.create().unwrap(),
        rt.create().unwrap(),
    );
    let ch = rt.create_channel();
    rt.enter(t, |tt| {
        let data = tt.bytes(b"t");
        for _ in 0..100 {
            ch.send(tt, Outgoing::buffer(&data).unwrap()).unwrap();
        }
    })
    .unwrap();
    rt.enter(s, |ts| {
        let views: Vec<_> = (0..100).map(|_| ch.recv(ts).unwrap()).collect();
        ch.send(ts, Outgoing::object(&ts.list(&views))).unwrap();
    })
    .unwrap();
    let proxy = recv_owned(&rt, r, &ch);
    rt.take_trace();
    let before = rt.counters();
    rt.enter(r, move |_| drop(proxy)).unwrap();
    let c = rt.counters().since(&before);
    let trace = rt.take_trace();
    let holds = |id| trace.iter().filter(|e| e.interp == id && e.begin).count();
    let events = trace.len();
    assert_eq!((holds(r), holds(s), holds(t)), (1, 1, 1), "{events} events");
    assert_eq!((c.releases_batched, c.releases_switched), (101, 2));
    assert_eq!(rt.info(t).unwrap().pinned_exports, 0);
    ch.destroy().unwrap();
    assert_clean(&rt);
}
