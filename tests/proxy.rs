//! RemoteProxy: object pointers over the MemChannel, forwarding, the membrane, identity
//! caches, owner death, message validation, and the ledger of origin references.

mod common;
use common::{assert_clean, first_export_message, recv_owned, send_kept, setup, Item};

use xinterp::{
    ClassDef, Close, Config, Error, ErrorKind, InterpId, Obj, ObjKind, ObjectRef, Outgoing,
    OwnerDeath, Result, Runtime, MESSAGE_LEN,
};

fn counter_init<'t>(this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    this.setattr("n", &this.token().int(0))?;
    Ok(this.token().none())
}

fn counter_bump<'t>(this: &Obj<'t>, args: &[Obj<'t>]) -> Result<Obj<'t>> {
    let by = args.first().map_or(Ok(1), Obj::as_int)?;
    let n = this.getattr("n")?.as_int()? + by;
    this.setattr("n", &this.token().int(n))?;
    Ok(this.token().int(n))
}

fn counter_fail<'t>(_this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    Err(Error::new(ErrorKind::ValueError, "counter refused"))
}

/// Appends `self.n` to the list it is given (a proxy, when the list lives elsewhere).
fn counter_report<'t>(this: &Obj<'t>, args: &[Obj<'t>]) -> Result<Obj<'t>> {
    args[0].call_method("append", &[this.getattr("n")?])?;
    Ok(this.token().none())
}

fn counter_items<'t>(this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    let tok = this.token();
    Ok(tok.list(&[tok.int(1), tok.str("two"), tok.list(&[])]))
}

/// The receiver's reference count, seen from inside the method.
fn counter_refs<'t>(this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    Ok(this.token().int(this.refcount() as i64))
}

fn counter_panic<'t>(_this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    panic!("a user method lost its mind");
}

fn counter_class() -> ClassDef {
    ClassDef::new("Counter")
        .method("panic", counter_panic)
        .method("refs", counter_refs)
        .method("__init__", counter_init)
        .method("bump", counter_bump)
        .method("fail", counter_fail)
        .method("report", counter_report)
        .method("items", counter_items)
}

/// Sends a new Counter from `s`; returns an owned handle to it in `s`.
fn send_counter(rt: &Runtime, s: InterpId, ch: &xinterp::Channel) -> xinterp::OwnedObj {
    send_kept(rt, s, ch, Item::Object, |tok| {
        tok.class(counter_class()).call(&[]).unwrap()
    })
}

#[test]
fn a_received_object_is_a_proxy_that_forwards() {
    // INV-PROXY-ONE-REF
    let (rt, s, r, ch) = setup(Config::default());
    let counter = send_counter(&rt, s, &ch);
    let exports = rt.exports(s).unwrap();
    assert_eq!(
        (exports.len(), exports[0].in_flight, exports[0].refs),
        (1, 1, 1)
    );
    rt.enter(r, |tok| {
        let proxy = ch.recv(tok).unwrap();
        assert_eq!(proxy.kind(), ObjKind::Proxy);
        assert_eq!(proxy.type_name(), "xinterp.RemoteProxy");
        assert_eq!(proxy.proxy_origin(), Some(s));
        assert_eq!(
            proxy
                .call_method("bump", &[tok.int(5)])
                .unwrap()
                .as_int()
                .unwrap(),
            5
        );
        assert_eq!(proxy.getattr("n").unwrap().as_int().unwrap(), 5);
        proxy.setattr("n", &tok.int(40)).unwrap();
        let bump = proxy.getattr("bump").unwrap();
        assert_eq!(
            bump.kind(),
            ObjKind::Proxy,
            "a bound method stays in its origin"
        );
        assert_eq!(bump.call(&[tok.int(2)]).unwrap().as_int().unwrap(), 42);
        assert!(proxy.repr().unwrap().starts_with("<Counter object at 0x"));
        assert_eq!(proxy.str().unwrap(), proxy.repr().unwrap());
    })
    .unwrap();
    let n = rt.enter(s, |tok| {
        counter
            .bind(tok)
            .unwrap()
            .getattr("n")
            .unwrap()
            .as_int()
            .unwrap()
    });
    assert_eq!(n.unwrap(), 42, "the changes happened in the origin");
    drop(counter);
    assert_clean(&rt);
}

