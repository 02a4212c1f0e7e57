//! The findings of the first soundness review (`audit-1`: F1-F11, S2, and two found by
//! acceptance testing), each as the test that failed, deadlocked or was rejected by Miri
//! before its fix. The races among them (F3, F6) are loom models in `loom-tests/`; S1 and S3
//! were documentation and are fixed in `design/` and in a SAFETY comment.
//!
//! Two runtimes in one process share nothing: items, handles and messages of one are refused
//! by the other (INV-RUNTIME-OWN), and finalizing one from inside the other lets go of the
//! held interpreter first (INV-FINALIZE-SUSPENDS).

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{assert_clean, first_export_message, recv_owned, within};
use xinterp::{
    Channel, ChannelId, Config, End, ErrorKind, ObjKind, ObjectRef, Outgoing, OwnerDeath, Runtime,
};

/// F1: interpreter ids and (before the fix) export serials restarted in every runtime, so
/// runtime 1's first export had the identity-cache key of runtime 2's first export; a
/// runtime-1 item was accepted by runtime 2's channel and hit runtime 2's cached proxy
/// (INV-RUNTIME-OWN; the cache is keyed by the origin's state now, INV-IDENTITY-KEY).
#[test]
fn f1_an_item_of_another_runtime_is_refused() {
    let rt1 = Runtime::new();
    let rt2 = Runtime::new();
    let o1 = rt1.create().unwrap();
    let o2 = rt2.create().unwrap();
    let x = rt2.create().unwrap();
    assert_eq!(o1.get(), o2.get(), "ids restart in every runtime");
    let c2 = rt2.create_channel();
    rt2.enter(o2, |tok| {
        let l = tok.list(&[tok.str("runtime 2")]);
        c2.send(tok, Outgoing::object(&l)).unwrap();
    })
    .unwrap();
    let foreign = rt1
        .enter(o1, |tok| {
            [
                Outgoing::object(&tok.list(&[tok.str("runtime 1")])),
                Outgoing::buffer(&tok.bytes(b"runtime 1")).unwrap(),
                Outgoing::bytes(&tok.bytes(b"runtime 1")).unwrap(),
            ]
        })
        .unwrap();
    rt2.enter(x, |tok| {
        let p2 = c2.recv(tok).unwrap();
        assert_eq!(p2.repr().unwrap(), "['runtime 2']");
        for item in foreign {
            let err = c2.send(tok, item).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WrongRuntime, "{err}");
        }
        assert_eq!(c2.recv(tok).unwrap_err().kind(), ErrorKind::ChannelEmpty);
    })
    .unwrap();
    // The refused items were released in their own runtime.
    assert_clean(&rt1);
    assert_clean(&rt2);
}

/// F1, the same collision reached through bytes: a message carries its runtime, so a
/// runtime-1 message resolved in runtime 2 is refused (INV-RUNTIME-OWN); and export serials
/// are unique in the process, so even with runtime 2's id written over it, it names no export
/// there and nothing is dereferenced. Runtime 2's cached proxy is untouched
/// (INV-IDENTITY-KEY).
#[test]
fn f1_a_message_of_another_runtime_is_refused() {
    let rt1 = Runtime::new();
    let rt2 = Runtime::new();
    let (o1, o2, x) = (
        rt1.create().unwrap(),
        rt2.create().unwrap(),
        rt2.create().unwrap(),
    );
    assert_eq!(o1.get(), o2.get(), "ids restart in every runtime");
    let c1 = rt1.create_channel();
    let c2 = rt2.create_channel();
    let message_of = |rt: &Runtime, o, ch: &Channel| {
        rt.enter(o, |tok| {
            let l = tok.list(&[]);
            ch.send(tok, Outgoing::object(&l)).unwrap();
            first_export_message(tok.runtime(), o, l.id() as u64)
        })
        .unwrap()
    };
    let m1 = message_of(&rt1, o1, &c1);
    let m2 = message_of(&rt2, o2, &c2);
    assert_ne!(m1.serial, m2.serial, "serials are unique in the process");
    rt2.enter(x, |tok| {
        let p2 = tok.resolve_object(&m2.encode()).unwrap();
        let err = tok.resolve_object(&m1.encode()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongRuntime, "{err}");
        let disguised = ObjectRef {
            runtime: rt2.id(),
            ..m1
        };
        let err = tok.resolve_object(&disguised.encode()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidMessage, "{err}");
        assert!(
            c2.recv(tok).unwrap().is(&p2),
            "the cache still maps to runtime 2's"
        );
    })
    .unwrap();
    c1.close(xinterp::Close::Force).unwrap();
    assert_clean(&rt1);
    assert_clean(&rt2);
}

