//! The four sharing modes side by side: by value, proxy, frozen and moved
//! (`design/sharing-modes.md`).

mod common;

use common::{assert_clean, drain_all, interps, setup};
use xinterp::{ClassDef, Config, ErrorKind, ObjKind, Outgoing, OwnerDeath, Runtime};

/// A frozen object's graph, made in `tok`'s interpreter: a dict of lists, an instance, a
/// bytearray, a tuple and a cycle (a list holding itself).
fn frozen_graph<'t>(tok: &'t xinterp::Token<'_>) -> xinterp::Obj<'t> {
    let point = tok.class(ClassDef::new("Point"));
    let p = point.call(&[]).unwrap();
    p.setattr("x", &tok.int(3)).unwrap();
    let cycle = tok.list(&[tok.int(1)]);
    cycle
        .call_method("append", std::slice::from_ref(&cycle))
        .unwrap();
    let d = tok.dict();
    d.setitem(&tok.str("numbers"), &tok.list(&[tok.int(1), tok.int(2)]))
        .unwrap();
    d.setitem(&tok.str("point"), &p).unwrap();
    d.setitem(&tok.str("bytes"), &tok.bytearray(b"abc"))
        .unwrap();
    d.setitem(
        &tok.str("pair"),
        &tok.tuple(&[tok.str("a"), tok.float(0.5)]),
    )
    .unwrap();
    d.setitem(&tok.str("cycle"), &cycle).unwrap();
    d.freeze().unwrap();
    d
}

/// By value (INV-MEMBRANE): copies, and the process's one `None`, `True` and `False`
/// (INV-IMMORTAL).
#[test]
fn shareable_immutables_arrive_as_copies_and_singletons_as_the_receivers_own() {
    let (rt, s, r, ch) = setup(Config::default());
    rt.enter(s, |tok| {
        for obj in [
            tok.int(7),
            tok.str("text"),
            tok.bytes(b"raw"),
            tok.tuple(&[tok.int(1), tok.str("two")]),
            tok.none(),
            tok.bool(true),
            tok.bool(false),
        ] {
            ch.send(tok, Outgoing::object(&obj)).unwrap();
        }
    })
    .unwrap();
    // Nothing of the sender is pinned by them.
    assert!(rt.exports(s).unwrap().is_empty());
    rt.enter(r, |tok| {
        let int = ch.recv(tok).unwrap();
        assert_eq!((int.kind(), int.as_int().unwrap()), (ObjKind::Int, 7));
        assert_eq!(ch.recv(tok).unwrap().to_rust_string().unwrap(), "text");
        assert_eq!(ch.recv(tok).unwrap().to_bytes().unwrap(), b"raw");
        let tuple = ch.recv(tok).unwrap();
        assert_eq!(tuple.repr().unwrap(), "(1, 'two')");
        assert_eq!(tuple.proxy_origin(), None);
        assert!(ch.recv(tok).unwrap().is(&tok.none()));
        assert!(ch.recv(tok).unwrap().is(&tok.bool(true)));
        assert!(ch.recv(tok).unwrap().is(&tok.bool(false)));
    })
    .unwrap();
    assert_eq!(rt.counters().forwarded_calls, 0);
    assert_clean(&rt);
}

#[test]
fn by_value_items_do_not_stop_their_senders_destroy() {
    // Under `Refuse` a queued proxy message stops the destroy; a by-value item does not.
    let (rt, s, r, ch) = setup(Config::default().owner_death(OwnerDeath::Refuse));
    rt.enter(s, |tok| {
        ch.send(tok, Outgoing::object(&tok.str("copied"))).unwrap();
        let frozen = tok.list(&[tok.int(1)]);
        frozen.freeze().unwrap();
        ch.send(tok, Outgoing::object(&frozen)).unwrap();
        ch.send(tok, Outgoing::object(&tok.int(3))).unwrap();
    })
    .unwrap();
    // The receiver takes one (and so associates with the channel, which stays open).
    rt.enter(r, |tok| {
        assert_eq!(ch.recv(tok).unwrap().to_rust_string().unwrap(), "copied")
    })
    .unwrap();
    rt.destroy(s).unwrap();
    rt.enter(r, |tok| {
        // The channel's default unbound op replaces the items of a destroyed sender.
        assert_eq!(ch.recv(tok).unwrap().kind(), ObjKind::Unbound);
        assert_eq!(ch.recv(tok).unwrap().kind(), ObjKind::Unbound);
    })
    .unwrap();
    assert_clean(&rt);
}

