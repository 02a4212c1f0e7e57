//! Objects on raw pointers: types, operations, errors as values, and the accounting that
//! proves nothing leaked and nothing was freed twice.

mod common;
use common::in_main;

use xinterp::{ClassDef, Error, ErrorKind, Obj, ObjKind, Result, Runtime};

#[test]
fn scalars_round_trip_and_repr_like_python() {
    in_main(|tok| {
        assert_eq!(tok.none().repr().unwrap(), "None");
        assert_eq!(tok.bool(true).repr().unwrap(), "True");
        assert_eq!(tok.int(-7).as_int().unwrap(), -7);
        assert_eq!(tok.float(2.5).as_float().unwrap(), 2.5);
        assert_eq!(tok.float(1e16).repr().unwrap(), "1e+16");
        assert_eq!(tok.str("héllo").to_rust_string().unwrap(), "héllo");
        assert_eq!(tok.str("it's").repr().unwrap(), "\"it's\"");
        assert_eq!(tok.bytes(b"a\x00").repr().unwrap(), "b'a\\x00'");
        assert_eq!(tok.bytearray(b"hi").repr().unwrap(), "bytearray(b'hi')");
        assert_eq!(tok.int(3).kind(), ObjKind::Int);
        assert_eq!(tok.str("x").type_name(), "str");
        assert_eq!(tok.none().type_name(), "NoneType");
    });
}

#[test]
fn extraction_of_the_wrong_type_is_a_type_error() {
    in_main(|tok| {
        let err = tok.str("5").as_int().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeError);
        assert_eq!(err.to_string(), "TypeError: expected int, got str");
        assert_eq!(
            tok.int(1).to_bytes().unwrap_err().kind(),
            ErrorKind::TypeError
        );
        assert_eq!(tok.bool(true).as_int().unwrap(), 1);
    });
}

#[test]
fn containers_hold_references_and_release_them() {
    in_main(|tok| {
        let item = tok.str("shared");
        assert_eq!(item.refcount(), 1);
        let tuple = tok.tuple(&[item.clone(), tok.int(1)]);
        let list = tok.list(std::slice::from_ref(&item));
        assert_eq!(item.refcount(), 3, "the handle, the tuple and the list");
        assert_eq!(tuple.repr().unwrap(), "('shared', 1)");
        assert_eq!(tok.tuple(&[tok.int(1)]).repr().unwrap(), "(1,)");
        drop(tuple);
        assert_eq!(item.refcount(), 2);
        list.call_method("append", &[tok.none()]).unwrap();
        assert_eq!(list.repr().unwrap(), "['shared', None]");
        let popped = list.call_method("pop", &[]).unwrap();
        assert_eq!(popped.kind(), ObjKind::None);
        drop(list);
        assert_eq!(item.refcount(), 1);
    });
}

#[test]
fn list_indexing_follows_python() {
    in_main(|tok| {
        let list = tok.list(&[tok.int(10), tok.int(20), tok.int(30)]);
        assert_eq!(list.getitem(&tok.int(-1)).unwrap().as_int().unwrap(), 30);
        let err = list.getitem(&tok.int(3)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IndexError);
        assert_eq!(err.message(), "list index out of range");
        let err = list.getitem(&tok.str("0")).unwrap_err();
        assert_eq!(err.message(), "list indices must be integers, not str");
        list.setitem(&tok.int(0), &tok.str("ten")).unwrap();
        list.delitem(&tok.int(1)).unwrap();
        assert_eq!(list.repr().unwrap(), "['ten', 30]");
        assert_eq!(list.slice(-1, 10).unwrap().repr().unwrap(), "[30]");
        assert_eq!(
            tok.str("hello")
                .slice(1, -1)
                .unwrap()
                .to_rust_string()
                .unwrap(),
            "ell"
        );
        let err = tok
            .tuple(&[])
            .setitem(&tok.int(0), &tok.none())
            .unwrap_err();
        assert_eq!(
            err.message(),
            "'tuple' object does not support item assignment"
        );
        assert_eq!(
            tok.int(1).getitem(&tok.int(0)).unwrap_err().message(),
            "'int' object is not subscriptable"
        );
        let err = list.call_method("pop", &[tok.int(1)]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeError);
    });
}