/// F1: a received item and an owned handle of one runtime are refused by the other
/// (INV-RUNTIME-OWN).
#[test]
fn f1_incoming_items_and_handles_of_another_runtime_are_refused() {
    let rt1 = Runtime::new();
    let rt2 = Runtime::new();
    let (o1, x) = (rt1.create().unwrap(), rt2.create().unwrap());
    let c1 = rt1.create_channel();
    let (incoming, handle) = rt1
        .enter(o1, |tok| {
            let b = tok.bytes(b"runtime 1");
            c1.send(tok, Outgoing::buffer(&b).unwrap()).unwrap();
            let b = b.unbind();
            (c1.recv_wait(tok, None).unwrap(), b)
        })
        .unwrap();
    rt2.enter(x, |tok| {
        let err = incoming.into_obj(tok).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongRuntime, "{err}");
        let err = handle.bind(tok).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WrongRuntime, "{err}");
    })
    .unwrap();
    drop(handle);
    assert_clean(&rt1);
    assert_clean(&rt2);
}

/// F2 (a): runtime 2's last handle dropped inside runtime 1's main; a pending call of
/// runtime 2's final drain lets go of its interpreter and enters runtime 1's main. Before the
/// fix the finalizing thread still held runtime 1's main, and waited for itself
/// (INV-FINALIZE-SUSPENDS).
#[test]
fn f2_finalizing_a_runtime_inside_another_runtimes_interpreter_lets_go_of_it() {
    within(10, "dropping runtime 2 inside runtime 1's main", || {
        let rt1 = Runtime::new();
        let rt2 = Runtime::new();
        let x = rt1.main();
        let rt1c = rt1.clone();
        let (ran_tx, ran_rx) = mpsc::channel();
        rt2.call_soon(rt2.main(), move |tok| {
            let entered = tok.suspend(|| rt1c.enter(x, |t| t.id()));
            ran_tx.send(entered.map_err(|e| e.kind())).unwrap();
        })
        .unwrap();
        rt1.enter(x, move |tok| {
            drop(rt2);
            // Taken back after the finalization.
            assert_eq!(tok.int(1).repr().unwrap(), "1");
        })
        .unwrap();
        assert_eq!(ran_rx.recv().unwrap(), Ok(x));
        assert_clean(&rt1);
    });
}

/// F2 (b): the same without a user `suspend`: a buffer item of runtime 1 dropped by a
/// pending call of runtime 2's final drain is released into its owner, which the finalizing
/// thread held (INV-FINALIZE-SUSPENDS): by `Switch`, or, batched, when the thread takes the
/// owner back (INV-RELEASE-BATCH).
#[test]
fn f2_a_release_into_the_interpreter_held_while_finalizing_does_not_wait_for_itself() {
    within(
        10,
        "dropping runtime 2 inside the owner of its item",
        || {
            for batched in [false, true] {
                let rt1 = Runtime::with_config(Config::default().batch_releases(batched));
                let rt2 = Runtime::new();
                let sub = rt1.create().unwrap();
                let item = rt1
                    .enter(sub, |tok| Outgoing::buffer(&tok.bytes(b"pinned")).unwrap())
                    .unwrap();
                rt2.call_soon(rt2.main(), move |_tok| drop(item)).unwrap();
                rt1.enter(sub, move |_tok| drop(rt2)).unwrap();
                assert_clean(&rt1);
                let c = rt1.counters();
                assert_eq!(
                    (c.releases_switched, c.releases_batched),
                    if batched { (0, 1) } else { (1, 0) }
                );
            }
        },
    );
}

