//! The buffer protocol: counted exports, resize refused while exported, views and slices,
//! idempotent release, read-only enforcement, writes visible through every view.

mod common;
use common::in_main;

use xinterp::{ErrorKind, Runtime};

#[test]
fn exports_are_counted_and_given_back() {
    in_main(|tok| {
        let data = tok.bytes(b"payload");
        assert_eq!(data.export_count().unwrap(), 0);
        let b1 = data.get_buffer().unwrap();
        let b2 = data.get_buffer().unwrap();
        assert_eq!(data.export_count().unwrap(), 2);
        assert_eq!(b1.as_ptr(), b2.as_ptr(), "both buffers show the same bytes");
        assert!(b1.readonly());
        assert_eq!(b1.frozen().unwrap(), b"payload");
        drop((b1, b2));
        assert_eq!(data.export_count().unwrap(), 0);
        let err = tok.int(3).get_buffer().unwrap_err();
        assert_eq!(err.message(), "a bytes-like object is required, not 'int'");
    });
}

#[test]
fn a_bytearray_cannot_resize_while_exported() {
    // INV-BUF-NO-RESIZE
    in_main(|tok| {
        let array = tok.bytearray(b"abc");
        let buffer = array.get_buffer().unwrap();
        let err = array.bytearray_extend(b"d").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BufferError);
        assert_eq!(
            err.message(),
            "Existing exports of data: object cannot be re-sized"
        );
        assert_eq!(
            array.bytearray_resize(1).unwrap_err().kind(),
            ErrorKind::BufferError
        );
        let err = array.call_method("extend", &[tok.bytes(b"d")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BufferError);
        assert_eq!(
            array.to_bytes().unwrap(),
            b"abc",
            "the failed resizes changed nothing"
        );
        drop(buffer);
        array.bytearray_extend(b"de").unwrap();
        assert_eq!(array.to_bytes().unwrap(), b"abcde");
        array.bytearray_resize(2).unwrap();
        assert_eq!(array.to_bytes().unwrap(), b"ab");
    });
}

#[test]
fn a_view_holds_an_export_until_released_and_release_is_idempotent() {
    in_main(|tok| {
        let array = tok.bytearray(b"abcdef");
        let view = array.memoryview().unwrap();
        assert_eq!(array.export_count().unwrap(), 1);
        assert_eq!(
            array.bytearray_extend(b"x").unwrap_err().kind(),
            ErrorKind::BufferError
        );
        view.release_view().unwrap();
        view.release_view().unwrap();
        assert_eq!(array.export_count().unwrap(), 0);
        let err = view.len().unwrap_err();
        assert_eq!(
            err.message(),
            "operation forbidden on released memoryview object"
        );
        assert_eq!(view.get_buffer().unwrap_err().kind(), ErrorKind::ValueError);
        array.bytearray_extend(b"g").unwrap();
    });
}

#[test]
fn a_view_with_exported_buffers_cannot_be_released() {
    in_main(|tok| {
        let view = tok.bytes(b"abc").memoryview().unwrap();
        let buffer = view.get_buffer().unwrap();
        let err = view.release_view().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BufferError);
        assert_eq!(err.message(), "memoryview has 1 exported buffer(s)");
        drop(buffer);
        view.release_view().unwrap();
    });
}