#[test]
fn dicts_key_by_value_and_keep_insertion_order() {
    in_main(|tok| {
        let d = tok.dict();
        d.setitem(&tok.str("b"), &tok.int(2)).unwrap();
        d.setitem(&tok.str("a"), &tok.int(1)).unwrap();
        d.setitem(&tok.int(1), &tok.str("int one")).unwrap();
        // 1, 1.0 and True are one key, as in Python; the original key object stays.
        d.setitem(&tok.float(1.0), &tok.str("float one")).unwrap();
        d.setitem(&tok.bool(true), &tok.str("true")).unwrap();
        assert_eq!(d.len().unwrap(), 3);
        assert_eq!(d.repr().unwrap(), "{'b': 2, 'a': 1, 1: 'true'}");
        let key = tok.tuple(&[tok.int(1), tok.str("x")]);
        d.setitem(&key, &tok.none()).unwrap();
        assert!(d.getitem(&tok.tuple(&[tok.int(1), tok.str("x")])).is_ok());
        let err = d.getitem(&tok.str("missing")).unwrap_err();
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::KeyError, "'missing'")
        );
        let err = d.setitem(&tok.list(&[]), &tok.none()).unwrap_err();
        assert_eq!(err.message(), "unhashable type: 'list'");
        d.delitem(&tok.str("b")).unwrap();
        assert_eq!(
            d.call_method("get", &[tok.str("b")]).unwrap().kind(),
            ObjKind::None
        );
        let keys = d.call_method("keys", &[]).unwrap();
        assert_eq!(keys.repr().unwrap(), "['a', 1, (1, 'x')]");
        assert_eq!(d.iterate().unwrap().len(), 3);
    });
}

#[test]
fn dicts_survive_many_deletions() {
    in_main(|tok| {
        let d = tok.dict();
        let n = if cfg!(miri) { 40 } else { 1000 };
        for i in 0..n {
            d.setitem(&tok.int(i), &tok.int(i * i)).unwrap();
        }
        for i in (0..n).filter(|i| i % 3 != 0) {
            d.delitem(&tok.int(i)).unwrap();
        }
        let keys: Vec<i64> = d
            .iterate()
            .unwrap()
            .iter()
            .map(|k| k.as_int().unwrap())
            .collect();
        assert_eq!(keys, (0..n).filter(|i| i % 3 == 0).collect::<Vec<_>>());
        assert_eq!(d.getitem(&tok.int(9)).unwrap().as_int().unwrap(), 81);
    });
}

#[test]
fn equality_and_hash_agree() {
    in_main(|tok| {
        let pairs: Vec<(Obj<'_>, Obj<'_>)> = vec![
            (tok.int(1), tok.float(1.0)),
            (tok.bool(true), tok.int(1)),
            (tok.str("x"), tok.str("x")),
            (tok.bytes(b"ab"), tok.bytes(b"ab")),
            (
                tok.tuple(&[tok.int(1), tok.none()]),
                tok.tuple(&[tok.float(1.0), tok.none()]),
            ),
        ];
        for (a, b) in &pairs {
            assert!(a.eq(b).unwrap(), "{a:?} == {b:?}");
            assert_eq!(
                a.hash().unwrap(),
                b.hash().unwrap(),
                "hash({a:?}) == hash({b:?})"
            );
        }
        assert!(!tok.int(1).eq(&tok.str("1")).unwrap());
        assert!(tok.bytes(b"ab").eq(&tok.bytearray(b"ab")).unwrap());
        let l1 = tok.list(&[tok.int(1), tok.list(&[tok.str("n")])]);
        let l2 = tok.list(&[tok.int(1), tok.list(&[tok.str("n")])]);
        assert!(l1.eq(&l2).unwrap());
        assert_eq!(l1.hash().unwrap_err().kind(), ErrorKind::TypeError);
        let d1 = tok.dict();
        let d2 = tok.dict();
        d1.setitem(&tok.int(1), &tok.str("a")).unwrap();
        d2.setitem(&tok.int(1), &tok.str("a")).unwrap();
        assert!(d1.eq(&d2).unwrap());
        d2.setitem(&tok.int(2), &tok.str("b")).unwrap();
        assert!(!d1.eq(&d2).unwrap());
    });
}