#[test]
fn cloning_and_dropping_a_proxy_never_switches() {
    // INV-PROXY-ONE-REF: only the first and the last local reference touch the origin.
    let (rt, s, r, ch) = setup(Config::default());
    drop(send_counter(&rt, s, &ch));
    rt.enter(r, |tok| {
        let proxy = ch.recv(tok).unwrap();
        let before = tok.runtime().counters();
        let clones: Vec<Obj<'_>> = (0..1000).map(|_| proxy.clone()).collect();
        assert_eq!(proxy.refcount(), 1001);
        drop(clones);
        let delta = tok.runtime().counters().since(&before);
        assert_eq!(
            (
                delta.switches,
                delta.releases_switched,
                delta.forwarded_calls
            ),
            (0, 0, 0)
        );
    })
    .unwrap();
    // The last reference went: one release, in the origin.
    let c = rt.counters();
    assert_eq!(c.releases_switched, 1);
    assert_eq!((c.origin_refs_taken, c.origin_refs_released), (1, 1));
    assert_clean(&rt);
}

#[test]
fn the_membrane_copies_immutables_and_proxies_the_rest() {
    // INV-MEMBRANE
    let (rt, s, r, ch) = setup(Config::default());
    drop(send_counter(&rt, s, &ch));
    rt.enter(r, |tok| {
        let proxy = ch.recv(tok).unwrap();
        let items = proxy.call_method("items", &[]).unwrap();
        assert_eq!(items.kind(), ObjKind::Proxy, "a list stays in its origin");
        let all = items.iterate().unwrap();
        assert_eq!(all[0].kind(), ObjKind::Int);
        assert_eq!(all[1].to_rust_string().unwrap(), "two");
        assert_eq!(all[2].kind(), ObjKind::Proxy);
        assert_eq!(items.len().unwrap(), 3);
        assert_eq!(
            items
                .getitem(&tok.int(-2))
                .unwrap()
                .to_rust_string()
                .unwrap(),
            "two"
        );
        items
            .setitem(&tok.int(0), &tok.tuple(&[tok.int(7), tok.none()]))
            .unwrap();
        assert_eq!(
            items.getitem(&tok.int(0)).unwrap().kind(),
            ObjKind::Tuple,
            "copied back"
        );
        // A local list crosses as a proxy: the origin appends to it through that proxy,
        // which forwards back here.
        let local = tok.list(&[]);
        proxy
            .call_method("report", std::slice::from_ref(&local))
            .unwrap();
        assert_eq!(local.repr().unwrap(), "[0]");
    })
    .unwrap();
    assert_clean(&rt);
}

#[test]
fn a_forwarded_call_pins_its_target() {
    // INV-PROXY-CALL-PINS: inside a forwarded call the target counts two references: the
    // export entry's and the call's own, taken in the origin for the call's duration, which
    // the method gets as its `this` (a method call makes no bound method). No other handle
    // to it exists.
    let (rt, s, r, ch) = setup(Config::default());
    drop(send_counter(&rt, s, &ch));
    // The handle's decref waits in s's inbox; a forwarded call does not run it
    // (INV-PROXY-PANIC), an ordinary entry does.
    assert_eq!(rt.drain(s).unwrap(), 1);
    rt.enter(r, |tok| {
        let proxy = ch.recv(tok).unwrap();
        assert_eq!(proxy.call_method("refs", &[]).unwrap().as_int().unwrap(), 2);
        // Nothing of the call stays behind.
        let exports = tok.runtime().exports(s).unwrap();
        assert_eq!(
            (exports[0].refs, exports[0].proxies),
            (1, 1),
            "only the proxy's"
        );
    })
    .unwrap();
    assert_clean(&rt);
}

#[test]
fn errors_cross_typed() {
    let (rt, s, r, ch) = setup(Config::default());
    drop(send_counter(&rt, s, &ch));
    rt.enter(r, |tok| {
        let proxy = ch.recv(tok).unwrap();
        let err = proxy.call_method("fail", &[]).unwrap_err();
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::ValueError, "counter refused")
        );
        let err = proxy.getattr("missing").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AttributeError);
        assert_eq!(err.message(), "'Counter' object has no attribute 'missing'");
    })
    .unwrap();
    assert_clean(&rt);
}

#[test]
fn a_proxy_sent_home_unwraps_to_the_original() {
    // INV-MEMBRANE: A -> B -> A gives A its own object back.
    let (rt, s, r, ch) = setup(Config::default());
    let back = rt.create_channel();
    let counter = send_counter(&rt, s, &ch);
    rt.enter(r, |tok| {
        let proxy = ch.recv(tok).unwrap();
        back.send(tok, Outgoing::object(&proxy)).unwrap();
    })
    .unwrap();
    rt.enter(s, |tok| {
        let home = back.recv(tok).unwrap();
        assert!(
            home.is(&counter.bind(tok).unwrap()),
            "the original, not a proxy"
        );
    })
    .unwrap();
    drop(counter);
    assert_clean(&rt);
}