/// F4: a forwarded call into another runtime used to enter it with an uncounted handle and
/// drain its inbox, where a pending call dropped that runtime's last handle: `finalize_all`
/// then spun forever on this thread's own registration. Cross-runtime items are refused now
/// (so no proxy reaches into another runtime), and a forwarded call runs no pending call
/// (F8): the handle in the origin's inbox waits for the origin's next ordinary entry.
#[test]
fn f4_no_proxy_reaches_into_another_runtime() {
    within(10, "a forwarded call into another runtime", || {
        let rt1 = Runtime::new();
        let rt2 = Runtime::new();
        let o1 = rt1.create().unwrap();
        let x = rt2.create().unwrap();
        let c2 = rt2.create_channel();
        let item = rt1
            .enter(o1, |tok| Outgoing::object(&tok.list(&[])))
            .unwrap();
        let keep = rt1.clone();
        rt1.call_soon(o1, move |_| drop(keep)).unwrap();
        rt2.enter(x, |tok| {
            let err = c2.send(tok, item).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WrongRuntime);
            assert_eq!(c2.recv(tok).unwrap_err().kind(), ErrorKind::ChannelEmpty);
        })
        .unwrap();
        // The refused item's release entered o1 without running its pending call.
        assert_eq!(rt1.info(o1).unwrap().inbox_depth, 1);
        assert_eq!(rt1.drain(o1).unwrap(), 1);
        assert_clean(&rt1);
        assert_clean(&rt2);
    });
}

/// F5: in the Miri and loom builds the channel registry's closure method dropped a refused
/// item under the map's mutex; its `Switch` release waited for the owner, whose holder
/// waited for the map (Miri: "the evaluated program deadlocked"). The registry now only
/// clones channels out.
#[test]
fn f5_an_item_refused_for_a_missing_channel_is_dropped_outside_every_lock() {
    let rt = Runtime::new(); // Switch
    let o = rt.create().unwrap();
    let r = rt.create().unwrap();
    let live = rt.create_channel();
    let item = rt
        .enter(o, |tok| Outgoing::buffer(&tok.bytes(b"x")).unwrap())
        .unwrap();
    let (held_tx, held_rx) = mpsc::channel();
    let rt2 = rt.clone();
    let holder = std::thread::spawn(move || {
        rt2.enter(o, |tok| {
            held_tx.send(()).unwrap();
            // Let the other thread reach the registry and block on `o`.
            std::thread::sleep(Duration::from_millis(if cfg!(miri) { 50 } else { 300 }));
            let _ = live.recv(tok); // needs the channel registry
        })
        .unwrap();
    });
    held_rx.recv().unwrap();
    rt.enter(r, |tok| {
        let err = rt.channel(ChannelId::new(999)).send(tok, item).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ChannelNotFound);
    })
    .unwrap();
    holder.join().unwrap();
    assert_clean(&rt);
}

/// F7: an object item made by a pending call of `s`'s final drain (after `Refuse` had let the
/// destroy through) and sent later from another interpreter used to give a live proxy of
/// the destroyed `s`. The export table closes when the destroy begins: the item is dead
/// (INV-EXPORTS-CLOSED).
#[test]
fn f7_an_item_made_in_the_final_drain_is_dead() {
    let rt = Runtime::new(); // Refuse
    let (s, r) = (rt.create().unwrap(), rt.create().unwrap());
    let ch = rt.create_channel();
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot2 = slot.clone();
    rt.call_soon(s, move |tok| {
        *slot2.lock().unwrap() = Some(Outgoing::object(&tok.list(&[])));
    })
    .unwrap();
    let report = rt.destroy(s).unwrap();
    assert_eq!(report.leaked_objects, 0, "the dead export pins nothing");
    let item = slot.lock().unwrap().take().unwrap();
    rt.enter(r, |tok| {
        ch.send(tok, item).unwrap();
        let err = ch.recv(tok).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InterpreterGone, "{err}");
    })
    .unwrap();
    let c = rt.counters();
    assert_eq!(c.origin_refs_taken, 0, "nothing was counted: {c:?}");
    assert_clean(&rt);
}