#[test]
fn slices_are_windows_onto_the_same_bytes() {
    in_main(|tok| {
        let array = tok.bytearray(b"0123456789");
        let view = array.memoryview().unwrap();
        let slice = view.slice(2, -2).unwrap();
        let inner = slice.slice(1, 3).unwrap();
        assert_eq!(slice.to_bytes().unwrap(), b"234567");
        assert_eq!(inner.to_bytes().unwrap(), b"34");
        let (whole, part) = (array.get_buffer().unwrap(), inner.get_buffer().unwrap());
        // Zero copy: the slice's first byte is the exporter's fourth.
        assert_eq!(part.as_ptr(), whole.as_ptr().wrapping_add(3));
        drop((whole, part));
        // Every view and slice holds its own export on the exporter.
        assert_eq!(array.export_count().unwrap(), 3);
        // Writes through a slice show through the exporter and every other view.
        inner
            .setitem(&tok.int(0), &tok.int(i64::from(b'X')))
            .unwrap();
        assert_eq!(array.to_bytes().unwrap(), b"012X456789");
        assert_eq!(
            view.getitem(&tok.int(3)).unwrap().as_int().unwrap(),
            i64::from(b'X')
        );
        assert_eq!(slice.len().unwrap(), 6);
        // Releasing the parent view leaves the slices working.
        view.release_view().unwrap();
        assert_eq!(inner.to_bytes().unwrap(), b"X4");
        drop((slice, inner));
        assert_eq!(array.export_count().unwrap(), 0);
    });
}

#[test]
fn read_only_exporters_refuse_writes() {
    in_main(|tok| {
        let view = tok.bytes(b"const").memoryview().unwrap();
        // CPython's memoryview raises TypeError here (conformance scenario
        // a_read_only_exporter_gives_a_read_only_view).
        let err = view.setitem(&tok.int(0), &tok.int(1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TypeError);
        assert_eq!(err.message(), "cannot modify read-only memory");
        let buffer = view.get_buffer().unwrap();
        assert_eq!(buffer.set(0, 1).unwrap_err().kind(), ErrorKind::TypeError);
        let array = tok.bytearray(b"ab");
        let err = array.setitem(&tok.int(0), &tok.int(256)).unwrap_err();
        assert_eq!(err.message(), "byte must be in range(0, 256)");
        let buffer = array.get_buffer().unwrap();
        assert!(!buffer.readonly());
        assert!(
            buffer.frozen().is_none(),
            "mutable bytes are never lent as a slice"
        );
        assert_eq!(buffer.set(5, 0).unwrap_err().kind(), ErrorKind::IndexError);
        assert_eq!(buffer.get(5), None);
    });
}

#[test]
fn dropping_an_unreleased_view_gives_its_export_back() {
    in_main(|tok| {
        let array = tok.bytearray(b"abc");
        drop(array.memoryview().unwrap().slice(0, 1).unwrap());
        assert_eq!(array.export_count().unwrap(), 0);
        array.bytearray_extend(b"d").unwrap();
        // A view keeps its exporter alive after the last other handle goes.
        let view = tok.bytes(b"kept alive").memoryview().unwrap();
        assert_eq!(tok.info().live_objects, 3);
        assert_eq!(view.to_bytes().unwrap(), b"kept alive");
    });
}

#[test]
fn bytearray_writes_from_several_threads_are_whole_and_visible() {
    // INV-BUF-ATOMIC-BYTES: every byte access is an atomic, so writes from threads that take
    // turns in the owner are whole and seen by the next holder. (Reads racing writes from
    // other interpreters arrive with the MemChannel's remote views.)
    let rt = Runtime::new();
    let main = rt.main();
    let n = if cfg!(miri) { 8 } else { 4096 };
    let array = rt
        .enter(main, |tok| tok.bytearray(&vec![0; n]).unbind())
        .unwrap();
    std::thread::scope(|s| {
        for round in 1..=2u8 {
            let (rt, array) = (&rt, &array);
            s.spawn(move || {
                rt.enter(main, |tok| {
                    let buffer = array.bind(tok).unwrap().get_buffer().unwrap();
                    for i in 0..n {
                        buffer.set(i, round).unwrap();
                    }
                })
                .unwrap()
            });
        }
    });
    let bytes = rt
        .enter(main, |tok| array.bind(tok).unwrap().to_bytes().unwrap())
        .unwrap();
    assert!(bytes.iter().all(|&b| b == bytes[0] && (b == 1 || b == 2)));
    drop(array);
}