/// Every mutation of a frozen object is refused before it reaches the object's state
/// (INV-FROZEN-IMMUTABLE).
#[test]
fn a_frozen_object_cannot_change() {
    let rt = Runtime::new();
    rt.enter(rt.main(), |tok| {
        let d = frozen_graph(tok);
        assert!(d.is_frozen());
        let numbers = d.getitem(&tok.str("numbers")).unwrap();
        let point = d.getitem(&tok.str("point")).unwrap();
        let bytes = d.getitem(&tok.str("bytes")).unwrap();
        assert!(numbers.is_frozen() && point.is_frozen() && bytes.is_frozen());
        let refused = [
            d.setitem(&tok.str("new"), &tok.int(1)),
            d.delitem(&tok.str("numbers")),
            numbers.setitem(&tok.int(0), &tok.int(9)),
            numbers.call_method("append", &[tok.int(3)]).map(drop),
            numbers.call_method("pop", &[]).map(drop),
            point.setattr("x", &tok.int(4)),
            point.delattr("x"),
            bytes.setitem(&tok.int(0), &tok.int(0)),
            bytes.bytearray_extend(b"more"),
            bytes.bytearray_resize(1),
        ];
        for result in refused {
            assert_eq!(result.unwrap_err().kind(), ErrorKind::Frozen);
        }
        // Reads work, and a frozen bytearray's buffer is read-only.
        assert_eq!(numbers.repr().unwrap(), "[1, 2]");
        assert_eq!(point.getattr("x").unwrap().as_int().unwrap(), 3);
        let buffer = bytes.get_buffer().unwrap();
        assert!(buffer.readonly());
        assert_eq!(buffer.to_vec(), b"abc");
        assert_eq!(buffer.set(0, 1).unwrap_err().kind(), ErrorKind::TypeError);
    })
    .unwrap();
    assert_clean(&rt);
}

/// What cannot be frozen is named, and the graph stays mutable (INV-FROZEN-IMMUTABLE).
#[test]
fn freezing_a_graph_that_cannot_be_frozen_names_the_object_and_changes_nothing() {
    let (rt, s, r, ch) = setup(Config::default());
    rt.enter(s, |tok| {
        ch.send(tok, Outgoing::object(&tok.list(&[]))).unwrap()
    })
    .unwrap();
    rt.enter(r, |tok| {
        let proxy = ch.recv(tok).unwrap();
        let exported = tok.bytearray(b"xy");
        let view = exported.memoryview().unwrap();
        let cases = [
            (tok.list(&[tok.int(1), proxy.clone()]), "RemoteProxy"),
            (tok.list(std::slice::from_ref(&exported)), "live export"),
            (tok.list(std::slice::from_ref(&view)), "memoryview"),
        ];
        for (root, named) in cases {
            let err = root.freeze().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotShareable, "{err}");
            assert!(err.message().contains(named), "{err}");
            // Nothing changed: the root and what it holds are still mutable.
            assert!(!root.is_frozen());
            for item in root.iterate().unwrap() {
                assert!(!item.is_frozen() || item.kind() == ObjKind::Int);
            }
            root.setitem(&tok.int(0), &tok.int(0)).unwrap();
        }
        view.release_view().unwrap();
        // With its export given back, the bytearray freezes.
        exported.freeze().unwrap();
    })
    .unwrap();
    assert_clean(&rt);
}

