//! Random sequences of channel operations, read from bytes: shared by the cargo-fuzz target
//! `channel_ops` and by the property test `tests/channel_ops.rs` (which includes this file),
//! so that the inputs the fuzzer finds are replayed in the ordinary suite.
//!
//! Each pair of bytes is one operation on a small world (three interpreters, two channels)
//! run on one thread; after the sequence everything is closed and released, and the checks
//! are the project's own: no object left in any interpreter, no export outstanding, no
//! buffer export unbalanced, no interpreter entered.

use xinterp::{Channel, Close, End, ErrorKind, InterpId, Outgoing, OwnedObj, Runtime};

/// Replays `data` as operations and checks the accounting at the end. Panics on any broken
/// rule (an unexpected error kind, a leak, an unbalanced ledger).
pub fn run(data: &[u8]) {
    let rt = Runtime::new();
    let interps: Vec<InterpId> = (0..3).map(|_| rt.create().unwrap()).collect();
    let mut channels: Vec<Channel> = (0..2).map(|_| rt.create_channel()).collect();
    let mut kept: Vec<OwnedObj> = Vec::new();

    for op in data.chunks(2) {
        let (code, arg) = (op[0], op.get(1).copied().unwrap_or(0));
        let id = interps[usize::from(arg) % interps.len()];
        let ch = &channels[usize::from(arg >> 4) % channels.len()];
        match code % 10 {
            0..=2 => {
                // Send bytes, a buffer or an object pointer.
                let sent = rt.enter(id, |tok| {
                    let data = tok.bytearray(&[arg; 3]);
                    let item = match code % 3 {
                        0 => Outgoing::bytes(&data).unwrap(),
                        1 => Outgoing::buffer(&data).unwrap(),
                        _ => Outgoing::object(&data),
                    };
                    ch.send(tok, item)
                });
                if let Err(e) = sent.unwrap() {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::ChannelClosed | ErrorKind::ChannelNotFound
                        ),
                        "{e}"
                    );
                }
            }
            3 | 4 => {
                // Receive; keep what came (a view, a proxy) or drop it.
                let keep = code % 2 == 0;
                let received = rt.enter(id, |tok| match ch.recv(tok) {
                    Ok(obj) => {
                        let _ = obj.len();
                        if keep {
                            kept.push(obj.unbind());
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                });
                if let Err(e) = received.unwrap() {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::ChannelEmpty
                                | ErrorKind::ChannelClosed
                                | ErrorKind::ChannelNotFound
                                | ErrorKind::ItemInterpreterDestroyed
                        ),
                        "{e}"
                    );
                }
            }
            5 => {
                let how = [Close::Now, Close::AfterDrain, Close::Force][usize::from(arg) % 3];
                if let Err(e) = ch.close(how) {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::ChannelClosed
                                | ErrorKind::ChannelNotEmpty
                                | ErrorKind::ChannelNotFound
                        ),
                        "{e}"
                    );
                }
            }
            6 => {
                let end = [End::Send, End::Recv, End::Both][usize::from(arg) % 3];
                let released = rt.enter(id, |tok| ch.release(tok, end)).unwrap();
                // A closed channel refuses a release, as CPython's does.
                if let Err(e) = released {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::ChannelClosed | ErrorKind::ChannelNotFound
                        ),
                        "{e}"
                    );
                }
            }
            7 => {
                // Drop something kept, from outside any interpreter.
                if !kept.is_empty() {
                    kept.swap_remove(usize::from(arg) % kept.len());
                }
            }
            8 => {
                // Replace a channel.
                let at = usize::from(arg) % channels.len();
                let _ = channels[at].destroy();
                channels[at] = rt.create_channel();
            }
            _ => {
                for id in &interps {
                    rt.drain(*id).unwrap();
                }
            }
        }
    }

    for ch in channels {
        let _ = ch.close(Close::Force);
    }
    drop(kept);
    while interps
        .iter()
        .map(|id| rt.drain(*id).unwrap())
        .sum::<usize>()
        > 0
    {}
    for id in interps {
        let info = rt.info(id).unwrap();
        assert_eq!(info.live_objects, 0, "{info:?}");
        assert_eq!(
            (info.pinned_exports, info.threads_entered),
            (0, 0),
            "{info:?}"
        );
        assert!(rt.exports(id).unwrap().is_empty(), "{:?}", rt.exports(id));
    }
    let c = rt.counters();
    assert_eq!(c.buffers_exported, c.buffers_released, "{c:?}");
    assert_eq!(c.objects_allocated, c.objects_freed, "{c:?}");
}