#[test]
fn a_proxy_forwarded_to_a_third_interpreter_names_the_origin() {
    // INV-MEMBRANE: A -> B -> C gives C a proxy of A's object, not of B's proxy.
    let (rt, s, r, ch) = setup(Config::default());
    let third = rt.create().unwrap();
    let onward = rt.create_channel();
    drop(send_counter(&rt, s, &ch));
    rt.enter(r, |tok| {
        let proxy = ch.recv(tok).unwrap();
        onward.send(tok, Outgoing::object(&proxy)).unwrap();
    })
    .unwrap();
    rt.enter(third, |tok| {
        let proxy = onward.recv(tok).unwrap();
        assert_eq!(proxy.proxy_origin(), Some(s));
        assert_eq!(proxy.call_method("bump", &[]).unwrap().as_int().unwrap(), 1);
    })
    .unwrap();
    assert!(rt.exports(r).unwrap().is_empty(), "B exported nothing");
    assert_clean(&rt);
}

#[test]
fn the_identity_cache_gives_one_proxy_per_object() {
    // INV-IDENTITY-ONE
    for cache in [true, false] {
        let (rt, s, r, ch) = setup(Config::default().identity_cache(cache));
        let counter = rt
            .enter(s, |tok| {
                let counter = tok.class(counter_class()).call(&[]).unwrap();
                ch.send(tok, Outgoing::object(&counter)).unwrap();
                ch.send(tok, Outgoing::object(&counter)).unwrap();
                counter.unbind()
            })
            .unwrap();
        rt.enter(r, |tok| {
            let (a, b) = (ch.recv(tok).unwrap(), ch.recv(tok).unwrap());
            assert_eq!(a.is(&b), cache, "cache {cache}");
            assert!(
                a.eq(&b).unwrap(),
                "equal either way (compared in the origin)"
            );
            assert_eq!(a.hash().unwrap(), b.hash().unwrap());
        })
        .unwrap();
        let c = rt.counters();
        if cache {
            assert_eq!(
                (c.identity_misses, c.identity_hits, c.proxies_created),
                (1, 1, 1)
            );
        } else {
            assert_eq!(
                (c.identity_misses, c.identity_hits, c.proxies_created),
                (0, 0, 2)
            );
        }
        drop(counter);
        assert_clean(&rt);
    }
}

#[test]
fn a_freed_proxy_is_never_resurrected_by_the_cache() {
    let (rt, s, r, ch) = setup(Config::default());
    let counter = send_counter(&rt, s, &ch);
    let first_id = rt.enter(r, |tok| ch.recv(tok).unwrap().id()).unwrap();
    rt.enter(s, |tok| {
        ch.send(tok, Outgoing::object(&counter.bind(tok).unwrap()))
            .unwrap()
    })
    .unwrap();
    rt.enter(r, |tok| {
        let again = ch.recv(tok).unwrap();
        assert_eq!(again.kind(), ObjKind::Proxy);
        assert_eq!(again.getattr("n").unwrap().as_int().unwrap(), 0);
        let _ = first_id; // the first proxy was freed; a new one stands in (maybe same address)
    })
    .unwrap();
    assert_eq!(rt.counters().identity_misses, 2);
    drop(counter);
    assert_clean(&rt);
}

#[test]
fn id_can_report_the_origin() {
    let (rt, s, r, ch) = setup(Config::default().proxy_id_is_origin(true));
    let counter = send_counter(&rt, s, &ch);
    let origin_id = rt.enter(s, |tok| counter.bind(tok).unwrap().id()).unwrap();
    let proxy_id = rt.enter(r, |tok| ch.recv(tok).unwrap().id()).unwrap();
    assert_eq!(proxy_id, origin_id);
    drop(counter);
    assert_clean(&rt);
}

#[test]
fn a_proxy_of_a_bytearray_exports_a_remote_view() {
    let (rt, s, r, ch) = setup(Config::default());
    let (array, at) = rt
        .enter(s, |tok| {
            let array = tok.bytearray(b"remote");
            ch.send(tok, Outgoing::object(&array)).unwrap();
            let at = array.get_buffer().unwrap().as_ptr() as usize;
            (array.unbind(), at)
        })
        .unwrap();
    rt.enter(r, |tok| {
        let proxy = ch.recv(tok).unwrap();
        let view = proxy.memoryview().unwrap();
        let buffer = view.get_buffer().unwrap();
        assert_eq!(buffer.as_ptr() as usize, at, "zero copy through the proxy");
        buffer.set(0, b'R').unwrap();
        assert_eq!(proxy.to_bytes().unwrap(), b"Remote");
    })
    .unwrap();
    drop(array);
    assert_clean(&rt);
}

