//! An object-pointer message is received while its origin is destroyed under `Invalidate`.
//! The receive checks the export and counts its reference as the new proxy's in one critical
//! section of the origin's table (INV-MSG-VALIDATE), so the invalidation comes wholly before
//! it (the receive fails with `InterpreterGone`) or wholly after (it gives the proxy's
//! reference back: the proxy is a tombstone); or the destroy settles the queued item first
//! (no item, or an unbound marker). Never a proxy counted in an entry that is gone, nothing
//! given back twice, every object freed (INV-OWNER-DEATH, INV-EXPORT-COUNTED, INV-LEDGER).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, ErrorKind, ObjKind, OwnerDeath};
use xinterp_loom_tests::{send, setup, Item};

#[test]
fn an_object_received_while_its_origin_is_invalidated() {
    xinterp_loom_tests::model("an_object_received_while_its_origin_is_invalidated", || {
        let (rt, s, r, ch) = setup(Config::default().owner_death(OwnerDeath::Invalidate));
        // `r` uses the receive end first, so the channel stays open when `s`'s
        // association ends with its destroy.
        rt.enter(r, |tok| {
            assert_eq!(ch.recv(tok).unwrap_err().kind(), ErrorKind::ChannelEmpty)
        })
        .unwrap();
        send(&rt, s, &ch, Item::Object, |tok| tok.list(&[]));

        let (receiver_rt, receiver_ch) = (rt.clone(), ch.clone());
        let receiver = thread::spawn(move || {
            receiver_rt
                .enter(r, |tok| match receiver_ch.recv(tok) {
                    Ok(obj) => {
                        let kind = obj.kind();
                        assert!(
                            matches!(kind, ObjKind::Proxy | ObjKind::Unbound),
                            "{kind:?}"
                        );
                    }
                    Err(e) => {
                        assert!(
                            matches!(
                                e.kind(),
                                ErrorKind::InterpreterGone | ErrorKind::ChannelEmpty
                            ),
                            "{e}"
                        );
                    }
                })
                .unwrap()
        });
        let report = xinterp_loom_tests::destroy_when_idle(&rt, s);
        receiver.join().unwrap();

        assert_eq!(report.leaked_objects, 0, "{report:?}");
        assert!(report.invalidated_exports <= 1, "{report:?}");
        // Every reference given back once, every object freed.
        xinterp_loom_tests::assert_balanced(&rt);
    });
}
