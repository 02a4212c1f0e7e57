//! `Token::resolve_object` races a destroy of the origin under `OwnerDeath::Refuse` (audit
//! F3). The origin's only export has one release on its way back (a `Deferred` proxy release
//! waiting in its inbox), so `Refuse` lets a destroy begin; an interpreter whose destroy has
//! begun hands out no new origin references (INV-OWNER-DEATH, INV-EXPORTS-CLOSED). So the
//! resolve either comes first (its live proxy then makes the destroy wait, `InterpreterBusy`)
//! or gives an error: never a live proxy of an interpreter destroyed under `Refuse`, whose
//! calls would give `InterpreterGone`. At the end every object is freed (INV-LEDGER).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, ErrorKind, Outgoing, ReleaseStrategy};
use xinterp_loom_tests::{first_export_message, setup};

#[test]
fn resolve_object_racing_destroy_under_refuse() {
    xinterp_loom_tests::model("resolve_object_racing_destroy_under_refuse", || {
        // Refuse is the default; Deferred leaves the proxy's release queued in s's inbox.
        let (rt, s, r, ch) = setup(Config::default().release(ReleaseStrategy::Deferred));
        let addr = rt
            .enter(s, |tok| {
                let l = tok.list(&[]);
                ch.send(tok, Outgoing::object(&l)).unwrap();
                l.id() as u64
            })
            .unwrap();
        let bytes = first_export_message(&rt, s, addr).encode();
        rt.enter(r, |tok| drop(ch.recv(tok).unwrap())).unwrap();
        let info = rt.exports(s).unwrap();
        assert_eq!((info[0].pending, info[0].proxies), (1, 0));

        let rt2 = rt.clone();
        let t = thread::spawn(move || {
            rt2.enter(r, |tok| match tok.resolve_object(&bytes) {
                Ok(proxy) => Some(proxy.len().map_err(|e| e.kind())),
                Err(_) => None,
            })
            .unwrap()
        });
        let destroyed = rt.destroy(s);
        let resolved = t.join().unwrap();
        if let Some(Err(kind)) = resolved {
            panic!(
                "resolve_object handed out a live proxy of an interpreter destroyed under \
                 Refuse (its call gave {kind:?}); destroy gave {destroyed:?}"
            );
        }

        // The ledger of this part: refused while the proxy lived, the destroy goes through
        // now; every reference comes back and every object is freed.
        let report = match destroyed {
            Ok(report) => report,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InterpreterBusy, "{e}");
                rt.destroy(s).unwrap()
            }
        };
        assert_eq!(report.leaked_objects, 0, "{report:?}");
        xinterp_loom_tests::assert_balanced(&rt);
    });
}