#[test]
fn destroying_an_owner_with_proxies_out_is_refused_by_default() {
    // INV-OWNER-DEATH
    let (rt, s, r, ch) = setup(Config::default());
    drop(send_counter(&rt, s, &ch));
    let err = rt.destroy(s).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InterpreterBusy);
    let serial = rt.exports(s).unwrap()[0].serial;
    let expected =
        format!("export {serial} (a Counter): 0 proxy reference(s) held by [], 1 in flight");
    assert!(err.message().contains(&expected), "{err}");
    let proxy = recv_owned(&rt, r, &ch);
    let err = rt.destroy(s).unwrap_err();
    let expected = format!("1 proxy reference(s) held by [interpreter {r} (1)], 0 in flight");
    assert!(err.message().contains(&expected), "{err}");
    assert_eq!(rt.exports(s).unwrap()[0].holders, vec![(r, 1)]);
    rt.enter(r, move |_| drop(proxy)).unwrap();
    rt.destroy(s).unwrap();
    assert_clean(&rt);
}

#[test]
fn invalidate_turns_proxies_dead() {
    // INV-OWNER-DEATH
    let (rt, s, r, ch) = setup(Config::default().owner_death(OwnerDeath::Invalidate));
    drop(send_counter(&rt, s, &ch));
    let proxy = recv_owned(&rt, r, &ch);
    let report = rt.destroy(s).unwrap();
    assert_eq!((report.invalidated_exports, report.leaked_objects), (1, 0));
    rt.enter(r, |tok| {
        let proxy = proxy.bind(tok).unwrap();
        let err = proxy.call_method("bump", &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InterpreterGone);
        assert_eq!(proxy.repr().unwrap_err().kind(), ErrorKind::InterpreterGone);
    })
    .unwrap();
    let before = rt.counters();
    rt.enter(r, move |_| drop(proxy)).unwrap();
    assert_eq!(
        rt.counters().since(&before).releases_late,
        0,
        "nothing left to release"
    );
    assert_clean(&rt);
}

#[test]
fn an_object_arriving_after_its_origin_was_invalidated_is_refused_even_when_cached() {
    // INV-OWNER-DEATH, INV-MSG-VALIDATE: the arrival is checked in the critical section that
    // would count it as the proxy's, on an identity-cache hit too.
    let (rt, s, r, ch) = setup(Config::default().owner_death(OwnerDeath::Invalidate));
    let t = rt.create().unwrap();
    let forwarded = rt.create_channel();
    rt.enter(s, |tok| {
        let list = tok.list(&[]);
        ch.send(tok, Outgoing::object(&list)).unwrap();
        ch.send(tok, Outgoing::object(&list)).unwrap();
    })
    .unwrap();
    // `r`'s proxy, in its identity cache; `t` sends its own proxy on, which sends a second
    // reference to the list (in flight, and not `s`'s item, so `s`'s destroy leaves it queued).
    let held = recv_owned(&rt, r, &ch);
    rt.enter(t, |tok| {
        let proxy = ch.recv(tok).unwrap();
        forwarded.send(tok, Outgoing::object(&proxy)).unwrap();
    })
    .unwrap();
    let report = rt.destroy(s).unwrap();
    assert_eq!((report.invalidated_exports, report.leaked_objects), (1, 0));
    rt.enter(r, |tok| {
        let err = forwarded.recv(tok).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InterpreterGone, "{err}");
        let held = held.bind(tok).unwrap();
        assert_eq!(held.len().unwrap_err().kind(), ErrorKind::InterpreterGone);
    })
    .unwrap();
    assert_eq!(rt.counters().identity_hits, 0);
    rt.enter(r, move |_| drop(held)).unwrap();
    assert_clean(&rt);
}

