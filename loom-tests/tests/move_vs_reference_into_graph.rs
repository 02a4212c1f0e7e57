//! A list is moved out of its interpreter on one thread while another thread, holding an
//! owned handle to an item of that list, sends a reference to the item from the same
//! interpreter, receives it elsewhere, drops it, and lets go of its handle. The move's check
//! and every step of the other thread that touches the item are serialised by the sender's
//! lock, so the move either sees a reference into the graph from outside (the handle, or
//! the message's export) and is refused with nothing changed, or sees none, when every such
//! reference is gone for good, and the graph changes hands (INV-MOVE-EXCLUSIVE).
#![cfg(loom)]

use loom::thread;
use xinterp::{Config, ErrorKind, Outgoing};
use xinterp_loom_tests::setup;

#[test]
fn a_move_racing_a_send_of_a_reference_into_the_moved_graph() {
    xinterp_loom_tests::model("move_vs_reference_into_graph", || {
        let (rt, s, r, ch) = setup(Config::default());
        let (root, item) = rt
            .enter(s, |tok| {
                let item = tok.list(&[]);
                let root = tok.list(std::slice::from_ref(&item));
                (root.unbind(), item.unbind())
            })
            .unwrap();
        let referrer = {
            let (rt, ch) = (rt.clone(), ch.clone());
            thread::spawn(move || {
                rt.enter(s, |tok| {
                    let item = item.bind(tok).unwrap();
                    ch.send(tok, Outgoing::object(&item)).unwrap();
                })
                .unwrap();
                // Dropped here, outside `s`: its decref waits in `s`'s inbox.
                drop(item);
                rt.enter(r, |tok| drop(ch.recv(tok).unwrap())).unwrap();
            })
        };
        let moved = rt
            .enter(s, move |tok| {
                let root_obj = root.bind(tok).unwrap();
                drop(root);
                Outgoing::moved(root_obj).inspect(|_| {
                    // Taken out: `s` counts none of it now.
                    assert_eq!(tok.runtime().info(s).unwrap().live_objects, 0);
                })
            })
            .unwrap();
        referrer.join().unwrap();
        match moved {
            // Never received: it goes back to `s`, and is freed there.
            Ok(item) => drop(item),
            Err(e) => assert_eq!(e.kind(), ErrorKind::NotShareable, "{e}"),
        }
        xinterp_loom_tests::assert_balanced(&rt);
    });
}
