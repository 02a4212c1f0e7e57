//! The object-pointer decoder and resolver on arbitrary bytes (INV-MSG-VALIDATE): decoding
//! never panics, whatever decodes encodes back to the same bytes, and resolving bytes
//! against a live runtime gives an object only for the one live export's exact encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xinterp::{ErrorKind, ObjectRef, Outgoing, OwnedObj, Runtime};

struct World {
    rt: Runtime,
    receiver: xinterp::InterpId,
    valid: [u8; xinterp::MESSAGE_LEN],
    _target: OwnedObj,
    _proxy: OwnedObj,
}

fn world() -> &'static World {
    static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = Runtime::new();
        let origin = rt.create().unwrap();
        let receiver = rt.create().unwrap();
        let ch = rt.create_channel();
        let target = rt
            .enter(origin, |tok| {
                let obj = tok.list(&[tok.int(1)]);
                ch.send(tok, Outgoing::object(&obj)).unwrap();
                obj.unbind()
            })
            .unwrap();
        let proxy = rt
            .enter(receiver, |tok| ch.recv(tok).unwrap().unbind())
            .unwrap();
        let addr = rt
            .enter(origin, |tok| target.bind(tok).unwrap().id())
            .unwrap() as u64;
        let serial = rt.exports(origin).unwrap()[0].serial;
        let valid = ObjectRef {
            runtime: rt.id(),
            origin: origin.get(),
            serial,
            generation: serial,
            addr,
        }
        .encode();
        World {
            rt,
            receiver,
            valid,
            _target: target,
            _proxy: proxy,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = ObjectRef::decode(data) {
        assert_eq!(&decoded.encode()[..], data);
    }
    let w = world();
    let resolved =
        w.rt.enter(w.receiver, |tok| {
            tok.resolve_object(data).map(|o| o.len().unwrap())
        })
        .unwrap();
    match resolved {
        Ok(len) => {
            assert_eq!(data, &w.valid[..]);
            assert_eq!(len, 1);
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::InvalidMessage | ErrorKind::WrongRuntime
            ),
            "{e}"
        ),
    }
});