/// The same object in every interpreter, read without entering its creator
/// (INV-FROZEN-IMMUTABLE, INV-MEMBRANE).
#[test]
fn a_frozen_object_is_read_in_place_by_every_interpreter() {
    let (rt, s, r) = interps(Config::default());
    let other = rt.create().unwrap();
    let ch = rt.create_channel();
    let addr = rt
        .enter(s, |tok| {
            let d = frozen_graph(tok);
            ch.send(tok, Outgoing::object(&d)).unwrap();
            ch.send(tok, Outgoing::object(&d)).unwrap();
            d.id()
        })
        .unwrap();
    let before = rt.counters();
    for into in [r, other] {
        rt.enter(into, |tok| {
            let d = ch.recv(tok).unwrap();
            // The very object: no proxy, no copy, and `is` holds with no identity cache.
            assert_eq!(d.id(), addr);
            assert_eq!(d.kind(), ObjKind::Dict);
            assert_eq!(d.proxy_origin(), None);
            let numbers = d.getitem(&tok.str("numbers")).unwrap();
            assert_eq!(numbers.getitem(&tok.int(1)).unwrap().as_int().unwrap(), 2);
            assert!(d.getitem(&tok.str("numbers")).unwrap().is(&numbers));
            let cycle = d.getitem(&tok.str("cycle")).unwrap();
            assert!(cycle.getitem(&tok.int(1)).unwrap().is(&cycle));
            assert_eq!(d.len().unwrap(), 5);
        })
        .unwrap();
    }
    let delta = rt.counters().since(&before);
    // Reading entered no other interpreter and forwarded nothing.
    assert_eq!((delta.switches, delta.forwarded_calls), (0, 0));
    assert_clean(&rt);
}

/// A cycle is one component, counted by its outside references (INV-FROZEN-COUNT).
#[test]
fn a_frozen_cycle_is_freed_with_its_last_outside_reference() {
    let rt = Runtime::new();
    let main = rt.main();
    rt.enter(main, |tok| {
        let a = tok.list(&[]);
        let b = tok.list(std::slice::from_ref(&a));
        a.call_method("append", std::slice::from_ref(&b)).unwrap();
        drop(b);
        a.freeze().unwrap();
        let info = rt.info(main).unwrap();
        assert_eq!((info.live_objects, info.frozen_objects), (0, 2));
        // Without the component count the cycle would keep itself alive: a leak.
        drop(a);
        let info = rt.info(main).unwrap();
        assert_eq!((info.live_objects, info.frozen_objects), (0, 0));
    })
    .unwrap();
    let c = rt.counters();
    assert_eq!(
        (c.objects_frozen, c.objects_allocated, c.objects_freed),
        (2, 2, 2)
    );
}

/// INV-FROZEN-OUTLIVES.
#[test]
fn a_frozen_object_outlives_the_interpreter_that_made_it() {
    let (rt, s, r, ch) = setup(Config::default().owner_death(OwnerDeath::Refuse));
    rt.enter(s, |tok| {
        let d = frozen_graph(tok);
        ch.send(tok, Outgoing::object(&d)).unwrap();
    })
    .unwrap();
    let kept = rt.enter(r, |tok| ch.recv(tok).unwrap().unbind()).unwrap();
    // Nothing pins the creator: its destroy goes through, and the graph lives on.
    let report = rt.destroy(s).unwrap();
    assert_eq!(report.leaked_objects, 0);
    rt.enter(r, |tok| {
        let d = kept.bind(tok).unwrap();
        let point = d.getitem(&tok.str("point")).unwrap();
        assert_eq!(point.getattr("x").unwrap().as_int().unwrap(), 3);
    })
    .unwrap();
    drop(kept);
    drain_all(&rt);
    let c = rt.counters();
    assert_eq!(c.objects_allocated, c.objects_freed, "{c:?}");
    assert_clean(&rt);
}

