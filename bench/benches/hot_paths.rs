//! Instruction counts of the hot paths, each `OPS` operations after a warm-up, with the
//! baselines counted in the same run (crossbeam's send + recv, a std mutex). Run with
//! `cargo bench -p xinterp-bench` (needs valgrind and `gungraun-runner` 0.19.1; see
//! design/performance.md).

use std::hint::black_box;

use gungraun::{library_benchmark, library_benchmark_group, main};
use xinterp::OwnedObj;
use xinterp_bench::*;

#[library_benchmark]
#[bench::b64(args = (64), setup = zero_copy_fixture)]
#[bench::mib16(args = (16 << 20), setup = zero_copy_fixture)]
fn zero_copy_item(f: Fixture) -> Fixture {
    zero_copy_items(&f, OPS);
    f
}

#[library_benchmark]
#[bench::b64(setup = bytes_item_fixture)]
fn bytes_item_same_interpreter(f: Fixture) -> Fixture {
    bytes_items_same_interpreter(&f, OPS);
    f
}

#[library_benchmark]
#[bench::b64(setup = crossbeam_fixture)]
fn crossbeam_bounded_same_thread(
    ch: (crossbeam_like::Sender, crossbeam_like::Receiver),
) -> (crossbeam_like::Sender, crossbeam_like::Receiver) {
    crossbeam_items(&ch, black_box(&[7u8; 64]), OPS);
    ch
}

#[library_benchmark]
#[bench::b64(setup = crossbeam_unbounded_fixture)]
fn crossbeam_unbounded_same_thread(
    ch: (crossbeam_like::Sender, crossbeam_like::Receiver),
) -> (crossbeam_like::Sender, crossbeam_like::Receiver) {
    crossbeam_items(&ch, black_box(&[7u8; 64]), OPS);
    ch
}

#[library_benchmark]
#[bench::uncontended(setup = enter_fixture)]
fn enter_leave(f: Fixture) -> Fixture {
    enters(&f, OPS);
    f
}

#[library_benchmark]
#[bench::uncontended(setup = mutex_fixture)]
fn std_mutex_lock_unlock(m: std::sync::Mutex<u64>) -> std::sync::Mutex<u64> {
    mutex_round_trips(&m, OPS);
    m
}

#[library_benchmark]
#[bench::self_n_plus_1(setup = method_fixture)]
fn method_call(f: Fixture) -> Fixture {
    method_calls(&f, OPS);
    f
}

#[library_benchmark]
#[bench::self_n_plus_1(setup = forwarded_fixture)]
fn forwarded_call(fixture: (Fixture, OwnedObj)) -> (Fixture, OwnedObj) {
    forwarded_calls(&fixture.0, &fixture.1, OPS);
    fixture
}

#[library_benchmark]
#[bench::new_proxy(setup = identity_fixture)]
fn identity_miss_receive(f: Fixture) -> Fixture {
    identity_misses(&f, OPS);
    f
}

#[library_benchmark]
#[bench::held_50(setup = identity_burst_fixture)]
fn identity_miss_burst(f: Fixture) -> Fixture {
    identity_miss_bursts(&f, OPS);
    f
}

library_benchmark_group!(
    name = channel;
    benchmarks = zero_copy_item, bytes_item_same_interpreter, crossbeam_bounded_same_thread,
        crossbeam_unbounded_same_thread
);

library_benchmark_group!(
    name = interpreters;
    benchmarks = enter_leave, std_mutex_lock_unlock
);

library_benchmark_group!(
    name = objects;
    benchmarks = method_call, forwarded_call, identity_miss_receive, identity_miss_burst
);

main!(library_benchmark_groups = channel, interpreters, objects);