/// F8: a forwarded call entered the origin with an ordinary entry, which runs the origin's
/// pending calls; one that panicked unwound into the receiver's `len()`. Forwarded calls
/// run only their operation now; the pending call runs at the origin's next entry
/// (INV-PROXY-PANIC).
#[test]
fn f8_a_panicking_pending_call_of_the_origin_stays_out_of_a_proxy_call() {
    let rt = Runtime::new();
    let (s, r) = (rt.create().unwrap(), rt.create().unwrap());
    let ch = rt.create_channel();
    rt.enter(s, |tok| {
        ch.send(tok, Outgoing::object(&tok.list(&[]))).unwrap()
    })
    .unwrap();
    let proxy = recv_owned(&rt, r, &ch);
    rt.call_soon(s, |_| panic!("a pending call of the origin"))
        .unwrap();
    let len = rt
        .enter(r, |tok| {
            proxy.bind(tok).unwrap().len().map_err(|e| e.kind())
        })
        .unwrap();
    assert_eq!(len, Ok(0));
    assert_eq!(
        rt.info(s).unwrap().inbox_depth,
        1,
        "still waiting for s's next entry"
    );
    // The panic happens where the call was queued for: in an entry of s.
    let entered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.drain(s)));
    assert!(entered.is_err());
    drop(proxy);
    assert_clean(&rt);
}

/// F9: `id()` of a proxy with `proxy_id_is_origin` reported the origin object's address
/// after an `Invalidate` destroy had freed it, so a new object could have the same id as
/// the live proxy. A dead proxy reports its own address (INV-PROXY-ID).
#[test]
fn f9_a_dead_proxy_reports_an_id_no_live_object_has() {
    let rt = Runtime::with_config(
        Config::default()
            .owner_death(OwnerDeath::Invalidate)
            .proxy_id_is_origin(true),
    );
    let (s, r) = (rt.create().unwrap(), rt.create().unwrap());
    let ch = rt.create_channel();
    let origin_id = rt
        .enter(s, |tok| {
            let l = tok.list(&[]);
            ch.send(tok, Outgoing::object(&l)).unwrap();
            l.id()
        })
        .unwrap();
    let proxy = recv_owned(&rt, r, &ch);
    let live_id = rt.enter(r, |tok| proxy.bind(tok).unwrap().id()).unwrap();
    assert_eq!(
        live_id, origin_id,
        "while the origin lives, the origin's id"
    );
    let report = rt.destroy(s).unwrap();
    assert_eq!(report.leaked_objects, 0, "the origin list was freed");
    rt.enter(r, |tok| {
        let proxy = proxy.bind(tok).unwrap();
        let id = proxy.id();
        assert_eq!(id, proxy.as_raw().addr(), "a dead proxy's own address");
        let objs: Vec<_> = (0..64).map(|_| tok.list(&[])).collect();
        assert!(
            objs.iter().all(|o| o.id() != id),
            "no live object shares it"
        );
    })
    .unwrap();
    drop(proxy);
    assert_clean(&rt);
}

/// F10: runtime finalization took the interpreters in hash order; main is finalized last.
#[test]
fn f10_runtime_finalization_destroys_main_last() {
    for _ in 0..20 {
        let rt = Runtime::new();
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut ids = vec![rt.main()];
        for _ in 0..6 {
            ids.push(rt.create().unwrap());
        }
        for &id in &ids {
            let order = order.clone();
            rt.call_soon(id, move |tok| order.lock().unwrap().push(tok.id()))
                .unwrap();
        }
        drop(rt); // each final drain runs its pending call
        let order = order.lock().unwrap();
        let mut expected = ids[1..].to_vec();
        expected.push(ids[0]);
        assert_eq!(*order, expected, "creation order, main last");
    }
}

/// F11: an export made after `invalidate` counted a reference taken that no release ever
/// balanced. Only references the export table counts are counted, both ways (INV-LEDGER).
#[test]
fn f11_origin_reference_counters_balance_after_an_invalidate() {
    let rt = Runtime::with_config(Config::default().owner_death(OwnerDeath::Invalidate));
    let (s, r) = (rt.create().unwrap(), rt.create().unwrap());
    let ch = rt.create_channel();
    rt.enter(s, |tok| {
        ch.send(tok, Outgoing::object(&tok.list(&[]))).unwrap()
    })
    .unwrap();
    let proxy = recv_owned(&rt, r, &ch);
    rt.call_soon(s, |tok| drop(Outgoing::object(&tok.list(&[]))))
        .unwrap();
    rt.destroy(s).unwrap();
    drop(proxy);
    assert_clean(&rt);
    let c = rt.counters();
    assert_eq!(c.origin_refs_taken, 1, "{c:?}");
    assert_eq!(c.origin_refs_taken, c.origin_refs_released, "{c:?}");
}