#[test]
fn message_bytes_are_validated_before_use() {
    // INV-MSG-VALIDATE
    let (rt, s, r, ch) = setup(Config::default());
    let counter = send_counter(&rt, s, &ch);
    let addr = rt.enter(s, |tok| counter.bind(tok).unwrap().id()).unwrap() as u64;
    let serial = rt.exports(s).unwrap()[0].serial;
    let live = ObjectRef {
        runtime: rt.id(),
        origin: s.get(),
        serial,
        generation: serial,
        addr,
    };
    rt.enter(r, |tok| {
        let held = ch.recv(tok).unwrap();
        // The bytes of a live export resolve: through the identity cache, to the same proxy.
        let again = tok.resolve_object(&live.encode()).unwrap();
        assert!(again.is(&held));
        // Forged: no such export.
        let forged = ObjectRef { serial: 99, ..live };
        let err = tok.resolve_object(&forged.encode()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidMessage);
        assert!(err.message().starts_with("no live export 99"), "{err}");
        // Another generation, an unknown interpreter, truncated, corrupted.
        let stale = ObjectRef {
            generation: serial + 7,
            ..live
        };
        let err = tok.resolve_object(&stale.encode()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidMessage);
        let nowhere = ObjectRef { origin: 77, ..live };
        let err = tok.resolve_object(&nowhere.encode()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidMessage);
        let bytes = live.encode();
        let err = tok.resolve_object(&bytes[..MESSAGE_LEN - 1]).unwrap_err();
        assert_eq!(err.message(), "an object pointer is 56 bytes, got 55");
        let mut corrupted = bytes;
        corrupted[20] ^= 4;
        let err = tok.resolve_object(&corrupted).unwrap_err();
        assert_eq!(err.message(), "object pointer is corrupted (checksum)");
    })
    .unwrap();
    // Once every reference is gone the entry is gone, and the same bytes are stale.
    common::drain_all(&rt);
    assert!(rt.exports(s).unwrap().is_empty());
    let err = rt
        .enter(r, |tok| tok.resolve_object(&live.encode()).map(drop))
        .unwrap();
    assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidMessage);
    drop(counter);
    assert_clean(&rt);
}

#[test]
fn a_force_closed_channel_gives_a_message_reference_back() {
    let (rt, s, _r, ch) = setup(Config::default());
    drop(send_counter(&rt, s, &ch));
    assert_eq!(rt.exports(s).unwrap()[0].in_flight, 1);
    ch.close(Close::Force).unwrap();
    assert_clean(&rt);
}

#[test]
fn a_panic_in_a_forwarded_call_comes_back_as_a_typed_error() {
    // INV-PROXY-PANIC: no lock stays held, no thread stays in the wrong interpreter, and the
    // origin's objects are accounted as before.
    let (rt, s, r, ch) = setup(Config::default());
    drop(send_counter(&rt, s, &ch));
    rt.enter(r, |tok| {
        let proxy = ch.recv(tok).unwrap();
        let err = proxy.call_method("panic", &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Panic);
        assert_eq!(
            err.message(),
            format!("panicked in interpreter {s}: a user method lost its mind")
        );
        assert_eq!(tok.id(), r, "back in the caller's interpreter");
        // The proxy still works.
        assert_eq!(proxy.call_method("bump", &[]).unwrap().as_int().unwrap(), 1);
    })
    .unwrap();
    for id in [s, r] {
        assert_eq!(rt.info(id).unwrap().threads_entered, 0);
    }
    std::thread::scope(|scope| {
        scope.spawn(|| rt.enter(s, |_| ()).unwrap());
    });
    assert_clean(&rt);
}

#[test]
fn a_destroyed_interpreter_hands_out_no_new_references() {
    // INV-OWNER-DEATH: a pending call of the final drain can still reach the interpreter's
    // objects; bytes resolved then give InterpreterGone, and an object it exports after the
    // exports were invalidated pins nothing (nothing leaks).
    let (rt, s, r, ch) = setup(Config::default().owner_death(OwnerDeath::Invalidate));
    let counter = send_counter(&rt, s, &ch);
    let addr = rt.enter(s, |tok| counter.bind(tok).unwrap().id()).unwrap() as u64;
    let bytes = first_export_message(&rt, s, addr).encode();
    let (tx, rx) = std::sync::mpsc::channel();
    rt.call_soon(s, move |tok| {
        let resolved = tok.switch(r, |rtok| rtok.resolve_object(&bytes).map(drop));
        tx.send(resolved.unwrap().map_err(|e| e.kind())).unwrap();
        // An export after invalidation (the list is freed with the interpreter's handles).
        let list = tok.list(&[]);
        drop(Outgoing::object(&list));
    })
    .unwrap();
    drop(counter);
    let report = rt.destroy(s).unwrap();
    assert_eq!(report.leaked_objects, 0);
    // The pending call ran in the final drain and switched to `r`: resolving bytes of `s`
    // there gives no reference.
    assert_eq!(rx.recv().unwrap(), Err(ErrorKind::InterpreterGone));
    rt.enter(r, |tok| {
        let err = tok.resolve_object(&bytes).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidMessage, "{err}");
        drop(ch.recv(tok));
    })
    .unwrap();
    assert_clean(&rt);
}
