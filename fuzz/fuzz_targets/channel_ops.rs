//! Random sequences of channel operations (see `channel_ops_model.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod channel_ops_model;

fuzz_target!(|data: &[u8]| channel_ops_model::run(data));