/// Acceptance finding: a send or a receive that failed on a closed channel still associated
/// the interpreter with that end (CPython associates only on success), so the channel
/// listed it and never closed when its real users released their ends
/// (INV-CHAN-ASSOC-SUCCESS).
#[test]
fn a_failed_send_or_receive_associates_nothing() {
    let rt = Runtime::new();
    let ids: Vec<_> = (0..4).map(|_| rt.create().unwrap()).collect();
    let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    let ch = rt.create_channel();
    let send = |id, data: &'static [u8]| {
        rt.enter(id, |tok| {
            ch.send(tok, Outgoing::bytes(&tok.bytes(data)).unwrap())
                .map_err(|e| e.kind())
        })
        .unwrap()
    };
    send(a, b"x").unwrap();
    send(a, b"y").unwrap();
    ch.close(xinterp::Close::AfterDrain).unwrap();
    // c's send fails (the channel is closing): c is not associated with the send end.
    assert_eq!(send(c, b"z"), Err(ErrorKind::ChannelClosed));
    assert_eq!(ch.info().unwrap().send_interps, vec![a]);
    rt.enter(b, |tok| {
        assert_eq!(ch.recv(tok).unwrap().to_bytes().unwrap(), b"x")
    })
    .unwrap();
    // The real users let go: the channel closes (c's failed send keeps nothing open).
    rt.enter(a, |tok| ch.release(tok, End::Send).unwrap())
        .unwrap();
    rt.enter(b, |tok| ch.release(tok, End::Recv).unwrap())
        .unwrap();
    let info = ch.info().unwrap();
    assert_eq!(info.status, xinterp::ChannelStatus::Closed, "{info:?}");
    assert_eq!(info.count, 0, "the item nobody can receive was released");
    // A receive on the closed channel fails and associates nothing either.
    let err = rt
        .enter(d, |tok| ch.recv(tok).map(drop))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ChannelClosed);
    let info = ch.info().unwrap();
    assert!(
        info.send_interps.is_empty() && info.recv_interps.is_empty(),
        "{info:?}"
    );
    assert_clean(&rt);
}

/// The other half of the association rule: a receive on an open channel associates the
/// receiver even when it finds nothing (as CPython does, INV-CHAN-ASSOC-SUCCESS).
#[test]
fn a_receive_on_an_empty_open_channel_associates_the_receiver() {
    let rt = Runtime::new();
    let r = rt.create().unwrap();
    let ch = rt.create_channel();
    rt.enter(r, |tok| {
        assert_eq!(ch.recv(tok).unwrap_err().kind(), ErrorKind::ChannelEmpty);
        let default = tok.none();
        assert_eq!(ch.recv_or(tok, default).unwrap().kind(), ObjKind::None);
    })
    .unwrap();
    assert_eq!(
        ch.interpreters(End::Recv).unwrap(),
        vec![r],
        "as in CPython, an empty channel's receiver is associated"
    );
}

/// The object-state check (INV-OWN-LOCKED) must not fire on an interpreter's own identity
/// cache when the interpreter was created from inside another one: the cache is made with
/// the interpreter's state by the creating thread, not by a thread holding it.
#[test]
fn an_interpreter_created_inside_another_uses_its_identity_cache() {
    let rt = Runtime::new();
    let s = rt.create().unwrap();
    let r = rt
        .enter(rt.main(), |tok| tok.runtime().create().unwrap())
        .unwrap();
    let ch = rt.create_channel();
    rt.enter(s, |tok| {
        let l = tok.list(&[]);
        ch.send(tok, Outgoing::object(&l)).unwrap();
        ch.send(tok, Outgoing::object(&l)).unwrap();
    })
    .unwrap();
    rt.enter(r, |tok| {
        let first = ch.recv(tok).unwrap();
        assert!(
            ch.recv(tok).unwrap().is(&first),
            "one proxy per origin object"
        );
    })
    .unwrap();
    assert_clean(&rt);
}