#[test]
fn truthiness_and_iteration() {
    in_main(|tok| {
        assert!(!tok.none().is_true().unwrap());
        assert!(!tok.int(0).is_true().unwrap());
        assert!(tok.str("x").is_true().unwrap());
        assert!(!tok.list(&[]).is_true().unwrap());
        let chars: Vec<String> = tok
            .str("ab")
            .iterate()
            .unwrap()
            .iter()
            .map(|c| c.to_rust_string().unwrap())
            .collect();
        assert_eq!(chars, ["a", "b"]);
        let bytes: Vec<i64> = tok
            .bytes(b"\x01\xff")
            .iterate()
            .unwrap()
            .iter()
            .map(|b| b.as_int().unwrap())
            .collect();
        assert_eq!(bytes, [1, 255]);
        assert_eq!(
            tok.int(3).iterate().unwrap_err().message(),
            "'int' object is not iterable"
        );
        assert_eq!(
            tok.int(3).len().unwrap_err().message(),
            "object of type 'int' has no len()"
        );
    });
}

fn point_init<'t>(this: &Obj<'t>, args: &[Obj<'t>]) -> Result<Obj<'t>> {
    let [x, y] = args else {
        return Err(Error::new(
            ErrorKind::TypeError,
            "Point() takes 2 arguments",
        ));
    };
    this.setattr("x", x)?;
    this.setattr("y", y)?;
    Ok(this.token().none())
}

fn point_norm1<'t>(this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    let x = this.getattr("x")?.as_int()?;
    let y = this.getattr("y")?.as_int()?;
    Ok(this.token().int(x.abs() + y.abs()))
}

fn point_repr<'t>(this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    let text = format!(
        "Point({}, {})",
        this.getattr("x")?.repr()?,
        this.getattr("y")?.repr()?
    );
    Ok(this.token().str(&text))
}

fn point_eq<'t>(this: &Obj<'t>, args: &[Obj<'t>]) -> Result<Obj<'t>> {
    let other = &args[0];
    let same = other.type_name() == "Point"
        && this.getattr("x")?.eq(&other.getattr("x")?)?
        && this.getattr("y")?.eq(&other.getattr("y")?)?;
    Ok(this.token().bool(same))
}

fn point_hash<'t>(this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    let pair = this
        .token()
        .tuple(&[this.getattr("x")?, this.getattr("y")?]);
    Ok(this.token().int(pair.hash()?))
}

