//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses its own subset

use xinterp::Runtime;

/// Drains every interpreter until no pending call runs: draining one may queue releases on
/// another (a view freed in its receiver releases its export in the sender).
pub fn drain_all(rt: &Runtime) {
    while rt
        .list()
        .into_iter()
        .map(|id| rt.drain(id).unwrap())
        .sum::<usize>()
        > 0
    {}
}

/// The accounting at the end of a test: after draining, no object is left in any
/// interpreter (INV-FREE-ONCE), no buffer is pinned and no export outstanding (INV-LEDGER),
/// and objects and buffer exports balance runtime-wide, destroyed interpreters included.
pub fn assert_clean(rt: &Runtime) {
    drain_all(rt);
    for id in rt.list() {
        let info = rt.info(id).unwrap();
        assert_eq!(info.live_objects, 0, "{info:?}");
        assert_eq!(info.pinned_exports, 0, "{info:?}");
        assert!(rt.exports(id).unwrap().is_empty(), "{:?}", rt.exports(id));
    }
    let c = rt.counters();
    assert_eq!(c.objects_allocated, c.objects_freed, "{c:?}");
    assert_eq!(c.buffers_exported, c.buffers_released, "{c:?}");
}