/// INV-MOVE-EXCLUSIVE: the receiver owns the graph; the shared tail stays shared.
#[test]
fn a_moved_graph_changes_hands() {
    let (rt, s, r, ch) = setup(Config::default());
    let frozen_tail = rt
        .enter(s, |tok| {
            let tail = tok.tuple(&[tok.str("shared")]);
            tail.freeze().unwrap();
            let inner = tok.list(&[tok.int(1), tok.bytearray(b"data")]);
            let root = tok.list(&[inner.clone(), inner, tail.clone()]);
            let before = rt.info(s).unwrap().live_objects;
            ch.send(tok, Outgoing::moved(root).unwrap()).unwrap();
            // Root, inner list, int and bytearray left; the frozen tail is shared, not moved.
            assert_eq!(rt.info(s).unwrap().live_objects, before - 4);
            tail.unbind()
        })
        .unwrap();
    let switches = rt.counters().switches;
    rt.enter(r, |tok| {
        let root = ch.recv(tok).unwrap();
        assert_eq!(rt.info(r).unwrap().live_objects, 4);
        // The receiver owns it: it mutates it in place, and nothing enters the sender.
        let inner = root.getitem(&tok.int(0)).unwrap();
        inner.call_method("append", &[tok.int(2)]).unwrap();
        assert!(root.getitem(&tok.int(1)).unwrap().is(&inner));
        inner
            .getitem(&tok.int(1))
            .unwrap()
            .bytearray_extend(b"!")
            .unwrap();
        assert_eq!(
            root.repr().unwrap(),
            "[[1, bytearray(b'data!'), 2], [1, bytearray(b'data!'), 2], ('shared',)]"
        );
        assert_eq!(root.proxy_origin(), None);
    })
    .unwrap();
    assert_eq!(rt.counters().switches, switches);
    assert!(rt.exports(s).unwrap().is_empty());
    drop(frozen_tail);
    assert_clean(&rt);
    let c = rt.counters();
    assert_eq!((c.objects_moved, c.objects_adopted), (4, 4));
}

/// INV-MOVE-EXCLUSIVE: an outside reference refuses the move, and nothing changes.
#[test]
fn a_graph_referred_to_from_outside_cannot_move_and_stays_put() {
    let (rt, s, _r, ch) = setup(Config::default());
    rt.enter(s, |tok| {
        let shared = tok.list(&[tok.int(1)]);
        let root = tok.list(std::slice::from_ref(&shared));
        let keep = root.clone();
        let live = rt.info(s).unwrap().live_objects;
        // `shared` has a handle outside the graph.
        let err = Outgoing::moved(root).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotShareable, "{err}");
        assert!(err.message().contains("referred to from outside"), "{err}");
        assert_eq!(rt.info(s).unwrap().live_objects, live);
        drop(shared);
        // A bytearray with a live export cannot change hands either.
        let data = tok.bytearray(b"x");
        let view = data.memoryview().unwrap();
        let err = Outgoing::moved(tok.list(&[data])).unwrap_err();
        assert!(err.message().contains("live export"), "{err}");
        drop(view);
        // A frozen object is sent by reference, not moved.
        let frozen = tok.tuple(&[]);
        frozen.freeze().unwrap();
        assert_eq!(
            Outgoing::moved(frozen).unwrap_err().kind(),
            ErrorKind::NotShareable
        );
        // With the outside handle gone, the graph moves.
        ch.send(tok, Outgoing::moved(keep).unwrap()).unwrap();
    })
    .unwrap();
    ch.destroy().unwrap();
    assert_clean(&rt);
}

/// INV-MOVE-EXCLUSIVE: an unreceived graph goes back to its sender and is freed there.
#[test]
fn a_moved_graph_never_received_goes_back_to_its_sender() {
    for destroy_sender in [false, true] {
        let (rt, s, _r, ch) = setup(Config::default());
        rt.enter(s, |tok| {
            let root = tok.list(&[tok.str("a"), tok.list(&[])]);
            ch.send(tok, Outgoing::moved(root).unwrap()).unwrap();
            assert_eq!(rt.info(s).unwrap().live_objects, 0);
        })
        .unwrap();
        if destroy_sender {
            // Its items follow the unbound op; the graph is freed in a late entry.
            rt.destroy(s).unwrap();
        }
        ch.destroy().unwrap();
        drain_all(&rt);
        let c = rt.counters();
        assert_eq!(c.objects_allocated, c.objects_freed, "{c:?}");
        assert_eq!((c.objects_moved, c.objects_adopted), (3, 0));
        assert_clean(&rt);
    }
}