fn fails<'t>(_this: &Obj<'t>, _args: &[Obj<'t>]) -> Result<Obj<'t>> {
    Err(Error::new(ErrorKind::ValueError, "user method refused"))
}

fn point_class() -> ClassDef {
    ClassDef::new("Point")
        .method("__init__", point_init)
        .method("norm1", point_norm1)
        .method("__repr__", point_repr)
        .method("__eq__", point_eq)
        .method("__hash__", point_hash)
        .method("fails", fails)
}

#[test]
fn user_classes_have_attributes_and_rust_methods() {
    in_main(|tok| {
        let point = tok.class(point_class());
        assert_eq!(point.repr().unwrap(), "<class 'Point'>");
        assert_eq!(
            point.getattr("__name__").unwrap().to_rust_string().unwrap(),
            "Point"
        );
        let p = point.call(&[tok.int(3), tok.int(-4)]).unwrap();
        assert_eq!(p.type_name(), "Point");
        assert_eq!(p.repr().unwrap(), "Point(3, -4)");
        assert_eq!(p.call_method("norm1", &[]).unwrap().as_int().unwrap(), 7);
        let bound = p.getattr("norm1").unwrap();
        assert_eq!(bound.kind(), ObjKind::BoundMethod);
        assert!(bound
            .repr()
            .unwrap()
            .starts_with("<bound method norm1 of Point(3, -4)>"));
        assert_eq!(bound.call(&[]).unwrap().as_int().unwrap(), 7);
        p.setattr("x", &tok.int(10)).unwrap();
        assert_eq!(p.call_method("norm1", &[]).unwrap().as_int().unwrap(), 14);
        assert_eq!(p.attr_names(), ["x", "y"]);
        p.delattr("y").unwrap();
        let err = p.call_method("norm1", &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AttributeError);
        assert_eq!(err.message(), "'Point' object has no attribute 'y'");
        let err = p.call_method("fails", &[]).unwrap_err();
        assert_eq!(err.to_string(), "ValueError: user method refused");
        let err = point.call(&[tok.int(1)]).unwrap_err();
        assert_eq!(err.message(), "Point() takes 2 arguments");
        assert_eq!(
            tok.int(1).call(&[]).unwrap_err().message(),
            "'int' object is not callable"
        );
        assert_eq!(
            tok.int(1).setattr("x", &tok.none()).unwrap_err().kind(),
            ErrorKind::AttributeError
        );
    });
}

#[test]
fn user_eq_and_hash_are_consistent_and_dicts_key_instances_by_identity() {
    in_main(|tok| {
        let point = tok.class(point_class());
        let a = point.call(&[tok.int(1), tok.int(2)]).unwrap();
        let b = point.call(&[tok.int(1), tok.int(2)]).unwrap();
        assert!(a.eq(&b).unwrap());
        assert!(!a.is(&b));
        assert_eq!(a.hash().unwrap(), b.hash().unwrap());
        let d = tok.dict();
        d.setitem(&a, &tok.str("a")).unwrap();
        d.setitem(&b, &tok.str("b")).unwrap();
        assert_eq!(d.len().unwrap(), 2, "dict keys instances by identity");
        // A class with __eq__ and no __hash__ is unhashable, as in Python.
        let only_eq = tok.class(ClassDef::new("OnlyEq").method("__eq__", point_eq));
        let x = only_eq.call(&[]).unwrap();
        assert_eq!(x.hash().unwrap_err().message(), "unhashable type: 'OnlyEq'");
        // A plain class hashes and compares by identity.
        let plain = tok.class(ClassDef::new("Plain"));
        let (p, q) = (plain.call(&[]).unwrap(), plain.call(&[]).unwrap());
        assert!(p.eq(&p).unwrap() && !p.eq(&q).unwrap());
        assert_eq!(p.hash().unwrap(), p.clone().hash().unwrap());
        assert!(p.repr().unwrap().starts_with("<Plain object at 0x"));
    });
}

#[test]
fn a_reference_cycle_is_reported_as_leaked_at_destroy() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    rt.enter(sub, |tok| {
        let list = tok.list(&[]);
        list.call_method("append", std::slice::from_ref(&list))
            .unwrap();
        // Break it again so that the process (and Miri) leaks nothing; first observe it.
        assert_eq!(list.refcount(), 2);
        list.delitem(&tok.int(0)).unwrap();
        assert_eq!(list.refcount(), 1);
    })
    .unwrap();
    let report = rt.destroy(sub).unwrap();
    assert_eq!(report.leaked_objects, 0);
}

#[test]
fn deep_nesting_is_freed_without_recursion() {
    let depth = if cfg!(miri) { 200 } else { 200_000 };
    in_main(|tok| {
        let mut inner = tok.list(&[]);
        for _ in 0..depth {
            inner = tok.list(&[inner]);
        }
        assert_eq!(tok.info().live_objects, depth + 1);
        drop(inner);
        assert_eq!(tok.info().live_objects, 0);
    });
}

#[test]
fn per_interpreter_accounting_is_separate() {
    let rt = Runtime::new();
    let sub = rt.create().unwrap();
    rt.enter(rt.main(), |tok| {
        // Kept across the switch as an owned handle (a token-bound one cannot be).
        let kept = tok.list(&[tok.int(1), tok.int(2)]).unbind();
        tok.switch(sub, |t| {
            let _x = t.str("in sub");
            assert_eq!(t.info().live_objects, 1);
        })
        .unwrap();
        assert_eq!(tok.info().live_objects, 3);
        assert_eq!(tok.info().allocated, 3);
        assert_eq!(kept.bind(tok).unwrap().len().unwrap(), 2);
        drop(kept);
    })
    .unwrap();
    assert_eq!(rt.info(rt.main()).unwrap().live_objects, 0);
    assert_eq!(rt.info(sub).unwrap().allocated, 1);
}
